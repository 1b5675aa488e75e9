//! Retention on SQLite (see `store::retention`).
//!
//! Candidates are read outside the write transaction (a WAL reader does not
//! hold up the writer); each batch's `BEGIN IMMEDIATE` transaction then checks
//! them again and removes them, holding the write lock for that batch only.
//!
//! The story fingerprint with the highest `seq` is never removed: writers
//! number their rows past the highest (see `story_index`), and a process that
//! has read that row would miss rows numbered again below it.

use chrono::{DateTime, Utc};
use sqlx::{Sqlite, Transaction};

use super::articles::ids_json;
use super::{SqliteStore, from_text, to_text};
use async_trait::async_trait;

use crate::store::retention::{
    Cursor, FINISHED, Prunable, PrunePolicy, PruneReport, articles_waiting_sql, count,
    prunable_sql, remove_articles, report_from_counts,
};
use crate::store::{RetentionStore, StoreError};

/// The article whose fingerprint has the highest `seq` (see the module's note).
const LAST_FINGERPRINTED: &str =
    "(SELECT article_id FROM story_fingerprints ORDER BY seq DESC LIMIT 1)";

/// A set of ids bound as one JSON array parameter.
fn id_set(parameter: usize) -> String {
    format!("(SELECT value FROM json_each(${parameter}))")
}

async fn count_in(
    tx: &mut Transaction<'static, Sqlite>,
    sql: &str,
    binds: &[&str],
) -> Result<u64, StoreError> {
    let mut query = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned()));
    for bind in binds {
        query = query.bind(*bind);
    }
    Ok(count(query.fetch_one(&mut **tx).await?))
}

/// The finished deliveries among `ids` still past `before`, with their attempts.
async fn remove_deliveries(
    tx: &mut Transaction<'static, Sqlite>,
    ids: &[i64],
    before: DateTime<Utc>,
) -> Result<PruneReport, StoreError> {
    let (ids, before) = (ids_json(ids), to_text(before));
    let still = format!(
        "SELECT id FROM deliveries WHERE id IN {}
         AND status IN ('delivered', 'dead') AND {FINISHED} < $2",
        id_set(1)
    );
    let delivery_attempts = count_in(
        tx,
        &format!("SELECT count(*) FROM delivery_attempts WHERE delivery_id IN ({still})"),
        &[&ids, &before],
    )
    .await?;
    let deliveries = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM deliveries WHERE id IN ({still})"
    )))
    .bind(&ids)
    .bind(&before)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(PruneReport {
        deliveries,
        delivery_attempts,
        ..PruneReport::default()
    })
}

/// The fingerprints among `ids` still past `before`, but the last one.
async fn remove_fingerprints(
    tx: &mut Transaction<'static, Sqlite>,
    ids: &[i64],
    before: DateTime<Utc>,
) -> Result<PruneReport, StoreError> {
    let story_fingerprints = sqlx::query(
        "DELETE FROM story_fingerprints
         WHERE article_id IN (SELECT value FROM json_each($1)) AND seen_at < $2
           AND seq < (SELECT max(seq) FROM story_fingerprints)",
    )
    .bind(ids_json(ids))
    .bind(to_text(before))
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(PruneReport {
        story_fingerprints,
        ..PruneReport::default()
    })
}

#[async_trait]
impl RetentionStore for SqliteStore {
    async fn prune_candidates(
        &self,
        kind: Prunable,
        before: DateTime<Utc>,
        cursor: Option<Cursor>,
        limit: i64,
    ) -> Result<Vec<(i64, DateTime<Utc>)>, StoreError> {
        let sql = kind.candidates_sql(cursor.is_some(), "");
        let (time, id) = cursor.map_or((String::new(), 0), |(time, id)| (to_text(time), id));
        let rows = sqlx::query_as::<_, (i64, String)>(sqlx::AssertSqlSafe(sql))
            .bind(to_text(before))
            .bind(limit)
            .bind(time)
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|(id, time)| Ok((id, from_text(&time)?)))
            .collect()
    }

    async fn remove(
        &self,
        kind: Prunable,
        ids: &[i64],
        before: DateTime<Utc>,
    ) -> Result<PruneReport, StoreError> {
        let mut tx = self.begin_write().await?;
        let removed = match kind {
            Prunable::Deliveries => remove_deliveries(&mut tx, ids, before).await?,
            Prunable::Fingerprints => remove_fingerprints(&mut tx, ids, before).await?,
            Prunable::Articles => {
                remove_articles(
                    &mut tx,
                    ids,
                    before,
                    &format!("AND a.id IS NOT {LAST_FINGERPRINTED}"),
                )
                .await?
            }
        };
        tx.commit().await?;
        Ok(removed)
    }

    async fn articles_waiting(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let waiting: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(articles_waiting_sql()))
            .bind(to_text(before))
            .fetch_one(&self.pool)
            .await?;
        Ok(count(waiting))
    }

    async fn prunable(&self, policy: &PrunePolicy) -> Result<PruneReport, StoreError> {
        let sql = prunable_sql(
            &format!("AND a.id IS NOT {LAST_FINGERPRINTED}"),
            "AND f.seq < (SELECT max(seq) FROM story_fingerprints)",
        );
        let counts: (i64, i64, i64, i64, i64, i64, i64, i64) =
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(policy.articles_before.map(to_text))
                .bind(policy.deliveries_before.map(to_text))
                .bind(policy.fingerprints_before.map(to_text))
                .fetch_one(&self.pool)
                .await?;
        Ok(report_from_counts(counts.into()))
    }
}
