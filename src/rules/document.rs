//! What rules are matched against, and the reference evaluator: the plain,
//! obviously-correct reading of the language that the compiled matcher must agree with.

use super::query::{Field, Leaf, LeafKind, RuleQuery, Term};
use super::text::{TextKind, TokenList};

/// The text of one article plus its feed's name/address and tags. Texts are
/// plain: HTML has been reduced to text before it gets here.
#[derive(Debug, Clone, Copy, Default)]
pub struct Document<'a> {
    pub title: &'a str,
    pub summary: &'a str,
    pub content: &'a str,
    pub author: &'a str,
    pub url: &'a str,
    /// The feed's name and URL.
    pub feed: &'a str,
    /// The feed's tags, as configured.
    pub tags: &'a [String],
}

impl<'a> Document<'a> {
    fn text(&self, field: Field) -> &'a str {
        match field {
            Field::Title => self.title,
            Field::Summary => self.summary,
            Field::Content => self.content,
            Field::Author => self.author,
            Field::Url => self.url,
            Field::Feed => self.feed,
            Field::Tag => "",
        }
    }
}

/// A document cut into words once, to evaluate many queries against.
#[derive(Debug, Clone, Default)]
pub struct TokenizedDocument {
    /// One entry per field, and one per tag so that a phrase cannot span two tags.
    /// Entries past `used` are spare buffers kept for the next document.
    sections: Vec<(Field, TokenList)>,
    used: usize,
}

impl TokenizedDocument {
    pub fn new(document: &Document<'_>) -> Self {
        let mut tokens = Self::default();
        tokens.refill(document, u8::MAX);
        tokens
    }

    /// Replaces the words with those of `document`, tokenising only the fields in
    /// the `fields` bit set (no rule may need the others) and reusing the buffers.
    pub(crate) fn refill(&mut self, document: &Document<'_>, fields: u8) {
        self.used = 0;
        for field in Field::ALL {
            if fields & field.bit() == 0 {
                continue;
            }
            if field == Field::Tag {
                for tag in document.tags {
                    self.next_section(field).refill(tag, TextKind::Prose);
                }
            } else {
                let text = document.text(field);
                if !text.is_empty() {
                    self.next_section(field).refill(text, field.text_kind());
                }
            }
        }
    }

    fn next_section(&mut self, field: Field) -> &mut TokenList {
        if self.used == self.sections.len() {
            self.sections.push((field, TokenList::default()));
        }
        let section = &mut self.sections[self.used];
        self.used += 1;
        section.0 = field;
        &mut section.1
    }

    pub(crate) fn sections(&self) -> &[(Field, TokenList)] {
        &self.sections[..self.used]
    }
}

impl RuleQuery {
    /// Whether the query matches the document; for searching and backtesting
    /// one query. To match many rules at once use [`super::Matcher`].
    pub fn matches(&self, document: &Document<'_>) -> bool {
        self.matches_tokenized(&TokenizedDocument::new(document))
    }

    /// Like [`RuleQuery::matches`], reusing a document already cut into words.
    pub fn matches_tokenized(&self, document: &TokenizedDocument) -> bool {
        self.expr
            .eval(&mut |leaf| leaf_matches_reference(leaf, document))
    }
}

/// Tries every position: slow, and simple enough to be read as the definition.
pub(crate) fn leaf_matches_reference(leaf: &Leaf, document: &TokenizedDocument) -> bool {
    let fields = leaf.fields();
    document
        .sections()
        .iter()
        .filter(|(field, _)| fields & field.bit() != 0)
        .any(|(_, tokens)| match &leaf.kind {
            LeafKind::Term(term) => !occurrences(term, tokens).is_empty(),
            LeafKind::Near {
                left,
                right,
                distance,
            } => {
                let rights = occurrences(right, tokens);
                occurrences(left, tokens).into_iter().any(|l| {
                    rights.iter().any(|&r| {
                        words_between(l, left.words.len(), r, right.words.len())
                            .is_some_and(|between| between <= *distance as usize)
                    })
                })
            }
        })
}

fn occurrences(term: &Term, tokens: &TokenList) -> Vec<usize> {
    (0..tokens.len())
        .filter(|&position| term.occurs_at(tokens, position))
        .collect()
}

/// Words strictly between two occurrences, or `None` when they overlap:
/// `a b` are 0 apart, `a x b` 1 apart.
pub(crate) fn words_between(a: usize, a_len: usize, b: usize, b_len: usize) -> Option<usize> {
    if b >= a + a_len {
        Some(b - (a + a_len))
    } else if a >= b + b_len {
        Some(a - (b + b_len))
    } else {
        None
    }
}
