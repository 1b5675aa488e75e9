//! One poll of one feed: fetch → parse → normalise → store, then record the outcome.
//!
//! An orchestrator: composes the leaf stages (`fetch`, `parse`, `normalize`) with the
//! `store`. A failure here is the feed's failure, recorded on its row with its reason;
//! it never stops other feeds.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use url::Url;

use crate::domain::alert::{AlertTarget, RuleMatch, RuleMute, Suppression};
use crate::domain::article::NewArticle;
use crate::domain::article::{RejectedItem, SaveSummary};
use crate::domain::feed::{FeedRecord, FetchRecord, FetchResult};
use crate::domain::redact::Redactor;
use crate::domain::schedule;
use crate::fetch::{FetchError, FetchOutcome, Fetcher, Validators};
use crate::normalize;
use crate::parse::{self, ParseFeedError};
use crate::rules::{Document, Matcher};
use crate::store::{Incoming, Store, StoreError};
use crate::stories::StoryInput;
use crate::stories::{Fingerprint, StorySettings};

/// Items published longer ago than this never alert, unless configured otherwise.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(48 * 3600);

/// The watch rules new articles are matched against, and the alerting policy.
#[derive(Debug)]
pub struct Watch {
    pub matcher: Matcher,
    /// Each rule's sinks, by rule name.
    pub sinks: HashMap<Arc<str>, Arc<[AlertTarget]>>,
    /// Items published earlier than this before now are stored but never alert.
    pub max_age: Duration,
    /// How new articles are grouped into stories, the unit alerts are unique on.
    pub stories: StorySettings,
    /// Rules muted until a time, as last read from the database.
    pub mutes: Mutes,
}

/// The rule mutes in force, as last read from the database (`herald rules
/// mute` writes them there, for every instance).
#[derive(Debug, Default)]
pub struct Mutes {
    until: std::sync::RwLock<HashMap<String, DateTime<Utc>>>,
    read_at: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Mutes {
    /// How long mutes read from the database are used before they are read
    /// again: a mute or unmute reaches a running herald within this.
    pub const REFRESH: Duration = Duration::from_secs(5);

    /// Whether the mutes were last read longer than [`Mutes::REFRESH`] ago.
    pub fn stale(&self) -> bool {
        let read_at = self
            .read_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        read_at.is_none_or(|at| at.elapsed() >= Mutes::REFRESH)
    }

    /// The rules of `matches` muted at `now`.
    fn among(&self, matches: &[RuleMatch], now: DateTime<Utc>) -> Vec<Arc<str>> {
        let until = self
            .until
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if until.is_empty() {
            return Vec::new();
        }
        matches
            .iter()
            .filter(|hit| until.get(&*hit.rule).is_some_and(|end| *end > now))
            .map(|hit| Arc::clone(&hit.rule))
            .collect()
    }

    /// Replaces the mutes with those just read.
    pub fn replace(&self, mutes: Vec<RuleMute>) {
        *self
            .until
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = mutes
            .into_iter()
            .map(|mute| (mute.rule, mute.until))
            .collect();
        *self
            .read_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(std::time::Instant::now());
    }
}

impl Default for Watch {
    fn default() -> Watch {
        Watch {
            matcher: Matcher::default(),
            sinks: HashMap::new(),
            max_age: DEFAULT_MAX_AGE,
            stories: StorySettings::default(),
            mutes: Mutes::default(),
        }
    }
}

/// The feed a document came from, as matching and storing need it.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub feed_id: i64,
    /// Base for relative links: the address the document was fetched from.
    pub base_url: &'a Url,
    /// The feed's name and URL, as `feed:` queries search them.
    pub label: &'a str,
    pub tags: &'a [String],
    /// False until the feed's first document is stored: that one is its back
    /// catalogue, whose items never alert.
    pub backfilled: bool,
}

impl Watch {
    /// The rules that fire on a new article, and whether their alerts are held back.
    fn judge(&self, article: NewArticle, source: &Source<'_>, now: DateTime<Utc>) -> Incoming {
        if self.matcher.is_empty() {
            return Incoming::from(article);
        }
        let document = Document {
            title: &article.title,
            summary: article.summary_text.as_deref().unwrap_or_default(),
            content: article.content_text.as_deref().unwrap_or_default(),
            author: article.author.as_deref().unwrap_or_default(),
            url: article.url.as_deref().unwrap_or_default(),
            feed: source.label,
            tags: source.tags,
        };
        let hits = self.matcher.match_document(&document);
        let matches: Vec<RuleMatch> = hits
            .iter()
            .filter_map(|hit| {
                let rule = self.matcher.rule_name(hit.rule)?;
                let (rule, sinks) = match self.sinks.get_key_value(rule) {
                    Some((name, sinks)) => (Arc::clone(name), Arc::clone(sinks)),
                    None => (Arc::from(rule), Arc::from([])),
                };
                Some(RuleMatch {
                    rule,
                    matched: hit.terms().cloned().collect(),
                    sinks,
                })
            })
            .collect();
        let muted = self.mutes.among(&matches, now);
        let too_old = chrono::Duration::from_std(self.max_age)
            .ok()
            .and_then(|age| now.checked_sub_signed(age))
            .is_some_and(|oldest| article.published_at < oldest);
        let suppressed = if !source.backfilled {
            Some(Suppression::BackCatalogue)
        } else if too_old {
            Some(Suppression::TooOld)
        } else {
            None
        };
        Incoming {
            article,
            matches,
            suppressed,
            muted,
            story: None,
        }
    }
}

/// What story clustering compares: the title, and the body as the article's full
/// text when the feed gives it, else its summary (a summary-only copy is then
/// contained in the full one).
fn story_input(article: &NewArticle) -> StoryInput {
    let body = [&article.content_text, &article.summary_text]
        .into_iter()
        .flatten()
        .find(|text| !text.trim().is_empty())
        .map_or("", String::as_str);
    StoryInput::new(Fingerprint::new(&article.title, body), article.published_at)
}

/// Why a fetched document could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Parse(#[from] ParseFeedError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("processing the document stopped: {0}")]
    Worker(String),
}

/// What storing one document did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DocumentSummary {
    pub title: Option<String>,
    pub site_url: Option<String>,
    pub entries: usize,
    pub saved: SaveSummary,
}

/// The feed a document came from, owned, for the worker threads.
struct OwnedSource {
    feed_id: i64,
    base_url: Url,
    label: String,
    tags: Vec<String>,
    backfilled: bool,
}

impl OwnedSource {
    fn new(source: &Source<'_>) -> OwnedSource {
        OwnedSource {
            feed_id: source.feed_id,
            base_url: source.base_url.clone(),
            label: source.label.to_owned(),
            tags: source.tags.to_vec(),
            backfilled: source.backfilled,
        }
    }

    fn borrow(&self) -> Source<'_> {
        Source {
            feed_id: self.feed_id,
            base_url: &self.base_url,
            label: &self.label,
            tags: &self.tags,
            backfilled: self.backfilled,
        }
    }
}

/// Runs CPU-bound work on the blocking pool, so documents fetched at the same
/// time are parsed, sanitised, matched and fingerprinted on every core instead
/// of one after another on the runtime thread that polls them.
///
/// At most one piece of work per core runs at once. A hundred documents
/// parsed on a hundred blocking threads would share the cores with the
/// runtime threads evenly, starving the one task that matters most while
/// they run: the writer, whose group write every parsed document waits for.
async fn on_worker<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, IngestError> {
    static CORES: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    let cores = CORES.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        tokio::sync::Semaphore::new(cores)
    });
    // The semaphore is never closed, so acquiring cannot fail.
    let _core = cores
        .acquire()
        .await
        .map_err(|error| IngestError::Worker(error.to_string()))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| IngestError::Worker(error.to_string()))
}

/// Parses a feed document and stores its entries for `feed_id`.
///
/// Entries this feed already stored with the same fingerprint are skipped before the
/// costly steps (HTML sanitising), so re-polling an unchanged feed is cheap.
pub async fn store_document(
    store: &Store,
    watch: &Arc<Watch>,
    source: &Source<'_>,
    body: &[u8],
    content_type: Option<&str>,
    now: DateTime<Utc>,
) -> Result<DocumentSummary, IngestError> {
    let body = body.to_vec();
    let content_type = content_type.map(str::to_owned);
    let (feed, keyed) = on_worker(move || {
        let feed = parse::parse_feed(&body, content_type.as_deref())?;
        let keyed: Vec<(String, String)> = feed
            .entries
            .iter()
            .map(|entry| (normalize::item_key(entry), normalize::fingerprint(entry)))
            .collect();
        Ok::<_, ParseFeedError>((feed, keyed))
    })
    .await??;
    let keys: Vec<String> = keyed.iter().map(|(key, _)| key.clone()).collect();
    let known = store.known_items(source.feed_id, &keys).await?;
    let entries = feed.entries.len();
    let (title, site_url) = (feed.title.clone(), feed.site_url.clone());
    let owned = OwnedSource::new(source);
    let judge = Arc::clone(watch);
    let (articles, skipped) = on_worker(move || {
        let source = owned.borrow();
        let mut seen = HashSet::new();
        let mut articles: Vec<Incoming> = Vec::new();
        let mut skipped = 0;
        for (entry, (key, fingerprint)) in feed.entries.iter().zip(&keyed) {
            if !seen.insert(key.as_str()) {
                continue;
            }
            if known.get(key) == Some(fingerprint) {
                skipped += 1;
                continue;
            }
            let article = normalize::to_article(entry, source.base_url, now);
            // Only items this feed never carried can be new articles; edits never alert.
            articles.push(if known.contains_key(key) {
                Incoming::from(article)
            } else {
                let story = story_input(&article);
                Incoming {
                    story: Some(story),
                    ..judge.judge(article, &source, now)
                }
            });
        }
        (articles, skipped)
    })
    .await?;
    let mut saved = if articles.is_empty() {
        SaveSummary::default()
    } else {
        store
            .save_articles(source.feed_id, &articles, &watch.stories, now)
            .await?
    };
    saved.unchanged += skipped;
    Ok(DocumentSummary {
        title,
        site_url,
        entries,
        saved,
    })
}

/// How a poll of one feed ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PollStatus {
    Ok,
    NotModified,
    Error,
    Disabled,
}

impl PollStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PollStatus::Ok => "ok",
            PollStatus::NotModified => "not_modified",
            PollStatus::Error => "error",
            PollStatus::Disabled => "disabled",
        }
    }
}

/// The result of polling one feed, as `herald poll` reports it: its URLs and error
/// are redacted ([`Redactor`]), fit to print, log and send.
#[derive(Debug, Clone, Serialize)]
pub struct PollReport {
    pub url: String,
    pub name: Option<String>,
    pub status: PollStatus,
    /// Articles stored for the first time.
    pub new: usize,
    /// Items already stored from another feed, now also linked to this one.
    pub merged: usize,
    /// New articles that joined a story already stored (reprints under other URLs).
    pub reprints: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Rule hits recorded (alerts), including those held back from delivery.
    pub alerts: usize,
    pub error: Option<String>,
    /// Set when the feed answered with a permanent redirect: its new address.
    pub moved_to: Option<String>,
    pub duration_ms: u64,
    /// Time from the start of the fetch until its outcome was recorded.
    #[serde(skip)]
    pub elapsed: Duration,
    /// Ids of the articles stored for the first time (for matching and alerts).
    #[serde(skip)]
    pub inserted: Vec<i64>,
}

impl PollReport {
    fn new(feed: &FeedRecord, redactor: &Redactor) -> PollReport {
        PollReport {
            url: redactor.url(&feed.url).into_owned(),
            name: feed.name.clone().or_else(|| feed.title.clone()),
            status: PollStatus::Ok,
            new: 0,
            merged: 0,
            reprints: 0,
            updated: 0,
            unchanged: 0,
            alerts: 0,
            error: None,
            moved_to: None,
            duration_ms: 0,
            elapsed: Duration::ZERO,
            inserted: Vec::new(),
        }
    }
}

/// Fetches a feed once, stores what is new or changed, records the outcome on the
/// feed row and schedules its next fetch `interval` later (with back-off on failure).
pub async fn poll_feed(
    store: &Store,
    fetcher: &Fetcher,
    watch: &Arc<Watch>,
    feed: &FeedRecord,
    tags: &[String],
    interval: Duration,
) -> PollReport {
    let started = Instant::now();
    let redactor = &fetcher.settings().redactor;
    let mut report = PollReport::new(feed, redactor);
    let outcome = poll_outcome(store, fetcher, watch, feed, tags, &mut report).await;
    let now = Utc::now();
    let mut feed_at_fault = true;
    let (result, retry_after) = match outcome {
        Ok(result) => (result, None),
        Err(mut failure) => {
            feed_at_fault = !failure.database;
            // The fetcher names URLs redacted already; this also covers any a cause
            // quotes, since the message is stored and shown.
            failure.message = redactor.text(&failure.message).into_owned();
            report.error = Some(failure.message.clone());
            report.status = if failure.gone {
                PollStatus::Disabled
            } else {
                PollStatus::Error
            };
            let result = if failure.gone {
                FetchResult::Gone {
                    error: failure.message,
                }
            } else {
                FetchResult::Failed {
                    error: failure.message,
                }
            };
            (result, failure.retry_after)
        }
    };
    // A database that could not store the document is not the publisher's
    // fault: the feed is fetched again after its interval, without back-off.
    let failures = match result {
        FetchResult::Failed { .. } | FetchResult::Gone { .. } if feed_at_fault => {
            feed.failures.saturating_add(1)
        }
        _ => 0,
    };
    let record = FetchRecord {
        at: now,
        next_fetch_at: schedule::next_fetch_at(
            now,
            interval,
            failures,
            retry_after,
            rand::random::<f64>(),
        ),
        result,
    };
    if let Err(error) = store.record_fetch(feed.id, &record).await {
        report.status = PollStatus::Error;
        report
            .error
            .get_or_insert_with(|| redactor.text(&error.to_string()).into_owned());
    }
    report.elapsed = started.elapsed();
    report.duration_ms = u64::try_from(report.elapsed.as_millis()).unwrap_or(u64::MAX);
    report
}

/// The feed's error when the database refused some items (the others were stored).
fn refused_items(rejected: &[RejectedItem], entries: usize) -> Option<String> {
    let first = rejected.first()?;
    Some(format!(
        "{} of {entries} items not stored; item {}: {}",
        rejected.len(),
        first.item_key,
        first.error
    ))
}

struct PollFailure {
    message: String,
    retry_after: Option<Duration>,
    gone: bool,
    /// The database failed, not the feed.
    database: bool,
}

impl From<FetchError> for PollFailure {
    fn from(error: FetchError) -> PollFailure {
        PollFailure {
            gone: matches!(error, FetchError::Gone),
            retry_after: error.retry_after(),
            message: error.to_string(),
            database: false,
        }
    }
}

impl From<IngestError> for PollFailure {
    fn from(error: IngestError) -> PollFailure {
        PollFailure {
            message: error.to_string(),
            retry_after: None,
            gone: false,
            database: matches!(error, IngestError::Store(_)),
        }
    }
}

async fn poll_outcome(
    store: &Store,
    fetcher: &Fetcher,
    watch: &Arc<Watch>,
    feed: &FeedRecord,
    tags: &[String],
    report: &mut PollReport,
) -> Result<FetchResult, PollFailure> {
    let parse = |text: &str| {
        Url::parse(text).map_err(|e| PollFailure {
            message: format!("invalid feed URL: {e}"),
            retry_after: None,
            gone: false,
            database: false,
        })
    };
    let configured = parse(&feed.url)?;
    let url = parse(&feed.fetch_url)?;
    let validators = Validators {
        etag: feed.etag.clone(),
        last_modified: feed.last_modified.clone(),
    };
    let outcome = fetcher.fetch_moved(&configured, &url, &validators).await?;
    let document = match outcome {
        FetchOutcome::NotModified => {
            report.status = PollStatus::NotModified;
            return Ok(FetchResult::NotModified);
        }
        FetchOutcome::Fetched(document) => document,
    };
    let label = match &feed.name {
        Some(name) => format!("{name} {}", feed.url),
        None => feed.url.clone(),
    };
    let source = Source {
        feed_id: feed.id,
        base_url: &document.final_url,
        label: &label,
        tags,
        backfilled: feed.backfilled_at.is_some(),
    };
    let summary = store_document(
        store,
        watch,
        &source,
        &document.body,
        document.content_type.as_deref(),
        Utc::now(),
    )
    .await?;
    report.new = summary.saved.inserted.len();
    report.merged = summary.saved.merged;
    report.reprints = summary.saved.joined_stories;
    report.updated = summary.saved.updated;
    report.unchanged = summary.saved.unchanged;
    report.inserted = summary.saved.inserted;
    report.alerts = summary.saved.alerts.len() + summary.saved.held;
    // Stored in full, the next fetch's target; reported redacted.
    let moved_to = document.moved_to.as_ref().map(Url::to_string);
    let redactor = &fetcher.settings().redactor;
    report.moved_to = moved_to
        .as_deref()
        .map(|url| redactor.url(url).into_owned());
    // An item's key may be its link.
    report.error = refused_items(&summary.saved.rejected, summary.entries)
        .map(|error| redactor.text(&error).into_owned());
    // With items refused the validators are not kept: the next poll fetches the
    // document again and retries them, should the cause have gone.
    let validators = match report.error {
        None => document.validators,
        Some(_) => Validators::default(),
    };
    Ok(FetchResult::Fetched {
        etag: validators.etag,
        last_modified: validators.last_modified,
        title: summary.title,
        site_url: summary.site_url,
        moved_to,
        error: report.error.clone(),
    })
}
