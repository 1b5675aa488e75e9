//! Alerts as the sinks receive them: what fired, on what, and the delivery's identity.

use serde::Serialize;

use super::article::{Article, ArticleSource};

/// The rule that fired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FiredRule {
    pub name: String,
    pub query: String,
}

/// One delivery of one alert to one sink: everything a sink needs to build its payload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertMessage {
    /// Stable across retries and restarts, so receivers can drop repeats
    /// (`X-Herald-Delivery`, `delivery_id`).
    pub delivery_id: String,
    pub alert_id: i64,
    pub rule: FiredRule,
    pub article: Article,
    /// The rule's terms found in the article, as normalised words or phrases.
    pub matched: Vec<String>,
    /// The other feeds that had carried the article's story (it or its reprints)
    /// when the delivery was sent; empty when the credited feed is the only one.
    pub also_reported_by: Vec<ArticleSource>,
}
