//! Sign-up, login and `me`.

use serde_json::json;

use crate::both_backends;
use crate::helpers::{Backend, PASSWORD, TestApp, error_code, error_fields};

both_backends!(
    register_login_me,
    duplicate_email_in_any_case_conflicts,
    concurrent_case_variant_registrations_make_one_account,
    invalid_input_names_each_field,
    wrong_password_and_unknown_email_look_the_same,
    new_accounts_get_the_user_role,
    look_alikes_hidden_characters_and_patterns_are_refused,
);

/// What would let one account pass for another, or a guessable password pass the length
/// rule: a full-width or decomposed spelling of a taken address, a display name that
/// hides characters or turns text around, a password of one repeated character or a run.
async fn look_alikes_hidden_characters_and_patterns_are_refused(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let register = |email: &str, password: &str, name: Option<&str>| {
        app.gql(
            "mutation($e: String!, $p: String!, $n: String) {
                register(input: { email: $e, password: $p, displayName: $n }) { user { email } }
            }",
            json!({ "e": email, "p": password, "n": name }),
            None,
        )
    };
    let made = register("user@example.com", PASSWORD, None).await;
    assert_eq!(
        made["data"]["register"]["user"]["email"],
        "user@example.com"
    );
    let wide = register("ｕｓｅｒ@example.com", PASSWORD, None).await;
    assert_eq!(error_code(&wide), "CONFLICT", "{wide}");
    let login = app
        .gql(
            "mutation($e: String!, $p: String!) { login(input: { email: $e, password: $p }) { user { email } } }",
            json!({ "e": "ＵＳＥＲ@example.com", "p": PASSWORD }),
            None,
        )
        .await;
    assert_eq!(
        login["data"]["login"]["user"]["email"], "user@example.com",
        "{login}"
    );
    let composed = register("\u{00FC}ber@example.com", PASSWORD, None).await;
    assert!(composed.get("errors").is_none(), "{composed}");
    let decomposed = register("u\u{0308}ber@example.com", PASSWORD, None).await;
    assert_eq!(error_code(&decomposed), "CONFLICT", "{decomposed}");

    for name in ["\u{202E}gpj.exe", "ad\u{200B}min"] {
        let hidden = register("named@example.com", PASSWORD, Some(name)).await;
        assert_eq!(error_fields(&hidden), ["displayName"], "{hidden}");
    }
    let (token, _) = app.user("ada@example.com").await;
    let update = app
        .gql(
            "mutation { updateMyProfile(input: { displayName: \"\\u202eadmin\" }) { id } }",
            json!({}),
            Some(&token),
        )
        .await;
    assert_eq!(error_fields(&update), ["displayName"], "{update}");

    for weak in ["aaaaaaaaaaaaaaaa", "1234567890123456"] {
        let answer = register("weak@example.com", weak, None).await;
        assert_eq!(error_fields(&answer), ["password"], "{answer}");
    }
}

async fn register_login_me(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let payload = app.register("Ada@Example.com").await;
    assert_eq!(payload["tokenType"], "Bearer");
    assert_eq!(payload["expiresIn"], 900);
    assert!(
        payload["refreshToken"]
            .as_str()
            .unwrap()
            .starts_with("ugr_")
    );
    assert_eq!(payload["user"]["email"], "ada@example.com");
    let id = payload["user"]["id"].as_str().unwrap().to_owned();

    let token = app.login("ADA@example.COM", PASSWORD).await;
    let me = app
        .gql(
            "{ me { id email isActive emailVerified lastLoginAt profile { displayName } } }",
            json!({}),
            Some(&token),
        )
        .await;
    assert!(me.get("errors").is_none(), "{me}");
    assert_eq!(me["data"]["me"]["id"], id.as_str());
    assert_eq!(me["data"]["me"]["email"], "ada@example.com");
    assert_eq!(me["data"]["me"]["isActive"], true);
    assert_eq!(me["data"]["me"]["emailVerified"], false);
    assert!(me["data"]["me"]["lastLoginAt"].is_string());

    let anonymous = app.gql("{ me { id } }", json!({}), None).await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
}

async fn duplicate_email_in_any_case_conflicts(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.register("grace@example.com").await;
    let again = app
        .gql(
            "mutation($p: String!) { register(input: { email: \"GRACE@Example.com\", password: $p }) { accessToken } }",
            json!({ "p": PASSWORD }),
            None,
        )
        .await;
    assert_eq!(error_code(&again), "CONFLICT");
    assert_eq!(error_fields(&again), ["email"]);
}

async fn concurrent_case_variant_registrations_make_one_account(backend: Backend) {
    // Twenty sign-ups for one email would meet `register.account` first.
    let Some(app) = TestApp::spawn_with(backend, &["--rate-limits", "off"]).await else {
        return;
    };
    let variants: Vec<String> = (0..20)
        .map(|i| {
            let local: String = "race"
                .chars()
                .enumerate()
                .map(|(j, c)| {
                    if (i >> j) & 1 == 1 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect();
            format!("{local}@Example.com")
        })
        .collect();
    let attempts = variants.iter().map(|email| {
        app.gql(
            "mutation($e: String!, $p: String!) { register(input: { email: $e, password: $p }) { user { id } } }",
            json!({ "e": email, "p": PASSWORD }),
            None,
        )
    });
    let answers = futures_util::future::join_all(attempts).await;
    let won = answers.iter().filter(|a| a.get("errors").is_none()).count();
    let conflicts = answers
        .iter()
        .filter(|a| a.get("errors").is_some() && error_code(a) == "CONFLICT")
        .count();
    assert_eq!((won, conflicts), (1, 19), "{answers:?}");

    let admin = app.admin().await;
    let users = app
        .gql(
            "{ users(first: 100) { totalCount nodes { email } } }",
            json!({}),
            Some(&admin),
        )
        .await;
    let race: Vec<_> = users["data"]["users"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["email"] == "race@example.com")
        .collect();
    assert_eq!(race.len(), 1, "{users}");
    assert_eq!(users["data"]["users"]["totalCount"], 2);
}

async fn invalid_input_names_each_field(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let register = |email: &str, password: &str, name: Option<String>| {
        app.gql(
            "mutation($e: String!, $p: String!, $n: String) {
                register(input: { email: $e, password: $p, displayName: $n }) { accessToken }
            }",
            json!({ "e": email, "p": password, "n": name }),
            None,
        )
    };
    let both = register("not-an-email", "short", None).await;
    assert_eq!(error_code(&both), "BAD_USER_INPUT");
    assert_eq!(error_fields(&both), ["email", "password"]);

    // 14 characters of 3 bytes each: long in bytes, too short in characters.
    let short = register("ok@example.com", &"€".repeat(14), None).await;
    assert_eq!(error_fields(&short), ["password"]);
    let long = register("ok@example.com", &"a".repeat(129), None).await;
    assert_eq!(error_fields(&long), ["password"]);
    let name = register("ok@example.com", PASSWORD, Some("n".repeat(101))).await;
    assert_eq!(error_fields(&name), ["displayName"]);

    // Nothing was created by the failed attempts; 15 characters of 2 and 3 bytes each.
    let varied: String = "€£¥₩".chars().cycle().take(15).collect();
    let ok = register("ok@example.com", &varied, None).await;
    assert!(ok.get("errors").is_none(), "{ok}");
}

async fn wrong_password_and_unknown_email_look_the_same(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.register("known@example.com").await;
    let login = |email: &'static str, password: &'static str| {
        app.gql(
            "mutation($e: String!, $p: String!) { login(input: { email: $e, password: $p }) { accessToken } }",
            json!({ "e": email, "p": password }),
            None,
        )
    };
    let wrong = login("known@example.com", "not the right password at all").await;
    let unknown = login("unknown@example.com", PASSWORD).await;
    let malformed = login("no at sign", PASSWORD).await;
    for answer in [&wrong, &unknown, &malformed] {
        assert_eq!(error_code(answer), "UNAUTHENTICATED", "{answer}");
    }
    assert_eq!(
        wrong["errors"][0]["message"],
        unknown["errors"][0]["message"]
    );
    assert_eq!(
        wrong["errors"][0]["message"],
        malformed["errors"][0]["message"]
    );
    // Passwords are compared exactly: no case folding, no trimming.
    let upper = app.gql(
        "mutation($p: String!) { login(input: { email: \"known@example.com\", password: $p }) { accessToken } }",
        json!({ "p": PASSWORD.to_uppercase() }),
        None,
    ).await;
    assert_eq!(error_code(&upper), "UNAUTHENTICATED");
}

async fn new_accounts_get_the_user_role(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (token, _) = app.user("plain@example.com").await;
    let me = app
        .gql(
            "{ me { roles { name permissions } permissions } }",
            json!({}),
            Some(&token),
        )
        .await;
    assert_eq!(
        me["data"]["me"]["roles"],
        json!([{ "name": "user", "permissions": [] }])
    );
    assert_eq!(me["data"]["me"]["permissions"], json!([]));
}
