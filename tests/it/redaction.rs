//! Credentials in a feed URL (user info, `apikey=`) are used to fetch the feed and
//! shown nowhere: not in `herald` output or logs, the API, alert payloads or the
//! errors stored on the feed.

use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use herald::api::{self, ApiState};
use herald::config::ApiLimits;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::both_backends;
use crate::support::db::{Backend, TestDb};
use crate::support::feed_server::{FeedServer, Item, Route};
use crate::support::herald::TestHerald;
use crate::support::process::herald;
use crate::support::receiver::Receiver;

const PASSWORD: &str = "s3cret";
const API_KEY: &str = "TOPSECRET";
/// In the article's own link, which is redacted like the feed's.
const LINK_TOKEN: &str = "LINKSECRET";
/// `Basic` credentials for `user:s3cret`.
const BASIC_AUTH: &str = "Basic dXNlcjpzM2NyZXQ=";

/// The feed's URL as configured, with its credentials.
fn secret_url(server: &FeedServer) -> String {
    format!(
        "http://user:{PASSWORD}@{}/feed?apikey={API_KEY}&page=2",
        host_and_port(server)
    )
}

/// The same URL as herald shows it.
fn shown_url(server: &FeedServer) -> String {
    format!(
        "http://user:***@{}/feed?apikey=***&page=2",
        host_and_port(server)
    )
}

fn host_and_port(server: &FeedServer) -> &str {
    server.base_url().strip_prefix("http://").unwrap()
}

#[track_caller]
fn assert_no_secret(what: &str, text: &str) {
    for secret in [PASSWORD, API_KEY, LINK_TOKEN] {
        assert!(!text.contains(secret), "{what} shows {secret}: {text}");
    }
}

fn quiet() -> Item {
    Item {
        guid: "quiet".into(),
        link: "https://news.example/quiet".into(),
        title: "Weather stays mild".into(),
        description: "<p>Sunny.</p>".into(),
        pub_date: Some(Utc::now()),
    }
}

fn summit() -> Item {
    Item {
        guid: "summit".into(),
        link: format!("https://news.example/summit?token={LINK_TOKEN}&ref=rss"),
        title: "Harbour summit opens".into(),
        description: "<p>Delegates met at the harbour summit.</p>".into(),
        pub_date: Some(Utc::now()),
    }
}

/// The feed server answers only a request that carries the credentials, as a
/// protected feed would; `herald` reading it proves the full URL was fetched.
fn assert_fetched_with_credentials(server: &FeedServer) {
    let requests = server.requests("/feed");
    assert!(!requests.is_empty(), "the feed was never fetched");
    for request in requests {
        assert_eq!(request.header("authorization"), Some(BASIC_AUTH));
        assert_eq!(
            request.path_and_query,
            format!("/feed?apikey={API_KEY}&page=2")
        );
    }
}

/// Sinks of every HTTP type on `receiver`, a log sink, and a rule alerting all four.
fn sinks_toml(receiver: &Receiver) -> String {
    format!(
        "[sinks.hook]\ntype = \"webhook\"\nurl = \"{}\"\n\n\
         [sinks.slack]\ntype = \"slack\"\nurl = \"{}\"\n\n\
         [sinks.discord]\ntype = \"discord\"\nurl = \"{}\"\n\n\
         [sinks.log]\ntype = \"log\"\n\n\
         [rules.summit]\nquery = 'summit'\nsinks = [\"hook\", \"slack\", \"discord\", \"log\"]\n\n",
        receiver.url("/hook"),
        receiver.url("/slack"),
        receiver.url("/discord"),
    )
}

/// What each sink received: one request each, none showing a secret; the webhook
/// names the feed by its redacted URL.
async fn assert_payloads_redacted(receiver: &Receiver, server: &FeedServer) {
    for path in ["/hook", "/slack", "/discord"] {
        let requests = receiver.wait_for(path, 1, Duration::from_secs(10)).await;
        assert_eq!(requests.len(), 1, "{path}");
        assert_no_secret(path, &String::from_utf8_lossy(&requests[0].body));
    }
    let hook = receiver.requests("/hook")[0].json();
    assert_eq!(hook["article"]["feeds"][0]["url"], shown_url(server));
    assert_eq!(
        hook["article"]["url"],
        "https://news.example/summit?token=***&ref=rss"
    );
    let discord = receiver.requests("/discord")[0].json();
    assert_eq!(
        discord["embeds"][0]["url"],
        "https://news.example/summit?token=***&ref=rss"
    );
}

both_backends!(
    the_fetch_uses_the_credentials_and_nothing_shows_them,
    stored_errors_name_the_feed_redacted,
    a_permanent_move_keeps_the_new_credentials_for_fetching_only,
    herald_output_and_logs_never_show_the_credentials,
);

async fn the_fetch_uses_the_credentials_and_nothing_shows_them(backend: Backend) {
    let server = FeedServer::start().await;
    let receiver = Receiver::start().await;
    server.set("/feed", Route::rss("Harbour News", &[quiet()]));
    let config = format!(
        "{}[[feeds]]\nurl = \"{}\"\n",
        sinks_toml(&receiver),
        secret_url(&server)
    );
    let herald = TestHerald::start(backend, &config).await;
    // The back catalogue never alerts: the summit item arrives on the second poll.
    herald.poll().await;
    server.set("/feed", Route::rss("Harbour News", &[summit(), quiet()]));
    let report = herald.poll_one().await;
    assert_eq!(report.new, 1, "{report:?}");
    assert_eq!(report.alerts, 1, "{report:?}");
    assert_fetched_with_credentials(&server);

    // What `herald poll --json` prints of it.
    let printed = serde_json::to_value(&report).unwrap();
    assert_eq!(printed["url"], shown_url(&server));
    assert_no_secret("poll report", &printed.to_string());

    let dispatched = herald.app.dispatch_once().await.unwrap();
    assert_eq!(dispatched.delivered, 4, "{dispatched:?}");
    assert_payloads_redacted(&receiver, &server).await;

    // The API: every view that names the feed or the article.
    let state = ApiState {
        store: herald.app.store.clone(),
        metrics: Arc::clone(&herald.app.metrics),
        token: None,
        feeds: tokio::sync::watch::channel(Arc::new(herald.app.settings.feeds.clone())).1,
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
    let get = |path: &'static str| {
        let url = format!("{base}{path}");
        async move {
            let response = reqwest::get(&url).await.unwrap();
            assert_eq!(response.status(), 200, "{path}");
            let body = response.text().await.unwrap();
            assert_no_secret(path, &body);
            serde_json::from_str::<Value>(&body).unwrap()
        }
    };
    let feeds = get("/api/v1/feeds").await;
    assert_eq!(feeds[0]["url"], shown_url(&server));
    assert_eq!(feeds[0]["fetch_url"], shown_url(&server));
    let articles = get("/api/v1/articles?q=summit").await;
    assert_eq!(articles[0]["feeds"][0]["url"], shown_url(&server));
    let stories = get("/api/v1/stories").await;
    assert!(
        stories
            .as_array()
            .unwrap()
            .iter()
            .any(|story| story["outlets"][0]["url"] == shown_url(&server)),
        "{stories}"
    );
    let alerts = get("/api/v1/alerts").await;
    assert_eq!(alerts.as_array().unwrap().len(), 4, "{alerts}");
    assert_eq!(alerts[0]["article"]["feeds"][0]["url"], shown_url(&server));

    // The database keeps the full URL: it is what the next fetch asks for.
    let stored = herald.app.store.feeds().await.unwrap();
    assert_eq!(stored[0].url, secret_url(&server));
}

async fn stored_errors_name_the_feed_redacted(backend: Backend) {
    let server = FeedServer::start().await;
    let internal = FeedServer::start_on("127.0.0.2").await;
    // A redirect the private-networks policy refuses, and one to a scheme herald
    // never follows: both errors name the URL the redirect came from.
    server.set("/feed", Route::redirect(302, &internal.url("/admin")));
    let config = format!("[[feeds]]\nurl = \"{}\"\n", secret_url(&server));
    let herald = TestHerald::start(backend, &config).await;
    let report = herald.poll_one().await;
    assert_fetched_with_credentials(&server);
    let expected = format!("reached by redirect from {}", shown_url(&server));
    let error = report.error.clone().unwrap();
    assert!(error.contains(&expected), "{error}");
    assert_no_secret("poll report", &serde_json::to_string(&report).unwrap());
    let stored = herald.app.store.feeds().await.unwrap();
    let stored_error = stored[0].error.clone().unwrap();
    assert!(stored_error.contains(&expected), "{stored_error}");
    assert_no_secret("stored error", &stored_error);
    assert_eq!(internal.hits("/admin"), 0);

    server.set("/feed", Route::redirect(302, "ftp://files.example/feed"));
    let report = herald.poll_one().await;
    let expected = format!(
        "bad redirect from {}: refusing to follow to ftp",
        shown_url(&server)
    );
    assert_eq!(report.error.as_deref(), Some(expected.as_str()));
    let stored = herald.app.store.feeds().await.unwrap();
    assert_eq!(stored[0].error.as_deref(), Some(expected.as_str()));
}

async fn a_permanent_move_keeps_the_new_credentials_for_fetching_only(backend: Backend) {
    let server = FeedServer::start().await;
    server.set("/feed", Route::redirect(301, "/moved?token=NEWSECRET"));
    server.set("/moved", Route::rss("Harbour News", &[quiet()]));
    let config = format!("[[feeds]]\nurl = \"{}\"\n", secret_url(&server));
    let herald = TestHerald::start(backend, &config).await;
    let report = herald.poll_one().await;
    let moved = format!("http://user:***@{}/moved?token=***", host_and_port(&server));
    assert_eq!(
        report.moved_to.as_deref(),
        Some(moved.as_str()),
        "{report:?}"
    );
    let printed = serde_json::to_string(&report).unwrap();
    assert!(!printed.contains("NEWSECRET"), "{printed}");

    // The next poll goes straight to the new address, credentials and all.
    herald.poll_one().await;
    let requests = server.requests("/moved");
    assert_eq!(requests.len(), 2);
    for request in requests {
        assert_eq!(request.path_and_query, "/moved?token=NEWSECRET");
        assert_eq!(request.header("authorization"), Some(BASIC_AUTH));
    }
    assert_eq!(server.hits("/feed"), 1);
    let record = herald.app.store.feeds().await.unwrap().remove(0);
    let view = herald::views::FeedView::new(record, herald.app.redactor());
    assert_eq!(view.fetch_url, moved);
    assert_eq!(view.url, shown_url(&server));
}

/// `herald ARGS` with logs at debug level for every crate; stdout and stderr.
async fn run(dir: &Path, db_url: &str, args: &[&str]) -> Output {
    let mut command = herald(dir, db_url, args);
    command.env("RUST_LOG", "debug");
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

async fn herald_output_and_logs_never_show_the_credentials(backend: Backend) {
    let server = FeedServer::start().await;
    let receiver = Receiver::start().await;
    server.set("/feed", Route::rss("Harbour News", &[quiet()]));
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[fetch]\nsecret_params = [\"page\"]\n\n{}[[feeds]]\nurl = \"{}\"\n",
        sinks_toml(&receiver),
        secret_url(&server)
    );
    std::fs::write(dir.path().join("herald.toml"), config).unwrap();
    // `page` is configured secret here: the configured list adds to the defaults.
    let shown = format!(
        "http://user:***@{}/feed?apikey=***&page=***",
        host_and_port(&server)
    );

    let mut outputs = Vec::new();
    let first = run(dir.path(), &db.url, &["poll"]).await;
    assert_eq!(first.status.code(), Some(0), "{first:?}");
    let stdout = String::from_utf8_lossy(&first.stdout).into_owned();
    assert!(stdout.contains(&shown), "{stdout}");
    let stderr = String::from_utf8_lossy(&first.stderr).into_owned();
    // Debug level: herald's own "fetched" line and the HTTP client's are all there.
    assert!(stderr.contains(&shown), "{stderr}");
    outputs.push(("herald poll", first));

    server.set("/feed", Route::rss("Harbour News", &[summit(), quiet()]));
    let second = run(dir.path(), &db.url, &["poll", "--json"]).await;
    assert_eq!(second.status.code(), Some(0), "{second:?}");
    let line: Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(line["url"], shown);
    assert_eq!(line["new"], 1);
    let stderr = String::from_utf8_lossy(&second.stderr).into_owned();
    assert!(
        stderr.contains("https://news.example/summit?token=***&ref=rss"),
        "the log sink names the article: {stderr}"
    );
    outputs.push(("herald poll --json", second));
    assert_fetched_with_credentials(&server);
    for path in ["/hook", "/slack", "/discord"] {
        let requests = receiver.wait_for(path, 1, Duration::from_secs(10)).await;
        assert_no_secret(path, &String::from_utf8_lossy(&requests[0].body));
        assert!(!String::from_utf8_lossy(&requests[0].body).contains("page=2"));
    }

    let feeds = run(dir.path(), &db.url, &["feeds"]).await;
    assert!(
        String::from_utf8_lossy(&feeds.stdout).contains(&shown),
        "{feeds:?}"
    );
    outputs.push(("herald feeds", feeds));
    let feeds_json = run(dir.path(), &db.url, &["feeds", "--json"]).await;
    let line: Value = serde_json::from_slice(&feeds_json.stdout).unwrap();
    assert_eq!(line["url"], shown);
    assert_eq!(line["fetch_url"], shown);
    outputs.push(("herald feeds --json", feeds_json));
    for args in [
        &["search", "summit"][..],
        &["search", "summit", "--json"],
        &["rules", "test", "--rule", "summit", "--json"],
        &["stories"],
        &["stories", "--json"],
        &["alerts", "--json"],
        &["poll", "--feed", &secret_url(&server)],
    ] {
        let output = run(dir.path(), &db.url, args).await;
        assert_eq!(output.status.code(), Some(0), "{args:?}: {output:?}");
        outputs.push(("herald", output));
    }
    let search = run(dir.path(), &db.url, &["search", "summit", "--json"]).await;
    let article: Value = serde_json::from_slice(&search.stdout).unwrap();
    assert_eq!(article["feeds"][0]["url"], shown);

    for (what, output) in &outputs {
        assert_no_secret(what, &String::from_utf8_lossy(&output.stdout));
        assert_no_secret(what, &String::from_utf8_lossy(&output.stderr));
        assert!(
            !String::from_utf8_lossy(&output.stdout).contains("page=2"),
            "{what}: {output:?}"
        );
    }
}
