//! [`Clusterer`]: stories assigned in memory exactly as the store assigns them —
//! candidates by band key within the window, verified by [`compare`], best
//! candidate wins. The evaluation and the property tests run this; the store's
//! version issues the same lookup as one indexed query.

use std::cmp::Ordering;
use std::collections::HashMap;

use super::decision::{ArticleMeta, compare};
use super::fingerprint::Fingerprint;
use super::lsh::band_keys;
use super::settings::StorySettings;

/// The candidate an article joined.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StoryMatch {
    /// Index of the matched article, in the order articles were assigned.
    pub article: usize,
    pub story: i64,
    pub score: f64,
}

/// Where [`Clusterer::assign`] put an article.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Assignment {
    /// The new article's index, in the order articles were assigned.
    pub article: usize,
    pub story: i64,
    /// `None` when the article started a new story.
    pub matched: Option<StoryMatch>,
}

/// Which of `candidates` (the articles sharing a band key, in the order they
/// were stored) `new` joins, as its position and score: the highest score,
/// ties to the most recent `seen_at`, then to the first. The store calls this
/// on the rows its band-key query returns, so both assign alike.
pub fn best_candidate<'a>(
    new: &Fingerprint,
    new_meta: &ArticleMeta,
    candidates: impl IntoIterator<Item = (&'a Fingerprint, &'a ArticleMeta)>,
    settings: &StorySettings,
) -> Option<(usize, f64)> {
    let mut best: Option<(usize, f64, &ArticleMeta)> = None;
    for (position, (fingerprint, meta)) in candidates.into_iter().enumerate() {
        let Some(score) = compare(new, new_meta, fingerprint, meta, settings).score() else {
            continue;
        };
        let better = match best {
            None => true,
            Some((_, best_score, best_meta)) => match score.total_cmp(&best_score) {
                Ordering::Greater => true,
                Ordering::Less => false,
                // On a full tie the earlier position stays.
                Ordering::Equal => meta.seen_at > best_meta.seen_at,
            },
        };
        if better {
            best = Some((position, score, meta));
        }
    }
    best.map(|(position, score, _)| (position, score))
}

struct StoredArticle {
    fingerprint: Fingerprint,
    meta: ArticleMeta,
    story: i64,
}

/// An in-memory story index: articles, their stories, and band key → articles.
pub struct Clusterer {
    settings: StorySettings,
    articles: Vec<StoredArticle>,
    by_band_key: HashMap<i64, Vec<usize>>,
    next_story: i64,
}

impl Clusterer {
    pub fn new(settings: StorySettings) -> Self {
        Self {
            settings,
            articles: Vec::new(),
            by_band_key: HashMap::new(),
            next_story: 1,
        }
    }

    pub fn settings(&self) -> &StorySettings {
        &self.settings
    }

    pub fn len(&self) -> usize {
        self.articles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.articles.is_empty()
    }

    /// The story of the `article`-th assigned article.
    pub fn story_of(&self, article: usize) -> Option<i64> {
        self.articles.get(article).map(|stored| stored.story)
    }

    /// The stored article whose story `fingerprint` joins, if any: the
    /// highest score among candidates sharing a band key; ties go to the most
    /// recent, then to the first stored.
    pub fn best_match(&self, fingerprint: &Fingerprint, meta: &ArticleMeta) -> Option<StoryMatch> {
        self.best_match_by_keys(fingerprint, meta, &band_keys(fingerprint))
    }

    fn best_match_by_keys(
        &self,
        fingerprint: &Fingerprint,
        meta: &ArticleMeta,
        keys: &[i64],
    ) -> Option<StoryMatch> {
        let mut candidates: Vec<usize> = keys
            .iter()
            .filter_map(|key| self.by_band_key.get(key))
            .flatten()
            .copied()
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        let stored: Vec<&StoredArticle> = candidates
            .iter()
            .filter_map(|&index| self.articles.get(index))
            .collect();
        let (position, score) = best_candidate(
            fingerprint,
            meta,
            stored.iter().map(|s| (&s.fingerprint, &s.meta)),
            &self.settings,
        )?;
        Some(StoryMatch {
            article: *candidates.get(position)?,
            story: stored.get(position)?.story,
            score,
        })
    }

    /// Puts the article into the story of its best match, or a new story, and
    /// indexes it for the articles after it.
    pub fn assign(&mut self, fingerprint: Fingerprint, meta: ArticleMeta) -> Assignment {
        let keys = band_keys(&fingerprint);
        let matched = self.best_match_by_keys(&fingerprint, &meta, &keys);
        let story = match matched {
            Some(found) => found.story,
            None => {
                let story = self.next_story;
                self.next_story += 1;
                story
            }
        };
        let article = self.articles.len();
        for key in keys {
            self.by_band_key.entry(key).or_default().push(article);
        }
        self.articles.push(StoredArticle {
            fingerprint,
            meta,
            story,
        });
        Assignment {
            article,
            story,
            matched,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn meta(feed_id: i64, hours: i64) -> ArticleMeta {
        let start = Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0).single();
        ArticleMeta {
            feed_id,
            seen_at: start.unwrap_or_default() + chrono::TimeDelta::hours(hours),
        }
    }

    const RAIL: &str = "Rail workers across the country will strike for 48 hours next week \
        after talks over pay and staffing broke down late on Monday, the union said, \
        warning that most commuter lines would not run.";
    const FLOOD: &str = "Heavy rain flooded dozens of streets in the old town overnight and \
        the river rose above its banks for the first time in a decade, forcing the \
        closure of two bridges and a school.";

    #[test]
    fn reprints_join_and_different_events_do_not() {
        let mut clusterer = Clusterer::new(StorySettings::default());
        let first = clusterer.assign(Fingerprint::new("Rail strike called", RAIL), meta(1, 0));
        let flood = clusterer.assign(Fingerprint::new("Floods close bridges", FLOOD), meta(1, 1));
        let reprint = clusterer.assign(
            Fingerprint::new(
                "UPDATE: Rail strike called",
                &format!("LONDON (Reuters) - {RAIL}"),
            ),
            meta(2, 2),
        );
        assert_ne!(first.story, flood.story);
        assert_eq!(reprint.story, first.story);
        assert_eq!(reprint.matched.map(|m| m.article), Some(first.article));
        assert_eq!(clusterer.story_of(2), Some(first.story));
    }

    #[test]
    fn a_reprint_after_the_window_starts_a_new_story() {
        let mut clusterer = Clusterer::new(StorySettings::default());
        let first = clusterer.assign(Fingerprint::new("", RAIL), meta(1, 0));
        let late = clusterer.assign(Fingerprint::new("", RAIL), meta(2, 80));
        assert_ne!(first.story, late.story);
        assert_eq!(late.matched, None);
    }

    #[test]
    fn best_candidate_names_the_position_of_the_best_verified_row() {
        let rail = Fingerprint::new("", RAIL);
        let flood = Fingerprint::new("", FLOOD);
        let shortened = Fingerprint::new("", &RAIL[..RAIL.len() - 40]);
        let (early, late, new) = (meta(1, 0), meta(2, 1), meta(3, 2));
        let rows = [(&flood, &early), (&shortened, &early), (&rail, &late)];
        let best = best_candidate(&rail, &new, rows, &StorySettings::default());
        assert_eq!(best.map(|(position, _)| position), Some(2));
        let none = best_candidate(&rail, &new, [(&flood, &early)], &StorySettings::default());
        assert_eq!(none, None);
    }

    #[test]
    fn ties_go_to_the_most_recent_candidate() {
        let mut clusterer = Clusterer::new(StorySettings::default());
        clusterer.assign(Fingerprint::new("", RAIL), meta(1, 0));
        clusterer.assign(Fingerprint::new("", RAIL), meta(2, 5));
        let third = clusterer.assign(Fingerprint::new("", RAIL), meta(3, 6));
        assert_eq!(third.matched.map(|m| m.article), Some(1));
    }
}
