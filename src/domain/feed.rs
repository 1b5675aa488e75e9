//! Feeds as herald keeps them: what is configured, and how each fetch went.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// A configured feed, as the store keeps it in step with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedSpec {
    pub url: String,
    pub name: Option<String>,
}

/// The state of a feed's last fetch, as `herald feeds` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedStatus {
    Ok,
    NotModified,
    Error,
    Disabled,
    Never,
}

impl FeedStatus {
    pub const ALL: [FeedStatus; 5] = [
        FeedStatus::Ok,
        FeedStatus::NotModified,
        FeedStatus::Error,
        FeedStatus::Disabled,
        FeedStatus::Never,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FeedStatus::Ok => "ok",
            FeedStatus::NotModified => "not_modified",
            FeedStatus::Error => "error",
            FeedStatus::Disabled => "disabled",
            FeedStatus::Never => "never",
        }
    }

    pub fn parse(text: &str) -> Option<FeedStatus> {
        Some(match text {
            "ok" => FeedStatus::Ok,
            "not_modified" => FeedStatus::NotModified,
            "error" => FeedStatus::Error,
            "disabled" => FeedStatus::Disabled,
            "never" => FeedStatus::Never,
            _ => return None,
        })
    }
}

/// A feed row with its health and article count.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedRecord {
    pub id: i64,
    /// The URL as configured: the feed's identity.
    pub url: String,
    /// Where the feed is fetched from now (differs from `url` after a permanent redirect).
    pub fetch_url: String,
    pub name: Option<String>,
    /// The feed's own title, from its last successful fetch.
    pub title: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub status: FeedStatus,
    pub error: Option<String>,
    pub failures: u32,
    pub last_fetch_at: Option<DateTime<Utc>>,
    pub next_fetch_at: Option<DateTime<Utc>>,
    /// When the feed's back catalogue was first stored; items seen before then never alert.
    pub backfilled_at: Option<DateTime<Utc>>,
    pub articles: i64,
}

/// What one fetch of a feed came to, as recorded on the feed row.
#[derive(Debug, Clone, PartialEq)]
pub enum FetchResult {
    /// A document was fetched and stored.
    Fetched {
        etag: Option<String>,
        last_modified: Option<String>,
        title: Option<String>,
        site_url: Option<String>,
        /// A permanent redirect's target: the feed is fetched from there from now on.
        moved_to: Option<String>,
        /// Why some items were not stored (the rest were); shown on the feed.
        error: Option<String>,
    },
    /// 304: the stored validators still hold.
    NotModified,
    /// The fetch or the document failed; `failures` is incremented.
    Failed { error: String },
    /// 410 Gone: the feed is disabled.
    Gone { error: String },
}

/// A fetch to record on a feed row.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchRecord {
    pub at: DateTime<Utc>,
    pub next_fetch_at: DateTime<Utc>,
    pub result: FetchResult,
}
