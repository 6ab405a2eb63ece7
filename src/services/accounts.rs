//! Sign-up, login with lockout, password changes, and the account behind a request.

use std::sync::Arc;

use serde_json::json;

use super::shared::accounts::{create_account, erase_account, grant_role};
use super::shared::audit::{self, Event, action};
use super::shared::email_tokens::Proof;
use super::shared::lockout::{Attempt, Check, LOGIN_REFUSED};
use super::shared::sessions::{count_login, end_sessions};
use super::shared::{
    ADMIN_ROLE, AuthGrant, ClientInfo, Credential, DEFAULT_ROLE, Services, TOKEN_REFUSED, Viewer,
    record_account_change,
};
use crate::auth::Principal;
use crate::auth::callers::Caller;
use crate::db::clock::now;
use crate::db::transaction;
use crate::db::users::User;
use crate::db::{mfa, roles, users};
use crate::domain::{Email, Password, bounded, bounds};
use crate::error::{AppError, AppResult};
use crate::ids::UserId;
use crate::ratelimit::Operation;

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

/// How `admin create` went.
#[derive(Debug, PartialEq, Eq)]
pub enum AdminOutcome {
    /// A new account was created with `admin`.
    Created(UserId),
    /// An existing account was given `admin`; its password is unchanged.
    Promoted(UserId),
}

impl Services {
    /// Creates an account with the `user` role and logs it in.
    pub async fn register(
        &self,
        input: Registration<'_>,
        client: &ClientInfo,
    ) -> AppResult<AuthGrant> {
        let (email, password, display_name) =
            self.parse_new_account(input.email, input.password, input.display_name)?;
        self.limit(Operation::Register, client, Some(email.as_str()))
            .await?;
        let hash = self.passwords.hash(&password).await?;
        let mut db = self.db.get().await?;
        let (user, refresh) = transaction!(&mut db, |conn| {
            let user = create_account(conn, &email, &hash, display_name.clone()).await?;
            grant_role(conn, user.id, DEFAULT_ROLE).await?;
            let refresh = self.start_session(conn, user.id, false, client).await?;
            let event = Event::on(None, action::REGISTER, ("user", user.id), client)
                .with_details(json!({ "session": refresh.session.to_string() }));
            audit::record(conn, event).await?;
            self.mail_email_token(conn, &user, Proof::Verify, &[])
                .await?;
            Ok::<_, AppError>((user, refresh))
        })?;
        self.mail_queued();
        tracing::info!(user.id = %user.id, "account registered");
        self.grant(user, refresh)
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
        let result = self.attempt_login(email, password, client).await;
        count_login(&result);
        result
    }

    async fn attempt_login(
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
        let (parsed, key) = Email::keyed(email);
        self.limit(Operation::Login, client, Some(&key)).await?;
        let (check, user) = self.login_check(parsed, key, password, client).await?;
        let stale = (check.hash.as_deref()).is_some_and(|h| self.passwords.needs_rehash(h));
        self.check_password(check).await?;
        let Some(user) = user else {
            return Err(LOGIN_REFUSED);
        };
        if self.config.require_verified_email && !user.email_verified {
            self.resend_verification(&user, client).await;
            return Err(AppError::EmailNotVerified);
        }
        let rehash = if stale {
            Some(self.passwords.hash(&Password::verified(password)).await?)
        } else {
            None
        };
        if user.mfa_enabled_at.is_some() {
            // No session yet: `verifyMfa` opens it with a code, when the password is no
            // longer at hand, so a weak hash is replaced now.
            return Err(self.challenge(&user, rehash, client).await?);
        }
        let at = now();
        let refresh = self.open_login(&user, rehash, None, at, client).await?;
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

    /// After a login refused for an unverified address (its password was right): a new
    /// link, unless the account asked for too many already. Failing to send refuses nothing
    /// more.
    async fn resend_verification(&self, user: &User, client: &ClientInfo) {
        let account = user.id.to_string();
        if self
            .limit(Operation::RequestEmailVerification, client, Some(&account))
            .await
            .is_err()
        {
            return;
        }
        if let Err(error) = self.send_verification(user, client).await {
            tracing::warn!(user.id = %user.id, error = %error, "verification mail not queued");
        }
    }

    /// The lockout check of a login attempt under `key`, with the account its `email` names
    /// (if any). An email that does not parse still gets a check (against a dummy hash),
    /// keyed as typed.
    async fn login_check(
        &self,
        parsed: Option<Email>,
        key: String,
        password: &str,
        client: &ClientInfo,
    ) -> AppResult<(Check, Option<User>)> {
        let (user, hash) = match &parsed {
            Some(email) => {
                let mut db = self.db.get().await?;
                users::find_login(&mut db.conn(), email.as_str()).await?
            }
            None => None,
        }
        .unzip();
        let check = Check {
            attempt: Attempt {
                key,
                user: user.as_ref().map(|u| u.id),
                allowed: user.as_ref().is_some_and(User::can_sign_in),
                client: client.clone(),
                failure: action::LOGIN_FAILED,
            },
            hash,
            password: password.to_owned(),
        };
        Ok((check, user))
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
        self.require_recent(viewer, "delete the account").await?;
        self.confirm_password(viewer, "password", password, client)
            .await?;
        let user = viewer.user.id;
        let at = now();
        let mut db = self.db.get().await?;
        let erased = transaction!(&mut db, |conn| {
            let erased = erase_account(conn, user, at).await?;
            record_account_change(conn, Some(user)).await?;
            let event = Event::on(Some(user), action::ACCOUNT_DELETED, ("user", user), client)
                .with_details(json!({ "sessionsEnded": erased.sessions.len() }));
            audit::record(conn, event).await?;
            Ok::<_, AppError>(erased)
        })?;
        self.committed(user, erased.sessions);
        self.delete_avatar_files(erased.avatar.as_deref()).await;
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
        let session = self.require_recent(viewer, "change the password").await?;
        let email = Email::parse("email", &viewer.user.email).ok();
        let policy = self.password_policy_for(&viewer.user);
        let password = Password::parse("newPassword", new, policy, email.as_ref())
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
            mfa::drop_challenges(conn, user).await?;
            record_account_change(conn, Some(user)).await?;
            let keep = Some(session);
            end_sessions(conn, user, keep, at, action::PASSWORD_CHANGED, client).await
        })?;
        self.committed(user, revoked);
        tracing::info!(user.id = %user, "password changed");
        Ok(())
    }

    /// The account and permissions behind `principal`; `UNAUTHENTICATED` when there is none
    /// or it may no longer sign in.
    pub async fn viewer(&self, principal: &Principal) -> AppResult<Viewer> {
        let (user_id, credential, scopes) = match principal {
            Principal::Anonymous => {
                return Err(AppError::Unauthenticated("authentication required"));
            }
            Principal::Invalid(why) => {
                // Why goes to the log only: the answer must not help anyone forge a token.
                tracing::info!(reason = why, "bearer token refused");
                return Err(TOKEN_REFUSED);
            }
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
            must_enrol: caller.must_enrol,
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
            .ok_or_else(|| {
                tracing::info!(user.id = %id, reason = "the account may not sign in", "bearer token refused");
                TOKEN_REFUSED
            })?;
        let roles = roles::roles_of_users(&mut conn, &[id]).await?;
        let must_enrol = user.mfa_enabled_at.is_none()
            && roles
                .iter()
                .any(|(_, role)| self.config.require_mfa_for_roles.contains(&role.name));
        let permissions = roles
            .into_iter()
            .flat_map(|(_, role)| role.permission_names())
            .collect();
        let caller = Caller {
            user,
            permissions: Arc::new(permissions),
            must_enrol,
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
