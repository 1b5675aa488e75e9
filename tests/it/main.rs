//! herald's integration tests: one binary, real databases, a real local feed server.

mod support;

mod alerts;
mod api;
mod architecture;
mod cli;
mod corpus;
mod crash;
mod daemon;
mod faults;
mod fetch;
mod fetch_policy;
mod ingest;
mod properties;
mod redaction;
mod retention;
mod rules;
mod sinks;
mod stories;
mod story_alerts;
