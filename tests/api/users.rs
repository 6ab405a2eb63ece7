//! Reading accounts and roles: who may see what, and paging.

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, error_code};

both_backends!(
    admin_lists_users_plain_user_is_forbidden,
    users_page_forwards_and_backwards,
    node_finds_users_and_roles
);

async fn admin_lists_users_plain_user_is_forbidden(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (alice, alice_id) = app.user("alice@example.com").await;
    let (_, bob_id) = app.user("bob@example.com").await;
    let admin = app.admin().await;

    let listed = app
        .gql("{ users(first: 10) { totalCount nodes { email roles { name } } } roles { name permissions } }", json!({}), Some(&admin))
        .await;
    assert!(listed.get("errors").is_none(), "{listed}");
    let emails: Vec<&str> = listed["data"]["users"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails,
        ["alice@example.com", "bob@example.com", "admin@example.com"]
    );
    assert_eq!(listed["data"]["users"]["totalCount"], 3);
    let roles = &listed["data"]["roles"];
    assert_eq!(roles[0]["name"], "admin");
    assert_eq!(roles[0]["permissions"].as_array().unwrap().len(), 7);

    for query in ["{ users(first: 10) { totalCount } }", "{ roles { name } }"] {
        let answer = app.gql(query, json!({}), Some(&alice)).await;
        assert_eq!(error_code(&answer), "FORBIDDEN", "{query}: {answer}");
    }
    let anonymous = app.gql("{ users { totalCount } }", json!({}), None).await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");

    // Alice reads herself, not Bob; the admin reads both.
    let own = app
        .gql(
            "query($id: ID!) { user(id: $id) { email } }",
            json!({ "id": alice_id }),
            Some(&alice),
        )
        .await;
    assert_eq!(own["data"]["user"]["email"], "alice@example.com");
    let other = app
        .gql(
            "query($id: ID!) { user(id: $id) { email } }",
            json!({ "id": bob_id }),
            Some(&alice),
        )
        .await;
    assert_eq!(error_code(&other), "FORBIDDEN");
    let by_admin = app
        .gql(
            "query($id: ID!) { user(id: $id) { email } }",
            json!({ "id": bob_id }),
            Some(&admin),
        )
        .await;
    assert_eq!(by_admin["data"]["user"]["email"], "bob@example.com");
    let missing = app
        .gql(
            "query($id: ID!) { user(id: $id) { email } }",
            json!({ "id": uuid::Uuid::now_v7().to_string() }),
            Some(&admin),
        )
        .await;
    assert!(
        missing["data"]["user"].is_null() && missing.get("errors").is_none(),
        "{missing}"
    );
}

fn emails(page: &Value) -> Vec<String> {
    page["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["email"].as_str().unwrap().to_owned())
        .collect()
}

async fn users_page_forwards_and_backwards(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = app.admin().await;
    let mut expected = vec!["admin@example.com".to_owned()];
    for i in 0..7 {
        let email = format!("user{i}@example.com");
        app.register(&email).await;
        expected.push(email);
    }
    const PAGE: &str = "query($first: Int, $after: String, $last: Int, $before: String) {
        users(first: $first, after: $after, last: $last, before: $before) {
            edges { cursor node { email } }
            pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
        }
    }";

    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let answer = app
            .gql(PAGE, json!({ "first": 3, "after": after }), Some(&admin))
            .await;
        let page = &answer["data"]["users"];
        seen.extend(emails(page));
        if page["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen, expected);

    let mut seen = Vec::new();
    let mut before = Value::Null;
    loop {
        let answer = app
            .gql(PAGE, json!({ "last": 3, "before": before }), Some(&admin))
            .await;
        let page = &answer["data"]["users"];
        let mut chunk = emails(page);
        chunk.extend(seen);
        seen = chunk;
        if page["pageInfo"]["hasPreviousPage"] != true {
            break;
        }
        before = page["pageInfo"]["startCursor"].clone();
    }
    assert_eq!(seen, expected);

    let too_big = app.gql(PAGE, json!({ "first": 101 }), Some(&admin)).await;
    assert_eq!(error_code(&too_big), "BAD_USER_INPUT");
    let bad_cursor = app
        .gql(
            PAGE,
            json!({ "first": 2, "after": "garbage" }),
            Some(&admin),
        )
        .await;
    assert_eq!(error_code(&bad_cursor), "BAD_USER_INPUT");
}

async fn node_finds_users_and_roles(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (alice, alice_id) = app.user("alice@example.com").await;
    let admin = app.admin().await;
    const NODE: &str = "query($id: ID!) { node(id: $id) { __typename id ... on User { email } ... on Role { name } } }";
    let user = app.gql(NODE, json!({ "id": alice_id }), Some(&admin)).await;
    assert_eq!(user["data"]["node"]["email"], "alice@example.com");
    let roles = app
        .gql("{ roles { id name } }", json!({}), Some(&admin))
        .await;
    let role_id = roles["data"]["roles"][0]["id"].clone();
    let role = app.gql(NODE, json!({ "id": role_id }), Some(&admin)).await;
    assert_eq!(role["data"]["node"]["__typename"], "Role");
    // A plain user sees neither the role nor another account.
    let hidden = app.gql(NODE, json!({ "id": role_id }), Some(&alice)).await;
    assert!(hidden["data"]["node"].is_null(), "{hidden}");
}
