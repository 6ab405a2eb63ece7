//! `USERGRAPH_ENV=production`: no schema for strangers unless asked for, JSON logs, a refusal
//! to start on insecure settings, and persisted operations only when configured.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use clap::Parser as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, error_code, usergraph_in};

both_backends!(
    production_shows_no_schema_to_strangers,
    production_serves_what_is_turned_on_explicitly,
    only_persisted_operations_run_when_a_manifest_is_given,
);

/// Production refuses argon2 below OWASP's minimum, so its tests pay for real hashes.
const PRODUCTION: [&str; 6] = [
    "--env",
    "production",
    "--argon2-memory-kib",
    "19456",
    "--argon2-iterations",
    "2",
];

async fn post(app: &TestApp, body: Value) -> Value {
    let (_, _, answer) = app.post_from("198.51.100.60", &[], body).await;
    answer
}

async fn get(app: &TestApp, uri: &str, accept: &str) -> (StatusCode, String) {
    let request = Request::get(uri)
        .header("accept", accept)
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = app.send(request).await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn message(answer: &Value) -> &str {
    answer["errors"][0]["message"].as_str().unwrap_or_default()
}

async fn production_shows_no_schema_to_strangers(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &PRODUCTION).await else {
        return;
    };
    let (status, page) = get(&app, "/graphql", "text/html").await;
    assert!(!page.contains("graphiql"), "{status}: {page}");
    let (status, _) = get(&app, "/graphql/assets/playground.js", "*/*").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for introspection in [
        "{ __schema { types { name } } }",
        "{ __type(name: \"User\") { fields { name } } }",
    ] {
        let answer = post(&app, json!({ "query": introspection })).await;
        let field = if introspection.contains("__schema") {
            "__schema"
        } else {
            "__type"
        };
        assert!(answer["data"][field].is_null(), "{introspection}: {answer}");
        assert!(!answer.to_string().contains("User"), "{answer}");
    }
    // No hints either: a misspelt field is refused without naming the real ones.
    let answer = post(&app, json!({ "query": "{ mySesions { id } }" })).await;
    assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{answer}");
    assert!(!message(&answer).contains("Did you mean"), "{answer}");
    // The API itself works.
    let answer = post(&app, json!({ "query": "{ __typename }" })).await;
    assert_eq!(answer["data"]["__typename"], "Query", "{answer}");
    let registered = app.register("prod@example.com").await;
    assert!(registered["accessToken"].is_string(), "{registered}");

    // In development the same server explores itself.
    let dev = app.restart_with(&[]).await;
    let answer = post(&dev, json!({ "query": "{ mySesions { id } }" })).await;
    assert!(
        message(&answer).contains("Did you mean \"mySessions\""),
        "{answer}"
    );
    let answer = post(
        &dev,
        json!({ "query": "{ __schema { queryType { name } } }" }),
    )
    .await;
    assert_eq!(answer["data"]["__schema"]["queryType"]["name"], "Query");
}

async fn production_serves_what_is_turned_on_explicitly(backend: Backend) {
    let mut settings = PRODUCTION.to_vec();
    settings.extend(["--graphiql", "true", "--introspection", "true"]);
    let Some(app) = TestApp::spawn_with(backend, &settings).await else {
        return;
    };
    let (status, page) = get(&app, "/graphql", "text/html").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("graphiql"), "{page}");
    let answer = post(
        &app,
        json!({ "query": "{ __schema { queryType { name } } }" }),
    )
    .await;
    assert_eq!(
        answer["data"]["__schema"]["queryType"]["name"], "Query",
        "{answer}"
    );
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn persisted(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

async fn only_persisted_operations_run_when_a_manifest_is_given(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let listed = "query Typename { __typename }";
    let manifest = json!({
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [{ "id": sha256_hex(listed), "name": "Typename", "type": "query", "body": listed }],
    });
    let path = dir.path().join("manifest.json");
    std::fs::write(&path, manifest.to_string()).unwrap();
    let path = path.display().to_string();
    let Some(app) = TestApp::spawn_with(backend, &["--persisted-operations", path.as_str()]).await
    else {
        return;
    };
    // The hash alone runs the listed text.
    let answer = post(
        &app,
        json!({ "extensions": persisted(&sha256_hex(listed)) }),
    )
    .await;
    assert_eq!(answer["data"]["__typename"], "Query", "{answer}");
    // So does the text, with its hash or without.
    let answer = post(
        &app,
        json!({ "query": listed, "extensions": persisted(&sha256_hex(listed)) }),
    )
    .await;
    assert_eq!(answer["data"]["__typename"], "Query", "{answer}");
    let answer = post(&app, json!({ "query": listed })).await;
    assert_eq!(answer["data"]["__typename"], "Query", "{answer}");
    // An unknown hash: Apollo's link then sends the text, which is not listed.
    let other = "{ __typename }";
    let answer = post(&app, json!({ "extensions": persisted(&sha256_hex(other)) })).await;
    assert_eq!(error_code(&answer), "PERSISTED_QUERY_NOT_FOUND", "{answer}");
    let answer = post(
        &app,
        json!({ "query": other, "extensions": persisted(&sha256_hex(other)) }),
    )
    .await;
    assert_eq!(
        error_code(&answer),
        "PERSISTED_QUERY_NOT_IN_LIST",
        "{answer}"
    );
    // A listed hash does not vouch for another text.
    let answer = post(
        &app,
        json!({ "query": other, "extensions": persisted(&sha256_hex(listed)) }),
    )
    .await;
    assert_eq!(
        error_code(&answer),
        "PERSISTED_QUERY_NOT_IN_LIST",
        "{answer}"
    );
    let answer = post(&app, json!({ "query": "mutation { logoutAll }" })).await;
    assert_eq!(
        error_code(&answer),
        "PERSISTED_QUERY_NOT_IN_LIST",
        "{answer}"
    );

    // A manifest whose ids are not the hashes of their bodies is refused at start.
    let forged = json!({ "operations": [{ "id": sha256_hex(listed), "body": other }] });
    std::fs::write(&path, forged.to_string()).unwrap();
    let config = usergraph::config::Cli::try_parse_from([
        "usergraph",
        "--data-dir",
        &app.data_dir().display().to_string(),
        "--persisted-operations",
        &path,
        "--database-url",
        &app.db.url,
    ])
    .unwrap()
    .config;
    let error = usergraph::build(config).await.err().expect("refused");
    assert!(
        format!("{error:#}").contains("is not the SHA-256"),
        "{error:#}"
    );
}

#[test]
fn production_refuses_insecure_settings_and_logs_json() {
    let dir = tempfile::tempdir().unwrap();
    // Weak hashing.
    let output = usergraph_in(dir.path())
        .args([
            "--env",
            "production",
            "--argon2-memory-kib",
            "4096",
            "migrate",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("OWASP"), "{stderr}");

    // A signing key others may read: refused in production, a warning in development.
    let key = dir.path().join("shared-key.pem");
    let pem = ed25519_dalek::pkcs8::EncodePrivateKey::to_pkcs8_pem(
        &ed25519_dalek::SigningKey::from_bytes(&[7; 32]),
        ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF,
    )
    .unwrap();
    std::fs::write(&key, pem.as_bytes()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let admin = |env: &str| {
            usergraph_in(dir.path())
                .env("USERGRAPH_ENV", env)
                .env("USERGRAPH_JWT_KEY_FILE", &key)
                .env(
                    "USERGRAPH_ADMIN_PASSWORD",
                    "a production password, long enough",
                )
                .args(["admin", "create", "--email", "ops@example.com"])
                .output()
                .unwrap()
        };
        let refused = admin("production");
        assert!(!refused.status.success());
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains("chmod 600"), "{stderr}");
        let warned = admin("development");
        assert!(
            warned.status.success(),
            "{}",
            String::from_utf8_lossy(&warned.stderr)
        );
        assert!(String::from_utf8_lossy(&warned.stderr).contains("chmod 600"));
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    // Production logs are JSON, one object per line (a fresh start logs its migrations and
    // the key it generated).
    let fresh = tempfile::tempdir().unwrap();
    let output = usergraph_in(fresh.path())
        .env("USERGRAPH_ENV", "production")
        .env(
            "USERGRAPH_ADMIN_PASSWORD",
            "a production password, long enough",
        )
        .args(["admin", "create", "--email", "ops@example.com"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "nothing logged");
    for line in lines {
        let parsed: Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(parsed["level"].is_string(), "{line}");
    }
}
