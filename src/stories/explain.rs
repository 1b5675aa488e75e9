//! Why a story holds the articles it holds, and why its nearest neighbours
//! are not in it: the decision replayed on stored fingerprints, for an
//! operator who got two alerts (or one too few) and wants to see why.

use super::decision::{ArticleMeta, Assessment, assess};
use super::fingerprint::Fingerprint;
use super::lsh::band_keys;
use super::settings::StorySettings;

/// A stored article as the explanation reads it.
#[derive(Debug, Clone)]
pub struct StoredArticle {
    pub article_id: i64,
    pub story_id: i64,
    pub meta: ArticleMeta,
    pub fingerprint: Fingerprint,
}

/// Why a member is in its story.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberReason {
    pub article_id: i64,
    /// The earlier member it is closest to and how they compare; `None` for
    /// the article that started the story.
    pub joined: Option<(i64, Assessment)>,
}

/// An article outside the story that shares a band key with a member.
#[derive(Debug, Clone, PartialEq)]
pub struct NearMiss {
    pub article_id: i64,
    pub story_id: i64,
    /// The member it comes closest to, and how they compare.
    pub member_id: i64,
    pub assessment: Assessment,
}

/// How alike two articles are for ranking an explanation: the strongest of
/// the signals the decision uses.
fn closeness(assessment: &Assessment) -> f64 {
    let same = if assessment.verdict.is_same_story() {
        1.0
    } else {
        0.0
    };
    same + assessment
        .containment
        .unwrap_or(0.0)
        .max(assessment.word_overlap.unwrap_or(0.0))
        .max(assessment.title_overlap)
}

fn compare(a: &StoredArticle, b: &StoredArticle, settings: &StorySettings) -> Assessment {
    assess(&a.fingerprint, &a.meta, &b.fingerprint, &b.meta, settings)
}

/// For each member in stored order, the earlier member it compares best
/// with: one it is the same story with when there is one (the decision
/// joined it to such an article, or to a copy of one), else the closest.
/// Settings changed since, or the article it joined removed by retention,
/// show as a best comparison that is not "same story".
pub fn member_reasons(members: &[StoredArticle], settings: &StorySettings) -> Vec<MemberReason> {
    members
        .iter()
        .enumerate()
        .map(|(index, member)| {
            let joined = members[..index]
                .iter()
                .map(|earlier| (earlier.article_id, compare(member, earlier, settings)))
                .max_by(|a, b| closeness(&a.1).total_cmp(&closeness(&b.1)));
            MemberReason {
                article_id: member.article_id,
                joined,
            }
        })
        .collect()
}

/// The articles of other stories that share a band key with a member (the
/// ones the decision looked at), each with the member it comes closest to,
/// closest first, at most `limit`.
pub fn near_misses(
    members: &[StoredArticle],
    others: &[StoredArticle],
    settings: &StorySettings,
    limit: usize,
) -> Vec<NearMiss> {
    let member_keys: Vec<Vec<i64>> = members.iter().map(|m| band_keys(&m.fingerprint)).collect();
    let mut misses: Vec<NearMiss> = others
        .iter()
        .filter_map(|other| {
            let keys = band_keys(&other.fingerprint);
            members
                .iter()
                .zip(&member_keys)
                .filter(|(_, member_keys)| keys.iter().any(|key| member_keys.contains(key)))
                .map(|(member, _)| (member.article_id, compare(other, member, settings)))
                .max_by(|a, b| closeness(&a.1).total_cmp(&closeness(&b.1)))
                .map(|(member_id, assessment)| NearMiss {
                    article_id: other.article_id,
                    story_id: other.story_id,
                    member_id,
                    assessment,
                })
        })
        .collect();
    misses.sort_by(|a, b| {
        closeness(&b.assessment)
            .total_cmp(&closeness(&a.assessment))
            .then(a.article_id.cmp(&b.article_id))
    });
    misses.truncate(limit);
    misses
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, TimeZone, Utc};

    use super::*;
    use crate::stories::Verdict;

    const SUMMARY: &str = "A North Korean delegation arrived in Tehran on Sunday for three \
        days of talks on trade and oil, state media said.";

    fn stored(
        article_id: i64,
        story_id: i64,
        title: &str,
        body: &str,
        hours: i64,
    ) -> StoredArticle {
        let start = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).single();
        StoredArticle {
            article_id,
            story_id,
            meta: ArticleMeta {
                feed_id: article_id,
                seen_at: start.unwrap_or_default() + TimeDelta::hours(hours),
            },
            fingerprint: Fingerprint::new(title, body),
        }
    }

    #[test]
    fn members_show_what_they_joined_and_near_misses_why_not() {
        let members = [
            stored(1, 10, "North Korean delegation in Iran", SUMMARY, 0),
            stored(2, 10, "Tehran, Pyongyang talk trade", SUMMARY, 2),
        ];
        let reasons = member_reasons(&members, &StorySettings::default());
        assert_eq!(reasons[0].joined, None);
        let (joined, assessment) = reasons[1].joined.unwrap();
        assert_eq!(joined, 1);
        assert!(assessment.verdict.is_same_story());

        let thursday = SUMMARY.replace("Sunday", "Thursday");
        let others = [
            stored(3, 11, "North Korean delegation in Iran", &thursday, 5),
            stored(
                4,
                12,
                "Floods close schools",
                "Heavy rain closed schools across the north of the country.",
                1,
            ),
        ];
        let misses = near_misses(&members, &others, &StorySettings::default(), 5);
        assert_eq!(misses.len(), 1, "{misses:?}");
        assert_eq!(misses[0].article_id, 3);
        assert!(matches!(
            misses[0].assessment.verdict,
            Verdict::FactsDiffer(_)
        ));
    }
}
