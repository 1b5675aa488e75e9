//! A full polling cycle of 10,000 feeds that have not changed: a local
//! server answers conditional requests with 304, and the release `herald` binary
//! polls every feed. Reported: wall time and requests/s of one `herald poll` pass
//! of 304s, peak resident memory of that process, and of `herald run` over two
//! cycles, and `herald run`'s CPU while idle between cycles.
//!
//! All feeds are on 127.0.0.1, so `per_host` is raised to `concurrency`: the
//! run stands for 10,000 feeds spread over many publishers.
//!
//! PostgreSQL comes from HERALD_BENCH_DATABASE_URL, TEST_DATABASE_URL or
//! DATABASE_URL (a fresh database, dropped afterwards); SQLite always runs.
//!
//! cargo bench --bench poll_cycle

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

mod support;
use support::{drop_postgres_database, postgres_url};

const FEEDS: usize = 10_000;
const ETAG: &str = "\"v1\"";
/// `herald run`'s interval: long enough to see it idle between two cycles.
const RUN_INTERVAL: Duration = Duration::from_secs(30);
const IDLE_AFTER: Duration = Duration::from_secs(5);
const IDLE_WINDOW: Duration = Duration::from_secs(10);

/// What the feed server has seen.
#[derive(Default)]
struct Traffic {
    requests: AtomicUsize,
    /// The first request since the last reset.
    first: Mutex<Option<Instant>>,
}

async fn feed(
    Path(n): Path<usize>,
    State(traffic): State<Arc<Traffic>>,
    headers: HeaderMap,
) -> Response {
    traffic.requests.fetch_add(1, Ordering::Relaxed);
    traffic
        .first
        .lock()
        .unwrap()
        .get_or_insert_with(Instant::now);
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|tag| tag.as_bytes() == ETAG.as_bytes())
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let body = format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Feed {n}</title>\
         <link>https://publisher-{n}.example/</link><description>d</description>\
         <item><guid>item-{n}</guid><link>https://publisher-{n}.example/story</link>\
         <title>Story {n}</title><description>Text of story {n}.</description></item>\
         </channel></rss>"
    );
    (
        [
            (header::CONTENT_TYPE, "application/rss+xml"),
            (header::ETAG, ETAG),
        ],
        body,
    )
        .into_response()
}

/// The kernel's high-water mark of the process's resident memory, in MB.
fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1000.0)
}

/// User + system CPU time the process has used, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Waits for `child`, sampling its peak memory until it exits.
fn wait_measuring(mut child: Child) -> (std::process::ExitStatus, f64) {
    let mut peak: f64 = 0.0;
    loop {
        if let Some(mb) = peak_rss_mb(child.id()) {
            peak = peak.max(mb);
        }
        if let Some(status) = child.try_wait().unwrap() {
            return (status, peak);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn herald(dir: &std::path::Path, database_url: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
    command
        .current_dir(dir)
        .args(["--config", "herald.toml"])
        .args(args)
        .env("HERALD_DATABASE_URL", database_url)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

fn measure(label: &str, database_url: &str, base: &str, traffic: &Traffic) {
    let requests = &traffic.requests;
    let dir = tempfile::tempdir().unwrap();
    let mut config = format!(
        "[fetch]\ninterval = \"{}s\"\nconcurrency = 64\nper_host = 64\n\n",
        RUN_INTERVAL.as_secs()
    );
    for n in 0..FEEDS {
        config.push_str(&format!("[[feeds]]\nurl = \"{base}/f/{n}\"\n\n"));
    }
    std::fs::write(dir.path().join("herald.toml"), config).unwrap();

    // First pass: every feed new, its one item stored, its ETag kept.
    let status = herald(dir.path(), database_url, &["poll"])
        .status()
        .unwrap();
    assert!(status.success(), "first poll: {status}");

    let before = requests.load(Ordering::Relaxed);
    let started = Instant::now();
    let child = herald(dir.path(), database_url, &["poll"]).spawn().unwrap();
    let (status, peak) = wait_measuring(child);
    let wall = started.elapsed();
    assert!(status.success(), "second poll: {status}");
    let made = requests.load(Ordering::Relaxed) - before;
    assert_eq!(made, FEEDS);
    println!(
        "poll_cycle/{label}: {FEEDS} feeds, all 304: herald poll {:.2} s wall, {:.0} requests/s, \
         peak RSS {:.1} MB",
        wall.as_secs_f64(),
        FEEDS as f64 / wall.as_secs_f64(),
        peak
    );

    // herald run: a cycle (all 304 now), idle, the next cycle.
    let before = requests.load(Ordering::Relaxed);
    *traffic.first.lock().unwrap() = None;
    let mut child = herald(dir.path(), database_url, &["run"]).spawn().unwrap();
    let pid = child.id();
    let started = Instant::now();
    let mut peak: f64 = 0.0;
    let mut cycle_done = None;
    let mut idle_from = None;
    let mut idle_cpu = None;
    while started.elapsed() < RUN_INTERVAL * 2 + Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
        peak = peak.max(peak_rss_mb(pid).unwrap_or(0.0));
        let made = requests.load(Ordering::Relaxed) - before;
        if cycle_done.is_none() && made >= FEEDS {
            cycle_done = Some(Instant::now());
        }
        // Idle from a few seconds after the cycle's last request (its last
        // results are still being written) until well before the next cycle.
        if idle_from.is_none() && cycle_done.is_some_and(|done| done.elapsed() >= IDLE_AFTER) {
            idle_from = Some((Instant::now(), cpu_ticks(pid).unwrap_or(0)));
        }
        if let (Some((since, ticks)), None) = (idle_from, idle_cpu)
            && since.elapsed() >= IDLE_WINDOW
        {
            let used = cpu_ticks(pid).unwrap_or(0).saturating_sub(ticks);
            // Linux reports CPU time in 1/100 s.
            idle_cpu = Some(used as f64 / 100.0 / since.elapsed().as_secs_f64() * 100.0);
        }
    }
    let made = requests.load(Ordering::Relaxed) - before;
    let cycle_started = *traffic.first.lock().unwrap();
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "herald run: {status}");
    println!(
        "poll_cycle/{label}: herald run: a cycle of 304s from first to last request {:.2} s \
         (±5 % jitter of the {} s interval included), {made} requests in {:.0} s, \
         peak RSS {:.1} MB, CPU while idle {:.2} % of a core",
        match (cycle_started, cycle_done) {
            (Some(first), Some(done)) => (done - first).as_secs_f64(),
            _ => f64::NAN,
        },
        RUN_INTERVAL.as_secs(),
        started.elapsed().as_secs_f64(),
        peak,
        idle_cpu.unwrap_or(f64::NAN),
    );
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let traffic = Arc::new(Traffic::default());
    let base = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/f/{n}", get(feed))
            .with_state(Arc::clone(&traffic));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    });
    match runtime.block_on(postgres_url("poll_cycle")) {
        Some(url) => {
            measure("postgres", &url, &base, &traffic);
            runtime.block_on(drop_postgres_database(&url));
        }
        None => eprintln!("poll_cycle/postgres skipped: set HERALD_BENCH_DATABASE_URL"),
    }
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
    measure("sqlite", &sqlite, &base, &traffic);
}
