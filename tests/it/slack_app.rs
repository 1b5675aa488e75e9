//! `slack_app` sinks against a local server speaking Slack's Web API
//! (`chat.postMessage`: bearer token in, `{"ok", "ts"}` or `{"ok": false,
//! "error"}` out): one message per story in the channel, later alerts on the
//! story and the outlets that carry it later as replies in its thread,
//! Slack's refusals read from the body, request bodies within Slack's
//! documented limits. Both backends.

use chrono::{TimeDelta, Utc};
use serde_json::Value;

use crate::both_backends;
use crate::support::db::Backend;
use crate::support::feed_server::{FeedServer, Item, Route};
use crate::support::herald::{TestHerald, feeds_toml};
use crate::support::receiver::{ReceivedRequest, Receiver, Reply};

both_backends!(
    a_story_is_one_message_and_its_spread_a_thread,
    slack_refusals_are_read_from_the_answer,
);

const TOKEN: &str = "xoxb-test-T0KEN";
const METHOD: &str = "/api/chat.postMessage";

fn story(n: u32, outlet: &str) -> Item {
    Item {
        guid: format!("{outlet}-{n}"),
        link: format!("https://{outlet}.example/{n}"),
        title: "North Korean delegation arrives in Tehran for talks".into(),
        description: "<p>A delegation from North Korea arrived in Tehran on Monday for talks \
                      with Iran's officials on trade and energy, state media said, in the \
                      first such visit in years.</p>"
            .into(),
        pub_date: Some(Utc::now()),
    }
}

fn posted(ts: &str) -> Reply {
    Reply::status(200).with_body(&format!(r#"{{"ok":true,"channel":"C0123","ts":"{ts}"}}"#))
}

/// What Slack documents a `chat.postMessage` body may hold, checked on
/// everything herald sends.
fn assert_within_slack_limits(request: &ReceivedRequest) {
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert!(
        request
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{:?}",
        request.headers
    );
    let body = request.json();
    assert_eq!(body["channel"], "C0123", "{body}");
    let text = body["text"].as_str().unwrap_or_default();
    assert!(!text.is_empty() && text.chars().count() <= 40_000, "{body}");
    if let Some(blocks) = body["blocks"].as_array() {
        assert!(blocks.len() <= 50, "{body}");
        for block in blocks {
            if let Some(text) = block["text"]["text"].as_str() {
                assert!(text.chars().count() <= 3000, "{block}");
            }
        }
    }
}

async fn watching(backend: Backend, server: &FeedServer, receiver: &Receiver) -> TestHerald {
    server.set("/wire", Route::rss("Wire", &[]));
    server.set("/other", Route::rss("Other Outlet", &[]));
    let herald = TestHerald::start(
        backend,
        &format!(
            "[sinks.desk]\ntype = \"slack_app\"\ntoken = \"{TOKEN}\"\nchannel = \"C0123\"\n\
             api_url = \"{}\"\n\n\
             [rules.nk-iran]\nquery = '\"North Korea\" Iran'\nsinks = [\"desk\"]\n\n\
             [rules.tehran]\nquery = 'Tehran'\nsinks = [\"desk\"]\n\n{}",
            receiver.url("/api"),
            feeds_toml(&[server.url("/wire"), server.url("/other")])
        ),
    )
    .await;
    herald.poll().await;
    herald
}

async fn a_story_is_one_message_and_its_spread_a_thread(backend: Backend) {
    let server = FeedServer::start().await;
    let receiver = Receiver::start().await;
    receiver.script(
        METHOD,
        vec![posted("1700000000.000100"), posted("1700000001.000200")],
    );
    let herald = watching(backend, &server, &receiver).await;
    server.set("/wire", Route::rss("Wire", &[story(1, "wire")]));
    herald.poll().await;
    let dispatcher = &herald.app.dispatcher;
    let report = dispatcher.run_once(Utc::now()).await.unwrap();
    assert_eq!(report.delivered, 2, "two rules: {report:?}");

    let sent = receiver.requests(METHOD);
    assert_eq!(sent.len(), 2);
    for request in &sent {
        assert_within_slack_limits(request);
    }
    assert!(
        sent[0].json().get("thread_ts").is_none(),
        "the story's own message"
    );
    assert_eq!(
        sent[1].json()["thread_ts"],
        "1700000000.000100",
        "the second rule's alert is a reply"
    );

    // Another outlet carries the story: no new alert, a note in the thread.
    server.set("/other", Route::rss("Other Outlet", &[story(1, "other")]));
    herald.poll().await;
    let later = Utc::now() + TimeDelta::minutes(2);
    dispatcher.run_once(later).await.unwrap();
    let sent = receiver.requests(METHOD);
    assert_eq!(
        sent.len(),
        3,
        "{:?}",
        sent.iter().map(|r| r.json()).collect::<Vec<_>>()
    );
    let note = sent[2].json();
    assert_within_slack_limits(&sent[2]);
    assert_eq!(note["thread_ts"], "1700000000.000100", "{note}");
    assert_eq!(note["text"], "also reported by Other Outlet", "{note}");

    // Said once: a later look finds nothing new.
    dispatcher
        .run_once(later + TimeDelta::minutes(2))
        .await
        .unwrap();
    assert_eq!(receiver.requests(METHOD).len(), 3);
}

async fn slack_refusals_are_read_from_the_answer(backend: Backend) {
    let server = FeedServer::start().await;
    let receiver = Receiver::start().await;
    receiver.script(
        METHOD,
        vec![
            Reply::status(429)
                .with_retry_after("7")
                .with_body(r#"{"ok":false,"error":"ratelimited"}"#),
            Reply::status(200).with_body(r#"{"ok":false,"error":"channel_not_found"}"#),
        ],
    );
    let herald = watching(backend, &server, &receiver).await;
    server.set("/wire", Route::rss("Wire", &[story(1, "wire")]));
    herald.poll().await;
    let dispatcher = &herald.app.dispatcher;
    let report = dispatcher.run_once(Utc::now()).await.unwrap();
    assert_eq!(report.failed, 1, "{report:?}");
    let first = herald.db.store.deliveries(None, 10).await.unwrap();
    let waiting = first.iter().find(|d| d.attempts == 1).unwrap();
    assert!(
        waiting.next_attempt_at >= Utc::now() + TimeDelta::seconds(5),
        "Retry-After is honoured: {waiting:?}"
    );
    assert_eq!(waiting.response_excerpt.as_deref(), Some("ratelimited"));

    let report = dispatcher
        .run_once(Utc::now() + TimeDelta::minutes(1))
        .await
        .unwrap();
    assert_eq!(report.failed, 1, "{report:?}");
    let broken = herald.db.store.broken_sinks().await.unwrap();
    assert_eq!(broken.len(), 1, "{broken:?}");
    assert_eq!(
        broken[0].reason,
        "Slack refused the message: channel_not_found"
    );
    let shown: Value = serde_json::to_value(&broken[0]).unwrap();
    assert!(!shown.to_string().contains("T0KEN"), "{shown}");
}
