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
//! Rows are removed with plain `DELETE`s (and, for alerts and their
//! deliveries, foreign-key cascades), so triggers that keep counts or search
//! indexes over these tables stay right.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::rows::StoredRow;
use super::statements::{Row as SharedRow, Statements, TxStatements, Value};
use super::write::{FIRED, held_from_json, held_json};
use super::{Store, StoreError};
pub use crate::domain::retention::{PrunePolicy, PruneReport};

/// Where a scan in (time, id) order stands: the last row it looked at.
pub type Cursor = (DateTime<Utc>, i64);

/// The rows retention removes in batches, each scanned in (time, id) order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prunable {
    /// Finished deliveries (delivered, dead), by when they finished, with
    /// their attempts.
    Deliveries,
    /// Story fingerprints, by their article's time.
    Fingerprints,
    /// Articles, by published time, with their sources, alerts and
    /// fingerprints; articles with open deliveries wait.
    Articles,
}

/// When a delivery finished (the `deliveries_finished` index's expression).
pub(super) const FINISHED: &str = "coalesce(delivered_at, last_attempt_at, queued_at)";

/// A delivery of the article's (`a`) alerts is still to be sent.
pub(super) const OPEN_DELIVERIES: &str =
    "EXISTS (SELECT 1 FROM alerts al JOIN deliveries d ON d.alert_id = al.id
     WHERE al.article_id = a.id AND d.status IN ('pending', 'failed'))";

impl Prunable {
    /// `SELECT id, time FROM … WHERE time < $1` for this kind's candidates,
    /// and the `time, id` order they are scanned in (both engines read `$N`).
    pub(super) fn candidates(self) -> (String, String) {
        match self {
            Prunable::Deliveries => (
                format!(
                    "SELECT id, {FINISHED} AS at FROM deliveries
                     WHERE status IN ('delivered', 'dead') AND {FINISHED} < $1"
                ),
                format!("{FINISHED}, id"),
            ),
            Prunable::Fingerprints => (
                "SELECT article_id AS id, seen_at AS at FROM story_fingerprints WHERE seen_at < $1"
                    .to_owned(),
                "seen_at, article_id".to_owned(),
            ),
            Prunable::Articles => (
                "SELECT id, published_at AS at FROM articles WHERE published_at < $1".to_owned(),
                "published_at, id".to_owned(),
            ),
        }
    }

    /// Up to `$2` candidates (`id`, `at`) past `$1`, after (`$3`, `$4`) when
    /// `after_cursor`.
    pub(super) fn candidates_sql(self, after_cursor: bool) -> String {
        let (select, order) = self.candidates();
        let after = if after_cursor {
            format!(" AND ({order}) > ($3, $4)")
        } else {
            String::new()
        };
        format!("{select}{after} ORDER BY {order} LIMIT $2")
    }
}

/// Removes those of `ids` published before `before` that may go, in the
/// caller's transaction: not those with open deliveries, nor those
/// `also_kept` (SQL on the article `a`) names. Each story keeps its earliest
/// remaining article and the rules it fired (see [`plan_stories`]); a story
/// left without articles goes; sources, alerts, their deliveries and
/// fingerprints go with their article by cascade.
pub(super) async fn remove_articles(
    tx: &mut impl TxStatements,
    ids: &[i64],
    before: DateTime<Utc>,
    also_kept: &str,
) -> Result<PruneReport, StoreError> {
    let sql = format!(
        "SELECT a.id AS id FROM articles a
         WHERE {} AND a.published_at < $2 AND NOT {OPEN_DELIVERIES} {also_kept}",
        tx.in_set("a.id", 1)
    );
    let removed = ints(
        &tx.rows(&sql, &[Value::Ids(ids), Value::Time(before)])
            .await?,
        "id",
    )?;
    if removed.is_empty() {
        return Ok(PruneReport::default());
    }
    let of_removed = [Value::Ids(&removed)];
    let sql = format!(
        "SELECT id, first_article_id, held_rules FROM stories
         WHERE id IN (SELECT story_id FROM articles WHERE {}) OR {}",
        tx.in_set("id", 1),
        tx.in_set("first_article_id", 1)
    );
    let stories = tx
        .rows(&sql, &of_removed)
        .await?
        .iter()
        .map(|row| {
            Ok(StoryRow {
                id: row.int("id")?,
                first_article_id: row.int("first_article_id")?,
                held_rules: row.opt_text("held_rules")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let story_ids: Vec<i64> = stories.iter().map(|story| story.id).collect();
    let sql = format!(
        "SELECT story_id, id FROM articles WHERE {} AND NOT {} ORDER BY published_at, id",
        tx.in_set("story_id", 1),
        tx.in_set("id", 2)
    );
    let remaining = tx
        .rows(&sql, &[Value::Ids(&story_ids), Value::Ids(&removed)])
        .await?
        .iter()
        .map(|row| Ok((row.int("story_id")?, row.int("id")?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    let sql = format!(
        "SELECT story_id, rule FROM alerts WHERE {}",
        tx.in_set("article_id", 1)
    );
    let alerted = tx
        .rows(&sql, &of_removed)
        .await?
        .iter()
        .map(|row| Ok((row.int("story_id")?, row.text("rule")?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    let changes = plan_stories(&stories, &remaining, &alerted);

    let sql = counts_with_sql(|column, n| tx.in_set(column, n));
    let with_gone = [Value::Ids(&removed), Value::Ids(&changes.gone)];
    let counts = tx.rows(&sql, &with_gone).await?;
    let row = counts
        .first()
        .ok_or_else(|| StoreError::Corrupt("no row of retention counts".to_owned()))?;
    let mut counted = PruneReport {
        articles: u64::try_from(removed.len()).unwrap_or(u64::MAX),
        article_sources: count(row.int("article_sources")?),
        story_fingerprints: count(row.int("story_fingerprints")?),
        alerts: count(row.int("alerts")?),
        deliveries: count(row.int("deliveries")?),
        delivery_attempts: count(row.int("delivery_attempts")?),
        ..PruneReport::default()
    };
    for (story, first, held_rules) in &changes.kept {
        tx.execute(
            "UPDATE stories SET first_article_id = $2, held_rules = $3 WHERE id = $1",
            &[
                Value::Int(*story),
                Value::Int(*first),
                Value::OptText(held_rules.as_deref()),
            ],
        )
        .await?;
    }
    let sql = format!("DELETE FROM stories WHERE {}", tx.in_set("id", 1));
    counted.stories = tx.execute(&sql, &[Value::Ids(&changes.gone)]).await?;
    // No foreign key cascades to these on PostgreSQL (the write path keeps
    // them in step instead of paying a check per row it writes).
    for table in ["article_sources", "story_fingerprints", "search_backlog"] {
        let sql = format!("DELETE FROM {table} WHERE {}", tx.in_set("article_id", 1));
        tx.execute(&sql, &of_removed).await?;
    }
    let sql = format!("DELETE FROM articles WHERE {}", tx.in_set("id", 1));
    tx.execute(&sql, &of_removed).await?;
    Ok(counted)
}

/// Column `column` of each row.
fn ints(rows: &[SharedRow], column: &str) -> Result<Vec<i64>, StoreError> {
    rows.iter().map(|row| row.int(column)).collect()
}

/// The rows that go with a batch's articles (`$1`) and the alerts of its
/// gone stories (`$2`), in columns named as [`PruneReport`]'s fields;
/// `in_set` is the backend's "`column` is in the ids bound as parameter `n`".
fn counts_with_sql(in_set: impl Fn(&str, usize) -> String) -> String {
    let of_articles = in_set("article_id", 1);
    let alerts = format!(
        "SELECT id FROM alerts WHERE {of_articles} OR {}",
        in_set("story_id", 2)
    );
    format!(
        "SELECT
             (SELECT count(*) FROM article_sources WHERE {of_articles}) AS article_sources,
             (SELECT count(*) FROM story_fingerprints WHERE {of_articles}) AS story_fingerprints,
             (SELECT count(*) FROM ({alerts}) AS al) AS alerts,
             (SELECT count(*) FROM deliveries WHERE alert_id IN ({alerts})) AS deliveries,
             (SELECT count(*) FROM delivery_attempts WHERE delivery_id IN
                 (SELECT id FROM deliveries WHERE alert_id IN ({alerts}))) AS delivery_attempts"
    )
}

/// Articles published before `$1` kept for their open deliveries.
fn articles_waiting_sql() -> String {
    format!("SELECT count(*) AS n FROM articles a WHERE a.published_at < $1 AND {OPEN_DELIVERIES}")
}

/// One row of what the batches would remove with articles before `$1`,
/// deliveries finished before `$2` and fingerprints before `$3`, in
/// [`report_from_counts`]' order. `also_kept_article` and
/// `also_kept_fingerprint` are conditions a backend adds to what an article
/// (`a`) or fingerprint (`f`) batch skips.
fn prunable_sql(also_kept_article: &str, also_kept_fingerprint: &str) -> String {
    format!(
        "WITH e AS (
             SELECT a.id, a.story_id FROM articles a
             WHERE a.published_at < $1 AND NOT {OPEN_DELIVERIES} {also_kept_article}),
         gone AS (
             SELECT s.id FROM stories s WHERE s.id IN (SELECT story_id FROM e)
             AND NOT EXISTS (SELECT 1 FROM articles a
                             WHERE a.story_id = s.id AND a.id NOT IN (SELECT id FROM e))),
         al AS (
             SELECT id FROM alerts
             WHERE article_id IN (SELECT id FROM e) OR story_id IN (SELECT id FROM gone)),
         d AS (
             SELECT id FROM deliveries
             WHERE (status IN ('delivered', 'dead') AND {FINISHED} < $2)
                OR alert_id IN (SELECT id FROM al))
         SELECT
             (SELECT count(*) FROM e) AS articles,
             (SELECT count(*) FROM article_sources WHERE article_id IN (SELECT id FROM e))
                 AS article_sources,
             (SELECT count(*) FROM gone) AS stories,
             (SELECT count(*) FROM al) AS alerts,
             (SELECT count(*) FROM d) AS deliveries,
             (SELECT count(*) FROM delivery_attempts WHERE delivery_id IN (SELECT id FROM d))
                 AS delivery_attempts,
             (SELECT count(*) FROM story_fingerprints f
              WHERE (f.seen_at < $3 {also_kept_fingerprint}) OR f.article_id IN (SELECT id FROM e))
                 AS story_fingerprints,
             (SELECT count(*) FROM articles a WHERE a.published_at < $1 AND {OPEN_DELIVERIES})
                 AS articles_waiting"
    )
}

/// The row [`prunable_sql`] reads, as a report.
fn report_from_row(row: &(impl StoredRow + ?Sized)) -> Result<PruneReport, StoreError> {
    let of = |column: &str| row.int(column).map(count);
    Ok(PruneReport {
        articles: of("articles")?,
        article_sources: of("article_sources")?,
        stories: of("stories")?,
        alerts: of("alerts")?,
        deliveries: of("deliveries")?,
        delivery_attempts: of("delivery_attempts")?,
        story_fingerprints: of("story_fingerprints")?,
        articles_waiting: of("articles_waiting")?,
    })
}

/// A count as reported.
pub(super) fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
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
    let kinds = [
        (Prunable::Deliveries, policy.deliveries_before),
        (Prunable::Fingerprints, policy.fingerprints_before),
        (Prunable::Articles, policy.articles_before),
    ];
    for (kind, before) in kinds {
        let Some(before) = before else { continue };
        let mut cursor = None;
        loop {
            pause(&mut started, policy.pause).await;
            let rows = store
                .backend
                .prune_candidates(kind, before, cursor, limit)
                .await?;
            let Some((last_id, last_time)) = rows.last().copied() else {
                break;
            };
            let ids: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
            let removed = store.backend.remove(kind, &ids, before).await?;
            report.add(&removed);
            cursor = Some((last_time, last_id));
        }
    }
    if let Some(before) = policy.articles_before {
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

/// [`RetentionStore::prune_candidates`] for a backend that runs statements.
pub(super) async fn candidates_of(
    store: &(impl Statements + ?Sized),
    kind: Prunable,
    before: DateTime<Utc>,
    cursor: Option<Cursor>,
    limit: i64,
) -> Result<Vec<(i64, DateTime<Utc>)>, StoreError> {
    let mut values = vec![Value::Time(before), Value::Int(limit)];
    if let Some((time, id)) = cursor {
        values.extend([Value::Time(time), Value::Int(id)]);
    }
    let rows = store
        .rows(&kind.candidates_sql(cursor.is_some()), &values)
        .await?;
    rows.iter()
        .map(|row| Ok((row.int("id")?, row.time("at")?)))
        .collect()
}

/// [`RetentionStore::articles_waiting`] for a backend that runs statements.
pub(super) async fn waiting_of(
    store: &(impl Statements + ?Sized),
    before: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let waiting = store
        .count(&articles_waiting_sql(), &[Value::Time(before)])
        .await?;
    Ok(count(waiting))
}

/// [`RetentionStore::prunable`] for a backend that runs statements and
/// keeps, besides the policy, what `also_kept` names.
pub(super) async fn prunable_of(
    store: &(impl Statements + ?Sized),
    policy: &PrunePolicy,
    also_kept: AlsoKept,
) -> Result<PruneReport, StoreError> {
    let sql = prunable_sql(also_kept.article, also_kept.fingerprint);
    let values = [
        Value::OptTime(policy.articles_before),
        Value::OptTime(policy.deliveries_before),
        Value::OptTime(policy.fingerprints_before),
    ];
    let row = store
        .row(&sql, &values)
        .await?
        .ok_or_else(|| StoreError::Corrupt("no row of retention counts".to_owned()))?;
    report_from_row(&*row)
}

/// What a backend keeps whatever its age, as SQL conditions added to what a
/// batch may remove: on the article `a`, on the fingerprint `f`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AlsoKept {
    pub article: &'static str,
    pub fingerprint: &'static str,
}
