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
use super::{SqliteStore, to_text};
use async_trait::async_trait;

use crate::store::retention::{AlsoKept, FINISHED, Prunable, PruneReport, count, remove_articles};
use crate::store::{RetentionStore, StoreError};

/// Not the article whose fingerprint has the highest `seq` (see the
/// module's note).
const KEPT_ARTICLE: &str =
    "AND a.id IS NOT (SELECT article_id FROM story_fingerprints ORDER BY seq DESC LIMIT 1)";

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
    fn also_kept(&self) -> AlsoKept {
        AlsoKept {
            article: KEPT_ARTICLE,
            fingerprint: "AND f.seq < (SELECT max(seq) FROM story_fingerprints)",
        }
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
            Prunable::Articles => remove_articles(&mut tx, ids, before, KEPT_ARTICLE).await?,
        };
        tx.commit().await?;
        Ok(removed)
    }
}
