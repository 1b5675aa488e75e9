//! One poll of one feed: fetch → parse → normalise → store, then record the outcome.
//!
//! An orchestrator: composes the leaf stages (`fetch`, `parse`, `normalize`) with the
//! `store`. A failure here is the feed's failure, recorded on its row with its reason;
//! it never stops other feeds.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use url::Url;

use crate::domain::article::NewArticle;
use crate::domain::schedule;
use crate::fetch::{FetchError, FetchOutcome, Fetcher, Validators};
use crate::normalize;
use crate::parse::{self, ParseFeedError};
use crate::store::{FeedRecord, FetchRecord, FetchResult, SaveSummary, Store, StoreError};

/// Why a fetched document could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Parse(#[from] ParseFeedError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What storing one document did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DocumentSummary {
    pub title: Option<String>,
    pub site_url: Option<String>,
    pub entries: usize,
    pub saved: SaveSummary,
}

/// Parses a feed document and stores its entries for `feed_id`.
///
/// Entries this feed already stored with the same fingerprint are skipped before the
/// costly steps (HTML sanitising), so re-polling an unchanged feed is cheap.
pub async fn store_document(
    store: &Store,
    feed_id: i64,
    base_url: &Url,
    body: &[u8],
    content_type: Option<&str>,
    now: DateTime<Utc>,
) -> Result<DocumentSummary, IngestError> {
    let feed = parse::parse_feed(body, content_type)?;
    let keyed: Vec<(String, String)> = feed
        .entries
        .iter()
        .map(|entry| (normalize::item_key(entry), normalize::fingerprint(entry)))
        .collect();
    let keys: Vec<String> = keyed.iter().map(|(key, _)| key.clone()).collect();
    let known = store.known_items(feed_id, &keys).await?;
    let mut seen = HashSet::new();
    let mut articles: Vec<NewArticle> = Vec::new();
    let mut skipped = 0;
    for (entry, (key, fingerprint)) in feed.entries.iter().zip(&keyed) {
        if !seen.insert(key.as_str()) {
            continue;
        }
        if known.get(key) == Some(fingerprint) {
            skipped += 1;
            continue;
        }
        articles.push(normalize::to_article(entry, base_url, now));
    }
    let mut saved = if articles.is_empty() {
        SaveSummary::default()
    } else {
        store.save_articles(feed_id, &articles, now).await?
    };
    saved.unchanged += skipped;
    Ok(DocumentSummary {
        title: feed.title,
        site_url: feed.site_url,
        entries: feed.entries.len(),
        saved,
    })
}

/// How a poll of one feed ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PollStatus {
    Ok,
    NotModified,
    Error,
    Disabled,
}

/// The result of polling one feed, as `herald poll` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct PollReport {
    pub url: String,
    pub name: Option<String>,
    pub status: PollStatus,
    /// Articles stored for the first time.
    pub new: usize,
    /// Items already stored from another feed, now also linked to this one.
    pub merged: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub error: Option<String>,
    /// Set when the feed answered with a permanent redirect: its new address.
    pub moved_to: Option<String>,
    pub duration_ms: u64,
    /// Ids of the articles stored for the first time (for matching and alerts).
    #[serde(skip)]
    pub inserted: Vec<i64>,
}

impl PollReport {
    fn new(feed: &FeedRecord) -> PollReport {
        PollReport {
            url: feed.url.clone(),
            name: feed.name.clone().or_else(|| feed.title.clone()),
            status: PollStatus::Ok,
            new: 0,
            merged: 0,
            updated: 0,
            unchanged: 0,
            error: None,
            moved_to: None,
            duration_ms: 0,
            inserted: Vec::new(),
        }
    }
}

/// Fetches a feed once, stores what is new or changed, records the outcome on the
/// feed row and schedules its next fetch `interval` later (with back-off on failure).
pub async fn poll_feed(
    store: &Store,
    fetcher: &Fetcher,
    feed: &FeedRecord,
    interval: Duration,
) -> PollReport {
    let started = Instant::now();
    let mut report = PollReport::new(feed);
    let outcome = poll_outcome(store, fetcher, feed, &mut report).await;
    let now = Utc::now();
    let (result, retry_after) = match outcome {
        Ok(result) => (result, None),
        Err(failure) => {
            report.error = Some(failure.message.clone());
            report.status = if failure.gone {
                PollStatus::Disabled
            } else {
                PollStatus::Error
            };
            let result = if failure.gone {
                FetchResult::Gone {
                    error: failure.message,
                }
            } else {
                FetchResult::Failed {
                    error: failure.message,
                }
            };
            (result, failure.retry_after)
        }
    };
    let failures = match result {
        FetchResult::Failed { .. } | FetchResult::Gone { .. } => feed.failures.saturating_add(1),
        _ => 0,
    };
    let record = FetchRecord {
        at: now,
        next_fetch_at: schedule::next_fetch_at(now, interval, failures, retry_after),
        result,
    };
    if let Err(error) = store.record_fetch(feed.id, &record).await {
        report.status = PollStatus::Error;
        report.error.get_or_insert_with(|| error.to_string());
    }
    report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    report
}

struct PollFailure {
    message: String,
    retry_after: Option<Duration>,
    gone: bool,
}

impl From<FetchError> for PollFailure {
    fn from(error: FetchError) -> PollFailure {
        PollFailure {
            gone: matches!(error, FetchError::Gone),
            retry_after: error.retry_after(),
            message: error.to_string(),
        }
    }
}

impl From<IngestError> for PollFailure {
    fn from(error: IngestError) -> PollFailure {
        PollFailure {
            message: error.to_string(),
            retry_after: None,
            gone: false,
        }
    }
}

async fn poll_outcome(
    store: &Store,
    fetcher: &Fetcher,
    feed: &FeedRecord,
    report: &mut PollReport,
) -> Result<FetchResult, PollFailure> {
    let url = Url::parse(&feed.fetch_url).map_err(|e| PollFailure {
        message: format!("invalid feed URL: {e}"),
        retry_after: None,
        gone: false,
    })?;
    let validators = Validators {
        etag: feed.etag.clone(),
        last_modified: feed.last_modified.clone(),
    };
    let document = match fetcher.fetch(&url, &validators).await? {
        FetchOutcome::NotModified => {
            report.status = PollStatus::NotModified;
            return Ok(FetchResult::NotModified);
        }
        FetchOutcome::Fetched(document) => document,
    };
    let summary = store_document(
        store,
        feed.id,
        &document.final_url,
        &document.body,
        document.content_type.as_deref(),
        Utc::now(),
    )
    .await?;
    report.new = summary.saved.inserted.len();
    report.merged = summary.saved.merged;
    report.updated = summary.saved.updated;
    report.unchanged = summary.saved.unchanged;
    report.inserted = summary.saved.inserted;
    report.moved_to = document.moved_to.as_ref().map(Url::to_string);
    Ok(FetchResult::Fetched {
        etag: document.validators.etag,
        last_modified: document.validators.last_modified,
        title: summary.title,
        site_url: summary.site_url,
        moved_to: report.moved_to.clone(),
    })
}
