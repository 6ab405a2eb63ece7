//! Queries about accounts.

use async_graphql::{Context, ID, Object};

use crate::db::types::{AuditEventId, UserId};
use crate::domain::Permission;
use crate::graphql::context;
use crate::graphql::guards::PermissionGuard;
use crate::graphql::types::audit::AuditEvent;
use crate::graphql::types::connection::{UserConnection, decode_cursor};
use crate::graphql::types::node::Node;
use crate::graphql::types::role::Role;
use crate::graphql::types::user::User;
use crate::services::users::PageRequest;

/// Queries about accounts.
#[derive(Default)]
pub struct UsersQuery;

#[Object]
impl UsersQuery {
    /// The caller's own account; `UNAUTHENTICATED` without a valid token.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        Ok(User::owned(context::viewer(ctx).await?.user.clone()))
    }

    /// One account: the caller's own, or any with `users:read`. Null when there is none.
    async fn user(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<User>> {
        let viewer = context::viewer(ctx).await?;
        let Ok(id) = id.parse::<UserId>() else {
            return Ok(None);
        };
        Ok(context::services(ctx)
            .user(viewer, id)
            .await?
            .map(User::new))
    }

    /// Accounts, oldest first, as a Relay connection (`users:read`). Pages hold at most 100.
    #[graphql(guard = "PermissionGuard(Permission::UsersRead)")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size counting from the start (or from `after`).")] first: Option<
            i32,
        >,
        #[graphql(desc = "Cursor to start after.")] after: Option<String>,
        #[graphql(desc = "Page size counting from the end (or from `before`).")] last: Option<i32>,
        #[graphql(desc = "Cursor to end before.")] before: Option<String>,
    ) -> async_graphql::Result<UserConnection> {
        let page = PageRequest {
            first: first.map(i64::from),
            after: after
                .as_deref()
                .map(|c| decode_cursor("after", c))
                .transpose()?,
            last: last.map(i64::from),
            before: before
                .as_deref()
                .map(|c| decode_cursor("before", c))
                .transpose()?,
        };
        Ok(UserConnection::new(
            context::services(ctx).list_users(page).await?,
        ))
    }

    /// Any object by its id: an account (yours, or any with `users:read`), a role
    /// (`roles:read`) or an audit event (`audit:read`). Null when there is none the caller may see.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Node>> {
        let viewer = context::viewer(ctx).await?;
        let Ok(uuid) = id.parse::<uuid::Uuid>() else {
            return Ok(None);
        };
        let services = context::services(ctx);
        if let Some(user) = services.find_visible_user(viewer, UserId(uuid)).await? {
            return Ok(Some(Node::User(User::new(user))));
        }
        if viewer.can(Permission::RolesRead)
            && let Some(role) = services.roles().await?.into_iter().find(|r| r.id.0 == uuid)
        {
            return Ok(Some(Node::Role(Role(role))));
        }
        if viewer.can(Permission::AuditRead)
            && let Some(event) = services.audit_event(AuditEventId(uuid)).await?
        {
            return Ok(Some(Node::AuditEvent(AuditEvent(event))));
        }
        Ok(None)
    }
}
