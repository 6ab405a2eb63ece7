//! Reading the audit trail (`audit:read`).

use super::shared::Services;
use super::shared::grants::{AuditRead, Authorized};
use super::shared::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use crate::db::audit::{self, AuditEvent, AuditQuery};
use crate::error::{AppError, AppResult};
use crate::ids::AuditEventId;

/// A page of events, newest first.
#[derive(Debug)]
pub struct AuditPage {
    /// The events.
    pub events: Vec<AuditEvent>,
    /// Older events follow.
    pub has_next: bool,
    /// The page started after a cursor.
    pub has_previous: bool,
}

impl Services {
    /// A page of matching events, newest first, older than `after`.
    pub async fn audit_log(
        &self,
        _: Authorized<'_, AuditRead>,
        filter: &AuditQuery,
        first: Option<i64>,
        after: Option<AuditEventId>,
    ) -> AppResult<AuditPage> {
        let limit = match first {
            Some(n) if !(0..=MAX_PAGE_SIZE).contains(&n) => {
                return Err(AppError::bad_field(
                    "first",
                    format!("must be between 0 and {MAX_PAGE_SIZE}"),
                ));
            }
            Some(n) => n,
            None => DEFAULT_PAGE_SIZE,
        };
        let mut db = self.db.get().await?;
        let mut events = audit::list(&mut db.conn(), filter, after, limit + 1).await?;
        let has_next = events.len() as i64 > limit;
        events.truncate(usize::try_from(limit).unwrap_or(0));
        Ok(AuditPage {
            events,
            has_next,
            has_previous: after.is_some(),
        })
    }

    /// How many events match.
    pub async fn count_audit_events(
        &self,
        _: Authorized<'_, AuditRead>,
        filter: &AuditQuery,
    ) -> AppResult<i64> {
        let mut db = self.db.get().await?;
        Ok(audit::count(&mut db.conn(), filter).await?)
    }

    /// One event.
    pub async fn audit_event(
        &self,
        _: Authorized<'_, AuditRead>,
        id: AuditEventId,
    ) -> AppResult<Option<AuditEvent>> {
        let mut db = self.db.get().await?;
        Ok(audit::find(&mut db.conn(), id).await?)
    }

    /// Accounts by id, for the dataloader.
    pub async fn users_by_id(
        &self,
        ids: &[crate::ids::UserId],
    ) -> AppResult<Vec<crate::db::users::User>> {
        let mut db = self.db.get().await?;
        Ok(crate::db::users::find_users(&mut db.conn(), ids).await?)
    }
}
