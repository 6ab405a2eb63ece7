//! Inputs and payloads of sign-up and login.

use async_graphql::{InputObject, Object};

use super::user::User;
use crate::services::shared::AuthGrant;

/// What a new account needs.
#[derive(InputObject)]
pub struct RegisterInput {
    /// Email address; letter case does not matter.
    pub email: String,
    /// Password: 15 to 128 characters by default, any characters, kept exactly as typed.
    pub password: String,
    /// Optional name to show, 1 to 100 characters.
    pub display_name: Option<String>,
}

/// Credentials for `login`.
#[derive(InputObject)]
pub struct LoginInput {
    /// Email address; letter case does not matter.
    pub email: String,
    /// Password.
    pub password: String,
}

/// The tokens of a new session, with the account.
pub struct AuthPayload(pub AuthGrant);

#[Object]
impl AuthPayload {
    /// Short-lived JWT access token; send it as `Authorization: Bearer <token>`.
    async fn access_token(&self) -> &str {
        &self.0.access_token
    }

    /// Opaque refresh token: single use, rotated on every refresh. Store it safely. Empty in
    /// cookie mode, where it is an `HttpOnly` cookie instead.
    async fn refresh_token(&self) -> &str {
        &self.0.refresh_token
    }

    /// Always `Bearer`.
    async fn token_type(&self) -> &str {
        "Bearer"
    }

    /// Lifetime of the access token in seconds.
    async fn expires_in(&self) -> i64 {
        self.0.expires_in
    }

    /// The account.
    async fn user(&self) -> User {
        User::owned(self.0.user.clone())
    }
}
