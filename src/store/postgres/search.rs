//! The search index: a tsvector of each article's words under a GIN index,
//! and its backlog.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;

use super::PgStore;
use crate::domain::article::{ArticleCursor, ArticleText};
use crate::rules::IndexQuery;
use crate::store::rows::article_text_from_row;
use crate::store::search::{BacklogText, candidates_then_text, indexed_words, paged};
use crate::store::{SearchStore, StoreError};

const ARTICLE_TEXT: &str = "a.id, a.title, a.summary_text, a.content_text, a.author, a.url,
    a.published_at,
    (SELECT string_agg(s.feed_id::text, ',') FROM article_sources s
     WHERE s.article_id = a.id) AS feed_ids";

/// Later than any stored time: the cursor of a first page.
fn end_of_time() -> DateTime<Utc> {
    DateTime::from_timestamp(253_402_300_799, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[async_trait]
impl SearchStore for PgStore {
    fn search_articles(
        &self,
        query: Option<&IndexQuery>,
        since: DateTime<Utc>,
        after: Option<ArticleCursor>,
    ) -> BoxStream<'_, Result<ArticleText, StoreError>> {
        let (before_time, before_id) = match after {
            Some(cursor) => (cursor.published_at, cursor.id),
            None => (end_of_time(), i64::MAX),
        };
        let pool = self.pool.clone();
        let Some(query) = query else {
            return paged(after, move |after, rows| {
                let pool = pool.clone();
                let (before_time, before_id) = match after {
                    Some(cursor) => (cursor.published_at, cursor.id),
                    None => (end_of_time(), i64::MAX),
                };
                async move {
                    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                        // `published_at <= cursor` on its own lets the time
                        // index start each page at the cursor.
                        "SELECT {ARTICLE_TEXT} FROM articles a
                         WHERE a.published_at >= $1 AND a.published_at <= $2
                           AND (a.published_at, a.id) < ($2, $3)
                         ORDER BY a.published_at DESC, a.id DESC LIMIT $4"
                    )))
                    .bind(since)
                    .bind(before_time)
                    .bind(before_id)
                    .bind(rows)
                    .fetch_all(&pool)
                    .await?;
                    rows.iter().map(article_text_from_row).collect()
                }
            });
        };
        let matching = query.to_tsquery();
        let keys = {
            let pool = pool.clone();
            async move {
                // Candidates first, each article then found by its key: with
                // the window as the outer loop (as the planner picks on stale
                // statistics) a search reads every article of the window.
                Ok(sqlx::query_scalar(
                    "WITH c AS MATERIALIZED (
                         SELECT article_id FROM article_search WHERE words @@ $4::tsquery
                         UNION SELECT article_id FROM search_backlog)
                     SELECT a.id FROM c CROSS JOIN LATERAL (
                         SELECT id, published_at FROM articles a
                         WHERE a.id = c.article_id AND a.published_at >= $1
                           AND (a.published_at, a.id) < ($2, $3)
                         LIMIT 1) AS a
                     ORDER BY a.published_at DESC, a.id DESC",
                )
                .bind(since)
                .bind(before_time)
                .bind(before_id)
                .bind(matching)
                .fetch_all(&pool)
                .await?)
            }
        };
        candidates_then_text(keys, move |ids| {
            let pool = pool.clone();
            async move {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {ARTICLE_TEXT} FROM articles a WHERE a.id = ANY($1)"
                )))
                .bind(ids)
                .fetch_all(&pool)
                .await?;
                rows.iter().map(article_text_from_row).collect()
            }
        })
    }

    async fn index_backlog(&self, limit: usize) -> Result<usize, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Several instances index side by side, each its own rows. An article
        // changed while this transaction runs queues again once it commits:
        // the change's trigger waits on the row deleted here.
        let taken: Vec<i64> = sqlx::query_scalar(
            "DELETE FROM search_backlog WHERE article_id IN (
                 SELECT article_id FROM search_backlog WHERE NOT oversized
                 ORDER BY article_id LIMIT $1 FOR UPDATE SKIP LOCKED)
             RETURNING article_id",
        )
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *tx)
        .await?;
        if taken.is_empty() {
            return Ok(0);
        }
        let rows: Vec<(i64, String, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT id, title, summary_text, content_text FROM articles WHERE id = ANY($1)",
        )
        .bind(&taken)
        .fetch_all(&mut *tx)
        .await?;
        let texts = rows.into_iter().map(BacklogText::from_row).collect();
        let (indexed, oversized) = indexed_words(texts).await?;
        let (ids, words): (Vec<i64>, Vec<String>) = indexed.into_iter().unzip();
        sqlx::query(
            "INSERT INTO article_search (article_id, words)
             SELECT id, array_to_tsvector(string_to_array(w, ' '))
             FROM unnest($1::int8[], $2::text[]) AS u(id, w)
             ON CONFLICT (article_id) DO UPDATE SET words = EXCLUDED.words",
        )
        .bind(&ids)
        .bind(&words)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO search_backlog (article_id, oversized)
             SELECT unnest($1::int8[]), true
             ON CONFLICT (article_id) DO UPDATE SET oversized = true",
        )
        .bind(&oversized)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(taken.len())
    }

    async fn search_backlog(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM search_backlog")
            .fetch_one(&self.pool)
            .await?)
    }
}
