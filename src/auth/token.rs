//! Opaque tokens (refresh tokens now, personal access tokens later): random, prefixed, and
//! stored only as SHA-256. Neither type prints its secret in `Debug`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

/// Prefix of refresh tokens.
pub const REFRESH_PREFIX: &str = "ugr_";
/// Prefix of personal access tokens.
pub const PERSONAL_PREFIX: &str = "ugp_";
/// Prefix of password reset tokens.
pub const RESET_PREFIX: &str = "ugpr_";
/// Prefix of emailed address tokens (verification, change, cancellation).
pub const EMAIL_PREFIX: &str = "ugem_";

/// A token as handed to a client, once.
#[derive(Clone)]
pub struct PlainToken(String);

/// What the database keeps of a token.
#[derive(Clone, PartialEq, Eq)]
pub struct HashedToken(Vec<u8>);

impl PlainToken {
    /// A new token: `prefix` and 256 random bits, base64url.
    pub fn generate(prefix: &str) -> Self {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system's random source failed");
        Self(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// The hash to store or look up.
    pub fn hashed(&self) -> HashedToken {
        HashedToken::of(&self.0)
    }

    /// Wraps a token derived elsewhere (a refresh successor).
    pub fn from_derived(token: String) -> Self {
        Self(token)
    }

    /// The token itself, to return to the client.
    pub fn expose(self) -> String {
        self.0
    }
}

impl HashedToken {
    /// SHA-256 of a token a client presented.
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).to_vec())
    }

    /// The hash bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for PlainToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlainToken(***)")
    }
}

impl std::fmt::Debug for HashedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashedToken(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_random_and_hash_stably() {
        let a = PlainToken::generate(REFRESH_PREFIX);
        let b = PlainToken::generate(REFRESH_PREFIX);
        assert_ne!(a.hashed(), b.hashed());
        assert_eq!(format!("{a:?}"), "PlainToken(***)");
        let hash = a.hashed();
        let text = a.expose();
        assert!(text.starts_with("ugr_"));
        assert_eq!(text.len(), 4 + 43);
        assert_eq!(HashedToken::of(&text), hash);
    }
}
