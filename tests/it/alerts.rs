//! The alert outbox end to end: feed server → herald → local webhook receiver, on
//! both backends.

use std::time::Duration;

use chrono::Utc;
use herald::domain::delivery::DeliveryStatus;

use crate::both_backends;
use crate::support::db::Backend;
use crate::support::feed_server::{FeedServer, Item, Route};
use crate::support::herald::TestHerald;
use crate::support::receiver::{Receiver, Reply};

const SEED_TITLE: &str = "North Korea's trade minister leads rare delegation to Tehran";
const SEED_BODY: &str = "<p>A North Korean delegation arrived in Tehran for talks with \
     IRAN's officials, a rare public exchange between two sanctioned nations.</p>";

/// Five different stories: the same text every day would be one story.
const DAY_BODIES: [&str; 5] = [
    "North Korea's envoy landed in Iran to open talks on shipping routes through the Gulf.",
    "Negotiators from North Korea and Iran argued over payment terms in a Tehran hotel.",
    "A fire at a Tehran depot halted the second session between Iran and North Korea.",
    "Talks resumed after a farmers' protest blocked the road to the Iran foreign ministry.",
    "North Korea and Iran signed four minor agreements on science before the envoy left.",
];

/// One clock reading for the whole test run, so that an item built twice is the
/// same item (its date is part of what makes it "changed").
static NOW: std::sync::LazyLock<chrono::DateTime<Utc>> = std::sync::LazyLock::new(Utc::now);

fn story(n: u32, title: &str, link: &str) -> Item {
    Item {
        guid: format!("guid-{n}"),
        link: link.into(),
        title: title.into(),
        description: SEED_BODY.into(),
        pub_date: Some(*NOW),
    }
}

fn quiet(n: u32) -> Item {
    let mut item = Item::numbered(n);
    item.pub_date = Some(*NOW);
    item
}

/// herald watching `feeds` with the nk-iran rule, alerting a slack sink and a signed
/// webhook on `receiver`; back catalogues already fetched.
async fn watching(
    backend: Backend,
    server: &FeedServer,
    receiver: &Receiver,
    feeds: &[&str],
) -> TestHerald {
    let mut config = format!(
        "[sinks.intel-slack]\ntype = \"slack\"\nurl = \"{}\"\n\n\
         [sinks.audit]\ntype = \"webhook\"\nurl = \"{}\"\nsecret = \"s3cret\"\n\n\
         [rules.nk-iran]\nquery = '\"North Korea\" Iran'\nsinks = [\"intel-slack\", \"audit\"]\n\n",
        receiver.url("/slack"),
        receiver.url("/hook"),
    );
    for path in feeds {
        server.set(path, Route::rss("Quiet", &[quiet(100)]));
        config.push_str(&format!("[[feeds]]\nurl = \"{}\"\n\n", server.url(path)));
    }
    let herald = TestHerald::start(backend, &config).await;
    herald.poll().await;
    herald
}

both_backends!(
    one_story_in_two_feeds_posts_one_slack_message,
    failing_receiver_is_retried_with_the_same_delivery_id,
    retry_after_is_obeyed_and_client_errors_are_dead_at_once,
    a_claim_whose_dispatcher_died_is_sent_after_its_lease_expires,
    feed_text_cannot_ping_or_link_from_slack,
    a_sink_down_for_an_hour_gets_every_alert_afterwards_in_order,
    a_webhook_may_have_several_alerts_in_flight_and_the_default_is_one,
);

async fn one_story_in_two_feeds_posts_one_slack_message(backend: Backend) {
    let (server, receiver) = (FeedServer::start().await, Receiver::start().await);
    let herald = watching(backend, &server, &receiver, &["/wire", "/paper"]).await;

    let link = "https://wire.example/nk-iran?utm_source=wire";
    server.set(
        "/wire",
        Route::rss("Wire", &[story(1, SEED_TITLE, link), quiet(100)]),
    );
    herald.poll().await;
    let report = herald.app.dispatcher.run_once(Utc::now()).await.unwrap();
    assert_eq!(report.delivered, 2, "{report:?}");

    let slack = receiver.requests("/slack");
    assert_eq!(slack.len(), 1);
    let text = slack[0].json().to_string();
    assert!(text.contains("nk-iran"), "{text}");
    assert!(
        text.contains("<https://wire.example/nk-iran"),
        "linked title: {text}"
    );
    assert!(text.contains("North Korea"), "{text}");

    let hook = &receiver.requests("/hook")[0];
    let body = hook.json();
    assert_eq!(body["event"], "rule.matched");
    assert_eq!(body["rule"]["name"], "nk-iran");
    assert_eq!(body["article"]["title"], SEED_TITLE);
    assert_eq!(
        hook.header("x-herald-delivery"),
        body["delivery_id"].as_str()
    );
    let expected = herald::sinks::webhook::signature("s3cret", &hook.body);
    assert_eq!(hook.header("x-herald-signature"), Some(expected.as_str()));

    // Polled again, and the same story in a second feed with other tracking
    // parameters: nothing new is sent.
    let reprint = "https://wire.example/nk-iran?utm_campaign=paper&fbclid=1";
    server.set(
        "/paper",
        Route::rss("Paper", &[story(7, SEED_TITLE, reprint), quiet(100)]),
    );
    herald.poll().await;
    let report = herald.app.dispatcher.run_once(Utc::now()).await.unwrap();
    assert_eq!(report.attempts(), 0, "{report:?}");
    assert_eq!(receiver.requests("/slack").len(), 1);
    let delivered = herald
        .db
        .store
        .deliveries(Some(DeliveryStatus::Delivered), 10)
        .await;
    assert_eq!(delivered.unwrap().len(), 2);
}

async fn failing_receiver_is_retried_with_the_same_delivery_id(backend: Backend) {
    let (server, receiver) = (FeedServer::start().await, Receiver::start().await);
    receiver.script(
        "/slack",
        vec![Reply::status(500), Reply::status(500), Reply::ok()],
    );
    let herald = watching(backend, &server, &receiver, &["/wire"]).await;
    server.set(
        "/wire",
        Route::rss("Wire", &[story(1, SEED_TITLE, "https://w.example/1")]),
    );
    herald.poll().await;

    let dispatcher = &herald.app.dispatcher;
    let first = dispatcher.run_once(Utc::now()).await.unwrap();
    assert_eq!((first.failed, first.delivered), (1, 1), "{first:?}");
    // Not due again until its backoff has passed.
    assert_eq!(dispatcher.run_once(Utc::now()).await.unwrap().attempts(), 0);
    let later = Utc::now() + chrono::Duration::hours(2);
    let second = dispatcher.run_once(later).await.unwrap();
    assert_eq!(
        second.failed,
        1,
        "{second:?} {:?}",
        herald.db.store.deliveries(None, 10).await
    );
    let even_later = Utc::now() + chrono::Duration::hours(4);
    let third = dispatcher.run_once(even_later).await.unwrap();
    assert_eq!(
        third.delivered,
        1,
        "{third:?} {:?}",
        herald.db.store.deliveries(None, 10).await
    );

    let requests = receiver.requests("/slack");
    assert_eq!(requests.len(), 3);
    let ids: Vec<_> = requests
        .iter()
        .map(|r| r.header("x-herald-delivery"))
        .collect();
    assert!(
        ids[0].is_some() && ids.iter().all(|id| *id == ids[0]),
        "{ids:?}"
    );
    let slack = herald.db.store.deliveries(None, 10).await.unwrap();
    let slack = slack.iter().find(|d| d.sink == "intel-slack").unwrap();
    assert_eq!(
        (slack.status, slack.attempts),
        (DeliveryStatus::Delivered, 3)
    );
}

async fn retry_after_is_obeyed_and_client_errors_are_dead_at_once(backend: Backend) {
    let (server, receiver) = (FeedServer::start().await, Receiver::start().await);
    receiver.script("/slack", vec![Reply::status(429).with_retry_after("120")]);
    receiver.script(
        "/hook",
        vec![Reply::status(400).with_body("invalid_payload")],
    );
    let herald = watching(backend, &server, &receiver, &["/wire"]).await;
    server.set(
        "/wire",
        Route::rss("Wire", &[story(1, SEED_TITLE, "https://w.example/1")]),
    );
    herald.poll().await;

    let before = Utc::now();
    let report = herald.app.dispatcher.run_once(before).await.unwrap();
    assert_eq!((report.failed, report.dead), (1, 1), "{report:?}");
    let deliveries = herald.db.store.deliveries(None, 10).await.unwrap();
    let slack = deliveries.iter().find(|d| d.sink == "intel-slack").unwrap();
    assert_eq!(slack.status, DeliveryStatus::Failed);
    assert_eq!(slack.last_http_status, Some(429));
    assert!(slack.next_attempt_at >= before + chrono::Duration::seconds(120));
    let hook = deliveries.iter().find(|d| d.sink == "audit").unwrap();
    assert_eq!(
        (hook.status, hook.last_http_status),
        (DeliveryStatus::Dead, Some(400))
    );
    assert!(
        hook.response_excerpt
            .as_deref()
            .unwrap()
            .contains("invalid_payload")
    );

    // A dead delivery can be queued again by hand, and then goes out.
    receiver.script("/hook", vec![Reply::ok()]);
    assert_eq!(
        herald
            .db
            .store
            .retry_deliveries(Some(hook.id), Utc::now())
            .await
            .unwrap(),
        1
    );
    let report = herald.app.dispatcher.run_once(Utc::now()).await.unwrap();
    assert_eq!(report.delivered, 1, "{report:?}");
    // Delivered now: a second retry queues nothing, and the state says why.
    let store = &herald.db.store;
    assert_eq!(
        store
            .retry_deliveries(Some(hook.id), Utc::now())
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store.delivery_status(hook.id).await.unwrap(),
        Some(DeliveryStatus::Delivered)
    );
    assert_eq!(store.delivery_status(hook.id + 1000).await.unwrap(), None);
}

async fn a_claim_whose_dispatcher_died_is_sent_after_its_lease_expires(backend: Backend) {
    let (server, receiver) = (FeedServer::start().await, Receiver::start().await);
    let herald = watching(backend, &server, &receiver, &["/wire"]).await;
    server.set(
        "/wire",
        Route::rss("Wire", &[story(1, SEED_TITLE, "https://w.example/1")]),
    );
    herald.poll().await;

    // Another process claims both deliveries, then dies before recording anything.
    let now = Utc::now();
    let lease_until = now + chrono::Duration::seconds(60);
    let store = &herald.db.store;
    let claimed = store
        .claim_deliveries("dead-process", now, lease_until, now, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    let dispatcher = &herald.app.dispatcher;
    assert_eq!(
        dispatcher.run_once(now).await.unwrap().attempts(),
        0,
        "still leased"
    );

    let after_lease = lease_until + chrono::Duration::seconds(1);
    assert_eq!(dispatcher.run_once(after_lease).await.unwrap().delivered, 2);
    let sent = receiver.requests("/slack");
    assert_eq!(sent.len(), 1);
    let slack = claimed.iter().find(|d| d.sink == "intel-slack").unwrap();
    assert_eq!(
        sent[0].header("x-herald-delivery"),
        Some(slack.delivery_id.as_str())
    );
    // The dead process's late write cannot overwrite the result.
    let late = herald::domain::delivery::AttemptRecord {
        at: now,
        http_status: Some(500),
        error: Some("late".into()),
        response_excerpt: None,
        latency_ms: 1,
        status: DeliveryStatus::Failed,
        next_attempt_at: now,
    };
    assert!(
        !store
            .record_attempt(slack.id, "dead-process", &late)
            .await
            .unwrap()
    );
}

async fn feed_text_cannot_ping_or_link_from_slack(backend: Backend) {
    let (server, receiver) = (FeedServer::start().await, Receiver::start().await);
    let herald = watching(backend, &server, &receiver, &["/wire"]).await;
    let title = "<!channel> URGENT <https://evil.example|click> North Korea Iran <@U123>";
    server.set(
        "/wire",
        Route::rss("Wire", &[story(1, title, "https://w.example/1")]),
    );
    herald.poll().await;
    herald.app.dispatcher.run_once(Utc::now()).await.unwrap();

    let slack = receiver.wait_for("/slack", 1, Duration::from_secs(5)).await;
    let body = String::from_utf8_lossy(&slack[0].body).to_string();
    for forbidden in ["<!channel>", "<@U123>", "<https://evil.example"] {
        assert!(!body.contains(forbidden), "{forbidden} in {body}");
    }
    assert!(body.contains("URGENT"), "{body}");
    assert!(body.contains("&lt;@U123&gt;"), "{body}");
}

async fn a_sink_down_for_an_hour_gets_every_alert_afterwards_in_order(backend: Backend) {
    let (server, receiver) = (FeedServer::start().await, Receiver::start().await);
    let herald = watching(backend, &server, &receiver, &["/wire"]).await;
    let dispatcher = &herald.app.dispatcher;
    let store = &herald.db.store;
    receiver.stop().await;

    // Five stories over the hour the receiver is down; the dispatcher keeps trying.
    let outage_began = Utc::now();
    let mut items = vec![quiet(100)];
    for (n, body) in (1..=5u32).zip(DAY_BODIES) {
        let title = format!("North Korea and Iran talks, day {n}");
        let mut day = story(n, &title, &format!("https://w.example/day-{n}"));
        day.description = body.into();
        items.insert(0, day);
        server.set("/wire", Route::rss("Wire", &items));
        herald.poll().await;
        let during = outage_began + chrono::Duration::minutes(i64::from(n) * 10);
        let report = dispatcher.run_once(during).await.unwrap();
        assert_eq!(report.delivered, 0, "{report:?}");
        assert!(
            report.failed <= 2,
            "only each sink's oldest is tried: {report:?}"
        );
    }
    let open = store.deliveries(None, 100).await.unwrap();
    assert_eq!(open.len(), 10, "five alerts, two sinks each");
    assert!(open.iter().all(|d| d.status != DeliveryStatus::Dead));
    let tried: Vec<_> = open.iter().filter(|d| d.attempts > 0).collect();
    assert_eq!(tried.len(), 2, "the younger ones wait behind: {open:?}");

    receiver.restart().await;
    let back = outage_began + chrono::Duration::hours(1);
    let report = dispatcher.run_once(back).await.unwrap();
    assert_eq!(report.delivered, 10, "{report:?}");

    let expected: Vec<String> = (1..=5)
        .map(|n| format!("North Korea and Iran talks, day {n}"))
        .collect();
    let hook_titles: Vec<String> = receiver
        .requests("/hook")
        .iter()
        .map(|r| r.json()["article"]["title"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(hook_titles, expected, "in order of creation");
    let slack_texts: Vec<String> = receiver
        .requests("/slack")
        .iter()
        .map(|r| r.json().to_string())
        .collect();
    assert_eq!(slack_texts.len(), 5);
    for (text, title) in slack_texts.iter().zip(&expected) {
        assert!(text.contains(title.as_str()), "{title} expected in {text}");
    }
}

/// The most requests any window of `answer` (each request's own answering
/// time) saw arrive: how many were in flight at once.
fn most_in_flight(
    requests: &[crate::support::receiver::ReceivedRequest],
    answer: Duration,
) -> usize {
    requests
        .iter()
        .map(|first| {
            requests
                .iter()
                .filter(|other| {
                    other.arrived >= first.arrived && other.arrived < first.arrived + answer
                })
                .count()
        })
        .max()
        .unwrap_or(0)
}

async fn a_webhook_may_have_several_alerts_in_flight_and_the_default_is_one(backend: Backend) {
    let (server, receiver) = (FeedServer::start().await, Receiver::start().await);
    let answer = Duration::from_millis(300);
    for path in ["/strict", "/fast"] {
        receiver.script(path, vec![Reply::ok().delayed(answer)]);
    }
    server.set("/wire", Route::rss("Wire", &[]));
    let config = format!(
        "[sinks.strict]\ntype = \"webhook\"\nurl = \"{}\"\n\n\
         [sinks.fast]\ntype = \"webhook\"\nurl = \"{}\"\nmax_in_flight = 4\n\n\
         [rules.iran]\nquery = 'Iran'\nsinks = [\"strict\", \"fast\"]\n\n\
         [[feeds]]\nurl = \"{}\"\n",
        receiver.url("/strict"),
        receiver.url("/fast"),
        server.url("/wire"),
    );
    let herald = TestHerald::start(backend, &config).await;
    herald.poll().await;
    let topics = [
        "oil", "grain", "copper", "rail", "wheat", "ships", "drones", "cotton",
    ];
    let items: Vec<Item> = topics
        .iter()
        .enumerate()
        .map(|(n, topic)| Item {
            guid: format!("g{n}"),
            link: format!("https://news.example/{topic}"),
            title: format!("Iran {topic} report {n}"),
            description: format!("<p>Iran and its {topic} trade, figures {n}.</p>"),
            pub_date: Some(Utc::now()),
        })
        .collect();
    server.set("/wire", Route::rss("Wire", &items));
    herald.poll().await;
    let report = herald.app.dispatch_once().await.unwrap();
    assert_eq!(report.delivered, 16, "{report:?}");

    let strict = receiver.requests("/strict");
    let fast = receiver.requests("/fast");
    assert_eq!((strict.len(), fast.len()), (8, 8));
    assert_eq!(
        most_in_flight(&strict, answer),
        1,
        "the default keeps one in flight"
    );
    let most = most_in_flight(&fast, answer);
    assert!((2..=4).contains(&most), "{most} in flight at once");
}
