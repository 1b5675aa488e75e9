//! The search index: an FTS5 table of each article's words, and its backlog.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use sqlx::{QueryBuilder, Sqlite};

use super::{ROWS_PER_STATEMENT, SqliteStore, to_text};
use crate::domain::article::{ArticleCursor, ArticleText};
use crate::rules::{IndexQuery, hex_word};
use crate::store::rows::article_text_from_row;
use crate::store::search::{BacklogText, candidates_then_text, indexed_words, paged};
use crate::store::{SearchStore, StoreError};

/// Later than any stored time: the cursor of a first page.
const END_OF_TIME: &str = "9999-12-31T23:59:59.999999Z";

const ARTICLE_TEXT: &str = "a.id, a.title, a.summary_text, a.content_text, a.author, a.url,
    a.published_at,
    (SELECT group_concat(s.feed_id, ',') FROM article_sources s
     WHERE s.article_id = a.id) AS feed_ids";

#[async_trait]
impl SearchStore for SqliteStore {
    fn search_articles(
        &self,
        query: Option<&IndexQuery>,
        since: DateTime<Utc>,
        after: Option<ArticleCursor>,
    ) -> BoxStream<'_, Result<ArticleText, StoreError>> {
        let (before_time, before_id) = match after {
            Some(cursor) => (to_text(cursor.published_at), cursor.id),
            None => (END_OF_TIME.to_owned(), i64::MAX),
        };
        let pool = self.pool.clone();
        let since = to_text(since);
        let Some(query) = query else {
            return paged(after, move |after, rows| {
                let (pool, since) = (pool.clone(), since.clone());
                let (before_time, before_id) = match after {
                    Some(cursor) => (to_text(cursor.published_at), cursor.id),
                    None => (END_OF_TIME.to_owned(), i64::MAX),
                };
                async move {
                    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                        // `published_at <= cursor` on its own lets the time
                        // index start each page at the cursor.
                        "SELECT {ARTICLE_TEXT} FROM articles a
                         WHERE a.published_at >= ?1 AND a.published_at <= ?2
                           AND (a.published_at, a.id) < (?2, ?3)
                         ORDER BY a.published_at DESC, a.id DESC LIMIT ?4"
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
        let matching = query.to_fts5();
        let keys = {
            let pool = pool.clone();
            async move {
                // CROSS JOIN keeps the candidates the outer loop: SQLite would
                // otherwise walk the whole window by time and probe each one.
                Ok(sqlx::query_scalar(
                    "SELECT a.id FROM
                         (SELECT rowid AS id FROM article_search WHERE article_search MATCH ?4
                          UNION SELECT article_id FROM search_backlog) AS c
                     CROSS JOIN articles a ON a.id = c.id
                     WHERE a.published_at >= ?1 AND (a.published_at, a.id) < (?2, ?3)
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
                let ids = serde_json::to_string(&ids).unwrap_or_else(|_| "[]".to_owned());
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {ARTICLE_TEXT} FROM articles a
                     WHERE a.id IN (SELECT value FROM json_each(?1))"
                )))
                .bind(ids)
                .fetch_all(&pool)
                .await?;
                rows.iter().map(article_text_from_row).collect()
            }
        })
    }

    async fn index_backlog(&self, limit: usize) -> Result<usize, StoreError> {
        // One writer at a time: an article changed between reading its text
        // and writing its words would otherwise leave the backlog indexed
        // with its old words.
        let mut tx = self.begin_write().await?;
        let rows: Vec<(i64, String, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT a.id, a.title, a.summary_text, a.content_text
             FROM search_backlog b JOIN articles a ON a.id = b.article_id
             WHERE NOT b.oversized ORDER BY b.article_id LIMIT ?1",
        )
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *tx)
        .await?;
        let taken = rows.len();
        if taken == 0 {
            return Ok(0);
        }
        let texts = rows.into_iter().map(BacklogText::from_row).collect();
        let (indexed, oversized) = indexed_words(texts).await?;
        let ids: Vec<i64> = indexed.iter().map(|(id, _)| *id).collect();
        let ids = serde_json::to_string(&ids).unwrap_or_else(|_| "[]".to_owned());
        // Articles changed since they were indexed drop their old words first.
        sqlx::query("DELETE FROM article_search WHERE rowid IN (SELECT value FROM json_each(?1))")
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        for chunk in indexed.chunks(ROWS_PER_STATEMENT) {
            let mut insert =
                QueryBuilder::<Sqlite>::new("INSERT INTO article_search (rowid, words) ");
            insert.push_values(chunk, |mut row, (id, words)| {
                // FTS5's tokenizer would split or fold the matcher's words;
                // their hex it reads back exactly.
                let hexed: Vec<String> = words.split(' ').map(hex_word).collect();
                row.push_bind(*id).push_bind(hexed.join(" "));
            });
            insert.build().execute(&mut *tx).await?;
        }
        sqlx::query(
            "DELETE FROM search_backlog WHERE article_id IN (SELECT value FROM json_each(?1))",
        )
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
        let oversized = serde_json::to_string(&oversized).unwrap_or_else(|_| "[]".to_owned());
        sqlx::query(
            "UPDATE search_backlog SET oversized = 1
             WHERE article_id IN (SELECT value FROM json_each(?1))",
        )
        .bind(&oversized)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(taken)
    }

    async fn search_backlog(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM search_backlog")
            .fetch_one(&self.pool)
            .await?)
    }
}
