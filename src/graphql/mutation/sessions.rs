//! Refresh, logout, session revocation, password change and personal access tokens.

use async_graphql::{Context, ID, Object};

use crate::error::AppError;
use crate::graphql::types::auth::AuthPayload;
use crate::graphql::types::session::{
    ChangePasswordInput, CreatePersonalAccessTokenInput, CreatedPersonalAccessToken,
    PersonalAccessToken,
};
use crate::graphql::{context, cookie};
use crate::services::personal_tokens::NewTokenRequest;

/// Session and token management.
#[derive(Default)]
pub struct SessionsMutation;

#[Object]
impl SessionsMutation {
    /// Exchanges a refresh token for a new pair; the old one is retired. Sent again within
    /// the grace window (two tabs at once) it returns the same new pair; sent later it is
    /// treated as stolen and the whole session ends. In cookie mode send `""`: the cookie's
    /// token is used, and the new one set as the cookie.
    async fn refresh_token(
        &self,
        ctx: &Context<'_>,
        refresh_token: String,
    ) -> async_graphql::Result<AuthPayload> {
        let token = cookie::presented(ctx, refresh_token);
        let grant = context::services(ctx)
            .refresh(&token, context::client(ctx))
            .await?;
        Ok(AuthPayload(cookie::deliver(ctx, grant)))
    }

    /// Ends the session of this refresh token; its access tokens stop working at once.
    /// False when the token names no live session. In cookie mode send `""`: the cookie's
    /// session ends and the cookie is dropped.
    async fn logout(
        &self,
        ctx: &Context<'_>,
        refresh_token: String,
    ) -> async_graphql::Result<bool> {
        let token = cookie::presented(ctx, refresh_token);
        let ended = context::services(ctx)
            .logout(&token, context::client(ctx))
            .await?;
        cookie::clear(ctx);
        Ok(ended)
    }

    /// Ends every one of your sessions, this one included (and drops the refresh cookie in
    /// cookie mode).
    async fn logout_all(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        let viewer = context::viewer(ctx).await?;
        context::services(ctx)
            .logout_all(viewer, context::client(ctx))
            .await?;
        cookie::clear(ctx);
        Ok(true)
    }

    /// Ends one of your sessions (`NOT_FOUND` for anyone else's).
    async fn revoke_session(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<bool> {
        let viewer = context::viewer(ctx).await?;
        let id = id.parse().map_err(|_| AppError::NotFound("session"))?;
        context::services(ctx)
            .revoke_session(viewer, id, context::client(ctx))
            .await?;
        Ok(true)
    }

    /// Changes your password; every other session ends. Not with a personal access token.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        input: ChangePasswordInput,
    ) -> async_graphql::Result<bool> {
        let viewer = context::viewer(ctx).await?;
        context::services(ctx)
            .change_password(
                viewer,
                &input.current_password,
                &input.new_password,
                context::client(ctx),
            )
            .await?;
        Ok(true)
    }

    /// Creates a personal access token (`ugp_…`), shown only in this answer. Its scopes must
    /// be permissions you hold (`FORBIDDEN` otherwise). Not with a personal access token.
    async fn create_personal_access_token(
        &self,
        ctx: &Context<'_>,
        input: CreatePersonalAccessTokenInput,
    ) -> async_graphql::Result<CreatedPersonalAccessToken> {
        let viewer = context::viewer(ctx).await?;
        let request = NewTokenRequest {
            name: &input.name,
            scopes: &input.scopes,
            expires_at: input.expires_at,
        };
        let (token, row) = context::services(ctx)
            .create_personal_token(viewer, request, context::client(ctx))
            .await?;
        Ok(CreatedPersonalAccessToken {
            token,
            personal_access_token: PersonalAccessToken(row),
        })
    }

    /// Revokes one of your personal access tokens (`NOT_FOUND` for anyone else's).
    async fn revoke_personal_access_token(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<bool> {
        let viewer = context::viewer(ctx).await?;
        let id = id
            .parse()
            .map_err(|_| AppError::NotFound("personal access token"))?;
        context::services(ctx)
            .revoke_personal_token(viewer, id, context::client(ctx))
            .await?;
        Ok(true)
    }

    /// Mails a single-use reset token if an active account has this email. Always true, at
    /// once: the answer tells nothing about which emails have accounts.
    async fn request_password_reset(
        &self,
        ctx: &Context<'_>,
        email: String,
    ) -> async_graphql::Result<bool> {
        context::services(ctx)
            .request_password_reset(&email, context::client(ctx))
            .await?;
        Ok(true)
    }

    /// Sets a new password with a mailed reset token. Every session ends and any login
    /// lockout on the email is lifted.
    async fn reset_password(
        &self,
        ctx: &Context<'_>,
        token: String,
        new_password: String,
    ) -> async_graphql::Result<bool> {
        context::services(ctx)
            .reset_password(&token, &new_password, context::client(ctx))
            .await?;
        Ok(true)
    }

    /// Erases your account for good after checking your password: every session ends, the
    /// email is free again, the audit trail keeps its rows. Not with a personal access
    /// token, and not for the last active administrator.
    async fn delete_my_account(
        &self,
        ctx: &Context<'_>,
        password: String,
    ) -> async_graphql::Result<bool> {
        let viewer = context::viewer(ctx).await?;
        context::services(ctx)
            .delete_my_account(viewer, &password, context::client(ctx))
            .await?;
        Ok(true)
    }
}
