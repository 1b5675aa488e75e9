//! Hits held back on a story instead of alerting: listed for `herald
//! alerts`, and released on purpose by `herald alerts send`. The reasons are
//! kept in `stories.held_rules` (see `store::write`).

use chrono::{DateTime, Utc};

use super::StoreError;
use super::statements::{Statements, TxStatements, Value};
use super::write::{held_hits_of, new_delivery_id, release_from};
use crate::domain::alert::HeldHit;

/// Stories read per statement while listing.
const STORIES_PER_PAGE: i64 = 200;

/// Held hits, newest story first, at most `limit`.
pub(super) async fn held_hits(
    store: &(impl Statements + ?Sized),
    limit: i64,
) -> Result<Vec<HeldHit>, StoreError> {
    let wanted = usize::try_from(limit).unwrap_or(0);
    let mut hits = Vec::new();
    let mut after: Option<(DateTime<Utc>, i64)> = None;
    while hits.len() < wanted {
        // Newest first through the partial index `stories_held`.
        let mut values = vec![Value::Int(STORIES_PER_PAGE)];
        let after_clause = match after {
            Some((at, id)) => {
                values.extend([Value::Time(at), Value::Int(id)]);
                "AND (created_at, id) < ($2, $3)"
            }
            None => "",
        };
        let sql = format!(
            "SELECT id, created_at, first_article_id, held_rules FROM stories
             WHERE held_rules IS NOT NULL {after_clause}
             ORDER BY created_at DESC, id DESC LIMIT $1"
        );
        let stories = store.rows(&sql, &values).await?;
        let Some(last) = stories.last() else { break };
        after = Some((last.time("created_at")?, last.int("id")?));
        let ids = stories
            .iter()
            .map(|story| story.int("id"))
            .collect::<Result<Vec<_>, _>>()?;
        // A rule with an alert on the story fired there: not a held hit
        // (a database written before such hits were skipped may hold them).
        let sql = format!(
            "SELECT story_id, rule FROM alerts WHERE {}",
            store.in_set("story_id", 1)
        );
        let alerted = store
            .rows(&sql, &[Value::Ids(&ids)])
            .await?
            .iter()
            .map(|row| Ok((row.int("story_id")?, row.text("rule")?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        for story in &stories {
            let id = story.int("id")?;
            let fired: Vec<String> = alerted
                .iter()
                .filter(|(story, _)| *story == id)
                .map(|(_, rule)| rule.clone())
                .collect();
            hits.extend(held_hits_of(
                id,
                story.time("created_at")?,
                story.int("first_article_id")?,
                &story.text("held_rules")?,
                &fired,
            ));
        }
    }
    hits.truncate(wanted);
    Ok(hits)
}

/// Turns the held hit of `rule` on `story_id` into an alert with a delivery
/// to each of `sinks`, in the caller's write transaction; `lock` is what the
/// engine adds to the story's read to hold it until the commit. The new
/// deliveries' ids, or `None` when no such hit is held (nothing changed).
pub(super) async fn release(
    tx: &mut impl TxStatements,
    story_id: i64,
    rule: &str,
    sinks: &[String],
    now: DateTime<Utc>,
    lock: &str,
) -> Result<Option<Vec<i64>>, StoreError> {
    let sql = format!("SELECT first_article_id, held_rules FROM stories WHERE id = $1 {lock}");
    let stories = tx.rows(&sql, &[Value::Int(story_id)]).await?;
    let Some(story) = stories.first() else {
        return Ok(None);
    };
    let article_id = story.int("first_article_id")?;
    let Some(left) = release_from(story.opt_text("held_rules")?.as_deref(), rule) else {
        return Ok(None);
    };
    tx.execute(
        "UPDATE stories SET held_rules = $2 WHERE id = $1",
        &[Value::Int(story_id), Value::OptText(left.as_deref())],
    )
    .await?;
    let created = tx
        .rows(
            "INSERT INTO alerts (rule, story_id, article_id, matched, created_at)
             VALUES ($1, $2, $3, '[]', $4)
             ON CONFLICT (rule, story_id) DO NOTHING RETURNING id",
            &[
                Value::Text(rule),
                Value::Int(story_id),
                Value::Int(article_id),
                Value::Time(now),
            ],
        )
        .await?;
    let Some(alert) = created.first() else {
        return Ok(None);
    };
    let alert = alert.int("id")?;
    let mut deliveries = Vec::with_capacity(sinks.len());
    for sink in sinks {
        let delivery_id = new_delivery_id();
        let created = tx
            .rows(
                "INSERT INTO deliveries (delivery_id, alert_id, sink, next_attempt_at,
                    created_at, queued_at)
                 VALUES ($1, $2, $3, $4, $4, $4) RETURNING id",
                &[
                    Value::Text(&delivery_id),
                    Value::Int(alert),
                    Value::Text(sink),
                    Value::Time(now),
                ],
            )
            .await?;
        for row in &created {
            deliveries.push(row.int("id")?);
        }
    }
    Ok(Some(deliveries))
}
