//! The backend-neutral half of a write: what is new, changed or unchanged in a
//! batch, and the values both backends store the same way.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::Incoming;
use super::StoreError;
use crate::domain::alert::Suppression;
use crate::domain::article::{ArticleSource, NewArticle};
use crate::domain::feed::{FeedRecord, FeedSpec};
use crate::domain::redact::redact_url;

/// Where an item without a usable link is unique: its feed and its key in that feed.
pub(super) fn dedup_key(feed_id: i64, article: &NewArticle) -> String {
    match &article.canonical_url {
        Some(url) => url.clone(),
        None => format!("herald:feed/{feed_id}/{}", article.item_key),
    }
}

/// A delivery's public id: random, so ids from several databases never collide at a
/// receiver that deduplicates on them.
pub(super) fn new_delivery_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

pub(super) fn matched_json<T: AsRef<str>>(matched: &[T]) -> String {
    let terms: Vec<&str> = matched.iter().map(AsRef::as_ref).collect();
    serde_json::to_string(&terms).unwrap_or_else(|_| "[]".to_owned())
}

pub(super) fn matched_from_json(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

/// The synced feeds' rows in the order they were configured, taken row by
/// row and moved, not copied: at 10,000 feeds, holding every row at once
/// (SQLite copies each value) and cloning the records was most of a
/// re-poll's peak memory.
pub(super) async fn in_configured_order(
    feeds: &[FeedSpec],
    rows: impl futures::Stream<Item = Result<FeedRecord, StoreError>>,
) -> Result<Vec<FeedRecord>, StoreError> {
    let mut by_url = HashMap::with_capacity(feeds.len());
    let mut rows = std::pin::pin!(rows);
    while let Some(record) = futures::TryStreamExt::try_next(&mut rows).await? {
        by_url.insert(record.url.clone(), record);
    }
    let mut ordered: Vec<FeedRecord> = Vec::with_capacity(feeds.len());
    for feed in feeds {
        let record = match by_url.remove(&feed.url) {
            Some(record) => record,
            // The same URL given twice: the same row twice.
            None => ordered
                .iter()
                .find(|record| record.url == feed.url)
                .cloned()
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("feed {} not stored", redact_url(&feed.url)))
                })?,
        };
        ordered.push(record);
    }
    Ok(ordered)
}

pub(super) fn feed_ids_from_list(list: Option<&str>) -> Vec<i64> {
    list.unwrap_or_default()
        .split(',')
        .filter_map(|id| id.trim().parse().ok())
        .collect()
}

/// Items partitioned by what this feed stored for them before.
pub(super) struct Partition<'a> {
    pub(super) unseen: Vec<&'a Incoming>,
    pub(super) changed: Vec<(&'a NewArticle, i64)>,
    pub(super) unchanged: usize,
}

/// Splits a batch against the feed's known `(item_key → (article_id, fingerprint))`.
/// A key repeated within one document counts once: the first occurrence wins.
pub(super) fn partition<'a>(
    incoming: &'a [Incoming],
    known: &HashMap<String, (i64, String)>,
) -> Partition<'a> {
    let mut seen = std::collections::HashSet::new();
    let mut part = Partition {
        unseen: Vec::new(),
        changed: Vec::new(),
        unchanged: 0,
    };
    for item in incoming {
        let article = &item.article;
        if !seen.insert(article.item_key.as_str()) {
            continue;
        }
        match known.get(&article.item_key) {
            None => part.unseen.push(item),
            Some((id, fingerprint)) if *fingerprint != article.fingerprint => {
                part.changed.push((article, *id))
            }
            Some(_) => part.unchanged += 1,
        }
    }
    part
}

/// (story id, feed URL, feed name) rows, in order, as each story's outlets.
pub(super) fn outlets_by_story(
    rows: Vec<(i64, String, Option<String>)>,
) -> HashMap<i64, Vec<ArticleSource>> {
    let mut by_story: HashMap<i64, Vec<ArticleSource>> = HashMap::new();
    for (story, url, name) in rows {
        by_story
            .entry(story)
            .or_default()
            .push(ArticleSource { url, name });
    }
    by_story
}

/// The reason stored for a rule whose alert was delivered and then removed
/// by retention: it fired, and a later copy of the story stays silent.
pub(super) const FIRED: &str = "fired";

/// The reason of a rule held back before reasons were stored.
pub(super) const UNKNOWN: &str = "unknown";

/// `stories.held_rules` as stored: `{"rule": "reason", …}` (reasons
/// `back_catalogue`, `too_old`, or [`FIRED`]). The first shape, an array of
/// rule names, reads with reason [`UNKNOWN`].
pub(super) fn held_from_json(text: &str) -> BTreeMap<String, String> {
    if let Ok(reasons) = serde_json::from_str::<BTreeMap<String, String>>(text) {
        return reasons;
    }
    serde_json::from_str::<Vec<String>>(text)
        .unwrap_or_default()
        .into_iter()
        .map(|rule| (rule, UNKNOWN.to_owned()))
        .collect()
}

pub(super) fn held_json<K: AsRef<str>, V: AsRef<str>>(reasons: &BTreeMap<K, V>) -> String {
    let reasons: BTreeMap<&str, &str> = reasons
        .iter()
        .map(|(rule, reason)| (rule.as_ref(), reason.as_ref()))
        .collect();
    serde_json::to_string(&reasons).unwrap_or_else(|_| "{}".to_owned())
}

/// The rules held back on each story of a write, as read and as they grow.
#[derive(Debug, Default)]
pub(super) struct HeldRules {
    pub(super) by_story: HashMap<i64, BTreeMap<Arc<str>, String>>,
    /// `(story, rule)` of the alerts the stories already have: a later hit of
    /// such a rule is neither a new alert nor a held-back one.
    alerted: HashMap<i64, std::collections::HashSet<String>>,
    pub(super) grown: std::collections::BTreeSet<i64>,
    pub(super) held: usize,
}

impl HeldRules {
    /// From `(story id, held_rules JSON, rules alerted on the story)` rows.
    pub(super) fn read(
        rows: impl IntoIterator<Item = (i64, Option<String>, Vec<String>)>,
    ) -> HeldRules {
        let mut held = HeldRules::default();
        for (story, json, alerted) in rows {
            let reasons = json.as_deref().map(held_from_json).unwrap_or_default();
            let reasons = reasons
                .into_iter()
                .map(|(rule, reason)| (Arc::from(rule), reason))
                .collect();
            held.by_story.insert(story, reasons);
            if !alerted.is_empty() {
                held.alerted.insert(story, alerted.into_iter().collect());
            }
        }
        held
    }

    /// Whether a hit of `rule` on `story` becomes an alert: not if the rule was
    /// held back on the story (or fired on it); a hit held back now
    /// (`suppressed`) is recorded here, with why, instead.
    pub(super) fn alerts(
        &mut self,
        story: i64,
        rule: &Arc<str>,
        suppressed: Option<Suppression>,
    ) -> bool {
        let fired = self
            .alerted
            .get(&story)
            .is_some_and(|rules| rules.contains(&**rule));
        let reasons = self.by_story.entry(story).or_default();
        // A hit held while its rule was muted does not silence later copies.
        let held_before = reasons
            .get(rule)
            .is_some_and(|reason| reason != Suppression::Muted.as_str());
        if fired || held_before {
            return false;
        }
        if let Some(why) = suppressed {
            if !reasons.contains_key(rule) {
                reasons.insert(Arc::clone(rule), why.as_str().to_owned());
                self.grown.insert(story);
                self.held += 1;
            }
            return false;
        }
        true
    }

    /// `(story id, held_rules JSON)` of the stories whose set grew.
    pub(super) fn changed(&self) -> Vec<(i64, String)> {
        self.grown
            .iter()
            .filter_map(|story| Some((*story, held_json(self.by_story.get(story)?))))
            .collect()
    }
}

/// The held hits of one story row (`held_rules` JSON), rule by rule; rules
/// that fired on the story (kept as [`FIRED`], or with an alert row: a
/// database written before such hits were skipped) are not held hits.
pub(super) fn held_hits_of(
    story_id: i64,
    at: chrono::DateTime<chrono::Utc>,
    article_id: i64,
    held_rules: &str,
    alerted: &[String],
) -> Vec<crate::domain::alert::HeldHit> {
    held_from_json(held_rules)
        .into_iter()
        .filter(|(rule, reason)| reason != FIRED && !alerted.contains(rule))
        .map(|(rule, reason)| crate::domain::alert::HeldHit {
            story_id,
            rule,
            reason,
            at,
            article_id,
        })
        .collect()
}

/// `held_rules` with `rule` released from it: `None` when it was not held
/// back there (absent, or fired), else the JSON to store (`None` inside when
/// nothing is left).
pub(super) fn release_from(held_rules: Option<&str>, rule: &str) -> Option<Option<String>> {
    let mut reasons = held_from_json(held_rules?);
    match reasons.remove(rule) {
        Some(reason) if reason != FIRED => Some((!reasons.is_empty()).then(|| held_json(&reasons))),
        _ => None,
    }
}

#[cfg(test)]
mod held_tests {
    use super::*;

    #[test]
    fn the_first_shape_reads_as_held_for_an_unknown_reason() {
        let reasons = held_from_json(r#"["nk-iran","sanctions"]"#);
        assert_eq!(reasons.get("nk-iran").map(String::as_str), Some(UNKNOWN));
        assert_eq!(reasons.len(), 2);
        let written = held_json(&reasons);
        assert_eq!(written, r#"{"nk-iran":"unknown","sanctions":"unknown"}"#);
        assert_eq!(held_from_json(&written), reasons);
    }

    #[test]
    fn fired_rules_are_not_held_hits_and_cannot_be_released() {
        let json = r#"{"nk-iran":"back_catalogue","old":"fired"}"#;
        let at = chrono::DateTime::UNIX_EPOCH;
        let hits = held_hits_of(7, at, 70, json, &[]);
        assert_eq!(hits.len(), 1);
        assert!(
            held_hits_of(7, at, 70, json, &["nk-iran".to_owned()]).is_empty(),
            "a rule with an alert on the story is not held there"
        );
        assert_eq!(
            (hits[0].id().as_str(), hits[0].reason.as_str()),
            ("7:nk-iran", "back_catalogue")
        );
        assert_eq!(release_from(Some(json), "old"), None);
        assert_eq!(release_from(Some(json), "absent"), None);
        assert_eq!(
            release_from(Some(json), "nk-iran"),
            Some(Some(r#"{"old":"fired"}"#.to_owned()))
        );
        assert_eq!(
            release_from(Some(r#"{"a":"too_old"}"#), "a"),
            Some(None),
            "nothing left: the column goes back to NULL"
        );
    }
}
