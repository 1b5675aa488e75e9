#![allow(dead_code)]

pub mod arbitrary_feeds;
pub mod db;
pub mod feed_server;
pub mod herald;
pub mod process;
pub mod receiver;
pub mod smtp;
pub mod waiting;

use std::io::Write;

/// Says that a test checked nothing, and why, past the test harness's output
/// capture (which swallows `eprintln!`): a skip must not read as a silent "ok".
pub fn skipped(test: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "{test}: skipped, {why}");
}
