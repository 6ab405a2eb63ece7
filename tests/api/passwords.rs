//! Password policy, password change, and hash upgrades.

use serde_json::json;

use crate::both_backends;
use crate::helpers::{Backend, PASSWORD, TestApp, error_code, error_fields};

both_backends!(
    common_passwords_and_the_email_are_refused,
    change_password_revokes_other_sessions,
    old_hashes_are_upgraded_at_login,
    password_reset_by_mail_works_while_locked,
    deactivated_and_deleted_accounts_lose_access_at_once,
    delete_my_account_erases_it,
    password_confirmations_count_towards_the_lockout,
    a_full_hashing_queue_refuses_at_once,
    a_password_changed_on_another_instance_is_the_one_asked_for_at_once,
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

/// The password hash stored for `email`.
pub(crate) async fn stored_hash(app: &TestApp, email: &str) -> String {
    let mut db = app.sql().await.get().await.unwrap();
    usergraph::db::users::find_login(&mut db.conn(), email)
        .await
        .unwrap()
        .unwrap()
        .1
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

/// Waits for the reset mails in the outbox and returns their tokens.
async fn mailed_tokens(app: &TestApp, expected: usize) -> Vec<String> {
    let outbox = app.data_dir().join("outbox");
    let started = std::time::Instant::now();
    loop {
        let mut tokens = Vec::new();
        for entry in std::fs::read_dir(&outbox).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            if let Some(at) = text.find("ugpr_") {
                let token: String = text[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                    .collect();
                tokens.push(token);
            }
        }
        if tokens.len() >= expected {
            return tokens;
        }
        assert!(started.elapsed().as_secs() < 10, "no reset mail arrived");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn password_reset_by_mail_works_while_locked(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (access, _) = app.user("forgetful@example.com").await;
    for _ in 0..5 {
        app.gql(
            "mutation { login(input: { email: \"forgetful@example.com\", password: \"not it at all, sorry\" }) { accessToken } }",
            json!({}),
            None,
        )
        .await;
    }
    const REQUEST: &str = "mutation($e: String!) { requestPasswordReset(email: $e) }";
    for email in ["Forgetful@Example.com", "nobody@example.com"] {
        let answer = app.gql(REQUEST, json!({ "e": email }), None).await;
        assert_eq!(answer["data"]["requestPasswordReset"], true);
    }
    let tokens = mailed_tokens(&app, 1).await;
    assert_eq!(tokens.len(), 1, "only the existing account gets mail");
    let token = &tokens[0];

    const RESET: &str =
        "mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }";
    let weak = app
        .gql(RESET, json!({ "t": token, "p": "short" }), None)
        .await;
    assert_eq!(error_fields(&weak), ["newPassword"]);
    let new = "remembered at last, truly";
    let done = app.gql(RESET, json!({ "t": token, "p": new }), None).await;
    assert_eq!(done["data"]["resetPassword"], true, "{done}");
    assert_eq!(
        error_code(&app.gql("{ me { id } }", json!({}), Some(&access)).await),
        "UNAUTHENTICATED"
    );
    // The lock is lifted and the new password works; the token is spent.
    app.login("forgetful@example.com", new).await;
    let again = app
        .gql(
            RESET,
            json!({ "t": token, "p": "yet another passphrase" }),
            None,
        )
        .await;
    assert_eq!(error_fields(&again), ["token"]);
    assert_eq!(app.audit("user.password_reset").await.len(), 1);
}

async fn deactivated_and_deleted_accounts_lose_access_at_once(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let payload = app.register("leaving@example.com").await;
    let access = payload["accessToken"].as_str().unwrap();
    let refresh = payload["refreshToken"].as_str().unwrap();
    app.exec("UPDATE users SET is_active = (1 = 0)").await;
    assert_eq!(
        error_code(&app.gql("{ me { id } }", json!({}), Some(access)).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(error_code(&app.refresh(refresh).await), "UNAUTHENTICATED");
    app.exec("UPDATE users SET is_active = (1 = 1), deleted_at = '2020-01-01 00:00:00'")
        .await;
    assert_eq!(
        error_code(&app.gql("{ me { id } }", json!({}), Some(access)).await),
        "UNAUTHENTICATED"
    );
    let login = app
        .gql("mutation($p: String!) { login(input: { email: \"leaving@example.com\", password: $p }) { accessToken } }", json!({ "p": PASSWORD }), None)
        .await;
    assert_eq!(error_code(&login), "UNAUTHENTICATED");
}

const DELETE_ME: &str = "mutation($p: String!) { deleteMyAccount(password: $p) }";

async fn delete_my_account_erases_it(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (token, id) = app.user("leaver@example.com").await;
    let (other_device, _) = app.login_pair("leaver@example.com", "phone").await;

    let wrong = app
        .gql(
            DELETE_ME,
            json!({ "p": "not my password at all" }),
            Some(&token),
        )
        .await;
    assert_eq!(error_fields(&wrong), ["password"]);
    let pat = app.personal_token(&token, "x").await;
    let by_pat = app
        .gql(DELETE_ME, json!({ "p": PASSWORD }), Some(&pat))
        .await;
    assert_eq!(error_code(&by_pat), "FORBIDDEN");

    let done = app
        .gql(DELETE_ME, json!({ "p": PASSWORD }), Some(&token))
        .await;
    assert_eq!(done["data"]["deleteMyAccount"], true, "{done}");
    for credential in [&token, &other_device, &pat] {
        let me = app.gql("{ me { id } }", json!({}), Some(credential)).await;
        assert_eq!(error_code(&me), "UNAUTHENTICATED");
    }
    let events = app.audit("user.self_delete").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].target_id.as_deref(), Some(id.as_str()));
    // The address is free again.
    app.register("leaver@example.com").await;

    // The last administrator cannot leave this way.
    let admin = app.admin().await;
    let last = app
        .gql(DELETE_ME, json!({ "p": PASSWORD }), Some(&admin))
        .await;
    assert_eq!(error_code(&last), "FORBIDDEN");
}

async fn password_confirmations_count_towards_the_lockout(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (token, _) = app.user("stolen@example.com").await;
    let mut codes = Vec::new();
    for _ in 0..6 {
        let answer = app
            .gql(
                CHANGE,
                json!({ "c": "guessing the password", "n": "a brand new passphrase" }),
                Some(&token),
            )
            .await;
        codes.push(error_code(&answer).to_owned());
    }
    assert_eq!(codes[..4], ["BAD_USER_INPUT"; 4]);
    assert_eq!(codes[4..], ["ACCOUNT_LOCKED"; 2]);
    // The owner's correct password is refused too until the lock ends; a reset lifts it.
    let locked = app
        .gql(
            CHANGE,
            json!({ "c": PASSWORD, "n": "a brand new passphrase" }),
            Some(&token),
        )
        .await;
    assert_eq!(error_code(&locked), "ACCOUNT_LOCKED");
}

async fn a_full_hashing_queue_refuses_at_once(backend: Backend) {
    // One slow hashing thread: its queue (32) fills long before the first hash is done.
    let slow = [
        "--password-hash-concurrency",
        "1",
        "--argon2-memory-kib",
        "32768",
        "--argon2-iterations",
        "6",
        // Eighty logins from one address: `login.ip` would refuse twenty of them first.
        "--rate-limits",
        "off",
    ];
    let Some(app) = TestApp::spawn_with(backend, &slow).await else {
        return;
    };
    let login = "mutation($e: String!) { login(input: { email: $e, password: \"a wrong password here\" }) { accessToken } }";
    let attempts = (0..80).map(|i| {
        let app = &app;
        async move {
            app.gql(
                login,
                json!({ "e": format!("nobody{i}@example.com") }),
                None,
            )
            .await
        }
    });
    let answers = futures_util::future::join_all(attempts).await;
    let mut refused = 0;
    for answer in &answers {
        match error_code(answer) {
            "UNAUTHENTICATED" => {}
            "RATE_LIMITED" => {
                assert_eq!(
                    answer["errors"][0]["extensions"]["limit"], "password_hashing.queue",
                    "{answer}"
                );
                refused += 1;
            }
            other => panic!("{other}: {answer}"),
        }
    }
    let started = std::time::Instant::now();
    eprintln!(
        "refused {refused} of {} after {:?}",
        answers.len(),
        started.elapsed()
    );
    assert!(refused > 0, "the queue never filled");
    // A refusal is no failed check: those emails are not a step closer to a lock.
    let failures = app.audit("user.login_failed").await.len();
    assert_eq!(failures, answers.len() - refused);
}

/// Accounts are cached without their password's hash: a password asked for again is
/// checked against the table, so a change made on another instance counts at once.
async fn a_password_changed_on_another_instance_is_the_one_asked_for_at_once(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let twin = app.twin().await;
    app.register("twice@example.com").await;
    let (token, _) = app.login_pair("twice@example.com", "here").await;
    // The twin caches the caller before the change.
    let me = twin.gql("{ me { id } }", json!({}), Some(&token)).await;
    assert!(me.get("errors").is_none(), "{me}");
    let new = "another passphrase entirely";
    let changed = app
        .gql(CHANGE, json!({ "c": PASSWORD, "n": new }), Some(&token))
        .await;
    assert_eq!(changed["data"]["changePassword"], true, "{changed}");

    let again = "mutation($p: String!) { reauthenticate(password: $p) }";
    let old = twin
        .gql(again, json!({ "p": PASSWORD }), Some(&token))
        .await;
    assert_eq!(error_fields(&old), ["password"], "{old}");
    let current = twin.gql(again, json!({ "p": new }), Some(&token)).await;
    assert_eq!(current["data"]["reauthenticate"], true, "{current}");
}
