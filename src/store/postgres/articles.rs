//! Articles and their sources: the group write of fetched items.

use super::outbox::insert_stories_and_alerts;
use super::stories::{assign_stories, index_fingerprints};
use super::{DEADLOCK_ATTEMPTS, PgStore, STORY_LOCK, is_deadlock};
use crate::domain::article::{NewArticle, SaveSummary};
use crate::store::group_commit::{GroupWriter, WriteJob};
use crate::store::story_index::{Indexed, StoryIndex};
use crate::store::write::{dedup_key, partition};
use crate::store::{ArticleStore, Incoming, StoreError};
use crate::stories::StorySettings;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row as _;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{Postgres, Transaction};
use std::collections::HashMap;
use std::future::Future;

#[async_trait]
impl ArticleStore for PgStore {
    async fn known_items(
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

impl PgStore {
    /// One transaction for `jobs`. Writers take turns (a transaction-scoped
    /// advisory lock, from the first statement to the commit): the articles
    /// not stored yet are then exactly those this write stores, and two copies
    /// of a wire story stored at the same moment by two instances still make
    /// one story (each would otherwise miss the other's uncommitted row).
    pub(super) async fn write_group_jobs(
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
                Err(StoreError::Database(error))
                    if is_deadlock(&error) && attempt < DEADLOCK_ATTEMPTS =>
                {
                    attempt += 1;
                    tracing::debug!(attempt, "batch chosen as deadlock victim; retrying");
                }
                Err(error) => return Err(error),
            }
        }
    }

    pub(super) async fn try_write_jobs(
        &self,
        index: &mut StoryIndex,
        jobs: &[WriteJob],
    ) -> Result<Vec<SaveSummary>, StoreError> {
        // One round trip for both: a write is the chain every queued poll
        // waits behind, and ~30 of them make a first poll.
        let begin = format!("BEGIN; SELECT pg_advisory_xact_lock({STORY_LOCK})");
        let mut tx = self.pool.begin_with(sqlx::AssertSqlSafe(begin)).await?;
        index.begin_write();
        let (summaries, indexed) = save_group(&mut tx, index, jobs).await?;
        tx.commit().await?;
        index.committed(indexed.members(), indexed.last_seq);
        index.end_write();
        Ok(summaries)
    }
}

/// Stores the batches of a group in one set of statements (one per table, not
/// one per feed): each batch's items are partitioned against what its feed
/// stored before, new articles are decided into stories together (a copy in
/// another batch of the group is found like one earlier in the same batch),
/// and each batch gets its own summary.
pub(super) async fn save_group<'a>(
    tx: &mut Transaction<'static, Postgres>,
    index: &mut StoryIndex,
    jobs: &'a [WriteJob],
) -> Result<(Vec<SaveSummary>, Indexed<'a>), StoreError> {
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

/// `count` article ids and as many story ids, from their sequences: stories
/// are decided before their articles are written, so each article is written
/// once, with its story (an UPDATE afterwards wrote every row twice).
pub(super) async fn allocate_ids(
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

/// Column arrays for an `UNNEST` batch of articles.
#[derive(Default)]
pub(super) struct ArticleColumns<'a> {
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

    /// Binds the columns in declaration order, after the statement's own first ones.
    fn bind_to<'q>(
        &'q self,
        query: Query<'q, Postgres, PgArguments>,
    ) -> Query<'q, Postgres, PgArguments> {
        query
            .bind(&self.title)
            .bind(&self.url)
            .bind(&self.summary_html)
            .bind(&self.summary_text)
            .bind(&self.content_html)
            .bind(&self.content_text)
            .bind(&self.author)
            .bind(&self.language)
            .bind(&self.published_at)
            .bind(&self.updated_at)
    }
}

pub(super) async fn update_changed(
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
    let update = sqlx::query(
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
    .bind(&ids);
    columns.bind_to(update).bind(now).execute(&mut **tx).await?;
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
pub(super) async fn insert_articles(
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
    let insert = sqlx::query(
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
    .bind(&canonical);
    columns.bind_to(insert).bind(now).execute(&mut **tx).await?;
    Ok(())
}

/// The ids of the articles already stored under these dedup keys.
pub(super) async fn article_ids(
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
pub(super) async fn insert_sources(
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

impl GroupWriter for PgStore {
    fn write_jobs<'a>(
        &'a self,
        index: &'a mut StoryIndex,
        jobs: &'a [WriteJob],
    ) -> impl Future<Output = Result<Vec<SaveSummary>, StoreError>> + Send + 'a {
        self.write_group_jobs(index, jobs)
    }
}
