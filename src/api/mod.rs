//! The HTTP API: health, readiness, Prometheus metrics, views of articles,
//! feeds, stories, sinks and the alert outbox, rule mutes and sink health, as JSON.
//!
//! The only module that names axum or hyper; `server` holds the connections to the
//! limits `[api]` sets. It reads through the `store`, `search` and `views`
//! like the CLI does, so `/api/v1/*` and `herald … --json` always agree; it never sees
//! a sink's URL. Independent of `app`: whoever holds a [`ApiState`] and a listener can
//! serve it (tests do, on 127.0.0.1:0).

mod auth;
mod error;
mod health;
mod server;
mod v1;

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use tokio::net::TcpListener;

use crate::config::{ApiLimits, FeedSettings, Redactor, Secret};
use crate::metrics::Metrics;
use crate::store::Store;

use self::error::ApiError;

/// What the API serves from.
#[derive(Debug)]
pub struct ApiState {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    /// When set, every route but `/healthz` requires `Authorization: Bearer <token>`.
    pub token: Option<Secret>,
    /// The configured feeds, in configuration order: what `/api/v1/feeds` lists, and
    /// the tags `tag:` queries see. Follows configuration reloads.
    pub feeds: tokio::sync::watch::Receiver<Arc<Vec<FeedSettings>>>,
    /// How URLs are shown (`[fetch] secret_params`); follows configuration reloads.
    pub redactor: tokio::sync::watch::Receiver<Redactor>,
    /// The configured rules' names: those `/api/v1/rules/NAME/mute` accepts.
    /// Follows configuration reloads.
    pub rules: tokio::sync::watch::Receiver<Arc<BTreeSet<String>>>,
    /// The configured sinks' names and types: what `/api/v1/sinks` lists.
    /// Follows configuration reloads.
    pub sinks: tokio::sync::watch::Receiver<Arc<Vec<(String, String)>>>,
    /// `[stories]`, for replaying story decisions (`/api/v1/stories/ID/explain`).
    /// Follows configuration reloads.
    pub stories: tokio::sync::watch::Receiver<crate::stories::StorySettings>,
}

/// Serves the API on `listener`, within `limits`, until `shutdown` resolves, then
/// lets requests in flight finish and returns once every connection has closed.
pub async fn serve(
    listener: TcpListener,
    state: ApiState,
    limits: ApiLimits,
    shutdown: impl Future<Output = ()>,
) {
    let router = router(Arc::new(state), limits.request_timeout);
    server::serve(listener, router, limits, shutdown).await;
}

fn router(state: Arc<ApiState>, request_timeout: Duration) -> Router {
    Router::new()
        .route(health::HEALTHZ, get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/api/v1/articles", get(v1::articles))
        .route("/api/v1/feeds", get(v1::feeds))
        .route("/api/v1/alerts", get(v1::alerts))
        .route("/api/v1/stories", get(v1::stories))
        .route("/api/v1/stories/{id}/explain", get(v1::explain_story))
        .route("/api/v1/rules/muted", get(v1::muted))
        .route(
            "/api/v1/rules/{name}/mute",
            post(v1::mute).delete(v1::unmute),
        )
        .route("/api/v1/sinks", get(v1::sinks))
        .route("/api/v1/sinks/{name}/enable", post(v1::enable_sink))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            auth::require_token,
        ))
        .layer(axum::middleware::from_fn_with_state(
            request_timeout,
            server::time_limit,
        ))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}
