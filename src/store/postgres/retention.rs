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
    ArticleRemoval, Cursor, FINISHED, OPEN_DELIVERIES, Prunable, PrunePolicy, PruneReport,
    StoryRow, articles_waiting_sql, count, counts_with_sql, prunable_sql, remove_articles,
    report_from_counts, report_from_counts_with,
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

/// `column` is in the ids bound as parameter `n`.
fn in_set(column: &str, n: usize) -> String {
    format!("{column} = ANY(${n})")
}

#[async_trait]
impl ArticleRemoval for Transaction<'static, Postgres> {
    async fn removable(
        &mut self,
        ids: &[i64],
        before: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT a.id FROM articles a
             WHERE a.id = ANY($1) AND a.published_at < $2 AND NOT {OPEN_DELIVERIES}"
        )))
        .bind(ids)
        .bind(before)
        .fetch_all(&mut **self)
        .await?)
    }

    async fn stories_of(&mut self, articles: &[i64]) -> Result<Vec<StoryRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, first_article_id, held_rules FROM stories
             WHERE id IN (SELECT story_id FROM articles WHERE id = ANY($1))
                OR first_article_id = ANY($1)",
        )
        .bind(articles)
        .fetch_all(&mut **self)
        .await?)
    }

    async fn remaining(
        &mut self,
        stories: &[i64],
        removed: &[i64],
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT story_id, id FROM articles
             WHERE story_id = ANY($1) AND NOT id = ANY($2)
             ORDER BY published_at, id",
        )
        .bind(stories)
        .bind(removed)
        .fetch_all(&mut **self)
        .await?)
    }

    async fn alerted(&mut self, articles: &[i64]) -> Result<Vec<(i64, String)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT story_id, rule FROM alerts WHERE article_id = ANY($1)")
                .bind(articles)
                .fetch_all(&mut **self)
                .await?,
        )
    }

    async fn count_with(
        &mut self,
        articles: &[i64],
        gone: &[i64],
    ) -> Result<PruneReport, StoreError> {
        let counts: (i64, i64, i64, i64, i64) =
            sqlx::query_as(sqlx::AssertSqlSafe(counts_with_sql(in_set)))
                .bind(articles)
                .bind(gone)
                .fetch_one(&mut **self)
                .await?;
        Ok(report_from_counts_with(counts.into()))
    }

    async fn update_stories(
        &mut self,
        kept: &[(i64, i64, Option<String>)],
    ) -> Result<(), StoreError> {
        let mut ids = Vec::with_capacity(kept.len());
        let mut firsts = Vec::with_capacity(kept.len());
        let mut held = Vec::with_capacity(kept.len());
        for (story, first, held_rules) in kept {
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
        .execute(&mut **self)
        .await?;
        Ok(())
    }

    async fn delete_stories(&mut self, stories: &[i64]) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM stories WHERE id = ANY($1)")
            .bind(stories)
            .execute(&mut **self)
            .await?
            .rows_affected())
    }

    async fn delete_articles(&mut self, articles: &[i64]) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM articles WHERE id = ANY($1)")
            .bind(articles)
            .execute(&mut **self)
            .await?;
        Ok(())
    }
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
                remove_articles(&mut tx, ids, before).await?
            }
        };
        tx.commit().await?;
        Ok(removed)
    }
}
