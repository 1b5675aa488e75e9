//! Retention: removing what `[retention]` no longer keeps, in small batches,
//! the backend-neutral half.
//!
//! Each batch is one short transaction (on SQLite the one writer at a time
//! waits for it; on PostgreSQL the batch holds the story lock the writers take
//! in turn), with a pause between batches, so ingest and delivery go on while a
//! year of articles is removed. Three kinds of rows go:
//!
//! - finished deliveries (delivered, dead) whose time has passed, with their
//!   attempts;
//! - story fingerprints older than any new article can still be compared
//!   with (see [`PrunePolicy::fingerprints_before`]);
//! - articles published before their time, with their sources, alerts (and
//!   those alerts' deliveries) and fingerprints. An article whose alerts still
//!   have a pending or failed delivery waits until they finish. A story
//!   outlives its first article: it is shown with its earliest remaining one,
//!   and the rules its removed alerts fired join its `held_rules`, so a later
//!   reprint does not fire them again. A story with no article left goes.
//!
//! Rows are removed with plain `DELETE`s and foreign-key cascades, so triggers
//! that keep counts or search indexes over these tables stay right.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::write::{FIRED, held_from_json, held_json};
use super::{Store, StoreError};

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
    fn add(&mut self, other: &PruneReport) {
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

/// Where a scan in (time, id) order stands: the last row it looked at.
pub type Cursor = (DateTime<Utc>, i64);

/// One transaction's work.
#[derive(Debug, Default)]
pub struct Batch {
    pub removed: PruneReport,
    /// The last candidate looked at; `None` when there were none left.
    pub cursor: Option<Cursor>,
}

/// A story touched by a batch of articles, as read in the batch's transaction.
#[derive(Debug, Clone)]
pub(super) struct StoryRow {
    pub id: i64,
    pub first_article_id: i64,
    pub held_rules: Option<String>,
}

/// What a batch of articles does to their stories.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct StoryChanges {
    /// Stories left without an article: removed.
    pub gone: Vec<i64>,
    /// Stories that stay: `(id, first article, held rules JSON)`.
    pub kept: Vec<(i64, i64, Option<String>)>,
}

/// Decides the stories of a batch of articles about to be removed.
/// `remaining` are `(story, article)` of the stories' other articles, earliest
/// (by published time, then id) first; `alerted` are `(story, rule)` of the
/// alerts removed with the batch's articles.
pub(super) fn plan_stories(
    stories: &[StoryRow],
    remaining: &[(i64, i64)],
    alerted: &[(i64, String)],
) -> StoryChanges {
    let mut earliest: HashMap<i64, i64> = HashMap::new();
    let mut stays: HashSet<(i64, i64)> = HashSet::new();
    for (story, article) in remaining {
        earliest.entry(*story).or_insert(*article);
        stays.insert((*story, *article));
    }
    let mut rules_of: HashMap<i64, BTreeSet<&str>> = HashMap::new();
    for (story, rule) in alerted {
        rules_of.entry(*story).or_default().insert(rule.as_str());
    }
    let mut changes = StoryChanges::default();
    let mut seen = HashSet::new();
    for story in stories {
        if !seen.insert(story.id) {
            continue;
        }
        let Some(earliest) = earliest.get(&story.id) else {
            changes.gone.push(story.id);
            continue;
        };
        let first = if stays.contains(&(story.id, story.first_article_id)) {
            story.first_article_id
        } else {
            *earliest
        };
        // A rule whose alert row goes still counts as fired on the story: held.
        let held_rules = match rules_of.get(&story.id) {
            Some(removed) if !removed.is_empty() => {
                let mut reasons = story
                    .held_rules
                    .as_deref()
                    .map(held_from_json)
                    .unwrap_or_default();
                for rule in removed {
                    reasons
                        .entry((*rule).to_owned())
                        .or_insert_with(|| FIRED.to_owned());
                }
                Some(held_json(&reasons))
            }
            _ => story.held_rules.clone(),
        };
        if first != story.first_article_id || held_rules != story.held_rules {
            changes.kept.push((story.id, first, held_rules));
        }
    }
    changes
}

/// Removes, batch by batch, what `policy` does not keep.
pub(super) async fn prune(store: &Store, policy: &PrunePolicy) -> Result<PruneReport, StoreError> {
    let limit = i64::try_from(policy.batch.max(1)).unwrap_or(i64::MAX);
    let mut report = PruneReport::default();
    let mut started = false;
    if let Some(before) = policy.deliveries_before {
        let mut cursor = None;
        loop {
            pause(&mut started, policy.pause).await;
            let batch = store
                .backend
                .prune_deliveries(before, cursor, limit)
                .await?;
            report.add(&batch.removed);
            let Some(next) = batch.cursor else { break };
            cursor = Some(next);
        }
    }
    if let Some(before) = policy.fingerprints_before {
        let mut cursor = None;
        loop {
            pause(&mut started, policy.pause).await;
            let batch = store
                .backend
                .prune_fingerprints(before, cursor, limit)
                .await?;
            report.add(&batch.removed);
            let Some(next) = batch.cursor else { break };
            cursor = Some(next);
        }
    }
    if let Some(before) = policy.articles_before {
        let mut cursor = None;
        loop {
            pause(&mut started, policy.pause).await;
            let batch = store.backend.prune_articles(before, cursor, limit).await?;
            report.add(&batch.removed);
            let Some(next) = batch.cursor else { break };
            cursor = Some(next);
        }
        report.articles_waiting = store.backend.articles_waiting(before).await?;
    }
    Ok(report)
}

/// Waits `pause` before every transaction but the first.
async fn pause(started: &mut bool, pause: Duration) {
    if std::mem::replace(started, true) {
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn story(id: i64, first: i64, held: Option<&str>) -> StoryRow {
        StoryRow {
            id,
            first_article_id: first,
            held_rules: held.map(str::to_owned),
        }
    }

    #[test]
    fn a_story_keeps_its_earliest_remaining_article_and_the_rules_it_fired() {
        let changes = plan_stories(
            &[
                story(1, 10, Some("{\"held\":\"back_catalogue\"}")),
                story(2, 20, None),
                story(3, 30, Some("[\"old-shape\"]")),
            ],
            &[(1, 12), (1, 11), (3, 30)],
            &[
                (1, "oil".to_owned()),
                (2, "gas".to_owned()),
                (3, "oil".to_owned()),
            ],
        );
        assert_eq!(changes.gone, [2]);
        assert_eq!(
            changes.kept,
            [
                (
                    1,
                    12,
                    Some("{\"held\":\"back_catalogue\",\"oil\":\"fired\"}".to_owned())
                ),
                (
                    3,
                    30,
                    Some("{\"oil\":\"fired\",\"old-shape\":\"unknown\"}".to_owned())
                )
            ]
        );
    }

    #[test]
    fn a_story_whose_first_article_stays_is_left_alone() {
        // Article 9 was published earlier but stored later: 10 stays first.
        let changes = plan_stories(&[story(1, 10, None)], &[(1, 9), (1, 10)], &[]);
        assert_eq!(changes, StoryChanges::default());
    }
}
