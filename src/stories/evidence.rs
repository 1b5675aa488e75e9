//! What a short body says besides its shingles: its content words, the
//! numbers it gives and the weekdays it names.
//!
//! A headline-and-summary item has twenty or thirty words, so its three-word
//! shingles are few, and a copy that moves a clause or writes "five" for "5"
//! loses a large share of them, while two different events about the same
//! people share names and phrasing. Words compared as a set survive rewording;
//! numbers and weekdays tell Monday's meeting from Thursday's.

use crate::rules::TokenList;

use super::fingerprint::{mix64, word_hash};

/// Content words kept (the smallest hashes, so two copies keep the same
/// sample): a short body has at most about 45 words, so all of them fit.
pub const MAX_CONTENT_WORDS: usize = 64;

/// Numbers kept: a two-sentence summary gives a handful.
pub const MAX_NUMBERS: usize = 16;

/// Content words that make a body's lead: a copy that keeps only the first
/// sentence under its own headline shares too few shingles with the whole
/// summary to be found by the signature's bands, but it starts the same way.
pub const LEAD_WORDS: usize = 6;

/// Words that say nothing about which event an item reports: function words
/// of the languages herald's users read most, the verbs of attribution every
/// news item uses, and feed trailers ("Read more", "Continue reading").
const COMMON_WORDS: &[&str] = &[
    // English
    "a",
    "about",
    "above",
    "according",
    "after",
    "again",
    "against",
    "ago",
    "all",
    "also",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "during",
    "each",
    "for",
    "from",
    "further",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "him",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "it's",
    "its",
    "just",
    "last",
    "later",
    "may",
    "me",
    "might",
    "more",
    "most",
    "much",
    "must",
    "my",
    "near",
    "new",
    "news",
    "no",
    "nor",
    "not",
    "now",
    "of",
    "off",
    "on",
    "once",
    "only",
    "or",
    "other",
    "our",
    "out",
    "over",
    "own",
    "read",
    "reading",
    "continue",
    "reported",
    "reports",
    "said",
    "same",
    "say",
    "says",
    "she",
    "should",
    "since",
    "so",
    "some",
    "such",
    "than",
    "that",
    "the",
    "their",
    "them",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "to",
    "told",
    "too",
    "under",
    "until",
    "up",
    "us",
    "very",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "would",
    "you",
    "your",
    "yet",
    "via",
    "per",
    "amid",
    "among",
    "across",
    "around",
    "including",
    "people",
    "week",
    "year",
    "years",
    "day",
    "days",
    "time",
    "today",
    "yesterday",
    "tomorrow",
    "late",
    "early",
    // French
    "le",
    "la",
    "les",
    "un",
    "une",
    "des",
    "du",
    "de",
    "et",
    "en",
    "est",
    "au",
    "aux",
    "pour",
    "par",
    "sur",
    "dans",
    "que",
    "qui",
    "ne",
    "pas",
    "plus",
    "ce",
    "cette",
    "son",
    "sa",
    "ses",
    "il",
    "elle",
    "ils",
    "a",
    "ont",
    "été",
    // German
    "der",
    "die",
    "das",
    "den",
    "dem",
    "ein",
    "eine",
    "einer",
    "und",
    "ist",
    "im",
    "mit",
    "von",
    "zu",
    "auf",
    "für",
    "nicht",
    "sich",
    "bei",
    "nach",
    "wie",
    "auch",
    "es",
    "hat",
    "sind",
    "wird",
    // Spanish
    "el",
    "los",
    "las",
    "y",
    "con",
    "por",
    "para",
    "del",
    "al",
    "se",
    "lo",
    "una",
    "como",
    "su",
    "sus",
    "es",
];

/// Weekday names, Monday first, in the same languages ("sat", "sun" and
/// "wed" are words too often to count as days).
const WEEKDAYS: [&[&str]; 7] = [
    &["monday", "mon", "lundi", "montag", "lunes"],
    &["tuesday", "tue", "tues", "mardi", "dienstag", "martes"],
    &["wednesday", "mercredi", "mittwoch", "miercoles"],
    &["thursday", "thu", "thurs", "jeudi", "donnerstag", "jueves"],
    &["friday", "fri", "vendredi", "freitag", "viernes"],
    &["saturday", "samedi", "samstag", "sabado"],
    &["sunday", "dimanche", "sonntag", "domingo"],
];

/// Numbers written as words, and what they stand for: a copy writes "five"
/// where the original has "5".
const NUMBER_WORDS: &[(&str, &str)] = &[
    ("two", "2"),
    ("three", "3"),
    ("four", "4"),
    ("five", "5"),
    ("six", "6"),
    ("seven", "7"),
    ("eight", "8"),
    ("nine", "9"),
    ("ten", "10"),
    ("eleven", "11"),
    ("twelve", "12"),
    ("fifteen", "15"),
    ("twenty", "20"),
    ("thirty", "30"),
    ("forty", "40"),
    ("fifty", "50"),
    ("hundred", "100"),
    ("dozens", "12"),
];

/// Month names: a number beside one is a date, which a dateline adds to a
/// copy ("LONDON, Nov 14 (Reuters) -") without contradicting anything.
const MONTHS: &[&str] = &[
    "jan",
    "january",
    "feb",
    "february",
    "mar",
    "march",
    "apr",
    "april",
    "may",
    "jun",
    "june",
    "jul",
    "july",
    "aug",
    "august",
    "sep",
    "sept",
    "september",
    "oct",
    "october",
    "nov",
    "november",
    "dec",
    "december",
];

/// Suffixes that scale or qualify a number without changing the digits a
/// copy keeps: "$1.2bn" and "1.2 billion" both give 1.2.
const NUMBER_SUFFIXES: &[&str] = &[
    "bn", "billion", "m", "mn", "million", "k", "st", "nd", "rd", "th", "pc", "km", "kg", "mph",
];

/// The evidence of one short body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShortEvidence {
    /// Hashes of the distinct content words, ascending, at most [`MAX_CONTENT_WORDS`].
    pub(super) words: Vec<u32>,
    /// Hashes of the distinct numbers in a canonical spelling, ascending, at most [`MAX_NUMBERS`].
    pub(super) numbers: Vec<u32>,
    /// The weekdays named, Monday in bit 0.
    pub(super) weekdays: u8,
    /// A hash of the first [`LEAD_WORDS`] content words in order, 0 when the
    /// body has fewer.
    pub(super) lead: u32,
}

/// Where two short bodies contradict each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// Each gives a number the other does not: another count, sum or date.
    Numbers,
    /// They name weekdays, none in common: another day's event.
    Weekdays,
}

impl Conflict {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Numbers => "each gives numbers the other does not",
            Self::Weekdays => "they name different weekdays",
        }
    }
}

/// What a word is to the evidence, when it is one of the listed words.
#[derive(Clone, Copy)]
enum Listed {
    Common,
    Weekday(u8),
    Month,
    Number(&'static str),
}

/// The word lists in one table: a summary's ~40 words are each looked up
/// once instead of scanned against ~300 listed words.
static LISTED: std::sync::LazyLock<std::collections::HashMap<&'static str, Listed>> =
    std::sync::LazyLock::new(|| {
        let mut listed = std::collections::HashMap::new();
        listed.extend(COMMON_WORDS.iter().map(|&word| (word, Listed::Common)));
        listed.extend(MONTHS.iter().map(|&word| (word, Listed::Month)));
        listed.extend(
            NUMBER_WORDS
                .iter()
                .map(|&(word, digits)| (word, Listed::Number(digits))),
        );
        for (day, names) in (0u8..).zip(WEEKDAYS) {
            listed.extend(names.iter().map(|&name| (name, Listed::Weekday(day))));
        }
        listed
    });

fn listed(word: &str) -> Option<Listed> {
    LISTED.get(word).copied()
}

impl ShortEvidence {
    pub fn new(body: &TokenList) -> Self {
        let mut evidence = Self::default();
        let mut lead: u64 = 0x1ead_1ead_1ead_1ead;
        let mut previous = "";
        let mut words = body.iter().peekable();
        while let Some(word) = words.next() {
            let before = std::mem::replace(&mut previous, word);
            let class = listed(word);
            if let Some(Listed::Weekday(day)) = class {
                evidence.weekdays |= 1 << day;
                continue;
            }
            let number = match class {
                Some(Listed::Number(digits)) => Some(digits.to_owned()),
                _ => canonical_number(word),
            };
            if let Some(number) = number {
                let is_month = |word: &str| matches!(listed(word), Some(Listed::Month));
                let date = is_month(before) || words.peek().is_some_and(|next| is_month(next));
                if !date {
                    evidence.numbers.push(hash32(&number));
                }
                continue;
            }
            // "may" (the month) is a common word too: months never count as content.
            if word.chars().count() < 2 || class.is_some() {
                continue;
            }
            let hash = hash32(word);
            if evidence.words.len() < LEAD_WORDS {
                lead = mix64(lead.rotate_left(17) ^ u64::from(hash));
                if evidence.words.len() + 1 == LEAD_WORDS {
                    // Never 0, which stands for "no lead".
                    evidence.lead = (lead >> 32) as u32 | 1;
                }
            }
            evidence.words.push(hash);
        }
        for list in [&mut evidence.words, &mut evidence.numbers] {
            list.sort_unstable();
            list.dedup();
        }
        evidence.words.truncate(MAX_CONTENT_WORDS);
        evidence.numbers.truncate(MAX_NUMBERS);
        evidence
    }

    /// Hashes of the distinct content words, ascending.
    pub fn content_words(&self) -> &[u32] {
        &self.words
    }

    /// The lead key: a hash of the first six content words, when the body has that many.
    pub fn lead(&self) -> Option<u32> {
        (self.lead != 0).then_some(self.lead)
    }

    /// The share of the smaller content word set found in the other (0 when
    /// either is empty): a copy keeps nearly all of its words, a reworded one
    /// most; another event about the same people shares names and little else.
    pub fn word_containment(&self, other: &Self) -> f64 {
        let smaller = self.words.len().min(other.words.len());
        if smaller == 0 {
            return 0.0;
        }
        shared(&self.words, &other.words) as f64 / smaller as f64
    }

    /// Numbers or weekdays that cannot both be true of one event. A copy that
    /// keeps part of the text keeps a subset of its numbers; a dateline adds a
    /// day of the month, which the original's numbers do not contradict.
    pub fn conflict(&self, other: &Self) -> Option<Conflict> {
        if self.weekdays != 0 && other.weekdays != 0 && self.weekdays & other.weekdays == 0 {
            return Some(Conflict::Weekdays);
        }
        let common = shared(&self.numbers, &other.numbers);
        if common < self.numbers.len() && common < other.numbers.len() {
            return Some(Conflict::Numbers);
        }
        None
    }
}

/// Count of values in both ascending lists.
pub(super) fn shared(a: &[u32], b: &[u32]) -> usize {
    let (mut i, mut j, mut count) = (0, 0, 0);
    while let (Some(x), Some(y)) = (a.get(i), b.get(j)) {
        match x.cmp(y) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                count += 1;
                i += 1;
                j += 1;
            }
        }
    }
    count
}

fn hash32(word: &str) -> u32 {
    (word_hash(word) >> 32) as u32
}

/// A number written in digits in one spelling for all: without group
/// separators or a scaling suffix, trailing zero decimals dropped. `None` for
/// a word that is not a number.
fn canonical_number(word: &str) -> Option<String> {
    if !word.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let mut number = word;
    for suffix in NUMBER_SUFFIXES {
        if let Some(stripped) = number.strip_suffix(suffix) {
            number = stripped;
            break;
        }
    }
    if !number
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b',' || b == b'.')
    {
        // "2g", "mp3", "covid19": a name with digits, a content word.
        return None;
    }
    let mut digits: String = number.chars().filter(|&c| c != ',').collect();
    if digits.contains('.') {
        let trimmed = digits.trim_end_matches('0').trim_end_matches('.').len();
        digits.truncate(trimmed);
    }
    (!digits.is_empty()).then_some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence(text: &str) -> ShortEvidence {
        ShortEvidence::new(&TokenList::new(text))
    }

    #[test]
    fn numbers_written_differently_are_the_same_numbers() {
        let a = evidence("The deal is worth $1.2bn and covers 3,000 jobs over five years.");
        let b = evidence("The deal, worth 1.2 billion dollars, covers 3000 jobs over 5 years.");
        assert_eq!(a.numbers, b.numbers);
        assert_eq!(a.numbers.len(), 3);
        assert_eq!(a.conflict(&b), None);
    }

    #[test]
    fn other_numbers_or_weekdays_conflict() {
        let monday = evidence("Iran's foreign minister met the envoy on Monday to discuss trade.");
        let thursday =
            evidence("Iran's foreign minister met the envoy on Thursday to discuss trade.");
        assert_eq!(monday.conflict(&thursday), Some(Conflict::Weekdays));
        let killed = evidence("At least 12 people were killed in the blast.");
        let injured = evidence("At least 30 people were injured in the blast.");
        assert_eq!(killed.conflict(&injured), Some(Conflict::Numbers));
    }

    #[test]
    fn a_dateline_date_is_not_a_number_of_the_story() {
        let original = evidence("Rebels seized 3 towns. 40 soldiers were captured.");
        let copy = evidence("BEIRUT, Nov 14 (Reuters) - Rebels seized 3 towns.");
        assert_eq!(copy.numbers.len(), 1);
        assert_eq!(original.conflict(&copy), None);
        assert_eq!(evidence("on 14 November").numbers.len(), 0);
    }

    #[test]
    fn a_part_of_the_text_keeps_a_subset_of_its_numbers() {
        let full = evidence("Rebels seized 3 towns on Sunday. 40 soldiers were captured.");
        let first = evidence("Rebels seized 3 towns on Sunday.");
        assert_eq!(full.conflict(&first), None);
        assert_eq!(first.conflict(&full), None);
        assert_eq!(full.word_containment(&first), 1.0);
    }

    #[test]
    fn common_words_and_trailers_are_not_content() {
        let a = evidence("Floods hit the capital. Read more");
        let b = evidence("Floods hit capital, officials said");
        assert_eq!(a.words.len(), 3);
        assert_eq!(a.word_containment(&b), 1.0);
        assert!(evidence("the of and").words.is_empty());
    }

    #[test]
    fn a_first_sentence_has_the_lead_of_its_summary() {
        let summary = evidence(
            "Many mothers are grappling with anxiety as their sons head off to fight. \
             The army has called up 300,000 reservists.",
        );
        let first = evidence("Many mothers are grappling with anxiety as their sons head off.");
        assert!(summary.lead().is_some());
        assert_eq!(summary.lead(), first.lead());
        assert_eq!(evidence("Floods hit the capital.").lead(), None);
    }

    #[test]
    fn words_with_digits_are_words_not_numbers() {
        let a = evidence("The MP3 format and 5G networks");
        assert!(a.numbers.is_empty());
        assert_eq!(a.words.len(), 4);
    }
}
