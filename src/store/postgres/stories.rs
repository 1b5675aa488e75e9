//! Stories: which story a new article joins, and the outlets of each.

use super::{PgStore, STORIES_PAGE_PG};
use crate::domain::story::StoryRecord;
use crate::store::rows::story_from_row;
use crate::store::story_index::{Indexed, StoryIndex, choose_stories};
use crate::store::{Incoming, StoreError, StoryStore};
use crate::stories::assign::{NewMember, StoryChoice};
use crate::stories::{StorySettings, assign};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
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
) -> Result<(HashMap<i64, i64>, Vec<(i64, i64)>), StoreError> {
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
    let choices = choose_stories(tx, index, &members, settings, now).await?;
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
