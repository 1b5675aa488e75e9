//! Story clustering of short items, a headline and a one- or two-sentence
//! summary as most feeds carry (tests/fixtures/stories/short.toml): copies
//! join their original and hard negatives stay apart, both in the in-memory
//! clusterer and through herald's ingest path (a real feed server, polled
//! feed by feed in publication order) on both backends, so that a failure
//! of the one can be told apart from a failure of the other.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use herald::ingest::PollStatus;
use herald::stories::{ArticleMeta, Clusterer, Fingerprint, StorySettings, score_clustering};
use serde::Deserialize;

use crate::both_backends;
use crate::support::db::Backend;
use crate::support::feed_server::{FeedServer, Item, Route};
use crate::support::herald::{TestHerald, feeds_toml, json_lines};

/// The recall the long fixture set must reach (tests/it/stories.rs): short
/// copies are what most feeds carry, so they are held to the same bar.
const MIN_RECALL: f64 = 0.90;

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
    fn published_at(&self) -> DateTime<Utc> {
        start() + TimeDelta::seconds((self.hours * 3600.0) as i64)
    }

    fn describe(&self) -> String {
        format!("{:?} ({}, {})", self.title, self.kind, self.story)
    }
}

/// A Monday, as the fixture texts assume; in the past, so that the ingest
/// path takes the items' dates as given rather than clamping them to now.
fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 9, 1, 6, 0, 0).single().unwrap()
}

fn fixtures() -> Vec<FixtureArticle> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/stories/short.toml"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let set: FixtureSet = toml::from_str(&text).unwrap();
    set.article
}

/// Fixture indices in publication order (ties in fixture order).
fn time_order(articles: &[FixtureArticle]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..articles.len()).collect();
    order.sort_by(|&a, &b| articles[a].hours.total_cmp(&articles[b].hours));
    order
}

/// Clusters the fixtures in time order, as they would arrive; returns each
/// article's story in fixture order.
fn clustered(articles: &[FixtureArticle]) -> Vec<i64> {
    let mut clusterer = Clusterer::new(StorySettings::default());
    let mut stories = vec![0; articles.len()];
    for index in time_order(articles) {
        let article = &articles[index];
        let meta = ArticleMeta {
            feed_id: article.feed,
            seen_at: article.published_at(),
        };
        stories[index] = clusterer
            .assign(Fingerprint::new(&article.title, &article.body), meta)
            .story;
    }
    stories
}

/// Prints a summary per kind, then asserts that no two labels share a story
/// and that pairwise recall reaches [`MIN_RECALL`].
fn check(what: &str, articles: &[FixtureArticle], stories: &[i64]) {
    let labels: Vec<&str> = articles.iter().map(|a| a.story.as_str()).collect();
    let scores = score_clustering(&labels, stories);

    let mut merged = Vec::new();
    let mut in_merge: HashSet<usize> = HashSet::new();
    for i in 0..articles.len() {
        for j in i + 1..articles.len() {
            if stories[i] == stories[j] && articles[i].story != articles[j].story {
                merged.push(format!(
                    "  {}\n    + {}",
                    articles[i].describe(),
                    articles[j].describe()
                ));
                in_merge.insert(i);
                in_merge.insert(j);
            }
        }
    }

    // A copy is split when it is not in the story of its label's first
    // article, the one every copy was made from.
    let mut first_of_label: HashMap<&str, i64> = HashMap::new();
    for index in time_order(articles) {
        first_of_label
            .entry(&articles[index].story)
            .or_insert(stories[index]);
    }
    let split: Vec<usize> = (0..articles.len())
        .filter(|&i| first_of_label[articles[i].story.as_str()] != stories[i])
        .collect();
    let is_split: HashSet<usize> = split.iter().copied().collect();

    // kind -> (articles, split from their label's first, merged with another label)
    let mut per_kind: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    for (i, article) in articles.iter().enumerate() {
        let entry = per_kind.entry(&article.kind).or_default();
        entry.0 += 1;
        entry.1 += usize::from(is_split.contains(&i));
        entry.2 += usize::from(in_merge.contains(&i));
    }
    let mut summary = format!("{what}: {scores:?}\n");
    for (kind, (count, split, merged)) in &per_kind {
        let _ = writeln!(
            summary,
            "  {kind:<15} {count:>3} articles, {split:>2} split from their story, \
             {merged:>2} merged with another story"
        );
    }
    println!("{summary}");

    assert!(
        merged.is_empty(),
        "{what}: articles of different stories merged:\n{}",
        merged.join("\n")
    );
    let split_lines: Vec<String> = split
        .iter()
        .map(|&i| format!("  {}", articles[i].describe()))
        .collect();
    assert!(
        scores.pairwise_recall >= MIN_RECALL,
        "{what}: pairwise recall {:.3} < {MIN_RECALL}; split from their story:\n{}",
        scores.pairwise_recall,
        split_lines.join("\n")
    );
}

#[test]
fn short_stories_fixture_set_is_well_formed() {
    let articles = fixtures();
    assert!((45..=60).contains(&articles.len()), "{}", articles.len());
    let mut originals: HashMap<&str, &FixtureArticle> = HashMap::new();
    for index in time_order(&articles) {
        originals
            .entry(&articles[index].story)
            .or_insert(&articles[index]);
    }
    for article in &articles {
        let words = article.body.split_whitespace().count();
        assert!(
            (12..=45).contains(&words),
            "{}: {words} words",
            article.title
        );
        let original = originals[article.story.as_str()];
        if !std::ptr::eq(original, article) {
            // Copies come from other outlets, within hours.
            assert_ne!(original.feed, article.feed, "{}", article.title);
            assert!(
                (0.0..=12.0).contains(&(article.hours - original.hours)),
                "{}",
                article.title
            );
        }
    }
}

#[test]
fn short_stories_in_memory_copies_join_and_negatives_stay_apart() {
    let articles = fixtures();
    let stories = clustered(&articles);
    check("clusterer", &articles, &stories);
}

both_backends!(short_stories_through_ingest_copies_join_and_negatives_stay_apart);

/// Each fixture feed is a path of the feed server; each article is added to
/// its feed's document in publication order and that feed alone is polled,
/// so articles are stored in the order they were published.
async fn short_stories_through_ingest_copies_join_and_negatives_stay_apart(backend: Backend) {
    let articles = fixtures();
    let server = FeedServer::start().await;
    let mut feed_numbers: Vec<i64> = articles.iter().map(|a| a.feed).collect();
    feed_numbers.sort_unstable();
    feed_numbers.dedup();
    let path = |feed: i64| format!("/outlet{feed}/rss");
    let title = |feed: i64| format!("Outlet {feed}");
    for &feed in &feed_numbers {
        server.set(&path(feed), Route::rss(&title(feed), &[]));
    }
    let urls: Vec<String> = feed_numbers.iter().map(|&f| server.url(&path(f))).collect();
    let herald = TestHerald::start(backend, &feeds_toml(&urls)).await;
    // The first fetch of each feed takes its (empty) back catalogue.
    for report in herald.poll().await {
        assert_eq!(report.status, PollStatus::Ok, "{report:?}");
    }

    let mut documents: HashMap<i64, Vec<Item>> = HashMap::new();
    let mut stored_story = vec![0; articles.len()];
    let mut stored_article = vec![0; articles.len()];
    for index in time_order(&articles) {
        let article = &articles[index];
        let items = documents.entry(article.feed).or_default();
        items.push(Item {
            guid: format!("short-{index}"),
            link: format!("https://outlet{}.example/news/short-{index}", article.feed),
            title: article.title.clone(),
            description: article.body.clone(),
            pub_date: Some(article.published_at()),
        });
        server.set(&path(article.feed), Route::rss(&title(article.feed), items));
        let url = server.url(&path(article.feed));
        let feed = herald
            .feeds()
            .await
            .into_iter()
            .find(|feed| feed.record.url == url)
            .unwrap();
        let report = herald.app.poll_once(&[feed]).await.remove(0);
        assert_eq!(
            (report.status, report.new, report.inserted.len()),
            (PollStatus::Ok, 1, 1),
            "{}: {report:?}",
            article.title
        );
        let stored = herald
            .db
            .store
            .article(report.inserted[0])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.title, article.title);
        stored_story[index] = stored.story_id.unwrap();
        stored_article[index] = stored.id;
    }
    check(&format!("ingest ({backend:?})"), &articles, &stored_story);
    explain_shows_why_copies_joined_and_the_next_meeting_did_not(
        &herald,
        &articles,
        &stored_story,
        &stored_article,
    )
    .await;
}

/// `herald stories --explain ID --candidates`: the Monday meeting's story
/// lists its copies, each joined to an earlier member as the same story,
/// and names Thursday's meeting among the nearest articles left out, with
/// the reason.
async fn explain_shows_why_copies_joined_and_the_next_meeting_did_not(
    herald: &TestHerald,
    articles: &[FixtureArticle],
    stored_story: &[i64],
    stored_article: &[i64],
) {
    let index_of = |story: &str| {
        (0..articles.len())
            .filter(|&i| articles[i].story == story)
            .collect::<Vec<_>>()
    };
    let trade = index_of("fm-envoy-trade");
    let missile = index_of("fm-envoy-missile");
    let story = stored_story[trade[0]].to_string();
    let output = herald
        .cli(&["stories", "--explain", &story, "--candidates", "--json"])
        .await;
    assert!(output.status.success(), "{output:?}");
    let explanation = &json_lines(&output)[0];
    let members = explanation["members"].as_array().unwrap();
    let mut member_ids: Vec<i64> = members
        .iter()
        .map(|m| m["article"].as_i64().unwrap())
        .collect();
    member_ids.sort_unstable();
    let mut expected: Vec<i64> = trade.iter().map(|&i| stored_article[i]).collect();
    expected.sort_unstable();
    assert_eq!(member_ids, expected);
    assert!(members[0].get("joined").is_none(), "{}", members[0]);
    for member in &members[1..] {
        assert_eq!(member["joined"]["same_story"], true, "{member}");
        assert!(member["joined"]["hours_apart"].as_f64().unwrap() <= 12.0);
    }
    let candidates = explanation["candidates"].as_array().unwrap();
    let thursday = candidates
        .iter()
        .find(|c| c["article"].as_i64() == Some(stored_article[missile[0]]))
        .unwrap_or_else(|| panic!("Thursday's meeting is not a near miss: {candidates:?}"));
    assert_eq!(thursday["comparison"]["same_story"], false);
    assert_eq!(thursday["story"].as_i64(), Some(stored_story[missile[0]]));
    assert!(
        !thursday["comparison"]["reason"]
            .as_str()
            .unwrap()
            .is_empty(),
        "{thursday}"
    );

    let text = herald
        .cli(&["stories", "--explain", &story, "--candidates"])
        .await;
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    println!("{text}");
    assert!(text.contains("started the story"), "{text}");
    assert!(text.contains("same story (score"), "{text}");
    assert!(text.contains("nearest articles of other stories"), "{text}");
    assert!(text.contains(&articles[missile[0]].title), "{text}");

    let unknown = herald.cli(&["stories", "--explain", "999999"]).await;
    assert_eq!(unknown.status.code(), Some(1), "{unknown:?}");
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("story 999999"),
        "{unknown:?}"
    );
}
