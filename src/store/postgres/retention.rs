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

use crate::store::retention::{
    Cursor, FINISHED, Prunable, PrunePolicy, PruneReport, articles_waiting_sql, count,
    prunable_sql, remove_articles, report_from_counts,
};
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
    async fn prune_candidates(
        &self,
        kind: Prunable,
        before: DateTime<Utc>,
        cursor: Option<Cursor>,
        limit: i64,
    ) -> Result<Vec<(i64, DateTime<Utc>)>, StoreError> {
        let sql = kind.candidates_sql(
            cursor.is_some(),
            " AND $3::timestamptz IS NULL AND $4::int8 IS NULL",
        );
        Ok(
            sqlx::query_as::<_, (i64, DateTime<Utc>)>(sqlx::AssertSqlSafe(sql))
                .bind(before)
                .bind(limit)
                .bind(cursor.map(|(time, _)| time))
                .bind(cursor.map(|(_, id)| id))
                .fetch_all(&self.pool)
                .await?,
        )
    }

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

    async fn articles_waiting(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let waiting: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(articles_waiting_sql()))
            .bind(before)
            .fetch_one(&self.pool)
            .await?;
        Ok(count(waiting))
    }

    async fn prunable(&self, policy: &PrunePolicy) -> Result<PruneReport, StoreError> {
        let counts: (i64, i64, i64, i64, i64, i64, i64, i64) =
            sqlx::query_as(sqlx::AssertSqlSafe(prunable_sql("", "")))
                .bind(policy.articles_before)
                .bind(policy.deliveries_before)
                .bind(policy.fingerprints_before)
                .fetch_one(&self.pool)
                .await?;
        Ok(report_from_counts(counts.into()))
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
