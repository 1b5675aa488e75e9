//! Watch rules (SPEC §4): query language, text normaliser and compiled matcher.

mod text;

pub use text::{TokenList, normalize_terms};
