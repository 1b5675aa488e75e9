//! The `herald` binary as an operator runs it: exit codes, output, signals.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use crate::support::db::{Backend, TestDb, database_url, server_url};
use crate::support::feed_server::{FeedServer, Item, Route};
use crate::support::herald::feeds_toml;
use crate::support::process::{Daemon, herald};

fn run(dir: &Path, db_url: &str, args: &[&str]) -> Output {
    herald(dir, db_url, args).output().unwrap()
}

fn stdout_lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_reports_each_feed_as_json_and_exits_1_when_one_failed() {
    let server = FeedServer::start().await;
    server.set(
        "/ok",
        Route::rss("Fine", &[Item::numbered(1), Item::numbered(2)]),
    );
    server.set("/broken", Route::status(503));
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let config = feeds_toml(&[server.url("/ok"), server.url("/broken")]);
    std::fs::write(dir.path().join("herald.toml"), config).unwrap();

    let output = tokio::task::spawn_blocking({
        let (path, url) = (dir.path().to_owned(), db.url.clone());
        move || run(&path, &url, &["poll", "--json"])
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    // Logs piped to a file or the journal are plain text: no colour codes.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("WARN") && stderr.contains("fetch failed"),
        "{stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
    let lines = stdout_lines(&output);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["url"], server.url("/ok"));
    assert_eq!(lines[0]["status"], "ok");
    assert_eq!(lines[0]["new"], 2);
    assert_eq!(lines[1]["status"], "error");
    assert!(lines[1]["error"].as_str().unwrap().contains("503"));

    // `herald feeds --json` shows the same health in its documented shape.
    let output = tokio::task::spawn_blocking({
        let (path, url) = (dir.path().to_owned(), db.url.clone());
        move || run(&path, &url, &["feeds", "--json"])
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let feeds = stdout_lines(&output);
    let broken = feeds
        .iter()
        .find(|f| f["url"] == server.url("/broken"))
        .unwrap();
    assert_eq!(broken["status"], "error");
    assert_eq!(broken["failures"], 1);
    assert!(broken["error"].as_str().unwrap().contains("503"));
    let ok = feeds
        .iter()
        .find(|f| f["url"] == server.url("/ok"))
        .unwrap();
    assert_eq!(ok["articles"], 2);
    assert_eq!(ok["name"], "Fine");
    for key in ["last_fetch_at", "next_fetch_at"] {
        assert!(
            ok[key].as_str().unwrap().ends_with('Z'),
            "{key} is RFC 3339 UTC"
        );
    }
}

#[test]
fn check_names_file_line_and_column_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("herald.toml"),
        "[fetch]\ninterval = \"15m\"\nintervall = \"5m\"\n",
    )
    .unwrap();
    let output = run(dir.path(), "sqlite://unused.db", &["check"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("herald.toml:3:1"), "{stderr}");
    assert!(stderr.contains("intervall"), "{stderr}");
}

#[test]
fn check_counts_a_valid_configuration() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("herald.toml"),
        "[[feeds]]\nurl = \"https://example.com/feed\"\n\n[sinks.log]\ntype = \"log\"\n\n\
         [rules.nk-iran]\nquery = '\"North Korea\" Iran'\nsinks = [\"log\"]\n",
    )
    .unwrap();
    let output = run(dir.path(), "sqlite://unused.db", &["check"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("1 feeds, 1 rules, 1 sinks"), "{stdout}");
}

#[test]
fn check_rejects_a_rule_that_does_not_parse() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("herald.toml"),
        "[sinks.log]\ntype = \"log\"\n\n[rules.broken]\nquery = '\"North Korea\" AND'\nsinks = [\"log\"]\n",
    )
    .unwrap();
    let output = run(dir.path(), "sqlite://unused.db", &["check"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("herald.toml:5:"), "{stderr}");
    assert!(stderr.contains("rule broken"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_polls_until_sigterm_and_exits_cleanly() {
    let server = FeedServer::start().await;
    server.set("/feed", Route::rss("Live", &[Item::numbered(1)]));
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[fetch]\ninterval = \"1s\"\n\n{}",
        feeds_toml(&[server.url("/feed")])
    );
    std::fs::write(dir.path().join("herald.toml"), config).unwrap();

    let child = Daemon::start(dir.path(), &db.url, None);
    // Polled at its 1 s interval: at least three fetches.
    for _ in 0..200 {
        if server.hits("/feed") >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(server.hits("/feed") >= 3, "hits: {}", server.hits("/feed"));
    child.signal("TERM");
    let output = child.wait().await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(db.store.count_articles().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_and_rules_test_print_matching_articles_as_json() {
    let server = FeedServer::start().await;
    let mut story = Item::numbered(1);
    story.title = "North Korean delegation in Tehran".into();
    story.description = "<p>North Korea's minister met Iran's officials.</p>".into();
    story.pub_date = Some(chrono::Utc::now());
    let mut other = Item::numbered(2);
    other.pub_date = Some(chrono::Utc::now());
    server.set("/feed", Route::rss("Wire", &[story, other]));
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[sinks.log]\ntype = \"log\"\n\n[rules.nk-iran]\nquery = '\"North Korea\" Iran'\nsinks = [\"log\"]\n\n{}",
        feeds_toml(&[server.url("/feed")])
    );
    std::fs::write(dir.path().join("herald.toml"), config).unwrap();
    let (path, url) = (dir.path().to_owned(), db.url.clone());
    let (search, backtest, bad) = tokio::task::spawn_blocking(move || {
        assert_eq!(run(&path, &url, &["poll"]).status.code(), Some(0));
        (
            run(&path, &url, &["search", "\"North Korea\" Iran", "--json"]),
            run(
                &path,
                &url,
                &["rules", "test", "--rule", "nk-iran", "--json"],
            ),
            run(&path, &url, &["search", "Iran AND"]),
        )
    })
    .await
    .unwrap();

    assert_eq!(search.status.code(), Some(0), "{search:?}");
    let articles = stdout_lines(&search);
    assert_eq!(articles.len(), 1);
    assert_eq!(articles[0]["title"], "North Korean delegation in Tehran");
    assert_eq!(articles[0]["feeds"][0]["url"], server.url("/feed"));
    for key in [
        "id",
        "url",
        "summary",
        "author",
        "published_at",
        "first_seen_at",
        "story_id",
    ] {
        assert!(articles[0].get(key).is_some(), "article JSON has {key}");
    }

    assert_eq!(backtest.status.code(), Some(0), "{backtest:?}");
    let hits = stdout_lines(&backtest);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0]["rule"], "nk-iran");
    assert_eq!(
        hits[0]["matched"],
        serde_json::json!(["\"north korea\"", "iran"])
    );
    assert_eq!(hits[0]["article"]["id"], articles[0]["id"]);

    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("column"), "{stderr}");
}

#[test]
fn check_warns_when_a_rule_seems_to_mean_an_operator() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("herald.toml"),
        "[sinks.log]\ntype = \"log\"\n\n[rules.lower]\nquery = 'Korea and Iran'\nsinks = [\"log\"]\n",
    )
    .unwrap();
    let output = run(dir.path(), "sqlite://unused.db", &["check"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("warning"), "{stderr}");
    assert!(stderr.contains("rule lower"), "{stderr}");
    assert!(stderr.contains("AND"), "{stderr}");
}

#[test]
fn a_star_inside_quotes_is_a_warning_from_check_and_rules_test() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("herald.toml"),
        "[sinks.log]\ntype = \"log\"\n\n[rules.nk]\nquery = '\"North Korea*\" Iran'\nsinks = [\"log\"]\n",
    )
    .unwrap();
    let expected = "\"*\" at column 13 inside the phrase \"North Korea*\" is ignored";
    let check = run(dir.path(), "sqlite://herald.db", &["check", "--offline"]);
    assert_eq!(check.status.code(), Some(0), "{check:?}");
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(
        stderr.contains("warning: herald.toml:5:9: rule nk"),
        "{stderr}"
    );
    assert!(
        stderr.contains(expected) && stderr.contains("North-Korea*"),
        "{stderr}"
    );

    for args in [
        &["rules", "test", "\"North Korea*\" Iran"][..],
        &["rules", "test", "--rule", "nk"][..],
    ] {
        let output = run(dir.path(), "sqlite://herald.db", args);
        assert_eq!(output.status.code(), Some(0), "{output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_delivers_a_new_alert_while_polling() {
    use crate::support::receiver::Receiver;

    let server = FeedServer::start().await;
    let receiver = Receiver::start().await;
    server.set("/feed", Route::rss("Live", &[Item::numbered(1)]));
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[fetch]\ninterval = \"1s\"\n\n[sinks.hook]\ntype = \"webhook\"\nurl = \"{}\"\n\n\
         [rules.nk-iran]\nquery = '\"North Korea\" Iran'\nsinks = [\"hook\"]\n\n{}",
        receiver.url("/hook"),
        feeds_toml(&[server.url("/feed")])
    );
    std::fs::write(dir.path().join("herald.toml"), config).unwrap();
    let child = Daemon::start(dir.path(), &db.url, None);
    // The back catalogue is fetched first and never alerts.
    for _ in 0..200 {
        if server.hits("/feed") >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut story = Item::numbered(2);
    story.title = "North Korea sends envoy to Iran".into();
    story.pub_date = Some(chrono::Utc::now());
    server.set("/feed", Route::rss("Live", &[story, Item::numbered(1)]));

    let posts = receiver.wait_for("/hook", 1, Duration::from_secs(15)).await;
    assert_eq!(
        posts[0].json()["article"]["title"],
        "North Korea sends envoy to Iran"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.requests("/hook").len(), 1, "one alert, one POST");

    child.signal("TERM");
    let output = child.wait().await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
}

crate::both_backends!(a_dispatcher_killed_mid_send_is_replaced_by_the_next_process);

/// `herald run` is SIGKILLed after claiming a delivery and sending it, before
/// recording the attempt: the next process sends it again, with the same delivery
/// id, once the dead one's lease has run out.
async fn a_dispatcher_killed_mid_send_is_replaced_by_the_next_process(backend: Backend) {
    use crate::support::receiver::{Receiver, Reply};

    let server = FeedServer::start().await;
    let receiver = Receiver::start().await;
    // The first POST hangs, so the process is killed while it waits for the answer.
    receiver.script(
        "/hook",
        vec![Reply::ok().delayed(Duration::from_secs(60)), Reply::ok()],
    );
    server.set("/feed", Route::rss("Live", &[Item::numbered(1)]));
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[fetch]\ninterval = \"1s\"\n\n[alerts]\nlease = \"15s\"\n\n\
         [sinks.hook]\ntype = \"webhook\"\nurl = \"{}\"\n\n\
         [rules.nk-iran]\nquery = '\"North Korea\" Iran'\nsinks = [\"hook\"]\n\n{}",
        receiver.url("/hook"),
        feeds_toml(&[server.url("/feed")])
    );
    std::fs::write(dir.path().join("herald.toml"), config).unwrap();
    let spawn_run = || Daemon::start(dir.path(), &db.url, None);

    let first = spawn_run();
    for _ in 0..200 {
        if server.hits("/feed") >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut story = Item::numbered(2);
    story.title = "North Korea sends envoy to Iran".into();
    story.pub_date = Some(chrono::Utc::now());
    server.set("/feed", Route::rss("Live", &[story, Item::numbered(1)]));
    let sent = receiver.wait_for("/hook", 1, Duration::from_secs(20)).await;
    let delivery_id = sent[0].header("x-herald-delivery").unwrap().to_owned();

    first.signal("KILL");
    let killed = first.wait().await;
    assert_eq!(killed.status.code(), None, "killed by a signal: {killed:?}");
    let claimed = db.store.deliveries(None, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].attempts, 0, "the attempt was never recorded");

    let second = spawn_run();
    let sent = receiver.wait_for("/hook", 2, Duration::from_secs(40)).await;
    assert_eq!(
        sent[1].header("x-herald-delivery"),
        Some(delivery_id.as_str()),
        "the same delivery, sent again"
    );
    assert_eq!(
        sent[1].json()["article"]["title"],
        "North Korea sends envoy to Iran"
    );
    let mut delivered = Vec::new();
    for _ in 0..100 {
        delivered = db.store.deliveries(None, 10).await.unwrap();
        if delivered[0].status == herald::domain::delivery::DeliveryStatus::Delivered {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(delivered.len(), 1, "nothing lost, nothing added");
    assert_eq!(
        delivered[0].status,
        herald::domain::delivery::DeliveryStatus::Delivered
    );
    assert_eq!(delivered[0].delivery_id, delivery_id);

    second.signal("TERM");
    let output = second.wait().await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(receiver.requests("/hook").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrying_a_delivery_that_does_not_exist_says_so() {
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("herald.toml"),
        feeds_toml(&["http://127.0.0.1:9/feed".to_owned()]),
    )
    .unwrap();
    let output = tokio::task::spawn_blocking({
        let (path, url) = (dir.path().to_owned(), db.url.clone());
        move || run(&path, &url, &["alerts", "retry", "999"])
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.trim(),
        "herald: there is no delivery 999 (see herald alerts)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_exits_1_when_an_alert_could_not_be_delivered() {
    use crate::support::receiver::{Receiver, Reply};

    let server = FeedServer::start().await;
    let receiver = Receiver::start().await;
    receiver.script("/hook", vec![Reply::status(500); 4]);
    server.set("/feed", Route::rss("Live", &[Item::numbered(1)]));
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[sinks.hook]\ntype = \"webhook\"\nurl = \"{}\"\n\n\
         [rules.nk-iran]\nquery = '\"North Korea\" Iran'\nsinks = [\"hook\"]\n\n{}",
        receiver.url("/hook"),
        feeds_toml(&[server.url("/feed")])
    );
    std::fs::write(dir.path().join("herald.toml"), config).unwrap();
    let poll = || {
        let (path, url) = (dir.path().to_owned(), db.url.clone());
        tokio::task::spawn_blocking(move || run(&path, &url, &["poll"]))
    };
    // The back catalogue: stored, never alerted.
    let first = poll().await.unwrap();
    assert_eq!(first.status.code(), Some(0), "{first:?}");

    let mut story = Item::numbered(2);
    story.title = "North Korea sends envoy to Iran".into();
    story.pub_date = Some(chrono::Utc::now());
    server.set("/feed", Route::rss("Live", &[story, Item::numbered(1)]));
    let second = poll().await.unwrap();
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(stdout.contains("alerts: 0 delivered, 1 failed"), "{stdout}");
    assert_eq!(second.status.code(), Some(1), "{second:?}");
    assert_eq!(receiver.requests("/hook").len(), 1);
}

#[test]
fn every_command_argument_and_option_is_explained_in_help() {
    use clap::CommandFactory;

    fn unexplained(command: &clap::Command, path: &str, found: &mut Vec<String>) {
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            if id != "help" && id != "version" && arg.get_help().is_none() {
                found.push(format!("{path} {id}"));
            }
        }
        for sub in command.get_subcommands() {
            unexplained(sub, &format!("{path} {}", sub.get_name()), found);
        }
    }
    let mut found = Vec::new();
    unexplained(&herald::cli::Cli::command(), "herald", &mut found);
    assert_eq!(found, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_with_a_limit_says_how_many_match_in_all() {
    let server = FeedServer::start().await;
    let items: Vec<Item> = (1..=7)
        .map(|n| {
            let mut item = Item::numbered(n);
            if n <= 5 {
                item.title = format!("Iran talks, day {n}");
            }
            item.pub_date = Some(chrono::Utc::now() - chrono::Duration::minutes(n.into()));
            item
        })
        .collect();
    server.set("/feed", Route::rss("Wire", &items));
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("herald.toml"),
        feeds_toml(&[server.url("/feed")]),
    )
    .unwrap();
    let (path, url) = (dir.path().to_owned(), db.url.clone());
    let (search, by_feed) = tokio::task::spawn_blocking(move || {
        assert_eq!(run(&path, &url, &["poll"]).status.code(), Some(0));
        (
            run(&path, &url, &["search", "Iran", "--limit", "2"]),
            run(&path, &url, &["search", "feed:wire", "--limit", "2"]),
        )
    })
    .await
    .unwrap();
    let by_feed = String::from_utf8_lossy(&by_feed.stdout);
    assert_eq!(
        by_feed.lines().last(),
        Some(
            "2 of 7 matching articles shown (newest first; --limit), 7 searched \
             (each read: no word of the query is in the search index)"
        ),
        "{by_feed}"
    );
    assert_eq!(search.status.code(), Some(0), "{search:?}");
    let stdout = String::from_utf8_lossy(&search.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.last().copied(),
        Some("2 of 5 matching articles shown (newest first; --limit), 7 searched"),
        "{stdout}"
    );
    let shown = lines
        .iter()
        .filter(|line| line.contains("Iran talks"))
        .count();
    assert_eq!(shown, 2, "{stdout}");
    assert!(
        stdout.contains("day 1") && stdout.contains("day 2"),
        "{stdout}"
    );
}

crate::both_backends!(tables_show_feed_names_and_escape_what_would_drive_the_terminal);

/// `poll` and `feeds` label a feed by its configured name (its URL when it has
/// none), and text from feeds or the config is printed with control characters
/// and bidi overrides escaped: an article stored before they were removed at
/// normalisation cannot clear the screen or reverse a line.
async fn tables_show_feed_names_and_escape_what_would_drive_the_terminal(backend: Backend) {
    let server = FeedServer::start().await;
    let mut item = Item::numbered(1);
    item.title = "Iran deal signed".into();
    item.pub_date = Some(chrono::Utc::now());
    server.set("/wire", Route::rss("Wire", &[item]));
    server.set("/other", Route::rss("Other", &[Item::numbered(2)]));
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[[feeds]]\nurl = \"{}\"\nname = \"Wire \\u001b[31mdesk\"\n\n[[feeds]]\nurl = \"{}\"\n",
        server.url("/wire"),
        server.url("/other")
    );
    std::fs::write(dir.path().join("herald.toml"), config).unwrap();
    let herald_run = |args: &'static [&'static str]| {
        let (path, url) = (dir.path().to_owned(), db.url.clone());
        tokio::task::spawn_blocking(move || run(&path, &url, args))
    };

    let poll = herald_run(&["poll"]).await.unwrap();
    assert_eq!(poll.status.code(), Some(0), "{poll:?}");
    let feeds = herald_run(&["feeds"]).await.unwrap();
    assert_eq!(feeds.status.code(), Some(0), "{feeds:?}");
    for output in [&poll, &feeds] {
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("Wire \\u{1b}[31mdesk"), "{stdout}");
        assert!(!stdout.contains(&server.url("/wire")), "{stdout}");
        assert!(stdout.contains(&server.url("/other")), "{stdout}");
        assert!(!stdout.contains('\u{1b}'), "{stdout:?}");
    }

    db.execute_sql(
        "UPDATE articles SET title = 'Iran deal \u{202e}fdp.exe\u{202c} \u{1b}[2J' \
         WHERE title = 'Iran deal signed'",
    )
    .await;
    let search = herald_run(&["search", "Iran"]).await.unwrap();
    assert_eq!(search.status.code(), Some(0), "{search:?}");
    let stdout = String::from_utf8_lossy(&search.stdout);
    assert!(
        stdout.contains("Iran deal \\u{202e}fdp.exe\\u{202c} \\u{1b}[2J  (Wire \\u{1b}[31mdesk)"),
        "{stdout}"
    );
    assert!(!stdout.contains(['\u{1b}', '\u{202e}']), "{stdout:?}");
}

/// A directory with a valid configuration, its database given per command.
fn offline_config() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("herald.toml"),
        format!(
            "[database]\nconnect_timeout = \"2s\"\n\n{}",
            feeds_toml(&["http://127.0.0.1:9/feed".to_owned()])
        ),
    )
    .unwrap();
    dir
}

/// One line on stderr, with no password in it, as `herald: …`.
fn one_line(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("herald: "), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    stderr
}

#[test]
fn a_missing_postgres_database_says_how_to_create_it() {
    let dir = offline_config();
    let mut url = url::Url::parse(&database_url(&server_url(), "herald_never_created")).unwrap();
    url.set_password(Some("hunter2")).unwrap();
    for (command, code) in [("migrate", 1), ("check", 2)] {
        let output = run(dir.path(), url.as_str(), &[command]);
        assert_eq!(output.status.code(), Some(code), "{output:?}");
        let stderr = one_line(&output);
        assert_eq!(stderr.matches("does not exist").count(), 1, "{stderr}");
        assert!(stderr.contains(":***@"), "the URL, redacted: {stderr}");
        assert!(
            stderr.contains("create it with `createdb -h ")
                && stderr.contains(" herald_never_created`"),
            "{stderr}"
        );
        // PostgreSQL's own source line is not a line of herald's configuration.
        assert!(!stderr.contains("at line"), "{stderr}");
    }
    // --offline checks the files and connects to nothing.
    let offline = run(dir.path(), url.as_str(), &["check", "--offline"]);
    assert_eq!(offline.status.code(), Some(0), "{offline:?}");
    assert!(!String::from_utf8_lossy(&offline.stdout).contains("database"));
}

#[test]
fn an_unknown_postgres_user_says_how_to_create_the_role() {
    let dir = offline_config();
    let mut url = url::Url::parse(&server_url()).unwrap();
    url.set_username("herald_no_such_role").unwrap();
    url.set_password(Some("hunter2")).unwrap();
    let output = run(dir.path(), url.as_str(), &["check"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = one_line(&output);
    // Under trust authentication the server names the role; under password
    // authentication it says only that the password failed.
    assert!(
        (stderr.contains("role \"herald_no_such_role\" does not exist")
            && stderr.contains("createuser -h "))
            || (stderr.contains("password authentication failed")
                && stderr.contains("check the user and password in [database] url")),
        "{stderr}"
    );
}

#[test]
fn a_postgres_server_that_refuses_is_named_at_once() {
    let dir = offline_config();
    // A port nothing listens on: taken from the system, then given back.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://herald:hunter2@127.0.0.1:{port}/herald");
    for (command, code) in [("migrate", 1), ("check", 2)] {
        let output = run(dir.path(), &url, &[command]);
        assert_eq!(output.status.code(), Some(code), "{output:?}");
        let stderr = one_line(&output);
        // The cause and what to do, not the pool's "timed out" after 30 s of retrying.
        assert!(
            stderr.contains(&format!("connection refused by 127.0.0.1:{port}"))
                && stderr.contains("is PostgreSQL running")
                && !stderr.contains("timed out"),
            "{command}: {stderr}"
        );
    }
}

#[test]
fn a_postgres_server_that_never_answers_is_given_up_on_after_connect_timeout() {
    let dir = offline_config();
    // Accepts connections (the kernel completes them) and never says a word,
    // like a server hung or behind a proxy that lost its backend.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let url = format!("postgres://herald@127.0.0.1:{port}/herald");
    let started = std::time::Instant::now();
    let output = run(dir.path(), &url, &["check"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = one_line(&output);
    assert!(
        stderr.contains(&format!("no answer from 127.0.0.1:{port} within 2s"))
            && stderr.contains("[database] connect_timeout"),
        "{stderr}"
    );
    // Far below the 30 s the connection pool would otherwise wait.
    assert!(started.elapsed() < Duration::from_secs(20));
    drop(silent);
}

#[test]
fn postgres_tls_failures_say_which_setting_to_change() {
    let dir = offline_config();
    let url = |mode: &str| {
        let mut url = url::Url::parse(&server_url()).unwrap();
        url.query_pairs_mut().append_pair("sslmode", mode);
        url.to_string()
    };
    // A certificate no public root vouches for (as a test server's is).
    let output = run(dir.path(), &url("verify-full"), &["check"]);
    if output.status.code() == Some(0) {
        crate::support::skipped(
            "cli::postgres_tls_failures_say_which_setting_to_change",
            "the test server's certificate verifies against public roots",
        );
    } else {
        assert_eq!(output.status.code(), Some(2), "{output:?}");
        let stderr = one_line(&output);
        // A server with TLS: its certificate does not verify. A server without
        // TLS (the throwaway one scripts/test starts) cannot meet the mode at all.
        let unverified = stderr.contains("TLS with ") && stderr.contains("sslrootcert");
        let no_tls = stderr.contains("does not offer TLS, and sslmode=verify-full")
            && stderr.contains("turn on ssl");
        assert!(unverified || no_tls, "{stderr}");
    }

    let output = run(dir.path(), &url("require"), &["check"]);
    if output.status.code() == Some(0) {
        // A server with `ssl = on` meets the requirement; the refusal of one
        // without TLS ("does not offer TLS … turn on ssl") cannot be shown here.
        crate::support::skipped(
            "cli::postgres_tls_failures_say_which_setting_to_change (sslmode=require)",
            "the test server offers TLS",
        );
    } else {
        assert_eq!(output.status.code(), Some(2), "{output:?}");
        let stderr = one_line(&output);
        assert!(
            stderr.contains("does not offer TLS, and sslmode=require")
                && stderr.contains("turn on ssl"),
            "{stderr}"
        );
    }
}

/// TLS to a server on the same host costs ~90 ms a connection and protects
/// nothing: a loopback URL without `sslmode` connects in plain text, and one
/// that names `sslmode=prefer` still gets TLS from a server that offers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_on_this_host_is_reached_without_tls_unless_the_url_asks() {
    let db = TestDb::new(Backend::Postgres).await;
    let parsed = url::Url::parse(&db.url).unwrap();
    let host = parsed.host_str().unwrap_or_default().to_owned();
    if !(host == "localhost" || host.starts_with("127.") || host == "[::1]") {
        crate::support::skipped(
            "cli::a_server_on_this_host_is_reached_without_tls_unless_the_url_asks",
            "the test server is not on this host",
        );
        return;
    }
    use sqlx::Connection as _;
    let database = parsed.path().trim_start_matches('/').to_owned();
    let connections = |database: String| async move {
        let mut admin = url::Url::parse(&server_url()).unwrap();
        admin.query_pairs_mut().append_pair("sslmode", "disable");
        let mut admin = sqlx::PgConnection::connect(admin.as_str()).await.unwrap();
        let offered: String = sqlx::query_scalar("SHOW ssl")
            .fetch_one(&mut admin)
            .await
            .unwrap();
        let (tls, all): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE s.ssl), count(*)
             FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
             WHERE a.datname = $1",
        )
        .bind(database)
        .fetch_one(&mut admin)
        .await
        .unwrap();
        (tls, all, offered == "on")
    };
    let store = herald::store::Store::connect(&db.url).await.unwrap();
    store.feeds().await.unwrap();
    let (tls, all, _) = connections(database.clone()).await;
    assert!(all > 0, "herald's connections are open");
    assert_eq!(
        tls, 0,
        "no connection to this host uses TLS without sslmode"
    );
    drop(store);

    let mut prefer = parsed.clone();
    prefer.query_pairs_mut().append_pair("sslmode", "prefer");
    let with_tls = herald::store::Store::connect(prefer.as_str())
        .await
        .unwrap();
    with_tls.feeds().await.unwrap();
    let (tls, _, offered) = connections(database).await;
    if offered {
        assert!(tls > 0, "sslmode=prefer uses the TLS the server offers");
    } else {
        crate::support::skipped(
            "cli::a_server_on_this_host_is_reached_without_tls_unless_the_url_asks (sslmode=prefer)",
            "the test server offers no TLS",
        );
    }
}

#[test]
fn completions_and_the_man_page_name_every_command_without_a_configuration() {
    use clap::CommandFactory;

    let commands: Vec<String> = herald::cli::Cli::command()
        .get_subcommands()
        .map(|sub| sub.get_name().to_owned())
        .collect();
    assert!(commands.iter().any(|name| name == "poll"), "{commands:?}");
    // An empty directory: a packager generates these with no herald.toml anywhere.
    let dir = tempfile::tempdir().unwrap();
    // Each with the line its shell (or man) acts on.
    for (args, marker) in [
        (&["completions", "bash"][..], "complete -F _herald"),
        (&["completions", "zsh"][..], "#compdef herald"),
        (&["completions", "fish"][..], "complete -c herald"),
        (&["man"][..], ".TH herald 1"),
    ] {
        let output = run(dir.path(), "sqlite://unused.db", args);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {output:?}");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.contains(marker), "{args:?}: {text}");
        for name in &commands {
            assert!(text.contains(name.as_str()), "{args:?} lacks {name}");
        }
        assert!(output.stderr.is_empty(), "{args:?}: {output:?}");
    }

    let page = run(dir.path(), "sqlite://unused.db", &["man"]);
    let page = String::from_utf8_lossy(&page.stdout);
    // Nested commands and every argument's help, not only the first level's names.
    assert!(page.contains("herald alerts retry"), "{page}");
    assert!(
        page.contains("A query in the rule language"),
        "search's QUERY is explained: {page}"
    );
    for section in ["COMMANDS", "FILES", "ENVIRONMENT", "\"EXIT STATUS\""] {
        assert!(
            page.contains(&format!(".SH {section}")),
            "{section}: {page}"
        );
    }
    assert_eq!(
        run(dir.path(), "sqlite://unused.db", &["completions", "tcsh"])
            .status
            .code(),
        Some(2)
    );
}
