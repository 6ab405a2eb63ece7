//! Signing-key rotation: a new key signs from its start while tokens of the old one stay
//! valid until they expire; keys published ahead wait; retired keys are refused; instances
//! sharing the key directory agree; the `keys` commands.

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, error_code, usergraph_in};

both_backends!(
    rotation_keeps_sessions_alive_on_every_instance,
    keys_published_ahead_wait_and_retired_keys_are_refused,
);

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

async fn jwks_kids(app: &TestApp) -> Vec<String> {
    let request = axum::http::Request::get("/.well-known/jwks.json")
        .body(axum::body::Body::empty())
        .unwrap();
    let (_, _, body) = app.send(request).await;
    let jwks: Value = serde_json::from_slice(&body).unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

async fn me(app: &TestApp, token: &str) -> Value {
    app.gql("{ me { email } }", json!({}), Some(token)).await
}

fn add_key(app: &TestApp, starts: chrono::DateTime<Utc>) {
    usergraph::auth::keys::add(&app.data_dir().join("keys"), starts).expect("a new key");
}

async fn rotation_keeps_sessions_alive_on_every_instance(backend: Backend) {
    let Some(a) = TestApp::spawn(backend).await else {
        return;
    };
    let b = a.twin().await;
    let before = a.register("rotating@example.com").await;
    let old_token = before["accessToken"].as_str().unwrap().to_owned();
    let refresh = before["refreshToken"].as_str().unwrap().to_owned();
    let old_kid = kid_of(&old_token);

    add_key(&a, Utc::now());
    for app in [&a, &b] {
        app.services.reload_signing_keys().unwrap();
    }
    // The old token still works everywhere; both keys are published, the new one first.
    for app in [&a, &b] {
        assert_eq!(
            me(app, &old_token).await["data"]["me"]["email"],
            "rotating@example.com"
        );
        let kids = jwks_kids(app).await;
        assert_eq!(kids.len(), 2, "{kids:?}");
        assert_eq!(kids[1], old_kid);
    }
    // New tokens are signed with the new key, and verify on the other instance.
    let (new_token, _) = a.login_pair("rotating@example.com", "tests").await;
    let new_kid = kid_of(&new_token);
    assert_ne!(new_kid, old_kid);
    assert_eq!(jwks_kids(&b).await[0], new_kid);
    assert_eq!(
        me(&b, &new_token).await["data"]["me"]["email"],
        "rotating@example.com"
    );
    // The session opened before the rotation refreshes, into a token of the new key.
    let refreshed = b.refresh(&refresh).await;
    let token = refreshed["data"]["refreshToken"]["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("{refreshed}"));
    assert_eq!(kid_of(token), new_kid);
}

async fn keys_published_ahead_wait_and_retired_keys_are_refused(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let first = app.register("retire@example.com").await;
    let old_token = first["accessToken"].as_str().unwrap().to_owned();
    let old_kid = kid_of(&old_token);

    // A key that starts in ten minutes: published now, signing nothing yet.
    add_key(&app, Utc::now() + TimeDelta::minutes(10));
    app.services.reload_signing_keys().unwrap();
    let kids = jwks_kids(&app).await;
    assert_eq!(kids.len(), 2, "{kids:?}");
    assert_eq!(kids[0], old_kid, "the signing key comes first");
    let (token, _) = app.login_pair("retire@example.com", "tests").await;
    assert_eq!(kid_of(&token), old_kid);

    // A key that has signed for an hour (longer than an access token lives) retires the
    // first one: its tokens are refused like any other bad token, and it is not published.
    add_key(&app, Utc::now() - TimeDelta::hours(1));
    app.services.reload_signing_keys().unwrap();
    let refused = me(&app, &old_token).await;
    assert_eq!(error_code(&refused), "UNAUTHENTICATED", "{refused}");
    let kids = jwks_kids(&app).await;
    assert_eq!(kids.len(), 2, "{kids:?}");
    assert!(!kids.contains(&old_kid));
    let (token, _) = app.login_pair("retire@example.com", "tests").await;
    assert_eq!(kid_of(&token), kids[0]);
    assert_eq!(
        me(&app, &token).await["data"]["me"]["email"],
        "retire@example.com"
    );
}

#[test]
fn keys_rotate_adds_a_key_and_keys_list_shows_their_states() {
    let dir = tempfile::tempdir().unwrap();
    let output = usergraph_in(dir.path())
        .args(["keys", "rotate", "--starts-in", "1m"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("added "), "{stdout}");
    let list = usergraph_in(dir.path())
        .args(["keys", "list"])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    assert!(lines[0].ends_with("signing"), "{list}");
    assert!(lines[1].ends_with("waiting (published)"), "{list}");
    // Two files, each readable by its owner only.
    let files: Vec<_> = std::fs::read_dir(dir.path().join("keys"))
        .unwrap()
        .collect();
    assert_eq!(files.len(), 2);
    #[cfg(unix)]
    for file in files {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = file.unwrap().metadata().unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }
    // One fixed key cannot rotate.
    let fixed = usergraph_in(dir.path())
        .env(
            "USERGRAPH_JWT_KEY_FILE",
            dir.path().join("keys").join("19700101T000000Z.pem"),
        )
        .args(["keys", "rotate"])
        .output()
        .unwrap();
    assert!(!fixed.status.success());
    assert!(String::from_utf8_lossy(&fixed.stderr).contains("USERGRAPH_JWT_KEY_DIR"));
}
