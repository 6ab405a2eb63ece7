//! Sessions (one per login) and the refresh tokens that keep them alive.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::Conn;
use super::schema::{refresh_tokens, sessions};
use crate::ids::{RefreshTokenId, SessionId, UserId};

/// A row of `sessions`.
#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize, serde::Deserialize)]
#[diesel(table_name = sessions)]
pub struct Session {
    /// Primary key.
    pub id: SessionId,
    /// The account.
    pub user_id: UserId,
    /// Login time.
    pub created_at: NaiveDateTime,
    /// Last refresh.
    pub last_used_at: Option<NaiveDateTime>,
    /// Absolute end.
    pub expires_at: NaiveDateTime,
    /// When it was revoked, if it was.
    pub revoked_at: Option<NaiveDateTime>,
    /// The client's User-Agent at login.
    pub user_agent: Option<String>,
    /// The client's address at login.
    pub ip: Option<String>,
    /// When its holder last gave the password (`None`: at its creation).
    pub authenticated_at: Option<NaiveDateTime>,
    /// When its holder last gave a second factor, if ever.
    pub mfa_at: Option<NaiveDateTime>,
}

impl Session {
    /// When its holder last gave the password.
    pub fn authenticated_at(&self) -> NaiveDateTime {
        self.authenticated_at.unwrap_or(self.created_at)
    }

    /// Neither revoked nor past its absolute end.
    pub fn is_live(&self, now: NaiveDateTime) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }
}

/// A row of `refresh_tokens`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshToken {
    /// Primary key.
    pub id: RefreshTokenId,
    /// The session it renews.
    pub session_id: SessionId,
    /// Issue time.
    pub created_at: NaiveDateTime,
    /// End of its idle lifetime.
    pub expires_at: NaiveDateTime,
    /// When it was exchanged for a successor.
    pub used_at: Option<NaiveDateTime>,
    /// The successor.
    pub replaced_by: Option<RefreshTokenId>,
}
use crate::db::with_conn;

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
    /// When the password was given (the login's time).
    pub authenticated_at: NaiveDateTime,
    /// When a second factor was given, if the login asked for one.
    pub mfa_at: Option<NaiveDateTime>,
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

/// The refresh token with this hash, with its session.
pub async fn find_refresh_token(
    conn: &mut Conn<'_>,
    hash: &[u8],
) -> QueryResult<Option<(RefreshToken, Session)>> {
    with_conn!(conn, |c| {
        refresh_tokens::table
            .inner_join(sessions::table)
            .filter(refresh_tokens::token_hash.eq(hash))
            .select((RefreshToken::as_select(), Session::as_select()))
            .first(c)
            .await
            .optional()
    })
}

/// The refresh token with this id.
pub async fn find_refresh_token_by_id(
    conn: &mut Conn<'_>,
    id: RefreshTokenId,
) -> QueryResult<Option<RefreshToken>> {
    with_conn!(conn, |c| {
        refresh_tokens::table
            .find(id)
            .select(RefreshToken::as_select())
            .first(c)
            .await
            .optional()
    })
}

/// Marks a refresh token used and names its successor, only if it was unused: returns
/// false when another request got there first.
pub async fn retire_refresh_token(
    conn: &mut Conn<'_>,
    id: RefreshTokenId,
    successor: RefreshTokenId,
    at: NaiveDateTime,
) -> QueryResult<bool> {
    let updated = with_conn!(conn, |c| {
        diesel::update(
            refresh_tokens::table
                .find(id)
                .filter(refresh_tokens::used_at.is_null()),
        )
        .set((
            refresh_tokens::used_at.eq(at),
            refresh_tokens::replaced_by.eq(successor),
        ))
        .execute(c)
        .await
    })?;
    Ok(updated == 1)
}

/// Notes that a session was refreshed.
pub async fn touch_session(
    conn: &mut Conn<'_>,
    id: SessionId,
    at: NaiveDateTime,
) -> QueryResult<()> {
    with_conn!(conn, |c| {
        diesel::update(sessions::table.find(id))
            .set(sessions::last_used_at.eq(at))
            .execute(c)
            .await
    })
    .map(drop)
}

/// The session with this id.
pub async fn find_session(conn: &mut Conn<'_>, id: SessionId) -> QueryResult<Option<Session>> {
    with_conn!(conn, |c| {
        sessions::table
            .find(id)
            .select(Session::as_select())
            .first(c)
            .await
            .optional()
    })
}

/// The account's sessions that are neither revoked nor expired, newest first.
pub async fn live_sessions_of(
    conn: &mut Conn<'_>,
    user: UserId,
    now: NaiveDateTime,
) -> QueryResult<Vec<Session>> {
    with_conn!(conn, |c| {
        sessions::table
            .filter(sessions::user_id.eq(user))
            .filter(sessions::revoked_at.is_null())
            .filter(sessions::expires_at.gt(now))
            .select(Session::as_select())
            .order(sessions::created_at.desc())
            .load(c)
            .await
    })
}

/// Revokes one session if it is still live, announcing it to live subscribers; returns
/// whether it was.
pub async fn revoke_session(
    conn: &mut Conn<'_>,
    id: SessionId,
    at: NaiveDateTime,
) -> QueryResult<bool> {
    let revoked: Option<Session> = with_conn!(conn, |c| {
        diesel::update(
            sessions::table
                .find(id)
                .filter(sessions::revoked_at.is_null()),
        )
        .set(sessions::revoked_at.eq(at))
        .returning(Session::as_returning())
        .get_result(c)
        .await
        .optional()
    })?;
    let Some(revoked) = revoked else {
        return Ok(false);
    };
    super::live_events::announce_revoked(conn, revoked.user_id, &[revoked]).await?;
    Ok(true)
}

/// Revokes every live session of `user` but `keep`, announcing them to live subscribers;
/// returns the ids revoked.
pub async fn revoke_sessions_of(
    conn: &mut Conn<'_>,
    user: UserId,
    keep: Option<SessionId>,
    at: NaiveDateTime,
) -> QueryResult<Vec<SessionId>> {
    let revoked: Vec<Session> = with_conn!(conn, |c| {
        let mut query = diesel::update(sessions::table)
            .filter(sessions::user_id.eq(user))
            .filter(sessions::revoked_at.is_null())
            .into_boxed();
        if let Some(keep) = keep {
            query = query.filter(sessions::id.ne(keep));
        }
        query
            .set(sessions::revoked_at.eq(at))
            .returning(Session::as_returning())
            .get_results(c)
            .await
    })?;
    if !revoked.is_empty() {
        super::live_events::announce_revoked(conn, user, &revoked).await?;
    }
    Ok(revoked.into_iter().map(|session| session.id).collect())
}

/// Sessions revoked after `since`: what the revocation cache holds.
pub async fn revoked_since(
    conn: &mut Conn<'_>,
    since: NaiveDateTime,
) -> QueryResult<Vec<SessionId>> {
    with_conn!(conn, |c| {
        sessions::table
            .filter(sessions::revoked_at.gt(since))
            .select(sessions::id)
            .load(c)
            .await
    })
}

/// Notes that the holder of session `id` gave the password at `at`, and a second factor too
/// when `second_factor`.
pub async fn record_authentication(
    conn: &mut Conn<'_>,
    id: SessionId,
    at: NaiveDateTime,
    second_factor: bool,
) -> QueryResult<()> {
    with_conn!(conn, |c| {
        let query = diesel::update(sessions::table.find(id));
        if second_factor {
            query
                .set((sessions::authenticated_at.eq(at), sessions::mfa_at.eq(at)))
                .execute(c)
                .await
        } else {
            query
                .set(sessions::authenticated_at.eq(at))
                .execute(c)
                .await
        }
    })
    .map(drop)
}

/// Notes that the holder of session `id` gave a second factor at `at`.
pub async fn record_second_factor(
    conn: &mut Conn<'_>,
    id: SessionId,
    at: NaiveDateTime,
) -> QueryResult<()> {
    with_conn!(conn, |c| {
        diesel::update(sessions::table.find(id))
            .set(sessions::mfa_at.eq(at))
            .execute(c)
            .await
    })
    .map(drop)
}
