//! Stories on the ingest path, on both backends: reprints under other URLs join
//! the story of the article they copy, alerts are once per (rule, story), and
//! `herald stories` shows where a story ran.

use chrono::{DateTime, Duration, Utc};

use crate::both_backends;
use crate::support::db::Backend;
use crate::support::feed_server::{FeedServer, Item, Route};
use crate::support::herald::TestHerald;
use crate::support::process;
use crate::support::receiver::Receiver;

/// One clock reading for the whole run, so an item built twice is the same item.
static NOW: std::sync::LazyLock<DateTime<Utc>> = std::sync::LazyLock::new(Utc::now);

const WIRE_TITLE: &str = "North Korean delegation travels to Iran for trade talks";
const WIRE_BODY: &str = "A North Korean delegation led by the minister of external economic \
    relations arrived in Tehran on Sunday for three days of talks on trade and science, \
    state media in both countries reported. The visit is the first by a cabinet \
    minister from North Korea to Iran in more than five years. The two governments signed a \
    memorandum on technical cooperation in 2019 but have announced few projects since. \
    The delegation is expected to meet the Iranian foreign minister and visit an \
    industrial fair outside the capital before returning to Pyongyang on Wednesday.";

/// How outlets reprint a wire story: their own URL and headline, a dateline and
/// a byline, the last sentence dropped, a sentence of their own added.
fn reprinted_body(extra: &str) -> String {
    let cut = WIRE_BODY
        .rfind(" The delegation")
        .unwrap_or(WIRE_BODY.len());
    format!(
        "DUBAI, Jan 5 (Gulf Daily) - By Staff Writer. {} {extra}",
        &WIRE_BODY[..cut]
    )
}

const MISSILE_TITLE: &str = "North Korea test-fires a missile as Iran watches";
const MISSILE_BODY: &str = "North Korea fired a short-range ballistic missile into the sea \
    off its east coast early on Monday, the South Korean military said, the third launch \
    this month. Japan's coast guard warned ships to stay clear of the area. Analysts said \
    the test was timed to coincide with joint drills by the United States and South Korea, \
    while officials in Iran, which has bought missile technology from Pyongyang in the \
    past, made no comment on the launch.";

fn item(guid: &str, link: &str, title: &str, body: &str, minutes_ago: i64) -> Item {
    Item {
        guid: guid.into(),
        link: link.into(),
        title: title.into(),
        description: format!("<p>{body}</p>"),
        pub_date: Some(*NOW - Duration::minutes(minutes_ago)),
    }
}

/// The wire's own copy of the delegation story.
fn wire(guid: &str, minutes_ago: i64) -> Item {
    item(
        guid,
        "https://wire.example/nk-iran",
        WIRE_TITLE,
        WIRE_BODY,
        minutes_ago,
    )
}

/// Another event about the same countries.
fn missile(guid: &str, minutes_ago: i64) -> Item {
    item(
        guid,
        "https://agg.example/missile",
        MISSILE_TITLE,
        MISSILE_BODY,
        minutes_ago,
    )
}

/// An item of no interest, distinct per feed (a shared link would make the
/// feeds its outlets too).
fn quiet(feed: &str) -> Item {
    item(
        "quiet",
        &format!("https://quiet.example{feed}"),
        "Weather stays mild",
        "Mild.",
        600,
    )
}

fn config(feeds: &[String], slack: &str) -> String {
    let mut text = format!(
        "[sinks.log]\ntype = \"log\"\n\n\
         [sinks.desk]\ntype = \"slack\"\nurl = \"{slack}\"\n\n\
         [rules.nk-iran]\nquery = '\"North Korea\" Iran'\nsinks = [\"log\"]\n\n\
         [rules.oil]\nquery = 'oil'\nsinks = [\"desk\"]\n\n",
    );
    for (n, url) in feeds.iter().enumerate() {
        text.push_str(&format!(
            "[[feeds]]\nurl = \"{url}\"\nname = \"Outlet {n}\"\n\n"
        ));
    }
    text
}

/// herald watching `/wire`, `/paper` and `/aggregator`, back catalogues fetched.
async fn watching(backend: Backend, server: &FeedServer, receiver: &Receiver) -> TestHerald {
    let paths = ["/wire", "/paper", "/aggregator"];
    for path in paths {
        server.set(path, Route::rss("Quiet", &[quiet(path)]));
    }
    let urls: Vec<String> = paths.iter().map(|p| server.url(p)).collect();
    let herald = TestHerald::start(backend, &config(&urls, &receiver.url("/slack"))).await;
    herald.poll().await;
    herald
}

async fn story_of(herald: &TestHerald, link_part: &str) -> i64 {
    let alerts = herald.db.store.alerts(100).await.unwrap();
    for alert in alerts {
        let article = herald.db.store.article(alert.article_id).await.unwrap();
        if let Some(article) = article
            && article
                .url
                .as_deref()
                .is_some_and(|u| u.contains(link_part))
        {
            return article.story_id.unwrap();
        }
    }
    panic!("no alerted article with a link containing {link_part}")
}

both_backends!(
    a_reprint_joins_the_story_and_alerts_only_for_rules_the_story_had_not_fired,
    copies_in_one_document_are_one_story,
    a_feed_repeating_a_title_next_day_starts_a_new_story,
);

async fn a_reprint_joins_the_story_and_alerts_only_for_rules_the_story_had_not_fired(
    backend: Backend,
) {
    let (server, receiver) = (FeedServer::start().await, Receiver::start().await);
    let herald = watching(backend, &server, &receiver).await;

    server.set(
        "/wire",
        Route::rss("Wire", &[wire("w1", 30), quiet("/wire")]),
    );
    let reports = herald.poll().await;
    assert_eq!((reports[0].new, reports[0].alerts), (1, 1), "{reports:?}");
    let story = story_of(&herald, "wire.example").await;

    // Reprinted under another URL and headline: the same story, so nk-iran is
    // not sent again; the paper's added sentence fires `oil`, which the story
    // had not fired, so that one alerts.
    let reprint = item(
        "p1",
        "https://paper.example/world/2026/01/05/n-korea-iran",
        "UPDATE: N. Korea sends trade delegation to Tehran",
        &reprinted_body("Oil shipments were also on the agenda, officials said."),
        20,
    );
    server.set("/paper", Route::rss("Paper", &[reprint, quiet("/paper")]));
    let reports = herald.poll().await;
    let paper = &reports[1];
    assert_eq!((paper.new, paper.reprints), (1, 1), "{reports:?}");
    assert_eq!(paper.alerts, 1, "{reports:?}");
    let alerts = herald.db.store.alerts(10).await.unwrap();
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(alerts[0].rule, "oil");
    assert_eq!(alerts[0].story_id, story);
    let reprint = herald
        .db
        .store
        .article(alerts[0].article_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reprint.story_id, Some(story));
    assert!(reprint.url.unwrap().contains("paper.example"));
    // Its Slack message says where else the story ran.
    herald.app.dispatcher.run_once(Utc::now()).await.unwrap();
    let slack = receiver
        .wait_for("/slack", 1, std::time::Duration::from_secs(5))
        .await;
    let body = String::from_utf8_lossy(&slack[0].body).to_string();
    assert!(body.contains("also reported by 1 other outlet"), "{body}");

    // A different event about the same countries is another story, and alerts.
    server.set(
        "/aggregator",
        Route::rss("Aggregator", &[missile("a1", 10), quiet("/aggregator")]),
    );
    let reports = herald.poll().await;
    let aggregator = &reports[2];
    assert_eq!(
        (aggregator.new, aggregator.reprints, aggregator.alerts),
        (1, 0, 1),
        "{reports:?}"
    );
    let missile = story_of(&herald, "agg.example").await;
    assert_ne!(missile, story);

    // `herald stories` lists the reprinted story with both outlets.
    let dir = herald.config_path.parent().unwrap().to_owned();
    let url = herald.db.url.clone();
    let output = tokio::task::spawn_blocking(move || {
        process::herald(&dir, &url, &["stories", "--min-outlets", "2", "--json"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["id"], story);
    assert_eq!(lines[0]["title"], WIRE_TITLE);
    assert_eq!(lines[0]["articles"], 2);
    let outlets: Vec<&str> = lines[0]["outlets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(outlets, ["Outlet 0", "Outlet 1"]);
}

async fn copies_in_one_document_are_one_story(backend: Backend) {
    let (server, receiver) = (FeedServer::start().await, Receiver::start().await);
    let herald = watching(backend, &server, &receiver).await;
    // An aggregator carrying the wire copy and a reprint in one document.
    server.set(
        "/aggregator",
        Route::rss(
            "Aggregator",
            &[
                wire("a1", 30),
                item(
                    "a2",
                    "https://paper.example/nk-iran",
                    "N. Korean ministers in Tehran",
                    &reprinted_body(""),
                    25,
                ),
                missile("a3", 20),
                quiet("/aggregator"),
            ],
        ),
    );
    let reports = herald.poll().await;
    let aggregator = &reports[2];
    assert_eq!(aggregator.new, 3, "{reports:?}");
    assert_eq!(aggregator.reprints, 1, "{reports:?}");
    // One nk-iran alert for the delegation story, one for the missile story.
    assert_eq!(aggregator.alerts, 2, "{reports:?}");
    let stories = herald
        .db
        .store
        .stories(*NOW - Duration::hours(1), 1, 10)
        .await
        .unwrap();
    let delegation = stories.iter().find(|s| s.title == WIRE_TITLE).unwrap();
    assert_eq!(delegation.articles, 2, "{stories:?}");
    let missile = stories.iter().find(|s| s.title == MISSILE_TITLE).unwrap();
    assert_eq!(missile.articles, 1, "{stories:?}");
    // Each story of the page lists its own outlets.
    for story in [delegation, missile] {
        let outlets: Vec<&str> = story.outlets.iter().map(|o| o.url.as_str()).collect();
        assert_eq!(outlets, [server.url("/aggregator")], "{stories:?}");
    }
}

async fn a_feed_repeating_a_title_next_day_starts_a_new_story(backend: Backend) {
    let (server, receiver) = (FeedServer::start().await, Receiver::start().await);
    let herald = watching(backend, &server, &receiver).await;
    let briefing = |guid: &str, minutes_ago: i64| {
        item(
            guid,
            &format!("https://wire.example/briefing/{guid}"),
            "Morning briefing: North Korea and Iran",
            WIRE_BODY,
            minutes_ago,
        )
    };
    // Yesterday's briefing and today's, with the same text, in one feed.
    server.set(
        "/wire",
        Route::rss("Wire", &[briefing("b1", 26 * 60), briefing("b2", 10)]),
    );
    let reports = herald.poll().await;
    assert_eq!(
        (reports[0].new, reports[0].reprints, reports[0].alerts),
        (2, 0, 2),
        "{reports:?}"
    );
    // The same text from another outlet within hours is the same story.
    server.set(
        "/paper",
        Route::rss("Paper", &[briefing("p1", 5), quiet("/paper")]),
    );
    let reports = herald.poll().await;
    assert_eq!(
        (reports[1].new, reports[1].reprints, reports[1].alerts),
        (1, 1, 0),
        "{reports:?}"
    );
}
