//! Live events: what GraphQL subscriptions hear about, announced in the transaction of the
//! change ([`announce`]) and delivered to every instance by the [`bus::Bus`].
//!
//! Two kinds: an audit event was written (every change worth a subscription writes one), or
//! sessions were revoked (an audit row says how many, not which). What `userUpdated` reports
//! is read off the audit events.

pub mod bus;

use serde::{Deserialize, Serialize};

use crate::db::audit::AuditEvent;
use crate::db::clock::now;
use crate::db::{Conn, live_events};
use crate::ids::{AuditEventId, SessionId, UserId};

/// Most session ids in one announcement: keeps a payload well under `pg_notify`'s limit.
const SESSIONS_PER_PAYLOAD: usize = 100;

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
    /// Sessions of `user` were revoked.
    Revoked {
        /// Their account.
        user: UserId,
        /// The sessions.
        sessions: Vec<SessionId>,
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

/// Announces that `events` were written, when the caller's transaction commits.
pub async fn announce_audit(conn: &mut Conn<'_>, events: &[AuditEvent]) -> diesel::QueryResult<()> {
    let payloads: Vec<String> = events
        .iter()
        .map(|event| {
            let payload = encode(&Event::Audit(event.clone()));
            if payload.len() <= live_events::MAX_PAYLOAD {
                payload
            } else {
                encode(&Event::AuditRef { id: event.id })
            }
        })
        .collect();
    live_events::announce(conn, &payloads, now()).await
}

/// Announces that `sessions` of `user` were revoked, when the caller's transaction commits.
pub async fn announce_revoked(
    conn: &mut Conn<'_>,
    user: UserId,
    sessions: &[SessionId],
) -> diesel::QueryResult<()> {
    let payloads: Vec<String> = sessions
        .chunks(SESSIONS_PER_PAYLOAD)
        .map(|chunk| {
            encode(&Event::Revoked {
                user,
                sessions: chunk.to_vec(),
            })
        })
        .collect();
    live_events::announce(conn, &payloads, now()).await
}

fn encode(event: &Event) -> String {
    // Ids, times and strings only: serialising cannot fail.
    serde_json::to_string(event).unwrap_or_default()
}
