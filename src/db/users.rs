//! Accounts and their profiles.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::Conn;
use super::schema::{profiles, users};
use super::types::UserId;
use crate::with_conn;

/// A row of `users`.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users)]
pub struct User {
    /// Primary key.
    pub id: UserId,
    /// Lower-cased email address.
    pub email: String,
    /// PHC string of the argon2id hash.
    pub password_hash: String,
    /// Whether the address was confirmed.
    pub email_verified: bool,
    /// False when an administrator deactivated the account.
    pub is_active: bool,
    /// When the account was created.
    pub created_at: NaiveDateTime,
    /// When the account last changed.
    pub updated_at: NaiveDateTime,
    /// When the account was soft-deleted.
    pub deleted_at: Option<NaiveDateTime>,
    /// When the account last logged in.
    pub last_login_at: Option<NaiveDateTime>,
}

impl User {
    /// Whether the account may act: active and not deleted.
    pub fn can_sign_in(&self) -> bool {
        self.is_active && self.deleted_at.is_none()
    }
}

/// A new row of `users`.
#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    /// Primary key.
    pub id: UserId,
    /// Lower-cased email address.
    pub email: &'a str,
    /// PHC string of the password hash.
    pub password_hash: &'a str,
    /// When the account was created.
    pub created_at: NaiveDateTime,
    /// Same as `created_at`.
    pub updated_at: NaiveDateTime,
}

/// A row of `profiles`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = profiles)]
pub struct Profile {
    /// The account.
    pub user_id: UserId,
    /// Name to show.
    pub display_name: Option<String>,
    /// Year of birth.
    pub year_of_birth: Option<i32>,
    /// Free text, kept verbatim.
    pub description: Option<String>,
    /// URL of the avatar image.
    pub avatar_url: Option<String>,
    /// When the profile last changed.
    pub updated_at: NaiveDateTime,
}

/// Changes to an account: `None` leaves a column alone.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = users)]
pub struct UserChanges<'a> {
    /// New (normalised) email.
    pub email: Option<&'a str>,
    /// Activate or deactivate.
    pub is_active: Option<bool>,
    /// Soft-delete (`Some(Some(t))`) or restore (`Some(None)`).
    pub deleted_at: Option<Option<NaiveDateTime>>,
}

/// Applies `changes` to the account `id`; returns it, or `None` when there is none.
pub async fn update_user(
    conn: &mut Conn<'_>,
    id: UserId,
    changes: &UserChanges<'_>,
    at: NaiveDateTime,
) -> QueryResult<Option<User>> {
    with_conn!(conn, |c| {
        diesel::update(users::table.find(id))
            .set((changes, users::updated_at.eq(at)))
            .returning(User::as_returning())
            .get_result(c)
            .await
            .optional()
    })
}

/// Erases an account and, by cascade, everything that belongs to it (audit rows stay).
pub async fn purge_user(conn: &mut Conn<'_>, id: UserId) -> QueryResult<bool> {
    let deleted = with_conn!(conn, |c| {
        diesel::delete(users::table.find(id)).execute(c).await
    })?;
    Ok(deleted == 1)
}

/// Changes to a profile: `None` leaves a column alone, `Some(None)` clears it.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = profiles)]
pub struct ProfileChanges {
    /// New display name.
    pub display_name: Option<Option<String>>,
    /// New year of birth.
    pub year_of_birth: Option<Option<i32>>,
    /// New description.
    pub description: Option<Option<String>>,
    /// New avatar URL.
    pub avatar_url: Option<Option<String>>,
}

/// Applies `changes` to the profile of `user`.
pub async fn update_profile(
    conn: &mut Conn<'_>,
    user: UserId,
    changes: &ProfileChanges,
    at: NaiveDateTime,
) -> QueryResult<()> {
    with_conn!(conn, |c| {
        diesel::update(profiles::table.find(user))
            .set((changes, profiles::updated_at.eq(at)))
            .execute(c)
            .await
    })
    .map(drop)
}

/// Inserts an account.
pub async fn insert_user(conn: &mut Conn<'_>, new: &NewUser<'_>) -> QueryResult<User> {
    with_conn!(conn, |c| {
        diesel::insert_into(users::table)
            .values(new)
            .returning(User::as_returning())
            .get_result(c)
            .await
    })
}

/// Inserts a profile.
pub async fn insert_profile(conn: &mut Conn<'_>, profile: &Profile) -> QueryResult<()> {
    with_conn!(conn, |c| {
        diesel::insert_into(profiles::table)
            .values(profile)
            .execute(c)
            .await
    })
    .map(drop)
}

/// The account with this id, deleted or not.
pub async fn find_user(conn: &mut Conn<'_>, id: UserId) -> QueryResult<Option<User>> {
    with_conn!(conn, |c| {
        users::table
            .find(id)
            .select(User::as_select())
            .first(c)
            .await
            .optional()
    })
}

/// The accounts with these ids (one statement, for the dataloader).
pub async fn find_users(conn: &mut Conn<'_>, ids: &[UserId]) -> QueryResult<Vec<User>> {
    with_conn!(conn, |c| {
        users::table
            .filter(users::id.eq_any(ids))
            .select(User::as_select())
            .load(c)
            .await
    })
}

/// The account with this (normalised) email, deleted or not.
pub async fn find_user_by_email(conn: &mut Conn<'_>, email: &str) -> QueryResult<Option<User>> {
    with_conn!(conn, |c| {
        users::table
            .filter(users::email.eq(email))
            .select(User::as_select())
            .first(c)
            .await
            .optional()
    })
}

/// Notes a successful login.
pub async fn record_login(conn: &mut Conn<'_>, id: UserId, at: NaiveDateTime) -> QueryResult<()> {
    with_conn!(conn, |c| {
        diesel::update(users::table.find(id))
            .set(users::last_login_at.eq(at))
            .execute(c)
            .await
    })
    .map(drop)
}

/// Replaces the password hash.
pub async fn set_password_hash(
    conn: &mut Conn<'_>,
    id: UserId,
    hash: &str,
    at: NaiveDateTime,
) -> QueryResult<()> {
    with_conn!(conn, |c| {
        diesel::update(users::table.find(id))
            .set((users::password_hash.eq(hash), users::updated_at.eq(at)))
            .execute(c)
            .await
    })
    .map(drop)
}

/// The profiles of these accounts (one statement, for the dataloader).
pub async fn profiles_of(conn: &mut Conn<'_>, ids: &[UserId]) -> QueryResult<Vec<Profile>> {
    with_conn!(conn, |c| {
        profiles::table
            .filter(profiles::user_id.eq_any(ids))
            .select(Profile::as_select())
            .load(c)
            .await
    })
}

/// A keyset window over accounts ordered by id (UUID v7, so by creation time).
#[derive(Debug, Clone, Copy)]
pub struct IdWindow {
    /// Only ids greater than this.
    pub after: Option<UserId>,
    /// Only ids smaller than this.
    pub before: Option<UserId>,
    /// Rows to fetch.
    pub limit: i64,
    /// Take the rows nearest `before` (the last ones) instead of the first ones.
    pub from_end: bool,
}

/// Accounts that are not deleted, in the window, always returned in ascending id order.
pub async fn list_users(conn: &mut Conn<'_>, window: IdWindow) -> QueryResult<Vec<User>> {
    let mut rows: Vec<User> = with_conn!(conn, |c| {
        let mut query = users::table
            .filter(users::deleted_at.is_null())
            .select(User::as_select())
            .limit(window.limit)
            .into_boxed();
        if let Some(after) = window.after {
            query = query.filter(users::id.gt(after));
        }
        if let Some(before) = window.before {
            query = query.filter(users::id.lt(before));
        }
        query = if window.from_end {
            query.order(users::id.desc())
        } else {
            query.order(users::id.asc())
        };
        query.load(c).await
    })?;
    if window.from_end {
        rows.reverse();
    }
    Ok(rows)
}

/// How many accounts are not deleted.
pub async fn count_users(conn: &mut Conn<'_>) -> QueryResult<i64> {
    with_conn!(conn, |c| {
        users::table
            .filter(users::deleted_at.is_null())
            .count()
            .get_result(c)
            .await
    })
}
