//! HTTP only: conditional GET, body and redirect limits, per-host and global concurrency.
//!
//! Returns a [`FetchOutcome`]; never parses, never stores.
