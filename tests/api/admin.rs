//! The admin surface: accounts and roles, with the rules beyond permissions.

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, PASSWORD, TestApp, error_code, error_fields};

both_backends!(
    create_user_with_roles,
    update_user_and_deactivate,
    delete_restore_and_purge,
    custom_roles_apply_on_the_next_request,
    the_last_admin_is_protected,
    a_role_made_after_the_roles_were_read_is_listed,
);

async fn ok(answer: Value) -> Value {
    assert!(answer.get("errors").is_none(), "{answer}");
    answer["data"].clone()
}

const CREATE_USER: &str = "mutation($input: CreateUserInput!) { createUser(input: $input) { id email roles { name } profile { displayName } } }";

async fn create_user_with_roles(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = app.admin().await;
    let created = ok(app
        .gql(CREATE_USER, json!({ "input": { "email": "New@Example.com", "password": PASSWORD, "displayName": "Newbie" } }), Some(&admin))
        .await)
    .await;
    assert_eq!(created["createUser"]["email"], "new@example.com");
    assert_eq!(created["createUser"]["roles"], json!([{ "name": "user" }]));
    assert_eq!(created["createUser"]["profile"]["displayName"], "Newbie");
    app.login("new@example.com", PASSWORD).await;

    let twice = app
        .gql(
            CREATE_USER,
            json!({ "input": { "email": "new@example.com", "password": PASSWORD } }),
            Some(&admin),
        )
        .await;
    assert_eq!(error_code(&twice), "CONFLICT");
    let unknown = app
        .gql(CREATE_USER, json!({ "input": { "email": "x@example.com", "password": PASSWORD, "roles": ["wizard"] } }), Some(&admin))
        .await;
    assert_eq!(error_fields(&unknown), ["roles"]);
    let invalid = app
        .gql(
            CREATE_USER,
            json!({ "input": { "email": "nope", "password": "short" } }),
            Some(&admin),
        )
        .await;
    assert_eq!(error_fields(&invalid), ["email", "password"]);

    // users:write alone cannot hand out admin through createUser.
    ok(app
        .gql(
            "mutation { createRole(input: { name: \"hr\", permissions: [\"users:write\"] }) { name } }",
            json!({}),
            Some(&admin),
        )
        .await)
    .await;
    let (hr, hr_id) = app.user("hr@example.com").await;
    ok(app
        .gql(
            "mutation($u: ID!) { assignRole(userId: $u, role: \"hr\") { id } }",
            json!({ "u": hr_id }),
            Some(&admin),
        )
        .await)
    .await;
    let escalate = app
        .gql(CREATE_USER, json!({ "input": { "email": "evil@example.com", "password": PASSWORD, "roles": ["admin"] } }), Some(&hr))
        .await;
    assert_eq!(error_code(&escalate), "FORBIDDEN");
    let plain = app
        .gql(
            "mutation($input: CreateUserInput!) { createUser(input: $input) { id roles { name } } }",
            json!({ "input": { "email": "fine@example.com", "password": PASSWORD } }),
            Some(&hr),
        )
        .await;
    assert!(plain.get("errors").is_none(), "{plain}");
    // Without users:read, even the account it just made shows no email.
    let email = app
        .gql(
            CREATE_USER,
            json!({ "input": { "email": "more@example.com", "password": PASSWORD } }),
            Some(&hr),
        )
        .await;
    assert_eq!(error_code(&email), "FORBIDDEN");
    assert_eq!(app.audit("user.create").await.len(), 3);
}

const UPDATE_USER: &str = "mutation($id: ID!, $input: UpdateUserInput!) { updateUser(id: $id, input: $input) { email isActive profile { displayName yearOfBirth } } }";

async fn update_user_and_deactivate(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = app.admin().await;
    let (token, id) = app.user("worker@example.com").await;
    app.user("taken@example.com").await;

    let changed = ok(app
        .gql(UPDATE_USER, json!({ "id": id, "input": { "email": "Renamed@example.com", "profile": { "displayName": "W" } } }), Some(&admin))
        .await)
    .await;
    assert_eq!(changed["updateUser"]["email"], "renamed@example.com");
    assert_eq!(changed["updateUser"]["profile"]["displayName"], "W");
    let clash = app
        .gql(
            UPDATE_USER,
            json!({ "id": id, "input": { "email": "TAKEN@example.com" } }),
            Some(&admin),
        )
        .await;
    assert_eq!(error_code(&clash), "CONFLICT");
    let bad = app
        .gql(
            UPDATE_USER,
            json!({ "id": id, "input": { "profile": { "yearOfBirth": 1800 } } }),
            Some(&admin),
        )
        .await;
    assert_eq!(error_fields(&bad), ["profile.yearOfBirth"]);
    let missing = app
        .gql(
            UPDATE_USER,
            json!({ "id": uuid::Uuid::now_v7().to_string(), "input": { "isActive": true } }),
            Some(&admin),
        )
        .await;
    assert_eq!(error_code(&missing), "NOT_FOUND");

    let off = ok(app
        .gql(
            UPDATE_USER,
            json!({ "id": id, "input": { "isActive": false } }),
            Some(&admin),
        )
        .await)
    .await;
    assert_eq!(off["updateUser"]["isActive"], false);
    assert_eq!(
        error_code(&app.gql("{ me { id } }", json!({}), Some(&token)).await),
        "UNAUTHENTICATED"
    );
    let refused = app
        .gql("mutation($p: String!) { login(input: { email: \"renamed@example.com\", password: $p }) { accessToken } }", json!({ "p": PASSWORD }), None)
        .await;
    assert_eq!(error_code(&refused), "UNAUTHENTICATED");
    ok(app
        .gql(
            UPDATE_USER,
            json!({ "id": id, "input": { "isActive": true } }),
            Some(&admin),
        )
        .await)
    .await;
    app.login("renamed@example.com", PASSWORD).await;
    // The user cannot do this to anyone.
    let own = app
        .gql(
            UPDATE_USER,
            json!({ "id": id, "input": { "isActive": true } }),
            Some(&token),
        )
        .await;
    assert_eq!(error_code(&own), "UNAUTHENTICATED");
    // Three changes went through; the refused ones left no trace.
    assert_eq!(app.audit("user.update").await.len(), 3);
}

async fn delete_restore_and_purge(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = app.admin().await;
    let (token, id) = app.user("gone@example.com").await;
    let deleted = ok(app
        .gql(
            "mutation($id: ID!) { deleteUser(id: $id) { deletedAt } }",
            json!({ "id": id }),
            Some(&admin),
        )
        .await)
    .await;
    assert!(deleted["deleteUser"]["deletedAt"].is_string());
    assert_eq!(
        error_code(&app.gql("{ me { id } }", json!({}), Some(&token)).await),
        "UNAUTHENTICATED"
    );
    let list = ok(app
        .gql(
            "{ users(first: 10) { totalCount nodes { email } } }",
            json!({}),
            Some(&admin),
        )
        .await)
    .await;
    assert_eq!(
        list["users"]["totalCount"], 1,
        "deleted accounts are hidden: {list}"
    );
    let seen = ok(app
        .gql(
            "query($id: ID!) { user(id: $id) { email deletedAt } }",
            json!({ "id": id }),
            Some(&admin),
        )
        .await)
    .await;
    assert!(seen["user"]["deletedAt"].is_string());

    let restored = ok(app
        .gql(
            "mutation($id: ID!) { restoreUser(id: $id) { deletedAt } }",
            json!({ "id": id }),
            Some(&admin),
        )
        .await)
    .await;
    assert!(restored["restoreUser"]["deletedAt"].is_null());
    app.login("gone@example.com", PASSWORD).await;

    let purged = ok(app
        .gql(
            "mutation($id: ID!) { purgeUser(id: $id) }",
            json!({ "id": id }),
            Some(&admin),
        )
        .await)
    .await;
    assert_eq!(purged["purgeUser"], true);
    let nothing = ok(app
        .gql(
            "query($id: ID!) { user(id: $id) { email } }",
            json!({ "id": id }),
            Some(&admin),
        )
        .await)
    .await;
    assert!(nothing["user"].is_null());
    // Its audit rows stay, keyed by the id.
    let history = app.audit("user.register").await;
    assert!(
        history
            .iter()
            .any(|e| e.target_id.as_deref() == Some(id.as_str()))
    );
    assert_eq!(app.audit("user.purge").await.len(), 1);
    // The address is free again.
    app.register("gone@example.com").await;
}

async fn custom_roles_apply_on_the_next_request(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = app.admin().await;
    let created = ok(app
        .gql(
            "mutation { createRole(input: { name: \"support\", description: \"Reads accounts\", permissions: [\"users:read\"] }) { id name description permissions } }",
            json!({}),
            Some(&admin),
        )
        .await)
    .await;
    assert_eq!(created["createRole"]["permissions"], json!(["users:read"]));
    let again = app
        .gql(
            "mutation { createRole(input: { name: \"support\", permissions: [] }) { id } }",
            json!({}),
            Some(&admin),
        )
        .await;
    assert_eq!(error_code(&again), "CONFLICT");
    let bad = app
        .gql("mutation { createRole(input: { name: \"Bad Name\", permissions: [\"everything\"] }) { id } }", json!({}), Some(&admin))
        .await;
    assert_eq!(error_fields(&bad), ["name", "permissions"]);

    let (token, id) = app.user("helper@example.com").await;
    const LIST: &str = "{ users(first: 5) { totalCount } }";
    assert_eq!(
        error_code(&app.gql(LIST, json!({}), Some(&token)).await),
        "FORBIDDEN"
    );
    ok(app
        .gql(
            "mutation($u: ID!) { assignRole(userId: $u, role: \"support\") { roles { name } } }",
            json!({ "u": id }),
            Some(&admin),
        )
        .await)
    .await;
    // Same access token, next request: the new permission applies.
    ok(app.gql(LIST, json!({}), Some(&token)).await).await;
    ok(app
        .gql(
            "mutation($u: ID!) { revokeRole(userId: $u, role: \"support\") { id } }",
            json!({ "u": id }),
            Some(&admin),
        )
        .await)
    .await;
    assert_eq!(
        error_code(&app.gql(LIST, json!({}), Some(&token)).await),
        "FORBIDDEN"
    );

    ok(app
        .gql(
            "mutation($u: ID!) { assignRole(userId: $u, role: \"support\") { id } }",
            json!({ "u": id }),
            Some(&admin),
        )
        .await)
    .await;
    ok(app
        .gql(
            "mutation { deleteRole(name: \"support\") }",
            json!({}),
            Some(&admin),
        )
        .await)
    .await;
    assert_eq!(
        error_code(&app.gql(LIST, json!({}), Some(&token)).await),
        "FORBIDDEN"
    );
    for builtin in ["admin", "user"] {
        let denied = app
            .gql(
                "mutation($n: String!) { deleteRole(name: $n) }",
                json!({ "n": builtin }),
                Some(&admin),
            )
            .await;
        assert_eq!(error_code(&denied), "FORBIDDEN", "{builtin}");
    }
    let unknown = app
        .gql(
            "mutation($u: ID!) { assignRole(userId: $u, role: \"ghost\") { id } }",
            json!({ "u": id }),
            Some(&admin),
        )
        .await;
    assert_eq!(error_code(&unknown), "NOT_FOUND");
    for action in ["role.create", "role.assign", "role.revoke", "role.delete"] {
        assert!(!app.audit(action).await.is_empty(), "{action} not audited");
    }
}

async fn the_last_admin_is_protected(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = app.admin().await;
    let me = ok(app.gql("{ me { id } }", json!({}), Some(&admin)).await).await;
    let admin_id = me["me"]["id"].as_str().unwrap().to_owned();
    let attempts = [
        (
            "mutation($id: ID!) { revokeRole(userId: $id, role: \"admin\") { id } }",
            "revokeRole",
        ),
        (
            "mutation($id: ID!) { updateUser(id: $id, input: { isActive: false }) { id } }",
            "updateUser",
        ),
        (
            "mutation($id: ID!) { deleteUser(id: $id) { id } }",
            "deleteUser",
        ),
        ("mutation($id: ID!) { purgeUser(id: $id) }", "purgeUser"),
    ];
    for (query, what) in attempts {
        let answer = app
            .gql(query, json!({ "id": admin_id }), Some(&admin))
            .await;
        assert_eq!(error_code(&answer), "FORBIDDEN", "{what}: {answer}");
    }
    // With a second administrator, the first may step down.
    let (_, second) = app.user("second@example.com").await;
    ok(app
        .gql(
            "mutation($u: ID!) { assignRole(userId: $u, role: \"admin\") { id } }",
            json!({ "u": second }),
            Some(&admin),
        )
        .await)
    .await;
    ok(app
        .gql(attempts[0].0, json!({ "id": admin_id }), Some(&admin))
        .await)
    .await;
    // The remaining one is the last again.
    let second_token = app.login("second@example.com", PASSWORD).await;
    let answer = app
        .gql(attempts[2].0, json!({ "id": second }), Some(&second_token))
        .await;
    assert_eq!(error_code(&answer), "FORBIDDEN");
}

/// Roles come from memory once read: one made afterwards must still show, and one deleted
/// must not.
async fn a_role_made_after_the_roles_were_read_is_listed(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = app.admin().await;
    let (_, id) = app.user("staff@example.com").await;
    let roles_of_staff = async || {
        let data = ok(app
            .gql(
                "{ users(first: 10, filter: { search: \"staff@\" }) { nodes { roles { name } } } }",
                json!({}),
                Some(&admin),
            )
            .await)
        .await;
        data["users"]["nodes"][0]["roles"].clone()
    };
    assert_eq!(roles_of_staff().await, json!([{ "name": "user" }]));
    ok(app
        .gql(
            "mutation { createRole(input: { name: \"auditor\", permissions: [\"audit:read\"] }) { id } }",
            json!({}),
            Some(&admin),
        )
        .await)
    .await;
    ok(app
        .gql(
            "mutation($u: ID!) { assignRole(userId: $u, role: \"auditor\") { id } }",
            json!({ "u": id }),
            Some(&admin),
        )
        .await)
    .await;
    assert_eq!(
        roles_of_staff().await,
        json!([{ "name": "auditor" }, { "name": "user" }])
    );
    ok(app
        .gql(
            "mutation { deleteRole(name: \"auditor\") }",
            json!({}),
            Some(&admin),
        )
        .await)
    .await;
    assert_eq!(roles_of_staff().await, json!([{ "name": "user" }]));
}
