//! Guards: they mirror, for the schema's documentation and an early refusal, the checks the
//! services make. The services decide: an operation that needs a permission takes proof of
//! it (`services::shared::grants::Authorized`), which only the caller's `Viewer` hands out.

use async_graphql::{Context, Guard};

use super::context;
use crate::domain::Permission;

/// Lets the field run only for a caller holding the permission.
pub struct PermissionGuard(pub Permission);

impl Guard for PermissionGuard {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        context::require(ctx, self.0).await?;
        Ok(())
    }
}

/// Lets the field run only for an authenticated caller.
pub struct SignedIn;

impl Guard for SignedIn {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        context::viewer(ctx).await?;
        Ok(())
    }
}
