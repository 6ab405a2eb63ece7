//! Sessions: devices, rotation with reuse detection, logout, instant revocation.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, error_code};

both_backends!(
    two_devices_listed_and_one_revoked,
    concurrent_refreshes_get_the_same_pair,
    reused_refresh_token_after_grace_ends_the_session,
    logout_and_logout_all_end_sessions_at_once,
    expired_refresh_tokens_and_sessions_are_refused,
    revocation_reaches_other_instances_within_a_second,
);

async fn my_sessions(app: &TestApp, token: &str) -> Value {
    let answer = app
        .gql(
            "{ mySessions { id current userAgent createdAt expiresAt lastUsedAt } }",
            json!({}),
            Some(token),
        )
        .await;
    answer["data"]["mySessions"].clone()
}

async fn me_works(app: &TestApp, token: &str) -> bool {
    app.gql("{ me { id } }", json!({}), Some(token))
        .await
        .get("errors")
        .is_none()
}

async fn two_devices_listed_and_one_revoked(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.register("ada@example.com").await;
    let (laptop, _) = app.login_pair("ada@example.com", "Laptop/1.0").await;
    let (phone, _) = app.login_pair("ada@example.com", "Phone/2.0").await;

    let sessions = my_sessions(&app, &laptop).await;
    let list = sessions.as_array().unwrap();
    assert_eq!(list.len(), 3, "{sessions}"); // sign-up, laptop, phone
    let current: Vec<&Value> = list.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["userAgent"], "Laptop/1.0");
    let phone_id = list.iter().find(|s| s["userAgent"] == "Phone/2.0").unwrap()["id"].clone();

    let revoked = app
        .gql(
            "mutation($id: ID!) { revokeSession(id: $id) }",
            json!({ "id": phone_id }),
            Some(&laptop),
        )
        .await;
    assert_eq!(revoked["data"]["revokeSession"], true, "{revoked}");
    // The phone's access token stops on its very next request; the laptop's goes on.
    let refused = app.gql("{ me { id } }", json!({}), Some(&phone)).await;
    assert_eq!(error_code(&refused), "UNAUTHENTICATED");
    assert!(me_works(&app, &laptop).await);
    assert_eq!(
        my_sessions(&app, &laptop).await.as_array().unwrap().len(),
        2
    );
    assert_eq!(app.audit("session.revoke").await.len(), 1);

    // Someone else's session is not found, not revoked.
    let (mallory, _) = app.user("mallory@example.com").await;
    let laptop_id = current[0]["id"].clone();
    let foreign = app
        .gql(
            "mutation($id: ID!) { revokeSession(id: $id) }",
            json!({ "id": laptop_id }),
            Some(&mallory),
        )
        .await;
    assert_eq!(error_code(&foreign), "NOT_FOUND");
    assert!(me_works(&app, &laptop).await);
}

async fn concurrent_refreshes_get_the_same_pair(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let payload = app.register("tabs@example.com").await;
    let refresh = payload["refreshToken"].as_str().unwrap().to_owned();

    let answers = futures_util::future::join_all((0..20).map(|_| app.refresh(&refresh))).await;
    for answer in &answers {
        assert!(answer.get("errors").is_none(), "{answer}");
    }
    let first = &answers[0]["data"]["refreshToken"];
    for answer in &answers {
        assert_eq!(
            answer["data"]["refreshToken"]["refreshToken"],
            first["refreshToken"]
        );
        assert_eq!(
            answer["data"]["refreshToken"]["accessToken"],
            first["accessToken"]
        );
    }
    assert_ne!(first["refreshToken"], refresh.as_str());
    assert!(me_works(&app, first["accessToken"].as_str().unwrap()).await);
    // The successor rotates in turn; the session lives on.
    let next = app.refresh(first["refreshToken"].as_str().unwrap()).await;
    assert!(next.get("errors").is_none(), "{next}");
    assert!(app.audit("session.refresh_reuse_detected").await.is_empty());
}

async fn reused_refresh_token_after_grace_ends_the_session(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &["--refresh-reuse-grace", "1s"]).await else {
        return;
    };
    let payload = app.register("victim@example.com").await;
    let old = payload["refreshToken"].as_str().unwrap().to_owned();
    let (other_device, _) = app.login_pair("victim@example.com", "Other/1.0").await;

    let rotated = app.refresh(&old).await;
    let new_access = rotated["data"]["refreshToken"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let new_refresh = rotated["data"]["refreshToken"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    let stolen = app.refresh(&old).await;
    assert_eq!(error_code(&stolen), "UNAUTHENTICATED", "{stolen}");
    // The whole session is gone: its successor and its access tokens too.
    assert_eq!(
        error_code(&app.refresh(&new_refresh).await),
        "UNAUTHENTICATED"
    );
    assert!(!me_works(&app, &new_access).await);
    // Other sessions are untouched.
    assert!(me_works(&app, &other_device).await);
    let events = app.audit("session.refresh_reuse_detected").await;
    assert_eq!(events.len(), 1);
    let details = events[0].details.as_deref().unwrap();
    assert!(
        !details.contains(&old) && !details.contains(&new_refresh),
        "{details}"
    );
}

async fn logout_and_logout_all_end_sessions_at_once(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.register("bye@example.com").await;
    let (a_access, a_refresh) = app.login_pair("bye@example.com", "A").await;
    let (b_access, b_refresh) = app.login_pair("bye@example.com", "B").await;
    let (c_access, _) = app.login_pair("bye@example.com", "C").await;

    let logout = "mutation($t: String!) { logout(refreshToken: $t) }";
    let out = app.gql(logout, json!({ "t": a_refresh }), None).await;
    assert_eq!(out["data"]["logout"], true);
    assert!(!me_works(&app, &a_access).await);
    assert_eq!(
        error_code(&app.refresh(&a_refresh).await),
        "UNAUTHENTICATED"
    );
    let again = app.gql(logout, json!({ "t": a_refresh }), None).await;
    assert_eq!(again["data"]["logout"], false);
    assert!(me_works(&app, &b_access).await);

    let all = app
        .gql("mutation { logoutAll }", json!({}), Some(&c_access))
        .await;
    assert_eq!(all["data"]["logoutAll"], true, "{all}");
    assert!(!me_works(&app, &b_access).await);
    assert!(!me_works(&app, &c_access).await);
    assert_eq!(
        error_code(&app.refresh(&b_refresh).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(app.audit("user.logout").await.len(), 1);
    assert_eq!(app.audit("user.logout_all").await.len(), 1);
}

async fn expired_refresh_tokens_and_sessions_are_refused(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let payload = app.register("idle@example.com").await;
    let refresh = payload["refreshToken"].as_str().unwrap();
    app.exec("UPDATE refresh_tokens SET expires_at = '2000-01-01 00:00:00'")
        .await;
    assert_eq!(error_code(&app.refresh(refresh).await), "UNAUTHENTICATED");

    let (_, refresh) = app.login_pair("idle@example.com", "again").await;
    app.exec("UPDATE sessions SET expires_at = '2000-01-01 00:00:00'")
        .await;
    assert_eq!(error_code(&app.refresh(&refresh).await), "UNAUTHENTICATED");
    let (access, _) = app.login_pair("idle@example.com", "fresh").await;
    assert_eq!(
        my_sessions(&app, &access).await.as_array().unwrap().len(),
        1
    );
}

async fn revocation_reaches_other_instances_within_a_second(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let other = app.twin().await;
    app.register("lb@example.com").await;
    let (access, refresh) = app.login_pair("lb@example.com", "x").await;
    assert!(me_works(&other, &access).await);
    let out = app
        .gql(
            "mutation($t: String!) { logout(refreshToken: $t) }",
            json!({ "t": refresh }),
            None,
        )
        .await;
    assert_eq!(out["data"]["logout"], true);
    assert!(!me_works(&app, &access).await);
    // The other instance learns of it at its next reload (every second); allow slack for a
    // busy machine, but not minutes.
    let started = Instant::now();
    while me_works(&other, &access).await {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the other instance never refused the token"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
