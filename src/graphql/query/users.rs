//! Queries about accounts.

use async_graphql::{Context, ID, Object};

use crate::domain::Permission;
use crate::graphql::context;
use crate::graphql::guards::PermissionGuard;
use crate::graphql::types::audit::AuditEvent;
use crate::graphql::types::connection::{UserConnection, decode_user_cursor};
use crate::graphql::types::node::Node;
use crate::graphql::types::plain::Direct;
use crate::graphql::types::role::Role;
use crate::graphql::types::user::{OrderDirection, User, UserFilter, UserOrder};
use crate::ids::{AuditEventId, UserId};
use crate::services::users::PageRequest;

/// Queries about accounts.
#[derive(Default)]
pub struct UsersQuery;

#[Object]
impl UsersQuery {
    /// The caller's own account; `UNAUTHENTICATED` without a valid token. Answered even
    /// while a role requires a second factor the account has not turned on.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        let viewer = context::enrolling_viewer(ctx).await?;
        let me = User::owned(viewer.user.clone());
        if !ctx.look_ahead().field("profile").exists() {
            return Ok(me);
        }
        // Read at once: no other key would join the loader's batch, only its delay.
        let profile = context::services(ctx)
            .profiles_of(&[viewer.user.id])
            .await?;
        Ok(match profile.into_iter().next() {
            Some(profile) => me.with_profile(profile),
            None => me,
        })
    }

    /// One account: the caller's own, or any with `users:read`. Null when there is none.
    async fn user(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Direct>> {
        let viewer = context::viewer(ctx).await?;
        let Ok(id) = id.parse::<UserId>() else {
            return Ok(None);
        };
        let Some((user, profile)) = context::services(ctx).user_with_profile(viewer, id).await?
        else {
            return Ok(None);
        };
        let user = User::new(user).seen_by(Some(viewer));
        Ok(Some(Direct(match profile {
            Some(profile) => user.with_profile(profile),
            None => user,
        })))
    }

    /// Accounts as a Relay connection with opaque keyset cursors (`users:read`): filtered,
    /// ordered (creation time by default), at most 100 a page. Soft-deleted accounts are
    /// hidden unless `filter.includeDeleted`.
    #[graphql(guard = "PermissionGuard(Permission::UsersRead)")]
    #[expect(clippy::too_many_arguments, reason = "the contract's Relay arguments")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size counting from the start (or from `after`).")] first: Option<
            i32,
        >,
        #[graphql(desc = "Cursor to start after.")] after: Option<String>,
        #[graphql(desc = "Page size counting from the end (or from `before`).")] last: Option<i32>,
        #[graphql(desc = "Cursor to end before.")] before: Option<String>,
        #[graphql(desc = "Which accounts.")] filter: Option<UserFilter>,
        #[graphql(desc = "Order; creation time, oldest first, when omitted.")] order_by: Option<
            UserOrder,
        >,
    ) -> async_graphql::Result<UserConnection> {
        let by = context::viewer(ctx).await?.authorize()?;
        let page = PageRequest {
            first: first.map(i64::from),
            after: after
                .as_deref()
                .map(|c| decode_user_cursor("after", c))
                .transpose()?,
            last: last.map(i64::from),
            before: before
                .as_deref()
                .map(|c| decode_user_cursor("before", c))
                .transpose()?,
            filter: filter.unwrap_or_default().try_into()?,
            field: order_by.as_ref().map(|o| o.field.into()),
            descending: order_by.is_some_and(|o| o.direction == OrderDirection::Desc),
        };
        Ok(UserConnection::new(
            context::services(ctx).list_users(by, page).await?,
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
        if let Ok(by) = viewer.authorize()
            && let Some(role) = services
                .roles(by)
                .await?
                .into_iter()
                .find(|r| r.id.0 == uuid)
        {
            return Ok(Some(Node::Role(Role(role.into()))));
        }
        if let Ok(by) = viewer.authorize()
            && let Some(event) = services.audit_event(by, AuditEventId(uuid)).await?
        {
            return Ok(Some(Node::AuditEvent(AuditEvent(event))));
        }
        Ok(None)
    }
}
