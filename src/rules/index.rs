//! What a full-text index holds of an article, and which articles it must
//! return for a query: a superset of those the query matches, which the
//! matcher then checks one by one.
//!
//! The index keeps, per article, the set of distinct words of its title,
//! summary and content (the fields an unfielded term searches), as the
//! matcher normalises them. PostgreSQL takes them as they are (lexemes built
//! without a parser). For SQLite's FTS5 each is written as the lower-case hex
//! of its UTF-8 bytes: a plain ASCII word to its tokenizer, which would
//! otherwise split `u.s` or fold what the matcher keeps apart; one word's hex
//! is a prefix of another's exactly when the word is a prefix of the other, so
//! `iran*` stays a prefix query.
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

/// Articles with more distinct words than this, or more bytes of them than
/// [`MAX_INDEXED_BYTES`], are not indexed: they are candidates of every search
/// (PostgreSQL limits a tsvector to 1 MB; a real article has a few hundred to
/// a few thousand words).
pub const MAX_INDEXED_WORDS: usize = 30_000;
pub const MAX_INDEXED_BYTES: usize = 256 * 1024;

/// The index's words of an article's searchable text, space-separated (a word
/// never holds a space); `None` when there are too many to index.
pub fn index_words(title: &str, summary: &str, content: &str) -> Option<String> {
    let mut words = BTreeSet::new();
    for text in [title, summary, content] {
        let tokens = TokenList::new(text);
        for word in tokens.iter() {
            if word.len() <= MAX_INDEXED_WORD_BYTES && !words.contains(word) {
                words.insert(word.to_owned());
            }
        }
    }
    let bytes: usize = words.iter().map(String::len).sum();
    if words.len() > MAX_INDEXED_WORDS || bytes > MAX_INDEXED_BYTES {
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

/// A word as FTS5 stores it: the lower-case hex of its UTF-8 bytes.
pub fn hex(word: &str) -> String {
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
    /// Articles holding the word, or with `prefix` any word starting with it.
    Word {
        word: String,
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

    /// SQLite FTS5 query syntax over hex words (which need no quoting).
    pub fn to_fts5(&self) -> String {
        let mut out = String::new();
        self.write_with(&mut out, &Syntax::Fts5);
        out
    }

    /// PostgreSQL `tsquery` syntax, every lexeme quoted (so that no word is
    /// read as an operator, a weight or a position).
    pub fn to_tsquery(&self) -> String {
        let mut out = String::new();
        self.write_with(&mut out, &Syntax::TsQuery);
        out
    }

    fn write_with(&self, out: &mut String, syntax: &Syntax) {
        let (and, or) = match syntax {
            Syntax::Fts5 => (" AND ", " OR "),
            Syntax::TsQuery => (" & ", " | "),
        };
        let (parts, joiner) = match self {
            IndexQuery::Word { word, prefix } => {
                match syntax {
                    Syntax::Fts5 => {
                        out.push_str(&hex(word));
                        if *prefix {
                            out.push('*');
                        }
                    }
                    Syntax::TsQuery => {
                        out.push('\'');
                        for c in word.chars() {
                            match c {
                                '\'' => out.push_str("''"),
                                '\\' => out.push_str("\\\\"),
                                c => out.push(c),
                            }
                        }
                        out.push('\'');
                        if *prefix {
                            out.push_str(":*");
                        }
                    }
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
            part.write_with(out, syntax);
        }
        out.push(')');
    }
}

enum Syntax {
    Fts5,
    TsQuery,
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
            word: word.clone(),
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
    fn words_are_the_matchers_words() {
        let words = index_words("Iran's talks", "", "TALKS in Tehran, U.S.").unwrap();
        assert_eq!(words, "in iran talks tehran u.s");
        assert_eq!(hex("u.s"), "752e73");
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
            "('iran' | 'iraq')"
        );
        assert_eq!(
            query("\"o'neill\" u.s*").unwrap().to_tsquery(),
            "('o''neill' & 'u.s':*)"
        );
    }

    #[test]
    fn what_the_words_cannot_decide_places_no_condition() {
        assert_eq!(
            query("iran -sport author:smith").unwrap(),
            IndexQuery::Word {
                word: "iran".into(),
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
