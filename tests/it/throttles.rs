//! Throttles and quiet hours: alerts beyond a rule's or sink's
//! `max_per_hour`, or due in a sink's `quiet_hours`, are not dropped: they
//! wait, shown with why in `herald alerts`, and go out as one digest (the next
//! full hour; the end of the quiet stretch). Both backends, the dispatcher
//! driven at chosen instants, and once through `herald run`.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use herald::domain::delivery::{Deferral, DeliveryStatus};

use crate::both_backends;
use crate::support::db::{Backend, TestDb};
use crate::support::feed_server::{FeedServer, Item, Route};
use crate::support::herald::{TestHerald, feeds_toml};
use crate::support::process::Daemon;
use crate::support::receiver::Receiver;
use crate::support::waiting::wait_until;

both_backends!(
    alerts_beyond_max_per_hour_wait_for_the_hourly_digest,
    alerts_in_quiet_hours_go_out_as_one_digest_when_they_end,
    a_throttled_alert_waits_in_herald_alerts_with_why,
);

fn titles(body: &serde_json::Value) -> Vec<String> {
    let mut titles: Vec<String> = body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {body}"))
        .iter()
        .map(|item| item["article"]["title"].as_str().unwrap().to_owned())
        .collect();
    titles.sort();
    titles
}

async fn alerts_beyond_max_per_hour_wait_for_the_hourly_digest(backend: Backend) {
    let server = FeedServer::start().await;
    let receiver = Receiver::start().await;
    server.set("/wire", Route::rss("Wire", &[]));
    // `desk` takes two messages an hour; on `chat`, rule `kim` may send one
    // an hour while `oil` is not limited.
    let herald = TestHerald::start(
        backend,
        &format!(
            "[sinks.desk]\ntype = \"webhook\"\nurl = \"{desk}\"\nmax_per_hour = 2\n\n\
             [sinks.chat]\ntype = \"webhook\"\nurl = \"{chat}\"\n\n\
             [rules.nk-iran]\nquery = '\"North Korea\" Iran'\nsinks = [\"desk\"]\n\n\
             [rules.kim]\nquery = 'title:Kim'\nsinks = [\"chat\"]\nmax_per_hour = 1\n\n\
             [rules.oil]\nquery = 'title:oil'\nsinks = [\"chat\"]\n\n{feeds}",
            desk = receiver.url("/desk"),
            chat = receiver.url("/chat"),
            feeds = feeds_toml(&[server.url("/wire")])
        ),
    )
    .await;
    herald.poll_one().await;
    server.set(
        "/wire",
        Route::rss(
            "Wire",
            &[
                Item::titled(1, "North Korea sends envoys to Iran"),
                Item::titled(2, "Iran and North Korea sign a trade pact"),
                Item::titled(3, "North Korea and Iran hold naval drills"),
                Item::titled(4, "Iran hosts engineers from North Korea"),
                Item::titled(5, "Kim Jong Un inspects a factory"),
                Item::titled(6, "Kim Yo Jong issues a statement"),
                Item::titled(7, "Oil prices rise on supply fears"),
                Item::titled(8, "Oil tanker seized in the Gulf"),
            ],
        ),
    );
    assert_eq!(herald.poll_one().await.new, 8);
    let dispatcher = &herald.app.dispatcher;
    let now = Utc::now();
    let report = dispatcher.run_once(now).await.unwrap();
    assert_eq!(report.delivered, 5, "{report:?}");
    assert_eq!(report.deferred, 3, "{report:?}");
    let desk = receiver.requests("/desk");
    assert_eq!(desk.len(), 2, "two an hour to desk");
    assert!(desk.iter().all(|r| r.json()["event"] == "rule.matched"));
    let chat = receiver.requests("/chat");
    let mut rules: Vec<String> = chat
        .iter()
        .map(|r| r.json()["rule"]["name"].as_str().unwrap().to_owned())
        .collect();
    rules.sort();
    assert_eq!(rules, ["kim", "oil", "oil"], "kim once, oil unlimited");
    let kim_sent = chat
        .iter()
        .map(|r| r.json())
        .find(|body| body["rule"]["name"] == "kim")
        .map(|body| body["article"]["title"].as_str().unwrap().to_owned())
        .unwrap();

    let store = &herald.db.store;
    let waiting: Vec<_> = store
        .deliveries(Some(DeliveryStatus::Pending), 20)
        .await
        .unwrap();
    assert_eq!(waiting.len(), 3, "{waiting:?}");
    assert!(
        waiting
            .iter()
            .all(|d| d.deferred == Some(Deferral::Throttled)
                && d.digest.as_deref() == Some("every 3600s")),
        "{waiting:?}"
    );
    // Within the hour nothing more goes out, however often the dispatcher runs.
    let again = dispatcher.run_once(now).await.unwrap();
    assert_eq!(again.attempts() + again.deferred, 0, "{again:?}");

    // The next full hour: one digest per sink with what was held back.
    let later = now + TimeDelta::hours(1) + TimeDelta::minutes(1);
    let report = dispatcher.run_once(later).await.unwrap();
    assert_eq!(report.delivered, 2, "{report:?}");
    let desk = receiver.requests("/desk");
    assert_eq!(desk.len(), 3);
    let digest = desk[2].json();
    assert_eq!(digest["event"], "digest", "{digest}");
    assert_eq!(digest["schedule"], "held back by max_per_hour");
    assert_eq!(titles(&digest).len(), 2, "{digest}");
    let chat = receiver.requests("/chat");
    assert_eq!(chat.len(), 4);
    let digest = chat[3].json();
    let kim_held = titles(&digest);
    assert_eq!(kim_held.len(), 1, "{digest}");
    assert_ne!(
        kim_held[0], kim_sent,
        "the held-back story, not the sent one"
    );
    let deliveries = store.deliveries(None, 20).await.unwrap();
    assert_eq!(deliveries.len(), 8);
    assert!(
        deliveries
            .iter()
            .all(|d| d.status == DeliveryStatus::Delivered),
        "{deliveries:?}"
    );
}

async fn alerts_in_quiet_hours_go_out_as_one_digest_when_they_end(backend: Backend) {
    let server = FeedServer::start().await;
    let receiver = Receiver::start().await;
    server.set("/wire", Route::rss("Wire", &[]));
    // A stretch around the present: an hour either side, on the minute.
    let configured_at = Utc::now();
    let start = (configured_at - TimeDelta::hours(1)).format("%H:%M");
    let end = (configured_at + TimeDelta::hours(1)).format("%H:%M");
    let herald = TestHerald::start(
        backend,
        &format!(
            "[sinks.desk]\ntype = \"webhook\"\nurl = \"{desk}\"\n\
             quiet_hours = \"{start}-{end}\"\n\n\
             [sinks.chat]\ntype = \"webhook\"\nurl = \"{chat}\"\n\n\
             [sinks.mail]\ntype = \"webhook\"\nurl = \"{mail}\"\ndigest = \"60s\"\n\
             quiet_hours = \"{start}-{end}\"\n\n\
             [rules.nk-iran]\nquery = '\"North Korea\" Iran'\nsinks = [\"desk\", \"chat\", \"mail\"]\n\n{feeds}",
            desk = receiver.url("/desk"),
            chat = receiver.url("/chat"),
            mail = receiver.url("/mail"),
            feeds = feeds_toml(&[server.url("/wire")])
        ),
    )
    .await;
    herald.poll_one().await;
    server.set(
        "/wire",
        Route::rss(
            "Wire",
            &[
                Item::titled(1, "North Korea sends envoys to Iran"),
                Item::titled(2, "Iran and North Korea sign a trade pact"),
            ],
        ),
    );
    assert_eq!(herald.poll_one().await.new, 2);
    let dispatcher = &herald.app.dispatcher;
    let now = Utc::now();
    let report = dispatcher.run_once(now).await.unwrap();
    assert_eq!(report.delivered, 2, "chat is not quiet: {report:?}");
    assert_eq!(report.deferred, 2, "{report:?}");
    assert!(receiver.requests("/desk").is_empty());
    let waiting: Vec<_> = herald
        .db
        .store
        .deliveries(Some(DeliveryStatus::Pending), 10)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.sink == "desk")
        .collect();
    assert_eq!(waiting.len(), 2, "{waiting:?}");
    assert!(
        waiting
            .iter()
            .all(|d| d.deferred == Some(Deferral::QuietHours)),
        "{waiting:?}"
    );
    assert_eq!(
        waiting[0].digest.as_deref(),
        Some(&*format!("at {end} UTC"))
    );

    // Still quiet half an hour on: nothing goes out, not even the digest
    // whose minute is long over.
    let report = dispatcher
        .run_once(now + TimeDelta::minutes(30))
        .await
        .unwrap();
    assert_eq!(report.attempts(), 0, "{report:?}");
    assert!(receiver.requests("/desk").is_empty());
    assert!(receiver.requests("/mail").is_empty());

    // The stretch is over: one message with both stories.
    let report = dispatcher
        .run_once(now + TimeDelta::hours(2))
        .await
        .unwrap();
    assert_eq!(report.delivered, 2, "{report:?}");
    let mail = receiver.requests("/mail");
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].json()["schedule"], "every 1m");
    assert_eq!(titles(&mail[0].json()).len(), 2);
    let desk = receiver.requests("/desk");
    assert_eq!(desk.len(), 1);
    let digest = desk[0].json();
    assert_eq!(digest["event"], "digest", "{digest}");
    assert_eq!(
        digest["schedule"],
        format!("after quiet hours {start}-{end} (UTC)")
    );
    assert_eq!(
        titles(&digest),
        [
            "Iran and North Korea sign a trade pact",
            "North Korea sends envoys to Iran",
        ]
    );
}

async fn a_throttled_alert_waits_in_herald_alerts_with_why(backend: Backend) {
    let server = FeedServer::start().await;
    let receiver = Receiver::start().await;
    server.set("/wire", Route::rss("Wire", &[]));
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("herald.toml"),
        format!(
            "[fetch]\ninterval = \"1s\"\n\n\
             [sinks.desk]\ntype = \"webhook\"\nurl = \"{desk}\"\nmax_per_hour = 1\n\n\
             [rules.nk-iran]\nquery = '\"North Korea\" Iran'\nsinks = [\"desk\"]\n\n{feeds}",
            desk = receiver.url("/desk"),
            feeds = feeds_toml(&[server.url("/wire")])
        ),
    )
    .unwrap();
    let daemon = Daemon::start(dir.path(), &db.url, None);
    wait_until("the first fetch", Duration::from_secs(30), || async {
        server.hits("/wire") >= 1
    })
    .await;
    server.set(
        "/wire",
        Route::rss(
            "Wire",
            &[
                Item::titled(1, "North Korea sends envoys to Iran"),
                Item::titled(2, "Iran and North Korea sign a trade pact"),
            ],
        ),
    );
    receiver.wait_for("/desk", 1, Duration::from_secs(30)).await;
    wait_until(
        "the second alert deferred",
        Duration::from_secs(30),
        || async {
            db.store
                .deliveries(None, 10)
                .await
                .unwrap()
                .iter()
                .any(|d| d.deferred == Some(Deferral::Throttled))
        },
    )
    .await;
    let listed = crate::support::process::herald(dir.path(), &db.url, &["alerts"])
        .output()
        .unwrap();
    assert_eq!(listed.status.code(), Some(0), "{listed:?}");
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(
        text.contains("waits for: digest every 3600s (over max_per_hour)"),
        "{text}"
    );
    // Only the first went out; the second is not dropped, it waits.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.requests("/desk").len(), 1);
    daemon.signal("TERM");
    let output = daemon.wait().await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
}
