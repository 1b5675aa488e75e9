//! Which story each article of a write joins: the backend-neutral half of story
//! clustering. The story index finds the candidates (stored articles sharing a
//! band key within the window) and the backends read their fingerprints and
//! stories; this decides, with [`best_candidate`] exactly as [`crate::stories::Clusterer`]
//! does, so that an article also finds a copy stored earlier in the same write.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{ArticleMeta, BandKeyHashing, Fingerprint, StorySettings, band_keys, best_candidate};

/// Candidates taken per band key, the most recently stored first: a text
/// repeated a thousand times in the window (a feed's template, a syndicated
/// item) then costs at most this many per key however often it was repeated,
/// and those are its story's latest copies.
pub const MAX_ROWS_PER_KEY: i64 = 8;

/// Earlier members of the same write an article is verified against, the
/// nearest first: a write of thousands of near-identical items would otherwise
/// verify each against all before it. The stored-candidate bounds above do the
/// same for what is already stored.
pub const MAX_EARLIER_MEMBERS: usize = 64;

/// An article's story fingerprint, computed from its text before the write.
#[derive(Debug, Clone, PartialEq)]
pub struct StoryInput {
    pub fingerprint: Fingerprint,
    /// [`band_keys`] of the fingerprint: what the article is indexed and looked up by.
    pub band_keys: Vec<i64>,
    /// The time the window is measured on: the article's published time.
    pub seen_at: DateTime<Utc>,
}

impl StoryInput {
    pub fn new(fingerprint: Fingerprint, seen_at: DateTime<Utc>) -> StoryInput {
        StoryInput {
            band_keys: band_keys(&fingerprint),
            fingerprint,
            seen_at,
        }
    }
}

/// A stored article a new one may join, as the backends read it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub story_id: i64,
    pub meta: ArticleMeta,
    pub fingerprint: Fingerprint,
}

impl Candidate {
    /// A candidate from its stored columns; `None` for a fingerprint of another
    /// format (written by another version): never an error for the new article.
    pub fn from_row(
        story_id: i64,
        feed_id: i64,
        seen_at: DateTime<Utc>,
        bytes: &[u8],
    ) -> Option<Candidate> {
        Some(Candidate {
            story_id,
            meta: ArticleMeta { feed_id, seen_at },
            fingerprint: Fingerprint::from_bytes(bytes).ok()?,
        })
    }
}

/// A newly inserted article of this write, in insertion order.
pub struct NewMember<'a> {
    pub article_id: i64,
    pub feed_id: i64,
    pub input: Option<&'a StoryInput>,
}

/// Puts a write's new articles in the order they are assigned: by published
/// time, then id, so that of two copies stored together the earlier-published
/// one starts the story (and is its first article), whatever order the feed or
/// the insert gave them.
pub fn sort_members(members: &mut [NewMember<'_>]) {
    members.sort_by_key(|m| (m.input.map(|input| input.seen_at), m.article_id));
}

/// Where a new article goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoryChoice {
    /// Joins a stored story.
    Existing(i64),
    /// Starts a story of its own.
    Start,
    /// Joins the story started by the new article at this index.
    StartedBy(usize),
}

/// Chooses each new article's story. `found[i]` are the stored article ids the
/// lookup returned for `members[i]`, `stored` their rows; an earlier member of
/// the same write sharing a band key is a candidate too (the nearest
/// [`MAX_EARLIER_MEMBERS`]), after the stored ones (its id is larger).
pub fn plan(
    members: &[NewMember<'_>],
    found: &[Vec<i64>],
    stored: &HashMap<i64, Candidate>,
    settings: &StorySettings,
) -> Vec<StoryChoice> {
    let mut choices: Vec<StoryChoice> = Vec::with_capacity(members.len());
    let mut members_by_key = MembersByKey::default();
    for (index, member) in members.iter().enumerate() {
        let Some(input) = member.input else {
            choices.push(StoryChoice::Start);
            continue;
        };
        let mut ids: Vec<i64> = found.get(index).cloned().unwrap_or_default();
        ids.sort_unstable();
        ids.dedup();
        let mut rows: Vec<(&Fingerprint, ArticleMeta, StoryChoice)> = ids
            .iter()
            .filter_map(|id| stored.get(id))
            .map(|c| (&c.fingerprint, c.meta, StoryChoice::Existing(c.story_id)))
            .collect();
        // The nearest earlier members sharing a key, in write order.
        let mut earlier_rows: Vec<usize> = input
            .band_keys
            .iter()
            .flat_map(|key| members_by_key.newest(*key).take(MAX_EARLIER_MEMBERS))
            .collect();
        earlier_rows.sort_unstable();
        earlier_rows.dedup();
        let nearest =
            earlier_rows.split_off(earlier_rows.len().saturating_sub(MAX_EARLIER_MEMBERS));
        for earlier in nearest {
            let (Some(other), Some(choice)) = (members.get(earlier), choices.get(earlier)) else {
                continue;
            };
            let Some(other_input) = other.input else {
                continue;
            };
            let joined = match *choice {
                StoryChoice::Start => StoryChoice::StartedBy(earlier),
                resolved => resolved,
            };
            let meta = ArticleMeta {
                feed_id: other.feed_id,
                seen_at: other_input.seen_at,
            };
            rows.push((&other_input.fingerprint, meta, joined));
        }
        let meta = ArticleMeta {
            feed_id: member.feed_id,
            seen_at: input.seen_at,
        };
        let best = best_candidate(
            &input.fingerprint,
            &meta,
            rows.iter()
                .map(|(fingerprint, meta, _)| (*fingerprint, meta)),
            settings,
        );
        choices.push(match best.and_then(|(position, _)| rows.get(position)) {
            Some((_, _, choice)) => *choice,
            None => StoryChoice::Start,
        });
        for key in &input.band_keys {
            members_by_key.push(*key, index);
        }
    }
    choices
}

/// The members of a write seen so far under each band key, newest first: a
/// key's newest entry, and each entry's member and the entry before it under
/// the same key. One growing list for the whole write, not one per key (a
/// write of 5,000 articles has 165,000 key entries).
#[derive(Default)]
struct MembersByKey {
    newest: HashMap<i64, usize, BandKeyHashing>,
    entries: Vec<(usize, Option<usize>)>,
}

impl MembersByKey {
    fn push(&mut self, key: i64, member: usize) {
        let before = self.newest.insert(key, self.entries.len());
        self.entries.push((member, before));
    }

    fn newest(&self, key: i64) -> impl Iterator<Item = usize> + '_ {
        let mut next = self.newest.get(&key).copied();
        std::iter::from_fn(move || {
            let (member, before) = *self.entries.get(next?)?;
            next = before;
            Some(member)
        })
    }
}

/// Each new article's story id, once the stories of `Start` members exist.
pub fn resolve(
    members: &[NewMember<'_>],
    choices: &[StoryChoice],
    started: &HashMap<i64, i64>,
) -> HashMap<i64, i64> {
    let story_of_member = |index: usize| -> Option<i64> {
        members
            .get(index)
            .and_then(|m| started.get(&m.article_id).copied())
    };
    members
        .iter()
        .zip(choices)
        .enumerate()
        .filter_map(|(index, (member, choice))| {
            let story = match *choice {
                StoryChoice::Existing(story) => Some(story),
                StoryChoice::Start => story_of_member(index),
                StoryChoice::StartedBy(first) => story_of_member(first),
            }?;
            Some((member.article_id, story))
        })
        .collect()
}

/// The window around each article's time, as bounds for the key lookup.
pub fn window_bounds(
    input: &StoryInput,
    settings: &StorySettings,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let window = settings.window_delta();
    (
        input
            .seen_at
            .checked_sub_signed(window)
            .unwrap_or(DateTime::<Utc>::MIN_UTC),
        input
            .seen_at
            .checked_add_signed(window)
            .unwrap_or(DateTime::<Utc>::MAX_UTC),
    )
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    const BODY: &str = "Rail workers across the country will strike for 48 hours next week \
        after talks over pay and staffing broke down late on Monday, the union said, \
        warning that most commuter lines would not run.";
    const OTHER: &str = "Heavy rain flooded dozens of streets in the old town overnight and \
        the river rose above its banks for the first time in a decade, forcing the \
        closure of two bridges and a school.";

    fn input(body: &str, hours: i64) -> StoryInput {
        let start = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).single();
        StoryInput::new(
            Fingerprint::new("", body),
            start.unwrap_or_default() + chrono::TimeDelta::hours(hours),
        )
    }

    #[test]
    fn copies_within_one_write_share_the_first_ones_new_story() {
        let (a, b, c) = (input(BODY, 0), input(OTHER, 0), input(BODY, 1));
        let members = [
            NewMember {
                article_id: 10,
                feed_id: 1,
                input: Some(&a),
            },
            NewMember {
                article_id: 11,
                feed_id: 1,
                input: Some(&b),
            },
            NewMember {
                article_id: 12,
                feed_id: 1,
                input: Some(&c),
            },
            NewMember {
                article_id: 13,
                feed_id: 1,
                input: None,
            },
        ];
        let choices = plan(&members, &[], &HashMap::new(), &StorySettings::default());
        assert_eq!(
            choices,
            [
                StoryChoice::Start,
                StoryChoice::Start,
                StoryChoice::StartedBy(0),
                StoryChoice::Start
            ]
        );
        let started = HashMap::from([(10, 100), (11, 101), (13, 103)]);
        let stories = resolve(&members, &choices, &started);
        assert_eq!(stories.get(&12), Some(&100));
        assert_eq!(stories.get(&11), Some(&101));
        assert_eq!(stories.get(&13), Some(&103));
    }

    #[test]
    fn a_write_of_more_copies_than_are_verified_puts_all_in_the_first_ones_story() {
        let copies: Vec<StoryInput> = (0..MAX_EARLIER_MEMBERS * 3)
            .map(|_| input(BODY, 0))
            .collect();
        let members: Vec<NewMember<'_>> = (1..)
            .zip(&copies)
            .map(|(id, copy)| NewMember {
                article_id: id,
                feed_id: id,
                input: Some(copy),
            })
            .collect();
        let choices = plan(&members, &[], &HashMap::new(), &StorySettings::default());
        assert_eq!(choices.first(), Some(&StoryChoice::Start));
        assert!(
            choices
                .iter()
                .skip(1)
                .all(|choice| *choice == StoryChoice::StartedBy(0)),
            "{choices:?}"
        );
    }

    #[test]
    fn a_stored_copy_wins_and_later_copies_follow_it() {
        let (stored_input, a, b) = (input(BODY, 0), input(BODY, 2), input(BODY, 3));
        let stored = HashMap::from([(
            5,
            Candidate {
                story_id: 50,
                meta: ArticleMeta {
                    feed_id: 9,
                    seen_at: stored_input.seen_at,
                },
                fingerprint: stored_input.fingerprint.clone(),
            },
        )]);
        let members = [
            NewMember {
                article_id: 20,
                feed_id: 1,
                input: Some(&a),
            },
            NewMember {
                article_id: 21,
                feed_id: 2,
                input: Some(&b),
            },
        ];
        let choices = plan(
            &members,
            &[vec![5], vec![]],
            &stored,
            &StorySettings::default(),
        );
        assert_eq!(
            choices,
            [StoryChoice::Existing(50), StoryChoice::Existing(50)]
        );
    }
}
