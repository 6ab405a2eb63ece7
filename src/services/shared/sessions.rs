//! Opening and ending sessions: login, sign-up and refresh open them and hand out tokens;
//! logout, password changes and administrators end them.

use chrono::NaiveDateTime;
use serde_json::json;

use super::audit::{self, Event};
use super::{AuthGrant, ClientInfo, IssuedRefresh, Services, delta};
use crate::auth::token::{PlainToken, REFRESH_PREFIX};
use crate::db::clock::now;
use crate::db::users::User;
use crate::db::{Conn, sessions};
use crate::error::{AppError, AppResult};
use crate::ids::{RefreshTokenId, SessionId, UserId};

impl Services {
    /// Opens a session for `user` and returns its first refresh token.
    pub(crate) async fn start_session(
        &self,
        conn: &mut Conn<'_>,
        user: UserId,
        client: &ClientInfo,
    ) -> AppResult<IssuedRefresh> {
        let at = now();
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
        })
    }

    /// Signs the access token of `refresh` and hands out both tokens.
    pub(crate) fn grant(&self, user: User, refresh: IssuedRefresh) -> AppResult<AuthGrant> {
        let access = self
            .jwt
            .issue(user.id, refresh.session, refresh.id.0, refresh.created_at)
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
