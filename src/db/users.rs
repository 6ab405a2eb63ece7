//! Accounts and their profiles.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::Conn;
use super::schema::{profiles, roles, user_roles, users};
use crate::db::with_conn;
use crate::ids::UserId;

/// A row of `users`.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users)]
pub struct User {
    /// Primary key.
    pub id: UserId,
    /// Lower-cased email address.
    pub email: String,
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
    /// Since when a second factor (TOTP) guards the account, if one does.
    pub mfa_enabled_at: Option<NaiveDateTime>,
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

/// Applies `changes` to the profile of `user`; returns it, or `None` when there is none.
pub async fn update_profile(
    conn: &mut Conn<'_>,
    user: UserId,
    changes: &ProfileChanges,
    at: NaiveDateTime,
) -> QueryResult<Option<Profile>> {
    with_conn!(conn, |c| {
        diesel::update(profiles::table.find(user))
            .set((changes, profiles::updated_at.eq(at)))
            .returning(Profile::as_returning())
            .get_result(c)
            .await
            .optional()
    })
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

/// A new account with owned fields, for bulk inserts.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = users)]
pub struct SeedUser {
    /// Primary key.
    pub id: UserId,
    /// Lower-cased email.
    pub email: String,
    /// PHC string of the password hash.
    pub password_hash: String,
    /// Whether the account may sign in.
    pub is_active: bool,
    /// Creation time.
    pub created_at: NaiveDateTime,
    /// Same as `created_at`.
    pub updated_at: NaiveDateTime,
}

/// Inserts many rows at once (for seeding): one statement on PostgreSQL; on SQLite, whose
/// diesel driver inserts batches row by row, one blocking task with a cached statement.
macro_rules! bulk_insert {
    ($conn:expr, $table:expr, $rows:expr) => {{
        let rows = $rows;
        match $conn {
            Conn::Postgres(c) => {
                diesel::insert_into($table)
                    .values(&rows)
                    .execute(&mut **c)
                    .await
            }
            Conn::Sqlite(c) => {
                c.spawn_blocking(move |c| {
                    diesel::RunQueryDsl::execute(diesel::insert_into($table).values(&rows), c)
                })
                .await
            }
        }
    }};
}
pub(crate) use bulk_insert;

/// Inserts many accounts (for seeding).
pub async fn insert_users(conn: &mut Conn<'_>, rows: Vec<SeedUser>) -> QueryResult<usize> {
    bulk_insert!(conn, users::table, rows)
}

/// Inserts many profiles (for seeding).
pub async fn insert_profiles(conn: &mut Conn<'_>, rows: Vec<Profile>) -> QueryResult<usize> {
    bulk_insert!(conn, profiles::table, rows)
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

/// An account with its profile, in one statement.
pub async fn find_user_with_profile(
    conn: &mut Conn<'_>,
    id: UserId,
) -> QueryResult<Option<(User, Option<Profile>)>> {
    with_conn!(conn, |c| {
        users::table
            .left_join(profiles::table)
            .filter(users::id.eq(id))
            .select((User::as_select(), Option::<Profile>::as_select()))
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

/// The account with this email and its password's hash (PHC string): what a login checks.
/// The hash is read only here and by [`password_hash_of`], never with an account that is
/// shown or cached.
pub async fn find_login(conn: &mut Conn<'_>, email: &str) -> QueryResult<Option<(User, String)>> {
    with_conn!(conn, |c| {
        users::table
            .filter(users::email.eq(email))
            .select((User::as_select(), users::password_hash))
            .first(c)
            .await
            .optional()
    })
}

/// The password hash of the account `id`, to check a password it is asked for again.
pub async fn password_hash_of(conn: &mut Conn<'_>, id: UserId) -> QueryResult<Option<String>> {
    with_conn!(conn, |c| {
        users::table
            .find(id)
            .select(users::password_hash)
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

/// Marks the account's address verified, if it is still `email` (a token for an address
/// the account no longer has proves nothing); returns the account when it was.
pub async fn mark_email_verified(
    conn: &mut Conn<'_>,
    id: UserId,
    email: &str,
    at: NaiveDateTime,
) -> QueryResult<Option<User>> {
    with_conn!(conn, |c| {
        diesel::update(users::table.find(id).filter(users::email.eq(email)))
            .set((users::email_verified.eq(true), users::updated_at.eq(at)))
            .returning(User::as_returning())
            .get_result(c)
            .await
            .optional()
    })
}

/// Gives the account the (normalised) address `email`, verified; a unique violation when
/// another account has it.
pub async fn set_verified_email(
    conn: &mut Conn<'_>,
    id: UserId,
    email: &str,
    at: NaiveDateTime,
) -> QueryResult<Option<User>> {
    with_conn!(conn, |c| {
        diesel::update(users::table.find(id))
            .set((
                users::email.eq(email),
                users::email_verified.eq(true),
                users::updated_at.eq(at),
            ))
            .returning(User::as_returning())
            .get_result(c)
            .await
            .optional()
    })
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

diesel::define_sql_function! {
    /// SQL `COALESCE` of a nullable text and a fallback.
    fn coalesce(
        value: diesel::sql_types::Nullable<diesel::sql_types::Text>,
        fallback: diesel::sql_types::Text,
    ) -> diesel::sql_types::Text;
}

/// Which accounts a listing shows.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Lower-cased text to find in the email or the display name.
    pub search: Option<String>,
    /// Only holders of this role.
    pub role: Option<String>,
    /// Only active (or only inactive) accounts.
    pub is_active: Option<bool>,
    /// Show soft-deleted accounts too.
    pub include_deleted: bool,
}

/// What a listing is ordered by; the id breaks ties, so the order is total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    /// Creation time.
    CreatedAt,
    /// Email.
    Email,
    /// Display name (accounts without one first, as if it were empty).
    DisplayName,
}

/// A position in a listing: the sort key of an account and its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortKey {
    /// Creation time.
    CreatedAt(NaiveDateTime),
    /// Email, or display name (empty when there is none).
    Text(String),
}

/// A keyset page request over accounts.
#[derive(Debug, Clone)]
pub struct UserListing {
    /// Which accounts.
    pub filter: UserFilter,
    /// Ordered by what.
    pub field: SortField,
    /// Largest first.
    pub descending: bool,
    /// Only accounts after this position.
    pub after: Option<(SortKey, UserId)>,
    /// Only accounts before this position.
    pub before: Option<(SortKey, UserId)>,
    /// Rows to fetch.
    pub limit: i64,
    /// Take the rows nearest `before` (the last ones) instead of the first ones.
    pub from_end: bool,
}

/// Applies a [`UserFilter`] to a boxed query over `users` joined with `profiles`.
macro_rules! user_filter {
    ($query:expr, $filter:expr) => {{
        let filter: &UserFilter = $filter;
        let mut query = $query;
        if !filter.include_deleted {
            query = query.filter(users::deleted_at.is_null());
        }
        if let Some(active) = filter.is_active {
            query = query.filter(users::is_active.eq(active));
        }
        if let Some(role) = &filter.role {
            let holders = user_roles::table
                .inner_join(roles::table)
                .filter(roles::name.eq(role.clone()))
                .select(user_roles::user_id);
            query = query.filter(users::id.eq_any(holders));
        }
        if let Some(search) = &filter.search {
            let pattern = format!("%{}%", escape_like(search));
            // One id list from each side, each able to use its trigram index on PostgreSQL
            // (an OR across the joined tables scans both: 25x slower at 100,000 accounts).
            // Written as SQL: diesel cannot nest a query on `users` in one on `users`
            // without aliases, and the statement is the same on both backends.
            query = query.filter(
                diesel::dsl::sql::<diesel::sql_types::Bool>(
                    "users.id IN (SELECT id FROM users WHERE email LIKE ",
                )
                .bind::<diesel::sql_types::Text, _>(pattern.clone())
                .sql(" ESCAPE '\\' UNION ALL SELECT user_id FROM profiles WHERE lower(display_name) LIKE ")
                .bind::<diesel::sql_types::Text, _>(pattern)
                .sql(" ESCAPE '\\')"),
            );
        }
        query
    }};
}

/// Orders a boxed query by `$key` then id, and keeps only rows strictly beyond the
/// positions of the listing: the keyset step, the same for every sort field.
macro_rules! keyset {
    ($query:expr, $listing:expr, $key:expr, $value:ident) => {{
        let listing: &UserListing = $listing;
        let mut query = $query;
        // The direction rows are read in: reversed when paging back from the end.
        let ascending = listing.descending == listing.from_end;
        let bounds = [(&listing.after, true), (&listing.before, false)];
        for (bound, is_after) in bounds {
            let Some((SortKey::$value(value), id)) = bound else {
                continue;
            };
            // `after` keeps rows past the cursor in the listing's own order, `before` rows
            // ahead of it.
            let greater = is_after != listing.descending;
            query = if greater {
                query.filter(
                    $key.gt(value.clone())
                        .or($key.eq(value.clone()).and(users::id.gt(*id))),
                )
            } else {
                query.filter(
                    $key.lt(value.clone())
                        .or($key.eq(value.clone()).and(users::id.lt(*id))),
                )
            };
        }
        if ascending {
            query.order(($key.asc(), users::id.asc()))
        } else {
            query.order(($key.desc(), users::id.desc()))
        }
    }};
}

/// Escapes `%`, `_` and `\` so user text matches literally in `LIKE … ESCAPE '\'`.
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One page of a listing, always in the listing's order, with each account's profile (its
/// display name is the sort key when ordered by name).
pub async fn list_users(
    conn: &mut Conn<'_>,
    listing: &UserListing,
) -> QueryResult<Vec<(User, Profile)>> {
    let mut rows: Vec<(User, Profile)> = with_conn!(conn, |c| {
        let base = users::table
            .inner_join(profiles::table)
            .select((User::as_select(), Profile::as_select()))
            .limit(listing.limit)
            .into_boxed();
        let base = user_filter!(base, &listing.filter);
        let query = match listing.field {
            SortField::CreatedAt => keyset!(base, listing, users::created_at, CreatedAt),
            SortField::Email => keyset!(base, listing, users::email, Text),
            SortField::DisplayName => {
                keyset!(base, listing, coalesce(profiles::display_name, ""), Text)
            }
        };
        query.load(c).await
    })?;
    if listing.from_end {
        rows.reverse();
    }
    Ok(rows)
}

/// How many accounts match `filter`.
pub async fn count_users(conn: &mut Conn<'_>, filter: &UserFilter) -> QueryResult<i64> {
    with_conn!(conn, |c| {
        let base = users::table
            .inner_join(profiles::table)
            .count()
            .into_boxed();
        user_filter!(base, filter).get_result(c).await
    })
}
