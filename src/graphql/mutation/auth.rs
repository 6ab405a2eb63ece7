//! Sign-up and login.

use async_graphql::{Context, Object};

use crate::graphql::types::auth::{AuthPayload, LoginInput, RegisterInput};
use crate::graphql::{context, cookie};
use crate::services::accounts::Registration;

/// Sign-up and login.
#[derive(Default)]
pub struct AuthMutation;

#[Object]
impl AuthMutation {
    /// Creates an account (with the `user` role) and logs it in. `BAD_USER_INPUT` lists every
    /// invalid field; `CONFLICT` when the email is taken, in any letter case or look-alike
    /// spelling (compared in NFKC).
    async fn register(
        &self,
        ctx: &Context<'_>,
        input: RegisterInput,
    ) -> async_graphql::Result<AuthPayload> {
        let registration = Registration {
            email: &input.email,
            password: &input.password,
            display_name: input.display_name.as_deref(),
        };
        let grant = context::services(ctx)
            .register(registration, context::client(ctx))
            .await?;
        Ok(AuthPayload(cookie::deliver(ctx, grant)))
    }

    /// Accepts an invitation (`inviteUser`): sets the account's first password with the
    /// mailed token, marks its address verified and logs it in. `BAD_USER_INPUT` naming
    /// `token` for one that is unknown, used or expired, or `password` (the token then
    /// stays unused).
    async fn accept_invitation(
        &self,
        ctx: &Context<'_>,
        token: String,
        password: String,
    ) -> async_graphql::Result<AuthPayload> {
        let grant = context::services(ctx)
            .accept_invitation(&token, &password, context::client(ctx))
            .await?;
        Ok(AuthPayload(cookie::deliver(ctx, grant)))
    }

    /// Logs in with email and password and opens a session. A wrong password and an unknown
    /// email get the same `UNAUTHENTICATED` answer.
    async fn login(
        &self,
        ctx: &Context<'_>,
        input: LoginInput,
    ) -> async_graphql::Result<AuthPayload> {
        let grant = context::services(ctx)
            .login(&input.email, &input.password, context::client(ctx))
            .await?;
        Ok(AuthPayload(cookie::deliver(ctx, grant)))
    }
}
