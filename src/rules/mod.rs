//! Watch rules: the query language, the text normaliser and the
//! compiled matcher. Pure: no I/O, no clock, no database, and no knowledge of
//! any other herald module — callers hand in plain text and get rule indices back.
//!
//! # Language
//!
//! ```text
//! query   := or
//! or      := and ("OR" and)*
//! and     := unary (["AND"] unary)*         -- juxtaposition means AND
//! unary   := ("NOT" | "-") unary | primary
//! primary := "(" query ")" | FIELD ":" atom | atom [ "NEAR/" N atom ]
//! atom    := WORD | WORD "*" | "\"" PHRASE "\""
//! FIELD   := title | summary | content | author | url | feed | tag
//! ```
//!
//! - Operators (`AND`, `OR`, `NOT`, `NEAR/N`) are upper case only; `and`, `or`,
//!   `not` are searched as words and reported by [`RuleQuery::warnings`], as is
//!   a `*` inside quotes, which word splitting drops (`"North Korea*"` is the
//!   phrase `north korea`; `north-korea*` is the phrase with a prefix).
//!   Precedence, tightest first: `NOT`/`-`, AND, OR; so `a OR b c` is
//!   `a OR (b AND c)`. `-` is NOT only at the start of a word: `al-Qaeda` is a term.
//! - Field names are matched case-insensitively. Any `name:` prefix made of ASCII
//!   letters must be a known field, otherwise the query is rejected (`unknown
//!   field "titel"`): a typo silently searching for the word `titel:iran` would
//!   never fire. To search a word containing a colon, quote it: `"Re:Zero"`.
//!   A prefix that is not all letters (`10:30`) is an ordinary word.
//! - Without a field a term searches title, summary and content. `author:` the
//!   author, `url:` the article URL, `feed:` the feed's name and URL, `tag:` the
//!   feed's tags (words within one tag). In `url:` and `feed:` every ASCII
//!   punctuation mark separates words (in the text and in the query), so
//!   `url:bbc` finds `https://www.bbc.co.uk/…`.
//! - A word that normalises to several words (`al-Qaeda`, `北朝鮮`) is a phrase.
//!   `*` may only end a word; `north-kor*` is the phrase `north` then a word
//!   starting with `kor`. `NEAR/N` is between two unfielded words or phrases,
//!   N ≤ [`MAX_NEAR_DISTANCE`].
//! - **A query that would match an article with no words is rejected**
//!   ([`QueryError::NoRequiredTerm`]): `-sport`, `a OR -b`, `NOT (a -a)`. Such a
//!   query fires on almost every article, which is never what a watch rule wants,
//!   and rejecting it lets the matcher skip every rule none of whose positive terms
//!   occur (proof in `matcher.rs`). `iran -sport` and `a (b OR -c)` are fine.
//! - Errors name a 1-based character column: the offending token, or one past the
//!   end when the query stopped early (`expected term after AND at column 19`).
//!
//! # Words
//!
//! Texts and query terms go through the same normaliser ([`TokenList`]): NFKC,
//! lower case (`char::to_lowercase` per character, plus final `ς` → `σ`; not full
//! case folding, so `ß` stays `ß`), diacritics removed (canonical decomposition,
//! then marks with a non-zero combining class are dropped: Latin accents, Arabic
//! harakat, Hebrew points; kana voicing marks are kept since `が` ≠ `か`), soft
//! hyphens, zero-width joiners and Arabic tatweel dropped, typographic quotes and
//! dashes mapped to ASCII. Then Unicode word boundaries (UAX #29) split words:
//! `U.S.` → `u.s`, `1,000` stays one word. A trailing `'s`/`’s` is removed, so
//! `Iran's` is `iran`; `Iran` does not match `Iranian`, `Iran*` does.
//!
//! For scripts written without spaces UAX #29 makes every Han ideograph, every
//! hiragana and every Thai character a word of its own, and a run of katakana one
//! word. A query term in these scripts is therefore a phrase of characters
//! (`北朝鮮` is `北 朝 鮮`) and matches wherever those characters stand together,
//! including inside a longer compound: substring semantics, which is the useful
//! one for scripts without word separators.
//!
//! # Positions and NEAR
//!
//! Words are numbered per field (and per tag), so a phrase or a NEAR pair never
//! spans two fields. `A NEAR/N B` matches when occurrences of A and B, in either
//! order and not overlapping, have at most N words strictly between them:
//! `iran sanctions` are 0 apart, `iran x x x x x sanctions` are 5 apart and match
//! `NEAR/5` but not `NEAR/4`. For phrases, count from the end of the first to the
//! start of the second.

mod document;
mod index;
mod matcher;
mod query;
mod text;

pub use document::{Document, TokenizedDocument};
pub use index::{IndexQuery, MAX_INDEXED_BYTES, MAX_INDEXED_WORDS, hex as hex_word, index_words};
pub use matcher::{Hit, HitIter, Hits, Matcher, Rule, RuleHit};
pub use query::{
    Field, MAX_NEAR_DISTANCE, MAX_NESTING, QueryError, QueryWarning, RuleQuery, WarningKind,
};
pub use text::{TokenList, normalize_terms};

#[cfg(test)]
mod tests;
