//! GraphQL over HTTP: media types, GET, limits, health and readiness.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, error_code};

both_backends!(
    get_mutation_is_405,
    get_query_runs_and_browsers_get_graphiql,
    oversized_bodies_are_413,
    media_types_follow_the_accept_header,
    batches_are_capped,
    health_and_ready,
    ready_is_503_while_the_database_is_unreachable,
    security_headers_and_a_body_without_a_type,
    a_document_that_passed_still_checks_each_requests_variables,
    automatic_persisted_queries_run_by_hash_once_sent,
);

fn post(body: &str, accept: &str) -> Request<Body> {
    Request::post("/graphql")
        .header("content-type", "application/json")
        .header("accept", accept)
        .body(Body::from(body.to_owned()))
        .unwrap()
}

async fn get_mutation_is_405(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let query = "mutation%20%7B%20login(input%3A%7Bemail%3A%22a%40b.co%22%2Cpassword%3A%22x%22%7D)%20%7B%20accessToken%20%7D%20%7D";
    let request = Request::get(format!("/graphql?query={query}"))
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = app.send(request).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers["allow"], "POST");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("POST")
    );
}

async fn get_query_runs_and_browsers_get_graphiql(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let request = Request::get("/graphql?query=%7B__typename%7D")
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = app.send(request).await;
    assert_eq!(status, StatusCode::OK);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["data"]["__typename"], "Query");

    let browser = Request::get("/graphql")
        .header("accept", "text/html,application/xhtml+xml")
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = app.send(browser).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(String::from_utf8_lossy(&body).contains("graphiql"));
}

async fn oversized_bodies_are_413(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &["--max-body-bytes", "4096"]).await else {
        return;
    };
    let big = json!({ "query": "{ __typename }", "variables": { "pad": "x".repeat(10_000) } })
        .to_string();
    let (status, _, _) = app.send(post(&big, "application/json")).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    // A streamed body without Content-Length is cut off at the limit too.
    let chunks: Vec<Result<String, std::io::Error>> = big
        .as_bytes()
        .chunks(1000)
        .map(|c| Ok(String::from_utf8_lossy(c).into_owned()))
        .collect();
    let streamed = Request::post("/graphql")
        .header("content-type", "application/json")
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .unwrap();
    let (status, _, body) = app.send(streamed).await;
    assert_eq!(
        status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        String::from_utf8_lossy(&body)
    );

    let small = json!({ "query": "{ __typename }" }).to_string();
    let (status, _, _) = app.send(post(&small, "application/json")).await;
    assert_eq!(status, StatusCode::OK);
}

async fn media_types_follow_the_accept_header(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let ok = json!({ "query": "{ __typename }" }).to_string();
    let (status, headers, _) = app.send(post(&ok, "application/json")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");

    let (status, headers, _) = app
        .send(post(&ok, "application/graphql-response+json"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/graphql-response+json")
    );

    // A request error: 400 and no data with the new media type, 200 with plain JSON.
    let broken = json!({ "query": "{ __typename " }).to_string();
    let (status, _, body) = app
        .send(post(&broken, "application/graphql-response+json"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert!(body.get("data").is_none(), "{body}");
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    let (status, _, _) = app.send(post(&broken, "application/json")).await;
    assert_eq!(status, StatusCode::OK);

    // Unknown fields get no suggestions.
    let typo = json!({ "query": "{ mee { id } }" }).to_string();
    let (_, _, body) = app.send(post(&typo, "application/json")).await;
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        !body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Did you mean"),
        "{body}"
    );
}

async fn batches_are_capped(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &["--max-batch", "3"]).await else {
        return;
    };
    let one = json!({ "query": "{ __typename }" });
    let three = Value::Array(vec![one.clone(); 3]).to_string();
    let (status, _, body) = app.send(post(&three, "application/json")).await;
    assert_eq!(status, StatusCode::OK);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body.as_array().unwrap().len(), 3);

    let four = Value::Array(vec![one; 4]).to_string();
    let (status, _, body) = app.send(post(&four, "application/json")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX");

    // Nothing to run, however it is sent, is said plainly.
    for nothing in ["[]", "{}", r#"{"query":""}"#, r#"{"query":"   "}"#] {
        let (status, _, body) = app
            .send(post(nothing, "application/graphql-response+json"))
            .await;
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{nothing}: {body}");
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{nothing}: {body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("query: is empty"), "{nothing}: {body}");
    }
    // An unknown operation's name is echoed in the error: not a megabyte of it.
    let named = json!({ "query": "{ __typename }", "operationName": "x".repeat(100_000) });
    let (status, _, body) = app
        .send(post(
            &named.to_string(),
            "application/graphql-response+json",
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.len() < 2_000, "{} bytes", body.len());
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["fields"][0]["field"], "operationName",
        "{body}"
    );
}

async fn health_and_ready(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    for path in ["/health", "/ready"] {
        let (status, _, _) = app
            .send(Request::get(path).body(Body::empty()).unwrap())
            .await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
}

/// An embedded SQLite file has no server to lose; the 503 path is PostgreSQL's.
async fn ready_is_503_while_the_database_is_unreachable(backend: Backend) {
    if backend == Backend::Sqlite {
        return;
    }
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let ready = || async {
        app.send(Request::get("/ready").body(Body::empty()).unwrap())
            .await
            .0
    };
    assert_eq!(ready().await, StatusCode::OK);

    let admin_url = app.db.postgres_admin_url().unwrap().to_owned();
    let name = app.db.postgres_name().unwrap().to_owned();
    let mut admin = AsyncPgConnection::establish(&admin_url).await.unwrap();
    diesel::sql_query(format!(
        "ALTER DATABASE \"{name}\" WITH ALLOW_CONNECTIONS false"
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    diesel::sql_query(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    assert_eq!(ready().await, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready().await, StatusCode::SERVICE_UNAVAILABLE);
    // A GraphQL call meanwhile fails cleanly, without leaking database text.
    let answer = app
        .gql(
            "mutation { login(input: { email: \"a@example.com\", password: \"whatever it is\" }) { accessToken } }",
            json!({}),
            None,
        )
        .await;
    assert_eq!(error_code(&answer), "SERVICE_UNAVAILABLE", "{answer}");
    assert!(!answer.to_string().contains(&name), "{answer}");

    diesel::sql_query(format!(
        "ALTER DATABASE \"{name}\" WITH ALLOW_CONNECTIONS true"
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    assert_eq!(ready().await, StatusCode::OK);
}

async fn security_headers_and_a_body_without_a_type(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    // Answers that may carry a token are kept by no cache; none is sniffed or leaks a referrer.
    let login = json!({ "query": "mutation { register(input: { email: \"h@example.com\", password: \"a header test password\" }) { accessToken } }" });
    let (status, headers, _) = app.send(post(&login.to_string(), "application/json")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert!(headers.get("server").is_none(), "no version banner");
    let (_, headers, _) = app
        .send(Request::get("/health").body(Body::empty()).unwrap())
        .await;
    assert_eq!(headers["x-content-type-options"], "nosniff");
    // What sets its own caching keeps it.
    let (_, headers, _) = app
        .send(
            Request::get("/.well-known/jwks.json")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(headers["cache-control"], "public, max-age=300");

    // A POST that does not say what its body is: 415, with a JSON error.
    let request = Request::post("/graphql")
        .body(Body::from(r#"{"query":"{ __typename }"}"#))
        .unwrap();
    let (status, headers, body) = app.send(request).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(headers["content-type"], "application/json");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
}

/// Posts `query` with `variables` as `token`, asking for `application/graphql-response+json`.
async fn post_as(app: &TestApp, token: &str, query: &str, variables: Value) -> (StatusCode, Value) {
    let body = json!({ "query": query, "variables": variables }).to_string();
    let request = Request::post("/graphql")
        .header("content-type", "application/json")
        .header("accept", "application/graphql-response+json")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::from(body))
        .unwrap();
    let (status, _, body) = app.send(request).await;
    (status, serde_json::from_slice(&body).unwrap())
}

/// A document that passed validation once skips the full rules next time (see
/// `graphql/validated.rs`): variables that would fail them must still be refused, with the
/// answer a server that never saw the document gives.
async fn a_document_that_passed_still_checks_each_requests_variables(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = app.admin().await;
    let query = "query Page($id: ID!, $first: Int, $order: UserOrder) { \
        user(id: $id) { id } users(first: $first, orderBy: $order) { nodes { id } } }";
    let order = json!({ "direction": "DESC", "field": "CREATED_AT" });
    let bad = [
        json!({ "id": { "not": "an id" }, "first": 2 }),
        json!({ "id": "x", "first": "two" }),
        json!({ "id": "x", "first": 4_294_967_296u64 }),
        json!({ "id": "x", "first": 2, "order": { "direction": "SIDEWAYS", "field": "CREATED_AT" } }),
        json!({ "id": "x", "first": 2, "order": { "field": "CREATED_AT" } }),
    ];
    let mut cold = Vec::new();
    for variables in &bad {
        cold.push(post_as(&app, &admin, query, variables.clone()).await);
    }
    for (status, body) in &cold {
        assert_eq!(error_code(body), "BAD_USER_INPUT", "{body}");
        assert_eq!(*status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body.get("data").is_none(), "{body}");
    }
    // The same document with good values, twice: the second run is the remembered one.
    for id in ["no-such-account", "another"] {
        let good = json!({ "id": id, "first": 2, "order": order });
        let (status, body) = post_as(&app, &admin, query, good).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.get("errors").is_none(), "{body}");
        assert_eq!(body["data"]["users"]["nodes"].as_array().unwrap().len(), 1);
    }
    for (variables, cold) in bad.iter().zip(&cold) {
        let warm = post_as(&app, &admin, query, variables.clone()).await;
        assert_eq!(&warm, cold, "{variables}");
    }
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Posts `body` (JSON) as `token`, asking for `application/graphql-response+json`.
async fn post_body(app: &TestApp, token: &str, body: Value) -> (StatusCode, Value) {
    let request = Request::post("/graphql")
        .header("content-type", "application/json")
        .header("accept", "application/graphql-response+json")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::from(body.to_string()))
        .unwrap();
    let (status, _, body) = app.send(request).await;
    (status, serde_json::from_slice(&body).unwrap())
}

/// Automatic persisted queries, as Apollo Client's persisted-query link and urql's
/// `persistedExchange` speak them: the hash alone first; the text with its hash when the
/// hash is not known; the hash alone from then on, by POST or by GET.
async fn automatic_persisted_queries_run_by_hash_once_sent(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (token, id) = app.user("ada@example.com").await;
    let query = "query Mine { me { id email } }";
    let hash = sha256_hex(query);
    let persisted = |hash: &str| json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });

    let (_, first) = post_body(&app, &token, json!({ "extensions": persisted(&hash) })).await;
    assert_eq!(error_code(&first), "PERSISTED_QUERY_NOT_FOUND", "{first}");
    // The protocol's word, exactly: urql's exchange retries on the message alone.
    assert_eq!(first["errors"][0]["message"], "PersistedQueryNotFound");
    assert!(first.get("data").is_none(), "{first}");

    let (status, sent) = post_body(
        &app,
        &token,
        json!({ "query": query, "extensions": persisted(&hash) }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    assert_eq!(sent["data"]["me"]["id"], id.as_str(), "{sent}");

    // The upper-case spelling of the hash names the same text.
    let (status, by_hash) = post_body(
        &app,
        &token,
        json!({ "extensions": persisted(&hash.to_uppercase()) }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{by_hash}");
    assert_eq!(by_hash, sent);
    let extensions = persisted(&hash).to_string();
    let request = Request::get(format!("/graphql?extensions={}", url_encode(&extensions)))
        .header("accept", "application/graphql-response+json")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = app.send(request).await;
    let by_get: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, StatusCode::OK, "{by_get}");
    assert_eq!(by_get, sent);

    // A text whose hash is not the one sent runs nowhere; nor does an unknown version.
    let other = "query Other { me { id } }";
    let (status, forged) = post_body(
        &app,
        &token,
        json!({ "query": other, "extensions": persisted(&hash) }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{forged}");
    assert_eq!(error_code(&forged), "BAD_USER_INPUT", "{forged}");
    assert!(
        forged["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("provided sha does not match query")
    );
    let (_, still) = post_body(&app, &token, json!({ "extensions": persisted(&hash) })).await;
    assert_eq!(still, sent, "the forged text did not replace the kept one");
    let (status, versioned) = post_body(
        &app,
        &token,
        json!({ "extensions": { "persistedQuery": { "version": 2, "sha256Hash": hash } } }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{versioned}");
    assert_eq!(error_code(&versioned), "BAD_USER_INPUT", "{versioned}");

    // A kept mutation is still no GET's to run.
    let mutation = "mutation Everywhere { logoutAll }";
    let hash = sha256_hex(mutation);
    let (status, _) = post_body(
        &app,
        &token,
        json!({ "query": mutation, "extensions": persisted(&hash) }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let request = Request::get(format!(
        "/graphql?extensions={}",
        url_encode(&persisted(&hash).to_string())
    ))
    .header("accept", "application/graphql-response+json")
    .body(Body::empty())
    .unwrap();
    let (status, _, _) = app.send(request).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

fn url_encode(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}
