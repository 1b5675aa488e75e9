//! The alert outbox's dispatcher: claims due deliveries, sends each through its
//! sink, records the attempt and schedules a retry or gives up.
//!
//! Deliveries are rows written with the alert, in the article's transaction; the
//! dispatcher only ever reads and updates them, never holding a transaction across
//! a send. A claim is a lease: if this process dies mid-send, the lease expires and
//! another dispatcher sends again, with the same delivery id (at-least-once).

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;

use crate::domain::alert::{AlertMessage, FiredRule};
use crate::domain::article::ArticleSource;
use crate::domain::delivery::{
    AttemptRecord, BrokenSink, Deferral, DeliveryRecord, DeliveryStatus, SlackThread,
};
use crate::domain::digest::DigestSchedule;
use crate::domain::quiet_hours::QuietHours;
use crate::domain::redact::Redactor;
use crate::domain::retry;
use crate::sinks::{AttemptOutcome, Digest, Sender, Sink, SinkTarget, Verdict, digest_capacity};
use crate::store::{Store, StoreError};

/// Deliveries claimed at once.
const CLAIM_BATCH: i64 = 32;

/// Alerts per digest message to a sink no longer configured (its deliveries
/// die as any other's do).
const DIGEST_FALLBACK_CAPACITY: usize = 100;

/// Sends in flight at once per dispatcher; Slack pacing applies on top, per URL.
const SEND_CONCURRENCY: usize = 16;

/// What one dispatch pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DispatchReport {
    pub delivered: usize,
    /// Failed this time; retried later.
    pub failed: usize,
    pub dead: usize,
    /// Instant alerts turned into digest ones (quiet hours, throttles).
    pub deferred: usize,
}

impl DispatchReport {
    pub fn attempts(&self) -> usize {
        self.delivered + self.failed + self.dead
    }
}

/// Sends the outbox's due deliveries.
pub struct Dispatcher {
    pub store: Store,
    pub sender: Sender,
    /// Configured sinks by name.
    pub sinks: HashMap<String, Sink>,
    /// Deliveries a sink may have in flight at once, by name (1 unless
    /// configured: strict order).
    pub in_flight: HashMap<String, usize>,
    /// Each rule's query, by name, for payloads.
    pub queries: HashMap<String, String>,
    /// Identifies this process's claims.
    pub owner: String,
    pub lease: Duration,
    /// A delivery failing for longer than this is dead.
    pub give_up: Duration,
    /// Payloads carry feed and article URLs with their credentials hidden.
    pub redactor: Redactor,
    /// The configured digest schedules, by key (what waiting deliveries are
    /// marked with), those of quiet hours and throttles among them.
    pub digests: HashMap<String, DigestSchedule>,
    /// Sinks' quiet hours, by sink name.
    pub quiet_hours: HashMap<String, QuietHours>,
    pub throttles: Throttles,
}

/// `max_per_hour` limits: messages a sink takes in any hour, and alerts of a
/// rule each of its sinks takes.
#[derive(Debug, Clone, Default)]
pub struct Throttles {
    pub sinks: HashMap<String, usize>,
    pub rules: HashMap<String, usize>,
}

impl Throttles {
    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty() && self.rules.is_empty()
    }
}

/// The window a throttle counts over.
const THROTTLE_WINDOW: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// How often a story's Slack thread is looked at for new outlets.
const SPREAD_CHECK: chrono::TimeDelta = chrono::TimeDelta::minutes(1);
/// How long after its first alert a story's Slack thread follows its spread.
const THREAD_WATCH: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// What alerts over a throttle wait for: the hourly digest, on the hour.
pub fn throttle_digest() -> DigestSchedule {
    DigestSchedule::Every(Duration::from_secs(3600))
}

impl Dispatcher {
    /// Claims and sends every delivery due at `now`, batch by batch: one attempt
    /// each, since a retry scheduled during the pass waits for the next one.
    pub async fn run_once(&self, now: DateTime<Utc>) -> Result<DispatchReport, StoreError> {
        let mut report = DispatchReport::default();
        let started = Utc::now();
        self.enable_reconfigured_sinks(now).await?;
        self.form_due_digests(now).await?;
        self.note_spread_in_threads(now).await?;
        loop {
            // From the clock, not `now`: a long pass must not claim with a lease
            // that has already run out.
            let claimed_at = now.max(Utc::now());
            let lease_until = chrono::Duration::from_std(self.lease)
                .ok()
                .and_then(|lease| claimed_at.checked_add_signed(lease))
                .unwrap_or(claimed_at);
            let claimed = self
                .store
                .claim_deliveries(&self.owner, now, lease_until, started, CLAIM_BATCH)
                .await?;
            if claimed.is_empty() {
                return Ok(report);
            }
            let results: Vec<Result<DispatchReport, StoreError>> =
                futures::stream::iter(queues_by_sink(claimed))
                    .map(|queue| self.drain(queue, now, lease_until))
                    .buffer_unordered(SEND_CONCURRENCY)
                    .collect()
                    .await;
            for result in results {
                let sent = result?;
                report.delivered += sent.delivered;
                report.failed += sent.failed;
                report.dead += sent.dead;
                report.deferred += sent.deferred;
            }
        }
    }

    /// Sends one sink's claimed deliveries oldest first, one at a time, so the sink
    /// receives them in order, or up to its `max_in_flight` at once, started in
    /// order. A retryable failure stalls the queue: the rest are released
    /// unattempted and wait behind the failed one (those already in flight
    /// finish). So are those the lease would not cover, lest another
    /// dispatcher take them while they are being sent.
    async fn drain(
        &self,
        queue: Vec<DeliveryRecord>,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<DispatchReport, StoreError> {
        let mut report = DispatchReport::default();
        let in_flight = queue
            .first()
            .and_then(|delivery| self.in_flight.get(&delivery.sink))
            .copied()
            .unwrap_or(1)
            .max(1);
        let mut queue = queue.into_iter();
        let longest_send = chrono::Duration::from_std(self.sender.longest_send())
            .unwrap_or(chrono::TimeDelta::MAX);
        let mut sending = futures::stream::FuturesOrdered::new();
        let mut first = true;
        let mut stalled = false;
        loop {
            while !stalled && sending.len() < in_flight {
                let Some(delivery) = queue.next() else { break };
                // The first is always sent: the lease is configured to outlast one send.
                let covered = first
                    || Utc::now()
                        .checked_add_signed(longest_send)
                        .is_some_and(|done_by| done_by < lease_until);
                first = false;
                if !covered {
                    let rest: Vec<i64> = std::iter::once(delivery.id)
                        .chain(queue.by_ref().map(|d| d.id))
                        .collect();
                    self.store.release_deliveries(&rest, &self.owner).await?;
                    stalled = true;
                    break;
                }
                sending.push_back(self.deliver(delivery, now));
            }
            let Some(sent) = sending.next().await else {
                break;
            };
            match sent? {
                // Out of the queue: what follows it is not held up.
                None => report.deferred += 1,
                Some(DeliveryStatus::Delivered) => report.delivered += 1,
                Some(DeliveryStatus::Dead) => report.dead += 1,
                Some(DeliveryStatus::Failed | DeliveryStatus::Pending) => {
                    report.failed += 1;
                    if !stalled {
                        stalled = true;
                        let rest: Vec<i64> = queue.by_ref().map(|d| d.id).collect();
                        if !rest.is_empty() {
                            self.store.release_deliveries(&rest, &self.owner).await?;
                        }
                    }
                }
            }
        }
        Ok(report)
    }

    /// One attempt, or none when the delivery is deferred to a digest.
    async fn deliver(
        &self,
        delivery: DeliveryRecord,
        now: DateTime<Utc>,
    ) -> Result<Option<DeliveryStatus>, StoreError> {
        if delivery.digest.is_none()
            && let Some((deferral, digest)) = self.deferral(&delivery, now).await?
        {
            if self
                .store
                .defer_delivery(delivery.id, &self.owner, &digest.key(), deferral)
                .await?
            {
                tracing::info!(
                    delivery = %delivery.delivery_id,
                    sink = %delivery.sink,
                    rule = %delivery.rule,
                    reason = deferral.as_str(),
                    digest = %digest,
                    "alert deferred to a digest"
                );
            }
            return Ok(None);
        }
        let attempt = match self.sinks.get(&delivery.sink) {
            None => AttemptRecord {
                at: Utc::now(),
                http_status: None,
                error: Some(format!("sink {:?} is not configured", delivery.sink)),
                response_excerpt: None,
                latency_ms: 0,
                status: DeliveryStatus::Dead,
                next_attempt_at: Utc::now(),
            },
            Some(sink) => self.attempt(sink, &delivery).await?,
        };
        let status = attempt.status;
        match &attempt.error {
            Some(error) => tracing::warn!(
                delivery = %delivery.delivery_id,
                sink = %delivery.sink,
                rule = %delivery.rule,
                status = status.as_str(),
                %error,
                "delivery failed"
            ),
            None => tracing::info!(
                delivery = %delivery.delivery_id,
                sink = %delivery.sink,
                rule = %delivery.rule,
                "alert delivered"
            ),
        }
        if !self
            .store
            .record_attempt(delivery.id, &self.owner, &attempt)
            .await?
        {
            tracing::warn!(
                delivery = %delivery.delivery_id,
                "lease expired before the attempt was recorded; another dispatcher owns it now"
            );
        }
        Ok(Some(status))
    }

    /// Whether an instant delivery due at `now` waits for a digest instead:
    /// its sink is in quiet hours, or it or its rule had its `max_per_hour`
    /// in the last hour. With several in flight to one sink, a throttle may
    /// let that many more through.
    async fn deferral(
        &self,
        delivery: &DeliveryRecord,
        now: DateTime<Utc>,
    ) -> Result<Option<(Deferral, DigestSchedule)>, StoreError> {
        if let Some(quiet) = self.quiet_hours.get(&delivery.sink)
            && quiet.contains(now)
        {
            return Ok(Some((Deferral::QuietHours, quiet.digest())));
        }
        let since = now - THROTTLE_WINDOW;
        let limits = [
            (self.throttles.sinks.get(&delivery.sink), None),
            (
                self.throttles.rules.get(&delivery.rule),
                Some(delivery.rule.as_str()),
            ),
        ];
        for (limit, rule) in limits {
            let Some(&limit) = limit else { continue };
            let sent = self
                .store
                .messages_delivered_since(&delivery.sink, rule, since)
                .await?;
            if usize::try_from(sent).unwrap_or(usize::MAX) >= limit {
                return Ok(Some((Deferral::Throttled, throttle_digest())));
            }
        }
        Ok(None)
    }

    async fn attempt(
        &self,
        sink: &Sink,
        delivery: &DeliveryRecord,
    ) -> Result<AttemptRecord, StoreError> {
        let outcome = if delivery.carries_digest() {
            let Some(digest) = self.digest(delivery).await? else {
                return Ok(gone("the digest's articles were deleted"));
            };
            self.sender.send_digest(sink, &digest).await
        } else {
            let Some(message) = self.message(delivery).await? else {
                return Ok(gone("the article was deleted"));
            };
            self.send_alert(sink, &message).await?
        };
        if outcome.verdict == Verdict::Broken {
            // Before the attempt is recorded and the lease given up: no other
            // dispatcher may claim the sink's next alert in between.
            self.mark_broken(sink, &outcome).await?;
        }
        let at = Utc::now();
        let latency = outcome.latency;
        let (status, next_attempt_at) = self.next_step(&outcome.verdict, delivery, at);
        Ok(AttemptRecord {
            at,
            http_status: outcome.http_status,
            error: outcome.error,
            response_excerpt: outcome.response_excerpt,
            latency_ms: i64::try_from(latency.as_millis()).unwrap_or(i64::MAX),
            status,
            next_attempt_at,
        })
    }

    /// Sends one alert; to a `slack_app` sink, in its story's thread when the
    /// story has one, and keeps the thread its first alert starts.
    async fn send_alert(
        &self,
        sink: &Sink,
        message: &AlertMessage,
    ) -> Result<AttemptOutcome, StoreError> {
        let (SinkTarget::SlackApp(target), Some(story_id)) =
            (sink.target(), message.article.story_id)
        else {
            return Ok(self.sender.send(sink, message).await);
        };
        let thread = self.store.slack_thread(sink.name(), story_id).await?;
        let outcome = self
            .sender
            .send_in_thread(sink, message, thread.as_ref().map(|t| t.ts.as_str()))
            .await;
        if let (None, Some(ts), Verdict::Delivered) = (&thread, &outcome.posted, &outcome.verdict) {
            let now = Utc::now();
            let outlets = message
                .article
                .feeds
                .iter()
                .chain(&message.also_reported_by)
                .map(|outlet| outlet.url.clone())
                .collect();
            self.store
                .save_slack_thread(&SlackThread {
                    sink: sink.name().to_owned(),
                    story_id,
                    channel: target.channel.clone(),
                    ts: ts.clone(),
                    outlets,
                    created_at: now,
                    checked_at: now,
                })
                .await?;
        }
        Ok(outcome)
    }

    /// Adds "also reported by …" to the threads of `slack_app` sinks whose
    /// story more outlets carried since: each thread looked at once a
    /// minute by one instance, for a day after its story was posted.
    async fn note_spread_in_threads(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        let threaded = self
            .sinks
            .values()
            .any(|sink| matches!(sink.target(), SinkTarget::SlackApp(_)));
        if !threaded {
            return Ok(());
        }
        let threads = self
            .store
            .slack_threads_to_check(now - THREAD_WATCH, now - SPREAD_CHECK)
            .await?;
        for thread in threads {
            let Some(sink) = self.sinks.get(&thread.sink) else {
                continue;
            };
            if !matches!(sink.target(), SinkTarget::SlackApp(_))
                || !self.store.claim_slack_thread(&thread, now).await?
            {
                continue;
            }
            let outlets: Vec<ArticleSource> = self
                .store
                .story_outlets(thread.story_id)
                .await?
                .into_iter()
                .map(|outlet| outlet.redacted(&self.redactor))
                .collect();
            let new: Vec<ArticleSource> = outlets
                .iter()
                .filter(|outlet| !thread.outlets.contains(&outlet.url))
                .cloned()
                .collect();
            if new.is_empty() {
                continue;
            }
            let note_id = format!("{}-{}-{}", thread.story_id, thread.outlets.len(), new.len());
            let outcome = self
                .sender
                .send_spread_note(sink, &thread.ts, &new, &note_id)
                .await;
            match outcome.verdict {
                Verdict::Delivered => {
                    let named: Vec<String> = outlets.into_iter().map(|o| o.url).collect();
                    self.store
                        .set_slack_thread_outlets(&thread.sink, thread.story_id, &named)
                        .await?;
                }
                Verdict::Broken => self.mark_broken(sink, &outcome).await?,
                // Tried again at the next look.
                Verdict::Retry { .. } | Verdict::Permanent => tracing::warn!(
                    sink = %thread.sink,
                    story = thread.story_id,
                    error = outcome.error.as_deref().unwrap_or_default(),
                    "could not add outlets to the story's thread"
                ),
            }
        }
        Ok(())
    }

    /// Marks `sink` broken for every instance, saying so once.
    async fn mark_broken(&self, sink: &Sink, outcome: &AttemptOutcome) -> Result<(), StoreError> {
        let mut reason = outcome
            .error
            .clone()
            .unwrap_or_else(|| "the endpoint refused herald".to_owned());
        if let Some(excerpt) = &outcome.response_excerpt {
            reason.push_str(&format!(": {excerpt}"));
        }
        let broken = BrokenSink {
            sink: sink.name().to_owned(),
            reason,
            since: Utc::now(),
            config: sink.fingerprint(),
        };
        if self.store.mark_sink_broken(&broken).await? {
            tracing::error!(
                sink = %broken.sink,
                reason = %broken.reason,
                "sink is broken: its alerts wait until its configuration changes \
                 or `herald sinks enable {}`",
                broken.sink
            );
        }
        Ok(())
    }

    /// Clears the broken mark of each sink whose configuration changed since
    /// it broke (or that is no longer configured: its alerts then die as any
    /// unconfigured sink's do), so its queue drains in order.
    async fn enable_reconfigured_sinks(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        for broken in self.store.broken_sinks().await? {
            let current = self.sinks.get(&broken.sink).map(Sink::fingerprint);
            if current.as_deref() == Some(broken.config.as_str()) {
                continue;
            }
            if self.store.enable_sink(&broken.sink, now).await? {
                tracing::info!(
                    sink = %broken.sink,
                    "sink's configuration changed since it broke: sending its alerts again"
                );
            }
        }
        Ok(())
    }

    /// The alert a delivery sends, as its sink is shown it; none once its
    /// article has been deleted.
    async fn message(&self, delivery: &DeliveryRecord) -> Result<Option<AlertMessage>, StoreError> {
        let Some(article) = self.store.article(delivery.article_id).await? else {
            return Ok(None);
        };
        let credited = article.feeds.first().map(|feed| feed.url.clone());
        let also_reported_by = match article.story_id {
            Some(story_id) => self
                .store
                .story_outlets(story_id)
                .await?
                .into_iter()
                // Compared whole: two feeds may differ only in a hidden credential.
                .filter(|outlet| Some(&outlet.url) != credited.as_ref())
                .map(|outlet| outlet.redacted(&self.redactor))
                .collect(),
            None => Vec::new(),
        };
        Ok(Some(AlertMessage {
            delivery_id: delivery.delivery_id.clone(),
            alert_id: delivery.alert_id,
            rule: FiredRule {
                name: delivery.rule.clone(),
                query: self
                    .queries
                    .get(&delivery.rule)
                    .cloned()
                    .unwrap_or_default(),
            },
            article: article.redacted(&self.redactor),
            matched: delivery.matched.clone(),
            also_reported_by,
        }))
    }

    /// The digest a carrier sends: the alerts of the deliveries it carries,
    /// the stories most outlets carried first, then the newest. None when
    /// every article is gone.
    async fn digest(&self, carrier: &DeliveryRecord) -> Result<Option<Digest>, StoreError> {
        let mut items = Vec::new();
        for delivery in self.store.carried(carrier.id).await? {
            if let Some(message) = self.message(&delivery).await? {
                items.push(message);
            }
        }
        if items.is_empty() {
            return Ok(None);
        }
        items.sort_by(|a, b| {
            b.also_reported_by
                .len()
                .cmp(&a.also_reported_by.len())
                .then_with(|| b.article.published_at.cmp(&a.article.published_at))
        });
        let schedule = match (carrier.deferred, self.quiet_hours.get(&carrier.sink)) {
            (Some(Deferral::QuietHours), Some(quiet)) => format!("after quiet hours {quiet}"),
            (Some(Deferral::Throttled), _) => "held back by max_per_hour".to_owned(),
            _ => carrier
                .digest
                .as_deref()
                .and_then(|key| self.digests.get(key))
                .map_or_else(|| "digest".to_owned(), ToString::to_string),
        };
        Ok(Some(Digest {
            delivery_id: carrier.delivery_id.clone(),
            schedule,
            part: carrier.digest_part.map_or(1, |(part, _)| part),
            parts: carrier.digest_part.map_or(1, |(_, parts)| parts),
            items,
        }))
    }

    /// Forms the digests whose period has ended: each sink's deliveries
    /// waiting for a schedule, from the oldest's period, split into messages
    /// of what the sink takes. Deliveries waiting for a schedule no longer
    /// configured (a reload removed it) go out now, as one digest.
    async fn form_due_digests(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        for waiting in self.store.waiting_digests().await? {
            if self
                .quiet_hours
                .get(&waiting.sink)
                .is_some_and(|quiet| quiet.contains(now))
            {
                continue;
            }
            let (due, until) = match self.digests.get(&waiting.digest) {
                Some(schedule) => {
                    let end = schedule.next_after(waiting.oldest);
                    (end, end)
                }
                // No longer configured: everything waiting for it goes now.
                None => (now, now + chrono::TimeDelta::seconds(1)),
            };
            if due > now {
                continue;
            }
            let capacity = self
                .sinks
                .get(&waiting.sink)
                .map_or(DIGEST_FALLBACK_CAPACITY, |sink| {
                    digest_capacity(sink.target())
                });
            let carriers = self
                .store
                .form_digest(&waiting, until, capacity, now)
                .await?;
            tracing::debug!(sink = %waiting.sink, parts = carriers.len(), "digest formed");
        }
        Ok(())
    }

    /// Retry policy: delivered, retried after a backoff, or dead (permanent failure,
    /// or failing for longer than `give_up` since the delivery was queued).
    fn next_step(
        &self,
        verdict: &Verdict,
        delivery: &DeliveryRecord,
        at: DateTime<Utc>,
    ) -> (DeliveryStatus, DateTime<Utc>) {
        match verdict {
            Verdict::Delivered => (DeliveryStatus::Delivered, at),
            Verdict::Permanent => (DeliveryStatus::Dead, at),
            // Queued still; its sink is not claimed until it is fixed.
            Verdict::Broken => (DeliveryStatus::Failed, at),
            Verdict::Retry { retry_after } => {
                let wait = retry::retry_delay(
                    delivery.attempts.saturating_add(1),
                    *retry_after,
                    rand::random::<f64>(),
                );
                let next = chrono::Duration::from_std(wait)
                    .ok()
                    .and_then(|wait| at.checked_add_signed(wait))
                    .unwrap_or(DateTime::<Utc>::MAX_UTC);
                let deadline = chrono::Duration::from_std(self.give_up)
                    .ok()
                    .and_then(|give_up| delivery.queued_at.checked_add_signed(give_up))
                    .unwrap_or(DateTime::<Utc>::MAX_UTC);
                if next > deadline {
                    (DeliveryStatus::Dead, at)
                } else {
                    (DeliveryStatus::Failed, next)
                }
            }
        }
    }
}

/// What a delivery that cannot be sent any more records: dead, with why.
fn gone(why: &str) -> AttemptRecord {
    AttemptRecord {
        at: Utc::now(),
        http_status: None,
        error: Some(why.to_owned()),
        response_excerpt: None,
        latency_ms: 0,
        status: DeliveryStatus::Dead,
        next_attempt_at: Utc::now(),
    }
}

/// Claimed deliveries grouped by sink, each group oldest first.
fn queues_by_sink(claimed: Vec<DeliveryRecord>) -> Vec<Vec<DeliveryRecord>> {
    let mut queues: Vec<Vec<DeliveryRecord>> = Vec::new();
    let mut position: HashMap<String, usize> = HashMap::new();
    for delivery in claimed {
        match position.get(&delivery.sink) {
            Some(&at) => queues[at].push(delivery),
            None => {
                position.insert(delivery.sink.clone(), queues.len());
                queues.push(vec![delivery]);
            }
        }
    }
    for queue in &mut queues {
        queue.sort_by_key(|delivery| delivery.id);
    }
    queues
}
