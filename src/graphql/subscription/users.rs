//! The caller's own account, pushed when it changes.

use async_graphql::{Context, Subscription};
use futures_util::{Stream, StreamExt};

use super::graphql_error;
use crate::graphql::context;
use crate::graphql::types::user::User;

/// Account subscriptions.
#[derive(Default)]
pub struct UsersSubscription;

#[Subscription]
impl UsersSubscription {
    /// The caller's account each time it changes, by this instance or another: profile,
    /// avatar, address or its verification, status, roles (and so permissions; also when
    /// any role is deleted). Refresh what the app shows and, for new permissions, the access
    /// token.
    async fn user_updated(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<User>> + use<>> {
        let principal = context::principal(ctx).clone();
        let updates = context::services(ctx).account_updates(principal).await?;
        Ok(updates.map(|user| user.map(User::new).map_err(graphql_error)))
    }
}
