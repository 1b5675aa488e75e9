//! The backend-neutral half of a write: what is new, changed or unchanged in a
//! batch, and the values both backends store the same way.

use std::collections::HashMap;
use std::sync::Arc;

use super::Incoming;
use super::StoreError;
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

/// The rules held back on each story of a write, as read and as they grow.
#[derive(Debug, Default)]
pub(super) struct HeldRules {
    pub(super) by_story: HashMap<i64, std::collections::BTreeSet<Arc<str>>>,
    pub(super) grown: std::collections::BTreeSet<i64>,
    pub(super) held: usize,
}

impl HeldRules {
    /// From `(story id, held_rules JSON)` rows.
    pub(super) fn read(rows: impl IntoIterator<Item = (i64, Option<String>)>) -> HeldRules {
        let by_story = rows
            .into_iter()
            .map(|(story, json)| {
                let rules = json.as_deref().map(matched_from_json).unwrap_or_default();
                (story, rules.into_iter().map(Arc::from).collect())
            })
            .collect();
        HeldRules {
            by_story,
            ..HeldRules::default()
        }
    }

    /// Whether a hit of `rule` on `story` becomes an alert: not if the rule was
    /// held back on the story; a held-back hit is recorded here instead.
    pub(super) fn alerts(&mut self, story: i64, rule: &Arc<str>, suppressed: bool) -> bool {
        let rules = self.by_story.entry(story).or_default();
        if rules.contains(rule) {
            return false;
        }
        if suppressed {
            rules.insert(Arc::clone(rule));
            self.grown.insert(story);
            self.held += 1;
            return false;
        }
        true
    }

    /// `(story id, held_rules JSON)` of the stories whose set grew.
    pub(super) fn changed(&self) -> Vec<(i64, String)> {
        self.grown
            .iter()
            .filter_map(|story| {
                let rules: Vec<&Arc<str>> = self.by_story.get(story)?.iter().collect();
                Some((*story, matched_json(&rules)))
            })
            .collect()
    }
}
