//! Writing the audit trail, always inside the transaction of the change it records.

use serde_json::Value;

use super::ClientInfo;
use crate::db::clock::now;
use crate::db::{Conn, audit};
use crate::error::AppResult;
use crate::ids::{AuditEventId, UserId};

/// The actions recorded, as they appear in `AuditEvent.action`.
pub mod action {
    /// An account was created by sign-up.
    pub const REGISTER: &str = "user.register";
    /// A login succeeded.
    pub const LOGIN: &str = "user.login";
    /// A login failed (wrong password, unknown email, inactive account).
    pub const LOGIN_FAILED: &str = "user.login_failed";
    /// An email was locked after too many failed logins.
    pub const ACCOUNT_LOCKED: &str = "user.account_locked";
    /// A session ended with `logout`.
    pub const LOGOUT: &str = "user.logout";
    /// Every session ended with `logoutAll`.
    pub const LOGOUT_ALL: &str = "user.logout_all";
    /// One session was revoked with `revokeSession`.
    pub const SESSION_REVOKED: &str = "session.revoke";
    /// A retired refresh token came back after the grace window: the session was ended.
    pub const REFRESH_REUSE_DETECTED: &str = "session.refresh_reuse_detected";
    /// The password was changed.
    pub const PASSWORD_CHANGED: &str = "user.password_change";
    /// A password reset was asked for (recorded only for existing accounts).
    pub const PASSWORD_RESET_REQUESTED: &str = "user.password_reset_request";
    /// The password was reset with an emailed token.
    pub const PASSWORD_RESET: &str = "user.password_reset";
    /// A profile was changed (by its owner or an administrator).
    pub const PROFILE_UPDATED: &str = "user.profile_update";
    /// An account was erased by its owner.
    pub const ACCOUNT_DELETED: &str = "user.self_delete";
    /// An administrator created an account.
    pub const USER_CREATED: &str = "user.create";
    /// An administrator changed an account.
    pub const USER_UPDATED: &str = "user.update";
    /// An administrator soft-deleted an account.
    pub const USER_DELETED: &str = "user.delete";
    /// An administrator restored an account.
    pub const USER_RESTORED: &str = "user.restore";
    /// An administrator erased an account.
    pub const USER_PURGED: &str = "user.purge";
    /// Every session of an account was ended by an administrative change.
    pub const SESSIONS_ENDED: &str = "user.sessions_end";
    /// A role was given to an account.
    pub const ROLE_ASSIGNED: &str = "role.assign";
    /// A role was taken from an account.
    pub const ROLE_REVOKED: &str = "role.revoke";
    /// A role was created.
    pub const ROLE_CREATED: &str = "role.create";
    /// A role was deleted.
    pub const ROLE_DELETED: &str = "role.delete";
    /// A personal access token was created.
    pub const PAT_CREATED: &str = "pat.create";
    /// A personal access token was revoked.
    pub const PAT_REVOKED: &str = "pat.revoke";
    /// A verification mail was asked for (or sent after a refused login).
    pub const EMAIL_VERIFICATION_REQUESTED: &str = "user.email_verification_request";
    /// The account's address was verified.
    pub const EMAIL_VERIFIED: &str = "user.email_verify";
    /// A change of address was asked for (nothing changes until it is confirmed).
    pub const EMAIL_CHANGE_REQUESTED: &str = "user.email_change_request";
    /// The account's address changed (the new one confirmed).
    pub const EMAIL_CHANGED: &str = "user.email_change";
    /// The old address cancelled a change ("it was not me"): every session ended.
    pub const EMAIL_CHANGE_CANCELLED: &str = "user.email_change_cancel";
    /// An avatar was uploaded.
    pub const AVATAR_UPLOADED: &str = "user.avatar_upload";
    /// The avatar was removed.
    pub const AVATAR_REMOVED: &str = "user.avatar_remove";
    /// The account's owner exported their data.
    pub const DATA_EXPORTED: &str = "user.data_export";
    /// A login's password was right; it waits for a second factor.
    pub const MFA_CHALLENGED: &str = "user.mfa_challenge";
    /// A second factor's code was wrong (or replayed).
    pub const MFA_FAILED: &str = "user.mfa_failed";
    /// A TOTP code was accepted (a login, a reauthentication, new recovery codes).
    pub const MFA_VERIFIED: &str = "user.mfa_verify";
    /// A recovery code was spent.
    pub const MFA_RECOVERY_CODE_USED: &str = "user.mfa_recovery_code_use";
    /// TOTP enrolment began (a secret was shown).
    pub const MFA_ENROLLMENT_STARTED: &str = "user.mfa_enrollment_start";
    /// TOTP was turned on (enrolment confirmed with a first code).
    pub const MFA_ENROLLED: &str = "user.mfa_enroll";
    /// New recovery codes replaced the old ones.
    pub const MFA_RECOVERY_CODES_REGENERATED: &str = "user.mfa_recovery_codes_regenerate";
    /// The owner turned their second factor off.
    pub const MFA_DISABLED: &str = "user.mfa_disable";
    /// An administrator removed an account's second factor (a lost device).
    pub const MFA_RESET: &str = "user.mfa_reset";
    /// A session's holder gave the password (and a code) again, for sensitive changes.
    pub const REAUTHENTICATED: &str = "user.reauthenticate";
    /// An administrator invited an address: an account without a password yet.
    pub const USER_INVITED: &str = "user.invite";
    /// An invited owner chose the first password (the address is proven, a session opens).
    pub const INVITATION_ACCEPTED: &str = "user.invitation_accept";
}

/// One event to append.
#[derive(Debug)]
pub struct Event<'a> {
    /// Who acted; `None` for anonymous actions.
    pub actor: Option<UserId>,
    /// One of [`action`].
    pub action: &'static str,
    /// What was acted on: a kind (`user`, `session`, `pat`, `email`) and an id.
    pub target: Option<(&'static str, String)>,
    /// Facts about the change. Never a password, a token or a hash.
    pub details: Option<Value>,
    /// Where the request came from.
    pub client: &'a ClientInfo,
}

impl<'a> Event<'a> {
    /// `actor` did `action` to `target`: a kind (`user`, `session`, `pat`, `role`) and an id.
    pub fn on(
        actor: Option<UserId>,
        action: &'static str,
        (kind, id): (&'static str, impl ToString),
        client: &'a ClientInfo,
    ) -> Self {
        Self {
            actor,
            action,
            target: Some((kind, id.to_string())),
            details: None,
            client,
        }
    }

    /// The same event with `details`.
    pub fn with_details(self, details: Value) -> Self {
        Self {
            details: Some(details),
            ..self
        }
    }
}

/// Appends `event`.
pub async fn record(conn: &mut Conn<'_>, event: Event<'_>) -> AppResult<()> {
    record_all(conn, std::slice::from_ref(&event)).await
}

/// Appends `events` in one statement.
pub async fn record_all(conn: &mut Conn<'_>, events: &[Event<'_>]) -> AppResult<()> {
    let at = now();
    let details: Vec<Option<String>> = events
        .iter()
        .map(|e| e.details.as_ref().map(Value::to_string))
        .collect();
    let rows: Vec<audit::NewAuditEvent<'_>> = events
        .iter()
        .zip(&details)
        .map(|(event, details)| {
            let (target_type, target_id) = match &event.target {
                Some((kind, id)) => (Some(*kind), Some(id.as_str())),
                None => (None, None),
            };
            audit::NewAuditEvent {
                id: AuditEventId::new(),
                at,
                actor_id: event.actor,
                action: event.action,
                target_type,
                target_id,
                ip: event.client.ip.as_deref(),
                user_agent: event.client.user_agent.as_deref(),
                details: details.as_deref(),
            }
        })
        .collect();
    audit::insert_many(conn, &rows).await?;
    Ok(())
}
