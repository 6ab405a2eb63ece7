//! The append-only audit trail. Nothing here updates or deletes a row.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::audit_events;
use super::{Conn, live_events};
use crate::db::with_conn;
use crate::ids::{AuditEventId, UserId};

/// A new row of `audit_events`.
#[derive(Debug, Insertable)]
#[diesel(table_name = audit_events)]
pub struct NewAuditEvent<'a> {
    /// Primary key.
    pub id: AuditEventId,
    /// When it happened.
    pub at: NaiveDateTime,
    /// Who did it; none for anonymous actions.
    pub actor_id: Option<UserId>,
    /// What happened, e.g. `user.login`.
    pub action: &'a str,
    /// The kind of thing acted on.
    pub target_type: Option<&'a str>,
    /// Its id.
    pub target_id: Option<&'a str>,
    /// The client's address.
    pub ip: Option<&'a str>,
    /// The client's User-Agent.
    pub user_agent: Option<&'a str>,
    /// JSON details; never a secret.
    pub details: Option<&'a str>,
}

/// A row of `audit_events`.
#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize, serde::Deserialize)]
#[diesel(table_name = audit_events)]
pub struct AuditEvent {
    /// Primary key.
    pub id: AuditEventId,
    /// When it happened.
    pub at: NaiveDateTime,
    /// Who did it.
    pub actor_id: Option<UserId>,
    /// What happened.
    pub action: String,
    /// The kind of thing acted on.
    pub target_type: Option<String>,
    /// Its id.
    pub target_id: Option<String>,
    /// The client's address.
    pub ip: Option<String>,
    /// The client's User-Agent.
    pub user_agent: Option<String>,
    /// JSON details.
    pub details: Option<String>,
}

impl NewAuditEvent<'_> {
    /// The row this inserts.
    fn to_row(&self) -> AuditEvent {
        AuditEvent {
            id: self.id,
            at: self.at,
            actor_id: self.actor_id,
            action: self.action.to_owned(),
            target_type: self.target_type.map(str::to_owned),
            target_id: self.target_id.map(str::to_owned),
            ip: self.ip.map(str::to_owned),
            user_agent: self.user_agent.map(str::to_owned),
            details: self.details.map(str::to_owned),
        }
    }
}

/// Appends an event.
pub async fn insert(conn: &mut Conn<'_>, event: &NewAuditEvent<'_>) -> QueryResult<()> {
    with_conn!(conn, |c| {
        diesel::insert_into(audit_events::table)
            .values(event)
            .execute(c)
            .await
    })
    .map(drop)
}

/// Appends events and announces them to live subscribers when the transaction commits: on
/// PostgreSQL in one statement, whose `RETURNING` announces each row; on
/// SQLite, whose batch insert cannot leave the optional columns out, one by one
/// (in-process, no round trips to save), then into `live_events`.
pub async fn insert_many(conn: &mut Conn<'_>, events: &[NewAuditEvent<'_>]) -> QueryResult<()> {
    match conn {
        Conn::Postgres(c) => diesel::insert_into(audit_events::table)
            .values(events)
            .returning(live_events::announce_audit_row(
                audit_events::id,
                audit_events::at,
                audit_events::actor_id,
                audit_events::action,
                audit_events::target_type,
                audit_events::target_id,
                audit_events::ip,
                audit_events::user_agent,
                audit_events::details,
            ))
            .load::<bool>(&mut **c)
            .await
            .map(drop),
        Conn::Sqlite(c) => {
            for event in events {
                diesel::insert_into(audit_events::table)
                    .values(event)
                    .execute(&mut **c)
                    .await?;
            }
            let rows: Vec<AuditEvent> = events.iter().map(NewAuditEvent::to_row).collect();
            live_events::announce_audit(conn, &rows).await
        }
    }
}

/// Which events to read.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only this actor's.
    pub actor: Option<UserId>,
    /// Only this action.
    pub action: Option<String>,
    /// Only about this target.
    pub target_id: Option<String>,
    /// Only at or after this time.
    pub since: Option<NaiveDateTime>,
    /// Only before this time.
    pub until: Option<NaiveDateTime>,
}

impl AuditQuery {
    /// Whether `event` passes the filter: what [`list`] selects, for one event in memory.
    pub fn matches(&self, event: &AuditEvent) -> bool {
        self.actor.is_none_or(|actor| event.actor_id == Some(actor))
            && self.action.as_deref().is_none_or(|a| a == event.action)
            && (self.target_id.as_deref()).is_none_or(|t| event.target_id.as_deref() == Some(t))
            && self.since.is_none_or(|since| event.at >= since)
            && self.until.is_none_or(|until| event.at < until)
    }
}

macro_rules! filtered {
    ($query:expr, $filter:expr) => {{
        let mut query = $query;
        if let Some(actor) = $filter.actor {
            query = query.filter(audit_events::actor_id.eq(actor));
        }
        if let Some(action) = &$filter.action {
            query = query.filter(audit_events::action.eq(action));
        }
        if let Some(target) = &$filter.target_id {
            query = query.filter(audit_events::target_id.eq(target));
        }
        if let Some(since) = $filter.since {
            query = query.filter(audit_events::at.ge(since));
        }
        if let Some(until) = $filter.until {
            query = query.filter(audit_events::at.lt(until));
        }
        query
    }};
}

/// Matching events newest first (ids are time-ordered), those older than `before` only.
pub async fn list(
    conn: &mut Conn<'_>,
    filter: &AuditQuery,
    before: Option<AuditEventId>,
    limit: i64,
) -> QueryResult<Vec<AuditEvent>> {
    with_conn!(conn, |c| {
        let mut query = filtered!(
            audit_events::table
                .select(AuditEvent::as_select())
                .into_boxed(),
            filter
        );
        if let Some(before) = before {
            query = query.filter(audit_events::id.lt(before));
        }
        query
            .order(audit_events::id.desc())
            .limit(limit)
            .load(c)
            .await
    })
}

/// The events an account took part in, as actor or as target, newest first, at most
/// `limit`.
pub async fn involving(
    conn: &mut Conn<'_>,
    user: UserId,
    limit: i64,
) -> QueryResult<Vec<AuditEvent>> {
    let id = user.to_string();
    with_conn!(conn, |c| {
        audit_events::table
            .filter(
                audit_events::actor_id.eq(user).or(audit_events::target_type
                    .eq("user")
                    .and(audit_events::target_id.eq(&id))),
            )
            .select(AuditEvent::as_select())
            .order(audit_events::id.desc())
            .limit(limit)
            .load(c)
            .await
    })
}

/// How many events match.
pub async fn count(conn: &mut Conn<'_>, filter: &AuditQuery) -> QueryResult<i64> {
    with_conn!(conn, |c| {
        filtered!(audit_events::table.count().into_boxed(), filter)
            .get_result(c)
            .await
    })
}

/// The event with this id.
pub async fn find(conn: &mut Conn<'_>, id: AuditEventId) -> QueryResult<Option<AuditEvent>> {
    with_conn!(conn, |c| {
        audit_events::table
            .find(id)
            .select(AuditEvent::as_select())
            .first(c)
            .await
            .optional()
    })
}
