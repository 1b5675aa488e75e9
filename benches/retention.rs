//! Retention at scale: removing 1,000,000 articles past `[retention] articles`
//! while ingest goes on, on SQLite and PostgreSQL.
//!
//! The database is filled with SQL (fast): N articles published 366–400 days
//! ago, each with a source, its own story and a story fingerprint; every tenth
//! with an alert whose delivery was delivered long ago, with its attempt. Then:
//!
//! 1. ingest alone for a while: writes of 50 new articles (clustered, as
//!    `herald run` stores a feed's new items) through `save_articles`;
//! 2. the same ingest while `Store::prune` removes everything old with the
//!    batch size and pause of `herald prune` (a first run of `herald run` is
//!    the same work with longer pauses).
//!
//! Printed: rows removed per second (articles, and all tables), ingest
//! articles per second and write latency (median, p99, max) with and without
//! pruning.
//!
//! HERALD_BENCH_ARTICLES (default 1000000) sets N; PostgreSQL comes from
//! HERALD_BENCH_DATABASE_URL, TEST_DATABASE_URL or DATABASE_URL (a fresh
//! database, dropped afterwards); HERALD_BENCH_BACKENDS (default
//! `sqlite,postgres`) picks the backends.
//!
//! cargo bench --bench retention

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use herald::domain::article::NewArticle;
use herald::domain::feed::FeedSpec;
use herald::domain::retention::{DEFAULT_BATCH as DEFAULT_PRUNE_BATCH, PrunePolicy};
use herald::retention::COMMAND_PAUSE;
use herald::store::{Incoming, Store};
use herald::stories::StoryInput;
use herald::stories::{Fingerprint, StorySettings};
use sqlx::{Connection, Executor};

mod support;
use support::{drop_postgres_database, postgres_url};

// Shared with the other benches, which use parts this one does not.
#[allow(dead_code)]
#[path = "support/prose.rs"]
mod prose;
use prose::{Prose, Random};

/// Articles per ingest write.
const WRITE: usize = 50;
/// How long ingest runs alone.
const ALONE: Duration = Duration::from_secs(20);

const SQLITE_FILL: &str = "
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
INSERT INTO articles (id, dedup_key, canonical_url, url, title, summary_text,
    published_at, first_seen_at, changed_at, story_id)
SELECT i, 'https://old.example/' || i, 'https://old.example/' || i,
    'https://old.example/' || i, 'Old article number ' || i,
    'A summary of an old article, about as long as a feed gives one, number ' || i,
    t, t, t, i
FROM (SELECT i, strftime('%Y-%m-%dT%H:%M:%f', 'now', '-400 days',
                         '+' || (i % 2900000) || ' seconds') || '000Z' AS t FROM n);
INSERT INTO stories (id, first_article_id, created_at)
    SELECT id, id, first_seen_at FROM articles;
INSERT INTO article_sources (feed_id, item_key, article_id, fingerprint, first_seen_at, changed_at)
    SELECT ?2, 'item-' || id, id, 'fp', first_seen_at, first_seen_at FROM articles;
INSERT INTO story_fingerprints (article_id, feed_id, seen_at, fingerprint, seq)
    SELECT id, ?2, published_at, zeroblob(200), id FROM articles;
INSERT INTO alerts (id, rule, story_id, article_id, matched, created_at)
    SELECT id, 'rule', id, id, '[]', first_seen_at FROM articles WHERE id % 10 = 0;
INSERT INTO deliveries (id, delivery_id, alert_id, sink, status, attempts, next_attempt_at,
    last_attempt_at, created_at, queued_at, delivered_at)
    SELECT id, 'd' || id, id, 'log', 'delivered', 1, created_at, created_at, created_at,
        created_at, created_at FROM alerts;
INSERT INTO delivery_attempts (delivery_id, attempt, at, http_status, latency_ms)
    SELECT id, 1, created_at, 200, 5 FROM deliveries;";

const POSTGRES_FILL: &str = "
INSERT INTO articles (id, dedup_key, canonical_url, url, title, summary_text,
    published_at, first_seen_at, changed_at, story_id)
SELECT i, 'https://old.example/' || i, 'https://old.example/' || i,
    'https://old.example/' || i, 'Old article number ' || i,
    'A summary of an old article, about as long as a feed gives one, number ' || i,
    t, t, t, i
FROM (SELECT i, now() - interval '400 days' + (i % 2900000) * interval '1 second' AS t
      FROM generate_series(1, $1) AS i) AS n;
INSERT INTO stories (id, first_article_id, created_at)
    SELECT id, id, first_seen_at FROM articles;
INSERT INTO article_sources (feed_id, item_key, article_id, fingerprint, first_seen_at, changed_at)
    SELECT $2, 'item-' || id, id, 'fp', first_seen_at, first_seen_at FROM articles;
INSERT INTO story_fingerprints (article_id, feed_id, seen_at, fingerprint, seq)
    SELECT id, $2, published_at, decode(repeat('00', 200), 'hex'), id FROM articles;
INSERT INTO alerts (id, rule, story_id, article_id, matched, created_at)
    SELECT id, 'rule', id, id, '[]', first_seen_at FROM articles WHERE id % 10 = 0;
INSERT INTO deliveries (id, delivery_id, alert_id, sink, status, attempts, next_attempt_at,
    last_attempt_at, created_at, queued_at, delivered_at)
    SELECT id, 'd' || id, id, 'log', 'delivered', 1, created_at, created_at, created_at,
        created_at, created_at FROM alerts;
INSERT INTO delivery_attempts (delivery_id, attempt, at, http_status, latency_ms)
    SELECT id, 1, created_at, 200, 5 FROM deliveries;
SELECT setval('articles_id_seq', $1);
SELECT setval('stories_id_seq', $1);
SELECT setval('alerts_id_seq', $1);
SELECT setval('deliveries_id_seq', $1);
SELECT setval('story_fingerprints_seq_seq', $1);
ANALYZE;";

/// The statements of a fill script with its two numbers written in.
fn statements(script: &str, articles: usize, feed: i64) -> Vec<String> {
    script
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.replace("?1", &articles.to_string())
                .replace("?2", &feed.to_string())
                .replace("$1", &articles.to_string())
                .replace("$2", &feed.to_string())
        })
        .collect()
}

async fn fill(url: &str, articles: usize, feed: i64) {
    let started = Instant::now();
    if url.starts_with("sqlite:") {
        let mut connection = sqlx::SqliteConnection::connect(url).await.expect("open");
        connection.execute("BEGIN").await.expect("begin");
        for statement in statements(SQLITE_FILL, articles, feed) {
            connection
                .execute(sqlx::AssertSqlSafe(statement))
                .await
                .expect("fill");
        }
        connection.execute("COMMIT").await.expect("commit");
    } else {
        let mut connection = sqlx::PgConnection::connect(url).await.expect("open");
        for statement in statements(POSTGRES_FILL, articles, feed) {
            connection
                .execute(sqlx::AssertSqlSafe(statement))
                .await
                .expect("fill");
        }
    }
    println!(
        "  filled {articles} old articles in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

struct Ingest {
    articles: usize,
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Ingest {
    fn print(&self, label: &str) {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let at = |q: f64| {
            sorted
                .get(((sorted.len() as f64 - 1.0) * q) as usize)
                .copied()
                .unwrap_or_default()
        };
        println!(
            "  ingest {label}: {:.0} articles/s ({} writes of {WRITE}); write median {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.articles as f64 / self.elapsed.as_secs_f64(),
            sorted.len(),
            at(0.5).as_secs_f64() * 1e3,
            at(0.99).as_secs_f64() * 1e3,
            sorted.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        );
    }
}

/// Writes batches of new articles until `stop` is set (or `limit` passes).
async fn ingest(
    store: Store,
    feed: i64,
    first: usize,
    stop: Arc<AtomicBool>,
    limit: Duration,
) -> Ingest {
    let mut seed = Random(0x7e7e);
    let prose = Prose::new(&mut seed);
    let settings = StorySettings::default();
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut written = 0;
    while !stop.load(Ordering::Relaxed) && started.elapsed() < limit {
        let now = Utc::now();
        let batch: Vec<Incoming> = (0..WRITE)
            .map(|n| {
                let key = format!("new-{}", first + written + n);
                let mut random = Random(0x9e37 ^ (first + written + n) as u64);
                let title = prose.text(60, &mut random);
                let body = prose.text(1_200, &mut random);
                let url = format!("https://new.example/{key}");
                let seen_at = now - TimeDelta::minutes(5);
                let article = NewArticle {
                    item_key: key.clone(),
                    canonical_url: Some(url.clone()),
                    url: Some(url),
                    title: title.clone(),
                    summary_html: None,
                    summary_text: Some(body.chars().take(160).collect()),
                    content_html: None,
                    content_text: None,
                    author: None,
                    language: None,
                    published_at: seen_at,
                    updated_at: None,
                    fingerprint: key,
                };
                Incoming {
                    story: Some(StoryInput::new(Fingerprint::new(&title, &body), seen_at)),
                    ..Incoming::from(article)
                }
            })
            .collect();
        let write = Instant::now();
        store
            .save_articles(feed, &batch, &settings, now)
            .await
            .expect("ingest");
        latencies.push(write.elapsed());
        written += WRITE;
    }
    Ingest {
        articles: written,
        latencies,
        elapsed: started.elapsed(),
    }
}

async fn run(backend: &str, url: &str, articles: usize) {
    println!("{backend}:");
    let store = Store::connect(url).await.expect("connect");
    store.migrate().await.expect("migrate");
    let feeds = store
        .sync_feeds(&[FeedSpec {
            url: "https://old.example/feed".to_owned(),
            name: None,
        }])
        .await
        .expect("feed");
    let feed = feeds[0].id;
    fill(url, articles, feed).await;

    let alone = ingest(
        store.clone(),
        feed,
        0,
        Arc::new(AtomicBool::new(false)),
        ALONE,
    )
    .await;
    alone.print("alone");

    let now = Utc::now();
    let policy = PrunePolicy {
        articles_before: Some(now - TimeDelta::days(365)),
        deliveries_before: Some(now - TimeDelta::days(90)),
        fingerprints_before: Some(now - TimeDelta::hours(120)),
        batch: DEFAULT_PRUNE_BATCH,
        pause: COMMAND_PAUSE,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(ingest(
        store.clone(),
        feed,
        alone.articles,
        Arc::clone(&stop),
        Duration::MAX,
    ));
    let started = Instant::now();
    let removed = store.prune(&policy).await.expect("prune");
    let pruning = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let during = writer.await.expect("ingest task");
    println!(
        "  pruned {} articles ({} rows in all tables) in {:.1} s: {:.0} articles/s, {:.0} rows/s \
         (batches of {}, {} ms apart)",
        removed.articles,
        removed.total(),
        pruning.as_secs_f64(),
        removed.articles as f64 / pruning.as_secs_f64(),
        removed.total() as f64 / pruning.as_secs_f64(),
        policy.batch,
        policy.pause.as_millis(),
    );
    println!("  removed: {removed:?}");
    during.print("while pruning");
}

#[tokio::main]
async fn main() {
    let articles: usize = std::env::var("HERALD_BENCH_ARTICLES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let backends =
        std::env::var("HERALD_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".to_owned());
    for backend in backends.split(',') {
        match backend.trim() {
            "sqlite" => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("herald.db").display());
                run("SQLite", &url, articles).await;
            }
            "postgres" => match postgres_url("retention").await {
                Some(url) => {
                    run("PostgreSQL", &url, articles).await;
                    drop_postgres_database(&url).await;
                }
                None => println!("PostgreSQL: skipped, no server (set HERALD_BENCH_DATABASE_URL)"),
            },
            other => println!("{other}: unknown backend"),
        }
    }
}
