//! herald: a news-feed ingestion daemon with alerting.
//!
//! The README's "Architecture" section is the code map: which module owns what, and
//! which modules may not know each other.

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod discover;
pub mod domain;
pub mod fetch;
pub mod ingest;
pub mod manage;
pub mod manual;
pub mod metrics;
pub mod net_policy;
pub mod normalize;
pub mod opml;
pub mod outbox;
pub mod parse;
pub mod retention;
pub mod rules;
pub mod scheduler;
pub mod search;
pub mod sinks;
pub mod store;
pub mod stories;
pub mod telemetry;
pub mod views;
