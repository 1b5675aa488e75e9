//! Articles and their sources: the group write of fetched items.

use super::outbox::insert_alerts;
use super::stories::{assign_stories, read_held_rules};
use super::{ROWS_PER_STATEMENT, SqliteStore, WAL_CHECKPOINT_BYTES, to_text};
use crate::domain::article::SaveSummary;
use crate::store::group_commit::{GroupWriter, WriteJob};
use crate::store::story_index::{Indexed, StoryIndex};
use crate::store::write::{dedup_key, partition};
use crate::store::{ArticleStore, Incoming, StoreError};
use crate::stories::assign::NewMember;
use crate::stories::{StorySettings, assign};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Sqlite, Transaction};
use std::collections::HashMap;
use std::future::Future;

#[async_trait]
impl ArticleStore for SqliteStore {
    async fn known_items(
        &self,
        feed_id: i64,
        keys: &[String],
    ) -> Result<HashMap<String, String>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut known = HashMap::new();
        for key in keys {
            let fingerprint: Option<String> = sqlx::query_scalar(
                "SELECT fingerprint FROM article_sources WHERE feed_id = ?1 AND item_key = ?2",
            )
            .bind(feed_id)
            .bind(key)
            .fetch_optional(&mut *conn)
            .await?;
            if let Some(fingerprint) = fingerprint {
                known.insert(key.clone(), fingerprint);
            }
        }
        Ok(known)
    }

    async fn save_articles(
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
}

impl SqliteStore {
    /// One transaction for `jobs`; `BEGIN IMMEDIATE` makes writers take turns.
    /// A failed write never reaches `end_write`: the next write's
    /// `begin_write` drops what it took into the index.
    pub(super) async fn write_group_jobs(
        &self,
        index: &mut StoryIndex,
        jobs: &[WriteJob],
    ) -> Result<Vec<SaveSummary>, StoreError> {
        let mut tx = self.begin_write().await?;
        index.begin_write();
        let mut summaries = Vec::with_capacity(jobs.len());
        for job in jobs {
            let (summary, indexed) = save_in(
                &mut tx,
                index,
                job.feed_id,
                &job.articles,
                &job.settings,
                job.now,
            )
            .await?;
            // Taken in at once, so the next batch of this transaction finds
            // them; `begin_write` drops the index if the commit never comes.
            index.committed(indexed.members(), indexed.last_seq);
            summaries.push(summary);
        }
        tx.commit().await?;
        index.end_write();
        // Still this process's only writer (the index is held), so its own
        // writers wait while the log is emptied.
        self.bound_write_ahead_log().await;
        Ok(summaries)
    }

    pub(super) async fn bound_write_ahead_log(&self) {
        let Some(path) = &self.path else {
            return;
        };
        let mut wal = path.clone().into_os_string();
        wal.push("-wal");
        if std::fs::metadata(&wal).map_or(0, |meta| meta.len()) <= WAL_CHECKPOINT_BYTES {
            return;
        }
        // TRUNCATE waits (up to the busy timeout) for readers of older
        // snapshots to finish; new readers are not held up.
        let checkpoint: Result<(i64, i64, i64), _> =
            sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(&self.pool)
                .await;
        match checkpoint {
            Ok((0, _, _)) => {}
            Ok((_, log, copied)) => tracing::debug!(
                log,
                copied,
                "write-ahead log checkpoint incomplete: readers still busy"
            ),
            Err(error) => tracing::warn!(%error, "cannot checkpoint the write-ahead log"),
        }
    }
}

/// Inserts the articles not stored yet; returns dedup key → id of the rows
/// this write created.
pub(super) async fn insert_articles(
    tx: &mut Transaction<'static, Sqlite>,
    keyed: &[(String, &Incoming)],
    now_text: &str,
) -> Result<HashMap<String, i64>, StoreError> {
    let mut inserted = HashMap::with_capacity(keyed.len());
    for chunk in keyed.chunks(ROWS_PER_STATEMENT) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO articles (dedup_key, canonical_url, title, url, summary_html,
                summary_text, content_html, content_text, author, language, published_at,
                updated_at, first_seen_at, changed_at) ",
        );
        insert.push_values(chunk, |mut row, (key, item)| {
            let article = &item.article;
            row.push_bind(key.as_str())
                .push_bind(article.canonical_url.as_deref())
                .push_bind(article.title.as_str())
                .push_bind(article.url.as_deref())
                .push_bind(article.summary_html.as_deref())
                .push_bind(article.summary_text.as_deref())
                .push_bind(article.content_html.as_deref())
                .push_bind(article.content_text.as_deref())
                .push_bind(article.author.as_deref())
                .push_bind(article.language.as_deref())
                .push_bind(to_text(article.published_at))
                .push_bind(article.updated_at.map(to_text))
                .push_bind(now_text)
                .push_bind(now_text);
        });
        insert.push(" ON CONFLICT (dedup_key) DO NOTHING RETURNING dedup_key, id");
        let rows: Vec<(String, i64)> = insert.build_query_as().fetch_all(&mut **tx).await?;
        inserted.extend(rows);
    }
    Ok(inserted)
}

pub(super) async fn save_in<'a>(
    tx: &mut Transaction<'static, Sqlite>,
    index: &mut StoryIndex,
    feed_id: i64,
    articles: &'a [Incoming],
    settings: &StorySettings,
    now: DateTime<Utc>,
) -> Result<(SaveSummary, Indexed<'a>), StoreError> {
    let now_text = to_text(now);
    let keys: Vec<&str> = articles
        .iter()
        .map(|item| item.article.item_key.as_str())
        .collect();
    let rows: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT item_key, article_id, fingerprint FROM article_sources
         WHERE feed_id = ?1 AND item_key IN (SELECT value FROM json_each(?2))",
    )
    .bind(feed_id)
    .bind(serde_json::to_string(&keys).unwrap_or_else(|_| "[]".to_owned()))
    .fetch_all(&mut **tx)
    .await?;
    let known: HashMap<String, (i64, String)> = rows
        .into_iter()
        .map(|(key, id, fingerprint)| (key, (id, fingerprint)))
        .collect();
    let part = partition(articles, &known);
    let mut summary = SaveSummary {
        unchanged: part.unchanged,
        updated: part.changed.len(),
        ..SaveSummary::default()
    };
    for (article, id) in &part.changed {
        sqlx::query(
            "UPDATE articles SET title = ?2, url = ?3, summary_html = ?4, summary_text = ?5,
                content_html = ?6, content_text = ?7, author = ?8, language = ?9,
                published_at = ?10, updated_at = ?11, changed_at = ?12
             WHERE id = ?1",
        )
        .bind(id)
        .bind(&article.title)
        .bind(&article.url)
        .bind(&article.summary_html)
        .bind(&article.summary_text)
        .bind(&article.content_html)
        .bind(&article.content_text)
        .bind(&article.author)
        .bind(&article.language)
        .bind(to_text(article.published_at))
        .bind(article.updated_at.map(to_text))
        .bind(&now_text)
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "UPDATE article_sources SET fingerprint = ?3, changed_at = ?4
             WHERE feed_id = ?1 AND item_key = ?2",
        )
        .bind(feed_id)
        .bind(&article.item_key)
        .bind(&article.fingerprint)
        .bind(&now_text)
        .execute(&mut **tx)
        .await?;
    }
    let keyed: Vec<(String, &'a Incoming)> = part
        .unseen
        .iter()
        .map(|item| (dedup_key(feed_id, &item.article), *item))
        .collect();
    let inserted = insert_articles(tx, &keyed, &now_text).await?;
    // The first item of each new article stores it; later ones with the same
    // canonical URL are further sources of it.
    let mut stored_first: Vec<(i64, &'a Incoming)> = Vec::new();
    let mut claimed = std::collections::HashSet::new();
    for (key, item) in &keyed {
        if let Some(id) = inserted.get(key)
            && claimed.insert(*id)
        {
            stored_first.push((*id, *item));
        }
    }
    let mut ids = inserted;
    let missing: Vec<&str> = keyed
        .iter()
        .map(|(key, _)| key.as_str())
        .filter(|key| !ids.contains_key(*key))
        .collect();
    if !missing.is_empty() {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT dedup_key, id FROM articles
             WHERE dedup_key IN (SELECT value FROM json_each(?1))",
        )
        .bind(serde_json::to_string(&missing).unwrap_or_else(|_| "[]".to_owned()))
        .fetch_all(&mut **tx)
        .await?;
        ids.extend(rows);
    }
    summary.merged = keyed.len() - stored_first.len();
    let sources: Vec<(&str, i64, &str)> = keyed
        .iter()
        .filter_map(|(key, item)| {
            let id = ids.get(key)?;
            Some((
                item.article.item_key.as_str(),
                *id,
                item.article.fingerprint.as_str(),
            ))
        })
        .collect();
    for chunk in sources.chunks(ROWS_PER_STATEMENT) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO article_sources (feed_id, item_key, article_id, fingerprint,
                first_seen_at, changed_at) ",
        );
        insert.push_values(chunk, |mut row, (item_key, article_id, fingerprint)| {
            row.push_bind(feed_id)
                .push_bind(*item_key)
                .push_bind(*article_id)
                .push_bind(*fingerprint)
                .push_bind(now_text.as_str())
                .push_bind(now_text.as_str());
        });
        insert.push(" ON CONFLICT (feed_id, item_key) DO NOTHING");
        insert.build().execute(&mut **tx).await?;
    }
    let mut members: Vec<NewMember<'_>> = stored_first
        .iter()
        .map(|(article_id, item)| NewMember {
            article_id: *article_id,
            feed_id,
            input: item.story.as_ref(),
        })
        .collect();
    assign::sort_members(&mut members);
    let (stories, joined, indexed) =
        assign_stories(tx, index, &members, settings, now, &now_text).await?;
    summary.joined_stories = joined;
    let mut held = read_held_rules(tx, &stored_first, &stories).await?;
    summary.inserted = stored_first.iter().map(|(id, _)| *id).collect();
    summary.alerts = insert_alerts(tx, &mut held, &stored_first, &stories, &now_text).await?;
    for chunk in held.changed().chunks(ROWS_PER_STATEMENT) {
        sqlx::query(
            "UPDATE stories SET held_rules = json_extract(u.value, '$[1]')
             FROM json_each(?1) AS u WHERE stories.id = json_extract(u.value, '$[0]')",
        )
        .bind(serde_json::to_string(chunk).unwrap_or_else(|_| "[]".to_owned()))
        .execute(&mut **tx)
        .await?;
    }
    summary.held = held.held;
    Ok((summary, indexed))
}

/// Ids as a JSON array, for `json_each`: one bound parameter however many ids.
pub(super) fn ids_json(ids: &[i64]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".to_owned())
}

impl GroupWriter for SqliteStore {
    fn write_jobs<'a>(
        &'a self,
        index: &'a mut StoryIndex,
        jobs: &'a [WriteJob],
    ) -> impl Future<Output = Result<Vec<SaveSummary>, StoreError>> + Send + 'a {
        self.write_group_jobs(index, jobs)
    }
}
