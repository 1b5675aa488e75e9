//! Stories: which story a new article joins, and the outlets of each.

use super::{PgStore, STORIES_PAGE_PG};
use crate::domain::story::StoryRecord;
use crate::store::rows::story_from_row;
use crate::store::story_index::{IndexRow, Indexed, StoryIndex};
use crate::store::{Incoming, StoreError, StoryStore};
use crate::stories::assign::{Candidate, NewMember, StoryChoice};
use crate::stories::{StorySettings, assign};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row as _;
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Transaction};
use std::collections::HashMap;

#[async_trait]
impl StoryStore for PgStore {
    /// A page of stories with their outlets left empty: [`crate::store::Store::stories`]
    /// adds them.
    async fn stories(
        &self,
        since: DateTime<Utc>,
        min_outlets: i64,
        limit: i64,
    ) -> Result<Vec<StoryRecord>, StoreError> {
        let rows = sqlx::query(STORIES_PAGE_PG)
            .bind(since)
            .bind(min_outlets)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(story_from_row).collect()
    }
}

/// Puts each new article of this write into a story: the story of its best
/// near-duplicate within the window (stored before, or earlier in this batch),
/// else a new one with the story id allocated beside it. Returns article id →
/// story id and the `(story id, first article id)` of the stories it starts;
/// `indexed` gets the members to store fingerprints for.
#[allow(clippy::too_many_arguments)]
pub(super) async fn assign_stories<'a>(
    tx: &mut Transaction<'static, Postgres>,
    index: &mut StoryIndex,
    indexed: &mut Indexed<'a>,
    feeds: &[i64],
    fresh: &[(String, &'a Incoming)],
    inserted: &[(i64, String)],
    story_ids: &[i64],
    settings: &StorySettings,
    now: DateTime<Utc>,
) -> Result<(HashMap<i64, i64>, Vec<(i64, i64)>), sqlx::Error> {
    let mut members: Vec<NewMember<'a>> = inserted
        .iter()
        .zip(fresh)
        .zip(feeds)
        .map(|(((article_id, _), (_, item)), feed_id)| NewMember {
            article_id: *article_id,
            feed_id: *feed_id,
            input: item.story.as_ref(),
        })
        .collect();
    let story_of_article: HashMap<i64, i64> = inserted
        .iter()
        .zip(story_ids)
        .map(|((article_id, _), story)| (*article_id, *story))
        .collect();
    assign::sort_members(&mut members);
    let (found, stored) = if members.iter().any(|m| m.input.is_some()) {
        refresh_index(tx, index, &members, settings, now).await?;
        let found: Vec<Vec<i64>> = members
            .iter()
            .map(|m| {
                m.input
                    .map_or_else(Vec::new, |input| index.candidates(input, settings))
            })
            .collect();
        let stored = candidate_rows(tx, &found).await?;
        (found, stored)
    } else {
        (Vec::new(), HashMap::new())
    };
    let choices = assign::plan(&members, &found, &stored, settings);
    let started: HashMap<i64, i64> = members
        .iter()
        .zip(&choices)
        .filter(|(_, choice)| **choice == StoryChoice::Start)
        .filter_map(|(member, _)| {
            Some((
                member.article_id,
                *story_of_article.get(&member.article_id)?,
            ))
        })
        .collect();
    let mut starters: Vec<(i64, i64)> = started.iter().map(|(a, s)| (*s, *a)).collect();
    starters.sort_unstable();
    let stories = assign::resolve(&members, &choices, &started);
    indexed.articles = members
        .iter()
        .filter_map(|m| Some((m.article_id, m.input?)))
        .collect();
    indexed.feeds = members
        .iter()
        .filter(|m| m.input.is_some())
        .map(|m| m.feed_id)
        .collect();
    Ok((stories, starters))
}

/// The stories this write starts, `(story id, first article id)`, with the
/// rules held back on each (JSON, or none).
pub(super) async fn insert_stories(
    tx: &mut Transaction<'static, Postgres>,
    starters: &[(i64, i64)],
    held: &HashMap<i64, String>,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    if starters.is_empty() {
        return Ok(());
    }
    let (ids, firsts): (Vec<i64>, Vec<i64>) = starters.iter().copied().unzip();
    let held_rules: Vec<Option<&str>> = ids
        .iter()
        .map(|id| held.get(id).map(String::as_str))
        .collect();
    sqlx::query(
        "INSERT INTO stories (id, first_article_id, created_at, held_rules)
         SELECT s, a, $3, h FROM UNNEST($1::int8[], $2::int8[], $4::text[]) AS u(s, a, h)",
    )
    .bind(&ids)
    .bind(&firsts)
    .bind(now)
    .bind(&held_rules)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Brings the story index in step with the database for `members` (under the
/// story lock): the rows other writers committed since, and the part of the
/// members' windows not held yet.
pub(super) async fn refresh_index(
    tx: &mut Transaction<'static, Postgres>,
    index: &mut StoryIndex,
    members: &[NewMember<'_>],
    settings: &StorySettings,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let refresh = index.refresh_for(
        members.iter().filter_map(|m| Some(m.input?.seen_at)),
        settings,
        now,
    );
    let mut rows = Vec::new();
    if let Some(after) = refresh.after_seq {
        rows.extend(index_rows(
            sqlx::query(
                "SELECT article_id, seen_at, seq, fingerprint FROM story_fingerprints
                 WHERE seq > $1",
            )
            .bind(after)
            .fetch_all(&mut **tx)
            .await?,
        )?);
    }
    if let Some((from, until)) = refresh.range {
        rows.extend(index_rows(
            sqlx::query(
                "SELECT article_id, seen_at, seq, fingerprint FROM story_fingerprints
                 WHERE seen_at >= $1 AND ($2::timestamptz IS NULL OR seen_at < $2)",
            )
            .bind(from)
            .bind(until)
            .fetch_all(&mut **tx)
            .await?,
        )?);
    }
    index.apply(&refresh, &rows);
    Ok(())
}

pub(super) fn index_rows(rows: Vec<PgRow>) -> Result<Vec<IndexRow>, sqlx::Error> {
    rows.iter()
        .map(|row| {
            Ok(IndexRow {
                article_id: row.try_get(0)?,
                seen_at: row.try_get(1)?,
                seq: row.try_get(2)?,
                fingerprint: row.try_get(3)?,
            })
        })
        .collect()
}

/// The fingerprints and stories of the candidates the index found, each read once.
pub(super) async fn candidate_rows(
    tx: &mut Transaction<'static, Postgres>,
    found: &[Vec<i64>],
) -> Result<HashMap<i64, Candidate>, sqlx::Error> {
    let mut ids: Vec<i64> = found.iter().flatten().copied().collect();
    ids.sort_unstable();
    ids.dedup();
    let mut stored = HashMap::with_capacity(ids.len());
    if ids.is_empty() {
        return Ok(stored);
    }
    let rows = sqlx::query(
        "SELECT f.article_id, a.story_id, f.feed_id, f.seen_at, f.fingerprint
         FROM story_fingerprints f JOIN articles a ON a.id = f.article_id
         WHERE f.article_id = ANY($1) AND a.story_id IS NOT NULL",
    )
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;
    for row in &rows {
        let bytes: Vec<u8> = row.try_get(4)?;
        if let Some(candidate) =
            Candidate::from_row(row.try_get(1)?, row.try_get(2)?, row.try_get(3)?, &bytes)
        {
            stored.insert(row.try_get(0)?, candidate);
        }
    }
    Ok(stored)
}

/// Stores the new articles' fingerprints, so later articles find them, and
/// notes the highest `seq` written.
pub(super) async fn index_fingerprints(
    tx: &mut Transaction<'static, Postgres>,
    indexed: &mut Indexed<'_>,
) -> Result<(), sqlx::Error> {
    if indexed.articles.is_empty() {
        return Ok(());
    }
    let (mut ids, mut seen, mut bytes) = (Vec::new(), Vec::new(), Vec::new());
    for (article_id, input) in &indexed.articles {
        ids.push(*article_id);
        seen.push(input.seen_at);
        bytes.push(input.fingerprint.to_bytes());
    }
    // No ON CONFLICT: the articles were inserted by this transaction.
    indexed.last_seq = sqlx::query_scalar(
        "WITH written AS (
             INSERT INTO story_fingerprints (article_id, feed_id, seen_at, fingerprint)
             SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::timestamptz[], $4::bytea[])
             RETURNING seq
         )
         SELECT max(seq) FROM written",
    )
    .bind(&ids)
    .bind(&indexed.feeds)
    .bind(&seen)
    .bind(&bytes)
    .fetch_one(&mut **tx)
    .await?;
    Ok(())
}
