//! Articles as herald stores and shows them.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::redact::Redactor;

/// An entry made ready to store: identities resolved, HTML sanitised, plain text extracted.
#[derive(Debug, Clone, PartialEq)]
pub struct NewArticle {
    /// Identity of the item within its feed: guid, else link, else a hash of title and date.
    pub item_key: String,
    /// Global identity: the canonical URL, when the entry has a usable link.
    pub canonical_url: Option<String>,
    /// The link as published, made absolute.
    pub url: Option<String>,
    /// Plain-text title (entities decoded, tags removed); empty when the feed gives none.
    pub title: String,
    pub summary_html: Option<String>,
    pub summary_text: Option<String>,
    pub content_html: Option<String>,
    pub content_text: Option<String>,
    pub author: Option<String>,
    pub language: Option<String>,
    /// Publication time; falls back to `updated`, then to the time herald first saw the item.
    pub published_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
    /// Hash of the item's content as the feed gave it; a change means the item was edited.
    pub fingerprint: String,
}

/// A feed an article was seen in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArticleSource {
    pub url: String,
    pub name: Option<String>,
}

impl ArticleSource {
    /// As herald shows it: the feed URL's credentials hidden.
    pub fn redacted(self, redactor: &Redactor) -> ArticleSource {
        ArticleSource {
            url: redactor.url(&self.url).into_owned(),
            name: self.name,
        }
    }
}

/// A stored article, in the JSON shape `--json` and the API print.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Article {
    pub id: i64,
    pub url: Option<String>,
    pub canonical_url: Option<String>,
    pub title: String,
    /// Plain-text summary.
    pub summary: Option<String>,
    pub author: Option<String>,
    pub language: Option<String>,
    pub published_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
    pub first_seen_at: DateTime<Utc>,
    pub feeds: Vec<ArticleSource>,
    pub story_id: Option<i64>,
}

impl Article {
    /// As herald shows it: credentials hidden in its links and its feeds' URLs.
    pub fn redacted(self, redactor: &Redactor) -> Article {
        let redact = |url: Option<String>| url.map(|url| redactor.url(&url).into_owned());
        Article {
            url: redact(self.url),
            canonical_url: redact(self.canonical_url),
            feeds: self
                .feeds
                .into_iter()
                .map(|feed| feed.redacted(redactor))
                .collect(),
            ..self
        }
    }
}

/// An article's words and feeds, as searches and backtests read them.
#[derive(Debug, Clone, PartialEq)]
pub struct ArticleText {
    pub id: i64,
    pub title: String,
    pub summary: String,
    pub content: String,
    pub author: String,
    pub url: String,
    pub published_at: DateTime<Utc>,
    pub feed_ids: Vec<i64>,
}

/// What storing one fetch's items changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaveSummary {
    /// Articles stored for the first time, by this call and no other (alerts key on this).
    pub inserted: Vec<i64>,
    /// Items already stored from another feed under the same canonical URL: a new source.
    pub merged: usize,
    /// Items whose content changed since this feed last carried them: updated in place.
    pub updated: usize,
    /// Items this feed carried before, unchanged.
    pub unchanged: usize,
    /// Alerts recorded (rule hits on stories that had none for that rule).
    pub alerts: Vec<i64>,
    /// New articles that joined an existing story (reprints of a story already stored).
    pub joined_stories: usize,
    /// Rule hits held back (back catalogue, too old): recorded on their story, never sent.
    pub held: usize,
    /// Items the database refused, with why; the batch's other items are stored.
    pub rejected: Vec<RejectedItem>,
}

/// An item the database would not store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedItem {
    pub item_key: String,
    pub error: String,
}

impl SaveSummary {
    /// Adds what another write of the same batch stored.
    pub fn absorb(&mut self, other: SaveSummary) {
        self.inserted.extend(other.inserted);
        self.merged += other.merged;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.alerts.extend(other.alerts);
        self.joined_stories += other.joined_stories;
        self.held += other.held;
        self.rejected.extend(other.rejected);
    }
}

/// Where a page of articles in search order (newest published first, then
/// highest id) ended: the next page starts after it. Keyed on the last article
/// itself, not on an offset, so articles stored meanwhile neither repeat nor
/// push others out of the next page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArticleCursor {
    pub published_at: DateTime<Utc>,
    pub id: i64,
}

impl ArticleCursor {
    pub fn after(article: &ArticleText) -> ArticleCursor {
        ArticleCursor {
            published_at: article.published_at,
            id: article.id,
        }
    }

    /// The cursor as an opaque token: `<microseconds since 1970>.<id>`.
    pub fn token(&self) -> String {
        format!("{}.{}", self.published_at.timestamp_micros(), self.id)
    }

    pub fn from_token(token: &str) -> Option<ArticleCursor> {
        let (micros, id) = token.split_once('.')?;
        let published_at = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
        Some(ArticleCursor {
            published_at,
            id: id.parse().ok()?,
        })
    }
}
