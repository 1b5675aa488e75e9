//! Liveness, readiness and the Prometheus exposition.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::ApiState;
use super::error::ApiError;
use crate::metrics;

pub const HEALTHZ: &str = "/healthz";

/// How long readiness waits for the database: a server that does not answer at all
/// would otherwise hold the probe for the pool's whole connect timeout.
const READINESS_TIMEOUT: Duration = Duration::from_secs(5);

/// The process is up and serving.
pub async fn healthz() -> &'static str {
    "ok"
}

/// The database answers, and takes herald's writes.
pub async fn readyz(State(state): State<Arc<ApiState>>) -> Result<&'static str, ApiError> {
    match tokio::time::timeout(READINESS_TIMEOUT, state.store.reachable()).await {
        Ok(Ok(())) => match state.store.write_failure() {
            None => Ok("ok"),
            Some(error) => {
                tracing::warn!(%error, "not ready: writes to the database fail");
                Err(ApiError::unavailable(format!(
                    "the database does not take writes: {error}"
                )))
            }
        },
        Ok(Err(error)) => {
            tracing::warn!(%error, "not ready: database unreachable");
            Err(ApiError::unavailable(format!(
                "database unreachable: {error}"
            )))
        }
        Err(_) => {
            tracing::warn!(timeout = ?READINESS_TIMEOUT, "not ready: database did not answer");
            Err(ApiError::unavailable(format!(
                "database did not answer within {}s",
                READINESS_TIMEOUT.as_secs()
            )))
        }
    }
}

pub async fn metrics(State(state): State<Arc<ApiState>>) -> Result<Response, ApiError> {
    match state.metrics.scrape(&state.store).await {
        Ok(text) => Ok(([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response()),
        Err(error) => {
            tracing::warn!(%error, "cannot read metrics");
            Err(ApiError::unavailable(
                "cannot read the database for metrics",
            ))
        }
    }
}
