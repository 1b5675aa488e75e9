//! What a storage backend must do, one trait per aggregate. A backend is a
//! type that implements all of them and [`Backend`]; [`super::Store`] holds
//! one behind a pointer and adds what every backend shares (readiness,
//! naming damage, refusing another application's database).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;

use super::digests::{self, WaitingDigest};
use super::retention::{
    AlsoKept, Cursor, Prunable, PrunePolicy, PruneReport, candidates_of, prunable_of, waiting_of,
};
use super::rows::{
    FRESH_DELIVERY_COUNTS, FRESH_FEED_COUNTS, alert_from_row, article_from_row, counted,
    delivery_from_row, feed_from_row, select_articles, select_feeds, status_counts,
    stored_delivery_status, stored_feed_status,
};
use super::statements::{Row as SharedRow, Statements, Value};
use super::write::outlets_by_story;
use super::{Incoming, InstanceLock, StoreError};
use crate::domain::alert::{HeldHit, RuleMute};
use crate::domain::article::{Article, ArticleCursor, ArticleSource, ArticleText, SaveSummary};
use crate::domain::delivery::{
    AlertRecord, AttemptRecord, BrokenSink, Deferral, DeliveryRecord, DeliveryStatus, SlackThread,
};
use crate::domain::feed::{FeedRecord, FeedSpec, FeedStatus, FetchRecord};
use crate::domain::story::{StoryFingerprintRecord, StoryRecord};
use crate::rules::IndexQuery;
use crate::stories::StorySettings;

/// Feeds: the configured rows, their claims by pollers, and fetch outcomes.
#[async_trait]
pub trait FeedStore: Statements {
    /// Ensures a row exists for each configured feed and keeps names in step;
    /// returns each feed's stored state in the order given. Feeds not given are
    /// kept, with their history, but marked inactive: no longer scheduled.
    async fn sync_feeds(&self, feeds: &[FeedSpec]) -> Result<Vec<FeedRecord>, StoreError>;

    async fn feed(&self, id: i64) -> Result<Option<FeedRecord>, StoreError> {
        let row = self
            .row(select_feeds!("WHERE f.id = $1"), &[Value::Int(id)])
            .await?;
        row.map(|row| feed_from_row(&*row)).transpose()
    }

    /// All feeds with their health, in URL order.
    async fn feeds(&self) -> Result<Vec<FeedRecord>, StoreError> {
        let rows = self.rows(select_feeds!("ORDER BY f.url"), &[]).await?;
        rows.iter().map(|row| feed_from_row(&**row)).collect()
    }

    /// Claims up to `limit` active feeds due at `now` (never fetched first, then
    /// by due time) for `owner` until `lease_until`.
    async fn claim_due_feeds(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<FeedRecord>, StoreError>;

    /// When the next active feed can be claimed: due and not leased.
    async fn next_feed_due_at(&self) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// Records the outcome of a fetch on the feed row and releases its claim.
    async fn record_fetch(&self, feed_id: i64, record: &FetchRecord) -> Result<(), StoreError>;

    /// How many feeds are in each state; states without feeds are left out.
    async fn count_feeds_by_status(&self) -> Result<Vec<(FeedStatus, i64)>, StoreError> {
        status_counts(
            counted(&self.rows(FRESH_FEED_COUNTS, &[]).await?)?,
            stored_feed_status,
        )
    }
}

/// Articles and their sources: the write of a fetch's items and the reads of
/// stored text.
#[async_trait]
pub trait ArticleStore: Statements {
    /// The fingerprints this feed last stored for the given item keys.
    async fn known_items(
        &self,
        feed_id: i64,
        keys: &[String],
    ) -> Result<HashMap<String, String>, StoreError>;

    /// Stores one fetch's articles in one transaction, with the story each new
    /// article joins and the alerts and deliveries its rule hits make.
    async fn save_articles(
        &self,
        feed_id: i64,
        articles: &[Incoming],
        stories: &StorySettings,
        now: DateTime<Utc>,
    ) -> Result<SaveSummary, StoreError>;

    /// How many articles were published since `since`.
    async fn count_articles_since(&self, since: DateTime<Utc>) -> Result<i64, StoreError> {
        self.count(
            "SELECT count(*) AS n FROM articles WHERE published_at >= $1",
            &[Value::Time(since)],
        )
        .await
    }

    async fn article(&self, id: i64) -> Result<Option<Article>, StoreError> {
        let row = self
            .row(
                concat!(select_articles!(), " WHERE id = $1"),
                &[Value::Int(id)],
            )
            .await?;
        with_sources(self, row).await
    }

    /// The article stored under a canonical URL.
    async fn article_by_canonical_url(&self, url: &str) -> Result<Option<Article>, StoreError> {
        let row = self
            .row(
                concat!(
                    select_articles!(),
                    " WHERE canonical_url = $1 ORDER BY id LIMIT 1"
                ),
                &[Value::Text(url)],
            )
            .await?;
        with_sources(self, row).await
    }

    async fn count_articles(&self) -> Result<i64, StoreError> {
        self.count("SELECT count(*) AS n FROM articles", &[]).await
    }
}

/// The article of `row` with the feeds that carried it, in the order they did.
async fn with_sources(
    store: &(impl Statements + ?Sized),
    row: Option<SharedRow>,
) -> Result<Option<Article>, StoreError> {
    let Some(row) = row else { return Ok(None) };
    let mut article = article_from_row(&*row)?;
    let sources = store
        .rows(
            "SELECT f.url AS url, COALESCE(f.name, f.title) AS name
             FROM article_sources s JOIN feeds f ON f.id = s.feed_id
             WHERE s.article_id = $1 ORDER BY s.first_seen_at, f.url",
            &[Value::Int(article.id)],
        )
        .await?;
    article.feeds = sources
        .iter()
        .map(|row| {
            Ok(ArticleSource {
                url: row.text("url")?,
                name: row.opt_text("name")?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(Some(article))
}

/// Stories: the grouping of an article and its copies. Which story an article
/// joins is decided by `crate::stories` during [`ArticleStore::save_articles`];
/// the store persists the decision.
#[async_trait]
pub trait StoryStore: Statements {
    /// Stories started since `since` that at least `min_outlets` feeds carried,
    /// newest first, without their outlets.
    async fn stories(
        &self,
        since: DateTime<Utc>,
        min_outlets: i64,
        limit: i64,
    ) -> Result<Vec<StoryRecord>, StoreError>;

    /// The fingerprints of a story's articles, in the order they were stored.
    async fn story_fingerprints(
        &self,
        story_id: i64,
    ) -> Result<Vec<StoryFingerprintRecord>, StoreError> {
        let rows = self
            .rows(
                &format!("{FINGERPRINT_SELECT} WHERE a.story_id = $1 ORDER BY sf.seq"),
                &[Value::Int(story_id)],
            )
            .await?;
        rows.iter().map(fingerprint_record).collect()
    }

    /// The fingerprints of articles outside `except_story` seen within
    /// `[from, until]`, the most recently stored first, at most `limit`.
    async fn fingerprints_between(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        except_story: i64,
        limit: i64,
    ) -> Result<Vec<StoryFingerprintRecord>, StoreError> {
        let rows = self
            .rows(
                &format!(
                    "{FINGERPRINT_SELECT} WHERE sf.seen_at >= $1 AND sf.seen_at <= $2
                     AND a.story_id <> $3 ORDER BY sf.seq DESC LIMIT $4"
                ),
                &[
                    Value::Time(from),
                    Value::Time(until),
                    Value::Int(except_story),
                    Value::Int(limit),
                ],
            )
            .await?;
        rows.iter().map(fingerprint_record).collect()
    }

    /// Every feed that carried an article of each story, in the order they did.
    async fn outlets_of(
        &self,
        story_ids: &[i64],
    ) -> Result<HashMap<i64, Vec<ArticleSource>>, StoreError> {
        let sql = format!(
            "SELECT a.story_id AS story, f.url AS url, COALESCE(f.name, f.title) AS name
             FROM articles a JOIN article_sources src ON src.article_id = a.id
             JOIN feeds f ON f.id = src.feed_id
             WHERE {}
             GROUP BY a.story_id, f.id
             ORDER BY a.story_id, min(src.first_seen_at), f.url",
            self.in_set("a.story_id", 1)
        );
        let rows = self.rows(&sql, &[Value::Ids(story_ids)]).await?;
        let rows = rows
            .iter()
            .map(|row| Ok((row.int("story")?, row.text("url")?, row.opt_text("name")?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(outlets_by_story(rows))
    }
}

const FINGERPRINT_SELECT: &str = "SELECT a.id AS id, a.story_id AS story, a.title AS title,
         sf.feed_id AS feed, f.url AS url, COALESCE(f.name, f.title) AS name,
         sf.seen_at AS seen_at, sf.fingerprint AS fingerprint
     FROM story_fingerprints sf JOIN articles a ON a.id = sf.article_id
     JOIN feeds f ON f.id = sf.feed_id";

fn fingerprint_record(row: &SharedRow) -> Result<StoryFingerprintRecord, StoreError> {
    Ok(StoryFingerprintRecord {
        article_id: row.int("id")?,
        story_id: row.int("story")?,
        title: row.text("title")?,
        feed_id: row.int("feed")?,
        outlet: ArticleSource {
            url: row.text("url")?,
            name: row.opt_text("name")?,
        },
        seen_at: row.time("seen_at")?,
        fingerprint: row.bytes("fingerprint")?,
    })
}

/// Alerts and the outbox: recorded rule hits, their deliveries to sinks and
/// each delivery's attempts.
#[async_trait]
pub trait OutboxStore: Statements {
    /// Rule hits held back instead of alerting, newest story first, at most
    /// `limit`. Rules kept on a story because their delivered alert was
    /// pruned are not held hits.
    async fn held_hits(&self, limit: i64) -> Result<Vec<HeldHit>, StoreError> {
        super::held::held_hits(self, limit).await
    }

    /// Turns the held hit of `rule` on `story_id` into an alert on the
    /// story's first article with a delivery to each of `sinks`; the ids of
    /// the new deliveries, or `None` when there is no such held hit.
    async fn release_held(
        &self,
        story_id: i64,
        rule: &str,
        sinks: &[String],
        now: DateTime<Utc>,
    ) -> Result<Option<Vec<i64>>, StoreError>;

    /// Claims up to `limit` deliveries due at `now` for `owner` until
    /// `lease_until`, each sink's queue first in, first out.
    async fn claim_deliveries(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        fresh_since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<DeliveryRecord>, StoreError>;

    /// Records an attempt and releases the claim, unless `owner` lost it.
    async fn record_attempt(
        &self,
        id: i64,
        owner: &str,
        attempt: &AttemptRecord,
    ) -> Result<bool, StoreError>;

    /// Gives back claims that were not attempted.
    async fn release_deliveries(&self, ids: &[i64], owner: &str) -> Result<(), StoreError>;

    /// Deliveries, newest first, optionally of one status.
    async fn deliveries(
        &self,
        status: Option<DeliveryStatus>,
        limit: i64,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let rows = self
            .rows(
                "SELECT d.*, al.rule, al.matched, al.article_id
                 FROM deliveries d JOIN alerts al ON al.id = d.alert_id
                 WHERE CAST($1 AS TEXT) IS NULL OR d.status = $1
                 ORDER BY d.id DESC LIMIT $2",
                &[
                    Value::OptText(status.map(DeliveryStatus::as_str)),
                    Value::Int(limit),
                ],
            )
            .await?;
        rows.iter().map(|row| delivery_from_row(&**row)).collect()
    }

    /// Queues `failed` or `dead` deliveries again: one by id, or every dead one.
    async fn retry_deliveries(
        &self,
        id: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// A delivery's state; `None` when there is no delivery `id`.
    async fn delivery_status(&self, id: i64) -> Result<Option<DeliveryStatus>, StoreError> {
        let row = self
            .row(
                "SELECT status FROM deliveries WHERE id = $1",
                &[Value::Int(id)],
            )
            .await?;
        row.map(|row| stored_delivery_status(&row.text("status")?))
            .transpose()
    }

    /// When the next pending or failed delivery is due.
    async fn next_delivery_at(&self) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// Recorded rule hits, newest first.
    async fn alerts(&self, limit: i64) -> Result<Vec<AlertRecord>, StoreError> {
        let rows = self
            .rows(
                "SELECT id, rule, story_id, article_id, matched, suppressed, created_at
                 FROM alerts ORDER BY created_at DESC, id DESC LIMIT $1",
                &[Value::Int(limit)],
            )
            .await?;
        rows.iter().map(|row| alert_from_row(&**row)).collect()
    }

    /// How many deliveries are in each state; states without deliveries are left out.
    async fn count_deliveries_by_status(&self) -> Result<Vec<(DeliveryStatus, i64)>, StoreError> {
        status_counts(
            counted(&self.rows(FRESH_DELIVERY_COUNTS, &[]).await?)?,
            stored_delivery_status,
        )
    }

    /// Deliveries waiting for a digest, by sink and schedule.
    async fn waiting_digests(&self) -> Result<Vec<WaitingDigest>, StoreError> {
        self.rows(digests::WAITING_SQL, &[])
            .await?
            .iter()
            .map(|row| {
                Ok(WaitingDigest {
                    sink: row.text("sink")?,
                    digest: row.text("digest")?,
                    oldest: row.time("oldest")?,
                })
            })
            .collect()
    }

    /// Turns the deliveries of a digest period that ended at `until` into
    /// messages of at most `capacity` alerts (`store::digests`); their
    /// carriers, due at `now`.
    async fn form_digest(
        &self,
        waiting: &WaitingDigest,
        until: DateTime<Utc>,
        capacity: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError>;

    /// The deliveries whose alerts a carrier's message holds, its own first.
    async fn carried(&self, carrier: i64) -> Result<Vec<DeliveryRecord>, StoreError> {
        let rows = self
            .rows(digests::CARRIED_SQL, &[Value::Int(carrier)])
            .await?;
        digests::carried_from_rows(&rows)
    }

    /// Turns a claimed instant delivery into one waiting for the digest
    /// `digest`, saying why; false when `owner` lost the claim.
    async fn defer_delivery(
        &self,
        id: i64,
        owner: &str,
        digest: &str,
        reason: Deferral,
    ) -> Result<bool, StoreError>;

    /// Messages delivered to `sink` since `since` (an alert, or a digest
    /// counted once), of `rule`'s alerts only when given.
    async fn messages_delivered_since(
        &self,
        sink: &str,
        rule: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        self.count(
            "SELECT count(*) AS n FROM deliveries d
             WHERE d.sink = $1 AND d.status = 'delivered' AND d.delivered_at >= $2
               AND (d.digest_of IS NULL OR d.digest_of = d.id)
               AND (CAST($3 AS TEXT) IS NULL
                    OR EXISTS (SELECT 1 FROM alerts al WHERE al.id = d.alert_id AND al.rule = $3))",
            &[Value::Text(sink), Value::Time(since), Value::OptText(rule)],
        )
        .await
    }
}

/// Counts read on hot paths (`/metrics`), kept by the database as rows change
/// instead of recounted: their cost does not grow with the tables.
#[async_trait]
pub trait CountStore: Send + Sync {
    /// How many feeds are in each state; states without feeds are left out.
    async fn feeds_by_status(&self) -> Result<Vec<(FeedStatus, i64)>, StoreError>;

    /// How many deliveries are in each state; states without deliveries are left out.
    async fn deliveries_by_status(&self) -> Result<Vec<(DeliveryStatus, i64)>, StoreError>;
}

/// Retention: removing, one short transaction at a time, what `[retention]`
/// no longer keeps (the policy and its invariants: `store::retention`).
#[async_trait]
pub trait RetentionStore: Statements {
    /// What the engine keeps whatever its age (none unless it says).
    fn also_kept(&self) -> AlsoKept {
        AlsoKept::default()
    }

    /// Up to `limit` rows of `kind` past `before` as `(id, time)`, in (time,
    /// id) order after `cursor`. Read outside any write transaction.
    async fn prune_candidates(
        &self,
        kind: Prunable,
        before: DateTime<Utc>,
        cursor: Option<Cursor>,
        limit: i64,
    ) -> Result<Vec<(i64, DateTime<Utc>)>, StoreError> {
        candidates_of(self, kind, before, cursor, limit).await
    }

    /// Removes, in one transaction, those of `ids` (candidates of `kind`)
    /// that still may go: each is checked again, since `herald alerts retry`
    /// or a new delivery may have changed it since it was read.
    async fn remove(
        &self,
        kind: Prunable,
        ids: &[i64],
        before: DateTime<Utc>,
    ) -> Result<PruneReport, StoreError>;

    /// Articles past `before` that wait for their deliveries to finish.
    async fn articles_waiting(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        waiting_of(self, before).await
    }

    /// What pruning now would remove, removing nothing.
    async fn prunable(&self, policy: &PrunePolicy) -> Result<PruneReport, StoreError> {
        prunable_of(self, policy, self.also_kept()).await
    }
}

/// The full-text index of articles (what `herald search`, `rules test` and
/// the API read) and its backlog: articles written or changed since they were
/// last indexed, which every search reads as candidates too.
#[async_trait]
pub trait SearchStore: Send + Sync {
    /// Articles published since `since` and before `after` in search order
    /// (newest published first, then highest id) that the index returns for
    /// `query` or that wait in the backlog; with no query, every article of the
    /// window. A superset of the query's matches, for the matcher to check.
    fn search_articles(
        &self,
        query: Option<&IndexQuery>,
        since: DateTime<Utc>,
        after: Option<ArticleCursor>,
    ) -> BoxStream<'_, Result<ArticleText, StoreError>>;

    /// Indexes up to `limit` articles of the backlog (their words from
    /// [`crate::rules::index_words`]); returns how many it took from it.
    async fn index_backlog(&self, limit: usize) -> Result<usize, StoreError>;

    /// Articles waiting to be indexed (those too large to index included).
    async fn search_backlog(&self) -> Result<i64, StoreError>;
}

/// Rules: the state the configuration does not hold (mutes), shared by
/// every instance on the database.
#[async_trait]
pub trait RuleStore: Statements {
    /// Mutes `rule` until `until` (replacing an earlier mute).
    async fn mute_rule(
        &self,
        rule: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.rows(
            "INSERT INTO rule_mutes (rule, until, muted_at) VALUES ($1, $2, $3)
             ON CONFLICT (rule) DO UPDATE SET until = excluded.until, muted_at = excluded.muted_at",
            &[Value::Text(rule), Value::Time(until), Value::Time(now)],
        )
        .await?;
        Ok(())
    }

    /// Ends a mute; whether `rule` was muted (now or in the past).
    async fn unmute_rule(&self, rule: &str) -> Result<bool, StoreError> {
        let removed = self
            .rows(
                "DELETE FROM rule_mutes WHERE rule = $1 RETURNING rule",
                &[Value::Text(rule)],
            )
            .await?;
        Ok(!removed.is_empty())
    }

    /// The mutes still in force at `now`, by rule name.
    async fn rule_mutes(&self, now: DateTime<Utc>) -> Result<Vec<RuleMute>, StoreError> {
        let rows = self
            .rows(
                "SELECT rule, until FROM rule_mutes WHERE until > $1 ORDER BY rule",
                &[Value::Time(now)],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(RuleMute {
                    rule: row.text("rule")?,
                    until: row.time("until")?,
                })
            })
            .collect()
    }
}

/// Sinks: which are broken (their endpoint said it is gone), shared by every
/// instance on the database.
#[async_trait]
pub trait SinkStore: Statements {
    /// Marks `sink` broken; true when it was not already (the caller logs it once).
    async fn mark_sink_broken(&self, broken: &BrokenSink) -> Result<bool, StoreError> {
        let marked = self
            .rows(
                "INSERT INTO sink_health (sink, broken_at, reason, config) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (sink) DO NOTHING RETURNING sink",
                &[
                    Value::Text(&broken.sink),
                    Value::Time(broken.since),
                    Value::Text(&broken.reason),
                    Value::Text(&broken.config),
                ],
            )
            .await?;
        Ok(!marked.is_empty())
    }

    /// Clears `sink`'s mark; its queue is claimed again, each delivery's
    /// `alerts.give_up` counted afresh from `now` (the time it waited was not
    /// its fault). Whether it was marked.
    async fn enable_sink(&self, sink: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let cleared = self
            .rows(
                "DELETE FROM sink_health WHERE sink = $1 RETURNING sink",
                &[Value::Text(sink)],
            )
            .await?;
        if cleared.is_empty() {
            return Ok(false);
        }
        self.rows(
            "UPDATE deliveries SET queued_at = $2
             WHERE sink = $1 AND status IN ('pending', 'failed') RETURNING id",
            &[Value::Text(sink), Value::Time(now)],
        )
        .await?;
        Ok(true)
    }

    /// Deliveries still to send (pending or failed), by sink.
    async fn queued_by_sink(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = self
            .rows(
                "SELECT sink, count(*) AS n FROM deliveries
                 WHERE status IN ('pending', 'failed') GROUP BY sink ORDER BY sink",
                &[],
            )
            .await?;
        rows.iter()
            .map(|row| Ok((row.text("sink")?, row.int("n")?)))
            .collect()
    }

    /// A story's thread in a `slack_app` sink, if its first alert was posted.
    async fn slack_thread(
        &self,
        sink: &str,
        story_id: i64,
    ) -> Result<Option<SlackThread>, StoreError> {
        let row = self
            .row(
                "SELECT * FROM slack_threads WHERE sink = $1 AND story_id = $2",
                &[Value::Text(sink), Value::Int(story_id)],
            )
            .await?;
        row.map(|row| slack_thread_from_row(&*row)).transpose()
    }

    /// Keeps a story's thread; false when one was kept already (the first stays).
    async fn save_slack_thread(&self, thread: &SlackThread) -> Result<bool, StoreError> {
        let outlets = serde_json::to_string(&thread.outlets).unwrap_or_else(|_| "[]".to_owned());
        let saved = self
            .rows(
                "INSERT INTO slack_threads (sink, story_id, channel, ts, outlets, created_at, checked_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (sink, story_id) DO NOTHING RETURNING sink",
                &[
                    Value::Text(&thread.sink),
                    Value::Int(thread.story_id),
                    Value::Text(&thread.channel),
                    Value::Text(&thread.ts),
                    Value::Text(&outlets),
                    Value::Time(thread.created_at),
                    Value::Time(thread.checked_at),
                ],
            )
            .await?;
        Ok(!saved.is_empty())
    }

    /// Threads started since `since` and last looked at before `checked_before`.
    async fn slack_threads_to_check(
        &self,
        since: DateTime<Utc>,
        checked_before: DateTime<Utc>,
    ) -> Result<Vec<SlackThread>, StoreError> {
        let rows = self
            .rows(
                "SELECT * FROM slack_threads WHERE created_at >= $1 AND checked_at < $2
                 ORDER BY created_at",
                &[Value::Time(since), Value::Time(checked_before)],
            )
            .await?;
        rows.iter()
            .map(|row| slack_thread_from_row(&**row))
            .collect()
    }

    /// Takes the next look at a thread for this instance: false when another
    /// took it since `thread` was read.
    async fn claim_slack_thread(
        &self,
        thread: &SlackThread,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let claimed = self
            .rows(
                "UPDATE slack_threads SET checked_at = $4
                 WHERE sink = $1 AND story_id = $2 AND checked_at = $3 RETURNING sink",
                &[
                    Value::Text(&thread.sink),
                    Value::Int(thread.story_id),
                    Value::Time(thread.checked_at),
                    Value::Time(now),
                ],
            )
            .await?;
        Ok(!claimed.is_empty())
    }

    /// Records the outlets a thread now names.
    async fn set_slack_thread_outlets(
        &self,
        sink: &str,
        story_id: i64,
        outlets: &[String],
    ) -> Result<(), StoreError> {
        let outlets = serde_json::to_string(outlets).unwrap_or_else(|_| "[]".to_owned());
        self.rows(
            "UPDATE slack_threads SET outlets = $3 WHERE sink = $1 AND story_id = $2 RETURNING sink",
            &[Value::Text(sink), Value::Int(story_id), Value::Text(&outlets)],
        )
        .await?;
        Ok(())
    }

    /// The sinks marked broken, by name.
    async fn broken_sinks(&self) -> Result<Vec<BrokenSink>, StoreError> {
        let rows = self
            .rows(
                "SELECT sink, broken_at, reason, config FROM sink_health ORDER BY sink",
                &[],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(BrokenSink {
                    sink: row.text("sink")?,
                    reason: row.text("reason")?,
                    since: row.time("broken_at")?,
                    config: row.text("config")?,
                })
            })
            .collect()
    }
}

fn slack_thread_from_row(
    row: &(impl super::rows::StoredRow + ?Sized),
) -> Result<SlackThread, StoreError> {
    Ok(SlackThread {
        sink: row.text("sink")?,
        story_id: row.int("story_id")?,
        channel: row.text("channel")?,
        ts: row.text("ts")?,
        outlets: serde_json::from_str(&row.text("outlets")?).unwrap_or_default(),
        created_at: row.time("created_at")?,
        checked_at: row.time("checked_at")?,
    })
}

/// A database herald can run on: every aggregate, plus the database as a whole.
#[async_trait]
pub trait Backend:
    FeedStore
    + ArticleStore
    + StoryStore
    + OutboxStore
    + CountStore
    + RetentionStore
    + RuleStore
    + SinkStore
    + SearchStore
    + std::fmt::Debug
    + Send
    + Sync
{
    /// `sqlite`, `postgres`: as `/metrics` and `herald check` name the backend.
    fn name(&self) -> &'static str;

    /// The database in words for errors. Never its URL: it may carry a password.
    fn describe(&self) -> String;

    /// Applies the backend's embedded migrations.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// The tables of the database (its current schema).
    async fn table_names(&self) -> Result<Vec<String>, StoreError>;

    /// True when the whole database belongs to one application (a SQLite
    /// file): any table there without herald's migration history is foreign.
    /// A shared server's database may hold other applications' tables.
    fn owns_whole_database(&self) -> bool {
        false
    }

    /// Answers once the database has run a trivial query.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Like `ping`, within a few seconds, and naming the cause when the
    /// server cannot be reached.
    async fn reachable(&self) -> Result<(), StoreError> {
        self.ping().await
    }

    /// Makes sure this is the only daemon on a database only one process may
    /// serve; held until the guard is dropped.
    fn lock_single_instance(&self) -> Result<InstanceLock, StoreError> {
        Ok(InstanceLock::none())
    }

    /// Reads the database's pages to find damage (`thorough`: however large).
    /// A server that checks its pages as it reads them has nothing to do.
    async fn check_integrity(&self, _thorough: bool) -> Result<(), StoreError> {
        Ok(())
    }

    /// The backend's own wording for a failed write (a lock held too long).
    fn explain_failure(&self, error: StoreError) -> StoreError {
        error
    }
}
