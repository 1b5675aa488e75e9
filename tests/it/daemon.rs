//! `herald run` as a service: systemd notifications, reloads, one SQLite daemon,
//! several instances on one PostgreSQL, politeness to publishers. Real processes.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::both_backends;
use crate::support::db::{Backend, TestDb};
use crate::support::feed_server::{FeedServer, Item, Route};
use crate::support::herald::feeds_toml;
use crate::support::process::{Daemon, NotifySocket, herald};
use crate::support::receiver::Receiver;
use crate::support::waiting::wait_until;

both_backends!(
    systemd_hears_ready_reloading_and_stopping,
    a_feed_removed_on_reload_is_no_longer_fetched,
    publishers_are_treated_politely,
    the_daemon_indexes_what_it_stores_for_search,
    a_running_daemon_follows_a_mute_set_from_the_command_line,
);

fn write_config(dir: &Path, text: &str) {
    std::fs::write(dir.join("herald.toml"), text).unwrap();
}

async fn wait_for_hits(server: &FeedServer, path: &str, count: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while server.hits(path) < count {
        assert!(
            Instant::now() < deadline,
            "{path}: {} hits after {timeout:?}, expected {count}",
            server.hits(path)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn systemd_hears_ready_reloading_and_stopping(backend: Backend) {
    let server = FeedServer::start().await;
    server.set("/one", Route::rss("One", &[Item::numbered(1)]));
    server.set("/two", Route::rss("Two", &[Item::numbered(2)]));
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let base = "[fetch]\ninterval = \"1h\"\n\n";
    write_config(
        dir.path(),
        &format!("{base}{}", feeds_toml(&[server.url("/one")])),
    );

    let notify = NotifySocket::bind();
    // As under WatchdogSec=1s.
    let watchdog = [("WATCHDOG_USEC", "1000000")];
    let daemon = Daemon::start_with_env(dir.path(), &db.url, Some(&notify), &watchdog);
    notify.until("READY=1", Duration::from_secs(30)).await;
    wait_for_hits(&server, "/one", 1, Duration::from_secs(10)).await;
    notify.until("WATCHDOG=1", Duration::from_secs(2)).await;
    notify.until("WATCHDOG=1", Duration::from_secs(2)).await;

    // A broken configuration is refused and the running one stays.
    write_config(
        dir.path(),
        &format!(
            "{base}[rules.broken]\nquery = '\"North Korea'\nsinks = []\n\n{}",
            feeds_toml(&[server.url("/one"), server.url("/two")])
        ),
    );
    daemon.signal("HUP");
    let seen = notify.until("READY=1", Duration::from_secs(10)).await;
    assert!(seen.contains(&"RELOADING=1".to_owned()), "{seen:?}");
    assert!(
        seen.iter().any(|l| l.starts_with("STATUS=reload failed")),
        "{seen:?}"
    );

    // A feed added and SIGHUP: fetched without a restart.
    write_config(
        dir.path(),
        &format!(
            "{base}{}",
            feeds_toml(&[server.url("/one"), server.url("/two")])
        ),
    );
    daemon.signal("HUP");
    let seen = notify.until("READY=1", Duration::from_secs(10)).await;
    assert!(seen.contains(&"RELOADING=1".to_owned()), "{seen:?}");
    assert!(
        seen.iter().any(|l| l.starts_with("MONOTONIC_USEC=")),
        "{seen:?}"
    );
    wait_for_hits(&server, "/two", 1, Duration::from_secs(10)).await;
    assert_eq!(server.hits("/one"), 1, "not due again for an hour");

    daemon.signal("TERM");
    notify.until("STOPPING=1", Duration::from_secs(10)).await;
    let output = daemon.wait().await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(db.store.count_articles().await.unwrap(), 2);
}

async fn a_feed_removed_on_reload_is_no_longer_fetched(backend: Backend) {
    let server = FeedServer::start().await;
    server.set("/kept", Route::rss("Kept", &[Item::numbered(1)]));
    server.set("/dropped", Route::rss("Dropped", &[Item::numbered(2)]));
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let base = "[fetch]\ninterval = \"1s\"\n\n";
    write_config(
        dir.path(),
        &format!(
            "{base}{}",
            feeds_toml(&[server.url("/kept"), server.url("/dropped")])
        ),
    );
    let notify = NotifySocket::bind();
    let daemon = Daemon::start_with_env(dir.path(), &db.url, Some(&notify), &[]);
    notify.until("READY=1", Duration::from_secs(30)).await;
    wait_for_hits(&server, "/dropped", 2, Duration::from_secs(10)).await;

    write_config(
        dir.path(),
        &format!("{base}{}", feeds_toml(&[server.url("/kept")])),
    );
    daemon.signal("HUP");
    notify.until("READY=1", Duration::from_secs(10)).await;
    // A fetch claimed just before the reload may still complete.
    let dropped_at_reload = server.hits("/dropped");
    let kept_at_reload = server.hits("/kept");
    wait_for_hits(
        &server,
        "/kept",
        kept_at_reload + 3,
        Duration::from_secs(15),
    )
    .await;
    assert!(
        server.hits("/dropped") <= dropped_at_reload + 1,
        "/dropped fetched {} times after its removal (was {dropped_at_reload})",
        server.hits("/dropped")
    );

    daemon.signal("TERM");
    let output = daemon.wait().await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
}

async fn publishers_are_treated_politely(backend: Backend) {
    let server = FeedServer::start().await;
    server.set("/busy", Route::status(429).with_retry_after("120"));
    server.set("/gone", Route::status(410));
    server.set("/moved", Route::redirect(301, "/new"));
    server.set("/new", Route::rss("New home", &[Item::numbered(1)]));
    server.set("/broken", Route::status(500));
    server.set("/fine", Route::rss("Fine", &[Item::numbered(2)]));
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let paths = ["/busy", "/gone", "/moved", "/broken", "/fine"];
    let urls: Vec<String> = paths.iter().map(|p| server.url(p)).collect();
    write_config(
        dir.path(),
        &format!("[fetch]\ninterval = \"1s\"\n\n{}", feeds_toml(&urls)),
    );

    let daemon = Daemon::start(dir.path(), &db.url, None);
    // Five intervals of the well-behaved feed.
    wait_for_hits(&server, "/fine", 6, Duration::from_secs(30)).await;
    daemon.signal("TERM");
    let output = daemon.wait().await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");

    assert_eq!(server.hits("/busy"), 1, "Retry-After: 120 is obeyed");
    assert_eq!(server.hits("/gone"), 1, "410 disables the feed");
    assert_eq!(server.hits("/moved"), 1, "301 moves the feed for good");
    assert!(server.hits("/new") >= 3, "fetched at its new home");
    // Failing at 1 s intervals: waits of 2 s, 4 s, 8 s… instead of 1 s each.
    assert!(
        (2..=4).contains(&server.hits("/broken")),
        "backed off: {} fetches",
        server.hits("/broken")
    );

    let listed = herald(dir.path(), &db.url, &["feeds", "--json"])
        .output()
        .unwrap();
    let feeds: Vec<serde_json::Value> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let feed = |path: &str| {
        let url = server.url(path);
        feeds
            .iter()
            .find(|f| f["url"] == url.as_str())
            .unwrap_or_else(|| panic!("{path} in {feeds:?}"))
            .clone()
    };
    let now = chrono::Utc::now();
    let next = |f: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(f["next_fetch_at"].as_str().unwrap()).unwrap()
    };
    assert!(next(&feed("/busy")) > now + chrono::Duration::seconds(100));
    assert_eq!(feed("/gone")["status"], "disabled");
    assert_eq!(feed("/moved")["fetch_url"], server.url("/new").as_str());
    let broken = feed("/broken");
    assert_eq!(broken["status"], "error");
    assert!(broken["failures"].as_u64().unwrap() >= 2, "{broken}");
    assert!(
        broken["error"].as_str().unwrap().contains("500"),
        "{broken}"
    );
}

/// `herald run` indexes the articles it stores in the background: the backlog
/// empties and the index answers for them.
async fn the_daemon_indexes_what_it_stores_for_search(backend: Backend) {
    let server = FeedServer::start().await;
    let mut items: Vec<Item> = (1..=3).map(Item::numbered).collect();
    items[1].title = "Tehran hosts talks".into();
    server.set("/wire", Route::rss("Wire", &items));
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &feeds_toml(&[server.url("/wire")]));
    let daemon = Daemon::start(dir.path(), &db.url, None);
    wait_for_hits(&server, "/wire", 1, Duration::from_secs(30)).await;
    wait_until("the backlog indexed", Duration::from_secs(30), || async {
        let since = chrono::Utc::now() - chrono::Duration::days(3650);
        let stored = db.store.count_articles_since(since).await.unwrap();
        stored == 3 && db.store.search_backlog().await.unwrap() == 0
    })
    .await;
    daemon.signal("TERM");
    let output = daemon.wait().await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let found = herald(
        dir.path(),
        &db.url,
        &["search", "tehran", "--since", "3650d", "--json"],
    )
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&found.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains("Tehran hosts talks"), "{stdout}");
}

async fn a_running_daemon_follows_a_mute_set_from_the_command_line(backend: Backend) {
    let server = FeedServer::start().await;
    let receiver = Receiver::start().await;
    server.set("/wire", Route::rss("Wire", &[]));
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        &format!(
            "[fetch]\ninterval = \"1s\"\n\n\
             [sinks.desk]\ntype = \"webhook\"\nurl = \"{}\"\n\n\
             [rules.nk-iran]\nquery = '\"North Korea\" Iran'\nsinks = [\"desk\"]\n\n{}",
            receiver.url("/hook"),
            feeds_toml(&[server.url("/wire")])
        ),
    );
    let daemon = Daemon::start(dir.path(), &db.url, None);
    wait_for_hits(&server, "/wire", 1, Duration::from_secs(30)).await;
    let muted = herald(
        dir.path(),
        &db.url,
        &["rules", "mute", "nk-iran", "--for", "1h"],
    )
    .output()
    .unwrap();
    assert_eq!(muted.status.code(), Some(0), "{muted:?}");
    // A running herald reads mutes again within 5 s.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let mut story = Item::numbered(1);
    story.title = "North Korea sends envoys to Iran".into();
    story.pub_date = Some(chrono::Utc::now());
    server.set("/wire", Route::rss("Wire", &[story]));
    wait_until(
        "the story held back as muted",
        Duration::from_secs(30),
        || async {
            let held = db.store.held_hits(10).await.unwrap();
            held.iter().any(|hit| hit.reason == "muted")
        },
    )
    .await;
    assert!(
        receiver.requests("/hook").is_empty(),
        "nothing sent while muted"
    );
    daemon.signal("TERM");
    let output = daemon.wait().await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_daemon_on_one_sqlite_file_is_refused() {
    let server = FeedServer::start().await;
    server.set("/feed", Route::rss("Live", &[Item::numbered(1)]));
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &feeds_toml(&[server.url("/feed")]));
    let notify = NotifySocket::bind();
    let first = Daemon::start(dir.path(), &db.url, Some(&notify));
    notify.until("READY=1", Duration::from_secs(30)).await;

    let second = herald(dir.path(), &db.url, &["run"]).output().unwrap();
    assert_eq!(second.status.code(), Some(1), "{second:?}");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("another herald is already running"),
        "{stderr}"
    );
    assert!(stderr.contains("PostgreSQL"), "{stderr}");

    first.signal("TERM");
    assert_eq!(first.wait().await.status.code(), Some(0));
}

/// Three instances, one PostgreSQL database, 200 feeds on one server: each due feed
/// is fetched once, each alert delivered once, and a killed instance's feeds are
/// taken over.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_share_feeds_and_deliveries() {
    const FEEDS: usize = 200;
    const INTERVAL: Duration = Duration::from_secs(4);
    let server = FeedServer::start().await;
    let receiver = Receiver::start().await;
    let paths: Vec<String> = (0..FEEDS).map(|i| format!("/f/{i}")).collect();
    for (i, path) in paths.iter().enumerate() {
        server.set(path, Route::rss("Feed", &[Item::numbered(1000 + i as u32)]));
    }
    let db = TestDb::new(Backend::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    let urls: Vec<String> = paths.iter().map(|p| server.url(p)).collect();
    write_config(
        dir.path(),
        &format!(
            "[fetch]\ninterval = \"4s\"\ntimeout = \"2s\"\nper_host = 64\n\n\
             [sinks.hook]\ntype = \"webhook\"\nurl = \"{}\"\n\n\
             [rules.nk-iran]\nquery = '\"North Korea\" Iran'\nsinks = [\"hook\"]\n\n{}",
            receiver.url("/hook"),
            feeds_toml(&urls)
        ),
    );
    let mut daemons: Vec<Daemon> = (0..3)
        .map(|_| Daemon::start(dir.path(), &db.url, None))
        .collect();
    for path in &paths {
        wait_for_hits(&server, path, 1, Duration::from_secs(60)).await;
    }

    // One story in each of 20 feeds, after their back catalogue.
    for (i, path) in paths.iter().enumerate().take(20) {
        let mut story = Item::numbered(5000 + i as u32);
        story.title = format!("North Korea and Iran, report {i}");
        story.pub_date = Some(chrono::Utc::now());
        server.set(
            path,
            Route::rss("Feed", &[story, Item::numbered(1000 + i as u32)]),
        );
    }
    let delivered = receiver
        .wait_for("/hook", 20, Duration::from_secs(30))
        .await;
    tokio::time::sleep(INTERVAL * 2).await;

    let killed = daemons.remove(0);
    killed.signal("KILL");
    let killed_at = Instant::now();
    drop(killed.wait().await);
    // The lease of a fetch in flight (2 × timeout + 10 s), then two intervals.
    tokio::time::sleep(Duration::from_secs(14) + INTERVAL * 2).await;
    let stopped_at = Instant::now();
    for daemon in daemons {
        daemon.signal("TERM");
        let output = daemon.wait().await;
        assert_eq!(output.status.code(), Some(0), "{output:?}");
    }

    let sent = receiver.requests("/hook");
    assert_eq!(
        sent.len(),
        20,
        "each alert delivered once: {}",
        delivered.len()
    );
    let ids: HashSet<String> = sent
        .iter()
        .map(|r| r.header("x-herald-delivery").unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 20);

    let shortest_gap = INTERVAL.mul_f64(0.9);
    for path in &paths {
        let times: Vec<Instant> = server.requests(path).iter().map(|r| r.arrived).collect();
        for pair in times.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap >= shortest_gap,
                "{path} fetched twice within {gap:?}: once per due time expected"
            );
        }
        let last = *times.last().unwrap();
        assert!(
            last > killed_at && stopped_at - last <= INTERVAL * 2,
            "{path} still fetched after an instance died (last {:?} before the end)",
            stopped_at - last
        );
    }
}
