//! Whether two fingerprinted articles are the same story.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::evidence::Conflict;
use super::fingerprint::{Fingerprint, SHORT_BODY_SHINGLES};
use super::settings::StorySettings;

/// With a short body (fewer than [`SHORT_BODY_SHINGLES`]) on either side, at
/// least this share of the shorter title's words must appear in the other,
/// unless the bodies' content words agree (see [`SHORT_BODY_MIN_WORD_OVERLAP`]).
pub const SHORT_BODY_MIN_TITLE_OVERLAP: f64 = 0.5;

/// Two short bodies from different feeds whose shingles agree are one story
/// under unrelated headlines when at least this share of the smaller one's
/// content words are in the other, and no number or weekday contradicts:
/// an outlet's copy of a summary under its own headline. A feed's template
/// ("Article URL: … Points: …") agrees in shingles but not in content words
/// or numbers.
pub const SHORT_BODY_MIN_WORD_OVERLAP: f64 = 0.7;

/// A short reworded copy (a clause moved, a synonym, a number spelt out)
/// keeps too few shingles to pass the threshold; its content words still
/// agree this much, where another event about the same people shares names,
/// not the rest.
pub const REWORDED_MIN_WORD_OVERLAP: f64 = 0.8;

/// The least shingle containment a reworded copy keeps: some phrase survives.
pub const REWORDED_MIN_CONTAINMENT: f64 = 0.2;

/// Short items further apart than this need [`SHORT_LATE_MIN_CONTAINMENT`],
/// and a reworded copy is looked for only this close: outlets copy a summary
/// within hours, while a running story's next event a day or more later
/// often starts with the same sentence and goes on with new facts.
pub const SHORT_NEAR_GAP: Duration = Duration::from_secs(24 * 3600);

/// The shingle containment two short bodies more than [`SHORT_NEAR_GAP`]
/// apart must reach: a late copy is a near-verbatim one.
pub const SHORT_LATE_MIN_CONTAINMENT: f64 = 0.8;

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
    /// The bodies agree but one is short, and the titles share too few words
    /// (and, from different feeds, the content words too few).
    ShortBodyTitlesDiffer,
    /// Short bodies whose numbers or weekdays contradict each other.
    FactsDiffer(Conflict),
    /// Short bodies more than [`SHORT_NEAR_GAP`] apart that are not near-verbatim copies.
    ShortBodiesApart {
        score: f64,
    },
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

    /// Why, in words, for `herald stories --explain`.
    pub fn describe(&self) -> String {
        match *self {
            Self::SameStory { score } => format!("same story (score {score:.2})"),
            Self::OutsideWindow => "further apart than the window".to_owned(),
            Self::SameFeedApart => {
                "same feed, more than 12 hours apart (a recurring item)".to_owned()
            }
            Self::BodiesDiffer { score } => {
                format!("the texts differ (containment {score:.2}, below the threshold)")
            }
            Self::WeakTitleEvidence => {
                "one has no body, and the headlines are not the same long headline".to_owned()
            }
            Self::ShortBodyTitlesDiffer => {
                "short texts alike, but headlines and content words too different".to_owned()
            }
            Self::FactsDiffer(conflict) => format!("short texts: {}", conflict.describe()),
            Self::ShortBodiesApart { score } => format!(
                "short texts a day or more apart, not a near-verbatim copy (containment {score:.2})"
            ),
        }
    }
}

/// The measurements behind a [`Verdict`], for explaining it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Assessment {
    pub verdict: Verdict,
    /// Estimated share of the smaller body's shingles in the other body's
    /// (`None` when either has no body).
    pub containment: Option<f64>,
    /// Share of the smaller short body's content words in the other's (`None`
    /// unless both bodies are short).
    pub word_overlap: Option<f64>,
    /// Share of the shorter title's words in the other title.
    pub title_overlap: f64,
    /// How far apart the two were published.
    pub gap: chrono::TimeDelta,
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
    assess(new, new_meta, candidate, candidate_meta, settings).verdict
}

/// [`compare`], with the measurements it decided on.
///
/// Summaries (both bodies of fewer than [`super::EVIDENCE_MAX_SHINGLES`]
/// shingles, fingerprinted with their [`super::ShortEvidence`]): numbers or
/// weekdays that contradict keep them apart whatever else agrees; more than
/// [`SHORT_NEAR_GAP`] apart only a near-verbatim copy
/// ([`SHORT_LATE_MIN_CONTAINMENT`]) joins. When either body is short (fewer
/// than [`SHORT_BODY_SHINGLES`]), shingles at the threshold also need
/// agreeing titles or, from different feeds, agreeing content words; and a
/// reworded copy (content words agreeing closely, some phrase kept) joins
/// within [`SHORT_NEAR_GAP`].
pub fn assess(
    new: &Fingerprint,
    new_meta: &ArticleMeta,
    candidate: &Fingerprint,
    candidate_meta: &ArticleMeta,
    settings: &StorySettings,
) -> Assessment {
    let gap = (new_meta.seen_at - candidate_meta.seen_at).abs();
    let gap_std = gap.to_std().unwrap_or(Duration::MAX);
    let same_feed = new_meta.feed_id == candidate_meta.feed_id;
    let evidence = new.short_evidence().zip(candidate.short_evidence());
    let mut assessment = Assessment {
        verdict: Verdict::OutsideWindow,
        containment: None,
        word_overlap: evidence.map(|(a, b)| a.word_containment(b)),
        title_overlap: new.title_overlap(candidate),
        gap,
    };
    // Facts and time count where both bodies carry evidence (summaries of up
    // to ~60 words); longer texts decide on their shingles alone, as measured
    // on the full-text set.
    let summaries = evidence.is_some();
    let short = new.body_shingles().min(candidate.body_shingles()) < SHORT_BODY_SHINGLES;
    let conflict = evidence.and_then(|(a, b)| a.conflict(b));
    assessment.verdict = if gap > settings.window_delta() {
        Verdict::OutsideWindow
    } else if same_feed && gap_std > SAME_FEED_MAX_GAP {
        Verdict::SameFeedApart
    } else if new.is_title_only() || candidate.is_title_only() {
        match conflict {
            Some(conflict) => Verdict::FactsDiffer(conflict),
            None if new.same_title(candidate) => Verdict::SameStory { score: 1.0 },
            None => Verdict::WeakTitleEvidence,
        }
    } else {
        let score = new.estimated_containment(candidate);
        assessment.containment = Some(score);
        let words = assessment.word_overlap.unwrap_or(0.0);
        if let Some(conflict) = conflict {
            Verdict::FactsDiffer(conflict)
        } else if summaries && gap_std > SHORT_NEAR_GAP && score < SHORT_LATE_MIN_CONTAINMENT {
            Verdict::ShortBodiesApart { score }
        } else if score >= settings.threshold {
            let titles_agree = assessment.title_overlap >= SHORT_BODY_MIN_TITLE_OVERLAP;
            if !short || titles_agree || (!same_feed && words >= SHORT_BODY_MIN_WORD_OVERLAP) {
                Verdict::SameStory { score }
            } else {
                Verdict::ShortBodyTitlesDiffer
            }
        } else if short
            && !same_feed
            && words >= REWORDED_MIN_WORD_OVERLAP
            && score >= REWORDED_MIN_CONTAINMENT
            && gap_std <= SHORT_NEAR_GAP
        {
            Verdict::SameStory {
                score: settings.threshold,
            }
        } else {
            Verdict::BodiesDiffer { score }
        }
    };
    assessment
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

    const SUMMARY: &str = "A North Korean delegation arrived in Tehran on Sunday for three \
        days of talks on trade and oil, state media said.";

    #[test]
    fn a_summary_copied_under_another_headline_is_the_same_story() {
        let dated = format!("TEHRAN (Reuters) - {SUMMARY} Read more");
        let v = verdict(
            (
                "North Korean delegation arrives in Iran for talks",
                SUMMARY,
                at(1, 0),
            ),
            ("Tehran, Pyongyang seal deal", &dated, at(2, 3)),
        );
        assert!(v.is_same_story(), "{v:?}");
    }

    #[test]
    fn a_reworded_summary_is_the_same_story_within_a_day() {
        let reworded = "State media said a North Korean delegation arrived in Tehran on \
            Sunday for three days of negotiations on trade and oil.";
        let v = verdict(
            ("North Korean delegation arrives in Iran", SUMMARY, at(1, 0)),
            ("Pyongyang team in Iran", reworded, at(2, 5)),
        );
        assert!(v.is_same_story(), "{v:?}");
    }

    #[test]
    fn a_running_story_told_again_a_day_later_is_another_event() {
        let next = "A North Korean delegation arrived in Tehran on Sunday for three \
            days of talks, and on its last day visited a drone factory near Isfahan.";
        let v = verdict(
            ("North Korean delegation arrives in Iran", SUMMARY, at(1, 0)),
            (
                "North Korean delegation visits drone plant",
                next,
                at(2, 30),
            ),
        );
        assert!(matches!(v, Verdict::ShortBodiesApart { .. }), "{v:?}");
        let v = verdict(
            ("North Korean delegation arrives in Iran", SUMMARY, at(1, 0)),
            ("Pyongyang team in Iran", SUMMARY, at(2, 30)),
        );
        assert!(v.is_same_story(), "a verbatim copy a day later: {v:?}");
    }

    #[test]
    fn summaries_naming_other_days_or_numbers_are_other_events() {
        let thursday = SUMMARY.replace("Sunday", "Thursday");
        let v = verdict(
            ("North Korean delegation arrives in Iran", SUMMARY, at(1, 0)),
            (
                "North Korean delegation arrives in Iran",
                &thursday,
                at(2, 20),
            ),
        );
        assert_eq!(v, Verdict::FactsDiffer(Conflict::Weekdays));
        let two_days = SUMMARY.replace("three", "two");
        let v = verdict(
            ("North Korean delegation arrives in Iran", SUMMARY, at(1, 0)),
            (
                "North Korean delegation arrives in Iran",
                &two_days,
                at(2, 2),
            ),
        );
        assert_eq!(v, Verdict::FactsDiffer(Conflict::Numbers));
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
