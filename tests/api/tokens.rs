//! Access tokens: what is refused, and what survives a restart.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, PASSWORD, TestApp, error_code};

both_backends!(
    bad_tokens_are_refused,
    tokens_data_and_key_survive_a_restart,
    jwks_publishes_the_signing_key
);

/// Signs `claims` with the app's own key, with the given `typ` header.
pub(crate) fn sign(app: &TestApp, claims: &Value, typ: &str, kid: &str) -> String {
    use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
    // The first key, made on first start.
    let first = app.data_dir().join("keys").join("19700101T000000Z.pem");
    let pem = std::fs::read_to_string(first).expect("key file");
    let signing = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem).expect("key");
    let key = EncodingKey::from_ed_der(signing.to_pkcs8_der().expect("der").as_bytes());
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some(typ.to_owned());
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}

/// The claims of `token`, unchecked.
pub(crate) fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The key id of `token`.
pub(crate) fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

async fn bad_tokens_are_refused(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let payload = app.register("victim@example.com").await;
    let token = payload["accessToken"].as_str().unwrap();
    let refresh = payload["refreshToken"].as_str().unwrap();
    let me = |token: String| {
        let app = &app;
        async move { app.gql("{ me { id } }", json!({}), Some(&token)).await }
    };

    // The genuine token works, and a copy re-signed by the test with the same claims too:
    // so the refusals below are about what each one changes.
    assert!(me(token.to_owned()).await.get("errors").is_none());
    let claims = claims_of(token);
    let kid = kid_of(token);
    assert!(
        me(sign(&app, &claims, "at+jwt", &kid))
            .await
            .get("errors")
            .is_none()
    );

    let mut tampered = token.to_owned();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });

    let mut forged_sub = token.split('.').map(str::to_owned).collect::<Vec<_>>();
    let mut other = claims.clone();
    other["sub"] = json!(uuid::Uuid::now_v7().to_string());
    forged_sub[1] = URL_SAFE_NO_PAD.encode(other.to_string());
    let forged_sub = forged_sub.join(".");

    let now = chrono::Utc::now().timestamp();
    let mut expired = claims.clone();
    expired["iat"] = json!(now - 3600);
    expired["nbf"] = json!(now - 3600);
    expired["exp"] = json!(now - 1800);
    let mut wrong_audience = claims.clone();
    wrong_audience["aud"] = json!("someone-else");
    let mut wrong_issuer = claims.clone();
    wrong_issuer["iss"] = json!("someone-else");
    let mut not_yet = claims.clone();
    not_yet["nbf"] = json!(now + 3600);

    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"at+jwt"}"#);
    let none_body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let alg_none = format!("{none_header}.{none_body}.");

    let cases = [
        ("tampered signature", tampered),
        ("forged subject", forged_sub),
        ("expired", sign(&app, &expired, "at+jwt", &kid)),
        (
            "wrong audience",
            sign(&app, &wrong_audience, "at+jwt", &kid),
        ),
        ("wrong issuer", sign(&app, &wrong_issuer, "at+jwt", &kid)),
        ("not yet valid", sign(&app, &not_yet, "at+jwt", &kid)),
        ("alg none", alg_none),
        ("untyped JWT", sign(&app, &claims, "JWT", &kid)),
        (
            "unknown key id",
            sign(&app, &claims, "at+jwt", "another-key"),
        ),
        ("refresh token as bearer", refresh.to_owned()),
        ("garbage", "not.a.token".to_owned()),
        ("unknown personal token", format!("ugp_{}", "x".repeat(40))),
        ("far too long", "y".repeat(10_000)),
    ];
    // Every refusal says the same: the reason is for the log, not for whoever sent it.
    let mut messages = std::collections::BTreeSet::new();
    for (what, bad) in cases {
        let answer = me(bad).await;
        assert_eq!(error_code(&answer), "UNAUTHENTICATED", "{what}: {answer}");
        assert!(answer["data"].is_null(), "{what}: {answer}");
        messages.insert(
            answer["errors"][0]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    // A revoked session's token, once the genuine one worked.
    app.gql(
        "mutation($t: String!) { logout(refreshToken: $t) }",
        json!({ "t": refresh }),
        Some(token),
    )
    .await;
    let revoked = me(token.to_owned()).await;
    assert_eq!(error_code(&revoked), "UNAUTHENTICATED", "{revoked}");
    messages.insert(
        revoked["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    );
    assert_eq!(messages.len(), 1, "{messages:?}");
}

async fn tokens_data_and_key_survive_a_restart(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (token, id) = app.user("stays@example.com").await;
    let app = app.restart().await;
    let me = app
        .gql("{ me { id email } }", json!({}), Some(&token))
        .await;
    assert_eq!(me["data"]["me"]["id"], id.as_str(), "{me}");
    let again = app.login("stays@example.com", PASSWORD).await;
    assert_eq!(kid_of(&again), kid_of(&token));
}

async fn jwks_publishes_the_signing_key(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (token, _) = app.user("keys@example.com").await;
    let request = axum::http::Request::get("/.well-known/jwks.json")
        .body(axum::body::Body::empty())
        .unwrap();
    let (status, _, body) = app.send(request).await;
    assert_eq!(status, 200);
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_slice(&body).unwrap();
    let jwk = jwks
        .find(&kid_of(&token))
        .expect("the token's kid is published");
    // A client verifies our token with nothing but the published key.
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(Algorithm::EdDSA);
    validation.set_audience(&["usergraph"]);
    let data = jsonwebtoken::decode::<Value>(&token, &key, &validation).expect("verifies");
    assert!(data.claims["sid"].is_string());
    assert!(data.claims["jti"].is_string());
}
