//! Access tokens: JWTs signed with Ed25519 (EdDSA), explicitly typed `at+jwt` (RFC 9068), with
//! a `kid` that `/.well-known/jwks.json` publishes. The key is generated into the data
//! directory on first start when none is configured.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{
    DecodePrivateKey as _, EncodePrivateKey as _, spki::der::pem::LineEnding,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

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
}

/// A freshly signed access token.
#[derive(Debug)]
pub struct AccessToken {
    /// The compact JWT.
    pub token: String,
    /// Its lifetime in seconds.
    pub expires_in: i64,
}

/// The signing key, its public half and the rules tokens are checked against.
pub struct JwtKeys {
    rotation_key: [u8; 32],
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: String,
    x: String,
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

impl JwtKeys {
    /// Loads the configured key, or generates and saves one at the default path.
    pub fn load_or_generate(config: &Config) -> anyhow::Result<Self> {
        let path = config.jwt_key_path();
        let signing = if path.exists() {
            read_key(&path, config.production())?
        } else if config.jwt_key_file.is_some() {
            bail!("USERGRAPH_JWT_KEY_FILE: {} does not exist", path.display());
        } else {
            generate_key(&path)?
        };
        Ok(Self::from_signing_key(&signing, config))
    }

    fn from_signing_key(signing: &SigningKey, config: &Config) -> Self {
        let x = URL_SAFE_NO_PAD.encode(signing.verifying_key().as_bytes());
        // RFC 7638 thumbprint: SHA-256 of the required members in lexical order.
        let thumbprint = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(thumbprint.as_bytes()));
        let der = signing
            .to_pkcs8_der()
            .expect("an Ed25519 key always encodes as PKCS#8");
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[&config.jwt_audience]);
        validation.set_issuer(&[&config.jwt_issuer]);
        validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        // A separate secret for refresh rotation, derived so that it needs no storage of its
        // own and is shared by every instance that shares the signing key.
        let mut derive = Sha256::new();
        derive.update(b"usergraph refresh rotation v1");
        derive.update(signing.to_bytes());
        Self {
            rotation_key: derive.finalize().into(),
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            decoding: DecodingKey::from_ed_der(signing.verifying_key().as_bytes()),
            kid,
            x,
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
            ttl: config.access_token_ttl,
            validation,
            verified: Mutex::new(HashMap::new()),
        }
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
    ) -> anyhow::Result<AccessToken> {
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
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
        header.kid = Some(self.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.encoding).context("signing")?;
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
        if header.kid.as_deref() != Some(self.kid.as_str()) {
            return Err("access token signed with an unknown key");
        }
        let data = jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
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
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(&self.rotation_key)
            .expect("HMAC accepts keys of any length");
        mac.update(token.as_bytes());
        format!(
            "{}{}",
            super::token::REFRESH_PREFIX,
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    /// The JSON Web Key Set that verifies our tokens.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({
            "keys": [{
                "kty": "OKP",
                "crv": "Ed25519",
                "x": self.x,
                "kid": self.kid,
                "alg": "EdDSA",
                "use": "sig",
            }]
        })
    }
}

fn read_key(path: &Path, production: bool) -> anyhow::Result<SigningKey> {
    refuse_if_shared(path, production)?;
    let pem = std::fs::read_to_string(path)
        .with_context(|| format!("USERGRAPH_JWT_KEY_FILE: cannot read {}", path.display()))?;
    SigningKey::from_pkcs8_pem(&pem).map_err(|e| {
        anyhow::anyhow!(
            "USERGRAPH_JWT_KEY_FILE: {} is not an Ed25519 PKCS#8 PEM key ({e})",
            path.display()
        )
    })
}

fn generate_key(path: &Path) -> anyhow::Result<SigningKey> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).context("random source")?;
    let key = SigningKey::from_bytes(&seed);
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| anyhow::anyhow!("encoding the signing key: {e}"))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            std::io::Write::write_all(&mut file, pem.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            tracing::info!(path = %path.display(), "generated a new token signing key");
            Ok(key)
        }
        // Another instance sharing the data directory won the race: use its key.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key(path, false),
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

/// A secret file that others than its owner may read: refused in production, a warning
/// otherwise.
fn refuse_if_shared(path: &Path, production: bool) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            if production {
                bail!(
                    "USERGRAPH_ENV=production: the signing key {} may be read by others (mode \
                     {:o}); chmod 600 it",
                    path.display(),
                    mode & 0o777
                );
            }
            tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "the signing key may be read by others; chmod 600 it");
        }
    }
    Ok(())
}
