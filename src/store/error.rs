//! Why a storage operation failed, in words an operator can act on.

use std::time::Duration;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL: expected sqlite://PATH or postgres://…")]
    UnsupportedUrl,
    // The cause is written out here and not chained as a source: sqlx's text
    // already includes its own cause, and PostgreSQL's shows a line of the
    // server's C source ("at line 948"), read as a line of the configuration.
    #[error("cannot open the database: {}", plain(.0))]
    Connect(sqlx::Error),
    /// A connection that failed in a way an operator can fix, with how.
    #[error("cannot connect: {cause}; {hint}")]
    CannotConnect { cause: String, hint: String },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {}", plain(.0))]
    Database(sqlx::Error),
    #[error("the database did not answer within {}s", .0.as_secs())]
    NoAnswer(std::time::Duration),
    #[error("the write was interrupted before it finished; nothing was stored")]
    Abandoned,
    #[error("stored value is invalid: {0}")]
    Corrupt(String),
    #[error(
        "another herald is already running on {0}; SQLite serves one instance \
         (use PostgreSQL to run several)"
    )]
    InUse(String),
    #[error(
        "{0} holds another application's tables ({1}) and no herald schema: \
         point [database] url at a new database"
    )]
    Foreign(String, String),
    #[error("{0} is damaged ({1}): restore it from a backup, or move it aside to start a new one")]
    Damaged(String, String),
    #[error(
        "{0} stayed locked by another process's write for longer than \
         [database] busy_timeout ({1:?}): raise it, or look for what holds the lock"
    )]
    Busy(String, Duration),
    #[error("cannot lock {path}: {error}")]
    Lock {
        path: String,
        #[source]
        error: std::io::Error,
    },
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> StoreError {
        StoreError::Database(error)
    }
}

/// sqlx's error as an operator should read it: a database's own message
/// without PostgreSQL's source-code line.
fn plain(error: &sqlx::Error) -> String {
    match error.as_database_error() {
        Some(database) => format!("error returned from database: {}", database.message()),
        None => error.to_string(),
    }
}

impl StoreError {
    /// SQLite gave up waiting for another connection's lock (BUSY, LOCKED), or
    /// every connection of the pool stayed taken as long.
    pub(super) fn is_lock_timeout(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::PoolTimedOut) => true,
            StoreError::Database(sqlx::Error::Database(error)) => {
                matches!(database_code(error.as_ref()), Some(Code::Sqlite(5 | 6)))
            }
            _ => false,
        }
    }

    /// The database's own words when it found its storage damaged: a file
    /// that is not a database or a malformed page (SQLite CORRUPT, NOTADB), a
    /// corrupted block or index (PostgreSQL XX001, XX002).
    pub(super) fn damage(&self) -> Option<String> {
        let error = match self {
            StoreError::Database(error)
            | StoreError::Connect(error)
            | StoreError::Migrate(sqlx::migrate::MigrateError::Execute(error))
            | StoreError::Migrate(sqlx::migrate::MigrateError::ExecuteMigration(error, _)) => {
                error.as_database_error()?
            }
            _ => return None,
        };
        let damaged = matches!(
            database_code(error),
            Some(Code::Sqlite(11 | 26) | Code::Postgres("XX001" | "XX002"))
        );
        damaged.then(|| error.message().to_owned())
    }

    /// True when the database refused these rows (a value it cannot hold, a
    /// broken constraint) rather than failing as a whole (down, busy, full):
    /// the same rows fail again, other rows may pass. SQLite: TOOBIG,
    /// CONSTRAINT, MISMATCH, RANGE; PostgreSQL: the SQLSTATE classes data
    /// exception and integrity constraint violation.
    pub fn is_refused_data(&self) -> bool {
        let StoreError::Database(sqlx::Error::Database(error)) = self else {
            return false;
        };
        match database_code(error.as_ref()) {
            Some(Code::Sqlite(code)) => matches!(code, 18 | 19 | 20 | 25),
            Some(Code::Postgres(code)) => code.starts_with("22") || code.starts_with("23"),
            None => false,
        }
    }
}

/// A database's own code for an error.
enum Code<'a> {
    /// SQLite's primary result code: the low byte of its extended one.
    Sqlite(i32),
    /// PostgreSQL's SQLSTATE.
    Postgres(&'a str),
}

fn database_code(error: &dyn sqlx::error::DatabaseError) -> Option<Code<'_>> {
    if let Some(postgres) = error.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        return Some(Code::Postgres(postgres.code()));
    }
    let extended = error.code()?.parse::<i32>().ok()?;
    Some(Code::Sqlite(extended & 0xff))
}
