pub mod db;
pub mod herald;
