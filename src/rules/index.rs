//! What a full-text index holds of an article, and which articles it must
//! return for a query: a superset of those the query matches, which the
//! matcher then checks one by one.
//!
//! The index keeps, per article, the set of distinct words of its title,
//! summary and content (the fields an unfielded term searches), each written
//! as the lower-case hex of its UTF-8 bytes. Hex is a plain ASCII word to any
//! index's tokenizer, so the index reads back exactly the words the matcher
//! compares, and one word's hex is a prefix of another's exactly when the word
//! is a prefix of the other: `iran*` stays a prefix query.
//!
//! A query becomes a boolean of words: a phrase needs all its words, a NEAR
//! pair all the words of both sides, AND and OR keep their shape. What the set
//! of words cannot decide (`NOT`, `author:`, `url:`, `feed:`, `tag:`, a word
//! too long to index) places no condition. A query whose every branch places
//! none has no index query and is answered by reading every article.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::query::{Expr, Field, Leaf, LeafKind, Term};
use super::text::TokenList;

/// Longer words are not indexed (PostgreSQL refuses lexemes over 2,046 bytes,
/// and no one searches for such a word); a query term naming one places no
/// condition.
pub const MAX_INDEXED_WORD_BYTES: usize = 240;

/// Articles with more distinct words than this are not indexed: they are
/// candidates of every search (PostgreSQL limits a tsvector to 1 MB; a real
/// article has a few hundred to a few thousand).
pub const MAX_INDEXED_WORDS: usize = 30_000;

/// The index's words of an article's searchable text, space-separated; `None`
/// when there are too many to index.
pub fn index_words(title: &str, summary: &str, content: &str) -> Option<String> {
    let mut words = BTreeSet::new();
    for text in [title, summary, content] {
        let tokens = TokenList::new(text);
        for word in tokens.iter() {
            if word.len() <= MAX_INDEXED_WORD_BYTES {
                words.insert(hex(word));
            }
        }
    }
    if words.len() > MAX_INDEXED_WORDS {
        return None;
    }
    let mut joined = String::with_capacity(words.iter().map(|w| w.len() + 1).sum());
    for word in words {
        if !joined.is_empty() {
            joined.push(' ');
        }
        joined.push_str(&word);
    }
    Some(joined)
}

fn hex(word: &str) -> String {
    let mut out = String::with_capacity(word.len() * 2);
    for byte in word.bytes() {
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// Which articles an index must return for a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexQuery {
    /// Articles holding the word (hex), or with `prefix` any word starting with it.
    Word {
        hex: String,
        prefix: bool,
    },
    All(Vec<IndexQuery>),
    Any(Vec<IndexQuery>),
}

impl IndexQuery {
    /// The candidates of `expr`, or `None` when the index cannot narrow it.
    pub(crate) fn of(expr: &Expr) -> Option<IndexQuery> {
        match expr {
            Expr::Leaf(leaf) => of_leaf(leaf),
            Expr::Not(_) => None,
            Expr::And(items) => {
                let mut parts: Vec<IndexQuery> = items.iter().filter_map(IndexQuery::of).collect();
                match parts.len() {
                    0 => None,
                    1 => parts.pop(),
                    _ => Some(IndexQuery::All(parts)),
                }
            }
            Expr::Or(items) => {
                let mut parts = Vec::with_capacity(items.len());
                for item in items {
                    parts.push(IndexQuery::of(item)?);
                }
                match parts.len() {
                    0 => None,
                    1 => parts.pop(),
                    _ => Some(IndexQuery::Any(parts)),
                }
            }
        }
    }

    /// SQLite FTS5 query syntax.
    pub fn to_fts5(&self) -> String {
        let mut out = String::new();
        self.write_with(&mut out, " AND ", " OR ", "*");
        out
    }

    /// PostgreSQL `tsquery` syntax, lexemes quoted.
    pub fn to_tsquery(&self) -> String {
        let mut out = String::new();
        self.write_with(&mut out, " & ", " | ", ":*");
        out
    }

    fn write_with(&self, out: &mut String, and: &str, or: &str, prefix_mark: &str) {
        let (parts, joiner) = match self {
            IndexQuery::Word { hex, prefix } => {
                // Hex digits need no quoting in FTS5; tsquery lexemes are
                // quoted so that no digit string is read as a weight or position.
                if prefix_mark == ":*" {
                    out.push('\'');
                    out.push_str(hex);
                    out.push('\'');
                } else {
                    out.push_str(hex);
                }
                if *prefix {
                    out.push_str(prefix_mark);
                }
                return;
            }
            IndexQuery::All(parts) => (parts, and),
            IndexQuery::Any(parts) => (parts, or),
        };
        out.push('(');
        for (n, part) in parts.iter().enumerate() {
            if n > 0 {
                out.push_str(joiner);
            }
            part.write_with(out, and, or, prefix_mark);
        }
        out.push(')');
    }
}

fn of_leaf(leaf: &Leaf) -> Option<IndexQuery> {
    let indexed = matches!(
        leaf.field,
        None | Some(Field::Title | Field::Summary | Field::Content)
    );
    if !indexed {
        return None;
    }
    let mut words = Vec::new();
    match &leaf.kind {
        LeafKind::Term(term) => term_words(term, &mut words),
        LeafKind::Near { left, right, .. } => {
            term_words(left, &mut words);
            term_words(right, &mut words);
        }
    }
    match words.len() {
        0 => None,
        1 => words.pop(),
        _ => Some(IndexQuery::All(words)),
    }
}

fn term_words(term: &Term, out: &mut Vec<IndexQuery>) {
    let last = term.words.len().saturating_sub(1);
    for (n, word) in term.words.iter().enumerate() {
        let prefix = term.prefix && n == last;
        // An empty prefix matches every word: no condition.
        if word.is_empty() || word.len() > MAX_INDEXED_WORD_BYTES {
            continue;
        }
        out.push(IndexQuery::Word {
            hex: hex(word),
            prefix,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::RuleQuery;

    fn query(source: &str) -> Option<IndexQuery> {
        IndexQuery::of(&RuleQuery::parse(source).unwrap().expr)
    }

    #[test]
    fn words_are_the_matchers_words_in_hex() {
        let words = index_words("Iran's talks", "", "TALKS in Tehran").unwrap();
        let expected: Vec<String> = ["in", "iran", "talks", "tehran"]
            .iter()
            .map(|w| hex(w))
            .collect();
        assert_eq!(words, expected.join(" "));
    }

    #[test]
    fn a_phrase_needs_its_words_and_a_prefix_stays_a_prefix() {
        assert_eq!(
            query("\"North Korea\" Iran*").unwrap().to_fts5(),
            format!(
                "(({} AND {}) AND {}*)",
                hex("north"),
                hex("korea"),
                hex("iran")
            )
        );
        assert_eq!(
            query("iran OR iraq").unwrap().to_tsquery(),
            format!("('{}' | '{}')", hex("iran"), hex("iraq"))
        );
    }

    #[test]
    fn what_the_words_cannot_decide_places_no_condition() {
        assert_eq!(
            query("iran -sport author:smith").unwrap(),
            IndexQuery::Word {
                hex: hex("iran"),
                prefix: false
            }
        );
        assert_eq!(query("feed:reuters"), None);
        assert_eq!(query("iran OR tag:world"), None);
        assert_eq!(
            query("iran NEAR/3 sanctions").unwrap().to_fts5(),
            format!("({} AND {})", hex("iran"), hex("sanctions"))
        );
    }
}
