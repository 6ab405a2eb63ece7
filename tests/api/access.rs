//! The access matrix: every query and mutation as anonymous, a plain user, another plain
//! user, a user with a custom role (`users:read`, `audit:read`) and an admin, checked
//! against the contract's permissions.

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, PASSWORD, TestApp};

both_backends!(every_operation_as_every_caller);

const OK: &str = "ok";
const UNAUTH: &str = "UNAUTHENTICATED";
const FORBID: &str = "FORBIDDEN";

/// The outcome of a call: `ok`, or its first error code.
fn outcome(answer: &Value) -> String {
    match answer["errors"][0]["extensions"]["code"].as_str() {
        Some(code) => code.to_owned(),
        None if answer.get("errors").is_some() => format!("uncoded error: {answer}"),
        None => OK.to_owned(),
    }
}

async fn every_operation_as_every_caller(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = app.admin().await;
    let (plain, plain_id) = app.user("plain@example.com").await;
    let (other, _) = app.user("other@example.com").await;
    let (custom, custom_id) = app.user("auditor@example.com").await;
    let (_, target) = app.user("target@example.com").await;
    app.gql(
        "mutation { createRole(input: { name: \"auditor\", permissions: [\"users:read\", \"audit:read\"] }) { id } }",
        json!({}),
        Some(&admin),
    )
    .await;
    app.gql(
        "mutation($u: ID!) { assignRole(userId: $u, role: \"auditor\") { id } }",
        json!({ "u": custom_id }),
        Some(&admin),
    )
    .await;

    let callers: [(&str, Option<&str>); 5] = [
        ("anonymous", None),
        ("plain", Some(&plain)),
        ("other", Some(&other)),
        ("custom", Some(&custom)),
        ("admin", Some(&admin)),
    ];
    // Operation, variables, expected outcome for each caller in the order above.
    let matrix: Vec<(&str, Value, [&str; 5])> = vec![
        ("{ me { id email } }", json!({}), [UNAUTH, OK, OK, OK, OK]),
        (
            "query($id: ID!) { user(id: $id) { id email } }",
            json!({ "id": plain_id }),
            [UNAUTH, OK, FORBID, OK, OK],
        ),
        (
            "{ users(first: 5) { totalCount nodes { email } } }",
            json!({}),
            [UNAUTH, FORBID, FORBID, OK, OK],
        ),
        (
            "{ roles { name } }",
            json!({}),
            [UNAUTH, FORBID, FORBID, FORBID, OK],
        ),
        (
            "{ mySessions { id current } }",
            json!({}),
            [UNAUTH, OK, OK, OK, OK],
        ),
        (
            "{ myPersonalAccessTokens { id } }",
            json!({}),
            [UNAUTH, OK, OK, OK, OK],
        ),
        (
            "{ auditLog(first: 5) { totalCount nodes { action } } }",
            json!({}),
            [UNAUTH, FORBID, FORBID, OK, OK],
        ),
        (
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": plain_id }),
            [UNAUTH, OK, OK, OK, OK],
        ),
        (
            "mutation { updateMyProfile(input: { displayName: \"Me\" }) { id } }",
            json!({}),
            [UNAUTH, OK, OK, OK, OK],
        ),
        (
            "mutation { createPersonalAccessToken(input: { name: \"t\", scopes: [] }) { token } }",
            json!({}),
            [UNAUTH, OK, OK, OK, OK],
        ),
        (
            "mutation($p: String!) { createUser(input: { email: \"made@example.com\", password: $p }) { id } }",
            json!({ "p": PASSWORD }),
            [UNAUTH, FORBID, FORBID, FORBID, OK],
        ),
        (
            // Open to anyone: the token is what it checks.
            "mutation($p: String!) { acceptInvitation(token: \"ugem_unknown\", password: $p) { accessToken } }",
            json!({ "p": PASSWORD }),
            ["BAD_USER_INPUT"; 5],
        ),
        (
            "mutation { inviteUser(input: { email: \"invited@example.com\" }) { id } }",
            json!({}),
            [UNAUTH, FORBID, FORBID, FORBID, OK],
        ),
        (
            "mutation($id: ID!) { updateUser(id: $id, input: { profile: { displayName: \"T\" } }) { id } }",
            json!({ "id": target }),
            [UNAUTH, FORBID, FORBID, FORBID, OK],
        ),
        (
            "mutation { createRole(input: { name: \"temp\", permissions: [] }) { id } }",
            json!({}),
            [UNAUTH, FORBID, FORBID, FORBID, OK],
        ),
        (
            "mutation($id: ID!) { assignRole(userId: $id, role: \"temp\") { id } }",
            json!({ "id": target }),
            [UNAUTH, FORBID, FORBID, FORBID, OK],
        ),
        (
            "mutation($id: ID!) { revokeRole(userId: $id, role: \"temp\") { id } }",
            json!({ "id": target }),
            [UNAUTH, FORBID, FORBID, FORBID, OK],
        ),
        (
            "mutation { deleteRole(name: \"temp\") }",
            json!({}),
            [UNAUTH, FORBID, FORBID, FORBID, OK],
        ),
        (
            "mutation($id: ID!) { deleteUser(id: $id) { id } }",
            json!({ "id": target }),
            [UNAUTH, FORBID, FORBID, FORBID, OK],
        ),
        (
            "mutation($id: ID!) { restoreUser(id: $id) { id } }",
            json!({ "id": target }),
            [UNAUTH, FORBID, FORBID, FORBID, OK],
        ),
        (
            "mutation($id: ID!) { purgeUser(id: $id) }",
            json!({ "id": target }),
            [UNAUTH, FORBID, FORBID, FORBID, OK],
        ),
        (
            "mutation { logoutAll }",
            json!({}),
            [UNAUTH, OK, OK, OK, OK],
        ),
    ];
    let mut wrong = Vec::new();
    for (query, variables, expected) in &matrix {
        for ((who, token), want) in callers.iter().zip(expected) {
            let got = outcome(&app.gql(query, variables.clone(), *token).await);
            if got != *want {
                wrong.push(format!("{who}: {query} → {got}, expected {want}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");

    // Anonymous callers can sign up and log in, and nothing else.
    let anonymous = [
        (
            "mutation($p: String!) { register(input: { email: \"anon@example.com\", password: $p }) { accessToken } }",
            OK,
        ),
        (
            "mutation($p: String!) { login(input: { email: \"anon@example.com\", password: $p }) { accessToken } }",
            OK,
        ),
    ];
    for (query, want) in anonymous {
        assert_eq!(
            outcome(&app.gql(query, json!({ "p": PASSWORD }), None).await),
            want,
            "{query}"
        );
    }
}
