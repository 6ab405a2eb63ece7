//! Roles and their assignment to accounts.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::Conn;
use super::schema::{roles, user_roles, users};
use crate::db::with_conn;
use crate::ids::{RoleId, UserId};

/// A row of `roles`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = roles)]
pub struct Role {
    /// Primary key.
    pub id: RoleId,
    /// Unique name, e.g. `admin`.
    pub name: String,
    /// What the role is for.
    pub description: Option<String>,
    /// JSON array of permission names.
    pub permissions: String,
    /// Seeded by a migration; cannot be deleted.
    pub is_builtin: bool,
    /// When the role was created.
    pub created_at: NaiveDateTime,
}

impl Role {
    /// The permission names this role grants.
    pub fn permission_names(&self) -> Vec<String> {
        // Only this crate writes the column, always as a JSON array of strings.
        serde_json::from_str(&self.permissions).unwrap_or_default()
    }
}

/// Every role, by name.
pub async fn list_roles(conn: &mut Conn<'_>) -> QueryResult<Vec<Role>> {
    with_conn!(conn, |c| {
        roles::table
            .select(Role::as_select())
            .order(roles::name.asc())
            .load(c)
            .await
    })
}

/// The role with this name.
pub async fn find_role_by_name(conn: &mut Conn<'_>, name: &str) -> QueryResult<Option<Role>> {
    with_conn!(conn, |c| {
        roles::table
            .filter(roles::name.eq(name))
            .select(Role::as_select())
            .first(c)
            .await
            .optional()
    })
}

/// The roles of these accounts as (account, role) pairs, in one statement.
pub async fn roles_of_users(
    conn: &mut Conn<'_>,
    ids: &[UserId],
) -> QueryResult<Vec<(UserId, Role)>> {
    with_conn!(conn, |c| {
        user_roles::table
            .inner_join(roles::table)
            .filter(user_roles::user_id.eq_any(ids))
            .select((user_roles::user_id, Role::as_select()))
            .order((user_roles::user_id, roles::name))
            .load(c)
            .await
    })
}

/// The roles of these accounts as (account, role id) pairs, in one statement (the roles
/// themselves come from the role cache).
pub async fn role_ids_of_users(
    conn: &mut Conn<'_>,
    ids: &[UserId],
) -> QueryResult<Vec<(UserId, RoleId)>> {
    with_conn!(conn, |c| {
        user_roles::table
            .filter(user_roles::user_id.eq_any(ids))
            .select((user_roles::user_id, user_roles::role_id))
            .load(c)
            .await
    })
}

/// A row of `user_roles`.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = user_roles)]
pub struct UserRole {
    /// The account.
    pub user_id: UserId,
    /// The role.
    pub role_id: RoleId,
    /// When it was given.
    pub created_at: NaiveDateTime,
}

/// Gives roles to many accounts (for seeding).
pub async fn assign_many(conn: &mut Conn<'_>, rows: Vec<UserRole>) -> QueryResult<usize> {
    crate::db::users::bulk_insert!(conn, user_roles::table, rows)
}

/// Gives `role` to `user`; does nothing when the account has it already.
pub async fn assign_role(
    conn: &mut Conn<'_>,
    user: UserId,
    role: RoleId,
    at: NaiveDateTime,
) -> QueryResult<()> {
    with_conn!(conn, |c| {
        diesel::insert_into(user_roles::table)
            .values((
                user_roles::user_id.eq(user),
                user_roles::role_id.eq(role),
                user_roles::created_at.eq(at),
            ))
            .on_conflict_do_nothing()
            .execute(c)
            .await
    })
    .map(drop)
}

/// A new row of `roles`.
#[derive(Debug, Insertable)]
#[diesel(table_name = roles)]
pub struct NewRole<'a> {
    /// Primary key.
    pub id: RoleId,
    /// Unique name.
    pub name: &'a str,
    /// What it is for.
    pub description: Option<&'a str>,
    /// JSON array of permission names.
    pub permissions: &'a str,
    /// Creation time.
    pub created_at: NaiveDateTime,
}

/// Inserts a role and returns it.
pub async fn insert_role(conn: &mut Conn<'_>, new: &NewRole<'_>) -> QueryResult<Role> {
    with_conn!(conn, |c| {
        diesel::insert_into(roles::table)
            .values(new)
            .returning(Role::as_returning())
            .get_result(c)
            .await
    })
}

/// Deletes a role (its assignments go with it).
pub async fn delete_role(conn: &mut Conn<'_>, id: RoleId) -> QueryResult<()> {
    with_conn!(conn, |c| {
        diesel::delete(roles::table.find(id)).execute(c).await
    })
    .map(drop)
}

/// Takes `role` from `user`; returns whether the account had it.
pub async fn revoke_role(conn: &mut Conn<'_>, user: UserId, role: RoleId) -> QueryResult<bool> {
    let deleted = with_conn!(conn, |c| {
        diesel::delete(user_roles::table.find((user, role)))
            .execute(c)
            .await
    })?;
    Ok(deleted == 1)
}

/// How many active, undeleted accounts other than `except` hold `role`.
pub async fn count_active_holders_except(
    conn: &mut Conn<'_>,
    role: RoleId,
    except: UserId,
) -> QueryResult<i64> {
    with_conn!(conn, |c| {
        user_roles::table
            .inner_join(users::table)
            .filter(user_roles::role_id.eq(role))
            .filter(user_roles::user_id.ne(except))
            .filter(users::is_active.eq(true))
            .filter(users::deleted_at.is_null())
            .count()
            .get_result(c)
            .await
    })
}

/// Reads a role and, on PostgreSQL, locks its row until the transaction ends, so checks
/// like "the last administrator" cannot race. (SQLite write transactions are already
/// serial: they begin with `BEGIN IMMEDIATE`.)
pub async fn lock_role(conn: &mut Conn<'_>, name: &str) -> QueryResult<Option<Role>> {
    let query = roles::table.filter(roles::name.eq(name));
    match conn {
        Conn::Postgres(c) => {
            let locked = query.select(Role::as_select()).for_update();
            locked.first(&mut **c).await.optional()
        }
        Conn::Sqlite(c) => query
            .select(Role::as_select())
            .first(&mut **c)
            .await
            .optional(),
    }
}
