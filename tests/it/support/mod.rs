//! Fixtures shared by every integration test module.

// Each test module uses a different part of the fixtures.
#![allow(dead_code)]

pub mod feed_server;
