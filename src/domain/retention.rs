//! Retention: what `[retention]` asks to remove, and what a pass removed.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Rows looked at per transaction unless told otherwise: a batch of articles
/// with their sources, alerts and fingerprints takes a few milliseconds.
pub const DEFAULT_BATCH: usize = 1000;

/// What to remove: rows older than these times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrunePolicy {
    /// Articles published before this (`None`: kept forever). An article's
    /// `published_at` is its first-seen time when the feed gave none.
    pub articles_before: Option<DateTime<Utc>>,
    /// Deliveries finished before this (`None`: kept forever).
    pub deliveries_before: Option<DateTime<Utc>>,
    /// Story fingerprints of articles published before this. No article that
    /// may still alert is compared with them: an article published before
    /// `alerts.max_age` never alerts, and one published since is compared
    /// only with those within `stories.window` of it.
    pub fingerprints_before: Option<DateTime<Utc>>,
    /// Rows per transaction.
    pub batch: usize,
    /// Pause between two transactions, for the writers waiting behind them.
    pub pause: Duration,
}

/// Rows removed (or, for a dry run, that would be), per table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    pub articles: u64,
    pub article_sources: u64,
    pub stories: u64,
    pub alerts: u64,
    pub deliveries: u64,
    pub delivery_attempts: u64,
    pub story_fingerprints: u64,
    /// Articles past their time kept because a delivery of one of their
    /// alerts is still pending or failed.
    pub articles_waiting: u64,
}

impl PruneReport {
    /// Adds what another batch removed (not its waiting articles: those
    /// are counted once, at the end).
    pub fn add(&mut self, other: &PruneReport) {
        self.articles += other.articles;
        self.article_sources += other.article_sources;
        self.stories += other.stories;
        self.alerts += other.alerts;
        self.deliveries += other.deliveries;
        self.delivery_attempts += other.delivery_attempts;
        self.story_fingerprints += other.story_fingerprints;
    }

    /// Rows removed in all tables.
    pub fn total(&self) -> u64 {
        self.articles
            + self.article_sources
            + self.stories
            + self.alerts
            + self.deliveries
            + self.delivery_attempts
            + self.story_fingerprints
    }
}
