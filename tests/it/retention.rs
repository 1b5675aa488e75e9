//! Retention on both backends: `herald prune` and the pass `herald run` makes
//! remove old articles, finished deliveries and stale story fingerprints, keep
//! what is still to be delivered, and keep stories (and their alerts' "fired
//! once") alive past their first article.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use herald::domain::delivery::DeliveryStatus;
use herald::domain::retention::PruneReport;
use herald::retention;
use sqlx::{Connection, PgConnection, SqliteConnection};

use crate::both_backends;
use crate::support::db::Backend;
use crate::support::feed_server::{FeedServer, Item, Route};
use crate::support::herald::TestHerald;
use crate::support::process;
use crate::support::receiver::{Receiver, Reply};

/// One clock reading for the whole run, so an item built twice is the same item.
static NOW: std::sync::LazyLock<DateTime<Utc>> = std::sync::LazyLock::new(Utc::now);

const WIRE_TITLE: &str = "North Korean delegation travels to Iran for trade talks";
const WIRE_BODY: &str = "A North Korean delegation led by the minister of external economic \
    relations arrived in Tehran on Sunday for three days of talks on trade and science, \
    state media in both countries reported. The visit is the first by a cabinet \
    minister from North Korea to Iran in more than five years. The two governments signed a \
    memorandum on technical cooperation in 2019 but have announced few projects since. \
    The delegation is expected to meet the Iranian foreign minister and visit an \
    industrial fair outside the capital before returning to Pyongyang on Wednesday.";

fn item(guid: &str, link: &str, title: &str, body: &str, minutes_ago: i64) -> Item {
    Item {
        guid: guid.into(),
        link: link.into(),
        title: title.into(),
        description: format!("<p>{body}</p>"),
        pub_date: Some(*NOW - Duration::minutes(minutes_ago)),
    }
}

/// An outlet's reprint of the wire story under its own URL and headline.
fn reprint(outlet: &str, title: &str) -> Item {
    let cut = WIRE_BODY
        .rfind(" The delegation")
        .unwrap_or(WIRE_BODY.len());
    item(
        outlet,
        &format!("https://{outlet}.example/nk-iran"),
        title,
        &format!("TEHRAN ({outlet}) - {}", &WIRE_BODY[..cut]),
        10,
    )
}

/// Local news, each item its own story.
const QUIET: [(&str, &str); 10] = [
    (
        "Harbour reopens after storm",
        "Fishing boats returned to the harbour on Friday.",
    ),
    (
        "Library extends opening hours",
        "Readers can now borrow books until nine at night.",
    ),
    (
        "Council approves bike lanes",
        "Painted lanes will link the station and the college.",
    ),
    (
        "Bakery wins regional prize",
        "Its rye loaf beat forty entries from the valley.",
    ),
    (
        "Museum restores old clock",
        "The tower clock chimes again after a decade of silence.",
    ),
    (
        "Ferry timetable changes",
        "Crossings start an hour earlier from the first of May.",
    ),
    (
        "School choir tours abroad",
        "Thirty pupils will sing in three cities this summer.",
    ),
    (
        "Park fountain repaired",
        "Water flows once more beside the bandstand lawn.",
    ),
    (
        "Market moves to the square",
        "Stalls set up outside the town hall every Saturday.",
    ),
    (
        "Bridge repainted in blue",
        "Crews finished the railings a week ahead of plan.",
    ),
];

fn quiet(n: u32) -> Item {
    let (title, body) = QUIET[n as usize % QUIET.len()];
    item(
        &format!("q{n}"),
        &format!("https://quiet.example/{n}"),
        title,
        body,
        60,
    )
}

/// A time as both backends take it in SQL: SQLite's fixed-width UTC text,
/// which PostgreSQL reads as a timestamptz.
fn sql_time(time: DateTime<Utc>) -> String {
    format!("'{}'", time.to_rfc3339_opts(SecondsFormat::Micros, true))
}

fn days_ago(days: i64) -> String {
    sql_time(Utc::now() - Duration::days(days))
}

/// One number from the test's database, as `psql`/`sqlite3` would show it.
async fn count(url: &str, sql: &str) -> i64 {
    if url.starts_with("sqlite:") {
        let mut connection = SqliteConnection::connect(url).await.unwrap();
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&mut connection)
            .await
            .unwrap()
    } else {
        let mut connection = PgConnection::connect(url).await.unwrap();
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&mut connection)
            .await
            .unwrap()
    }
}

/// Rows per table, in the order `PruneReport` lists them.
async fn table_counts(url: &str) -> [i64; 7] {
    let mut counts = [0; 7];
    let tables = [
        "articles",
        "article_sources",
        "stories",
        "alerts",
        "deliveries",
        "delivery_attempts",
        "story_fingerprints",
    ];
    for (slot, table) in counts.iter_mut().zip(tables) {
        *slot = count(url, &format!("SELECT count(*) FROM {table}")).await;
    }
    counts
}

fn removed(report: &PruneReport) -> [i64; 7] {
    [
        report.articles,
        report.article_sources,
        report.stories,
        report.alerts,
        report.deliveries,
        report.delivery_attempts,
        report.story_fingerprints,
    ]
    .map(|n| i64::try_from(n).unwrap())
}

/// `herald prune --dry-run`'s numbers, then `herald prune`'s.
async fn dry_run_then_prune(herald: &TestHerald) -> (PruneReport, PruneReport) {
    let policy = retention::policy(&herald.app.settings, Utc::now(), std::time::Duration::ZERO);
    let before = table_counts(&herald.db.url).await;
    let dry = herald.db.store.prunable(&policy).await.unwrap();
    assert_eq!(
        table_counts(&herald.db.url).await,
        before,
        "a dry run removes nothing"
    );
    let done = retention::prune_once(&herald.app, std::time::Duration::ZERO)
        .await
        .unwrap();
    let after = table_counts(&herald.db.url).await;
    let gone: Vec<i64> = before.iter().zip(after).map(|(b, a)| b - a).collect();
    assert_eq!(gone, removed(&done), "the report says what went");
    assert_eq!(
        orphans(&herald.db.url).await,
        [0; 5],
        "nothing is left of a removed article"
    );
    (dry, done)
}

/// Rows that name an article (or a story's first article) no longer stored.
async fn orphans(url: &str) -> [i64; 5] {
    let mut counts = [0; 5];
    let references = [
        ("article_sources", "article_id"),
        ("story_fingerprints", "article_id"),
        ("search_backlog", "article_id"),
        ("alerts", "article_id"),
        ("stories", "first_article_id"),
    ];
    for (slot, (table, column)) in counts.iter_mut().zip(references) {
        let sql =
            format!("SELECT count(*) FROM {table} WHERE {column} NOT IN (SELECT id FROM articles)");
        *slot = count(url, &sql).await;
    }
    counts
}

async fn feed_articles(herald: &TestHerald) -> i64 {
    herald.db.store.feeds().await.unwrap()[0].articles
}

const RETAINING: &str = "[retention]\narticles = \"365d\"\ndeliveries = \"90d\"\n\n";

both_backends!(
    old_articles_go_with_finished_deliveries_and_wait_for_open_ones,
    a_story_outlives_its_first_article_and_a_later_reprint_does_not_alert_again,
    story_fingerprints_past_the_window_go_and_articles_stay_forever_by_default,
    herald_prune_reports_per_table_in_json,
    a_database_from_before_retention_keeps_its_stories_alerts_and_deliveries,
);

async fn old_articles_go_with_finished_deliveries_and_wait_for_open_ones(backend: Backend) {
    let (server, receiver) = (FeedServer::start().await, Receiver::start().await);
    let config = format!(
        "{RETAINING}[sinks.log]\ntype = \"log\"\n\n\
         [sinks.desk]\ntype = \"slack\"\nurl = \"{}\"\n\n\
         [rules.oil]\nquery = 'oil'\nsinks = [\"log\"]\n\n\
         [rules.gas]\nquery = 'gas'\nsinks = [\"desk\"]\n\n\
         [[feeds]]\nurl = \"{}\"\n",
        receiver.url("/slack"),
        server.url("/news")
    );
    server.set("/news", Route::rss("News", &[quiet(1)]));
    let herald = TestHerald::start(backend, &config).await;
    herald.poll().await;
    let oil = item(
        "oil",
        "https://news.example/oil",
        "Oil prices rise",
        "Oil rose.",
        30,
    );
    let gas = item(
        "gas",
        "https://news.example/gas",
        "Gas runs short",
        "Gas is short.",
        30,
    );
    server.set(
        "/news",
        Route::rss("News", &[quiet(1), oil.clone(), gas.clone(), quiet(2)]),
    );
    let report = herald.poll_one().await;
    assert_eq!((report.new, report.alerts), (3, 2), "{report:?}");
    // The log sink takes its alert; Slack is down, so that one waits for a retry.
    receiver.script("/slack", vec![Reply::status(503)]);
    herald.app.dispatcher.run_once(Utc::now()).await.unwrap();
    let deliveries = herald.db.store.deliveries(None, 10).await.unwrap();
    let status_of = |sink: &str| deliveries.iter().find(|d| d.sink == sink).unwrap().status;
    assert_eq!(status_of("log"), DeliveryStatus::Delivered);
    assert_eq!(status_of("desk"), DeliveryStatus::Failed);

    // A year and more later (published_at moved back), the log delivery
    // finished long ago; a new article has come in since.
    herald
        .db
        .execute_sql(&format!(
            "UPDATE articles SET published_at = {old};
             UPDATE deliveries SET delivered_at = {done}, last_attempt_at = {done},
                 queued_at = {done}, created_at = {done} WHERE status = 'delivered';",
            old = days_ago(400),
            done = days_ago(100),
        ))
        .await;
    server.set(
        "/news",
        Route::rss("News", &[quiet(1), oil, gas, quiet(2), quiet(3)]),
    );
    assert_eq!(herald.poll_one().await.new, 1);
    assert_eq!(feed_articles(&herald).await, 5);

    let (dry, done) = dry_run_then_prune(&herald).await;
    assert_eq!(dry, done, "a dry run reports what the run removes");
    // quiet 1, quiet 2 and oil go, each its own story; gas waits for Slack.
    assert_eq!(removed(&done), [3, 3, 3, 1, 1, 1, 3], "{done:?}");
    assert_eq!(done.articles_waiting, 1);
    assert_eq!(feed_articles(&herald).await, 2);
    let left: Vec<String> = herald
        .db
        .store
        .alerts(10)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.rule)
        .collect();
    assert_eq!(left, ["gas"]);
    let open = herald.db.store.deliveries(None, 10).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].status, DeliveryStatus::Failed);

    // Nothing more goes until the delivery finishes; given up long ago, it does.
    let again = retention::prune_once(&herald.app, std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!((again.total(), again.articles_waiting), (0, 1), "{again:?}");
    herald
        .db
        .execute_sql(&format!(
            "UPDATE deliveries SET status = 'dead', last_attempt_at = {done}, queued_at = {done};",
            done = days_ago(100),
        ))
        .await;
    let (dry, done) = dry_run_then_prune(&herald).await;
    assert_eq!(dry, done);
    assert_eq!(removed(&done), [1, 1, 1, 1, 1, 1, 1], "{done:?}");
    assert_eq!(done.articles_waiting, 0);
    assert_eq!(feed_articles(&herald).await, 1);
    assert!(
        herald
            .db
            .store
            .deliveries(None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_story_outlives_its_first_article_and_a_later_reprint_does_not_alert_again(
    backend: Backend,
) {
    let server = FeedServer::start().await;
    let paths = ["/wire", "/paper", "/weekly"];
    let mut config = format!(
        "{RETAINING}[sinks.log]\ntype = \"log\"\n\n\
         [rules.nk-iran]\nquery = '\"North Korea\" Iran'\nsinks = [\"log\"]\n\n"
    );
    for (n, path) in paths.iter().enumerate() {
        server.set(
            path,
            Route::rss("Quiet", &[quiet(u32::try_from(n).unwrap())]),
        );
        config.push_str(&format!("[[feeds]]\nurl = \"{}\"\n\n", server.url(path)));
    }
    let herald = TestHerald::start(backend, &config).await;
    herald.poll().await;

    let wire = item(
        "w1",
        "https://wire.example/nk-iran",
        WIRE_TITLE,
        WIRE_BODY,
        30,
    );
    server.set("/wire", Route::rss("Wire", &[wire]));
    assert_eq!(herald.poll().await[0].alerts, 1);
    herald.app.dispatcher.run_once(Utc::now()).await.unwrap();
    const PAPER_TITLE: &str = "N. Korea sends trade delegation to Tehran";
    server.set(
        "/paper",
        Route::rss("Paper", &[reprint("paper", PAPER_TITLE)]),
    );
    let paper = &herald.poll().await[1];
    assert_eq!((paper.new, paper.reprints, paper.alerts), (1, 1, 0));
    let story = herald.db.store.alerts(10).await.unwrap()[0].story_id;

    // The wire's copy passes out of retention; the paper's stays.
    herald
        .db
        .execute_sql(&format!(
            "UPDATE articles SET published_at = {} WHERE url = 'https://wire.example/nk-iran'",
            days_ago(400)
        ))
        .await;
    let (dry, done) = dry_run_then_prune(&herald).await;
    assert_eq!(dry, done);
    // The wire article, its source, its alert and delivered delivery; the story stays.
    assert_eq!(removed(&done)[..6], [1, 1, 0, 1, 1, 1], "{done:?}");

    // `herald stories` shows it with the paper's title and link now.
    let stories = herald
        .db
        .store
        .stories(*NOW - Duration::days(1), 1, 10)
        .await
        .unwrap();
    let shown = stories.iter().find(|s| s.id == story).unwrap();
    assert_eq!(shown.title, PAPER_TITLE);
    assert_eq!(shown.url.as_deref(), Some("https://paper.example/nk-iran"));
    assert_eq!(shown.articles, 1);
    let dir = herald.config_path.parent().unwrap().to_owned();
    let url = herald.db.url.clone();
    let output = tokio::task::spawn_blocking(move || {
        process::herald(&dir, &url, &["stories", "--json"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let listed = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(listed.contains(PAPER_TITLE), "{listed}");
    assert!(!listed.contains(WIRE_TITLE), "{listed}");

    // Another reprint joins the story and does not fire nk-iran again,
    // although the alert row that said it fired is gone.
    server.set(
        "/weekly",
        Route::rss(
            "Weekly",
            &[reprint("weekly", "Pyongyang ministers visit Tehran")],
        ),
    );
    let weekly = &herald.poll().await[2];
    assert_eq!((weekly.new, weekly.reprints, weekly.alerts), (1, 1, 0));
    assert!(herald.db.store.alerts(10).await.unwrap().is_empty());
    let stories = herald
        .db
        .store
        .stories(*NOW - Duration::days(1), 2, 10)
        .await
        .unwrap();
    assert_eq!(stories.len(), 1, "{stories:?}");
    assert_eq!((stories[0].id, stories[0].articles), (story, 2));
    assert_eq!(stories[0].title, PAPER_TITLE);

    // Once its last article goes, so does the story.
    herald
        .db
        .execute_sql(&format!(
            "UPDATE articles SET published_at = {} WHERE story_id = {story}",
            days_ago(400)
        ))
        .await;
    server.set("/wire", Route::rss("Wire", &[quiet(9)]));
    herald.poll().await;
    let (dry, done) = dry_run_then_prune(&herald).await;
    assert_eq!(dry, done);
    assert_eq!(removed(&done)[..3], [2, 2, 1], "{done:?}");
    let gone = count(
        &herald.db.url,
        &format!("SELECT count(*) FROM stories WHERE id = {story}"),
    )
    .await;
    assert_eq!(gone, 0);
}

async fn story_fingerprints_past_the_window_go_and_articles_stay_forever_by_default(
    backend: Backend,
) {
    let server = FeedServer::start().await;
    server.set("/news", Route::rss("News", &[quiet(1), quiet(2), quiet(3)]));
    let config = format!("[[feeds]]\nurl = \"{}\"\n", server.url("/news"));
    let herald = TestHerald::start(backend, &config).await;
    assert_eq!(herald.poll_one().await.new, 3);
    // Ten days on: older than alerts.max_age + stories.window (5 days).
    herald
        .db
        .execute_sql(&format!(
            "UPDATE articles SET published_at = {old}; UPDATE story_fingerprints SET seen_at = {old};",
            old = days_ago(10)
        ))
        .await;
    server.set(
        "/news",
        Route::rss("News", &[quiet(1), quiet(2), quiet(3), quiet(4)]),
    );
    assert_eq!(herald.poll_one().await.new, 1);
    let (dry, done) = dry_run_then_prune(&herald).await;
    assert_eq!(dry, done);
    // Articles are kept forever unless [retention] says otherwise.
    assert_eq!(removed(&done), [0, 0, 0, 0, 0, 0, 3], "{done:?}");
    assert_eq!(
        count(&herald.db.url, "SELECT count(*) FROM story_fingerprints").await,
        1
    );
    assert_eq!(feed_articles(&herald).await, 4);
}

async fn herald_prune_reports_per_table_in_json(backend: Backend) {
    let server = FeedServer::start().await;
    server.set("/news", Route::rss("News", &[quiet(1), quiet(2)]));
    let config = format!("{RETAINING}[[feeds]]\nurl = \"{}\"\n", server.url("/news"));
    let herald = TestHerald::start(backend, &config).await;
    assert_eq!(herald.poll_one().await.new, 2);
    herald
        .db
        .execute_sql(&format!(
            "UPDATE articles SET published_at = {} WHERE url = 'https://quiet.example/1'",
            days_ago(400)
        ))
        .await;
    let dir = herald.config_path.parent().unwrap().to_owned();
    let url = herald.db.url.clone();
    let run = move |args: &'static [&'static str]| {
        let (dir, url) = (dir.clone(), url.clone());
        async move {
            tokio::task::spawn_blocking(move || process::herald(&dir, &url, args).output().unwrap())
                .await
                .unwrap()
        }
    };
    let json = |output: &std::process::Output| -> serde_json::Value {
        assert_eq!(output.status.code(), Some(0), "{output:?}");
        serde_json::from_slice(&output.stdout).unwrap()
    };
    let dry = json(&run(&["prune", "--dry-run", "--json"]).await);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(
        (dry["articles"].as_u64(), dry["stories"].as_u64()),
        (Some(1), Some(1))
    );
    let done = json(&run(&["prune", "--json"]).await);
    assert_eq!(done["dry_run"], false);
    for table in [
        "articles",
        "article_sources",
        "stories",
        "alerts",
        "deliveries",
        "delivery_attempts",
        "story_fingerprints",
    ] {
        assert_eq!(done[table], dry[table], "{table}: {done} vs {dry}");
    }
    assert_eq!(feed_articles(&herald).await, 1);
    let human = run(&["prune"]).await;
    assert_eq!(human.status.code(), Some(0), "{human:?}");
    let text = String::from_utf8_lossy(&human.stdout).to_string();
    assert!(text.contains("0 rows removed"), "{text}");

    // A bad duration is a configuration error, at its place in the file.
    std::fs::write(
        herald.config_path.clone(),
        "[retention]\narticles = \"a year\"\n",
    )
    .unwrap();
    let commands: [&'static [&'static str]; 2] = [&["check"], &["prune"]];
    for args in commands {
        let output = run(args).await;
        assert_eq!(output.status.code(), Some(2), "{output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        assert!(
            stderr.contains("herald.toml:2:12: invalid duration \"a year\""),
            "{stderr}"
        );
    }
}

/// A database migrated by an earlier herald, with a story, its alert and a
/// pending delivery, upgraded: the story table's new foreign key keeps them
/// all (SQLite rebuilds the table), and SQLite refuses to drop a story's first
/// article.
async fn a_database_from_before_retention_keeps_its_stories_alerts_and_deliveries(
    backend: Backend,
) {
    let dir = tempfile::tempdir().unwrap();
    let (url, source) = match backend {
        Backend::Sqlite => (
            format!("sqlite://{}", dir.path().join("herald.db").display()),
            "migrations/sqlite",
        ),
        Backend::Postgres => (
            crate::support::db::create_postgres_database().await,
            "migrations/postgres",
        ),
    };
    let mut migrator =
        sqlx::migrate::Migrator::new(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(source))
            .await
            .unwrap();
    let earlier: Vec<_> = migrator
        .migrations
        .iter()
        .filter(|m| m.version < 11)
        .cloned()
        .collect();
    migrator.migrations = earlier.into();
    let t = sql_time(Utc::now());
    let rows = format!(
        "INSERT INTO feeds (id, url, fetch_url) VALUES (1, 'https://a.example/feed', 'https://a.example/feed');
         INSERT INTO articles (id, dedup_key, title, published_at, first_seen_at, changed_at, story_id)
             VALUES (1, 'https://a.example/1', 'Kept through the upgrade', {t}, {t}, {t}, 1);
         INSERT INTO article_sources (feed_id, item_key, article_id, fingerprint, first_seen_at, changed_at)
             VALUES (1, 'k1', 1, 'f', {t}, {t});
         INSERT INTO stories (id, first_article_id, created_at, held_rules) VALUES (1, 1, {t}, '[\"old\"]');
         INSERT INTO alerts (id, rule, story_id, article_id, matched, created_at)
             VALUES (1, 'nk', 1, 1, '[]', {t});
         INSERT INTO deliveries (id, delivery_id, alert_id, sink, status, next_attempt_at, created_at, queued_at)
             VALUES (1, 'd1', 1, 'log', 'pending', {t}, {t}, {t});"
    );
    let delete_first = "DELETE FROM articles WHERE id = 1";
    match backend {
        Backend::Sqlite => {
            let mut connection = SqliteConnection::connect(&format!("{url}?mode=rwc"))
                .await
                .unwrap();
            migrator.run(&mut connection).await.unwrap();
            sqlx::Executor::execute(&mut connection, sqlx::AssertSqlSafe(rows))
                .await
                .unwrap();
        }
        Backend::Postgres => {
            let mut connection = PgConnection::connect(&url).await.unwrap();
            migrator.run(&mut connection).await.unwrap();
            sqlx::Executor::execute(&mut connection, sqlx::AssertSqlSafe(rows))
                .await
                .unwrap();
        }
    }
    let store = herald::store::Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(table_counts(&url).await[..6], [1, 1, 1, 1, 1, 0]);
    let held = count(
        &url,
        "SELECT count(*) FROM stories WHERE held_rules = '[\"old\"]' AND first_article_id = 1",
    )
    .await;
    assert_eq!(held, 1);
    // SQLite's rebuilt table refuses to drop a story's first article. On
    // PostgreSQL the write path's tables carry no foreign keys (migration
    // 0015): retention keeps first articles itself, which `orphans` checks.
    if backend == Backend::Sqlite {
        let mut connection = SqliteConnection::connect(&url).await.unwrap();
        let refused = sqlx::Executor::execute(&mut connection, delete_first)
            .await
            .is_err();
        assert!(
            refused,
            "a story's first article is not deleted from under it"
        );
    }
    assert_eq!(table_counts(&url).await[..5], [1, 1, 1, 1, 1]);
}
