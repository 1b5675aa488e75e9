//! Digests in the outbox, the backend-neutral half: finding the periods that
//! have ended, and turning a period's waiting deliveries into messages.
//!
//! A delivery to a digested (rule, sink) is written like any other, marked
//! with its schedule's key, and waits: the claim skips it and it does not hold
//! up its sink's queue. When its period ends, the dispatcher splits the
//! period's waiting rows into parts of at most what one message holds, and
//! each part's first row becomes its carrier (`digest_of` names it in every
//! row of the part, itself too). A carrier is claimed, leased, sent, retried
//! and given up like any delivery; its outcome settles the rows it carries in
//! the same transaction. Several instances may form the same digest at once:
//! rows are taken under a lock and only while no carrier names them.

use chrono::{DateTime, Utc};

use super::StoreError;
use super::rows::delivery_from_row;
use super::statements::{TxStatements, Value};
use crate::domain::delivery::DeliveryRecord;

/// A sink's deliveries waiting for one digest schedule, and when the oldest
/// was queued: its period ends at the schedule's first send after that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingDigest {
    pub sink: String,
    pub digest: String,
    pub oldest: DateTime<Utc>,
}

pub(super) const WAITING_SQL: &str = "SELECT sink, digest, min(created_at) AS oldest
     FROM deliveries
     WHERE digest IS NOT NULL AND digest_of IS NULL AND status = 'pending'
     GROUP BY sink, digest ORDER BY sink, digest";

/// Splits the deliveries of `sink` waiting for `digest` and queued before
/// `until` into parts of at most `capacity`, oldest first; the carriers, due
/// at `now`. `lock` is what the engine adds to hold the rows (PostgreSQL
/// `FOR UPDATE`; SQLite's writer holds the database).
pub(super) async fn form(
    tx: &mut impl TxStatements,
    waiting: &WaitingDigest,
    until: DateTime<Utc>,
    capacity: usize,
    now: DateTime<Utc>,
    lock: &str,
) -> Result<Vec<i64>, StoreError> {
    let sql = format!(
        "SELECT id FROM deliveries
         WHERE sink = $1 AND digest = $2 AND digest_of IS NULL AND status = 'pending'
           AND created_at < $3
         ORDER BY id {lock}"
    );
    let rows = tx
        .rows(
            &sql,
            &[
                Value::Text(&waiting.sink),
                Value::Text(&waiting.digest),
                Value::Time(until),
            ],
        )
        .await?;
    let ids = rows
        .iter()
        .map(|row| row.int("id"))
        .collect::<Result<Vec<i64>, StoreError>>()?;
    let mut carriers = Vec::new();
    let parts = ids.chunks(capacity.max(1)).count();
    for (index, part) in ids.chunks(capacity.max(1)).enumerate() {
        let Some(&carrier) = part.first() else {
            continue;
        };
        let sql = format!(
            "UPDATE deliveries SET digest_of = $1, next_attempt_at = $2
             WHERE digest_of IS NULL AND {}",
            tx.in_set("id", 3)
        );
        tx.execute(
            &sql,
            &[Value::Int(carrier), Value::Time(now), Value::Ids(part)],
        )
        .await?;
        tx.execute(
            "UPDATE deliveries SET digest_part = $2, digest_parts = $3 WHERE id = $1",
            &[
                Value::Int(carrier),
                Value::Int(i64::try_from(index + 1).unwrap_or(i64::MAX)),
                Value::Int(i64::try_from(parts).unwrap_or(i64::MAX)),
            ],
        )
        .await?;
        carriers.push(carrier);
    }
    Ok(carriers)
}

pub(super) const CARRIED_SQL: &str = "SELECT d.*, al.rule, al.matched, al.article_id
     FROM deliveries d JOIN alerts al ON al.id = d.alert_id
     WHERE d.digest_of = $1 ORDER BY d.id";

/// The deliveries a carrier's message holds, itself among them.
pub(super) fn carried_from_rows(
    rows: &[super::statements::Row],
) -> Result<Vec<DeliveryRecord>, StoreError> {
    rows.iter().map(|row| delivery_from_row(&**row)).collect()
}
