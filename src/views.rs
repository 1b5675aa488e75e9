//! What herald shows of its database: the JSON shapes of SPEC §3 that `--json`
//! output and the HTTP API share, so both always say the same thing.
//!
//! Built from store records; holds no secret (sinks appear by name only).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::article::Article;
use crate::store::{DeliveryRecord, DeliveryStatus, FeedRecord, Store, StoreError};

/// A feed's health, as `herald feeds --json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedView {
    pub url: String,
    pub name: Option<String>,
    pub status: &'static str,
    pub last_fetch_at: Option<DateTime<Utc>>,
    pub next_fetch_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    pub failures: u32,
    pub articles: i64,
    pub fetch_url: String,
}

impl From<FeedRecord> for FeedView {
    fn from(feed: FeedRecord) -> FeedView {
        FeedView {
            url: feed.url,
            name: feed.name.or(feed.title),
            status: feed.status.as_str(),
            last_fetch_at: feed.last_fetch_at,
            next_fetch_at: feed.next_fetch_at,
            error: feed.error,
            failures: feed.failures,
            articles: feed.articles,
            fetch_url: feed.fetch_url,
        }
    }
}

/// An outbox entry with its alert and article, as `herald alerts --json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertView {
    pub id: i64,
    pub delivery_id: String,
    pub rule: String,
    /// The sink's configured name; its URL is a secret and never shown.
    pub sink: String,
    pub status: &'static str,
    pub attempts: u32,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_http_status: Option<u16>,
    pub error: Option<String>,
    /// When the next attempt is due; only for deliveries still waiting.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub matched: Vec<String>,
    /// `None` when the article was deleted.
    pub article: Option<Article>,
}

impl AlertView {
    pub fn new(delivery: DeliveryRecord, article: Option<Article>) -> AlertView {
        let waiting = matches!(
            delivery.status,
            DeliveryStatus::Pending | DeliveryStatus::Failed
        );
        AlertView {
            id: delivery.id,
            delivery_id: delivery.delivery_id,
            rule: delivery.rule,
            sink: delivery.sink,
            status: delivery.status.as_str(),
            attempts: delivery.attempts,
            last_attempt_at: delivery.last_attempt_at,
            last_http_status: delivery.last_http_status,
            error: delivery.error,
            next_attempt_at: waiting.then_some(delivery.next_attempt_at),
            matched: delivery.matched,
            article,
        }
    }
}

/// The outbox, newest first, optionally of one status, each entry with its article.
pub async fn alerts(
    store: &Store,
    status: Option<DeliveryStatus>,
    limit: i64,
) -> Result<Vec<AlertView>, StoreError> {
    let deliveries = store.deliveries(status, limit).await?;
    let mut alerts = Vec::with_capacity(deliveries.len());
    for delivery in deliveries {
        let article = store.article(delivery.article_id).await?;
        alerts.push(AlertView::new(delivery, article));
    }
    Ok(alerts)
}
