//! Alerts as the sinks receive them: what fired, on what, and the delivery's identity.

use std::sync::Arc;

use chrono::{DateTime, Utc};

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

/// A rule that fired on an article about to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleMatch {
    /// Shared with the rule set: an article matching hundreds of rules costs no
    /// string copies (names, terms and sink lists are reference-counted).
    pub rule: Arc<str>,
    /// The rule's terms found in the article.
    pub matched: Vec<Arc<str>>,
    /// Sinks to deliver the alert to: one outbox row each.
    pub sinks: Arc<[AlertTarget]>,
}

/// A sink a rule's alerts go to, and the digest they wait for there, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertTarget {
    pub sink: String,
    /// The digest schedule's key ([`crate::domain::digest::DigestSchedule::key`]):
    /// the delivery waits, marked with it, for the end of its period.
    pub digest: Option<String>,
}

/// Why a rule hit is recorded but never delivered (no alert storms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suppression {
    /// The article came with the first fetch of its feed.
    BackCatalogue,
    /// The article was published before `alerts.max_age`.
    TooOld,
    /// The rule was muted (`herald rules mute`). Unlike the others, a later
    /// copy of the story alerts once the mute has ended.
    Muted,
}

impl Suppression {
    pub fn as_str(self) -> &'static str {
        match self {
            Suppression::BackCatalogue => "back_catalogue",
            Suppression::TooOld => "too_old",
            Suppression::Muted => "muted",
        }
    }
}

/// A rule hit held back instead of alerting (see [`Suppression`]), as
/// `herald alerts` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldHit {
    pub story_id: i64,
    pub rule: String,
    /// `back_catalogue`, `too_old`, or `unknown` for hits held before
    /// reasons were kept.
    pub reason: String,
    /// When the story began.
    pub at: DateTime<Utc>,
    /// The story's first article.
    pub article_id: i64,
}

impl HeldHit {
    /// `STORY:RULE`: how `herald alerts` shows a held hit and `herald alerts
    /// send` names one.
    pub fn id(&self) -> String {
        format!("{}:{}", self.story_id, self.rule)
    }
}

/// A held hit's id (`STORY:RULE`) as story id and rule.
pub fn parse_held_id(id: &str) -> Option<(i64, &str)> {
    let (story, rule) = id.split_once(':')?;
    let story = story.parse().ok()?;
    (!rule.is_empty()).then_some((story, rule))
}

/// A rule muted until a time (`herald rules mute`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleMute {
    pub rule: String,
    pub until: DateTime<Utc>,
}

impl RuleMute {
    /// When a mute for `duration` from `now` ends, to the second (as it is
    /// shown); `None` when that is past the last representable time.
    pub fn end(now: DateTime<Utc>, duration: std::time::Duration) -> Option<DateTime<Utc>> {
        use chrono::SubsecRound as _;
        let duration = chrono::Duration::from_std(duration).ok()?;
        Some(now.checked_add_signed(duration)?.trunc_subsecs(0))
    }
}
