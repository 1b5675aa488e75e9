//! PostgreSQL backend: the shared production database, several instances at once.
//!
//! Batches use `UNNEST` arrays (one statement per table per fetch), the fastest
//! insert path measured for PostgreSQL batches. Rows are written in key order so concurrent
//! writers of overlapping batches take unique-index locks in the same order.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, Postgres, Row, Transaction};

use super::assign::{self, Candidate, NewMember, StoryChoice};
use super::group_commit::{Batcher, GroupWriter, WriteJob, WriteQueue};
use super::story_index::{IndexRow, Indexed, StoryIndex};
use super::write_health::WriteHealth;
use super::{
    AlertRecord, ArticleText, AttemptRecord, DeliveryRecord, DeliveryStatus, FeedRecord, FeedSpec,
    FeedStatus, FetchRecord, FetchResult, HeldRules, Incoming, SaveSummary, StoreError,
    StoryRecord, dedup_key, feed_ids_from_list, in_configured_order, matched_from_json,
    matched_json, new_delivery_id, outlets_by_story, partition,
};
use crate::domain::article::{Article, ArticleSource, NewArticle};
use crate::stories::StorySettings;

mod retention;

/// The feed columns every feed query selects, in the order `feed_from_row` reads.
macro_rules! select_feeds {
    ($tail:literal) => {
        concat!(
            "SELECT f.id, f.url, f.fetch_url, f.name, f.title, f.etag, f.last_modified,
                f.status, f.error, f.failures, f.last_fetch_at, f.next_fetch_at,
                f.backfilled_at,
                (SELECT count(*) FROM article_sources s WHERE s.feed_id = f.id) AS articles
             FROM feeds f ",
            $tail
        )
    };
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Attempts at a batch that PostgreSQL aborted as a deadlock victim.
const DEADLOCK_ATTEMPTS: u32 = 3;

/// How long each of [`PgStore::reachable`]'s two looks at the server may take.
const REACH_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// For a connection of its own, outside the pool (see `reachable`).
    options: Arc<PgConnectOptions>,
    /// Band keys of the stored articles in the window; writers of this process
    /// take turns on it, as writers of all processes take turns on `STORY_LOCK`.
    stories: Arc<tokio::sync::Mutex<StoryIndex>>,
    /// Batches waiting for whoever holds `stories` (see `group_commit`).
    writes: WriteQueue,
    /// 304s waiting to be recorded, one statement for all (see `group_commit`).
    not_modified: Batcher<(i64, DateTime<Utc>, DateTime<Utc>)>,
    pub(super) write_health: WriteHealth,
}

impl PgStore {
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        let options: PgConnectOptions = url.parse().map_err(StoreError::Connect)?;
        // herald's statements are short (a feed row, a batch of rows by key);
        // a group write's UNNEST of thousands of rows and the feed list's
        // per-feed counts are costed above `jit_above_cost`, and compiling
        // them took longer than running them (15 ms of JIT for a 5 ms query).
        let options = options.options([("jit", "off")]);
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(30))
            // Only after the handshake: with TLS (`sslmode=prefer`, the default,
            // and a server with `ssl = on`) two handshake messages still wait
            // for delayed ACKs, ~90 ms a connection even on loopback;
            // `sslmode=disable` for a server on the same host avoids it.
            .after_connect(|_, _| {
                Box::pin(async {
                    disable_nagle_on_open_sockets();
                    Ok(())
                })
            })
            .connect_with(options.clone());
        // The pool retries a refused connection until its acquire timeout (30 s)
        // and then says only that it timed out; a connection of its own, opened
        // beside it, says at once why the server cannot be reached.
        let probe = sqlx::PgConnection::connect_with(&options);
        tokio::pin!(pool);
        let pool = tokio::select! {
            opened = &mut pool => opened.map_err(StoreError::Connect)?,
            probed = probe => match probed {
                Err(error) => return Err(StoreError::Connect(error)),
                Ok(connection) => {
                    let _ = connection.close().await;
                    pool.await.map_err(StoreError::Connect)?
                }
            },
        };
        Ok(PgStore {
            pool,
            options: Arc::new(options),
            stories: Arc::default(),
            writes: WriteQueue::default(),
            not_modified: Batcher::default(),
            write_health: WriteHealth::default(),
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// Never the URL: it may carry a password.
    pub(super) fn describe(&self) -> String {
        "the PostgreSQL database".to_owned()
    }

    pub(super) async fn table_names(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = current_schema()",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn sync_feeds(&self, feeds: &[FeedSpec]) -> Result<Vec<FeedRecord>, StoreError> {
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

    pub async fn feed(&self, id: i64) -> Result<Option<FeedRecord>, StoreError> {
        let row = sqlx::query(select_feeds!("WHERE f.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| feed_from_row(&row)).transpose()
    }

    pub async fn feeds(&self) -> Result<Vec<FeedRecord>, StoreError> {
        let rows = sqlx::query(select_feeds!("ORDER BY f.url"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(feed_from_row).collect()
    }

    pub async fn claim_due_feeds(
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
                  AND (next_fetch_at IS NULL OR next_fetch_at <= $2)
                  AND (lease_until IS NULL OR lease_until < $2)
                ORDER BY next_fetch_at NULLS FIRST, id LIMIT $4
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

    pub async fn next_feed_due_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT min(GREATEST(COALESCE(next_fetch_at, 'epoch'),
                                 COALESCE(lease_until, 'epoch')))
             FROM feeds WHERE active AND status <> 'disabled'",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn known_items(
        &self,
        feed_id: i64,
        keys: &[String],
    ) -> Result<HashMap<String, String>, StoreError> {
        let rows = sqlx::query(
            "SELECT item_key, fingerprint FROM article_sources
             WHERE feed_id = $1 AND item_key = ANY($2)",
        )
        .bind(feed_id)
        .bind(keys)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect()
    }

    pub async fn save_articles(
        &self,
        feed_id: i64,
        articles: &[Incoming],
        stories: &StorySettings,
        now: DateTime<Utc>,
    ) -> Result<SaveSummary, StoreError> {
        // The index first, then the database's write lock: in this order a
        // writer never holds one while it waits for the other.
        self.writes
            .save(&self.stories, (feed_id, articles, stories, now), self)
            .await
    }

    /// One transaction for `jobs`. Writers take turns (a transaction-scoped
    /// advisory lock, from the first statement to the commit): the articles
    /// not stored yet are then exactly those this write stores, and two copies
    /// of a wire story stored at the same moment by two instances still make
    /// one story (each would otherwise miss the other's uncommitted row).
    async fn write_group_jobs(
        &self,
        index: &mut StoryIndex,
        jobs: &[WriteJob],
    ) -> Result<Vec<SaveSummary>, StoreError> {
        let mut attempt = 1;
        loop {
            // A failed attempt never reaches `end_write`: the next write's
            // `begin_write` drops what it took into the index.
            match self.try_write_jobs(index, jobs).await {
                Ok(summaries) => return Ok(summaries),
                Err(error) if is_deadlock(&error) && attempt < DEADLOCK_ATTEMPTS => {
                    attempt += 1;
                    tracing::debug!(attempt, "batch chosen as deadlock victim; retrying");
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    async fn try_write_jobs(
        &self,
        index: &mut StoryIndex,
        jobs: &[WriteJob],
    ) -> Result<Vec<SaveSummary>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(STORY_LOCK)
            .execute(&mut *tx)
            .await?;
        index.begin_write();
        let (summaries, indexed) = save_group(&mut tx, index, jobs).await?;
        tx.commit().await?;
        index.committed(indexed.members(), indexed.last_seq);
        index.end_write();
        Ok(summaries)
    }

    pub async fn record_fetch(&self, feed_id: i64, record: &FetchRecord) -> Result<(), StoreError> {
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

    pub async fn article(&self, id: i64) -> Result<Option<Article>, StoreError> {
        let row = sqlx::query(
            "SELECT id, url, canonical_url, title, summary_text, author, language,
                published_at, updated_at, first_seen_at, story_id
             FROM articles WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        self.complete_article(row).await
    }

    pub async fn article_by_canonical_url(&self, url: &str) -> Result<Option<Article>, StoreError> {
        let row = sqlx::query(
            "SELECT id, url, canonical_url, title, summary_text, author, language,
                published_at, updated_at, first_seen_at, story_id
             FROM articles WHERE canonical_url = $1 ORDER BY id LIMIT 1",
        )
        .bind(url)
        .fetch_optional(&self.pool)
        .await?;
        self.complete_article(row).await
    }

    pub async fn count_articles(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM articles")
            .fetch_one(&self.pool)
            .await?)
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn reachable(&self) -> Result<(), StoreError> {
        if let Ok(Ok(())) = tokio::time::timeout(REACH_TIMEOUT, self.ping()).await {
            return Ok(());
        }
        // The pool retries a refused connection until its acquire timeout and then
        // reports only that it timed out; a connection of our own says why. One
        // that answers means the server is up and the pool merely busy.
        let direct = async {
            let mut connection = sqlx::PgConnection::connect_with(&self.options)
                .await
                .map_err(StoreError::Connect)?;
            let answered = sqlx::query("SELECT 1").execute(&mut connection).await;
            let _ = connection.close().await;
            answered.map(drop).map_err(StoreError::Database)
        };
        tokio::time::timeout(REACH_TIMEOUT, direct)
            .await
            .unwrap_or(Err(StoreError::NoAnswer(REACH_TIMEOUT)))
    }

    pub async fn count_feeds_by_status(&self) -> Result<Vec<(FeedStatus, i64)>, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, count(*) FROM feeds GROUP BY status")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|(status, count)| Ok((FeedStatus::parse(&status)?, count)))
            .collect()
    }

    pub async fn count_deliveries_by_status(
        &self,
    ) -> Result<Vec<(DeliveryStatus, i64)>, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, count(*) FROM deliveries GROUP BY status")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|(status, count)| Ok((DeliveryStatus::from_column(&status)?, count)))
            .collect()
    }

    pub fn scan_articles(
        &self,
        since: DateTime<Utc>,
    ) -> BoxStream<'_, Result<ArticleText, StoreError>> {
        sqlx::query(
            "SELECT a.id, a.title, a.summary_text, a.content_text, a.author, a.url,
                a.published_at,
                (SELECT string_agg(s.feed_id::text, ',') FROM article_sources s
                 WHERE s.article_id = a.id) AS feed_ids
             FROM articles a WHERE a.published_at >= $1
             ORDER BY a.published_at DESC, a.id DESC",
        )
        .bind(since)
        .fetch(&self.pool)
        .map(|row| {
            let row = row?;
            Ok(ArticleText {
                id: row.try_get("id")?,
                title: row.try_get("title")?,
                summary: row
                    .try_get::<Option<String>, _>("summary_text")?
                    .unwrap_or_default(),
                content: row
                    .try_get::<Option<String>, _>("content_text")?
                    .unwrap_or_default(),
                author: row
                    .try_get::<Option<String>, _>("author")?
                    .unwrap_or_default(),
                url: row.try_get::<Option<String>, _>("url")?.unwrap_or_default(),
                published_at: row.try_get("published_at")?,
                feed_ids: feed_ids_from_list(
                    row.try_get::<Option<String>, _>("feed_ids")?.as_deref(),
                ),
            })
        })
        .boxed()
    }

    pub async fn count_articles_since(&self, since: DateTime<Utc>) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM articles WHERE published_at >= $1")
                .bind(since)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    pub async fn claim_deliveries(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        fresh_since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        // SKIP LOCKED: concurrent dispatchers take disjoint rows instead of queueing.
        let rows = sqlx::query(
            "WITH claimed AS (
                UPDATE deliveries SET lease_owner = $1, lease_until = $3
                WHERE id IN (
                    SELECT d.id FROM deliveries d
                    WHERE d.status IN ('pending', 'failed') AND d.next_attempt_at <= $2
                      AND (d.lease_until IS NULL OR d.lease_until < $2)
                      AND (d.last_attempt_at IS NULL OR d.last_attempt_at < $5)
                      AND NOT EXISTS (
                        SELECT 1 FROM deliveries o
                        WHERE o.sink = d.sink AND o.status IN ('pending', 'failed')
                          AND o.id < d.id
                          AND (o.next_attempt_at > $2 OR o.lease_until >= $2
                               OR o.last_attempt_at >= $5))
                    ORDER BY d.id LIMIT $4
                    FOR UPDATE OF d SKIP LOCKED)
                RETURNING *)
             SELECT d.*, al.rule, al.matched, al.article_id
             FROM claimed d JOIN alerts al ON al.id = d.alert_id ORDER BY d.id",
        )
        .bind(owner)
        .bind(now)
        .bind(lease_until)
        .bind(limit)
        .bind(fresh_since)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    pub async fn record_attempt(
        &self,
        id: i64,
        owner: &str,
        attempt: &AttemptRecord,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let status = i32::from;
        let updated = sqlx::query(
            "UPDATE deliveries SET status = $3, attempts = attempts + 1, last_attempt_at = $4,
                last_http_status = $5, error = $6, response_excerpt = $7, next_attempt_at = $8,
                delivered_at = CASE WHEN $3 = 'delivered' THEN $4 ELSE delivered_at END,
                lease_owner = NULL, lease_until = NULL
             WHERE id = $1 AND lease_owner = $2
             RETURNING attempts",
        )
        .bind(id)
        .bind(owner)
        .bind(attempt.status.as_str())
        .bind(attempt.at)
        .bind(attempt.http_status.map(status))
        .bind(&attempt.error)
        .bind(&attempt.response_excerpt)
        .bind(attempt.next_attempt_at)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = updated else {
            return Ok(false);
        };
        let number: i32 = row.try_get(0)?;
        sqlx::query(
            "INSERT INTO delivery_attempts (delivery_id, attempt, at, http_status, error,
                response_excerpt, latency_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(number)
        .bind(attempt.at)
        .bind(attempt.http_status.map(status))
        .bind(&attempt.error)
        .bind(&attempt.response_excerpt)
        .bind(attempt.latency_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn deliveries(
        &self,
        status: Option<DeliveryStatus>,
        limit: i64,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT d.*, al.rule, al.matched, al.article_id
             FROM deliveries d JOIN alerts al ON al.id = d.alert_id
             WHERE $1::text IS NULL OR d.status = $1
             ORDER BY d.id DESC LIMIT $2",
        )
        .bind(status.map(DeliveryStatus::as_str))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    pub async fn retry_deliveries(
        &self,
        id: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let result = match id {
            Some(id) => sqlx::query(
                "UPDATE deliveries SET status = 'pending', next_attempt_at = $2, queued_at = $2,
                    lease_owner = NULL, lease_until = NULL
                 WHERE id = $1 AND status IN ('failed', 'dead')",
            )
            .bind(id)
            .bind(now),
            None => sqlx::query(
                "UPDATE deliveries SET status = 'pending', next_attempt_at = $1, queued_at = $1,
                    lease_owner = NULL, lease_until = NULL
                 WHERE status = 'dead'",
            )
            .bind(now),
        }
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
    }

    pub async fn delivery_status(&self, id: i64) -> Result<Option<DeliveryStatus>, StoreError> {
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM deliveries WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        status
            .as_deref()
            .map(DeliveryStatus::from_column)
            .transpose()
    }

    pub async fn release_deliveries(&self, ids: &[i64], owner: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL
             WHERE id = ANY($1) AND lease_owner = $2",
        )
        .bind(ids)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn next_delivery_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT min(GREATEST(next_attempt_at, COALESCE(lease_until, next_attempt_at)))
             FROM deliveries d WHERE status IN ('pending', 'failed')
               AND id = (SELECT min(id) FROM deliveries o
                         WHERE o.sink = d.sink AND o.status IN ('pending', 'failed'))",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// A page of stories with their outlets left empty: [`super::Store::stories`]
    /// adds them.
    pub async fn stories(
        &self,
        since: DateTime<Utc>,
        min_outlets: i64,
        limit: i64,
    ) -> Result<Vec<StoryRecord>, StoreError> {
        let rows = sqlx::query(STORIES_PAGE_PG)
            .bind(since)
            .bind(min_outlets)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        let mut stories = Vec::with_capacity(rows.len());
        for row in &rows {
            stories.push(StoryRecord {
                id: row.try_get("id")?,
                first_seen_at: row.try_get("created_at")?,
                title: row.try_get("title")?,
                url: row.try_get("url")?,
                articles: row.try_get("articles")?,
                outlets: Vec::new(),
            });
        }
        Ok(stories)
    }

    /// Each story's outlets, in the order they first carried it.
    pub async fn outlets_of(
        &self,
        story_ids: &[i64],
    ) -> Result<HashMap<i64, Vec<ArticleSource>>, StoreError> {
        let rows = sqlx::query_as::<_, (i64, String, Option<String>)>(
            "SELECT a.story_id, f.url, COALESCE(f.name, f.title)
             FROM articles a JOIN article_sources src ON src.article_id = a.id
             JOIN feeds f ON f.id = src.feed_id
             WHERE a.story_id = ANY($1)
             GROUP BY a.story_id, f.id
             ORDER BY a.story_id, min(src.first_seen_at), f.url",
        )
        .bind(story_ids)
        .fetch_all(&self.pool)
        .await?;
        Ok(outlets_by_story(rows))
    }

    pub async fn alerts(&self, limit: i64) -> Result<Vec<AlertRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, rule, story_id, article_id, matched, suppressed, created_at
             FROM alerts ORDER BY created_at DESC, id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AlertRecord {
                    id: row.try_get("id")?,
                    rule: row.try_get("rule")?,
                    story_id: row.try_get("story_id")?,
                    article_id: row.try_get("article_id")?,
                    matched: matched_from_json(row.try_get("matched")?),
                    suppressed: row.try_get("suppressed")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    async fn complete_article(&self, row: Option<PgRow>) -> Result<Option<Article>, StoreError> {
        let Some(row) = row else { return Ok(None) };
        let mut article = article_from_row(&row)?;
        let sources = sqlx::query(
            "SELECT f.url, COALESCE(f.name, f.title) FROM article_sources s
             JOIN feeds f ON f.id = s.feed_id
             WHERE s.article_id = $1 ORDER BY s.first_seen_at, f.url",
        )
        .bind(article.id)
        .fetch_all(&self.pool)
        .await?;
        article.feeds = sources
            .iter()
            .map(|row| {
                Ok(ArticleSource {
                    url: row.try_get(0)?,
                    name: row.try_get(1)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        Ok(Some(article))
    }
}

/// Stores the batches of a group in one set of statements (one per table, not
/// one per feed): each batch's items are partitioned against what its feed
/// stored before, new articles are decided into stories together (a copy in
/// another batch of the group is found like one earlier in the same batch),
/// and each batch gets its own summary.
async fn save_group<'a>(
    tx: &mut Transaction<'static, Postgres>,
    index: &mut StoryIndex,
    jobs: &'a [WriteJob],
) -> Result<(Vec<SaveSummary>, Indexed<'a>), sqlx::Error> {
    let (mut feeds, mut keys) = (Vec::new(), Vec::new());
    for job in jobs {
        for item in &job.articles {
            feeds.push(job.feed_id);
            keys.push(item.article.item_key.as_str());
        }
    }
    let known_rows: Vec<(i64, String, i64, String)> = sqlx::query_as(
        "SELECT s.feed_id, s.item_key, s.article_id, s.fingerprint
         FROM UNNEST($1::int8[], $2::text[]) AS u(feed_id, item_key)
         JOIN article_sources s ON s.feed_id = u.feed_id AND s.item_key = u.item_key",
    )
    .bind(&feeds)
    .bind(&keys)
    .fetch_all(&mut **tx)
    .await?;
    let mut known: HashMap<i64, HashMap<String, (i64, String)>> = HashMap::new();
    for (feed, key, article, fingerprint) in known_rows {
        known
            .entry(feed)
            .or_default()
            .insert(key, (article, fingerprint));
    }
    let no_rows = HashMap::new();
    let mut summaries = Vec::with_capacity(jobs.len());
    // Every unseen item: (batch, dedup key, item).
    let mut keyed: Vec<(usize, String, &'a Incoming)> = Vec::new();
    for (position, job) in jobs.iter().enumerate() {
        let mut part = partition(&job.articles, known.get(&job.feed_id).unwrap_or(&no_rows));
        summaries.push(SaveSummary {
            unchanged: part.unchanged,
            updated: part.changed.len(),
            ..SaveSummary::default()
        });
        if !part.changed.is_empty() {
            part.changed.sort_by_key(|(_, id)| *id);
            update_changed(tx, job.feed_id, &part.changed, job.now).await?;
        }
        keyed.extend(
            part.unseen
                .iter()
                .map(|item| (position, dedup_key(job.feed_id, &item.article), *item)),
        );
    }
    let mut indexed = Indexed::default();
    // The group's first poll began earliest: its time is the new articles'
    // `first_seen_at`, which alert latency is measured from.
    let Some(first) = jobs.first() else {
        return Ok((summaries, indexed));
    };
    if keyed.is_empty() {
        return Ok((summaries, indexed));
    }
    let now = first.now;
    let settings = first.settings;
    let dedup_keys: Vec<&str> = keyed.iter().map(|(_, key, _)| key.as_str()).collect();
    let stored = article_ids(tx, &dedup_keys).await?;
    let mut fresh: Vec<(String, &'a Incoming)> = Vec::new();
    let mut fresh_jobs: Vec<usize> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (position, key, item) in &keyed {
        if !stored.contains_key(key) && seen.insert(key.as_str()) {
            fresh.push((key.clone(), *item));
            fresh_jobs.push(*position);
        }
    }
    let fresh_feeds: Vec<i64> = fresh_jobs
        .iter()
        .filter_map(|position| Some(jobs.get(*position)?.feed_id))
        .collect();
    let allocated = allocate_ids(tx, fresh.len()).await?;
    let inserted: Vec<(i64, String)> = allocated
        .iter()
        .zip(&fresh)
        .map(|((article_id, _), (key, _))| (*article_id, key.clone()))
        .collect();
    let story_ids: Vec<i64> = allocated.iter().map(|(_, story)| *story).collect();
    let (stories, starters) = assign_stories(
        tx,
        index,
        &mut indexed,
        &fresh_feeds,
        &fresh,
        &inserted,
        &story_ids,
        &settings,
        now,
    )
    .await?;
    insert_articles(tx, &fresh, &inserted, &stories, now).await?;
    let mut ids = stored;
    ids.extend(inserted.iter().map(|(id, key)| (key.clone(), *id)));
    let sources: Vec<(i64, &str, i64, &str)> = keyed
        .iter()
        .filter_map(|(position, key, item)| {
            Some((
                jobs.get(*position)?.feed_id,
                item.article.item_key.as_str(),
                *ids.get(key)?,
                item.article.fingerprint.as_str(),
            ))
        })
        .collect();
    insert_sources(tx, sources, now).await?;
    index_fingerprints(tx, &mut indexed).await?;
    let recorded =
        insert_stories_and_alerts(tx, &fresh, &inserted, &stories, &starters, now).await?;

    let started: std::collections::HashSet<i64> = starters.iter().map(|(_, a)| *a).collect();
    let job_of_article: HashMap<i64, usize> = inserted
        .iter()
        .zip(&fresh_jobs)
        .map(|((article, _), position)| (*article, *position))
        .collect();
    for (position, _, _) in &keyed {
        if let Some(summary) = summaries.get_mut(*position) {
            summary.merged += 1;
        }
    }
    for ((article, _), position) in inserted.iter().zip(&fresh_jobs) {
        let Some(summary) = summaries.get_mut(*position) else {
            continue;
        };
        summary.merged -= 1;
        summary.inserted.push(*article);
        if !started.contains(article) {
            summary.joined_stories += 1;
        }
        summary.held += recorded.held.get(article).copied().unwrap_or(0);
    }
    for (alert, article) in recorded.alerts {
        if let Some(summary) = job_of_article
            .get(&article)
            .and_then(|position| summaries.get_mut(*position))
        {
            summary.alerts.push(alert);
        }
    }
    for summary in &mut summaries {
        summary.inserted.sort_unstable();
        summary.alerts.sort_unstable();
    }
    Ok((summaries, indexed))
}

/// Records 304s: `(feed id, fetched at, next fetch at)`, one statement for all.
async fn record_not_modified(
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

/// A page of recent stories with their article and outlet counts.
const STORIES_PAGE_PG: &str = "
    SELECT * FROM (
        SELECT s.id, s.created_at, fa.title, fa.url,
            (SELECT count(*) FROM articles a WHERE a.story_id = s.id) AS articles,
            (SELECT count(DISTINCT src.feed_id) FROM articles a
             JOIN article_sources src ON src.article_id = a.id
             WHERE a.story_id = s.id) AS outlets
        FROM stories s JOIN articles fa ON fa.id = s.first_article_id
        WHERE s.created_at >= $1
    ) AS page
    WHERE outlets >= $2
    ORDER BY created_at DESC, id DESC
    LIMIT $3";

/// Any key: write transactions take it in turn (see `PgStore::write_jobs`).
const STORY_LOCK: i64 = 0x6865_7261_6c64_5354; // "heraldST"

/// `count` article ids and as many story ids, from their sequences: stories
/// are decided before their articles are written, so each article is written
/// once, with its story (an UPDATE afterwards wrote every row twice).
async fn allocate_ids(
    tx: &mut Transaction<'static, Postgres>,
    count: usize,
) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    if count == 0 {
        return Ok(Vec::new());
    }
    sqlx::query_as(
        "SELECT nextval('articles_id_seq'), nextval('stories_id_seq')
         FROM generate_series(1, $1)",
    )
    .bind(i64::try_from(count).unwrap_or(i64::MAX))
    .fetch_all(&mut **tx)
    .await
}

/// Puts each new article of this write into a story: the story of its best
/// near-duplicate within the window (stored before, or earlier in this batch),
/// else a new one with the story id allocated beside it. Returns article id →
/// story id and the `(story id, first article id)` of the stories it starts;
/// `indexed` gets the members to store fingerprints for.
#[allow(clippy::too_many_arguments)]
async fn assign_stories<'a>(
    tx: &mut Transaction<'static, Postgres>,
    index: &mut StoryIndex,
    indexed: &mut Indexed<'a>,
    feeds: &[i64],
    fresh: &[(String, &'a Incoming)],
    inserted: &[(i64, String)],
    story_ids: &[i64],
    settings: &StorySettings,
    now: DateTime<Utc>,
) -> Result<(HashMap<i64, i64>, Vec<(i64, i64)>), sqlx::Error> {
    let mut members: Vec<NewMember<'a>> = inserted
        .iter()
        .zip(fresh)
        .zip(feeds)
        .map(|(((article_id, _), (_, item)), feed_id)| NewMember {
            article_id: *article_id,
            feed_id: *feed_id,
            input: item.story.as_ref(),
        })
        .collect();
    let story_of_article: HashMap<i64, i64> = inserted
        .iter()
        .zip(story_ids)
        .map(|((article_id, _), story)| (*article_id, *story))
        .collect();
    assign::sort_members(&mut members);
    let (found, stored) = if members.iter().any(|m| m.input.is_some()) {
        refresh_index(tx, index, &members, settings, now).await?;
        let found: Vec<Vec<i64>> = members
            .iter()
            .map(|m| {
                m.input
                    .map_or_else(Vec::new, |input| index.candidates(input, settings))
            })
            .collect();
        let stored = candidate_rows(tx, &found).await?;
        (found, stored)
    } else {
        (Vec::new(), HashMap::new())
    };
    let choices = assign::plan(&members, &found, &stored, settings);
    let started: HashMap<i64, i64> = members
        .iter()
        .zip(&choices)
        .filter(|(_, choice)| **choice == StoryChoice::Start)
        .filter_map(|(member, _)| {
            Some((
                member.article_id,
                *story_of_article.get(&member.article_id)?,
            ))
        })
        .collect();
    let mut starters: Vec<(i64, i64)> = started.iter().map(|(a, s)| (*s, *a)).collect();
    starters.sort_unstable();
    let stories = assign::resolve(&members, &choices, &started);
    indexed.articles = members
        .iter()
        .filter_map(|m| Some((m.article_id, m.input?)))
        .collect();
    indexed.feeds = members
        .iter()
        .filter(|m| m.input.is_some())
        .map(|m| m.feed_id)
        .collect();
    Ok((stories, starters))
}

/// The stories this write starts, `(story id, first article id)`, with the
/// rules held back on each (JSON, or none).
async fn insert_stories(
    tx: &mut Transaction<'static, Postgres>,
    starters: &[(i64, i64)],
    held: &HashMap<i64, String>,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    if starters.is_empty() {
        return Ok(());
    }
    let (ids, firsts): (Vec<i64>, Vec<i64>) = starters.iter().copied().unzip();
    let held_rules: Vec<Option<&str>> = ids
        .iter()
        .map(|id| held.get(id).map(String::as_str))
        .collect();
    sqlx::query(
        "INSERT INTO stories (id, first_article_id, created_at, held_rules)
         SELECT s, a, $3, h FROM UNNEST($1::int8[], $2::int8[], $4::text[]) AS u(s, a, h)",
    )
    .bind(&ids)
    .bind(&firsts)
    .bind(now)
    .bind(&held_rules)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Brings the story index in step with the database for `members` (under the
/// story lock): the rows other writers committed since, and the part of the
/// members' windows not held yet.
async fn refresh_index(
    tx: &mut Transaction<'static, Postgres>,
    index: &mut StoryIndex,
    members: &[NewMember<'_>],
    settings: &StorySettings,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let refresh = index.refresh_for(
        members.iter().filter_map(|m| Some(m.input?.seen_at)),
        settings,
        now,
    );
    let mut rows = Vec::new();
    if let Some(after) = refresh.after_seq {
        rows.extend(index_rows(
            sqlx::query(
                "SELECT article_id, seen_at, seq, fingerprint FROM story_fingerprints
                 WHERE seq > $1",
            )
            .bind(after)
            .fetch_all(&mut **tx)
            .await?,
        )?);
    }
    if let Some((from, until)) = refresh.range {
        rows.extend(index_rows(
            sqlx::query(
                "SELECT article_id, seen_at, seq, fingerprint FROM story_fingerprints
                 WHERE seen_at >= $1 AND ($2::timestamptz IS NULL OR seen_at < $2)",
            )
            .bind(from)
            .bind(until)
            .fetch_all(&mut **tx)
            .await?,
        )?);
    }
    index.apply(&refresh, &rows);
    Ok(())
}

fn index_rows(rows: Vec<PgRow>) -> Result<Vec<IndexRow>, sqlx::Error> {
    rows.iter()
        .map(|row| {
            Ok(IndexRow {
                article_id: row.try_get(0)?,
                seen_at: row.try_get(1)?,
                seq: row.try_get(2)?,
                fingerprint: row.try_get(3)?,
            })
        })
        .collect()
}

/// The fingerprints and stories of the candidates the index found, each read once.
async fn candidate_rows(
    tx: &mut Transaction<'static, Postgres>,
    found: &[Vec<i64>],
) -> Result<HashMap<i64, Candidate>, sqlx::Error> {
    let mut ids: Vec<i64> = found.iter().flatten().copied().collect();
    ids.sort_unstable();
    ids.dedup();
    let mut stored = HashMap::with_capacity(ids.len());
    if ids.is_empty() {
        return Ok(stored);
    }
    let rows = sqlx::query(
        "SELECT f.article_id, a.story_id, f.feed_id, f.seen_at, f.fingerprint
         FROM story_fingerprints f JOIN articles a ON a.id = f.article_id
         WHERE f.article_id = ANY($1) AND a.story_id IS NOT NULL",
    )
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;
    for row in &rows {
        let bytes: Vec<u8> = row.try_get(4)?;
        if let Some(candidate) =
            Candidate::from_row(row.try_get(1)?, row.try_get(2)?, row.try_get(3)?, &bytes)
        {
            stored.insert(row.try_get(0)?, candidate);
        }
    }
    Ok(stored)
}

/// Stores the new articles' fingerprints, so later articles find them, and
/// notes the highest `seq` written.
async fn index_fingerprints(
    tx: &mut Transaction<'static, Postgres>,
    indexed: &mut Indexed<'_>,
) -> Result<(), sqlx::Error> {
    if indexed.articles.is_empty() {
        return Ok(());
    }
    let (mut ids, mut seen, mut bytes) = (Vec::new(), Vec::new(), Vec::new());
    for (article_id, input) in &indexed.articles {
        ids.push(*article_id);
        seen.push(input.seen_at);
        bytes.push(input.fingerprint.to_bytes());
    }
    // No ON CONFLICT: the articles were inserted by this transaction.
    indexed.last_seq = sqlx::query_scalar(
        "WITH written AS (
             INSERT INTO story_fingerprints (article_id, feed_id, seen_at, fingerprint)
             SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::timestamptz[], $4::bytea[])
             RETURNING seq
         )
         SELECT max(seq) FROM written",
    )
    .bind(&ids)
    .bind(&indexed.feeds)
    .bind(&seen)
    .bind(&bytes)
    .fetch_one(&mut **tx)
    .await?;
    Ok(())
}

/// What recording a write's rule hits did, by article.
#[derive(Debug, Default)]
struct RecordedHits {
    /// `(alert id, article id)` of the alerts created.
    alerts: Vec<(i64, i64)>,
    /// Held-back hits recorded on their story, by article.
    held: HashMap<i64, usize>,
}

/// Writes the stories this write starts and records the rule hits of the
/// articles it stored first: a new story's held-back rules go into its row as
/// it is inserted, not in an update of every new story afterwards.
async fn insert_stories_and_alerts(
    tx: &mut Transaction<'static, Postgres>,
    keyed: &[(String, &Incoming)],
    inserted: &[(i64, String)],
    stories: &HashMap<i64, i64>,
    starters: &[(i64, i64)],
    now: DateTime<Utc>,
) -> Result<RecordedHits, sqlx::Error> {
    let new_stories: std::collections::HashSet<i64> = starters.iter().map(|(s, _)| *s).collect();
    let by_key: HashMap<&str, &Incoming> =
        keyed.iter().map(|(k, item)| (k.as_str(), *item)).collect();
    let mut hit_stories: Vec<i64> = inserted
        .iter()
        .filter(|(_, key)| {
            by_key
                .get(key.as_str())
                .is_some_and(|i| !i.matches.is_empty())
        })
        .filter_map(|(article_id, _)| stories.get(article_id).copied())
        .collect();
    let mut recorded = RecordedHits::default();
    if hit_stories.is_empty() {
        insert_stories(tx, starters, &HashMap::new(), now).await?;
        return Ok(recorded);
    }
    hit_stories.retain(|story| !new_stories.contains(story));
    hit_stories.sort_unstable();
    hit_stories.dedup();
    let held_rows: Vec<(i64, Option<String>)> = if hit_stories.is_empty() {
        Vec::new()
    } else {
        sqlx::query_as("SELECT id, held_rules FROM stories WHERE id = ANY($1)")
            .bind(&hit_stories)
            .fetch_all(&mut **tx)
            .await?
    };
    let mut held = HeldRules::read(held_rows);
    let (mut rules, mut story_ids, mut article_ids, mut matched) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (article_id, key) in inserted {
        let (Some(item), Some(story_id)) = (by_key.get(key.as_str()), stories.get(article_id))
        else {
            continue;
        };
        for hit in &item.matches {
            let before = held.held;
            if !held.alerts(*story_id, &hit.rule, item.suppressed.is_some()) {
                if held.held > before {
                    *recorded.held.entry(*article_id).or_default() += 1;
                }
                continue;
            }
            rules.push(&*hit.rule);
            story_ids.push(*story_id);
            article_ids.push(*article_id);
            matched.push(matched_json(&hit.matched));
        }
    }
    let mut fresh_held: HashMap<i64, String> = HashMap::new();
    let mut changed: Vec<(i64, String)> = Vec::new();
    for (story, json) in held.changed() {
        if new_stories.contains(&story) {
            fresh_held.insert(story, json);
        } else {
            changed.push((story, json));
        }
    }
    insert_stories(tx, starters, &fresh_held, now).await?;
    if !changed.is_empty() {
        let (ids, json): (Vec<i64>, Vec<String>) = changed.into_iter().unzip();
        sqlx::query(
            "UPDATE stories AS s SET held_rules = u.h
             FROM UNNEST($1::int8[], $2::text[]) AS u(id, h) WHERE s.id = u.id",
        )
        .bind(&ids)
        .bind(&json)
        .execute(&mut **tx)
        .await?;
    }
    if rules.is_empty() {
        return Ok(recorded);
    }
    let created: Vec<(i64, String, i64)> = sqlx::query_as(
        "INSERT INTO alerts (rule, story_id, article_id, matched, created_at)
         SELECT r, s, a, m, $5
         FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::text[]) AS u(r, s, a, m)
         ON CONFLICT (rule, story_id) DO NOTHING
         RETURNING id, rule, article_id",
    )
    .bind(&rules)
    .bind(&story_ids)
    .bind(&article_ids)
    .bind(&matched)
    .bind(now)
    .fetch_all(&mut **tx)
    .await?;
    insert_deliveries(tx, keyed, inserted, &created, now).await?;
    recorded.alerts = created
        .into_iter()
        .map(|(id, _, article)| (id, article))
        .collect();
    Ok(recorded)
}

/// One outbox row per sink of each alert that is not held back.
async fn insert_deliveries(
    tx: &mut Transaction<'static, Postgres>,
    keyed: &[(String, &Incoming)],
    inserted: &[(i64, String)],
    created: &[(i64, String, i64)],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let by_key: HashMap<&str, &Incoming> =
        keyed.iter().map(|(k, item)| (k.as_str(), *item)).collect();
    let by_article: HashMap<i64, &Incoming> = inserted
        .iter()
        .filter_map(|(id, key)| Some((*id, *by_key.get(key.as_str())?)))
        .collect();
    let (mut alert_ids, mut sinks, mut delivery_ids) = (Vec::new(), Vec::new(), Vec::new());
    for (alert_id, rule, article_id) in created {
        let Some(item) = by_article.get(article_id) else {
            continue;
        };
        for hit in item.matches.iter().filter(|hit| *hit.rule == **rule) {
            for sink in hit.sinks.iter() {
                alert_ids.push(*alert_id);
                sinks.push(sink.as_str());
                delivery_ids.push(new_delivery_id());
            }
        }
    }
    if alert_ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO deliveries (delivery_id, alert_id, sink, next_attempt_at, created_at,
            queued_at)
         SELECT d, a, s, $4, $4, $4 FROM UNNEST($1::text[], $2::int8[], $3::text[]) AS u(d, a, s)
         ON CONFLICT (alert_id, sink) DO NOTHING",
    )
    .bind(&delivery_ids)
    .bind(&alert_ids)
    .bind(&sinks)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Column arrays for an `UNNEST` batch of articles.
#[derive(Default)]
struct ArticleColumns<'a> {
    title: Vec<&'a str>,
    url: Vec<Option<&'a str>>,
    summary_html: Vec<Option<&'a str>>,
    summary_text: Vec<Option<&'a str>>,
    content_html: Vec<Option<&'a str>>,
    content_text: Vec<Option<&'a str>>,
    author: Vec<Option<&'a str>>,
    language: Vec<Option<&'a str>>,
    published_at: Vec<DateTime<Utc>>,
    updated_at: Vec<Option<DateTime<Utc>>>,
}

impl<'a> ArticleColumns<'a> {
    fn push(&mut self, a: &'a NewArticle) {
        self.title.push(&a.title);
        self.url.push(a.url.as_deref());
        self.summary_html.push(a.summary_html.as_deref());
        self.summary_text.push(a.summary_text.as_deref());
        self.content_html.push(a.content_html.as_deref());
        self.content_text.push(a.content_text.as_deref());
        self.author.push(a.author.as_deref());
        self.language.push(a.language.as_deref());
        self.published_at.push(a.published_at);
        self.updated_at.push(a.updated_at);
    }
}

async fn update_changed(
    tx: &mut Transaction<'static, Postgres>,
    feed_id: i64,
    changed: &[(&NewArticle, i64)],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let mut columns = ArticleColumns::default();
    let mut ids = Vec::with_capacity(changed.len());
    let mut keys = Vec::with_capacity(changed.len());
    let mut fingerprints = Vec::with_capacity(changed.len());
    for (article, id) in changed {
        columns.push(article);
        ids.push(*id);
        keys.push(article.item_key.as_str());
        fingerprints.push(article.fingerprint.as_str());
    }
    sqlx::query(
        "UPDATE articles AS a SET title = u.title, url = u.url,
            summary_html = u.summary_html, summary_text = u.summary_text,
            content_html = u.content_html, content_text = u.content_text,
            author = u.author, language = u.language,
            published_at = u.published_at, updated_at = u.updated_at, changed_at = $12
         FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::text[], $8::text[], $9::text[], $10::timestamptz[], $11::timestamptz[])
              AS u(id, title, url, summary_html, summary_text, content_html, content_text,
                   author, language, published_at, updated_at)
         WHERE a.id = u.id",
    )
    .bind(&ids)
    .bind(&columns.title)
    .bind(&columns.url)
    .bind(&columns.summary_html)
    .bind(&columns.summary_text)
    .bind(&columns.content_html)
    .bind(&columns.content_text)
    .bind(&columns.author)
    .bind(&columns.language)
    .bind(&columns.published_at)
    .bind(&columns.updated_at)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE article_sources AS s SET fingerprint = u.fingerprint, changed_at = $4
         FROM UNNEST($2::text[], $3::text[]) AS u(item_key, fingerprint)
         WHERE s.feed_id = $1 AND s.item_key = u.item_key",
    )
    .bind(feed_id)
    .bind(&keys)
    .bind(&fingerprints)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Inserts the new articles with the ids allocated for them and their stories.
async fn insert_articles(
    tx: &mut Transaction<'static, Postgres>,
    fresh: &[(String, &Incoming)],
    inserted: &[(i64, String)],
    stories: &HashMap<i64, i64>,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    if fresh.is_empty() {
        return Ok(());
    }
    let mut columns = ArticleColumns::default();
    let mut ids = Vec::with_capacity(fresh.len());
    let mut story_ids = Vec::with_capacity(fresh.len());
    let mut dedup_keys = Vec::with_capacity(fresh.len());
    let mut canonical = Vec::with_capacity(fresh.len());
    for ((key, item), (id, _)) in fresh.iter().zip(inserted) {
        let article = &item.article;
        columns.push(article);
        ids.push(*id);
        story_ids.push(stories.get(id).copied());
        dedup_keys.push(key.as_str());
        canonical.push(article.canonical_url.as_deref());
    }
    sqlx::query(
        "INSERT INTO articles (id, story_id, dedup_key, canonical_url, title, url, summary_html,
            summary_text, content_html, content_text, author, language, published_at,
            updated_at, first_seen_at, changed_at)
         SELECT i, s, k, c, t, u, sh, st, ch, ct, au, la, pa, ua, $15, $15
         FROM UNNEST($1::int8[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[],
                     $13::timestamptz[], $14::timestamptz[])
              AS u(i, s, k, c, t, u, sh, st, ch, ct, au, la, pa, ua)",
    )
    .bind(&ids)
    .bind(&story_ids)
    .bind(&dedup_keys)
    .bind(&canonical)
    .bind(&columns.title)
    .bind(&columns.url)
    .bind(&columns.summary_html)
    .bind(&columns.summary_text)
    .bind(&columns.content_html)
    .bind(&columns.content_text)
    .bind(&columns.author)
    .bind(&columns.language)
    .bind(&columns.published_at)
    .bind(&columns.updated_at)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The ids of the articles already stored under these dedup keys.
async fn article_ids(
    tx: &mut Transaction<'static, Postgres>,
    dedup_keys: &[&str],
) -> Result<HashMap<String, i64>, sqlx::Error> {
    let rows = sqlx::query("SELECT dedup_key, id FROM articles WHERE dedup_key = ANY($1)")
        .bind(dedup_keys)
        .fetch_all(&mut **tx)
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
}

/// Links each item to its article: `(feed id, item key, article id, fingerprint)`.
async fn insert_sources(
    tx: &mut Transaction<'static, Postgres>,
    mut rows: Vec<(i64, &str, i64, &str)>,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    // Key order, as every writer of these rows, so overlapping writes lock alike.
    rows.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let feeds: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let item_keys: Vec<&str> = rows.iter().map(|r| r.1).collect();
    let article_ids: Vec<i64> = rows.iter().map(|r| r.2).collect();
    let fingerprints: Vec<&str> = rows.iter().map(|r| r.3).collect();
    sqlx::query(
        "INSERT INTO article_sources (feed_id, item_key, article_id, fingerprint, first_seen_at,
            changed_at)
         SELECT d, k, a, f, $5, $5
         FROM UNNEST($1::int8[], $2::text[], $3::int8[], $4::text[]) AS u(d, k, a, f)
         ON CONFLICT (feed_id, item_key) DO NOTHING",
    )
    .bind(&feeds)
    .bind(&item_keys)
    .bind(&article_ids)
    .bind(&fingerprints)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// sqlx 0.9.0 no longer sets TCP_NODELAY on its sockets (sqlx issue #4335, fixed
/// upstream but not released). Without it, every statement whose message spans more
/// than one TCP segment (any batch insert) waits ~40 ms for the server's delayed ACK:
/// measured here, a 500-article batch took 200 ms instead of 90 ms. sqlx offers no
/// hook to the socket, so each new connection sets the option on every socket the
/// process has open. That is harmless for the others (hyper sets it on its own HTTP
/// sockets anyway) and fails without effect on files and non-TCP sockets. Remove once
/// sqlx sets it again.
fn disable_nagle_on_open_sockets() {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<i32>().ok())
        else {
            continue;
        };
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
        if !is_socket {
            continue;
        }
        let on: libc::c_int = 1;
        // SAFETY: setsockopt only reads `on` for the length given. If `fd` was closed
        // or reused since it was listed, the call fails (EBADF, ENOTSOCK, ENOPROTOOPT)
        // and changes nothing; the result is deliberately ignored.
        unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}

fn is_deadlock(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "40P01")
}

fn feed_from_row(row: &PgRow) -> Result<FeedRecord, StoreError> {
    let failures: i32 = row.try_get("failures")?;
    Ok(FeedRecord {
        id: row.try_get("id")?,
        url: row.try_get("url")?,
        fetch_url: row.try_get("fetch_url")?,
        name: row.try_get("name")?,
        title: row.try_get("title")?,
        etag: row.try_get("etag")?,
        last_modified: row.try_get("last_modified")?,
        status: FeedStatus::parse(row.try_get("status")?)?,
        error: row.try_get("error")?,
        failures: u32::try_from(failures).unwrap_or(0),
        last_fetch_at: row.try_get("last_fetch_at")?,
        next_fetch_at: row.try_get("next_fetch_at")?,
        backfilled_at: row.try_get("backfilled_at")?,
        articles: row.try_get("articles")?,
    })
}

fn delivery_from_row(row: &PgRow) -> Result<DeliveryRecord, StoreError> {
    let status: String = row.try_get("status")?;
    let attempts: i32 = row.try_get("attempts")?;
    let http: Option<i32> = row.try_get("last_http_status")?;
    Ok(DeliveryRecord {
        id: row.try_get("id")?,
        delivery_id: row.try_get("delivery_id")?,
        alert_id: row.try_get("alert_id")?,
        sink: row.try_get("sink")?,
        status: DeliveryStatus::from_column(&status)?,
        attempts: u32::try_from(attempts).unwrap_or(0),
        next_attempt_at: row.try_get("next_attempt_at")?,
        last_attempt_at: row.try_get("last_attempt_at")?,
        last_http_status: http.and_then(|code| u16::try_from(code).ok()),
        error: row.try_get("error")?,
        response_excerpt: row.try_get("response_excerpt")?,
        created_at: row.try_get("created_at")?,
        queued_at: row.try_get("queued_at")?,
        rule: row.try_get("rule")?,
        matched: matched_from_json(row.try_get("matched")?),
        article_id: row.try_get("article_id")?,
    })
}

fn article_from_row(row: &PgRow) -> Result<Article, StoreError> {
    Ok(Article {
        id: row.try_get("id")?,
        url: row.try_get("url")?,
        canonical_url: row.try_get("canonical_url")?,
        title: row.try_get("title")?,
        summary: row.try_get("summary_text")?,
        author: row.try_get("author")?,
        language: row.try_get("language")?,
        published_at: row.try_get("published_at")?,
        updated_at: row.try_get("updated_at")?,
        first_seen_at: row.try_get("first_seen_at")?,
        feeds: Vec::new(),
        story_id: row.try_get("story_id")?,
    })
}

impl GroupWriter for PgStore {
    fn write_jobs<'a>(
        &'a self,
        index: &'a mut StoryIndex,
        jobs: &'a [WriteJob],
    ) -> impl Future<Output = Result<Vec<SaveSummary>, StoreError>> + Send + 'a {
        self.write_group_jobs(index, jobs)
    }
}
