//! The HTTP API as a client sees it: real requests to the API served on 127.0.0.1,
//! over a real store of either backend, fed by a local feed server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use herald::api::{self, ApiState};
use herald::config::{ApiLimits, Secret};
use herald::rules::{Rule, RuleQuery};
use herald::search::{self, Scan};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::{Connection, Executor, PgConnection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::both_backends;
use crate::support::db::{self, Backend};
use crate::support::feed_server::{FeedServer, Item, Route};
use crate::support::herald::TestHerald;
use crate::support::process::Daemon;
use crate::support::receiver::{Receiver, Reply};

const TOKEN: &str = "api-token-7f3a9c";

/// The part of a Slack webhook URL that is the credential.
const SLACK_SECRET: &str = "T0SECRET/B0SECRET/xoxSECRETpart";

/// An item published now, so that the default `since=7d` window holds it.
fn fresh(n: u32, title: &str, body: &str) -> Item {
    Item {
        guid: format!("guid-{n}"),
        link: format!("https://news.example/{n}"),
        title: title.into(),
        description: format!("<p>{body}</p>"),
        pub_date: Some(Utc::now() - chrono::Duration::minutes(n.into())),
    }
}

/// herald and its API, served on an ephemeral loopback port.
struct TestApi {
    herald: TestHerald,
    base: String,
    client: reqwest::Client,
}

impl TestApi {
    async fn start(backend: Backend, config: &str, token: Option<&str>) -> TestApi {
        let herald = TestHerald::start(backend, config).await;
        let state = ApiState {
            store: herald.app.store.clone(),
            metrics: Arc::clone(&herald.app.metrics),
            token: token.map(Secret::new),
            feeds: tokio::sync::watch::channel(std::sync::Arc::new(
                herald.app.settings.feeds.clone(),
            ))
            .1,
            redactor: tokio::sync::watch::channel(herald.app.redactor().clone()).1,
            rules: tokio::sync::watch::channel(herald.app.rule_names()).1,
            sinks: tokio::sync::watch::channel(herald.app.sink_kinds()).1,
            stories: tokio::sync::watch::channel(herald.app.watch.stories).1,
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(api::serve(
            listener,
            state,
            ApiLimits::default(),
            std::future::pending(),
        ));
        TestApi {
            herald,
            base,
            client: reqwest::Client::new(),
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        self.send(self.client.get(format!("{}{path}", self.base)))
            .await
    }

    async fn get_with_token(&self, path: &str, token: &str) -> (StatusCode, String) {
        let request = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token);
        self.send(request).await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (StatusCode, String) {
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.text().await.unwrap())
    }

    async fn get_json(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
    }

    /// The error message of a JSON error answer with `status`.
    async fn error(&self, path: &str, status: StatusCode) -> String {
        let (got, body) = self.get(path).await;
        assert_eq!(got, status, "{path}: {body}");
        let json: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        json["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}: no error message in {body}"))
            .to_owned()
    }
}

/// herald watching one feed for "North Korea" Iran, alerting a Slack sink on
/// `receiver`, with the feed's back catalogue already fetched.
async fn watching(backend: Backend, server: &FeedServer, receiver: &Receiver) -> TestApi {
    server.set(
        "/world",
        Route::rss("World", &[fresh(100, "Weather", "Sunny.")]),
    );
    let config = format!(
        "[sinks.intel-slack]\ntype = \"slack\"\nurl = \"{}\"\n\n\
         [rules.nk-iran]\nquery = '\"North Korea\" Iran'\nsinks = [\"intel-slack\"]\n\n\
         [[feeds]]\nurl = \"{}\"\ntags = [\"world\"]\n",
        receiver.url(&format!("/services/{SLACK_SECRET}")),
        server.url("/world"),
    );
    let api = TestApi::start(backend, &config, None).await;
    api.herald.poll().await;
    api
}

fn nk_iran_story(n: u32) -> Item {
    fresh(
        n,
        "North Korean delegation in Tehran",
        "North Korea and Iran sign a trade pact.",
    )
}

both_backends!(
    health_readiness_and_json_errors_for_unknown_routes,
    metrics_parse_as_prometheus_text_and_move_after_a_poll,
    token_is_required_everywhere_but_healthz,
    article_search_equals_herald_search,
    article_search_pages_by_cursor_while_articles_arrive,
    bad_parameters_are_400_with_the_reason,
    feeds_and_alerts_equal_the_cli_json,
    no_secret_appears_in_any_response,
    idle_clients_beyond_the_connection_limit_neither_starve_healthz_nor_stop_polling,
    rules_are_muted_and_unmuted_with_the_token,
    sinks_show_their_health_and_a_broken_one_is_enabled_with_the_token,
);

async fn health_readiness_and_json_errors_for_unknown_routes(backend: Backend) {
    let api = TestApi::start(backend, "", None).await;
    assert_eq!(api.get("/healthz").await, (StatusCode::OK, "ok".to_owned()));
    assert_eq!(api.get("/readyz").await, (StatusCode::OK, "ok".to_owned()));
    let error = api.error("/api/v2/nothing", StatusCode::NOT_FOUND).await;
    assert!(error.contains("no such endpoint"), "{error}");
    let post = api.client.post(format!("{}/api/v1/feeds", api.base));
    let (status, body) = api.send(post).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    assert!(body.contains("\"error\""), "{body}");
}

/// PostgreSQL only: a SQLite file is opened once and its open connections keep
/// working whatever happens to the file afterwards, so there is no SQLite outage
/// that a running process would notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readiness_is_503_once_the_database_is_gone() {
    let api = TestApi::start(Backend::Postgres, "", None).await;
    assert_eq!(api.get("/readyz").await.0, StatusCode::OK);

    let name = url::Url::parse(&api.herald.db.url).unwrap().path()[1..].to_owned();
    let mut admin = PgConnection::connect(&db::server_url()).await.unwrap();
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {name} WITH (FORCE)"
        )))
        .await
        .unwrap();

    let error = api.error("/readyz", StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(error.contains("database"), "{error}");
    assert_eq!(api.get("/healthz").await.0, StatusCode::OK, "still alive");
}

async fn metrics_parse_as_prometheus_text_and_move_after_a_poll(backend: Backend) {
    let (server, receiver) = (FeedServer::start().await, Receiver::start().await);
    let api = watching(backend, &server, &receiver).await;
    let before = scrape(&api).await;
    assert_eq!(before[r#"herald_fetches_total{outcome="ok"}"#], 1.0);
    assert_eq!(before["herald_rule_hits_total"], 0.0);
    assert_eq!(before[r#"herald_feeds{status="ok"}"#], 1.0);
    assert_eq!(before[r#"herald_outbox_deliveries{status="pending"}"#], 0.0);

    server.set(
        "/world",
        Route::rss(
            "World",
            &[
                nk_iran_story(1),
                fresh(2, "Markets", "Stocks rose."),
                fresh(100, "Weather", "Sunny."),
            ],
        ),
    );
    api.herald.poll().await;
    let polled = scrape(&api).await;
    assert_eq!(polled[r#"herald_fetches_total{outcome="ok"}"#], 2.0);
    assert_eq!(polled[r#"herald_articles_stored_total{change="new"}"#], 3.0);
    assert_eq!(polled["herald_rule_hits_total"], 1.0);
    assert_eq!(polled["herald_fetch_duration_seconds_count"], 2.0);
    assert_eq!(
        polled[r#"herald_fetch_duration_seconds_bucket{le="+Inf"}"#],
        2.0
    );
    assert_eq!(polled[r#"herald_outbox_deliveries{status="pending"}"#], 1.0);

    let dispatched = api.herald.app.dispatch_once().await.unwrap();
    assert_eq!(dispatched.delivered, 1, "{dispatched:?}");
    let delivered = scrape(&api).await;
    assert_eq!(
        delivered[r#"herald_deliveries_total{outcome="delivered"}"#],
        1.0
    );
    assert_eq!(delivered[r#"herald_deliveries_total{outcome="dead"}"#], 0.0);
    assert_eq!(
        delivered[r#"herald_outbox_deliveries{status="pending"}"#],
        0.0
    );
    assert_eq!(
        delivered[r#"herald_outbox_deliveries{status="delivered"}"#],
        1.0
    );
}

/// Scrapes `/metrics`, checks it is well-formed exposition text and returns each
/// series (`name{labels}`) with its value.
async fn scrape(api: &TestApi) -> HashMap<String, f64> {
    let response = api
        .client
        .get(format!("{}/metrics", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    parse_exposition(&response.text().await.unwrap())
}

/// A strict reading of the OpenMetrics text format: every sample belongs to a
/// family declared by `# TYPE`, names and labels are well-formed, values are
/// numbers, series are unique, and `# EOF` ends the text.
fn parse_exposition(text: &str) -> HashMap<String, f64> {
    let mut families: HashMap<String, String> = HashMap::new();
    let mut samples = HashMap::new();
    let mut saw_eof = false;
    for line in text.lines() {
        assert!(!saw_eof, "text after # EOF: {line:?}");
        if line == "# EOF" {
            saw_eof = true;
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (keyword, name) = (parts.next().unwrap(), parts.next().unwrap_or(""));
            assert!(is_metric_name(name), "bad family name in {line:?}");
            match keyword {
                "TYPE" => {
                    let kind = parts.next().unwrap_or("");
                    assert!(
                        [
                            "counter",
                            "gauge",
                            "histogram",
                            "summary",
                            "info",
                            "stateset",
                            "unknown"
                        ]
                        .contains(&kind),
                        "{line:?}"
                    );
                    families.insert(name.to_owned(), kind.to_owned());
                }
                "HELP" | "UNIT" => {}
                _ => panic!("unknown descriptor {line:?}"),
            }
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value in {line:?}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            number => number
                .parse()
                .unwrap_or_else(|e| panic!("{e}: value of {line:?}")),
        };
        let name = match series.split_once('{') {
            Some((name, labels)) => {
                let labels = labels
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels in {line:?}"));
                for label in labels.split(',') {
                    let (key, quoted) = label
                        .split_once('=')
                        .unwrap_or_else(|| panic!("bad label in {line:?}"));
                    assert!(is_metric_name(key), "bad label name in {line:?}");
                    assert!(
                        quoted.len() >= 2 && quoted.starts_with('"') && quoted.ends_with('"'),
                        "unquoted label value in {line:?}"
                    );
                }
                name
            }
            None => series,
        };
        assert!(is_metric_name(name), "bad sample name in {line:?}");
        let family = ["_total", "_bucket", "_count", "_sum", "_created", ""]
            .iter()
            .find_map(|suffix| {
                let base = name.strip_suffix(suffix)?;
                families
                    .get(base)
                    .map(|kind| (base, kind.as_str(), *suffix))
            });
        let (base, kind, suffix) =
            family.unwrap_or_else(|| panic!("sample of an undeclared family: {line:?}"));
        let allowed: &[&str] = match kind {
            "counter" => &["_total", "_created"],
            "histogram" => &["_bucket", "_count", "_sum", "_created"],
            _ => &[""],
        };
        assert!(allowed.contains(&suffix), "{base} is a {kind}: {line:?}");
        assert!(
            samples.insert(series.to_owned(), value).is_none(),
            "series repeated: {line:?}"
        );
    }
    assert!(saw_eof, "no # EOF at the end of\n{text}");
    samples
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

async fn token_is_required_everywhere_but_healthz(backend: Backend) {
    let api = TestApi::start(backend, "", Some(TOKEN)).await;
    assert_eq!(api.get("/healthz").await.0, StatusCode::OK);
    for path in [
        "/readyz",
        "/metrics",
        "/api/v1/articles?q=Iran",
        "/api/v1/feeds",
        "/api/v1/alerts",
        "/api/v1/stories",
        "/api/v1/unknown",
    ] {
        let error = api.error(path, StatusCode::UNAUTHORIZED).await;
        assert!(error.contains("token"), "{path}: {error}");
        let (status, body) = api.get_with_token(path, "api-token-7f3a9d").await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "wrong token on {path}: {body}"
        );
        let (status, body) = api.get_with_token(path, TOKEN).await;
        let expected = if path == "/api/v1/unknown" {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::OK
        };
        assert_eq!(status, expected, "right token on {path}: {body}");
    }
    let response = api
        .client
        .get(format!("{}/api/v1/feeds", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"herald\""
    );
}

/// Stories in two feeds, one of them tagged `world`.
async fn two_feeds_with_stories(backend: Backend, server: &FeedServer) -> TestApi {
    server.set(
        "/world",
        Route::rss(
            "World",
            &[
                nk_iran_story(1),
                fresh(2, "Iran talks resume", "Negotiators met in Vienna."),
                fresh(3, "Markets", "Stocks rose."),
            ],
        ),
    );
    server.set(
        "/local",
        Route::rss(
            "Local",
            &[
                fresh(
                    4,
                    "Iranian restaurant opens",
                    "Iran's cuisine comes to town.",
                ),
                fresh(5, "Council meeting", "Roads and parks."),
            ],
        ),
    );
    let config = format!(
        "[[feeds]]\nurl = \"{}\"\nname = \"World desk\"\ntags = [\"world\"]\n\n\
         [[feeds]]\nurl = \"{}\"\n",
        server.url("/world"),
        server.url("/local"),
    );
    let api = TestApi::start(backend, &config, None).await;
    api.herald.poll().await;
    api
}

async fn article_search_equals_herald_search(backend: Backend) {
    let server = FeedServer::start().await;
    let api = two_feeds_with_stories(backend, &server).await;
    for (query, limit) in [
        ("Iran", 20),
        ("Iran", 1),
        ("Iran tag:world", 20),
        ("\"North Korea\" Iran", 20),
        ("Iran -talks", 20),
    ] {
        let path = format!(
            "/api/v1/articles?q={}&since=7d&limit={limit}",
            urlencode(query)
        );
        let served = api.get_json(&path).await;
        let served = served.as_array().unwrap();

        let rule = Rule {
            name: "query".to_owned(),
            query: RuleQuery::parse(query).unwrap(),
            tags: Vec::new(),
        };
        let scan = Scan {
            since: Utc::now() - chrono::Duration::days(7),
            limit: Some(limit),
            after: None,
        };
        let feeds = api.herald.app.feed_infos().await.unwrap();
        let matches = search::matching_articles(&api.herald.app.store, rule, &feeds, scan, || {})
            .await
            .unwrap();
        let ids: Vec<i64> = matches.iter().map(|m| m.article_id).collect();
        let served_ids: Vec<i64> = served.iter().map(|a| a["id"].as_i64().unwrap()).collect();
        assert_eq!(served_ids, ids, "{query}");
        assert!(!ids.is_empty(), "{query} should match something");

        let printed = herald_search_json(&api, query, limit).await;
        assert_eq!(served, &printed, "{query}: API and `herald search --json`");
    }
    let only_world = api.get_json("/api/v1/articles?q=Iran%20tag%3Aworld").await;
    let titles: Vec<&str> = only_world
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        ["North Korean delegation in Tehran", "Iran talks resume"]
    );
}

/// Pages follow the `Link: <…>; rel="next"` header to the end; articles stored
/// between two requests, newer than the page already read, neither repeat an
/// article nor push one out of the next page; the last page has no link. A
/// cursor that is not one the API gave is a 400.
async fn article_search_pages_by_cursor_while_articles_arrive(backend: Backend) {
    let server = FeedServer::start().await;
    let first: Vec<Item> = (1..=7)
        .map(|n| fresh(n, &format!("Iran talks, day {n}"), "Negotiators met."))
        .collect();
    server.set("/wire", Route::rss("Wire", &first));
    let config = format!("[[feeds]]\nurl = \"{}\"\n", server.url("/wire"));
    let api = TestApi::start(backend, &config, None).await;
    api.herald.poll().await;
    let expected = api.get_json("/api/v1/articles?q=iran&limit=100").await;
    let expected: Vec<i64> = expected
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_i64().unwrap())
        .collect();
    assert_eq!(expected.len(), 7);

    let mut path = "/api/v1/articles?q=iran&limit=3".to_owned();
    let mut paged = Vec::new();
    let mut pages = 0;
    loop {
        let response = api
            .client
            .get(format!("{}{path}", api.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let link = response
            .headers()
            .get("link")
            .map(|v| v.to_str().unwrap().to_owned());
        let cursor = response
            .headers()
            .get("herald-next-cursor")
            .map(|v| v.to_str().unwrap().to_owned());
        let page: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
        paged.extend(
            page.as_array()
                .unwrap()
                .iter()
                .map(|a| a["id"].as_i64().unwrap()),
        );
        pages += 1;
        let Some(link) = link else {
            assert_eq!(cursor, None);
            break;
        };
        let next = link
            .strip_prefix('<')
            .and_then(|l| l.split_once(">; rel=\"next\""))
            .map(|(target, _)| target.to_owned())
            .unwrap_or_else(|| panic!("not a next link: {link}"));
        assert!(
            next.contains(&format!("cursor={}", cursor.unwrap())),
            "{next}"
        );
        path = next;
        // A newer matching article arrives between two pages.
        let mut items = first.clone();
        for n in 0..pages {
            let mut newer = fresh(50 + n, &format!("Iran update {n}"), "More talks.");
            newer.pub_date = Some(Utc::now());
            items.push(newer);
        }
        server.set("/wire", Route::rss("Wire", &items));
        api.herald.poll().await;
    }
    assert_eq!(paged, expected, "every article once, in order");
    assert_eq!(pages, 3);
    let now_matching = api.get_json("/api/v1/articles?q=iran&limit=100").await;
    assert_eq!(
        now_matching.as_array().unwrap().len(),
        9,
        "the newer ones were stored"
    );

    let refused = api
        .error(
            "/api/v1/articles?q=iran&cursor=yesterday",
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(refused.contains("cursor"), "{refused}");
}

/// What the `herald search QUERY --json` binary prints, one JSON value per line.
async fn herald_search_json(api: &TestApi, query: &str, limit: usize) -> Vec<Value> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
    command
        .arg("--config")
        .arg(&api.herald.config_path)
        .args(["search", query, "--since", "7d", "--json", "--limit"])
        .arg(limit.to_string())
        .env("HERALD_DATABASE_URL", &api.herald.db.url)
        .env("RUST_LOG", "warn");
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

async fn bad_parameters_are_400_with_the_reason(backend: Backend) {
    let api = TestApi::start(backend, "", None).await;
    let unclosed = api
        .error(
            &format!("/api/v1/articles?q={}", urlencode("Iran \"North Korea")),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(unclosed, "q: unclosed quote at column 6");
    let dangling = api
        .error(
            &format!("/api/v1/articles?q={}", urlencode("Iran AND")),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(dangling, "q: expected term after AND at column 9");
    let missing = api.error("/api/v1/articles", StatusCode::BAD_REQUEST).await;
    assert!(missing.contains("q"), "{missing}");
    let since = api
        .error(
            "/api/v1/articles?q=Iran&since=often",
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(since.starts_with("since:"), "{since}");
    let limit = api
        .error("/api/v1/articles?q=Iran&limit=-1", StatusCode::BAD_REQUEST)
        .await;
    assert!(limit.starts_with("limit:"), "{limit}");
    let outlets = api
        .error("/api/v1/stories?min_outlets=0", StatusCode::BAD_REQUEST)
        .await;
    assert!(outlets.starts_with("min_outlets:"), "{outlets}");
    let story = api
        .error("/api/v1/stories/x/explain", StatusCode::BAD_REQUEST)
        .await;
    assert!(story.starts_with("story id:"), "{story}");
    let missing = api
        .error("/api/v1/stories/999999/explain", StatusCode::NOT_FOUND)
        .await;
    assert!(missing.contains("no such story"), "{missing}");
    let status = api
        .error("/api/v1/alerts?status=lost", StatusCode::BAD_REQUEST)
        .await;
    assert!(
        status.contains("pending, delivered, failed, dead or held"),
        "{status}"
    );
}

async fn feeds_and_alerts_equal_the_cli_json(backend: Backend) {
    let (server, receiver) = (FeedServer::start().await, Receiver::start().await);
    let api = watching(backend, &server, &receiver).await;
    server.set("/world", Route::rss("World", &[nk_iran_story(1)]));
    api.herald.poll().await;
    api.herald.app.dispatch_once().await.unwrap();

    let feeds = api.get_json("/api/v1/feeds").await;
    assert_eq!(
        feeds,
        Value::Array(herald_json(&api, &["feeds", "--json"]).await)
    );
    assert_eq!(feeds[0]["url"], server.url("/world"));
    assert_eq!(feeds[0]["status"], "ok");

    let alerts = api.get_json("/api/v1/alerts").await;
    assert_eq!(
        alerts,
        Value::Array(herald_json(&api, &["alerts", "--json"]).await)
    );
    assert_eq!(alerts[0]["sink"], "intel-slack");
    assert_eq!(alerts[0]["status"], "delivered");
    assert_eq!(
        alerts[0]["article"]["title"],
        "North Korean delegation in Tehran"
    );
    let pending = api.get_json("/api/v1/alerts?status=pending").await;
    assert_eq!(pending, Value::Array(Vec::new()));

    let stories = api.get_json("/api/v1/stories").await;
    assert_eq!(
        stories,
        Value::Array(herald_json(&api, &["stories", "--json"]).await)
    );
    let story = stories
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == alerts[0]["article"]["story_id"])
        .unwrap();
    assert_eq!(story["title"], "North Korean delegation in Tehran");
    assert_eq!(story["outlets"][0]["url"], server.url("/world"));

    // Why the story holds its article: the same JSON as the CLI's.
    let id = story["id"].as_i64().unwrap().to_string();
    let explained = api
        .get_json(&format!("/api/v1/stories/{id}/explain?candidates=true"))
        .await;
    assert_eq!(
        explained,
        herald_json(
            &api,
            &["stories", "--explain", &id, "--candidates", "--json"]
        )
        .await[0]
    );
    assert_eq!(explained["members"][0]["title"], story["title"]);
    assert_eq!(explained["members"][0]["outlet"], "World");
    assert_eq!(explained["candidates"], Value::Array(Vec::new()));
    let plain = api.get_json(&format!("/api/v1/stories/{id}/explain")).await;
    assert!(plain.get("candidates").is_none(), "{plain}");
    let one = api
        .get_json("/api/v1/alerts?status=delivered&limit=1")
        .await;
    assert_eq!(one.as_array().unwrap().len(), 1);
}

/// What the `herald` binary prints for `args`, one JSON value per line.
async fn herald_json(api: &TestApi, args: &[&str]) -> Vec<Value> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
    command
        .arg("--config")
        .arg(&api.herald.config_path)
        .args(args)
        .env("HERALD_DATABASE_URL", &api.herald.db.url)
        .env("RUST_LOG", "warn");
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

async fn no_secret_appears_in_any_response(backend: Backend) {
    let (server, receiver) = (FeedServer::start().await, Receiver::start().await);
    // A second Slack sink whose receiver is down: its failures are recorded with
    // their network error, the kind of message that could carry a URL.
    let down = Receiver::start().await;
    down.stop().await;
    server.set(
        "/world",
        Route::rss("World", &[fresh(100, "Weather", "Sunny.")]),
    );
    let config = format!(
        "[sinks.intel-slack]\ntype = \"slack\"\nurl = \"{}\"\n\n\
         [sinks.backup-slack]\ntype = \"slack\"\nurl = \"{}\"\n\n\
         [rules.nk-iran]\nquery = '\"North Korea\" Iran'\nsinks = [\"intel-slack\", \"backup-slack\"]\n\n\
         [[feeds]]\nurl = \"{}\"\n",
        receiver.url(&format!("/services/{SLACK_SECRET}")),
        down.url(&format!("/services/{SLACK_SECRET}")),
        server.url("/world"),
    );
    let api = TestApi::start(backend, &config, Some(TOKEN)).await;
    api.herald.poll().await;
    server.set("/world", Route::rss("World", &[nk_iran_story(1)]));
    api.herald.poll().await;
    let dispatched = api.herald.app.dispatch_once().await.unwrap();
    assert_eq!(
        (dispatched.delivered, dispatched.failed),
        (1, 1),
        "{dispatched:?}"
    );

    let alerts = api.get_with_token("/api/v1/alerts", TOKEN).await;
    assert!(alerts.1.contains("backup-slack"), "{}", alerts.1);
    assert!(alerts.1.contains("connection refused"), "{}", alerts.1);
    for path in [
        "/api/v1/alerts",
        "/api/v1/alerts?status=failed",
        "/api/v1/feeds",
        "/api/v1/articles?q=Iran",
        "/api/v1/nothing",
        "/metrics",
        "/readyz",
        "/healthz",
    ] {
        for response in [
            api.get_with_token(path, TOKEN).await,
            api.get(path).await,
            api.get_with_token(path, "guess").await,
        ] {
            let body = response.1;
            for secret in ["SECRET", TOKEN, "/services/"] {
                assert!(!body.contains(secret), "{path} shows {secret:?}: {body}");
            }
        }
    }
}

/// API connections herald serves at once in the fault test.
const API_LIMIT: usize = 8;
/// Open files the fault test's herald may have: more clients than this connect.
const OPEN_FILES: u64 = 128;
/// Bounds every wait of the fault test.
const PATIENCE: Duration = Duration::from_secs(60);

/// The reported starvation, at a small scale: `API_LIMIT` clients that send half a
/// request, and behind them more idle clients than herald may have open files, on a
/// `herald run` whose open-file limit is `OPEN_FILES`.
async fn idle_clients_beyond_the_connection_limit_neither_starve_healthz_nor_stop_polling(
    backend: Backend,
) {
    let server = FeedServer::start().await;
    server.set(
        "/news",
        Route::rss("News", &[fresh(1, "Weather", "Sunny.")]),
    );
    let db = db::TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let address = free_loopback_address().await;
    let config = format!(
        "[fetch]\ninterval = \"1s\"\nconcurrency = 2\n\n\
         [api]\nlisten = \"{address}\"\nmax_connections = {API_LIMIT}\n\
         header_timeout = \"1s\"\nidle_timeout = \"1s\"\n\n\
         [[feeds]]\nurl = \"{}\"\n",
        server.url("/news"),
    );
    std::fs::write(dir.path().join("herald.toml"), config).unwrap();
    let daemon = Daemon::start_with_open_file_limit(dir.path(), &db.url, OPEN_FILES);
    wait_for_healthz(address).await;

    let mut half_sent = Vec::new();
    for _ in 0..API_LIMIT {
        let mut stream = connect(address).await;
        stream
            .write_all(b"GET /api/v1/feeds HTTP/1.1\r\nHost: herald\r\n")
            .await
            .unwrap();
        half_sent.push(stream);
    }
    let mut crowd = Vec::new();
    for _ in 0..OPEN_FILES + 50 {
        crowd.push(connect(address).await);
    }
    let mut healthz = connect(address).await;
    healthz
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: herald\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();

    // Working through the crowd at one header_timeout per API_LIMIT clients takes
    // herald about 20 s; two polls take about 2.
    let polled = server.hits("/news");
    wait_for_hits(&server, "/news", polled + 2).await;
    let mut byte = [0u8];
    assert!(
        matches!(healthz.try_read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "/healthz was answered (or closed) before its turn"
    );

    drop(crowd);
    let answer = read_until_closed(&mut healthz).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nok"), "{answer}");
    for mut stream in half_sent {
        let answer = read_until_closed(&mut stream).await;
        assert!(answer.is_empty(), "a half-sent request got {answer:?}");
    }
    let mut again = connect(address).await;
    again
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: herald\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut again).await;
    assert!(answer.starts_with(b"HTTP/1.1 200 OK\r\n"));

    daemon.signal("TERM");
    let output = daemon.wait().await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("Too many open files"), "{stderr}");
    assert!(!stderr.contains("cannot accept"), "{stderr}");
}

/// A loopback address no one listens on (it was free a moment ago).
async fn free_loopback_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

async fn connect(address: SocketAddr) -> TcpStream {
    tokio::time::timeout(PATIENCE, TcpStream::connect(address))
        .await
        .expect("connect did not complete")
        .unwrap()
}

/// Everything the server sends until it closes the connection.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    tokio::time::timeout(PATIENCE, async {
        let mut received = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return received,
                Ok(read) => received.extend_from_slice(&buf[..read]),
            }
        }
    })
    .await
    .expect("the server kept the connection open")
}

async fn wait_for_healthz(address: SocketAddr) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(mut stream) = TcpStream::connect(address).await {
            let request = b"GET /healthz HTTP/1.1\r\nHost: herald\r\nConnection: close\r\n\r\n";
            if stream.write_all(request).await.is_ok()
                && read_until_closed(&mut stream)
                    .await
                    .starts_with(b"HTTP/1.1 200 OK\r\n")
            {
                return;
            }
        }
        assert!(Instant::now() < deadline, "herald's API did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_for_hits(server: &FeedServer, path: &str, count: usize) {
    let deadline = Instant::now() + PATIENCE;
    while server.hits(path) < count {
        assert!(
            Instant::now() < deadline,
            "{path}: {} fetches, expected {count}",
            server.hits(path)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn rules_are_muted_and_unmuted_with_the_token(backend: Backend) {
    let server = FeedServer::start().await;
    server.set("/world", Route::rss("World", &[]));
    let config = format!(
        "[sinks.log]\ntype = \"log\"\n\n\
         [rules.nk-iran]\nquery = '\"North Korea\" Iran'\nsinks = [\"log\"]\n\n\
         [[feeds]]\nurl = \"{}\"\n",
        server.url("/world"),
    );
    let api = TestApi::start(backend, &config, Some(TOKEN)).await;
    api.herald.poll().await;
    let mute_url = format!("{}/api/v1/rules/nk-iran/mute", api.base);
    let body = serde_json::json!({"for": "2h"});

    let anonymous = api
        .client
        .post(&mute_url)
        .header("content-type", "application/json")
        .body(body.to_string());
    assert_eq!(api.send(anonymous).await.0, StatusCode::UNAUTHORIZED);
    let unknown = api
        .client
        .post(format!("{}/api/v1/rules/nope/mute", api.base))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(body.to_string());
    assert_eq!(api.send(unknown).await.0, StatusCode::NOT_FOUND);
    let vague = api
        .client
        .post(&mute_url)
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(serde_json::json!({"for": "soon"}).to_string());
    let (status, answer) = api.send(vague).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(answer.contains("for: "), "{answer}");

    let muted = api
        .client
        .post(&mute_url)
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(body.to_string());
    let (status, answer) = api.send(muted).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["rule"], "nk-iran");
    let (status, listed) = api.get_with_token("/api/v1/rules/muted", TOKEN).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["until"], answer["until"]);

    // News while muted is held back as muted.
    server.set("/world", Route::rss("World", &[nk_iran_story(1)]));
    api.herald.poll().await;
    let held = api.herald.db.store.held_hits(10).await.unwrap();
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(
        (held[0].rule.as_str(), held[0].reason.as_str()),
        ("nk-iran", "muted")
    );

    let unmute = || api.client.delete(&mute_url).bearer_auth(TOKEN);
    let (status, answer) = api.send(unmute()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(
        (answer["was_muted"].clone(), answer["until"].clone()),
        (Value::Bool(true), Value::Null)
    );
    let (_, again) = api.send(unmute()).await;
    assert!(again.contains("\"was_muted\":false"), "{again}");
}

#[tokio::test]
async fn an_api_without_a_token_does_not_mute() {
    let config = "[sinks.log]\ntype = \"log\"\n\n\
                  [rules.nk-iran]\nquery = 'Iran'\nsinks = [\"log\"]\n";
    let api = TestApi::start(Backend::Sqlite, config, None).await;
    let request = api
        .client
        .post(format!("{}/api/v1/rules/nk-iran/mute", api.base))
        .header("content-type", "application/json")
        .body(serde_json::json!({"for": "1h"}).to_string());
    let (status, answer) = api.send(request).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert!(answer.contains("set [api] token"), "{answer}");
    assert!(
        api.herald
            .db
            .store
            .rule_mutes(Utc::now())
            .await
            .unwrap()
            .is_empty()
    );
}

async fn sinks_show_their_health_and_a_broken_one_is_enabled_with_the_token(backend: Backend) {
    let server = FeedServer::start().await;
    let receiver = Receiver::start().await;
    server.set("/world", Route::rss("World", &[]));
    receiver.script("/gone", vec![Reply::status(410), Reply::status(200)]);
    let config = format!(
        "[sinks.log]\ntype = \"log\"\n\n\
         [sinks.hook]\ntype = \"webhook\"\nurl = \"{}\"\n\n\
         [rules.nk-iran]\nquery = '\"North Korea\" Iran'\nsinks = [\"log\", \"hook\"]\n\n\
         [[feeds]]\nurl = \"{}\"\n",
        receiver.url("/gone"),
        server.url("/world"),
    );
    let api = TestApi::start(backend, &config, Some(TOKEN)).await;
    api.herald.poll().await;
    server.set("/world", Route::rss("World", &[nk_iran_story(1)]));
    api.herald.poll().await;
    api.herald.app.dispatch_once().await.unwrap();

    let (status, listed) = api.get_with_token("/api/v1/sinks", TOKEN).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(
        listed,
        Value::Array(herald_json(&api, &["sinks", "--json"]).await)
    );
    let hook = &listed[0];
    assert_eq!(
        (&hook["name"], &hook["status"], &hook["queued"]),
        (
            &Value::from("hook"),
            &Value::from("broken"),
            &Value::from(1)
        ),
        "{listed}"
    );
    assert_eq!(hook["reason"], "HTTP 410 Gone: status 410");
    assert_eq!(listed[1]["status"], "ok");
    assert!(!listed.to_string().contains("/gone"), "{listed}");

    let enable = |name: &str| {
        api.client
            .post(format!("{}/api/v1/sinks/{name}/enable", api.base))
            .bearer_auth(TOKEN)
    };
    assert_eq!(api.send(enable("nope")).await.0, StatusCode::NOT_FOUND);
    let (status, answer) = api.send(enable("hook")).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, r#"{"sink":"hook","was_broken":true}"#);
    let report = api.herald.app.dispatch_once().await.unwrap();
    assert_eq!(report.delivered, 1, "{report:?}");
    assert_eq!(receiver.requests("/gone").len(), 2);
}
