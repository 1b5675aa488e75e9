//! Recorded rule hits and their deliveries to sinks: the outbox as herald shows it.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// A recorded rule hit.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRecord {
    pub id: i64,
    pub rule: String,
    pub story_id: i64,
    pub article_id: i64,
    pub matched: Vec<String>,
    pub suppressed: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Where a delivery stands (an alert's `status` in `herald alerts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    /// Failed at least once; will be retried.
    Failed,
    /// Given up: a permanent failure, or failing for longer than `alerts.give_up`.
    Dead,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 4] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Delivered,
        DeliveryStatus::Failed,
        DeliveryStatus::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Dead => "dead",
        }
    }

    pub fn parse(text: &str) -> Option<DeliveryStatus> {
        Some(match text {
            "pending" => DeliveryStatus::Pending,
            "delivered" => DeliveryStatus::Delivered,
            "failed" => DeliveryStatus::Failed,
            "dead" => DeliveryStatus::Dead,
            _ => return None,
        })
    }
}

/// A delivery of one alert to one sink, with its alert.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRecord {
    pub id: i64,
    /// Stable public id (`X-Herald-Delivery`).
    pub delivery_id: String,
    pub alert_id: i64,
    pub sink: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_http_status: Option<u16>,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When the delivery was last queued (created, or retried by hand):
    /// `alerts.give_up` counts from here.
    pub queued_at: DateTime<Utc>,
    pub rule: String,
    pub matched: Vec<String>,
    pub article_id: i64,
    /// The digest schedule's key this delivery waits for, if it is part of a
    /// digest (see [`DeliveryRecord::carries_digest`]).
    pub digest: Option<String>,
    /// The delivery whose message carries this one: itself for a digest's
    /// carrier, none while it waits for its period to end.
    pub digest_of: Option<i64>,
    /// Why an instant delivery was turned into a digest one, if it was.
    pub deferred: Option<Deferral>,
    /// For a digest's carrier: which part of its period's digest it sends,
    /// and of how many (1 of 1 when the period fit one message).
    pub digest_part: Option<(usize, usize)>,
}

impl DeliveryRecord {
    /// Whether sending this delivery sends a digest: the alerts of the rows
    /// it carries, its own among them.
    pub fn carries_digest(&self) -> bool {
        self.digest.is_some() && self.digest_of == Some(self.id)
    }
}

/// Why an alert due to go out at once waits for a digest instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Deferral {
    /// It came due in its sink's quiet hours.
    QuietHours,
    /// Its rule or sink had sent its `max_per_hour` in the last hour.
    Throttled,
}

impl Deferral {
    pub fn as_str(self) -> &'static str {
        match self {
            Deferral::QuietHours => "quiet_hours",
            Deferral::Throttled => "throttled",
        }
    }

    pub fn parse(text: &str) -> Option<Deferral> {
        match text {
            "quiet_hours" => Some(Deferral::QuietHours),
            "throttled" => Some(Deferral::Throttled),
            _ => None,
        }
    }
}

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    pub at: DateTime<Utc>,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
    pub latency_ms: i64,
    /// The delivery's status after this attempt.
    pub status: DeliveryStatus,
    /// When to try again (for `Failed`).
    pub next_attempt_at: DateTime<Utc>,
}

/// A sink whose endpoint said it is gone (Slack `no_service`, HTTP 410…):
/// its deliveries stay queued, unclaimed, until its configuration changes
/// or `herald sinks enable` clears it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokenSink {
    pub sink: String,
    /// What the endpoint answered, as the failed attempt recorded it.
    pub reason: String,
    pub since: DateTime<Utc>,
    /// A digest of the configuration it broke with; a reload that changes
    /// it clears the mark. Not shown: it is derived from the credentials.
    #[serde(skip)]
    pub config: String,
}

/// A story's thread in a `slack_app` sink's channel: the message its first
/// alert posted, and the outlets the thread has named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackThread {
    pub sink: String,
    pub story_id: i64,
    pub channel: String,
    /// Slack's id of the story's message: replies name it as `thread_ts`.
    pub ts: String,
    /// Outlet (feed) URLs named so far, the first alert's among them.
    pub outlets: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// When an instance last looked for outlets to add.
    pub checked_at: DateTime<Utc>,
}
