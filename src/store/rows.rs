//! Stored rows read back into herald's types: one mapping per type for both
//! backends. A backend says only how it reads a column ([`StoredRow`]): the
//! engines differ in how they store times (PostgreSQL `TIMESTAMPTZ`, SQLite
//! fixed-width UTC text) and integer widths.

use chrono::{DateTime, Utc};

use super::StoreError;
use super::write::{feed_ids_from_list, matched_from_json};
use crate::domain::article::{Article, ArticleText};
use crate::domain::delivery::{AlertRecord, Deferral, DeliveryRecord, DeliveryStatus};
use crate::domain::feed::{FeedRecord, FeedStatus};
use crate::domain::story::StoryRecord;

/// A result row as each backend decodes its columns.
pub trait StoredRow {
    fn text(&self, column: &str) -> Result<String, StoreError>;
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError>;
    /// Any integer column, however wide the engine stores it.
    fn int(&self, column: &str) -> Result<i64, StoreError>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError>;
    fn time(&self, column: &str) -> Result<DateTime<Utc>, StoreError>;
    fn opt_time(&self, column: &str) -> Result<Option<DateTime<Utc>>, StoreError>;
    fn bytes(&self, column: &str) -> Result<Vec<u8>, StoreError>;
}

/// A feed status as stored: anything else means the row is corrupt.
pub(super) fn stored_feed_status(text: &str) -> Result<FeedStatus, StoreError> {
    FeedStatus::parse(text).ok_or_else(|| StoreError::Corrupt(format!("feed status {text:?}")))
}

/// A delivery status as stored: anything else means the row is corrupt.
pub(super) fn stored_delivery_status(text: &str) -> Result<DeliveryStatus, StoreError> {
    DeliveryStatus::parse(text)
        .ok_or_else(|| StoreError::Corrupt(format!("delivery status {text:?}")))
}

/// Rows per status counted afresh (the maintained counters' check).
pub(super) const FRESH_FEED_COUNTS: &str =
    "SELECT status, count(*) AS n FROM feeds GROUP BY status";
pub(super) const FRESH_DELIVERY_COUNTS: &str =
    "SELECT status, count(*) AS n FROM deliveries GROUP BY status";

/// `(status, count)` rows in herald's terms; `parse` is the status's
/// `stored_*_status`.
pub(super) fn status_counts<S>(
    rows: Vec<(String, i64)>,
    parse: fn(&str) -> Result<S, StoreError>,
) -> Result<Vec<(S, i64)>, StoreError> {
    rows.into_iter()
        .map(|(status, count)| Ok((parse(&status)?, count)))
        .collect()
}

/// The `(status, n)` columns of counted rows.
pub(super) fn counted(
    rows: &[Box<dyn StoredRow + Send>],
) -> Result<Vec<(String, i64)>, StoreError> {
    rows.iter()
        .map(|row| Ok((row.text("status")?, row.int("n")?)))
        .collect()
}

/// An article query's columns, as [`article_from_row`] reads them.
macro_rules! select_articles {
    () => {
        "SELECT id, url, canonical_url, title, summary_text, author, language,
            published_at, updated_at, first_seen_at, story_id
         FROM articles"
    };
}
pub(super) use select_articles;

/// A feed query: the columns [`feed_from_row`] reads (`f` is `feeds`), then
/// the given tail (`WHERE …`, `ORDER BY …`).
/// `from` names what the rows come from when it is not `feeds f` alone (a
/// join whose first table drives the lookups).
macro_rules! select_feeds {
    ($tail:literal) => {
        select_feeds!(from "feeds f", $tail)
    };
    (from $from:literal, $tail:literal) => {
        concat!(
            "SELECT f.id, f.url, f.fetch_url, f.name, f.title, f.etag, f.last_modified,
                f.status, f.error, f.failures, f.last_fetch_at, f.next_fetch_at,
                f.backfilled_at,
                f.article_count AS articles
             FROM ",
            $from,
            " ",
            $tail
        )
    };
}
pub(super) use select_feeds;

pub(super) fn feed_from_row(row: &(impl StoredRow + ?Sized)) -> Result<FeedRecord, StoreError> {
    Ok(FeedRecord {
        id: row.int("id")?,
        url: row.text("url")?,
        fetch_url: row.text("fetch_url")?,
        name: row.opt_text("name")?,
        title: row.opt_text("title")?,
        etag: row.opt_text("etag")?,
        last_modified: row.opt_text("last_modified")?,
        status: stored_feed_status(&row.text("status")?)?,
        error: row.opt_text("error")?,
        failures: u32::try_from(row.int("failures")?).unwrap_or(0),
        last_fetch_at: row.opt_time("last_fetch_at")?,
        next_fetch_at: row.opt_time("next_fetch_at")?,
        backfilled_at: row.opt_time("backfilled_at")?,
        articles: row.int("articles")?,
    })
}

/// An article's columns (`id, url, canonical_url, title, summary_text, author,
/// language, published_at, updated_at, first_seen_at, story_id`), without its feeds.
pub(super) fn article_from_row(row: &(impl StoredRow + ?Sized)) -> Result<Article, StoreError> {
    Ok(Article {
        id: row.int("id")?,
        url: row.opt_text("url")?,
        canonical_url: row.opt_text("canonical_url")?,
        title: row.text("title")?,
        summary: row.opt_text("summary_text")?,
        author: row.opt_text("author")?,
        language: row.opt_text("language")?,
        published_at: row.time("published_at")?,
        updated_at: row.opt_time("updated_at")?,
        first_seen_at: row.time("first_seen_at")?,
        feeds: Vec::new(),
        story_id: row.opt_int("story_id")?,
    })
}

/// An article's words as a scan reads them, with its feeds as a
/// comma-separated `feed_ids` list.
pub(super) fn article_text_from_row(
    row: &(impl StoredRow + ?Sized),
) -> Result<ArticleText, StoreError> {
    Ok(ArticleText {
        id: row.int("id")?,
        title: row.text("title")?,
        summary: row.opt_text("summary_text")?.unwrap_or_default(),
        content: row.opt_text("content_text")?.unwrap_or_default(),
        author: row.opt_text("author")?.unwrap_or_default(),
        url: row.opt_text("url")?.unwrap_or_default(),
        published_at: row.time("published_at")?,
        feed_ids: feed_ids_from_list(row.opt_text("feed_ids")?.as_deref()),
    })
}

/// A delivery joined with its alert (`rule`, `matched`, `article_id`).
pub(super) fn delivery_from_row(
    row: &(impl StoredRow + ?Sized),
) -> Result<DeliveryRecord, StoreError> {
    Ok(DeliveryRecord {
        id: row.int("id")?,
        delivery_id: row.text("delivery_id")?,
        alert_id: row.int("alert_id")?,
        sink: row.text("sink")?,
        status: stored_delivery_status(&row.text("status")?)?,
        attempts: u32::try_from(row.int("attempts")?).unwrap_or(0),
        next_attempt_at: row.time("next_attempt_at")?,
        last_attempt_at: row.opt_time("last_attempt_at")?,
        last_http_status: row
            .opt_int("last_http_status")?
            .and_then(|code| u16::try_from(code).ok()),
        error: row.opt_text("error")?,
        response_excerpt: row.opt_text("response_excerpt")?,
        created_at: row.time("created_at")?,
        queued_at: row.time("queued_at")?,
        rule: row.text("rule")?,
        matched: matched_from_json(&row.text("matched")?),
        article_id: row.int("article_id")?,
        digest: row.opt_text("digest")?,
        digest_of: row.opt_int("digest_of")?,
        // A reason this version does not know reads as none: the row still
        // waits for its digest.
        deferred: row
            .opt_text("deferred")?
            .as_deref()
            .and_then(Deferral::parse),
        digest_part: match (row.opt_int("digest_part")?, row.opt_int("digest_parts")?) {
            (Some(part), Some(parts)) => Some((
                usize::try_from(part).unwrap_or(1),
                usize::try_from(parts).unwrap_or(1),
            )),
            _ => None,
        },
    })
}

pub(super) fn alert_from_row(row: &(impl StoredRow + ?Sized)) -> Result<AlertRecord, StoreError> {
    Ok(AlertRecord {
        id: row.int("id")?,
        rule: row.text("rule")?,
        story_id: row.int("story_id")?,
        article_id: row.int("article_id")?,
        matched: matched_from_json(&row.text("matched")?),
        suppressed: row.opt_text("suppressed")?,
        created_at: row.time("created_at")?,
    })
}

/// A story of a stories page (`id, created_at, title, url, articles`), its
/// outlets read separately.
pub(super) fn story_from_row(row: &(impl StoredRow + ?Sized)) -> Result<StoryRecord, StoreError> {
    Ok(StoryRecord {
        id: row.int("id")?,
        first_seen_at: row.time("created_at")?,
        title: row.text("title")?,
        url: row.opt_text("url")?,
        articles: row.int("articles")?,
        outlets: Vec::new(),
    })
}
