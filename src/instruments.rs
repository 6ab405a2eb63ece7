//! Prometheus metrics: the recorder (one per process), the names, and the scrape.
//!
//! Every label has a bounded set of values — routes as the router declares them, GraphQL
//! root fields of the schema (anything else is `other`), error codes, limit names, login
//! outcomes — never an id, an email or an operation's text. Counters end in `_total`,
//! durations are histograms in seconds.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// HTTP requests by route, method and status.
pub const HTTP_REQUESTS: &str = "usergraph_http_requests_total";
/// HTTP request latency by route and method.
pub const HTTP_DURATION: &str = "usergraph_http_request_duration_seconds";
/// GraphQL operations by type, root field and outcome.
pub const OPERATIONS: &str = "usergraph_graphql_operations_total";
/// GraphQL operation duration by type and root field.
pub const OPERATION_DURATION: &str = "usergraph_graphql_operation_duration_seconds";
/// GraphQL errors by `extensions.code`.
pub const ERRORS: &str = "usergraph_graphql_errors_total";
/// Logins by outcome.
pub const LOGINS: &str = "usergraph_logins_total";
/// Emails locked after too many failures.
pub const LOCKOUTS: &str = "usergraph_lockouts_total";
/// Requests or fields refused by a rate limit, by limit.
pub const RATE_LIMITED: &str = "usergraph_rate_limit_refusals_total";
/// Time a password hash took, waiting in the queue included.
pub const HASH_DURATION: &str = "usergraph_password_hash_duration_seconds";
/// Password hashes queued or running.
pub const HASH_QUEUE: &str = "usergraph_password_hash_queue_depth";
/// Pooled database connections by state (`in_use`, `idle`).
pub const POOL_CONNECTIONS: &str = "usergraph_db_pool_connections";
/// The pool's maximum size.
pub const POOL_MAX: &str = "usergraph_db_pool_max_connections";
/// Requests waiting for a pooled connection.
pub const POOL_WAITING: &str = "usergraph_db_pool_waiting";
/// Mail waiting in the outbox.
pub const MAIL_QUEUE: &str = "usergraph_mail_queue_length";
/// Sessions in the revocation set.
pub const REVOKED_SESSIONS: &str = "usergraph_revoked_sessions";
/// Seconds since the revocation set was last reloaded from the database.
pub const REVOCATION_AGE: &str = "usergraph_revocation_reload_age_seconds";
/// Subscription sockets open.
pub const SOCKETS: &str = "usergraph_subscription_sockets";
/// Subscriptions running.
pub const SUBSCRIPTIONS: &str = "usergraph_subscriptions";

/// Histogram buckets for durations, 1 ms to 10 s.
const BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// How often histogram samples are folded into their buckets; until then each is kept.
const UPKEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// The process's recorder, installed on first use (every app a test builds shares it),
/// with the task that folds histogram samples (without it they pile up between scrapes).
/// Call it first from within the runtime.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS)
            .expect("the buckets are not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Another recorder may have been installed first (a test harness): then ours
        // still renders what is recorded through it, and the global one is left alone.
        let _ = metrics::set_global_recorder(recorder);
        let upkeep = handle.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let mut ticks = tokio::time::interval(UPKEEP);
                loop {
                    ticks.tick().await;
                    upkeep.run_upkeep();
                }
            });
        }
        handle
    })
}

/// A route as a label: the router's own templates, nothing a client can vary.
fn route_label(request: &Request) -> &'static str {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    match route {
        Some("/graphql") => "/graphql",
        Some("/graphql/assets/{name}") => "/graphql/assets/{name}",
        Some("/uploads/{name}") => "/uploads/{name}",
        Some("/health") => "/health",
        Some("/ready") => "/ready",
        Some("/metrics") => "/metrics",
        Some("/.well-known/jwks.json") => "/.well-known/jwks.json",
        Some(_) => "other",
        None => "unmatched",
    }
}

/// A status as a label, from a fixed table (no formatting per request).
fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        204 => "204",
        304 => "304",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        408 => "408",
        413 => "413",
        415 => "415",
        429 => "429",
        500 => "500",
        503 => "503",
        _ if status >= 500 => "5xx",
        _ if status >= 400 => "4xx",
        _ => "other",
    }
}

/// Counts and times every request by the route it matched.
pub async fn track_http(request: Request, next: Next) -> Response {
    let route = route_label(&request);
    let method = match *request.method() {
        axum::http::Method::GET => "GET",
        axum::http::Method::POST => "POST",
        axum::http::Method::OPTIONS => "OPTIONS",
        axum::http::Method::HEAD => "HEAD",
        _ => "other",
    };
    let started = Instant::now();
    let response = next.run(request).await;
    let status = status_label(response.status().as_u16());
    metrics::counter!(HTTP_REQUESTS, "route" => route, "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!(HTTP_DURATION, "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    response
}
