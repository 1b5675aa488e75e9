//! Rules over stored history: `herald search` and `herald rules test`.
//!
//! Articles stream from the store newest first and are matched one at a time, so
//! memory grows with the number of matches, never with the number scanned.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use futures::StreamExt;

use crate::config::FeedSettings;
use crate::domain::article::ArticleText;
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
}

/// Options of one scan.
#[derive(Debug, Clone, Copy)]
pub struct Scan {
    pub since: DateTime<Utc>,
    /// Stop after this many matches.
    pub limit: Option<usize>,
}

/// Matches `rule` against the articles published since `scan.since`, newest first.
/// `on_scanned` is called once per article read (for progress display).
pub async fn matching_articles(
    store: &Store,
    rule: Rule,
    feeds: &HashMap<i64, FeedInfo>,
    scan: Scan,
    mut on_scanned: impl FnMut(),
) -> Result<Vec<Match>, StoreError> {
    let matcher = Matcher::compile([rule]);
    let mut matches = Vec::new();
    if scan.limit == Some(0) {
        return Ok(matches);
    }
    let mut articles = store.scan_articles(scan.since);
    while let Some(article) = articles.next().await {
        let article = article?;
        on_scanned();
        if let Some(matched) = match_one(&matcher, &article, feeds) {
            matches.push(Match {
                article_id: article.id,
                matched,
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
