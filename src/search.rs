//! Rules over stored history: `herald search`, `herald rules test` and the
//! API's article search, and the indexer that keeps the search index current.
//!
//! The store's full-text index returns the articles that hold the query's
//! words (a superset of its matches; see [`crate::rules::IndexQuery`]), plus
//! those not indexed yet; the matcher checks each, so results are exactly
//! what a rule would fire on. A query no word of which the index can use
//! (`feed:reuters`, `tag:world`) reads every article of the window. Candidates
//! stream newest first and are matched one at a time, so memory grows with
//! the number of matches, never with the number read.

use std::collections::HashMap;

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use tokio::sync::watch;

use crate::config::FeedSettings;
use crate::domain::article::{ArticleCursor, ArticleText};
use crate::domain::feed::FeedRecord;
use crate::rules::{Document, Matcher, Rule};
use crate::store::{Store, StoreError};

/// What `feed:` and `tag:` queries see of a feed.
#[derive(Debug, Clone, Default)]
pub struct FeedInfo {
    /// Name and URL, space-separated.
    pub label: String,
    pub tags: Vec<String>,
}

/// What `feed:` and `tag:` see of each stored feed: its name (else its own title)
/// and URL, and the tags the configuration gives it now.
pub fn feed_infos(records: Vec<FeedRecord>, configured: &[FeedSettings]) -> HashMap<i64, FeedInfo> {
    let tags: HashMap<String, &[String]> = configured
        .iter()
        .map(|feed| (feed.url.to_string(), feed.tags.as_slice()))
        .collect();
    records
        .into_iter()
        .map(|record| {
            let name = record.name.as_deref().or(record.title.as_deref());
            let label = match name {
                Some(name) => format!("{name} {}", record.url),
                None => record.url.clone(),
            };
            let tags = tags
                .get(&record.url)
                .map(|t| t.to_vec())
                .unwrap_or_default();
            (record.id, FeedInfo { label, tags })
        })
        .collect()
}

/// A stored article a rule matches, with the terms it matched on.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    pub article_id: i64,
    pub matched: Vec<String>,
    /// Where a page that ends with this article ends.
    pub cursor: ArticleCursor,
}

/// Options of one scan.
#[derive(Debug, Clone, Copy)]
pub struct Scan {
    pub since: DateTime<Utc>,
    /// Stop after this many matches.
    pub limit: Option<usize>,
    /// Start after this article (the previous page's last).
    pub after: Option<ArticleCursor>,
}

/// Whether the index narrows a search for `rule` (else every article of the
/// window is read).
pub fn uses_index(rule: &Rule) -> bool {
    rule.query.index_query().is_some()
}

/// Matches `rule` against the articles published since `scan.since`, newest first.
/// `on_scanned` is called once per candidate read (for progress display).
pub async fn matching_articles(
    store: &Store,
    rule: Rule,
    feeds: &HashMap<i64, FeedInfo>,
    scan: Scan,
    mut on_scanned: impl FnMut(),
) -> Result<Vec<Match>, StoreError> {
    let index = rule.query.index_query();
    let matcher = Matcher::compile([rule]);
    let mut matches = Vec::new();
    if scan.limit == Some(0) {
        return Ok(matches);
    }
    let mut articles = store.search_articles(index.as_ref(), scan.since, scan.after);
    while let Some(article) = articles.next().await {
        let article = article?;
        on_scanned();
        if let Some(matched) = match_one(&matcher, &article, feeds) {
            matches.push(Match {
                article_id: article.id,
                matched,
                cursor: ArticleCursor::after(&article),
            });
            if scan.limit.is_some_and(|limit| matches.len() >= limit) {
                break;
            }
        }
    }
    Ok(matches)
}

fn match_one(
    matcher: &Matcher,
    article: &ArticleText,
    feeds: &HashMap<i64, FeedInfo>,
) -> Option<Vec<String>> {
    let mut label = String::new();
    let mut tags = Vec::new();
    for info in article.feed_ids.iter().filter_map(|id| feeds.get(id)) {
        if !label.is_empty() {
            label.push(' ');
        }
        label.push_str(&info.label);
        tags.extend(info.tags.iter().cloned());
    }
    let document = Document {
        title: &article.title,
        summary: &article.summary,
        content: &article.content,
        author: &article.author,
        url: &article.url,
        feed: &label,
        tags: &tags,
    };
    matcher
        .match_document(&document)
        .iter()
        .next()
        .map(|hit| hit.terms().map(|t| t.to_string()).collect())
}

/// Articles indexed per transaction: a SQLite write holds the database for the
/// few milliseconds these take, and ingest waits no longer than that.
const INDEX_BATCH: usize = 250;

/// Pause between two rounds of `herald run`'s indexer when nothing waits.
const INDEX_IDLE: Duration = Duration::from_secs(2);

/// Indexes every article waiting for the search index; returns how many.
pub async fn catch_up(store: &Store) -> Result<usize, StoreError> {
    let mut indexed = 0;
    loop {
        let taken = store.index_backlog(INDEX_BATCH).await?;
        if taken == 0 {
            return Ok(indexed);
        }
        indexed += taken;
    }
}

/// `herald run`'s indexer: keeps the search index in step with ingest, a
/// batch at a time, until `shutdown` turns true (a batch in flight rolls back
/// and waits in the backlog for the next start).
pub async fn index_continuously(store: Store, mut shutdown: watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        let round = tokio::select! {
            round = catch_up(&store) => round,
            _ = shutdown.changed() => return,
        };
        match round {
            Ok(0) => {}
            Ok(indexed) => tracing::debug!(indexed, "articles indexed for search"),
            // Searches stay complete (the backlog is read as candidates); the
            // next round tries again.
            Err(error) => tracing::warn!(%error, "cannot index articles for search"),
        }
        tokio::select! {
            _ = tokio::time::sleep(INDEX_IDLE) => {}
            _ = shutdown.changed() => return,
        }
    }
}
