//! Credentials: password hashing, access tokens (JWT), opaque tokens, and the [`Principal`]
//! a request acts as.

pub mod callers;
pub mod jwt;
pub mod keys;
pub mod password;
pub mod revocation;
pub mod token;
pub mod totp;

use crate::ids::{PersonalTokenId, SessionId, UserId};

/// Who a request acts as, read from its `Authorization` header before any resolver runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No credentials were sent.
    Anonymous,
    /// Credentials were sent but are not valid; why, for the error message.
    Invalid(&'static str),
    /// A valid access token.
    User {
        /// The account (`sub`).
        user_id: UserId,
        /// The session (`sid`).
        session_id: SessionId,
    },
    /// A valid personal access token.
    PersonalToken {
        /// Its owner.
        user_id: UserId,
        /// The token.
        token_id: PersonalTokenId,
        /// The permissions it may use (never more than its owner has).
        scopes: Vec<String>,
    },
}

impl Principal {
    /// The account the request acts for, when its credentials were valid.
    pub fn user_id(&self) -> Option<UserId> {
        match self {
            Self::User { user_id, .. } | Self::PersonalToken { user_id, .. } => Some(*user_id),
            Self::Anonymous | Self::Invalid(_) => None,
        }
    }
}
