//! `exportMyData`: everything the server keeps about the caller, as one JSON document
//! (GDPR article 20), and nothing about anyone else.

use serde_json::{Value, json};

use super::shared::audit::{self, Event, action};
use super::shared::{ClientInfo, Services, Viewer};
use crate::db::{audit as audit_rows, personal_tokens, roles, sessions, transaction, users};
use crate::error::{AppError, AppResult};

/// Most audit events in one export (the newest).
const MAX_EVENTS: i64 = 10_000;

fn time(at: chrono::NaiveDateTime) -> String {
    at.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Services {
    /// The caller's account, profile, roles and permissions, sessions, personal access
    /// tokens (their metadata: never a secret or a hash) and the audit events they took part
    /// in; the export itself is audited. Not with a personal access token: the export holds
    /// more than any scope grants.
    pub async fn export_my_data(&self, viewer: &Viewer, client: &ClientInfo) -> AppResult<Value> {
        viewer.require_session("export the account's data")?;
        let id = viewer.user.id;
        let mut db = self.db.get().await?;
        let mut conn = db.conn();
        let (user, profile) = users::find_user_with_profile(&mut conn, id)
            .await?
            .ok_or(AppError::NotFound("account"))?;
        let roles = roles::roles_of_users(&mut conn, &[id]).await?;
        let sessions = sessions::live_sessions_of(&mut conn, id, crate::db::clock::now()).await?;
        let tokens = personal_tokens::list_of(&mut conn, id).await?;
        let events = audit_rows::involving(&mut conn, id, MAX_EVENTS).await?;
        let two_step = two_step_json(&mut conn, &user).await?;
        let document = json!({
            "format": "usergraph-export",
            "version": 1,
            "exportedAt": time(crate::db::clock::now()),
            "account": {
                "id": user.id.to_string(),
                "email": user.email,
                "emailVerified": user.email_verified,
                "isActive": user.is_active,
                "createdAt": time(user.created_at),
                "updatedAt": time(user.updated_at),
                "lastLoginAt": user.last_login_at.map(time),
            },
            "twoStepVerification": two_step,
            "profile": profile.map(|p| json!({
                "displayName": p.display_name,
                "yearOfBirth": p.year_of_birth,
                "description": p.description,
                "avatarUrl": p.avatar_url,
            })),
            "roles": roles.iter().map(|(_, role)| json!({
                "name": role.name,
                "description": role.description,
                "permissions": role.permissions,
            })).collect::<Vec<_>>(),
            "permissions": viewer.permissions,
            "sessions": sessions_json(&sessions),
            "personalAccessTokens": tokens_json(&tokens),
            "auditEvents": events_json(&events),
        });
        transaction!(&mut db, |conn| {
            let event = Event::on(Some(id), action::DATA_EXPORTED, ("user", id), client);
            audit::record(conn, event).await
        })?;
        Ok(document)
    }
}

/// Whether a second factor is on, and how many recovery codes are left; never its secret
/// or the codes.
async fn two_step_json(
    conn: &mut crate::db::Conn<'_>,
    user: &crate::db::users::User,
) -> AppResult<Value> {
    let left = match user.mfa_enabled_at {
        Some(_) => Some(crate::db::mfa::recovery_codes_left(conn, user.id).await?),
        None => None,
    };
    Ok(json!({
        "enabledAt": user.mfa_enabled_at.map(time),
        "recoveryCodesLeft": left,
    }))
}

fn sessions_json(sessions: &[crate::db::sessions::Session]) -> Vec<Value> {
    sessions
        .iter()
        .map(|s| {
            json!({
                "id": s.id.to_string(),
                "createdAt": time(s.created_at),
                "lastUsedAt": s.last_used_at.map(time),
                "expiresAt": time(s.expires_at),
                "ip": s.ip,
                "userAgent": s.user_agent,
            })
        })
        .collect()
}

fn tokens_json(tokens: &[crate::db::personal_tokens::PersonalToken]) -> Vec<Value> {
    tokens
        .iter()
        .map(|t| {
            json!({
                "id": t.id.to_string(),
                "name": t.name,
                "scopes": t.scopes,
                "createdAt": time(t.created_at),
                "expiresAt": t.expires_at.map(time),
                "lastUsedAt": t.last_used_at.map(time),
                "revokedAt": t.revoked_at.map(time),
            })
        })
        .collect()
}

fn events_json(events: &[crate::db::audit::AuditEvent]) -> Vec<Value> {
    events
        .iter()
        .map(|e| {
            json!({
                "id": e.id.to_string(),
                "at": time(e.at),
                "action": e.action,
                "actorId": e.actor_id.map(|a| a.to_string()),
                "targetType": e.target_type,
                "targetId": e.target_id,
                "ip": e.ip,
                "userAgent": e.user_agent,
                "details": e.details.as_deref().and_then(|d| serde_json::from_str::<Value>(d).ok()),
            })
        })
        .collect()
}
