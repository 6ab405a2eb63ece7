//! Liveness and readiness.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::HttpState;

/// How long readiness waits for the database.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether the instance still wants traffic. Shutdown clears it first, so `/ready` answers
/// 503 (and a load balancer moves on) while requests already here finish.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Marks the instance as going away: `/ready` answers 503 from now on.
    pub fn drain(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether shutdown has begun.
    pub(crate) fn draining(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// `GET /health`: 200 while the process serves.
pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /ready`: 200 when the database answers within two seconds, 503 otherwise and once
/// shutdown has begun.
pub async fn ready(State(state): State<HttpState>) -> (StatusCode, Json<Value>) {
    if state.readiness.draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "draining" })),
        );
    }
    let services = &state.services;
    match tokio::time::timeout(READY_TIMEOUT, services.ping_database()).await {
        Ok(Ok(())) => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "database": services.backend() })),
        ),
        Ok(Err(error)) => {
            tracing::warn!(error = %error, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable" })),
            )
        }
        Err(_) => {
            tracing::warn!("readiness check timed out");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable" })),
            )
        }
    }
}
