//! Relay connections: `PageInfo`, `UserConnection`, and opaque keyset cursors.

use async_graphql::{Context, Object, SimpleObject};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use std::sync::Arc;

use super::plain::Direct;
use super::user;
use crate::db::users::{self, SortField, SortKey, UserFilter};
use crate::domain::{bounded, bounds};
use crate::error::AppError;
use crate::graphql::context;
use crate::services::users::{Position, UserPage, sort_key};

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
    pub node: Direct,
}

/// A page of accounts.
pub struct UserConnection {
    /// The accounts with their profiles, shared with the `User`s built from them.
    users: Vec<(Arc<users::User>, Arc<users::Profile>)>,
    field: SortField,
    has_next: bool,
    has_previous: bool,
    filter: UserFilter,
}

impl UserConnection {
    /// Wraps a page from the service.
    pub fn new(page: UserPage) -> Self {
        Self {
            users: page
                .users
                .into_iter()
                .map(|(u, p)| (Arc::new(u), Arc::new(p)))
                .collect(),
            field: page.field,
            has_next: page.has_next,
            has_previous: page.has_previous,
            filter: page.filter,
        }
    }

    fn cursor(&self, user: &users::User, display_name: Option<&str>) -> String {
        let key = sort_key(self.field, user, display_name);
        encode_user_cursor((self.field, key, user.id))
    }
}

#[Object]
impl UserConnection {
    /// The accounts with their cursors.
    async fn edges(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<UserEdge>> {
        let nodes = user::list(ctx, ctx.look_ahead().field("node"), &self.users).await?;
        Ok(self
            .users
            .iter()
            .zip(nodes)
            .map(|((u, p), node)| UserEdge {
                cursor: self.cursor(u, p.display_name.as_deref()),
                node,
            })
            .collect())
    }

    /// The accounts.
    async fn nodes(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Direct>> {
        user::list(ctx, ctx.look_ahead(), &self.users).await
    }

    /// Where this page lies.
    async fn page_info(&self) -> PageInfo {
        let users = &self.users;
        PageInfo {
            has_next_page: self.has_next,
            has_previous_page: self.has_previous,
            start_cursor: users
                .first()
                .map(|(u, p)| self.cursor(u, p.display_name.as_deref())),
            end_cursor: users
                .last()
                .map(|(u, p)| self.cursor(u, p.display_name.as_deref())),
        }
    }

    /// How many accounts match the filter (counted only when asked for).
    async fn total_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        let by = context::enrolling_viewer(ctx).await?.authorize()?;
        Ok(context::services(ctx).count_users(by, &self.filter).await?)
    }
}

const USER_CURSOR: &str = "user:";

/// An opaque cursor for a position in an account listing: the order, the key, the id.
pub fn encode_user_cursor((field, key, id): Position) -> String {
    let field = match field {
        SortField::CreatedAt => "c",
        SortField::Email => "e",
        SortField::DisplayName => "d",
    };
    let key = match key {
        SortKey::CreatedAt(at) => at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
        SortKey::Text(text) => text,
    };
    let json = serde_json::json!([field, key, id.to_string()]);
    URL_SAFE_NO_PAD.encode(format!("{USER_CURSOR}{json}"))
}

/// Reads an account cursor given as the argument `field`.
pub fn decode_user_cursor(argument: &str, cursor: &str) -> Result<Position, AppError> {
    let invalid = || AppError::bad_field(argument, "is not a cursor from this list");
    bounded(argument, cursor, bounds::CURSOR)?;
    let text = URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(invalid)?;
    let json = text.strip_prefix(USER_CURSOR).ok_or_else(invalid)?;
    let (field, key, id): (String, String, String) =
        serde_json::from_str(json).map_err(|_| invalid())?;
    let id = id.parse().map_err(|_| invalid())?;
    // The key goes into SQL: a forged cursor must not carry what no input may.
    bounded(argument, &key, bounds::EMAIL).map_err(|_| invalid())?;
    let (field, key) = match field.as_str() {
        "c" => {
            let at = chrono::NaiveDateTime::parse_from_str(&key, "%Y-%m-%dT%H:%M:%S%.f")
                .map_err(|_| invalid())?;
            (SortField::CreatedAt, SortKey::CreatedAt(at))
        }
        "e" => (SortField::Email, SortKey::Text(key)),
        "d" => (SortField::DisplayName, SortKey::Text(key)),
        _ => return Err(invalid()),
    };
    Ok((field, key, id))
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
    bounded(field, cursor, bounds::CURSOR)?;
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix(kind)?.parse().ok())
        .ok_or_else(|| AppError::bad_field(field, "is not a cursor from this list"))
}
