//! Stories: which story a new article joins, and the outlets of each.

use super::articles::ids_json;
use super::{ROWS_PER_STATEMENT, SqliteStore, to_text};
use crate::domain::story::StoryRecord;
use crate::store::rows::story_from_row;
use crate::store::story_index::{Indexed, StoryIndex, choose_stories};
use crate::store::write::HeldRules;
use crate::store::{Incoming, StoreError, StoryStore};
use crate::stories::assign::{NewMember, StoryChoice};
use crate::stories::{StoryInput, StorySettings, assign};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Sqlite, Transaction};
use std::collections::HashMap;

#[async_trait]
impl StoryStore for SqliteStore {
    /// A page of stories with their outlets left empty: [`crate::store::Store::stories`]
    /// adds them.
    async fn stories(
        &self,
        since: DateTime<Utc>,
        min_outlets: i64,
        limit: i64,
    ) -> Result<Vec<StoryRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM (
                 SELECT s.id, s.created_at, fa.title, fa.url,
                     (SELECT count(*) FROM articles a WHERE a.story_id = s.id) AS articles,
                     (SELECT count(DISTINCT src.feed_id) FROM articles a
                      JOIN article_sources src ON src.article_id = a.id
                      WHERE a.story_id = s.id) AS outlets
                 FROM stories s JOIN articles fa ON fa.id = s.first_article_id
                 WHERE s.created_at >= ?1
             )
             WHERE outlets >= ?2
             ORDER BY created_at DESC, id DESC
             LIMIT ?3",
        )
        .bind(to_text(since))
        .bind(min_outlets)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(story_from_row).collect()
    }
}

/// Puts each article this write stored first into a story (see
/// `postgres::assign_stories`; `BEGIN IMMEDIATE` already makes writers take
/// turns here), and stores its fingerprint. Returns article id → story id, how
/// many joined a story they did not start, and what to add to the index once
/// the write has committed.
pub(super) async fn assign_stories<'a>(
    tx: &mut Transaction<'static, Sqlite>,
    index: &mut StoryIndex,
    members: &[NewMember<'a>],
    settings: &StorySettings,
    now: DateTime<Utc>,
    now_text: &str,
) -> Result<(HashMap<i64, i64>, usize, Indexed<'a>), StoreError> {
    let mut indexed = Indexed::default();
    let choices = choose_stories(tx, index, members, settings, now).await?;
    let starters: Vec<i64> = members
        .iter()
        .zip(&choices)
        .filter(|(_, choice)| **choice == StoryChoice::Start)
        .map(|(member, _)| member.article_id)
        .collect();
    let mut started = HashMap::with_capacity(starters.len());
    for chunk in starters.chunks(ROWS_PER_STATEMENT) {
        let mut insert =
            QueryBuilder::<Sqlite>::new("INSERT INTO stories (first_article_id, created_at) ");
        insert.push_values(chunk, |mut row, article_id| {
            row.push_bind(*article_id).push_bind(now_text);
        });
        insert.push(" RETURNING first_article_id, id");
        let rows: Vec<(i64, i64)> = insert.build_query_as().fetch_all(&mut **tx).await?;
        started.extend(rows);
    }
    let stories = assign::resolve(members, &choices, &started);
    let pairs: Vec<[i64; 2]> = stories.iter().map(|(a, s)| [*a, *s]).collect();
    sqlx::query(
        "UPDATE articles SET story_id = json_extract(u.value, '$[1]')
         FROM json_each(?1) AS u WHERE articles.id = json_extract(u.value, '$[0]')",
    )
    .bind(serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".to_owned()))
    .execute(&mut **tx)
    .await?;
    let fingerprinted: Vec<(&NewMember<'a>, &'a StoryInput)> =
        members.iter().filter_map(|m| Some((m, m.input?))).collect();
    if !fingerprinted.is_empty() {
        // seq: past the highest, under the write lock, so it follows commit
        // order (see `story_index`).
        let highest: i64 =
            sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM story_fingerprints")
                .fetch_one(&mut **tx)
                .await?;
        let mut seq = highest;
        for chunk in fingerprinted.chunks(ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO story_fingerprints (article_id, feed_id, seen_at, fingerprint, seq) ",
            );
            insert.push_values(chunk, |mut row, (member, input)| {
                seq += 1;
                row.push_bind(member.article_id)
                    .push_bind(member.feed_id)
                    .push_bind(to_text(input.seen_at))
                    .push_bind(input.fingerprint.to_bytes())
                    .push_bind(seq);
            });
            insert.build().execute(&mut **tx).await?;
        }
        indexed.last_seq = Some(seq);
        indexed.articles = fingerprinted
            .iter()
            .map(|(member, input)| (member.article_id, *input))
            .collect();
    }
    let joined = members.len() - started.len();
    Ok((stories, joined, indexed))
}

/// The rules held back on the stories the write's hits go to.
pub(super) async fn read_held_rules(
    tx: &mut Transaction<'static, Sqlite>,
    stored_first: &[(i64, &Incoming)],
    stories: &HashMap<i64, i64>,
) -> Result<HeldRules, StoreError> {
    let mut ids: Vec<i64> = stored_first
        .iter()
        .filter(|(_, item)| !item.matches.is_empty())
        .filter_map(|(article_id, _)| stories.get(article_id).copied())
        .collect();
    if ids.is_empty() {
        return Ok(HeldRules::default());
    }
    ids.sort_unstable();
    ids.dedup();
    let rows: Vec<(i64, Option<String>, String)> = sqlx::query_as(
        "SELECT s.id, s.held_rules,
            (SELECT json_group_array(a.rule) FROM alerts a WHERE a.story_id = s.id)
         FROM stories s WHERE s.id IN (SELECT value FROM json_each(?1))",
    )
    .bind(ids_json(&ids))
    .fetch_all(&mut **tx)
    .await?;
    Ok(HeldRules::read(rows.into_iter().map(
        |(story, held, alerted)| {
            let alerted = serde_json::from_str::<Vec<String>>(&alerted).unwrap_or_default();
            (story, held, alerted)
        },
    )))
}
