//! `herald feeds add/remove/disable/enable/import/export` and `herald sinks test`
//! as an operator runs them: the binary, real pages and feeds from a local HTTP
//! server, the managed file they write, and a running `herald run` told to reload.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use crate::both_backends;
use crate::support::db::{Backend, TestDb};
use crate::support::feed_server::{FeedServer, Item, Route};
use crate::support::herald::feeds_toml;
use crate::support::process::{Daemon, herald};
use crate::support::receiver::{Receiver, Reply};

/// `herald ARGS` in `dir` with `env`, off the test's runtime threads.
async fn cli(dir: &Path, db_url: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let (dir, db_url) = (dir.to_owned(), db_url.to_owned());
    let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut command = herald(&dir, &db_url, &args);
        command.env_remove("HERALD_PID_FILE");
        command.envs(env);
        command.output().unwrap()
    })
    .await
    .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn managed(dir: &Path) -> PathBuf {
    dir.join("feeds.d").join("managed.toml")
}

fn managed_text(dir: &Path) -> String {
    std::fs::read_to_string(managed(dir)).unwrap_or_default()
}

/// A page from tests/fixtures/discovery with `{{BASE}}` made the server's address.
fn page(server: &FeedServer, fixture: &str) -> Route {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/discovery")
        .join(fixture);
    let html = std::fs::read_to_string(path)
        .unwrap()
        .replace("{{BASE}}", server.base_url());
    Route::document("text/html; charset=utf-8", html)
}

fn opml_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/opml")
        .join(name)
}

fn lines_json(output: &Output) -> Vec<serde_json::Value> {
    stdout(output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}")))
        .collect()
}

const UNUSED_DB: &str = "sqlite://unused.db";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_finds_the_feeds_a_news_page_links_to_and_asks_which() {
    let server = FeedServer::start().await;
    server.set("/", page(&server, "news-front-page.html"));
    server.set(
        "/rss/top.xml",
        Route::rss("Top stories", &[Item::numbered(1)]),
    );
    server.set(
        "/feeds/world.atom",
        Route::atom("World", &[Item::numbered(2)]),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("herald.toml"), "").unwrap();
    let front = server.url("/");

    // Not on a terminal and no --yes: the choices are listed, nothing is written.
    let output = cli(dir.path(), UNUSED_DB, &["feeds", "add", &front], &[]).await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let err = stderr(&output);
    assert!(err.contains("names 2 feeds"), "{err}");
    assert!(
        err.contains(&format!(
            "1) {} (RSS, \"Example News – Top stories\")",
            server.url("/rss/top.xml")
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "2) {} (Atom, \"Example News & Analysis (Atom)\")",
            server.url("/feeds/world.atom")
        )),
        "{err}"
    );
    // Commented out, written by a script, or a repeat: not offered.
    assert!(
        !err.contains("old.rss") && !err.contains("from-script"),
        "{err}"
    );
    assert!(!managed(dir.path()).exists());

    let output = cli(
        dir.path(),
        UNUSED_DB,
        &["feeds", "add", &front, "--yes"],
        &[],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let out = stdout(&output);
    assert!(out.contains("added \"Top stories\""), "{out}");
    assert!(out.contains("systemctl reload herald"), "{out}");
    let text = managed_text(dir.path());
    assert!(
        text.contains(&format!("url = \"{}\"", server.url("/rss/top.xml"))),
        "{text}"
    );
    assert!(!text.contains("world.atom"), "{text}");

    // The same page again: its first feed is configured already.
    let output = cli(dir.path(), UNUSED_DB, &["feeds", "add", &front, "-y"], &[]).await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        stderr(&output).contains("is already configured at feeds.d/managed.toml:"),
        "{output:?}"
    );

    // The configuration reads it without any include line.
    let output = cli(dir.path(), UNUSED_DB, &["check"], &[]).await;
    assert!(stdout(&output).contains("ok: 1 feeds"), "{output:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_resolves_base_href_and_absolute_hrefs_of_other_pages() {
    let server = FeedServer::start().await;
    server.set("/notes/index.html", page(&server, "blog-with-base.html"));
    server.set(
        "/blog/feed.atom",
        Route::atom("Field notes", &[Item::numbered(1)]),
    );
    server.set("/gazette", page(&server, "wordpress.html"));
    server.set(
        "/feed/",
        Route::rss("Harbour Town Gazette", &[Item::numbered(1)]),
    );
    server.set("/contact", page(&server, "no-feeds.html"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("herald.toml"), "").unwrap();

    let output = cli(
        dir.path(),
        UNUSED_DB,
        &["feeds", "add", &server.url("/notes/index.html"), "--yes"],
        &[],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    // Relative to <base href="/blog/">, not to /notes/.
    assert!(
        stderr(&output).contains(&format!("its Atom feed: {}", server.url("/blog/feed.atom"))),
        "{output:?}"
    );

    let output = cli(
        dir.path(),
        UNUSED_DB,
        &[
            "feeds",
            "add",
            &server.url("/gazette"),
            "--yes",
            "--name",
            "Gazette",
            "--tag",
            "local",
            "--tag",
            "harbour",
            "--interval",
            "30m",
        ],
        &[],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let text = managed_text(dir.path());
    for expected in [
        format!("url = \"{}\"", server.url("/blog/feed.atom")),
        format!("url = \"{}\"", server.url("/feed/")),
        "name = \"Gazette\"".to_owned(),
        "tags = [\"local\", \"harbour\"]".to_owned(),
        "interval = \"30m\"".to_owned(),
    ] {
        assert!(text.contains(&expected), "{expected} in {text}");
    }
    assert!(!text.contains("comments"), "{text}");

    let output = cli(
        dir.path(),
        UNUSED_DB,
        &["feeds", "add", &server.url("/contact")],
        &[],
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(stderr(&output).contains("names no feed"), "{output:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_takes_a_feed_url_as_it_is_and_refuses_what_is_not_a_feed() {
    let server = FeedServer::start().await;
    server.set("/wire.json", Route::json_feed("Wire", &[Item::numbered(1)]));
    server.set(
        "/data.xml",
        Route::document("application/xml", "<catalog/>"),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("herald.toml"), "").unwrap();

    let output = cli(
        dir.path(),
        UNUSED_DB,
        &["feeds", "add", &server.url("/wire.json")],
        &[],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(stdout(&output).contains("(1 items now)"), "{output:?}");

    let output = cli(
        dir.path(),
        UNUSED_DB,
        &["feeds", "add", &server.url("/data.xml")],
        &[],
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(
        stderr(&output).contains("root element <catalog>"),
        "{output:?}"
    );
    let output = cli(
        dir.path(),
        UNUSED_DB,
        &["feeds", "add", "news.example"],
        &[],
    )
    .await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(stderr(&output).contains("invalid feed url"), "{output:?}");
}

async fn disable_enable_and_remove_change_what_is_polled(backend: Backend) {
    let server = FeedServer::start().await;
    server.set(
        "/hand",
        Route::rss("Hand", &[Item::numbered(1), Item::numbered(2)]),
    );
    server.set("/added", Route::rss("Added", &[Item::numbered(3)]));
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let hand_written = format!(
        "# my feeds\ninclude = [\"feeds.d/*.toml\"]\n\n{}",
        feeds_toml(&[server.url("/hand")])
    );
    std::fs::write(dir.path().join("herald.toml"), &hand_written).unwrap();
    let (hand, added) = (server.url("/hand"), server.url("/added"));

    let output = cli(dir.path(), &db.url, &["feeds", "add", &added], &[]).await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let output = cli(dir.path(), &db.url, &["poll", "--json"], &[]).await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let polled: Vec<String> = lines_json(&output)
        .iter()
        .map(|line| line["url"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(polled, [hand.clone(), added.clone()]);

    // A hand-written feed can be disabled; its file is not touched.
    let output = cli(dir.path(), &db.url, &["feeds", "disable", &hand], &[]).await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("herald.toml")).unwrap(),
        hand_written
    );
    assert!(
        managed_text(dir.path()).contains(&format!("disabled = [\"{hand}\"]")),
        "{}",
        managed_text(dir.path())
    );
    let output = cli(dir.path(), &db.url, &["feeds", "disable", &hand], &[]).await;
    assert!(stdout(&output).contains("already disabled"), "{output:?}");
    let output = cli(dir.path(), &db.url, &["poll", "--json"], &[]).await;
    let polled: Vec<String> = lines_json(&output)
        .iter()
        .map(|line| line["url"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(polled, [added.as_str()]);
    assert_eq!(server.hits("/hand"), 1);

    // `herald feeds` still lists it, with the articles it had.
    let output = cli(dir.path(), &db.url, &["feeds", "--json"], &[]).await;
    let feeds = lines_json(&output);
    let listed = feeds
        .iter()
        .find(|feed| feed["url"] == hand.as_str())
        .unwrap();
    assert_eq!(listed["status"], "disabled");
    assert_eq!(listed["articles"], 2);
    assert!(listed["next_fetch_at"].is_null());
    let output = cli(dir.path(), &db.url, &["check"], &[]).await;
    assert!(
        stdout(&output).contains("ok: 1 feeds (1 more disabled)"),
        "{output:?}"
    );

    // Removing it is for its own file; herald says where.
    let output = cli(dir.path(), &db.url, &["feeds", "remove", &hand], &[]).await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        stderr(&output).contains("is written in herald.toml:5:7, which herald does not edit"),
        "{output:?}"
    );

    let output = cli(dir.path(), &db.url, &["feeds", "enable", &hand], &[]).await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let output = cli(dir.path(), &db.url, &["feeds", "remove", &added], &[]).await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(!managed_text(dir.path()).contains("url ="));
    let output = cli(dir.path(), &db.url, &["poll", "--json"], &[]).await;
    let polled: Vec<String> = lines_json(&output)
        .iter()
        .map(|line| line["url"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(polled, [hand.as_str()]);

    let output = cli(
        dir.path(),
        &db.url,
        &["feeds", "disable", "https://nowhere.example/rss"],
        &[],
    )
    .await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(stderr(&output).contains("no configured feed"), "{output:?}");
}

both_backends!(disable_enable_and_remove_change_what_is_polled);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_that_breaks_the_configuration_is_undone() {
    let dir = tempfile::tempdir().unwrap();
    // A managed file edited by hand into an invalid one is left as it was.
    std::fs::write(dir.path().join("herald.toml"), "").unwrap();
    std::fs::create_dir_all(dir.path().join("feeds.d")).unwrap();
    let broken = "[[feeds]]\nurl = \"https://a.example/rss\"\ninterval = \"0s\"\n";
    std::fs::write(managed(dir.path()), broken).unwrap();
    let output = cli(
        dir.path(),
        UNUSED_DB,
        &["feeds", "disable", "https://a.example/rss"],
        &[],
    )
    .await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        stderr(&output).contains("feeds.d/managed.toml:3:"),
        "{output:?}"
    );
    assert_eq!(managed_text(dir.path()), broken);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_reads_miniflux_and_freshrss_exports_and_export_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("herald.toml"),
        "[[feeds]]\nurl = \"https://configured.example/rss\"\n",
    )
    .unwrap();
    let miniflux = opml_fixture("miniflux.opml");
    let output = cli(
        dir.path(),
        UNUSED_DB,
        &["feeds", "import", miniflux.to_str().unwrap()],
        &[],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let out = stdout(&output);
    assert!(
        out.contains(
            "skipped https://configured.example/rss: already configured at herald.toml:2:7"
        ),
        "{out}"
    );
    assert!(
        out.contains("3 feeds imported into feeds.d/managed.toml, 1 skipped"),
        "{out}"
    );

    let freshrss = opml_fixture("freshrss.opml");
    let output = cli(
        dir.path(),
        UNUSED_DB,
        &["feeds", "import", freshrss.to_str().unwrap()],
        &[],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let out = stdout(&output);
    assert!(out.contains("3 feeds imported"), "{out}");
    assert!(
        out.contains("skipped invalid feed url \"ftp://files.example/feed.xml\""),
        "{out}"
    );
    assert!(
        out.contains("skipped https://lwn.example/headlines/newrss: listed twice"),
        "{out}"
    );

    // What the configuration now says, through `herald feeds export`.
    let output = cli(dir.path(), UNUSED_DB, &["feeds", "export"], &[]).await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let exported = stdout(&output);
    assert!(
        exported.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<opml version=\"2.0\">")
    );
    let feeds = herald::opml::read(exported.as_bytes()).unwrap();
    let find = |url: &str| {
        feeds
            .iter()
            .find(|feed| feed.url == url)
            .unwrap_or_else(|| panic!("{url} in {exported}"))
    };
    assert_eq!(feeds.len(), 7, "{exported}");
    let ars = find("https://feeds.arstechnica.example/arstechnica/index");
    assert_eq!(ars.title.as_deref(), Some("Ars Technica"));
    assert_eq!(ars.tags, ["All"]);
    let le_monde =
        find("https://www.lemonde.example/international/rss_full.xml?utm_source=rss&lang=fr");
    assert_eq!(le_monde.title.as_deref(), Some("Le Monde – International"));
    assert_eq!(le_monde.tags, ["World & Politics"]);
    // No title at all: named by its URL, as feed readers show it.
    let untitled = find("https://untitled.example/feed.xml");
    assert_eq!(
        untitled.title.as_deref(),
        Some("https://untitled.example/feed.xml")
    );
    // Escaped twice by FreshRSS: read as the publisher wrote it.
    let toms = find("https://www.tomshardware.example/feeds/all");
    assert_eq!(toms.title.as_deref(), Some("Tom's Hardware"));
    let lwn = find("https://lwn.example/headlines/newrss");
    assert_eq!(lwn.tags, ["Tech", "Linux", "kernel"]);
    let deep = find("https://deep.example/atom.xml");
    assert_eq!(deep.tags, ["Tech", "Nested"]);
    assert_eq!(
        find("https://configured.example/rss").tags,
        Vec::<String>::new()
    );

    // Another herald (or a feed reader) takes the export as it is.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("herald.toml"), "").unwrap();
    let file = other.path().join("export.opml");
    std::fs::write(&file, &exported).unwrap();
    let output = cli(
        other.path(),
        UNUSED_DB,
        &["feeds", "import", file.to_str().unwrap()],
        &[],
    )
    .await;
    assert!(stdout(&output).contains("7 feeds imported"), "{output:?}");
    let output = cli(other.path(), UNUSED_DB, &["check"], &[]).await;
    assert!(stdout(&output).contains("ok: 7 feeds"), "{output:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_names_a_file_that_is_not_opml() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("herald.toml"), "").unwrap();
    let file = dir.path().join("feed.xml");
    std::fs::write(&file, "<rss version=\"2.0\"><channel/></rss>").unwrap();
    let output = cli(
        dir.path(),
        UNUSED_DB,
        &["feeds", "import", file.to_str().unwrap()],
        &[],
    )
    .await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        stderr(&output).contains("not an OPML file: the root element is <rss>"),
        "{output:?}"
    );
    assert!(!managed(dir.path()).exists());
}

async fn a_running_herald_picks_up_an_added_feed(backend: Backend) {
    let server = FeedServer::start().await;
    server.set("/first", Route::rss("First", &[Item::numbered(1)]));
    server.set("/second", Route::rss("Second", &[Item::numbered(2)]));
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[fetch]\ninterval = \"1s\"\n\n{}",
        feeds_toml(&[server.url("/first")])
    );
    std::fs::write(dir.path().join("herald.toml"), config).unwrap();
    let pid_file = dir.path().join("herald.pid");
    let pid_env = pid_file.to_str().unwrap().to_owned();
    let daemon =
        Daemon::start_with_env(dir.path(), &db.url, None, &[("HERALD_PID_FILE", &pid_env)]);
    for _ in 0..200 {
        if pid_file.exists() && server.hits("/first") > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap().trim(),
        daemon.pid().to_string()
    );

    let output = cli(
        dir.path(),
        &db.url,
        &["feeds", "add", &server.url("/second")],
        &[("HERALD_PID_FILE", &pid_env)],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(
        stdout(&output).contains(&format!("herald (pid {}) is reloading", daemon.pid())),
        "{output:?}"
    );
    // Polls of the new feed come only from the daemon: `feeds add` fetched it once.
    let added_at = server.hits("/second");
    for _ in 0..200 {
        if server.hits("/second") > added_at {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        server.hits("/second") > added_at,
        "the daemon never polled the added feed"
    );

    daemon.signal("TERM");
    let output = daemon.wait().await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(!pid_file.exists(), "the PID file outlived herald");
    assert!(!stderr(&output).contains("reload failed"), "{output:?}");

    // Nobody to signal now: the operator is told how to reload.
    let output = cli(
        dir.path(),
        &db.url,
        &["feeds", "disable", &server.url("/second")],
        &[("HERALD_PID_FILE", &pid_env)],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let out = stdout(&output);
    assert!(
        out.contains("no herald running") && out.contains("systemctl reload herald"),
        "{out}"
    );
}

both_backends!(a_running_herald_picks_up_an_added_feed);

const HOOK_PATH: &str = "/hooks/T0KEN-s3cret";

fn sink_config(receiver: &Receiver) -> String {
    format!(
        "[sinks.ops]\ntype = \"webhook\"\nurl = \"{}\"\nsecret = \"shh\"\n\n[sinks.chat]\ntype = \"slack\"\nurl = \"{}\"\n",
        receiver.url(HOOK_PATH),
        receiver.url("/slack/T0KEN-s3cret")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sinks_test_sends_a_marked_sample_and_reports_the_answer() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("herald.toml"), sink_config(&receiver)).unwrap();

    let output = cli(dir.path(), UNUSED_DB, &["sinks", "test", "ops"], &[]).await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let out = stdout(&output);
    let host = receiver.url("");
    assert!(
        out.starts_with(&format!(
            "sink ops (webhook {host}/…): test alert delivered: HTTP 200, "
        )),
        "{out}"
    );
    assert!(out.trim_end().ends_with(" ms"), "{out}");
    assert!(!out.contains("T0KEN"), "{out}");
    let received = receiver.requests(HOOK_PATH);
    assert_eq!(received.len(), 1);
    let body = received[0].json();
    assert!(
        body["article"]["title"]
            .as_str()
            .unwrap()
            .starts_with("[TEST] herald test alert"),
        "{body}"
    );
    assert_eq!(body["rule"]["name"], "herald-sinks-test");
    assert!(received[0].header("x-herald-signature").is_some());

    receiver.script(
        "/slack/T0KEN-s3cret",
        vec![Reply::status(404).with_body("no_service")],
    );
    let output = cli(dir.path(), UNUSED_DB, &["sinks", "test", "chat"], &[]).await;
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let err = stderr(&output);
    assert!(
        err.contains(&format!(
            "sink chat (slack {host}/…): test alert not delivered after "
        )),
        "{err}"
    );
    assert!(
        err.contains("HTTP 404 Not Found; the receiver said: no_service"),
        "{err}"
    );
    assert!(!err.contains("T0KEN"), "{err}");

    let output = cli(dir.path(), UNUSED_DB, &["sinks", "test", "pager"], &[]).await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        stderr(&output).contains("no sink named \"pager\", expected one of chat, ops"),
        "{output:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sinks_test_reports_a_receiver_that_is_down() {
    // A port nothing listens on.
    let port = crate::support::waiting::free_port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("herald.toml"),
        format!("[sinks.ops]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:{port}/hook/T0KEN\"\n"),
    )
    .unwrap();
    let output = cli(dir.path(), UNUSED_DB, &["sinks", "test", "ops"], &[]).await;
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let err = stderr(&output);
    assert!(err.contains("test alert not delivered"), "{err}");
    assert!(err.contains("refused"), "{err}");
    assert!(!err.contains("T0KEN"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_cannot_lead_add_to_a_private_address_the_policy_forbids() {
    let page_server = FeedServer::start().await;
    let other = FeedServer::start_on("127.0.0.2").await;
    other.set(
        "/internal.xml",
        Route::rss("Internal", &[Item::numbered(1)]),
    );
    let html = format!(
        "<html><head><link rel=\"alternate\" type=\"application/rss+xml\" href=\"{}\"></head></html>",
        other.url("/internal.xml")
    );
    page_server.set("/", Route::document("text/html", html));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("herald.toml"), "").unwrap();

    let output = cli(
        dir.path(),
        UNUSED_DB,
        &["feeds", "add", &page_server.url("/")],
        &[],
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(stderr(&output).contains("private_networks"), "{output:?}");
    assert_eq!(other.hits("/internal.xml"), 0);
    assert!(!managed(dir.path()).exists());

    std::fs::write(
        dir.path().join("herald.toml"),
        "[fetch]\nprivate_networks = \"allow\"\n",
    )
    .unwrap();
    let output = cli(
        dir.path(),
        UNUSED_DB,
        &["feeds", "add", &page_server.url("/")],
        &[],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(managed_text(dir.path()).contains(&other.url("/internal.xml")));
}
