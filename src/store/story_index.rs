//! The story index: band key → the stored articles carrying it, held in memory
//! and kept in step with the database.
//!
//! Writing ~33 index rows per article and probing as many was most of a write's
//! cost (each key lands at a random place of a B-tree: ~6 µs to insert and ~6 µs
//! to probe per key on PostgreSQL). The database now keeps one row per article
//! (`story_fingerprints`, whose fingerprint gives back the band keys), and each
//! process keeps the keys of the articles in the window here. Candidates are
//! found in memory; only the few that are found are read back (fingerprint and
//! story) for verification.
//!
//! Staying in step with other writers (other instances on PostgreSQL, a
//! `herald poll` beside `herald run` on SQLite): every fingerprint row carries a
//! `seq` taken while its writer held the story lock, so `seq` order is commit
//! order. A writer, holding that lock, first reads the rows past the last `seq`
//! it has seen (the catch-up), then decides, writes and commits; only after the
//! commit are its own rows added here. A write that fails leaves nothing behind.
//!
//! Memory: about 0.7 KB per article in the window (a hash entry and a link per
//! band key); 100,000 articles take ~70 MB. Rows older than the window of the
//! articles being stored are dropped, and read again from the database when an
//! old article (a back catalogue) needs them.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};

use crate::stories::assign::{Candidate, NewMember, StoryChoice};
use crate::stories::{BandKeyHashing, StoryInput};

use super::StoreError;
use super::statements::{Row, TxStatements, Value};
use crate::stories::assign::{self, MAX_ROWS_PER_KEY};
use crate::stories::{Fingerprint, StorySettings, band_keys};

/// Links followed per band key when looking for candidates: a key shared by
/// thousands of near-identical texts (a feed's template) then costs at most
/// this many steps, and the most recently stored are found first.
const MAX_LINKS_PER_KEY: usize = 64;

/// No link: the end of a key's chain.
const NONE: u32 = u32::MAX;

/// A stored article's fingerprint row, as the index reads it.
#[derive(Debug, Clone)]
pub(super) struct IndexRow {
    pub article_id: i64,
    pub seen_at: DateTime<Utc>,
    pub seq: i64,
    pub fingerprint: Vec<u8>,
}

/// What a writer must read before deciding, under the story lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Refresh {
    /// Rows committed by other writers since: `seq` greater than this.
    pub after_seq: Option<i64>,
    /// Rows seen at or after `from` and, when set, before `until`: the part of
    /// the window the index does not hold yet.
    pub range: Option<(DateTime<Utc>, Option<DateTime<Utc>>)>,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    article_id: i64,
    seen_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy)]
struct Link {
    slot: u32,
    next: u32,
}

/// Band key → its chain of articles, newest stored first.
#[derive(Default)]
pub(super) struct StoryIndex {
    heads: HashMap<u32, u32, BandKeyHashing>,
    links: Vec<Link>,
    slots: Vec<Slot>,
    /// Every fingerprint stored for a time at or after this is here; `None`
    /// until the first write loads the window.
    loaded_from: Option<DateTime<Utc>>,
    /// The highest `seq` reflected here.
    last_seq: i64,
    /// Whether this write transaction has read the rows other writers
    /// committed: once is enough, since it holds the story lock till commit.
    caught_up: bool,
    /// A write began and has not ended: rows it took in may never have been
    /// committed (it failed, or its task was cancelled mid-write).
    writing: bool,
    /// Where the last look for articles to drop started: the next look waits
    /// until the window has moved on by an eighth, so a write does not count
    /// every held article each time.
    pruned_from: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for StoryIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoryIndex")
            .field("articles", &self.slots.len())
            .field("loaded_from", &self.loaded_from)
            .field("last_seq", &self.last_seq)
            .finish()
    }
}

/// A band key as the index keys it: two keys that agree here but differ
/// elsewhere cost one verification, never a wrong merge.
fn short_key(key: i64) -> u32 {
    // Truncation on purpose: the low bits are the band's hash.
    key as u32
}

impl StoryIndex {
    /// What to read before deciding the stories of articles seen at `times`.
    /// Drops what has left every window first.
    pub fn refresh_for(
        &mut self,
        times: impl Iterator<Item = DateTime<Utc>>,
        settings: &StorySettings,
        now: DateTime<Utc>,
    ) -> Refresh {
        let window = settings.window_delta();
        let earliest = |time: DateTime<Utc>| time.checked_sub_signed(window).unwrap_or(time);
        let needed_from = times.map(earliest).fold(earliest(now), DateTime::min);
        self.prune(earliest(now).min(needed_from), window);
        match self.loaded_from {
            None => Refresh {
                after_seq: None,
                range: Some((needed_from, None)),
            },
            Some(loaded_from) => Refresh {
                after_seq: (!self.caught_up).then_some(self.last_seq),
                range: (needed_from < loaded_from).then_some((needed_from, Some(loaded_from))),
            },
        }
    }

    /// Takes in the rows a [`Refresh`] read: catch-up rows (past `after_seq`) for
    /// the part of the window already held, and the rows of its range.
    pub fn apply(&mut self, refresh: &Refresh, rows: &[IndexRow]) {
        let loaded_from = self.loaded_from;
        for row in rows {
            self.last_seq = self.last_seq.max(row.seq);
            let in_range = refresh.range.is_some_and(|(from, until)| {
                row.seen_at >= from && until.is_none_or(|until| row.seen_at < until)
            });
            let caught_up = loaded_from.is_some_and(|from| row.seen_at >= from);
            if !(in_range || caught_up) {
                continue;
            }
            let Ok(fingerprint) = Fingerprint::from_bytes(&row.fingerprint) else {
                // Another version's format: comparable to nothing, as before.
                continue;
            };
            self.insert(row.article_id, row.seen_at, &band_keys(&fingerprint));
        }
        if let Some((from, _)) = refresh.range {
            self.loaded_from = Some(loaded_from.map_or(from, |loaded| loaded.min(from)));
        }
        self.caught_up = true;
    }

    /// A write transaction starts (holding the story lock): its first refresh
    /// reads what other writers committed since the last one. If the previous
    /// write never ended, the index is dropped and loaded again.
    pub fn begin_write(&mut self) {
        if self.writing {
            self.reset();
        }
        self.writing = true;
        self.caught_up = false;
    }

    /// The write that began has committed: what it took in exists.
    pub fn end_write(&mut self) {
        self.writing = false;
    }

    /// Forgets everything, to be loaded again by the next write: for a write
    /// that failed after its rows were taken in (they may never exist, and on
    /// SQLite their `seq` values will be used again).
    pub fn reset(&mut self) {
        *self = StoryIndex::default();
    }

    /// The stored articles sharing a band key with `input` within the window:
    /// per key at most [`MAX_ROWS_PER_KEY`], the most recently stored first.
    pub fn candidates(&self, input: &StoryInput, settings: &StorySettings) -> Vec<i64> {
        let (low, high) = assign::window_bounds(input, settings);
        let per_key = usize::try_from(MAX_ROWS_PER_KEY).unwrap_or(8);
        let mut found = Vec::new();
        for key in &input.band_keys {
            let mut link = self.heads.get(&short_key(*key)).copied().unwrap_or(NONE);
            let (mut taken, mut steps) = (0, 0);
            while link != NONE && taken < per_key && steps < MAX_LINKS_PER_KEY {
                let Some(entry) = self.links.get(link as usize) else {
                    break;
                };
                if let Some(slot) = self.slots.get(entry.slot as usize)
                    && slot.seen_at >= low
                    && slot.seen_at <= high
                {
                    found.push(slot.article_id);
                    taken += 1;
                }
                link = entry.next;
                steps += 1;
            }
        }
        found.sort_unstable();
        found.dedup();
        found
    }

    /// Adds the articles a write has stored, with the highest `seq` it wrote
    /// (unless they were read back already), so the next batch of the same
    /// transaction finds them; [`StoryIndex::reset`] if the transaction fails.
    pub fn committed<'a>(
        &mut self,
        articles: impl Iterator<Item = (i64, &'a StoryInput)>,
        last_seq: Option<i64>,
    ) {
        // A later batch of the same transaction may have read these rows
        // already (its catch-up sees its own transaction's rows).
        if last_seq.is_some_and(|seq| seq <= self.last_seq) {
            return;
        }
        for (article_id, input) in articles {
            self.insert(article_id, input.seen_at, &input.band_keys);
        }
        if let Some(seq) = last_seq {
            self.last_seq = seq;
        }
    }

    fn insert(&mut self, article_id: i64, seen_at: DateTime<Utc>, keys: &[i64]) {
        let Ok(slot) = u32::try_from(self.slots.len()) else {
            return;
        };
        self.slots.push(Slot {
            article_id,
            seen_at,
        });
        for key in keys {
            let Ok(link) = u32::try_from(self.links.len()) else {
                return;
            };
            let head = self.heads.entry(short_key(*key)).or_insert(NONE);
            self.links.push(Link { slot, next: *head });
            *head = link;
        }
    }

    /// Rebuilds without the articles seen before `keep_from` once they are
    /// over half of what is held (so the cost is spread over many writes).
    fn prune(&mut self, keep_from: DateTime<Utc>, window: TimeDelta) {
        let Some(loaded_from) = self.loaded_from else {
            return;
        };
        // Keep a window's margin, so that a feed's slightly older items do not
        // make the next write read that part again.
        let keep_from = keep_from.checked_sub_signed(window).unwrap_or(keep_from);
        let step = window.checked_div(8).unwrap_or(window);
        let looked_recently = self
            .pruned_from
            .is_some_and(|from| from.checked_add_signed(step).is_some_and(|t| keep_from < t));
        if loaded_from >= keep_from || looked_recently {
            return;
        }
        self.pruned_from = Some(keep_from);
        let stale = self.slots.iter().filter(|s| s.seen_at < keep_from).count();
        if stale * 2 < self.slots.len() {
            return;
        }
        // A link's key is the head of the chain it is on: walk every chain once.
        let mut key_of_link = vec![0u32; self.links.len()];
        for (key, head) in &self.heads {
            let mut link = *head;
            while let Some(entry) = self.links.get(link as usize) {
                if let Some(k) = key_of_link.get_mut(link as usize) {
                    *k = *key;
                }
                link = entry.next;
            }
        }
        let old = std::mem::take(self);
        self.loaded_from = Some(keep_from);
        self.last_seq = old.last_seq;
        self.caught_up = old.caught_up;
        self.writing = old.writing;
        self.pruned_from = old.pruned_from;
        let mut new_slot_of = vec![NONE; old.slots.len()];
        for (slot, new_slot) in old.slots.iter().zip(&mut new_slot_of) {
            if slot.seen_at >= keep_from
                && let Ok(index) = u32::try_from(self.slots.len())
            {
                *new_slot = index;
                self.slots.push(*slot);
            }
        }
        // Links in their old order, so each chain stays newest first.
        for (link, key) in old.links.iter().zip(key_of_link) {
            let slot = new_slot_of.get(link.slot as usize).copied().unwrap_or(NONE);
            let Ok(index) = u32::try_from(self.links.len()) else {
                break;
            };
            if slot == NONE {
                continue;
            }
            let head = self.heads.entry(key).or_insert(NONE);
            self.links.push(Link { slot, next: *head });
            *head = index;
        }
    }
}

/// What a write adds to the index once it has committed: its new articles'
/// keys, and the highest `seq` it wrote.
#[derive(Debug, Default)]
pub(super) struct Indexed<'a> {
    pub articles: Vec<(i64, &'a StoryInput)>,
    /// The feed of each of `articles`.
    pub feeds: Vec<i64>,
    pub last_seq: Option<i64>,
}

impl<'a> Indexed<'a> {
    pub fn members(&self) -> impl Iterator<Item = (i64, &'a StoryInput)> + '_ {
        self.articles.iter().copied()
    }
}

/// Which story each of a write's new articles joins, decided under the
/// write's lock: the index brought up to what other writers committed, the
/// candidates it finds read with their stories, then `assign::plan`.
pub(super) async fn choose_stories(
    tx: &mut impl TxStatements,
    index: &mut StoryIndex,
    members: &[NewMember<'_>],
    settings: &StorySettings,
    now: DateTime<Utc>,
) -> Result<Vec<StoryChoice>, StoreError> {
    if !members.iter().any(|m| m.input.is_some()) {
        return Ok(assign::plan(members, &[], &HashMap::new(), settings));
    }
    let refresh = index.refresh_for(
        members.iter().filter_map(|m| Some(m.input?.seen_at)),
        settings,
        now,
    );
    let mut rows = Vec::new();
    if let Some(after) = refresh.after_seq {
        let found = tx
            .rows(
                "SELECT article_id, seen_at, seq, fingerprint FROM story_fingerprints
                 WHERE seq > $1",
                &[Value::Int(after)],
            )
            .await?;
        rows.extend(index_rows(&found)?);
    }
    if let Some((from, until)) = refresh.range {
        let mut sql = "SELECT article_id, seen_at, seq, fingerprint FROM story_fingerprints
                       WHERE seen_at >= $1"
            .to_owned();
        let mut values = vec![Value::Time(from)];
        if let Some(until) = until {
            sql.push_str(" AND seen_at < $2");
            values.push(Value::Time(until));
        }
        rows.extend(index_rows(&tx.rows(&sql, &values).await?)?);
    }
    index.apply(&refresh, &rows);
    let found: Vec<Vec<i64>> = members
        .iter()
        .map(|m| {
            m.input
                .map_or_else(Vec::new, |input| index.candidates(input, settings))
        })
        .collect();
    let stored = candidate_rows(tx, &found).await?;
    Ok(assign::plan(members, &found, &stored, settings))
}

fn index_rows(rows: &[Row]) -> Result<Vec<IndexRow>, StoreError> {
    rows.iter()
        .map(|row| {
            Ok(IndexRow {
                article_id: row.int("article_id")?,
                seen_at: row.time("seen_at")?,
                seq: row.int("seq")?,
                fingerprint: row.bytes("fingerprint")?,
            })
        })
        .collect()
}

/// The fingerprints and stories of the candidates the index found, each read once.
async fn candidate_rows(
    tx: &mut impl TxStatements,
    found: &[Vec<i64>],
) -> Result<HashMap<i64, Candidate>, StoreError> {
    let mut ids: Vec<i64> = found.iter().flatten().copied().collect();
    ids.sort_unstable();
    ids.dedup();
    let mut stored = HashMap::with_capacity(ids.len());
    if ids.is_empty() {
        return Ok(stored);
    }
    let sql = format!(
        "SELECT f.article_id AS article_id, a.story_id AS story_id, f.feed_id AS feed_id,
            f.seen_at AS seen_at, f.fingerprint AS fingerprint
         FROM story_fingerprints f JOIN articles a ON a.id = f.article_id
         WHERE {} AND a.story_id IS NOT NULL",
        tx.in_set("f.article_id", 1)
    );
    for row in &tx.rows(&sql, &[Value::Ids(&ids)]).await? {
        let bytes = row.bytes("fingerprint")?;
        if let Some(candidate) = Candidate::from_row(
            row.int("story_id")?,
            row.int("feed_id")?,
            row.time("seen_at")?,
            &bytes,
        ) {
            stored.insert(row.int("article_id")?, candidate);
        }
    }
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    const BODY: &str = "Rail workers across the country will strike for 48 hours next week \
        after talks over pay and staffing broke down late on Monday, the union said, \
        warning that most commuter lines would not run.";

    fn at(hours: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0)
            .single()
            .unwrap_or_default()
            + TimeDelta::hours(hours)
    }

    fn input(hours: i64) -> StoryInput {
        StoryInput::new(Fingerprint::new("", BODY), at(hours))
    }

    fn row(article_id: i64, hours: i64, seq: i64) -> IndexRow {
        IndexRow {
            article_id,
            seen_at: at(hours),
            seq,
            fingerprint: Fingerprint::new("", BODY).to_bytes(),
        }
    }

    #[test]
    fn the_first_write_loads_its_window_and_later_ones_catch_up() {
        let settings = StorySettings::default();
        let mut index = StoryIndex::default();
        let first = index.refresh_for([at(0)].into_iter(), &settings, at(0));
        assert_eq!(first.after_seq, None);
        assert_eq!(first.range, Some((at(-72), None)));
        index.apply(&first, &[row(1, -10, 1)]);
        assert_eq!(index.candidates(&input(0), &settings), [1]);

        // Within the same transaction there is nothing to catch up with.
        let same = index.refresh_for([at(1)].into_iter(), &settings, at(1));
        assert_eq!((same.after_seq, same.range), (None, None));

        // Another process stored article 2 since: the next write's catch-up
        // brings it in.
        index.end_write();
        index.begin_write();
        let next = index.refresh_for([at(1)].into_iter(), &settings, at(1));
        assert_eq!(next.after_seq, Some(1));
        assert_eq!(next.range, None);
        index.apply(&next, &[row(2, 0, 2)]);
        assert_eq!(index.candidates(&input(1), &settings), [1, 2]);

        // This process's own write, once committed.
        let own = input(2);
        index.committed([(3, &own)].into_iter(), Some(3));
        assert_eq!(index.candidates(&input(2), &settings), [1, 2, 3]);
        index.end_write();
        index.begin_write();
        let after = index.refresh_for([at(2)].into_iter(), &settings, at(2));
        assert_eq!(after.after_seq, Some(3));
    }

    #[test]
    fn a_write_that_never_ended_leaves_nothing_behind() {
        let settings = StorySettings::default();
        let mut index = StoryIndex::default();
        index.begin_write();
        let first = index.refresh_for([at(0)].into_iter(), &settings, at(0));
        index.apply(&first, &[row(1, -10, 1)]);
        index.end_write();
        // Taken in during a write whose commit never came.
        index.begin_write();
        let lost = input(0);
        index.committed([(9, &lost)].into_iter(), Some(2));
        // The next write loads the window again, from what was committed.
        index.begin_write();
        let next = index.refresh_for([at(0)].into_iter(), &settings, at(0));
        assert_eq!((next.after_seq, next.range), (None, Some((at(-72), None))));
        index.apply(&next, &[row(1, -10, 1)]);
        assert_eq!(index.candidates(&input(0), &settings), [1]);
    }

    #[test]
    fn an_old_article_reads_the_part_of_its_window_not_held() {
        let settings = StorySettings::default();
        let mut index = StoryIndex::default();
        let first = index.refresh_for([at(0)].into_iter(), &settings, at(0));
        index.apply(&first, &[row(1, -10, 1)]);
        let old = index.refresh_for([at(-200)].into_iter(), &settings, at(0));
        assert_eq!(old.range, Some((at(-272), Some(at(-72)))));
        index.apply(&old, &[row(7, -210, 7)]);
        assert_eq!(index.candidates(&input(-200), &settings), [7]);
        assert_eq!(index.candidates(&input(0), &settings), [1]);
    }

    #[test]
    fn candidates_lie_within_the_window_and_are_bounded_per_key() {
        let settings = StorySettings::default();
        let mut index = StoryIndex::default();
        let first = index.refresh_for([at(0)].into_iter(), &settings, at(0));
        let rows: Vec<IndexRow> = (1..=100).map(|id| row(id, -1, id)).collect();
        index.apply(&first, &rows);
        let found = index.candidates(&input(0), &settings);
        // Every key is shared by all 100: each gives the 8 stored last.
        assert_eq!(found, (93..=100).collect::<Vec<i64>>());
        assert!(index.candidates(&input(100), &settings).is_empty());
    }

    #[test]
    fn articles_that_left_every_window_are_dropped() {
        let settings = StorySettings::default();
        let mut index = StoryIndex::default();
        let first = index.refresh_for([at(0)].into_iter(), &settings, at(0));
        index.apply(&first, &[row(1, -10, 1), row(2, -5, 2)]);
        let recent = input(1000);
        index.committed([(3, &recent)].into_iter(), Some(3));
        // Ten days later the first two are older than twice the window.
        let later = index.refresh_for([at(1000)].into_iter(), &settings, at(1000));
        assert_eq!(later.range, None);
        assert_eq!(index.slots.len(), 1);
        assert_eq!(index.candidates(&input(1000), &settings), [3]);
        // Reading them again when an old article needs them.
        let old = index.refresh_for([at(0)].into_iter(), &settings, at(1000));
        assert!(old.range.is_some());
    }
}
