//! Feeds: configured rows, claims, fetch outcomes.

use super::PgStore;
use crate::domain::feed::{FeedRecord, FeedSpec, FetchRecord, FetchResult};
use crate::store::rows::{feed_from_row, select_feeds};
use crate::store::write::in_configured_order;
use crate::store::{FeedStore, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use sqlx::Connection as _;
use sqlx::postgres::PgPool;

#[async_trait]
impl FeedStore for PgStore {
    async fn sync_feeds(&self, feeds: &[FeedSpec]) -> Result<Vec<FeedRecord>, StoreError> {
        let urls: Vec<&str> = feeds.iter().map(|f| f.url.as_str()).collect();
        let names: Vec<Option<&str>> = feeds.iter().map(|f| f.name.as_deref()).collect();
        // One connection from start to end: a connection handed back to the pool
        // returns in the background, so the next query would open another one
        // (with TLS, ~90 ms: see `connect`).
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        // Sorted so that instances syncing at once lock rows in the same order;
        // rows already as configured are not rewritten, so a restart writes nothing.
        sqlx::query(
            "INSERT INTO feeds (url, fetch_url, name)
             SELECT c.url, c.url, c.name FROM UNNEST($1::text[], $2::text[]) AS c(url, name)
             WHERE NOT EXISTS (SELECT 1 FROM feeds f
                               WHERE f.url = c.url AND f.active
                                 AND f.name IS NOT DISTINCT FROM c.name)
             ORDER BY c.url
             ON CONFLICT (url) DO UPDATE SET name = EXCLUDED.name, active = TRUE",
        )
        .bind(&urls)
        .bind(&names)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE feeds SET active = FALSE
             WHERE active AND url NOT IN (SELECT UNNEST($1::text[]))",
        )
        .bind(&urls)
        .execute(&mut *tx)
        .await?;
        let rows = sqlx::query(select_feeds!("WHERE f.url = ANY($1)"))
            .bind(&urls)
            .fetch(&mut *tx)
            .map(|row| feed_from_row(&row?));
        let synced = in_configured_order(feeds, rows).await?;
        tx.commit().await?;
        Ok(synced)
    }

    async fn claim_due_feeds(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<FeedRecord>, StoreError> {
        // SKIP LOCKED: instances claiming at the same moment take disjoint feeds.
        let ids: Vec<i64> = sqlx::query_scalar(
            "UPDATE feeds SET lease_owner = $1, lease_until = $3
             WHERE id IN (
                SELECT id FROM feeds
                WHERE active AND status <> 'disabled'
                  AND COALESCE(next_fetch_at, '-infinity') <= $2
                  AND (lease_until IS NULL OR lease_until < $2)
                ORDER BY COALESCE(next_fetch_at, '-infinity'), id LIMIT $4
                FOR UPDATE SKIP LOCKED)
             RETURNING id",
        )
        .bind(owner)
        .bind(now)
        .bind(lease_until)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(select_feeds!("WHERE f.id = ANY($1) ORDER BY f.id"))
            .bind(&ids)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(feed_from_row).collect()
    }

    async fn next_feed_due_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT min(GREATEST(COALESCE(next_fetch_at, 'epoch'),
                                 COALESCE(lease_until, 'epoch')))
             FROM feeds WHERE active AND status <> 'disabled'",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    async fn record_fetch(&self, feed_id: i64, record: &FetchRecord) -> Result<(), StoreError> {
        let query = match &record.result {
            FetchResult::Fetched {
                etag,
                last_modified,
                title,
                site_url,
                moved_to,
                error,
            } => sqlx::query(
                "UPDATE feeds SET last_fetch_at = $2, next_fetch_at = $3, status = 'ok',
                    error = $9, failures = 0, last_success_at = $2,
                    lease_owner = NULL, lease_until = NULL,
                    backfilled_at = COALESCE(backfilled_at, $2),
                    etag = $4, last_modified = $5, title = COALESCE($6, title),
                    site_url = COALESCE($7, site_url), fetch_url = COALESCE($8, fetch_url)
                 WHERE id = $1",
            )
            .bind(feed_id)
            .bind(record.at)
            .bind(record.next_fetch_at)
            .bind(etag)
            .bind(last_modified)
            .bind(title)
            .bind(site_url)
            .bind(moved_to)
            .bind(error),
            FetchResult::NotModified => {
                let pool = &self.pool;
                return self
                    .not_modified
                    .submit((feed_id, record.at, record.next_fetch_at), |batch| {
                        record_not_modified(pool, batch)
                    })
                    .await;
            }
            FetchResult::Failed { error } | FetchResult::Gone { error } => {
                let status = if matches!(record.result, FetchResult::Gone { .. }) {
                    "disabled"
                } else {
                    "error"
                };
                sqlx::query(
                    "UPDATE feeds SET last_fetch_at = $2, next_fetch_at = $3, status = $4,
                        error = $5, failures = failures + 1,
                        lease_owner = NULL, lease_until = NULL
                     WHERE id = $1",
                )
                .bind(feed_id)
                .bind(record.at)
                .bind(record.next_fetch_at)
                .bind(status)
                .bind(error)
            }
        };
        query.execute(&self.pool).await?;
        Ok(())
    }
}

/// Records 304s: `(feed id, fetched at, next fetch at)`, one statement for all.
pub(super) async fn record_not_modified(
    pool: &PgPool,
    mut batch: Vec<(i64, DateTime<Utc>, DateTime<Utc>)>,
) -> Result<(), StoreError> {
    // Rows locked in id order, as every other writer of several feed rows.
    batch.sort_by_key(|(id, _, _)| *id);
    let (mut ids, mut at, mut next) = (Vec::new(), Vec::new(), Vec::new());
    for (id, fetched, due) in batch {
        ids.push(id);
        at.push(fetched);
        next.push(due);
    }
    sqlx::query(
        "UPDATE feeds AS f SET last_fetch_at = u.at, next_fetch_at = u.next,
            status = 'not_modified', error = NULL, failures = 0, last_success_at = u.at,
            lease_owner = NULL, lease_until = NULL
         FROM UNNEST($1::int8[], $2::timestamptz[], $3::timestamptz[]) AS u(id, at, next)
         WHERE f.id = u.id",
    )
    .bind(&ids)
    .bind(&at)
    .bind(&next)
    .execute(pool)
    .await?;
    Ok(())
}
