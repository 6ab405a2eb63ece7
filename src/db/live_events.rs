//! Announcing events to live subscribers (GraphQL subscriptions), in the transaction of the
//! change they describe: every audit event written (every change worth a subscription
//! writes one) and every session revoked (an audit row says how many, not which).
//!
//! PostgreSQL: `pg_notify` on [`CHANNEL`], which the server delivers to every listening
//! connection when (and only if) the transaction commits; only while some instance has
//! a current row in `live_listeners` (NOTIFY serialises the commits of the transactions
//! that use it: no cost for what nobody hears). The SQL functions of the migration
//! `live_announce` do it from within the statements that write the change (their
//! `RETURNING`), so announcing costs no statement and the statements stay cacheable. SQLite has no such thing: the
//! payloads go into `live_events` in the same transaction, and each instance reads the rows
//! after the last one it saw ([`after`]).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};

use super::Conn;
use super::audit::AuditEvent;
use super::clock::now;
use super::schema::live_events;
use super::sessions::Session;
use crate::db::with_conn;
use crate::ids::{AuditEventId, UserId};

/// The PostgreSQL notification channel (the migration `live_announce` names it too).
pub const CHANNEL: &str = "usergraph_events";

/// How long a listener's row holds without being renewed.
const LISTENER_LEASE: &str = "30 seconds";

/// The functions of the migration `live_announce` (PostgreSQL), each `true` when it
/// announced and `false` when nobody listens.
#[expect(
    clippy::too_many_arguments,
    reason = "the audit function takes one argument per column of the row"
)]
mod functions {
    use diesel::sql_types::{Array, Nullable, Text, Timestamp};

    // Not `Uuid`: the macro brings diesel's own SQL types into scope.
    use crate::ids::sql::Uuid as IdColumn;

    diesel::define_sql_function! {
        /// Announces an audit row ([`super::Event::Audit`], or [`super::Event::AuditRef`]
        /// when too long for a notification).
        #[sql_name = "live_announce_audit"]
        fn announce_audit(
            id: IdColumn,
            at: Timestamp,
            actor_id: Nullable<IdColumn>,
            action: Text,
            target_type: Nullable<Text>,
            target_id: Nullable<Text>,
            ip: Nullable<Text>,
            user_agent: Nullable<Text>,
            details: Nullable<Text>,
        ) -> Bool;
    }

    diesel::define_sql_function! {
        /// Announces [`super::Event::AccountChanged`] for an account (every one when null).
        #[sql_name = "live_announce_account_change"]
        fn announce_account_change(user_id: Nullable<IdColumn>) -> Bool;
    }

    diesel::define_sql_function! {
        /// Announces payloads made here.
        #[sql_name = "live_announce"]
        fn announce(payloads: Array<Text>) -> Bool;
    }
}

pub(super) use functions::{
    announce_account_change as announce_account_change_row, announce_audit as announce_audit_row,
};

#[derive(Insertable)]
#[diesel(table_name = live_events)]
struct NewLiveEvent<'a> {
    at: NaiveDateTime,
    payload: &'a str,
}

/// Announces `payloads` (each well under `pg_notify`'s 8000 bytes) when the caller's
/// transaction commits: one statement on PostgreSQL, one per payload on SQLite.
async fn announce(conn: &mut Conn<'_>, payloads: &[String], at: NaiveDateTime) -> QueryResult<()> {
    if payloads.is_empty() {
        return Ok(());
    }
    match conn {
        Conn::Postgres(c) => diesel::select(functions::announce(payloads))
            .get_result::<bool>(&mut **c)
            .await
            .map(usize::from),
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

/// Most sessions in one announcement.
const SESSIONS_PER_PAYLOAD: usize = 50;

/// What the sessions of one announcement may take, well under `pg_notify`'s 8000 bytes.
const PAYLOAD_BUDGET: usize = 7_000;

/// Something a live subscriber may want to hear about.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// An audit event was written.
    Audit(AuditEvent),
    /// An audit event too large for one notification: readers load it by id.
    AuditRef {
        /// The event.
        id: AuditEventId,
    },
    /// What authorises `user` (every account when `None`) changed: status, password, roles,
    /// a role's grants (as `account_changes` records).
    AccountChanged {
        /// The account.
        user: Option<UserId>,
    },
    /// Sessions of `user` were revoked (as they were then: an erased account's rows are
    /// gone by the time anyone reads them).
    Revoked {
        /// Their account.
        user: UserId,
        /// The sessions.
        sessions: Vec<Session>,
    },
}

impl Event {
    /// The account an audit event is about, when it is about one.
    pub fn audited_user(event: &AuditEvent) -> Option<UserId> {
        (event.target_type.as_deref() == Some("user"))
            .then(|| event.target_id.as_deref()?.parse().ok())
            .flatten()
    }
}

/// Announces that what authorises `user` changed, when the caller's transaction commits
/// (SQLite's way; PostgreSQL announces within the INSERT, [`announce_account_change_row`]).
pub(super) async fn announce_account_change(
    conn: &mut Conn<'_>,
    user: Option<UserId>,
) -> QueryResult<()> {
    announce(conn, &[encode(&Event::AccountChanged { user })], now()).await
}

/// Announces that `events` were written, when the caller's transaction commits (SQLite's
/// way, where a payload may be any length; PostgreSQL announces within the INSERT,
/// [`announce_audit_row`]).
pub(super) async fn announce_audit(conn: &mut Conn<'_>, events: &[AuditEvent]) -> QueryResult<()> {
    let payloads: Vec<String> = events
        .iter()
        .map(|event| encode(&Event::Audit(event.clone())))
        .collect();
    announce(conn, &payloads, now()).await
}

/// Announces that `sessions` of `user` were revoked, when the caller's transaction commits.
pub async fn announce_revoked(
    conn: &mut Conn<'_>,
    user: UserId,
    sessions: &[Session],
) -> QueryResult<()> {
    let mut payloads = Vec::new();
    let mut chunk: Vec<Session> = Vec::new();
    // A session is at most about 2.5 KB (its User-Agent); a payload stays under 8000 bytes.
    for session in sessions {
        if chunk.len() >= SESSIONS_PER_PAYLOAD
            || (!chunk.is_empty()
                && size_of_chunk(&chunk) + size_of_chunk(std::slice::from_ref(session))
                    > PAYLOAD_BUDGET)
        {
            payloads.push(revoked(user, std::mem::take(&mut chunk)));
        }
        chunk.push(session.clone());
    }
    if !chunk.is_empty() {
        payloads.push(revoked(user, chunk));
    }
    announce(conn, &payloads, now()).await
}

fn revoked(user: UserId, sessions: Vec<Session>) -> String {
    encode(&Event::Revoked { user, sessions })
}

/// The encoded length of `sessions` in a payload.
fn size_of_chunk(sessions: &[Session]) -> usize {
    serde_json::to_string(sessions).map_or(0, |s| s.len())
}

fn encode(event: &Event) -> String {
    // Ids, times and strings only: serialising cannot fail.
    serde_json::to_string(event).unwrap_or_default()
}

/// PostgreSQL: records (or renews) that `instance` listens, for [`LISTENER_LEASE`]; drops
/// rows long expired. On the listening connection itself, so a renewal that fails tells
/// the listener its connection failed.
pub async fn renew_listener(
    client: &tokio_postgres::Client,
    instance: &str,
) -> Result<(), tokio_postgres::Error> {
    let statement = format!(
        "WITH gone AS (DELETE FROM live_listeners \
         WHERE until < (now() AT TIME ZONE 'UTC') - interval '1 hour') \
         INSERT INTO live_listeners (instance, until) \
         VALUES ($1, (now() AT TIME ZONE 'UTC') + interval '{LISTENER_LEASE}') \
         ON CONFLICT (instance) DO UPDATE SET until = EXCLUDED.until"
    );
    client.execute(&statement, &[&instance]).await.map(drop)
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
