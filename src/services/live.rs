//! The streams behind the GraphQL subscriptions: a caller's revoked sessions, the audit trail
//! as it is written, and changes to the caller's own account. Each starts from the bus (so
//! it hears every instance) and checks the caller again as it goes.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, Stream};
use tokio::sync::broadcast::error::RecvError;

use super::Services;
use super::shared::audit::action;
use crate::auth::Principal;
use crate::db::audit::{AuditEvent, AuditQuery};
use crate::db::live_events::Event;
use crate::db::sessions::Session;
use crate::db::users::{self as user_rows, User};
use crate::domain::Permission;
use crate::error::{AppError, AppResult, Outcome};
use crate::ids::UserId;

/// How often a stream with nothing to say checks that its caller may still listen.
const RECHECK: Duration = Duration::from_secs(1);

/// What makes `userUpdated` fire for the account an audit event is about.
const ACCOUNT_CHANGES: &[&str] = &[
    action::PROFILE_UPDATED,
    action::AVATAR_UPLOADED,
    action::AVATAR_REMOVED,
    action::EMAIL_VERIFIED,
    action::EMAIL_CHANGED,
    action::EMAIL_CHANGE_CANCELLED,
    action::USER_UPDATED,
    action::USER_RESTORED,
    action::ROLE_ASSIGNED,
    action::ROLE_REVOKED,
    action::MFA_ENROLLED,
    action::MFA_DISABLED,
    action::MFA_RESET,
];

/// A revoked session of the caller.
pub struct Revocation {
    /// The session.
    pub session: Session,
    /// Whether it is the session of the subscriber's own token (its last message).
    pub current: bool,
}

impl Services {
    /// The caller's sessions as they are revoked, on any instance; ends after the caller's
    /// own session.
    pub async fn session_revocations(
        &self,
        principal: &Principal,
    ) -> AppResult<impl Stream<Item = AppResult<Revocation>> + Send + use<>> {
        let viewer = self.viewer(principal).await?;
        let (user, own) = (viewer.user.id, viewer.session());
        let state = (self.bus.subscribe().await?, VecDeque::<Session>::new());
        Ok(stream::unfold(Some(state), move |state| async move {
            let (mut events, mut pending) = state?;
            loop {
                if let Some(session) = pending.pop_front() {
                    let current = own == Some(session.id);
                    let next = (!current).then_some((events, pending));
                    return Some((Ok(Revocation { session, current }), next));
                }
                match events.recv().await {
                    Ok(event) => {
                        if let Event::Revoked { user: of, sessions } = &*event
                            && *of == user
                        {
                            pending.extend(sessions.iter().cloned());
                        }
                    }
                    // The socket's own checks close it if its session was among those.
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return None,
                }
            }
        }))
    }

    /// Audit events matching `filter` as they are written, on any instance, while the
    /// caller holds `audit:read`: the stream ends with `FORBIDDEN` when it no longer does.
    pub async fn live_audit(
        &self,
        principal: Principal,
        filter: AuditQuery,
    ) -> AppResult<impl Stream<Item = AppResult<AuditEvent>> + Send + use<>> {
        self.may_listen(&principal, Some(Permission::AuditRead))
            .await?;
        let state = (self.clone(), self.bus.subscribe().await?, recheck());
        Ok(stream::unfold(Some(state), move |state| {
            let (principal, filter) = (principal.clone(), filter.clone());
            async move {
                let (services, mut events, mut checks) = state?;
                loop {
                    // A row to send, or (`None`) a moment to check the caller again.
                    let heard = tokio::select! {
                        event = events.recv() => match heard(event)? {
                            Heard::Row(row) if filter.matches(&row) => Some(Ok(row)),
                            Heard::Changed(of) if of.is_none() || of == principal.user_id() => None,
                            Heard::Behind(error) => Some(Err(error)),
                            Heard::Row(_) | Heard::Changed(_) | Heard::Other => continue,
                        },
                        _ = checks.tick() => None,
                    };
                    let allowed = services
                        .may_listen(&principal, Some(Permission::AuditRead))
                        .await;
                    let row = match (heard, allowed) {
                        (Some(Err(error)), _) | (_, Err(error)) => Err(error),
                        (Some(Ok(row)), Ok(())) => Ok(row),
                        (None, Ok(())) => continue,
                    };
                    let next = row.is_ok().then_some((services, events, checks));
                    return Some((row, next));
                }
            }
        }))
    }

    /// The caller's account each time it changes (profile, avatar, address, verification,
    /// status, roles; any role's deletion), read afresh; on any instance.
    pub async fn account_updates(
        &self,
        principal: Principal,
    ) -> AppResult<impl Stream<Item = AppResult<User>> + Send + use<>> {
        let user = self.viewer(&principal).await?.user.id;
        let state = (self.clone(), self.bus.subscribe().await?, recheck());
        Ok(stream::unfold(Some(state), move |state| {
            let principal = principal.clone();
            async move {
                let (services, mut events, mut checks) = state?;
                loop {
                    tokio::select! {
                        event = events.recv() => match heard(event)? {
                            Heard::Row(row) if concerns(&row, user) => {}
                            Heard::Row(_) | Heard::Changed(_) | Heard::Other => continue,
                            Heard::Behind(error) => return Some((Err(error), None)),
                        },
                        _ = checks.tick() => match services.may_listen(&principal, None).await {
                            Ok(()) => continue,
                            Err(error) => return Some((Err(error), None)),
                        },
                    }
                    let item = services.account_row(user).await;
                    let next = item.is_ok().then_some((services, events, checks));
                    return Some((item, next));
                }
            }
        }))
    }

    /// `Ok` while `principal` may sign in (and holds `permission`, if one is named).
    async fn may_listen(
        &self,
        principal: &Principal,
        permission: Option<Permission>,
    ) -> AppResult<()> {
        let viewer = self.viewer(principal).await?;
        match permission {
            Some(permission) if !viewer.can(permission) => {
                Err(AppError::missing_permission(permission.as_str()))
            }
            _ => Ok(()),
        }
    }

    /// The account as stored now (not the caller cache, which another instance's change
    /// may not have reached yet); `TOKEN_REFUSED` when it may no longer sign in.
    async fn account_row(&self, id: UserId) -> AppResult<User> {
        let mut db = self.db.get().await?;
        user_rows::find_user(&mut db.conn(), id)
            .await?
            .filter(User::can_sign_in)
            .ok_or(super::shared::TOKEN_REFUSED)
    }
}

fn recheck() -> tokio::time::Interval {
    let mut checks = tokio::time::interval_at(tokio::time::Instant::now() + RECHECK, RECHECK);
    checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    checks
}

/// What a stream of audit rows makes of a received event.
enum Heard {
    /// An audit event was written.
    Row(AuditEvent),
    /// What authorises an account (every account when `None`) changed.
    Changed(Option<UserId>),
    /// Something else.
    Other,
    /// The subscriber fell behind and missed events.
    Behind(AppError),
}

/// `None` when the bus is gone (the stream ends).
fn heard(received: Result<Arc<Event>, RecvError>) -> Option<Heard> {
    match received {
        Ok(event) => match &*event {
            Event::Audit(row) => Some(Heard::Row(row.clone())),
            Event::AccountChanged { user } => Some(Heard::Changed(*user)),
            Event::AuditRef { .. } | Event::Revoked { .. } => Some(Heard::Other),
        },
        Err(RecvError::Lagged(missed)) => Some(Heard::Behind(AppError::ServiceUnavailable(
            Outcome::NotApplied,
            anyhow::anyhow!("a live subscriber fell {missed} events behind"),
        ))),
        Err(RecvError::Closed) => None,
    }
}

/// Whether `row` reports a change to the account `user` (or to every account: a role's
/// deletion).
fn concerns(row: &AuditEvent, user: UserId) -> bool {
    row.action == action::ROLE_DELETED
        || (ACCOUNT_CHANGES.contains(&row.action.as_str())
            && Event::audited_user(row) == Some(user))
}
