//! The alert outbox's dispatcher: claims due deliveries, sends each through its
//! sink, records the attempt and schedules a retry or gives up (SPEC §6).
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
use crate::domain::retry;
use crate::sinks::{Sender, Sink, Verdict};
use crate::store::{AttemptRecord, DeliveryRecord, DeliveryStatus, Store, StoreError};

/// How long a claimed delivery stays with its dispatcher before others may take it.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// Deliveries claimed at once.
const CLAIM_BATCH: i64 = 32;

/// Sends in flight at once per dispatcher; Slack pacing applies on top, per URL.
const SEND_CONCURRENCY: usize = 16;

/// What one dispatch pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DispatchReport {
    pub delivered: usize,
    /// Failed this time; retried later.
    pub failed: usize,
    pub dead: usize,
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
    /// Each rule's query, by name, for payloads.
    pub queries: HashMap<String, String>,
    /// Identifies this process's claims.
    pub owner: String,
    pub lease: Duration,
    /// A delivery failing for longer than this is dead.
    pub give_up: Duration,
}

impl Dispatcher {
    /// Claims and sends every delivery due at `now`, batch by batch: one attempt
    /// each, since a retry scheduled during the pass waits for the next one.
    pub async fn run_once(&self, now: DateTime<Utc>) -> Result<DispatchReport, StoreError> {
        let mut report = DispatchReport::default();
        let started = Utc::now();
        loop {
            let lease_until = chrono::Duration::from_std(self.lease)
                .ok()
                .and_then(|lease| now.checked_add_signed(lease))
                .unwrap_or(now);
            let claimed = self
                .store
                .claim_deliveries(&self.owner, now, lease_until, started, CLAIM_BATCH)
                .await?;
            if claimed.is_empty() {
                return Ok(report);
            }
            let results: Vec<Result<DeliveryStatus, StoreError>> = futures::stream::iter(claimed)
                .map(|delivery| self.deliver(delivery))
                .buffer_unordered(SEND_CONCURRENCY)
                .collect()
                .await;
            for result in results {
                match result? {
                    DeliveryStatus::Delivered => report.delivered += 1,
                    DeliveryStatus::Dead => report.dead += 1,
                    DeliveryStatus::Failed | DeliveryStatus::Pending => report.failed += 1,
                }
            }
        }
    }

    async fn deliver(&self, delivery: DeliveryRecord) -> Result<DeliveryStatus, StoreError> {
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
        Ok(status)
    }

    async fn attempt(
        &self,
        sink: &Sink,
        delivery: &DeliveryRecord,
    ) -> Result<AttemptRecord, StoreError> {
        let Some(article) = self.store.article(delivery.article_id).await? else {
            return Ok(AttemptRecord {
                at: Utc::now(),
                http_status: None,
                error: Some("the article was deleted".to_owned()),
                response_excerpt: None,
                latency_ms: 0,
                status: DeliveryStatus::Dead,
                next_attempt_at: Utc::now(),
            });
        };
        let message = AlertMessage {
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
            article,
            matched: delivery.matched.clone(),
        };
        let outcome = self.sender.send(sink, &message).await;
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
