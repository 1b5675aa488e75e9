//! Alerts per second to a webhook receiver that takes 200 ms to answer, with
//! one delivery in flight (the default: strict order) and with
//! `max_in_flight = 8`. One poll records the alerts; the clock runs from the
//! first dispatch pass until the receiver has them all.
//!
//! PostgreSQL comes from HERALD_BENCH_DATABASE_URL, TEST_DATABASE_URL or
//! DATABASE_URL (a fresh database, dropped afterwards); SQLite always runs.
//!
//! cargo bench --bench slow_receiver

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use chrono::Utc;
use herald::app::App;
use herald::config;

mod support;
use support::{drop_postgres_database, postgres_url};

/// Alerts sent per measurement.
const ALERTS: usize = 40;
/// How long the receiver takes to answer each.
const ANSWER: Duration = Duration::from_millis(200);

struct Shared {
    /// Items in the feed document (0 until the back catalogue was read).
    items: AtomicUsize,
    received: AtomicUsize,
}

async fn serve_feed(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let published = Utc::now().to_rfc2822();
    let items: String = (0..shared.items.load(Ordering::SeqCst))
        .map(|n| {
            format!(
                "<item><guid>item-{n}</guid><link>https://wire.example/{n}</link>\
                 <title>q{n}a q{n}b Iran q{n}c</title>\
                 <description>Iran and q{n}d q{n}e.</description>\
                 <pubDate>{published}</pubDate></item>"
            )
        })
        .collect();
    let body = format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Wire</title>\
         <link>https://wire.example/</link><description>d</description>{items}</channel></rss>"
    );
    ([(header::CONTENT_TYPE, "application/rss+xml")], body)
}

async fn receive(State(shared): State<Arc<Shared>>) -> &'static str {
    tokio::time::sleep(ANSWER).await;
    shared.received.fetch_add(1, Ordering::SeqCst);
    "ok"
}

async fn measure(label: &str, database_url: &str, in_flight: usize) {
    let shared = Arc::new(Shared {
        items: AtomicUsize::new(0),
        received: AtomicUsize::new(0),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let routes = Router::new()
        .route("/feed", get(serve_feed))
        .route("/hook", post(receive))
        .with_state(Arc::clone(&shared));
    tokio::spawn(async move { axum::serve(listener, routes).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("herald.toml");
    std::fs::write(
        &config_path,
        format!(
            "[[feeds]]\nurl = \"http://{addr}/feed\"\n\n\
             [sinks.hook]\ntype = \"webhook\"\nurl = \"http://{addr}/hook\"\n\
             max_in_flight = {in_flight}\n\n\
             [rules.iran]\nquery = 'Iran'\nsinks = [\"hook\"]\n"
        ),
    )
    .unwrap();
    let database_url = database_url.to_owned();
    let env = move |name: &str| (name == config::ENV_DATABASE_URL).then(|| database_url.clone());
    let settings = config::load_with_env(&config_path, &env).unwrap();
    let app = App::open(settings).await.unwrap();
    let feeds = app.configured_feeds().await.unwrap();
    app.poll_once(&feeds).await;
    // Read again: the first fetch (the back catalogue, which never alerts) is done.
    let feeds = app.configured_feeds().await.unwrap();
    shared.items.store(ALERTS, Ordering::SeqCst);
    let reports = app.poll_once(&feeds).await;
    assert_eq!(reports[0].alerts, ALERTS, "{reports:?}");

    let started = Instant::now();
    while shared.received.load(Ordering::SeqCst) < ALERTS {
        let report = app.dispatch_once().await.unwrap();
        assert_eq!(report.failed + report.dead, 0, "{report:?}");
        if report.delivered == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let elapsed = started.elapsed();
    println!(
        "slow_receiver/{label}/in_flight={in_flight}: {ALERTS} alerts to a receiver answering in \
         {} ms: {:.2} s, {:.1} alerts/s",
        ANSWER.as_millis(),
        elapsed.as_secs_f64(),
        ALERTS as f64 / elapsed.as_secs_f64()
    );
}

fn main() {
    // `cargo bench` passes criterion-style flags; `cargo test --benches` passes
    // `--bench` too, so only a bare `--list` (test discovery) is skipped.
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        for in_flight in [1, 8] {
            match postgres_url("slow_receiver").await {
                Some(url) => {
                    measure("postgres", &url, in_flight).await;
                    drop_postgres_database(&url).await;
                }
                None => eprintln!("slow_receiver/postgres skipped: set HERALD_BENCH_DATABASE_URL"),
            }
            let dir = tempfile::tempdir().unwrap();
            let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
            measure("sqlite", &sqlite, in_flight).await;
        }
    });
}
