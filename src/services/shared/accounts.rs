//! Creating and erasing accounts: the steps sign-up, `admin create`, `createUser`,
//! `deleteMyAccount` and `purgeUser` share.

use super::{ADMIN_ROLE, Services};
use crate::db::clock::now;
use crate::db::users::{NewUser, Profile, User};
use crate::db::{Conn, Unique, roles, unique_violation, users};
use crate::domain::{DisplayName, Email, Password};
use crate::error::{AppError, AppResult, FieldError};
use crate::ids::{SessionId, UserId};

const LAST_ADMIN: &str = "this is the last active administrator: make another one first";

impl Services {
    /// Checks what a new account is given; `BAD_USER_INPUT` lists every invalid field.
    pub(crate) fn parse_new_account(
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
}

/// Inserts an account and its empty profile; `CONFLICT` on `email` when the address is taken.
pub(crate) async fn create_account(
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
        .map_err(email_conflict)?;
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

/// Gives `user` the built-in role `role`.
pub(crate) async fn grant_role(conn: &mut Conn<'_>, user: UserId, role: &str) -> AppResult<()> {
    let role = roles::find_role_by_name(conn, role)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("built-in role `{role}` is missing")))?;
    roles::assign_role(conn, user, role.id, now()).await?;
    Ok(())
}

/// `FORBIDDEN` when `user` is the last active administrator.
pub(crate) async fn guard_last_admin(conn: &mut Conn<'_>, user: UserId) -> AppResult<()> {
    let admin = roles::lock_role(conn, ADMIN_ROLE)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("built-in role `admin` is missing")))?;
    let holders = roles::roles_of_users(conn, &[user]).await?;
    let is_active_admin = holders.iter().any(|(_, r)| r.id == admin.id)
        && users::find_user(conn, user)
            .await?
            .is_some_and(|u| u.can_sign_in());
    if is_active_admin && roles::count_active_holders_except(conn, admin.id, user).await? == 0 {
        return Err(AppError::Forbidden(LAST_ADMIN.into()));
    }
    Ok(())
}

/// What erasing an account leaves to do once it is committed.
#[derive(Debug)]
pub(crate) struct Erased {
    /// The sessions it ended, for the revocation set.
    pub sessions: Vec<SessionId>,
    /// Its avatar's URL, whose files go too.
    pub avatar: Option<String>,
}

/// Erases an account and everything that belongs to it (not its audit rows). The last
/// active administrator stays.
pub(crate) async fn erase_account(
    conn: &mut Conn<'_>,
    user: UserId,
    at: chrono::NaiveDateTime,
) -> AppResult<Erased> {
    guard_last_admin(conn, user).await?;
    let avatar = users::profiles_of(conn, &[user])
        .await?
        .into_iter()
        .find_map(|p| p.avatar_url);
    let sessions = crate::db::sessions::revoke_sessions_of(conn, user, None, at).await?;
    if !users::purge_user(conn, user).await? {
        return Err(AppError::NotFound("user"));
    }
    Ok(Erased { sessions, avatar })
}

/// `CONFLICT` on `email` for a unique violation of the address, the error itself otherwise.
pub(crate) fn email_conflict(error: diesel::result::Error) -> AppError {
    match unique_violation(&error) {
        Some(Unique::UserEmail) => AppError::Conflict {
            field: "email",
            message: "an account with this email already exists".into(),
        },
        _ => error.into(),
    }
}
