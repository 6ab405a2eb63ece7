//! Second factors: TOTP enrolment, the second step of a login, recovery codes, step-up.

use async_graphql::{Context, Object};

use crate::graphql::context;
use crate::graphql::cookie;
use crate::graphql::types::auth::AuthPayload;
use crate::graphql::types::mfa::{RecoveryCodes, TotpEnrollment};

/// Two-step verification.
#[derive(Default)]
pub struct MfaMutation;

#[Object]
impl MfaMutation {
    /// Begins TOTP enrolment: a new secret with its `otpauth://` URI and QR code (shown this
    /// once). Logins do not change until `confirmTotpEnrollment`. Needs a recent
    /// authentication (`REAUTHENTICATION_REQUIRED` otherwise); `CONFLICT` when TOTP is on.
    async fn start_totp_enrollment(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<TotpEnrollment> {
        let viewer = context::enrolling_viewer(ctx).await?;
        let enrolment = context::services(ctx)
            .start_totp_enrollment(viewer, context::client(ctx))
            .await?;
        Ok(enrolment.into())
    }

    /// Turns TOTP on with the first code the app shows; returns ten recovery codes, shown
    /// this once. From now on a login answers `MFA_REQUIRED` until `verifyMfa`. The
    /// account's other sessions end (they never gave a code); this one goes on.
    async fn confirm_totp_enrollment(
        &self,
        ctx: &Context<'_>,
        code: String,
    ) -> async_graphql::Result<RecoveryCodes> {
        let viewer = context::enrolling_viewer(ctx).await?;
        let codes = context::services(ctx)
            .confirm_totp_enrollment(viewer, &code, context::client(ctx))
            .await?;
        Ok(RecoveryCodes { codes })
    }

    /// Completes a login that answered `MFA_REQUIRED`: its `extensions.challenge` (valid
    /// five minutes, once) and a current code of the app, or an unused recovery code. Each
    /// code is accepted once; wrong codes count towards the account's lockout.
    async fn verify_mfa(
        &self,
        ctx: &Context<'_>,
        challenge: String,
        code: String,
    ) -> async_graphql::Result<AuthPayload> {
        let grant = context::services(ctx)
            .verify_mfa(&challenge, &code, context::client(ctx))
            .await?;
        Ok(AuthPayload(cookie::deliver(ctx, grant)))
    }

    /// Replaces your recovery codes (the old ones stop working), given a current code of
    /// the app; returns the new ones, shown this once.
    async fn regenerate_recovery_codes(
        &self,
        ctx: &Context<'_>,
        code: String,
    ) -> async_graphql::Result<RecoveryCodes> {
        let viewer = context::viewer(ctx).await?;
        let codes = context::services(ctx)
            .regenerate_recovery_codes(viewer, &code, context::client(ctx))
            .await?;
        Ok(RecoveryCodes { codes })
    }

    /// Step-up: give your password again (and, with two-step verification on, a code) before
    /// a sensitive change (password, email, personal tokens, account deletion, turning TOTP
    /// off) that answered `REAUTHENTICATION_REQUIRED`. Holds for this session for
    /// `USERGRAPH_REAUTHENTICATION_WINDOW` (10 minutes by default).
    async fn reauthenticate(
        &self,
        ctx: &Context<'_>,
        password: String,
        code: Option<String>,
    ) -> async_graphql::Result<bool> {
        let viewer = context::enrolling_viewer(ctx).await?;
        context::services(ctx)
            .reauthenticate(viewer, &password, code.as_deref(), context::client(ctx))
            .await?;
        Ok(true)
    }

    /// Turns TOTP off and voids the recovery codes. Needs a recent reauthentication with a
    /// code.
    async fn disable_totp(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        let viewer = context::viewer(ctx).await?;
        context::services(ctx)
            .disable_totp(viewer, context::client(ctx))
            .await?;
        Ok(true)
    }
}
