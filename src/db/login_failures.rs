//! Failed-login counters, one row per normalised email.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::Conn;
use super::schema::login_failures;
use crate::with_conn;

/// A row of `login_failures`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = login_failures)]
pub struct LoginFailures {
    /// The normalised email.
    pub email_key: String,
    /// Attempts counted since the last success or the end of the last lock.
    pub failures: i32,
    /// Locks so far (the next lock lasts longer).
    pub lock_count: i32,
    /// Attempts are refused until then.
    pub locked_until: Option<NaiveDateTime>,
    /// The latest counted attempt.
    pub last_failure_at: NaiveDateTime,
}

/// Adds one attempt to the counter of `key` and returns the row. Run inside a transaction:
/// the upsert locks the row (PostgreSQL) or the database (SQLite) until it ends, so parallel
/// attempts are counted one after another.
pub async fn count_attempt(
    conn: &mut Conn<'_>,
    key: &str,
    at: NaiveDateTime,
) -> QueryResult<LoginFailures> {
    with_conn!(conn, |c| {
        diesel::insert_into(login_failures::table)
            .values((
                login_failures::email_key.eq(key),
                login_failures::failures.eq(1),
                login_failures::lock_count.eq(0),
                login_failures::last_failure_at.eq(at),
            ))
            .on_conflict(login_failures::email_key)
            .do_update()
            .set((
                login_failures::failures.eq(login_failures::failures + 1),
                login_failures::last_failure_at.eq(at),
            ))
            .returning(LoginFailures::as_returning())
            .get_result(c)
            .await
    })
}

/// Starts counting afresh after a lock ended: this attempt is the first.
pub async fn restart_count(conn: &mut Conn<'_>, key: &str) -> QueryResult<()> {
    with_conn!(conn, |c| {
        diesel::update(login_failures::table.find(key))
            .set((
                login_failures::failures.eq(1),
                login_failures::locked_until.eq(None::<NaiveDateTime>),
            ))
            .execute(c)
            .await
    })
    .map(drop)
}

/// Locks `key` until `until` and counts the lock.
pub async fn lock(conn: &mut Conn<'_>, key: &str, until: NaiveDateTime) -> QueryResult<()> {
    with_conn!(conn, |c| {
        diesel::update(login_failures::table.find(key))
            .set((
                login_failures::locked_until.eq(until),
                login_failures::failures.eq(0),
                login_failures::lock_count.eq(login_failures::lock_count + 1),
            ))
            .execute(c)
            .await
    })
    .map(drop)
}

/// Forgets the failures of `key` (after a successful login or a password reset).
pub async fn clear(conn: &mut Conn<'_>, key: &str) -> QueryResult<()> {
    with_conn!(conn, |c| {
        diesel::delete(login_failures::table.find(key))
            .execute(c)
            .await
    })
    .map(drop)
}
