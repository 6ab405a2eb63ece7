//! `GET /metrics`: the Prometheus text format, on the main listener or, with
//! `USERGRAPH_METRICS_LISTEN`, on a listener of its own (so it need not be public).

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::get;

use crate::instruments;
use crate::services::Services;

/// The scrape: gauges read now (pool, queues, revocation set), then everything rendered.
pub async fn metrics(State(services): State<Services>) -> Response {
    services.record_gauges().await;
    let handle = instruments::handle();
    handle.run_upkeep();
    let mut response = Response::new(Body::from(handle.render()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// A router serving `/metrics` alone, for `USERGRAPH_METRICS_LISTEN`.
pub fn router(services: Services) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(services)
}
