//! PostgreSQL backend: the shared production database, several instances at once.
//!
//! Batches use `UNNEST` arrays (one statement per table per fetch), the fastest
//! insert path measured for PostgreSQL batches. Rows are written in key order so concurrent
//! writers of overlapping batches take unique-index locks in the same order.

mod articles;
mod counts;
mod feeds;
mod outbox;
mod retention;
mod search;
mod stories;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, Row};

use super::group_commit::{Batcher, WriteQueue};
use super::rows::StoredRow;
use super::statements::{Bound, Engine, OnPool, Value};
use super::story_index::StoryIndex;
use super::{Backend, StoreError};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Attempts at a batch that PostgreSQL aborted as a deadlock victim.
const DEADLOCK_ATTEMPTS: u32 = 3;

/// How long each of [`PgStore::reachable`]'s two looks at the server may take.
const REACH_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the server is, for messages: host and port hold no secret.
fn server(options: &PgConnectOptions) -> String {
    format!("{}:{}", options.get_host(), options.get_port())
}

/// Why connecting failed, as a cause and what to do about it, for the failures
/// an operator meets when setting herald up; any other error as sqlx says it.
fn cannot_connect(error: sqlx::Error, options: &PgConnectOptions) -> StoreError {
    let server = server(options);
    let (cause, hint) = match &error {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => (
            format!("connection refused by {server}"),
            "is PostgreSQL running and listening there? Check the host and port in \
             [database] url"
                .to_owned(),
        ),
        sqlx::Error::Io(io) if io.to_string().contains("lookup address") => (
            format!("cannot resolve the host name {:?}", options.get_host()),
            "check the host in [database] url".to_owned(),
        ),
        // rustls reports a certificate it cannot verify as an I/O error.
        sqlx::Error::Io(io) if io.to_string().contains("certificate") => (
            format!("TLS with {server} failed: {io}"),
            "check sslmode and sslrootcert in [database] url against the server's certificate"
                .to_owned(),
        ),
        sqlx::Error::Io(io) => (
            format!("cannot reach {server}: {io}"),
            "check the host and port in [database] url, and any firewall between".to_owned(),
        ),
        sqlx::Error::Tls(tls) if tls.to_string().contains("does not support TLS") => (
            format!(
                "{server} does not offer TLS, and sslmode={} in [database] url requires it",
                ssl_mode(options)
            ),
            "turn on ssl in the server's postgresql.conf, or, on a trusted network only, \
             set sslmode=prefer in [database] url"
                .to_owned(),
        ),
        sqlx::Error::Tls(tls) => (
            format!("TLS with {server} failed: {tls}"),
            "check sslmode and sslrootcert in [database] url against the server's certificate"
                .to_owned(),
        ),
        sqlx::Error::Database(database) => {
            let code = database
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .map(|error| error.code());
            let message = database.message();
            let hint = match code {
                Some("28P01") => {
                    "check the user and password in [database] url (or HERALD_DATABASE_URL)"
                        .to_owned()
                }
                // pg_hba.conf has only `hostssl` lines for this client.
                Some("28000") if message.contains("no encryption") => {
                    "the server accepts this connection only over TLS: add sslmode=require \
                     to [database] url"
                        .to_owned()
                }
                Some("28000") if message.contains("role") && message.contains("does not exist") => {
                    format!(
                        "create the role with `createuser -h {} -p {} {}`, or check the user in \
                         [database] url",
                        options.get_host(),
                        options.get_port(),
                        options.get_username()
                    )
                }
                Some("28000") => format!(
                    "the server's pg_hba.conf does not let user {:?} in from here: check the \
                     user in [database] url, or have the server allow it",
                    options.get_username()
                ),
                Some("3D000") => format!(
                    "create it with `createdb -h {} -p {} -U {} {}`; herald creates its tables",
                    options.get_host(),
                    options.get_port(),
                    options.get_username(),
                    options.get_database().unwrap_or(options.get_username())
                ),
                Some("53300") => "the server has reached max_connections: stop other clients \
                                  or raise it"
                    .to_owned(),
                Some("57P03") => {
                    "the server is starting up or shutting down: try again shortly".to_owned()
                }
                _ => return StoreError::Connect(error),
            };
            (message.to_owned(), hint)
        }
        _ => return StoreError::Connect(error),
    };
    StoreError::CannotConnect { cause, hint }
}

/// TLS to a server on this host protects nothing (the traffic never leaves
/// the machine, and `sslmode=prefer`, the default, does not check who
/// answers) and costs ~90 ms a connection. So when neither the URL nor
/// `PGSSLMODE` names an sslmode and the host is a loopback address,
/// `localhost` or a Unix socket, herald connects in plain text: these
/// options, else `None`. A server that accepts only TLS still gets it
/// ([`tls_only_if_required`]).
fn plain_on_loopback(url: &str, options: &PgConnectOptions) -> Option<PgConnectOptions> {
    let parsed = url::Url::parse(url).ok()?;
    let named = parsed
        .query_pairs()
        .any(|(key, _)| key == "sslmode" || key == "ssl-mode");
    if named || std::env::var_os("PGSSLMODE").is_some() {
        return None;
    }
    let host = options.get_host();
    let loopback = host == "localhost"
        || host.starts_with('/')
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    loopback.then(|| options.clone().ssl_mode(sqlx::postgres::PgSslMode::Disable))
}

/// `plain`, unless the server refuses a connection without TLS (`hostssl`
/// lines only in pg_hba.conf): then `with_tls`, as `sslmode=prefer` would
/// have connected. A server that cannot be reached is reported as the
/// connection proper reports it, without a second wait.
async fn tls_only_if_required(
    plain: PgConnectOptions,
    with_tls: PgConnectOptions,
    timeout: Duration,
) -> Result<PgConnectOptions, StoreError> {
    let attempt = tokio::time::timeout(timeout, sqlx::PgConnection::connect_with(&plain)).await;
    match attempt {
        Ok(Ok(connection)) => {
            let _ = connection.close().await;
            Ok(plain)
        }
        Ok(Err(sqlx::Error::Database(error)))
            if error.code().as_deref() == Some("28000")
                && error.message().contains("no encryption") =>
        {
            Ok(with_tls)
        }
        Ok(Err(error)) => Err(cannot_connect(error, &plain)),
        Err(_) => Err(no_answer(&plain, timeout)),
    }
}

fn no_answer(options: &PgConnectOptions, timeout: Duration) -> StoreError {
    StoreError::CannotConnect {
        cause: format!(
            "no answer from {} within {}",
            server(options),
            humantime::format_duration(timeout)
        ),
        hint: "check the host and port in [database] url, and any firewall \
               between; [database] connect_timeout sets how long to wait"
            .to_owned(),
    }
}

fn ssl_mode(options: &PgConnectOptions) -> &'static str {
    use sqlx::postgres::PgSslMode;
    match options.get_ssl_mode() {
        PgSslMode::Disable => "disable",
        PgSslMode::Allow => "allow",
        PgSslMode::Prefer => "prefer",
        PgSslMode::Require => "require",
        PgSslMode::VerifyCa => "verify-ca",
        PgSslMode::VerifyFull => "verify-full",
    }
}

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// For a connection of its own, outside the pool (see `reachable`).
    options: Arc<PgConnectOptions>,
    /// Band keys of the stored articles in the window; writers of this process
    /// take turns on it, as writers of all processes take turns on `STORY_LOCK`.
    stories: Arc<tokio::sync::Mutex<StoryIndex>>,
    /// Batches waiting for whoever holds `stories` (see `group_commit`).
    writes: WriteQueue,
    /// 304s waiting to be recorded, one statement for all (see `group_commit`).
    not_modified: Batcher<(i64, DateTime<Utc>, DateTime<Utc>)>,
}

impl PgStore {
    /// Gives up after `timeout`; every failure says what to do about it.
    pub async fn connect(url: &str, timeout: Duration) -> Result<PgStore, StoreError> {
        let options: PgConnectOptions = url.parse().map_err(StoreError::Connect)?;
        // herald's statements are short (a feed row, a batch of rows by key);
        // a group write's UNNEST of thousands of rows and the feed list's
        // per-feed counts are costed above `jit_above_cost`, and compiling
        // them took longer than running them (15 ms of JIT for a 5 ms query).
        let options = options.options([("jit", "off")]);
        let options = match plain_on_loopback(url, &options) {
            Some(plain) => tls_only_if_required(plain, options, timeout).await?,
            None => options,
        };
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(30))
            // Only after the handshake: with TLS (`sslmode=prefer` and a server
            // with `ssl = on`) two handshake messages still wait for delayed
            // ACKs, ~90 ms a connection even on loopback (which is why a
            // server on this host is reached in plain text unless the URL
            // asks for TLS: `plain_on_loopback`).
            .after_connect(|_, _| {
                Box::pin(async {
                    disable_nagle_on_open_sockets();
                    Ok(())
                })
            })
            .connect_with(options.clone());
        // The pool retries a refused connection until its acquire timeout (30 s)
        // and then says only that it timed out; a connection of its own, opened
        // beside it, says at once why the server cannot be reached.
        let probe = sqlx::PgConnection::connect_with(&options);
        let opened = async {
            tokio::pin!(pool);
            tokio::select! {
                opened = &mut pool => opened,
                probed = probe => match probed {
                    Err(error) => Err(error),
                    Ok(connection) => {
                        let _ = connection.close().await;
                        pool.await
                    }
                },
            }
        };
        let pool = match tokio::time::timeout(timeout, opened).await {
            Ok(opened) => opened.map_err(|error| cannot_connect(error, &options))?,
            Err(_) => return Err(no_answer(&options, timeout)),
        };
        Ok(PgStore {
            pool,
            options: Arc::new(options),
            stories: Arc::default(),
            writes: WriteQueue::default(),
            not_modified: Batcher::default(),
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

#[async_trait]
impl Backend for PgStore {
    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// Never the URL: it may carry a password.
    fn describe(&self) -> String {
        "the PostgreSQL database".to_owned()
    }

    async fn table_names(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = current_schema()",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn reachable(&self) -> Result<(), StoreError> {
        if let Ok(Ok(())) = tokio::time::timeout(REACH_TIMEOUT, self.ping()).await {
            return Ok(());
        }
        // The pool retries a refused connection until its acquire timeout and then
        // reports only that it timed out; a connection of our own says why. One
        // that answers means the server is up and the pool merely busy.
        let direct = async {
            let mut connection = sqlx::PgConnection::connect_with(&self.options)
                .await
                .map_err(StoreError::Connect)?;
            let answered = sqlx::query("SELECT 1").execute(&mut connection).await;
            let _ = connection.close().await;
            answered.map(drop).map_err(StoreError::Database)
        };
        tokio::time::timeout(REACH_TIMEOUT, direct)
            .await
            .unwrap_or(Err(StoreError::NoAnswer(REACH_TIMEOUT)))
    }
}

/// A page of recent stories with their article and outlet counts.
const STORIES_PAGE_PG: &str = "
    SELECT * FROM (
        SELECT s.id, s.created_at, fa.title, fa.url,
            (SELECT count(*) FROM articles a WHERE a.story_id = s.id) AS articles,
            (SELECT count(DISTINCT src.feed_id) FROM articles a
             JOIN article_sources src ON src.article_id = a.id
             WHERE a.story_id = s.id) AS outlets
        FROM stories s JOIN articles fa ON fa.id = s.first_article_id
        WHERE s.created_at >= $1
    ) AS page
    WHERE outlets >= $2
    ORDER BY created_at DESC, id DESC
    LIMIT $3";

/// Any key: write transactions take it in turn (see `PgStore::write_jobs`).
const STORY_LOCK: i64 = 0x6865_7261_6c64_5354; // "heraldST"

/// sqlx 0.9.0 no longer sets TCP_NODELAY on its sockets (sqlx issue #4335, fixed
/// upstream but not released). Without it, every statement whose message spans more
/// than one TCP segment (any batch insert) waits ~40 ms for the server's delayed ACK:
/// measured here, a 500-article batch took 200 ms instead of 90 ms. sqlx offers no
/// hook to the socket, so each new connection sets the option on every socket the
/// process has open. That is harmless for the others (hyper sets it on its own HTTP
/// sockets anyway) and fails without effect on files and non-TCP sockets. Remove once
/// sqlx sets it again.
fn disable_nagle_on_open_sockets() {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<i32>().ok())
        else {
            continue;
        };
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
        if !is_socket {
            continue;
        }
        let on: libc::c_int = 1;
        // SAFETY: setsockopt only reads `on` for the length given. If `fd` was closed
        // or reused since it was listed, the call fails (EBADF, ENOTSOCK, ENOPROTOOPT)
        // and changes nothing; the result is deliberately ignored.
        unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}

fn is_deadlock(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "40P01")
}

impl StoredRow for PgRow {
    fn text(&self, column: &str) -> Result<String, StoreError> {
        Ok(self.try_get(column)?)
    }

    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(column)?)
    }

    fn int(&self, column: &str) -> Result<i64, StoreError> {
        self.opt_int(column)?
            .ok_or_else(|| StoreError::Corrupt(format!("{column} is null")))
    }

    /// `BIGINT`, `INTEGER` or `SMALLINT`: PostgreSQL decodes each only into
    /// its own width.
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        match self.try_get::<Option<i64>, _>(column) {
            Ok(value) => Ok(value),
            Err(_) => match self.try_get::<Option<i32>, _>(column) {
                Ok(value) => Ok(value.map(i64::from)),
                Err(_) => Ok(self.try_get::<Option<i16>, _>(column)?.map(i64::from)),
            },
        }
    }

    fn time(&self, column: &str) -> Result<DateTime<Utc>, StoreError> {
        Ok(self.try_get(column)?)
    }

    fn opt_time(&self, column: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self.try_get(column)?)
    }

    fn bytes(&self, column: &str) -> Result<Vec<u8>, StoreError> {
        Ok(self.try_get(column)?)
    }
}

impl Engine for sqlx::Postgres {
    fn in_set(column: &str, n: usize) -> String {
        format!("{column} = ANY(${n})")
    }

    fn bind<'q>(query: Bound<'q, Self>, value: Value<'q>) -> Bound<'q, Self> {
        match value {
            Value::Int(int) => query.bind(int),
            Value::Text(text) => query.bind(text),
            Value::OptText(text) => query.bind(text),
            Value::Time(time) => query.bind(time),
            Value::OptTime(time) => query.bind(time),
            Value::Ids(ids) => query.bind(ids),
        }
    }

    fn rows_affected(result: &Self::QueryResult) -> u64 {
        result.rows_affected()
    }
}

impl OnPool for PgStore {
    type Engine = sqlx::Postgres;

    fn pool(&self) -> &sqlx::Pool<sqlx::Postgres> {
        &self.pool
    }
}

#[async_trait]
impl super::RuleStore for PgStore {}

impl super::SinkStore for PgStore {}
