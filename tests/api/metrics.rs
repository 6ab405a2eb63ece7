//! `/metrics`: every series moves when what it counts happens, labels stay bounded, and
//! `USERGRAPH_METRICS_LISTEN` takes the route off the public listener. (The recorder is one
//! per process and tests run in parallel: these check that series appear, not their counts.)

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;

use crate::both_backends;
use crate::helpers::{Backend, PASSWORD, TestApp, error_code};

both_backends!(
    the_scrape_shows_what_happened_with_bounded_labels,
    a_metrics_listener_of_its_own_takes_the_route_off_the_api,
);

const LOGIN: &str = "mutation($e: String!, $p: String!) { login(input: { email: $e, password: $p }) { accessToken } }";

async fn scrape(app: &TestApp) -> (StatusCode, String, String) {
    let (status, headers, body) = app
        .send(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    let kind = headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, kind, String::from_utf8(body).unwrap())
}

/// Whether a sample of `name` has every label of `labels`.
fn has(text: &str, name: &str, labels: &[(&str, &str)]) -> bool {
    text.lines().any(|line| {
        line.starts_with(&format!("{name}{{")) || line.starts_with(&format!("{name} "))
    } && labels
        .iter()
        .all(|(k, v)| line.contains(&format!("{k}=\"{v}\""))))
}

async fn the_scrape_shows_what_happened_with_bounded_labels(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &["--rate-limits", "login.ip_account=2/1h"]).await
    else {
        return;
    };
    app.register("metered@example.com").await;
    let login = |email: &str, password: &str| json!({ "query": LOGIN, "variables": { "e": email, "p": password } });
    app.post_from("198.51.100.80", &[], login("metered@example.com", PASSWORD))
        .await;
    app.post_from(
        "198.51.100.80",
        &[],
        login("metered@example.com", "not the password at all"),
    )
    .await;
    let (_, _, limited) = app
        .post_from("198.51.100.80", &[], login("metered@example.com", PASSWORD))
        .await;
    assert_eq!(error_code(&limited), "RATE_LIMITED");
    // Five failures from five addresses lock an email.
    for n in 0..5 {
        app.post_from(
            &format!("198.51.100.{}", 90 + n),
            &[],
            login("locked@example.com", "wrong wrong wrong wrong"),
        )
        .await;
    }
    // An invented field under a made-up operation name.
    let (_, _, invented) = app
        .post_from(
            "198.51.100.81",
            &[],
            json!({ "query": "query SecretOperationName { secretField }" }),
        )
        .await;
    assert_eq!(error_code(&invented), "BAD_USER_INPUT");

    let (status, kind, text) = scrape(&app).await;
    assert_eq!(status, StatusCode::OK);
    assert!(kind.starts_with("text/plain"), "{kind}");
    let expected: &[(&str, &[(&str, &str)])] = &[
        (
            "usergraph_http_requests_total",
            &[("route", "/graphql"), ("method", "POST"), ("status", "200")],
        ),
        (
            "usergraph_http_request_duration_seconds_bucket",
            &[("route", "/graphql")],
        ),
        (
            "usergraph_graphql_operations_total",
            &[("type", "mutation"), ("field", "login"), ("outcome", "ok")],
        ),
        (
            "usergraph_graphql_operations_total",
            &[("type", "query"), ("field", "other"), ("outcome", "error")],
        ),
        (
            "usergraph_graphql_operation_duration_seconds_bucket",
            &[("field", "register")],
        ),
        (
            "usergraph_graphql_errors_total",
            &[("code", "BAD_USER_INPUT")],
        ),
        (
            "usergraph_graphql_errors_total",
            &[("code", "RATE_LIMITED")],
        ),
        ("usergraph_logins_total", &[("outcome", "success")]),
        ("usergraph_logins_total", &[("outcome", "refused")]),
        ("usergraph_logins_total", &[("outcome", "rate_limited")]),
        ("usergraph_lockouts_total", &[]),
        (
            "usergraph_rate_limit_refusals_total",
            &[("limit", "login.ip_account")],
        ),
        ("usergraph_password_hash_duration_seconds_bucket", &[]),
        ("usergraph_password_hash_queue_depth", &[]),
        ("usergraph_db_pool_max_connections", &[]),
        ("usergraph_db_pool_connections", &[("state", "idle")]),
        ("usergraph_db_pool_connections", &[("state", "in_use")]),
        ("usergraph_db_pool_waiting", &[]),
        ("usergraph_mail_queue_length", &[]),
        ("usergraph_revoked_sessions", &[]),
        ("usergraph_revocation_reload_age_seconds", &[]),
        ("usergraph_subscription_sockets", &[]),
        ("usergraph_subscriptions", &[]),
    ];
    for (name, labels) in expected {
        assert!(has(&text, name, labels), "no {name} {labels:?} in\n{text}");
    }
    for leak in [
        "SecretOperationName",
        "secretField",
        "metered@example.com",
        "198.51.100",
    ] {
        assert!(!text.contains(leak), "{leak} in a label");
    }
}

async fn a_metrics_listener_of_its_own_takes_the_route_off_the_api(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &["--metrics-listen", "127.0.0.1:9"]).await else {
        return;
    };
    let (status, _, _) = scrape(&app).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
