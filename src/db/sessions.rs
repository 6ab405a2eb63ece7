//! Sessions (one per login) and the refresh tokens that keep them alive.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::Conn;
use super::schema::{refresh_tokens, sessions};
use super::types::{RefreshTokenId, SessionId, UserId};
use crate::with_conn;

/// A new row of `sessions`.
#[derive(Debug, Insertable)]
#[diesel(table_name = sessions)]
pub struct NewSession<'a> {
    /// Primary key; the access token's `sid`.
    pub id: SessionId,
    /// The account.
    pub user_id: UserId,
    /// Login time.
    pub created_at: NaiveDateTime,
    /// Absolute end of the session.
    pub expires_at: NaiveDateTime,
    /// The client's User-Agent header.
    pub user_agent: Option<&'a str>,
    /// The client's address.
    pub ip: Option<&'a str>,
}

/// A new row of `refresh_tokens`.
#[derive(Debug, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct NewRefreshToken<'a> {
    /// Primary key.
    pub id: RefreshTokenId,
    /// The session it renews.
    pub session_id: SessionId,
    /// SHA-256 of the token.
    pub token_hash: &'a [u8],
    /// Issue time.
    pub created_at: NaiveDateTime,
    /// End of its idle lifetime.
    pub expires_at: NaiveDateTime,
}

/// Inserts a session.
pub async fn insert_session(conn: &mut Conn<'_>, new: &NewSession<'_>) -> QueryResult<()> {
    with_conn!(conn, |c| {
        diesel::insert_into(sessions::table)
            .values(new)
            .execute(c)
            .await
    })
    .map(drop)
}

/// Inserts a refresh token.
pub async fn insert_refresh_token(
    conn: &mut Conn<'_>,
    new: &NewRefreshToken<'_>,
) -> QueryResult<()> {
    with_conn!(conn, |c| {
        diesel::insert_into(refresh_tokens::table)
            .values(new)
            .execute(c)
            .await
    })
    .map(drop)
}
