//! `/api/v1/*`: what `herald search`, `herald feeds`, `herald stories` and `herald alerts` print with
//! `--json`, as JSON arrays in the same shapes and order.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ApiState;
use super::error::ApiError;
use crate::domain::alert::RuleMute;
use crate::domain::article::{Article, ArticleCursor};
use crate::domain::story::StoryRecord;
use crate::rules::{Rule, RuleQuery};
use crate::search::{self, Scan};
use crate::views::{self, AlertFilter, FeedView, OutboxEntry, SinkView};

/// `herald search`'s defaults.
const DEFAULT_SINCE: &str = "7d";
const DEFAULT_ARTICLES: usize = 20;
/// `herald stories`'s defaults.
const DEFAULT_STORIES_SINCE: &str = "1d";
const DEFAULT_STORIES: usize = 50;
/// `herald alerts`'s default.
const DEFAULT_ALERTS: usize = 50;
/// The most items one request returns: bounds the work and the response of a
/// mistyped `limit`.
const MAX_LIMIT: usize = 1000;

#[derive(Debug, Deserialize)]
pub struct ArticlesQuery {
    q: Option<String>,
    since: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// Stored articles matching a rule query, newest first (`herald search`), a
/// page of `limit` at a time. A full page names the next in a `Link` header
/// (`rel="next"`) and its `cursor` in `Herald-Next-Cursor`; the cursor is the
/// page's last article, so pages neither repeat nor skip an article when
/// others are stored between two requests.
pub async fn articles(
    State(state): State<Arc<ApiState>>,
    query: Result<Query<ArticlesQuery>, QueryRejection>,
) -> Result<(HeaderMap, Json<Vec<Article>>), ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let text = query
        .q
        .ok_or_else(|| ApiError::bad_request("missing q, a query in the rule language"))?;
    let parsed = RuleQuery::parse(&text).map_err(|e| ApiError::bad_request(format!("q: {e}")))?;
    let rule = Rule {
        name: "query".to_owned(),
        query: parsed,
        tags: Vec::new(),
    };
    let after = match query.cursor.as_deref() {
        None | Some("") => None,
        Some(token) => Some(ArticleCursor::from_token(token).ok_or_else(|| {
            ApiError::bad_request(format!(
                "cursor: {token:?} is not a cursor this API gave (Herald-Next-Cursor)"
            ))
        })?),
    };
    let page = limit(query.limit.as_deref(), DEFAULT_ARTICLES)?;
    let scan = Scan {
        since: since(query.since.as_deref().unwrap_or(DEFAULT_SINCE))?,
        limit: Some(page),
        after,
    };
    let records = state
        .store
        .feeds()
        .await
        .map_err(|e| ApiError::database("reading feeds", &e))?;
    let configured = state.feeds.borrow().clone();
    let feeds = search::feed_infos(records, &configured);
    let matches = search::matching_articles(&state.store, rule, &feeds, scan, || {})
        .await
        .map_err(|e| ApiError::database("searching articles", &e))?;
    let mut headers = HeaderMap::new();
    if let Some(last) = matches.last().filter(|_| matches.len() == page) {
        let token = last.cursor.token();
        let mut next = url::form_urlencoded::Serializer::new(String::new());
        next.append_pair("q", &text);
        if let Some(since) = &query.since {
            next.append_pair("since", since);
        }
        next.append_pair("limit", &page.to_string());
        next.append_pair("cursor", &token);
        let link = format!("</api/v1/articles?{}>; rel=\"next\"", next.finish());
        // Both are ASCII (the query is percent-encoded), so always valid.
        if let (Ok(link), Ok(token)) = (HeaderValue::from_str(&link), HeaderValue::from_str(&token))
        {
            headers.insert(header::LINK, link);
            headers.insert("herald-next-cursor", token);
        }
    }
    let redactor = state.redactor.borrow().clone();
    let mut articles = Vec::with_capacity(matches.len());
    for found in matches {
        let article = state
            .store
            .article(found.article_id)
            .await
            .map_err(|e| ApiError::database("reading articles", &e))?;
        // Deleted between the match and now: gone, as `herald search` skips it.
        articles.extend(article.map(|article| article.redacted(&redactor)));
    }
    Ok((headers, Json(articles)))
}

/// The configured feeds' health, in configuration order (`herald feeds`).
pub async fn feeds(State(state): State<Arc<ApiState>>) -> Result<Json<Vec<FeedView>>, ApiError> {
    let mut records = state
        .store
        .feeds()
        .await
        .map_err(|e| ApiError::database("reading feeds", &e))?;
    let configured_feeds = state.feeds.borrow().clone();
    let redactor = state.redactor.borrow().clone();
    let mut feeds = Vec::with_capacity(configured_feeds.len());
    for configured in configured_feeds.iter() {
        let url = configured.url.as_str();
        if let Some(at) = records.iter().position(|record| record.url == url) {
            feeds.push(FeedView::new(records.swap_remove(at), &redactor));
        }
    }
    Ok(Json(feeds))
}

#[derive(Debug, Deserialize)]
pub struct AlertsQuery {
    status: Option<String>,
    limit: Option<String>,
}

/// The alert outbox and the hits held back, newest first (`herald alerts`).
pub async fn alerts(
    State(state): State<Arc<ApiState>>,
    query: Result<Query<AlertsQuery>, QueryRejection>,
) -> Result<Json<Vec<OutboxEntry>>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let filter = match query.status.as_deref() {
        None | Some("") => AlertFilter::All,
        Some(text) => AlertFilter::parse(text).ok_or_else(|| {
            ApiError::bad_request(format!(
                "status: unknown status {text:?}, expected pending, delivered, failed, dead or held"
            ))
        })?,
    };
    let limit = limit(query.limit.as_deref(), DEFAULT_ALERTS)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let redactor = state.redactor.borrow().clone();
    let alerts = views::alerts(&state.store, filter, limit, &redactor)
        .await
        .map_err(|e| ApiError::database("reading the outbox", &e))?;
    Ok(Json(alerts))
}

#[derive(Debug, Deserialize)]
pub struct StoriesQuery {
    since: Option<String>,
    min_outlets: Option<String>,
    limit: Option<String>,
}

/// Recent stories with the outlets that carried them, newest first (`herald stories`).
pub async fn stories(
    State(state): State<Arc<ApiState>>,
    query: Result<Query<StoriesQuery>, QueryRejection>,
) -> Result<Json<Vec<StoryRecord>>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let since = since(query.since.as_deref().unwrap_or(DEFAULT_STORIES_SINCE))?;
    let min_outlets = match query.min_outlets.as_deref() {
        None | Some("") => 1,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                ApiError::bad_request("min_outlets: expected a whole number of at least 1")
            })?,
    };
    let limit = limit(query.limit.as_deref(), DEFAULT_STORIES)?;
    let stories = state
        .store
        .stories(since, min_outlets, i64::try_from(limit).unwrap_or(i64::MAX))
        .await
        .map_err(|e| ApiError::database("reading stories", &e))?;
    let redactor = state.redactor.borrow().clone();
    let stories = stories
        .into_iter()
        .map(|story| views::story(story, &redactor))
        .collect();
    Ok(Json(stories))
}

/// The start of a `since` window such as `7d` or `90m`, back from now.
fn since(text: &str) -> Result<DateTime<Utc>, ApiError> {
    let span = humantime::parse_duration(text)
        .map_err(|e| ApiError::bad_request(format!("since: {e} (expected e.g. 90s, 15m, 7d)")))?;
    chrono::Duration::from_std(span)
        .ok()
        .and_then(|span| Utc::now().checked_sub_signed(span))
        .ok_or_else(|| ApiError::bad_request("since: too far back"))
}

fn limit(text: Option<&str>, default: usize) -> Result<usize, ApiError> {
    let Some(text) = text else {
        return Ok(default);
    };
    text.parse::<usize>()
        .ok()
        .filter(|limit| *limit <= MAX_LIMIT)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "limit: expected a whole number from 0 to {MAX_LIMIT}"
            ))
        })
}

#[derive(Debug, Deserialize)]
pub struct MuteRequest {
    /// How long, e.g. `2h`.
    #[serde(rename = "for")]
    duration: String,
}

/// What a mute request did.
#[derive(Debug, Serialize)]
pub struct MuteAnswer {
    rule: String,
    /// The mute's end; `null` once unmuted.
    until: Option<DateTime<Utc>>,
    /// For an unmute: whether the rule was muted.
    #[serde(skip_serializing_if = "Option::is_none")]
    was_muted: Option<bool>,
}

/// A change to rules needs the token: an API without one is read-only.
fn may_change_rules(state: &ApiState, name: &str) -> Result<(), ApiError> {
    if state.token.is_none() {
        return Err(ApiError::forbidden(
            "the API is read-only without a token: set [api] token to mute rules through it",
        ));
    }
    if !state.rules.borrow().contains(name) {
        return Err(ApiError::not_found(format!("no rule named {name:?}")));
    }
    Ok(())
}

/// `POST /api/v1/rules/NAME/mute` with `{"for": "2h"}`: `herald rules mute`.
pub async fn mute(
    State(state): State<Arc<ApiState>>,
    Path(name): Path<String>,
    body: Result<Json<MuteRequest>, JsonRejection>,
) -> Result<Json<MuteAnswer>, ApiError> {
    may_change_rules(&state, &name)?;
    let Json(body) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let duration = humantime::parse_duration(&body.duration)
        .map_err(|e| ApiError::bad_request(format!("for: {e} (expected e.g. 30m, 2h)")))?;
    let now = Utc::now();
    let until =
        RuleMute::end(now, duration).ok_or_else(|| ApiError::bad_request("for: too long"))?;
    state
        .store
        .mute_rule(&name, until, now)
        .await
        .map_err(|e| ApiError::database("muting a rule", &e))?;
    Ok(Json(MuteAnswer {
        rule: name,
        until: Some(until),
        was_muted: None,
    }))
}

/// `DELETE /api/v1/rules/NAME/mute`: `herald rules unmute`.
pub async fn unmute(
    State(state): State<Arc<ApiState>>,
    Path(name): Path<String>,
) -> Result<Json<MuteAnswer>, ApiError> {
    may_change_rules(&state, &name)?;
    let was_muted = state
        .store
        .unmute_rule(&name)
        .await
        .map_err(|e| ApiError::database("unmuting a rule", &e))?;
    Ok(Json(MuteAnswer {
        rule: name,
        until: None,
        was_muted: Some(was_muted),
    }))
}

/// `GET /api/v1/rules/muted`: `herald rules muted --json`.
pub async fn muted(State(state): State<Arc<ApiState>>) -> Result<Json<Vec<RuleMute>>, ApiError> {
    let mutes = state
        .store
        .rule_mutes(Utc::now())
        .await
        .map_err(|e| ApiError::database("reading rule mutes", &e))?;
    Ok(Json(mutes))
}

/// `GET /api/v1/sinks`: `herald sinks --json`, as a JSON array.
pub async fn sinks(State(state): State<Arc<ApiState>>) -> Result<Json<Vec<SinkView>>, ApiError> {
    let configured = Arc::clone(&state.sinks.borrow());
    let sinks = views::sinks(&state.store, &configured)
        .await
        .map_err(|e| ApiError::database("reading sink health", &e))?;
    Ok(Json(sinks))
}

/// What enabling a sink did.
#[derive(Debug, Serialize)]
pub struct EnableAnswer {
    sink: String,
    was_broken: bool,
}

#[derive(Debug, Deserialize)]
pub struct ExplainQuery {
    candidates: Option<String>,
}

/// `GET /api/v1/stories/ID/explain[?candidates=true]`: `herald stories
/// --explain ID [--candidates] --json`.
pub async fn explain_story(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    query: Result<Query<ExplainQuery>, QueryRejection>,
) -> Result<Json<views::StoryExplanation>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request("story id: expected a whole number"))?;
    let candidates = match query.candidates.as_deref() {
        None | Some("" | "false" | "0") => false,
        Some("true" | "1") => true,
        Some(_) => return Err(ApiError::bad_request("candidates: expected true or false")),
    };
    let settings = *state.stories.borrow();
    let redactor = state.redactor.borrow().clone();
    let explanation = views::story_explanation(&state.store, &settings, id, candidates, &redactor)
        .await
        .map_err(|e| ApiError::database("reading the story's fingerprints", &e))?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "story {id}: no such story, or its articles have no text to compare"
            ))
        })?;
    Ok(Json(explanation))
}

/// `POST /api/v1/sinks/NAME/enable`: `herald sinks enable NAME`.
pub async fn enable_sink(
    State(state): State<Arc<ApiState>>,
    Path(name): Path<String>,
) -> Result<Json<EnableAnswer>, ApiError> {
    if state.token.is_none() {
        return Err(ApiError::forbidden(
            "the API is read-only without a token: set [api] token to enable sinks through it",
        ));
    }
    if !state.sinks.borrow().iter().any(|(sink, _)| *sink == name) {
        return Err(ApiError::not_found(format!("no sink named {name:?}")));
    }
    let was_broken = state
        .store
        .enable_sink(&name, Utc::now())
        .await
        .map_err(|e| ApiError::database("enabling a sink", &e))?;
    Ok(Json(EnableAnswer {
        sink: name,
        was_broken,
    }))
}
