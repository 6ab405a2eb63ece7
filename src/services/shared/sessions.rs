//! Opening and ending sessions: login, sign-up and refresh open them and hand out tokens;
//! logout, password changes and administrators end them.

use chrono::NaiveDateTime;
use serde_json::json;

use super::audit::{self, Event, action};
use super::factors::Factor;
use super::record_account_change;
use super::{AuthGrant, ClientInfo, IssuedRefresh, Services, delta};
use crate::auth::jwt::Assurance;
use crate::auth::token::{PlainToken, REFRESH_PREFIX};
use crate::db::clock::now;
use crate::db::users::User;
use crate::db::{Conn, mfa, sessions, transaction, users};
use crate::error::{AppError, AppResult};
use crate::ids::{MfaChallengeId, RefreshTokenId, SessionId, UserId};

impl Services {
    /// Opens a session for `user`, who gave the password now (and a second factor when
    /// `second_factor`), and returns its first refresh token.
    pub(crate) async fn start_session(
        &self,
        conn: &mut Conn<'_>,
        user: UserId,
        second_factor: bool,
        client: &ClientInfo,
    ) -> AppResult<IssuedRefresh> {
        let at = now();
        let assurance = Assurance {
            auth_time: self.clock_now(),
            second_factor,
        };
        let session = SessionId::new();
        let expires_at = at + delta(self.config.session_ttl)?;
        sessions::insert_session(
            conn,
            &sessions::NewSession {
                id: session,
                user_id: user,
                created_at: at,
                expires_at,
                user_agent: client.user_agent.as_deref(),
                ip: client.ip.as_deref(),
                authenticated_at: assurance.auth_time,
                mfa_at: second_factor.then_some(assurance.auth_time),
            },
        )
        .await?;
        let token = PlainToken::generate(REFRESH_PREFIX);
        let id = RefreshTokenId::new();
        sessions::insert_refresh_token(
            conn,
            &sessions::NewRefreshToken {
                id,
                session_id: session,
                token_hash: token.hashed().as_bytes(),
                created_at: at,
                expires_at: (at + delta(self.config.refresh_token_ttl)?).min(expires_at),
            },
        )
        .await?;
        Ok(IssuedRefresh {
            session,
            id,
            created_at: at,
            token,
            assurance,
        })
    }

    /// Signs the access token of `refresh` and hands out both tokens.
    pub(crate) fn grant(&self, user: User, refresh: IssuedRefresh) -> AppResult<AuthGrant> {
        let access = self
            .jwt
            .issue(
                user.id,
                refresh.session,
                refresh.id.0,
                refresh.created_at,
                &refresh.assurance,
            )
            .map_err(AppError::internal)?;
        Ok(AuthGrant {
            access_token: access.token,
            refresh_token: refresh.token.expose(),
            expires_in: access.expires_in,
            user,
        })
    }
}

/// Ends every live session of `user` but `keep`, recording `action` with how many ended.
/// Runs inside the caller's transaction; the caller adds the returned ids to the revocation
/// set once it has committed.
pub(crate) async fn end_sessions(
    conn: &mut Conn<'_>,
    user: UserId,
    keep: Option<SessionId>,
    at: NaiveDateTime,
    action: &'static str,
    client: &ClientInfo,
) -> AppResult<Vec<SessionId>> {
    let revoked = sessions::revoke_sessions_of(conn, user, keep, at).await?;
    let event = Event::on(Some(user), action, ("user", user), client)
        .with_details(json!({ "sessionsRevoked": revoked.len() }));
    audit::record(conn, event).await?;
    Ok(revoked)
}

/// The second step of a login: the challenge a code completed, and the code's factor.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SecondStep {
    pub challenge: MfaChallengeId,
    pub factor: Factor,
}

/// The answer to a challenge that is unknown, expired or completed already, or a wrong code.
pub(crate) const CHALLENGE_REFUSED: AppError =
    AppError::Unauthenticated("the challenge has expired or the code is not valid: log in again");

impl Services {
    /// Opens the session of a checked login, in one transaction with its audit rows, the
    /// completion of its challenge when a second factor was given (`second`), and, when the
    /// stored hash was weaker than the current parameters, its replacement `rehash`.
    pub(crate) async fn open_login(
        &self,
        user: &User,
        rehash: Option<String>,
        second: Option<SecondStep>,
        at: NaiveDateTime,
        client: &ClientInfo,
    ) -> AppResult<IssuedRefresh> {
        let mut db = self.db.get().await?;
        transaction!(&mut db, |conn| {
            if let Some(step) = second {
                if !mfa::complete_challenge(conn, step.challenge, at).await? {
                    return Err(CHALLENGE_REFUSED);
                }
                self.record_factor(conn, user, step.factor, "login", client)
                    .await?;
            }
            users::record_login(conn, user.id, at).await?;
            if let Some(hash) = &rehash {
                users::set_password_hash(conn, user.id, hash, at).await?;
                record_account_change(conn, Some(user.id)).await?;
            }
            let refresh = self
                .start_session(conn, user.id, second.is_some(), client)
                .await?;
            let event = Event::on(Some(user.id), action::LOGIN, ("user", user.id), client)
                .with_details(json!({
                    "session": refresh.session.to_string(),
                    "passwordHashUpgraded": rehash.is_some(),
                    "secondFactor": second.map(|step| step.factor.as_str()),
                }));
            audit::record(conn, event).await?;
            Ok::<_, AppError>(refresh)
        })
    }
}

/// Counts a login (a `login`, or the `verifyMfa` that completes one) by its outcome.
pub(crate) fn count_login<T>(result: &AppResult<T>) {
    let outcome = match result {
        Ok(_) => "success",
        Err(AppError::Unauthenticated(_)) => "refused",
        Err(AppError::AccountLocked { .. }) => "locked",
        Err(AppError::RateLimited { .. }) => "rate_limited",
        Err(AppError::EmailNotVerified) => "unverified",
        Err(AppError::MfaRequired { .. }) => "mfa_required",
        Err(AppError::BadUserInput(_)) => "bad_input",
        Err(_) => "error",
    };
    metrics::counter!(crate::instruments::LOGINS, "outcome" => outcome).increment(1);
}
