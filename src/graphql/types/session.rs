//! `Session`, `PersonalAccessToken` and their inputs.

use async_graphql::{ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::utc;
use crate::db::{personal_tokens, sessions};

/// One login on one device.
pub struct Session {
    row: sessions::Session,
    current: bool,
}

impl Session {
    /// A session; `current` when the request's access token belongs to it.
    pub fn new(row: sessions::Session, current: bool) -> Self {
        Self { row, current }
    }
}

#[Object]
impl Session {
    /// The session's id (the access token's `sid`).
    async fn id(&self) -> ID {
        ID(self.row.id.to_string())
    }

    /// Login time.
    async fn created_at(&self) -> DateTime<Utc> {
        utc(self.row.created_at)
    }

    /// Last refresh.
    async fn last_used_at(&self) -> Option<DateTime<Utc>> {
        self.row.last_used_at.map(utc)
    }

    /// When the session ends however often it is refreshed.
    async fn expires_at(&self) -> DateTime<Utc> {
        utc(self.row.expires_at)
    }

    /// The User-Agent of the login.
    async fn user_agent(&self) -> Option<&str> {
        self.row.user_agent.as_deref()
    }

    /// The address of the login.
    async fn ip(&self) -> Option<&str> {
        self.row.ip.as_deref()
    }

    /// Whether the request was made with this session's access token.
    async fn current(&self) -> bool {
        self.current
    }

    /// When its holder last gave the password (the login, or a `reauthenticate`).
    async fn authenticated_at(&self) -> DateTime<Utc> {
        utc(self.row.authenticated_at())
    }

    /// Whether its holder gave a second factor (a TOTP or recovery code) too: its tokens
    /// say `acr: aal2`.
    async fn second_factor(&self) -> bool {
        self.row.mfa_at.is_some()
    }
}

/// A long-lived token for scripts, acting for its owner within its scopes.
pub struct PersonalAccessToken(pub personal_tokens::PersonalToken);

#[Object]
impl PersonalAccessToken {
    /// The token's id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// The owner's label.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// The permissions it may use (never more than its owner holds at the time of use).
    async fn scopes(&self) -> Vec<String> {
        self.0.scope_names()
    }

    /// Creation time.
    async fn created_at(&self) -> DateTime<Utc> {
        utc(self.0.created_at)
    }

    /// Last use, to the minute.
    async fn last_used_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_used_at.map(utc)
    }

    /// When it stops working; never when null.
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at.map(utc)
    }
}

/// A new personal access token: the only time the token itself is shown.
#[derive(SimpleObject)]
pub struct CreatedPersonalAccessToken {
    /// The token (`ugp_…`); only its hash is stored, so keep it now.
    pub token: String,
    /// Its metadata.
    pub personal_access_token: PersonalAccessToken,
}

/// What a new personal access token needs.
#[derive(InputObject)]
pub struct CreatePersonalAccessTokenInput {
    /// A label, 1 to 100 characters.
    pub name: String,
    /// Permissions the token may use: a subset of yours; may be empty (then it can do only
    /// what needs no permission, such as reading `me`).
    pub scopes: Vec<String>,
    /// When it stops working; never when omitted.
    pub expires_at: Option<DateTime<Utc>>,
}

/// What `changePassword` needs.
#[derive(InputObject)]
pub struct ChangePasswordInput {
    /// The password in use now.
    pub current_password: String,
    /// The new password.
    pub new_password: String,
}
