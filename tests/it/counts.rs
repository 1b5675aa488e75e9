//! Counts kept by the database instead of recounted: each feed's articles, feeds
//! and deliveries by status. Whatever happens to the rows — ingest, merges,
//! dispatch, retries, deletes by hand or by cascade, rows older than the
//! counters — the kept counts equal a fresh `count(*)`, and so does /metrics.

use std::path::Path;

use chrono::Utc;
use herald::domain::delivery::DeliveryStatus;
use herald::domain::feed::FeedStatus;
use herald::store::Store;
use sqlx::{Connection, Executor, PgConnection, SqliteConnection};

use crate::both_backends;
use crate::support::db::{Backend, TestDb, create_postgres_database};
use crate::support::feed_server::{FeedServer, Item, Route};
use crate::support::herald::TestHerald;
use crate::support::receiver::{Receiver, Reply};

both_backends!(
    feed_article_counts_follow_inserts_merges_and_deletes,
    status_counts_and_metrics_equal_a_fresh_count_through_dispatch_retry_and_delete,
    rows_stored_before_the_counters_existed_are_counted,
);

/// Each feed's (id, articles) by `count(*)` over its sources.
async fn recounted_articles(url: &str) -> Vec<(i64, i64)> {
    let sql = "SELECT f.id, (SELECT count(*) FROM article_sources s WHERE s.feed_id = f.id)
               FROM feeds f ORDER BY f.id";
    if url.starts_with("sqlite:") {
        let mut connection = SqliteConnection::connect(url).await.unwrap();
        sqlx::query_as(sql)
            .fetch_all(&mut connection)
            .await
            .unwrap()
    } else {
        let mut connection = PgConnection::connect(url).await.unwrap();
        sqlx::query_as(sql)
            .fetch_all(&mut connection)
            .await
            .unwrap()
    }
}

/// Each feed's (id, articles) as herald shows it (`herald feeds`, claims).
async fn shown_articles(store: &Store) -> Vec<(i64, i64)> {
    let mut feeds: Vec<(i64, i64)> = store
        .feeds()
        .await
        .unwrap()
        .iter()
        .map(|feed| (feed.id, feed.articles))
        .collect();
    feeds.sort();
    feeds
}

async fn assert_article_counts(db: &TestDb, step: &str) -> Vec<(i64, i64)> {
    assert_articles_of(&db.url, &db.store, step).await
}

async fn assert_articles_of(url: &str, store: &Store, step: &str) -> Vec<(i64, i64)> {
    let recounted = recounted_articles(url).await;
    assert_eq!(shown_articles(store).await, recounted, "after {step}");
    recounted
}

async fn feed_article_counts_follow_inserts_merges_and_deletes(backend: Backend) {
    let server = FeedServer::start().await;
    server.set(
        "/wire",
        Route::rss(
            "Wire",
            &[Item::numbered(1), Item::numbered(2), Item::numbered(3)],
        ),
    );
    // Article 2 under the paper's own guid: the same article, a second source.
    let mut reprinted = Item::numbered(2);
    reprinted.guid = "paper-2".to_owned();
    server.set(
        "/paper",
        Route::rss("Paper", &[reprinted, Item::numbered(4)]),
    );
    let config = format!(
        "[[feeds]]\nurl = \"{}\"\n\n[[feeds]]\nurl = \"{}\"\n",
        server.url("/wire"),
        server.url("/paper")
    );
    let herald = TestHerald::start(backend, &config).await;
    let db = &herald.db;
    assert_eq!(assert_article_counts(db, "starting").await, vec![]);

    let reports = herald.poll().await;
    let merged: usize = reports.iter().map(|r| r.merged).sum();
    assert_eq!(merged, 1, "{reports:?}");
    let counts = assert_article_counts(db, "the first poll").await;
    let feeds = db.store.feeds().await.unwrap();
    let id_of = |path: &str| {
        feeds
            .iter()
            .find(|feed| feed.url == server.url(path))
            .map(|feed| feed.id)
            .unwrap()
    };
    let (wire, paper) = (id_of("/wire"), id_of("/paper"));
    // Listed by id; the ids depend on the backend.
    let by_id = |mut counts: Vec<(i64, i64)>| {
        counts.sort();
        counts
    };
    assert_eq!(counts, by_id(vec![(wire, 3), (paper, 2)]));
    assert_eq!(db.store.count_articles().await.unwrap(), 4);

    // A new item on one feed; the other answers 304.
    server.set(
        "/wire",
        Route::rss(
            "Wire",
            &[
                Item::numbered(1),
                Item::numbered(2),
                Item::numbered(3),
                Item::numbered(5),
            ],
        ),
    );
    herald.poll().await;
    let counts = assert_article_counts(db, "a second poll").await;
    assert_eq!(counts, by_id(vec![(wire, 4), (paper, 2)]));

    // Deleting the shared article takes a source from both feeds, removed as
    // retention removes them: its sources and its story, then the article.
    db.execute_sql(
        "DELETE FROM article_sources WHERE article_id IN
             (SELECT id FROM articles WHERE canonical_url = 'https://example.com/articles/2');
         DELETE FROM stories WHERE first_article_id IN
             (SELECT id FROM articles WHERE canonical_url = 'https://example.com/articles/2');
         DELETE FROM articles WHERE canonical_url = 'https://example.com/articles/2'",
    )
    .await;
    let counts = assert_article_counts(db, "deleting an article of two feeds").await;
    assert_eq!(counts, by_id(vec![(wire, 3), (paper, 1)]));

    // Sources deleted directly, several in one statement, as pruning would.
    db.execute_sql(&format!(
        "DELETE FROM article_sources WHERE feed_id = {wire} AND item_key IN
         (SELECT item_key FROM article_sources WHERE feed_id = {wire} ORDER BY item_key LIMIT 2)"
    ))
    .await;
    let counts = assert_article_counts(db, "deleting two sources").await;
    assert_eq!(counts, by_id(vec![(wire, 1), (paper, 1)]));

    // A source moved to the other feed by hand.
    db.execute_sql(&format!(
        "UPDATE article_sources SET feed_id = {paper} WHERE feed_id = {wire}"
    ))
    .await;
    let counts = assert_article_counts(db, "moving a source").await;
    assert_eq!(counts, by_id(vec![(wire, 0), (paper, 2)]));

    // The claim reads the same counts.
    let now = Utc::now() + chrono::Duration::days(1);
    let claimed = db
        .store
        .claim_due_feeds("counts-test", now, now + chrono::Duration::minutes(1), 10)
        .await
        .unwrap();
    let mut claimed: Vec<(i64, i64)> = claimed.iter().map(|f| (f.id, f.articles)).collect();
    claimed.sort();
    assert_eq!(claimed, counts);

    // Deleting a feed removes its sources and its row alike.
    db.execute_sql(&format!("DELETE FROM feeds WHERE id = {paper}"))
        .await;
    let counts = assert_article_counts(db, "deleting a feed").await;
    assert_eq!(counts, vec![(wire, 0)]);
}

/// The value of a sample line `series` in exposition text.
fn sample(text: &str, series: &str) -> Option<i64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
}

/// Maintained counts, and what /metrics shows, equal `count(*)` by status.
async fn assert_status_counts(herald: &TestHerald, step: &str) -> (Vec<i64>, Vec<i64>) {
    let store = &herald.db.store;
    let recounted_feeds = store.count_feeds_by_status().await.unwrap();
    let recounted_deliveries = store.count_deliveries_by_status().await.unwrap();
    let kept_feeds = store.feeds_by_status().await.unwrap();
    let kept_deliveries = store.deliveries_by_status().await.unwrap();
    let text = herald.app.metrics.scrape(store).await.unwrap();
    let of = |counts: &[(FeedStatus, i64)], status| {
        counts
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |(_, n)| *n)
    };
    let mut feeds = Vec::new();
    for status in FeedStatus::ALL {
        let fresh = of(&recounted_feeds, status);
        assert_eq!(
            of(&kept_feeds, status),
            fresh,
            "{status:?} feeds after {step}"
        );
        let series = format!("herald_feeds{{status=\"{}\"}}", status.as_str());
        assert_eq!(sample(&text, &series), Some(fresh), "{series} after {step}");
        feeds.push(fresh);
    }
    let of = |counts: &[(DeliveryStatus, i64)], status| {
        counts
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |(_, n)| *n)
    };
    let mut deliveries = Vec::new();
    for status in DeliveryStatus::ALL {
        let fresh = of(&recounted_deliveries, status);
        assert_eq!(
            of(&kept_deliveries, status),
            fresh,
            "{status:?} deliveries after {step}"
        );
        let series = format!("herald_outbox_deliveries{{status=\"{}\"}}", status.as_str());
        assert_eq!(sample(&text, &series), Some(fresh), "{series} after {step}");
        deliveries.push(fresh);
    }
    (feeds, deliveries)
}

/// Two different stories: the same text twice would be one story, one alert.
const ALERTING: [(&str, &str); 2] = [
    (
        "North Korea's envoy lands in Iran",
        "<p>North Korea's envoy landed in Iran to open talks on shipping routes through the Gulf.</p>",
    ),
    (
        "Fire halts North Korea talks in Tehran",
        "<p>A fire at a Tehran depot halted the second session between Iran and North Korea.</p>",
    ),
];

fn alerting_item(n: u32) -> Item {
    let mut item = Item::numbered(n);
    let (title, body) = ALERTING[(n as usize - 1) % ALERTING.len()];
    item.title = title.to_owned();
    item.description = body.to_owned();
    item.pub_date = Some(Utc::now());
    item
}

async fn status_counts_and_metrics_equal_a_fresh_count_through_dispatch_retry_and_delete(
    backend: Backend,
) {
    let (server, receiver) = (FeedServer::start().await, Receiver::start().await);
    server.set("/wire", Route::rss("Wire", &[Item::numbered(100)]));
    server.set("/gone", Route::status(404));
    let config = format!(
        "[sinks.intel-slack]\ntype = \"slack\"\nurl = \"{}\"\n\n\
         [sinks.audit]\ntype = \"webhook\"\nurl = \"{}\"\n\n\
         [rules.nk-iran]\nquery = '\"North Korea\" Iran'\nsinks = [\"intel-slack\", \"audit\"]\n\n\
         [[feeds]]\nurl = \"{}\"\n\n[[feeds]]\nurl = \"{}\"\n",
        receiver.url("/slack"),
        receiver.url("/hook"),
        server.url("/wire"),
        server.url("/gone"),
    );
    let herald = TestHerald::start(backend, &config).await;
    // FeedStatus::ALL order: ok, not_modified, error, disabled, never.
    let (feeds, deliveries) = assert_status_counts(&herald, "starting").await;
    assert_eq!((feeds, deliveries), (vec![0; 5], vec![0; 4]));
    herald.feeds().await;
    let (feeds, _) = assert_status_counts(&herald, "creating the feeds").await;
    assert_eq!(feeds, vec![0, 0, 0, 0, 2]);
    herald.poll().await;
    let (feeds, _) = assert_status_counts(&herald, "the back catalogue").await;
    assert_eq!(feeds, vec![1, 0, 1, 0, 0]);

    server.set(
        "/wire",
        Route::rss("Wire", &[Item::numbered(100), alerting_item(1)]),
    );
    herald.poll().await;
    // DeliveryStatus::ALL order: pending, delivered, failed, dead.
    let (_, deliveries) = assert_status_counts(&herald, "an alert").await;
    assert_eq!(deliveries, vec![2, 0, 0, 0]);

    receiver.script("/slack", vec![Reply::status(500)]);
    receiver.script("/hook", vec![Reply::status(400)]);
    let dispatcher = &herald.app.dispatcher;
    let report = dispatcher.run_once(Utc::now()).await.unwrap();
    assert_eq!((report.failed, report.dead), (1, 1), "{report:?}");
    let (_, deliveries) = assert_status_counts(&herald, "a failure and a rejection").await;
    assert_eq!(deliveries, vec![0, 0, 1, 1]);

    let store = &herald.db.store;
    assert_eq!(store.retry_deliveries(None, Utc::now()).await.unwrap(), 1);
    let (_, deliveries) = assert_status_counts(&herald, "a retry").await;
    assert_eq!(deliveries, vec![1, 0, 1, 0]);

    receiver.script("/slack", vec![Reply::ok()]);
    receiver.script("/hook", vec![Reply::ok()]);
    let later = Utc::now() + chrono::Duration::hours(2);
    let report = dispatcher.run_once(later).await.unwrap();
    assert_eq!(report.delivered, 2, "{report:?}");
    let (_, deliveries) = assert_status_counts(&herald, "delivering both").await;
    assert_eq!(deliveries, vec![0, 2, 0, 0]);

    // A second alert, then the first one's deliveries deleted with their alert.
    server.set(
        "/wire",
        Route::rss(
            "Wire",
            &[Item::numbered(100), alerting_item(1), alerting_item(2)],
        ),
    );
    herald.poll().await;
    let (_, deliveries) = assert_status_counts(&herald, "a second alert").await;
    assert_eq!(deliveries, vec![2, 2, 0, 0]);
    herald
        .db
        .execute_sql(
            "DELETE FROM alerts WHERE id IN
             (SELECT alert_id FROM deliveries WHERE status = 'delivered')",
        )
        .await;
    let (_, deliveries) = assert_status_counts(&herald, "deleting an alert").await;
    assert_eq!(deliveries, vec![2, 0, 0, 0]);
    herald
        .db
        .execute_sql("DELETE FROM deliveries WHERE sink = 'audit'")
        .await;
    let (_, deliveries) = assert_status_counts(&herald, "deleting a delivery").await;
    assert_eq!(deliveries, vec![1, 0, 0, 0]);

    // Unchanged: the wire answers 304.
    herald.poll().await;
    let (feeds, _) = assert_status_counts(&herald, "a 304").await;
    assert_eq!(feeds, vec![0, 1, 1, 0, 0]);
    server.set("/gone", Route::status(410));
    herald.poll().await;
    let (feeds, _) = assert_status_counts(&herald, "a 410").await;
    assert_eq!(feeds, vec![0, 1, 0, 1, 0]);
    herald
        .db
        .execute_sql("DELETE FROM feeds WHERE status = 'disabled'")
        .await;
    let (feeds, _) = assert_status_counts(&herald, "deleting a feed").await;
    assert_eq!(feeds, vec![0, 1, 0, 0, 0]);
}

const OLD_ROWS: &str = "
INSERT INTO feeds (url, fetch_url, status) VALUES
    ('https://a.example/feed', 'https://a.example/feed', 'ok'),
    ('https://b.example/feed', 'https://b.example/feed', 'error'),
    ('https://c.example/feed', 'https://c.example/feed', 'never');
INSERT INTO articles (dedup_key, title, published_at, first_seen_at, changed_at) VALUES
    ('k1', 'One', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'),
    ('k2', 'Two', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'),
    ('k3', 'Three', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z');
INSERT INTO article_sources (feed_id, item_key, article_id, fingerprint, first_seen_at, changed_at)
VALUES (1, 'i1', 1, 'f', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'),
       (1, 'i2', 2, 'f', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'),
       (1, 'i3', 3, 'f', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'),
       (2, 'i2', 2, 'f', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z');
INSERT INTO stories (first_article_id, created_at) VALUES (1, '2026-01-01T00:00:00Z');
INSERT INTO alerts (rule, story_id, article_id, matched, created_at) VALUES
    ('r1', 1, 1, '[]', '2026-01-01T00:00:00Z'),
    ('r2', 1, 1, '[]', '2026-01-01T00:00:00Z');
INSERT INTO deliveries (delivery_id, alert_id, sink, status, next_attempt_at, created_at,
                        queued_at) VALUES
    ('d1', 1, 's1', 'delivered', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'),
    ('d2', 1, 's2', 'dead', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'),
    ('d3', 2, 's1', 'pending', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'),
    ('d4', 2, 's2', 'delivered', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z');
";

/// A database of the previous release, with rows, upgraded.
async fn rows_stored_before_the_counters_existed_are_counted(backend: Backend) {
    let (url, _dir, migrations) = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("herald.db").display()
            );
            (url, Some(dir), "migrations/sqlite")
        }
        Backend::Postgres => (
            create_postgres_database().await,
            None,
            "migrations/postgres",
        ),
    };
    let previous = sqlx::migrate::Migrator::new(Path::new(migrations))
        .await
        .unwrap();
    if url.starts_with("sqlite:") {
        let mut connection = SqliteConnection::connect(&url).await.unwrap();
        previous.run_to(9, &mut connection).await.unwrap();
    } else {
        let mut connection = PgConnection::connect(&url).await.unwrap();
        previous.run_to(9, &mut connection).await.unwrap();
    }
    if url.starts_with("sqlite:") {
        let mut connection = SqliteConnection::connect(&url).await.unwrap();
        connection.execute(OLD_ROWS).await.unwrap();
    } else {
        let mut connection = PgConnection::connect(&url).await.unwrap();
        connection.execute(OLD_ROWS).await.unwrap();
    }
    let url = url.trim_end_matches("?mode=rwc").to_owned();
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();

    let counts = assert_articles_of(&url, &store, "the upgrade").await;
    assert_eq!(counts, vec![(1, 3), (2, 1), (3, 0)]);
    let kept_feeds = store.feeds_by_status().await.unwrap();
    let mut recounted = store.count_feeds_by_status().await.unwrap();
    let mut kept = kept_feeds.clone();
    kept.sort_by_key(|(s, _)| s.as_str());
    recounted.sort_by_key(|(s, _)| s.as_str());
    assert_eq!(kept, recounted);
    assert_eq!(kept.len(), 3, "{kept:?}");
    let mut kept = store.deliveries_by_status().await.unwrap();
    let mut recounted = store.count_deliveries_by_status().await.unwrap();
    kept.sort_by_key(|(s, _)| s.as_str());
    recounted.sort_by_key(|(s, _)| s.as_str());
    assert_eq!(kept, recounted);
    assert_eq!(
        kept,
        vec![
            (DeliveryStatus::Dead, 1),
            (DeliveryStatus::Delivered, 2),
            (DeliveryStatus::Pending, 1)
        ]
    );
}
