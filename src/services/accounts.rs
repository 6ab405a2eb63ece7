//! Sign-up, login with lockout, password changes, and the account behind a request.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{NaiveDateTime, TimeDelta};
use serde_json::json;

use super::admin::erase_account;
use super::audit::{self, Event, action};
use super::lockout::{Check, LOGIN_REFUSED};
use super::sessions::end_sessions;
use super::{ClientInfo, Services, record_account_change};
use crate::auth::Principal;
use crate::auth::callers::Caller;
use crate::auth::token::{PlainToken, REFRESH_PREFIX};
use crate::db::types::{PersonalTokenId, RefreshTokenId, SessionId, UserId, now};
use crate::db::users::{NewUser, Profile, User};
use crate::db::{Conn, roles, sessions, unique_violation, users};
use crate::domain::{DisplayName, Email, Password, Permission, bounded, bounds};
use crate::error::{AppError, AppResult, FieldError};
use crate::transaction;

/// Name of the role every new account gets.
pub const DEFAULT_ROLE: &str = "user";
/// Name of the role with every permission.
pub const ADMIN_ROLE: &str = "admin";

/// What `register` is given.
#[derive(Debug)]
pub struct Registration<'a> {
    /// Email as typed.
    pub email: &'a str,
    /// Password as typed.
    pub password: &'a str,
    /// Optional display name.
    pub display_name: Option<&'a str>,
}

/// The tokens a login or refresh hands out, with the account.
#[derive(Debug)]
pub struct AuthGrant {
    /// Signed access token.
    pub access_token: String,
    /// Opaque refresh token, shown once.
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The account.
    pub user: User,
}

/// A refresh token with what its access token is derived from.
#[derive(Debug)]
pub(super) struct IssuedRefresh {
    pub session: SessionId,
    pub id: RefreshTokenId,
    pub created_at: NaiveDateTime,
    pub token: PlainToken,
}

/// How a request authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// An access token of this session.
    Session(SessionId),
    /// This personal access token.
    PersonalToken(PersonalTokenId),
}

/// The account a request acts as, with its permissions, loaded once per request.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The account.
    pub user: User,
    /// The credential the request carried.
    pub credential: Credential,
    /// The permissions in force: those of the account's roles, narrowed to a personal
    /// token's scopes.
    pub permissions: BTreeSet<String>,
}

impl Viewer {
    /// Whether the request holds `permission`.
    pub fn can(&self, permission: Permission) -> bool {
        self.permissions.contains(permission.as_str())
    }

    /// The session of the access token, if the request used one.
    pub fn session(&self) -> Option<SessionId> {
        match self.credential {
            Credential::Session(id) => Some(id),
            Credential::PersonalToken(_) => None,
        }
    }

    /// `FORBIDDEN` unless the request used a session's access token: some actions (creating
    /// tokens, changing the password) are not for personal tokens.
    pub fn require_session(&self, what: &str) -> AppResult<SessionId> {
        self.session()
            .ok_or_else(|| AppError::Forbidden(format!("a personal access token cannot {what}")))
    }
}

/// How `admin create` went.
#[derive(Debug, PartialEq, Eq)]
pub enum AdminOutcome {
    /// A new account was created with `admin`.
    Created(UserId),
    /// An existing account was given `admin`; its password is unchanged.
    Promoted(UserId),
}

const EMAIL_TAKEN: &str = "an account with this email already exists";

impl Services {
    /// Creates an account with the `user` role and logs it in.
    pub async fn register(
        &self,
        input: Registration<'_>,
        client: &ClientInfo,
    ) -> AppResult<AuthGrant> {
        let (email, password, display_name) =
            self.parse_new_account(input.email, input.password, input.display_name)?;
        let hash = self.passwords.hash(&password).await?;
        let mut db = self.db.get().await?;
        let (user, refresh) = transaction!(&mut db, |conn| {
            let user = create_account(conn, &email, &hash, display_name.clone()).await?;
            grant_role(conn, user.id, DEFAULT_ROLE).await?;
            let refresh = self.start_session(conn, user.id, client).await?;
            let event = Event {
                actor: None,
                action: action::REGISTER,
                target: Some(("user", user.id.to_string())),
                details: Some(json!({ "session": refresh.session.to_string() })),
                client,
            };
            audit::record(conn, event).await?;
            Ok::<_, AppError>((user, refresh))
        })?;
        tracing::info!(user.id = %user.id, "account registered");
        self.grant(user, refresh)
    }

    /// Checks what a new account is given; `BAD_USER_INPUT` lists every invalid field.
    pub(super) fn parse_new_account(
        &self,
        email: &str,
        password: &str,
        display_name: Option<&str>,
    ) -> AppResult<(Email, Password, Option<DisplayName>)> {
        let email = Email::parse("email", email);
        let password = Password::parse(
            "password",
            password,
            self.password_policy(),
            email.as_ref().ok(),
        );
        let display_name = display_name
            .map(|name| DisplayName::parse("displayName", name))
            .transpose();
        match (email, password, display_name) {
            (Ok(email), Ok(password), Ok(name)) => Ok((email, password, name)),
            (email, password, name) => {
                let errors: Vec<FieldError> = [email.err(), password.err(), name.err()]
                    .into_iter()
                    .flatten()
                    .collect();
                Err(AppError::BadUserInput(errors))
            }
        }
    }

    /// Checks an email and password and opens a session.
    ///
    /// Every attempt is an attempt on the normalised email, whether or not an account has
    /// it, under the rules of [`lockout`](super::lockout). An unknown email, a wrong password
    /// and an account that may not sign in get the same answer, in the same time.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        client: &ClientInfo,
    ) -> AppResult<AuthGrant> {
        // Before the lockout counter: its key must be bounded, clean text.
        AppError::check([
            bounded("email", email, bounds::EMAIL).err(),
            bounded("password", password, bounds::PASSWORD).err(),
        ])?;
        let parsed = Email::parse("email", email).ok();
        let key = parsed
            .as_ref()
            .map_or_else(|| email.trim().to_lowercase(), |e| e.as_str().to_owned());
        let user = match &parsed {
            Some(email) => {
                let mut db = self.db.get().await?;
                users::find_user_by_email(&mut db.conn(), email.as_str()).await?
            }
            None => None,
        };
        let check = Check {
            key,
            user: user.as_ref().map(|u| u.id),
            hash: user.as_ref().map(|u| u.password_hash.clone()),
            allowed: user.as_ref().is_some_and(User::can_sign_in),
            password: password.to_owned(),
            client: client.clone(),
        };
        self.check_password(check).await?;
        let Some(user) = user else {
            return Err(LOGIN_REFUSED);
        };
        let rehash = if self.passwords.needs_rehash(&user.password_hash) {
            Some(self.passwords.hash(&Password::verified(password)).await?)
        } else {
            None
        };
        let at = now();
        let mut db = self.db.get().await?;
        let refresh = transaction!(&mut db, |conn| {
            users::record_login(conn, user.id, at).await?;
            if let Some(hash) = &rehash {
                users::set_password_hash(conn, user.id, hash, at).await?;
                record_account_change(conn, Some(user.id)).await?;
            }
            let refresh = self.start_session(conn, user.id, client).await?;
            let event = Event {
                actor: Some(user.id),
                action: action::LOGIN,
                target: Some(("user", user.id.to_string())),
                details: Some(json!({
                    "session": refresh.session.to_string(),
                    "passwordHashUpgraded": rehash.is_some(),
                })),
                client,
            };
            audit::record(conn, event).await?;
            Ok::<_, AppError>(refresh)
        })?;
        // Its last login time changed (other instances show it within `MAX_AGE`).
        self.callers.evict(Some(user.id));
        tracing::info!(user.id = %user.id, "logged in");
        self.grant(
            User {
                last_login_at: Some(at),
                ..user
            },
            refresh,
        )
    }

    /// Checks the caller's password before a sensitive change. Counted like a login: a
    /// stolen access token cannot be used to guess the password either.
    async fn confirm_password(
        &self,
        viewer: &Viewer,
        field: &str,
        password: &str,
        client: &ClientInfo,
    ) -> AppResult<()> {
        bounded(field, password, bounds::PASSWORD)?;
        let check = Check {
            key: viewer.user.email.clone(),
            user: Some(viewer.user.id),
            hash: Some(viewer.user.password_hash.clone()),
            allowed: true,
            password: password.to_owned(),
            client: client.clone(),
        };
        match self.check_password(check).await {
            Err(AppError::Unauthenticated(_)) => {
                Err(AppError::bad_field(field, "is not your current password"))
            }
            other => other,
        }
    }

    /// Erases the caller's account for good, after checking its password: every session
    /// ends, the email is free again, the audit rows stay. Not with a personal access
    /// token, and not for the last active administrator.
    pub async fn delete_my_account(
        &self,
        viewer: &Viewer,
        password: &str,
        client: &ClientInfo,
    ) -> AppResult<()> {
        viewer.require_session("delete the account")?;
        self.confirm_password(viewer, "password", password, client)
            .await?;
        let user = viewer.user.id;
        let at = now();
        let mut db = self.db.get().await?;
        let ended = transaction!(&mut db, |conn| {
            let ended = erase_account(conn, user, at).await?;
            record_account_change(conn, Some(user)).await?;
            let event = Event {
                actor: Some(user),
                action: action::ACCOUNT_DELETED,
                target: Some(("user", user.to_string())),
                details: Some(json!({ "sessionsEnded": ended.len() })),
                client,
            };
            audit::record(conn, event).await?;
            Ok::<_, AppError>(ended)
        })?;
        self.revoked.insert(ended);
        self.callers.evict(Some(user));
        tracing::info!(user.id = %user, "account deleted by its owner");
        Ok(())
    }

    /// Changes the caller's password and revokes every other session.
    pub async fn change_password(
        &self,
        viewer: &Viewer,
        current: &str,
        new: &str,
        client: &ClientInfo,
    ) -> AppResult<()> {
        let session = viewer.require_session("change the password")?;
        let email = Email::parse("email", &viewer.user.email).ok();
        let password = Password::parse("newPassword", new, self.password_policy(), email.as_ref())
            .map_err(|e| AppError::BadUserInput(vec![e]))?;
        self.confirm_password(viewer, "currentPassword", current, client)
            .await?;
        if current == new {
            return Err(AppError::bad_field(
                "newPassword",
                "must differ from the current password",
            ));
        }
        let hash = self.passwords.hash(&password).await?;
        let at = now();
        let user = viewer.user.id;
        let mut db = self.db.get().await?;
        let revoked = transaction!(&mut db, |conn| {
            users::set_password_hash(conn, user, &hash, at).await?;
            record_account_change(conn, Some(user)).await?;
            let keep = Some(session);
            end_sessions(conn, user, keep, at, action::PASSWORD_CHANGED, client).await
        })?;
        self.revoked.insert(revoked);
        self.callers.evict(Some(user));
        tracing::info!(user.id = %user, "password changed");
        Ok(())
    }

    /// Opens a session for `user` and returns its first refresh token.
    async fn start_session(
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

    pub(super) fn grant(&self, user: User, refresh: IssuedRefresh) -> AppResult<AuthGrant> {
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

    /// The account and permissions behind `principal`; `UNAUTHENTICATED` when there is none
    /// or it may no longer sign in.
    pub async fn viewer(&self, principal: &Principal) -> AppResult<Viewer> {
        let (user_id, credential, scopes) = match principal {
            Principal::Anonymous => {
                return Err(AppError::Unauthenticated("authentication required"));
            }
            Principal::Invalid(why) => return Err(AppError::Unauthenticated(why)),
            Principal::User {
                user_id,
                session_id,
            } => (*user_id, Credential::Session(*session_id), None),
            Principal::PersonalToken {
                user_id,
                token_id,
                scopes,
            } => (*user_id, Credential::PersonalToken(*token_id), Some(scopes)),
        };
        let caller = match self.callers.get(user_id) {
            Some(caller) => caller,
            None => self.load_caller(user_id).await?,
        };
        let permissions = match scopes {
            None => caller.permissions.as_ref().clone(),
            Some(scopes) => caller
                .permissions
                .iter()
                .filter(|p| scopes.contains(p))
                .cloned()
                .collect(),
        };
        Ok(Viewer {
            user: caller.user,
            credential,
            permissions,
        })
    }

    /// Reads the account `id` and its roles' permissions, and caches them.
    async fn load_caller(&self, id: UserId) -> AppResult<Caller> {
        let generation = self.callers.generation();
        let mut db = self.db.get().await?;
        let mut conn = db.conn();
        let user = users::find_user(&mut conn, id)
            .await?
            .filter(User::can_sign_in)
            .ok_or(AppError::Unauthenticated("the account is no longer active"))?;
        let permissions = roles::roles_of_users(&mut conn, &[id])
            .await?
            .into_iter()
            .flat_map(|(_, role)| role.permission_names())
            .collect();
        let caller = Caller {
            user,
            permissions: Arc::new(permissions),
        };
        self.callers.put(caller.clone(), generation);
        Ok(caller)
    }

    /// Creates an administrator, or gives `admin` to the existing account with this email.
    pub async fn create_admin(&self, email: &str, password: &str) -> AppResult<AdminOutcome> {
        let email = Email::parse("email", email).map_err(|e| AppError::BadUserInput(vec![e]))?;
        let mut db = self.db.get().await?;
        if let Some(user) = users::find_user_by_email(&mut db.conn(), email.as_str()).await? {
            transaction!(&mut db, |conn| {
                grant_role(conn, user.id, ADMIN_ROLE).await?;
                record_account_change(conn, Some(user.id)).await
            })?;
            self.callers.evict(Some(user.id));
            return Ok(AdminOutcome::Promoted(user.id));
        }
        let password = Password::parse("password", password, self.password_policy(), Some(&email))
            .map_err(|e| AppError::BadUserInput(vec![e]))?;
        let hash = self.passwords.hash(&password).await?;
        let user = transaction!(&mut db, |conn| {
            let user = create_account(conn, &email, &hash, None).await?;
            grant_role(conn, user.id, DEFAULT_ROLE).await?;
            grant_role(conn, user.id, ADMIN_ROLE).await?;
            Ok::<_, AppError>(user)
        })?;
        Ok(AdminOutcome::Created(user.id))
    }
}

pub(super) async fn create_account(
    conn: &mut Conn<'_>,
    email: &Email,
    hash: &str,
    display_name: Option<DisplayName>,
) -> AppResult<User> {
    let at = now();
    let new = NewUser {
        id: UserId::new(),
        email: email.as_str(),
        password_hash: hash,
        created_at: at,
        updated_at: at,
    };
    let user = users::insert_user(conn, &new)
        .await
        .map_err(|e| match unique_violation(&e) {
            Some("users_email_key" | "users.email") => AppError::Conflict {
                field: "email",
                message: EMAIL_TAKEN.into(),
            },
            _ => e.into(),
        })?;
    let profile = Profile {
        user_id: user.id,
        display_name: display_name.map(DisplayName::into_inner),
        year_of_birth: None,
        description: None,
        avatar_url: None,
        updated_at: at,
    };
    users::insert_profile(conn, &profile).await?;
    Ok(user)
}

async fn grant_role(conn: &mut Conn<'_>, user: UserId, role: &str) -> AppResult<()> {
    let role = roles::find_role_by_name(conn, role)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("built-in role `{role}` is missing")))?;
    roles::assign_role(conn, user, role.id, now()).await?;
    Ok(())
}

/// A configured duration as a chrono delta.
pub(super) fn delta(duration: std::time::Duration) -> AppResult<TimeDelta> {
    TimeDelta::from_std(duration).map_err(AppError::internal)
}
