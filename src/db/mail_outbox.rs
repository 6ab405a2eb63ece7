//! The mail outbox: messages waiting to be sent, sent, or given up on.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::Conn;
use super::schema::mail_outbox as outbox;
use crate::db::with_conn;
use crate::ids::MailId;

/// A message to send.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = outbox)]
pub struct OutboxMail {
    /// Primary key.
    pub id: MailId,
    /// The address it goes to.
    pub recipient: String,
    /// Its subject.
    pub subject: String,
    /// The plain-text part.
    pub text_body: String,
    /// The HTML part.
    pub html_body: String,
    /// When the change that caused it was made.
    pub created_at: NaiveDateTime,
    /// Sending attempts so far.
    pub attempts: i32,
    /// When it is due (again).
    pub next_attempt_at: NaiveDateTime,
}

/// Queues a message (inside the transaction of the change that causes it).
pub async fn insert(conn: &mut Conn<'_>, mail: &OutboxMail) -> QueryResult<()> {
    with_conn!(conn, |c| {
        diesel::insert_into(outbox::table)
            .values(mail)
            .execute(c)
            .await
    })
    .map(drop)
}

/// Up to `limit` messages due at `now`, oldest first.
pub async fn due(
    conn: &mut Conn<'_>,
    now: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<OutboxMail>> {
    with_conn!(conn, |c| {
        outbox::table
            .filter(outbox::sent_at.is_null())
            .filter(outbox::failed_at.is_null())
            .filter(outbox::next_attempt_at.le(now))
            .order(outbox::next_attempt_at.asc())
            .limit(limit)
            .select(OutboxMail::as_select())
            .load(c)
            .await
    })
}

/// Takes a due message for one attempt, until `lease_until` (then, if this sender died, it is
/// due again); `false` when another sender took it first. One statement, so two instances
/// never send it at once.
pub async fn claim(
    conn: &mut Conn<'_>,
    id: MailId,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
) -> QueryResult<bool> {
    with_conn!(conn, |c| {
        diesel::update(
            outbox::table
                .filter(outbox::id.eq(id))
                .filter(outbox::sent_at.is_null())
                .filter(outbox::failed_at.is_null())
                .filter(outbox::next_attempt_at.le(now)),
        )
        .set((
            outbox::next_attempt_at.eq(lease_until),
            outbox::attempts.eq(outbox::attempts + 1),
        ))
        .execute(c)
        .await
    })
    .map(|n| n == 1)
}

/// Marks a message sent and erases its bodies (they may hold tokens).
pub async fn mark_sent(conn: &mut Conn<'_>, id: MailId, at: NaiveDateTime) -> QueryResult<()> {
    with_conn!(conn, |c| {
        diesel::update(outbox::table.find(id))
            .set((
                outbox::sent_at.eq(at),
                outbox::text_body.eq(""),
                outbox::html_body.eq(""),
                outbox::last_error.eq(None::<String>),
            ))
            .execute(c)
            .await
    })
    .map(drop)
}

/// Records a failed attempt: due again at `retry_at`, or given up on (bodies erased) when
/// `None`.
pub async fn mark_failed(
    conn: &mut Conn<'_>,
    id: MailId,
    error: &str,
    retry_at: Option<NaiveDateTime>,
    at: NaiveDateTime,
) -> QueryResult<()> {
    with_conn!(conn, |c| match retry_at {
        Some(retry_at) => {
            diesel::update(outbox::table.find(id))
                .set((
                    outbox::next_attempt_at.eq(retry_at),
                    outbox::last_error.eq(error),
                ))
                .execute(c)
                .await
        }
        None => {
            diesel::update(outbox::table.find(id))
                .set((
                    outbox::failed_at.eq(at),
                    outbox::last_error.eq(error),
                    outbox::text_body.eq(""),
                    outbox::html_body.eq(""),
                ))
                .execute(c)
                .await
        }
    })
    .map(drop)
}

/// Messages not yet sent nor given up on.
pub async fn pending_count(conn: &mut Conn<'_>) -> QueryResult<i64> {
    with_conn!(conn, |c| {
        outbox::table
            .filter(outbox::sent_at.is_null())
            .filter(outbox::failed_at.is_null())
            .count()
            .get_result(c)
            .await
    })
}

/// Deletes the records of messages sent or given up on before `before`.
pub async fn prune(conn: &mut Conn<'_>, before: NaiveDateTime) -> QueryResult<usize> {
    with_conn!(conn, |c| {
        diesel::delete(
            outbox::table.filter(outbox::sent_at.lt(before).or(outbox::failed_at.lt(before))),
        )
        .execute(c)
        .await
    })
}
