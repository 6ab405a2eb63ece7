//! The audit trail, live.

use async_graphql::{Context, Subscription};
use futures_util::{Stream, StreamExt};

use super::graphql_error;
use crate::db::audit::AuditQuery;
use crate::domain::Permission;
use crate::graphql::context;
use crate::graphql::guards::PermissionGuard;
use crate::graphql::types::audit::{AuditEvent, AuditFilter};

/// Audit subscriptions.
#[derive(Default)]
pub struct AuditSubscription;

#[Subscription]
impl AuditSubscription {
    /// Audit events as they are written, by this instance or another (`audit:read`), that
    /// match `filter` as `auditLog`'s does. Ends with `FORBIDDEN` when the caller loses
    /// `audit:read`; with `SERVICE_UNAVAILABLE` if it could not keep up (read what it missed
    /// with `auditLog`, then subscribe again).
    #[graphql(guard = "PermissionGuard(Permission::AuditRead)")]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which events.")] filter: Option<AuditFilter>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<AuditEvent>> + use<>> {
        let filter = AuditQuery::try_from(filter.unwrap_or_default())?;
        let principal = context::principal(ctx).clone();
        let events = context::services(ctx).live_audit(principal, filter).await?;
        Ok(events.map(|event| event.map(AuditEvent).map_err(graphql_error)))
    }
}
