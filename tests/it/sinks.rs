//! Sinks against a real local webhook receiver: what arrives (headers, body,
//! signature), how each answer is classified, an outage, and Slack's pacing.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use herald::domain::address::PrivateNetworks;
use herald::domain::alert::{AlertMessage, FiredRule};
use herald::domain::article::{Article, ArticleSource};
use herald::sinks::{AttemptOutcome, Sender, Sink, SinkTarget, Verdict};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use url::Url;

use crate::support::receiver::{Receiver, Reply};

const WAIT: Duration = Duration::from_secs(5);

fn sender() -> Sender {
    Sender::new(
        Duration::from_secs(5),
        "herald-test/1",
        PrivateNetworks::default(),
    )
    .unwrap()
}

fn message() -> AlertMessage {
    AlertMessage {
        delivery_id: "0b7c6a2e-delivery".to_owned(),
        alert_id: 11,
        rule: FiredRule {
            name: "nk-iran".to_owned(),
            query: "\"North Korea\" Iran".to_owned(),
        },
        article: Article {
            id: 5,
            url: Some("https://news.example/nk-iran".to_owned()),
            canonical_url: Some("https://news.example/nk-iran".to_owned()),
            title: "<!channel> North Korean delegation in Tehran".to_owned(),
            summary: Some("@everyone a rare visit".to_owned()),
            author: Some("Wire".to_owned()),
            language: None,
            published_at: Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap(),
            updated_at: None,
            first_seen_at: Utc.with_ymd_and_hms(2026, 3, 1, 12, 1, 0).unwrap(),
            feeds: vec![ArticleSource {
                url: "https://news.example/rss".to_owned(),
                name: Some("Example News".to_owned()),
            }],
            story_id: Some(2),
        },
        matched: vec!["north korea".to_owned(), "iran".to_owned()],
        also_reported_by: Vec::new(),
    }
}

fn url(receiver: &Receiver, path: &str) -> Url {
    Url::parse(&receiver.url(path)).unwrap()
}

fn webhook(receiver: &Receiver, path: &str, secret: Option<&str>) -> Sink {
    Sink::new(
        "audit",
        SinkTarget::Webhook {
            url: url(receiver, path),
            secret: secret.map(str::to_owned),
        },
    )
}

fn slack(receiver: &Receiver, path: &str) -> Sink {
    Sink::new(
        "intel-slack",
        SinkTarget::Slack {
            url: url(receiver, path),
        },
    )
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn assert_retry(outcome: &AttemptOutcome, retry_after: Option<Duration>) {
    assert_eq!(
        outcome.verdict,
        Verdict::Retry { retry_after },
        "{outcome:?}"
    );
}

#[tokio::test]
async fn slack_message_arrives_as_json_with_the_delivery_id() {
    let receiver = Receiver::start().await;
    let outcome = sender()
        .send(&slack(&receiver, "/services/T1/B1/X"), &message())
        .await;
    assert_eq!(outcome.verdict, Verdict::Delivered);
    assert_eq!(outcome.http_status, Some(200));
    assert_eq!(outcome.error, None);
    let request = &receiver.requests("/services/T1/B1/X")[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.header("x-herald-delivery"),
        Some("0b7c6a2e-delivery")
    );
    assert_eq!(request.header("user-agent"), Some("herald-test/1"));
    let body = request.json();
    assert!(body["text"].as_str().unwrap().contains("&lt;!channel&gt;"));
    assert!(!request.body.windows(10).any(|w| w == b"<!channel>"));
    assert!(body["blocks"].as_array().unwrap().len() >= 2);
}

#[tokio::test]
async fn discord_message_arrives_with_mentions_disabled() {
    let receiver = Receiver::start().await;
    receiver.script(
        "/api/webhooks/1/abc",
        vec![Reply::status(204).with_body("")],
    );
    let sink = Sink::new(
        "chat",
        SinkTarget::Discord {
            url: url(&receiver, "/api/webhooks/1/abc"),
        },
    );
    let outcome = sender().send(&sink, &message()).await;
    assert_eq!(outcome.verdict, Verdict::Delivered);
    assert_eq!(outcome.http_status, Some(204));
    assert_eq!(outcome.response_excerpt, None);
    let request = &receiver.requests("/api/webhooks/1/abc")[0];
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.header("x-herald-delivery"),
        Some("0b7c6a2e-delivery")
    );
    let body = request.json();
    assert_eq!(body["allowed_mentions"], serde_json::json!({"parse": []}));
    assert_eq!(body["embeds"][0]["url"], "https://news.example/nk-iran");
    assert!(!String::from_utf8_lossy(&request.body).contains("@everyone"));
}

#[tokio::test]
async fn signed_webhook_verifies_with_the_shared_secret() {
    let receiver = Receiver::start().await;
    let outcome = sender()
        .send(&webhook(&receiver, "/hook", Some("s3cret")), &message())
        .await;
    assert_eq!(outcome.verdict, Verdict::Delivered);
    let request = &receiver.requests("/hook")[0];
    assert_eq!(request.header("x-herald-event"), Some("rule.matched"));
    assert_eq!(
        request.header("x-herald-delivery"),
        Some("0b7c6a2e-delivery")
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    let expected = format!("sha256={}", hmac_hex("s3cret", &request.body));
    assert_eq!(
        request.header("x-herald-signature"),
        Some(expected.as_str())
    );
    assert_ne!(
        request.header("x-herald-signature"),
        Some(format!("sha256={}", hmac_hex("other", &request.body)).as_str())
    );
    let body = request.json();
    assert_eq!(body["event"], "rule.matched");
    assert_eq!(body["delivery_id"], "0b7c6a2e-delivery");
    assert_eq!(body["alert_id"], 11);
    assert_eq!(body["rule"]["name"], "nk-iran");
    assert_eq!(body["article"]["id"], 5);
    assert_eq!(body["matched"], serde_json::json!(["north korea", "iran"]));
}

#[tokio::test]
async fn unsigned_webhook_has_no_signature_header() {
    let receiver = Receiver::start().await;
    sender()
        .send(&webhook(&receiver, "/hook", None), &message())
        .await;
    let request = &receiver.requests("/hook")[0];
    assert_eq!(request.header("x-herald-signature"), None);
    assert_eq!(request.header("x-herald-event"), Some("rule.matched"));
}

#[tokio::test]
async fn server_errors_are_retried_until_one_succeeds() {
    let receiver = Receiver::start().await;
    receiver.script(
        "/hook",
        vec![Reply::status(500), Reply::status(502), Reply::ok()],
    );
    let sender = sender();
    let sink = webhook(&receiver, "/hook", None);
    let first = sender.send(&sink, &message()).await;
    assert_retry(&first, None);
    assert_eq!(first.http_status, Some(500));
    assert_eq!(
        first.error.as_deref(),
        Some("HTTP 500 Internal Server Error")
    );
    assert_eq!(first.response_excerpt.as_deref(), Some("status 500"));
    assert_retry(&sender.send(&sink, &message()).await, None);
    assert_eq!(
        sender.send(&sink, &message()).await.verdict,
        Verdict::Delivered
    );
    // Every attempt is the same delivery, so the receiver can drop repeats.
    let ids: Vec<_> = receiver
        .requests("/hook")
        .iter()
        .map(|request| request.header("x-herald-delivery").unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["0b7c6a2e-delivery"; 3]);
}

#[tokio::test]
async fn rate_limit_is_retried_after_the_wait_the_receiver_asks() {
    let receiver = Receiver::start().await;
    receiver.script("/hook", vec![Reply::status(429).with_retry_after("2")]);
    let outcome = sender()
        .send(&webhook(&receiver, "/hook", None), &message())
        .await;
    assert_retry(&outcome, Some(Duration::from_secs(2)));
    assert_eq!(outcome.http_status, Some(429));
    assert_eq!(
        outcome.error.as_deref(),
        Some("HTTP 429 Too Many Requests (retry after 2s)")
    );
}

#[tokio::test]
async fn unavailable_with_retry_after_is_retried_after_that_wait() {
    let receiver = Receiver::start().await;
    receiver.script("/hook", vec![Reply::status(503).with_retry_after("120")]);
    let outcome = sender()
        .send(&webhook(&receiver, "/hook", None), &message())
        .await;
    assert_retry(&outcome, Some(Duration::from_secs(120)));
}

#[tokio::test]
async fn bad_request_is_permanent_with_the_answer_recorded() {
    let receiver = Receiver::start().await;
    receiver.script(
        "/services/T1/B1/X",
        vec![Reply::status(400).with_body("invalid_payload")],
    );
    let outcome = sender()
        .send(&slack(&receiver, "/services/T1/B1/X"), &message())
        .await;
    assert_eq!(outcome.verdict, Verdict::Permanent);
    assert_eq!(outcome.http_status, Some(400));
    assert_eq!(outcome.response_excerpt.as_deref(), Some("invalid_payload"));
    assert_eq!(outcome.error.as_deref(), Some("HTTP 400 Bad Request"));
}

#[tokio::test]
async fn long_error_page_is_recorded_as_a_short_excerpt() {
    let receiver = Receiver::start().await;
    let page = "é".repeat(5000);
    receiver.script("/hook", vec![Reply::status(422).with_body(&page)]);
    let outcome = sender()
        .send(&webhook(&receiver, "/hook", None), &message())
        .await;
    assert_eq!(outcome.verdict, Verdict::Permanent);
    assert_eq!(
        outcome.response_excerpt.as_deref(),
        Some("é".repeat(500).as_str())
    );
}

#[tokio::test]
async fn redirect_is_not_followed_and_is_permanent() {
    let receiver = Receiver::start().await;
    receiver.script(
        "/hook",
        vec![Reply::status(301).with_header("location", &receiver.url("/elsewhere"))],
    );
    let outcome = sender()
        .send(&webhook(&receiver, "/hook", Some("s3cret")), &message())
        .await;
    assert_eq!(outcome.verdict, Verdict::Permanent);
    assert_eq!(outcome.http_status, Some(301));
    assert!(receiver.requests("/elsewhere").is_empty());
}

#[tokio::test]
async fn receiver_down_is_retried_and_the_error_hides_the_url() {
    let receiver = Receiver::start().await;
    let sender = sender();
    let sink = slack(&receiver, "/services/T1/B1/SECRETTOKEN");
    assert_eq!(
        sender.send(&sink, &message()).await.verdict,
        Verdict::Delivered
    );
    receiver.stop().await;
    let outcome = sender.send(&sink, &message()).await;
    assert_retry(&outcome, None);
    assert_eq!(outcome.http_status, None);
    let error = outcome.error.unwrap();
    assert!(!error.contains("SECRETTOKEN"), "{error}");
    assert!(!error.contains("/services"), "{error}");
    assert_eq!(error, "connection refused");

    receiver.restart().await;
    assert_eq!(
        sender.send(&sink, &message()).await.verdict,
        Verdict::Delivered
    );
    assert_eq!(
        receiver
            .wait_for("/services/T1/B1/SECRETTOKEN", 2, WAIT)
            .await
            .len(),
        2
    );
}

#[tokio::test]
async fn slow_receiver_times_out_and_is_retried() {
    let receiver = Receiver::start().await;
    receiver.script("/hook", vec![Reply::ok().delayed(Duration::from_secs(3))]);
    let sender = Sender::new(
        Duration::from_millis(300),
        "herald-test/1",
        PrivateNetworks::default(),
    )
    .unwrap();
    let outcome = sender
        .send(&webhook(&receiver, "/hook", None), &message())
        .await;
    assert_retry(&outcome, None);
    assert_eq!(outcome.error.as_deref(), Some("timed out after 300ms"));
}

#[tokio::test]
async fn slack_sends_to_one_webhook_are_a_second_apart_but_others_are_not_held() {
    let receiver = Receiver::start().await;
    let sender = sender();
    let (a, b) = (slack(&receiver, "/slack/A"), slack(&receiver, "/slack/B"));
    let message = message();
    // Two messages for A at once, and one for B.
    let (first, second, other) = tokio::join!(
        sender.send(&a, &message),
        sender.send(&a, &message),
        sender.send(&b, &message),
    );
    for outcome in [first, second, other] {
        assert_eq!(outcome.verdict, Verdict::Delivered);
    }
    let to_a = receiver.wait_for("/slack/A", 2, WAIT).await;
    let to_b = receiver.wait_for("/slack/B", 1, WAIT).await;
    let (first, second) = (to_a[0].arrived, to_a[1].arrived);
    // Sends start a full second apart; what the receiver sees differs from that
    // only by network jitter, which on loopback is far below 50 ms.
    assert!(
        second.duration_since(first) >= Duration::from_millis(950),
        "{:?}",
        second.duration_since(first)
    );
    // B did not queue behind A's pacing.
    assert!(to_b[0].arrived < second, "B waited for A's slot");
}

#[tokio::test]
async fn log_sink_delivers_without_http() {
    let outcome = sender()
        .send(&Sink::new("default", SinkTarget::Log), &message())
        .await;
    assert_eq!(outcome.verdict, Verdict::Delivered);
    assert_eq!(outcome.http_status, None);
    assert_eq!(outcome.error, None);
}

#[tokio::test]
async fn deny_refuses_a_sink_on_a_loopback_address_without_connecting() {
    let receiver = Receiver::start().await;
    let sender = Sender::new(
        Duration::from_secs(5),
        "herald-test/1",
        PrivateNetworks::Deny,
    )
    .unwrap();
    let sink = webhook(&receiver, "/hooks/SECRETTOKEN", Some("s3cret"));

    let outcome = sender.send(&sink, &message()).await;

    assert_retry(&outcome, None);
    assert_eq!(outcome.http_status, None);
    assert_eq!(
        outcome.error.as_deref(),
        Some(
            "refused to connect to 127.0.0.1 (a loopback address): \
             set [fetch] private_networks = \"configured\" to permit"
        )
    );
    assert!(receiver.requests("/hooks/SECRETTOKEN").is_empty());
}

#[tokio::test]
async fn deny_refuses_a_sink_whose_name_resolves_to_loopback() {
    let receiver = Receiver::start().await;
    let port = url(&receiver, "/").port().unwrap();
    let sink = Sink::new(
        "chat",
        SinkTarget::Slack {
            url: Url::parse(&format!("http://localhost:{port}/services/T1/B1/X")).unwrap(),
        },
    );
    let sender = Sender::new(
        Duration::from_secs(5),
        "herald-test/1",
        PrivateNetworks::Deny,
    )
    .unwrap();

    let outcome = sender.send(&sink, &message()).await;

    assert_retry(&outcome, None);
    let error = outcome.error.unwrap();
    assert!(
        error.starts_with("refused to connect to localhost (") && error.contains("loopback"),
        "{error}"
    );
    assert!(!error.contains("/services"), "{error}");
    assert!(receiver.requests("/services/T1/B1/X").is_empty());
}

#[tokio::test]
async fn the_default_policy_and_allow_deliver_to_a_configured_loopback_sink() {
    let receiver = Receiver::start().await;
    for policy in [PrivateNetworks::Configured, PrivateNetworks::Allow] {
        let sender = Sender::new(Duration::from_secs(5), "herald-test/1", policy).unwrap();
        let outcome = sender
            .send(&webhook(&receiver, "/hook", None), &message())
            .await;
        assert_eq!(outcome.verdict, Verdict::Delivered, "{policy}: {outcome:?}");
    }
    assert_eq!(receiver.requests("/hook").len(), 2);
}

#[tokio::test]
async fn teams_receives_an_adaptive_card_with_feed_text_in_text_runs() {
    let receiver = Receiver::start().await;
    receiver.script("/workflows/abc", vec![Reply::status(202)]);
    let sink = Sink::new(
        "ops-teams",
        SinkTarget::Teams {
            url: url(&receiver, "/workflows/abc"),
        },
    );
    let outcome = sender().send(&sink, &message()).await;
    assert_eq!(outcome.verdict, Verdict::Delivered, "{outcome:?}");
    let received = receiver.wait_for("/workflows/abc", 1, WAIT).await;
    assert_eq!(
        received[0].header("x-herald-delivery"),
        Some("0b7c6a2e-delivery")
    );
    let body = received[0].json();
    assert_eq!(body["type"], "message");
    let card = &body["attachments"][0]["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(
        card["body"][0]["inlines"][0]["text"],
        "<!channel> North Korean delegation in Tehran"
    );
    assert_eq!(card["actions"][0]["url"], "https://news.example/nk-iran");
}

#[tokio::test]
async fn ntfy_publishes_json_to_the_server_root_with_topic_and_token() {
    let receiver = Receiver::start().await;
    let sink = Sink::new(
        "phone",
        SinkTarget::Ntfy {
            url: url(&receiver, "/newsdesk"),
            token: Some("tk_s3cret".to_owned()),
        },
    );
    let outcome = sender().send(&sink, &message()).await;
    assert_eq!(outcome.verdict, Verdict::Delivered, "{outcome:?}");
    let received = receiver.wait_for("/", 1, WAIT).await;
    assert_eq!(
        received[0].header("authorization"),
        Some("Bearer tk_s3cret")
    );
    let body = received[0].json();
    assert_eq!(body["topic"], "newsdesk");
    assert_eq!(
        body["title"],
        "<!channel> North Korean delegation in Tehran"
    );
    assert_eq!(body["click"], "https://news.example/nk-iran");
    assert!(body.get("markdown").is_none(), "{body}");
    assert!(receiver.requests("/newsdesk").is_empty());
}

fn telegram(receiver: &Receiver) -> Sink {
    Sink::new(
        "tg",
        SinkTarget::Telegram(herald::sinks::telegram::TelegramTarget {
            api_url: url(receiver, "/"),
            token: "123456:S3CRET".to_owned(),
            chat_id: "-1001".to_owned(),
        }),
    )
}

#[tokio::test]
async fn telegram_sends_escaped_html_to_the_bot_method() {
    let receiver = Receiver::start().await;
    let method = "/bot123456:S3CRET/sendMessage";
    receiver.script(method, vec![Reply::status(200).with_body(r#"{"ok":true}"#)]);
    let outcome = sender().send(&telegram(&receiver), &message()).await;
    assert_eq!(outcome.verdict, Verdict::Delivered, "{outcome:?}");
    let body = receiver.wait_for(method, 1, WAIT).await[0].json();
    assert_eq!(body["chat_id"], "-1001");
    assert_eq!(body["parse_mode"], "HTML");
    let text = body["text"].as_str().unwrap();
    assert!(
        text.starts_with(
            "<b><a href=\"https://news.example/nk-iran\">&lt;!channel&gt; North Korean delegation in Tehran</a></b>"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn telegram_floods_wait_as_asked_and_a_missing_chat_breaks_the_sink() {
    let receiver = Receiver::start().await;
    let method = "/bot123456:S3CRET/sendMessage";
    receiver.script(
        method,
        vec![
            Reply::status(429).with_body(
                r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 9","parameters":{"retry_after":9}}"#,
            ),
            Reply::status(400)
                .with_body(r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#),
        ],
    );
    let flood = sender().send(&telegram(&receiver), &message()).await;
    assert_retry(&flood, Some(Duration::from_secs(9)));
    let gone = sender().send(&telegram(&receiver), &message()).await;
    assert_eq!(gone.verdict, Verdict::Broken, "{gone:?}");
    for outcome in [&flood, &gone] {
        let shown = format!("{outcome:?}");
        assert!(!shown.contains("S3CRET"), "{shown}");
    }
    receiver.stop().await;
    let down = sender().send(&telegram(&receiver), &message()).await;
    let shown = format!("{down:?}");
    assert!(!shown.contains("S3CRET"), "{shown}");
}
