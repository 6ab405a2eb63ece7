//! Password policy, password change, and hash upgrades.

use serde_json::json;

use crate::both_backends;
use crate::helpers::{Backend, PASSWORD, TestApp, error_code, error_fields};

both_backends!(
    common_passwords_and_the_email_are_refused,
    change_password_revokes_other_sessions,
    old_hashes_are_upgraded_at_login,
);

const REGISTER: &str = "mutation($e: String!, $p: String!) { register(input: { email: $e, password: $p }) { accessToken } }";
const CHANGE: &str = "mutation($c: String!, $n: String!) { changePassword(input: { currentPassword: $c, newPassword: $n }) }";

async fn common_passwords_and_the_email_are_refused(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &["--password-min-length", "8"]).await else {
        return;
    };
    let common = app
        .gql(
            REGISTER,
            json!({ "e": "c@example.com", "p": "Password1" }),
            None,
        )
        .await;
    assert_eq!(error_code(&common), "BAD_USER_INPUT");
    assert_eq!(error_fields(&common), ["password"]);
    let message = common["errors"][0]["extensions"]["fields"][0]["message"]
        .as_str()
        .unwrap();
    assert!(message.contains("commonly used"), "{message}");

    let own = app
        .gql(
            REGISTER,
            json!({ "e": "kathrine@example.com", "p": "KATHRINE-2024!" }),
            None,
        )
        .await;
    assert_eq!(error_fields(&own), ["password"]);
    let fine = app
        .gql(
            REGISTER,
            json!({ "e": "kathrine@example.com", "p": "tulip orbit canoe" }),
            None,
        )
        .await;
    assert!(fine.get("errors").is_none(), "{fine}");
}

async fn change_password_revokes_other_sessions(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.register("mover@example.com").await;
    let (here, _) = app.login_pair("mover@example.com", "here").await;
    let (there, there_refresh) = app.login_pair("mover@example.com", "there").await;
    let new = "a completely different passphrase";

    let wrong = app
        .gql(
            CHANGE,
            json!({ "c": "not my password at all", "n": new }),
            Some(&here),
        )
        .await;
    assert_eq!(error_fields(&wrong), ["currentPassword"]);
    let weak = app
        .gql(CHANGE, json!({ "c": PASSWORD, "n": "short" }), Some(&here))
        .await;
    assert_eq!(error_fields(&weak), ["newPassword"]);
    let with_email = app
        .gql(
            CHANGE,
            json!({ "c": PASSWORD, "n": "mover mover mover mover" }),
            Some(&here),
        )
        .await;
    assert_eq!(error_fields(&with_email), ["newPassword"]);

    let changed = app
        .gql(CHANGE, json!({ "c": PASSWORD, "n": new }), Some(&here))
        .await;
    assert_eq!(changed["data"]["changePassword"], true, "{changed}");
    assert!(
        app.gql("{ me { id } }", json!({}), Some(&here))
            .await
            .get("errors")
            .is_none()
    );
    assert_eq!(
        error_code(&app.gql("{ me { id } }", json!({}), Some(&there)).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        error_code(&app.refresh(&there_refresh).await),
        "UNAUTHENTICATED"
    );

    let old = app
        .gql("mutation($p: String!) { login(input: { email: \"mover@example.com\", password: $p }) { accessToken } }", json!({ "p": PASSWORD }), None)
        .await;
    assert_eq!(error_code(&old), "UNAUTHENTICATED");
    app.login("mover@example.com", new).await;
    let events = app.audit("user.password_change").await;
    assert_eq!(events.len(), 1);
    assert!(
        !events[0]
            .details
            .as_deref()
            .unwrap_or_default()
            .contains(new)
    );
}

async fn stored_hash(app: &TestApp, email: &str) -> String {
    let mut db = app.services.db.get().await.unwrap();
    usergraph::db::users::find_user_by_email(&mut db.conn(), email)
        .await
        .unwrap()
        .unwrap()
        .password_hash
}

async fn old_hashes_are_upgraded_at_login(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.register("legacy@example.com").await;
    assert!(
        stored_hash(&app, "legacy@example.com")
            .await
            .contains("m=64,t=1")
    );
    let app = app
        .restart_with(&["--argon2-memory-kib", "128", "--argon2-iterations", "2"])
        .await;
    app.login("legacy@example.com", PASSWORD).await;
    let upgraded = stored_hash(&app, "legacy@example.com").await;
    assert!(
        upgraded.starts_with("$argon2id$") && upgraded.contains("m=128,t=2"),
        "{upgraded}"
    );
    app.login("legacy@example.com", PASSWORD).await;
}
