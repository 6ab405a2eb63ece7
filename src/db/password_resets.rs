//! Password reset tokens.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::Conn;
use super::schema::password_reset_tokens as resets;
use crate::db::with_conn;
use crate::ids::{PasswordResetId, UserId};

/// A new row of `password_reset_tokens`.
#[derive(Debug, Insertable)]
#[diesel(table_name = resets)]
pub struct NewPasswordReset<'a> {
    /// Primary key.
    pub id: PasswordResetId,
    /// The account.
    pub user_id: UserId,
    /// SHA-256 of the token.
    pub token_hash: &'a [u8],
    /// Issue time.
    pub created_at: NaiveDateTime,
    /// End of validity.
    pub expires_at: NaiveDateTime,
}

/// Inserts a reset token.
pub async fn insert(conn: &mut Conn<'_>, new: &NewPasswordReset<'_>) -> QueryResult<()> {
    with_conn!(conn, |c| {
        diesel::insert_into(resets::table)
            .values(new)
            .execute(c)
            .await
    })
    .map(drop)
}

/// The account of an unused, unexpired reset token, without using it.
pub async fn peek(
    conn: &mut Conn<'_>,
    hash: &[u8],
    now: NaiveDateTime,
) -> QueryResult<Option<UserId>> {
    with_conn!(conn, |c| {
        resets::table
            .filter(resets::token_hash.eq(hash))
            .filter(resets::used_at.is_null())
            .filter(resets::expires_at.gt(now))
            .select(resets::user_id)
            .first(c)
            .await
            .optional()
    })
}

/// Uses up an unused, unexpired reset token and returns its account; `None` when the token
/// is unknown, used or expired. One statement, so two requests cannot both claim it.
pub async fn claim(
    conn: &mut Conn<'_>,
    hash: &[u8],
    now: NaiveDateTime,
) -> QueryResult<Option<UserId>> {
    with_conn!(conn, |c| {
        diesel::update(
            resets::table
                .filter(resets::token_hash.eq(hash))
                .filter(resets::used_at.is_null())
                .filter(resets::expires_at.gt(now)),
        )
        .set(resets::used_at.eq(now))
        .returning(resets::user_id)
        .get_result(c)
        .await
        .optional()
    })
}

/// Uses up every open reset token of the account; returns how many there were.
pub async fn use_all_of(
    conn: &mut Conn<'_>,
    user: UserId,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    with_conn!(conn, |c| {
        diesel::update(
            resets::table
                .filter(resets::user_id.eq(user))
                .filter(resets::used_at.is_null()),
        )
        .set(resets::used_at.eq(at))
        .execute(c)
        .await
    })
}
