//! Queries about roles.

use async_graphql::{Context, Object};

use crate::domain::Permission;
use crate::graphql::context;
use crate::graphql::guards::PermissionGuard;
use crate::graphql::types::role::Role;

/// Queries about roles.
#[derive(Default)]
pub struct RolesQuery;

#[Object]
impl RolesQuery {
    /// Every role, by name (`roles:read`).
    #[graphql(guard = "PermissionGuard(Permission::RolesRead)")]
    async fn roles(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Role>> {
        let by = context::viewer(ctx).await?.authorize()?;
        Ok(context::services(ctx)
            .roles(by)
            .await?
            .into_iter()
            .map(|role| Role(role.into()))
            .collect())
    }
}
