//! Personal access tokens.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::Conn;
use super::schema::personal_access_tokens as pats;
use crate::db::with_conn;
use crate::ids::{PersonalTokenId, UserId};

/// A row of `personal_access_tokens` (without the hash).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = pats)]
pub struct PersonalToken {
    /// Primary key.
    pub id: PersonalTokenId,
    /// The owner.
    pub user_id: UserId,
    /// The owner's label.
    pub name: String,
    /// JSON array of permission names.
    pub scopes: String,
    /// Creation time.
    pub created_at: NaiveDateTime,
    /// Last time it authenticated a request (updated at most once a minute).
    pub last_used_at: Option<NaiveDateTime>,
    /// When it stops working, if ever.
    pub expires_at: Option<NaiveDateTime>,
    /// When it was revoked.
    pub revoked_at: Option<NaiveDateTime>,
}

impl PersonalToken {
    /// The permission names the token may use.
    pub fn scope_names(&self) -> Vec<String> {
        // Only this crate writes the column, always as a JSON array of strings.
        serde_json::from_str(&self.scopes).unwrap_or_default()
    }
}

/// A new row of `personal_access_tokens`.
#[derive(Debug, Insertable)]
#[diesel(table_name = pats)]
pub struct NewPersonalToken<'a> {
    /// Primary key.
    pub id: PersonalTokenId,
    /// The owner.
    pub user_id: UserId,
    /// The owner's label.
    pub name: &'a str,
    /// JSON array of permission names.
    pub scopes: &'a str,
    /// SHA-256 of the token.
    pub token_hash: &'a [u8],
    /// Creation time.
    pub created_at: NaiveDateTime,
    /// When it stops working.
    pub expires_at: Option<NaiveDateTime>,
}

/// Inserts a token and returns it.
pub async fn insert(conn: &mut Conn<'_>, new: &NewPersonalToken<'_>) -> QueryResult<PersonalToken> {
    with_conn!(conn, |c| {
        diesel::insert_into(pats::table)
            .values(new)
            .returning(PersonalToken::as_returning())
            .get_result(c)
            .await
    })
}

/// The token with this hash, whatever its state.
pub async fn find_by_hash(conn: &mut Conn<'_>, hash: &[u8]) -> QueryResult<Option<PersonalToken>> {
    with_conn!(conn, |c| {
        pats::table
            .filter(pats::token_hash.eq(hash))
            .select(PersonalToken::as_select())
            .first(c)
            .await
            .optional()
    })
}

/// The account's tokens that are not revoked, newest first.
pub async fn list_of(conn: &mut Conn<'_>, user: UserId) -> QueryResult<Vec<PersonalToken>> {
    with_conn!(conn, |c| {
        pats::table
            .filter(pats::user_id.eq(user))
            .filter(pats::revoked_at.is_null())
            .select(PersonalToken::as_select())
            .order(pats::created_at.desc())
            .load(c)
            .await
    })
}

/// Revokes the owner's token; returns whether one was revoked.
pub async fn revoke(
    conn: &mut Conn<'_>,
    id: PersonalTokenId,
    owner: UserId,
    at: NaiveDateTime,
) -> QueryResult<bool> {
    let updated = with_conn!(conn, |c| {
        diesel::update(
            pats::table
                .find(id)
                .filter(pats::user_id.eq(owner))
                .filter(pats::revoked_at.is_null()),
        )
        .set(pats::revoked_at.eq(at))
        .execute(c)
        .await
    })?;
    Ok(updated == 1)
}

/// Records a use.
pub async fn touch(conn: &mut Conn<'_>, id: PersonalTokenId, at: NaiveDateTime) -> QueryResult<()> {
    with_conn!(conn, |c| {
        diesel::update(pats::table.find(id))
            .set(pats::last_used_at.eq(at))
            .execute(c)
            .await
    })
    .map(drop)
}
