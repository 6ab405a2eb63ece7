//! Personal access tokens: shown once, scoped, never more than their owner, revocable.

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, PASSWORD, TestApp, error_code, error_fields};

both_backends!(
    personal_token_lifecycle,
    scopes_are_a_subset_of_the_owner_permissions,
    personal_tokens_cannot_escalate,
    expired_personal_tokens_are_refused,
);

const CREATE: &str = "mutation($name: String!, $scopes: [String!]!, $exp: DateTime) {
    createPersonalAccessToken(input: { name: $name, scopes: $scopes, expiresAt: $exp }) {
        token personalAccessToken { id name scopes createdAt lastUsedAt expiresAt }
    }
}";

async fn create(app: &TestApp, token: &str, name: &str, scopes: &[&str]) -> Value {
    app.gql(
        CREATE,
        json!({ "name": name, "scopes": scopes }),
        Some(token),
    )
    .await
}

async fn personal_token_lifecycle(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (access, id) = app.user("dev@example.com").await;
    let created = create(&app, &access, "ci script", &[]).await;
    assert!(created.get("errors").is_none(), "{created}");
    let pat = created["data"]["createPersonalAccessToken"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(pat.starts_with("ugp_") && pat.len() >= 4 + 22, "{pat}");
    let pat_id = created["data"]["createPersonalAccessToken"]["personalAccessToken"]["id"].clone();

    let me = app.gql("{ me { id email } }", json!({}), Some(&pat)).await;
    assert_eq!(me["data"]["me"]["id"], id.as_str(), "{me}");
    let listed = app
        .gql(
            "{ myPersonalAccessTokens { id name scopes lastUsedAt } }",
            json!({}),
            Some(&access),
        )
        .await;
    let tokens = listed["data"]["myPersonalAccessTokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0]["name"], "ci script");
    assert!(tokens[0]["lastUsedAt"].is_string(), "{listed}");
    assert!(
        !listed.to_string().contains(&pat),
        "the token must never be shown again"
    );

    let revoke = "mutation($id: ID!) { revokePersonalAccessToken(id: $id) }";
    let (other, _) = app.user("other@example.com").await;
    let foreign = app.gql(revoke, json!({ "id": pat_id }), Some(&other)).await;
    assert_eq!(error_code(&foreign), "NOT_FOUND");
    let revoked = app
        .gql(revoke, json!({ "id": pat_id }), Some(&access))
        .await;
    assert_eq!(revoked["data"]["revokePersonalAccessToken"], true);
    assert_eq!(
        error_code(&app.gql("{ me { id } }", json!({}), Some(&pat)).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(app.audit("pat.create").await.len(), 1);
    assert_eq!(app.audit("pat.revoke").await.len(), 1);
    let details = app.audit("pat.create").await[0].details.clone().unwrap();
    assert!(!details.contains(&pat[4..]), "{details}");
}

async fn scopes_are_a_subset_of_the_owner_permissions(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (plain, _) = app.user("plain@example.com").await;
    let denied = create(&app, &plain, "nope", &["users:read"]).await;
    assert_eq!(error_code(&denied), "FORBIDDEN");
    let unknown = create(&app, &plain, "typo", &["users:raed"]).await;
    assert_eq!(error_code(&unknown), "BAD_USER_INPUT");
    assert_eq!(error_fields(&unknown), ["scopes"]);
    let past = app
        .gql(
            CREATE,
            json!({ "name": "old", "scopes": [], "exp": "2001-01-01T00:00:00Z" }),
            Some(&plain),
        )
        .await;
    assert_eq!(error_fields(&past), ["expiresAt"]);

    let admin = app.admin().await;
    let created = create(&app, &admin, "reader", &["users:read"]).await;
    let pat = created["data"]["createPersonalAccessToken"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let users = app
        .gql("{ users(first: 5) { totalCount } }", json!({}), Some(&pat))
        .await;
    assert!(users.get("errors").is_none(), "{users}");
    // Its owner is an admin, but the token has only users:read.
    let roles = app.gql("{ roles { name } }", json!({}), Some(&pat)).await;
    assert_eq!(error_code(&roles), "FORBIDDEN");
    let me = app
        .gql("{ me { permissions } }", json!({}), Some(&pat))
        .await;
    assert!(
        me["data"]["me"]["permissions"].as_array().unwrap().len() > 1,
        "permissions shows the account's own"
    );

    // When the owner loses the permission, so does the token, on its next request (the
    // caller cache, warm from the request before, is not allowed to hide the change).
    let (reader, reader_id) = app.user("reader@example.com").await;
    let role = app
        .gql(
            "mutation { createRole(input: { name: \"reader\", permissions: [\"users:read\"] }) { name } }",
            json!({}),
            Some(&admin),
        )
        .await;
    assert!(role.get("errors").is_none(), "{role}");
    let change = "mutation($id: ID!, $give: Boolean!) {
        assign: assignRole(userId: $id, role: \"reader\") @include(if: $give) { id }
        revoke: revokeRole(userId: $id, role: \"reader\") @skip(if: $give) { id }
    }";
    let given = app
        .gql(
            change,
            json!({ "id": reader_id, "give": true }),
            Some(&admin),
        )
        .await;
    assert!(given.get("errors").is_none(), "{given}");
    let created = create(&app, &reader, "mine", &["users:read"]).await;
    let pat = created["data"]["createPersonalAccessToken"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let list = "{ users(first: 5) { totalCount } }";
    let users = app.gql(list, json!({}), Some(&pat)).await;
    assert!(users.get("errors").is_none(), "{users}");
    let taken = app
        .gql(
            change,
            json!({ "id": reader_id, "give": false }),
            Some(&admin),
        )
        .await;
    assert!(taken.get("errors").is_none(), "{taken}");
    let users = app.gql(list, json!({}), Some(&pat)).await;
    assert_eq!(error_code(&users), "FORBIDDEN");
}

async fn personal_tokens_cannot_escalate(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (access, _) = app.user("script@example.com").await;
    let created = create(&app, &access, "bot", &[]).await;
    let pat = created["data"]["createPersonalAccessToken"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let nested = create(&app, &pat, "child", &[]).await;
    assert_eq!(error_code(&nested), "FORBIDDEN");
    let change = app
        .gql(
            "mutation($c: String!, $n: String!) { changePassword(input: { currentPassword: $c, newPassword: $n }) }",
            json!({ "c": PASSWORD, "n": "a brand new long passphrase" }),
            Some(&pat),
        )
        .await;
    assert_eq!(error_code(&change), "FORBIDDEN");
    // A personal token is no refresh token either.
    assert_eq!(error_code(&app.refresh(&pat).await), "UNAUTHENTICATED");
}

async fn expired_personal_tokens_are_refused(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (access, _) = app.user("temp@example.com").await;
    let created = app
        .gql(
            CREATE,
            json!({ "name": "short", "scopes": [], "exp": "2999-01-01T00:00:00Z" }),
            Some(&access),
        )
        .await;
    assert_eq!(
        created["data"]["createPersonalAccessToken"]["personalAccessToken"]["expiresAt"],
        "2999-01-01T00:00:00+00:00"
    );
    let pat = created["data"]["createPersonalAccessToken"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        app.gql("{ me { id } }", json!({}), Some(&pat))
            .await
            .get("errors")
            .is_none()
    );
    app.exec("UPDATE personal_access_tokens SET expires_at = '2000-01-01 00:00:00'")
        .await;
    assert_eq!(
        error_code(&app.gql("{ me { id } }", json!({}), Some(&pat)).await),
        "UNAUTHENTICATED"
    );
}
