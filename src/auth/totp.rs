//! Second-factor secrets: TOTP (RFC 6238: SHA-1, 6 digits, 30-second steps, what every
//! authenticator app expects) through `totp-rs`, its `otpauth://` URI and QR code, the
//! sealing of secrets at rest, and recovery codes.
//!
//! One key file of the configuration ([`crate::config::Config::mfa_key_file`]) yields two
//! keys by HMAC-SHA-256: one seals TOTP secrets (ChaCha20-Poly1305 from `ring`, the
//! account's id as associated data, so a sealed secret cannot be moved to another account),
//! one hashes recovery codes (HMAC: a leaked table alone cannot be searched for codes).

use std::path::Path;

use anyhow::Context as _;
use hmac::Mac as _;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use sha2::Sha256;
use totp_rs::{Algorithm, TOTP};

use crate::ids::UserId;

/// Seconds per TOTP step.
pub const STEP_SECONDS: i64 = 30;

/// Digits of a TOTP code.
const DIGITS: usize = 6;

/// Bytes of a TOTP secret (160 bits, RFC 4226's recommendation).
const SECRET_BYTES: usize = 20;

/// Recovery codes handed out at once.
pub const RECOVERY_CODES: usize = 10;

/// The first byte of a sealed secret: how it was sealed.
const SEAL_VERSION: u8 = 1;

/// Letters of recovery codes: RFC 4648's base32 alphabet, lower-cased (no 0, 1, 8 or 9 to
/// mistake for o, l, b or g).
const CODE_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// The keys derived from the configuration's MFA key file.
pub struct MfaKeys {
    seal: LessSafeKey,
    recovery: [u8; 32],
}

impl std::fmt::Debug for MfaKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MfaKeys(..)")
    }
}

/// A secret being enrolled, with what the caller is shown of it.
#[derive(Debug)]
pub struct Enrolment {
    /// The secret in base32, for typing into an app.
    pub secret: String,
    /// The `otpauth://totp/…` URI.
    pub uri: String,
    /// The URI as a QR code, an SVG document.
    pub qr_svg: String,
}

impl MfaKeys {
    /// Reads the key file at `path`, making it (32 random bytes, hex, mode 600) when it does
    /// not exist.
    pub fn load_or_generate(path: &Path, production: bool) -> anyhow::Result<Self> {
        let material = match std::fs::read_to_string(path) {
            Ok(text) => {
                crate::auth::keys::refuse_if_shared(path, production, "the MFA key")?;
                decode_hex(text.trim()).with_context(|| {
                    format!("{} must hold 64 hex digits (32 bytes)", path.display())
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => generate(path)?,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        Ok(Self::derive(&material))
    }

    fn derive(material: &[u8]) -> Self {
        let seal = UnboundKey::new(&CHACHA20_POLY1305, &derive(material, b"totp secret v1"))
            .expect("ChaCha20-Poly1305 takes 32-byte keys");
        Self {
            seal: LessSafeKey::new(seal),
            recovery: derive(material, b"recovery code v1"),
        }
    }

    /// A new random secret for `user`, sealed.
    pub fn new_secret(&self, user: UserId) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
        let mut secret = vec![0u8; SECRET_BYTES];
        getrandom::fill(&mut secret).context("random source")?;
        let sealed = self.seal(&secret, user)?;
        Ok((secret, sealed))
    }

    fn seal(&self, secret: &[u8], user: UserId) -> anyhow::Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).context("random source")?;
        let mut sealed = secret.to_vec();
        self.seal
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(user.0.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| anyhow::anyhow!("sealing a TOTP secret failed"))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(SEAL_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// The secret `sealed` holds for `user`; an error when it was sealed with another key
    /// or for another account.
    pub fn open(&self, sealed: &[u8], user: UserId) -> anyhow::Result<Vec<u8>> {
        let (version, rest) = sealed.split_first().context("an empty sealed secret")?;
        anyhow::ensure!(*version == SEAL_VERSION, "an unknown sealing ({version})");
        anyhow::ensure!(rest.len() > NONCE_LEN, "a truncated sealed secret");
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| anyhow::anyhow!("a bad nonce"))?;
        let mut buffer = ciphertext.to_vec();
        let plain = self
            .seal
            .open_in_place(nonce, Aad::from(user.0.as_bytes()), &mut buffer)
            .map_err(|_| {
                anyhow::anyhow!("a TOTP secret does not open with the MFA key (was it changed?)")
            })?;
        Ok(plain.to_vec())
    }

    /// Ten new recovery codes (`xxxxx-xxxxx`, 50 bits each) with their hashes.
    pub fn recovery_codes(&self) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        let mut random = [0u8; RECOVERY_CODES * 10];
        getrandom::fill(&mut random).context("random source")?;
        Ok(random
            .chunks(10)
            .map(|chunk| {
                let letters: String = chunk
                    .iter()
                    .map(|b| char::from(CODE_ALPHABET[usize::from(b % 32)]))
                    .collect();
                let code = format!("{}-{}", &letters[..5], &letters[5..]);
                let hash = self.recovery_hash(&code);
                (code, hash)
            })
            .collect())
    }

    /// The stored form of a recovery code as typed (case, spaces and dashes do not count).
    pub fn recovery_hash(&self, typed: &str) -> Vec<u8> {
        let normal: String = typed
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(&self.recovery)
            .expect("HMAC accepts keys of any length");
        mac.update(normal.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

/// What a TOTP secret shows the account `label` (its email) under `issuer`.
pub fn enrolment(secret: &[u8], issuer: &str, label: &str) -> anyhow::Result<Enrolment> {
    // A `:` would split the label (the issuer is checked at start).
    let account = label.replace(':', "_");
    let totp = totp(secret, Some(issuer.to_owned()), account)?;
    let uri = totp.get_url();
    Ok(Enrolment {
        secret: totp.get_secret_base32(),
        qr_svg: qr_svg(&uri)?,
        uri,
    })
}

fn totp(secret: &[u8], issuer: Option<String>, account: String) -> anyhow::Result<TOTP> {
    TOTP::new(
        Algorithm::SHA1,
        DIGITS,
        // Skew is ours to apply (`matching_step` must know which step matched).
        0,
        STEP_SECONDS.unsigned_abs(),
        secret.to_vec(),
        issuer,
        account,
    )
    .map_err(|e| anyhow::anyhow!("a TOTP secret was refused: {e}"))
}

/// The time step of `unix_seconds`.
pub fn step_of(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(STEP_SECONDS)
}

/// Whether `typed` has the shape of a TOTP code (six digits, spaces allowed).
pub fn looks_like_code(typed: &str) -> bool {
    let digits = typed.chars().filter(|c| !c.is_whitespace());
    digits.clone().count() == DIGITS && digits.into_iter().all(|c| c.is_ascii_digit())
}

/// The time step whose code `typed` is, among the step of `unix_seconds` and one step
/// either side (clock skew); `None` when it is none of them.
pub fn matching_step(secret: &[u8], typed: &str, unix_seconds: i64) -> anyhow::Result<Option<i64>> {
    if !looks_like_code(typed) {
        return Ok(None);
    }
    let typed: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    let totp = totp(secret, None, String::new())?;
    let now = step_of(unix_seconds);
    // `check` compares in constant time.
    Ok([now, now - 1, now + 1].into_iter().find(|step| {
        let time = u64::try_from(step * STEP_SECONDS).unwrap_or(0);
        totp.check(&typed, time)
    }))
}

/// `text` as a QR code in an SVG document (black modules on white, a 4-module quiet zone).
fn qr_svg(text: &str) -> anyhow::Result<String> {
    use qrcodegen::{QrCode, QrCodeEcc};
    use std::fmt::Write as _;
    let qr = QrCode::encode_text(text, QrCodeEcc::Medium)
        .map_err(|_| anyhow::anyhow!("the otpauth URI is too long for a QR code"))?;
    let border = 4;
    let size = qr.size() + border * 2;
    let mut path = String::new();
    for y in 0..qr.size() {
        for x in 0..qr.size() {
            if qr.get_module(x, y) {
                let _ = write!(path, "M{},{}h1v1h-1z", x + border, y + border);
            }
        }
    }
    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" viewBox=\"0 0 {size} {size}\" \
         stroke=\"none\"><rect width=\"100%\" height=\"100%\" fill=\"#FFFFFF\"/>\
         <path d=\"{path}\" fill=\"#000000\"/></svg>"
    ))
}

fn derive(material: &[u8], purpose: &[u8]) -> [u8; 32] {
    let mut mac =
        hmac::Hmac::<Sha256>::new_from_slice(material).expect("HMAC accepts keys of any length");
    mac.update(b"usergraph ");
    mac.update(purpose);
    mac.finalize().into_bytes().into()
}

fn decode_hex(text: &str) -> anyhow::Result<Vec<u8>> {
    anyhow::ensure!(text.len() == 64, "64 hex digits expected");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).context("not hex"))
        .collect()
}

fn generate(path: &Path) -> anyhow::Result<Vec<u8>> {
    let mut material = [0u8; 32];
    getrandom::fill(&mut material).context("random source")?;
    let hex: String = material.iter().map(|b| format!("{b:02x}")).collect();
    if crate::auth::keys::create_secret_file(path, format!("{hex}\n").as_bytes())? {
        tracing::info!(path = %path.display(), "generated the MFA key");
        return Ok(material.to_vec());
    }
    // Another instance sharing the directory made it first: use its key.
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    decode_hex(text.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> MfaKeys {
        MfaKeys::derive(&[7u8; 32])
    }

    fn code_at(secret: &[u8], unix_seconds: i64) -> String {
        let totp = totp(secret, None, String::new()).unwrap();
        totp.generate(u64::try_from(unix_seconds).unwrap())
    }

    #[test]
    fn rfc_6238_vectors_match() {
        // RFC 6238 appendix B, SHA-1 secret "12345678901234567890", 8 digits cut to 6.
        let secret = b"12345678901234567890";
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(
                matching_step(secret, code, time).unwrap(),
                Some(step_of(time))
            );
        }
    }

    #[test]
    fn one_step_of_skew_either_side_and_no_more() {
        let secret = b"12345678901234567890";
        let at = 1_700_000_000;
        for (offset, accepted) in [
            (-60, false),
            (-30, true),
            (0, true),
            (30, true),
            (60, false),
        ] {
            let code = code_at(secret, at + offset);
            let found = matching_step(secret, &code, at).unwrap();
            assert_eq!(found.is_some(), accepted, "offset {offset}");
        }
        assert_eq!(matching_step(secret, "12345a", at).unwrap(), None);
        assert_eq!(matching_step(secret, "1234567", at).unwrap(), None);
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_account_and_key() {
        let user = UserId::new();
        let (secret, sealed) = keys().new_secret(user).unwrap();
        assert_eq!(keys().open(&sealed, user).unwrap(), secret);
        assert!(!sealed.windows(secret.len()).any(|w| w == secret.as_slice()));
        assert!(keys().open(&sealed, UserId::new()).is_err());
        assert!(MfaKeys::derive(&[8u8; 32]).open(&sealed, user).is_err());
        assert!(keys().open(&sealed[..10], user).is_err());
    }

    #[test]
    fn recovery_codes_are_distinct_and_hash_as_typed_loosely() {
        let codes = keys().recovery_codes().unwrap();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let (code, hash) = &codes[0];
        assert_eq!(code.len(), 11);
        assert_eq!(
            &keys().recovery_hash(&code.to_uppercase().replace('-', " ")),
            hash
        );
        assert_ne!(&MfaKeys::derive(&[8u8; 32]).recovery_hash(code), hash);
        let mut unique: Vec<_> = codes.iter().map(|(c, _)| c.clone()).collect();
        unique.dedup();
        assert_eq!(unique.len(), RECOVERY_CODES);
    }

    #[test]
    fn the_key_file_is_made_once_then_read_and_checked() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join("mfa.key");
        let first = MfaKeys::load_or_generate(&path, true).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
        let user = UserId::new();
        let (secret, sealed) = first.new_secret(user).unwrap();
        let again = MfaKeys::load_or_generate(&path, true).unwrap();
        assert_eq!(
            again.open(&sealed, user).unwrap(),
            secret,
            "the same key is read back"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(
            MfaKeys::load_or_generate(&path, true).is_err(),
            "production refuses it"
        );
        assert!(MfaKeys::load_or_generate(&path, false).is_ok());
        std::fs::write(&path, "not hex").unwrap();
        assert!(MfaKeys::load_or_generate(&path, false).is_err());
    }

    #[test]
    fn the_enrolment_names_issuer_and_account_and_draws_a_qr_code() {
        let enrolment = enrolment(&[1u8; 20], "usergraph", "ada@example.com").unwrap();
        assert!(
            enrolment
                .uri
                .starts_with("otpauth://totp/usergraph:ada%40example.com?secret=")
        );
        assert!(enrolment.uri.contains("issuer=usergraph"));
        assert!(enrolment.uri.contains(&enrolment.secret));
        assert!(enrolment.qr_svg.starts_with("<svg") && enrolment.qr_svg.contains("<path d=\"M"));
    }
}
