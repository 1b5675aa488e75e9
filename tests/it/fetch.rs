//! The fetcher against a real local HTTP server: validators, encodings, redirects,
//! statuses, limits and concurrency.

use std::time::Duration;

use herald::fetch::{
    FetchError, FetchOutcome, FetchSettings, FetchedDocument, Fetcher, Validators,
};
use url::Url;

use crate::support::feed_server::{FeedServer, Gate, Item, Route, rss_feed};

const RSS: &str = "application/rss+xml; charset=utf-8";

fn settings() -> FetchSettings {
    FetchSettings {
        // Generous: only the stall tests are about time, and they set their own.
        timeout: Duration::from_secs(10),
        max_body: 1_000_000,
        ..FetchSettings::default()
    }
}

fn fetcher() -> Fetcher {
    Fetcher::new(settings()).unwrap()
}

fn url(server: &FeedServer, path: &str) -> Url {
    Url::parse(&server.url(path)).unwrap()
}

async fn fetch(
    fetcher: &Fetcher,
    server: &FeedServer,
    path: &str,
) -> Result<FetchOutcome, FetchError> {
    fetcher
        .fetch(&url(server, path), &Validators::default())
        .await
}

fn document(outcome: FetchOutcome) -> FetchedDocument {
    match outcome {
        FetchOutcome::Fetched(document) => document,
        FetchOutcome::NotModified => panic!("expected a document, got 304"),
    }
}

fn items() -> Vec<Item> {
    (1..=3).map(Item::numbered).collect()
}

#[tokio::test]
async fn a_feed_is_returned_with_its_content_type_and_validators() {
    let server = FeedServer::start().await;
    server.set(
        "/feed.xml",
        Route::rss("World", &items()).with_last_modified("Wed, 21 Oct 2015 07:28:00 GMT"),
    );

    let got = document(fetch(&fetcher(), &server, "/feed.xml").await.unwrap());

    assert_eq!(got.status, 200);
    assert_eq!(got.body, rss_feed("World", &items()).as_bytes());
    assert_eq!(got.content_type.as_deref(), Some(RSS));
    assert!(
        got.validators
            .etag
            .as_deref()
            .is_some_and(|etag| etag.starts_with('"'))
    );
    assert_eq!(
        got.validators.last_modified.as_deref(),
        Some("Wed, 21 Oct 2015 07:28:00 GMT")
    );
    assert_eq!(got.final_url, url(&server, "/feed.xml"));
    assert_eq!(got.moved_to, None);
}

#[tokio::test]
async fn the_request_asks_for_feeds_and_names_herald() {
    let server = FeedServer::start().await;
    server.set("/feed.xml", Route::rss("World", &items()));

    fetch(&fetcher(), &server, "/feed.xml").await.unwrap();

    let request = &server.requests("/feed.xml")[0];
    assert_eq!(request.method, "GET");
    assert!(
        request
            .header("accept")
            .unwrap()
            .starts_with("application/rss+xml, application/atom+xml")
    );
    assert!(request.header("user-agent").unwrap().starts_with("herald/"));
    let encodings = request.header("accept-encoding").unwrap();
    for encoding in ["gzip", "br", "deflate"] {
        assert!(encodings.contains(encoding), "accept-encoding: {encodings}");
    }
    assert_eq!(request.header("if-none-match"), None);
}

#[tokio::test]
async fn an_unchanged_feed_answers_not_modified_to_its_etag() {
    let server = FeedServer::start().await;
    server.set("/feed.xml", Route::rss("World", &items()));
    let fetcher = fetcher();
    let first = document(fetch(&fetcher, &server, "/feed.xml").await.unwrap());

    let second = fetcher
        .fetch(&url(&server, "/feed.xml"), &first.validators)
        .await
        .unwrap();

    assert!(matches!(second, FetchOutcome::NotModified));
    let sent = server.requests("/feed.xml")[1]
        .header("if-none-match")
        .map(str::to_owned);
    assert_eq!(sent, first.validators.etag);
}

#[tokio::test]
async fn a_changed_feed_is_fetched_again_despite_old_validators() {
    let server = FeedServer::start().await;
    server.set("/feed.xml", Route::rss("World", &items()));
    let fetcher = fetcher();
    let first = document(fetch(&fetcher, &server, "/feed.xml").await.unwrap());
    let more: Vec<Item> = (1..=4).map(Item::numbered).collect();
    server.set("/feed.xml", Route::rss("World", &more));

    let second = document(
        fetcher
            .fetch(&url(&server, "/feed.xml"), &first.validators)
            .await
            .unwrap(),
    );

    assert_eq!(second.body, rss_feed("World", &more).as_bytes());
    assert_ne!(second.validators.etag, first.validators.etag);
}

#[tokio::test]
async fn last_modified_is_sent_back_as_if_modified_since() {
    let server = FeedServer::start().await;
    let date = "Wed, 21 Oct 2015 07:28:00 GMT";
    server.set(
        "/feed.xml",
        Route::rss("World", &items())
            .without_etag()
            .with_last_modified(date),
    );
    let fetcher = fetcher();
    let first = document(fetch(&fetcher, &server, "/feed.xml").await.unwrap());
    assert_eq!(
        first.validators,
        Validators {
            etag: None,
            last_modified: Some(date.into())
        }
    );

    let second = fetcher
        .fetch(&url(&server, "/feed.xml"), &first.validators)
        .await
        .unwrap();

    assert!(matches!(second, FetchOutcome::NotModified));
    assert_eq!(
        server.requests("/feed.xml")[1].header("if-modified-since"),
        Some(date)
    );
}

#[tokio::test]
async fn compressed_bodies_are_decoded() {
    let server = FeedServer::start().await;
    let plain = rss_feed("World", &items());
    type Encode = fn(Route) -> Route;
    let encodings: [(&str, Encode); 3] = [
        ("/gzip.xml", Route::gzip),
        ("/brotli.xml", Route::brotli),
        ("/deflate.xml", Route::deflate),
    ];
    for (path, encode) in encodings {
        server.set(path, encode(Route::rss("World", &items())));
    }

    let fetcher = fetcher();
    for (path, _) in encodings {
        let got = document(fetch(&fetcher, &server, path).await.unwrap());
        assert_eq!(got.body, plain.as_bytes(), "{path}");
        assert_eq!(got.content_type.as_deref(), Some(RSS), "{path}");
    }
}

#[tokio::test]
async fn bytes_in_a_legacy_charset_are_passed_through_untouched() {
    let server = FeedServer::start().await;
    let latin1 = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><rss><channel><title>Caf\xe9</title></channel></rss>";
    server.set(
        "/latin1.xml",
        Route::document("text/xml; charset=ISO-8859-1", &latin1[..]),
    );

    let got = document(fetch(&fetcher(), &server, "/latin1.xml").await.unwrap());

    assert_eq!(got.body, &latin1[..]);
    assert_eq!(
        got.content_type.as_deref(),
        Some("text/xml; charset=ISO-8859-1")
    );
}

#[tokio::test]
async fn a_chain_of_permanent_redirects_reports_the_new_address() {
    let server = FeedServer::start().await;
    server.set("/old", Route::redirect(301, "/older-still"));
    server.set("/older-still", Route::redirect(308, &server.url("/new")));
    server.set("/new", Route::rss("World", &items()));

    let got = document(fetch(&fetcher(), &server, "/old").await.unwrap());

    assert_eq!(got.final_url, url(&server, "/new"));
    assert_eq!(got.moved_to, Some(url(&server, "/new")));
    assert_eq!(got.body, rss_feed("World", &items()).as_bytes());
}

#[tokio::test]
async fn a_temporary_hop_means_the_feed_has_not_moved() {
    let server = FeedServer::start().await;
    server.set("/old", Route::redirect(301, "/campaign"));
    server.set("/campaign", Route::redirect(302, "/new"));
    server.set("/new", Route::rss("World", &items()));

    let got = document(fetch(&fetcher(), &server, "/old").await.unwrap());

    assert_eq!(got.final_url, url(&server, "/new"));
    assert_eq!(got.moved_to, None);
}

#[tokio::test]
async fn a_relative_location_is_resolved_against_the_current_address() {
    let server = FeedServer::start().await;
    server.set("/feeds/old.xml", Route::redirect(307, "current.xml"));
    server.set("/feeds/current.xml", Route::rss("World", &items()));

    let got = document(fetch(&fetcher(), &server, "/feeds/old.xml").await.unwrap());

    assert_eq!(got.final_url, url(&server, "/feeds/current.xml"));
}

#[tokio::test]
async fn validators_are_sent_on_every_redirect_hop() {
    let server = FeedServer::start().await;
    server.set("/old", Route::redirect(301, "/new"));
    server.set("/new", Route::rss("World", &items()));
    let fetcher = fetcher();
    let first = document(fetch(&fetcher, &server, "/old").await.unwrap());

    let second = fetcher
        .fetch(&url(&server, "/old"), &first.validators)
        .await
        .unwrap();

    assert!(matches!(second, FetchOutcome::NotModified));
    for path in ["/old", "/new"] {
        let sent = server.requests(path)[1]
            .header("if-none-match")
            .map(str::to_owned);
        assert_eq!(sent, first.validators.etag, "{path}");
    }
}

#[tokio::test]
async fn a_redirect_loop_stops_at_the_limit() {
    let server = FeedServer::start().await;
    server.set("/a", Route::redirect(302, "/b"));
    server.set("/b", Route::redirect(302, "/a"));

    let error = fetch(&fetcher(), &server, "/a").await.unwrap_err();

    assert!(
        matches!(error, FetchError::TooManyRedirects { limit: 5 }),
        "{error:?}"
    );
    assert_eq!(error.to_string(), "more than 5 redirects");
    assert_eq!(server.hits("/a") + server.hits("/b"), 6);
}

#[tokio::test]
async fn exactly_max_redirects_hops_are_followed() {
    let server = FeedServer::start().await;
    server.set("/1", Route::redirect(301, "/2"));
    server.set("/2", Route::redirect(301, "/3"));
    server.set("/3", Route::rss("World", &items()));
    let two_hops = Fetcher::new(FetchSettings {
        max_redirects: 2,
        ..settings()
    })
    .unwrap();
    let one_hop = Fetcher::new(FetchSettings {
        max_redirects: 1,
        ..settings()
    })
    .unwrap();

    assert!(fetch(&two_hops, &server, "/1").await.is_ok());
    let error = fetch(&one_hop, &server, "/1").await.unwrap_err();
    assert!(
        matches!(error, FetchError::TooManyRedirects { limit: 1 }),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_redirect_without_a_web_target_is_refused() {
    let server = FeedServer::start().await;
    server.set("/to-ftp", Route::redirect(301, "ftp://example.com/feed"));
    server.set("/nowhere", Route::status(302));

    for path in ["/to-ftp", "/nowhere"] {
        let error = fetch(&fetcher(), &server, path).await.unwrap_err();
        assert!(
            matches!(error, FetchError::BadRedirect { .. }),
            "{path}: {error:?}"
        );
        assert!(!error.is_retryable());
    }
}

#[tokio::test]
async fn error_statuses_are_reported_with_their_meaning() {
    struct Case {
        route: Route,
        message: &'static str,
        retryable: bool,
        retry_after: Option<Duration>,
    }
    let cases = [
        Case {
            route: Route::status(404),
            message: "HTTP 404 Not Found",
            retryable: false,
            retry_after: None,
        },
        Case {
            route: Route::status(500),
            message: "HTTP 500 Internal Server Error",
            retryable: true,
            retry_after: None,
        },
        Case {
            route: Route::status(410),
            message: "HTTP 410 Gone",
            retryable: false,
            retry_after: None,
        },
        Case {
            route: Route::status(429).with_retry_after("120"),
            message: "HTTP 429 Too Many Requests (retry after 2m)",
            retryable: true,
            retry_after: Some(Duration::from_secs(120)),
        },
        Case {
            route: Route::status(503).with_retry_after("Thu, 01 Jan 1970 00:00:00 GMT"),
            message: "HTTP 503 Service Unavailable (retry after 0s)",
            retryable: true,
            retry_after: Some(Duration::ZERO),
        },
    ];
    let server = FeedServer::start().await;
    let fetcher = fetcher();
    for (n, case) in cases.into_iter().enumerate() {
        let path = format!("/status-{n}");
        server.set(&path, case.route);

        let error = fetch(&fetcher, &server, &path).await.unwrap_err();

        assert_eq!(error.to_string(), case.message);
        assert_eq!(error.is_retryable(), case.retryable, "{error}");
        assert_eq!(error.retry_after(), case.retry_after, "{error}");
    }
}

#[tokio::test]
async fn gone_is_its_own_error() {
    let server = FeedServer::start().await;
    server.set("/gone", Route::status(410));

    let error = fetch(&fetcher(), &server, "/gone").await.unwrap_err();

    assert!(matches!(error, FetchError::Gone), "{error:?}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let server = FeedServer::start().await;
    server.set("/silent", Route::stall());
    server.set("/trickle", Route::stall_body());
    let impatient = Fetcher::new(FetchSettings {
        timeout: Duration::from_millis(300),
        ..settings()
    })
    .unwrap();

    for path in ["/silent", "/trickle"] {
        let error = fetch(&impatient, &server, path).await.unwrap_err();
        assert!(
            matches!(error, FetchError::Timeout { .. }),
            "{path}: {error:?}"
        );
        assert_eq!(error.to_string(), "timed out after 300ms");
        assert!(error.is_retryable());
    }
}

#[tokio::test]
async fn an_endless_body_is_cut_off_at_the_limit() {
    let server = FeedServer::start().await;
    server.set("/endless", Route::huge_body(1 << 30));
    server.set("/announced", Route::huge_body_with_length(1 << 30));

    for path in ["/endless", "/announced"] {
        let error = fetch(&fetcher(), &server, path).await.unwrap_err();
        assert!(
            matches!(error, FetchError::BodyTooLarge { limit: 1_000_000 }),
            "{path}: {error:?}"
        );
        assert_eq!(error.to_string(), "body exceeds the 1 MB limit");
    }
}

#[tokio::test]
async fn a_gzip_bomb_is_cut_off_after_decompression() {
    let server = FeedServer::start().await;
    server.set("/bomb", Route::gzip_bomb(1 << 30));

    let error = fetch(&fetcher(), &server, "/bomb").await.unwrap_err();

    assert!(
        matches!(error, FetchError::BodyTooLarge { limit: 1_000_000 }),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_highly_compressed_body_within_the_limit_is_inflated_whole() {
    let server = FeedServer::start().await;
    server.set("/zeros", Route::gzip_bomb(256 * 1024));

    let got = document(fetch(&fetcher(), &server, "/zeros").await.unwrap());

    assert_eq!(got.body.len(), 256 * 1024);
    assert!(got.body.iter().all(|byte| *byte == 0));
}

#[tokio::test]
async fn a_body_of_exactly_max_body_bytes_is_accepted() {
    let server = FeedServer::start().await;
    server.set("/full", Route::huge_body(1_000_000));
    server.set("/over", Route::huge_body(1_000_001));

    let got = document(fetch(&fetcher(), &server, "/full").await.unwrap());
    assert_eq!(got.body.len(), 1_000_000);
    let error = fetch(&fetcher(), &server, "/over").await.unwrap_err();
    assert!(
        matches!(error, FetchError::BodyTooLarge { .. }),
        "{error:?}"
    );
}

/// Starts `count` fetches of `path` at once, waits until `expected_in_flight` of them
/// reach the server (held there by a gate), then releases them all.
async fn fetch_all_at_once(
    fetcher: &Fetcher,
    server: &FeedServer,
    path: &str,
    count: usize,
    expected_in_flight: usize,
) {
    let gate = Gate::new();
    server.set(path, Route::rss("World", &items()).held_by(&gate));
    let fetches: Vec<_> = (0..count)
        .map(|_| {
            let fetcher = fetcher.clone();
            let url = url(server, path);
            tokio::spawn(async move { fetcher.fetch(&url, &Validators::default()).await })
        })
        .collect();

    server.wait_for_in_flight(path, expected_in_flight).await;
    // Give a fetch that ignores the limit the chance to show up before the release.
    tokio::time::sleep(Duration::from_millis(100)).await;
    gate.open();
    for fetch in fetches {
        fetch.await.unwrap().unwrap();
    }
    assert_eq!(server.hits(path), count);
}

#[tokio::test]
async fn no_more_than_per_host_requests_reach_one_host_at_once() {
    let server = FeedServer::start().await;
    let fetcher = Fetcher::new(FetchSettings {
        per_host: 2,
        ..settings()
    })
    .unwrap();

    fetch_all_at_once(&fetcher, &server, "/busy.xml", 6, 2).await;

    assert_eq!(server.max_in_flight("/busy.xml"), 2);
}

#[tokio::test]
async fn no_more_than_concurrency_requests_are_in_flight_at_once() {
    let server = FeedServer::start().await;
    let fetcher = Fetcher::new(FetchSettings {
        concurrency: 3,
        per_host: 10,
        ..settings()
    })
    .unwrap();

    fetch_all_at_once(&fetcher, &server, "/busy.xml", 7, 3).await;

    assert_eq!(server.max_in_flight("/busy.xml"), 3);
}

#[tokio::test]
async fn a_failing_server_can_recover_in_sequence() {
    let server = FeedServer::start().await;
    server.set(
        "/flaky.xml",
        Route::sequence(vec![
            Route::status(500),
            Route::status(503),
            Route::rss("World", &items()),
        ]),
    );
    let fetcher = fetcher();

    assert!(fetch(&fetcher, &server, "/flaky.xml").await.is_err());
    assert!(fetch(&fetcher, &server, "/flaky.xml").await.is_err());
    assert!(fetch(&fetcher, &server, "/flaky.xml").await.is_ok());
    assert!(fetch(&fetcher, &server, "/flaky.xml").await.is_ok());
}

#[tokio::test]
async fn a_closed_port_is_a_clear_transport_error() {
    // Bind then release a port, so that nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let closed = Url::parse(&format!("http://127.0.0.1:{port}/feed.xml")).unwrap();

    let error = fetcher()
        .fetch(&closed, &Validators::default())
        .await
        .unwrap_err();

    assert!(matches!(error, FetchError::Transport(_)), "{error:?}");
    assert_eq!(error.to_string(), "connection refused");
    assert!(error.is_retryable());
}

#[tokio::test]
async fn only_web_addresses_are_fetched() {
    let error = fetcher()
        .fetch(
            &Url::parse("file:///etc/passwd").unwrap(),
            &Validators::default(),
        )
        .await
        .unwrap_err();

    assert!(
        matches!(error, FetchError::UnsupportedUrl { .. }),
        "{error:?}"
    );
}
