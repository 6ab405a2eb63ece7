//! The request timeout, answered as GraphQL: a JSON error with a code, never an empty 408.

use std::future::Future;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use serde_json::json;

use crate::error::{ErrorCode, Outcome};

/// Awaits the `response`; past `timeout`, answers `SERVICE_UNAVAILABLE` with outcome
/// `UNKNOWN`: the work is abandoned wherever it was, so a change it asked for may have been
/// made. (`request_log` runs every request through it.)
pub async fn within(timeout: Duration, response: impl Future<Output = Response>) -> Response {
    match tokio::time::timeout(timeout, response).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(timeout = ?timeout, "request timed out");
            let body = json!({ "errors": [{
                "message": format!(
                    "the request took longer than {}; a change it asked for may or may not \
                     have been made",
                    humantime::format_duration(timeout)
                ),
                "extensions": {
                    "code": ErrorCode::ServiceUnavailable.as_str(),
                    "outcome": Outcome::Unknown.as_str(),
                },
            }]});
            let mut response = (StatusCode::SERVICE_UNAVAILABLE, body.to_string()).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
    }
}
