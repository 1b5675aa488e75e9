//! The statements both engines read the same way, written once.
//!
//! A backend runs a statement's text with its values ([`Statements`]): how
//! it binds a time or a set of ids, and how it says "is in this set", are all
//! that differ, and both engines read `$N` parameters. The reads the
//! aggregates share are default methods built on it; a backend overrides
//! only what its engine does its own way.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use sqlx::query::Query;
use sqlx::{Database, Executor, IntoArguments, Pool, Transaction};

use super::StoreError;
use super::rows::StoredRow;

/// A value bound to a statement's `$N`.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    Int(i64),
    Text(&'a str),
    OptText(Option<&'a str>),
    Time(DateTime<Utc>),
    OptTime(Option<DateTime<Utc>>),
    /// A set of ids, read by the SQL [`Statements::in_set`] writes.
    Ids(&'a [i64]),
}

/// A row as the shared mappings (`store::rows`) read it.
pub type Row = Box<dyn StoredRow + Send>;

/// Running a statement on a backend's database, outside any transaction.
#[async_trait]
pub trait Statements: Send + Sync {
    /// SQL saying `column` is one of the ids bound as `$n` ([`Value::Ids`]).
    fn in_set(&self, column: &str, n: usize) -> String;

    /// Every row of the statement.
    async fn rows(&self, sql: &str, values: &[Value<'_>]) -> Result<Vec<Row>, StoreError>;

    /// The statement's first row, if any.
    async fn row(&self, sql: &str, values: &[Value<'_>]) -> Result<Option<Row>, StoreError>;

    /// The integer in column `n` of the statement's one row (a count).
    async fn count(&self, sql: &str, values: &[Value<'_>]) -> Result<i64, StoreError> {
        let row = self
            .row(sql, values)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("no row from {sql}")))?;
        row.int("n")
    }
}

/// Running a statement inside a backend's transaction.
#[async_trait]
pub trait TxStatements: Send {
    /// SQL saying `column` is one of the ids bound as `$n` ([`Value::Ids`]).
    fn in_set(&self, column: &str, n: usize) -> String;

    /// Every row of the statement.
    async fn rows(&mut self, sql: &str, values: &[Value<'_>]) -> Result<Vec<Row>, StoreError>;

    /// Runs the statement; the rows it changed.
    async fn execute(&mut self, sql: &str, values: &[Value<'_>]) -> Result<u64, StoreError>;
}

/// A statement of engine `DB`, bound as it is built.
pub type Bound<'q, DB> = Query<'q, DB, <DB as Database>::Arguments>;

/// What an engine adds to sqlx's for the statements above: how it binds
/// herald's values and says "is in this set of ids".
pub trait Engine: Database {
    /// SQL saying `column` is one of the ids bound as `$n` ([`Value::Ids`]).
    fn in_set(column: &str, n: usize) -> String;
    fn bind<'q>(query: Bound<'q, Self>, value: Value<'q>) -> Bound<'q, Self>;
    fn rows_affected(result: &Self::QueryResult) -> u64;
}

fn bound<'q, DB: Engine>(sql: &str, values: &[Value<'q>]) -> Bound<'q, DB> {
    values.iter().fold(
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())),
        |query, value| DB::bind(query, *value),
    )
}

fn shared<R: StoredRow + Send + 'static>(rows: Vec<R>) -> Vec<Row> {
    rows.into_iter().map(|row| Box::new(row) as Row).collect()
}

/// A backend over one engine's pool.
pub trait OnPool: Send + Sync {
    type Engine: Engine;
    fn pool(&self) -> &Pool<Self::Engine>;
}

#[async_trait]
impl<S> Statements for S
where
    S: OnPool,
    <S::Engine as Database>::Row: StoredRow + Send,
    for<'c> &'c mut <S::Engine as Database>::Connection: Executor<'c, Database = S::Engine>,
    <S::Engine as Database>::Arguments: IntoArguments<S::Engine>,
{
    fn in_set(&self, column: &str, n: usize) -> String {
        S::Engine::in_set(column, n)
    }

    async fn rows(&self, sql: &str, values: &[Value<'_>]) -> Result<Vec<Row>, StoreError> {
        let rows = bound::<S::Engine>(sql, values)
            .fetch_all(self.pool())
            .await?;
        Ok(shared(rows))
    }

    async fn row(&self, sql: &str, values: &[Value<'_>]) -> Result<Option<Row>, StoreError> {
        let row = bound::<S::Engine>(sql, values)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|row| Box::new(row) as Row))
    }
}

#[async_trait]
impl<DB> TxStatements for Transaction<'static, DB>
where
    DB: Engine,
    DB::Row: StoredRow + Send,
    DB::Connection: Send,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
{
    fn in_set(&self, column: &str, n: usize) -> String {
        DB::in_set(column, n)
    }

    async fn rows(&mut self, sql: &str, values: &[Value<'_>]) -> Result<Vec<Row>, StoreError> {
        let rows = bound::<DB>(sql, values).fetch_all(&mut **self).await?;
        Ok(shared(rows))
    }

    async fn execute(&mut self, sql: &str, values: &[Value<'_>]) -> Result<u64, StoreError> {
        let result = bound::<DB>(sql, values).execute(&mut **self).await?;
        Ok(DB::rows_affected(&result))
    }
}
