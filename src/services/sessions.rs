//! Sessions: refresh-token rotation with reuse detection, logout, and revocation.

use serde_json::json;

use super::shared::audit::{self, Event, action};
use super::shared::factors::assurance_of;
use super::shared::sessions::end_sessions;
use super::shared::{AuthGrant, IssuedRefresh, Viewer, delta};
use super::shared::{ClientInfo, Services};
use crate::auth::token::{HashedToken, PlainToken, REFRESH_PREFIX};
use chrono::{NaiveDateTime, TimeDelta};

use crate::db::Conn;
use crate::db::clock::now;
use crate::db::sessions::{self, Session};
use crate::db::transaction;
use crate::db::users;
use crate::domain::{bounded, bounds};
use crate::error::{AppError, AppResult};
use crate::ids::{RefreshTokenId, SessionId};
use crate::ratelimit::Operation;

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
        self.limit(Operation::RefreshToken, client, None).await?;
        if !token.starts_with(REFRESH_PREFIX) {
            return Err(INVALID_REFRESH);
        }
        let presented = Presented {
            hash: HashedToken::of(token),
            successor: PlainToken::from_derived(self.jwt.successor_token(token)),
            grace: delta(self.config.refresh_reuse_grace)?,
            idle: delta(self.config.refresh_token_ttl)?,
            at: now(),
        };
        let mut db = self.db.get().await?;
        let rotation = transaction!(&mut db, |conn| rotate(conn, &presented, client).await)?;
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
            let event = Event::on(
                Some(session.user_id),
                action::LOGOUT,
                ("session", session.id),
                client,
            );
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
            let event = Event::on(Some(user), action::SESSION_REVOKED, ("session", id), client);
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

/// A refresh token as presented, with what its rotation needs.
struct Presented {
    hash: HashedToken,
    /// The successor derived from it: the same for every presentation of one token.
    successor: PlainToken,
    grace: TimeDelta,
    idle: TimeDelta,
    at: NaiveDateTime,
}

/// Rotates the presented token inside the caller's transaction: a current token gets its
/// successor; a retired one is replayed within the grace window, or else ends its session.
async fn rotate(
    conn: &mut Conn<'_>,
    presented: &Presented,
    client: &ClientInfo,
) -> AppResult<Rotation> {
    let at = presented.at;
    let Some((mut current, session)) =
        sessions::find_refresh_token(conn, presented.hash.as_bytes()).await?
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
        if let Some(issued) = retire(conn, presented, current.id, &session).await? {
            return Ok(Rotation::Rotated(issued, session));
        }
        // A concurrent request retired it first (PostgreSQL waited for its commit).
        current = sessions::find_refresh_token_by_id(conn, current.id)
            .await?
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("refresh token vanished")))?;
    }
    let used_at = current.used_at.unwrap_or(at);
    if at - used_at <= presented.grace {
        return replay(conn, presented, current.replaced_by, session).await;
    }
    sessions::revoke_session(conn, session.id, at).await?;
    let details = json!({
        "user": session.user_id.to_string(),
        "retiredAt": used_at.and_utc().to_rfc3339(),
    });
    let event = Event::on(
        None,
        action::REFRESH_REUSE_DETECTED,
        ("session", session.id),
        client,
    )
    .with_details(details);
    audit::record(conn, event).await?;
    Ok(Rotation::ReuseDetected(session))
}

/// Retires the current token `current` and stores its successor; `None` when a concurrent
/// request retired it first.
async fn retire(
    conn: &mut Conn<'_>,
    presented: &Presented,
    current: RefreshTokenId,
    session: &Session,
) -> AppResult<Option<IssuedRefresh>> {
    let at = presented.at;
    let next = RefreshTokenId::new();
    if !sessions::retire_refresh_token(conn, current, next, at).await? {
        return Ok(None);
    }
    let successor_hash = presented.successor.hashed();
    let new = sessions::NewRefreshToken {
        id: next,
        session_id: session.id,
        token_hash: successor_hash.as_bytes(),
        created_at: at,
        expires_at: (at + presented.idle).min(session.expires_at),
    };
    sessions::insert_refresh_token(conn, &new).await?;
    sessions::touch_session(conn, session.id, at).await?;
    Ok(Some(IssuedRefresh {
        session: session.id,
        id: next,
        created_at: at,
        token: presented.successor.clone(),
        assurance: assurance_of(session),
    }))
}

/// The successor already issued for a token retired within the grace window.
async fn replay(
    conn: &mut Conn<'_>,
    presented: &Presented,
    replaced_by: Option<RefreshTokenId>,
    session: Session,
) -> AppResult<Rotation> {
    let next = match replaced_by {
        Some(id) => sessions::find_refresh_token_by_id(conn, id).await?,
        None => None,
    };
    Ok(match next {
        Some(next) => Rotation::Replayed(
            IssuedRefresh {
                session: session.id,
                id: next.id,
                created_at: next.created_at,
                token: presented.successor.clone(),
                assurance: assurance_of(&session),
            },
            session,
        ),
        None => Rotation::Invalid,
    })
}
