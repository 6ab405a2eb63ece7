//! Relay connections: `PageInfo`, `UserConnection`, and opaque keyset cursors.

use async_graphql::{Context, Object, SimpleObject};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::user::User;
use crate::db::types::UserId;
use crate::error::AppError;
use crate::graphql::context;
use crate::services::users::UserPage;

/// Where a page lies in the whole list.
#[derive(SimpleObject)]
pub struct PageInfo {
    /// More items follow this page.
    pub has_next_page: bool,
    /// More items precede this page.
    pub has_previous_page: bool,
    /// Cursor of the first item of the page.
    pub start_cursor: Option<String>,
    /// Cursor of the last item of the page.
    pub end_cursor: Option<String>,
}

/// An account in a page, with its cursor.
#[derive(SimpleObject)]
pub struct UserEdge {
    /// Opaque position of this account, for `after` or `before`.
    pub cursor: String,
    /// The account.
    pub node: User,
}

/// A page of accounts.
pub struct UserConnection {
    page: UserPage,
}

impl UserConnection {
    /// Wraps a page from the service.
    pub fn new(page: UserPage) -> Self {
        Self { page }
    }
}

#[Object]
impl UserConnection {
    /// The accounts with their cursors.
    async fn edges(&self) -> Vec<UserEdge> {
        self.page
            .users
            .iter()
            .map(|u| UserEdge {
                cursor: encode_cursor(u.id),
                node: User::new(u.clone()),
            })
            .collect()
    }

    /// The accounts.
    async fn nodes(&self) -> Vec<User> {
        self.page.users.iter().cloned().map(User::new).collect()
    }

    /// Where this page lies.
    async fn page_info(&self) -> PageInfo {
        PageInfo {
            has_next_page: self.page.has_next,
            has_previous_page: self.page.has_previous,
            start_cursor: self.page.users.first().map(|u| encode_cursor(u.id)),
            end_cursor: self.page.users.last().map(|u| encode_cursor(u.id)),
        }
    }

    /// How many accounts the whole list holds (counted only when asked for).
    async fn total_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        Ok(context::services(ctx).count_users().await?)
    }
}

const USER_CURSOR: &str = "user:";

/// An opaque cursor for the account `id`.
pub fn encode_cursor(id: UserId) -> String {
    encode_with(USER_CURSOR, &id)
}

/// Reads an account cursor given as the argument `field`.
pub fn decode_cursor(field: &str, cursor: &str) -> Result<UserId, AppError> {
    decode_with(USER_CURSOR, field, cursor)
}

/// An opaque cursor: `kind` and `key`, base64url.
pub fn encode_with(kind: &str, key: &impl std::fmt::Display) -> String {
    URL_SAFE_NO_PAD.encode(format!("{kind}{key}"))
}

/// Reads a cursor of `kind` given as the argument `field`.
pub fn decode_with<T: std::str::FromStr>(
    kind: &str,
    field: &str,
    cursor: &str,
) -> Result<T, AppError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix(kind)?.parse().ok())
        .ok_or_else(|| AppError::bad_field(field, "is not a cursor from this list"))
}
