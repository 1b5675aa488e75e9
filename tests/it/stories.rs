//! Story clustering on the fixture set (tests/fixtures/stories/articles.toml):
//! precision and recall above the targets, the cases the issue names,
//! and properties of fingerprints and their stored bytes.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use herald::domain::article::NewArticle;
use herald::domain::feed::FeedSpec;
use herald::store::{Incoming, Store};
use herald::stories::StoryInput;
use herald::stories::{
    ArticleMeta, Clusterer, Fingerprint, StorySettings, band_keys, compare, score_clustering,
};
use proptest::prelude::*;
use serde::Deserialize;

use crate::both_backends;
use crate::support::db::{Backend, TestDb};

#[derive(Debug, Deserialize)]
struct FixtureSet {
    article: Vec<FixtureArticle>,
}

#[derive(Debug, Deserialize)]
struct FixtureArticle {
    story: String,
    kind: String,
    feed: i64,
    hours: f64,
    title: String,
    body: String,
}

impl FixtureArticle {
    fn fingerprint(&self) -> Fingerprint {
        Fingerprint::new(&self.title, &self.body)
    }

    fn meta(&self) -> ArticleMeta {
        ArticleMeta {
            feed_id: self.feed,
            seen_at: start() + TimeDelta::seconds((self.hours * 3600.0) as i64),
        }
    }
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 9, 1, 6, 0, 0).single().unwrap()
}

fn fixtures() -> Vec<FixtureArticle> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/stories/articles.toml"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let set: FixtureSet = toml::from_str(&text).unwrap();
    set.article
}

/// Clusters the fixtures in time order, as they would arrive; returns each
/// article's story in fixture order.
fn clustered(articles: &[FixtureArticle]) -> Vec<i64> {
    let mut order: Vec<usize> = (0..articles.len()).collect();
    order.sort_by(|&a, &b| articles[a].hours.total_cmp(&articles[b].hours));
    let mut clusterer = Clusterer::new(StorySettings::default());
    let mut stories = vec![0; articles.len()];
    for index in order {
        let article = &articles[index];
        stories[index] = clusterer
            .assign(article.fingerprint(), article.meta())
            .story;
    }
    stories
}

fn story_of<'a>(
    articles: &[FixtureArticle],
    stories: &'a [i64],
    kind: &str,
    label: &str,
) -> Vec<&'a i64> {
    articles
        .iter()
        .zip(stories)
        .filter(|(a, _)| a.story == label && (kind.is_empty() || a.kind == kind))
        .map(|(_, s)| s)
        .collect()
}

#[test]
fn stories_fixture_set_meets_precision_and_recall_targets() {
    let articles = fixtures();
    assert!(articles.len() >= 30);
    let stories = clustered(&articles);
    let labels: Vec<&str> = articles.iter().map(|a| a.story.as_str()).collect();
    let scores = score_clustering(&labels, &stories);
    let mut wrong = Vec::new();
    let mut first_of_label: HashMap<&str, i64> = HashMap::new();
    for (article, &story) in articles.iter().zip(&stories) {
        let expected = *first_of_label.entry(&article.story).or_insert(story);
        if expected != story {
            wrong.push(format!("split: {} ({})", article.title, article.kind));
        }
    }
    assert!(
        scores.pairwise_precision >= 0.95 && scores.pairwise_recall >= 0.90,
        "{scores:?}\n{}",
        wrong.join("\n")
    );
    assert!(scores.bcubed_f1 >= 0.95, "{scores:?}");
    println!("fixture set: {scores:?}");
}

#[test]
fn stories_missile_and_delegation_stay_apart() {
    let articles = fixtures();
    let stories = clustered(&articles);
    let delegation = story_of(&articles, &stories, "original", "nk-delegation");
    let missile = story_of(&articles, &stories, "original", "nk-missile");
    assert_eq!(delegation.len(), 1);
    assert_eq!(missile.len(), 1);
    assert_ne!(delegation[0], missile[0]);
    for other in ["nk-food", "iran-oil"] {
        assert_ne!(story_of(&articles, &stories, "", other)[0], delegation[0]);
    }
}

#[test]
fn stories_update_reprint_and_other_reprints_join_the_original() {
    let articles = fixtures();
    let stories = clustered(&articles);
    let delegation = story_of(&articles, &stories, "", "nk-delegation");
    assert_eq!(delegation.len(), 6);
    assert!(
        delegation.iter().all(|&&s| s == *delegation[0]),
        "{delegation:?}"
    );
    let update = articles
        .iter()
        .position(|a| a.title.starts_with("UPDATE:"))
        .unwrap();
    assert_eq!(&stories[update], delegation[0]);
}

#[test]
fn stories_recurring_titles_of_one_feed_on_different_days_stay_apart() {
    let articles = fixtures();
    let stories = clustered(&articles);
    for (day1, day2) in [
        ("briefing-day1", "briefing-day2"),
        ("live-day1", "live-day2"),
        ("newsletter-day1", "newsletter-day2"),
    ] {
        assert_ne!(
            story_of(&articles, &stories, "", day1),
            story_of(&articles, &stories, "", day2),
            "{day1}"
        );
    }
    let repost = story_of(&articles, &stories, "", "bridge-repost");
    assert_eq!(
        repost[0], repost[1],
        "same text, same feed, two hours apart"
    );
}

#[test]
fn stories_short_title_only_items_never_merge() {
    let articles = fixtures();
    let stories = clustered(&articles);
    let a = story_of(&articles, &stories, "", "weather-a");
    let b = story_of(&articles, &stories, "", "weather-b");
    assert_ne!(a, b);
    let brief = story_of(&articles, &stories, "", "wildfire-brief");
    assert_ne!(brief[0], story_of(&articles, &stories, "", "wildfire")[0]);
}

#[test]
fn stories_an_untitled_short_body_never_merges_on_the_body_alone() {
    // A body this short may be a feed's template; with no title to agree,
    // even an identical copy stays apart (found by the property below).
    let body = "Iran Iran Iran 北朝鮮 Iran a Iran Iran";
    let fingerprint = Fingerprint::new("", body);
    let meta = ArticleMeta {
        feed_id: 1,
        seen_at: start(),
    };
    let settings = StorySettings::default();
    assert!(!compare(&fingerprint, &meta, &fingerprint, &meta, &settings).is_same_story());
    let titled = Fingerprint::new("Iran", body);
    assert!(compare(&titled, &meta, &titled, &meta, &settings).is_same_story());
}

fn arbitrary_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        proptest::collection::vec(
            prop_oneof![
                Just("Iran".to_owned()),
                Just("north".to_owned()),
                Just("korea".to_owned()),
                Just("U.S.".to_owned()),
                Just("1,000".to_owned()),
                Just("—".to_owned()),
                Just("北朝鮮".to_owned()),
                "[a-z]{1,8}",
            ],
            0..120,
        )
        .prop_map(|words| words.join(" ")),
    ]
}

proptest! {
    #[test]
    fn stories_fingerprinting_never_panics(title in any::<String>(), body in any::<String>()) {
        let fingerprint = Fingerprint::new(&title, &body);
        let keys = band_keys(&fingerprint);
        prop_assert!(keys.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn stories_fingerprint_bytes_round_trip(title in arbitrary_text(), body in arbitrary_text()) {
        let fingerprint = Fingerprint::new(&title, &body);
        prop_assert_eq!(Fingerprint::from_bytes(&fingerprint.to_bytes()), Ok(fingerprint));
    }

    #[test]
    fn stories_arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
        let _ = Fingerprint::from_bytes(&bytes);
        let mut versioned = bytes;
        if let Some(first) = versioned.first_mut() {
            *first = herald::stories::FORMAT_VERSION;
        }
        if let Ok(fingerprint) = Fingerprint::from_bytes(&versioned) {
            prop_assert_eq!(fingerprint.to_bytes(), versioned);
        }
    }

    #[test]
    fn stories_well_sized_arbitrary_bytes_parse_or_fail_cleanly(
        title_len in 0usize..=herald::stories::MAX_TITLE_WORDS,
        seed in proptest::collection::vec(any::<u8>(), 600),
        ascending in any::<bool>(),
    ) {
        // Right version and length, so parsing gets past the header checks;
        // the last byte says no short-body evidence follows.
        let length = 6 + 4 * (title_len + herald::stories::SIGNATURE_LEN) + 1;
        let mut bytes: Vec<u8> = seed.iter().cycle().take(length).copied().collect();
        bytes[0] = herald::stories::FORMAT_VERSION;
        bytes[5] = title_len as u8;
        bytes[length - 1] = 0;
        if ascending {
            for word in 0..title_len {
                let at = 6 + 4 * word;
                bytes[at..at + 4].copy_from_slice(&(word as u32 * 7 + 1).to_le_bytes());
            }
        }
        match Fingerprint::from_bytes(&bytes) {
            Ok(fingerprint) => prop_assert_eq!(fingerprint.to_bytes(), bytes),
            Err(error) => prop_assert!(!ascending && title_len > 1, "{}", error),
        }
    }

    #[test]
    fn stories_an_identical_copy_is_the_same_story(
        title in arbitrary_text(),
        body in arbitrary_text(),
        feeds in (0i64..3, 0i64..3),
        minutes in 0i64..(12 * 60),
    ) {
        let fingerprint = Fingerprint::new(&title, &body);
        let first = ArticleMeta { feed_id: feeds.0, seen_at: start() };
        let copy = ArticleMeta {
            feed_id: feeds.1,
            seen_at: start() + TimeDelta::minutes(minutes),
        };
        let settings = StorySettings::default();
        let verdict = compare(&fingerprint, &copy, &fingerprint.clone(), &first, &settings);
        // The title rules: a title-only item needs a long enough title
        // (MIN_TITLE_WORDS), a short body a title at all to agree with or,
        // from another feed, content words.
        let title_words = fingerprint.title_words().len();
        let content_words = fingerprint
            .short_evidence()
            .map_or(0, |evidence| evidence.content_words().len());
        let expected = if fingerprint.is_title_only() {
            title_words >= herald::stories::MIN_TITLE_WORDS
        } else if fingerprint.body_shingles() < herald::stories::SHORT_BODY_SHINGLES {
            title_words > 0 || (feeds.0 != feeds.1 && content_words > 0)
        } else {
            true
        };
        prop_assert_eq!(verdict.is_same_story(), expected, "{:?}", verdict);
        // The clusterer finds it through the band keys, as the store will.
        let mut clusterer = Clusterer::new(settings);
        let original = clusterer.assign(fingerprint.clone(), first);
        let again = clusterer.assign(fingerprint, copy);
        prop_assert_eq!(again.story == original.story, expected);
    }
}

/// `[stories]` in herald.toml and the clustering must mean the same thing when
/// the operator sets nothing.
#[test]
fn stories_config_defaults_are_the_evaluated_ones() {
    let configured = herald::config::StorySettings::default();
    let clustering = herald::stories::StorySettings::default();
    assert_eq!(configured.window, clustering.window);
    assert_eq!(configured.threshold, clustering.threshold);
    assert_eq!(configured.threshold, herald::stories::DEFAULT_THRESHOLD);
}

both_backends!(
    stories_the_store_assigns_what_the_clusterer_assigns,
    stories_two_processes_writing_in_turn_assign_what_the_clusterer_assigns,
);

/// The fixture set through `save_articles`, one write per article in time
/// order, as feeds deliver them: the stored stories partition the articles
/// exactly as the in-memory clusterer (which the evaluation measures) does.
async fn stories_the_store_assigns_what_the_clusterer_assigns(backend: Backend) {
    let db = TestDb::new(backend).await;
    stored_partition_matches_the_clusterer(&db, std::slice::from_ref(&db.store)).await;
}

/// The same with every other write made by a second process on the same
/// database (another instance, or `herald poll` beside `herald run`): each
/// process's story index must take in what the other stored meanwhile.
async fn stories_two_processes_writing_in_turn_assign_what_the_clusterer_assigns(backend: Backend) {
    let db = TestDb::new(backend).await;
    let other = Store::connect(&db.url).await.unwrap();
    stored_partition_matches_the_clusterer(&db, &[db.store.clone(), other]).await;
}

/// Stores the fixtures in time order, write `i` through `writers[i % n]`.
async fn stored_partition_matches_the_clusterer(db: &TestDb, writers: &[Store]) {
    let articles = fixtures();
    let mut feed_numbers: Vec<i64> = articles.iter().map(|a| a.feed).collect();
    feed_numbers.sort_unstable();
    feed_numbers.dedup();
    let specs: Vec<FeedSpec> = feed_numbers
        .iter()
        .map(|n| FeedSpec {
            url: format!("https://outlet{n}.example/feed"),
            name: None,
        })
        .collect();
    let feeds = db.store.sync_feeds(&specs).await.unwrap();
    let feed_id: HashMap<i64, i64> = feed_numbers
        .iter()
        .copied()
        .zip(feeds.iter().map(|feed| feed.id))
        .collect();

    let mut order: Vec<usize> = (0..articles.len()).collect();
    order.sort_by(|&a, &b| articles[a].hours.total_cmp(&articles[b].hours));
    let settings = StorySettings::default();
    let mut stored_story = vec![0; articles.len()];
    for (turn, index) in order.into_iter().enumerate() {
        let writer = &writers[turn % writers.len()];
        let article = &articles[index];
        let meta = article.meta();
        let key = format!("fixture-{index}");
        let new = NewArticle {
            item_key: key.clone(),
            canonical_url: Some(format!("https://outlet{}.example/{key}", article.feed)),
            url: None,
            title: article.title.clone(),
            summary_html: None,
            summary_text: Some(article.body.clone()),
            content_html: None,
            content_text: None,
            author: None,
            language: None,
            published_at: meta.seen_at,
            updated_at: None,
            fingerprint: key,
        };
        let incoming = Incoming {
            story: Some(StoryInput::new(article.fingerprint(), meta.seen_at)),
            ..Incoming::from(new)
        };
        let saved = writer
            .save_articles(feed_id[&article.feed], &[incoming], &settings, meta.seen_at)
            .await
            .unwrap();
        let stored = db.store.article(saved.inserted[0]).await.unwrap().unwrap();
        stored_story[index] = stored.story_id.unwrap();
    }
    let in_memory = clustered(&articles);
    let same_partition = |a: &[i64], b: &[i64]| {
        (0..a.len()).all(|i| (0..a.len()).all(|j| (a[i] == a[j]) == (b[i] == b[j])))
    };
    assert!(
        same_partition(&stored_story, &in_memory),
        "stored {stored_story:?}\nmemory {in_memory:?}"
    );
    let distinct: std::collections::HashSet<_> = stored_story.iter().collect();
    assert!(
        distinct.len() < articles.len(),
        "some articles share a story"
    );
}
