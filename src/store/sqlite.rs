//! SQLite backend: the embedded zero-set-up default, one instance per file.
//!
//! Write transactions start with `BEGIN IMMEDIATE`: a deferred transaction that reads
//! first and writes later can fail with SQLITE_BUSY when another writer got in between,
//! which no busy timeout can resolve. Taking the write lock up front makes concurrent
//! pollers queue on the busy timeout instead. Rows are written one statement each:
//! inside one transaction SQLite's per-row cost is a few microseconds.

use std::collections::HashMap;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Connection, QueryBuilder, Row, Sqlite, Transaction};

use super::assign::{self, Candidate, NewMember, StoryChoice, StoryInput};
use super::group_commit::{Batcher, GroupWriter, WriteJob, WriteQueue};
use super::story_index::{IndexRow, Indexed, StoryIndex};
use super::write_health::WriteHealth;
use super::{
    AlertRecord, ArticleText, AttemptRecord, DeliveryRecord, DeliveryStatus, FeedRecord, FeedSpec,
    FeedStatus, FetchRecord, FetchResult, HeldRules, Incoming, InstanceLock, SaveSummary,
    StoreError, StoryRecord, dedup_key, feed_ids_from_list, in_configured_order, matched_from_json,
    matched_json, new_delivery_id, outlets_by_story, partition,
};
use crate::domain::article::{Article, ArticleSource};
use crate::stories::StorySettings;

mod retention;

/// Puts each article this write stored first into a story (see
/// `postgres::assign_stories`; `BEGIN IMMEDIATE` already makes writers take
/// turns here), and stores its fingerprint. Returns article id → story id, how
/// many joined a story they did not start, and what to add to the index once
/// the write has committed.
async fn assign_stories<'a>(
    tx: &mut Transaction<'static, Sqlite>,
    index: &mut StoryIndex,
    members: &[NewMember<'a>],
    settings: &StorySettings,
    now: DateTime<Utc>,
    now_text: &str,
) -> Result<(HashMap<i64, i64>, usize, Indexed<'a>), StoreError> {
    let mut indexed = Indexed::default();
    let (found, stored) = if members.iter().any(|m| m.input.is_some()) {
        refresh_index(tx, index, members, settings, now).await?;
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
    let choices = assign::plan(members, &found, &stored, settings);
    let starters: Vec<i64> = members
        .iter()
        .zip(&choices)
        .filter(|(_, choice)| **choice == StoryChoice::Start)
        .map(|(member, _)| member.article_id)
        .collect();
    let mut started = HashMap::with_capacity(starters.len());
    for chunk in starters.chunks(ROWS_PER_STATEMENT) {
        let mut insert =
            QueryBuilder::<Sqlite>::new("INSERT INTO stories (first_article_id, created_at) ");
        insert.push_values(chunk, |mut row, article_id| {
            row.push_bind(*article_id).push_bind(now_text);
        });
        insert.push(" RETURNING first_article_id, id");
        let rows: Vec<(i64, i64)> = insert.build_query_as().fetch_all(&mut **tx).await?;
        started.extend(rows);
    }
    let stories = assign::resolve(members, &choices, &started);
    let pairs: Vec<[i64; 2]> = stories.iter().map(|(a, s)| [*a, *s]).collect();
    sqlx::query(
        "UPDATE articles SET story_id = json_extract(u.value, '$[1]')
         FROM json_each(?1) AS u WHERE articles.id = json_extract(u.value, '$[0]')",
    )
    .bind(serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".to_owned()))
    .execute(&mut **tx)
    .await?;
    let fingerprinted: Vec<(&NewMember<'a>, &'a StoryInput)> =
        members.iter().filter_map(|m| Some((m, m.input?))).collect();
    if !fingerprinted.is_empty() {
        // seq: past the highest, under the write lock, so it follows commit
        // order (see `story_index`).
        let highest: i64 =
            sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM story_fingerprints")
                .fetch_one(&mut **tx)
                .await?;
        let mut seq = highest;
        for chunk in fingerprinted.chunks(ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO story_fingerprints (article_id, feed_id, seen_at, fingerprint, seq) ",
            );
            insert.push_values(chunk, |mut row, (member, input)| {
                seq += 1;
                row.push_bind(member.article_id)
                    .push_bind(member.feed_id)
                    .push_bind(to_text(input.seen_at))
                    .push_bind(input.fingerprint.to_bytes())
                    .push_bind(seq);
            });
            insert.build().execute(&mut **tx).await?;
        }
        indexed.last_seq = Some(seq);
        indexed.articles = fingerprinted
            .iter()
            .map(|(member, input)| (member.article_id, *input))
            .collect();
    }
    let joined = members.len() - started.len();
    Ok((stories, joined, indexed))
}

/// Brings the story index in step with the database for `members` (see
/// `postgres::refresh_index`).
async fn refresh_index(
    tx: &mut Transaction<'static, Sqlite>,
    index: &mut StoryIndex,
    members: &[NewMember<'_>],
    settings: &StorySettings,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let refresh = index.refresh_for(
        members.iter().filter_map(|m| Some(m.input?.seen_at)),
        settings,
        now,
    );
    let mut rows = Vec::new();
    if let Some(after) = refresh.after_seq {
        let found = sqlx::query(
            "SELECT article_id, seen_at, seq, fingerprint FROM story_fingerprints
             WHERE seq > ?1",
        )
        .bind(after)
        .fetch_all(&mut **tx)
        .await?;
        rows.extend(index_rows(&found)?);
    }
    if let Some((from, until)) = refresh.range {
        let found = sqlx::query(
            "SELECT article_id, seen_at, seq, fingerprint FROM story_fingerprints
             WHERE seen_at >= ?1 AND (?2 IS NULL OR seen_at < ?2)",
        )
        .bind(to_text(from))
        .bind(until.map(to_text))
        .fetch_all(&mut **tx)
        .await?;
        rows.extend(index_rows(&found)?);
    }
    index.apply(&refresh, &rows);
    Ok(())
}

fn index_rows(rows: &[SqliteRow]) -> Result<Vec<IndexRow>, StoreError> {
    rows.iter()
        .map(|row| {
            Ok(IndexRow {
                article_id: row.try_get(0)?,
                seen_at: from_text(&row.try_get::<String, _>(1)?)?,
                seq: row.try_get(2)?,
                fingerprint: row.try_get(3)?,
            })
        })
        .collect()
}

/// The fingerprints and stories of the candidates the index found, each read once.
async fn candidate_rows(
    tx: &mut Transaction<'static, Sqlite>,
    found: &[Vec<i64>],
) -> Result<HashMap<i64, Candidate>, StoreError> {
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
         WHERE f.article_id IN (SELECT value FROM json_each(?1)) AND a.story_id IS NOT NULL",
    )
    .bind(ids_json(&ids))
    .fetch_all(&mut **tx)
    .await?;
    for row in &rows {
        let seen_at = from_text(&row.try_get::<String, _>(3)?)?;
        let bytes: Vec<u8> = row.try_get(4)?;
        if let Some(candidate) =
            Candidate::from_row(row.try_get(1)?, row.try_get(2)?, seen_at, &bytes)
        {
            stored.insert(row.try_get(0)?, candidate);
        }
    }
    Ok(stored)
}

/// The rules held back on the stories the write's hits go to.
async fn read_held_rules(
    tx: &mut Transaction<'static, Sqlite>,
    stored_first: &[(i64, &Incoming)],
    stories: &HashMap<i64, i64>,
) -> Result<HeldRules, StoreError> {
    let mut ids: Vec<i64> = stored_first
        .iter()
        .filter(|(_, item)| !item.matches.is_empty())
        .filter_map(|(article_id, _)| stories.get(article_id).copied())
        .collect();
    if ids.is_empty() {
        return Ok(HeldRules::default());
    }
    ids.sort_unstable();
    ids.dedup();
    let rows: Vec<(i64, Option<String>)> = sqlx::query_as(
        "SELECT id, held_rules FROM stories WHERE id IN (SELECT value FROM json_each(?1))",
    )
    .bind(ids_json(&ids))
    .fetch_all(&mut **tx)
    .await?;
    Ok(HeldRules::read(rows))
}

/// Inserts the articles not stored yet; returns dedup key → id of the rows
/// this write created.
async fn insert_articles(
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

/// The rule hits of the articles this write stored first, once per (rule,
/// story), in write order (the first article to fire a rule on a story is its
/// alert's article), and a delivery per sink of each. Returns the alert ids.
async fn insert_alerts(
    tx: &mut Transaction<'static, Sqlite>,
    held: &mut HeldRules,
    stored_first: &[(i64, &Incoming)],
    stories: &HashMap<i64, i64>,
    now_text: &str,
) -> Result<Vec<i64>, StoreError> {
    // (rule, story, article, matched, sinks) of the hits that may alert.
    let mut hits: Vec<(&str, i64, i64, String, &[String])> = Vec::new();
    for (article_id, item) in stored_first {
        let Some(story_id) = stories.get(article_id) else {
            continue;
        };
        for hit in &item.matches {
            if held.alerts(*story_id, &hit.rule, item.suppressed.is_some()) {
                hits.push((
                    &*hit.rule,
                    *story_id,
                    *article_id,
                    matched_json(&hit.matched),
                    &hit.sinks,
                ));
            }
        }
    }
    let mut alerts = Vec::new();
    for chunk in hits.chunks(ROWS_PER_STATEMENT) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO alerts (rule, story_id, article_id, matched, created_at) ",
        );
        insert.push_values(chunk, |mut row, (rule, story, article, matched, _)| {
            row.push_bind(*rule)
                .push_bind(*story)
                .push_bind(*article)
                .push_bind(matched.as_str())
                .push_bind(now_text);
        });
        insert.push(" ON CONFLICT (rule, story_id) DO NOTHING RETURNING id, rule, story_id");
        let created: Vec<(i64, String, i64)> = insert.build_query_as().fetch_all(&mut **tx).await?;
        // A (rule, story) is in a chunk once at most that alerts: the first.
        let sinks_of: HashMap<(&str, i64), &[String]> = chunk
            .iter()
            .rev()
            .map(|(rule, story, _, _, sinks)| ((*rule, *story), *sinks))
            .collect();
        let mut deliveries: Vec<(String, i64, &str)> = Vec::new();
        for (alert_id, rule, story) in &created {
            alerts.push(*alert_id);
            for sink in sinks_of
                .get(&(rule.as_str(), *story))
                .copied()
                .unwrap_or_default()
            {
                deliveries.push((new_delivery_id(), *alert_id, sink));
            }
        }
        for rows in deliveries.chunks(ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO deliveries (delivery_id, alert_id, sink, next_attempt_at, created_at,
                    queued_at) ",
            );
            insert.push_values(rows, |mut row, (delivery_id, alert_id, sink)| {
                row.push_bind(delivery_id.as_str())
                    .push_bind(*alert_id)
                    .push_bind(*sink)
                    .push_bind(now_text)
                    .push_bind(now_text)
                    .push_bind(now_text);
            });
            insert.push(" ON CONFLICT (alert_id, sink) DO NOTHING");
            insert.build().execute(&mut **tx).await?;
        }
    }
    alerts.sort_unstable();
    Ok(alerts)
}

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

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Each connection's page cache, in KiB (SQLite's negative `cache_size`). The
/// default 2 MiB held little of the indexes a write probes at random places
/// (article keys; the story keys, when they were rows), so at a million
/// articles writes re-read their pages from the OS. The cache only grows as
/// pages are used, so a small database stays small.
const PAGE_CACHE_KIB: &str = "-32768";

/// Rows per multi-row statement: each statement is a hand-off to sqlx's worker
/// thread (~100 µs), a row a few µs; 14 columns × 500 rows stays far below
/// SQLite's 32,766 bound parameters.
const ROWS_PER_STATEMENT: usize = 500;

/// A write-ahead log past this size is checkpointed and truncated after the
/// write that grew it. SQLite's own checkpoints copy pages back, but start the
/// log over only when no reader holds an older snapshot: beside steady readers
/// (the API, `herald search`) it grew without end, 98 MB over an 87 MB
/// database in a test.
const WAL_CHECKPOINT_BYTES: u64 = 16 << 20;

/// What a log SQLite started over is cut back to (`journal_size_limit`).
const WAL_KEEP_BYTES: &str = "16777216";

/// Databases up to this size have every page read at each start (about a
/// second per few hundred MB); larger ones only by `herald check`.
const QUICK_CHECK_AT_START_BYTES: u64 = 256 << 20;

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Band keys of the stored articles in the window (see `story_index`).
    stories: Arc<tokio::sync::Mutex<StoryIndex>>,
    /// Batches waiting for whoever holds `stories` (see `group_commit`).
    writes: WriteQueue,
    /// 304s waiting to be recorded, one statement for all (see `group_commit`).
    not_modified: Batcher<(i64, String, String)>,
    /// The database file; `None` in memory.
    path: Option<std::path::PathBuf>,
    pub(super) write_health: WriteHealth,
    busy_timeout: Duration,
}

/// How errors name the database: its file, never the URL.
fn describe(path: Option<&std::path::Path>) -> String {
    match path {
        Some(path) => format!("the database file {}", path.display()),
        None => "the in-memory database".to_owned(),
    }
}

/// Times are stored as fixed-width UTC text so that string order is time order.
fn to_text(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn from_text(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("time {text:?}: {e}")))
}

fn opt_time(row: &SqliteRow, column: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    row.try_get::<Option<String>, _>(column)?
        .as_deref()
        .map(from_text)
        .transpose()
}

impl SqliteStore {
    pub async fn connect(url: &str, busy_timeout: Duration) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(StoreError::Connect)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(busy_timeout)
            .pragma("cache_size", PAGE_CACHE_KIB)
            .pragma("journal_size_limit", WAL_KEEP_BYTES);
        let path = options.get_filename();
        let path = (!path.as_os_str().is_empty() && path != std::path::Path::new(":memory:"))
            .then(|| path.to_path_buf());
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(busy_timeout)
            // A transaction whose ROLLBACK failed too (SQLITE_FULL, an I/O
            // error) leaves its connection inside it, and every BEGIN on it
            // fails from then on: such a connection is closed, never reused.
            .before_acquire(|connection, _| {
                Box::pin(async move { Ok(!connection.is_in_transaction()) })
            })
            .connect_with(options)
            .await
            .map_err(|error| {
                let error = StoreError::Connect(error);
                match error.damage() {
                    Some(reason) => StoreError::Damaged(describe(path.as_deref()), reason),
                    None => error,
                }
            })?;
        Ok(SqliteStore {
            pool,
            stories: Arc::default(),
            writes: WriteQueue::default(),
            not_modified: Batcher::default(),
            write_health: WriteHealth::default(),
            busy_timeout,
            path,
        })
    }

    pub fn lock_single_instance(&self) -> Result<InstanceLock, StoreError> {
        let Some(path) = &self.path else {
            return Ok(InstanceLock { _file: None });
        };
        let shown = path.display().to_string();
        let lock_failed = |error| StoreError::Lock {
            path: shown.clone(),
            error,
        };
        // flock(2) on the database file itself: independent of SQLite's own
        // fcntl locks, and no stray lock file to clean up after a crash.
        let file = std::fs::File::open(path).map_err(lock_failed)?;
        match file.try_lock() {
            Ok(()) => Ok(InstanceLock { _file: Some(file) }),
            Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::InUse(shown)),
            Err(std::fs::TryLockError::Error(error)) => Err(lock_failed(error)),
        }
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    pub(super) fn busy_timeout(&self) -> Duration {
        self.busy_timeout
    }

    pub(super) fn describe(&self) -> String {
        describe(self.path.as_deref())
    }

    pub(super) async fn table_names(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Reads every page (`quick_check`) unless `thorough` is off and the file is
    /// large: a start should not take minutes; `herald check` always reads all.
    pub(super) async fn check_integrity(&self, thorough: bool) -> Result<(), StoreError> {
        let size = self
            .path
            .as_ref()
            .and_then(|path| std::fs::metadata(path).ok())
            .map_or(0, |meta| meta.len());
        if !thorough && size > QUICK_CHECK_AT_START_BYTES {
            return Ok(());
        }
        let problems: Vec<String> = sqlx::query_scalar("PRAGMA quick_check(3)")
            .fetch_all(&self.pool)
            .await?;
        match problems.as_slice() {
            [ok] if ok == "ok" => Ok(()),
            _ => {
                // On one line: SQLite lists problems over several.
                let problems = problems.join("; ").replace("*** in database main ***", "");
                let problems: Vec<&str> = problems.split_whitespace().collect();
                Err(StoreError::Damaged(self.describe(), problems.join(" ")))
            }
        }
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    pub async fn sync_feeds(&self, feeds: &[FeedSpec]) -> Result<Vec<FeedRecord>, StoreError> {
        let mut tx = self.begin_write().await?;
        for feed in feeds {
            // A row already as configured is not rewritten, so a restart writes nothing.
            sqlx::query(
                "INSERT INTO feeds (url, fetch_url, name) VALUES (?1, ?1, ?2)
                 ON CONFLICT (url) DO UPDATE SET name = excluded.name, active = 1
                     WHERE feeds.name IS NOT excluded.name OR NOT feeds.active",
            )
            .bind(&feed.url)
            .bind(&feed.name)
            .execute(&mut *tx)
            .await?;
        }
        let urls = serde_json::to_string(&feeds.iter().map(|f| f.url.as_str()).collect::<Vec<_>>())
            .map_err(|e| StoreError::Corrupt(format!("feed URLs as JSON: {e}")))?;
        sqlx::query(
            "UPDATE feeds SET active = 0
             WHERE active AND url NOT IN (SELECT value FROM json_each(?1))",
        )
        .bind(&urls)
        .execute(&mut *tx)
        .await?;
        let rows = sqlx::query(select_feeds!(
            "WHERE f.url IN (SELECT value FROM json_each(?1))"
        ))
        .bind(&urls)
        .fetch(&mut *tx)
        .map(|row| feed_from_row(&row?));
        let synced = in_configured_order(feeds, rows).await?;
        tx.commit().await?;
        Ok(synced)
    }

    pub async fn feed(&self, id: i64) -> Result<Option<FeedRecord>, StoreError> {
        let row = sqlx::query(select_feeds!("WHERE f.id = ?1"))
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
        let mut tx = self.begin_write().await?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "UPDATE feeds SET lease_owner = ?1, lease_until = ?3
             WHERE id IN (
                SELECT id FROM feeds
                WHERE active AND status <> 'disabled'
                  AND (next_fetch_at IS NULL OR next_fetch_at <= ?2)
                  AND (lease_until IS NULL OR lease_until < ?2)
                ORDER BY next_fetch_at IS NOT NULL, next_fetch_at, id LIMIT ?4)
             RETURNING id",
        )
        .bind(owner)
        .bind(to_text(now))
        .bind(to_text(lease_until))
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let rows = sqlx::query(select_feeds!(
            "WHERE f.id IN (SELECT value FROM json_each(?1)) ORDER BY f.id"
        ))
        .bind(ids_json(&ids))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(feed_from_row).collect()
    }

    pub async fn next_feed_due_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        // Fixed-width text times compare as times; '' sorts before every one of them.
        let next: Option<String> = sqlx::query_scalar(
            "SELECT min(max(COALESCE(next_fetch_at, ''), COALESCE(lease_until, '')))
             FROM feeds WHERE active AND status <> 'disabled'",
        )
        .fetch_one(&self.pool)
        .await?;
        match next.as_deref() {
            None => Ok(None),
            Some("") => Ok(Some(DateTime::UNIX_EPOCH)),
            Some(text) => from_text(text).map(Some),
        }
    }

    pub async fn known_items(
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

    /// One transaction for `jobs`; `BEGIN IMMEDIATE` makes writers take turns.
    /// A failed write never reaches `end_write`: the next write's
    /// `begin_write` drops what it took into the index.
    async fn write_group_jobs(
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

    async fn bound_write_ahead_log(&self) {
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

    pub async fn record_fetch(&self, feed_id: i64, record: &FetchRecord) -> Result<(), StoreError> {
        let at = to_text(record.at);
        let next = to_text(record.next_fetch_at);
        let query = match &record.result {
            FetchResult::Fetched {
                etag,
                last_modified,
                title,
                site_url,
                moved_to,
                error,
            } => sqlx::query(
                "UPDATE feeds SET last_fetch_at = ?2, next_fetch_at = ?3, status = 'ok',
                    error = ?9, failures = 0, last_success_at = ?2,
                    lease_owner = NULL, lease_until = NULL,
                    backfilled_at = COALESCE(backfilled_at, ?2),
                    etag = ?4, last_modified = ?5, title = COALESCE(?6, title),
                    site_url = COALESCE(?7, site_url), fetch_url = COALESCE(?8, fetch_url)
                 WHERE id = ?1",
            )
            .bind(feed_id)
            .bind(at)
            .bind(next)
            .bind(etag.clone())
            .bind(last_modified.clone())
            .bind(title.clone())
            .bind(site_url.clone())
            .bind(moved_to.clone())
            .bind(error.clone()),
            FetchResult::NotModified => {
                let pool = &self.pool;
                return self
                    .not_modified
                    .submit((feed_id, at, next), |batch| {
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
                    "UPDATE feeds SET last_fetch_at = ?2, next_fetch_at = ?3, status = ?4,
                        error = ?5, failures = failures + 1,
                        lease_owner = NULL, lease_until = NULL
                     WHERE id = ?1",
                )
                .bind(feed_id)
                .bind(at)
                .bind(next)
                .bind(status)
                .bind(error.clone())
            }
        };
        query.execute(&self.pool).await?;
        Ok(())
    }

    pub async fn article(&self, id: i64) -> Result<Option<Article>, StoreError> {
        let row = sqlx::query(
            "SELECT id, url, canonical_url, title, summary_text, author, language,
                published_at, updated_at, first_seen_at, story_id
             FROM articles WHERE id = ?1",
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
             FROM articles WHERE canonical_url = ?1 ORDER BY id LIMIT 1",
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
                (SELECT group_concat(s.feed_id, ',') FROM article_sources s
                 WHERE s.article_id = a.id) AS feed_ids
             FROM articles a WHERE a.published_at >= ?1
             ORDER BY a.published_at DESC, a.id DESC",
        )
        .bind(to_text(since))
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
                published_at: from_text(row.try_get("published_at")?)?,
                feed_ids: feed_ids_from_list(
                    row.try_get::<Option<String>, _>("feed_ids")?.as_deref(),
                ),
            })
        })
        .boxed()
    }

    pub async fn count_articles_since(&self, since: DateTime<Utc>) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM articles WHERE published_at >= ?1")
                .bind(to_text(since))
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
        let now = to_text(now);
        let mut tx = self.begin_write().await?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "UPDATE deliveries SET lease_owner = ?1, lease_until = ?3
             WHERE id IN (
                SELECT d.id FROM deliveries d
                WHERE d.status IN ('pending', 'failed') AND d.next_attempt_at <= ?2
                  AND (d.lease_until IS NULL OR d.lease_until < ?2)
                  AND (d.last_attempt_at IS NULL OR d.last_attempt_at < ?5)
                  AND NOT EXISTS (
                    SELECT 1 FROM deliveries o
                    WHERE o.sink = d.sink AND o.status IN ('pending', 'failed')
                      AND o.id < d.id
                      AND (o.next_attempt_at > ?2 OR o.lease_until >= ?2
                           OR o.last_attempt_at >= ?5))
                ORDER BY d.id LIMIT ?4)
             RETURNING id",
        )
        .bind(owner)
        .bind(&now)
        .bind(to_text(lease_until))
        .bind(limit)
        .bind(to_text(fresh_since))
        .fetch_all(&mut *tx)
        .await?;
        let mut claimed = Vec::with_capacity(ids.len());
        for id in ids {
            let row = sqlx::query(
                "SELECT d.*, al.rule, al.matched, al.article_id
                 FROM deliveries d JOIN alerts al ON al.id = d.alert_id WHERE d.id = ?1",
            )
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            claimed.push(delivery_from_row(&row)?);
        }
        tx.commit().await?;
        claimed.sort_by_key(|d| d.id);
        Ok(claimed)
    }

    pub async fn record_attempt(
        &self,
        id: i64,
        owner: &str,
        attempt: &AttemptRecord,
    ) -> Result<bool, StoreError> {
        let at = to_text(attempt.at);
        let mut tx = self.begin_write().await?;
        let number: Option<i64> = sqlx::query_scalar(
            "UPDATE deliveries SET status = ?3, attempts = attempts + 1, last_attempt_at = ?4,
                last_http_status = ?5, error = ?6, response_excerpt = ?7, next_attempt_at = ?8,
                delivered_at = CASE WHEN ?3 = 'delivered' THEN ?4 ELSE delivered_at END,
                lease_owner = NULL, lease_until = NULL
             WHERE id = ?1 AND lease_owner = ?2
             RETURNING attempts",
        )
        .bind(id)
        .bind(owner)
        .bind(attempt.status.as_str())
        .bind(&at)
        .bind(attempt.http_status)
        .bind(&attempt.error)
        .bind(&attempt.response_excerpt)
        .bind(to_text(attempt.next_attempt_at))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(number) = number else {
            return Ok(false);
        };
        sqlx::query(
            "INSERT INTO delivery_attempts (delivery_id, attempt, at, http_status, error,
                response_excerpt, latency_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(number)
        .bind(&at)
        .bind(attempt.http_status)
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
             WHERE ?1 IS NULL OR d.status = ?1
             ORDER BY d.id DESC LIMIT ?2",
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
        let now = to_text(now);
        let result = match id {
            Some(id) => sqlx::query(
                "UPDATE deliveries SET status = 'pending', next_attempt_at = ?2, queued_at = ?2,
                    lease_owner = NULL, lease_until = NULL
                 WHERE id = ?1 AND status IN ('failed', 'dead')",
            )
            .bind(id)
            .bind(now),
            None => sqlx::query(
                "UPDATE deliveries SET status = 'pending', next_attempt_at = ?1, queued_at = ?1,
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
            sqlx::query_scalar("SELECT status FROM deliveries WHERE id = ?1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        status
            .as_deref()
            .map(DeliveryStatus::from_column)
            .transpose()
    }

    pub async fn release_deliveries(&self, ids: &[i64], owner: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for id in ids {
            sqlx::query(
                "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL
                 WHERE id = ?1 AND lease_owner = ?2",
            )
            .bind(id)
            .bind(owner)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn next_delivery_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let next: Option<String> = sqlx::query_scalar(
            "SELECT min(max(next_attempt_at, COALESCE(lease_until, next_attempt_at)))
             FROM deliveries d WHERE status IN ('pending', 'failed')
               AND id = (SELECT min(id) FROM deliveries o
                         WHERE o.sink = d.sink AND o.status IN ('pending', 'failed'))",
        )
        .fetch_one(&self.pool)
        .await?;
        next.as_deref().map(from_text).transpose()
    }

    /// A page of stories with their outlets left empty: [`super::Store::stories`]
    /// adds them.
    pub async fn stories(
        &self,
        since: DateTime<Utc>,
        min_outlets: i64,
        limit: i64,
    ) -> Result<Vec<StoryRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM (
                 SELECT s.id, s.created_at, fa.title, fa.url,
                     (SELECT count(*) FROM articles a WHERE a.story_id = s.id) AS articles,
                     (SELECT count(DISTINCT src.feed_id) FROM articles a
                      JOIN article_sources src ON src.article_id = a.id
                      WHERE a.story_id = s.id) AS outlets
                 FROM stories s JOIN articles fa ON fa.id = s.first_article_id
                 WHERE s.created_at >= ?1
             )
             WHERE outlets >= ?2
             ORDER BY created_at DESC, id DESC
             LIMIT ?3",
        )
        .bind(to_text(since))
        .bind(min_outlets)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut stories = Vec::with_capacity(rows.len());
        for row in &rows {
            stories.push(StoryRecord {
                id: row.try_get("id")?,
                first_seen_at: from_text(row.try_get("created_at")?)?,
                title: row.try_get("title")?,
                url: row.try_get("url")?,
                articles: row.try_get("articles")?,
                outlets: Vec::new(),
            });
        }
        Ok(stories)
    }

    /// Each story's outlets, in the order they first carried it: one statement
    /// for a page of stories.
    pub async fn outlets_of(
        &self,
        story_ids: &[i64],
    ) -> Result<HashMap<i64, Vec<ArticleSource>>, StoreError> {
        let rows = sqlx::query_as::<_, (i64, String, Option<String>)>(
            "SELECT a.story_id, f.url, COALESCE(f.name, f.title)
             FROM articles a JOIN article_sources src ON src.article_id = a.id
             JOIN feeds f ON f.id = src.feed_id
             WHERE a.story_id IN (SELECT value FROM json_each(?1))
             GROUP BY a.story_id, f.id
             ORDER BY a.story_id, min(src.first_seen_at), f.url",
        )
        .bind(ids_json(story_ids))
        .fetch_all(&self.pool)
        .await?;
        Ok(outlets_by_story(rows))
    }

    pub async fn alerts(&self, limit: i64) -> Result<Vec<AlertRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, rule, story_id, article_id, matched, suppressed, created_at
             FROM alerts ORDER BY created_at DESC, id DESC LIMIT ?1",
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
                    created_at: from_text(row.try_get("created_at")?)?,
                })
            })
            .collect()
    }

    async fn complete_article(
        &self,
        row: Option<SqliteRow>,
    ) -> Result<Option<Article>, StoreError> {
        let Some(row) = row else { return Ok(None) };
        let mut article = article_from_row(&row)?;
        let sources = sqlx::query(
            "SELECT f.url, COALESCE(f.name, f.title) FROM article_sources s
             JOIN feeds f ON f.id = s.feed_id
             WHERE s.article_id = ?1 ORDER BY s.first_seen_at, f.url",
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

async fn save_in<'a>(
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

/// Records 304s: `(feed id, fetched at, next fetch at)`, one statement for all.
async fn record_not_modified(
    pool: &SqlitePool,
    batch: Vec<(i64, String, String)>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE feeds SET last_fetch_at = u.at, next_fetch_at = u.next,
            status = 'not_modified', error = NULL, failures = 0, last_success_at = u.at,
            lease_owner = NULL, lease_until = NULL
         FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS at,
                      json_extract(value, '$[2]') AS next
               FROM json_each(?1)) AS u
         WHERE feeds.id = u.id",
    )
    .bind(serde_json::to_string(&batch).unwrap_or_else(|_| "[]".to_owned()))
    .execute(pool)
    .await?;
    Ok(())
}

fn feed_from_row(row: &SqliteRow) -> Result<FeedRecord, StoreError> {
    let failures: i64 = row.try_get("failures")?;
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
        last_fetch_at: opt_time(row, "last_fetch_at")?,
        next_fetch_at: opt_time(row, "next_fetch_at")?,
        backfilled_at: opt_time(row, "backfilled_at")?,
        articles: row.try_get("articles")?,
    })
}

fn delivery_from_row(row: &SqliteRow) -> Result<DeliveryRecord, StoreError> {
    let status: String = row.try_get("status")?;
    let attempts: i64 = row.try_get("attempts")?;
    let http: Option<i64> = row.try_get("last_http_status")?;
    Ok(DeliveryRecord {
        id: row.try_get("id")?,
        delivery_id: row.try_get("delivery_id")?,
        alert_id: row.try_get("alert_id")?,
        sink: row.try_get("sink")?,
        status: DeliveryStatus::from_column(&status)?,
        attempts: u32::try_from(attempts).unwrap_or(0),
        next_attempt_at: from_text(row.try_get("next_attempt_at")?)?,
        last_attempt_at: opt_time(row, "last_attempt_at")?,
        last_http_status: http.and_then(|code| u16::try_from(code).ok()),
        error: row.try_get("error")?,
        response_excerpt: row.try_get("response_excerpt")?,
        created_at: from_text(row.try_get("created_at")?)?,
        queued_at: from_text(row.try_get("queued_at")?)?,
        rule: row.try_get("rule")?,
        matched: matched_from_json(row.try_get("matched")?),
        article_id: row.try_get("article_id")?,
    })
}

fn article_from_row(row: &SqliteRow) -> Result<Article, StoreError> {
    Ok(Article {
        id: row.try_get("id")?,
        url: row.try_get("url")?,
        canonical_url: row.try_get("canonical_url")?,
        title: row.try_get("title")?,
        summary: row.try_get("summary_text")?,
        author: row.try_get("author")?,
        language: row.try_get("language")?,
        published_at: from_text(row.try_get("published_at")?)?,
        updated_at: opt_time(row, "updated_at")?,
        first_seen_at: from_text(row.try_get("first_seen_at")?)?,
        feeds: Vec::new(),
        story_id: row.try_get("story_id")?,
    })
}

/// Ids as a JSON array, for `json_each`: one bound parameter however many ids.
fn ids_json(ids: &[i64]) -> String {
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
