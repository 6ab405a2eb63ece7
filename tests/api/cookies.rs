//! Cookie mode for browser apps: the refresh token in an `HttpOnly` cookie, never in a body;
//! cookie-carrying requests held to the CSRF rules; CORS with credentials for listed origins.

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use clap::Parser as _;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, PASSWORD, TestApp, error_code};

both_backends!(
    the_refresh_token_lives_in_an_http_only_cookie,
    cookie_carrying_requests_need_the_csrf_header_and_json,
    cors_allows_credentials_for_listed_origins_only,
);

const APP: &str = "https://app.example.com";
const COOKIE: &str = "__Secure-usergraph-refresh";

const COOKIE_MODE: [&str; 4] = ["--refresh-cookie", "true", "--cors-origins", APP];

async fn post(
    app: &TestApp,
    headers: &[(&str, &str)],
    body: Value,
) -> (StatusCode, HeaderMap, Value) {
    app.post_from("198.51.100.70", headers, body).await
}

/// The cookie's value and attributes from a `Set-Cookie` header.
fn set_cookie(headers: &HeaderMap) -> (String, String) {
    let line = headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(COOKIE))
        .unwrap_or_else(|| panic!("no {COOKIE} cookie in {headers:?}"))
        .to_owned();
    let (pair, attributes) = line.split_once(';').unwrap_or((&line, ""));
    let value = pair
        .split_once('=')
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default();
    (value, attributes.to_owned())
}

fn with_cookie(token: &str) -> String {
    format!("{COOKIE}={token}")
}

const LOGIN: &str = "mutation($e: String!, $p: String!) { login(input: { email: $e, password: $p }) { accessToken refreshToken } }";
const REFRESH: &str = "mutation { refreshToken(refreshToken: \"\") { accessToken refreshToken } }";

async fn the_refresh_token_lives_in_an_http_only_cookie(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &COOKIE_MODE).await else {
        return;
    };
    app.register("cookie@example.com").await;
    let (status, headers, login) = post(
        &app,
        &[],
        json!({ "query": LOGIN, "variables": { "e": "cookie@example.com", "p": PASSWORD } }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{login}");
    assert_eq!(
        login["data"]["login"]["refreshToken"], "",
        "never in the body: {login}"
    );
    let (token, attributes) = set_cookie(&headers);
    assert!(token.starts_with("ugr_"), "{token}");
    for attribute in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/graphql",
        "Max-Age=604800",
    ] {
        assert!(attributes.contains(attribute), "{attribute}: {attributes}");
    }
    // Refreshing with the cookie rotates it.
    let cookie = with_cookie(&token);
    let csrf = [("cookie", cookie.as_str()), ("x-usergraph-csrf", "1")];
    let (_, headers, refreshed) = post(&app, &csrf, json!({ "query": REFRESH })).await;
    let access = refreshed["data"]["refreshToken"]["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("{refreshed}"));
    assert_eq!(refreshed["data"]["refreshToken"]["refreshToken"], "");
    let (next, _) = set_cookie(&headers);
    assert_ne!(next, token);
    let me = app.gql("{ me { email } }", json!({}), Some(access)).await;
    assert_eq!(me["data"]["me"]["email"], "cookie@example.com");
    // Logging out with the cookie ends the session and drops the cookie.
    let next_cookie = with_cookie(&next);
    let csrf = [("cookie", next_cookie.as_str()), ("x-usergraph-csrf", "1")];
    let (_, headers, logout) = post(
        &app,
        &csrf,
        json!({ "query": "mutation { logout(refreshToken: \"\") }" }),
    )
    .await;
    assert_eq!(logout["data"]["logout"], true, "{logout}");
    let (cleared, attributes) = set_cookie(&headers);
    assert_eq!(cleared, "");
    assert!(attributes.contains("Max-Age=0"), "{attributes}");
    let (_, _, again) = post(&app, &csrf, json!({ "query": REFRESH })).await;
    assert_eq!(error_code(&again), "UNAUTHENTICATED", "{again}");
    // Without a cookie, an empty argument is just an invalid token.
    let (_, _, none) = post(&app, &[], json!({ "query": REFRESH })).await;
    assert_eq!(error_code(&none), "UNAUTHENTICATED", "{none}");
}

async fn cookie_carrying_requests_need_the_csrf_header_and_json(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &COOKIE_MODE).await else {
        return;
    };
    let registered = app.register("csrf@example.com").await;
    assert_eq!(registered["refreshToken"], "");
    let (_, headers, _) = post(
        &app,
        &[],
        json!({ "query": LOGIN, "variables": { "e": "csrf@example.com", "p": PASSWORD } }),
    )
    .await;
    let (token, _) = set_cookie(&headers);
    let cookie = with_cookie(&token);
    // No custom header: refused before anything runs, whatever the operation.
    for query in [REFRESH, "{ __typename }"] {
        let (status, _, refused) =
            post(&app, &[("cookie", &cookie)], json!({ "query": query })).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
        assert_eq!(error_code(&refused), "FORBIDDEN");
    }
    // A form post (a simple request a foreign page can send) is refused even with the header.
    let form = Request::post("/graphql")
        .header("content-type", "text/plain")
        .header("cookie", &cookie)
        .header("x-usergraph-csrf", "1")
        .body(Body::from(json!({ "query": REFRESH }).to_string()))
        .unwrap();
    let (status, _, _) = app.send(form).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The token survived all that: the real app refreshes with it.
    let csrf = [("cookie", cookie.as_str()), ("x-usergraph-csrf", "1")];
    let (_, _, refreshed) = post(&app, &csrf, json!({ "query": REFRESH })).await;
    assert!(
        refreshed["data"]["refreshToken"]["accessToken"].is_string(),
        "{refreshed}"
    );
}

async fn cors_allows_credentials_for_listed_origins_only(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &COOKIE_MODE).await else {
        return;
    };
    let preflight = |origin: &str| {
        Request::options("/graphql")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,x-usergraph-csrf",
            )
            .body(Body::empty())
            .unwrap()
    };
    let (_, headers, _) = app.send(preflight(APP)).await;
    assert_eq!(headers["access-control-allow-origin"], APP);
    assert_eq!(headers["access-control-allow-credentials"], "true");
    let allowed = headers["access-control-allow-headers"].to_str().unwrap();
    assert!(allowed.contains("x-usergraph-csrf"), "{allowed}");
    let (_, headers, _) = app.send(preflight("https://evil.example.net")).await;
    assert!(
        headers.get("access-control-allow-origin").is_none(),
        "{headers:?}"
    );

    // A wildcard origin with cookie mode does not start.
    let config = usergraph::config::Cli::try_parse_from([
        "usergraph",
        "--data-dir",
        &app.data_dir().display().to_string(),
        "--refresh-cookie",
        "true",
        "--cors-origins",
        "*",
    ])
    .unwrap()
    .config;
    let error = usergraph::build(config).await.err().expect("refused");
    assert!(
        format!("{error:#}").contains("USERGRAPH_CORS_ORIGINS"),
        "{error:#}"
    );
}
