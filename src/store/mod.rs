//! The storage boundary: the only module that knows SQL or names sqlx.
//!
//! [`Store`] is chosen by the database URL's scheme: `sqlite:` for the embedded
//! single-instance default, `postgres:` for the shared production database. What
//! a backend must do is stated by one trait per aggregate ([`FeedStore`],
//! [`ArticleStore`], [`StoryStore`], [`OutboxStore`]) and [`Backend`] for the
//! database as a whole; each backend keeps one file per aggregate
//! (`postgres/feeds.rs`, `sqlite/outbox.rs`, …). Both backends give the same
//! guarantees, and the same test bodies run against both.
//!
//! Every write is repeatable: unique keys with `ON CONFLICT`, so concurrent pollers of
//! one feed (several instances, or a retry after a crash) store each item once.

mod aggregates;
mod digests;
mod error;
mod group_commit;
mod held;
mod postgres;
mod retention;
mod rows;
mod search;
mod sqlite;
mod statements;
mod story_index;
mod write;
mod write_health;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::stream::BoxStream;

use crate::config::{DEFAULT_BUSY_TIMEOUT, DEFAULT_CONNECT_TIMEOUT};
use crate::domain::alert::{HeldHit, RuleMatch, Suppression};
use crate::domain::article::{
    Article, ArticleCursor, ArticleSource, ArticleText, NewArticle, SaveSummary,
};
use crate::domain::delivery::{
    AlertRecord, AttemptRecord, BrokenSink, Deferral, DeliveryRecord, DeliveryStatus, SlackThread,
};
use crate::domain::feed::{FeedRecord, FeedSpec, FeedStatus, FetchRecord};
use crate::domain::retention::{PrunePolicy, PruneReport};
use crate::domain::story::{StoryFingerprintRecord, StoryRecord};
use crate::rules::IndexQuery;
use crate::stories::{StoryInput, StorySettings};
use write_health::WriteHealth;

pub use aggregates::{
    ArticleStore, Backend, CountStore, FeedStore, OutboxStore, RetentionStore, RuleStore,
    SearchStore, SinkStore, StoryStore,
};
pub use digests::WaitingDigest;
pub use error::StoreError;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

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

impl InstanceLock {
    /// No lock: the database serves any number of instances.
    pub fn none() -> InstanceLock {
        InstanceLock { _file: None }
    }
}

/// An article to store, with what the matcher found in it. The matches become
/// alerts only if this write is the one that stores the article first.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    pub article: NewArticle,
    pub matches: Vec<RuleMatch>,
    pub suppressed: Option<Suppression>,
    /// The rules among `matches` that were muted when the article was
    /// matched (usually none): their hits are held back as
    /// [`Suppression::Muted`].
    pub muted: Vec<Arc<str>>,
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
            muted: Vec::new(),
            story: None,
        }
    }
}

impl Incoming {
    /// Why the hit of `rule` is held back, if it is: the article's reason,
    /// else the rule's mute.
    pub fn suppressed_for(&self, rule: &Arc<str>) -> Option<Suppression> {
        self.suppressed.or_else(|| {
            self.muted
                .iter()
                .any(|muted| muted == rule)
                .then_some(Suppression::Muted)
        })
    }
}

/// The database herald stores into, whichever backend its URL chose.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
    write_health: Arc<WriteHealth>,
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
        Store::connect_within(url, busy_timeout, DEFAULT_CONNECT_TIMEOUT).await
    }

    /// As [`Store::connect_waiting`]; connecting to PostgreSQL gives up after
    /// `connect_timeout`.
    pub async fn connect_within(
        url: &str,
        busy_timeout: Duration,
        connect_timeout: Duration,
    ) -> Result<Store, StoreError> {
        let backend: Arc<dyn Backend> = if url.starts_with("sqlite:") {
            Arc::new(SqliteStore::connect(url, busy_timeout).await?)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Arc::new(PgStore::connect(url, connect_timeout).await?)
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        Ok(Store::on(backend))
    }

    /// A store on a backend opened by the caller.
    pub fn on(backend: Arc<dyn Backend>) -> Store {
        Store {
            backend,
            write_health: Arc::default(),
        }
    }

    /// Makes sure this is the only daemon on the database: on SQLite, an exclusive
    /// lock on the database file, held until the returned guard is dropped (the
    /// kernel drops it when the process dies, however it dies). PostgreSQL serves
    /// any number of instances.
    pub fn lock_single_instance(&self) -> Result<InstanceLock, StoreError> {
        self.backend.lock_single_instance()
    }

    /// Applies the embedded migrations of this backend, after making sure the
    /// database is herald's (or empty): another application's database is not
    /// taken over, and a file found damaged on the way is named as such.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrated = async {
            self.refuse_foreign().await?;
            self.backend.migrate().await
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
        let tables = self.backend.table_names().await?;
        if tables.iter().any(|table| table == "_sqlx_migrations") {
            return Ok(());
        }
        // A SQLite file belongs to one application; a PostgreSQL database may
        // be shared, as long as no table has a name herald's schema uses.
        let foreign: Vec<&str> = tables
            .iter()
            .map(String::as_str)
            .filter(|table| self.backend.owns_whole_database() || HERALD_TABLES.contains(table))
            .collect();
        if foreign.is_empty() {
            return Ok(());
        }
        Err(StoreError::Foreign(
            self.backend.describe(),
            foreign.join(", "),
        ))
    }

    async fn check_integrity(&self, thorough: bool) -> Result<(), StoreError> {
        self.backend.check_integrity(thorough).await
    }

    fn naming_damage<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        result.map_err(|error| match error.damage() {
            Some(reason) => StoreError::Damaged(self.backend.describe(), reason),
            None => error,
        })
    }

    pub fn backend(&self) -> &'static str {
        self.backend.name()
    }

    /// Ensures a row exists for each configured feed and keeps names in step; returns
    /// each feed's stored state in the order given. Feeds not given are kept, with
    /// their history, but marked inactive: no longer scheduled.
    pub async fn sync_feeds(&self, feeds: &[FeedSpec]) -> Result<Vec<FeedRecord>, StoreError> {
        self.observed(self.backend.sync_feeds(feeds).await)
    }

    pub async fn feed(&self, id: i64) -> Result<Option<FeedRecord>, StoreError> {
        self.backend.feed(id).await
    }

    /// All feeds with their health, in URL order.
    pub async fn feeds(&self) -> Result<Vec<FeedRecord>, StoreError> {
        self.backend.feeds().await
    }

    /// The fingerprints this feed last stored for the given item keys.
    pub async fn known_items(
        &self,
        feed_id: i64,
        keys: &[String],
    ) -> Result<HashMap<String, String>, StoreError> {
        self.backend.known_items(feed_id, keys).await
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
        self.observed(
            self.backend
                .save_articles(feed_id, articles, stories, now)
                .await,
        )
    }

    /// Candidates of a search, newest first, as a stream: memory stays flat
    /// however many are read. See [`SearchStore::search_articles`].
    pub fn search_articles(
        &self,
        query: Option<&IndexQuery>,
        since: DateTime<Utc>,
        after: Option<ArticleCursor>,
    ) -> BoxStream<'_, Result<ArticleText, StoreError>> {
        self.backend.search_articles(query, since, after)
    }

    /// Indexes up to `limit` articles waiting for the search index; returns
    /// how many it took.
    pub async fn index_backlog(&self, limit: usize) -> Result<usize, StoreError> {
        self.backend.index_backlog(limit).await
    }

    /// Articles waiting for the search index.
    pub async fn search_backlog(&self) -> Result<i64, StoreError> {
        self.backend.search_backlog().await
    }

    /// How many articles were published since `since` (for progress display).
    pub async fn count_articles_since(&self, since: DateTime<Utc>) -> Result<i64, StoreError> {
        self.backend.count_articles_since(since).await
    }

    /// Rule hits held back instead of alerting, newest story first.
    pub async fn held_hits(&self, limit: i64) -> Result<Vec<HeldHit>, StoreError> {
        self.backend.held_hits(limit).await
    }

    /// Deliveries waiting for a digest, by sink and schedule.
    pub async fn waiting_digests(&self) -> Result<Vec<WaitingDigest>, StoreError> {
        self.observed(self.backend.waiting_digests().await)
    }

    /// Forms a digest whose period ended at `until`: see [`OutboxStore::form_digest`].
    pub async fn form_digest(
        &self,
        waiting: &WaitingDigest,
        until: DateTime<Utc>,
        capacity: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        self.observed(
            self.backend
                .form_digest(waiting, until, capacity, now)
                .await,
        )
    }

    /// The deliveries a digest's carrier holds, its own first.
    pub async fn carried(&self, carrier: i64) -> Result<Vec<DeliveryRecord>, StoreError> {
        self.observed(self.backend.carried(carrier).await)
    }

    /// Sends a held hit after all: see [`OutboxStore::release_held`].
    pub async fn release_held(
        &self,
        story_id: i64,
        rule: &str,
        sinks: &[String],
        now: DateTime<Utc>,
    ) -> Result<Option<Vec<i64>>, StoreError> {
        self.observed(self.backend.release_held(story_id, rule, sinks, now).await)
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
        self.observed(
            self.backend
                .claim_due_feeds(owner, now, lease_until, limit)
                .await,
        )
    }

    /// When the next active feed can be claimed: due and not leased.
    pub async fn next_feed_due_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.backend.next_feed_due_at().await
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
            self.backend
                .claim_deliveries(owner, now, lease_until, fresh_since, limit)
                .await,
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
        self.observed(self.backend.record_attempt(id, owner, attempt).await)
    }

    /// Gives back claims that were not attempted (their sink's queue stalled), so
    /// they are due again at once, behind the delivery that failed.
    pub async fn release_deliveries(&self, ids: &[i64], owner: &str) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.backend.release_deliveries(ids, owner).await
    }

    /// Turns a claimed instant delivery into one waiting for the digest
    /// keyed `digest` (quiet hours, a throttle); false when `owner` lost the claim.
    pub async fn defer_delivery(
        &self,
        id: i64,
        owner: &str,
        digest: &str,
        reason: Deferral,
    ) -> Result<bool, StoreError> {
        self.observed(self.backend.defer_delivery(id, owner, digest, reason).await)
    }

    /// Messages delivered to `sink` since `since`, a digest counted once;
    /// of `rule`'s alerts only, when given. What a throttle counts.
    pub async fn messages_delivered_since(
        &self,
        sink: &str,
        rule: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        self.observed(
            self.backend
                .messages_delivered_since(sink, rule, since)
                .await,
        )
    }

    /// Deliveries, newest first, optionally of one status.
    pub async fn deliveries(
        &self,
        status: Option<DeliveryStatus>,
        limit: i64,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        self.backend.deliveries(status, limit).await
    }

    /// Queues deliveries again (`failed` or `dead` ones; others are left alone):
    /// one by id, or every dead one. Returns how many were queued.
    pub async fn retry_deliveries(
        &self,
        id: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.backend.retry_deliveries(id, now).await
    }

    /// A delivery's state; `None` when there is no delivery `id`.
    pub async fn delivery_status(&self, id: i64) -> Result<Option<DeliveryStatus>, StoreError> {
        self.backend.delivery_status(id).await
    }

    /// When the next pending or failed delivery is due: the earliest of each sink's
    /// oldest open delivery, since the others wait behind it.
    pub async fn next_delivery_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.backend.next_delivery_at().await
    }

    /// Stories started since `since` that at least `min_outlets` feeds carried,
    /// newest first.
    pub async fn stories(
        &self,
        since: DateTime<Utc>,
        min_outlets: i64,
        limit: i64,
    ) -> Result<Vec<StoryRecord>, StoreError> {
        let mut stories = self.backend.stories(since, min_outlets, limit).await?;
        let ids: Vec<i64> = stories.iter().map(|story| story.id).collect();
        let mut by_story = self.backend.outlets_of(&ids).await?;
        for story in &mut stories {
            story.outlets = by_story.remove(&story.id).unwrap_or_default();
        }
        Ok(stories)
    }

    /// The fingerprints of a story's articles, in the order they were stored.
    pub async fn story_fingerprints(
        &self,
        story_id: i64,
    ) -> Result<Vec<StoryFingerprintRecord>, StoreError> {
        self.backend.story_fingerprints(story_id).await
    }

    /// The fingerprints of articles of other stories seen within `[from,
    /// until]`, the most recently stored first, at most `limit`.
    pub async fn fingerprints_between(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        except_story: i64,
        limit: i64,
    ) -> Result<Vec<StoryFingerprintRecord>, StoreError> {
        self.backend
            .fingerprints_between(from, until, except_story, limit)
            .await
    }

    /// Every feed that carried an article of the story, in the order they did.
    pub async fn story_outlets(&self, story_id: i64) -> Result<Vec<ArticleSource>, StoreError> {
        let mut by_story = self.backend.outlets_of(&[story_id]).await?;
        Ok(by_story.remove(&story_id).unwrap_or_default())
    }

    /// Recorded rule hits, newest first.
    pub async fn alerts(&self, limit: i64) -> Result<Vec<AlertRecord>, StoreError> {
        self.backend.alerts(limit).await
    }

    /// Records the outcome of a fetch on the feed row.
    pub async fn record_fetch(&self, feed_id: i64, record: &FetchRecord) -> Result<(), StoreError> {
        self.observed(self.backend.record_fetch(feed_id, record).await)
    }

    /// A write's outcome, noted for readiness on its way to the caller (the
    /// writes every poll and delivery makes: claims, articles, outcomes).
    fn observed<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        let result = result.map_err(|error| self.backend.explain_failure(error));
        self.write_health.observe(&result);
        result
    }

    /// Why this process's last write failed, while none has succeeded since:
    /// the database answers, but does not take what herald writes.
    pub fn write_failure(&self) -> Option<String> {
        self.write_health.failure()
    }

    pub async fn article(&self, id: i64) -> Result<Option<Article>, StoreError> {
        self.backend.article(id).await
    }

    /// The article stored under a canonical URL.
    pub async fn article_by_canonical_url(&self, url: &str) -> Result<Option<Article>, StoreError> {
        self.backend.article_by_canonical_url(url).await
    }

    pub async fn count_articles(&self) -> Result<i64, StoreError> {
        self.backend.count_articles().await
    }

    /// Answers once the database has run a trivial query (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.backend.ping().await
    }

    /// Like [`Store::ping`], within a few seconds, and naming the cause when the
    /// server cannot be reached (refused, unknown host, bad password…).
    pub async fn reachable(&self) -> Result<(), StoreError> {
        self.backend.reachable().await
    }

    /// How many feeds are in each state; states without feeds are left out.
    pub async fn count_feeds_by_status(&self) -> Result<Vec<(FeedStatus, i64)>, StoreError> {
        self.backend.count_feeds_by_status().await
    }

    /// How many deliveries are in each state; states without deliveries are left out.
    pub async fn count_deliveries_by_status(
        &self,
    ) -> Result<Vec<(DeliveryStatus, i64)>, StoreError> {
        self.backend.count_deliveries_by_status().await
    }

    /// How many feeds are in each state, as the database keeps the counts:
    /// exact, and as cheap at 100,000 feeds as at 10.
    pub async fn feeds_by_status(&self) -> Result<Vec<(FeedStatus, i64)>, StoreError> {
        self.backend.feeds_by_status().await
    }

    /// How many deliveries are in each state: finished ones as kept by the
    /// database, open ones (the queue) counted in an index. Exact.
    pub async fn deliveries_by_status(&self) -> Result<Vec<(DeliveryStatus, i64)>, StoreError> {
        self.backend.deliveries_by_status().await
    }

    /// Removes, in batches of `policy.batch` rows with `policy.pause` between
    /// them, what `policy` does not keep; returns what was removed.
    pub async fn prune(&self, policy: &PrunePolicy) -> Result<PruneReport, StoreError> {
        self.observed(retention::prune(self, policy).await)
    }

    /// Mutes `rule` until `until` for every instance on the database.
    pub async fn mute_rule(
        &self,
        rule: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.observed(self.backend.mute_rule(rule, until, now).await)
    }

    /// Ends `rule`'s mute; whether it had one.
    pub async fn unmute_rule(&self, rule: &str) -> Result<bool, StoreError> {
        self.observed(self.backend.unmute_rule(rule).await)
    }

    /// Marks a sink broken for every instance; true when it was not already.
    pub async fn mark_sink_broken(&self, broken: &BrokenSink) -> Result<bool, StoreError> {
        self.observed(self.backend.mark_sink_broken(broken).await)
    }

    /// Clears a sink's broken mark so its queue drains, in order; whether it had one.
    pub async fn enable_sink(&self, sink: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.observed(self.backend.enable_sink(sink, now).await)
    }

    /// A story's thread in a `slack_app` sink.
    pub async fn slack_thread(
        &self,
        sink: &str,
        story_id: i64,
    ) -> Result<Option<SlackThread>, StoreError> {
        self.observed(self.backend.slack_thread(sink, story_id).await)
    }

    /// Keeps a story's thread; false when it had one already.
    pub async fn save_slack_thread(&self, thread: &SlackThread) -> Result<bool, StoreError> {
        self.observed(self.backend.save_slack_thread(thread).await)
    }

    /// Threads started since `since`, last looked at before `checked_before`.
    pub async fn slack_threads_to_check(
        &self,
        since: DateTime<Utc>,
        checked_before: DateTime<Utc>,
    ) -> Result<Vec<SlackThread>, StoreError> {
        self.observed(
            self.backend
                .slack_threads_to_check(since, checked_before)
                .await,
        )
    }

    /// Takes the next look at a thread; false when another instance took it.
    pub async fn claim_slack_thread(
        &self,
        thread: &SlackThread,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.observed(self.backend.claim_slack_thread(thread, now).await)
    }

    /// Records the outlets a thread names.
    pub async fn set_slack_thread_outlets(
        &self,
        sink: &str,
        story_id: i64,
        outlets: &[String],
    ) -> Result<(), StoreError> {
        self.observed(
            self.backend
                .set_slack_thread_outlets(sink, story_id, outlets)
                .await,
        )
    }

    /// Deliveries still to send, by sink.
    pub async fn queued_by_sink(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.observed(self.backend.queued_by_sink().await)
    }

    /// The sinks marked broken.
    pub async fn broken_sinks(&self) -> Result<Vec<BrokenSink>, StoreError> {
        self.observed(self.backend.broken_sinks().await)
    }

    /// The mutes in force at `now`.
    pub async fn rule_mutes(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<crate::domain::alert::RuleMute>, StoreError> {
        self.backend.rule_mutes(now).await
    }

    /// What [`Store::prune`] would remove now, removing nothing.
    pub async fn prunable(&self, policy: &PrunePolicy) -> Result<PruneReport, StoreError> {
        self.backend.prunable(policy).await
    }
}
