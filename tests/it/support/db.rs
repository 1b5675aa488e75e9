//! Real databases for tests: a fresh SQLite file or a fresh PostgreSQL database per test.
//!
//! PostgreSQL comes from `TEST_DATABASE_URL` (or `DATABASE_URL`), which `scripts/test`
//! sets, starting a throwaway server when none is given. Each test gets its own
//! database, so tests run in parallel without seeing each other's rows.

use std::sync::atomic::{AtomicUsize, Ordering};

use herald::store::Store;
use sqlx::{Connection, Executor, PgConnection, SqliteConnection};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A migrated, empty database that lives as long as this value.
pub struct TestDb {
    pub url: String,
    pub store: Store,
    _dir: Option<tempfile::TempDir>,
}

/// The PostgreSQL server tests create their databases on.
pub fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| {
            panic!(
                "PostgreSQL tests need a server: set TEST_DATABASE_URL \
                 (e.g. postgres://postgres@127.0.0.1:5432/postgres) or run ./scripts/test, \
                 which starts a throwaway one"
            )
        })
}

/// Databases older than this are left over from crashed runs and are dropped.
const STALE_AFTER_SECS: u64 = 3 * 3600;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The URL of a database named `name` on the same server as `server`.
pub fn database_url(server: &str, name: &str) -> String {
    let mut url = url::Url::parse(server).expect("TEST_DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

pub async fn create_postgres_database() -> String {
    let server = server_url();
    let mut admin = PgConnection::connect(&server)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to TEST_DATABASE_URL: {e}"));
    drop_stale_databases(&mut admin).await;
    let name = format!(
        "herald_test_{}_{}_{}",
        unix_now(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .expect("create test database");
    database_url(&server, &name)
}

async fn drop_stale_databases(admin: &mut PgConnection) {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'herald_test_%'")
            .fetch_all(&mut *admin)
            .await
            .unwrap_or_default();
    let now = unix_now();
    for name in names {
        let created: Option<u64> = name
            .strip_prefix("herald_test_")
            .and_then(|rest| rest.split('_').next())
            .and_then(|ts| ts.parse().ok());
        if created.is_some_and(|ts| now.saturating_sub(ts) > STALE_AFTER_SECS) {
            let _ = admin
                .execute(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .await;
        }
    }
}

impl TestDb {
    /// Runs SQL (several statements allowed) on the test's database, as an
    /// operator with `psql` or `sqlite3` would, beside herald's own connections.
    pub async fn execute_sql(&self, sql: &str) {
        if self.url.starts_with("sqlite:") {
            let mut connection = SqliteConnection::connect(&self.url).await.unwrap();
            connection
                .execute(sqlx::AssertSqlSafe(sql.to_owned()))
                .await
                .unwrap();
        } else {
            let mut connection = PgConnection::connect(&self.url).await.unwrap();
            connection
                .execute(sqlx::AssertSqlSafe(sql.to_owned()))
                .await
                .unwrap();
        }
    }

    pub async fn new(backend: Backend) -> TestDb {
        let (url, dir) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("herald.db").display());
                (url, Some(dir))
            }
            Backend::Postgres => (create_postgres_database().await, None),
        };
        let store = Store::connect(&url).await.expect("connect test database");
        store.migrate().await.expect("migrate test database");
        TestDb {
            url,
            store,
            _dir: dir,
        }
    }
}

/// Runs one async test body against SQLite and against PostgreSQL, as two tests.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use $crate::support::db::Backend;

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn sqlite() {
                    super::$name(Backend::Sqlite).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn postgres() {
                    super::$name(Backend::Postgres).await
                }
            }
        )*
    };
}
