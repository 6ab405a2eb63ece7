//! The caller cache: a warm cache must never outlive a change to what authorises a caller,
//! on the instance that made it (at once) or on another one (within about a second).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::both_backends;
use crate::helpers::{Backend, TestApp, error_code};

both_backends!(
    role_changes_apply_at_once_here_and_soon_on_a_twin,
    a_deleted_role_leaves_every_cached_holder,
    deactivation_applies_to_personal_tokens_at_once,
);

const LIST: &str = "{ users(first: 1) { nodes { id } } }";
const CHANGE: &str = "mutation($id: ID!, $give: Boolean!) {
    assign: assignRole(userId: $id, role: \"reader\") @include(if: $give) { id }
    revoke: revokeRole(userId: $id, role: \"reader\") @skip(if: $give) { id }
}";

async fn reader_role(app: &TestApp, admin: &str) {
    let role = app
        .gql(
            "mutation { createRole(input: { name: \"reader\", permissions: [\"users:read\"] }) { name } }",
            json!({}),
            Some(admin),
        )
        .await;
    assert!(role.get("errors").is_none(), "{role}");
}

async fn change(app: &TestApp, admin: &str, user: &str, give: bool) {
    let answer = app
        .gql(CHANGE, json!({ "id": user, "give": give }), Some(admin))
        .await;
    assert!(answer.get("errors").is_none(), "{answer}");
}

async fn can_list(app: &TestApp, token: &str) -> bool {
    let answer = app.gql(LIST, json!({}), Some(token)).await;
    match answer.get("errors") {
        None => true,
        Some(_) => {
            assert_eq!(error_code(&answer), "FORBIDDEN");
            false
        }
    }
}

/// Waits until `check` answers `want` on `app`; fails after 10 s (the bound is about a
/// second; the slack is for a busy machine, and stays well below the cache's 30 s).
async fn settles(app: &TestApp, token: &str, want: bool) {
    let started = Instant::now();
    while can_list(app, token).await != want {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the other instance kept a stale caller"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Two instances on one database, an admin, the role `reader` and an account that may get it.
struct Twins {
    app: TestApp,
    twin: TestApp,
    admin: String,
    token: String,
    id: String,
}

async fn twins(backend: Backend) -> Option<Twins> {
    let app = TestApp::spawn(backend).await?;
    let twin = app.twin().await;
    let admin = app.admin().await;
    reader_role(&app, &admin).await;
    let (token, id) = app.user("reader@example.com").await;
    Some(Twins {
        app,
        twin,
        admin,
        token,
        id,
    })
}

async fn role_changes_apply_at_once_here_and_soon_on_a_twin(backend: Backend) {
    let Some(Twins {
        app,
        twin,
        admin,
        token,
        id,
    }) = twins(backend).await
    else {
        return;
    };
    // Both instances cache the caller without the permission.
    assert!(!can_list(&app, &token).await);
    assert!(!can_list(&twin, &token).await);

    change(&app, &admin, &id, true).await;
    assert!(
        can_list(&app, &token).await,
        "the changing instance applies it at once"
    );
    settles(&twin, &token, true).await;

    change(&app, &admin, &id, false).await;
    assert!(!can_list(&app, &token).await);
    settles(&twin, &token, false).await;
}

async fn a_deleted_role_leaves_every_cached_holder(backend: Backend) {
    let Some(Twins {
        app,
        twin,
        admin,
        token,
        id,
    }) = twins(backend).await
    else {
        return;
    };
    change(&app, &admin, &id, true).await;
    assert!(can_list(&app, &token).await);
    settles(&twin, &token, true).await;

    let deleted = app
        .gql(
            "mutation { deleteRole(name: \"reader\") }",
            json!({}),
            Some(&admin),
        )
        .await;
    assert!(deleted.get("errors").is_none(), "{deleted}");
    assert!(!can_list(&app, &token).await);
    settles(&twin, &token, false).await;
}

async fn deactivation_applies_to_personal_tokens_at_once(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = app.admin().await;
    let (token, id) = app.user("owner@example.com").await;
    let pat = app.personal_token(&token, "ci").await;
    let me = "{ me { id } }";
    assert!(
        app.gql(me, json!({}), Some(&pat))
            .await
            .get("errors")
            .is_none()
    );
    let off = app
        .gql(
            "mutation($id: ID!) { updateUser(id: $id, input: { isActive: false }) { isActive } }",
            json!({ "id": id }),
            Some(&admin),
        )
        .await;
    assert!(off.get("errors").is_none(), "{off}");
    // A personal token has no session to revoke: only the account's state refuses it.
    assert_eq!(
        error_code(&app.gql(me, json!({}), Some(&pat)).await),
        "UNAUTHENTICATED"
    );
}
