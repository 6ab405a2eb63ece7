//! Sign-up, login and the account behind a request.

use std::collections::BTreeSet;

use chrono::TimeDelta;

use super::{ClientInfo, Services};
use crate::auth::Principal;
use crate::auth::token::{PlainToken, REFRESH_PREFIX};
use crate::db::types::{RefreshTokenId, SessionId, UserId, now};
use crate::db::users::{NewUser, Profile, User};
use crate::db::{Conn, roles, sessions, unique_violation, users};
use crate::domain::{DisplayName, Email, Password};
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

/// The tokens a login hands out, with the account.
#[derive(Debug)]
pub struct AuthGrant {
    /// Signed access token.
    pub access_token: String,
    /// Opaque refresh token, shown once.
    pub refresh_token: String,
    /// Access token lifetime in seconds.
    pub expires_in: i64,
    /// The account.
    pub user: User,
}

/// The account a request acts as, with its permissions, loaded once per request.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The account.
    pub user: User,
    /// The session the access token belongs to.
    pub session_id: SessionId,
    /// Every permission its roles grant.
    pub permissions: BTreeSet<String>,
}

impl Viewer {
    /// Whether the account holds `permission`.
    pub fn can(&self, permission: crate::domain::Permission) -> bool {
        self.permissions.contains(permission.as_str())
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
        let (email, password, display_name) = self.parse_registration(&input)?;
        let hash = self.passwords.hash(&password).await?;
        let mut db = self.db.get().await?;
        let (user, refresh) = transaction!(&mut db, |conn| {
            let user = create_account(conn, &email, &hash, display_name.clone()).await?;
            grant_role(conn, user.id, DEFAULT_ROLE).await?;
            let refresh = self.start_session(conn, user.id, client).await?;
            Ok::<_, AppError>((user, refresh))
        })?;
        tracing::info!(user.id = %user.id, "account registered");
        self.grant(user, refresh)
    }

    fn parse_registration(
        &self,
        input: &Registration<'_>,
    ) -> AppResult<(Email, Password, Option<DisplayName>)> {
        let email = Email::parse("email", input.email);
        let password = Password::parse("password", input.password, self.password_policy());
        let display_name = input
            .display_name
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

    /// Checks an email and password and opens a session. An unknown email, a wrong password
    /// and an account that may not sign in get the same answer, in the same time.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        client: &ClientInfo,
    ) -> AppResult<AuthGrant> {
        const REFUSED: AppError = AppError::Unauthenticated("invalid email or password");
        let email = Email::parse("email", email).ok();
        let mut db = self.db.get().await?;
        let user = match &email {
            Some(email) => users::find_user_by_email(&mut db.conn(), email.as_str()).await?,
            None => None,
        };
        let hash = user.as_ref().map(|u| u.password_hash.as_str());
        let matches = self.passwords.verify(password, hash).await?;
        let user = match user {
            Some(user) if matches && user.can_sign_in() => user,
            _ => return Err(REFUSED),
        };
        let at = now();
        let refresh = transaction!(&mut db, |conn| {
            users::record_login(conn, user.id, at).await?;
            self.start_session(conn, user.id, client).await
        })?;
        tracing::info!(user.id = %user.id, "logged in");
        self.grant(
            User {
                last_login_at: Some(at),
                ..user
            },
            refresh,
        )
    }

    /// Opens a session for `user` and returns its first refresh token.
    async fn start_session(
        &self,
        conn: &mut Conn<'_>,
        user: UserId,
        client: &ClientInfo,
    ) -> AppResult<(SessionId, PlainToken)> {
        let at = now();
        let session = SessionId::new();
        sessions::insert_session(
            conn,
            &sessions::NewSession {
                id: session,
                user_id: user,
                created_at: at,
                expires_at: at + delta(self.config.session_ttl)?,
                user_agent: client.user_agent.as_deref(),
                ip: client.ip.as_deref(),
            },
        )
        .await?;
        let token = PlainToken::generate(REFRESH_PREFIX);
        sessions::insert_refresh_token(
            conn,
            &sessions::NewRefreshToken {
                id: RefreshTokenId::new(),
                session_id: session,
                token_hash: token.hashed().as_bytes(),
                created_at: at,
                expires_at: at + delta(self.config.refresh_token_ttl)?,
            },
        )
        .await?;
        Ok((session, token))
    }

    fn grant(
        &self,
        user: User,
        (session, refresh): (SessionId, PlainToken),
    ) -> AppResult<AuthGrant> {
        let access = self
            .jwt
            .issue(user.id, session)
            .map_err(AppError::internal)?;
        Ok(AuthGrant {
            access_token: access.token,
            refresh_token: refresh.expose(),
            expires_in: access.expires_in,
            user,
        })
    }

    /// The account and permissions behind `principal`; `UNAUTHENTICATED` when there is none
    /// or it may no longer sign in.
    pub async fn viewer(&self, principal: &Principal) -> AppResult<Viewer> {
        let (user_id, session_id) = match principal {
            Principal::Anonymous => {
                return Err(AppError::Unauthenticated("authentication required"));
            }
            Principal::Invalid(why) => return Err(AppError::Unauthenticated(why)),
            Principal::User {
                user_id,
                session_id,
            } => (*user_id, *session_id),
        };
        let mut db = self.db.get().await?;
        let mut conn = db.conn();
        let user = users::find_user(&mut conn, user_id)
            .await?
            .filter(User::can_sign_in)
            .ok_or(AppError::Unauthenticated("the account is no longer active"))?;
        let permissions = roles::roles_of_users(&mut conn, &[user_id])
            .await?
            .into_iter()
            .flat_map(|(_, role)| role.permission_names())
            .collect();
        Ok(Viewer {
            user,
            session_id,
            permissions,
        })
    }

    /// Creates an administrator, or gives `admin` to the existing account with this email.
    pub async fn create_admin(&self, email: &str, password: &str) -> AppResult<AdminOutcome> {
        let email = Email::parse("email", email).map_err(|e| AppError::BadUserInput(vec![e]))?;
        let mut db = self.db.get().await?;
        if let Some(user) = users::find_user_by_email(&mut db.conn(), email.as_str()).await? {
            grant_role(&mut db.conn(), user.id, ADMIN_ROLE).await?;
            return Ok(AdminOutcome::Promoted(user.id));
        }
        let password = Password::parse("password", password, self.password_policy())
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

async fn create_account(
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

fn delta(duration: std::time::Duration) -> AppResult<TimeDelta> {
    TimeDelta::from_std(duration).map_err(AppError::internal)
}
