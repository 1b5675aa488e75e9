//! Retention on PostgreSQL (see `store::retention`).
//!
//! Several instances may prune at once. Deliveries and fingerprints are taken
//! with `FOR UPDATE SKIP LOCKED`: rows another pruner holds are left to it. A
//! batch of articles holds the story lock the writers take in turn (stories,
//! their first article and held rules change under it) and locks the
//! deliveries of its articles' alerts, so a `herald alerts retry` cannot
//! reopen one between the check and the delete.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Row, Transaction};

use super::{PgStore, STORY_LOCK, is_deadlock};
use async_trait::async_trait;

use crate::store::retention::{Batch, Cursor, PrunePolicy, PruneReport, StoryRow, plan_stories};
use crate::store::{RetentionStore, StoreError};

/// Attempts at a batch that PostgreSQL aborted as a deadlock victim.
const DEADLOCK_ATTEMPTS: u32 = 3;

/// When a delivery finished (the `deliveries_finished` index's expression).
const FINISHED: &str = "coalesce(delivered_at, last_attempt_at, queued_at)";

/// A delivery of the article's alerts is still to be sent.
const OPEN_DELIVERIES: &str =
    "EXISTS (SELECT 1 FROM alerts al JOIN deliveries d ON d.alert_id = al.id
     WHERE al.article_id = a.id AND d.status IN ('pending', 'failed'))";

/// Candidates past `before`, in (time, id) order from `cursor` on.
async fn candidates(
    store: &PgStore,
    select: &str,
    order: &str,
    before: DateTime<Utc>,
    cursor: Option<Cursor>,
    limit: i64,
) -> Result<Vec<(i64, DateTime<Utc>)>, StoreError> {
    let after = match cursor {
        Some(_) => format!(" AND ({order}) > ($3, $4)"),
        None => " AND $3::timestamptz IS NULL AND $4::int8 IS NULL".to_owned(),
    };
    let sql = format!("{select}{after} ORDER BY {order} LIMIT $2");
    let rows = sqlx::query_as::<_, (i64, DateTime<Utc>)>(sqlx::AssertSqlSafe(sql))
        .bind(before)
        .bind(limit)
        .bind(cursor.map(|(time, _)| time))
        .bind(cursor.map(|(_, id)| id))
        .fetch_all(&store.pool)
        .await?;
    Ok(rows)
}

fn cursor_after(rows: &[(i64, DateTime<Utc>)]) -> Option<Cursor> {
    rows.last().map(|(id, time)| (*time, *id))
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

async fn count_of(
    tx: &mut Transaction<'static, Postgres>,
    sql: &str,
    binds: &[&[i64]],
) -> Result<u64, sqlx::Error> {
    let mut query = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned()));
    for bind in binds {
        query = query.bind(*bind);
    }
    Ok(count(query.fetch_one(&mut **tx).await?))
}

#[async_trait]
impl RetentionStore for PgStore {
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
                 WHERE status IN ('delivered', 'dead') AND {FINISHED} < $1"
            ),
            &format!("{FINISHED}, id"),
            before,
            cursor,
            limit,
        )
        .await?;
        let mut batch = Batch {
            cursor: cursor_after(&rows),
            ..Batch::default()
        };
        if rows.is_empty() {
            return Ok(batch);
        }
        let ids: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
        let mut tx = self.pool.begin().await?;
        // Checked again, locked: `herald alerts retry` may have queued one.
        let locked: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT id FROM deliveries WHERE id = ANY($1)
               AND status IN ('delivered', 'dead') AND {FINISHED} < $2
             FOR UPDATE SKIP LOCKED"
        )))
        .bind(&ids)
        .bind(before)
        .fetch_all(&mut *tx)
        .await?;
        batch.removed.delivery_attempts = count_of(
            &mut tx,
            "SELECT count(*) FROM delivery_attempts WHERE delivery_id = ANY($1)",
            &[&locked],
        )
        .await?;
        batch.removed.deliveries = sqlx::query("DELETE FROM deliveries WHERE id = ANY($1)")
            .bind(&locked)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
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
            "SELECT article_id, seen_at FROM story_fingerprints WHERE seen_at < $1",
            "seen_at, article_id",
            before,
            cursor,
            limit,
        )
        .await?;
        let mut batch = Batch {
            cursor: cursor_after(&rows),
            ..Batch::default()
        };
        if rows.is_empty() {
            return Ok(batch);
        }
        let ids: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
        batch.removed.story_fingerprints = sqlx::query(
            "DELETE FROM story_fingerprints WHERE article_id IN (
                 SELECT article_id FROM story_fingerprints
                 WHERE article_id = ANY($1) AND seen_at < $2
                 FOR UPDATE SKIP LOCKED)",
        )
        .bind(&ids)
        .bind(before)
        .execute(&self.pool)
        .await?
        .rows_affected();
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
            "SELECT id, published_at FROM articles WHERE published_at < $1",
            "published_at, id",
            before,
            cursor,
            limit,
        )
        .await?;
        let mut batch = Batch {
            cursor: cursor_after(&rows),
            ..Batch::default()
        };
        if rows.is_empty() {
            return Ok(batch);
        }
        let ids: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
        let mut attempt = 1;
        loop {
            match self.try_prune_articles(&ids, before).await {
                Ok(removed) => {
                    batch.removed = removed;
                    return Ok(batch);
                }
                Err(error) if is_deadlock(&error) && attempt < DEADLOCK_ATTEMPTS => {
                    attempt += 1;
                    tracing::debug!(
                        attempt,
                        "retention batch chosen as deadlock victim; retrying"
                    );
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Articles published before `before` kept for their open deliveries.
    async fn articles_waiting(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let waiting: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM articles a WHERE a.published_at < $1 AND {OPEN_DELIVERIES}"
        )))
        .bind(before)
        .fetch_one(&self.pool)
        .await?;
        Ok(count(waiting))
    }

    /// What the batches would remove under `policy`, counted in one snapshot.
    async fn prunable(&self, policy: &PrunePolicy) -> Result<PruneReport, StoreError> {
        let with = format!(
            "WITH e AS (
                 SELECT a.id, a.story_id FROM articles a
                 WHERE a.published_at < $1 AND NOT {OPEN_DELIVERIES}),
             gone AS (
                 SELECT s.id FROM stories s WHERE s.id IN (SELECT story_id FROM e)
                 AND NOT EXISTS (SELECT 1 FROM articles a
                                 WHERE a.story_id = s.id AND a.id NOT IN (SELECT id FROM e))),
             al AS (
                 SELECT id FROM alerts
                 WHERE article_id IN (SELECT id FROM e) OR story_id IN (SELECT id FROM gone)),
             d AS (
                 SELECT id FROM deliveries
                 WHERE (status IN ('delivered', 'dead') AND {FINISHED} < $2)
                    OR alert_id IN (SELECT id FROM al)) "
        );
        let sql = format!(
            "{with}SELECT
                (SELECT count(*) FROM e),
                (SELECT count(*) FROM article_sources WHERE article_id IN (SELECT id FROM e)),
                (SELECT count(*) FROM gone),
                (SELECT count(*) FROM al),
                (SELECT count(*) FROM d),
                (SELECT count(*) FROM delivery_attempts WHERE delivery_id IN (SELECT id FROM d)),
                (SELECT count(*) FROM story_fingerprints f
                 WHERE f.seen_at < $3 OR f.article_id IN (SELECT id FROM e)),
                (SELECT count(*) FROM articles a WHERE a.published_at < $1 AND {OPEN_DELIVERIES})"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(policy.articles_before)
            .bind(policy.deliveries_before)
            .bind(policy.fingerprints_before)
            .fetch_one(&self.pool)
            .await?;
        let at = |index: usize| -> Result<u64, StoreError> { Ok(count(row.try_get(index)?)) };
        Ok(PruneReport {
            articles: at(0)?,
            article_sources: at(1)?,
            stories: at(2)?,
            alerts: at(3)?,
            deliveries: at(4)?,
            delivery_attempts: at(5)?,
            story_fingerprints: at(6)?,
            articles_waiting: at(7)?,
        })
    }
}

impl PgStore {
    async fn try_prune_articles(
        &self,
        ids: &[i64],
        before: DateTime<Utc>,
    ) -> Result<PruneReport, sqlx::Error> {
        let mut counted = PruneReport::default();
        let mut tx = self.pool.begin().await?;
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
        let removed: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT a.id FROM articles a
             WHERE a.id = ANY($1) AND a.published_at < $2 AND NOT {OPEN_DELIVERIES}"
        )))
        .bind(ids)
        .bind(before)
        .fetch_all(&mut *tx)
        .await?;
        if removed.is_empty() {
            tx.commit().await?;
            return Ok(counted);
        }
        let stories: Vec<StoryRow> = sqlx::query(
            "SELECT id, first_article_id, held_rules FROM stories
             WHERE id IN (SELECT story_id FROM articles WHERE id = ANY($1))
                OR first_article_id = ANY($1)",
        )
        .bind(&removed)
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
        let story_ids: Vec<i64> = stories.iter().map(|s| s.id).collect();
        let remaining: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT story_id, id FROM articles
             WHERE story_id = ANY($1) AND NOT id = ANY($2)
             ORDER BY published_at, id",
        )
        .bind(&story_ids)
        .bind(&removed)
        .fetch_all(&mut *tx)
        .await?;
        let alerted: Vec<(i64, String)> =
            sqlx::query_as("SELECT story_id, rule FROM alerts WHERE article_id = ANY($1)")
                .bind(&removed)
                .fetch_all(&mut *tx)
                .await?;
        let changes = plan_stories(&stories, &remaining, &alerted);
        let gone = &changes.gone;

        let removed_alerts =
            "SELECT id FROM alerts WHERE article_id = ANY($1) OR story_id = ANY($2)";
        counted.articles = count(i64::try_from(removed.len()).unwrap_or(i64::MAX));
        counted.article_sources = count_of(
            &mut tx,
            "SELECT count(*) FROM article_sources WHERE article_id = ANY($1)",
            &[&removed],
        )
        .await?;
        counted.story_fingerprints = count_of(
            &mut tx,
            "SELECT count(*) FROM story_fingerprints WHERE article_id = ANY($1)",
            &[&removed],
        )
        .await?;
        counted.alerts = count_of(
            &mut tx,
            &format!("SELECT count(*) FROM ({removed_alerts}) AS al"),
            &[&removed, gone],
        )
        .await?;
        counted.deliveries = count_of(
            &mut tx,
            &format!("SELECT count(*) FROM deliveries WHERE alert_id IN ({removed_alerts})"),
            &[&removed, gone],
        )
        .await?;
        counted.delivery_attempts = count_of(
            &mut tx,
            &format!(
                "SELECT count(*) FROM delivery_attempts WHERE delivery_id IN
                 (SELECT id FROM deliveries WHERE alert_id IN ({removed_alerts}))"
            ),
            &[&removed, gone],
        )
        .await?;
        if !changes.kept.is_empty() {
            let mut ids = Vec::with_capacity(changes.kept.len());
            let mut firsts = Vec::with_capacity(changes.kept.len());
            let mut held = Vec::with_capacity(changes.kept.len());
            for (story, first, held_rules) in &changes.kept {
                ids.push(*story);
                firsts.push(*first);
                held.push(held_rules.as_deref());
            }
            sqlx::query(
                "UPDATE stories AS s SET first_article_id = u.f, held_rules = u.h
                 FROM UNNEST($1::int8[], $2::int8[], $3::text[]) AS u(id, f, h)
                 WHERE s.id = u.id",
            )
            .bind(&ids)
            .bind(&firsts)
            .bind(&held)
            .execute(&mut *tx)
            .await?;
        }
        counted.stories = sqlx::query("DELETE FROM stories WHERE id = ANY($1)")
            .bind(gone)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM articles WHERE id = ANY($1)")
            .bind(&removed)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(counted)
    }
}
