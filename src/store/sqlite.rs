//! SQLite backend: the embedded zero-set-up default, one instance per file.
//!
//! Write transactions start with `BEGIN IMMEDIATE`: a deferred transaction that reads
//! first and writes later can fail with SQLITE_BUSY when another writer got in between,
//! which no busy timeout can resolve. Taking the write lock up front makes concurrent
//! pollers queue on the busy timeout instead. Rows are written one statement each:
//! inside one transaction SQLite's per-row cost is a few microseconds.

mod articles;
mod counts;
mod feeds;
mod outbox;
mod retention;
mod search;
mod stories;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Connection, Row, Sqlite, Transaction};

use super::group_commit::{Batcher, WriteQueue};
use super::rows::StoredRow;
use super::statements::{Bound, Engine, OnPool, Value};
use super::story_index::StoryIndex;
use super::{Backend, InstanceLock, StoreError};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Each connection's page cache, in KiB (SQLite's negative `cache_size`). The
/// default 2 MiB held little of the indexes a write probes at random places
/// (article keys; the story keys, when they were rows), so at a million
/// articles writes re-read their pages from the OS. The cache only grows as
/// pages are used, so a small database stays small.
const PAGE_CACHE_KIB: &str = "-32768";

/// The page size of a database herald creates. Articles are rows of 2-4 KB
/// (text and its markup): in SQLite's default 4 KiB pages most took a page of
/// their own, half empty, and every page written went through the log as a
/// frame. 8 KiB pages made a first poll's database 29 % smaller and the poll
/// 18 % faster. A database made with other pages keeps them (SQLite changes
/// the size only by `VACUUM`, and never in WAL mode).
const PAGE_BYTES: u32 = 8192;

/// Rows per multi-row statement: each statement is a hand-off to sqlx's worker
/// thread (~100 µs), a row a few µs; 14 columns × 500 rows stays far below
/// SQLite's 32,766 bound parameters.
const ROWS_PER_STATEMENT: usize = 500;

/// A write-ahead log past this size is checkpointed and truncated after the
/// write that grew it. SQLite's own checkpoints copy pages back, but start the
/// log over only when no reader holds an older snapshot: beside steady readers
/// (the API, `herald search`) it grew without end, 98 MB over an 87 MB
/// database in a test.
const WAL_CHECKPOINT_BYTES: u64 = 16 << 20;

/// What a log SQLite started over is cut back to (`journal_size_limit`).
const WAL_KEEP_BYTES: &str = "16777216";

/// Databases up to this size have every page read at each start (about a
/// second per few hundred MB); larger ones only by `herald check`.
const QUICK_CHECK_AT_START_BYTES: u64 = 256 << 20;

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Band keys of the stored articles in the window (see `story_index`).
    stories: Arc<tokio::sync::Mutex<StoryIndex>>,
    /// Batches waiting for whoever holds `stories` (see `group_commit`).
    writes: WriteQueue,
    /// 304s waiting to be recorded, one statement for all (see `group_commit`).
    not_modified: Batcher<(i64, String, String)>,
    /// The database file; `None` in memory.
    path: Option<std::path::PathBuf>,
    busy_timeout: Duration,
}

/// How errors name the database: its file, never the URL.
fn describe(path: Option<&std::path::Path>) -> String {
    match path {
        Some(path) => format!("the database file {}", path.display()),
        None => "the in-memory database".to_owned(),
    }
}

/// Times are stored as fixed-width UTC text so that string order is time order.
fn to_text(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn from_text(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("time {text:?}: {e}")))
}

impl SqliteStore {
    pub async fn connect(url: &str, busy_timeout: Duration) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(StoreError::Connect)?
            .create_if_missing(true)
            .page_size(PAGE_BYTES)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(busy_timeout)
            .pragma("cache_size", PAGE_CACHE_KIB)
            .pragma("journal_size_limit", WAL_KEEP_BYTES);
        let path = options.get_filename();
        let path = (!path.as_os_str().is_empty() && path != std::path::Path::new(":memory:"))
            .then(|| path.to_path_buf());
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(busy_timeout)
            // A transaction whose ROLLBACK failed too (SQLITE_FULL, an I/O
            // error) leaves its connection inside it, and every BEGIN on it
            // fails from then on: such a connection is closed, never reused.
            .before_acquire(|connection, _| {
                Box::pin(async move { Ok(!connection.is_in_transaction()) })
            })
            .connect_with(options)
            .await
            .map_err(|error| {
                let error = StoreError::Connect(error);
                match error.damage() {
                    Some(reason) => StoreError::Damaged(describe(path.as_deref()), reason),
                    None => error,
                }
            })?;
        Ok(SqliteStore {
            pool,
            stories: Arc::default(),
            writes: WriteQueue::default(),
            not_modified: Batcher::default(),
            busy_timeout,
            path,
        })
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }
}

#[async_trait]
impl Backend for SqliteStore {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn owns_whole_database(&self) -> bool {
        true
    }

    /// SQLite gave up waiting for another connection's lock, or every
    /// connection of the pool stayed taken as long: say so, with the setting.
    fn explain_failure(&self, error: StoreError) -> StoreError {
        if error.is_lock_timeout() {
            StoreError::Busy(self.describe(), self.busy_timeout)
        } else {
            error
        }
    }

    fn lock_single_instance(&self) -> Result<InstanceLock, StoreError> {
        let Some(path) = &self.path else {
            return Ok(InstanceLock::none());
        };
        let shown = path.display().to_string();
        let lock_failed = |error| StoreError::Lock {
            path: shown.clone(),
            error,
        };
        // flock(2) on the database file itself: independent of SQLite's own
        // fcntl locks, and no stray lock file to clean up after a crash.
        let file = std::fs::File::open(path).map_err(lock_failed)?;
        match file.try_lock() {
            Ok(()) => Ok(InstanceLock { _file: Some(file) }),
            Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::InUse(shown)),
            Err(std::fs::TryLockError::Error(error)) => Err(lock_failed(error)),
        }
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    fn describe(&self) -> String {
        describe(self.path.as_deref())
    }

    async fn table_names(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Reads every page (`quick_check`) unless `thorough` is off and the file is
    /// large: a start should not take minutes; `herald check` always reads all.
    async fn check_integrity(&self, thorough: bool) -> Result<(), StoreError> {
        let size = self
            .path
            .as_ref()
            .and_then(|path| std::fs::metadata(path).ok())
            .map_or(0, |meta| meta.len());
        if !thorough && size > QUICK_CHECK_AT_START_BYTES {
            return Ok(());
        }
        let problems: Vec<String> = sqlx::query_scalar("PRAGMA quick_check(3)")
            .fetch_all(&self.pool)
            .await?;
        match problems.as_slice() {
            [ok] if ok == "ok" => Ok(()),
            _ => {
                // On one line: SQLite lists problems over several.
                let problems = problems.join("; ").replace("*** in database main ***", "");
                let problems: Vec<&str> = problems.split_whitespace().collect();
                Err(StoreError::Damaged(self.describe(), problems.join(" ")))
            }
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

impl StoredRow for SqliteRow {
    fn text(&self, column: &str) -> Result<String, StoreError> {
        Ok(self.try_get(column)?)
    }

    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(column)?)
    }

    fn int(&self, column: &str) -> Result<i64, StoreError> {
        Ok(self.try_get(column)?)
    }

    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get(column)?)
    }

    fn time(&self, column: &str) -> Result<DateTime<Utc>, StoreError> {
        from_text(&self.text(column)?)
    }

    fn opt_time(&self, column: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.opt_text(column)?.as_deref().map(from_text).transpose()
    }

    fn bytes(&self, column: &str) -> Result<Vec<u8>, StoreError> {
        Ok(self.try_get(column)?)
    }
}

impl Engine for Sqlite {
    fn in_set(column: &str, n: usize) -> String {
        format!("{column} IN (SELECT value FROM json_each(${n}))")
    }

    fn bind<'q>(query: Bound<'q, Self>, value: Value<'q>) -> Bound<'q, Self> {
        match value {
            Value::Int(int) => query.bind(int),
            Value::Text(text) => query.bind(text),
            Value::OptText(text) => query.bind(text),
            Value::Time(time) => query.bind(to_text(time)),
            Value::OptTime(time) => query.bind(time.map(to_text)),
            Value::Ids(ids) => query.bind(articles::ids_json(ids)),
        }
    }

    fn rows_affected(result: &Self::QueryResult) -> u64 {
        result.rows_affected()
    }
}

impl OnPool for SqliteStore {
    type Engine = Sqlite;

    fn pool(&self) -> &sqlx::Pool<Sqlite> {
        &self.pool
    }
}

#[async_trait]
impl super::RuleStore for SqliteStore {}

impl super::SinkStore for SqliteStore {}
