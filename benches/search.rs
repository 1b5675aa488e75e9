//! Indexed search over a large archive, on SQLite and PostgreSQL.
//!
//! Fills the database with N articles through `save_articles` (a title and
//! ~800 bytes of generated prose each, published over 400 days; one article
//! in 2,000 mentions North Korea and Iran, one in 500 Iran alone, one in 1,000
//! North Korea alone), indexes them all (`search::catch_up`, as `herald run`
//! does in the background), then times queries over the whole history the way
//! `/api/v1/articles` (a page of 20) and `herald search` (every match) run
//! them: median and 90th percentile of repeated runs.
//!
//! Printed: fill and indexing rates, the index's size on disk per article,
//! and per query the candidates read, matches and times. A query the index
//! cannot narrow (`feed:`) is timed once: it reads the whole archive.
//!
//! HERALD_BENCH_ARTICLES (default 1000000) sets N; PostgreSQL comes from
//! HERALD_BENCH_DATABASE_URL, TEST_DATABASE_URL or DATABASE_URL (a fresh
//! database, dropped afterwards); HERALD_BENCH_BACKENDS (default
//! `sqlite,postgres`) picks the backends; HERALD_BENCH_KEEP keeps the
//! PostgreSQL database (for EXPLAIN).
//!
//! cargo bench --bench search

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use herald::domain::article::NewArticle;
use herald::domain::feed::FeedSpec;
use herald::rules::{Rule, RuleQuery};
use herald::search::{self, FeedInfo, Scan};
use herald::store::{Incoming, Store};
use herald::stories::StorySettings;
use sqlx::Connection;

mod support;
use support::{drop_postgres_database, postgres_url};

// Shared with the other benches, which use parts this one does not.
#[allow(dead_code)]
#[path = "support/prose.rs"]
mod prose;
use prose::{Prose, Random};

/// Articles per write while filling.
const WRITE: usize = 1_000;
/// Runs per timed query.
const RUNS: usize = 21;

fn article(n: usize, prose: &Prose, random: &mut Random, now: DateTime<Utc>) -> Incoming {
    let mut summary = prose.text(800, random);
    if n.is_multiple_of(2_000) {
        summary.push_str(" North Korea's delegation arrived in Iran for talks.");
    } else if n.is_multiple_of(500) {
        summary.push_str(" Iran said on Monday.");
    } else if n.is_multiple_of(1_000) {
        summary.push_str(" North Korea fired a missile.");
    }
    let key = format!("item-{n}");
    let published = now - TimeDelta::seconds((n as i64 * 400 * 86_400) / 1_000_000 % 34_560_000);
    Incoming::from(NewArticle {
        item_key: key.clone(),
        canonical_url: Some(format!("https://archive.example/{key}")),
        url: Some(format!("https://archive.example/{key}")),
        title: prose.text(60, random),
        summary_html: None,
        summary_text: Some(summary),
        content_html: None,
        content_text: None,
        author: None,
        language: None,
        published_at: published,
        updated_at: None,
        fingerprint: key,
    })
}

async fn fill(store: &Store, feed: i64, articles: usize) -> Duration {
    let mut random = Random(7);
    let prose = Prose::new(&mut random);
    let now = Utc::now();
    let settings = StorySettings::default();
    let started = Instant::now();
    let mut n = 0;
    while n < articles {
        let batch: Vec<Incoming> = (n..(n + WRITE).min(articles))
            .map(|i| article(i, &prose, &mut random, now))
            .collect();
        store
            .save_articles(feed, &batch, &settings, now)
            .await
            .expect("fill");
        n += batch.len();
    }
    started.elapsed()
}

async fn index_bytes(url: &str) -> Option<i64> {
    if url.starts_with("sqlite:") {
        let mut db = sqlx::SqliteConnection::connect(url).await.ok()?;
        sqlx::query_scalar(
            "SELECT sum(pgsize) FROM dbstat
             WHERE name LIKE 'article_search%' OR name LIKE 'search_backlog%'",
        )
        .fetch_one(&mut db)
        .await
        .ok()
    } else {
        let mut db = sqlx::PgConnection::connect(url).await.ok()?;
        sqlx::query_scalar(
            "SELECT pg_total_relation_size('article_search')
                  + pg_total_relation_size('search_backlog')",
        )
        .fetch_one(&mut db)
        .await
        .ok()
    }
}

struct Timed {
    matches: usize,
    read: usize,
    median: Duration,
    p90: Duration,
}

async fn time_query(
    store: &Store,
    feeds: &HashMap<i64, FeedInfo>,
    query: &str,
    limit: Option<usize>,
    runs: usize,
) -> Timed {
    let rule = Rule {
        name: "q".into(),
        query: RuleQuery::parse(query).expect("query"),
        tags: Vec::new(),
    };
    let mut times = Vec::with_capacity(runs);
    let (mut matches, mut read) = (0, 0);
    for _ in 0..runs {
        let scan = Scan {
            since: Utc::now() - TimeDelta::days(3_650),
            limit,
            after: None,
        };
        let mut counted = 0;
        let started = Instant::now();
        let found = search::matching_articles(store, rule.clone(), feeds, scan, || counted += 1)
            .await
            .expect("search");
        times.push(started.elapsed());
        (matches, read) = (found.len(), counted);
    }
    times.sort();
    Timed {
        matches,
        read,
        median: times[times.len() / 2],
        p90: times[times.len() * 9 / 10],
    }
}

async fn run(name: &str, url: &str, articles: usize) {
    let store = Store::connect(url).await.expect("connect");
    store.migrate().await.expect("migrate");
    let feed = store
        .sync_feeds(&[FeedSpec {
            url: "https://archive.example/feed".to_owned(),
            name: Some("Wire".to_owned()),
        }])
        .await
        .expect("feed")[0]
        .id;
    let filled = fill(&store, feed, articles).await;
    let started = Instant::now();
    let indexed = search::catch_up(&store).await.expect("index");
    let indexing = started.elapsed();
    let bytes = index_bytes(url).await.unwrap_or(0);
    println!(
        "{name}: {articles} articles stored in {:.1} s ({:.0}/s); indexed {indexed} in {:.1} s \
         ({:.0}/s); index {:.0} bytes/article",
        filled.as_secs_f64(),
        articles as f64 / filled.as_secs_f64(),
        indexing.as_secs_f64(),
        indexed as f64 / indexing.as_secs_f64(),
        bytes as f64 / articles.max(1) as f64
    );
    let feeds = search::feed_infos(store.feeds().await.expect("feeds"), &[]);
    let queries: [(&str, Option<usize>, usize); 7] = [
        ("\"North Korea\" Iran", Some(20), RUNS),
        ("\"North Korea\" Iran", None, RUNS),
        ("Iran -\"North Korea\"", Some(20), RUNS),
        ("\"North Korea\" OR Iran", None, RUNS),
        ("Iran NEAR/5 talks", None, RUNS),
        ("feed:wire", Some(20), 3),
        ("feed:wire Iran", None, RUNS),
    ];
    for (query, limit, runs) in queries {
        let timed = time_query(&store, &feeds, query, limit, runs).await;
        println!(
            "{name}: {query:<26} limit {:<5} {:>6} read {:>6} matched  median {:>8.2} ms  p90 {:>8.2} ms",
            limit.map_or_else(|| "-".to_owned(), |l| l.to_string()),
            timed.read,
            timed.matches,
            timed.median.as_secs_f64() * 1e3,
            timed.p90.as_secs_f64() * 1e3,
        );
    }
    let started = Instant::now();
    let timed = time_query(&store, &feeds, "feed:wire", None, 1).await;
    println!(
        "{name}: feed:wire (no indexed word: reads every article) {} read in {:.2} s",
        timed.read,
        started.elapsed().as_secs_f64()
    );
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
            "postgres" => match postgres_url("search").await {
                Some(url) => {
                    run("PostgreSQL", &url, articles).await;
                    if std::env::var_os("HERALD_BENCH_KEEP").is_some() {
                        println!("PostgreSQL: kept {url}");
                    } else {
                        drop_postgres_database(&url).await;
                    }
                }
                None => println!("PostgreSQL: skipped (no server in HERALD_BENCH_DATABASE_URL)"),
            },
            other => println!("unknown backend {other:?}"),
        }
    }
}
