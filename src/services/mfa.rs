//! Second factors: TOTP enrolment, recovery codes, the second step of a login, step-up
//! reauthentication, turning TOTP off, and an administrator's reset for a lost device.
//!
//! The rules in one place: a TOTP code is accepted once (replays within its window are
//! refused) with one step of clock skew either side; every code is checked as an attempt
//! counted against the account under the login lockout's rules; recovery codes are shown once
//! and stored as HMACs; the secret is sealed with the configuration's key and never shown
//! again after enrolment starts.

use serde_json::json;

use super::shared::audit::{self, Event, action};
use super::shared::factors::{Accept, Factor};
use super::shared::grants::{Authorized, UsersWrite};
use super::shared::mail::enqueue;
use super::shared::sessions::{CHALLENGE_REFUSED, SecondStep, count_login};
use super::shared::{AuthGrant, ClientInfo, Services, Viewer, record_account_change};
use crate::auth::token::HashedToken;
use crate::auth::totp::{self, Enrolment};
use crate::db::mfa::{self, MfaChallenge, NewRecoveryCode};
use crate::db::users::{self, User};
use crate::db::{Conn, sessions, transaction};
use crate::domain::{bounded, bounds};
use crate::error::{AppError, AppResult};
use crate::ids::{RecoveryCodeId, UserId};
use crate::mail::Letter;
use crate::ratelimit::Operation;

/// A wrong code given where the caller is signed in.
fn wrong_code() -> AppError {
    AppError::bad_field(
        "code",
        "is not a current code of your authenticator app (nor an unused recovery code where \
         one is accepted)",
    )
}

/// `BAD_USER_INPUT` on `code` for a wrong code; other refusals (lock, rate) as they are.
fn as_field_error(error: AppError) -> AppError {
    match error {
        AppError::Unauthenticated(_) => wrong_code(),
        other => other,
    }
}

impl Services {
    /// Begins TOTP enrolment for the caller: a new secret (replacing one not confirmed yet),
    /// its `otpauth://` URI and QR code. Nothing changes for logins until
    /// [`Self::confirm_totp_enrollment`].
    pub async fn start_totp_enrollment(
        &self,
        viewer: &Viewer,
        client: &ClientInfo,
    ) -> AppResult<Enrolment> {
        if viewer.user.mfa_enabled_at.is_some() {
            return Err(already_on());
        }
        self.require_recent(viewer, "enrol a second factor").await?;
        let user = &viewer.user;
        let (secret, sealed) = self
            .mfa_keys
            .new_secret(user.id)
            .map_err(AppError::internal)?;
        let at = self.clock_now();
        let mut db = self.db.get().await?;
        transaction!(&mut db, |conn| {
            if !mfa::put_pending_secret(conn, user.id, &sealed, at).await? {
                return Err(already_on());
            }
            let event = Event::on(
                Some(user.id),
                action::MFA_ENROLLMENT_STARTED,
                ("user", user.id),
                client,
            );
            audit::record(conn, event).await
        })?;
        totp::enrolment(&secret, &self.config.mfa_issuer, &user.email).map_err(AppError::internal)
    }

    /// Turns TOTP on with a first code of the secret being enrolled; returns the recovery
    /// codes, shown this once. The session that confirms counts as having given a code.
    pub async fn confirm_totp_enrollment(
        &self,
        viewer: &Viewer,
        code: &str,
        client: &ClientInfo,
    ) -> AppResult<Vec<String>> {
        let session = viewer.require_session("enrol a second factor")?;
        bounded("code", code, bounds::CODE)?;
        let user = viewer.user.id;
        let (secret, sealed) = self.pending_secret(user).await?;
        let at = self.clock_now();
        let unix = at.and_utc().timestamp();
        let typed = code.to_owned();
        let verdict =
            async move { totp::matching_step(&secret, &typed, unix).map_err(AppError::internal) };
        let attempt = super::shared::factors::code_attempt(user, client);
        let step = self
            .counted(attempt, verdict)
            .await
            .map_err(as_field_error)?;
        let codes = self.mfa_keys.recovery_codes().map_err(AppError::internal)?;
        let mut db = self.db.get().await?;
        let ended = transaction!(&mut db, |conn| {
            if !mfa::confirm_secret(conn, user, &sealed, step, at).await? {
                // Another tab confirmed it, or began a new enrolment, meanwhile.
                return Err(AppError::bad_field(
                    "code",
                    "the enrolment changed meanwhile: start it again",
                ));
            }
            mfa::set_enabled(conn, user, Some(at), at).await?;
            store_codes(conn, user, &codes, at).await?;
            sessions::record_second_factor(conn, session, at).await?;
            // The account's other sessions never gave a code (one stolen before would keep
            // what the second factor now guards, admin rights under the roles' policy
            // included): they end, and every session from now on has passed it.
            let ended = sessions::revoke_sessions_of(conn, user, Some(session), at).await?;
            record_account_change(conn, Some(user)).await?;
            let event = Event::on(Some(user), action::MFA_ENROLLED, ("user", user), client)
                .with_details(json!({ "factor": "totp", "sessionsRevoked": ended.len() }));
            audit::record(conn, event).await?;
            enqueue(conn, &viewer.user.email, &enrolled_letter()).await?;
            Ok(ended)
        })?;
        self.mail_queued();
        self.committed(user, ended);
        tracing::info!(user.id = %user, "two-step verification turned on");
        Ok(codes.into_iter().map(|(code, _)| code).collect())
    }

    /// The secret `user` is enrolling, not confirmed yet, and as it is stored.
    async fn pending_secret(&self, user: UserId) -> AppResult<(Vec<u8>, Vec<u8>)> {
        let pending = {
            let mut db = self.db.get().await?;
            mfa::find_secret(&mut db.conn(), user).await?
        };
        let Some(pending) = pending.filter(|row| row.confirmed_at.is_none()) else {
            return Err(AppError::bad_field(
                "code",
                "there is no enrolment to confirm: call startTotpEnrollment first",
            ));
        };
        let secret = self
            .mfa_keys
            .open(&pending.secret, user)
            .map_err(AppError::internal)?;
        Ok((secret, pending.secret))
    }

    /// Completes a login that answered `MFA_REQUIRED`: a current TOTP code or an unused
    /// recovery code, then the session and its tokens.
    pub async fn verify_mfa(
        &self,
        challenge: &str,
        code: &str,
        client: &ClientInfo,
    ) -> AppResult<AuthGrant> {
        let result = self.complete_login(challenge, code, client).await;
        count_login(&result);
        result
    }

    async fn complete_login(
        &self,
        challenge: &str,
        code: &str,
        client: &ClientInfo,
    ) -> AppResult<AuthGrant> {
        AppError::check([
            bounded("challenge", challenge, bounds::TOKEN).err(),
            bounded("code", code, bounds::CODE).err(),
        ])?;
        self.limit(Operation::VerifyMfa, client, None).await?;
        let at = self.clock_now();
        let (row, user) = self.waiting_login(challenge, at).await?;
        let factor = self
            .check_code(user.id, code, Accept::TotpOrRecovery, client)
            .await
            .map_err(|error| match error {
                AppError::Unauthenticated(_) => CHALLENGE_REFUSED,
                other => other,
            })?;
        let second = SecondStep {
            challenge: row.id,
            factor,
        };
        let refresh = self
            .open_login(&user, None, Some(second), at, client)
            .await?;
        self.mailed_if_spent(factor);
        self.callers.evict(Some(user.id));
        tracing::info!(user.id = %user.id, factor = factor.as_str(), "logged in with a second factor");
        self.grant(
            User {
                last_login_at: Some(at),
                ..user
            },
            refresh,
        )
    }

    /// The challenge `token` names, if it still waits, with its account if that may still
    /// sign in with a second factor.
    async fn waiting_login(
        &self,
        token: &str,
        at: chrono::NaiveDateTime,
    ) -> AppResult<(MfaChallenge, User)> {
        let mut db = self.db.get().await?;
        let mut conn = db.conn();
        let hash = HashedToken::of(token);
        let row = mfa::find_challenge(&mut conn, hash.as_bytes())
            .await?
            .filter(|row| row.used_at.is_none() && row.expires_at > at)
            .ok_or(CHALLENGE_REFUSED)?;
        let user = users::find_user(&mut conn, row.user_id)
            .await?
            .filter(|user| user.can_sign_in() && user.mfa_enabled_at.is_some())
            .ok_or(CHALLENGE_REFUSED)?;
        Ok((row, user))
    }

    /// Replaces the caller's recovery codes, given a current TOTP code; returns the new
    /// ones, shown this once.
    pub async fn regenerate_recovery_codes(
        &self,
        viewer: &Viewer,
        code: &str,
        client: &ClientInfo,
    ) -> AppResult<Vec<String>> {
        viewer.require_session("replace recovery codes")?;
        bounded("code", code, bounds::CODE)?;
        let user = viewer.user.id;
        if viewer.user.mfa_enabled_at.is_none() {
            return Err(not_on());
        }
        let factor = self
            .check_code(user, code, Accept::Totp, client)
            .await
            .map_err(as_field_error)?;
        let codes = self.mfa_keys.recovery_codes().map_err(AppError::internal)?;
        let at = self.clock_now();
        let mut db = self.db.get().await?;
        transaction!(&mut db, |conn| {
            self.record_factor(conn, &viewer.user, factor, "recovery codes", client)
                .await?;
            store_codes(conn, user, &codes, at).await?;
            let event = Event::on(
                Some(user),
                action::MFA_RECOVERY_CODES_REGENERATED,
                ("user", user),
                client,
            );
            audit::record(conn, event).await
        })?;
        Ok(codes.into_iter().map(|(code, _)| code).collect())
    }

    /// Step-up: the caller gives the password again (and, with a second factor on, a code),
    /// so the sensitive changes of the next `USERGRAPH_REAUTHENTICATION_WINDOW` are allowed.
    pub async fn reauthenticate(
        &self,
        viewer: &Viewer,
        password: &str,
        code: Option<&str>,
        client: &ClientInfo,
    ) -> AppResult<()> {
        let session = viewer.require_session("reauthenticate")?;
        let user = viewer.user.id;
        let code = code_for_reauthentication(&viewer.user, code)?;
        self.confirm_password(viewer, "password", password, client)
            .await?;
        let factor = match code {
            Some(code) => Some(
                self.check_code(user, code, Accept::TotpOrRecovery, client)
                    .await
                    .map_err(as_field_error)?,
            ),
            None => None,
        };
        let at = self.clock_now();
        let mut db = self.db.get().await?;
        transaction!(&mut db, |conn| {
            if let Some(factor) = factor {
                self.record_factor(conn, &viewer.user, factor, "reauthentication", client)
                    .await?;
            }
            sessions::record_authentication(conn, session, at, factor.is_some()).await?;
            let event = Event::on(
                Some(user),
                action::REAUTHENTICATED,
                ("session", session),
                client,
            )
            .with_details(json!({ "secondFactor": factor.map(Factor::as_str) }));
            audit::record(conn, event).await
        })?;
        if let Some(factor) = factor {
            self.mailed_if_spent(factor);
        }
        Ok(())
    }

    /// Wakes the mail sender when `factor` was a recovery code (its use is mailed).
    fn mailed_if_spent(&self, factor: Factor) {
        if factor == Factor::RecoveryCode {
            self.mail_queued();
        }
    }

    /// Turns the caller's second factor off (a recent reauthentication with a code first).
    pub async fn disable_totp(&self, viewer: &Viewer, client: &ClientInfo) -> AppResult<()> {
        if viewer.user.mfa_enabled_at.is_none() {
            return Err(not_on());
        }
        self.require_recent(viewer, "turn two-step verification off")
            .await?;
        let user = &viewer.user;
        self.remove_factors(user, Some(user.id), action::MFA_DISABLED, client)
            .await?;
        tracing::info!(user.id = %user.id, "two-step verification turned off");
        Ok(())
    }

    /// An administrator removes an account's second factor (a lost device): it logs in with
    /// its password alone until it enrols again. Audited, and the account is mailed.
    pub async fn reset_mfa(
        &self,
        by: Authorized<'_, UsersWrite>,
        id: UserId,
        client: &ClientInfo,
    ) -> AppResult<User> {
        let user = {
            let mut db = self.db.get().await?;
            users::find_user(&mut db.conn(), id)
                .await?
                .filter(|user| user.deleted_at.is_none())
                .ok_or(AppError::NotFound("user"))?
        };
        if user.mfa_enabled_at.is_none() {
            return Err(not_on());
        }
        self.remove_factors(&user, Some(by.actor()), action::MFA_RESET, client)
            .await?;
        tracing::info!(user.id = %id, "two-step verification reset by an administrator");
        let mut db = self.db.get().await?;
        users::find_user(&mut db.conn(), id)
            .await?
            .ok_or(AppError::NotFound("user"))
    }

    /// Removes `user`'s second factor, recording `action` by `actor` and mailing the owner.
    async fn remove_factors(
        &self,
        user: &User,
        actor: Option<UserId>,
        action: &'static str,
        client: &ClientInfo,
    ) -> AppResult<()> {
        let at = self.clock_now();
        let letter = Letter::new("Two-step verification was turned off").paragraph(
            if action == action::MFA_RESET {
                "An administrator turned two-step verification off for your account (a lost \
                 device, say). Your password alone now signs you in: turn it on again soon."
            } else {
                "Two-step verification was turned off for your account. If it was not you, \
                 reset your password at once and tell an administrator."
            },
        );
        let mut db = self.db.get().await?;
        transaction!(&mut db, |conn| {
            mfa::remove_factors(conn, user.id).await?;
            mfa::set_enabled(conn, user.id, None, at).await?;
            record_account_change(conn, Some(user.id)).await?;
            let event = Event::on(actor, action, ("user", user.id), client);
            audit::record(conn, event).await?;
            enqueue(conn, &user.email, &letter).await
        })?;
        self.mail_queued();
        self.callers.evict(Some(user.id));
        Ok(())
    }

    /// How many unused recovery codes `user` has.
    pub async fn recovery_codes_left(&self, user: UserId) -> AppResult<i64> {
        let mut db = self.db.get().await?;
        Ok(mfa::recovery_codes_left(&mut db.conn(), user).await?)
    }
}

/// The code a reauthentication of `user` must check: required with a second factor on,
/// ignored without one.
fn code_for_reauthentication<'a>(user: &User, code: Option<&'a str>) -> AppResult<Option<&'a str>> {
    match (user.mfa_enabled_at, code) {
        (Some(_), None) => Err(AppError::bad_field(
            "code",
            "is required: two-step verification is on for this account",
        )),
        (Some(_), Some(code)) => Ok(Some(bounded("code", code, bounds::CODE)?)),
        (None, _) => Ok(None),
    }
}

/// Stores `codes` (code, hash) as `user`'s recovery codes, voiding the old ones.
async fn store_codes(
    conn: &mut Conn<'_>,
    user: UserId,
    codes: &[(String, Vec<u8>)],
    at: chrono::NaiveDateTime,
) -> AppResult<()> {
    let rows: Vec<NewRecoveryCode> = codes
        .iter()
        .map(|(_, hash)| NewRecoveryCode {
            id: RecoveryCodeId::new(),
            user_id: user,
            code_hash: hash.clone(),
            created_at: at,
        })
        .collect();
    Ok(mfa::replace_recovery_codes(conn, user, &rows).await?)
}

/// The mail that tells an account its second factor is on.
fn enrolled_letter() -> Letter {
    Letter::new("Two-step verification is on").paragraph(
        "Two-step verification was turned on for your account: signing in now asks for a code \
         from your authenticator app (or one of your recovery codes) after the password, and \
         every other device was signed out. If it was not you, reset your password at once \
         and tell an administrator.",
    )
}

fn already_on() -> AppError {
    AppError::Conflict {
        field: "totp",
        message: "two-step verification is already on; turn it off first to enrol a new device"
            .into(),
    }
}

fn not_on() -> AppError {
    AppError::bad_field("totp", "two-step verification is not on for this account")
}
