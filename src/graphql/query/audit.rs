//! The audit log.

use async_graphql::{Context, Object};

use crate::db::audit::AuditQuery;
use crate::domain::Permission;
use crate::graphql::context;
use crate::graphql::guards::PermissionGuard;
use crate::graphql::types::audit::{AUDIT_CURSOR, AuditEventConnection, AuditFilter};
use crate::graphql::types::connection::decode_with;

/// The audit log.
#[derive(Default)]
pub struct AuditQueryRoot;

#[Object]
impl AuditQueryRoot {
    /// Security and administrative events, newest first (`audit:read`). Pages hold at most
    /// 100.
    #[graphql(guard = "PermissionGuard(Permission::AuditRead)")]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size.")] first: Option<i32>,
        #[graphql(desc = "Cursor to continue after (older events).")] after: Option<String>,
        #[graphql(desc = "Which events.")] filter: Option<AuditFilter>,
    ) -> async_graphql::Result<AuditEventConnection> {
        let by = context::viewer(ctx).await?.authorize()?;
        let filter = AuditQuery::try_from(filter.unwrap_or_default())?;
        let after = after
            .as_deref()
            .map(|c| decode_with(AUDIT_CURSOR, "after", c))
            .transpose()?;
        let page = context::services(ctx)
            .audit_log(by, &filter, first.map(i64::from), after)
            .await?;
        Ok(AuditEventConnection::new(page, filter))
    }
}
