//! Stories: an article and its copies under other URLs, as herald lists them.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::article::ArticleSource;

/// A story with the outlets (feeds) that carried it, as `herald stories` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoryRecord {
    pub id: i64,
    /// When herald stored the story's first article.
    pub first_seen_at: DateTime<Utc>,
    /// The first article's title and link.
    pub title: String,
    pub url: Option<String>,
    /// Articles in the story: the first and its reprints under other URLs.
    pub articles: i64,
    /// Every feed that carried an article of the story, in the order they did.
    pub outlets: Vec<ArticleSource>,
}

/// A stored article's story fingerprint with what explaining it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct StoryFingerprintRecord {
    pub article_id: i64,
    pub story_id: i64,
    pub title: String,
    /// The feed it was first stored from (the one the decision was made for).
    pub feed_id: i64,
    pub outlet: ArticleSource,
    /// The time the window is measured on: published, else first seen.
    pub seen_at: DateTime<Utc>,
    /// `stories::Fingerprint::to_bytes`, as stored.
    pub fingerprint: Vec<u8>,
}
