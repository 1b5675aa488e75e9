//! Faults an operator meets on a real machine, against `herald run` as a process:
//! a disk that fills up under the database.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sqlx::{Connection, SqliteConnection};

use crate::support::feed_server::{FeedServer, Item, Route};
use crate::support::herald::feeds_toml;
use crate::support::process::{Daemon, herald};

/// A small tmpfs the test mounts (root only) and unmounts when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        mounted.then_some(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file until the disk has no room left; returns its path.
    fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 16 * 1024];
        while file.write_all(&chunk).and_then(|()| file.flush()).is_ok() {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

async fn articles_stored(db_url: &str) -> i64 {
    let mut connection = SqliteConnection::connect(db_url).await.unwrap();
    sqlx::query_scalar("SELECT count(*) FROM articles")
        .fetch_one(&mut connection)
        .await
        .unwrap()
}

async fn readiness(base: &str) -> (u16, String) {
    match reqwest::get(format!("{base}/readyz")).await {
        Ok(response) => (
            response.status().as_u16(),
            response.text().await.unwrap_or_default(),
        ),
        Err(error) => (0, error.to_string()),
    }
}

/// Waits until `check` holds, at most `timeout`; `what` names it in the panic.
async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn long_items(numbers: std::ops::RangeInclusive<u32>) -> Vec<Item> {
    numbers
        .map(|n| Item {
            description: format!("<p>{}</p>", format!("Report {n} continues. ").repeat(200)),
            ..Item::numbered(n)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_stops_sqlite_writes_only_while_it_lasts() {
    let Some(disk) = SmallDisk::mount("12m") else {
        eprintln!(
            "faults::a_full_disk_stops_sqlite_writes_only_while_it_lasts: skipped, \
             mounting a small tmpfs needs root"
        );
        return;
    };
    let server = FeedServer::start().await;
    server.set("/feed", Route::rss("Wire", &long_items(1..=5)));
    let db_url = format!("sqlite://{}", disk.path().join("herald.db").display());
    let dir = tempfile::tempdir().unwrap();
    let api = format!("127.0.0.1:{}", free_port());
    std::fs::write(
        dir.path().join("herald.toml"),
        format!(
            "[fetch]\ninterval = \"1s\"\n\n[api]\nlisten = \"{api}\"\n\n{}",
            feeds_toml(&[server.url("/feed")])
        ),
    )
    .unwrap();
    let migrated = herald(dir.path(), &db_url, &["migrate"]).output().unwrap();
    assert!(migrated.status.success(), "{migrated:?}");
    let daemon = Daemon::start(dir.path(), &db_url, None);
    let base = format!("http://{api}");
    wait_until("first items stored", Duration::from_secs(30), || async {
        articles_stored(&db_url).await == 5
    })
    .await;
    assert_eq!(readiness(&base).await.0, 200);

    // The disk fills up; the feed then carries 60 items, which cannot be stored.
    let filler = disk.fill();
    server.set("/feed", Route::rss("Wire", &long_items(1..=60)));
    wait_until(
        "readiness fails while writes fail",
        Duration::from_secs(30),
        || async { readiness(&base).await.0 == 503 },
    )
    .await;
    let (_, why) = readiness(&base).await;
    assert!(why.contains("write"), "{why}");

    // Room again: herald resumes by itself and stores everything the feed carries.
    std::fs::remove_file(filler).unwrap();
    wait_until(
        "all items stored after the disk has room",
        Duration::from_secs(30),
        || async { articles_stored(&db_url).await == 60 },
    )
    .await;
    wait_until("ready again", Duration::from_secs(10), || async {
        readiness(&base).await.0 == 200
    })
    .await;

    daemon.signal("TERM");
    let output = daemon.wait().await;
    let log = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{log}");
    assert!(!log.contains("transaction depth"), "{log}");
}
