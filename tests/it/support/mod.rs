#![allow(dead_code)]

pub mod arbitrary_feeds;
pub mod db;
pub mod feed_server;
pub mod herald;
pub mod process;
pub mod receiver;
pub mod waiting;
