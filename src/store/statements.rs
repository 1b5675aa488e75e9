//! The statements both engines read the same way, written once.
//!
//! A backend runs a statement's text with its values ([`Statements`]): how
//! it binds a time or a set of ids, and how it says "is in this set", are all
//! that differ, and both engines read `$N` parameters. The reads the
//! aggregates share are default methods built on it; a backend overrides
//! only what its engine does its own way.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use super::rows::StoredRow;

/// A value bound to a statement's `$N`.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    Int(i64),
    Text(&'a str),
    OptText(Option<&'a str>),
    Time(DateTime<Utc>),
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
