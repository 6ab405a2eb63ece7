//! Forced logout, pushed.

use async_graphql::{Context, Subscription};
use futures_util::{Stream, StreamExt};

use super::graphql_error;
use crate::graphql::context;
use crate::graphql::types::session::Session;

/// Sessions subscriptions.
#[derive(Default)]
pub struct SessionsSubscription;

#[Subscription]
impl SessionsSubscription {
    /// The caller's sessions as they are revoked, by this instance or another: a logout
    /// elsewhere, `logoutAll`, a password change or reset, TOTP turned on, an administrator
    /// ending them or deactivating, deleting or erasing the account. When the revoked session
    /// is the caller's own (`current: true`), that is the last message: the subscription
    /// completes and the server closes the socket.
    async fn session_revoked(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Session>> + use<>> {
        let services = context::services(ctx);
        let revocations = services
            .session_revocations(context::principal(ctx))
            .await?;
        Ok(revocations.map(|revocation| {
            revocation
                .map(|r| Session::new(r.session, r.current))
                .map_err(graphql_error)
        }))
    }
}
