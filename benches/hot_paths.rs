//! The paths every scheduler tick and every scrape take, whose cost must not grow
//! with the database: claiming due feeds, the next-due query, and what a
//! `/metrics` scrape reads, at 10 feeds and 1 delivery, then at 100,000 feeds and
//! 10,000,000 deliveries, on SQLite and PostgreSQL. Beside them, for scale, the
//! recount by `count(*)` that /metrics ran before counts were maintained.
//!
//! Feeds are due over the next hour, 20 of them now; each timed claim takes
//! those 20 (leases are cleared between samples, untimed). Deliveries are almost
//! all delivered, a few dead, 100 pending and 50 failed: the queue is short, the
//! history long. Rows are filled with SQL (`generate_series` on PostgreSQL, a
//! recursive CTE on SQLite); on PostgreSQL the bulk delivery fill runs with the
//! counting trigger off and then sets the counters as migration 0010's backfill
//! does, since ten million trigger calls would take longer than the rest.
//!
//! HERALD_BENCH_DELIVERIES (default 10000000) sets the large size's deliveries;
//! PostgreSQL comes from HERALD_BENCH_DATABASE_URL, TEST_DATABASE_URL or
//! DATABASE_URL (a fresh database, dropped afterwards); HERALD_BENCH_BACKENDS
//! (default `sqlite,postgres`) picks the backends.
//!
//! cargo bench --bench hot_paths

use std::future::Future;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use herald::metrics::DatabaseState;
use herald::store::Store;
use sqlx::{Connection, Executor};

mod support;
use support::{drop_postgres_database, postgres_url};

const SAMPLES: usize = 200;
/// The recount scans every delivery: a few runs tell its cost.
const RECOUNT_SAMPLES: usize = 5;
const DUE_FEEDS: i64 = 20;
const CLAIM_LIMIT: i64 = 50;
const SINKS: i64 = 10;

struct Size {
    feeds: i64,
    deliveries: i64,
}

fn sizes() -> [Size; 2] {
    let deliveries = std::env::var("HERALD_BENCH_DELIVERIES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000_000);
    [
        Size {
            feeds: 10,
            deliveries: 1,
        },
        Size {
            feeds: 100_000,
            deliveries,
        },
    ]
}

/// Runs SQL on the bench's database beside the store's own connections.
async fn execute(url: &str, sql: &str) {
    let started = Instant::now();
    let result = if url.starts_with("sqlite:") {
        match sqlx::SqliteConnection::connect(url).await {
            Ok(mut c) => c
                .execute(sqlx::AssertSqlSafe(sql.to_owned()))
                .await
                .map(drop),
            Err(error) => Err(error),
        }
    } else {
        match sqlx::PgConnection::connect(url).await {
            Ok(mut c) => c
                .execute(sqlx::AssertSqlSafe(sql.to_owned()))
                .await
                .map(drop),
            Err(error) => Err(error),
        }
    };
    let first = sql.trim().lines().next().unwrap_or_default();
    match result {
        Ok(()) => {
            let secs = started.elapsed().as_secs_f64();
            if secs > 1.0 {
                println!("  fill: {first} … {secs:.0} s");
            }
        }
        Err(error) => panic!("fill failed: {first}: {error}"),
    }
}

fn text(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Feeds `from..to` (1-based), due over the next hour after `now`; feed ids
/// 1..=DUE_FEEDS are due now.
fn feeds_sql(postgres: bool, from: i64, to: i64, now: DateTime<Utc>) -> String {
    let due = text(now - TimeDelta::minutes(1));
    if postgres {
        format!(
            "INSERT INTO feeds (url, fetch_url, status, next_fetch_at)
             SELECT 'https://feed.example/' || g, 'https://feed.example/' || g,
                    (ARRAY['ok', 'not_modified', 'error'])[1 + g % 3],
                    CASE WHEN g <= {DUE_FEEDS} THEN '{due}'::timestamptz
                         ELSE '{now}'::timestamptz + (1 + g % 3600) * interval '1 second' END
             FROM generate_series({from}, {to}) AS g",
            now = text(now)
        )
    } else {
        // The same text form as the store writes: microseconds, `Z`.
        format!(
            "WITH RECURSIVE g(n) AS (SELECT {from} UNION ALL SELECT n + 1 FROM g WHERE n < {to})
             INSERT INTO feeds (url, fetch_url, status, next_fetch_at)
             SELECT 'https://feed.example/' || n, 'https://feed.example/' || n,
                    CASE n % 3 WHEN 0 THEN 'ok' WHEN 1 THEN 'not_modified' ELSE 'error' END,
                    CASE WHEN n <= {DUE_FEEDS} THEN '{due}'
                         ELSE strftime('%Y-%m-%dT%H:%M:%f000Z', '{now}',
                                       '+' || (1 + n % 3600) || ' seconds') END
             FROM g",
            now = text(now)
        )
    }
}

/// How many alerts deliveries `1..=deliveries` belong to.
fn alerts_for(deliveries: i64) -> i64 {
    if deliveries <= 0 {
        0
    } else {
        (deliveries - 1) / SINKS + 1
    }
}

/// The numbers `a..=b` as rows of one column `n`, aliased `s`.
fn series(postgres: bool, a: i64, b: i64) -> String {
    if postgres {
        format!("generate_series({a}, {b}) AS s(n)")
    } else {
        format!(
            "(WITH RECURSIVE g(n) AS (SELECT {a} UNION ALL SELECT n + 1 FROM g WHERE n < {b}) \
             SELECT n FROM g) AS s"
        )
    }
}

/// One article and story, `alerts` alerts on it, and deliveries `from..to`
/// (1-based) to `SINKS` sinks per alert: all delivered but every 1,000th dead,
/// then 100 pending and 50 failed at the end of the large fill.
fn deliveries_sql(postgres: bool, from: i64, to: i64, now: DateTime<Utc>) -> String {
    let now = text(now);
    let alerts = alerts_for(to);
    let first_alert = alerts_for(from - 1) + 1;
    let status = "CASE WHEN n > 150 AND n <= 250 THEN 'pending'
                       WHEN n <= 150 AND n > 100 THEN 'failed'
                       WHEN n % 1000 = 0 THEN 'dead' ELSE 'delivered' END";
    let cast = if postgres { "::timestamptz" } else { "" };
    let base = if from == 1 {
        format!(
            "INSERT INTO articles (id, dedup_key, title, published_at, first_seen_at, changed_at)
             VALUES (1, 'bench', 'Bench', '{now}'{cast}, '{now}'{cast}, '{now}'{cast});
             INSERT INTO stories (id, first_article_id, created_at)
             VALUES (1, 1, '{now}'{cast});"
        )
    } else {
        String::new()
    };
    // Open deliveries are numbered from the top down, so the large fill's
    // last rows (n counted from `to`) are the queue.
    format!(
        "{base}
         INSERT INTO alerts (id, rule, story_id, article_id, matched, created_at)
         SELECT n, 'rule-' || n, 1, 1, '[]', '{now}'{cast} FROM {alerts_series};
         INSERT INTO deliveries (id, delivery_id, alert_id, sink, status, next_attempt_at,
                                 created_at, queued_at)
         SELECT m, 'd-' || m, (m - 1) / {SINKS} + 1, 'sink-' || ((m - 1) % {SINKS}),
                {status}, '{now}'{cast}, '{now}'{cast}, '{now}'{cast}
         FROM (SELECT n AS m, {to} + 1 - n AS n FROM {deliveries_series}) AS d",
        alerts_series = series(postgres, first_alert, alerts),
        deliveries_series = series(postgres, from, to),
    )
}

async fn fill(url: &str, postgres: bool, have: &Size, want: &Size, now: DateTime<Utc>) {
    if want.feeds > have.feeds {
        execute(url, &feeds_sql(postgres, have.feeds + 1, want.feeds, now)).await;
    }
    if want.deliveries > have.deliveries {
        let (from, to) = (have.deliveries + 1, want.deliveries);
        if postgres {
            execute(
                url,
                &format!(
                    "ALTER TABLE deliveries DISABLE TRIGGER deliveries_counted_insert;
                     {}; ALTER TABLE deliveries ENABLE TRIGGER deliveries_counted_insert;
                     UPDATE delivery_totals SET deliveries = 0;
                     UPDATE delivery_totals AS c SET deliveries = n.deliveries
                     FROM (SELECT status, count(*) AS deliveries FROM deliveries
                           WHERE status IN ('delivered', 'dead') GROUP BY status) AS n
                     WHERE c.status = n.status AND c.shard = 0;",
                    deliveries_sql(true, from, to, now)
                ),
            )
            .await;
            execute(url, "VACUUM ANALYZE deliveries").await;
            execute(url, "VACUUM ANALYZE feeds").await;
        } else {
            execute(url, &deliveries_sql(false, from, to, now)).await;
            execute(url, "ANALYZE").await;
        }
    }
}

/// Median and 95th percentile of `samples` runs of `timed`, each after `reset`.
async fn measure<R, T, FR, FT>(samples: usize, mut reset: R, mut timed: T) -> (Duration, Duration)
where
    R: FnMut() -> FR,
    FR: Future<Output = ()>,
    T: FnMut() -> FT,
    FT: Future<Output = ()>,
{
    let mut taken = Vec::with_capacity(samples);
    for _ in 0..samples {
        reset().await;
        let started = Instant::now();
        timed().await;
        taken.push(started.elapsed());
    }
    taken.sort();
    (taken[samples / 2], taken[samples * 95 / 100])
}

fn report(label: &str, (median, p95): (Duration, Duration)) {
    println!(
        "  {label:<44} median {:>9.1} µs   p95 {:>9.1} µs",
        median.as_secs_f64() * 1e6,
        p95.as_secs_f64() * 1e6
    );
}

async fn bench_size(url: &str, store: &Store, size: &Size, now: DateTime<Utc>) {
    let lease_until = now + TimeDelta::minutes(5);
    let clear = || async {
        execute(
            url,
            "UPDATE feeds SET lease_owner = NULL, lease_until = NULL
             WHERE lease_owner IS NOT NULL",
        )
        .await;
    };
    let claim = || async {
        match store
            .claim_due_feeds("bench", now, lease_until, CLAIM_LIMIT)
            .await
        {
            Ok(claimed) => assert_eq!(claimed.len(), DUE_FEEDS.min(size.feeds) as usize),
            Err(error) => panic!("claim_due_feeds: {error}"),
        }
    };
    report(
        "claim_due_feeds (20 due)",
        measure(SAMPLES, clear, claim).await,
    );
    clear().await;
    let nothing = || async {};
    let next = || async {
        if let Err(error) = store.next_feed_due_at().await {
            panic!("next_feed_due_at: {error}");
        }
    };
    report("next_feed_due_at", measure(SAMPLES, nothing, next).await);
    let scrape = || async {
        if let Err(error) = DatabaseState::read(store).await {
            panic!("metrics read: {error}");
        }
    };
    report(
        "/metrics database read (maintained)",
        measure(SAMPLES, nothing, scrape).await,
    );
    let recount = || async {
        let feeds = store.count_feeds_by_status().await;
        let deliveries = store.count_deliveries_by_status().await;
        if let Err(error) = feeds.and(deliveries) {
            panic!("recount: {error}");
        }
    };
    report(
        "recount with count(*) (before)",
        measure(RECOUNT_SAMPLES, nothing, recount).await,
    );
    // Both must agree, or the maintained figures are wrong.
    let maintained = DatabaseState::read(store).await;
    let feeds = store.count_feeds_by_status().await;
    let deliveries = store.count_deliveries_by_status().await;
    match (maintained, feeds, deliveries) {
        (Ok(m), Ok(mut f), Ok(mut d)) => {
            let (mut mf, mut md) = (m.feeds, m.deliveries);
            for list in [&mut mf, &mut f] {
                list.sort_by_key(|(s, _)| s.as_str());
            }
            for list in [&mut md, &mut d] {
                list.sort_by_key(|(s, _)| s.as_str());
            }
            assert_eq!((mf, md), (f, d), "maintained counts differ from count(*)");
        }
        _ => panic!("cannot read the counts to compare"),
    }
}

async fn run(backend: &str, url: &str) {
    let store = match Store::connect(url).await {
        Ok(store) => store,
        Err(error) => panic!("{backend}: cannot connect: {error}"),
    };
    if let Err(error) = store.migrate().await {
        panic!("{backend}: cannot migrate: {error}");
    }
    let postgres = backend == "postgres";
    let now = Utc::now();
    let mut have = Size {
        feeds: 0,
        deliveries: 0,
    };
    for size in sizes() {
        fill(url, postgres, &have, &size, now).await;
        println!(
            "{backend}, {} feeds, {} deliveries:",
            size.feeds, size.deliveries
        );
        bench_size(url, &store, &size, now).await;
        have = size;
    }
}

fn main() {
    let backends =
        std::env::var("HERALD_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".to_owned());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => panic!("tokio runtime: {error}"),
    };
    runtime.block_on(async {
        for backend in backends.split(',') {
            match backend {
                "sqlite" => {
                    let dir = match tempfile::tempdir() {
                        Ok(dir) => dir,
                        Err(error) => panic!("temp dir: {error}"),
                    };
                    let url = format!("sqlite://{}", dir.path().join("herald.db").display());
                    run("sqlite", &url).await;
                }
                "postgres" => match postgres_url("hot_paths").await {
                    Some(url) => {
                        run("postgres", &url).await;
                        drop_postgres_database(&url).await;
                    }
                    None => println!("postgres: skipped (no server given or reachable)"),
                },
                other => println!("{other}: unknown backend, skipped"),
            }
        }
    });
}
