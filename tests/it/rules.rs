//! Watch rules on the ingest path and over stored history, on both backends.

use std::collections::HashMap;

use chrono::Utc;
use herald::rules::{Rule, RuleQuery};
use herald::search::{self, Scan};

use crate::both_backends;
use crate::support::db::Backend;
use crate::support::feed_server::{FeedServer, Item, Route};
use crate::support::herald::TestHerald;

const SEED_TITLE: &str = "North Korea's trade minister leads rare delegation to Tehran";
const SEED_BODY: &str = "<p>A North Korean delegation led by its minister of external economic \
     relations arrived in Tehran for talks with IRAN's officials, a rare public exchange \
     between the two heavily sanctioned nations.</p>";

/// One clock reading for the whole test run, so that an item built twice is the
/// same item (its date is part of what makes it "changed").
static NOW: std::sync::LazyLock<chrono::DateTime<Utc>> = std::sync::LazyLock::new(Utc::now);

fn item(n: u32, title: &str, description: &str) -> Item {
    Item {
        guid: format!("story-{n}"),
        link: format!("https://wire.example/world/{n}?utm_source=rss"),
        title: title.into(),
        description: description.into(),
        pub_date: Some(*NOW - chrono::Duration::minutes(i64::from(n))),
    }
}

fn unrelated(n: u32) -> Item {
    item(
        n,
        &format!("Markets close higher, day {n}"),
        "<p>Stocks rose.</p>",
    )
}

fn config(feeds: &[(String, &str)]) -> String {
    let mut text = String::from(
        "[sinks.log]\ntype = \"log\"\n\n\
         [rules.nk-iran]\nquery = '\"North Korea\" Iran'\nsinks = [\"log\"]\n\n\
         [rules.world-markets]\nquery = 'markets'\nsinks = [\"log\"]\ntags = [\"world\"]\n\n",
    );
    for (url, tags) in feeds {
        text.push_str(&format!("[[feeds]]\nurl = \"{url}\"\ntags = [{tags}]\n\n"));
    }
    text
}

both_backends!(
    a_new_matching_article_records_one_alert_and_edits_or_reprints_do_not,
    the_back_catalogue_and_old_items_are_recorded_but_held_back,
    tag_scoped_rules_fire_only_on_tagged_feeds,
    search_and_backtest_read_stored_articles,
);

async fn a_new_matching_article_records_one_alert_and_edits_or_reprints_do_not(backend: Backend) {
    let server = FeedServer::start().await;
    server.set("/wire", Route::rss("Wire", &[unrelated(10)]));
    server.set("/paper", Route::rss("Paper", &[unrelated(11)]));
    let herald = TestHerald::start(
        backend,
        &config(&[(server.url("/wire"), ""), (server.url("/paper"), "")]),
    )
    .await;
    herald.poll().await; // back catalogues

    server.set(
        "/wire",
        Route::rss("Wire", &[item(1, SEED_TITLE, SEED_BODY), unrelated(10)]),
    );
    let reports = herald.poll().await;
    assert_eq!(reports[0].new, 1);
    assert_eq!(reports[0].alerts, 1, "{reports:?}");
    let alerts = herald.db.store.alerts(10).await.unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].rule, "nk-iran");
    assert_eq!(alerts[0].suppressed, None);
    assert_eq!(alerts[0].matched, vec!["\"north korea\"", "iran"]);
    let article = herald
        .db
        .store
        .article(alerts[0].article_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(article.title, SEED_TITLE);
    assert_eq!(article.story_id, Some(alerts[0].story_id));

    // An edit updates the article; it does not alert again.
    let mut edited = item(1, SEED_TITLE, SEED_BODY);
    edited.title = format!("UPDATE: {SEED_TITLE}");
    server.set("/wire", Route::rss("Wire", &[edited, unrelated(10)]));
    // The same story in another feed, with other tracking parameters: no new alert.
    let mut reprint = item(1, SEED_TITLE, SEED_BODY);
    reprint.guid = "paper-77".into();
    reprint.link = "https://wire.example/world/1?utm_campaign=paper&fbclid=x".into();
    server.set("/paper", Route::rss("Paper", &[reprint, unrelated(11)]));
    let reports = herald.poll().await;
    assert_eq!(reports[0].updated, 1, "{reports:?}");
    assert_eq!(reports[1].merged, 1, "{reports:?}");
    assert_eq!(reports.iter().map(|r| r.alerts).sum::<usize>(), 0);
    assert_eq!(herald.db.store.alerts(10).await.unwrap().len(), 1);
}

/// No alert recorded and no delivery queued: what `herald alerts` shows empty.
async fn assert_nothing_alerted_or_queued(herald: &TestHerald) {
    assert!(herald.db.store.alerts(10).await.unwrap().is_empty());
    assert!(
        herald
            .db
            .store
            .deliveries(None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn the_back_catalogue_and_old_items_are_recorded_but_held_back(backend: Backend) {
    let server = FeedServer::start().await;
    server.set(
        "/wire",
        Route::rss("Wire", &[item(1, SEED_TITLE, SEED_BODY)]),
    );
    let herald = TestHerald::start(backend, &config(&[(server.url("/wire"), "")])).await;
    let first = herald.poll_one().await;
    // The hit is counted, but nothing is queued for delivery.
    assert_eq!((first.new, first.alerts), (1, 1));
    assert_nothing_alerted_or_queued(&herald).await;

    // Published three days ago: older than alerts.max_age (48h).
    let mut old = item(2, "North Korea and Iran sign a deal", "<p>Old news.</p>");
    old.pub_date = Some(Utc::now() - chrono::Duration::days(3));
    server.set(
        "/wire",
        Route::rss("Wire", &[old.clone(), item(1, SEED_TITLE, SEED_BODY)]),
    );
    let second = herald.poll_one().await;
    assert_eq!((second.new, second.alerts), (1, 1));
    assert!(herald.db.store.alerts(10).await.unwrap().is_empty());

    // A fresh copy of the held-back story under another URL is the same story:
    // the rule counts as fired on it, so it stays silent.
    let mut copy = item(3, SEED_TITLE, SEED_BODY);
    copy.link = "https://paper.example/nk-iran".into();
    server.set(
        "/wire",
        Route::rss("Wire", &[copy, old, item(1, SEED_TITLE, SEED_BODY)]),
    );
    let third = herald.poll_one().await;
    assert_eq!(
        (third.new, third.reprints, third.alerts),
        (1, 1, 0),
        "{third:?}"
    );
    assert_nothing_alerted_or_queued(&herald).await;
}

async fn tag_scoped_rules_fire_only_on_tagged_feeds(backend: Backend) {
    let server = FeedServer::start().await;
    server.set("/world", Route::rss("World", &[unrelated(20)]));
    server.set("/local", Route::rss("Local", &[unrelated(21)]));
    let herald = TestHerald::start(
        backend,
        &config(&[
            (server.url("/world"), "\"world\""),
            (server.url("/local"), "\"local\""),
        ]),
    )
    .await;
    let reports = herald.poll().await;
    assert_eq!(
        (reports[0].alerts, reports[1].alerts),
        (1, 0),
        "{reports:?}"
    );
    // The first fetch was each feed's back catalogue; new items alert.
    server.set(
        "/world",
        Route::rss("World", &[unrelated(22), unrelated(20)]),
    );
    server.set(
        "/local",
        Route::rss("Local", &[unrelated(23), unrelated(21)]),
    );
    let reports = herald.poll().await;
    assert_eq!(
        (reports[0].alerts, reports[1].alerts),
        (1, 0),
        "{reports:?}"
    );
    let alerts = herald.db.store.alerts(10).await.unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].rule, "world-markets");
}

async fn search_and_backtest_read_stored_articles(backend: Backend) {
    let server = FeedServer::start().await;
    let mut iranian = item(
        3,
        "Iranian film wins award",
        "<p>No mention of the north.</p>",
    );
    iranian.pub_date = Some(Utc::now() - chrono::Duration::hours(2));
    let mut old = item(
        4,
        "North Korea and Iran, a history",
        "<p>Archive piece.</p>",
    );
    old.pub_date = Some(Utc::now() - chrono::Duration::days(40));
    server.set(
        "/wire",
        Route::rss(
            "Wire",
            &[item(1, SEED_TITLE, SEED_BODY), iranian, old, unrelated(5)],
        ),
    );
    let herald = TestHerald::start(backend, &config(&[(server.url("/wire"), "\"world\"")])).await;
    assert_eq!(herald.poll_one().await.new, 4);
    let feeds = herald.app.feed_infos().await.unwrap();

    let find = |query: &str, days: i64, limit: Option<usize>| {
        let rule = Rule {
            name: "q".into(),
            query: RuleQuery::parse(query).unwrap(),
            tags: Vec::new(),
        };
        let scan = Scan {
            since: Utc::now() - chrono::Duration::days(days),
            limit,
            after: None,
        };
        let (store, feeds) = (herald.db.store.clone(), feeds.clone());
        async move {
            let mut scanned = 0;
            let found = search::matching_articles(&store, rule, &feeds, scan, || scanned += 1)
                .await
                .unwrap();
            let mut titles = Vec::new();
            for m in found {
                titles.push(store.article(m.article_id).await.unwrap().unwrap().title);
            }
            (titles, scanned)
        }
    };
    let (titles, scanned) = find("\"North Korea\" Iran", 7, None).await;
    assert_eq!(titles, vec![SEED_TITLE]);
    assert_eq!(scanned, 3, "the 40-day-old article is outside --since 7d");
    let (titles, _) = find("\"North Korea\" Iran", 60, None).await;
    assert_eq!(titles.len(), 2);
    let (titles, _) = find("Iran*", 7, None).await;
    assert_eq!(titles, vec![SEED_TITLE, "Iranian film wins award"]);
    let (titles, _) = find("Iran*", 7, Some(1)).await;
    assert_eq!(titles, vec![SEED_TITLE], "newest first, limited");
    let (titles, _) = find("tag:world title:markets", 7, None).await;
    assert_eq!(titles, vec!["Markets close higher, day 5"]);
    let (titles, _) = find("feed:wire Tehran", 7, None).await;
    assert_eq!(titles, vec![SEED_TITLE], "the feed's own title is Wire");
    let (titles, _) = find("feed:paper Tehran", 7, None).await;
    assert_eq!(titles, Vec::<String>::new());
    let _: HashMap<i64, _> = feeds;
}
