//! The account's address and its data: verification, verified change, export.

use async_graphql::{Context, Json, Object};

use crate::graphql::context;
use crate::graphql::types::user::User;

/// Address verification, address change and data export.
#[derive(Default)]
pub struct EmailMutation;

#[Object]
impl EmailMutation {
    /// Mails you a new verification link (older ones stop working). Always true; nothing is
    /// sent when your address is verified already. Rate limited (`RATE_LIMITED`).
    async fn request_email_verification(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        let viewer = context::viewer(ctx).await?;
        context::services(ctx)
            .request_email_verification(viewer, context::client(ctx))
            .await?;
        Ok(true)
    }

    /// Uses a mailed token: verifies your address, or confirms a new one (`CONFLICT` if
    /// another account has taken it since). Needs no login: the token is the proof.
    async fn verify_email(&self, ctx: &Context<'_>, token: String) -> async_graphql::Result<User> {
        let user = context::services(ctx)
            .verify_email(&token, context::client(ctx))
            .await?;
        Ok(User::owned(user))
    }

    /// Asks to change your address, after checking your password. The new address gets a
    /// confirmation link (`verifyEmail`) and nothing changes before it is used; the old one
    /// is told and may cancel (`cancelEmailChange`). Always true, taken address or not.
    async fn change_email(
        &self,
        ctx: &Context<'_>,
        new_email: String,
        password: String,
    ) -> async_graphql::Result<bool> {
        let viewer = context::viewer(ctx).await?;
        context::services(ctx)
            .change_email(viewer, &new_email, &password, context::client(ctx))
            .await?;
        Ok(true)
    }

    /// "It was not me": with the token mailed to the old address, cancels a change of
    /// address (undoing it if it went through) and ends every session of the account.
    async fn cancel_email_change(
        &self,
        ctx: &Context<'_>,
        token: String,
    ) -> async_graphql::Result<bool> {
        context::services(ctx)
            .cancel_email_change(&token, context::client(ctx))
            .await?;
        Ok(true)
    }

    /// Everything the server keeps about you — account, profile, roles, sessions, personal
    /// access tokens (never their secrets), the audit events you took part in — as one JSON
    /// document. Audited; not with a personal access token.
    async fn export_my_data(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Json<serde_json::Value>> {
        let viewer = context::viewer(ctx).await?;
        let document = context::services(ctx)
            .export_my_data(viewer, context::client(ctx))
            .await?;
        Ok(Json(document))
    }
}
