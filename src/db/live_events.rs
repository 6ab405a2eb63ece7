//! Announcing events to live subscribers, in the transaction of the change they describe.
//!
//! PostgreSQL: `pg_notify` on [`CHANNEL`], which the server delivers to every listening
//! connection when (and only if) the transaction commits. SQLite has no such thing: the
//! payloads go into `live_events` in the same transaction, and each instance reads the rows
//! after the last one it saw ([`after`]).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{Array, Text};
use diesel_async::RunQueryDsl;

use super::Conn;
use super::schema::live_events;
use crate::db::with_conn;

/// The PostgreSQL notification channel.
pub const CHANNEL: &str = "usergraph_events";

/// The largest payload `pg_notify` accepts is 8000 bytes; [`announce`] callers keep under
/// this.
pub const MAX_PAYLOAD: usize = 7_900;

#[derive(Insertable)]
#[diesel(table_name = live_events)]
struct NewLiveEvent<'a> {
    at: NaiveDateTime,
    payload: &'a str,
}

/// Announces `payloads` (each at most [`MAX_PAYLOAD`] bytes) when the caller's transaction
/// commits: one statement on PostgreSQL, one per payload on SQLite.
pub async fn announce(
    conn: &mut Conn<'_>,
    payloads: &[String],
    at: NaiveDateTime,
) -> QueryResult<()> {
    if payloads.is_empty() {
        return Ok(());
    }
    match conn {
        Conn::Postgres(c) => {
            diesel::sql_query("SELECT pg_notify($1, p) FROM unnest($2) AS p")
                .bind::<Text, _>(CHANNEL)
                .bind::<Array<Text>, _>(payloads)
                .execute(&mut **c)
                .await
        }
        Conn::Sqlite(c) => {
            // One by one: diesel-async's SQLite has no batch insert (in-process, no round
            // trips to save).
            for payload in payloads {
                diesel::insert_into(live_events::table)
                    .values(NewLiveEvent { at, payload })
                    .execute(&mut **c)
                    .await?;
            }
            Ok(0)
        }
    }
    .map(drop)
}

/// SQLite: the newest row's number (0 when there is none).
pub async fn last(conn: &mut Conn<'_>) -> QueryResult<i64> {
    with_conn!(conn, |c| {
        live_events::table
            .select(diesel::dsl::max(live_events::seq))
            .first::<Option<i64>>(c)
            .await
            .map(Option::unwrap_or_default)
    })
}

/// SQLite: the rows after `seq`, oldest first, at most `limit`.
pub async fn after(conn: &mut Conn<'_>, seq: i64, limit: i64) -> QueryResult<Vec<(i64, String)>> {
    with_conn!(conn, |c| {
        live_events::table
            .filter(live_events::seq.gt(seq))
            .order(live_events::seq.asc())
            .select((live_events::seq, live_events::payload))
            .limit(limit)
            .load(c)
            .await
    })
}

/// SQLite: deletes the rows written before `before`.
pub async fn prune(conn: &mut Conn<'_>, before: NaiveDateTime) -> QueryResult<()> {
    with_conn!(conn, |c| {
        diesel::delete(live_events::table.filter(live_events::at.lt(before)))
            .execute(c)
            .await
    })
    .map(drop)
}
