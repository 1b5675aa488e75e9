//! herald's integration tests: one binary, real databases, a real local feed server.

mod support;

mod alerts;
mod api;
mod architecture;
mod chat_sinks;
mod cli;
mod corpus;
mod counts;
mod crash;
mod daemon;
mod digests;
mod email;
mod faults;
mod feed_management;
mod fetch;
mod fetch_policy;
mod held;
mod ingest;
mod logs;
mod mutes;
mod properties;
mod redaction;
mod retention;
mod rules;
mod schema_docs;
mod search;
mod short_stories;
mod sink_health;
mod sinks;
mod slack_app;
mod stories;
mod story_alerts;
mod templates;
mod throttles;
