//! `GET /uploads/<name>`: avatar files, and nothing else from that directory. Only names
//! the server makes up are looked up; each goes out with its own `image/*` type, never
//! sniffed, cached for a year (a name is never reused), and sandboxed should a browser open
//! it as a document.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};

use super::HttpState;

/// Serves one avatar file.
pub async fn file(State(state): State<HttpState>, Path(name): Path<String>) -> Response {
    match state.services.avatar_file(&name).await {
        Ok(Some((kind, bytes))) => {
            let mut response = Response::new(Body::from(bytes));
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(kind.media_type()),
            );
            headers.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            );
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; sandbox"),
            );
            response
        }
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(error) => {
            tracing::error!(error = %error, "reading an avatar file failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
