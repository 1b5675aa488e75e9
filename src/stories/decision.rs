//! Whether two fingerprinted articles are the same story.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::fingerprint::{Fingerprint, SHORT_BODY_SHINGLES};
use super::settings::StorySettings;

/// With a short body (fewer than [`SHORT_BODY_SHINGLES`]) on either side, at
/// least this share of the shorter title's words must appear in the other.
pub const SHORT_BODY_MIN_TITLE_OVERLAP: f64 = 0.5;

/// Two items of one feed further apart than this are different stories even
/// with the same text: a feed that repeats a title or template ("Morning
/// briefing", "Live updates") does so on another day, while a feed that
/// publishes the same text twice within hours is re-posting one story.
pub const SAME_FEED_MAX_GAP: Duration = Duration::from_secs(12 * 3600);

/// What the decision needs besides the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArticleMeta {
    /// The feed the article came from (the first one, for an article with several sources).
    pub feed_id: i64,
    /// Published time, else the time the article was first seen.
    pub seen_at: DateTime<Utc>,
}

/// The outcome of [`compare`], with the reason when it is not the same story.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Same story; `score` ranks candidates (estimated containment, or 1 for an
    /// identical title).
    SameStory {
        score: f64,
    },
    OutsideWindow,
    /// Same feed, more than [`SAME_FEED_MAX_GAP`] apart.
    SameFeedApart,
    /// Both have bodies, and the estimated containment is below the threshold.
    BodiesDiffer {
        score: f64,
    },
    /// At least one is title-only, and the titles are not the same long title.
    WeakTitleEvidence,
    /// The bodies agree but one is short, and the titles share too few words.
    ShortBodyTitlesDiffer,
}

impl Verdict {
    pub fn is_same_story(&self) -> bool {
        matches!(self, Self::SameStory { .. })
    }

    /// The score when it is the same story.
    pub fn score(&self) -> Option<f64> {
        match *self {
            Self::SameStory { score } => Some(score),
            _ => None,
        }
    }
}

/// Decides whether `new` belongs to the story of `candidate` (symmetric).
///
/// - Further apart than the window, or same feed further apart than
///   [`SAME_FEED_MAX_GAP`]: different.
/// - Both with bodies: same when the estimated containment of the smaller
///   shingle set in the larger reaches `settings.threshold`. The title is not
///   consulted: reprints rewrite headlines, and the body is the stronger evidence.
/// - Either title-only: same only for an identical title word set of at least
///   [`super::MIN_TITLE_WORDS`] words (markers like `UPDATE:` dropped).
pub fn compare(
    new: &Fingerprint,
    new_meta: &ArticleMeta,
    candidate: &Fingerprint,
    candidate_meta: &ArticleMeta,
    settings: &StorySettings,
) -> Verdict {
    let gap = (new_meta.seen_at - candidate_meta.seen_at).abs();
    if gap > settings.window_delta() {
        return Verdict::OutsideWindow;
    }
    if new_meta.feed_id == candidate_meta.feed_id
        && gap.to_std().unwrap_or(Duration::MAX) > SAME_FEED_MAX_GAP
    {
        return Verdict::SameFeedApart;
    }
    if new.is_title_only() || candidate.is_title_only() {
        return if new.same_title(candidate) {
            Verdict::SameStory { score: 1.0 }
        } else {
            Verdict::WeakTitleEvidence
        };
    }
    let score = new.estimated_containment(candidate);
    if score < settings.threshold {
        return Verdict::BodiesDiffer { score };
    }
    let short = new.body_shingles().min(candidate.body_shingles()) < SHORT_BODY_SHINGLES;
    if short && new.title_overlap(candidate) < SHORT_BODY_MIN_TITLE_OVERLAP {
        return Verdict::ShortBodyTitlesDiffer;
    }
    Verdict::SameStory { score }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    const BODY: &str = "Firefighters contained a wildfire that forced hundreds of residents \
        from their homes near the coast overnight, officials said on Tuesday, after winds \
        dropped and crews cut breaks along the ridge above the town.";

    fn at(feed_id: i64, hours: i64) -> ArticleMeta {
        let start = Utc.with_ymd_and_hms(2025, 3, 4, 6, 0, 0).single();
        ArticleMeta {
            feed_id,
            seen_at: start.unwrap_or_default() + chrono::TimeDelta::hours(hours),
        }
    }

    fn verdict(
        (title_a, body_a, meta_a): (&str, &str, ArticleMeta),
        (title_b, body_b, meta_b): (&str, &str, ArticleMeta),
    ) -> Verdict {
        compare(
            &Fingerprint::new(title_a, body_a),
            &meta_a,
            &Fingerprint::new(title_b, body_b),
            &meta_b,
            &StorySettings::default(),
        )
    }

    #[test]
    fn a_reprint_with_a_dateline_is_the_same_story() {
        let dated = format!("SANTA BARBARA, Calif. (AP) - {BODY}");
        let v = verdict(
            ("Wildfire contained", BODY, at(1, 0)),
            ("Crews contain coastal wildfire", &dated, at(2, 3)),
        );
        assert!(v.is_same_story(), "{v:?}");
    }

    #[test]
    fn outside_the_window_is_another_story() {
        let v = verdict(("t", BODY, at(1, 0)), ("t", BODY, at(2, 73)));
        assert_eq!(v, Verdict::OutsideWindow);
    }

    #[test]
    fn the_same_feed_repeating_itself_next_day_is_another_story() {
        let v = verdict(("t", BODY, at(1, 0)), ("t", BODY, at(1, 24)));
        assert_eq!(v, Verdict::SameFeedApart);
        let v = verdict(("t", BODY, at(1, 0)), ("t", BODY, at(1, 2)));
        assert!(v.is_same_story());
    }

    #[test]
    fn short_templated_bodies_need_agreeing_titles() {
        let template = "Article URL: https://example.com/p/one Comments URL: \
            https://news.example.com/item?id=1 Points: 3 # Comments: 0";
        let other = "Article URL: https://example.com/p/two Comments URL: \
            https://news.example.com/item?id=1 Points: 3 # Comments: 0";
        let v = verdict(
            (
                "Show HN: a todo app for procrastinators",
                template,
                at(1, 0),
            ),
            ("Play chess in your browser", other, at(1, 1)),
        );
        assert_eq!(v, Verdict::ShortBodyTitlesDiffer);
        let v = verdict(
            (
                "Show HN: a todo app for procrastinators",
                template,
                at(1, 0),
            ),
            (
                "UPDATE: Show HN: a todo app for procrastinators",
                template,
                at(2, 1),
            ),
        );
        assert!(v.is_same_story(), "{v:?}");
    }

    #[test]
    fn title_only_items_merge_only_on_an_identical_long_title() {
        let title = "Wildfire forces hundreds from coastal homes";
        let v = verdict((title, "", at(1, 0)), (title, BODY, at(2, 1)));
        assert!(v.is_same_story());
        let v = verdict(
            (title, "", at(1, 0)),
            ("Wildfire forces hundreds from inland homes", "", at(2, 1)),
        );
        assert_eq!(v, Verdict::WeakTitleEvidence);
        let v = verdict(
            ("Live updates", "", at(1, 0)),
            ("Live updates", "", at(2, 1)),
        );
        assert_eq!(v, Verdict::WeakTitleEvidence);
    }
}
