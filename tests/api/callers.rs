//! The caller cache: a warm cache must never outlive a change to what authorises a caller,
//! on the instance that made it (at once) or on another one (within about a second). The
//! roles a page shows for each account are kept by the same rules.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::both_backends;
use crate::helpers::{Backend, TestApp, error_code};

both_backends!(
    role_changes_apply_at_once_here_and_soon_on_a_twin,
    a_deleted_role_leaves_every_cached_holder,
    deactivation_applies_to_personal_tokens_at_once,
    the_roles_a_page_shows_follow_grants_and_deletions_here_and_on_a_twin,
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

async fn delete_reader(app: &TestApp, admin: &str) {
    let deleted = app
        .gql(
            "mutation { deleteRole(name: \"reader\") }",
            json!({}),
            Some(admin),
        )
        .await;
    assert!(deleted.get("errors").is_none(), "{deleted}");
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

    delete_reader(&app, &admin).await;
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

/// The roles `app` lists for the account `id`, by name, on a page of every account.
async fn listed_roles(app: &TestApp, admin: &str, id: &str) -> Vec<String> {
    let page = app
        .gql(
            "{ users(first: 100) { nodes { id roles { name } } } }",
            json!({}),
            Some(admin),
        )
        .await;
    assert!(page.get("errors").is_none(), "{page}");
    let nodes = page["data"]["users"]["nodes"].as_array().unwrap();
    let node = nodes
        .iter()
        .find(|n| n["id"] == id)
        .expect("the account is listed");
    node["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits until `app` lists `want` among the roles of `id` (or not); fails after 10 s.
async fn lists(app: &TestApp, admin: &str, id: &str, want: bool) {
    let started = Instant::now();
    while listed_roles(app, admin, id)
        .await
        .contains(&"reader".to_owned())
        != want
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the other instance kept a stale page of roles"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn the_roles_a_page_shows_follow_grants_and_deletions_here_and_on_a_twin(backend: Backend) {
    let Some(Twins {
        app,
        twin,
        admin,
        id,
        ..
    }) = twins(backend).await
    else {
        return;
    };
    // Both instances have listed the account (and keep its roles) before each change.
    let reader = "reader".to_owned();
    assert!(!listed_roles(&app, &admin, &id).await.contains(&reader));
    assert!(!listed_roles(&twin, &admin, &id).await.contains(&reader));

    change(&app, &admin, &id, true).await;
    assert!(
        listed_roles(&app, &admin, &id).await.contains(&reader),
        "the changing instance lists a grant at once"
    );
    lists(&twin, &admin, &id, true).await;

    change(&app, &admin, &id, false).await;
    assert!(!listed_roles(&app, &admin, &id).await.contains(&reader));
    lists(&twin, &admin, &id, false).await;

    change(&app, &admin, &id, true).await;
    lists(&twin, &admin, &id, true).await;
    delete_reader(&app, &admin).await;
    assert!(!listed_roles(&app, &admin, &id).await.contains(&reader));
    lists(&twin, &admin, &id, false).await;
}
