//! Plain types and pure policy shared by the pipeline stages.
//!
//! Nothing here performs I/O or reads the clock: callers pass `now`.

pub mod address;
pub mod alert;
pub mod article;
pub mod delivery;
pub mod digest;
pub mod entry;
pub mod feed;
pub mod quiet_hours;
pub mod redact;
pub mod retention;
pub mod retry;
pub mod schedule;
pub mod story;
pub mod text;
pub mod transport;
