//! The account's address, as a new user meets it: the verification mail, verifying, a
//! verified change of address with a way back, the data export; mail through the `.eml`
//! outbox and through a real SMTP server that refuses at first.

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, PASSWORD, TestApp, error_code, error_fields};
use crate::mailbox::{self, Mail, SmtpSink};

both_backends!(
    register_mails_a_link_that_verifies_once,
    a_newer_link_voids_the_older_and_requests_are_limited,
    login_waits_for_a_verified_address_when_required,
    a_new_address_counts_only_once_confirmed,
    a_taken_address_answers_alike_and_conflicts_at_confirmation,
    the_old_address_can_undo_a_change,
    the_export_holds_everything_about_you_and_nothing_else,
    mail_reaches_an_smtp_server_that_refuses_at_first_and_survives_a_restart,
    a_reset_mailed_to_an_old_address_ends_with_the_change,
);

const PUBLIC: [&str; 2] = ["--public-url", "https://app.example.com/"];

async fn outbox_mail(app: &TestApp, to: &str, subject: &str, count: usize) -> Vec<Mail> {
    mailbox::wait_for(|| mailbox::outbox(app), to, subject, count).await
}

async fn verify(app: &TestApp, token: &str) -> Value {
    app.gql(
        "mutation($t: String!) { verifyEmail(token: $t) { email emailVerified } }",
        json!({ "t": token }),
        None,
    )
    .await
}

async fn me(app: &TestApp, token: &str) -> Value {
    app.gql("{ me { email emailVerified } }", json!({}), Some(token))
        .await["data"]["me"]
        .clone()
}

async fn register_mails_a_link_that_verifies_once(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &PUBLIC).await else {
        return;
    };
    let (access, _) = app.user("new@example.com").await;
    assert_eq!(me(&app, &access).await["emailVerified"], false);
    let mail = &outbox_mail(&app, "new@example.com", "Confirm your email address", 1).await[0];
    // A link built from the public URL, in both parts.
    assert!(
        mail.text
            .contains("https://app.example.com/verify-email?token=ugem_"),
        "{}",
        mail.text
    );
    assert!(
        mail.html
            .contains("href=\"https://app.example.com/verify-email?token=ugem_")
    );
    let token = mail.token("ugem_");
    let verified = verify(&app, &token).await;
    assert_eq!(
        verified["data"]["verifyEmail"]["emailVerified"], true,
        "{verified}"
    );
    assert_eq!(me(&app, &access).await["emailVerified"], true);
    let again = verify(&app, &token).await;
    assert_eq!(error_code(&again), "BAD_USER_INPUT");
    assert_eq!(error_fields(&again), ["token"]);
    assert_eq!(app.audit("user.email_verify").await.len(), 1);
}

async fn a_newer_link_voids_the_older_and_requests_are_limited(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (access, _) = app.user("twice@example.com").await;
    let first = outbox_mail(&app, "twice@example.com", "Confirm", 1).await[0].token("ugem_");
    let request = "mutation { requestEmailVerification }";
    assert_eq!(
        app.gql(request, json!({}), Some(&access)).await["data"]["requestEmailVerification"],
        true
    );
    let mails = outbox_mail(&app, "twice@example.com", "Confirm", 2).await;
    let second = mails
        .iter()
        .map(|m| m.token("ugem_"))
        .find(|t| *t != first)
        .expect("a second token");
    // Without a public URL the mail shows the code to paste.
    assert!(mails[0].text.contains("verifyEmail"), "{}", mails[0].text);
    assert_eq!(error_code(&verify(&app, &first).await), "BAD_USER_INPUT");
    assert_eq!(
        verify(&app, &second).await["data"]["verifyEmail"]["emailVerified"],
        true
    );
    // Three requests an hour per account (verified or not), then RATE_LIMITED.
    for _ in 0..2 {
        let answer = app.gql(request, json!({}), Some(&access)).await;
        assert_eq!(answer["data"]["requestEmailVerification"], true, "{answer}");
    }
    let refused = app.gql(request, json!({}), Some(&access)).await;
    assert_eq!(error_code(&refused), "RATE_LIMITED", "{refused}");
    // A verified address got no more mail.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        mailbox::outbox(&app)
            .iter()
            .filter(|m| m.to == "twice@example.com")
            .count(),
        2
    );
}

async fn login_waits_for_a_verified_address_when_required(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &["--require-verified-email", "true"]).await
    else {
        return;
    };
    app.register("strict@example.com").await;
    let login = "mutation($e: String!, $p: String!) { login(input: { email: $e, password: $p }) { accessToken } }";
    let refused = app
        .gql(
            login,
            json!({ "e": "strict@example.com", "p": PASSWORD }),
            None,
        )
        .await;
    assert_eq!(error_code(&refused), "EMAIL_NOT_VERIFIED", "{refused}");
    let message = refused["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("mail"), "{message}");
    // The refusal sent a fresh link; a wrong password gets the usual answer, and no mail.
    let mails = outbox_mail(&app, "strict@example.com", "Confirm", 2).await;
    let wrong = app
        .gql(
            login,
            json!({ "e": "strict@example.com", "p": "not the password, no" }),
            None,
        )
        .await;
    assert_eq!(error_code(&wrong), "UNAUTHENTICATED");
    let newest = mails.iter().map(|m| m.token("ugem_")).collect::<Vec<_>>();
    let mut verified = false;
    for token in &newest {
        verified |= verify(&app, token).await["data"]["verifyEmail"]["emailVerified"] == true;
    }
    assert!(verified, "the newest link verifies");
    app.login("strict@example.com", PASSWORD).await;
}

const CHANGE: &str =
    "mutation($n: String!, $p: String!) { changeEmail(newEmail: $n, password: $p) }";

async fn a_new_address_counts_only_once_confirmed(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &PUBLIC).await else {
        return;
    };
    let (access, _) = app.user("old@example.com").await;
    let wrong = app
        .gql(
            CHANGE,
            json!({ "n": "new@example.com", "p": "not my password at all" }),
            Some(&access),
        )
        .await;
    assert_eq!(error_fields(&wrong), ["password"], "{wrong}");
    let answer = app
        .gql(
            CHANGE,
            json!({ "n": "New@Example.com", "p": PASSWORD }),
            Some(&access),
        )
        .await;
    assert_eq!(answer["data"]["changeEmail"], true, "{answer}");
    let confirm = &outbox_mail(&app, "new@example.com", "Confirm your new email", 1).await[0];
    let notice = &outbox_mail(&app, "old@example.com", "being changed", 1).await[0];
    assert!(notice.text.contains("ne***@example.com"), "{}", notice.text);
    assert!(
        notice
            .text
            .contains("https://app.example.com/cancel-email-change?token=ugem_")
    );
    // Nothing changed yet.
    assert_eq!(me(&app, &access).await["email"], "old@example.com");
    app.login("old@example.com", PASSWORD).await;
    let confirmed = verify(&app, &confirm.token("ugem_")).await;
    assert_eq!(
        confirmed["data"]["verifyEmail"]["email"], "new@example.com",
        "{confirmed}"
    );
    assert_eq!(confirmed["data"]["verifyEmail"]["emailVerified"], true);
    assert_eq!(me(&app, &access).await["email"], "new@example.com");
    app.login("new@example.com", PASSWORD).await;
    let old = app
        .gql(
            "mutation { login(input: { email: \"old@example.com\", password: \"correct horse battery staple\" }) { accessToken } }",
            json!({}),
            None,
        )
        .await;
    assert_eq!(error_code(&old), "UNAUTHENTICATED");
    assert_eq!(app.audit("user.email_change").await.len(), 1);
}

async fn a_taken_address_answers_alike_and_conflicts_at_confirmation(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.register("taken@example.com").await;
    let (access, _) = app.user("mover@example.com").await;
    let answer = app
        .gql(
            CHANGE,
            json!({ "n": "taken@example.com", "p": PASSWORD }),
            Some(&access),
        )
        .await;
    assert_eq!(answer, json!({ "data": { "changeEmail": true } }));
    let confirm = &outbox_mail(&app, "taken@example.com", "Confirm your new email", 1).await[0];
    let conflict = verify(&app, &confirm.token("ugem_")).await;
    assert_eq!(error_code(&conflict), "CONFLICT", "{conflict}");
    assert_eq!(me(&app, &access).await["email"], "mover@example.com");
}

async fn the_old_address_can_undo_a_change(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (access, _) = app.user("victim@example.com").await;
    app.gql(
        CHANGE,
        json!({ "n": "thief@example.com", "p": PASSWORD }),
        Some(&access),
    )
    .await;
    let confirm = outbox_mail(&app, "thief@example.com", "Confirm", 1).await[0].token("ugem_");
    let cancel =
        outbox_mail(&app, "victim@example.com", "being changed", 1).await[0].token("ugem_");
    verify(&app, &confirm).await;
    assert_eq!(me(&app, &access).await["email"], "thief@example.com");
    // A cancel token does not verify, and a confirmation does not cancel.
    assert_eq!(error_code(&verify(&app, &cancel).await), "BAD_USER_INPUT");
    let undo = "mutation($t: String!) { cancelEmailChange(token: $t) }";
    let answer = app.gql(undo, json!({ "t": cancel }), None).await;
    assert_eq!(answer["data"]["cancelEmailChange"], true, "{answer}");
    // The address is back and every session ended.
    let refused = app.gql("{ me { email } }", json!({}), Some(&access)).await;
    assert_eq!(error_code(&refused), "UNAUTHENTICATED");
    let back = app.login("victim@example.com", PASSWORD).await;
    assert_eq!(me(&app, &back).await["email"], "victim@example.com");
    assert_eq!(
        error_code(&app.gql(undo, json!({ "t": cancel }), None).await),
        "BAD_USER_INPUT"
    );
    assert_eq!(app.audit("user.email_change_cancel").await.len(), 1);
}

async fn the_export_holds_everything_about_you_and_nothing_else(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (other, _) = app.user("someone.else@example.com").await;
    let (access, id) = app.user("exporter@example.com").await;
    app.gql(
        "mutation { updateMyProfile(input: { displayName: \"Ex Porter\", description: \"likes JSON\" }) { profile { displayName } } }",
        json!({}),
        Some(&access),
    )
    .await;
    let secret = app.personal_token(&access, "backup script").await;
    let answer = app
        .gql("mutation { exportMyData }", json!({}), Some(&access))
        .await;
    let export = &answer["data"]["exportMyData"];
    assert_eq!(export["account"]["id"], id.as_str(), "{answer}");
    assert_eq!(export["account"]["email"], "exporter@example.com");
    assert_eq!(export["profile"]["displayName"], "Ex Porter");
    assert_eq!(export["roles"][0]["name"], "user");
    assert!(!export["sessions"].as_array().unwrap().is_empty());
    assert_eq!(export["personalAccessTokens"][0]["name"], "backup script");
    let actions: Vec<&str> = export["auditEvents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"user.register"), "{actions:?}");
    assert!(actions.contains(&"pat.create"), "{actions:?}");
    let text = export.to_string();
    for secret_part in [&secret[4..], "password", "hash", "someone.else"] {
        assert!(
            !text.contains(secret_part),
            "the export holds {secret_part}"
        );
    }
    assert_eq!(app.audit("user.data_export").await.len(), 1);
    // Not with a personal access token; and another account's export is its own.
    let refused = app
        .gql("mutation { exportMyData }", json!({}), Some(&secret))
        .await;
    assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");
    let theirs = app
        .gql("mutation { exportMyData }", json!({}), Some(&other))
        .await;
    assert!(!theirs.to_string().contains("exporter@example.com"));
}

async fn mail_reaches_an_smtp_server_that_refuses_at_first_and_survives_a_restart(
    backend: Backend,
) {
    let sink = SmtpSink::start(2).await;
    let url = sink.url();
    let settings = ["--smtp-url", url.as_str(), "--mail-retry-delay", "100ms"];
    let Some(app) = TestApp::spawn_with(backend, &settings).await else {
        return;
    };
    // The mutation does not wait for the mail server.
    let started = std::time::Instant::now();
    app.register("smtp@example.com").await;
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let mail = &mailbox::wait_for(|| sink.mails(), "smtp@example.com", "Confirm", 1).await[0];
    assert_eq!(sink.refused.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert!(mail.html.contains("ugem_"), "both parts: {}", mail.html);
    assert!(
        mailbox::outbox(&app).is_empty(),
        "nothing written to the outbox"
    );

    // A server that refuses everything: the message waits in the database, and the next
    // start delivers it.
    sink.refuse(usize::MAX);
    let (access, _) = app.user("later@example.com").await;
    app.gql(
        "mutation { requestEmailVerification }",
        json!({}),
        Some(&access),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(sink.mails().iter().all(|m| m.to != "later@example.com"));
    let app = app.restart().await;
    sink.refuse(0);
    let delivered = mailbox::wait_for(|| sink.mails(), "later@example.com", "Confirm", 2).await;
    assert_eq!(delivered.len(), 2);
    // Marked sent once the server said so (a moment after it has the message).
    let started = std::time::Instant::now();
    while app.services.mail_pending().await.unwrap() > 0 {
        assert!(started.elapsed().as_secs() < 10, "mail still pending");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Asks for a reset of `email`'s password; returns the mailed token.
async fn reset_token(app: &TestApp, email: &str) -> String {
    let asked = app
        .gql(
            "mutation($e: String!) { requestPasswordReset(email: $e) }",
            json!({ "e": email }),
            None,
        )
        .await;
    assert_eq!(asked["data"]["requestPasswordReset"], true, "{asked}");
    outbox_mail(app, email, "Reset your password", 1).await[0].token("ugpr_")
}

/// A reset token went to the address the account had: once the account moves to another
/// (its owner confirming, or an administrator), that mailbox no longer sets its password.
async fn a_reset_mailed_to_an_old_address_ends_with_the_change(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let reset = |token: String| {
        let app = &app;
        async move {
            app.gql(
                "mutation($t: String!) { resetPassword(token: $t, newPassword: \"a new passphrase for later\") }",
                json!({ "t": token }),
                None,
            )
            .await
        }
    };
    let (access, _) = app.user("mover@example.com").await;
    let stale = reset_token(&app, "mover@example.com").await;
    let moved = app
        .gql(
            CHANGE,
            json!({ "n": "moved@example.com", "p": PASSWORD }),
            Some(&access),
        )
        .await;
    assert_eq!(moved["data"]["changeEmail"], true, "{moved}");
    let confirm = &outbox_mail(&app, "moved@example.com", "Confirm your new email", 1).await[0];
    verify(&app, &confirm.token("ugem_")).await;
    let answer = reset(stale).await;
    assert_eq!(error_fields(&answer), ["token"], "{answer}");

    let admin = app.admin().await;
    let (_, id) = app.user("managed@example.com").await;
    let stale = reset_token(&app, "managed@example.com").await;
    let updated = app
        .gql(
            "mutation($id: ID!) { updateUser(id: $id, input: { email: \"handed-over@example.com\" }) { email } }",
            json!({ "id": id }),
            Some(&admin),
        )
        .await;
    assert_eq!(
        updated["data"]["updateUser"]["email"], "handed-over@example.com",
        "{updated}"
    );
    let answer = reset(stale).await;
    assert_eq!(error_fields(&answer), ["token"], "{answer}");
    // A reset asked for after the change works as ever.
    let fresh = reset_token(&app, "handed-over@example.com").await;
    assert_eq!(reset(fresh).await["data"]["resetPassword"], true);
}
