//! Ingest throughput: documents of 500 items fetched from a local HTTP server, parsed,
//! normalised, deduplicated, clustered into stories and stored — into PostgreSQL
//! (when a server is given) and SQLite. Three cases:
//!
//! - `new`: every item a new article on a story of its own (generated prose);
//! - `half_duplicates`: half of them already stored from another feed (same URL);
//! - `near_copies`: every item a near-copy of every other and of every earlier
//!   round's (one 50-word vocabulary, rotated): the worst case for story
//!   clustering, as a feed's template or a syndicated text repeated all day.
//!
//! PostgreSQL comes from HERALD_BENCH_DATABASE_URL, TEST_DATABASE_URL or DATABASE_URL;
//! a fresh database is created on it for the run and dropped afterwards.
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
use herald::domain::feed::FeedSpec;
use herald::fetch::{FetchSettings, Fetcher};
use herald::ingest;
use herald::rules::{Matcher, Rule, RuleQuery};
use herald::store::Store;

mod support;
use support::{drop_postgres_database, postgres_url};

// Shared with the story benches, which use all of it.
#[allow(dead_code)]
#[path = "support/prose.rs"]
mod prose;
use prose::{Prose, Random};

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

#[derive(Clone, Copy)]
enum Text {
    /// Each article's own prose: different stories.
    Prose,
    /// Rotations of one word cycle: near-copies of one text.
    Rotations,
}

/// An article's title and body. Seeded by the article's link, so an item
/// shared with another feed carries the same text there.
fn article_text(
    text: Text,
    prose: &Prose,
    link: &str,
    round: usize,
    i: usize,
    feed: usize,
) -> (String, String) {
    match text {
        Text::Prose => {
            let mut random = Random(link.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
                (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
            }));
            let mut title = prose.text(60, &mut random);
            // A few items for the rule that fires.
            if i.is_multiple_of(50) {
                title.insert_str(0, "Delegation travels to Tehran: ");
            }
            (title, prose.text(800, &mut random))
        }
        Text::Rotations => (
            sentence(round * 7919 + i, 9),
            format!(
                "<p>{}</p><p>{}</p>",
                sentence(i * 13 + feed, 60),
                sentence(i * 7 + round, 50)
            ),
        ),
    }
}

/// An RSS 2.0 document of ITEMS items; items `0..shared` link to URLs shared with
/// other feeds of the same round (duplicates across feeds), the rest are unique.
fn document(text: Text, prose: &Prose, round: usize, feed: usize, shared: usize) -> Vec<u8> {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><rss version=\"2.0\"><channel><title>Bench</title><link>https://news.example/</link>",
    );
    for i in 0..ITEMS {
        let (link, key) = if i < shared {
            let key = format!("https://wire.example/{round}/story-{i}");
            (format!("{key}?utm_source=feed{feed}"), key)
        } else {
            let link = format!("https://news{feed}.example/{round}/article-{i}");
            (link.clone(), link)
        };
        let (title, body) = article_text(text, prose, &key, round, i, feed);
        let body = body
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        xml.push_str(&format!(
            "<item><title>{title}</title><link>{link}</link><guid>{link}</guid><pubDate>Sat, 28 Nov 2026 0{}:{:02}:00 GMT</pubDate><description>{body}</description></item>",
            i % 10,
            i % 60,
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
    let watch = Arc::new(watch());
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
    let prose = Prose::new(&mut Random(0x0070_5e00));
    let mut round = 0;
    for (case, text, shared) in [
        ("new", Text::Prose, 0),
        ("half_duplicates", Text::Prose, ITEMS / 2),
        ("near_copies", Text::Rotations, 0),
    ] {
        group.bench_function(case, |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        round += 1;
                        // The duplicates of this round: stored first from another feed, untimed.
                        let feeds = store
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
                            let warm = document(text, &prose, round, 0, shared);
                            let base = url::Url::parse(&feed_url).unwrap();
                            let source = ingest::Source {
                                feed_id: feeds[0].id,
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
                        *body.lock().unwrap() = document(text, &prose, round, 1, shared);
                        let mut feed = feeds[1].clone();
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
        Some(url) => {
            bench_backend(c, &runtime, "postgres", &url);
            runtime.block_on(drop_postgres_database(&url));
        }
        None => eprintln!("ingest/postgres skipped: set HERALD_BENCH_DATABASE_URL"),
    }
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
    bench_backend(c, &runtime, "sqlite", &sqlite);
}

criterion_group!(benches, ingest);
criterion_main!(benches);
