//! Story clustering on real news text, then its cost.
//!
//! # Evaluation
//!
//! With `HERALD_CORPUS` set (a directory holding
//! `bulk/rss-link-database-2023/**/*_entries.json` and `news/*.xml|json`), builds a
//! labelled set from real articles and prints pairwise precision, pairwise
//! recall and B-cubed F1 per kind of case and overall:
//!
//! - **originals**: real descriptions of at least [`MIN_ORIGINAL_WORDS`] words,
//!   each with one to three reprints from other feeds within 12 hours, made the
//!   ways outlets reprint: `dateline` (`BEIRUT (Reuters) -`), `byline`
//!   (`By …` in front, or `Reporting by …` after), `headline` (`UPDATE:` or
//!   `UPDATE 2-` prefix, other casing, words reordered, or a new headline
//!   made of other words), `dropped-sentence`, `punctuation` (dashes, quotes,
//!   ellipses, commas), `combined` (several of these at once), `title-only`
//!   (the headline alone, for titles of at least 6 words) and `truncated` (an
//!   aggregator's first 60% of the words and `…`). Each transformation is drawn
//!   with a fixed seed.
//! - **singletons**: other real articles, long and short, with no copy.
//! - **hard negatives**: pairs of different real articles sharing at least two
//!   capitalised names (`North`, `Korea`, `Biden`…), labelled apart.
//! - **recurring**: a feed's real title again 24–48 hours later from the same
//!   feed, over another article's text or with no text, labelled apart.
//!
//! All articles fall within one 72-hour window, so every pair could be merged.
//! A per-kind row scores the articles of that kind together with their
//! originals. Without `HERALD_CORPUS` the evaluation prints a skip message.
//!
//! Pass `--eval-only` to skip the benchmarks:
//! `HERALD_CORPUS=DIR cargo bench --bench story_eval -- --eval-only` (DIR: news/, bulk/).
//!
//! # Benchmarks
//!
//! `fingerprint`: one ~1.5 KB article to a fingerprint and its band keys, and
//! one 200-byte summary (which also gets its short-body evidence).
//! `best_match`: one article against a [`Clusterer`] holding 100,000 generated
//! articles (~1.5 KB each, 5,000-word Zipf vocabulary) in the window, for a new
//! article (no story) and for a reprint of a stored one (its story).

use std::collections::{HashMap, HashSet};
use std::hint::black_box;
use std::path::Path;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use criterion::Criterion;
use herald::stories::{
    ArticleMeta, Clusterer, ClusteringScores, Fingerprint, StorySettings, band_keys,
    score_clustering,
};

#[path = "support/prose.rs"]
mod prose;
use prose::{Prose, Random};

#[path = "support/short_stories.rs"]
mod short_stories;

/// A description this long is an article body worth reprinting.
const MIN_ORIGINAL_WORDS: usize = 40;
const ORIGINALS: usize = 600;
const SINGLETONS: usize = 600;
const HARD_NEGATIVE_PAIRS: usize = 300;
const RECURRING: usize = 100;

#[derive(Clone)]
struct RealArticle {
    feed: String,
    title: String,
    body: String,
}

/// One labelled item of the evaluation.
struct Item {
    label: usize,
    kind: &'static str,
    title: String,
    body: String,
    feed: i64,
    seen_at: DateTime<Utc>,
}

fn main() {
    let eval_only = std::env::args().any(|arg| arg == "--eval-only");
    match std::env::var("HERALD_CORPUS") {
        Ok(corpus) => evaluate(Path::new(&corpus)),
        Err(_) => println!(
            "HERALD_CORPUS is not set: story evaluation skipped \
             (set it to a directory of real feeds: news/, bulk/, parsers/, seed/)"
        ),
    }
    short_stories::evaluate_fixtures(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/stories/short.toml"
    )));
    if !eval_only {
        let mut criterion = Criterion::default().configure_from_args();
        bench_fingerprint(&mut criterion);
        bench_best_match(&mut criterion);
        criterion.final_summary();
    }
}

// ---------------------------------------------------------------------------
// Reading the corpus

fn load_corpus(root: &Path) -> Vec<RealArticle> {
    let mut articles = Vec::new();
    let pattern = format!(
        "{}/bulk/rss-link-database-2023/**/*_entries.json",
        root.display()
    );
    let mut files: Vec<_> = glob::glob(&pattern)
        .map(|paths| paths.flatten().collect())
        .unwrap_or_default();
    files.sort();
    for path in files {
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let Ok(serde_json::Value::Array(entries)) = serde_json::from_slice(&bytes) else {
            continue;
        };
        for entry in entries {
            let text = |name: &str| {
                entry
                    .get(name)
                    .and_then(|v| v.as_str())
                    .map(herald::normalize::html_to_text)
                    .unwrap_or_default()
            };
            articles.push(RealArticle {
                feed: entry
                    .get("source")
                    .and_then(|v| v.as_str())
                    .unwrap_or("unknown")
                    .to_owned(),
                title: text("title"),
                body: strip_read_more(&text("description")),
            });
        }
    }
    let mut news: Vec<_> = std::fs::read_dir(root.join("news"))
        .map(|dir| dir.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    news.sort();
    for path in news {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let Some(name) = name.filter(|n| n.ends_with(".xml") || n.ends_with(".json")) else {
            continue;
        };
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let content_type = name.ends_with(".json").then_some("application/feed+json");
        let Ok(feed) = herald::parse::parse_feed(&bytes, content_type) else {
            continue;
        };
        for entry in feed.entries {
            let text = |text: Option<&herald::domain::entry::Text>| {
                text.map(|t| {
                    if t.is_html {
                        herald::normalize::html_to_text(&t.body)
                    } else {
                        t.body.clone()
                    }
                })
                .unwrap_or_default()
            };
            let summary = text(entry.summary.as_ref());
            let content = text(entry.content.as_ref());
            articles.push(RealArticle {
                feed: name.clone(),
                title: text(entry.title.as_ref()),
                body: strip_read_more(if content.len() > summary.len() {
                    &content
                } else {
                    &summary
                }),
            });
        }
    }
    dedup(articles)
}

/// "Continue reading..." and similar trailers are the feed's, not the story's.
fn strip_read_more(body: &str) -> String {
    let mut body = body.trim().to_owned();
    for trailer in ["Continue reading...", "Read more", "[…]", "[...]"] {
        if let Some(stripped) = body.strip_suffix(trailer) {
            body = stripped.trim_end().to_owned();
        }
    }
    body
}

/// The daily snapshots repeat articles; keep each title and each body once, so
/// that two "different" articles are really different.
fn dedup(articles: Vec<RealArticle>) -> Vec<RealArticle> {
    let mut titles = HashSet::new();
    let mut bodies = HashSet::new();
    articles
        .into_iter()
        .filter(|a| !a.title.trim().is_empty())
        .filter(|a| titles.insert(herald::rules::normalize_terms(&a.title).join(" ")))
        .filter(|a| {
            let head: Vec<String> = herald::rules::normalize_terms(&a.body)
                .into_iter()
                .take(12)
                .collect();
            head.len() < 12 || bodies.insert(head.join(" "))
        })
        .collect()
}

fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

// ---------------------------------------------------------------------------
// Reprints

const CITIES: &[&str] = &[
    "WASHINGTON",
    "LONDON",
    "BEIRUT",
    "NEW DELHI",
    "JOHANNESBURG",
    "SAO PAULO",
    "TOKYO",
    "BRUSSELS",
    "NAIROBI",
    "SYDNEY",
];
const AGENCIES: &[&str] = &["Reuters", "AP", "AFP", "Bloomberg", "dpa"];
const PEOPLE: &[&str] = &[
    "Jane Doe",
    "Ahmed Karimi",
    "Maria Lopez",
    "Tom O'Neill",
    "Priya Natarajan",
    "Kwame Mensah",
];

fn dateline(body: &str, random: &mut Random) -> String {
    let city = random.pick(CITIES);
    match random.below(3) {
        0 => format!("{city} ({}) - {body}", random.pick(AGENCIES)),
        1 => format!("{city}, {} ({}) — {body}", "Nov 14", random.pick(AGENCIES)),
        _ => format!("{city}: {body}"),
    }
}

fn byline(body: &str, random: &mut Random) -> String {
    let person = random.pick(PEOPLE);
    match random.below(3) {
        0 => format!("By {person} {body}"),
        1 => format!(
            "By {person}, {} Staff Writer. {body}",
            random.pick(AGENCIES)
        ),
        _ => format!(
            "{body} (Reporting by {person}; Editing by {})",
            random.pick(PEOPLE)
        ),
    }
}

fn rewrite_headline(title: &str, random: &mut Random) -> String {
    let words: Vec<&str> = title.split_whitespace().collect();
    match random.below(5) {
        0 => format!("UPDATE: {title}"),
        1 => format!("UPDATE 2-{title}"),
        2 => title.to_uppercase(),
        3 if words.len() > 3 => {
            // Reorder: the second half first, as "X, Y says" becomes "Y: X".
            let split = words.len() / 2;
            format!("{}: {}", words[split..].join(" "), words[..split].join(" "))
        }
        _ => {
            // A new headline from the editor: a few of the words, others new.
            let mut kept: Vec<&str> = words
                .iter()
                .copied()
                .filter(|_| random.chance(0.4))
                .collect();
            kept.insert(
                0,
                *random.pick(&["What we know:", "Explainer:", "Why", "Report:"]),
            );
            kept.join(" ")
        }
    }
}

fn sentences(body: &str) -> Vec<&str> {
    let mut sentences = Vec::new();
    let mut start = 0;
    let bytes = body.as_bytes();
    for (at, &byte) in bytes.iter().enumerate() {
        if matches!(byte, b'.' | b'!' | b'?') && bytes.get(at + 1) == Some(&b' ') {
            sentences.push(&body[start..=at]);
            start = at + 2;
        }
    }
    if start < body.len() {
        sentences.push(&body[start..]);
    }
    sentences
}

/// Drops one sentence other than the first, when there are at least three
/// (dropping one of two halves the story, which is a summary, not a reprint).
fn drop_sentence(body: &str, random: &mut Random) -> Option<String> {
    let mut parts = sentences(body);
    if parts.len() < 3 {
        return None;
    }
    let drop = 1 + random.below(parts.len() - 1);
    parts.remove(drop);
    Some(parts.join(" "))
}

fn change_punctuation(body: &str, random: &mut Random) -> String {
    let mut text = body.replace(" - ", " — ").replace("...", "…");
    if random.chance(0.5) {
        text = text.replace(", ", " – ");
    } else {
        text = text.replace(',', "");
    }
    text.replace('"', "”")
        .replace('\'', "’")
        .replace(". ", ".  ")
}

fn truncate(body: &str) -> String {
    let words: Vec<&str> = body.split_whitespace().collect();
    let keep = (words.len() * 6 / 10).max(1);
    format!("{}…", words[..keep].join(" "))
}

const REPRINT_KINDS: &[&str] = &[
    "dateline",
    "byline",
    "headline",
    "dropped-sentence",
    "punctuation",
    "combined",
    "title-only",
    "truncated",
];

/// A reprint of `original` of `kind`, or `None` when the kind does not apply.
fn reprint(original: &RealArticle, kind: &str, random: &mut Random) -> Option<(String, String)> {
    let (title, body) = (&original.title, &original.body);
    Some(match kind {
        "dateline" => (title.clone(), dateline(body, random)),
        "byline" => (title.clone(), byline(body, random)),
        "headline" => (rewrite_headline(title, random), body.clone()),
        "dropped-sentence" => (title.clone(), drop_sentence(body, random)?),
        "punctuation" => (title.clone(), change_punctuation(body, random)),
        "combined" => {
            let mut text = drop_sentence(body, random).unwrap_or_else(|| body.clone());
            text = change_punctuation(&text, random);
            text = byline(&dateline(&text, random), random);
            (rewrite_headline(title, random), text)
        }
        "title-only" if words(title) >= 6 => (title.clone(), String::new()),
        "truncated" => (title.clone(), truncate(body)),
        _ => return None,
    })
}

// ---------------------------------------------------------------------------
// The labelled set

fn capitalised_names(article: &RealArticle) -> HashSet<String> {
    const COMMON: &[&str] = &[
        "The",
        "This",
        "That",
        "After",
        "With",
        "From",
        "When",
        "What",
        "There",
        "They",
        "Their",
        "More",
        "Many",
        "Some",
        "While",
        "About",
        "Over",
        "Here",
        "Continue",
        "reading",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
        "January",
        "December",
        "November",
        "October",
        "September",
        "News",
    ];
    format!("{} {}", article.title, article.body)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() >= 4 && w.chars().next().is_some_and(char::is_uppercase))
        .filter(|w| !COMMON.contains(w))
        .map(str::to_owned)
        .collect()
}

/// A labelled set under construction: its items, the next story label, and
/// the feeds' ids (real feeds by name, copies each from a feed of its own).
struct SetBuilder<'a> {
    corpus: &'a [RealArticle],
    start: DateTime<Utc>,
    feeds: HashMap<String, i64>,
    copy_feed: i64,
    items: Vec<Item>,
    label: usize,
}

/// How a copy of a real article is made: `None` when the kind does not apply.
type CopyMaker = fn(&RealArticle, &str, &mut Random) -> Option<(String, String)>;

impl<'a> SetBuilder<'a> {
    fn new(corpus: &'a [RealArticle]) -> Self {
        Self {
            corpus,
            start: Utc
                .with_ymd_and_hms(2025, 11, 14, 0, 0, 0)
                .single()
                .unwrap_or_default(),
            feeds: HashMap::new(),
            copy_feed: 100_000,
            items: Vec::new(),
            label: 0,
        }
    }

    fn feed_id(&mut self, name: &str) -> i64 {
        let next = self.feeds.len() as i64 + 1;
        *self.feeds.entry(name.to_owned()).or_insert(next)
    }

    /// A feed no other item comes from.
    fn new_feed(&mut self) -> i64 {
        self.copy_feed += 1;
        self.copy_feed
    }

    fn random_time(&self, random: &mut Random, hours: i64) -> DateTime<Utc> {
        self.start + TimeDelta::minutes(random.below((hours * 60) as usize) as i64)
    }

    /// An item of the current story.
    fn push(
        &mut self,
        kind: &'static str,
        title: String,
        body: String,
        feed: i64,
        seen_at: DateTime<Utc>,
    ) {
        self.items.push(Item {
            label: self.label,
            kind,
            title,
            body,
            feed,
            seen_at,
        });
    }

    /// A real article as a story of its own.
    fn add_alone(&mut self, index: usize, kind: &'static str, seen_at: DateTime<Utc>) {
        let article = &self.corpus[index];
        let feed = self.feed_id(&article.feed);
        self.push(
            kind,
            article.title.clone(),
            article.body.clone(),
            feed,
            seen_at,
        );
        self.label += 1;
    }

    /// A real article (within the first 60 hours) and one to three copies of
    /// kinds drawn from `kinds`, each from a feed of its own within 12 hours.
    fn add_with_copies(
        &mut self,
        index: usize,
        original_kind: &'static str,
        kinds: &[&'static str],
        copy: CopyMaker,
        random: &mut Random,
    ) {
        let original = &self.corpus[index];
        let seen_at = self.random_time(random, 60);
        let feed = self.feed_id(&original.feed);
        self.push(
            original_kind,
            original.title.clone(),
            original.body.clone(),
            feed,
            seen_at,
        );
        for _ in 0..1 + random.below(3) {
            let kind = *random.pick(kinds);
            let Some((title, body)) = copy(original, kind, random) else {
                continue;
            };
            let feed = self.new_feed();
            let at = seen_at + TimeDelta::minutes(random.below(12 * 60) as i64);
            self.push(kind, title, body, feed, at);
        }
        self.label += 1;
    }

    /// Up to `max_pairs` pairs of different articles among `candidates`
    /// sharing at least two capitalised names, each article its own story, at
    /// the two times `times` draws; the positions in `candidates` used.
    fn add_name_pairs(
        &mut self,
        candidates: &[usize],
        max_pairs: usize,
        kind: &'static str,
        random: &mut Random,
        times: impl Fn(&Self, &mut Random) -> (DateTime<Utc>, DateTime<Utc>),
    ) -> HashSet<usize> {
        let names: Vec<HashSet<String>> = candidates
            .iter()
            .map(|&i| capitalised_names(&self.corpus[i]))
            .collect();
        let mut used = HashSet::new();
        let mut pairs = 0;
        'outer: for a in 0..candidates.len() {
            if used.contains(&a) {
                continue;
            }
            for b in a + 1..candidates.len() {
                if used.contains(&b) || names[a].intersection(&names[b]).count() < 2 {
                    continue;
                }
                used.extend([a, b]);
                let (first, second) = times(self, random);
                self.add_alone(candidates[a], kind, first);
                self.add_alone(candidates[b], kind, second);
                pairs += 1;
                if pairs == max_pairs {
                    break 'outer;
                }
                continue 'outer;
            }
        }
        used
    }
}

/// One row per kind: a copy kind scored with the originals (`original_kind`)
/// it copies, another kind on its own.
fn print_kind_rows(items: &[Item], stories: &[i64], kinds: &[&str], original_kind: &str) {
    let originals_with: HashMap<usize, HashSet<&str>> =
        items.iter().fold(HashMap::new(), |mut map, item| {
            map.entry(item.label).or_default().insert(item.kind);
            map
        });
    println!(
        "| kind | articles | labelled pairs | pairwise precision | pairwise recall | B³ F1 | false merges | missed |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for kind in kinds {
        let selected: Vec<usize> = (0..items.len())
            .filter(|&i| {
                items[i].kind == *kind
                    || (items[i].kind == original_kind
                        && originals_with
                            .get(&items[i].label)
                            .is_some_and(|kinds| kinds.contains(kind)))
            })
            .collect();
        let labels: Vec<usize> = selected.iter().map(|&i| items[i].label).collect();
        let predicted: Vec<i64> = selected.iter().map(|&i| stories[i]).collect();
        print_row(kind, &score_clustering(&labels, &predicted));
    }
    let labels: Vec<usize> = items.iter().map(|item| item.label).collect();
    print_row("**overall**", &score_clustering(&labels, stories));
}

fn build_items(corpus: &[RealArticle], random: &mut Random) -> Vec<Item> {
    let mut set = SetBuilder::new(corpus);
    let mut order: Vec<usize> = (0..corpus.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, random.below(i + 1));
    }
    let (long, short): (Vec<usize>, Vec<usize>) = order
        .into_iter()
        .partition(|&i| words(&corpus[i].body) >= MIN_ORIGINAL_WORDS);
    let originals = &long[..ORIGINALS.min(long.len())];
    let rest_long = &long[originals.len()..];

    for &index in originals {
        set.add_with_copies(index, "original", REPRINT_KINDS, reprint, random);
    }

    let singles: Vec<usize> = rest_long
        .iter()
        .take(SINGLETONS / 2)
        .chain(
            short
                .iter()
                .filter(|&&i| words(&corpus[i].body) >= 5)
                .take(SINGLETONS / 2),
        )
        .copied()
        .collect();
    for &index in &singles {
        let seen_at = set.random_time(random, 72);
        set.add_alone(index, "singleton", seen_at);
    }

    // Hard negatives: pairs from the unused long articles sharing two names.
    let unused: Vec<usize> = rest_long.iter().skip(SINGLETONS / 2).copied().collect();
    let used = set.add_name_pairs(
        &unused,
        HARD_NEGATIVE_PAIRS,
        "hard-negative",
        random,
        |set, random| {
            let seen_at = set.random_time(random, 60);
            (
                seen_at,
                seen_at + TimeDelta::minutes(1 + random.below(600) as i64),
            )
        },
    );

    // Recurring titles: a feed's title again a day or two later from the same
    // feed, over another article's text or with none; from articles not used
    // above, so neither occurrence has a copy elsewhere in the set.
    let spare: Vec<usize> = (0..unused.len())
        .filter(|i| !used.contains(i))
        .map(|i| unused[i])
        .collect();
    let (recurring, other_bodies) = spare.split_at(RECURRING.min(spare.len() / 2));
    for (n, &index) in recurring.iter().enumerate() {
        let article = &corpus[index];
        let first = set.random_time(random, 24);
        let later = first + TimeDelta::hours(24 + random.below(24) as i64);
        let other_body = if n % 2 == 0 {
            String::new()
        } else {
            corpus[other_bodies[n]].body.clone()
        };
        let feed = set.feed_id(&article.feed);
        for (seen_at, body) in [(first, article.body.clone()), (later, other_body)] {
            set.push("recurring", article.title.clone(), body, feed, seen_at);
            set.label += 1;
        }
    }
    set.items
}

fn evaluate(corpus: &Path) {
    let articles = load_corpus(corpus);
    if articles.is_empty() {
        println!(
            "no articles under {}: story evaluation skipped",
            corpus.display()
        );
        return;
    }
    let mut random = Random(0x5eed_0006);
    let mut items = build_items(&articles, &mut random);
    items.sort_by_key(|item| item.seen_at);
    let settings = StorySettings::default();
    let (stories, matches) = cluster(&items, settings);
    let mut explanations = Vec::new();
    for (item, matched) in items.iter().zip(&matches) {
        if let Some((other, score)) = *matched
            && items[other].label != item.label
        {
            explanations.push(format!(
                "false merge ({score:.2}): [{}] {} | [{}] {}",
                items[other].kind, items[other].title, item.kind, item.title
            ));
        }
    }
    let labels_count = items
        .iter()
        .map(|item| item.label)
        .collect::<HashSet<_>>()
        .len();
    println!(
        "story evaluation: {} labelled articles from {} real ones, {} stories; \
         window {:?}, threshold {}",
        items.len(),
        articles.len(),
        labels_count,
        settings.window,
        settings.threshold
    );
    let mut kinds: Vec<&str> = REPRINT_KINDS.to_vec();
    kinds.extend(["singleton", "hard-negative", "recurring"]);
    print_kind_rows(&items, &stories, &kinds, "original");
    let labels: Vec<usize> = items.iter().map(|item| item.label).collect();
    print_score_distribution(&items);
    probe_lead_only(&items, settings, &mut random);
    println!("| threshold | pairwise precision | pairwise recall | B³ F1 |");
    println!("| --- | --- | --- | --- |");
    for threshold in [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9] {
        let Ok(settings) = StorySettings::new(settings.window, threshold) else {
            continue;
        };
        let (stories, _) = cluster(&items, settings);
        let scores = score_clustering(&labels, &stories);
        println!(
            "| {threshold} | {:.3} | {:.3} | {:.3} |",
            scores.pairwise_precision, scores.pairwise_recall, scores.bcubed_f1
        );
    }
    for line in explanations.iter().take(20) {
        println!("{line}");
    }
    short_stories::evaluate(&articles);
    let mut missed = 0;
    let mut first_story: HashMap<usize, i64> = HashMap::new();
    for (item, &story) in items.iter().zip(&stories) {
        let first = *first_story.entry(item.label).or_insert(story);
        if first != story && missed < 20 {
            missed += 1;
            println!(
                "missed [{}]: {} | {}",
                item.kind,
                item.title,
                truncate_chars(&item.body, 120)
            );
        }
    }
}

/// Clusters the items in order; each item's story and the stored item it
/// joined, with the score.
#[allow(clippy::type_complexity)]
fn cluster(items: &[Item], settings: StorySettings) -> (Vec<i64>, Vec<Option<(usize, f64)>>) {
    let mut clusterer = Clusterer::new(settings);
    items
        .iter()
        .map(|item| {
            let fingerprint = Fingerprint::new(&item.title, &item.body);
            let meta = ArticleMeta {
                feed_id: item.feed,
                seen_at: item.seen_at,
            };
            let assignment = clusterer.assign(fingerprint, meta);
            (
                assignment.story,
                assignment.matched.map(|found| (found.article, found.score)),
            )
        })
        .unzip()
}

/// Estimated containment of each body reprint against its original, and of
/// each hard-negative pair: where the threshold can go.
fn print_score_distribution(items: &[Item]) {
    let fingerprints: Vec<Fingerprint> = items
        .iter()
        .map(|item| Fingerprint::new(&item.title, &item.body))
        .collect();
    let mut originals: HashMap<usize, usize> = HashMap::new();
    let mut reprints = Vec::new();
    let mut reprint_jaccard = Vec::new();
    let mut negatives = Vec::new();
    let mut negative_partner: HashMap<usize, usize> = HashMap::new();
    for (index, item) in items.iter().enumerate() {
        if item.kind == "original" {
            originals.insert(item.label, index);
        }
    }
    // Hard-negative pairs were labelled consecutively from the first one.
    let first_negative = items
        .iter()
        .filter(|item| item.kind == "hard-negative")
        .map(|item| item.label)
        .min()
        .unwrap_or(0);
    for (index, item) in items.iter().enumerate() {
        if item.kind == "hard-negative" {
            let partner_label = first_negative + ((item.label - first_negative) ^ 1);
            if let Some(&partner) = negative_partner.get(&partner_label) {
                negatives.push(fingerprints[index].estimated_containment(&fingerprints[partner]));
            }
            negative_partner.insert(item.label, index);
        } else if item.kind != "original"
            && !fingerprints[index].is_title_only()
            && let Some(&original) = originals.get(&item.label)
        {
            reprints.push(fingerprints[index].estimated_containment(&fingerprints[original]));
            reprint_jaccard.push(fingerprints[index].estimated_jaccard(&fingerprints[original]));
        }
    }
    let quantile = |scores: &mut Vec<f64>, q: f64| {
        scores.sort_by(f64::total_cmp);
        scores
            .get(((scores.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "estimated containment, reprints with a body vs their original ({}): min {:.2}, 1% {:.2}, 5% {:.2}, median {:.2}",
        reprints.len(),
        quantile(&mut reprints, 0.0),
        quantile(&mut reprints, 0.01),
        quantile(&mut reprints, 0.05),
        quantile(&mut reprints, 0.5)
    );
    println!(
        "estimated Jaccard, the same pairs: min {:.2}, 1% {:.2}, 5% {:.2}, median {:.2}",
        quantile(&mut reprint_jaccard, 0.0),
        quantile(&mut reprint_jaccard, 0.01),
        quantile(&mut reprint_jaccard, 0.05),
        quantile(&mut reprint_jaccard, 0.5)
    );
    println!(
        "estimated containment, hard-negative pairs ({}): median {:.2}, 99% {:.2}, max {:.2}",
        negatives.len(),
        quantile(&mut negatives, 0.5),
        quantile(&mut negatives, 0.99),
        quantile(&mut negatives, 1.0)
    );
}

/// Not part of the labelled set, because the issue does not list it: outlets
/// also run only a wire story's first sentence under their own headline (Le
/// Monde's one-line version of an AP paragraph). Such a copy holds a small
/// part of the original, so its Jaccard similarity is low and band keys rarely
/// find it; this probe measures how often it still finds its original.
fn probe_lead_only(items: &[Item], settings: StorySettings, random: &mut Random) {
    let mut clusterer = Clusterer::new(settings);
    for item in items {
        let meta = ArticleMeta {
            feed_id: item.feed,
            seen_at: item.seen_at,
        };
        clusterer.assign(Fingerprint::new(&item.title, &item.body), meta);
    }
    let (mut probes, mut same_title_found, mut new_title_found, mut wrong) = (0, 0, 0, 0);
    for (index, item) in items.iter().enumerate() {
        let lead = sentences(&item.body);
        if item.kind != "original" || lead.len() < 3 || words(lead[0]) < 12 {
            continue;
        }
        probes += 1;
        let meta = ArticleMeta {
            feed_id: 900_000,
            seen_at: item.seen_at + TimeDelta::hours(1),
        };
        for (title, found) in [
            (item.title.clone(), &mut same_title_found),
            (rewrite_headline(&item.title, random), &mut new_title_found),
        ] {
            match clusterer.best_match(&Fingerprint::new(&title, lead[0]), &meta) {
                Some(matched) if matched.story == clusterer.story_of(index).unwrap_or(-1) => {
                    *found += 1
                }
                Some(_) => wrong += 1,
                None => {}
            }
        }
    }
    println!(
        "lead-only probe ({probes} originals of 3+ sentences): the first sentence alone finds \
         its original under the same headline {same_title_found} times, under a rewritten \
         one {new_title_found} times; {wrong} wrong stories"
    );
}

fn truncate_chars(text: &str, count: usize) -> String {
    text.chars().take(count).collect()
}

fn print_row(kind: &str, scores: &ClusteringScores) {
    let recall = if scores.labelled_pairs == 0 {
        "–".to_owned()
    } else {
        format!("{:.3}", scores.pairwise_recall)
    };
    println!(
        "| {kind} | {} | {} | {:.3} | {recall} | {:.3} | {} | {} |",
        scores.items,
        scores.labelled_pairs,
        scores.pairwise_precision,
        scores.bcubed_f1,
        scores.false_merges,
        scores.missed_merges
    );
}

// ---------------------------------------------------------------------------
// Benchmarks

fn bench_fingerprint(c: &mut Criterion) {
    let mut random = Random(1);
    let prose = Prose::new(&mut random);
    let title = prose.text(60, &mut random);
    let body = prose.text(1_440, &mut random);
    c.bench_function("stories/fingerprint_1.5KB", |b| {
        b.iter(|| {
            let fingerprint = Fingerprint::new(black_box(&title), black_box(&body));
            black_box(band_keys(&fingerprint))
        })
    });
    // A headline-and-summary item: its fingerprint also carries the content
    // words, numbers, weekdays and lead key.
    let summary = prose.text(200, &mut random);
    c.bench_function("stories/fingerprint_summary_200B", |b| {
        b.iter(|| {
            let fingerprint = Fingerprint::new(black_box(&title), black_box(&summary));
            black_box(band_keys(&fingerprint))
        })
    });
}

fn bench_best_match(c: &mut Criterion) {
    const STORED: usize = 100_000;
    let mut random = Random(2);
    let prose = Prose::new(&mut random);
    let start = Utc
        .with_ymd_and_hms(2025, 11, 14, 0, 0, 0)
        .single()
        .unwrap_or_default();
    let mut clusterer = Clusterer::new(StorySettings::default());
    let mut stored_texts = Vec::new();
    let mut stored = Vec::with_capacity(STORED);
    for n in 0..STORED {
        let title = prose.text(60, &mut random);
        let body = prose.text(1_440, &mut random);
        let meta = ArticleMeta {
            feed_id: (n % 500) as i64,
            seen_at: start + TimeDelta::seconds((n as i64 * 72 * 3600) / STORED as i64),
        };
        stored.push((Fingerprint::new(&title, &body), meta));
        if n % 10_000 == 0 {
            stored_texts.push((title, body));
        }
    }
    // Storing grows the index, so it is timed once over the whole load rather
    // than by criterion, which would repeat it millions of times.
    let loading = std::time::Instant::now();
    for (fingerprint, meta) in stored {
        clusterer.assign(fingerprint, meta);
    }
    let elapsed = loading.elapsed();
    println!(
        "assigned {STORED} fingerprinted articles in {:.0} ms: {:.2} µs each on average \
         (band keys, lookup, verification and indexing)",
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_secs_f64() * 1e6 / STORED as f64
    );
    let now = ArticleMeta {
        feed_id: 9_999,
        seen_at: start + TimeDelta::hours(71),
    };
    let fresh = Fingerprint::new(
        &prose.text(60, &mut random),
        &prose.text(1_440, &mut random),
    );
    let (title, body) = &stored_texts[stored_texts.len() / 2];
    let reprint = Fingerprint::new(title, &format!("LONDON (Reuters) - {body}"));
    let mut group = c.benchmark_group("stories/best_match_100k");
    group.bench_function("new_story", |b| {
        b.iter(|| black_box(clusterer.best_match(black_box(&fresh), &now)))
    });
    group.bench_function("reprint", |b| {
        b.iter(|| black_box(clusterer.best_match(black_box(&reprint), &now)))
    });
    group.finish();
}
