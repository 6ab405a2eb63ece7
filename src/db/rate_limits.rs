//! Rate-limit buckets shared through the database: GCRA, one row per bucket.
//!
//! A bucket holds its theoretical arrival time (`tat`, microseconds since the epoch): the
//! moment it is full again. Taking `cost` cells moves it `cost × interval` later, allowed
//! while it stays within `window` of now. Absent, or in the past, the bucket is full.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;

use super::Conn;
use super::schema::rate_limits;
use crate::db::with_conn;

/// One request for cells, in microseconds.
#[derive(Debug, Clone, Copy)]
pub struct Take {
    /// Now.
    pub now: i64,
    /// `cost × interval`: how far the bucket's time moves.
    pub advance: i64,
    /// How far ahead of now the bucket's time may be after the move (the policy's period).
    pub window: i64,
}

/// Takes cells from the bucket `key` in one statement (the row's lock makes concurrent
/// takes from any instance queue): the bucket's new time when they were there.
pub async fn take(conn: &mut Conn<'_>, key: &str, take: Take) -> QueryResult<Option<i64>> {
    // Allowed when max(tat, now) + advance - now <= window, i.e. tat <= now + window - advance
    // (a tat in the past always is, since advance <= window). The two backends spell the
    // two-argument max() differently (GREATEST, max), which diesel has no one name for.
    const POSTGRES: &str = "INSERT INTO rate_limits (key, tat) VALUES ($1, $2 + $3) \
        ON CONFLICT (key) DO UPDATE SET tat = GREATEST(rate_limits.tat, $2) + $3 \
        WHERE rate_limits.tat <= $4 RETURNING tat";
    const SQLITE: &str = "INSERT INTO rate_limits (key, tat) VALUES (?1, ?2 + ?3) \
        ON CONFLICT (key) DO UPDATE SET tat = max(rate_limits.tat, ?2) + ?3 \
        WHERE rate_limits.tat <= ?4 RETURNING tat";
    let latest = take.now + take.window - take.advance;
    let mut rows: Vec<Bucket> = match conn {
        Conn::Postgres(c) => {
            diesel::sql_query(POSTGRES)
                .bind::<Text, _>(key)
                .bind::<BigInt, _>(take.now)
                .bind::<BigInt, _>(take.advance)
                .bind::<BigInt, _>(latest)
                .load(&mut **c)
                .await?
        }
        Conn::Sqlite(c) => {
            diesel::sql_query(SQLITE)
                .bind::<Text, _>(key)
                .bind::<BigInt, _>(take.now)
                .bind::<BigInt, _>(take.advance)
                .bind::<BigInt, _>(latest)
                .load(&mut **c)
                .await?
        }
    };
    Ok(rows.pop().map(|bucket| bucket.tat))
}

#[derive(QueryableByName)]
struct Bucket {
    #[diesel(sql_type = BigInt)]
    tat: i64,
}

/// The bucket's time, when it has one.
pub async fn time_of(conn: &mut Conn<'_>, key: &str) -> QueryResult<Option<i64>> {
    with_conn!(conn, |c| {
        rate_limits::table
            .find(key)
            .select(rate_limits::tat)
            .first(c)
            .await
            .optional()
    })
}

/// Deletes the buckets that are full again (their time has passed); answers how many.
pub async fn sweep(conn: &mut Conn<'_>, now: i64) -> QueryResult<usize> {
    with_conn!(conn, |c| {
        diesel::delete(rate_limits::table.filter(rate_limits::tat.lt(now)))
            .execute(c)
            .await
    })
}
