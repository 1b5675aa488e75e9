//! `[fetch] private_networks` against real local servers: a feed may not lead herald
//! to a special address its configuration does not name, whether by a redirect to a
//! literal address or by a name that resolves to one.

use std::time::{Duration, Instant};

use herald::domain::address::PrivateNetworks;
use herald::fetch::{FetchError, FetchOutcome, FetchSettings, Fetcher, Validators};
use herald::ingest::PollStatus;
use url::Url;

use crate::both_backends;
use crate::support::db::Backend;
use crate::support::feed_server::{FeedServer, Item, Route, rss_feed};
use crate::support::herald::{TestHerald, feeds_toml};

const SECRET: &str = "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

fn fetcher(private_networks: PrivateNetworks) -> Fetcher {
    Fetcher::new(FetchSettings {
        timeout: Duration::from_secs(10),
        private_networks,
        ..FetchSettings::default()
    })
    .unwrap()
}

async fn fetch(fetcher: &Fetcher, url: &str) -> Result<FetchOutcome, FetchError> {
    fetcher
        .fetch(&Url::parse(url).unwrap(), &Validators::default())
        .await
}

fn items() -> Vec<Item> {
    (1..=2).map(Item::numbered).collect()
}

/// An internal service on 127.0.0.2 holding a secret, and a feed on 127.0.0.1 that
/// redirects to it.
async fn feed_redirecting_to_internal() -> (FeedServer, FeedServer) {
    let internal = FeedServer::start_on("127.0.0.2").await;
    internal.set("/internal-secret", Route::document("text/plain", SECRET));
    let feed = FeedServer::start().await;
    feed.set(
        "/feed",
        Route::redirect(302, &internal.url("/internal-secret")),
    );
    (feed, internal)
}

fn refused(error: FetchError) -> String {
    assert!(matches!(error, FetchError::Refused(_)), "{error:?}");
    assert!(!error.is_retryable());
    error.to_string()
}

#[tokio::test]
async fn a_redirect_to_another_loopback_address_is_refused_without_connecting() {
    let (feed, internal) = feed_redirecting_to_internal().await;

    let error = fetch(&fetcher(PrivateNetworks::Configured), &feed.url("/feed"))
        .await
        .unwrap_err();

    assert_eq!(
        refused(error),
        format!(
            "refused to connect to 127.0.0.2 (a loopback address) reached by redirect from {}: \
             set [fetch] private_networks = \"allow\" to permit",
            feed.url("/feed")
        )
    );
    assert_eq!(internal.hits("/internal-secret"), 0);
}

#[tokio::test]
async fn redirects_to_link_local_unspecified_and_ipv6_forms_are_refused_at_once() {
    let feed = FeedServer::start().await;
    let port = Url::parse(feed.base_url()).unwrap().port().unwrap();
    let fetcher = fetcher(PrivateNetworks::default());
    let cases = [
        (
            "http://169.254.169.254/latest/meta-data/".to_owned(),
            "169.254.169.254 (a link-local address)",
        ),
        (
            "http://[::ffff:169.254.169.254]/".to_owned(),
            "[::ffff:a9fe:a9fe] (a link-local address)",
        ),
        (
            "http://[fe80::1]/".to_owned(),
            "[fe80::1] (a link-local address)",
        ),
        (
            "http://10.0.0.1/admin".to_owned(),
            "10.0.0.1 (a private address)",
        ),
        (
            "http://100.64.0.1/".to_owned(),
            "100.64.0.1 (a shared (carrier-grade NAT) address)",
        ),
        (
            format!("http://0.0.0.0:{port}/feed"),
            "0.0.0.0 (an unspecified address)",
        ),
        (
            format!("http://[::1]:{port}/feed"),
            "[::1] (a loopback address)",
        ),
        (
            format!("http://[::ffff:127.0.0.1]:{port}/feed"),
            "[::ffff:7f00:1] (a loopback address)",
        ),
    ];
    for (target, described) in cases {
        feed.set("/feed", Route::redirect(302, &target));
        let started = Instant::now();

        let error = fetch(&fetcher, &feed.url("/feed")).await.unwrap_err();

        // A connection attempt to an unrouted address would hang until the timeout.
        assert!(started.elapsed() < Duration::from_secs(2), "{target}");
        assert_eq!(
            refused(error),
            format!(
                "refused to connect to {described} reached by redirect from {}: \
                 set [fetch] private_networks = \"allow\" to permit",
                feed.url("/feed")
            ),
            "{target}"
        );
    }
}

#[tokio::test]
async fn a_redirect_to_a_name_that_resolves_to_loopback_is_refused() {
    let (feed, internal) = feed_redirecting_to_internal().await;
    let port = Url::parse(internal.base_url()).unwrap().port().unwrap();
    // `localhost` is not the configured host: its DNS answer is what is judged.
    feed.set(
        "/feed",
        Route::redirect(302, &format!("http://localhost:{port}/internal-secret")),
    );

    let error = fetch(&fetcher(PrivateNetworks::Configured), &feed.url("/feed"))
        .await
        .unwrap_err();

    let message = refused(error);
    assert!(
        message.starts_with("refused to connect to localhost (")
            && message.contains("a loopback address) reached by redirect from"),
        "{message}"
    );
    assert_eq!(internal.hits("/internal-secret"), 0);
}

#[tokio::test]
async fn refusals_do_not_tell_an_open_port_from_a_closed_one() {
    let (feed, internal) = feed_redirecting_to_internal().await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let fetcher = fetcher(PrivateNetworks::Configured);

    let open_error = fetch(&fetcher, &feed.url("/feed")).await.unwrap_err();
    feed.set(
        "/feed",
        Route::redirect(302, &format!("http://127.0.0.2:{closed}/internal-secret")),
    );
    let closed_error = fetch(&fetcher, &feed.url("/feed")).await.unwrap_err();

    assert_eq!(open_error.to_string(), closed_error.to_string());
    assert_eq!(internal.hits("/internal-secret"), 0);
}

#[tokio::test]
async fn a_feed_configured_on_loopback_is_fetched_and_may_redirect_within_its_host() {
    let feed = FeedServer::start().await;
    feed.set("/old", Route::redirect(301, &feed.url("/feed")));
    feed.set("/feed", Route::rss("Local", &items()));
    let fetcher = fetcher(PrivateNetworks::Configured);

    for path in ["/feed", "/old"] {
        let outcome = fetch(&fetcher, &feed.url(path)).await.unwrap();
        let FetchOutcome::Fetched(document) = outcome else {
            panic!("expected a document");
        };
        assert_eq!(document.body, rss_feed("Local", &items()).as_bytes());
    }
}

#[tokio::test]
async fn a_feed_configured_by_a_name_that_resolves_to_loopback_is_fetched() {
    let feed = FeedServer::start().await;
    feed.set("/feed", Route::rss("Local", &items()));
    let port = Url::parse(feed.base_url()).unwrap().port().unwrap();

    let outcome = fetch(
        &fetcher(PrivateNetworks::Configured),
        &format!("http://localhost:{port}/feed"),
    )
    .await
    .unwrap();

    assert!(matches!(outcome, FetchOutcome::Fetched(_)));
    assert_eq!(feed.hits("/feed"), 1);
}

#[tokio::test]
async fn a_moved_feed_is_trusted_only_on_its_configured_host() {
    let feed = FeedServer::start().await;
    feed.set("/new", Route::rss("Local", &items()));
    let port = Url::parse(feed.base_url()).unwrap().port().unwrap();
    let configured = Url::parse(&feed.url("/old")).unwrap();
    let fetcher = fetcher(PrivateNetworks::Configured);

    // Moved within the configured host: fetched.
    let moved = Url::parse(&feed.url("/new")).unwrap();
    let outcome = fetcher
        .fetch_moved(&configured, &moved, &Validators::default())
        .await
        .unwrap();
    assert!(matches!(outcome, FetchOutcome::Fetched(_)));

    // Moved to another name of the same machine: not the operator's choice.
    let elsewhere = Url::parse(&format!("http://localhost:{port}/new")).unwrap();
    let error = fetcher
        .fetch_moved(&configured, &elsewhere, &Validators::default())
        .await
        .unwrap_err();
    let message = refused(error);
    assert!(
        message.starts_with("refused to connect to localhost (")
            && message.contains(&format!("reached by redirect from {configured}")),
        "{message}"
    );
    assert_eq!(feed.hits("/new"), 1);
}

#[tokio::test]
async fn deny_refuses_even_a_configured_loopback_feed() {
    let feed = FeedServer::start().await;
    feed.set("/feed", Route::rss("Local", &items()));
    let port = Url::parse(feed.base_url()).unwrap().port().unwrap();
    let fetcher = fetcher(PrivateNetworks::Deny);

    let error = fetch(&fetcher, &feed.url("/feed")).await.unwrap_err();
    assert_eq!(
        refused(error),
        "refused to connect to 127.0.0.1 (a loopback address): \
         set [fetch] private_networks = \"configured\" to permit"
    );
    let error = fetch(&fetcher, &format!("http://localhost:{port}/feed"))
        .await
        .unwrap_err();
    assert!(
        refused(error).starts_with("refused to connect to localhost ("),
        "by name too"
    );
    assert_eq!(feed.hits("/feed"), 0);
}

#[tokio::test]
async fn allow_follows_a_redirect_to_another_loopback_address() {
    let (feed, internal) = feed_redirecting_to_internal().await;
    internal.set("/internal-secret", Route::rss("Internal", &items()));

    let outcome = fetch(&fetcher(PrivateNetworks::Allow), &feed.url("/feed"))
        .await
        .unwrap();

    let FetchOutcome::Fetched(document) = outcome else {
        panic!("expected a document");
    };
    assert_eq!(
        document.final_url.as_str(),
        internal.url("/internal-secret")
    );
    assert_eq!(internal.hits("/internal-secret"), 1);
}

both_backends!(
    a_feed_redirecting_to_an_internal_secret_records_the_refusal_and_not_the_secret,
    a_body_that_is_not_a_feed_is_described_and_not_quoted,
    deny_in_the_config_file_refuses_a_loopback_feed,
);

async fn a_feed_redirecting_to_an_internal_secret_records_the_refusal_and_not_the_secret(
    backend: Backend,
) {
    let (feed, internal) = feed_redirecting_to_internal().await;
    let herald = TestHerald::start(backend, &feeds_toml(&[feed.url("/feed")])).await;

    let report = herald.poll_one().await;

    assert_eq!(report.status, PollStatus::Error, "{report:?}");
    let expected = format!(
        "refused to connect to 127.0.0.2 (a loopback address) reached by redirect from {}: \
         set [fetch] private_networks = \"allow\" to permit",
        feed.url("/feed")
    );
    assert_eq!(report.error.as_deref(), Some(expected.as_str()));
    // What `herald feeds` and /api/v1/feeds show.
    let record = &herald.feeds().await[0].record;
    assert_eq!(record.error.as_deref(), Some(expected.as_str()));
    assert_eq!(internal.hits("/internal-secret"), 0);
    assert_eq!(herald.db.store.count_articles().await.unwrap(), 0);
}

async fn a_body_that_is_not_a_feed_is_described_and_not_quoted(backend: Backend) {
    let feed = FeedServer::start().await;
    feed.set(
        "/feed",
        Route::document("text/plain", format!("{SECRET}\n")),
    );
    feed.set(
        "/page",
        Route::document(
            "text/html",
            format!("<!DOCTYPE html><html><body>{SECRET}</body></html>"),
        ),
    );
    let urls = [feed.url("/feed"), feed.url("/page")];
    let herald = TestHerald::start(backend, &feeds_toml(&urls)).await;

    herald.poll().await;

    let feeds = herald.feeds().await;
    let error_of = |url: &str| {
        let feed = feeds.iter().find(|f| f.record.url == url).unwrap();
        feed.record.error.clone().unwrap()
    };
    assert_eq!(
        error_of(&urls[0]),
        format!(
            "not a feed: expected RSS, Atom or JSON Feed, found a text document of {} bytes",
            SECRET.len() + 1
        )
    );
    assert_eq!(
        error_of(&urls[1]),
        "not a feed: expected RSS, Atom or JSON Feed, found an HTML page; this is a web page; `herald feeds add URL` finds its feeds"
    );
}

async fn deny_in_the_config_file_refuses_a_loopback_feed(backend: Backend) {
    let feed = FeedServer::start().await;
    feed.set("/feed", Route::rss("Local", &items()));
    let herald = TestHerald::start_with_fetch(
        backend,
        "private_networks = \"deny\"\n",
        &feeds_toml(&[feed.url("/feed")]),
    )
    .await;

    let report = herald.poll_one().await;

    assert_eq!(report.status, PollStatus::Error);
    assert_eq!(
        report.error.as_deref(),
        Some(
            "refused to connect to 127.0.0.1 (a loopback address): \
             set [fetch] private_networks = \"configured\" to permit"
        )
    );
    assert_eq!(feed.hits("/feed"), 0);
}
