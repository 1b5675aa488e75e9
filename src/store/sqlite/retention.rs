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
use sqlx::{Row, Sqlite, Transaction};

use super::articles::ids_json;
use super::{SqliteStore, from_text, to_text};
use async_trait::async_trait;

use crate::store::retention::{Batch, Cursor, PrunePolicy, PruneReport, StoryRow, plan_stories};
use crate::store::{RetentionStore, StoreError};

/// When a delivery finished (the `deliveries_finished` index's expression).
const FINISHED: &str = "coalesce(delivered_at, last_attempt_at, queued_at)";

/// A delivery of the article's alerts is still to be sent.
const OPEN_DELIVERIES: &str =
    "EXISTS (SELECT 1 FROM alerts al JOIN deliveries d ON d.alert_id = al.id
     WHERE al.article_id = a.id AND d.status IN ('pending', 'failed'))";

/// The article whose fingerprint has the highest `seq` (see the module's note).
const LAST_FINGERPRINTED: &str =
    "(SELECT article_id FROM story_fingerprints ORDER BY seq DESC LIMIT 1)";

/// Candidates past `before`, in (time, id) order from `cursor` on.
async fn candidates(
    store: &SqliteStore,
    select: &str,
    order: &str,
    before: DateTime<Utc>,
    cursor: Option<Cursor>,
    limit: i64,
) -> Result<Vec<(i64, String)>, StoreError> {
    let after = match cursor {
        Some(_) => format!(" AND ({order}) > (?2, ?3)"),
        None => String::new(),
    };
    let sql = format!("{select}{after} ORDER BY {order} LIMIT ?4");
    let (time, id) = cursor.map_or((String::new(), 0), |(time, id)| (to_text(time), id));
    let rows = sqlx::query_as::<_, (i64, String)>(sqlx::AssertSqlSafe(sql))
        .bind(to_text(before))
        .bind(time)
        .bind(id)
        .bind(limit)
        .fetch_all(&store.pool)
        .await?;
    Ok(rows)
}

/// The cursor after the last candidate, if any.
fn cursor_after(rows: &[(i64, String)]) -> Result<Option<Cursor>, StoreError> {
    rows.last()
        .map(|(id, time)| Ok((from_text(time)?, *id)))
        .transpose()
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
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

#[async_trait]
impl RetentionStore for SqliteStore {
    /// One batch of finished deliveries past `before`, with their attempts.
    async fn prune_deliveries(
        &self,
        before: DateTime<Utc>,
        cursor: Option<Cursor>,
        limit: i64,
    ) -> Result<Batch, StoreError> {
        let rows = candidates(
            self,
            &format!(
                "SELECT id, {FINISHED} FROM deliveries
                 WHERE status IN ('delivered', 'dead') AND {FINISHED} < ?1"
            ),
            &format!("{FINISHED}, id"),
            before,
            cursor,
            limit,
        )
        .await?;
        let mut batch = Batch {
            cursor: cursor_after(&rows)?,
            ..Batch::default()
        };
        if rows.is_empty() {
            return Ok(batch);
        }
        let ids = ids_json(&rows.iter().map(|(id, _)| *id).collect::<Vec<_>>());
        // Checked again inside: `herald alerts retry` may have queued one since.
        let still = format!(
            "SELECT id FROM deliveries WHERE id IN (SELECT value FROM json_each(?1))
             AND status IN ('delivered', 'dead') AND {FINISHED} < ?2"
        );
        let mut tx = self.begin_write().await?;
        batch.removed.delivery_attempts = count_in(
            &mut tx,
            &format!("SELECT count(*) FROM delivery_attempts WHERE delivery_id IN ({still})"),
            &[&ids, &to_text(before)],
        )
        .await?;
        let deleted = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM deliveries WHERE id IN ({still})"
        )))
        .bind(&ids)
        .bind(to_text(before))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        batch.removed.deliveries = deleted.rows_affected();
        Ok(batch)
    }

    /// One batch of story fingerprints of articles published before `before`.
    async fn prune_fingerprints(
        &self,
        before: DateTime<Utc>,
        cursor: Option<Cursor>,
        limit: i64,
    ) -> Result<Batch, StoreError> {
        let rows = candidates(
            self,
            "SELECT article_id, seen_at FROM story_fingerprints WHERE seen_at < ?1",
            "seen_at, article_id",
            before,
            cursor,
            limit,
        )
        .await?;
        let mut batch = Batch {
            cursor: cursor_after(&rows)?,
            ..Batch::default()
        };
        if rows.is_empty() {
            return Ok(batch);
        }
        let ids = ids_json(&rows.iter().map(|(id, _)| *id).collect::<Vec<_>>());
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query(
            "DELETE FROM story_fingerprints
             WHERE article_id IN (SELECT value FROM json_each(?1)) AND seen_at < ?2
               AND seq < (SELECT max(seq) FROM story_fingerprints)",
        )
        .bind(&ids)
        .bind(to_text(before))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        batch.removed.story_fingerprints = deleted.rows_affected();
        Ok(batch)
    }

    /// One batch of articles published before `before` (see `store::retention`).
    async fn prune_articles(
        &self,
        before: DateTime<Utc>,
        cursor: Option<Cursor>,
        limit: i64,
    ) -> Result<Batch, StoreError> {
        let rows = candidates(
            self,
            "SELECT id, published_at FROM articles WHERE published_at < ?1",
            "published_at, id",
            before,
            cursor,
            limit,
        )
        .await?;
        let mut batch = Batch {
            cursor: cursor_after(&rows)?,
            ..Batch::default()
        };
        if rows.is_empty() {
            return Ok(batch);
        }
        let ids = ids_json(&rows.iter().map(|(id, _)| *id).collect::<Vec<_>>());
        let mut tx = self.begin_write().await?;
        let removed: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT a.id FROM articles a
             WHERE a.id IN (SELECT value FROM json_each(?1)) AND a.published_at < ?2
               AND NOT {OPEN_DELIVERIES} AND a.id IS NOT {LAST_FINGERPRINTED}"
        )))
        .bind(&ids)
        .bind(to_text(before))
        .fetch_all(&mut *tx)
        .await?;
        if removed.is_empty() {
            tx.commit().await?;
            return Ok(batch);
        }
        let removed_json = ids_json(&removed);
        let stories: Vec<StoryRow> = sqlx::query(
            "SELECT id, first_article_id, held_rules FROM stories
             WHERE id IN (SELECT story_id FROM articles
                          WHERE id IN (SELECT value FROM json_each(?1)))
                OR first_article_id IN (SELECT value FROM json_each(?1))",
        )
        .bind(&removed_json)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| {
            Ok(StoryRow {
                id: row.try_get(0)?,
                first_article_id: row.try_get(1)?,
                held_rules: row.try_get(2)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
        let story_ids = ids_json(&stories.iter().map(|s| s.id).collect::<Vec<_>>());
        let remaining: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT story_id, id FROM articles
             WHERE story_id IN (SELECT value FROM json_each(?1)) AND story_id IS NOT NULL
               AND id NOT IN (SELECT value FROM json_each(?2))
             ORDER BY published_at, id",
        )
        .bind(&story_ids)
        .bind(&removed_json)
        .fetch_all(&mut *tx)
        .await?;
        let alerted: Vec<(i64, String)> = sqlx::query_as(
            "SELECT story_id, rule FROM alerts WHERE article_id IN (SELECT value FROM json_each(?1))",
        )
        .bind(&removed_json)
        .fetch_all(&mut *tx)
        .await?;
        let changes = plan_stories(&stories, &remaining, &alerted);
        let gone = ids_json(&changes.gone);

        let removed_alerts = "SELECT id FROM alerts
             WHERE article_id IN (SELECT value FROM json_each(?1))
                OR story_id IN (SELECT value FROM json_each(?2))";
        let counted = &mut batch.removed;
        counted.articles = count(i64::try_from(removed.len()).unwrap_or(i64::MAX));
        counted.article_sources = count_in(
            &mut tx,
            "SELECT count(*) FROM article_sources WHERE article_id IN (SELECT value FROM json_each(?1))",
            &[&removed_json],
        )
        .await?;
        counted.story_fingerprints = count_in(
            &mut tx,
            "SELECT count(*) FROM story_fingerprints WHERE article_id IN (SELECT value FROM json_each(?1))",
            &[&removed_json],
        )
        .await?;
        counted.alerts = count_in(
            &mut tx,
            &format!("SELECT count(*) FROM ({removed_alerts})"),
            &[&removed_json, &gone],
        )
        .await?;
        counted.deliveries = count_in(
            &mut tx,
            &format!("SELECT count(*) FROM deliveries WHERE alert_id IN ({removed_alerts})"),
            &[&removed_json, &gone],
        )
        .await?;
        counted.delivery_attempts = count_in(
            &mut tx,
            &format!(
                "SELECT count(*) FROM delivery_attempts WHERE delivery_id IN
                 (SELECT id FROM deliveries WHERE alert_id IN ({removed_alerts}))"
            ),
            &[&removed_json, &gone],
        )
        .await?;
        for (story, first, held_rules) in &changes.kept {
            sqlx::query("UPDATE stories SET first_article_id = ?2, held_rules = ?3 WHERE id = ?1")
                .bind(story)
                .bind(first)
                .bind(held_rules)
                .execute(&mut *tx)
                .await?;
        }
        counted.stories =
            sqlx::query("DELETE FROM stories WHERE id IN (SELECT value FROM json_each(?1))")
                .bind(&gone)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        sqlx::query("DELETE FROM articles WHERE id IN (SELECT value FROM json_each(?1))")
            .bind(&removed_json)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(batch)
    }

    /// Articles published before `before` kept for their open deliveries.
    async fn articles_waiting(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let waiting: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM articles a WHERE a.published_at < ?1 AND {OPEN_DELIVERIES}"
        )))
        .bind(to_text(before))
        .fetch_one(&self.pool)
        .await?;
        Ok(count(waiting))
    }

    /// What [`SqliteStore::prune_articles`] and the others would remove under
    /// `policy`, counted in one read transaction.
    async fn prunable(&self, policy: &PrunePolicy) -> Result<PruneReport, StoreError> {
        let articles = policy.articles_before.map(to_text);
        let deliveries = policy.deliveries_before.map(to_text);
        let fingerprints = policy.fingerprints_before.map(to_text);
        let with = format!(
            "WITH e AS (
                 SELECT a.id, a.story_id FROM articles a
                 WHERE a.published_at < ?1 AND NOT {OPEN_DELIVERIES}
                   AND a.id IS NOT {LAST_FINGERPRINTED}),
             gone AS (
                 SELECT s.id FROM stories s WHERE s.id IN (SELECT story_id FROM e)
                 AND NOT EXISTS (SELECT 1 FROM articles a
                                 WHERE a.story_id = s.id AND a.id NOT IN (SELECT id FROM e))),
             al AS (
                 SELECT id FROM alerts
                 WHERE article_id IN (SELECT id FROM e) OR story_id IN (SELECT id FROM gone)),
             d AS (
                 SELECT id FROM deliveries
                 WHERE (status IN ('delivered', 'dead') AND {FINISHED} < ?2)
                    OR alert_id IN (SELECT id FROM al)) "
        );
        let counts = [
            "SELECT count(*) FROM e",
            "SELECT count(*) FROM article_sources WHERE article_id IN (SELECT id FROM e)",
            "SELECT count(*) FROM gone",
            "SELECT count(*) FROM al",
            "SELECT count(*) FROM d",
            "SELECT count(*) FROM delivery_attempts WHERE delivery_id IN (SELECT id FROM d)",
            "SELECT count(*) FROM story_fingerprints f
             WHERE (f.seen_at < ?3 AND f.seq < (SELECT max(seq) FROM story_fingerprints))
                OR f.article_id IN (SELECT id FROM e)",
            "SELECT count(*) FROM articles a WHERE a.published_at < ?1 AND {OPEN_DELIVERIES}",
        ];
        // One snapshot for all counts.
        let mut tx = self.pool.begin().await?;
        let mut found = Vec::with_capacity(counts.len());
        for sql in counts {
            let sql = format!(
                "{with}{}",
                sql.replace("{OPEN_DELIVERIES}", OPEN_DELIVERIES)
            );
            let value: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(&articles)
                .bind(&deliveries)
                .bind(&fingerprints)
                .fetch_one(&mut *tx)
                .await?;
            found.push(count(value));
        }
        tx.commit().await?;
        let [
            articles,
            article_sources,
            stories,
            alerts,
            deliveries,
            delivery_attempts,
            story_fingerprints,
            articles_waiting,
        ] = found[..]
        else {
            return Err(StoreError::Corrupt("retention counts".to_owned()));
        };
        Ok(PruneReport {
            articles,
            article_sources,
            stories,
            alerts,
            deliveries,
            delivery_attempts,
            story_fingerprints,
            articles_waiting,
        })
    }
}
