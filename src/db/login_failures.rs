//! Failed-login counters, one row per normalised email.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::Conn;
use super::schema::login_failures;
use crate::db::with_conn;

/// A row of `login_failures`; written whole (but its key) by [`save`], after the caller
/// read it under [`lock_row`]'s lock.
#[derive(Debug, Clone, Queryable, Selectable, AsChangeset)]
#[diesel(table_name = login_failures, primary_key(email_key), treat_none_as_null = true)]
pub struct LoginFailures {
    /// The normalised email.
    pub email_key: String,
    /// Failed checks since the last success or the end of the last lock.
    pub failures: i32,
    /// Locks so far (the next lock lasts longer).
    pub lock_count: i32,
    /// Attempts are refused until then.
    pub locked_until: Option<NaiveDateTime>,
    /// The latest failure, or when the row was made.
    pub last_failure_at: NaiveDateTime,
    /// Password checks under way.
    pub in_flight: i32,
    /// When the latest of them began.
    pub in_flight_at: Option<NaiveDateTime>,
}

/// The counter of `key`, made if missing, locked until the transaction ends: the upsert
/// takes the row lock (PostgreSQL) or the write lock (SQLite), so concurrent checks of one
/// email read and write it one after another. Run inside a transaction.
pub async fn lock_row(
    conn: &mut Conn<'_>,
    key: &str,
    at: NaiveDateTime,
) -> QueryResult<LoginFailures> {
    with_conn!(conn, |c| {
        diesel::insert_into(login_failures::table)
            .values((
                login_failures::email_key.eq(key),
                login_failures::failures.eq(0),
                login_failures::lock_count.eq(0),
                login_failures::last_failure_at.eq(at),
                login_failures::in_flight.eq(0),
            ))
            .on_conflict(login_failures::email_key)
            .do_update()
            .set(login_failures::email_key.eq(key))
            .returning(LoginFailures::as_returning())
            .get_result(c)
            .await
    })
}

/// Reserves a check of `key` in one statement, made atomic by the upsert's row lock
/// (PostgreSQL) or write lock (SQLite): one check more under way, the counter made if missing,
/// a lock that is over forgotten with its failures, and checks under way that began before
/// `stale` no longer counted. `None`, writing nothing, when no check may begin: the email
/// is locked, or its failures and the checks under way since `stale` reach `threshold`.
pub async fn reserve(
    conn: &mut Conn<'_>,
    key: &str,
    at: NaiveDateTime,
    stale: NaiveDateTime,
    threshold: i32,
) -> QueryResult<Option<LoginFailures>> {
    use diesel::dsl::case_when;
    use login_failures::{email_key, failures, in_flight, in_flight_at, locked_until};

    // The upsert's `WHERE` (`filter`) comes from this trait, which the prelude leaves out.
    use diesel::query_dsl::methods::FilterDsl;
    let live = case_when(in_flight_at.ge(stale), in_flight).otherwise(0);
    let lock_over = locked_until.le(at);
    let room = locked_until.is_null().and((failures + live).lt(threshold));
    let changes = (
        failures.eq(case_when(locked_until.is_null(), failures).otherwise(0)),
        locked_until.eq(None::<NaiveDateTime>),
        in_flight.eq(case_when(in_flight_at.ge(stale), in_flight + 1).otherwise(1)),
        in_flight_at.eq(at),
    );
    with_conn!(conn, |c| {
        diesel::insert_into(login_failures::table)
            .values((
                email_key.eq(key),
                failures.eq(0),
                login_failures::lock_count.eq(0),
                login_failures::last_failure_at.eq(at),
                in_flight.eq(1),
                in_flight_at.eq(at),
            ))
            .on_conflict(email_key)
            .do_update()
            .set(changes)
            .filter(lock_over.or(room))
            .returning(LoginFailures::as_returning())
            .get_result(c)
            .await
            .optional()
    })
}

/// The counter of `key`, if there is one, read without locking it.
pub async fn find(conn: &mut Conn<'_>, key: &str) -> QueryResult<Option<LoginFailures>> {
    with_conn!(conn, |c| {
        login_failures::table
            .find(key)
            .select(LoginFailures::as_select())
            .first(c)
            .await
            .optional()
    })
}

/// Writes the counter of `key`.
pub async fn save(conn: &mut Conn<'_>, key: &str, changes: &LoginFailures) -> QueryResult<()> {
    with_conn!(conn, |c| {
        diesel::update(login_failures::table.find(key))
            .set(changes)
            .execute(c)
            .await
    })
    .map(drop)
}

/// Ends a check of `key` that did not fail, in one statement (atomic on both backends, so
/// no lock need be taken first): one check fewer under way and, when it `passed`, the
/// failures and locks so far forgotten.
pub async fn release(conn: &mut Conn<'_>, key: &str, passed: bool) -> QueryResult<()> {
    use diesel::dsl::case_when;
    let fewer = case_when(
        login_failures::in_flight.gt(0),
        login_failures::in_flight - 1,
    )
    .otherwise(0);
    with_conn!(conn, |c| {
        let row = diesel::update(login_failures::table.find(key));
        if passed {
            row.set((
                login_failures::in_flight.eq(fewer),
                login_failures::failures.eq(0),
                login_failures::lock_count.eq(0),
            ))
            .execute(c)
            .await
        } else {
            row.set(login_failures::in_flight.eq(fewer))
                .execute(c)
                .await
        }
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
