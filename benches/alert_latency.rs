//! Alert latency: how long after herald first sees an item the webhook receiver has
//! the alert. `herald run`'s work (`daemon::work`) runs in this process against a local
//! feed server and receiver; each round publishes one new item that matches a rule
//! and polls the feed once, as the scheduler would.
//!
//! Measured per alert: the receiver's arrival time minus the article's
//! `first_seen_at` from the payload, which is stamped when the poll that stored it
//! began. The figure therefore includes fetching and parsing the feed and
//! committing the article, and bounds "stored → first attempt" from above.
//!
//! PostgreSQL comes from HERALD_BENCH_DATABASE_URL, TEST_DATABASE_URL or
//! DATABASE_URL (a fresh database, dropped afterwards); SQLite always runs.
//!
//! cargo bench --bench alert_latency

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use herald::app::App;
use herald::config;

mod support;
use support::{drop_postgres_database, postgres_url};

/// Alerts measured per backend.
const ALERTS: usize = 200;
/// Items kept in the feed document, as a real feed keeps its latest.
const FEED_LENGTH: usize = 20;

#[derive(Default)]
struct Feed {
    items: Vec<String>,
}

impl Feed {
    fn publish(&mut self, n: usize) {
        let published = Utc::now().to_rfc2822();
        self.items.insert(
            0,
            format!(
                "<item><guid>item-{n}</guid><link>https://wire.example/{n}</link>\
                 <title>North Korea delegation in Iran, update {n}</title>\
                 <description>Talks between North Korea and Iran continued.</description>\
                 <pubDate>{published}</pubDate></item>"
            ),
        );
        self.items.truncate(FEED_LENGTH);
    }

    fn document(&self) -> String {
        format!(
            "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Wire</title>\
             <link>https://wire.example/</link><description>d</description>{}</channel></rss>",
            self.items.concat()
        )
    }
}

/// Per alert: (first seen by herald, received by the webhook).
type Arrivals = Arc<Mutex<Vec<(DateTime<Utc>, DateTime<Utc>)>>>;

async fn serve_feed(State(feed): State<Arc<Mutex<Feed>>>) -> impl IntoResponse {
    let body = feed.lock().unwrap().document();
    ([(header::CONTENT_TYPE, "application/rss+xml")], body)
}

async fn receive(State(arrivals): State<Arrivals>, body: axum::body::Bytes) -> &'static str {
    let received = Utc::now();
    let payload: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let first_seen = payload["article"]["first_seen_at"].as_str().unwrap();
    let first_seen = DateTime::parse_from_rfc3339(first_seen).unwrap().to_utc();
    arrivals.lock().unwrap().push((first_seen, received));
    "ok"
}

async fn start_servers(feed: Arc<Mutex<Feed>>, arrivals: Arrivals) -> (String, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let routes = Router::new()
        .route("/feed", get(serve_feed))
        .with_state(feed)
        .merge(
            Router::new()
                .route("/hook", post(receive))
                .with_state(arrivals),
        );
    tokio::spawn(async move { axum::serve(listener, routes).await.unwrap() });
    (format!("http://{addr}/feed"), format!("http://{addr}/hook"))
}

async fn measure(label: &str, database_url: &str) {
    let feed = Arc::new(Mutex::new(Feed::default()));
    feed.lock().unwrap().publish(0);
    let arrivals: Arrivals = Arc::default();
    let (feed_url, hook_url) = start_servers(Arc::clone(&feed), Arc::clone(&arrivals)).await;

    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("herald.toml");
    std::fs::write(
        &config_path,
        format!(
            "[[feeds]]\nurl = \"{feed_url}\"\ninterval = \"1h\"\n\n\
             [sinks.hook]\ntype = \"webhook\"\nurl = \"{hook_url}\"\n\n\
             [rules.nk-iran]\nquery = '\"North Korea\" Iran'\nsinks = [\"hook\"]\n"
        ),
    )
    .unwrap();
    let database_url = database_url.to_owned();
    let env = move |name: &str| (name == config::ENV_DATABASE_URL).then(|| database_url.clone());
    let settings = config::load_with_env(&config_path, &env).unwrap();
    let app = Arc::new(App::open(settings).await.unwrap());
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let (_apps, current) = tokio::sync::watch::channel(Arc::clone(&app));
    let running = tokio::spawn(herald::daemon::work(current, shutdown));

    // The daemon's first poll stores the back catalogue, which never alerts.
    let feeds = loop {
        let feeds = app.configured_feeds().await.unwrap();
        if feeds.iter().all(|f| f.record.backfilled_at.is_some()) {
            break feeds;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut polls = Vec::with_capacity(ALERTS);
    for n in 1..=ALERTS {
        feed.lock().unwrap().publish(n);
        let poll_started = std::time::Instant::now();
        let reports = app.poll_once(&feeds).await;
        polls.push(poll_started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(reports[0].alerts, 1, "{reports:?}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while arrivals.lock().unwrap().len() < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "alert {n} never arrived"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let _ = stop.send(true);
    running.await.unwrap();

    let latencies: Vec<f64> = arrivals
        .lock()
        .unwrap()
        .iter()
        .map(|(seen, received)| (*received - *seen).num_microseconds().unwrap() as f64 / 1000.0)
        .collect();
    let (latency, poll) = (Quantiles::of(latencies), Quantiles::of(polls));
    println!(
        "alert_latency/{label}: {ALERTS} alerts, first seen → webhook received: \
         median {:.1} ms, p99 {:.1} ms, max {:.1} ms; of which the poll (fetch, parse, \
         match, store): median {:.1} ms, p99 {:.1} ms",
        latency.median, latency.p99, latency.max, poll.median, poll.p99,
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
        match postgres_url("alert_latency").await {
            Some(url) => {
                measure("postgres", &url).await;
                drop_postgres_database(&url).await;
            }
            None => eprintln!("alert_latency/postgres skipped: set HERALD_BENCH_DATABASE_URL"),
        }
        let dir = tempfile::tempdir().unwrap();
        let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
        measure("sqlite", &sqlite).await;
    });
}

struct Quantiles {
    median: f64,
    p99: f64,
    max: f64,
}

impl Quantiles {
    fn of(mut samples: Vec<f64>) -> Quantiles {
        samples.sort_by(f64::total_cmp);
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        Quantiles {
            median: at(0.5),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}
