//! Personal access tokens: created by their owner, scoped to a subset of the owner's
//! permissions, shown once, stored as SHA-256.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::json;

use super::shared::Viewer;
use super::shared::audit::{self, Event, action};
use super::shared::{ClientInfo, Services};
use crate::auth::Principal;
use crate::auth::token::{HashedToken, PERSONAL_PREFIX, PlainToken};
use crate::db::clock::now;
use crate::db::personal_tokens::{self, NewPersonalToken, PersonalToken};
use crate::db::transaction;
use crate::domain::{Permission, TokenName, bounded, bounded_time, bounds};
use crate::error::{AppError, AppResult, FieldError};
use crate::ids::PersonalTokenId;

/// How often `lastUsedAt` is written at most, per token: a write per request would cost more
/// than the information is worth.
const TOUCH_EVERY_SECS: i64 = 60;

/// What `createPersonalAccessToken` is given.
#[derive(Debug)]
pub struct NewTokenRequest<'a> {
    /// A label, 1 to 100 characters.
    pub name: &'a str,
    /// Permission names.
    pub scopes: &'a [String],
    /// When the token stops working.
    pub expires_at: Option<DateTime<Utc>>,
}

impl Services {
    /// Creates a personal access token for the caller; returns it (shown once) and its row.
    pub async fn create_personal_token(
        &self,
        viewer: &Viewer,
        request: NewTokenRequest<'_>,
        client: &ClientInfo,
    ) -> AppResult<(String, PersonalToken)> {
        self.require_recent(viewer, "create personal access tokens")
            .await?;
        let at = now();
        let (name, scopes, expires_at) = parse_token_request(&request, at)?;
        if let Some(missing) = scopes.iter().find(|s| !viewer.permissions.contains(*s)) {
            return Err(AppError::Forbidden(format!(
                "a token cannot have `{missing}`: you do not hold that permission"
            )));
        }
        let scopes_json = serde_json::to_string(&scopes).map_err(AppError::internal)?;
        let token = PlainToken::generate(PERSONAL_PREFIX);
        let user = viewer.user.id;
        let mut db = self.db.get().await?;
        let row = transaction!(&mut db, |conn| {
            let row = personal_tokens::insert(
                conn,
                &NewPersonalToken {
                    id: PersonalTokenId::new(),
                    user_id: user,
                    name: name.as_str(),
                    scopes: &scopes_json,
                    token_hash: token.hashed().as_bytes(),
                    created_at: at,
                    expires_at,
                },
            )
            .await?;
            let event = Event::on(Some(user), action::PAT_CREATED, ("pat", row.id), client)
                .with_details(json!({ "name": name.as_str(), "scopes": scopes }));
            audit::record(conn, event).await?;
            Ok::<_, AppError>(row)
        })?;
        Ok((token.expose(), row))
    }

    /// The caller's tokens that are not revoked.
    pub async fn my_personal_tokens(&self, viewer: &Viewer) -> AppResult<Vec<PersonalToken>> {
        let mut db = self.db.get().await?;
        Ok(personal_tokens::list_of(&mut db.conn(), viewer.user.id).await?)
    }

    /// Revokes one of the caller's tokens; `NOT_FOUND` for anyone else's.
    pub async fn revoke_personal_token(
        &self,
        viewer: &Viewer,
        id: PersonalTokenId,
        client: &ClientInfo,
    ) -> AppResult<()> {
        let user = viewer.user.id;
        let mut db = self.db.get().await?;
        transaction!(&mut db, |conn| {
            if !personal_tokens::revoke(conn, id, user, now()).await? {
                return Err(AppError::NotFound("personal access token"));
            }
            let event = Event::on(Some(user), action::PAT_REVOKED, ("pat", id), client);
            audit::record(conn, event).await?;
            Ok::<_, AppError>(())
        })
    }

    /// The principal of a bearer token: a personal access token (`ugp_`) or a session's
    /// access token (checked against the revocation set), or why it is refused.
    pub async fn authenticate(&self, token: &str) -> AppResult<Principal> {
        if token.starts_with(PERSONAL_PREFIX) {
            return self.authenticate_personal_token(token).await;
        }
        Ok(match self.jwt.verify(token) {
            Ok((_, session_id)) if self.revoked.contains(session_id) => {
                Principal::Invalid("the session has ended")
            }
            Ok((user_id, session_id)) => Principal::User {
                user_id,
                session_id,
            },
            Err(why) => Principal::Invalid(why),
        })
    }

    /// The principal of a `ugp_` bearer token, or why it is refused.
    async fn authenticate_personal_token(&self, token: &str) -> AppResult<Principal> {
        let hash = HashedToken::of(token);
        let at = now();
        let mut db = self.db.get().await?;
        let mut conn = db.conn();
        let Some(row) = personal_tokens::find_by_hash(&mut conn, hash.as_bytes()).await? else {
            return Ok(Principal::Invalid("unknown personal access token"));
        };
        if row.revoked_at.is_some() {
            return Ok(Principal::Invalid("personal access token revoked"));
        }
        if row.expires_at.is_some_and(|t| t <= at) {
            return Ok(Principal::Invalid("personal access token expired"));
        }
        if row
            .last_used_at
            .is_none_or(|t| (at - t).num_seconds() >= TOUCH_EVERY_SECS)
        {
            personal_tokens::touch(&mut conn, row.id, at).await?;
        }
        Ok(Principal::PersonalToken {
            user_id: row.user_id,
            token_id: row.id,
            scopes: row.scope_names(),
        })
    }
}

/// Checks a token request: its name, its scopes (sorted, without repeats) and its expiry;
/// `BAD_USER_INPUT` lists each invalid field.
fn parse_token_request(
    request: &NewTokenRequest<'_>,
    at: NaiveDateTime,
) -> AppResult<(TokenName, Vec<String>, Option<NaiveDateTime>)> {
    let mut errors = Vec::new();
    let name = match TokenName::parse("name", request.name) {
        Ok(name) => Some(name),
        Err(error) => {
            errors.push(error);
            None
        }
    };
    AppError::check(
        request
            .scopes
            .iter()
            .map(|scope| bounded("scopes", scope, bounds::PERMISSION).err()),
    )?;
    errors.extend(Permission::unknown("scopes", request.scopes));
    let expires_at = match request.expires_at.map(|t| bounded_time("expiresAt", t)) {
        Some(Err(error)) => {
            errors.push(error);
            None
        }
        other => other.transpose().ok().flatten(),
    };
    if expires_at.is_some_and(|t| t <= at) {
        errors.push(FieldError::new("expiresAt", "must be in the future"));
    }
    let Some(name) = name.filter(|_| errors.is_empty()) else {
        return Err(AppError::BadUserInput(errors));
    };
    let mut scopes = request.scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    Ok((name, scopes, expires_at))
}
