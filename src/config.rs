//! `herald.toml` → validated [`Settings`] (SPEC §2).
