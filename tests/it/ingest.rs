//! Fetch → parse → normalise → store, end to end against a local feed server, on
//! SQLite and PostgreSQL alike.

use herald::domain::feed::{FeedRecord, FeedSpec, FeedStatus};
use herald::ingest::{self, PollStatus};

use crate::both_backends;
use crate::support::db::{Backend, TestDb};
use crate::support::feed_server::{FeedServer, Item, Route};
use crate::support::herald::{TestHerald, feeds_toml};

fn items(n: u32) -> Vec<Item> {
    (1..=n).map(Item::numbered).collect()
}

async fn one_feed(backend: Backend, route: Route) -> (FeedServer, TestHerald) {
    let server = FeedServer::start().await;
    server.set("/feed", route);
    let herald = TestHerald::start(backend, &feeds_toml(&[server.url("/feed")])).await;
    (server, herald)
}

both_backends!(
    unchanged_feed_is_fetched_conditionally_and_stores_nothing,
    same_story_with_other_tracking_parameters_is_one_article_with_two_sources,
    edited_item_updates_its_article_in_place,
    feed_without_guids_deduplicates_by_link,
    broken_feed_records_its_error_and_others_still_succeed,
    concurrent_pollers_store_each_item_once,
    every_feed_format_is_stored,
    legacy_character_sets_are_decoded,
    gone_feed_is_disabled_and_redirected_feed_moves,
    many_feeds_with_many_hits_at_once_all_succeed_and_store_everything_once,
    syncing_the_configured_feeds_keeps_ids_renames_and_retires,
    control_characters_in_feed_text_are_dropped_and_cost_no_item,
    an_item_the_database_refuses_costs_only_itself,
);

/// A database that refuses one title, as a constraint an operator added would.
async fn refuse_title(backend: Backend, db: &TestDb, title: &str) {
    let sql = match backend {
        Backend::Sqlite => format!(
            "CREATE TRIGGER refuse_title BEFORE INSERT ON articles
             WHEN NEW.title = '{title}'
             BEGIN SELECT RAISE(ABORT, 'title refused by policy'); END;"
        ),
        Backend::Postgres => format!(
            "CREATE FUNCTION refuse_title() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
               IF NEW.title = '{title}' THEN
                 RAISE EXCEPTION 'title refused by policy' USING ERRCODE = 'check_violation';
               END IF;
               RETURN NEW;
             END $$;
             CREATE TRIGGER refuse_title BEFORE INSERT ON articles
             FOR EACH ROW EXECUTE FUNCTION refuse_title();"
        ),
    };
    db.execute_sql(&sql).await;
}

async fn an_item_the_database_refuses_costs_only_itself(backend: Backend) {
    let server = FeedServer::start().await;
    let mut wire = items(20);
    wire[4].title = "Poison pill".to_owned();
    server.set("/feed", Route::rss("Wire", &wire));
    let herald = TestHerald::start(backend, &feeds_toml(&[server.url("/feed")])).await;
    refuse_title(backend, &herald.db, "Poison pill").await;

    let first = herald.poll_one().await;
    assert_eq!((first.status, first.new), (PollStatus::Ok, 19), "{first:?}");
    let error = first.error.clone().unwrap_or_default();
    assert!(
        error.starts_with("1 of 20 items not stored; item ")
            && error.contains("item-5")
            && error.contains("title refused by policy"),
        "{error}"
    );
    assert_eq!(herald.db.store.count_articles().await.unwrap(), 19);
    let feed = &herald.feeds().await[0].record;
    assert_eq!(
        (feed.status, feed.error.as_deref()),
        (FeedStatus::Ok, Some(error.as_str()))
    );

    // Once the database takes it, the next poll stores it: the document is
    // fetched again in full, not answered with 304.
    let drop = match backend {
        Backend::Sqlite => "DROP TRIGGER refuse_title",
        Backend::Postgres => "DROP TRIGGER refuse_title ON articles",
    };
    herald.db.execute_sql(drop).await;
    let second = herald.poll_one().await;
    assert_eq!(
        (second.status, second.new, second.error),
        (PollStatus::Ok, 1, None)
    );
    assert!(
        server.requests("/feed")[1]
            .header("if-none-match")
            .is_none()
    );
    assert_eq!(herald.db.store.count_articles().await.unwrap(), 20);
    assert_eq!(herald.feeds().await[0].record.error, None);
}

async fn control_characters_in_feed_text_are_dropped_and_cost_no_item(backend: Backend) {
    let server = FeedServer::start().await;
    let mut json_items = items(50);
    json_items[7].title = "Talks\u{0} resume".to_owned();
    json_items[8].title = "\u{1b}[2JScreen cleared".to_owned();
    let mut rss_items: Vec<Item> = (51..=60).map(Item::numbered).collect();
    rss_items[0].title = "Raw\u{0}NUL in XML".to_owned();
    // Character references reach the text only once the HTML is decoded.
    rss_items[1].description = "<p>Bell&#7; and &#27;[31mred&#0;</p>".to_owned();
    server.set("/json", Route::json_feed("JSON", &json_items));
    server.set("/rss", Route::rss("Wire\u{0}", &rss_items));
    let herald = TestHerald::start(
        backend,
        &feeds_toml(&[server.url("/json"), server.url("/rss")]),
    )
    .await;

    let reports = herald.poll().await;
    let outcomes: Vec<_> = reports
        .iter()
        .map(|r| (r.status, r.new, r.error.clone()))
        .collect();
    assert_eq!(
        outcomes,
        [(PollStatus::Ok, 50, None), (PollStatus::Ok, 10, None)]
    );
    assert_eq!(herald.db.store.count_articles().await.unwrap(), 60);
    let title = |n: u32| {
        let store = herald.db.store.clone();
        async move {
            store
                .article_by_canonical_url(&format!("https://example.com/articles/{n}"))
                .await
                .unwrap()
                .unwrap()
        }
    };
    assert_eq!(title(8).await.title, "Talks resume");
    assert_eq!(title(9).await.title, "[2JScreen cleared");
    assert_eq!(title(51).await.title, "RawNUL in XML");
    // HTML decodes `&#0;` as U+FFFD, the replacement character.
    assert_eq!(
        title(52).await.summary.as_deref(),
        Some("Bell and [31mred\u{fffd}")
    );
    let feed_titles: Vec<_> = herald
        .feeds()
        .await
        .into_iter()
        .map(|feed| feed.record.title)
        .collect();
    assert_eq!(feed_titles[1].as_deref(), Some("Wire"));
}

async fn syncing_the_configured_feeds_keeps_ids_renames_and_retires(backend: Backend) {
    let db = TestDb::new(backend).await;
    let spec = |url: &str, name: Option<&str>| FeedSpec {
        url: url.to_string(),
        name: name.map(str::to_string),
    };
    let first = db
        .store
        .sync_feeds(&[
            spec("https://b.example/feed", Some("Bee")),
            spec("https://a.example/feed", None),
        ])
        .await
        .unwrap();
    let urls: Vec<&str> = first.iter().map(|feed| feed.url.as_str()).collect();
    assert_eq!(urls, ["https://b.example/feed", "https://a.example/feed"]);
    assert_eq!(first[0].name.as_deref(), Some("Bee"));

    // Same configuration again: same rows, nothing else.
    let again = db
        .store
        .sync_feeds(&[
            spec("https://b.example/feed", Some("Bee")),
            spec("https://a.example/feed", None),
        ])
        .await
        .unwrap();
    let ids = |feeds: &[FeedRecord]| feeds.iter().map(|feed| feed.id).collect::<Vec<_>>();
    assert_eq!(ids(&again), ids(&first));

    // Renamed, one dropped, one added: the kept feed keeps its id, the dropped one
    // is no longer scheduled, and putting it back brings back the same row.
    let renamed = db
        .store
        .sync_feeds(&[
            spec("https://c.example/feed", None),
            spec("https://b.example/feed", Some("Bee News")),
        ])
        .await
        .unwrap();
    assert_eq!(renamed[1].id, first[0].id);
    assert_eq!(renamed[1].name.as_deref(), Some("Bee News"));
    let now = chrono::Utc::now();
    let due = db
        .store
        .claim_due_feeds("test", now, now + chrono::Duration::minutes(1), 10)
        .await
        .unwrap();
    let mut due_urls: Vec<&str> = due.iter().map(|feed| feed.url.as_str()).collect();
    due_urls.sort_unstable();
    assert_eq!(
        due_urls,
        ["https://b.example/feed", "https://c.example/feed"]
    );
    let back = db
        .store
        .sync_feeds(&[spec("https://a.example/feed", None)])
        .await
        .unwrap();
    assert_eq!(back[0].id, first[1].id);
}

async fn unchanged_feed_is_fetched_conditionally_and_stores_nothing(backend: Backend) {
    let (server, herald) = one_feed(backend, Route::rss("World", &items(3))).await;

    let first = herald.poll_one().await;
    assert_eq!(
        (first.status, first.new, first.error),
        (PollStatus::Ok, 3, None)
    );

    let second = herald.poll_one().await;
    assert_eq!(second.status, PollStatus::NotModified);
    assert_eq!((second.new, second.updated), (0, 0));
    let requests = server.requests("/feed");
    assert_eq!(requests.len(), 2);
    assert!(requests[0].header("if-none-match").is_none());
    assert!(
        requests[1].header("if-none-match").is_some(),
        "second poll must send the stored ETag"
    );
    assert_eq!(herald.db.store.count_articles().await.unwrap(), 3);
    let feed = &herald.feeds().await[0].record;
    assert_eq!(feed.status, FeedStatus::NotModified);
    assert_eq!(feed.articles, 3);
}

async fn same_story_with_other_tracking_parameters_is_one_article_with_two_sources(
    backend: Backend,
) {
    let server = FeedServer::start().await;
    let story = |guid: &str, link: &str| Item {
        guid: guid.into(),
        link: link.into(),
        title: "North Korean delegation arrives in Tehran".into(),
        description: "<p>A rare visit.</p>".into(),
        pub_date: Item::numbered(1).pub_date,
    };
    server.set(
        "/a",
        Route::rss(
            "Wire",
            &[story(
                "wire-1",
                "https://news.example/world/nk-iran?utm_source=rss&utm_medium=feed",
            )],
        ),
    );
    server.set(
        "/b",
        Route::rss(
            "Herald",
            &[story(
                "herald-77",
                "https://NEWS.example:443/world/nk-iran?utm_campaign=x&fbclid=abc#top",
            )],
        ),
    );
    let herald =
        TestHerald::start(backend, &feeds_toml(&[server.url("/a"), server.url("/b")])).await;

    let reports = herald.poll().await;
    let stored: usize = reports.iter().map(|r| r.new).sum();
    let merged: usize = reports.iter().map(|r| r.merged).sum();
    assert_eq!((stored, merged), (1, 1), "{reports:?}");
    assert_eq!(herald.db.store.count_articles().await.unwrap(), 1);

    let article = herald
        .db
        .store
        .article_by_canonical_url("https://news.example/world/nk-iran")
        .await
        .unwrap()
        .expect("article stored under its canonical URL");
    let mut sources: Vec<&str> = article.feeds.iter().map(|f| f.url.as_str()).collect();
    sources.sort();
    let mut expected = vec![server.url("/a"), server.url("/b")];
    expected.sort();
    assert_eq!(sources, expected);
}

async fn edited_item_updates_its_article_in_place(backend: Backend) {
    let (server, herald) = one_feed(backend, Route::rss("World", &items(2))).await;
    assert_eq!(herald.poll_one().await.new, 2);

    let mut edited = items(2);
    edited[0].title = "Article 1 (corrected)".into();
    edited[0].description = "<p>Corrected body.</p>".into();
    server.set("/feed", Route::rss("World", &edited));

    let report = herald.poll_one().await;
    assert_eq!(
        (report.status, report.new, report.updated, report.unchanged),
        (PollStatus::Ok, 0, 1, 1)
    );
    assert_eq!(herald.db.store.count_articles().await.unwrap(), 2);
    let article = herald
        .db
        .store
        .article_by_canonical_url("https://example.com/articles/1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(article.title, "Article 1 (corrected)");
    assert_eq!(article.summary.as_deref(), Some("Corrected body."));
}

fn rss_without_guids(links: &[&str]) -> String {
    let items: String = links
        .iter()
        .map(|link| format!("<item><title>Story at {link}</title><link>{link}</link></item>"))
        .collect();
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>No guids</title>{items}</channel></rss>"
    )
}

async fn feed_without_guids_deduplicates_by_link(backend: Backend) {
    let first = rss_without_guids(&["https://example.org/a", "https://example.org/b"]);
    let (server, herald) = one_feed(backend, Route::document("application/rss+xml", first)).await;
    assert_eq!(herald.poll_one().await.new, 2);

    // New item on top, the old ones re-ordered: only the new one is stored.
    let second = rss_without_guids(&[
        "https://example.org/c",
        "https://example.org/b",
        "https://example.org/a",
    ]);
    server.set("/feed", Route::document("application/rss+xml", second));
    let report = herald.poll_one().await;
    assert_eq!((report.new, report.unchanged), (1, 2), "{report:?}");
    assert_eq!(herald.db.store.count_articles().await.unwrap(), 3);
}

async fn broken_feed_records_its_error_and_others_still_succeed(backend: Backend) {
    let server = FeedServer::start().await;
    server.set("/good", Route::rss("Good", &items(2)));
    server.set("/down", Route::status(500));
    server.set(
        "/html",
        Route::document("text/html", "<html><body>Not a feed</body></html>"),
    );
    server.set("/missing", Route::status(404));
    let urls = ["/good", "/down", "/html", "/missing"].map(|p| server.url(p));
    let herald = TestHerald::start(backend, &feeds_toml(&urls)).await;

    let reports = herald.poll().await;
    let by_url = |path: &str| {
        reports
            .iter()
            .find(|r| r.url == server.url(path))
            .unwrap()
            .clone()
    };
    assert_eq!(
        (by_url("/good").status, by_url("/good").new),
        (PollStatus::Ok, 2)
    );
    for path in ["/down", "/html", "/missing"] {
        let report = by_url(path);
        assert_eq!(report.status, PollStatus::Error, "{path}: {report:?}");
    }
    assert!(by_url("/down").error.unwrap().contains("500"));
    assert!(by_url("/missing").error.unwrap().contains("404"));
    assert!(!by_url("/html").error.unwrap().is_empty());

    // The reasons are recorded where `herald feeds` shows them.
    let feeds = herald.feeds().await;
    let down = feeds
        .iter()
        .find(|f| f.record.url == server.url("/down"))
        .unwrap();
    assert_eq!(down.record.status, FeedStatus::Error);
    assert_eq!(down.record.failures, 1);
    assert!(down.record.error.as_deref().unwrap().contains("500"));
    assert!(down.record.next_fetch_at.is_some());
    assert_eq!(herald.db.store.count_articles().await.unwrap(), 2);
}

async fn concurrent_pollers_store_each_item_once(backend: Backend) {
    let (server, herald) = one_feed(backend, Route::rss("World", &items(20))).await;
    let feed = herald.feeds().await.remove(0);
    let store = herald.db.store.clone();
    let fetcher = herald.app.fetcher.clone();
    let watch = herald.app.watch.clone();

    let mut tasks = Vec::new();
    for _ in 0..30 {
        let (store, fetcher, record) = (store.clone(), fetcher.clone(), feed.record.clone());
        let watch = watch.clone();
        let interval = feed.interval;
        tasks.push(tokio::spawn(async move {
            ingest::poll_feed(&store, &fetcher, &watch, &record, &[], interval).await
        }));
    }
    let mut new = 0;
    for task in tasks {
        let report = task.await.unwrap();
        assert_eq!(report.error, None, "{report:?}");
        new += report.new;
    }
    assert_eq!(server.hits("/feed"), 30);
    assert_eq!(new, 20, "each item is new for exactly one poller");
    assert_eq!(store.count_articles().await.unwrap(), 20);
    assert_eq!(herald.feeds().await[0].record.articles, 20);
}

async fn every_feed_format_is_stored(backend: Backend) {
    let server = FeedServer::start().await;
    let formats = [
        ("/rss", Route::rss("RSS", &items(2))),
        ("/atom", Route::atom("Atom", &items(2))),
        ("/rdf", Route::rdf("RDF", &items(2))),
        ("/json", Route::json_feed("JSON", &items(2))),
    ];
    let mut urls = Vec::new();
    for (path, route) in formats {
        server.set(path, route);
        urls.push(server.url(path));
    }
    let herald = TestHerald::start(backend, &feeds_toml(&urls)).await;
    // RSS first, so the shared articles are stored from it (the JSON Feed carries
    // its text as content only), then the other three at once.
    let feeds = herald.feeds().await;
    let mut reports = herald.app.poll_once(&feeds[..1]).await;
    reports.extend(herald.app.poll_once(&feeds[1..]).await);
    for report in &reports {
        assert_eq!(
            (report.status, report.error.as_deref()),
            (PollStatus::Ok, None)
        );
    }
    // The four formats carry the same two links: two articles, each from four feeds.
    let stored: usize = reports.iter().map(|r| r.new).sum();
    assert_eq!(stored, 2, "{reports:?}");
    let article = herald
        .db
        .store
        .article_by_canonical_url("https://example.com/articles/2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(article.title, "Article 2");
    assert_eq!(article.feeds.len(), 4);
    assert_eq!(article.summary.as_deref(), Some("Body of article 2."));
    let names: Vec<_> = herald
        .feeds()
        .await
        .into_iter()
        .map(|f| f.record.title)
        .collect();
    assert!(names.contains(&Some("Atom".to_owned())), "{names:?}");
}

async fn legacy_character_sets_are_decoded(backend: Backend) {
    let server = FeedServer::start().await;
    let (latin1, _, _) = encoding_rs::WINDOWS_1252.encode(
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><rss version=\"2.0\"><channel><title>Jornal</title>\
         <item><title>São Paulo é a maior cidade</title><link>https://jornal.example/sp</link></item></channel></rss>",
    );
    let (cp1251, _, _) = encoding_rs::WINDOWS_1251.encode(
        "<?xml version=\"1.0\" encoding=\"windows-1251\"?><rss version=\"2.0\"><channel><title>Новости</title>\
         <item><title>Москва и Тегеран провели переговоры</title><link>https://novosti.example/1</link></item></channel></rss>",
    );
    // Declared only in the HTTP header, not in the document.
    let (header_only, _, _) = encoding_rs::WINDOWS_1251.encode(
        "<rss version=\"2.0\"><channel><title>Вести</title>\
         <item><title>Пхеньян</title><link>https://vesti.example/1</link></item></channel></rss>",
    );
    server.set(
        "/latin1",
        Route::document("application/rss+xml", latin1.into_owned()),
    );
    server.set(
        "/cp1251",
        Route::document("application/rss+xml", cp1251.into_owned()),
    );
    server.set(
        "/header",
        Route::document(
            "application/rss+xml; charset=windows-1251",
            header_only.into_owned(),
        ),
    );
    let urls = ["/latin1", "/cp1251", "/header"].map(|p| server.url(p));
    let herald = TestHerald::start(backend, &feeds_toml(&urls)).await;
    for report in herald.poll().await {
        assert_eq!(
            (report.status, report.error.as_deref()),
            (PollStatus::Ok, None)
        );
    }
    let title = |url: &'static str| {
        let store = herald.db.store.clone();
        async move {
            store
                .article_by_canonical_url(url)
                .await
                .unwrap()
                .unwrap()
                .title
        }
    };
    assert_eq!(
        title("https://jornal.example/sp").await,
        "São Paulo é a maior cidade"
    );
    assert_eq!(
        title("https://novosti.example/1").await,
        "Москва и Тегеран провели переговоры"
    );
    assert_eq!(title("https://vesti.example/1").await, "Пхеньян");
}

async fn gone_feed_is_disabled_and_redirected_feed_moves(backend: Backend) {
    let server = FeedServer::start().await;
    server.set("/gone", Route::status(410));
    server.set("/old", Route::redirect(301, "/new"));
    server.set("/new", Route::rss("Moved", &items(1)));
    let urls = ["/gone", "/old"].map(|p| server.url(p));
    let herald = TestHerald::start(backend, &feeds_toml(&urls)).await;

    let reports = herald.poll().await;
    assert_eq!(reports[0].status, PollStatus::Disabled);
    assert_eq!(reports[1].status, PollStatus::Ok);
    assert_eq!(
        reports[1].moved_to.as_deref(),
        Some(server.url("/new").as_str())
    );

    let feeds = herald.feeds().await;
    assert_eq!(feeds[0].record.status, FeedStatus::Disabled);
    assert_eq!(feeds[1].record.fetch_url, server.url("/new"));

    // A disabled feed is not fetched again; the moved one is fetched at its new address.
    herald.poll().await;
    assert_eq!(server.hits("/gone"), 1);
    assert_eq!(server.hits("/old"), 1);
    assert_eq!(server.hits("/new"), 2);
}

/// Words every item of the load test carries, so every rule fires on every item.
const LOAD_WORDS: [&str; 10] = [
    "harbour", "council", "budget", "rail", "strike", "ministry", "river", "school", "court",
    "market",
];

/// One clock reading for the load test, so an item built twice is the same item.
static LOAD_NOW: std::sync::LazyLock<chrono::DateTime<chrono::Utc>> =
    std::sync::LazyLock::new(chrono::Utc::now);

fn load_item(feed: usize, n: usize) -> Item {
    // Words of its own, so that no two items are one story.
    let mut state = (feed * 1_000 + n) as u64 + 1;
    let body: Vec<String> = (0..40)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            format!("w{:x}", state >> 40)
        })
        .collect();
    Item {
        guid: format!("load-{feed}-{n}"),
        link: format!("https://outlet{feed}.example/{n}"),
        title: format!("Item {n} of outlet {feed} on {}", LOAD_WORDS.join(" ")),
        description: format!("<p>{} {}</p>", LOAD_WORDS.join(" "), body.join(" ")),
        pub_date: Some(*LOAD_NOW - chrono::Duration::minutes(n as i64)),
    }
}

/// A busy database makes writers wait, never fail: many feeds fetched at
/// once, each item firing many rules, through the store's small connection
/// pool. Every feed succeeds and every item and alert is stored once.
async fn many_feeds_with_many_hits_at_once_all_succeed_and_store_everything_once(backend: Backend) {
    const FEEDS: usize = 24;
    const ITEMS: usize = 10;
    const RULES: usize = 40;
    let server = FeedServer::start().await;
    let paths: Vec<String> = (0..FEEDS).map(|f| format!("/load{f}")).collect();
    for (feed, path) in paths.iter().enumerate() {
        server.set(path, Route::rss("Load", &[load_item(feed, 0)]));
    }
    let urls: Vec<String> = paths.iter().map(|p| server.url(p)).collect();
    let rules: String = (0..RULES)
        .map(|r| {
            let word = LOAD_WORDS[r % LOAD_WORDS.len()];
            let other = LOAD_WORDS[(r / LOAD_WORDS.len() + r + 1) % LOAD_WORDS.len()];
            format!("[rules.r{r}]\nquery = '{word} {other} NOT r{r}zz'\nsinks = [\"log\"]\n\n")
        })
        .collect();
    let config = format!(
        // Continues the `[fetch]` table the test harness opens.
        "concurrency = 64\nper_host = 64\n\n[sinks.log]\ntype = \"log\"\n\n{rules}{}",
        feeds_toml(&urls)
    );
    let herald = TestHerald::start(backend, &config).await;
    let first = herald.poll().await;
    assert!(
        first.iter().all(|r| r.status == PollStatus::Ok),
        "{first:?}"
    );

    for (feed, path) in paths.iter().enumerate() {
        let items: Vec<Item> = (0..=ITEMS).map(|n| load_item(feed, n)).collect();
        server.set(path, Route::rss("Load", &items));
    }
    let reports = herald.poll().await;
    let failed: Vec<_> = reports
        .iter()
        .filter(|r| r.status != PollStatus::Ok)
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert!(reports.iter().all(|r| r.new == ITEMS), "{reports:?}");
    assert!(
        reports.iter().all(|r| r.alerts == ITEMS * RULES),
        "{reports:?}"
    );
    let stored = herald.db.store.count_articles().await.unwrap();
    assert_eq!(stored, (FEEDS * (ITEMS + 1)) as i64);
    let deliveries = herald
        .db
        .store
        .deliveries(None, (FEEDS * ITEMS * RULES * 2) as i64)
        .await
        .unwrap();
    assert_eq!(deliveries.len(), FEEDS * ITEMS * RULES);
}

/// A database herald creates has 8 KiB pages (articles are 2-4 KB rows); one
/// created with SQLite's default 4 KiB pages keeps them, and herald stores into
/// it all the same.
#[tokio::test]
async fn a_new_sqlite_database_has_8_kib_pages_and_an_older_one_keeps_its_own() {
    use sqlx::{Connection, SqliteConnection};

    async fn page_size(path: &std::path::Path) -> i64 {
        let mut connection = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        sqlx::query_scalar("PRAGMA page_size")
            .fetch_one(&mut connection)
            .await
            .unwrap()
    }

    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("fresh.db");
    let store = herald::store::Store::connect(&format!("sqlite://{}", fresh.display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    assert_eq!(page_size(&fresh).await, 8192);

    let older = dir.path().join("older.db");
    {
        let url = format!("sqlite://{}?mode=rwc", older.display());
        let mut connection = SqliteConnection::connect(&url).await.unwrap();
        sqlx::Executor::execute(
            &mut connection,
            "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; CREATE TABLE t (x); DROP TABLE t;",
        )
        .await
        .unwrap();
    }
    let store = herald::store::Store::connect(&format!("sqlite://{}", older.display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let feed = store
        .sync_feeds(&[FeedSpec {
            url: "https://wire.example/feed".to_owned(),
            name: None,
        }])
        .await
        .unwrap()[0]
        .id;
    assert!(feed > 0);
    assert_eq!(store.feeds().await.unwrap().len(), 1);
    assert_eq!(page_size(&older).await, 4096);
}
