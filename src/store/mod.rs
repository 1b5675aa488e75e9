//! The storage boundary: the only module that knows SQL or names sqlx.
//!
//! [`Store`] is chosen by the database URL's scheme: `sqlite:` for the embedded
//! single-instance default, `postgres:` for the shared production database. Both
//! backends implement the same operations with the same guarantees, and the same
//! test bodies run against both.
//!
//! Every write is repeatable: unique keys with `ON CONFLICT`, so concurrent pollers of
//! one feed (several instances, or a retry after a crash) store each item once.

mod assign;
mod group_commit;
mod postgres;
mod retention;
mod sqlite;
mod story_index;
mod write_health;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use futures::stream::BoxStream;

use crate::config::DEFAULT_BUSY_TIMEOUT;
use crate::domain::article::{Article, ArticleSource, NewArticle};
use crate::domain::redact::redact_url;
use crate::stories::StorySettings;

pub use assign::StoryInput;
pub use postgres::PgStore;
pub use retention::{DEFAULT_BATCH as DEFAULT_PRUNE_BATCH, PrunePolicy, PruneReport};
pub use sqlite::SqliteStore;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL: expected sqlite://PATH or postgres://…")]
    UnsupportedUrl,
    // The cause is written out here and not chained as a source: sqlx's text
    // already includes its own cause, and PostgreSQL's shows a line of the
    // server's C source ("at line 948"), read as a line of the configuration.
    #[error("cannot open the database: {}", plain(.0))]
    Connect(sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {}", plain(.0))]
    Database(sqlx::Error),
    #[error("the database did not answer within {}s", .0.as_secs())]
    NoAnswer(std::time::Duration),
    #[error("the write was interrupted before it finished; nothing was stored")]
    Abandoned,
    #[error("stored value is invalid: {0}")]
    Corrupt(String),
    #[error(
        "another herald is already running on {0}; SQLite serves one instance \
         (use PostgreSQL to run several)"
    )]
    InUse(String),
    #[error(
        "{0} holds another application's tables ({1}) and no herald schema: \
         point [database] url at a new database"
    )]
    Foreign(String, String),
    #[error("{0} is damaged ({1}): restore it from a backup, or move it aside to start a new one")]
    Damaged(String, String),
    #[error(
        "{0} stayed locked by another process's write for longer than \
         [database] busy_timeout ({1:?}): raise it, or look for what holds the lock"
    )]
    Busy(String, Duration),
    #[error("cannot lock {path}: {error}")]
    Lock {
        path: String,
        #[source]
        error: std::io::Error,
    },
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> StoreError {
        StoreError::Database(error)
    }
}

/// sqlx's error as an operator should read it: a database's own message
/// without PostgreSQL's source-code line.
fn plain(error: &sqlx::Error) -> String {
    match error.as_database_error() {
        Some(database) => format!("error returned from database: {}", database.message()),
        None => error.to_string(),
    }
}

impl StoreError {
    /// SQLite gave up waiting for another connection's lock (BUSY, LOCKED), or
    /// every connection of the pool stayed taken as long.
    fn is_lock_timeout(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::PoolTimedOut) => true,
            StoreError::Database(sqlx::Error::Database(error)) => {
                matches!(database_code(error.as_ref()), Some(Code::Sqlite(5 | 6)))
            }
            _ => false,
        }
    }

    /// The database's own words when it found its storage damaged: a file
    /// that is not a database or a malformed page (SQLite CORRUPT, NOTADB), a
    /// corrupted block or index (PostgreSQL XX001, XX002).
    pub(super) fn damage(&self) -> Option<String> {
        let error = match self {
            StoreError::Database(error)
            | StoreError::Connect(error)
            | StoreError::Migrate(sqlx::migrate::MigrateError::Execute(error))
            | StoreError::Migrate(sqlx::migrate::MigrateError::ExecuteMigration(error, _)) => {
                error.as_database_error()?
            }
            _ => return None,
        };
        let damaged = matches!(
            database_code(error),
            Some(Code::Sqlite(11 | 26) | Code::Postgres("XX001" | "XX002"))
        );
        damaged.then(|| error.message().to_owned())
    }

    /// True when the database refused these rows (a value it cannot hold, a
    /// broken constraint) rather than failing as a whole (down, busy, full):
    /// the same rows fail again, other rows may pass. SQLite: TOOBIG,
    /// CONSTRAINT, MISMATCH, RANGE; PostgreSQL: the SQLSTATE classes data
    /// exception and integrity constraint violation.
    pub fn is_refused_data(&self) -> bool {
        let StoreError::Database(sqlx::Error::Database(error)) = self else {
            return false;
        };
        match database_code(error.as_ref()) {
            Some(Code::Sqlite(code)) => matches!(code, 18 | 19 | 20 | 25),
            Some(Code::Postgres(code)) => code.starts_with("22") || code.starts_with("23"),
            None => false,
        }
    }
}

/// A database's own code for an error.
enum Code<'a> {
    /// SQLite's primary result code: the low byte of its extended one.
    Sqlite(i32),
    /// PostgreSQL's SQLSTATE.
    Postgres(&'a str),
}

fn database_code(error: &dyn sqlx::error::DatabaseError) -> Option<Code<'_>> {
    if let Some(postgres) = error.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        return Some(Code::Postgres(postgres.code()));
    }
    let extended = error.code()?.parse::<i32>().ok()?;
    Some(Code::Sqlite(extended & 0xff))
}

/// The tables herald's migrations create: a database holding any of them
/// without herald's migration history belongs to something else.
const HERALD_TABLES: &[&str] = &[
    "feeds",
    "articles",
    "article_sources",
    "stories",
    "story_fingerprints",
    "alerts",
    "deliveries",
    "delivery_attempts",
];

/// Held while a daemon runs on a database that only one process may serve.
#[derive(Debug)]
pub struct InstanceLock {
    _file: Option<std::fs::File>,
}

/// A configured feed, as the store keeps it in step with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedSpec {
    pub url: String,
    pub name: Option<String>,
}

/// The state of a feed's last fetch, as `herald feeds` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedStatus {
    Ok,
    NotModified,
    Error,
    Disabled,
    Never,
}

impl FeedStatus {
    pub const ALL: [FeedStatus; 5] = [
        FeedStatus::Ok,
        FeedStatus::NotModified,
        FeedStatus::Error,
        FeedStatus::Disabled,
        FeedStatus::Never,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FeedStatus::Ok => "ok",
            FeedStatus::NotModified => "not_modified",
            FeedStatus::Error => "error",
            FeedStatus::Disabled => "disabled",
            FeedStatus::Never => "never",
        }
    }

    fn parse(text: &str) -> Result<FeedStatus, StoreError> {
        Ok(match text {
            "ok" => FeedStatus::Ok,
            "not_modified" => FeedStatus::NotModified,
            "error" => FeedStatus::Error,
            "disabled" => FeedStatus::Disabled,
            "never" => FeedStatus::Never,
            other => return Err(StoreError::Corrupt(format!("feed status {other:?}"))),
        })
    }
}

/// A feed row with its health and article count.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedRecord {
    pub id: i64,
    /// The URL as configured: the feed's identity.
    pub url: String,
    /// Where the feed is fetched from now (differs from `url` after a permanent redirect).
    pub fetch_url: String,
    pub name: Option<String>,
    /// The feed's own title, from its last successful fetch.
    pub title: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub status: FeedStatus,
    pub error: Option<String>,
    pub failures: u32,
    pub last_fetch_at: Option<DateTime<Utc>>,
    pub next_fetch_at: Option<DateTime<Utc>>,
    /// When the feed's back catalogue was first stored; items seen before then never alert.
    pub backfilled_at: Option<DateTime<Utc>>,
    pub articles: i64,
}

/// What one fetch of a feed came to, as recorded on the feed row.
#[derive(Debug, Clone, PartialEq)]
pub enum FetchResult {
    /// A document was fetched and stored.
    Fetched {
        etag: Option<String>,
        last_modified: Option<String>,
        title: Option<String>,
        site_url: Option<String>,
        /// A permanent redirect's target: the feed is fetched from there from now on.
        moved_to: Option<String>,
        /// Why some items were not stored (the rest were); shown on the feed.
        error: Option<String>,
    },
    /// 304: the stored validators still hold.
    NotModified,
    /// The fetch or the document failed; `failures` is incremented.
    Failed { error: String },
    /// 410 Gone: the feed is disabled.
    Gone { error: String },
}

/// A fetch to record on a feed row.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchRecord {
    pub at: DateTime<Utc>,
    pub next_fetch_at: DateTime<Utc>,
    pub result: FetchResult,
}

/// A rule that fired on an article about to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleMatch {
    /// Shared with the rule set: an article matching hundreds of rules costs no
    /// string copies (names, terms and sink lists are reference-counted).
    pub rule: Arc<str>,
    /// The rule's terms found in the article.
    pub matched: Vec<Arc<str>>,
    /// Sinks to deliver the alert to: one outbox row each.
    pub sinks: Arc<[String]>,
}

/// Why a rule hit is recorded but never delivered (no alert storms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suppression {
    /// The article came with the first fetch of its feed.
    BackCatalogue,
    /// The article was published before `alerts.max_age`.
    TooOld,
}

impl Suppression {
    pub fn as_str(self) -> &'static str {
        match self {
            Suppression::BackCatalogue => "back_catalogue",
            Suppression::TooOld => "too_old",
        }
    }
}

/// An article to store, with what the matcher found in it. The matches become
/// alerts only if this write is the one that stores the article first.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    pub article: NewArticle,
    pub matches: Vec<RuleMatch>,
    pub suppressed: Option<Suppression>,
    /// The article's text fingerprint: with it a new article joins the story of
    /// a near-duplicate stored within the window; without it, it starts its own.
    pub story: Option<StoryInput>,
}

impl From<NewArticle> for Incoming {
    fn from(article: NewArticle) -> Incoming {
        Incoming {
            article,
            matches: Vec::new(),
            suppressed: None,
            story: None,
        }
    }
}

/// An article's words and feeds, as searches and backtests read them.
#[derive(Debug, Clone, PartialEq)]
pub struct ArticleText {
    pub id: i64,
    pub title: String,
    pub summary: String,
    pub content: String,
    pub author: String,
    pub url: String,
    pub published_at: DateTime<Utc>,
    pub feed_ids: Vec<i64>,
}

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

    /// A status as stored: anything else means the row is corrupt.
    pub(super) fn from_column(text: &str) -> Result<DeliveryStatus, StoreError> {
        DeliveryStatus::parse(text)
            .ok_or_else(|| StoreError::Corrupt(format!("delivery status {text:?}")))
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
}

/// A story with the outlets (feeds) that carried it, as `herald stories` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoryRecord {
    pub id: i64,
    /// When herald stored the story's first article.
    pub first_seen_at: DateTime<Utc>,
    /// The first article's title and link.
    pub title: String,
    pub url: Option<String>,
    /// Articles in the story: the first and its reprints under other URLs.
    pub articles: i64,
    /// Every feed that carried an article of the story, in the order they did.
    pub outlets: Vec<ArticleSource>,
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

/// What storing one fetch's items changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaveSummary {
    /// Articles stored for the first time, by this call and no other (alerts key on this).
    pub inserted: Vec<i64>,
    /// Items already stored from another feed under the same canonical URL: a new source.
    pub merged: usize,
    /// Items whose content changed since this feed last carried them: updated in place.
    pub updated: usize,
    /// Items this feed carried before, unchanged.
    pub unchanged: usize,
    /// Alerts recorded (rule hits on stories that had none for that rule).
    pub alerts: Vec<i64>,
    /// New articles that joined an existing story (reprints of a story already stored).
    pub joined_stories: usize,
    /// Rule hits held back (back catalogue, too old): recorded on their story, never sent.
    pub held: usize,
    /// Items the database refused, with why; the batch's other items are stored.
    pub rejected: Vec<RejectedItem>,
}

/// An item the database would not store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedItem {
    pub item_key: String,
    pub error: String,
}

impl SaveSummary {
    /// Adds what another write of the same batch stored.
    pub fn absorb(&mut self, other: SaveSummary) {
        self.inserted.extend(other.inserted);
        self.merged += other.merged;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.alerts.extend(other.alerts);
        self.joined_stories += other.joined_stories;
        self.held += other.held;
        self.rejected.extend(other.rejected);
    }
}

/// The storage backend, chosen by URL scheme.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

macro_rules! dispatch {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            Store::Sqlite($store) => $call,
            Store::Postgres($store) => $call,
        }
    };
}

impl Store {
    /// Opens the database named by `url` (`sqlite://PATH` or `postgres://…`).
    ///
    /// The URL may carry a password, so it never appears in the error.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Store::connect_waiting(url, DEFAULT_BUSY_TIMEOUT).await
    }

    /// As [`Store::connect`]; on SQLite a write waits up to `busy_timeout` for
    /// another process's write before it fails.
    pub async fn connect_waiting(url: &str, busy_timeout: Duration) -> Result<Store, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Store::Sqlite(
                SqliteStore::connect(url, busy_timeout).await?,
            ))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Store::Postgres(PgStore::connect(url).await?))
        } else {
            Err(StoreError::UnsupportedUrl)
        }
    }

    /// Makes sure this is the only daemon on the database: on SQLite, an exclusive
    /// lock on the database file, held until the returned guard is dropped (the
    /// kernel drops it when the process dies, however it dies). PostgreSQL serves
    /// any number of instances.
    pub fn lock_single_instance(&self) -> Result<InstanceLock, StoreError> {
        match self {
            Store::Sqlite(s) => s.lock_single_instance(),
            Store::Postgres(_) => Ok(InstanceLock { _file: None }),
        }
    }

    /// Applies the embedded migrations of this backend, after making sure the
    /// database is herald's (or empty): another application's database is not
    /// taken over, and a file found damaged on the way is named as such.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrated = async {
            self.refuse_foreign().await?;
            dispatch!(self, s => s.migrate().await)
        };
        self.naming_damage(migrated.await)
    }

    /// Reads every page of a SQLite database that is not large (a second or so
    /// per few hundred MB), so that `herald run` and `herald migrate` stop on a
    /// damaged file instead of starting on it. Short commands (`poll` from
    /// cron, `feeds`, `search`) skip it: they would pay it on every run.
    pub async fn check_integrity_at_start(&self) -> Result<(), StoreError> {
        let checked = self.check_integrity(false).await;
        self.naming_damage(checked)
    }

    /// What `herald check` asks of the database: reachable, herald's or empty,
    /// and (SQLite) its every page readable, however large the file.
    pub async fn verify(&self) -> Result<(), StoreError> {
        let verified = async {
            self.refuse_foreign().await?;
            self.check_integrity(true).await
        };
        self.naming_damage(verified.await)
    }

    async fn refuse_foreign(&self) -> Result<(), StoreError> {
        let tables = dispatch!(self, s => s.table_names().await)?;
        if tables.iter().any(|table| table == "_sqlx_migrations") {
            return Ok(());
        }
        // A SQLite file belongs to one application; a PostgreSQL database may
        // be shared, as long as no table has a name herald's schema uses.
        let foreign: Vec<&str> = tables
            .iter()
            .map(String::as_str)
            .filter(|table| matches!(self, Store::Sqlite(_)) || HERALD_TABLES.contains(table))
            .collect();
        if foreign.is_empty() {
            return Ok(());
        }
        Err(StoreError::Foreign(
            dispatch!(self, s => s.describe()),
            foreign.join(", "),
        ))
    }

    async fn check_integrity(&self, thorough: bool) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.check_integrity(thorough).await,
            // PostgreSQL checks its pages as it reads them (XX001 on a bad one).
            Store::Postgres(_) => Ok(()),
        }
    }

    fn naming_damage<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        result.map_err(|error| match error.damage() {
            Some(reason) => StoreError::Damaged(dispatch!(self, s => s.describe()), reason),
            None => error,
        })
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// Ensures a row exists for each configured feed and keeps names in step; returns
    /// each feed's stored state in the order given. Feeds not given are kept, with
    /// their history, but marked inactive: no longer scheduled.
    pub async fn sync_feeds(&self, feeds: &[FeedSpec]) -> Result<Vec<FeedRecord>, StoreError> {
        self.observed(dispatch!(self, s => s.sync_feeds(feeds).await))
    }

    pub async fn feed(&self, id: i64) -> Result<Option<FeedRecord>, StoreError> {
        dispatch!(self, s => s.feed(id).await)
    }

    /// All feeds with their health, in URL order.
    pub async fn feeds(&self) -> Result<Vec<FeedRecord>, StoreError> {
        dispatch!(self, s => s.feeds().await)
    }

    /// The fingerprints this feed last stored for the given item keys.
    pub async fn known_items(
        &self,
        feed_id: i64,
        keys: &[String],
    ) -> Result<HashMap<String, String>, StoreError> {
        dispatch!(self, s => s.known_items(feed_id, keys).await)
    }

    /// Stores one fetch's articles in one transaction: new items become
    /// articles (or new sources of an article with the same canonical URL), changed
    /// items update their article in place, unchanged items are left alone. Each
    /// new article joins the story of its best near-duplicate within
    /// `stories.window` (stored before, or earlier in this batch) or starts one;
    /// its rule hits become alerts only for rules its story has not fired yet.
    pub async fn save_articles(
        &self,
        feed_id: i64,
        articles: &[Incoming],
        stories: &StorySettings,
        now: DateTime<Utc>,
    ) -> Result<SaveSummary, StoreError> {
        self.observed(dispatch!(self, s => s.save_articles(feed_id, articles, stories, now).await))
    }

    /// Articles published since `since`, newest first, as a stream: memory stays flat
    /// however many are scanned.
    pub fn scan_articles(
        &self,
        since: DateTime<Utc>,
    ) -> BoxStream<'_, Result<ArticleText, StoreError>> {
        dispatch!(self, s => s.scan_articles(since))
    }

    /// How many articles were published since `since` (for progress display).
    pub async fn count_articles_since(&self, since: DateTime<Utc>) -> Result<i64, StoreError> {
        dispatch!(self, s => s.count_articles_since(since).await)
    }

    /// Claims up to `limit` active feeds due at `now` (never fetched first, then by
    /// due time) for `owner` until `lease_until`. Recording the fetch releases the
    /// claim; a claim whose owner died lapses at `lease_until`, so another instance
    /// fetches the feed instead.
    pub async fn claim_due_feeds(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<FeedRecord>, StoreError> {
        self.observed(dispatch!(self, s => s.claim_due_feeds(owner, now, lease_until, limit).await))
    }

    /// When the next active feed can be claimed: due and not leased.
    pub async fn next_feed_due_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        dispatch!(self, s => s.next_feed_due_at().await)
    }

    /// Claims up to `limit` deliveries due at `now` for `owner` until `lease_until`,
    /// oldest first, skipping those attempted since `fresh_since` (so one pass makes
    /// one attempt each). A claim whose owner died is due again once its lease expires.
    ///
    /// Each sink's queue is first in, first out: a delivery is claimed only when
    /// every older open delivery to the same sink is claimable in the same call, so a
    /// delivery waiting for its retry holds back the younger ones behind it.
    pub async fn claim_deliveries(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        fresh_since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        self.observed(
            dispatch!(self, s => s.claim_deliveries(owner, now, lease_until, fresh_since, limit).await),
        )
    }

    /// Records an attempt and releases the claim. Ignored unless `owner` still holds
    /// the claim, so a dispatcher that lost its lease cannot overwrite a newer result.
    pub async fn record_attempt(
        &self,
        id: i64,
        owner: &str,
        attempt: &AttemptRecord,
    ) -> Result<bool, StoreError> {
        self.observed(dispatch!(self, s => s.record_attempt(id, owner, attempt).await))
    }

    /// Gives back claims that were not attempted (their sink's queue stalled), so
    /// they are due again at once, behind the delivery that failed.
    pub async fn release_deliveries(&self, ids: &[i64], owner: &str) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        dispatch!(self, s => s.release_deliveries(ids, owner).await)
    }

    /// Deliveries, newest first, optionally of one status.
    pub async fn deliveries(
        &self,
        status: Option<DeliveryStatus>,
        limit: i64,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        dispatch!(self, s => s.deliveries(status, limit).await)
    }

    /// Queues deliveries again (`failed` or `dead` ones; others are left alone):
    /// one by id, or every dead one. Returns how many were queued.
    pub async fn retry_deliveries(
        &self,
        id: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        dispatch!(self, s => s.retry_deliveries(id, now).await)
    }

    /// A delivery's state; `None` when there is no delivery `id`.
    pub async fn delivery_status(&self, id: i64) -> Result<Option<DeliveryStatus>, StoreError> {
        dispatch!(self, s => s.delivery_status(id).await)
    }

    /// When the next pending or failed delivery is due: the earliest of each sink's
    /// oldest open delivery, since the others wait behind it.
    pub async fn next_delivery_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        dispatch!(self, s => s.next_delivery_at().await)
    }

    /// Stories started since `since` that at least `min_outlets` feeds carried,
    /// newest first.
    pub async fn stories(
        &self,
        since: DateTime<Utc>,
        min_outlets: i64,
        limit: i64,
    ) -> Result<Vec<StoryRecord>, StoreError> {
        let mut stories = dispatch!(self, s => s.stories(since, min_outlets, limit).await)?;
        let ids: Vec<i64> = stories.iter().map(|story| story.id).collect();
        let mut by_story = dispatch!(self, s => s.outlets_of(&ids).await)?;
        for story in &mut stories {
            story.outlets = by_story.remove(&story.id).unwrap_or_default();
        }
        Ok(stories)
    }

    /// Every feed that carried an article of the story, in the order they did.
    pub async fn story_outlets(&self, story_id: i64) -> Result<Vec<ArticleSource>, StoreError> {
        let mut by_story = dispatch!(self, s => s.outlets_of(&[story_id]).await)?;
        Ok(by_story.remove(&story_id).unwrap_or_default())
    }

    /// Recorded rule hits, newest first.
    pub async fn alerts(&self, limit: i64) -> Result<Vec<AlertRecord>, StoreError> {
        dispatch!(self, s => s.alerts(limit).await)
    }

    /// Records the outcome of a fetch on the feed row.
    pub async fn record_fetch(&self, feed_id: i64, record: &FetchRecord) -> Result<(), StoreError> {
        self.observed(dispatch!(self, s => s.record_fetch(feed_id, record).await))
    }

    /// A write's outcome, noted for readiness on its way to the caller (the
    /// writes every poll and delivery makes: claims, articles, outcomes).
    fn observed<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        let result = result.map_err(|error| match self {
            Store::Sqlite(s) if error.is_lock_timeout() => {
                StoreError::Busy(s.describe(), s.busy_timeout())
            }
            _ => error,
        });
        dispatch!(self, s => s.write_health.observe(&result));
        result
    }

    /// Why this process's last write failed, while none has succeeded since:
    /// the database answers, but does not take what herald writes.
    pub fn write_failure(&self) -> Option<String> {
        dispatch!(self, s => s.write_health.failure())
    }

    pub async fn article(&self, id: i64) -> Result<Option<Article>, StoreError> {
        dispatch!(self, s => s.article(id).await)
    }

    /// The article stored under a canonical URL.
    pub async fn article_by_canonical_url(&self, url: &str) -> Result<Option<Article>, StoreError> {
        dispatch!(self, s => s.article_by_canonical_url(url).await)
    }

    pub async fn count_articles(&self) -> Result<i64, StoreError> {
        dispatch!(self, s => s.count_articles().await)
    }

    /// Answers once the database has run a trivial query (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        dispatch!(self, s => s.ping().await)
    }

    /// Like [`Store::ping`], within a few seconds, and naming the cause when the
    /// server cannot be reached (refused, unknown host, bad password…).
    pub async fn reachable(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.ping().await,
            Store::Postgres(s) => s.reachable().await,
        }
    }

    /// How many feeds are in each state; states without feeds are left out.
    pub async fn count_feeds_by_status(&self) -> Result<Vec<(FeedStatus, i64)>, StoreError> {
        dispatch!(self, s => s.count_feeds_by_status().await)
    }

    /// How many deliveries are in each state; states without deliveries are left out.
    pub async fn count_deliveries_by_status(
        &self,
    ) -> Result<Vec<(DeliveryStatus, i64)>, StoreError> {
        dispatch!(self, s => s.count_deliveries_by_status().await)
    }

    // Retention (see `retention`).

    /// Removes, in batches of `policy.batch` rows with `policy.pause` between
    /// them, what `policy` does not keep; returns what was removed.
    pub async fn prune(&self, policy: &PrunePolicy) -> Result<PruneReport, StoreError> {
        self.observed(retention::prune(self, policy).await)
    }

    /// What [`Store::prune`] would remove now, removing nothing.
    pub async fn prunable(&self, policy: &PrunePolicy) -> Result<PruneReport, StoreError> {
        dispatch!(self, s => s.prunable(policy).await)
    }
}

/// Where an item without a usable link is unique: its feed and its key in that feed.
fn dedup_key(feed_id: i64, article: &NewArticle) -> String {
    match &article.canonical_url {
        Some(url) => url.clone(),
        None => format!("herald:feed/{feed_id}/{}", article.item_key),
    }
}

/// A delivery's public id: random, so ids from several databases never collide at a
/// receiver that deduplicates on them.
fn new_delivery_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn matched_json<T: AsRef<str>>(matched: &[T]) -> String {
    let terms: Vec<&str> = matched.iter().map(AsRef::as_ref).collect();
    serde_json::to_string(&terms).unwrap_or_else(|_| "[]".to_owned())
}

fn matched_from_json(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

/// The synced feeds' rows in the order they were configured, taken row by
/// row and moved, not copied: at 10,000 feeds, holding every row at once
/// (SQLite copies each value) and cloning the records was most of a
/// re-poll's peak memory.
async fn in_configured_order(
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

fn feed_ids_from_list(list: Option<&str>) -> Vec<i64> {
    list.unwrap_or_default()
        .split(',')
        .filter_map(|id| id.trim().parse().ok())
        .collect()
}

/// Items partitioned by what this feed stored for them before.
struct Partition<'a> {
    unseen: Vec<&'a Incoming>,
    changed: Vec<(&'a NewArticle, i64)>,
    unchanged: usize,
}

/// Splits a batch against the feed's known `(item_key → (article_id, fingerprint))`.
/// A key repeated within one document counts once: the first occurrence wins.
fn partition<'a>(
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
fn outlets_by_story(rows: Vec<(i64, String, Option<String>)>) -> HashMap<i64, Vec<ArticleSource>> {
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
struct HeldRules {
    by_story: HashMap<i64, std::collections::BTreeSet<Arc<str>>>,
    grown: std::collections::BTreeSet<i64>,
    held: usize,
}

impl HeldRules {
    /// From `(story id, held_rules JSON)` rows.
    fn read(rows: impl IntoIterator<Item = (i64, Option<String>)>) -> HeldRules {
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
    fn alerts(&mut self, story: i64, rule: &Arc<str>, suppressed: bool) -> bool {
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
    fn changed(&self) -> Vec<(i64, String)> {
        self.grown
            .iter()
            .filter_map(|story| {
                let rules: Vec<&Arc<str>> = self.by_story.get(story)?.iter().collect();
                Some((*story, matched_json(&rules)))
            })
            .collect()
    }
}
