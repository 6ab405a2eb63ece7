//! Rate limits, tried as an attacker would: a login flood and a password spray from one
//! address, aliases and batches, a client over its traffic limit; shared between instances
//! through the database and through Redis; the client address behind trusted proxies.

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, PASSWORD, TestApp, error_code};

both_backends!(
    a_login_flood_from_one_address_is_refused_while_its_owner_logs_in_elsewhere,
    a_password_spray_from_one_address_is_refused_while_others_log_in,
    every_alias_and_every_operation_of_a_batch_is_counted,
    the_traffic_limit_refuses_whole_requests_with_rate_limit_headers,
    database_buckets_are_shared_by_instances_and_memory_ones_are_not,
    limits_can_be_turned_off,
    trusted_proxies_name_the_client,
);

const LOGIN: &str = "mutation($e: String!, $p: String!) { login(input: { email: $e, password: $p }) { accessToken } }";

async fn login_from(app: &TestApp, ip: &str, email: &str, password: &str) -> (HeaderMap, Value) {
    let (status, headers, answer) = app
        .post_from(
            ip,
            &[],
            json!({ "query": LOGIN, "variables": { "e": email, "p": password } }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    (headers, answer)
}

fn limit(answer: &Value) -> &str {
    answer["errors"][0]["extensions"]["limit"]
        .as_str()
        .unwrap_or_else(|| panic!("no limit named: {answer}"))
}

fn retry_after(answer: &Value) -> u64 {
    answer["errors"][0]["extensions"]["retryAfter"]
        .as_u64()
        .unwrap_or_else(|| panic!("no retryAfter: {answer}"))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header in {headers:?}"))
}

async fn a_login_flood_from_one_address_is_refused_while_its_owner_logs_in_elsewhere(
    backend: Backend,
) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.register("owner@example.com").await;
    // The defaults: ten logins to one account from one address in five minutes.
    for n in 1..=10 {
        let (_, answer) = login_from(&app, "198.51.100.1", "owner@example.com", PASSWORD).await;
        assert!(
            answer["data"]["login"]["accessToken"].is_string(),
            "login {n}: {answer}"
        );
    }
    let (headers, refused) = login_from(&app, "198.51.100.1", "owner@example.com", PASSWORD).await;
    assert_eq!(error_code(&refused), "RATE_LIMITED", "{refused}");
    assert_eq!(limit(&refused), "login.ip_account");
    let wait = retry_after(&refused);
    assert!((1..=30).contains(&wait), "one cell every 30 s: {wait}");
    // The whole operation was refused: the answer says when to come back.
    assert_eq!(header(&headers, "retry-after"), wait.to_string());
    assert_eq!(
        header(&headers, "ratelimit-policy"),
        "\"login.ip_account\";q=10;w=300"
    );
    assert_eq!(
        header(&headers, "ratelimit"),
        format!("\"login.ip_account\";r=0;t={wait}")
    );
    // The flood locked nothing: the owner logs in from another address.
    let (_, elsewhere) = login_from(&app, "203.0.113.5", "owner@example.com", PASSWORD).await;
    assert!(
        elsewhere["data"]["login"]["accessToken"].is_string(),
        "{elsewhere}"
    );
}

async fn a_password_spray_from_one_address_is_refused_while_others_log_in(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.register("bystander@example.com").await;
    // The defaults: sixty logins from one address a minute, whatever the accounts: sixty
    // at once, then one a second (a slow machine's attempts may earn a few more).
    let started = std::time::Instant::now();
    let mut attempts = 0;
    let refused = loop {
        let email = format!("victim{attempts}@example.com");
        let (_, answer) = login_from(&app, "198.51.100.2", &email, "Summer2026!Summer2026!").await;
        attempts += 1;
        if error_code(&answer) == "RATE_LIMITED" {
            break answer;
        }
        assert_eq!(
            error_code(&answer),
            "UNAUTHENTICATED",
            "attempt {attempts}: {answer}"
        );
        let earned = usize::try_from(started.elapsed().as_secs()).unwrap();
        assert!(
            attempts <= 60 + earned + 1,
            "attempt {attempts} after {earned} s"
        );
    };
    assert!(attempts > 60, "refused at attempt {attempts}");
    assert_eq!(limit(&refused), "login.ip");
    let (_, other) = login_from(&app, "203.0.113.6", "bystander@example.com", PASSWORD).await;
    assert!(other["data"]["login"]["accessToken"].is_string(), "{other}");
}

async fn every_alias_and_every_operation_of_a_batch_is_counted(backend: Backend) {
    let Some(app) = TestApp::spawn_with(
        backend,
        &[
            "--rate-limits",
            "refreshToken.ip=3/1m,requestPasswordReset.account=3/1h",
        ],
    )
    .await
    else {
        return;
    };
    let twice = json!({ "query": "mutation {
        a: requestPasswordReset(email: \"someone@example.com\")
        b: requestPasswordReset(email: \"SOMEONE@example.com\")
    }" });
    let (_, _, first) = app.post_from("198.51.100.3", &[], twice.clone()).await;
    assert_eq!(first["data"], json!({ "a": true, "b": true }), "{first}");
    // Three cells, two spent: the second request's first alias runs, its second is refused.
    let (_, _, second) = app.post_from("198.51.100.4", &[], twice).await;
    assert_eq!(second["data"]["a"], true, "{second}");
    assert_eq!(error_code(&second), "RATE_LIMITED", "{second}");
    assert_eq!(second["errors"][0]["path"], json!(["b"]), "{second}");
    assert_eq!(limit(&second), "requestPasswordReset.account");
    // A batch of four refreshes: three are checked (and fail: the tokens are made up), the
    // fourth is refused before it is looked at.
    let refresh = |n: u32| json!({ "query": format!("mutation {{ refreshToken(refreshToken: \"ugr_made_up_{n}\") {{ accessToken }} }}") });
    let (status, _, batch) = app
        .post_from(
            "198.51.100.5",
            &[],
            json!([refresh(0), refresh(1), refresh(2), refresh(3)]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for checked in &batch.as_array().expect("a batch answer")[..3] {
        assert_ne!(error_code(checked), "RATE_LIMITED", "{batch}");
    }
    assert_eq!(error_code(&batch[3]), "RATE_LIMITED", "{batch}");
    assert_eq!(limit(&batch[3]), "refreshToken.ip");
}

async fn the_traffic_limit_refuses_whole_requests_with_rate_limit_headers(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &["--rate-limits", "ip=3/1m"]).await else {
        return;
    };
    let query = json!({ "query": "{ __typename }" });
    for _ in 0..3 {
        let (status, _, answer) = app.post_from("198.51.100.5", &[], query.clone()).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    let (status, headers, refused) = app
        .post_from(
            "198.51.100.5",
            &[("accept", "application/graphql-response+json")],
            query.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{refused}");
    assert_eq!(error_code(&refused), "RATE_LIMITED");
    assert_eq!(limit(&refused), "ip");
    let wait = retry_after(&refused);
    assert!((1..=20).contains(&wait), "one cell every 20 s: {wait}");
    assert_eq!(header(&headers, "retry-after"), wait.to_string());
    assert_eq!(header(&headers, "ratelimit-policy"), "\"ip\";q=3;w=60");
    assert_eq!(
        header(&headers, "ratelimit"),
        format!("\"ip\";r=0;t={wait}")
    );
    assert!(header(&headers, "content-type").starts_with("application/graphql-response+json"));
    // Probes are not counted.
    let probe = axum::http::Request::get("/health")
        .body(axum::body::Body::empty())
        .expect("request");
    assert_eq!(app.send(probe).await.0, StatusCode::OK);
    // A batch costs one cell per operation: three fit, a fourth request does not.
    let (status, _, batch) = app
        .post_from("198.51.100.6", &[], json!([query, query, query]))
        .await;
    assert_eq!(status, StatusCode::OK, "{batch}");
    let (status, _, _) = app.post_from("198.51.100.6", &[], query.clone()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let (status, _, _) = app
        .post_from("198.51.100.7", &[], json!([query, query, query, query]))
        .await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "four never fit in three"
    );
    // Other clients are not affected.
    let (status, _, _) = app.post_from("203.0.113.7", &[], query).await;
    assert_eq!(status, StatusCode::OK);
}

async fn database_buckets_are_shared_by_instances_and_memory_ones_are_not(backend: Backend) {
    for (store, shared) in [("database", true), ("memory", false)] {
        let Some(a) = TestApp::spawn_with(
            backend,
            &[
                "--rate-limit-store",
                store,
                "--rate-limits",
                "login.ip_account=3/1h",
            ],
        )
        .await
        else {
            return;
        };
        let b = a.twin().await;
        a.register("shared@example.com").await;
        for _ in 0..3 {
            let (_, answer) = login_from(&a, "198.51.100.8", "shared@example.com", PASSWORD).await;
            assert!(answer["data"]["login"].is_object(), "{store}: {answer}");
        }
        let (_, on_b) = login_from(&b, "198.51.100.8", "shared@example.com", PASSWORD).await;
        if shared {
            assert_eq!(error_code(&on_b), "RATE_LIMITED", "{store}: {on_b}");
            // One cell comes back every 20 minutes.
            let wait = retry_after(&on_b);
            assert!((1_190..=1_200).contains(&wait), "{store}: {wait}");
        } else {
            assert!(on_b["data"]["login"].is_object(), "{store}: {on_b}");
            let (_, on_a) = login_from(&a, "198.51.100.8", "shared@example.com", PASSWORD).await;
            assert_eq!(error_code(&on_a), "RATE_LIMITED", "{store}: {on_a}");
            let wait = retry_after(&on_a);
            assert!((1_190..=1_200).contains(&wait), "{store}: {wait}");
        }
    }
}

async fn limits_can_be_turned_off(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &["--rate-limits", "off"]).await else {
        return;
    };
    app.register("free@example.com").await;
    for n in 0..15 {
        let (_, answer) = login_from(&app, "198.51.100.9", "free@example.com", PASSWORD).await;
        assert!(answer["data"]["login"].is_object(), "login {n}: {answer}");
    }
}

async fn trusted_proxies_name_the_client(backend: Backend) {
    let limits = "login.ip=2/1h";
    let Some(direct) = TestApp::spawn_with(backend, &["--rate-limits", limits]).await else {
        return;
    };
    let behind = direct
        .twin_with(&["--rate-limits", limits, "--trusted-proxies", "10.0.0.0/8"])
        .await;
    direct.register("proxied@example.com").await;
    let login =
        json!({ "query": LOGIN, "variables": { "e": "proxied@example.com", "p": PASSWORD } });
    let via = |client: &str| format!("{client}, 10.0.0.3");
    // Straight from a client the header is the client's own word: not believed.
    for spoofed in ["198.51.100.20", "198.51.100.21", "198.51.100.22"] {
        let forwarded = [("x-forwarded-for", spoofed)];
        let (_, _, answer) = direct
            .post_from("198.51.100.10", &forwarded, login.clone())
            .await;
        if spoofed == "198.51.100.22" {
            assert_eq!(error_code(&answer), "RATE_LIMITED", "{answer}");
        } else {
            assert!(answer["data"]["login"].is_object(), "{answer}");
        }
    }
    // Through trusted proxies the client is the first address they did not add.
    for _ in 0..2 {
        let forwarded = [("x-forwarded-for", via("198.51.100.30"))];
        let headers: Vec<(&str, &str)> = forwarded.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let (_, _, answer) = behind.post_from("10.0.0.2", &headers, login.clone()).await;
        assert!(answer["data"]["login"].is_object(), "{answer}");
    }
    let third = via("198.51.100.30");
    let (_, _, refused) = behind
        .post_from("10.0.0.2", &[("x-forwarded-for", &third)], login.clone())
        .await;
    assert_eq!(error_code(&refused), "RATE_LIMITED", "{refused}");
    let other = via("198.51.100.31");
    let (_, _, answer) = behind
        .post_from("10.0.0.2", &[("x-forwarded-for", &other)], login)
        .await;
    let token = answer["data"]["login"]["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"));
    // The session records the client, not the proxy.
    let sessions = behind
        .gql("{ mySessions { ip current } }", json!({}), Some(token))
        .await;
    let current: Vec<&Value> = sessions["data"]["mySessions"]
        .as_array()
        .unwrap_or_else(|| panic!("{sessions}"))
        .iter()
        .filter(|s| s["current"] == true)
        .collect();
    assert_eq!(current[0]["ip"], "198.51.100.31", "{sessions}");
}

/// Two instances on one Redis share their buckets, the traffic bucket included. Needs
/// `TEST_REDIS_URL`: skipped without it, but not under CI (`CI` set), which must run it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_buckets_are_shared_by_instances() {
    let Ok(url) = std::env::var("TEST_REDIS_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must set TEST_REDIS_URL"
        );
        eprintln!("TEST_REDIS_URL is not set: skipping the Redis rate-limit test");
        return;
    };
    let prefix = format!("usergraph-test-{}:", uuid::Uuid::now_v7());
    let settings = [
        "--redis-url",
        url.as_str(),
        "--redis-key-prefix",
        prefix.as_str(),
        "--rate-limits",
        "login.ip_account=2/1h,ip=6/1m",
    ];
    let Some(a) = TestApp::spawn_with(Backend::Sqlite, &settings).await else {
        return;
    };
    let b = a.twin().await;
    a.register("redis@example.com").await;
    for _ in 0..2 {
        let (_, answer) = login_from(&a, "198.51.100.40", "redis@example.com", PASSWORD).await;
        assert!(answer["data"]["login"].is_object(), "{answer}");
    }
    let (_, on_b) = login_from(&b, "198.51.100.40", "redis@example.com", PASSWORD).await;
    assert_eq!(error_code(&on_b), "RATE_LIMITED", "{on_b}");
    assert_eq!(limit(&on_b), "login.ip_account");
    // Six requests of traffic were spent by that address across both instances (register
    // came from another); the next one on either is refused.
    let query = json!({ "query": "{ __typename }" });
    let mut spent = 3;
    while spent < 6 {
        let app = if spent % 2 == 0 { &a } else { &b };
        let (status, _, _) = app.post_from("198.51.100.40", &[], query.clone()).await;
        assert_eq!(status, StatusCode::OK);
        spent += 1;
    }
    let (status, _, _) = a.post_from("198.51.100.40", &[], query).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}
