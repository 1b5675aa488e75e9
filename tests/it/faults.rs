//! Faults an operator meets on a real machine: a disk that fills up under the
//! database, a write-ahead log that would grow without end.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use herald::domain::article::NewArticle;
use herald::domain::feed::FeedSpec;
use herald::ingest::PollStatus;
use herald::store::Incoming;
use herald::stories::StorySettings;
use sqlx::{Connection, SqliteConnection};

use crate::support::db::{Backend, TestDb, create_postgres_database};

use crate::support::feed_server::{FeedServer, Item, Route};
use crate::support::herald::{TestHerald, feeds_toml};
use crate::support::process::{Daemon, herald};
use crate::support::waiting::{free_port, readiness, wait_until};

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
        crate::support::skipped(
            "faults::a_full_disk_stops_sqlite_writes_only_while_it_lasts",
            "mounting a small tmpfs needs root",
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

fn wal_bytes(db_path: &Path) -> u64 {
    let mut wal = db_path.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(wal).map_or(0, |meta| meta.len())
}

/// Readers that each hold a snapshot for a moment, over and over, as API
/// clients and `herald search` do beside `herald run`: while one is open,
/// SQLite cannot start its write-ahead log over.
fn steady_readers(db_url: &str, stop: &Arc<AtomicBool>) -> Vec<tokio::task::JoinHandle<()>> {
    (0..3u64)
        .map(|reader| {
            let (db_url, stop) = (db_url.to_owned(), Arc::clone(stop));
            tokio::spawn(async move {
                let mut connection = SqliteConnection::connect(&db_url).await.unwrap();
                tokio::time::sleep(Duration::from_millis(reader * 20)).await;
                while !stop.load(Ordering::Relaxed) {
                    let mut snapshot = connection.begin().await.unwrap();
                    let _: i64 = sqlx::query_scalar("SELECT count(*) FROM articles")
                        .fetch_one(&mut *snapshot)
                        .await
                        .unwrap();
                    tokio::time::sleep(Duration::from_millis(60)).await;
                    snapshot.commit().await.unwrap();
                }
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sqlite_write_ahead_log_stays_bounded_beside_steady_readers() {
    let db = TestDb::new(Backend::Sqlite).await;
    let db_path = PathBuf::from(db.url.trim_start_matches("sqlite://"));
    let feed = db
        .store
        .sync_feeds(&[FeedSpec {
            url: "https://wire.example/feed".to_owned(),
            name: None,
        }])
        .await
        .unwrap()[0]
        .id;
    let stop = Arc::new(AtomicBool::new(false));
    let readers = steady_readers(&db.url, &stop);
    let text = "A long report that goes on and on about the talks. ".repeat(80);
    let settings = StorySettings::default();
    let mut largest = 0;
    for batch in 0..40 {
        let incoming: Vec<Incoming> = (0..250)
            .map(|n| {
                let key = format!("item-{batch}-{n}");
                Incoming::from(NewArticle {
                    item_key: key.clone(),
                    canonical_url: Some(format!("https://wire.example/{key}")),
                    url: None,
                    title: format!("Report {batch}-{n}"),
                    summary_html: None,
                    summary_text: Some(format!("{key} {text}")),
                    content_html: Some(format!("<p>{key} {text}</p>")),
                    content_text: None,
                    author: None,
                    language: None,
                    published_at: chrono::Utc::now(),
                    updated_at: None,
                    fingerprint: key,
                })
            })
            .collect();
        db.store
            .save_articles(feed, &incoming, &settings, chrono::Utc::now())
            .await
            .unwrap();
        largest = largest.max(wal_bytes(&db_path));
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.await.unwrap();
    }
    let database = std::fs::metadata(&db_path).unwrap().len();
    // Some 85 MB of pages went through the log; without checkpoints that
    // start it over, the log grew past the database (98 MB).
    assert!(database > 30 << 20, "database of {database} bytes");
    assert!(
        largest <= 24 << 20,
        "write-ahead log reached {largest} bytes beside a {database}-byte database"
    );
}

/// A herald database whose pages past the schema are overwritten, as a bad
/// disk or a copy taken mid-write leaves it.
async fn damaged_herald_database(path: &Path) {
    let url = format!("sqlite://{}", path.display());
    let db = herald::store::Store::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    let mut connection = SqliteConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut connection)
        .await
        .unwrap();
    connection.close().await.unwrap();
    drop(db);
    let mut bytes = std::fs::read(path).unwrap();
    let page = 4096;
    assert!(bytes.len() > 8 * page, "{} bytes", bytes.len());
    for (at, byte) in bytes[3 * page..7 * page].iter_mut().enumerate() {
        *byte = (at * 7 % 251) as u8;
    }
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_damaged_or_foreign_database_stops_herald_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("herald.toml"),
        feeds_toml(&["http://127.0.0.1:9/feed".to_owned()]),
    )
    .unwrap();
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, "not a database at all, ".repeat(4000)).unwrap();
    let damaged = dir.path().join("damaged.db");
    damaged_herald_database(&damaged).await;
    let foreign = dir.path().join("foreign.db");
    let foreign_url = format!("sqlite://{}", foreign.display());
    {
        let mut other = SqliteConnection::connect(&format!("{foreign_url}?mode=rwc"))
            .await
            .unwrap();
        sqlx::raw_sql("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
            .execute(&mut other)
            .await
            .unwrap();
    }

    for (path, why) in [
        (&garbage, "is damaged (file is not a database)"),
        (&damaged, "is damaged ("),
        (&foreign, "holds another application's tables (customers)"),
    ] {
        let url = format!("sqlite://{}", path.display());
        for command in ["migrate", "check", "run"] {
            let output = herald(dir.path(), &url, &[command])
                .env("RUST_LOG", "error")
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            let lines: Vec<&str> = stderr.lines().collect();
            // `check` exits 2 when it cannot use the database, as for a bad configuration.
            let code = if command == "check" { 2 } else { 1 };
            assert_eq!(
                output.status.code(),
                Some(code),
                "{command} {url}: {stderr}"
            );
            assert_eq!(lines.len(), 1, "{command} {url}: {stderr}");
            let expected = format!("the database file {} {why}", path.display());
            assert!(lines[0].contains(&expected), "{command}: {stderr}");
            // `check` may still say the configuration is fine; never the database.
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                !stdout.contains("migrations applied") && !stdout.contains("database"),
                "{command}: {stdout}"
            );
        }
    }
    // The other application's database was left as it was.
    let mut other = SqliteConnection::connect(&foreign_url).await.unwrap();
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(&mut other)
            .await
            .unwrap();
    assert_eq!(tables, ["customers"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgres_database_with_tables_of_herald_names_is_not_taken_over() {
    let url = create_postgres_database().await;
    let mut other = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("CREATE TABLE feeds (name TEXT); CREATE TABLE invoices (id INT)")
        .execute(&mut other)
        .await
        .unwrap();
    let store = herald::store::Store::connect(&url).await.unwrap();
    let error = store.migrate().await.unwrap_err().to_string();
    assert_eq!(
        error,
        "the PostgreSQL database holds another application's tables (feeds) and no herald \
         schema: point [database] url at a new database"
    );
    // Tables of other names are no obstacle: a shared database is fine.
    sqlx::raw_sql("DROP TABLE feeds")
        .execute(&mut other)
        .await
        .unwrap();
    store.migrate().await.unwrap();
}

/// Another process's write transaction on the test's SQLite file, held for
/// `hold`, as `herald poll` beside `herald run` or a migration holds one.
async fn hold_write_lock(db_url: &str, hold: Duration) -> tokio::task::JoinHandle<()> {
    let mut other = SqliteConnection::connect(db_url).await.unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    tokio::spawn(async move {
        tokio::time::sleep(hold).await;
        sqlx::raw_sql("COMMIT").execute(&mut other).await.unwrap();
    })
}

async fn herald_waiting(busy_timeout: &str, server: &FeedServer) -> TestHerald {
    TestHerald::start(
        Backend::Sqlite,
        &format!(
            "[database]\nbusy_timeout = \"{busy_timeout}\"\n\n{}",
            feeds_toml(&[server.url("/feed")])
        ),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sqlite_writer_waits_for_another_process_and_names_a_lock_held_too_long() {
    let server = FeedServer::start().await;
    server.set("/feed", Route::rss("Wire", &long_items(1..=5)));

    // Briefly busy: the poll waits its turn and stores everything.
    let patient = herald_waiting("1m", &server).await;
    let holder = hold_write_lock(&patient.db.url, Duration::from_secs(2)).await;
    let report = patient.poll_one().await;
    holder.await.unwrap();
    assert_eq!(
        (report.status, report.new, report.error),
        (PollStatus::Ok, 5, None)
    );

    // Locked past the configured limit: the feed fails, and says why.
    let hasty = herald_waiting("1s", &server).await;
    let feeds = hasty.feeds().await;
    let holder = hold_write_lock(&hasty.db.url, Duration::from_secs(4)).await;
    let report = hasty.app.poll_once(&feeds).await.remove(0);
    holder.await.unwrap();
    assert_eq!(report.status, PollStatus::Error);
    let error = report.error.unwrap_or_default();
    assert!(
        error.contains("herald.db stayed locked by another process's write for longer than [database] busy_timeout (1s)"),
        "{error}"
    );
    // Once the lock is gone, the next poll stores what the feed carries.
    let again = hasty.poll_one().await;
    assert_eq!((again.status, again.new), (PollStatus::Ok, 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_poll_the_database_could_not_store_is_not_held_against_the_feed() {
    let server = FeedServer::start().await;
    server.set("/feed", Route::rss("Wire", &long_items(1..=5)));
    let herald = TestHerald::start(
        Backend::Sqlite,
        &format!(
            "[database]\nbusy_timeout = \"2s\"\n\n[[feeds]]\nurl = \"{}\"\ninterval = \"1h\"\n",
            server.url("/feed")
        ),
    )
    .await;
    let feeds = herald.feeds().await;
    // Locked past the wait while the items are stored, free again by the
    // time the outcome is recorded.
    let holder = hold_write_lock(&herald.db.url, Duration::from_millis(3000)).await;
    let report = herald.app.poll_once(&feeds).await.remove(0);
    holder.await.unwrap();
    assert_eq!(report.status, PollStatus::Error, "{report:?}");
    let feed = herald.feeds().await.remove(0).record;
    let error = feed.error.unwrap_or_default();
    assert!(error.contains("busy_timeout (2s)"), "{error}");
    // Due again after its interval (±5 % jitter), not after a doubled one.
    let (last, next) = (feed.last_fetch_at.unwrap(), feed.next_fetch_at.unwrap());
    assert!(
        next - last <= chrono::Duration::minutes(63),
        "next fetch {} after the failed one",
        next - last
    );
}
