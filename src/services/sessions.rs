//! Sessions: refresh-token rotation with reuse detection, logout, and revocation.

use serde_json::json;

use super::accounts::{AuthGrant, IssuedRefresh, Viewer, delta};
use super::audit::{self, Event, action};
use super::{ClientInfo, Services};
use crate::auth::token::{HashedToken, PlainToken, REFRESH_PREFIX};
use crate::db::sessions::{self, Session};
use chrono::NaiveDateTime;

use crate::db::Conn;
use crate::db::types::{RefreshTokenId, SessionId, UserId, now};
use crate::db::users;
use crate::domain::{bounded, bounds};
use crate::error::{AppError, AppResult};
use crate::transaction;

const INVALID_REFRESH: AppError = AppError::Unauthenticated("invalid or expired refresh token");

/// What presenting a refresh token led to.
enum Rotation {
    /// Unknown, expired, or its session is over.
    Invalid,
    /// The token was current: it now has a successor.
    Rotated(IssuedRefresh, Session),
    /// The token was retired within the grace window: the same successor again.
    Replayed(IssuedRefresh, Session),
    /// The token was retired before the grace window: the session was revoked.
    ReuseDetected(Session),
}

impl Services {
    /// Exchanges a refresh token for a new pair and retires it.
    ///
    /// Presented again within `USERGRAPH_REFRESH_REUSE_GRACE`, the retired token yields the
    /// very same pair (its successor is derived from it with a server secret, and the access
    /// token is signed deterministically), so tabs refreshing together never log a user out.
    /// Presented later, it is taken for a stolen copy: the whole session ends.
    pub async fn refresh(&self, token: &str, client: &ClientInfo) -> AppResult<AuthGrant> {
        bounded("refreshToken", token, bounds::TOKEN)?;
        if !token.starts_with(REFRESH_PREFIX) {
            return Err(INVALID_REFRESH);
        }
        let hash = HashedToken::of(token);
        let successor = PlainToken::from_derived(self.jwt.successor_token(token));
        let successor_hash = successor.hashed();
        let grace = delta(self.config.refresh_reuse_grace)?;
        let idle = delta(self.config.refresh_token_ttl)?;
        let at = now();
        let mut db = self.db.get().await?;
        let rotation = transaction!(&mut db, |conn| {
            let Some((mut current, session)) =
                sessions::find_refresh_token(conn, hash.as_bytes()).await?
            else {
                return Ok(Rotation::Invalid);
            };
            if !session.is_live(at) {
                return Ok(Rotation::Invalid);
            }
            if current.used_at.is_none() {
                if current.expires_at <= at {
                    return Ok(Rotation::Invalid);
                }
                let next = RefreshTokenId::new();
                if sessions::retire_refresh_token(conn, current.id, next, at).await? {
                    sessions::insert_refresh_token(
                        conn,
                        &sessions::NewRefreshToken {
                            id: next,
                            session_id: session.id,
                            token_hash: successor_hash.as_bytes(),
                            created_at: at,
                            expires_at: (at + idle).min(session.expires_at),
                        },
                    )
                    .await?;
                    sessions::touch_session(conn, session.id, at).await?;
                    let issued = IssuedRefresh {
                        session: session.id,
                        id: next,
                        created_at: at,
                        token: successor,
                    };
                    return Ok(Rotation::Rotated(issued, session));
                }
                // A concurrent request retired it first (PostgreSQL waited for its commit).
                current = sessions::find_refresh_token_by_id(conn, current.id)
                    .await?
                    .ok_or_else(|| AppError::internal(anyhow::anyhow!("refresh token vanished")))?;
            }
            let used_at = current.used_at.unwrap_or(at);
            if at - used_at <= grace {
                let next = match current.replaced_by {
                    Some(id) => sessions::find_refresh_token_by_id(conn, id).await?,
                    None => None,
                };
                return Ok(match next {
                    Some(next) => Rotation::Replayed(
                        IssuedRefresh {
                            session: session.id,
                            id: next.id,
                            created_at: next.created_at,
                            token: successor,
                        },
                        session,
                    ),
                    None => Rotation::Invalid,
                });
            }
            sessions::revoke_session(conn, session.id, at).await?;
            let event = Event {
                actor: None,
                action: action::REFRESH_REUSE_DETECTED,
                target: Some(("session", session.id.to_string())),
                details: Some(
                    json!({ "user": session.user_id.to_string(), "retiredAt": used_at.and_utc().to_rfc3339() }),
                ),
                client,
            };
            audit::record(conn, event).await?;
            Ok::<_, AppError>(Rotation::ReuseDetected(session))
        })?;
        let (issued, session) = match rotation {
            Rotation::Invalid => return Err(INVALID_REFRESH),
            Rotation::ReuseDetected(session) => {
                self.revoked.insert([session.id]);
                tracing::warn!(session.id = %session.id, user.id = %session.user_id, "refresh token reuse: session revoked");
                return Err(INVALID_REFRESH);
            }
            Rotation::Rotated(issued, session) | Rotation::Replayed(issued, session) => {
                (issued, session)
            }
        };
        let user = users::find_user(&mut db.conn(), session.user_id)
            .await?
            .filter(users::User::can_sign_in)
            .ok_or(INVALID_REFRESH)?;
        self.grant(user, issued)
    }

    /// Ends the session of a refresh token; false when it names no live session.
    pub async fn logout(&self, token: &str, client: &ClientInfo) -> AppResult<bool> {
        bounded("refreshToken", token, bounds::TOKEN)?;
        let hash = HashedToken::of(token);
        let at = now();
        let mut db = self.db.get().await?;
        let ended = transaction!(&mut db, |conn| {
            let Some((_, session)) = sessions::find_refresh_token(conn, hash.as_bytes()).await?
            else {
                return Ok(None);
            };
            if !sessions::revoke_session(conn, session.id, at).await? {
                return Ok(None);
            }
            let event = Event {
                actor: Some(session.user_id),
                action: action::LOGOUT,
                target: Some(("session", session.id.to_string())),
                details: None,
                client,
            };
            audit::record(conn, event).await?;
            Ok::<_, AppError>(Some(session.id))
        })?;
        self.revoked.insert(ended);
        Ok(ended.is_some())
    }

    /// Ends every session of the caller, the current one included.
    pub async fn logout_all(&self, viewer: &Viewer, client: &ClientInfo) -> AppResult<()> {
        let user = viewer.user.id;
        let at = now();
        let mut db = self.db.get().await?;
        let revoked = transaction!(&mut db, |conn| {
            end_sessions(conn, user, None, at, action::LOGOUT_ALL, client).await
        })?;
        self.revoked.insert(revoked);
        Ok(())
    }

    /// Ends one of the caller's sessions; `NOT_FOUND` for anyone else's.
    pub async fn revoke_session(
        &self,
        viewer: &Viewer,
        id: SessionId,
        client: &ClientInfo,
    ) -> AppResult<()> {
        let user = viewer.user.id;
        let at = now();
        let mut db = self.db.get().await?;
        transaction!(&mut db, |conn| {
            let owned = sessions::find_session(conn, id)
                .await?
                .filter(|s| s.user_id == user && s.is_live(at));
            if owned.is_none() || !sessions::revoke_session(conn, id, at).await? {
                return Err(AppError::NotFound("session"));
            }
            let event = Event {
                actor: Some(user),
                action: action::SESSION_REVOKED,
                target: Some(("session", id.to_string())),
                details: None,
                client,
            };
            audit::record(conn, event).await?;
            Ok::<_, AppError>(())
        })?;
        self.revoked.insert([id]);
        Ok(())
    }

    /// The caller's live sessions, newest first.
    pub async fn my_sessions(&self, viewer: &Viewer) -> AppResult<Vec<Session>> {
        let mut db = self.db.get().await?;
        Ok(sessions::live_sessions_of(&mut db.conn(), viewer.user.id, now()).await?)
    }
}

/// Ends every live session of `user` but `keep`, recording `action` with how many ended.
/// Runs inside the caller's transaction; the caller adds the returned ids to the revocation
/// set once it has committed.
pub(super) async fn end_sessions(
    conn: &mut Conn<'_>,
    user: UserId,
    keep: Option<SessionId>,
    at: NaiveDateTime,
    action: &'static str,
    client: &ClientInfo,
) -> AppResult<Vec<SessionId>> {
    let revoked = sessions::revoke_sessions_of(conn, user, keep, at).await?;
    let event = Event {
        actor: Some(user),
        action,
        target: Some(("user", user.to_string())),
        details: Some(json!({ "sessionsRevoked": revoked.len() })),
        client,
    };
    audit::record(conn, event).await?;
    Ok(revoked)
}
