//! The evaluation of headline-and-summary items: real short descriptions from
//! the corpus, copied the ways outlets copy them, beside real hard negatives;
//! and the hand-written set of `tests/fixtures/stories/short.toml`.
//!
//! Copies (each labelled with its original, from another feed within 12
//! hours): `verbatim` (the summary under another outlet's headline, made of a
//! few of the summary's words), `dateline`, `byline`, `read-more` (a trailer
//! added), `first-sentence` (only the first sentence, of at least 10 words,
//! under a new headline), `reworded` (a clause moved, a word swapped for a
//! synonym, numbers written another way), `prefix` (the same headline behind
//! `UPDATE:`, `EXCLUSIVE:`, `UPDATE 2-`, the same summary).
//!
//! Hard negatives (each its own story): `same-people` (two real items sharing
//! at least two capitalised names, 1 to 96 hours apart: another event about
//! the same people and places), `follow-up` (the same headline, or a new one,
//! over a summary that starts like a real one, the first 40% of its words,
//! and goes on with another real summary's last 60%, from another feed 24 to
//! 96 hours later: the next event of a running story), `recurring` ("Live updates: …", "Morning
//! briefing: …" over another real summary, from the same feed a day later and
//! from another feed the same day), and `short-singleton` (other real short
//! items). One wire event told from two sides is in the hand-written set: an
//! account written independently by the other side is another story; only a
//! copy of an account's text joins it.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use chrono::{TimeDelta, TimeZone, Utc};
use herald::stories::{StorySettings, score_clustering};

use super::{
    Item, RealArticle, SetBuilder, byline, cluster, dateline, print_kind_rows, print_row,
    sentences, truncate_chars, words,
};
use crate::prose::Random;

/// A short item: a headline and a summary of this many words (most feeds).
const MIN_SHORT_WORDS: usize = 12;
const MAX_SHORT_WORDS: usize = 40;
const SHORT_ORIGINALS: usize = 500;
const SHORT_SINGLETONS: usize = 500;
const SAME_PEOPLE_PAIRS: usize = 300;
const RECURRING_PAIRS: usize = 100;
const FOLLOW_UPS: usize = 200;

pub const COPY_KINDS: &[&str] = &[
    "verbatim",
    "dateline",
    "byline",
    "read-more",
    "first-sentence",
    "reworded",
    "prefix",
];
pub const NEGATIVE_KINDS: &[&str] = &["same-people", "follow-up", "recurring", "short-singleton"];

const SYNONYMS: &[(&str, &str)] = &[
    ("said", "stated"),
    ("says", "said"),
    ("killed", "left dead"),
    ("big", "large"),
    ("major", "key"),
    ("help", "aid"),
    ("buy", "purchase"),
    ("talks", "negotiations"),
    ("plan", "proposal"),
    ("attack", "assault"),
    ("rise", "increase"),
    ("cut", "reduce"),
    ("start", "begin"),
    ("show", "indicate"),
    ("new", "fresh"),
    ("government", "administration"),
    ("people", "individuals"),
    ("after", "following"),
    ("before", "ahead of"),
    ("about", "around"),
    ("warned", "cautioned"),
    ("announced", "unveiled"),
    ("fight", "battle"),
];

const NUMBER_WORDS: &[(&str, &str)] = &[
    ("2", "two"),
    ("3", "three"),
    ("4", "four"),
    ("5", "five"),
    ("6", "six"),
    ("7", "seven"),
    ("8", "eight"),
    ("9", "nine"),
    ("10", "ten"),
];

/// A headline another outlet would write: a handful of the summary's longer
/// words in another order, so it shares few words with the original headline.
fn new_headline(body: &str, random: &mut Random) -> String {
    let mut picked: Vec<&str> = body
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| w.chars().count() >= 5)
        .collect();
    picked.dedup();
    for i in (1..picked.len()).rev() {
        picked.swap(i, random.below(i + 1));
    }
    picked.truncate(3 + random.below(3));
    let mut headline = picked.join(" ");
    if random.chance(0.5) {
        headline = format!(
            "{}: {headline}",
            random.pick(&["Report", "Watch", "Analysis"])
        );
    }
    headline
}

fn maybe_new_headline(original: &RealArticle, random: &mut Random) -> String {
    if random.chance(0.5) {
        new_headline(&original.body, random)
    } else {
        original.title.clone()
    }
}

/// Moves the clause after a sentence's first comma to its front.
fn move_clause(body: &str) -> Option<String> {
    let (head, tail) = body.split_once(", ")?;
    let (clause, rest) = tail.split_once(['.', '!', '?']).unwrap_or((tail, ""));
    if clause.split_whitespace().count() < 3 {
        return None;
    }
    let mut head = head.to_owned();
    if let Some(first) = head.get(..1) {
        head = format!(
            "{}{}",
            first.to_lowercase(),
            head.get(1..).unwrap_or_default()
        );
    }
    let mut clause = clause.to_owned();
    if let Some(first) = clause.get(..1) {
        clause = format!(
            "{}{}",
            first.to_uppercase(),
            clause.get(1..).unwrap_or_default()
        );
    }
    Some(format!("{clause}, {head}.{rest}"))
}

fn swap_synonym(body: &str, random: &mut Random) -> Option<String> {
    let found: Vec<&(&str, &str)> = SYNONYMS
        .iter()
        .filter(|(word, _)| body.split_whitespace().any(|w| w == *word))
        .collect();
    if found.is_empty() {
        return None;
    }
    let (word, synonym) = **random.pick(&found);
    let mut replaced = false;
    let text: Vec<String> = body
        .split(' ')
        .map(|w| {
            if !replaced && w == word {
                replaced = true;
                synonym.to_owned()
            } else {
                w.to_owned()
            }
        })
        .collect();
    Some(text.join(" "))
}

fn respell_numbers(body: &str) -> Option<String> {
    let mut changed = false;
    let text: Vec<String> = body
        .split(' ')
        .map(|w| {
            if let Some((_, spelt)) = NUMBER_WORDS.iter().find(|(digits, _)| *digits == w) {
                changed = true;
                return (*spelt).to_owned();
            }
            if let Some(number) = w.strip_suffix("bn") {
                changed = true;
                return format!("{number} billion");
            }
            if w.len() > 4 && w.contains(',') && w.chars().all(|c| c.is_ascii_digit() || c == ',') {
                changed = true;
                return w.replace(',', "");
            }
            if let Some(number) = w.strip_suffix('%') {
                changed = true;
                return format!("{number} percent");
            }
            w.to_owned()
        })
        .collect();
    changed.then(|| text.join(" "))
}

/// One to three light rewordings; `None` when none applies.
fn reword(body: &str, random: &mut Random) -> Option<String> {
    let mut text = body.to_owned();
    let mut changes = 0;
    if let Some(moved) = move_clause(&text).filter(|_| random.chance(0.6)) {
        text = moved;
        changes += 1;
    }
    if let Some(swapped) = swap_synonym(&text, random) {
        text = swapped;
        changes += 1;
    }
    if let Some(respelt) = respell_numbers(&text) {
        text = respelt;
        changes += 1;
    }
    if changes == 0 {
        text = move_clause(&text)?;
    }
    Some(text)
}

fn copy(original: &RealArticle, kind: &str, random: &mut Random) -> Option<(String, String)> {
    let body = &original.body;
    Some(match kind {
        "verbatim" => (new_headline(body, random), body.clone()),
        "dateline" => (maybe_new_headline(original, random), dateline(body, random)),
        "byline" => (maybe_new_headline(original, random), byline(body, random)),
        "read-more" => {
            let trailer = random.pick(&["Read more", "Continue reading...", "[…]", "Read more »"]);
            (
                maybe_new_headline(original, random),
                format!("{body} {trailer}"),
            )
        }
        "first-sentence" => {
            let parts = sentences(body);
            let first = parts
                .first()
                .filter(|s| words(s) >= 10 && parts.len() >= 2)?;
            (new_headline(body, random), (*first).to_owned())
        }
        "reworded" => (maybe_new_headline(original, random), reword(body, random)?),
        "prefix" => {
            let prefix = random.pick(&["UPDATE: ", "EXCLUSIVE: ", "UPDATE 2-", "BREAKING: "]);
            (format!("{prefix}{}", original.title), body.clone())
        }
        _ => return None,
    })
}

fn build(corpus: &[RealArticle], random: &mut Random) -> Vec<Item> {
    let mut set = SetBuilder::new(corpus);
    let mut short: Vec<usize> = (0..corpus.len())
        .filter(|&i| (MIN_SHORT_WORDS..=MAX_SHORT_WORDS).contains(&words(&corpus[i].body)))
        .collect();
    for i in (1..short.len()).rev() {
        short.swap(i, random.below(i + 1));
    }
    let (originals, rest) = short.split_at(SHORT_ORIGINALS.min(short.len() / 3));
    for &index in originals {
        set.add_with_copies(index, "short-original", COPY_KINDS, copy, random);
    }
    let (singles, rest) = rest.split_at(SHORT_SINGLETONS.min(rest.len() / 3));
    for &index in singles {
        let seen_at = set.random_time(random, 72);
        set.add_alone(index, "short-singleton", seen_at);
    }
    let used = set.add_name_pairs(
        rest,
        SAME_PEOPLE_PAIRS,
        "same-people",
        random,
        |set, random| {
            let first = set.random_time(random, 24);
            (
                first,
                first + TimeDelta::minutes(60 + random.below(95 * 60) as i64),
            )
        },
    );

    let spare: Vec<usize> = (0..rest.len())
        .filter(|i| !used.contains(i))
        .map(|i| rest[i])
        .collect();
    let (spare, followed) = spare.split_at(spare.len().saturating_sub(2 * FOLLOW_UPS));
    for pair in followed.chunks_exact(2) {
        let (first, next) = (&corpus[pair[0]], &corpus[pair[1]]);
        let first_words: Vec<&str> = first.body.split_whitespace().collect();
        let next_words: Vec<&str> = next.body.split_whitespace().collect();
        let lead = &first_words[..first_words.len() * 4 / 10];
        let rest = &next_words[next_words.len() * 4 / 10..];
        let seen_at = set.random_time(random, 24);
        let title = if random.chance(0.5) {
            first.title.clone()
        } else {
            new_headline(&first.body, random)
        };
        set.add_alone(pair[0], "follow-up", seen_at);
        let feed = set.new_feed();
        let later = seen_at + TimeDelta::minutes(24 * 60 + random.below(72 * 60) as i64);
        let body = format!("{} {}", lead.join(" "), rest.join(" "));
        set.push("follow-up", title, body, feed, later);
        set.label += 1;
    }
    for (n, pair) in spare.chunks_exact(2).take(RECURRING_PAIRS).enumerate() {
        let format = *random.pick(&["Live updates:", "Morning briefing:", "What we know:"]);
        let title = format!("{format} {}", corpus[pair[0]].title);
        let first = set.random_time(random, 24);
        // Even pairs: one feed's format a day later; odd: two feeds the same day.
        let (feeds_of, later) = if n % 2 == 0 {
            let feed = set.feed_id(&corpus[pair[0]].feed);
            (
                [feed, feed],
                first + TimeDelta::hours(24 + random.below(24) as i64),
            )
        } else {
            (
                [set.new_feed(), set.new_feed()],
                first + TimeDelta::minutes(random.below(6 * 60) as i64),
            )
        };
        for ((&index, feed), seen_at) in pair.iter().zip(feeds_of).zip([first, later]) {
            set.push(
                "recurring",
                title.clone(),
                corpus[index].body.clone(),
                feed,
                seen_at,
            );
            set.label += 1;
        }
    }
    set.items
}

/// Prints the short-item evaluation: one row per copy kind (scored with the
/// originals it copies), one per hard-negative kind, and the overall row.
pub fn evaluate(articles: &[RealArticle]) {
    let mut random = Random(0x5eed_0017);
    let mut items = build(articles, &mut random);
    items.sort_by_key(|item| item.seen_at);
    let settings = StorySettings::default();
    let (stories, matches) = cluster(&items, settings);
    let labels_count = items
        .iter()
        .map(|item| item.label)
        .collect::<HashSet<_>>()
        .len();
    println!();
    println!(
        "short items: {} labelled articles ({} to {} words of summary), {} stories",
        items.len(),
        MIN_SHORT_WORDS,
        MAX_SHORT_WORDS,
        labels_count
    );
    let kinds: Vec<&str> = COPY_KINDS.iter().chain(NEGATIVE_KINDS).copied().collect();
    print_kind_rows(&items, &stories, &kinds, "short-original");
    let mut shown = 0;
    for (item, matched) in items.iter().zip(&matches) {
        if let Some((other, score)) = *matched
            && items[other].label != item.label
            && shown < 15
        {
            shown += 1;
            println!(
                "false merge ({score:.2}): [{}] {} | {} || [{}] {} | {}",
                items[other].kind,
                items[other].title,
                truncate_chars(&items[other].body, 100),
                item.kind,
                item.title,
                truncate_chars(&item.body, 100)
            );
        }
    }
    let mut first_story: HashMap<usize, i64> = HashMap::new();
    let mut missed = 0;
    for (item, &story) in items.iter().zip(&stories) {
        let first = *first_story.entry(item.label).or_insert(story);
        if first != story && missed < 15 {
            missed += 1;
            println!(
                "missed [{}]: {} | {}",
                item.kind,
                item.title,
                truncate_chars(&item.body, 140)
            );
        }
    }
}

/// The hand-written set, when the repository's fixture file is there.
pub fn evaluate_fixtures(path: &Path) {
    #[derive(serde::Deserialize)]
    struct Set {
        article: Vec<Article>,
    }
    #[derive(serde::Deserialize)]
    struct Article {
        story: String,
        kind: String,
        feed: i64,
        hours: f64,
        title: String,
        body: String,
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    let Ok(set) = toml::from_str::<Set>(&text) else {
        println!("{}: not a fixture set", path.display());
        return;
    };
    let start = Utc
        .with_ymd_and_hms(2025, 9, 1, 6, 0, 0)
        .single()
        .unwrap_or_default();
    let mut labels: HashMap<&str, usize> = HashMap::new();
    let mut items: Vec<Item> = set
        .article
        .iter()
        .map(|a| {
            let next = labels.len();
            Item {
                label: *labels.entry(&a.story).or_insert(next),
                kind: Box::leak(a.kind.clone().into_boxed_str()),
                title: a.title.clone(),
                body: a.body.clone(),
                feed: a.feed,
                seen_at: start + TimeDelta::seconds((a.hours * 3600.0) as i64),
            }
        })
        .collect();
    items.sort_by_key(|item| item.seen_at);
    let (stories, _) = cluster(&items, StorySettings::default());
    let all: Vec<usize> = items.iter().map(|item| item.label).collect();
    println!();
    println!(
        "hand-written short items ({}): {} articles",
        path.display(),
        items.len()
    );
    print_row("**overall**", &score_clustering(&all, &stories));
}
