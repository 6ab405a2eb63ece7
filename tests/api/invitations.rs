//! Invitations: an administrator opens an account for an address, its owner chooses the
//! first password from the mailed link and is logged in.

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, PASSWORD, TestApp, error_code, error_fields};
use crate::mailbox::{self, Mail};

both_backends!(
    an_invited_owner_chooses_the_password_and_is_logged_in,
    invitations_are_for_administrators_and_expire,
);

const INVITE: &str = "mutation($e: String!) {
    inviteUser(input: { email: $e, displayName: \"Grace\" }) {
        id email emailVerified profile { displayName } roles { name } } }";
const ACCEPT: &str = "mutation($t: String!, $p: String!) {
    acceptInvitation(token: $t, password: $p) {
        accessToken refreshToken user { id email emailVerified } } }";
const LOGIN: &str = "mutation($e: String!, $p: String!) {
    login(input: { email: $e, password: $p }) { accessToken } }";

async fn invitation_mail(app: &TestApp, to: &str) -> Mail {
    mailbox::wait_for(|| mailbox::outbox(app), to, "You are invited", 1)
        .await
        .remove(0)
}

async fn accept(app: &TestApp, token: &str, password: &str) -> Value {
    app.gql(ACCEPT, json!({ "t": token, "p": password }), None)
        .await
}

async fn an_invited_owner_chooses_the_password_and_is_logged_in(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = app.admin().await;
    let invited = app
        .gql(INVITE, json!({ "e": "grace@example.com" }), Some(&admin))
        .await;
    let user = &invited["data"]["inviteUser"];
    assert_eq!(user["email"], "grace@example.com", "{invited}");
    assert_eq!(user["emailVerified"], false);
    assert_eq!(user["profile"]["displayName"], "Grace");
    assert_eq!(user["roles"], json!([{ "name": "user" }]));
    let id = user["id"].as_str().unwrap().to_owned();

    // Nobody can sign in before the owner has chosen a password.
    let early = app
        .gql(
            LOGIN,
            json!({ "e": "grace@example.com", "p": PASSWORD }),
            None,
        )
        .await;
    assert_eq!(error_code(&early), "UNAUTHENTICATED", "{early}");

    let token = invitation_mail(&app, "grace@example.com")
        .await
        .token("ugem_");
    // It is no verification token, and a weak password leaves it unused.
    let verified = app
        .gql(
            "mutation($t: String!) { verifyEmail(token: $t) { id } }",
            json!({ "t": token }),
            None,
        )
        .await;
    assert_eq!(error_fields(&verified), ["token"], "{verified}");
    let weak = accept(&app, &token, "short").await;
    assert_eq!(error_fields(&weak), ["password"], "{weak}");

    let accepted = accept(&app, &token, PASSWORD).await;
    let payload = &accepted["data"]["acceptInvitation"];
    assert_eq!(payload["user"]["id"], id.as_str(), "{accepted}");
    assert_eq!(payload["user"]["emailVerified"], true);
    let access = payload["accessToken"].as_str().unwrap();
    let me = app.gql("{ me { email } }", json!({}), Some(access)).await;
    assert_eq!(me["data"]["me"]["email"], "grace@example.com", "{me}");
    let login = app
        .gql(
            LOGIN,
            json!({ "e": "grace@example.com", "p": PASSWORD }),
            None,
        )
        .await;
    assert!(login["data"]["login"]["accessToken"].is_string(), "{login}");

    // Once only; and the address is taken now.
    let again = accept(&app, &token, "another passphrase long enough").await;
    assert_eq!(error_fields(&again), ["token"], "{again}");
    let twice = app
        .gql(INVITE, json!({ "e": "GRACE@example.com" }), Some(&admin))
        .await;
    assert_eq!(error_code(&twice), "CONFLICT", "{twice}");

    let invite = app.audit("user.invite").await;
    assert_eq!(invite.len(), 1);
    assert!(
        invite[0]
            .actor_id
            .is_some_and(|actor| actor.to_string() != id)
    );
    assert_eq!(app.audit("user.invitation_accept").await.len(), 1);
}

async fn invitations_are_for_administrators_and_expire(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &["--invitation-ttl", "1s"]).await else {
        return;
    };
    let (user, _) = app.user("ada@example.com").await;
    let refused = app
        .gql(INVITE, json!({ "e": "eve@example.com" }), Some(&user))
        .await;
    assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");
    assert!(
        mailbox::outbox(&app)
            .iter()
            .all(|m| m.to != "eve@example.com")
    );

    let admin = app.admin().await;
    let invited = app
        .gql(INVITE, json!({ "e": "late@example.com" }), Some(&admin))
        .await;
    assert!(invited["data"]["inviteUser"]["id"].is_string(), "{invited}");
    let token = invitation_mail(&app, "late@example.com")
        .await
        .token("ugem_");
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    let expired = accept(&app, &token, PASSWORD).await;
    assert_eq!(error_fields(&expired), ["token"], "{expired}");
}
