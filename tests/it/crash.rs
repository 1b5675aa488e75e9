//! Crashes under `herald run`, as real processes: the PostgreSQL server restarting
//! beneath it, and herald itself killed with SIGKILL in the middle of a delivery.
//! Nothing may be lost: every item is stored once, every alert reaches its
//! receiver, and a resent alert carries the delivery id it was first sent with.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use chrono::Utc;
use sqlx::{Connection, PgConnection};

use crate::both_backends;
use crate::support::db::{Backend, TestDb};
use crate::support::feed_server::{FeedServer, Gate, Item, Route};
use crate::support::herald::feeds_toml;
use crate::support::process::{Daemon, herald};
use crate::support::receiver::{ReceivedRequest, Receiver, Reply};
use crate::support::waiting::{free_port, readiness, wait_until};

/// A throwaway PostgreSQL cluster in a temporary directory, on a free port, that
/// the test may stop and start at will. Stopped and removed when dropped.
struct Cluster {
    bindir: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    /// Root may not run the server binaries: they run as `postgres`.
    as_postgres: bool,
}

impl Cluster {
    /// A running cluster, or why there cannot be one here.
    fn start() -> Result<Cluster, String> {
        let bindir = server_bindir().ok_or("no PostgreSQL server binaries (initdb, pg_ctl)")?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let as_postgres = unsafe { libc::geteuid() } == 0;
        let dir = tempfile::Builder::new()
            .prefix("herald-crash-pg.")
            .tempdir()
            .map_err(|e| format!("no temporary directory: {e}"))?;
        if as_postgres {
            let chowned = Command::new("chown")
                .arg("postgres:")
                .arg(dir.path())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success());
            if !chowned {
                return Err("running as root and there is no postgres user".to_owned());
            }
        }
        let cluster = Cluster {
            bindir,
            dir,
            port: free_port(),
            as_postgres,
        };
        let initdb = cluster
            .command("initdb")
            .arg("-D")
            .arg(cluster.data())
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-locale"])
            .output()
            .map_err(|e| format!("cannot run initdb: {e}"))?;
        if !initdb.status.success() {
            return Err(format!("initdb failed: {}", tail(&initdb)));
        }
        cluster.server_start()?;
        Ok(cluster)
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bindir.join(program);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl start`, waiting until the server accepts connections.
    fn server_start(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off",
            self.port,
            self.dir.path().display()
        );
        let started = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .args(["-w", "-t", "120", "-o", &options, "start"])
            .output()
            .map_err(|e| format!("cannot run pg_ctl: {e}"))?;
        if started.status.success() {
            Ok(())
        } else {
            Err(format!("pg_ctl start failed: {}", tail(&started)))
        }
    }

    /// `pg_ctl stop -m fast`, as an operator restarting the server would: sessions
    /// are cut off at once.
    fn server_stop(&self) {
        let stopped = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "fast", "-w", "-t", "120", "stop"])
            .output()
            .unwrap();
        assert!(stopped.status.success(), "pg_ctl stop: {}", tail(&stopped));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The newest `/usr/lib/postgresql/*/bin` with both initdb and pg_ctl (Debian's
/// layout), else the directory of an `initdb` on PATH.
fn server_bindir() -> Option<PathBuf> {
    let usable = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| usable(bin))
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .find(|dir| usable(dir))
}

fn tail(output: &Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" / ")
}

async fn status_of(url: &str) -> u16 {
    match reqwest::get(url).await {
        Ok(response) => response.status().as_u16(),
        Err(_) => 0,
    }
}

/// One clock reading for the whole test run: an item built twice is the same item.
static NOW: std::sync::LazyLock<chrono::DateTime<Utc>> = std::sync::LazyLock::new(Utc::now);

/// Nothing the rule matches; the feed's back catalogue.
fn quiet() -> Item {
    Item {
        pub_date: Some(*NOW),
        ..Item::numbered(1)
    }
}

/// A story the rule matches, in words no other story shares, so that each is a
/// story of its own and alerts once.
fn story(n: u32) -> Item {
    let words: Vec<String> = (0..40).map(|i| format!("w{n}x{i}")).collect();
    Item {
        guid: format!("story-{n}"),
        link: format!("https://example.com/stories/{n}"),
        title: format!("Iran talks, round {n}"),
        description: format!("<p>Iran: {}.</p>", words.join(" ")),
        pub_date: Some(*NOW),
    }
}

fn feed(stories: std::ops::RangeInclusive<u32>) -> Route {
    let mut items: Vec<Item> = stories.map(story).collect();
    items.push(quiet());
    Route::rss("Wire", &items)
}

/// The config for `herald run`: one feed polled every second, a rule that
/// matches every story, a webhook to `hook`.
fn config(feed: &str, hook: &str, extra: &str) -> String {
    format!(
        "[fetch]\ninterval = \"1s\"\ntimeout = \"10s\"\n\n\
         [sinks.hook]\ntype = \"webhook\"\nurl = \"{hook}\"\n\n\
         [rules.iran]\nquery = 'Iran'\nsinks = [\"hook\"]\n\n{extra}{}",
        feeds_toml(&[feed.to_owned()])
    )
}

/// What the receiver got, alert by alert: each story's title → the delivery ids
/// its requests carried. Header and payload must agree on the id.
fn deliveries_by_title(requests: &[ReceivedRequest]) -> BTreeMap<String, BTreeSet<String>> {
    let mut by_title: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for request in requests {
        let payload = request.json();
        let id = payload["delivery_id"].as_str().unwrap().to_owned();
        assert_eq!(
            request.header("x-herald-delivery"),
            Some(id.as_str()),
            "the header and the payload name the same delivery"
        );
        let title = payload["article"]["title"].as_str().unwrap().to_owned();
        by_title.entry(title).or_default().insert(id);
    }
    by_title
}

/// Every story in `stories` alerted, each under exactly one delivery id, and
/// nothing else did.
fn assert_each_alerted_once(requests: &[ReceivedRequest], stories: std::ops::RangeInclusive<u32>) {
    let by_title = deliveries_by_title(requests);
    let expected: BTreeSet<String> = stories.map(|n| story(n).title).collect();
    let titles: BTreeSet<String> = by_title.keys().cloned().collect();
    assert_eq!(titles, expected, "every story's alert arrived, none other");
    for (title, ids) in &by_title {
        assert_eq!(
            ids.len(),
            1,
            "{title}: a resend carries the same delivery id, got {ids:?}"
        );
    }
}

async fn distinct_titles(receiver: &Receiver) -> usize {
    deliveries_by_title(&receiver.requests("/hook")).len()
}

/// (articles, distinct canonical URLs) in the cluster's database.
async fn stored(url: &str) -> Option<(i64, i64)> {
    let mut connection = PgConnection::connect(url).await.ok()?;
    sqlx::query_as("SELECT count(*), count(DISTINCT canonical_url) FROM articles")
        .fetch_one(&mut connection)
        .await
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgresql_restart_during_run_loses_nothing() {
    let cluster = match Cluster::start() {
        Ok(cluster) => cluster,
        Err(reason) => {
            crate::support::skipped(
                "crash::a_postgresql_restart_during_run_loses_nothing",
                &reason,
            );
            return;
        }
    };
    let server = FeedServer::start().await;
    let receiver = Receiver::start().await;
    server.set("/feed", Route::rss("Wire", &[quiet()]));
    let dir = tempfile::tempdir().unwrap();
    let api = format!("127.0.0.1:{}", free_port());
    std::fs::write(
        dir.path().join("herald.toml"),
        config(
            &server.url("/feed"),
            &receiver.url("/hook"),
            &format!("[api]\nlisten = \"{api}\"\n\n"),
        ),
    )
    .unwrap();
    let db_url = cluster.url();
    let daemon = Daemon::start_with_env(
        dir.path(),
        &db_url,
        None,
        &[("RUST_LOG", "warn,herald::daemon=info")],
    );
    let base = format!("http://{api}");

    // The back catalogue, then two stories: stored and delivered.
    wait_until("back catalogue stored", Duration::from_secs(30), || async {
        stored(&db_url).await == Some((1, 1))
    })
    .await;
    server.set("/feed", feed(1..=2));
    receiver.wait_for("/hook", 2, Duration::from_secs(30)).await;
    assert_eq!(readiness(&base).await.0, 200);

    // A fetch is under way when the server goes down; it completes while the
    // server is down, with two new stories, and more arrive during the outage.
    let gate = Gate::new();
    server.set("/feed", feed(1..=4).held_by(&gate));
    wait_until("a fetch held", Duration::from_secs(30), || async {
        server.in_flight("/feed") == 1
    })
    .await;
    cluster.server_stop();
    gate.open();
    wait_until(
        "the held fetch answered",
        Duration::from_secs(10),
        || async { server.in_flight("/feed") == 0 },
    )
    .await;
    server.set("/feed", feed(1..=6));
    wait_until(
        "not ready while the database is down",
        Duration::from_secs(30),
        || async { readiness(&base).await.0 == 503 },
    )
    .await;
    assert_eq!(status_of(&format!("{base}/healthz")).await, 200);
    let (_, why) = readiness(&base).await;
    assert!(why.contains("database unreachable"), "{why}");
    assert!(why.contains("refused"), "readiness names the cause: {why}");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(readiness(&base).await.0, 503);
    assert_eq!(status_of(&format!("{base}/healthz")).await, 200);

    // The server comes back: herald carries on by itself.
    cluster.server_start().unwrap();
    wait_until(
        "every story stored after the restart",
        Duration::from_secs(60),
        || async { stored(&db_url).await == Some((7, 7)) },
    )
    .await;
    wait_until(
        "every alert delivered after the restart",
        Duration::from_secs(60),
        || async { distinct_titles(&receiver).await == 6 },
    )
    .await;
    wait_until("ready again", Duration::from_secs(30), || async {
        readiness(&base).await.0 == 200
    })
    .await;

    daemon.signal("TERM");
    let output = daemon.wait().await;
    let log = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    // The operator's log says when the database went away, why, and when it was back.
    let lost = log
        .find("database unreachable; polls")
        .unwrap_or_else(|| panic!("the outage is logged: {log}"));
    let back = log
        .find("database reachable again")
        .unwrap_or_else(|| panic!("the recovery is logged: {log}"));
    assert!(lost < back, "{log}");
    assert!(log[lost..back].contains("refused"), "{log}");
    assert_each_alerted_once(&receiver.requests("/hook"), 1..=6);
    assert_eq!(stored(&db_url).await, Some((7, 7)));
    let listed = herald(dir.path(), &db_url, &["alerts", "--json"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&listed.stdout);
    let statuses: Vec<String> = text
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["status"].to_string())
        .collect();
    assert_eq!(statuses.len(), 6, "{text}");
    assert!(statuses.iter().all(|s| s == "\"delivered\""), "{text}");
}

both_backends!(kill_9_during_a_delivery_resends_it_with_the_same_id);

async fn kill_9_during_a_delivery_resends_it_with_the_same_id(backend: Backend) {
    let server = FeedServer::start().await;
    let receiver = Receiver::start().await;
    server.set("/feed", Route::rss("Wire", &[quiet()]));
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    // The shortest lease accepted, so a killed process's claim lapses soon.
    std::fs::write(
        dir.path().join("herald.toml"),
        config(
            &server.url("/feed"),
            &receiver.url("/hook"),
            "[alerts]\nlease = \"15s\"\n\n",
        ),
    )
    .unwrap();
    let first = Daemon::start(dir.path(), &db.url, None);
    wait_until("back catalogue stored", Duration::from_secs(30), || async {
        db.store.count_articles().await.unwrap() == 1
    })
    .await;

    // The receiver holds the first alert's request without answering.
    receiver.script(
        "/hook",
        vec![Reply::ok().delayed(Duration::from_secs(600)), Reply::ok()],
    );
    server.set("/feed", feed(1..=3));
    let held = receiver.wait_for("/hook", 1, Duration::from_secs(30)).await;
    let held_id = held[0].json()["delivery_id"].as_str().unwrap().to_owned();
    first.signal("KILL");
    let killed = first.wait().await;
    assert_eq!(killed.status.code(), None, "killed by a signal");

    // A new herald on the same database sends the held alert again, with the same
    // delivery id, and the others after it.
    let second = Daemon::start(dir.path(), &db.url, None);
    wait_until(
        "every alert delivered after the restart",
        Duration::from_secs(90),
        || async { distinct_titles(&receiver).await == 3 },
    )
    .await;
    wait_until(
        "the outbox records every delivery as delivered",
        Duration::from_secs(30),
        || async {
            let listed = herald(dir.path(), &db.url, &["alerts", "--json"])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&listed.stdout).into_owned();
            let lines: Vec<&str> = text.lines().collect();
            lines.len() == 3 && lines.iter().all(|line| line.contains("\"delivered\""))
        },
    )
    .await;
    second.signal("TERM");
    let output = second.wait().await;
    let log = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{log}");

    let requests = receiver.requests("/hook");
    assert_each_alerted_once(&requests, 1..=3);
    let resent: Vec<&ReceivedRequest> = requests
        .iter()
        .filter(|r| r.header("x-herald-delivery") == Some(held_id.as_str()))
        .collect();
    assert!(
        resent.len() >= 2,
        "the held alert was sent again: {resent:?}"
    );
    assert_eq!(db.store.count_articles().await.unwrap(), 4);
}
