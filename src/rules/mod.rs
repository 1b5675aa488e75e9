//! Watch rules (SPEC §4): query language, text normaliser and compiled matcher.
