//! Digests through `herald run`: alerts to a digested sink or rule wait for
//! their period and go out as one message listing them; other alerts to the
//! same sink are not held up; an empty period sends nothing.

use std::time::Duration;

use crate::both_backends;
use crate::support::db::{Backend, TestDb};
use crate::support::feed_server::{FeedServer, Item, Route};
use crate::support::herald::{TestHerald, feeds_toml};
use crate::support::process::Daemon;
use crate::support::receiver::Receiver;
use crate::support::waiting::wait_until;

both_backends!(
    alerts_wait_for_their_digest_and_go_out_as_one_message,
    a_digest_waits_for_its_period_and_is_formed_once_by_racing_dispatchers,
    a_period_too_long_for_one_message_goes_out_in_numbered_parts,
);

async fn alerts_wait_for_their_digest_and_go_out_as_one_message(backend: Backend) {
    let server = FeedServer::start().await;
    let receiver = Receiver::start().await;
    server.set("/wire", Route::rss("Wire", &[]));
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    // `desk` digests everything sent to it; `chat` is instant, but the rule
    // `oil` asks for a digest of its own there.
    std::fs::write(
        dir.path().join("herald.toml"),
        format!(
            "[fetch]\ninterval = \"1s\"\n\n\
             [sinks.desk]\ntype = \"webhook\"\nurl = \"{desk}\"\ndigest = \"6s\"\n\n\
             [sinks.chat]\ntype = \"webhook\"\nurl = \"{chat}\"\n\n\
             [rules.nk-iran]\nquery = '\"North Korea\" Iran'\nsinks = [\"desk\"]\n\n\
             [rules.kim]\nquery = 'title:Kim'\nsinks = [\"chat\"]\n\n\
             [rules.oil]\nquery = 'oil'\nsinks = [\"chat\"]\ndigest = \"6s\"\n\n{feeds}",
            desk = receiver.url("/desk"),
            chat = receiver.url("/chat"),
            feeds = feeds_toml(&[server.url("/wire")])
        ),
    )
    .unwrap();
    let daemon = Daemon::start(dir.path(), &db.url, None);
    // The first fetch is the back catalogue; the stories come after it.
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
                Item::titled(3, "North Korea and Iran hold naval drills"),
                Item::titled(4, "Kim Jong Un inspects a factory"),
                Item::titled(5, "Oil prices rise on supply fears"),
            ],
        ),
    );
    // The instant alert is not held up by the digest waiting on its sink.
    let chat = receiver.wait_for("/chat", 1, Duration::from_secs(30)).await;
    assert_eq!(
        chat[0].json()["event"],
        "rule.matched",
        "{:?}",
        chat[0].json()
    );
    assert_eq!(chat[0].json()["rule"]["name"], "kim");

    let desk = receiver.wait_for("/desk", 1, Duration::from_secs(30)).await;
    let digest = desk[0].json();
    assert_eq!(digest["event"], "digest", "{digest}");
    let mut titles: Vec<String> = digest["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["article"]["title"].as_str().unwrap().to_owned())
        .collect();
    titles.sort();
    assert_eq!(
        titles,
        [
            "Iran and North Korea sign a trade pact",
            "North Korea and Iran hold naval drills",
            "North Korea sends envoys to Iran",
        ]
    );
    let chat = receiver.wait_for("/chat", 2, Duration::from_secs(30)).await;
    let oil = chat[1].json();
    assert_eq!(oil["event"], "digest", "{oil}");
    assert_eq!(oil["items"][0]["rule"]["name"], "oil");
    assert_eq!(oil["items"].as_array().unwrap().len(), 1);

    // Every delivery is settled, those carried by a digest too.
    wait_until(
        "every delivery delivered",
        Duration::from_secs(10),
        || async {
            let deliveries = db.store.deliveries(None, 20).await.unwrap();
            deliveries.len() == 5
                && deliveries
                    .iter()
                    .all(|d| d.status == herald::domain::delivery::DeliveryStatus::Delivered)
        },
    )
    .await;
    // A period with nothing in it sends nothing.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(receiver.requests("/desk").len(), 1);
    assert_eq!(receiver.requests("/chat").len(), 2);
    daemon.signal("TERM");
    let output = daemon.wait().await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
}

async fn a_digest_waits_for_its_period_and_is_formed_once_by_racing_dispatchers(backend: Backend) {
    let server = FeedServer::start().await;
    let receiver = Receiver::start().await;
    server.set("/wire", Route::rss("Wire", &[]));
    let herald = TestHerald::start(
        backend,
        &format!(
            "[sinks.desk]\ntype = \"webhook\"\nurl = \"{}\"\ndigest = \"1h\"\n\n\
             [rules.nk-iran]\nquery = '\"North Korea\" Iran'\nsinks = [\"desk\"]\n\n{}",
            receiver.url("/desk"),
            feeds_toml(&[server.url("/wire")])
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
            ],
        ),
    );
    assert_eq!(herald.poll_one().await.new, 3);
    let dispatcher = &herald.app.dispatcher;
    let report = dispatcher.run_once(chrono::Utc::now()).await.unwrap();
    assert_eq!(
        report.attempts(),
        0,
        "the hour is not over: nothing is sent"
    );
    assert!(receiver.requests("/desk").is_empty());

    // Two dispatchers find the period over at once: one digest.
    let store = &herald.db.store;
    let waiting = store.waiting_digests().await.unwrap();
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    let later = chrono::Utc::now() + chrono::TimeDelta::hours(2);
    let (a, b) = tokio::join!(
        store.form_digest(&waiting[0], later, 100, later),
        store.form_digest(&waiting[0], later, 100, later),
    );
    let carriers: Vec<i64> = a.unwrap().into_iter().chain(b.unwrap()).collect();
    assert_eq!(carriers.len(), 1, "{carriers:?}");
    assert!(store.waiting_digests().await.unwrap().is_empty());

    let report = dispatcher.run_once(later).await.unwrap();
    assert_eq!(report.delivered, 1);
    let sent = receiver.requests("/desk");
    assert_eq!(sent.len(), 1);
    let body = sent[0].json();
    assert_eq!(body["event"], "digest");
    assert_eq!(body["items"].as_array().unwrap().len(), 3, "{body}");
    assert_eq!(sent[0].header("x-herald-event"), Some("digest"));
    let deliveries = store.deliveries(None, 10).await.unwrap();
    assert_eq!(deliveries.len(), 3);
    assert!(
        deliveries
            .iter()
            .all(|d| d.status == herald::domain::delivery::DeliveryStatus::Delivered),
        "{deliveries:?}"
    );
    let again = dispatcher.run_once(later).await.unwrap();
    assert_eq!(again.attempts(), 0, "sent once");
}

async fn a_period_too_long_for_one_message_goes_out_in_numbered_parts(backend: Backend) {
    let server = FeedServer::start().await;
    let receiver = Receiver::start().await;
    server.set("/wire", Route::rss("Wire", &[]));
    let herald = TestHerald::start(
        backend,
        &format!(
            "[sinks.desk]\ntype = \"webhook\"\nurl = \"{}\"\ndigest = \"1h\"\n\n\
             [rules.nk-iran]\nquery = '\"North Korea\" Iran'\nsinks = [\"desk\"]\n\n{}",
            receiver.url("/desk"),
            feeds_toml(&[server.url("/wire")])
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
            ],
        ),
    );
    assert_eq!(herald.poll_one().await.new, 3);
    let store = &herald.db.store;
    let waiting = store.waiting_digests().await.unwrap();
    let later = chrono::Utc::now() + chrono::TimeDelta::hours(2);
    // Two stories a message: the period's three go out as two parts.
    let carriers = store
        .form_digest(&waiting[0], later, 2, later)
        .await
        .unwrap();
    assert_eq!(carriers.len(), 2);
    let report = herald.app.dispatcher.run_once(later).await.unwrap();
    assert_eq!(report.delivered, 2, "{report:?}");
    let sent: Vec<serde_json::Value> = receiver
        .requests("/desk")
        .iter()
        .map(|request| request.json())
        .collect();
    let parts: Vec<(u64, u64, usize)> = sent
        .iter()
        .map(|body| {
            (
                body["part"].as_u64().unwrap(),
                body["parts"].as_u64().unwrap(),
                body["items"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(parts, [(1, 2, 2), (2, 2, 1)], "{sent:?}");
}
