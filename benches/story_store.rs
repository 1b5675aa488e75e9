//! Story clustering in the database: what storing one new article costs (its
//! band-key lookup, verification of the candidates, story assignment and index
//! rows, in the article's own transaction) with 100,000 and 1,000,000 articles
//! already stored within the window, on SQLite and PostgreSQL.
//!
//! Stored articles have generated 1.4 KB bodies (fingerprinted; the rows keep
//! only a short summary, so the database holds what clustering reads), spread
//! over the 72 h window across 500 feeds, and are stored through the same
//! `save_articles` as ingest, 1,000 per write. Then single-article writes are
//! timed, interleaved: reprints of a random stored article (new URL, dateline,
//! last sentence dropped), fresh articles, and fresh articles without a
//! fingerprint (what storing costs without clustering).
//!
//! HERALD_BENCH_BODY_BYTES (default 1440) sets the body length: 200 makes
//! headline-and-summary items (~30 words), which carry the short-body
//! evidence and a lead key.
//!
//! HERALD_BENCH_STORED (default `100000,1000000`) sets the sizes (filling SQLite
//! to 1,000,000 takes over an hour: every article dirties ~33 random index
//! pages; `HERALD_BENCH_STORED=100000` for a quick run); PostgreSQL
//! comes from HERALD_BENCH_DATABASE_URL, TEST_DATABASE_URL or DATABASE_URL (a
//! fresh database, dropped afterwards); HERALD_BENCH_BACKENDS (default
//! `sqlite,postgres`) picks the backends.
//!
//! cargo bench --bench story_store

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use herald::domain::article::NewArticle;
use herald::domain::feed::FeedSpec;
use herald::store::{Incoming, Store};
use herald::stories::StoryInput;
use herald::stories::{Fingerprint, StorySettings};
use sqlx::{Connection, Executor};

mod support;
use support::{drop_postgres_database, postgres_url};

#[path = "support/prose.rs"]
mod prose;
use prose::{Prose, Random};

const FEEDS: usize = 500;
const FILL_BATCH: usize = 1_000;
/// Timed writes of each kind per size.
const SAMPLES: usize = 200;
const WINDOW_HOURS: i64 = 72;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Reprint,
    Fresh,
    Unclustered,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Reprint => "reprint of a stored article",
            Kind::Fresh => "new story",
            Kind::Unclustered => "no fingerprint (storing alone)",
        }
    }
}

struct Bench {
    store: Store,
    feeds: Vec<i64>,
    prose: Prose,
    settings: StorySettings,
    now: DateTime<Utc>,
    stored: usize,
}

impl Bench {
    /// The title and body of the `index`-th stored article, regenerated on demand.
    fn stored_text(&self, index: usize) -> (String, String) {
        let mut random = Random(0x5707_0000_0000 ^ index as u64);
        (
            self.prose.text(60, &mut random),
            self.prose.text(body_bytes(), &mut random),
        )
    }

    fn incoming(&self, key: &str, title: &str, body: &str, seen_at: DateTime<Utc>) -> Incoming {
        let url = format!("https://outlet.example/{key}");
        let article = NewArticle {
            item_key: key.to_owned(),
            canonical_url: Some(url.clone()),
            url: Some(url),
            title: title.to_owned(),
            summary_html: None,
            summary_text: Some(body.chars().take(160).collect()),
            content_html: None,
            content_text: None,
            author: None,
            language: None,
            published_at: seen_at,
            updated_at: None,
            fingerprint: key.to_owned(),
        };
        Incoming {
            story: Some(StoryInput::new(Fingerprint::new(title, body), seen_at)),
            ..Incoming::from(article)
        }
    }

    async fn fill_to(&mut self, target: usize) {
        let started = Instant::now();
        let from = self.stored;
        let window = TimeDelta::hours(WINDOW_HOURS - 1).num_seconds();
        while self.stored < target {
            let batch: Vec<Incoming> = (self.stored..(self.stored + FILL_BATCH).min(target))
                .map(|index| {
                    let (title, body) = self.stored_text(index);
                    let age = (index as i64 * 7_919) % window;
                    let seen_at = self.now - TimeDelta::seconds(age);
                    self.incoming(&format!("stored-{index}"), &title, &body, seen_at)
                })
                .collect();
            let feed = self.feeds[(self.stored / FILL_BATCH) % FEEDS];
            self.store
                .save_articles(feed, &batch, &self.settings, self.now)
                .await
                .expect("fill");
            self.stored += batch.len();
        }
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "  stored {} articles in {seconds:.0} s ({:.0}/s, 1,000 per write, clustered)",
            self.stored - from,
            (self.stored - from) as f64 / seconds
        );
    }

    /// One single-article write of `kind`; its duration and whether it joined a story.
    async fn write(&self, kind: Kind, sample: usize, random: &mut Random) -> (Duration, bool) {
        let key = format!("new-{}-{sample}-{}", kind.label().len(), random.next());
        let (title, body) = match kind {
            Kind::Reprint => {
                let (title, body) = self.stored_text(random.below(self.stored));
                // Drop the last sentence, or keep a summary whole.
                let end = body.len().saturating_sub(120);
                let cut = body[..end].rfind(". ").unwrap_or(body.len() - 1);
                (
                    format!("UPDATE: {title}"),
                    format!("LONDON (Agency) - {}", &body[..cut + 1]),
                )
            }
            Kind::Fresh | Kind::Unclustered => (
                self.prose.text(60, random),
                self.prose.text(body_bytes(), random),
            ),
        };
        let mut item = self.incoming(&key, &title, &body, self.now);
        if kind == Kind::Unclustered {
            item.story = None;
        }
        let feed = *random.pick(&self.feeds);
        let started = Instant::now();
        let summary = self
            .store
            .save_articles(feed, &[item], &self.settings, self.now)
            .await
            .expect("write");
        (started.elapsed(), summary.joined_stories == 1)
    }

    async fn measure(&self) {
        let mut random = Random(0xbe_0000 ^ self.stored as u64);
        let kinds = [Kind::Reprint, Kind::Fresh, Kind::Unclustered];
        // Warm the caches and the connection pool.
        for sample in 0..20 {
            for kind in kinds {
                self.write(kind, sample, &mut random).await;
            }
        }
        let mut times: Vec<Vec<Duration>> = vec![Vec::new(); kinds.len()];
        let mut joined = [0usize; 3];
        for sample in 0..SAMPLES {
            for (k, kind) in kinds.iter().enumerate() {
                let (time, found) = self.write(*kind, sample, &mut random).await;
                times[k].push(time);
                joined[k] += usize::from(found);
            }
        }
        let mut medians = [0.0f64; 3];
        for (k, kind) in kinds.iter().enumerate() {
            let list = &mut times[k];
            list.sort_unstable();
            let median = ms(list[list.len() / 2]);
            let p99 = ms(list[(list.len() * 99 / 100).min(list.len() - 1)]);
            medians[k] = median;
            println!(
                "  {:<32} median {median:>6.2} ms  p99 {p99:>6.2} ms  joined a story {}/{}",
                kind.label(),
                joined[k],
                list.len()
            );
        }
        println!(
            "  clustering's share of a write (median new story − median without): {:.2} ms",
            medians[1] - medians[2]
        );
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

async fn run(backend: &str, url: &str, sizes: &[usize]) {
    let store = Store::connect(url).await.expect("connect");
    store.migrate().await.expect("migrate");
    let specs: Vec<FeedSpec> = (0..FEEDS)
        .map(|n| FeedSpec {
            url: format!("https://outlet{n}.example/feed"),
            name: Some(format!("Outlet {n}")),
        })
        .collect();
    let feeds = store
        .sync_feeds(&specs)
        .await
        .expect("feeds")
        .iter()
        .map(|feed| feed.id)
        .collect();
    let mut prose_seed = Random(0x0070_5e00);
    let mut bench = Bench {
        store,
        feeds,
        prose: Prose::new(&mut prose_seed),
        settings: StorySettings::default(),
        now: Utc::now(),
        stored: 0,
    };
    for &size in sizes {
        println!("{backend}, {size} articles in the window:");
        bench.fill_to(size).await;
        settle(backend, url).await;
        bench.measure().await;
    }
}

/// Lets the database finish what a bulk load leaves behind (PostgreSQL's
/// autovacuum of the new rows, SQLite's WAL), so the timed writes see a
/// steady state rather than the load's aftermath.
async fn settle(backend: &str, url: &str) {
    let started = Instant::now();
    let statement = if backend == "postgres" {
        "VACUUM (ANALYZE)"
    } else {
        "PRAGMA wal_checkpoint(TRUNCATE)"
    };
    let result = if backend == "postgres" {
        match sqlx::PgConnection::connect(url).await {
            Ok(mut connection) => connection.execute(statement).await.map(drop),
            Err(error) => Err(error),
        }
    } else {
        match sqlx::SqliteConnection::connect(url).await {
            Ok(mut connection) => connection.execute(statement).await.map(drop),
            Err(error) => Err(error),
        }
    };
    match result {
        Ok(()) => println!("  {statement}: {:.0} s", started.elapsed().as_secs_f64()),
        Err(error) => println!("  {statement} failed: {error}"),
    }
}

fn body_bytes() -> usize {
    std::env::var("HERALD_BENCH_BODY_BYTES")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(1_440)
}

fn main() {
    let sizes: Vec<usize> = std::env::var("HERALD_BENCH_STORED")
        .unwrap_or_else(|_| "100000,1000000".to_owned())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let backends =
        std::env::var("HERALD_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".to_owned());
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        if backends.contains("sqlite") {
            let dir = tempfile::tempdir().expect("tempdir");
            let url = format!("sqlite://{}", dir.path().join("stories.db").display());
            run("sqlite", &url, &sizes).await;
        }
        if backends.contains("postgres") {
            match postgres_url("story_store").await {
                Some(url) => {
                    run("postgres", &url, &sizes).await;
                    drop_postgres_database(&url).await;
                }
                None => println!("postgres: skipped (no server given or reachable)"),
            }
        }
    });
}
