//! Access tokens: JWTs signed with Ed25519 (EdDSA), explicitly typed `at+jwt` (RFC 9068), with
//! a `kid` that `/.well-known/jwks.json` publishes. The keys and their rotation are
//! [`keys`](super::keys)'.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::keys::KeySource;
use crate::config::Config;
use crate::ids::{SessionId, UserId};

/// The `typ` header of access tokens; refresh and personal tokens are opaque, so they can
/// never pass for one.
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY_SECS: u64 = 5;

/// The claims of an access token.
#[derive(Debug, Serialize, Deserialize)]
struct AccessClaims {
    iss: String,
    aud: String,
    sub: String,
    sid: String,
    jti: String,
    iat: i64,
    nbf: i64,
    exp: i64,
    /// When the holder last gave the password (OpenID Connect's `auth_time`).
    #[serde(default)]
    auth_time: i64,
    /// How (RFC 8176): `pwd`, and `otp` after a second factor.
    #[serde(default)]
    amr: Vec<String>,
    /// The assurance level: `aal1` (password) or `aal2` (and a second factor).
    #[serde(default)]
    acr: String,
}

/// How strongly a token's holder proved who they are.
#[derive(Debug, Clone, Copy)]
pub struct Assurance {
    /// When the password was last given (the token's `auth_time`).
    pub auth_time: chrono::NaiveDateTime,
    /// Whether a second factor was given too (`amr` has `otp`, `acr` is `aal2`).
    pub second_factor: bool,
}

/// A freshly signed access token.
#[derive(Debug)]
pub struct AccessToken {
    /// The compact JWT.
    pub token: String,
    /// Its lifetime in seconds.
    pub expires_in: i64,
}

/// One key: what signs with it, what checks with it, and how it is published.
struct Key {
    /// When it starts signing (seconds since the epoch).
    starts: i64,
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: String,
    x: String,
}

impl Key {
    fn of(signing: &SigningKey, starts: i64) -> Self {
        let x = URL_SAFE_NO_PAD.encode(signing.verifying_key().as_bytes());
        // RFC 7638 thumbprint: SHA-256 of the required members in lexical order.
        let thumbprint = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(thumbprint.as_bytes()));
        let der = signing
            .to_pkcs8_der()
            .expect("an Ed25519 key always encodes as PKCS#8");
        Self {
            starts,
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            decoding: DecodingKey::from_ed_der(signing.verifying_key().as_bytes()),
            kid,
            x,
        }
    }
}

/// The keys as last read from disk, oldest first.
struct KeySet {
    /// The files they came from (a reload happens only when these change).
    listing: Vec<PathBuf>,
    keys: Vec<Key>,
    /// The secret refresh successors are derived with (from the oldest key, so it stays
    /// when newer keys come).
    rotation_key: [u8; 32],
}

impl KeySet {
    /// The key that signs at `now`: the latest whose start has passed (the oldest when
    /// none has).
    fn signing(&self, now: i64) -> &Key {
        self.keys
            .iter()
            .rev()
            .find(|k| k.starts <= now)
            .or(self.keys.first())
            .expect("a key set is never empty")
    }

    /// The keys whose tokens may still be valid at `now`: the signing key, the ones still
    /// to start, and older ones whose successor has signed for less than `lifetime`.
    fn valid(&self, now: i64, lifetime: i64) -> impl Iterator<Item = &Key> {
        self.keys
            .iter()
            .enumerate()
            .filter(move |(i, key)| {
                let successor = self.keys.get(i + 1).filter(|next| next.starts <= now);
                key.starts > now || successor.is_none_or(|next| next.starts > now - lifetime)
            })
            .map(|(_, key)| key)
    }
}

/// A key as `usergraph keys list` shows it.
#[derive(Debug, Clone)]
pub struct KeyState {
    /// Its `kid` (RFC 7638 thumbprint).
    pub kid: String,
    /// When it starts signing (seconds since the epoch).
    pub starts: i64,
    /// `signing`, `waiting (published)`, `verifying` or `retired`.
    pub state: &'static str,
}

/// The signing keys and the rules tokens are checked against.
pub struct JwtKeys {
    source: KeySource,
    production: bool,
    set: RwLock<Arc<KeySet>>,
    issuer: String,
    audience: String,
    ttl: Duration,
    validation: Validation,
    verified: Mutex<HashMap<String, Verified>>,
}

/// A token whose signature and claims were checked: what it says, and until when it holds.
#[derive(Clone, Copy)]
struct Verified {
    user: UserId,
    session: SessionId,
    exp: i64,
}

/// Most tokens remembered as verified; beyond this the memory starts over.
const VERIFIED_CAPACITY: usize = 10_000;

/// How often the key directory is looked at for new keys.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(10);

fn read_set(source: &KeySource, production: bool) -> anyhow::Result<KeySet> {
    let files = source.load(production)?;
    let listing = source.listing()?;
    let mut derive = Sha256::new();
    derive.update(b"usergraph refresh rotation v1");
    derive.update(files.first().map(|f| f.key.to_bytes()).unwrap_or_default());
    Ok(KeySet {
        listing,
        keys: files.iter().map(|f| Key::of(&f.key, f.starts)).collect(),
        rotation_key: derive.finalize().into(),
    })
}

impl JwtKeys {
    /// Loads the configured keys, generating the first one into the key directory when
    /// there is none.
    pub fn load_or_generate(config: &Config) -> anyhow::Result<Self> {
        let source = KeySource::of(config);
        let set = read_set(&source, config.production())?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[&config.jwt_audience]);
        validation.set_issuer(&[&config.jwt_issuer]);
        validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        Ok(Self {
            source,
            production: config.production(),
            set: RwLock::new(Arc::new(set)),
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
            ttl: config.access_token_ttl,
            validation,
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// Reads the key directory again if its files changed: keys added by `usergraph keys
    /// rotate` (here or on another instance sharing it) count from now on.
    pub fn reload(&self) -> anyhow::Result<()> {
        if self.source.listing()? == self.current().listing {
            return Ok(());
        }
        let set = read_set(&self.source, self.production)?;
        tracing::info!(keys = set.keys.len(), "signing keys reloaded");
        *self
            .set
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(set);
        // A key may have been retired: what was verified under it is checked again.
        self.remembered().clear();
        Ok(())
    }

    /// Every key with its state now, oldest first.
    pub fn states(&self) -> Vec<KeyState> {
        let set = self.current();
        let now = now_secs();
        let signing = set.signing(now).kid.clone();
        let valid: Vec<&str> = set
            .valid(now, self.lifetime())
            .map(|k| k.kid.as_str())
            .collect();
        set.keys
            .iter()
            .map(|key| KeyState {
                kid: key.kid.clone(),
                starts: key.starts,
                state: if key.kid == signing {
                    "signing"
                } else if key.starts > now {
                    "waiting (published)"
                } else if valid.contains(&key.kid.as_str()) {
                    "verifying"
                } else {
                    "retired"
                },
            })
            .collect()
    }

    fn current(&self) -> Arc<KeySet> {
        self.set
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// How long after its successor starts a key may still have valid tokens.
    fn lifetime(&self) -> i64 {
        i64::try_from(self.ttl.as_secs() + LEEWAY_SECS).unwrap_or(i64::MAX)
    }

    /// Signs the access token that pairs with a refresh token: `jti` is the refresh token's
    /// id and `iat` its issue time. Ed25519 signatures are deterministic, so the same pair
    /// always yields the same access token — what lets concurrent refreshes agree.
    pub fn issue(
        &self,
        user: UserId,
        session: SessionId,
        jti: uuid::Uuid,
        issued_at: chrono::NaiveDateTime,
        assurance: &Assurance,
    ) -> anyhow::Result<AccessToken> {
        let (amr, acr) = if assurance.second_factor {
            (vec!["pwd".to_owned(), "otp".to_owned()], "aal2")
        } else {
            (vec!["pwd".to_owned()], "aal1")
        };
        let iat = issued_at.and_utc().timestamp();
        let ttl = i64::try_from(self.ttl.as_secs()).context("access token lifetime")?;
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user.to_string(),
            sid: session.to_string(),
            jti: jti.to_string(),
            iat,
            nbf: iat,
            exp: iat + ttl,
            auth_time: assurance.auth_time.and_utc().timestamp(),
            amr,
            acr: acr.to_owned(),
        };
        let set = self.current();
        let key = set.signing(now_secs());
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
        header.kid = Some(key.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &key.encoding).context("signing")?;
        Ok(AccessToken {
            token,
            expires_in: ttl,
        })
    }

    /// Checks a token's type, key, algorithm, signature, issuer, audience and times; returns
    /// its account and session, or why it was refused.
    ///
    /// A signature check costs about 50 µs, as much as the rest of a small query: a token
    /// that passed is remembered, and checked again only for expiry (the one claim that
    /// changes with time; revocation is the caller's check, on every request).
    pub fn verify(&self, token: &str) -> Result<(UserId, SessionId), &'static str> {
        let now = jsonwebtoken::get_current_timestamp().cast_signed();
        let leeway = self.validation.leeway.cast_signed();
        let remembered = self.remembered().get(token).copied();
        if let Some(known) = remembered {
            if known.exp < now - leeway {
                return Err("access token expired");
            }
            return Ok((known.user, known.session));
        }
        let verified = self.check(token)?;
        let mut remembered = self.remembered();
        if remembered.len() >= VERIFIED_CAPACITY {
            remembered.clear();
        }
        remembered.insert(token.to_owned(), verified);
        Ok((verified.user, verified.session))
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, HashMap<String, Verified>> {
        self.verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn check(&self, token: &str) -> Result<Verified, &'static str> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| "malformed access token")?;
        if header.alg != Algorithm::EdDSA || header.typ.as_deref() != Some(ACCESS_TOKEN_TYPE) {
            return Err("not an access token");
        }
        let set = self.current();
        let key = set
            .valid(now_secs(), self.lifetime())
            .find(|key| header.kid.as_deref() == Some(key.kid.as_str()))
            .ok_or("access token signed with an unknown or retired key")?;
        let data = jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => "access token expired",
                _ => "invalid access token",
            })?;
        let user = data
            .claims
            .sub
            .parse()
            .map_err(|_| "invalid access token")?;
        let session = data
            .claims
            .sid
            .parse()
            .map_err(|_| "invalid access token")?;
        Ok(Verified {
            user,
            session,
            exp: data.claims.exp,
        })
    }

    /// The refresh token that replaces `token`: HMAC-SHA-256 of it under a server secret.
    /// Deterministic, so every request that presents the same token during the grace window
    /// gets the same successor; unpredictable without the secret.
    pub fn successor_token(&self, token: &str) -> String {
        use hmac::Mac as _;
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(&self.current().rotation_key)
            .expect("HMAC accepts keys of any length");
        mac.update(token.as_bytes());
        format!(
            "{}{}",
            super::token::REFRESH_PREFIX,
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    /// The JSON Web Key Set that verifies our tokens: every key whose tokens may be valid
    /// now or soon, the signing key first.
    pub fn jwks(&self) -> serde_json::Value {
        let set = self.current();
        let now = now_secs();
        let signing = set.signing(now).kid.clone();
        let mut keys: Vec<&Key> = set.valid(now, self.lifetime()).collect();
        keys.sort_by_key(|k| k.kid != signing);
        let keys: Vec<serde_json::Value> = keys
            .iter()
            .map(|key| {
                serde_json::json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": key.x,
                    "kid": key.kid,
                    "alg": "EdDSA",
                    "use": "sig",
                })
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }
}

fn now_secs() -> i64 {
    jsonwebtoken::get_current_timestamp().cast_signed()
}
