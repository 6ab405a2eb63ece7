//! Profiles: partial updates, validation of each field, nothing an owner may not set.

use chrono::Datelike as _;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{Backend, TestApp, error_code, error_fields};

both_backends!(
    profile_updates_only_the_fields_given,
    profile_validation_lists_each_field,
    concurrent_updates_of_one_profile_each_see_their_own_write,
);

const UPDATE: &str = "mutation($input: ProfileInput!) {
    updateMyProfile(input: $input) { id email profile { displayName yearOfBirth description avatarUrl } }
}";

async fn profile_updates_only_the_fields_given(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (token, _) = app.user("ada@example.com").await;
    let description = "  Poet of science.\nWrote the first program — in 1843. 🧮  ";
    let set = app
        .gql(UPDATE, json!({ "input": { "displayName": "Ada", "yearOfBirth": 1915, "description": description } }), Some(&token))
        .await;
    assert!(set.get("errors").is_none(), "{set}");
    let profile = &set["data"]["updateMyProfile"]["profile"];
    assert_eq!(profile["displayName"], "Ada");
    assert_eq!(profile["yearOfBirth"], 1915);
    assert_eq!(profile["description"], description, "stored verbatim");

    let partial = app
        .gql(
            UPDATE,
            json!({ "input": { "displayName": "Countess" } }),
            Some(&token),
        )
        .await;
    let profile = &partial["data"]["updateMyProfile"]["profile"];
    assert_eq!(profile["displayName"], "Countess");
    assert_eq!(profile["yearOfBirth"], 1915);
    assert_eq!(profile["description"], description);

    let cleared = app
        .gql(
            UPDATE,
            json!({ "input": { "yearOfBirth": null } }),
            Some(&token),
        )
        .await;
    let profile = &cleared["data"]["updateMyProfile"]["profile"];
    assert!(profile["yearOfBirth"].is_null());
    assert_eq!(profile["displayName"], "Countess");

    let me = app
        .gql(
            "{ me { profile { displayName } } }",
            json!({}),
            Some(&token),
        )
        .await;
    assert_eq!(me["data"]["me"]["profile"]["displayName"], "Countess");
    assert_eq!(app.audit("user.profile_update").await.len(), 3);

    let anonymous = app
        .gql(UPDATE, json!({ "input": { "displayName": "x" } }), None)
        .await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
}

async fn profile_validation_lists_each_field(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (token, _) = app.user("grace@example.com").await;
    let next_year = chrono::Utc::now().year() + 1;
    let bad = app
        .gql(
            UPDATE,
            json!({ "input": { "displayName": "   ", "yearOfBirth": next_year, "description": "x".repeat(2001) } }),
            Some(&token),
        )
        .await;
    assert_eq!(error_code(&bad), "BAD_USER_INPUT");
    assert_eq!(
        error_fields(&bad),
        ["displayName", "yearOfBirth", "description"]
    );
    let old = app
        .gql(
            UPDATE,
            json!({ "input": { "yearOfBirth": 1899 } }),
            Some(&token),
        )
        .await;
    assert_eq!(error_fields(&old), ["yearOfBirth"]);
    let long_name = app
        .gql(
            UPDATE,
            json!({ "input": { "displayName": "n".repeat(101) } }),
            Some(&token),
        )
        .await;
    assert_eq!(error_fields(&long_name), ["displayName"]);
    // Nothing was changed by the failed attempts.
    let me = app
        .gql(
            "{ me { profile { displayName yearOfBirth description } } }",
            json!({}),
            Some(&token),
        )
        .await;
    assert_eq!(
        me["data"]["me"]["profile"],
        json!({ "displayName": null, "yearOfBirth": null, "description": null })
    );
    // 2,000 characters exactly are fine.
    let max = app
        .gql(
            UPDATE,
            json!({ "input": { "description": "é".repeat(2000) } }),
            Some(&token),
        )
        .await;
    assert!(max.get("errors").is_none(), "{max}");

    // A role is not something a profile input can carry.
    let sneaky = app
        .gql(
            UPDATE,
            json!({ "input": { "displayName": "x", "roles": ["admin"] } }),
            Some(&token),
        )
        .await;
    assert_eq!(error_code(&sneaky), "BAD_USER_INPUT");
    let me = app
        .gql("{ me { roles { name } } }", json!({}), Some(&token))
        .await;
    assert_eq!(me["data"]["me"]["roles"], json!([{ "name": "user" }]));
}

/// Updates of one profile sent at once are combined into fewer transactions: each still
/// gets its own audit row and an answer showing its own write, and the row ends as one of
/// them left it.
async fn concurrent_updates_of_one_profile_each_see_their_own_write(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (token, _) = app.user("hot@example.com").await;
    let set = app
        .gql(
            UPDATE,
            json!({ "input": { "displayName": "Hot", "yearOfBirth": 1950 } }),
            Some(&token),
        )
        .await;
    assert!(set.get("errors").is_none(), "{set}");
    let updates = (0..40).map(|n| {
        // Mostly descriptions (combined), some years (a different field set: a batch of
        // their own, in order).
        let input = if n % 10 == 9 {
            json!({ "yearOfBirth": 1960 + n })
        } else {
            json!({ "description": format!("write {n}") })
        };
        let app = &app;
        let token = &token;
        async move {
            (
                n,
                input.clone(),
                app.gql(UPDATE, json!({ "input": input }), Some(token))
                    .await,
            )
        }
    });
    let answers = futures_util::future::join_all(updates).await;
    let mut descriptions = Vec::new();
    for (n, input, answer) in &answers {
        assert!(answer.get("errors").is_none(), "{n}: {answer}");
        let profile = &answer["data"]["updateMyProfile"]["profile"];
        assert_eq!(profile["displayName"], "Hot", "{answer}");
        match input.get("description") {
            Some(description) => {
                assert_eq!(&profile["description"], description, "{answer}");
                descriptions.push(description.clone());
            }
            None => assert_eq!(profile["yearOfBirth"], input["yearOfBirth"], "{answer}"),
        }
    }
    assert_eq!(app.audit("user.profile_update").await.len(), 41);
    let me = app
        .gql(
            "{ me { profile { description yearOfBirth } } }",
            json!({}),
            Some(&token),
        )
        .await;
    let stored = &me["data"]["me"]["profile"];
    assert!(descriptions.contains(&stored["description"]), "{me}");
    let year = stored["yearOfBirth"].as_i64().unwrap();
    assert!((1969..2000).contains(&year) && year % 10 == 9, "{me}");
}
