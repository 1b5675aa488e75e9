//! Alerts and the outbox: rule hits, deliveries, attempts.

use super::PgStore;
use super::stories::insert_stories;
use crate::domain::delivery::{AttemptRecord, Deferral, DeliveryRecord};
use crate::store::digests::{self, WaitingDigest};
use crate::store::held;
use crate::store::rows::delivery_from_row;
use crate::store::write::{HeldRules, matched_json, new_delivery_id};
use crate::store::{Incoming, OutboxStore, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row as _;
use sqlx::{Postgres, Transaction};
use std::collections::HashMap;

#[async_trait]
impl OutboxStore for PgStore {
    async fn form_digest(
        &self,
        waiting: &WaitingDigest,
        until: DateTime<Utc>,
        capacity: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let carriers = digests::form(&mut tx, waiting, until, capacity, now, "FOR UPDATE").await?;
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
        let mut tx = self.pool.begin().await?;
        let released = held::release(&mut tx, story_id, rule, sinks, now, "FOR UPDATE").await?;
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
        // SKIP LOCKED: concurrent dispatchers take disjoint rows instead of queueing.
        let rows = sqlx::query(
            "WITH claimed AS (
                UPDATE deliveries SET lease_owner = $1, lease_until = $3
                WHERE id IN (
                    SELECT d.id FROM deliveries d
                    WHERE d.status IN ('pending', 'failed') AND d.next_attempt_at <= $2
                      AND (d.digest IS NULL OR d.digest_of = d.id)
                      AND (d.lease_until IS NULL OR d.lease_until < $2)
                      AND (d.last_attempt_at IS NULL OR d.last_attempt_at < $5)
                      AND NOT EXISTS (SELECT 1 FROM sink_health h WHERE h.sink = d.sink)
                      AND NOT EXISTS (
                        SELECT 1 FROM deliveries o
                        WHERE o.sink = d.sink AND o.status IN ('pending', 'failed')
                          AND (o.digest IS NULL OR o.digest_of = o.id) AND o.id < d.id
                          AND (o.next_attempt_at > $2 OR o.lease_until >= $2
                               OR o.last_attempt_at >= $5))
                    ORDER BY d.id LIMIT $4
                    FOR UPDATE OF d SKIP LOCKED)
                RETURNING *)
             SELECT d.*, al.rule, al.matched, al.article_id
             FROM claimed d JOIN alerts al ON al.id = d.alert_id ORDER BY d.id",
        )
        .bind(owner)
        .bind(now)
        .bind(lease_until)
        .bind(limit)
        .bind(fresh_since)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    async fn record_attempt(
        &self,
        id: i64,
        owner: &str,
        attempt: &AttemptRecord,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let status = i32::from;
        let updated = sqlx::query(
            "UPDATE deliveries SET status = $3, attempts = attempts + 1, last_attempt_at = $4,
                last_http_status = $5, error = $6, response_excerpt = $7, next_attempt_at = $8,
                delivered_at = CASE WHEN $3 = 'delivered' THEN $4 ELSE delivered_at END,
                lease_owner = NULL, lease_until = NULL
             WHERE id = $1 AND lease_owner = $2
             RETURNING attempts",
        )
        .bind(id)
        .bind(owner)
        .bind(attempt.status.as_str())
        .bind(attempt.at)
        .bind(attempt.http_status.map(status))
        .bind(&attempt.error)
        .bind(&attempt.response_excerpt)
        .bind(attempt.next_attempt_at)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = updated else {
            return Ok(false);
        };
        let number: i32 = row.try_get(0)?;
        // A digest's carrier settles the rows it carries: they were sent in
        // its message, or given up with it.
        sqlx::query(
            "UPDATE deliveries SET status = $2, last_attempt_at = $3,
                delivered_at = CASE WHEN $2 = 'delivered' THEN $3 ELSE delivered_at END
             WHERE digest_of = $1 AND id <> $1 AND $2 IN ('delivered', 'dead')",
        )
        .bind(id)
        .bind(attempt.status.as_str())
        .bind(attempt.at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO delivery_attempts (delivery_id, attempt, at, http_status, error,
                response_excerpt, latency_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(number)
        .bind(attempt.at)
        .bind(attempt.http_status.map(status))
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
        let result = match id {
            Some(id) => sqlx::query(
                "UPDATE deliveries SET status = 'pending', next_attempt_at = $2, queued_at = $2,
                    lease_owner = NULL, lease_until = NULL
                 WHERE id = $1 AND status IN ('failed', 'dead')",
            )
            .bind(id)
            .bind(now),
            None => sqlx::query(
                "UPDATE deliveries SET status = 'pending', next_attempt_at = $1, queued_at = $1,
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
        let result = sqlx::query(
            "UPDATE deliveries SET digest = $3, deferred = $4, status = 'pending',
                lease_owner = NULL, lease_until = NULL
             WHERE id = $1 AND lease_owner = $2",
        )
        .bind(id)
        .bind(owner)
        .bind(digest)
        .bind(reason.as_str())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn release_deliveries(&self, ids: &[i64], owner: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL
             WHERE id = ANY($1) AND lease_owner = $2",
        )
        .bind(ids)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn next_delivery_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT min(GREATEST(next_attempt_at, COALESCE(lease_until, next_attempt_at)))
             FROM deliveries d WHERE status IN ('pending', 'failed')
               AND (digest IS NULL OR digest_of = id)
               AND NOT EXISTS (SELECT 1 FROM sink_health h WHERE h.sink = d.sink)
               AND id = (SELECT min(id) FROM deliveries o
                         WHERE o.sink = d.sink AND o.status IN ('pending', 'failed')
                           AND (o.digest IS NULL OR o.digest_of = o.id))",
        )
        .fetch_one(&self.pool)
        .await?)
    }
}

/// What recording a write's rule hits did, by article.
#[derive(Debug, Default)]
pub(super) struct RecordedHits {
    /// `(alert id, article id)` of the alerts created.
    pub(super) alerts: Vec<(i64, i64)>,
    /// Held-back hits recorded on their story, by article.
    pub(super) held: HashMap<i64, usize>,
}

/// Writes the stories this write starts and records the rule hits of the
/// articles it stored first: a new story's held-back rules go into its row as
/// it is inserted, not in an update of every new story afterwards.
pub(super) async fn insert_stories_and_alerts(
    tx: &mut Transaction<'static, Postgres>,
    keyed: &[(String, &Incoming)],
    inserted: &[(i64, String)],
    stories: &HashMap<i64, i64>,
    starters: &[(i64, i64)],
    now: DateTime<Utc>,
) -> Result<RecordedHits, sqlx::Error> {
    let new_stories: std::collections::HashSet<i64> = starters.iter().map(|(s, _)| *s).collect();
    let by_key: HashMap<&str, &Incoming> =
        keyed.iter().map(|(k, item)| (k.as_str(), *item)).collect();
    let mut hit_stories: Vec<i64> = inserted
        .iter()
        .filter(|(_, key)| {
            by_key
                .get(key.as_str())
                .is_some_and(|i| !i.matches.is_empty())
        })
        .filter_map(|(article_id, _)| stories.get(article_id).copied())
        .collect();
    let mut recorded = RecordedHits::default();
    if hit_stories.is_empty() {
        insert_stories(tx, starters, &HashMap::new(), now).await?;
        return Ok(recorded);
    }
    hit_stories.retain(|story| !new_stories.contains(story));
    hit_stories.sort_unstable();
    hit_stories.dedup();
    let held_rows: Vec<(i64, Option<String>, Vec<String>)> = if hit_stories.is_empty() {
        Vec::new()
    } else {
        sqlx::query_as(
            "SELECT s.id, s.held_rules,
                ARRAY(SELECT a.rule FROM alerts a WHERE a.story_id = s.id)
             FROM stories s WHERE s.id = ANY($1)",
        )
        .bind(&hit_stories)
        .fetch_all(&mut **tx)
        .await?
    };
    let mut held = HeldRules::read(held_rows);
    let (mut rules, mut story_ids, mut article_ids, mut matched) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (article_id, key) in inserted {
        let (Some(item), Some(story_id)) = (by_key.get(key.as_str()), stories.get(article_id))
        else {
            continue;
        };
        for hit in &item.matches {
            let before = held.held;
            if !held.alerts(*story_id, &hit.rule, item.suppressed_for(&hit.rule)) {
                if held.held > before {
                    *recorded.held.entry(*article_id).or_default() += 1;
                }
                continue;
            }
            rules.push(&*hit.rule);
            story_ids.push(*story_id);
            article_ids.push(*article_id);
            matched.push(matched_json(&hit.matched));
        }
    }
    let mut fresh_held: HashMap<i64, String> = HashMap::new();
    let mut changed: Vec<(i64, String)> = Vec::new();
    for (story, json) in held.changed() {
        if new_stories.contains(&story) {
            fresh_held.insert(story, json);
        } else {
            changed.push((story, json));
        }
    }
    insert_stories(tx, starters, &fresh_held, now).await?;
    if !changed.is_empty() {
        let (ids, json): (Vec<i64>, Vec<String>) = changed.into_iter().unzip();
        sqlx::query(
            "UPDATE stories AS s SET held_rules = u.h
             FROM UNNEST($1::int8[], $2::text[]) AS u(id, h) WHERE s.id = u.id",
        )
        .bind(&ids)
        .bind(&json)
        .execute(&mut **tx)
        .await?;
    }
    if rules.is_empty() {
        return Ok(recorded);
    }
    let created: Vec<(i64, String, i64)> = sqlx::query_as(
        "INSERT INTO alerts (rule, story_id, article_id, matched, created_at)
         SELECT r, s, a, m, $5
         FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::text[]) AS u(r, s, a, m)
         ON CONFLICT (rule, story_id) DO NOTHING
         RETURNING id, rule, article_id",
    )
    .bind(&rules)
    .bind(&story_ids)
    .bind(&article_ids)
    .bind(&matched)
    .bind(now)
    .fetch_all(&mut **tx)
    .await?;
    insert_deliveries(tx, keyed, inserted, &created, now).await?;
    recorded.alerts = created
        .into_iter()
        .map(|(id, _, article)| (id, article))
        .collect();
    Ok(recorded)
}

/// One outbox row per sink of each alert that is not held back.
pub(super) async fn insert_deliveries(
    tx: &mut Transaction<'static, Postgres>,
    keyed: &[(String, &Incoming)],
    inserted: &[(i64, String)],
    created: &[(i64, String, i64)],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let by_key: HashMap<&str, &Incoming> =
        keyed.iter().map(|(k, item)| (k.as_str(), *item)).collect();
    let by_article: HashMap<i64, &Incoming> = inserted
        .iter()
        .filter_map(|(id, key)| Some((*id, *by_key.get(key.as_str())?)))
        .collect();
    let (mut alert_ids, mut sinks, mut delivery_ids) = (Vec::new(), Vec::new(), Vec::new());
    let mut digests: Vec<Option<&str>> = Vec::new();
    for (alert_id, rule, article_id) in created {
        let Some(item) = by_article.get(article_id) else {
            continue;
        };
        for hit in item.matches.iter().filter(|hit| *hit.rule == **rule) {
            for target in hit.sinks.iter() {
                alert_ids.push(*alert_id);
                sinks.push(target.sink.as_str());
                digests.push(target.digest.as_deref());
                delivery_ids.push(new_delivery_id());
            }
        }
    }
    if alert_ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO deliveries (delivery_id, alert_id, sink, next_attempt_at, created_at,
            queued_at, digest)
         SELECT d, a, s, $4, $4, $4, g
         FROM UNNEST($1::text[], $2::int8[], $3::text[], $5::text[]) AS u(d, a, s, g)
         ON CONFLICT (alert_id, sink) DO NOTHING",
    )
    .bind(&delivery_ids)
    .bind(&alert_ids)
    .bind(&sinks)
    .bind(now)
    .bind(&digests)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
