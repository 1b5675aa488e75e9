//! Retention on PostgreSQL (see `store::retention`).
//!
//! Several instances may prune at once. Deliveries and fingerprints are taken
//! with `FOR UPDATE SKIP LOCKED`: rows another pruner holds are left to it. A
//! batch of articles holds the story lock the writers take in turn (stories,
//! their first article and held rules change under it) and locks the
//! deliveries of its articles' alerts, so a `herald alerts retry` cannot
//! reopen one between the check and the delete.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};

use super::{PgStore, STORY_LOCK, is_deadlock};
use async_trait::async_trait;

use crate::store::retention::{FINISHED, Prunable, PruneReport, count, remove_articles};
use crate::store::{RetentionStore, StoreError};

/// Attempts at a batch that PostgreSQL aborted as a deadlock victim.
const DEADLOCK_ATTEMPTS: u32 = 3;

async fn count_of(
    tx: &mut Transaction<'static, Postgres>,
    sql: &str,
    binds: &[&[i64]],
) -> Result<u64, StoreError> {
    let mut query = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned()));
    for bind in binds {
        query = query.bind(*bind);
    }
    Ok(count(query.fetch_one(&mut **tx).await?))
}

/// The finished deliveries among `ids` still past `before` and not held by
/// another pruner, with their attempts.
async fn remove_deliveries(
    tx: &mut Transaction<'static, Postgres>,
    ids: &[i64],
    before: DateTime<Utc>,
) -> Result<PruneReport, StoreError> {
    // Locked: `herald alerts retry` cannot queue one again until the end.
    let locked: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT id FROM deliveries WHERE id = ANY($1)
           AND status IN ('delivered', 'dead') AND {FINISHED} < $2
         FOR UPDATE SKIP LOCKED"
    )))
    .bind(ids)
    .bind(before)
    .fetch_all(&mut **tx)
    .await?;
    let delivery_attempts = count_of(
        tx,
        "SELECT count(*) FROM delivery_attempts WHERE delivery_id = ANY($1)",
        &[&locked],
    )
    .await?;
    let deliveries = sqlx::query("DELETE FROM deliveries WHERE id = ANY($1)")
        .bind(&locked)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    Ok(PruneReport {
        deliveries,
        delivery_attempts,
        ..PruneReport::default()
    })
}

/// The fingerprints among `ids` still past `before` and not held by another
/// pruner.
async fn remove_fingerprints(
    tx: &mut Transaction<'static, Postgres>,
    ids: &[i64],
    before: DateTime<Utc>,
) -> Result<PruneReport, StoreError> {
    let story_fingerprints = sqlx::query(
        "DELETE FROM story_fingerprints WHERE article_id IN (
             SELECT article_id FROM story_fingerprints
             WHERE article_id = ANY($1) AND seen_at < $2
             FOR UPDATE SKIP LOCKED)",
    )
    .bind(ids)
    .bind(before)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(PruneReport {
        story_fingerprints,
        ..PruneReport::default()
    })
}

#[async_trait]
impl RetentionStore for PgStore {
    async fn remove(
        &self,
        kind: Prunable,
        ids: &[i64],
        before: DateTime<Utc>,
    ) -> Result<PruneReport, StoreError> {
        let mut attempt = 1;
        loop {
            match self.try_remove(kind, ids, before).await {
                Err(StoreError::Database(error))
                    if is_deadlock(&error) && attempt < DEADLOCK_ATTEMPTS =>
                {
                    attempt += 1;
                    tracing::debug!(
                        attempt,
                        "retention batch chosen as deadlock victim; retrying"
                    );
                }
                result => return result,
            }
        }
    }
}

impl PgStore {
    async fn try_remove(
        &self,
        kind: Prunable,
        ids: &[i64],
        before: DateTime<Utc>,
    ) -> Result<PruneReport, StoreError> {
        let mut tx = self.pool.begin().await?;
        let removed = match kind {
            Prunable::Deliveries => remove_deliveries(&mut tx, ids, before).await?,
            Prunable::Fingerprints => remove_fingerprints(&mut tx, ids, before).await?,
            Prunable::Articles => {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(STORY_LOCK)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "SELECT d.id FROM deliveries d JOIN alerts al ON al.id = d.alert_id
                     WHERE al.article_id = ANY($1) ORDER BY d.id FOR UPDATE OF d",
                )
                .bind(ids)
                .execute(&mut *tx)
                .await?;
                remove_articles(&mut tx, ids, before, "").await?
            }
        };
        tx.commit().await?;
        Ok(removed)
    }
}
