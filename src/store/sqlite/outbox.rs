//! Alerts and the outbox: rule hits, deliveries, attempts.

use super::{ROWS_PER_STATEMENT, SqliteStore, from_text, to_text};
use crate::domain::alert::AlertTarget;
use crate::domain::delivery::{AttemptRecord, Deferral, DeliveryRecord};
use crate::store::digests::{self, WaitingDigest};
use crate::store::held;
use crate::store::rows::delivery_from_row;
use crate::store::write::{HeldRules, matched_json, new_delivery_id};
use crate::store::{Incoming, OutboxStore, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Sqlite, Transaction};
use std::collections::HashMap;

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn form_digest(
        &self,
        waiting: &WaitingDigest,
        until: DateTime<Utc>,
        capacity: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        let mut tx = self.begin_write().await?;
        let carriers = digests::form(&mut tx, waiting, until, capacity, now, "").await?;
        tx.commit().await?;
        Ok(carriers)
    }

    async fn release_held(
        &self,
        story_id: i64,
        rule: &str,
        sinks: &[String],
        now: DateTime<Utc>,
    ) -> Result<Option<Vec<i64>>, StoreError> {
        let mut tx = self.begin_write().await?;
        let released = held::release(&mut tx, story_id, rule, sinks, now, "").await?;
        if released.is_some() {
            tx.commit().await?;
        }
        Ok(released)
    }

    async fn claim_deliveries(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        fresh_since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let now = to_text(now);
        let mut tx = self.begin_write().await?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "UPDATE deliveries SET lease_owner = ?1, lease_until = ?3
             WHERE id IN (
                SELECT d.id FROM deliveries d
                WHERE d.status IN ('pending', 'failed') AND d.next_attempt_at <= ?2
                  AND (d.digest IS NULL OR d.digest_of = d.id)
                  AND (d.lease_until IS NULL OR d.lease_until < ?2)
                  AND (d.last_attempt_at IS NULL OR d.last_attempt_at < ?5)
                  AND NOT EXISTS (SELECT 1 FROM sink_health h WHERE h.sink = d.sink)
                  AND NOT EXISTS (
                    SELECT 1 FROM deliveries o
                    WHERE o.sink = d.sink AND o.status IN ('pending', 'failed')
                      AND (o.digest IS NULL OR o.digest_of = o.id) AND o.id < d.id
                      AND (o.next_attempt_at > ?2 OR o.lease_until >= ?2
                           OR o.last_attempt_at >= ?5))
                ORDER BY d.id LIMIT ?4)
             RETURNING id",
        )
        .bind(owner)
        .bind(&now)
        .bind(to_text(lease_until))
        .bind(limit)
        .bind(to_text(fresh_since))
        .fetch_all(&mut *tx)
        .await?;
        let mut claimed = Vec::with_capacity(ids.len());
        for id in ids {
            let row = sqlx::query(
                "SELECT d.*, al.rule, al.matched, al.article_id
                 FROM deliveries d JOIN alerts al ON al.id = d.alert_id WHERE d.id = ?1",
            )
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            claimed.push(delivery_from_row(&row)?);
        }
        tx.commit().await?;
        claimed.sort_by_key(|d| d.id);
        Ok(claimed)
    }

    async fn record_attempt(
        &self,
        id: i64,
        owner: &str,
        attempt: &AttemptRecord,
    ) -> Result<bool, StoreError> {
        let at = to_text(attempt.at);
        let mut tx = self.begin_write().await?;
        let number: Option<i64> = sqlx::query_scalar(
            "UPDATE deliveries SET status = ?3, attempts = attempts + 1, last_attempt_at = ?4,
                last_http_status = ?5, error = ?6, response_excerpt = ?7, next_attempt_at = ?8,
                delivered_at = CASE WHEN ?3 = 'delivered' THEN ?4 ELSE delivered_at END,
                lease_owner = NULL, lease_until = NULL
             WHERE id = ?1 AND lease_owner = ?2
             RETURNING attempts",
        )
        .bind(id)
        .bind(owner)
        .bind(attempt.status.as_str())
        .bind(&at)
        .bind(attempt.http_status)
        .bind(&attempt.error)
        .bind(&attempt.response_excerpt)
        .bind(to_text(attempt.next_attempt_at))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(number) = number else {
            return Ok(false);
        };
        // A digest's carrier settles the rows it carries: they were sent in
        // its message, or given up with it.
        sqlx::query(
            "UPDATE deliveries SET status = ?2, last_attempt_at = ?3,
                delivered_at = CASE WHEN ?2 = 'delivered' THEN ?3 ELSE delivered_at END
             WHERE digest_of = ?1 AND id <> ?1 AND ?2 IN ('delivered', 'dead')",
        )
        .bind(id)
        .bind(attempt.status.as_str())
        .bind(&at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO delivery_attempts (delivery_id, attempt, at, http_status, error,
                response_excerpt, latency_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(number)
        .bind(&at)
        .bind(attempt.http_status)
        .bind(&attempt.error)
        .bind(&attempt.response_excerpt)
        .bind(attempt.latency_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn retry_deliveries(
        &self,
        id: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let now = to_text(now);
        let result = match id {
            Some(id) => sqlx::query(
                "UPDATE deliveries SET status = 'pending', next_attempt_at = ?2, queued_at = ?2,
                    lease_owner = NULL, lease_until = NULL
                 WHERE id = ?1 AND status IN ('failed', 'dead')",
            )
            .bind(id)
            .bind(now),
            None => sqlx::query(
                "UPDATE deliveries SET status = 'pending', next_attempt_at = ?1, queued_at = ?1,
                    lease_owner = NULL, lease_until = NULL
                 WHERE status = 'dead'",
            )
            .bind(now),
        }
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
    }

    async fn defer_delivery(
        &self,
        id: i64,
        owner: &str,
        digest: &str,
        reason: Deferral,
    ) -> Result<bool, StoreError> {
        // Pending again (a retry may be deferred): waiting rows are pending.
        let mut tx = self.begin_write().await?;
        let result = sqlx::query(
            "UPDATE deliveries SET digest = ?3, deferred = ?4, status = 'pending',
                lease_owner = NULL, lease_until = NULL
             WHERE id = ?1 AND lease_owner = ?2",
        )
        .bind(id)
        .bind(owner)
        .bind(digest)
        .bind(reason.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(result.rows_affected() == 1)
    }

    async fn release_deliveries(&self, ids: &[i64], owner: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for id in ids {
            sqlx::query(
                "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL
                 WHERE id = ?1 AND lease_owner = ?2",
            )
            .bind(id)
            .bind(owner)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn next_delivery_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let next: Option<String> = sqlx::query_scalar(
            "SELECT min(max(next_attempt_at, COALESCE(lease_until, next_attempt_at)))
             FROM deliveries d WHERE status IN ('pending', 'failed')
               AND (digest IS NULL OR digest_of = id)
               AND NOT EXISTS (SELECT 1 FROM sink_health h WHERE h.sink = d.sink)
               AND id = (SELECT min(id) FROM deliveries o
                         WHERE o.sink = d.sink AND o.status IN ('pending', 'failed')
                           AND (o.digest IS NULL OR o.digest_of = o.id))",
        )
        .fetch_one(&self.pool)
        .await?;
        next.as_deref().map(from_text).transpose()
    }
}

/// The rule hits of the articles this write stored first, once per (rule,
/// story), in write order (the first article to fire a rule on a story is its
/// alert's article), and a delivery per sink of each. Returns the alert ids.
pub(super) async fn insert_alerts(
    tx: &mut Transaction<'static, Sqlite>,
    held: &mut HeldRules,
    stored_first: &[(i64, &Incoming)],
    stories: &HashMap<i64, i64>,
    now_text: &str,
) -> Result<Vec<i64>, StoreError> {
    // (rule, story, article, matched, sinks) of the hits that may alert.
    let mut hits: Vec<(&str, i64, i64, String, &[AlertTarget])> = Vec::new();
    for (article_id, item) in stored_first {
        let Some(story_id) = stories.get(article_id) else {
            continue;
        };
        for hit in &item.matches {
            if held.alerts(*story_id, &hit.rule, item.suppressed_for(&hit.rule)) {
                hits.push((
                    &*hit.rule,
                    *story_id,
                    *article_id,
                    matched_json(&hit.matched),
                    &hit.sinks,
                ));
            }
        }
    }
    let mut alerts = Vec::new();
    for chunk in hits.chunks(ROWS_PER_STATEMENT) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO alerts (rule, story_id, article_id, matched, created_at) ",
        );
        insert.push_values(chunk, |mut row, (rule, story, article, matched, _)| {
            row.push_bind(*rule)
                .push_bind(*story)
                .push_bind(*article)
                .push_bind(matched.as_str())
                .push_bind(now_text);
        });
        insert.push(" ON CONFLICT (rule, story_id) DO NOTHING RETURNING id, rule, story_id");
        let created: Vec<(i64, String, i64)> = insert.build_query_as().fetch_all(&mut **tx).await?;
        // A (rule, story) is in a chunk once at most that alerts: the first.
        let sinks_of: HashMap<(&str, i64), &[AlertTarget]> = chunk
            .iter()
            .rev()
            .map(|(rule, story, _, _, sinks)| ((*rule, *story), *sinks))
            .collect();
        let mut deliveries: Vec<(String, i64, &AlertTarget)> = Vec::new();
        for (alert_id, rule, story) in &created {
            alerts.push(*alert_id);
            for target in sinks_of
                .get(&(rule.as_str(), *story))
                .copied()
                .unwrap_or_default()
            {
                deliveries.push((new_delivery_id(), *alert_id, target));
            }
        }
        for rows in deliveries.chunks(ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO deliveries (delivery_id, alert_id, sink, next_attempt_at, created_at,
                    queued_at, digest) ",
            );
            insert.push_values(rows, |mut row, (delivery_id, alert_id, target)| {
                row.push_bind(delivery_id.as_str())
                    .push_bind(*alert_id)
                    .push_bind(target.sink.as_str())
                    .push_bind(now_text)
                    .push_bind(now_text)
                    .push_bind(now_text)
                    .push_bind(target.digest.as_deref());
            });
            insert.push(" ON CONFLICT (alert_id, sink) DO NOTHING");
            insert.build().execute(&mut **tx).await?;
        }
    }
    alerts.sort_unstable();
    Ok(alerts)
}
