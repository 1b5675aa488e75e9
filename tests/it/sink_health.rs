//! Sink health: an endpoint that says it is gone (HTTP 410, Slack's `404
//! no_service`) marks its sink broken. Its alerts stay queued, not dead, and
//! are not tried again; `herald sinks`, `/metrics` and the log say why, once.
//! `herald sinks enable` or a reload that changes the sink's configuration
//! sends the queue, in order. Both backends; the reload through `herald run`.

use std::time::Duration;

use herald::domain::delivery::DeliveryStatus;
use herald::metrics::{DatabaseState, Metrics};

use crate::both_backends;
use crate::support::db::{Backend, TestDb};
use crate::support::feed_server::{FeedServer, Item, Route};
use crate::support::herald::{TestHerald, feeds_toml, json_lines};
use crate::support::process::Daemon;
use crate::support::receiver::{Receiver, Reply};
use crate::support::waiting::wait_until;

both_backends!(
    a_gone_endpoint_breaks_its_sink_and_enable_sends_the_queue_in_order,
    a_reload_with_a_fixed_url_drains_a_broken_sinks_queue,
);

const STORIES: [&str; 3] = [
    "North Korea sends envoys to Iran",
    "Iran and North Korea sign a trade pact",
    "North Korea and Iran hold naval drills",
];

fn wire() -> Route {
    let items: Vec<Item> = STORIES
        .iter()
        .zip(1..)
        .map(|(title, n)| Item::titled(n, title))
        .collect();
    Route::rss("Wire", &items)
}

fn sink_config(desk: &str, chat: &str, feed: &str) -> String {
    format!(
        "[sinks.desk]\ntype = \"slack\"\nurl = \"{desk}\"\n\n\
         [sinks.chat]\ntype = \"webhook\"\nurl = \"{chat}\"\n\n\
         [rules.nk-iran]\nquery = '\"North Korea\" Iran'\nsinks = [\"desk\", \"chat\"]\n\n{}",
        feeds_toml(&[feed.to_owned()])
    )
}

fn titles_in_order(receiver: &Receiver, path: &str) -> Vec<String> {
    receiver
        .requests(path)
        .iter()
        .map(|request| {
            request.json()["text"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

async fn a_gone_endpoint_breaks_its_sink_and_enable_sends_the_queue_in_order(backend: Backend) {
    let server = FeedServer::start().await;
    let receiver = Receiver::start().await;
    server.set("/wire", Route::rss("Wire", &[]));
    receiver.script(
        "/services/T1/B1/K3Y",
        vec![
            Reply::status(404).with_body("no_service"),
            Reply::status(200),
        ],
    );
    let herald = TestHerald::start(
        backend,
        &sink_config(
            &receiver.url("/services/T1/B1/K3Y"),
            &receiver.url("/chat"),
            &server.url("/wire"),
        ),
    )
    .await;
    herald.poll_one().await;
    server.set("/wire", wire());
    assert_eq!(herald.poll_one().await.new, 3);

    let report = herald.app.dispatch_once().await.unwrap();
    assert_eq!(report.delivered, 3, "chat is healthy: {report:?}");
    assert_eq!(report.failed, 1, "{report:?}");
    assert_eq!(report.dead, 0, "{report:?}");
    let store = &herald.db.store;
    let broken = store.broken_sinks().await.unwrap();
    assert_eq!(broken.len(), 1, "{broken:?}");
    assert_eq!(broken[0].sink, "desk");
    assert_eq!(broken[0].reason, "HTTP 404 Not Found: no_service");
    assert!(!broken[0].config.contains("K3Y"));

    // Not tried again, however often the dispatcher runs; nothing dies.
    let again = herald.app.dispatch_once().await.unwrap();
    assert_eq!(again.attempts(), 0, "{again:?}");
    assert_eq!(receiver.requests("/services/T1/B1/K3Y").len(), 1);
    let desk: Vec<_> = store
        .deliveries(None, 10)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.sink == "desk")
        .collect();
    assert_eq!(desk.len(), 3);
    assert!(
        desk.iter()
            .all(|d| matches!(d.status, DeliveryStatus::Pending | DeliveryStatus::Failed)),
        "{desk:?}"
    );
    assert_eq!(
        store.next_delivery_at().await.unwrap(),
        None,
        "nothing to wake for"
    );

    // What an operator sees.
    let listed = herald.cli(&["sinks"]).await;
    assert_eq!(listed.status.code(), Some(0), "{listed:?}");
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(text.contains("broken         3  slack     desk"), "{text}");
    assert!(text.contains("ok             0  webhook   chat"), "{text}");
    assert!(
        text.contains("HTTP 404 Not Found: no_service (fix its configuration and reload, or `herald sinks enable desk`)"),
        "{text}"
    );
    assert!(!text.contains("K3Y"), "{text}");
    let json = json_lines(&herald.cli(&["sinks", "--json"]).await);
    assert_eq!(json.len(), 2, "{json:?}");
    let desk_json = json.iter().find(|s| s["name"] == "desk").unwrap();
    assert_eq!(desk_json["status"], "broken");
    assert_eq!(desk_json["type"], "slack");
    assert_eq!(desk_json["queued"], 3);
    let state = DatabaseState::read(&herald.app.store).await.unwrap();
    let metrics = Metrics::new().encode(&state).unwrap();
    assert!(
        metrics.contains("herald_sink_broken{sink=\"desk\"} 1"),
        "{metrics}"
    );

    let unknown = herald.cli(&["sinks", "enable", "nope"]).await;
    assert_eq!(unknown.status.code(), Some(2), "{unknown:?}");
    let enabled = herald.cli(&["sinks", "enable", "desk"]).await;
    assert_eq!(enabled.status.code(), Some(0), "{enabled:?}");
    assert_eq!(
        String::from_utf8_lossy(&enabled.stdout),
        "desk enabled: its waiting alerts are sent again\n"
    );
    let report = herald.app.dispatch_once().await.unwrap();
    assert_eq!(report.delivered, 3, "{report:?}");
    let sent = titles_in_order(&receiver, "/services/T1/B1/K3Y");
    assert_eq!(sent.len(), 4, "the refused one, then all three");
    for (text, title) in sent[1..].iter().zip(STORIES) {
        assert!(text.contains(title), "{text} should be {title}");
    }
    assert!(store.broken_sinks().await.unwrap().is_empty());
    let again = herald.cli(&["sinks", "enable", "desk"]).await;
    assert_eq!(
        String::from_utf8_lossy(&again.stdout),
        "desk was not broken\n"
    );
}

async fn a_reload_with_a_fixed_url_drains_a_broken_sinks_queue(backend: Backend) {
    let server = FeedServer::start().await;
    let receiver = Receiver::start().await;
    server.set("/wire", Route::rss("Wire", &[]));
    receiver.script(
        "/services/OLD",
        vec![Reply::status(410).with_body("channel_is_archived")],
    );
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let config = |desk: &str| {
        format!(
            "[fetch]\ninterval = \"1s\"\n\n{}",
            sink_config(
                &receiver.url(desk),
                &receiver.url("/chat"),
                &server.url("/wire")
            )
        )
    };
    std::fs::write(dir.path().join("herald.toml"), config("/services/OLD")).unwrap();
    let daemon = Daemon::start(dir.path(), &db.url, None);
    wait_until("the first fetch", Duration::from_secs(30), || async {
        server.hits("/wire") >= 1
    })
    .await;
    server.set("/wire", wire());
    receiver.wait_for("/chat", 3, Duration::from_secs(30)).await;
    wait_until("desk marked broken", Duration::from_secs(30), || async {
        !db.store.broken_sinks().await.unwrap().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.requests("/services/OLD").len(), 1, "tried once");

    std::fs::write(dir.path().join("herald.toml"), config("/services/NEW")).unwrap();
    daemon.signal("HUP");
    let sent = receiver
        .wait_for("/services/NEW", 3, Duration::from_secs(30))
        .await;
    for (request, title) in sent.iter().zip(STORIES) {
        let text = request.json()["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(text.contains(title), "{text} should be {title}");
    }
    assert!(db.store.broken_sinks().await.unwrap().is_empty());
    daemon.signal("TERM");
    let output = daemon.wait().await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let log = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        log.matches("sink is broken").count(),
        1,
        "said once, not per alert: {log}"
    );
    assert!(log.contains("channel_is_archived"), "{log}");
    assert!(!log.contains("/services/OLD"), "{log}");
}
