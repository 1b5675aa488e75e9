//! Ingest throughput: documents of 500 items fetched from a local HTTP server, parsed,
//! normalised, deduplicated and stored — into PostgreSQL (when a server is given) and
//! SQLite. Two cases: all items new, and half of them already stored from another feed.
//!
//! PostgreSQL comes from HERALD_BENCH_DATABASE_URL, TEST_DATABASE_URL or DATABASE_URL;
//! a fresh database is created on it for the run.
//!
//! cargo bench --bench ingest

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use herald::fetch::{FetchSettings, Fetcher};
use herald::ingest;
use herald::rules::{Matcher, Rule, RuleQuery};
use herald::store::{FeedSpec, Store};

mod support;
use support::postgres_url;

const ITEMS: usize = 500;

const WORDS: &[&str] = &[
    "government",
    "minister",
    "talks",
    "election",
    "officials",
    "said",
    "sanctions",
    "border",
    "economy",
    "market",
    "president",
    "parliament",
    "agreement",
    "security",
    "council",
    "report",
    "delegation",
    "foreign",
    "trade",
    "energy",
    "military",
    "court",
    "ruling",
    "protest",
    "vote",
    "inflation",
    "central",
    "bank",
    "rates",
    "ceasefire",
    "humanitarian",
    "aid",
    "crisis",
    "investigation",
    "police",
    "climate",
    "summit",
    "leaders",
    "Tehran",
    "Pyongyang",
    "Berlin",
    "Washington",
    "Beijing",
    "Moscow",
    "Kyiv",
    "Paris",
    "London",
    "Tokyo",
    "Delhi",
    "Brasília",
];

fn sentence(seed: usize, words: usize) -> String {
    (0..words)
        .map(|i| WORDS[(seed.wrapping_mul(31).wrapping_add(i * 17)) % WORDS.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

/// An RSS 2.0 document of ITEMS items; items `0..shared` link to URLs shared with
/// other feeds of the same round (duplicates across feeds), the rest are unique.
fn document(round: usize, feed: usize, shared: usize) -> Vec<u8> {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><rss version=\"2.0\"><channel><title>Bench</title><link>https://news.example/</link>",
    );
    for i in 0..ITEMS {
        let link = if i < shared {
            format!("https://wire.example/{round}/story-{i}?utm_source=feed{feed}")
        } else {
            format!("https://news{feed}.example/{round}/article-{i}")
        };
        xml.push_str(&format!(
            "<item><title>{}</title><link>{link}</link><guid>{link}</guid><pubDate>Sat, 28 Nov 2026 0{}:{:02}:00 GMT</pubDate><description>&lt;p&gt;{}&lt;/p&gt;&lt;p&gt;{}&lt;/p&gt;</description></item>",
            sentence(round * 7919 + i, 9),
            i % 10,
            i % 60,
            sentence(i * 13 + feed, 60),
            sentence(i * 7 + round, 50),
        ));
    }
    xml.push_str("</channel></rss>");
    xml.into_bytes()
}

/// 1,000 watch rules, as a modest deployment has: almost none fire, a few do.
fn watch() -> ingest::Watch {
    let mut rules: Vec<Rule> = (0..1000)
        .map(|i| Rule {
            name: format!("quiet-{i}"),
            query: RuleQuery::parse(&format!("zq{i} {}", WORDS[i % WORDS.len()])).unwrap(),
            tags: Vec::new(),
        })
        .collect();
    rules.push(Rule {
        name: "delegation".into(),
        query: RuleQuery::parse("delegation NEAR/10 Tehran").unwrap(),
        tags: Vec::new(),
    });
    ingest::Watch {
        matcher: Matcher::compile(rules),
        sinks: Default::default(),
        max_age: Duration::from_secs(100 * 365 * 86_400),
        ..ingest::Watch::default()
    }
}

type Body = Arc<Mutex<Vec<u8>>>;

async fn serve(State(body): State<Body>) -> impl IntoResponse {
    let bytes = body.lock().unwrap().clone();
    ([(header::CONTENT_TYPE, "application/rss+xml")], bytes)
}

async fn start_server(body: Body) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/feed", get(serve)).with_state(body);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/feed")
}

fn bench_backend(c: &mut Criterion, runtime: &tokio::runtime::Runtime, label: &str, url: &str) {
    let watch = watch();
    let (store, fetcher, feed_url, body) = runtime.block_on(async {
        let store = Store::connect(url).await.unwrap();
        store.migrate().await.unwrap();
        let body: Body = Arc::new(Mutex::new(Vec::new()));
        let feed_url = start_server(body.clone()).await;
        let fetcher = Fetcher::new(FetchSettings::default()).unwrap();
        (store, fetcher, feed_url, body)
    });
    let mut group = c.benchmark_group(format!("ingest/{label}"));
    group.throughput(Throughput::Elements(ITEMS as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    let mut round = 0;
    for (case, shared) in [("new", 0), ("half_duplicates", ITEMS / 2)] {
        group.bench_function(case, |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        round += 1;
                        // The duplicates of this round: stored first from another feed, untimed.
                        let ids = store
                            .sync_feeds(&[
                                FeedSpec {
                                    url: format!("{feed_url}?round={round}&f=1"),
                                    name: None,
                                },
                                FeedSpec {
                                    url: format!("{feed_url}?round={round}&f=2"),
                                    name: None,
                                },
                            ])
                            .await
                            .unwrap();
                        if shared > 0 {
                            let warm = document(round, 0, shared);
                            let base = url::Url::parse(&feed_url).unwrap();
                            let source = ingest::Source {
                                feed_id: ids[0],
                                base_url: &base,
                                label: "wire",
                                tags: &[],
                                backfilled: true,
                            };
                            let now = chrono::Utc::now();
                            ingest::store_document(&store, &watch, &source, &warm, None, now)
                                .await
                                .unwrap();
                        }
                        *body.lock().unwrap() = document(round, 1, shared);
                        let mut feed = store.feed(ids[1]).await.unwrap().unwrap();
                        feed.fetch_url = feed_url.clone();
                        // Past its back catalogue: new items are matched and may alert.
                        feed.backfilled_at = Some(chrono::Utc::now());
                        let interval = Duration::from_secs(60);
                        let start = Instant::now();
                        let report =
                            ingest::poll_feed(&store, &fetcher, &watch, &feed, &[], interval).await;
                        total += start.elapsed();
                        assert_eq!(report.error, None);
                        assert_eq!(report.new + report.merged, ITEMS);
                    }
                    total
                })
            })
        });
    }
    group.finish();
}

fn ingest(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    match runtime.block_on(postgres_url("ingest")) {
        Some(url) => bench_backend(c, &runtime, "postgres", &url),
        None => eprintln!("ingest/postgres skipped: set HERALD_BENCH_DATABASE_URL"),
    }
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
    bench_backend(c, &runtime, "sqlite", &sqlite);
}

criterion_group!(benches, ingest);
criterion_main!(benches);
