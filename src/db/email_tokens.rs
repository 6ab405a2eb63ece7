//! Tokens mailed to prove an address: verifying the account's, confirming a new one,
//! cancelling a change from the old one, and accepting an administrator's invitation.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::Conn;
use super::schema::email_tokens as tokens;
use crate::db::with_conn;
use crate::ids::{EmailTokenId, UserId};

/// What a token proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The account's own address.
    Verify,
    /// A new address for the account, applied when confirmed.
    Change,
    /// The old address refusing a change ("it was not me").
    Cancel,
    /// An invited address: its owner chooses the account's first password.
    Invite,
}

impl Purpose {
    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verify => "verify",
            Self::Change => "change",
            Self::Cancel => "cancel",
            Self::Invite => "invite",
        }
    }

    fn parse(value: &str) -> Option<Self> {
        [Self::Verify, Self::Change, Self::Cancel, Self::Invite]
            .into_iter()
            .find(|p| p.as_str() == value)
    }
}

/// A new row of `email_tokens`.
#[derive(Debug, Insertable)]
#[diesel(table_name = tokens)]
pub struct NewEmailToken<'a> {
    /// Primary key.
    pub id: EmailTokenId,
    /// The account.
    pub user_id: UserId,
    /// What it proves (`Purpose::as_str`).
    pub purpose: &'a str,
    /// The address it was sent to prove.
    pub email: &'a str,
    /// SHA-256 of the token.
    pub token_hash: &'a [u8],
    /// Issue time.
    pub created_at: NaiveDateTime,
    /// End of validity.
    pub expires_at: NaiveDateTime,
}

/// A token that was claimed: whose, for what, for which address.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The account.
    pub user_id: UserId,
    /// What it proves.
    pub purpose: Purpose,
    /// The address.
    pub email: String,
}

/// Inserts a token.
pub async fn insert(conn: &mut Conn<'_>, new: &NewEmailToken<'_>) -> QueryResult<()> {
    with_conn!(conn, |c| {
        diesel::insert_into(tokens::table)
            .values(new)
            .execute(c)
            .await
    })
    .map(drop)
}

/// Uses up every open token of the account for these purposes (a newer one voids them).
pub async fn void(
    conn: &mut Conn<'_>,
    user: UserId,
    purposes: &[Purpose],
    at: NaiveDateTime,
) -> QueryResult<usize> {
    let purposes: Vec<&str> = purposes.iter().map(|p| p.as_str()).collect();
    with_conn!(conn, |c| {
        diesel::update(
            tokens::table
                .filter(tokens::user_id.eq(user))
                .filter(tokens::purpose.eq_any(&purposes))
                .filter(tokens::used_at.is_null()),
        )
        .set(tokens::used_at.eq(at))
        .execute(c)
        .await
    })
}

/// A token's row as [`Claimed`]; `None` for a purpose this code does not know.
fn claimed((user_id, purpose, email): (UserId, String, String)) -> Option<Claimed> {
    Purpose::parse(&purpose).map(|purpose| Claimed {
        user_id,
        purpose,
        email,
    })
}

/// What an unused, unexpired token is for, without using it up.
pub async fn peek(
    conn: &mut Conn<'_>,
    hash: &[u8],
    now: NaiveDateTime,
) -> QueryResult<Option<Claimed>> {
    let row: Option<(UserId, String, String)> = with_conn!(conn, |c| {
        tokens::table
            .filter(tokens::token_hash.eq(hash))
            .filter(tokens::used_at.is_null())
            .filter(tokens::expires_at.gt(now))
            .select((tokens::user_id, tokens::purpose, tokens::email))
            .first(c)
            .await
            .optional()
    })?;
    Ok(row.and_then(claimed))
}

/// Uses up an unused, unexpired token; `None` when it is unknown, used or expired. One
/// statement, so two requests cannot both claim it.
pub async fn claim(
    conn: &mut Conn<'_>,
    hash: &[u8],
    now: NaiveDateTime,
) -> QueryResult<Option<Claimed>> {
    let row: Option<(UserId, String, String)> = with_conn!(conn, |c| {
        diesel::update(
            tokens::table
                .filter(tokens::token_hash.eq(hash))
                .filter(tokens::used_at.is_null())
                .filter(tokens::expires_at.gt(now)),
        )
        .set(tokens::used_at.eq(now))
        .returning((tokens::user_id, tokens::purpose, tokens::email))
        .get_result(c)
        .await
        .optional()
    })?;
    Ok(row.and_then(claimed))
}
