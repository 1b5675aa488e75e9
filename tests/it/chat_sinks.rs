//! Teams, ntfy and Telegram sinks configured in the TOML and driven by the
//! outbox: each receives the alert in its own shape on 127.0.0.1, the
//! Telegram token only in the method's path. Both backends.

use chrono::Utc;

use crate::both_backends;
use crate::support::db::Backend;
use crate::support::feed_server::{FeedServer, Item, Route};
use crate::support::herald::{TestHerald, feeds_toml};
use crate::support::receiver::{Receiver, Reply};

both_backends!(teams_ntfy_and_telegram_sinks_deliver_from_the_configuration);

async fn teams_ntfy_and_telegram_sinks_deliver_from_the_configuration(backend: Backend) {
    let server = FeedServer::start().await;
    let receiver = Receiver::start().await;
    receiver.script(
        "/bot42:T0KEN/sendMessage",
        vec![Reply::status(200).with_body(r#"{"ok":true}"#)],
    );
    server.set("/wire", Route::rss("Wire", &[]));
    let herald = TestHerald::start(
        backend,
        &format!(
            "[sinks.teams]\ntype = \"teams\"\nurl = \"{teams}\"\n\n\
             [sinks.phone]\ntype = \"ntfy\"\nurl = \"{ntfy}\"\n\n\
             [sinks.tg]\ntype = \"telegram\"\ntoken = \"42:T0KEN\"\nchat_id = -1001\n\
             api_url = \"{telegram}\"\n\n\
             [rules.nk-iran]\nquery = '\"North Korea\" Iran'\nsinks = [\"teams\", \"phone\", \"tg\"]\n\n{feeds}",
            teams = receiver.url("/workflows/1"),
            ntfy = receiver.url("/newsdesk"),
            telegram = receiver.url(""),
            feeds = feeds_toml(&[server.url("/wire")])
        ),
    )
    .await;
    herald.poll_one().await;
    let mut item = Item::numbered(1);
    item.title = "North Korea sends envoys to Iran".to_owned();
    item.pub_date = Some(Utc::now());
    server.set("/wire", Route::rss("Wire", &[item]));
    herald.poll_one().await;
    let report = herald.app.dispatch_once().await.unwrap();
    assert_eq!(report.delivered, 3, "{report:?}");

    let teams = receiver.requests("/workflows/1")[0].json();
    assert_eq!(
        teams["attachments"][0]["content"]["body"][0]["inlines"][0]["text"],
        "North Korea sends envoys to Iran"
    );
    let ntfy = receiver.requests("/")[0].json();
    assert_eq!(ntfy["topic"], "newsdesk");
    let telegram = receiver.requests("/bot42:T0KEN/sendMessage")[0].json();
    assert_eq!(telegram["chat_id"], "-1001");
    assert!(
        telegram["text"]
            .as_str()
            .unwrap()
            .contains("North Korea sends envoys to Iran")
    );
    let listed = herald.cli(&["sinks"]).await;
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(
        text.contains("telegram") && !text.contains("T0KEN"),
        "{text}"
    );
}
