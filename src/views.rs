//! What herald shows of its database: the JSON shapes that `--json`
//! output and the HTTP API share, so both always say the same thing.
//!
//! Built from store records; holds no secret: sinks appear by name only, and URLs with
//! their credentials hidden ([`Redactor`]), though the store keeps them whole.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::article::Article;
use crate::domain::delivery::{Deferral, DeliveryRecord, DeliveryStatus};
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
    /// The digest schedule it goes out with, if it is part of a digest
    /// (`every 3600s`, `at 08:00 Europe/Berlin`).
    pub digest: Option<String>,
    /// Why an alert that would have gone out at once waits for a digest:
    /// `quiet_hours` or `throttled`.
    pub deferred: Option<Deferral>,
    /// `None` when the article was deleted.
    pub article: Option<Article>,
    /// For ordering beside held hits; not part of the JSON.
    #[serde(skip)]
    pub created_at: Option<DateTime<Utc>>,
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
            digest: delivery.digest,
            deferred: delivery.deferred,
            article,
            created_at: Some(delivery.created_at),
        }
    }
}

/// A rule hit held back instead of alerting, as `herald alerts --json`
/// prints it: `status` is `held`, `reason` says why (`back_catalogue`,
/// `too_old`; `unknown` for hits held before reasons were kept), and `id`
/// (`STORY:RULE`) is what `herald alerts send` takes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeldView {
    pub id: String,
    pub story_id: i64,
    pub rule: String,
    pub status: &'static str,
    pub reason: String,
    /// When the story began.
    pub held_at: DateTime<Utc>,
    /// The story's first article; `None` when it was deleted.
    pub article: Option<Article>,
}

/// One line of `herald alerts`: a delivery, or a hit held back.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum OutboxEntry {
    Delivery(AlertView),
    Held(HeldView),
}

impl OutboxEntry {
    fn at(&self) -> Option<DateTime<Utc>> {
        match self {
            OutboxEntry::Delivery(delivery) => delivery.created_at,
            OutboxEntry::Held(held) => Some(held.held_at),
        }
    }
}

/// Which entries `herald alerts` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertFilter {
    All,
    Delivery(DeliveryStatus),
    Held,
}

impl AlertFilter {
    /// `pending`, `delivered`, `failed`, `dead` or `held`; `None` for anything else.
    pub fn parse(text: &str) -> Option<AlertFilter> {
        match text {
            "held" => Some(AlertFilter::Held),
            other => DeliveryStatus::parse(other).map(AlertFilter::Delivery),
        }
    }
}

/// The outbox and the hits held back, newest first (deliveries by when they
/// were created, held hits by when their story began), at most `limit`,
/// each with its article.
pub async fn alerts(
    store: &Store,
    filter: AlertFilter,
    limit: i64,
    redactor: &Redactor,
) -> Result<Vec<OutboxEntry>, StoreError> {
    let mut entries = Vec::new();
    if filter != AlertFilter::Held {
        let status = match filter {
            AlertFilter::Delivery(status) => Some(status),
            _ => None,
        };
        for delivery in store.deliveries(status, limit).await? {
            let article = store.article(delivery.article_id).await?;
            let article = article.map(|article| article.redacted(redactor));
            entries.push(OutboxEntry::Delivery(AlertView::new(delivery, article)));
        }
    }
    if matches!(filter, AlertFilter::All | AlertFilter::Held) {
        for hit in store.held_hits(limit).await? {
            let article = store.article(hit.article_id).await?;
            entries.push(OutboxEntry::Held(HeldView {
                id: hit.id(),
                story_id: hit.story_id,
                rule: hit.rule,
                status: "held",
                reason: hit.reason,
                held_at: hit.at,
                article: article.map(|article| article.redacted(redactor)),
            }));
        }
    }
    // Stable: deliveries keep their order among equal times.
    entries.sort_by_key(|entry| std::cmp::Reverse(entry.at()));
    entries.truncate(usize::try_from(limit).unwrap_or(0));
    Ok(entries)
}

/// A configured sink as `herald sinks` and `/api/v1/sinks` show it: never its
/// URL or credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SinkView {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// `ok`, or `broken`: its endpoint said it is gone and its alerts wait.
    pub status: &'static str,
    /// What the endpoint answered when it broke.
    pub reason: Option<String>,
    pub broken_since: Option<DateTime<Utc>>,
    /// Deliveries still to send (pending or failed), digests' waiting ones included.
    pub queued: i64,
}

/// Each configured sink (`(name, type)`, in order) with its health and queue.
pub async fn sinks(
    store: &Store,
    configured: &[(String, String)],
) -> Result<Vec<SinkView>, StoreError> {
    let broken = store.broken_sinks().await?;
    let queued = store.queued_by_sink().await?;
    Ok(configured
        .iter()
        .map(|(name, kind)| {
            let mark = broken.iter().find(|b| &b.sink == name);
            SinkView {
                name: name.clone(),
                kind: kind.clone(),
                status: if mark.is_some() { "broken" } else { "ok" },
                reason: mark.map(|b| b.reason.clone()),
                broken_since: mark.map(|b| b.since),
                queued: queued
                    .iter()
                    .find(|(sink, _)| sink == name)
                    .map_or(0, |(_, count)| *count),
            }
        })
        .collect())
}

/// Articles of other stories read when looking for a story's near misses:
/// every fingerprint in the window around the story, the most recent first.
/// A diagnostic, not the write path: a window of this many articles takes
/// a second or two to read.
const NEAR_MISS_SCAN_LIMIT: i64 = 200_000;

/// Near misses shown by `--candidates`.
const NEAR_MISSES_SHOWN: usize = 10;

/// Why a story holds its articles (`herald stories --explain ID`,
/// `/api/v1/stories/ID/explain`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoryExplanation {
    pub story: i64,
    /// The `[stories]` settings the decisions are replayed with.
    pub window_seconds: u64,
    pub threshold: f64,
    /// In the order they were stored; the first started the story.
    pub members: Vec<ExplainedMember>,
    /// With `candidates`: the nearest articles of other stories, and why
    /// each stayed out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidates: Option<Vec<ExplainedCandidate>>,
}

/// One article as an explanation names it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExplainedArticle {
    pub article: i64,
    pub title: String,
    /// The feed it was stored from: its name, else its URL with credentials hidden.
    pub outlet: String,
    pub seen_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExplainedMember {
    #[serde(flatten)]
    pub article: ExplainedArticle,
    /// How it compares with the earlier member it is closest to; absent for
    /// the first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub joined: Option<Comparison>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExplainedCandidate {
    #[serde(flatten)]
    pub article: ExplainedArticle,
    pub story: i64,
    pub comparison: Comparison,
}

/// The decision for one pair, replayed, with the evidence it weighed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The other article of the pair.
    pub with: i64,
    pub same_story: bool,
    pub reason: String,
    /// Estimated share of the smaller body's word shingles in the other's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub containment: Option<f64>,
    /// Share of the smaller summary's content words in the other's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub word_overlap: Option<f64>,
    pub title_overlap: f64,
    pub hours_apart: f64,
}

impl Comparison {
    fn new(with: i64, assessment: &crate::stories::Assessment) -> Comparison {
        let round = |x: f64| (x * 1000.0).round() / 1000.0;
        Comparison {
            with,
            same_story: assessment.verdict.is_same_story(),
            reason: assessment.verdict.describe(),
            containment: assessment.containment.map(round),
            word_overlap: assessment.word_overlap.map(round),
            title_overlap: round(assessment.title_overlap),
            hours_apart: round(assessment.gap.num_seconds() as f64 / 3600.0),
        }
    }
}

/// Replays the story decisions for `story_id` with `settings`: `None` when
/// no stored article of that story has a fingerprint (no such story, or
/// articles without text, which are always a story of their own).
pub async fn story_explanation(
    store: &Store,
    settings: &crate::stories::StorySettings,
    story_id: i64,
    with_candidates: bool,
    redactor: &Redactor,
) -> Result<Option<StoryExplanation>, StoreError> {
    use crate::domain::story::StoryFingerprintRecord;
    use crate::stories::{ArticleMeta, Fingerprint, StoredArticle};

    let explained = |record: &StoryFingerprintRecord| ExplainedArticle {
        article: record.article_id,
        title: record.title.clone(),
        outlet: record
            .outlet
            .name
            .clone()
            .unwrap_or_else(|| redactor.url(&record.outlet.url).into_owned()),
        seen_at: record.seen_at,
    };
    // A fingerprint of a format this version cannot read (written by a later
    // one) cannot be replayed: left out, as the decision leaves it out.
    let readable =
        |records: Vec<StoryFingerprintRecord>| -> Vec<(StoryFingerprintRecord, StoredArticle)> {
            records
                .into_iter()
                .filter_map(|record| {
                    let fingerprint = Fingerprint::from_bytes(&record.fingerprint).ok()?;
                    let stored = StoredArticle {
                        article_id: record.article_id,
                        story_id: record.story_id,
                        meta: ArticleMeta {
                            feed_id: record.feed_id,
                            seen_at: record.seen_at,
                        },
                        fingerprint,
                    };
                    Some((record, stored))
                })
                .collect()
        };
    let members = readable(store.story_fingerprints(story_id).await?);
    if members.is_empty() {
        return Ok(None);
    }
    let member_articles: Vec<StoredArticle> = members.iter().map(|(_, m)| m.clone()).collect();
    let reasons = crate::stories::member_reasons(&member_articles, settings);
    let explained_members = members
        .iter()
        .zip(&reasons)
        .map(|((record, _), reason)| ExplainedMember {
            article: explained(record),
            joined: reason
                .joined
                .as_ref()
                .map(|(with, assessment)| Comparison::new(*with, assessment)),
        })
        .collect();
    let candidates = if with_candidates {
        let window = settings.window_delta();
        let first = member_articles.iter().map(|m| m.meta.seen_at).min();
        let last = member_articles.iter().map(|m| m.meta.seen_at).max();
        let (Some(first), Some(last)) = (first, last) else {
            return Ok(None);
        };
        let from = first
            .checked_sub_signed(window)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let until = last
            .checked_add_signed(window)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let others = readable(
            store
                .fingerprints_between(from, until, story_id, NEAR_MISS_SCAN_LIMIT)
                .await?,
        );
        let other_articles: Vec<StoredArticle> = others.iter().map(|(_, o)| o.clone()).collect();
        let misses = crate::stories::near_misses(
            &member_articles,
            &other_articles,
            settings,
            NEAR_MISSES_SHOWN,
        );
        let by_id: std::collections::HashMap<i64, &StoryFingerprintRecord> = others
            .iter()
            .map(|(record, _)| (record.article_id, record))
            .collect();
        Some(
            misses
                .iter()
                .filter_map(|miss| {
                    let record = by_id.get(&miss.article_id)?;
                    Some(ExplainedCandidate {
                        article: explained(record),
                        story: miss.story_id,
                        comparison: Comparison::new(miss.member_id, &miss.assessment),
                    })
                })
                .collect(),
        )
    } else {
        None
    };
    Ok(Some(StoryExplanation {
        story: story_id,
        window_seconds: settings.window.as_secs(),
        threshold: settings.threshold,
        members: explained_members,
        candidates,
    }))
}
