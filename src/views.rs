//! What herald shows of its database: the JSON shapes that `--json`
//! output and the HTTP API share, so both always say the same thing.
//!
//! Built from store records; holds no secret: sinks appear by name only, and URLs with
//! their credentials hidden ([`Redactor`]), though the store keeps them whole.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::article::Article;
use crate::domain::delivery::{DeliveryRecord, DeliveryStatus};
use crate::domain::feed::FeedRecord;
use crate::domain::redact::Redactor;
use crate::domain::story::StoryRecord;
use crate::store::{Store, StoreError};

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

impl FeedView {
    pub fn new(feed: FeedRecord, redactor: &Redactor) -> FeedView {
        FeedView {
            url: redactor.url(&feed.url).into_owned(),
            name: feed.name.or(feed.title),
            status: feed.status.as_str(),
            last_fetch_at: feed.last_fetch_at,
            next_fetch_at: feed.next_fetch_at,
            // Errors are stored redacted; one stored by an older herald may not be.
            error: feed.error.map(|error| redactor.text(&error).into_owned()),
            failures: feed.failures,
            articles: feed.articles,
            fetch_url: redactor.url(&feed.fetch_url).into_owned(),
        }
    }
}

/// A story as `herald stories` shows it: credentials hidden in its link and outlets.
pub fn story(story: StoryRecord, redactor: &Redactor) -> StoryRecord {
    StoryRecord {
        url: story.url.map(|url| redactor.url(&url).into_owned()),
        outlets: story
            .outlets
            .into_iter()
            .map(|outlet| outlet.redacted(redactor))
            .collect(),
        ..story
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
    redactor: &Redactor,
) -> Result<Vec<AlertView>, StoreError> {
    let deliveries = store.deliveries(status, limit).await?;
    let mut alerts = Vec::with_capacity(deliveries.len());
    for delivery in deliveries {
        let article = store.article(delivery.article_id).await?;
        let article = article.map(|article| article.redacted(redactor));
        alerts.push(AlertView::new(delivery, article));
    }
    Ok(alerts)
}
