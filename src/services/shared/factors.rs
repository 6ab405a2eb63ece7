//! What several features need of second factors: how strongly a session's holder proved who
//! they are ([`assurance_of`]), the step-up rule of sensitive changes, the challenge a login of
//! an account with a second factor answers, and checking a code as a counted attempt.

use chrono::NaiveDateTime;
use serde_json::json;

use super::audit::{self, Event, action};
use super::lockout::Attempt;
use super::mail::enqueue;
use super::{ClientInfo, Services, TOKEN_REFUSED, Viewer, delta};
use crate::auth::jwt::Assurance;
use crate::auth::token::PlainToken;
use crate::auth::totp;
use crate::db::mfa::{self, MfaChallenge};
use crate::db::sessions::{self, Session};
use crate::db::transaction;
use crate::db::users::{self, User};
use crate::error::{AppError, AppResult};
use crate::ids::{MfaChallengeId, SessionId, UserId};
use crate::mail::Letter;

/// The prefix of login challenges (`extensions.challenge` of `MFA_REQUIRED`).
pub const CHALLENGE_PREFIX: &str = "ugm_";

/// How long a login challenge waits for its code.
pub const CHALLENGE_TTL_SECONDS: i64 = 300;

/// The assurance of `session` as stored: what its access tokens say.
pub(crate) fn assurance_of(session: &Session) -> Assurance {
    Assurance {
        auth_time: session.authenticated_at(),
        second_factor: session.mfa_at.is_some(),
    }
}

/// Which second factors a check accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// A current TOTP code only.
    Totp,
    /// A current TOTP code or an unused recovery code.
    TotpOrRecovery,
}

/// The second factor a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Factor {
    /// A TOTP code of the current step (or one either side).
    Totp,
    /// A recovery code, now spent.
    RecoveryCode,
}

impl Factor {
    /// How the audit trail names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::RecoveryCode => "recovery_code",
        }
    }
}

impl Services {
    /// The time by the services' clock (which tests move).
    pub(crate) fn clock_now(&self) -> NaiveDateTime {
        self.clock.now()
    }

    /// The caller's session, if it gave the password within the reauthentication window and,
    /// when the account has a second factor, a code too; `REAUTHENTICATION_REQUIRED`
    /// otherwise. Not for personal access tokens (`FORBIDDEN`): they cannot reauthenticate.
    pub(crate) async fn require_recent(&self, viewer: &Viewer, what: &str) -> AppResult<SessionId> {
        let id = viewer.require_session(what)?;
        let mut db = self.db.get().await?;
        let session = sessions::find_session(&mut db.conn(), id)
            .await?
            .ok_or(TOKEN_REFUSED)?;
        let at = self.clock.now();
        let window = delta(self.config.reauthentication_window)?;
        let fresh = |time: NaiveDateTime| at - time <= window;
        let code = viewer.user.mfa_enabled_at.is_some();
        if fresh(session.authenticated_at()) && (!code || session.mfa_at.is_some_and(fresh)) {
            Ok(id)
        } else {
            Err(AppError::ReauthenticationRequired { code })
        }
    }

    /// Opens the challenge of a login whose password was right, for an account with a second
    /// factor: the `MFA_REQUIRED` error that carries it. `rehash`, when the stored hash was
    /// weaker than the current parameters, replaces it in the same transaction.
    pub(crate) async fn challenge(
        &self,
        user: &User,
        rehash: Option<String>,
        client: &ClientInfo,
    ) -> AppResult<AppError> {
        let token = PlainToken::generate(CHALLENGE_PREFIX);
        let at = self.clock.now();
        let challenge = MfaChallenge {
            id: MfaChallengeId::new(),
            user_id: user.id,
            token_hash: token.hashed().as_bytes().to_vec(),
            created_at: at,
            expires_at: at + chrono::TimeDelta::seconds(CHALLENGE_TTL_SECONDS),
            used_at: None,
        };
        let mut db = self.db.get().await?;
        transaction!(&mut db, |conn| {
            if let Some(hash) = &rehash {
                users::set_password_hash(conn, user.id, hash, at).await?;
            }
            mfa::insert_challenge(conn, &challenge).await?;
            let event = Event::on(
                Some(user.id),
                action::MFA_CHALLENGED,
                ("user", user.id),
                client,
            )
            .with_details(json!({ "passwordHashUpgraded": rehash.is_some() }));
            audit::record(conn, event).await
        })?;
        Ok(AppError::MfaRequired {
            challenge: token.expose(),
            expires_in: CHALLENGE_TTL_SECONDS,
        })
    }

    /// Checks `typed` as a second factor of `user`, counted like a password (per account):
    /// the factor it was, or `LOGIN_REFUSED`, `ACCOUNT_LOCKED`, `RATE_LIMITED`. A TOTP code is
    /// accepted once (a later code of the same or an earlier step is a replay); a recovery
    /// code is spent.
    pub(crate) async fn check_code(
        &self,
        user: UserId,
        typed: &str,
        accept: Accept,
        client: &ClientInfo,
    ) -> AppResult<Factor> {
        let services = self.clone();
        let typed = typed.to_owned();
        let verdict = async move { services.code_verdict(user, &typed, accept).await };
        self.counted(code_attempt(user, client), verdict).await
    }

    async fn code_verdict(
        &self,
        user: UserId,
        typed: &str,
        accept: Accept,
    ) -> AppResult<Option<Factor>> {
        let at = self.clock.now();
        let mut db = self.db.get().await?;
        let Some(row) = mfa::find_secret(&mut db.conn(), user).await? else {
            return Ok(None);
        };
        if row.confirmed_at.is_none() {
            return Ok(None);
        }
        let secret = self
            .mfa_keys
            .open(&row.secret, user)
            .map_err(AppError::internal)?;
        let step = totp::matching_step(&secret, typed, at.and_utc().timestamp())
            .map_err(AppError::internal)?;
        if let Some(step) = step {
            let fresh = mfa::use_step(&mut db.conn(), user, step).await?;
            return Ok(fresh.then_some(Factor::Totp));
        }
        if accept == Accept::TotpOrRecovery && !totp::looks_like_code(typed) {
            let hash = self.mfa_keys.recovery_hash(typed);
            if mfa::use_recovery_code(&mut db.conn(), user, &hash, at).await? {
                return Ok(Some(Factor::RecoveryCode));
            }
        }
        Ok(None)
    }

    /// Records in the audit trail, in `conn`'s transaction, that `user` gave `factor`
    /// (`context` says for what). A spent recovery code is mailed to the owner with how many
    /// are left: if it was not them, they learn of it.
    pub(crate) async fn record_factor(
        &self,
        conn: &mut crate::db::Conn<'_>,
        user: &User,
        factor: Factor,
        context: &str,
        client: &ClientInfo,
    ) -> AppResult<()> {
        let mut details = json!({ "factor": factor.as_str(), "for": context });
        let action = match factor {
            Factor::Totp => action::MFA_VERIFIED,
            Factor::RecoveryCode => {
                let left = mfa::recovery_codes_left(conn, user.id).await?;
                details["recoveryCodesLeft"] = json!(left);
                let letter = Letter::new("A recovery code was used").paragraph(format!(
                    "A recovery code of your account was just used in place of your \
                     authenticator app ({context}); {left} are left. If it was not you, reset \
                     your password at once and tell an administrator. Running low? Make new \
                     ones with regenerateRecoveryCodes."
                ));
                enqueue(conn, &user.email, &letter).await?;
                action::MFA_RECOVERY_CODE_USED
            }
        };
        let event =
            Event::on(Some(user.id), action, ("user", user.id), client).with_details(details);
        audit::record(conn, event).await
    }
}

/// A code's attempt: counted against the account, whatever the challenge or session.
pub(crate) fn code_attempt(user: UserId, client: &ClientInfo) -> Attempt {
    Attempt {
        key: format!("mfa:{user}"),
        user: Some(user),
        allowed: true,
        client: client.clone(),
        failure: action::MFA_FAILED,
    }
}
