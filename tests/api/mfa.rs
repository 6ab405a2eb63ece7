//! Two-step verification: TOTP enrolment, logins with a second factor, recovery codes,
//! replay and skew, the lockout of codes, step-up, the administrator's reset and the policy
//! for roles. Codes are computed with `totp-rs` from the secret the server showed, at the
//! server's clock, which the tests move.

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, PASSWORD, TestApp, error_code, error_fields};
use crate::mailbox::{outbox, wait_for};
use crate::passwords::stored_hash;
use crate::tokens::claims_of;

/// The TOTP code of `secret` (base32) at `unix` seconds, as an authenticator app shows it.
fn code(secret: &str, unix: i64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_owned())
        .to_bytes()
        .expect("a base32 secret");
    let totp = totp_rs::TOTP::new(
        totp_rs::Algorithm::SHA1,
        6,
        0,
        30,
        bytes,
        None,
        String::new(),
    )
    .expect("a TOTP");
    totp.generate(u64::try_from(unix).expect("after 1970"))
}

/// The server's clock, in Unix seconds.
fn now(app: &TestApp) -> i64 {
    app.services.clock().now().and_utc().timestamp()
}

/// Moves the server's clock to the next TOTP step (a code of the last one is spent).
fn next_step(app: &TestApp) {
    app.services.clock().advance(30);
}

const START: &str =
    "mutation { startTotpEnrollment { secret otpauthUri qrCodeSvg qrCodeDataUrl } }";
const CONFIRM: &str = "mutation($c: String!) { confirmTotpEnrollment(code: $c) { codes } }";
const VERIFY: &str = "mutation($ch: String!, $c: String!) {
    verifyMfa(challenge: $ch, code: $c) { accessToken refreshToken user { id mfaEnabled } }
}";
const LOGIN: &str = "mutation($e: String!, $p: String!) {
    login(input: { email: $e, password: $p }) { accessToken }
}";
const REAUTH: &str = "mutation($p: String!, $c: String) { reauthenticate(password: $p, code: $c) }";
const CHANGE_PASSWORD: &str = "mutation($old: String!, $new: String!) {
    changePassword(input: { currentPassword: $old, newPassword: $new })
}";

/// Turns TOTP on for the holder of `token`; returns the secret and the recovery codes.
async fn enrol(app: &TestApp, token: &str) -> (String, Vec<String>) {
    let started = app.gql(START, json!({}), Some(token)).await;
    let secret = started["data"]["startTotpEnrollment"]["secret"]
        .as_str()
        .unwrap_or_else(|| panic!("enrolment did not start: {started}"))
        .to_owned();
    let confirmed = app
        .gql(
            CONFIRM,
            json!({ "c": code(&secret, now(app)) }),
            Some(token),
        )
        .await;
    let codes = confirmed["data"]["confirmTotpEnrollment"]["codes"]
        .as_array()
        .unwrap_or_else(|| panic!("enrolment not confirmed: {confirmed}"))
        .iter()
        .map(|c| c.as_str().expect("a code").to_owned())
        .collect();
    (secret, codes)
}

/// Logs in with the password; returns the challenge of `MFA_REQUIRED`.
async fn challenge(app: &TestApp, email: &str) -> String {
    let answer = app
        .gql(LOGIN, json!({ "e": email, "p": PASSWORD }), None)
        .await;
    assert_eq!(error_code(&answer), "MFA_REQUIRED", "{answer}");
    assert!(
        answer["data"].is_null(),
        "no tokens before the code: {answer}"
    );
    assert_eq!(answer["errors"][0]["extensions"]["expiresIn"], 300);
    answer["errors"][0]["extensions"]["challenge"]
        .as_str()
        .expect("a challenge")
        .to_owned()
}

async fn verify(app: &TestApp, challenge: &str, code: &str) -> Value {
    app.gql(VERIFY, json!({ "ch": challenge, "c": code }), None)
        .await
}

fn access_token(answer: &Value) -> String {
    answer["data"]["verifyMfa"]["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("verifyMfa failed: {answer}"))
        .to_owned()
}

async fn enrol_and_log_in(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (token, id) = app.user("ada@example.com").await;
    let started = app.gql(START, json!({}), Some(&token)).await;
    let enrolment = &started["data"]["startTotpEnrollment"];
    let secret = enrolment["secret"].as_str().expect("secret").to_owned();
    let uri = enrolment["otpauthUri"].as_str().expect("uri");
    assert!(
        uri.starts_with("otpauth://totp/usergraph:ada%40example.com?secret=")
            && uri.contains(&format!("secret={secret}"))
            && uri.contains("issuer=usergraph"),
        "{uri}"
    );
    assert!(
        enrolment["qrCodeSvg"]
            .as_str()
            .expect("svg")
            .starts_with("<svg")
    );
    assert!(
        enrolment["qrCodeDataUrl"]
            .as_str()
            .expect("data URL")
            .starts_with("data:image/svg+xml;base64,")
    );
    // Not on until confirmed: a login still opens a session with the password alone.
    app.login("ada@example.com", PASSWORD).await;
    let wrong = app
        .gql(CONFIRM, json!({ "c": "000000" }), Some(&token))
        .await;
    assert_eq!(error_code(&wrong), "BAD_USER_INPUT", "{wrong}");
    assert_eq!(error_fields(&wrong), ["code"]);
    // Starting again (another tab) replaces the secret: the first one's codes no longer fit.
    let restarted = app.gql(START, json!({}), Some(&token)).await;
    let replaced = secret;
    let secret = restarted["data"]["startTotpEnrollment"]["secret"]
        .as_str()
        .unwrap_or_else(|| panic!("{restarted}"))
        .to_owned();
    assert_ne!(secret, replaced);
    let stale = app
        .gql(
            CONFIRM,
            json!({ "c": code(&replaced, now(&app)) }),
            Some(&token),
        )
        .await;
    assert_eq!(error_fields(&stale), ["code"], "{stale}");
    let first = code(&secret, now(&app));
    let confirmed = app.gql(CONFIRM, json!({ "c": first }), Some(&token)).await;
    let codes = confirmed["data"]["confirmTotpEnrollment"]["codes"]
        .as_array()
        .unwrap_or_else(|| panic!("{confirmed}"))
        .clone();
    assert_eq!(codes.len(), 10);
    let me = app
        .gql(
            "{ me { mfaEnabled recoveryCodesLeft } }",
            json!({}),
            Some(&token),
        )
        .await;
    assert_eq!(
        me["data"]["me"],
        json!({ "mfaEnabled": true, "recoveryCodesLeft": 10 })
    );
    let again = app.gql(START, json!({}), Some(&token)).await;
    assert_eq!(error_code(&again), "CONFLICT", "{again}");

    // The password alone opens no session now; the code of the confirmation is spent.
    let logins = app.audit("user.login").await.len();
    let challenge_token = challenge(&app, "ada@example.com").await;
    assert!(challenge_token.starts_with("ugm_"));
    let replayed = verify(&app, &challenge_token, &first).await;
    assert_eq!(error_code(&replayed), "UNAUTHENTICATED", "{replayed}");
    next_step(&app);
    let current = code(&secret, now(&app));
    let answer = verify(&app, &challenge_token, &current).await;
    let access = access_token(&answer);
    assert_eq!(answer["data"]["verifyMfa"]["user"]["id"], id);
    let sessions = app
        .gql(
            "{ mySessions { current secondFactor authenticatedAt } }",
            json!({}),
            Some(&access),
        )
        .await;
    let this_session = sessions["data"]["mySessions"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["current"] == true).cloned())
        .unwrap_or_else(|| panic!("{sessions}"));
    assert_eq!(this_session["secondFactor"], true);
    let claims = claims_of(&access);
    assert_eq!(claims["amr"], json!(["pwd", "otp"]));
    assert_eq!(claims["acr"], "aal2");
    assert!(claims["auth_time"].as_i64().expect("auth_time") > 0);
    assert_eq!(app.audit("user.login").await.len(), logins + 1);
    // A refreshed token keeps the session's assurance.
    let refresh = answer["data"]["verifyMfa"]["refreshToken"]
        .as_str()
        .expect("refresh");
    let renewed = app.refresh(refresh).await;
    let renewed = renewed["data"]["refreshToken"]["accessToken"]
        .as_str()
        .expect("renewed");
    assert_eq!(claims_of(renewed)["acr"], "aal2");
    // The challenge is used up; another login's challenge refuses the spent code.
    let reused = verify(&app, &challenge_token, &current).await;
    assert_eq!(error_code(&reused), "UNAUTHENTICATED");
    let second = challenge(&app, "ada@example.com").await;
    let replay = verify(&app, &second, &current).await;
    assert_eq!(
        error_code(&replay),
        "UNAUTHENTICATED",
        "a code is accepted once"
    );

    // A recovery code works once.
    let recovery = codes[0].as_str().expect("code").to_uppercase();
    let with_recovery = verify(&app, &second, &recovery).await;
    let token = access_token(&with_recovery);
    let me = app
        .gql("{ me { recoveryCodesLeft } }", json!({}), Some(&token))
        .await;
    assert_eq!(me["data"]["me"]["recoveryCodesLeft"], 9);
    let third = challenge(&app, "ada@example.com").await;
    let spent = verify(&app, &third, &recovery).await;
    assert_eq!(error_code(&spent), "UNAUTHENTICATED", "{spent}");
    // The owner is told of the enrolment and of the spent code.
    wait_for(
        || outbox(&app),
        "ada@example.com",
        "Two-step verification is on",
        1,
    )
    .await;
    let told = wait_for(
        || outbox(&app),
        "ada@example.com",
        "A recovery code was used",
        1,
    )
    .await;
    assert!(told[0].text.contains("9 are left"), "{:?}", told[0].text);
    let used = app.audit("user.mfa_recovery_code_use").await;
    assert_eq!(used.len(), 1);
    let details: Value =
        serde_json::from_str(used[0].details.as_deref().expect("details")).expect("JSON");
    assert_eq!(details["recoveryCodesLeft"], 9);
    for action in [
        "user.mfa_enrollment_start",
        "user.mfa_enroll",
        "user.mfa_challenge",
        "user.mfa_verify",
        "user.mfa_failed",
    ] {
        assert!(!app.audit(action).await.is_empty(), "no `{action}` event");
    }
}

async fn skew_expiry_and_regeneration(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (token, _) = app.user("bo@example.com").await;
    let (secret, old_codes) = enrol(&app, &token).await;
    // Two steps away is refused; one step either side is accepted.
    app.services.clock().advance(300);
    let at = now(&app);
    let challenge_token = challenge(&app, "bo@example.com").await;
    let too_old = verify(&app, &challenge_token, &code(&secret, at - 60)).await;
    assert_eq!(error_code(&too_old), "UNAUTHENTICATED");
    let too_new = verify(&app, &challenge_token, &code(&secret, at + 60)).await;
    assert_eq!(error_code(&too_new), "UNAUTHENTICATED");
    access_token(&verify(&app, &challenge_token, &code(&secret, at - 30)).await);
    let ahead = challenge(&app, "bo@example.com").await;
    let token = access_token(&verify(&app, &ahead, &code(&secret, at + 30)).await);

    // A challenge lasts five minutes.
    let late = challenge(&app, "bo@example.com").await;
    app.services.clock().advance(301);
    let expired = verify(&app, &late, &code(&secret, now(&app))).await;
    assert_eq!(error_code(&expired), "UNAUTHENTICATED", "{expired}");

    // New recovery codes need a current code (not a recovery code) and void the old ones.
    let regenerate = "mutation($c: String!) { regenerateRecoveryCodes(code: $c) { codes } }";
    let refused = app
        .gql(regenerate, json!({ "c": old_codes[1] }), Some(&token))
        .await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{refused}");
    next_step(&app);
    let fresh = app
        .gql(
            regenerate,
            json!({ "c": code(&secret, now(&app)) }),
            Some(&token),
        )
        .await;
    let fresh = fresh["data"]["regenerateRecoveryCodes"]["codes"]
        .as_array()
        .unwrap_or_else(|| panic!("{fresh}"))
        .clone();
    assert_eq!(fresh.len(), 10);
    let login = challenge(&app, "bo@example.com").await;
    let voided = verify(&app, &login, &old_codes[2]).await;
    assert_eq!(error_code(&voided), "UNAUTHENTICATED");
    access_token(&verify(&app, &login, fresh[0].as_str().expect("code")).await);
    assert_eq!(
        app.audit("user.mfa_recovery_codes_regenerate").await.len(),
        1
    );
}

async fn wrong_codes_lock_the_second_step(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (token, _) = app.user("cy@example.com").await;
    let (secret, _) = enrol(&app, &token).await;
    next_step(&app);
    let challenge_token = challenge(&app, "cy@example.com").await;
    // Parallel guesses check no more codes than the threshold (5), like passwords.
    let guesses = (0..20).map(|i| {
        let app = &app;
        let challenge_token = &challenge_token;
        async move { verify(app, challenge_token, &format!("{:06}", 100_000 + i)).await }
    });
    let answers = futures_util::future::join_all(guesses).await;
    assert!(
        answers
            .iter()
            .all(|a| ["UNAUTHENTICATED", "ACCOUNT_LOCKED", "RATE_LIMITED"].contains(&error_code(a))),
        "{answers:?}"
    );
    assert!(app.audit("user.mfa_failed").await.len() <= 5);
    assert!(!app.audit("user.account_locked").await.is_empty());
    let locked = verify(&app, &challenge_token, &code(&secret, now(&app))).await;
    assert_eq!(error_code(&locked), "ACCOUNT_LOCKED", "{locked}");
    assert!(
        locked["errors"][0]["extensions"]["retryAfter"]
            .as_u64()
            .is_some()
    );
}

async fn sensitive_changes_need_a_recent_authentication(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (token, _) = app.user("di@example.com").await;
    // Eleven minutes after the login, the password (and no code: TOTP is off) is asked for.
    app.services.clock().advance(11 * 60);
    let new_password = "a new horse battery staple";
    let change = json!({ "old": PASSWORD, "new": new_password });
    let refused = app.gql(CHANGE_PASSWORD, change.clone(), Some(&token)).await;
    assert_eq!(
        error_code(&refused),
        "REAUTHENTICATION_REQUIRED",
        "{refused}"
    );
    assert_eq!(
        refused["errors"][0]["extensions"]["factors"],
        json!(["password"])
    );
    for (mutation, variables) in [
        (
            "mutation { createPersonalAccessToken(input: { name: \"ci\", scopes: [] }) { token } }",
            json!({}),
        ),
        (
            "mutation($p: String!) { deleteMyAccount(password: $p) }",
            json!({ "p": PASSWORD }),
        ),
        (
            "mutation($p: String!) { changeEmail(newEmail: \"new@example.com\", password: $p) }",
            json!({ "p": PASSWORD }),
        ),
        (START, json!({})),
    ] {
        let answer = app.gql(mutation, variables, Some(&token)).await;
        assert_eq!(
            error_code(&answer),
            "REAUTHENTICATION_REQUIRED",
            "{mutation}: {answer}"
        );
    }
    let wrong = app
        .gql(
            REAUTH,
            json!({ "p": "not the password at all" }),
            Some(&token),
        )
        .await;
    assert_eq!(error_code(&wrong), "BAD_USER_INPUT");
    let ok = app
        .gql(REAUTH, json!({ "p": PASSWORD }), Some(&token))
        .await;
    assert_eq!(ok["data"]["reauthenticate"], true, "{ok}");
    // Without a second factor, the general minimum (15) holds.
    let short = json!({ "old": PASSWORD, "new": "tenchars!!" });
    let too_short = app.gql(CHANGE_PASSWORD, short.clone(), Some(&token)).await;
    assert_eq!(error_fields(&too_short), ["newPassword"], "{too_short}");
    // A personal token cannot step up.
    let pat = app.personal_token(&token, "ci").await;
    let by_pat = app.gql(REAUTH, json!({ "p": PASSWORD }), Some(&pat)).await;
    assert_eq!(error_code(&by_pat), "FORBIDDEN", "{by_pat}");
    let (secret, codes) = enrol(&app, &token).await;

    // With TOTP on, the step-up needs a code as well.
    app.services.clock().advance(11 * 60);
    let disable = "mutation { disableTotp }";
    let refused = app.gql(disable, json!({}), Some(&token)).await;
    assert_eq!(error_code(&refused), "REAUTHENTICATION_REQUIRED");
    assert_eq!(
        refused["errors"][0]["extensions"]["factors"],
        json!(["password", "totp"])
    );
    let no_code = app
        .gql(REAUTH, json!({ "p": PASSWORD }), Some(&token))
        .await;
    assert_eq!(error_fields(&no_code), ["code"], "{no_code}");
    let with_code = app
        .gql(
            REAUTH,
            json!({ "p": PASSWORD, "c": code(&secret, now(&app)) }),
            Some(&token),
        )
        .await;
    assert_eq!(with_code["data"]["reauthenticate"], true, "{with_code}");
    // A challenge earned with the old password dies with it.
    let stale = challenge(&app, "di@example.com").await;
    // A shorter password is allowed once a second factor guards the account.
    let changed = app.gql(CHANGE_PASSWORD, short, Some(&token)).await;
    assert_eq!(changed["data"]["changePassword"], true, "{changed}");
    next_step(&app);
    let late = verify(&app, &stale, &code(&secret, now(&app))).await;
    assert_eq!(error_code(&late), "UNAUTHENTICATED", "{late}");
    let off = app.gql(disable, json!({}), Some(&token)).await;
    assert_eq!(off["data"]["disableTotp"], true, "{off}");
    app.login("di@example.com", "tenchars!!").await;
    assert_eq!(app.audit("user.mfa_disable").await.len(), 1);
    assert_eq!(app.audit("user.reauthenticate").await.len(), 2);
    wait_for(
        || outbox(&app),
        "di@example.com",
        "Two-step verification was turned off",
        1,
    )
    .await;
    // The voided recovery codes are gone with the secret.
    let login = app
        .gql(
            LOGIN,
            json!({ "e": "di@example.com", "p": "tenchars!!" }),
            None,
        )
        .await;
    assert!(
        login["data"]["login"]["accessToken"].is_string(),
        "{login} {codes:?}"
    );
}

async fn an_administrator_resets_a_lost_device(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &["--require-mfa-for-roles", "admin"]).await
    else {
        return;
    };
    let (user_token, user_id) = app.user("ed@example.com").await;
    let (secret, _) = enrol(&app, &user_token).await;
    // Holders of `admin` must enrol before anything else; `me` and enrolment still answer.
    let admin = app.admin().await;
    let listing = "{ users(first: 1) { totalCount } }";
    let refused = app.gql(listing, json!({}), Some(&admin)).await;
    assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");
    assert_eq!(
        refused["errors"][0]["extensions"]["reason"],
        "MFA_ENROLLMENT_REQUIRED"
    );
    let me = app
        .gql(
            "{ me { email mfaEnabled roles { name } } }",
            json!({}),
            Some(&admin),
        )
        .await;
    assert_eq!(me["data"]["me"]["mfaEnabled"], false, "{me}");
    enrol(&app, &admin).await;
    let listed = app.gql(listing, json!({}), Some(&admin)).await;
    assert!(listed.get("errors").is_none(), "{listed}");

    let reset = "mutation($id: ID!) { resetUserMfa(id: $id) { id mfaEnabled } }";
    let by_user = app
        .gql(reset, json!({ "id": user_id }), Some(&user_token))
        .await;
    assert_eq!(error_code(&by_user), "FORBIDDEN");

    // A deactivated account's challenge does not complete (its sessions end too).
    let pending = challenge(&app, "ed@example.com").await;
    let active = "mutation($id: ID!, $on: Boolean!) { updateUser(id: $id, input: { isActive: $on }) { id } }";
    let off = app
        .gql(active, json!({ "id": user_id, "on": false }), Some(&admin))
        .await;
    assert!(off.get("errors").is_none(), "{off}");
    next_step(&app);
    let refused = verify(&app, &pending, &code(&secret, now(&app))).await;
    assert_eq!(error_code(&refused), "UNAUTHENTICATED", "{refused}");
    let on = app
        .gql(active, json!({ "id": user_id, "on": true }), Some(&admin))
        .await;
    assert!(on.get("errors").is_none(), "{on}");
    let done = app.gql(reset, json!({ "id": user_id }), Some(&admin)).await;
    assert_eq!(done["data"]["resetUserMfa"]["mfaEnabled"], false, "{done}");
    let events = app.audit("user.mfa_reset").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].target_id.as_deref(), Some(user_id.as_str()));
    assert!(events[0].actor_id.is_some());
    wait_for(
        || outbox(&app),
        "ed@example.com",
        "Two-step verification was turned off",
        1,
    )
    .await;
    // The password alone signs the owner in again.
    app.login("ed@example.com", PASSWORD).await;
    let twice = app.gql(reset, json!({ "id": user_id }), Some(&admin)).await;
    assert_eq!(error_code(&twice), "BAD_USER_INPUT");
}

async fn secrets_are_sealed_and_codes_hashed(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (token, _) = app.user("fa@example.com").await;
    let (secret, codes) = enrol(&app, &token).await;
    // The export says TOTP is on, and shows neither the secret nor the codes.
    let export = app
        .gql("mutation { exportMyData }", json!({}), Some(&token))
        .await;
    let document = &export["data"]["exportMyData"];
    assert!(
        document["twoStepVerification"]["enabledAt"].is_string(),
        "{export}"
    );
    assert_eq!(document["twoStepVerification"]["recoveryCodesLeft"], 10);
    let text = document.to_string();
    assert!(!text.contains(&secret) && !text.contains(&codes[0]));
    let raw = totp_rs::Secret::Encoded(secret).to_bytes().expect("secret");
    let stored = app
        .stored_bytes("SELECT secret AS bytes FROM totp_secrets")
        .await;
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].windows(raw.len()).any(|w| w == raw.as_slice()));
    let hashes = app
        .stored_bytes("SELECT code_hash AS bytes FROM recovery_codes")
        .await;
    assert_eq!(hashes.len(), 10);
    for (hash, code) in hashes.iter().zip(&codes) {
        assert!(!hash.windows(code.len()).any(|w| w == code.as_bytes()));
    }
    let key = app.data_dir().join("mfa.key");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key).expect("key").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
}

async fn hostile_codes_are_refused_by_name(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (token, _) = app.user("gu@example.com").await;
    enrol(&app, &token).await;
    let challenge_token = challenge(&app, "gu@example.com").await;
    let huge = "7".repeat(500_000);
    // Too long: refused by the argument's name; control characters: by the variable's
    // (`$ch`, `$c`), before anything runs.
    for (challenge_text, code_text, field) in [
        (challenge_token.as_str(), huge.as_str(), "code"),
        (challenge_token.as_str(), "12\u{0}456", "c"),
        (huge.as_str(), "123456", "challenge"),
        ("ugm_\u{1b}[31m", "123456", "ch"),
    ] {
        let answer = verify(&app, challenge_text, code_text).await;
        assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{answer}");
        assert_eq!(error_fields(&answer), [field], "{answer}");
    }
    let regenerate = "mutation($c: String!) { regenerateRecoveryCodes(code: $c) { codes } }";
    let answer = app
        .gql(regenerate, json!({ "c": "1".repeat(40) }), Some(&token))
        .await;
    assert_eq!(error_fields(&answer), ["code"], "{answer}");
    let answer = app
        .gql(REAUTH, json!({ "p": PASSWORD, "c": huge }), Some(&token))
        .await;
    assert_eq!(error_fields(&answer), ["code"], "{answer}");
    // None of them was counted as a guess.
    assert!(app.audit("user.mfa_failed").await.is_empty());
    // An unknown challenge of the right shape is refused like a wrong code.
    let unknown = verify(
        &app,
        "ugm_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "123456",
    )
    .await;
    assert_eq!(error_code(&unknown), "UNAUTHENTICATED", "{unknown}");
}

both_backends!(
    hostile_codes_are_refused_by_name,
    enrol_and_log_in,
    skew_expiry_and_regeneration,
    wrong_codes_lock_the_second_step,
    sensitive_changes_need_a_recent_authentication,
    an_administrator_resets_a_lost_device,
    secrets_are_sealed_and_codes_hashed,
    a_login_with_a_second_factor_upgrades_an_old_hash,
    turning_totp_on_ends_the_other_sessions,
);

/// A session opened before the second factor was turned on never gave a code: it ends with
/// the enrolment (a stolen one would keep what the factor now guards), the enrolling one
/// goes on, and personal access tokens stay.
async fn turning_totp_on_ends_the_other_sessions(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (token, _) = app.user("ada@example.com").await;
    let (laptop, laptop_refresh) = app.login_pair("ada@example.com", "laptop").await;
    let (phone, _) = app.login_pair("ada@example.com", "phone").await;
    let (_, kept_refresh) = app.login_pair("ada@example.com", "tablet").await;
    let me = "{ me { id } }";
    assert!(app.gql(me, json!({}), Some(&phone)).await["data"]["me"].is_object());

    enrol(&app, &laptop).await;

    for other in [&token, &phone] {
        let answer = app.gql(me, json!({}), Some(other)).await;
        assert_eq!(error_code(&answer), "UNAUTHENTICATED", "{answer}");
    }
    let answer = app.refresh(&kept_refresh).await;
    assert_eq!(error_code(&answer), "UNAUTHENTICATED", "{answer}");
    let answer = app.gql(me, json!({}), Some(&laptop)).await;
    assert!(answer["data"]["me"].is_object(), "{answer}");
    let refreshed = app.refresh(&laptop_refresh).await;
    assert!(
        refreshed["data"]["refreshToken"]["accessToken"].is_string(),
        "{refreshed}"
    );
    let live = app
        .gql("{ mySessions { id } }", json!({}), Some(&laptop))
        .await;
    assert_eq!(
        live["data"]["mySessions"].as_array().map(Vec::len),
        Some(1),
        "{live}"
    );

    let enrolled = app.audit("user.mfa_enroll").await;
    let details: Value =
        serde_json::from_str(enrolled[0].details.as_deref().expect("details")).expect("JSON");
    assert_eq!(details["sessionsRevoked"], 3, "{details}");
    let told = wait_for(
        || outbox(&app),
        "ada@example.com",
        "Two-step verification is on",
        1,
    )
    .await;
    let text = told[0]
        .text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(text.contains("every other device was signed out"), "{text}");
}

/// The password is checked before the second step, which may never come and does not see
/// it: a weak hash is replaced there, or an account with a second factor would keep it.
async fn a_login_with_a_second_factor_upgrades_an_old_hash(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let email = "legacy@example.com";
    let (token, _) = app.user(email).await;
    let (secret, _) = enrol(&app, &token).await;
    assert!(stored_hash(&app, email).await.contains("m=64,t=1"));
    let app = app
        .restart_with(&["--argon2-memory-kib", "128", "--argon2-iterations", "2"])
        .await;
    let pending = challenge(&app, email).await;
    let upgraded = stored_hash(&app, email).await;
    assert!(
        upgraded.starts_with("$argon2id$") && upgraded.contains("m=128,t=2"),
        "{upgraded}"
    );
    let events = app.audit("user.mfa_challenge").await;
    let last = events.last().expect("the challenge is audited");
    let details: Value = serde_json::from_str(last.details.as_deref().unwrap_or("null")).unwrap();
    assert_eq!(details["passwordHashUpgraded"], true, "{last:?}");
    next_step(&app);
    access_token(&verify(&app, &pending, &code(&secret, now(&app))).await);
    // The new hash takes the same password, and is not replaced again.
    challenge(&app, email).await;
    assert_eq!(stored_hash(&app, email).await, upgraded);
}
