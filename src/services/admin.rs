//! Administration of accounts and roles. Permissions are checked by the GraphQL guards;
//! these functions hold the rules that go beyond them (the last administrator, built-in
//! roles, escalation through `createUser`).

use chrono::NaiveDateTime;
use serde_json::json;

use super::shared::accounts::{create_account, email_conflict, erase_account, guard_last_admin};
use super::shared::audit::{self, Event, action};
use super::shared::email_tokens::Proof;
use super::shared::grants::{Authorized, RolesAssign, RolesWrite, UsersDelete, UsersWrite};
use super::shared::profile_update::ProfileUpdate;
use super::shared::sessions::end_sessions;
use super::shared::{ADMIN_ROLE, ClientInfo, DEFAULT_ROLE, Services, record_account_change};
use crate::auth::token::PlainToken;
use crate::db::clock::now;
use crate::db::roles::{self, NewRole, Role};
use crate::db::transaction;
use crate::db::users::{self, ProfileChanges, User, UserChanges};
use crate::db::{Conn, Unique, password_resets, unique_violation};
use crate::domain::{DisplayName, Email, Password, Permission, RoleName, bounded, bounds};
use crate::error::{AppError, AppResult, FieldError};
use crate::ids::{RoleId, UserId};

/// What `createUser` is given.
#[derive(Debug)]
pub struct NewAccount<'a> {
    /// Email.
    pub email: &'a str,
    /// Initial password.
    pub password: &'a str,
    /// Display name.
    pub display_name: Option<&'a str>,
    /// Role names; `user` when omitted.
    pub roles: Option<&'a [String]>,
}

/// What `inviteUser` is given.
#[derive(Debug)]
pub struct Invitation<'a> {
    /// The address to invite.
    pub email: &'a str,
    /// Display name.
    pub display_name: Option<&'a str>,
    /// Role names; `user` when omitted.
    pub roles: Option<&'a [String]>,
}

/// What `updateUser` is given.
#[derive(Debug)]
pub struct AccountUpdate<'a> {
    /// New email.
    pub email: Option<&'a str>,
    /// Activate or deactivate.
    pub is_active: Option<bool>,
    /// Profile changes.
    pub profile: Option<ProfileUpdate>,
}

impl Services {
    /// Creates an account. Roles other than `user` also need `roles:assign`.
    pub async fn create_user(
        &self,
        by: Authorized<'_, UsersWrite>,
        input: NewAccount<'_>,
        client: &ClientInfo,
    ) -> AppResult<User> {
        let (email, password, name) =
            self.parse_new_account(input.email, input.password, input.display_name)?;
        self.open_account(by, (email, password, name), input.roles, false, client)
            .await
    }

    /// Opens an account for an address without a password, and mails its owner a link to
    /// choose one (`acceptInvitation`, valid for `USERGRAPH_INVITATION_TTL`). Roles as for
    /// [`create_user`](Self::create_user).
    pub async fn invite_user(
        &self,
        by: Authorized<'_, UsersWrite>,
        input: Invitation<'_>,
        client: &ClientInfo,
    ) -> AppResult<User> {
        let email = Email::parse("email", input.email);
        let name = input
            .display_name
            .map(|name| DisplayName::parse("displayName", name))
            .transpose();
        let (email, name) = match (email, name) {
            (Ok(email), Ok(name)) => (email, name),
            (email, name) => {
                return Err(AppError::BadUserInput(
                    [email.err(), name.err()].into_iter().flatten().collect(),
                ));
            }
        };
        // A password nobody knows (random, never shown, not held to the policy, which is for
        // passwords people choose): the account signs in once its owner has chosen one.
        let password = Password::verified(&PlainToken::generate("").expose());
        let user = self
            .open_account(by, (email, password, name), input.roles, true, client)
            .await?;
        tracing::info!(user.id = %user.id, "account invited");
        Ok(user)
    }

    /// What `createUser` and `inviteUser` share: the roles checked, the password hashed with
    /// no connection held, then one transaction with the account, its roles, the audit row
    /// and, for an invitation, the mailed token.
    async fn open_account(
        &self,
        by: Authorized<'_, UsersWrite>,
        (email, password, name): (Email, Password, Option<DisplayName>),
        roles: Option<&[String]>,
        invited: bool,
        client: &ClientInfo,
    ) -> AppResult<User> {
        let default = [DEFAULT_ROLE.to_owned()];
        let role_names = roles.unwrap_or(&default);
        check_roles(&by, role_names)?;
        let hash = self.passwords.hash(&password).await?;
        let actor = by.actor();
        let done = if invited {
            action::USER_INVITED
        } else {
            action::USER_CREATED
        };
        let mut db = self.db.get().await?;
        let user = transaction!(&mut db, |conn| {
            let user = create_account(conn, &email, &hash, name.clone()).await?;
            assign_roles(conn, user.id, role_names).await?;
            let event = Event::on(Some(actor), done, ("user", user.id), client)
                .with_details(json!({ "roles": role_names }));
            audit::record(conn, event).await?;
            if invited {
                self.mail_email_token(conn, &user, Proof::Invite, &[])
                    .await?;
            }
            Ok::<_, AppError>(user)
        })?;
        if invited {
            self.mail_queued();
        }
        Ok(user)
    }

    /// Changes an account's email, activity or profile. Deactivating ends its sessions.
    pub async fn update_user(
        &self,
        by: Authorized<'_, UsersWrite>,
        id: UserId,
        input: AccountUpdate<'_>,
        client: &ClientInfo,
    ) -> AppResult<User> {
        let (email, profile) = parse_account_update(input.email, input.profile)?;
        let changes = UserChanges {
            email: email.as_ref().map(Email::as_str),
            is_active: input.is_active,
            deleted_at: None,
        };
        let at = now();
        let actor = by.actor();
        let mut db = self.db.get().await?;
        let (user, ended) = transaction!(&mut db, |conn| {
            if input.is_active == Some(false) {
                guard_last_admin(conn, id).await?;
            }
            let user = users::update_user(conn, id, &changes, at)
                .await
                .map_err(email_conflict)?
                .ok_or(AppError::NotFound("user"))?;
            if changes.email.is_some() {
                // Resets mailed to the old address no longer reach the account's owner.
                password_resets::use_all_of(conn, id, at).await?;
            }
            record_account_change(conn, Some(id)).await?;
            if let Some(profile) = &profile {
                users::update_profile(conn, id, profile, at).await?;
            }
            let ended = if input.is_active == Some(false) {
                end_sessions(conn, id, None, at, action::SESSIONS_ENDED, client).await?
            } else {
                Vec::new()
            };
            let changed = changed_fields(&changes, profile.is_some());
            let event = Event::on(Some(actor), action::USER_UPDATED, ("user", id), client)
                .with_details(json!({ "changed": changed }));
            audit::record(conn, event).await?;
            Ok::<_, AppError>((user, ended))
        })?;
        self.committed(id, ended);
        Ok(user)
    }

    /// Soft-deletes an account: hidden from lists, unable to log in, every session ended.
    pub async fn delete_user(
        &self,
        by: Authorized<'_, UsersDelete>,
        id: UserId,
        client: &ClientInfo,
    ) -> AppResult<User> {
        let at = now();
        let actor = by.actor();
        let mut db = self.db.get().await?;
        let (user, ended) = transaction!(&mut db, |conn| {
            guard_last_admin(conn, id).await?;
            let user = set_deleted_at(conn, id, Some(at), at).await?;
            let ended = end_sessions(conn, id, None, at, action::SESSIONS_ENDED, client).await?;
            record_admin(conn, actor, action::USER_DELETED, id, client).await?;
            Ok::<_, AppError>((user, ended))
        })?;
        self.committed(id, ended);
        Ok(user)
    }

    /// Undoes a soft delete.
    pub async fn restore_user(
        &self,
        by: Authorized<'_, UsersDelete>,
        id: UserId,
        client: &ClientInfo,
    ) -> AppResult<User> {
        let at = now();
        let actor = by.actor();
        let mut db = self.db.get().await?;
        let user = transaction!(&mut db, |conn| {
            let user = set_deleted_at(conn, id, None, at).await?;
            record_admin(conn, actor, action::USER_RESTORED, id, client).await?;
            Ok::<_, AppError>(user)
        })?;
        self.callers.evict(Some(id));
        Ok(user)
    }

    /// Erases an account and everything that belongs to it; its audit rows stay.
    pub async fn purge_user(
        &self,
        by: Authorized<'_, UsersDelete>,
        id: UserId,
        client: &ClientInfo,
    ) -> AppResult<()> {
        let at = now();
        let actor = by.actor();
        let mut db = self.db.get().await?;
        let erased = transaction!(&mut db, |conn| {
            let erased = erase_account(conn, id, at).await?;
            record_account_change(conn, Some(id)).await?;
            record_admin(conn, actor, action::USER_PURGED, id, client).await?;
            Ok::<_, AppError>(erased)
        })?;
        self.committed(id, erased.sessions);
        self.delete_avatar_files(erased.avatar.as_deref()).await;
        Ok(())
    }

    /// Gives a role to an account.
    pub async fn assign_role(
        &self,
        by: Authorized<'_, RolesAssign>,
        user: UserId,
        role: &str,
        client: &ClientInfo,
    ) -> AppResult<User> {
        self.change_role(by, user, role, true, client).await
    }

    /// Takes a role from an account. The last active administrator keeps `admin`.
    pub async fn revoke_role(
        &self,
        by: Authorized<'_, RolesAssign>,
        user: UserId,
        role: &str,
        client: &ClientInfo,
    ) -> AppResult<User> {
        self.change_role(by, user, role, false, client).await
    }

    async fn change_role(
        &self,
        by: Authorized<'_, RolesAssign>,
        user: UserId,
        role: &str,
        give: bool,
        client: &ClientInfo,
    ) -> AppResult<User> {
        bounded("role", role, bounds::ROLE_NAME)?;
        let actor = by.actor();
        let mut db = self.db.get().await?;
        let target = transaction!(&mut db, |conn| {
            if !give && role == ADMIN_ROLE {
                guard_last_admin(conn, user).await?;
            }
            let found = roles::find_role_by_name(conn, role)
                .await?
                .ok_or(AppError::NotFound("role"))?;
            let target = users::find_user(conn, user)
                .await?
                .ok_or(AppError::NotFound("user"))?;
            let action = if give {
                roles::assign_role(conn, user, found.id, now()).await?;
                action::ROLE_ASSIGNED
            } else {
                roles::revoke_role(conn, user, found.id).await?;
                action::ROLE_REVOKED
            };
            record_account_change(conn, Some(user)).await?;
            record_role_change(conn, actor, action, user, role, client).await?;
            Ok::<_, AppError>(target)
        })?;
        self.callers.evict(Some(user));
        Ok(target)
    }

    /// Creates a role.
    pub async fn create_role(
        &self,
        by: Authorized<'_, RolesWrite>,
        name: &str,
        description: Option<&str>,
        permissions: &[String],
        client: &ClientInfo,
    ) -> AppResult<Role> {
        let (name, permissions) = parse_new_role(name, description, permissions)?;
        let permissions_json = serde_json::to_string(&permissions).map_err(AppError::internal)?;
        let actor = by.actor();
        let mut db = self.db.get().await?;
        transaction!(&mut db, |conn| {
            let new = NewRole {
                id: RoleId::new(),
                name: name.as_str(),
                description,
                permissions: &permissions_json,
                created_at: now(),
            };
            let role = roles::insert_role(conn, &new)
                .await
                .map_err(role_conflict)?;
            let event = Event::on(Some(actor), action::ROLE_CREATED, ("role", role.id), client)
                .with_details(json!({ "name": name.as_str(), "permissions": permissions }));
            audit::record(conn, event).await?;
            Ok(role)
        })
    }

    /// Deletes a role that is not built in; its holders lose it on their next request.
    pub async fn delete_role(
        &self,
        by: Authorized<'_, RolesWrite>,
        name: &str,
        client: &ClientInfo,
    ) -> AppResult<()> {
        bounded("name", name, bounds::ROLE_NAME)?;
        let actor = by.actor();
        let mut db = self.db.get().await?;
        transaction!(&mut db, |conn| {
            let role = roles::find_role_by_name(conn, name)
                .await?
                .ok_or(AppError::NotFound("role"))?;
            if role.is_builtin {
                return Err(AppError::Forbidden(format!(
                    "`{name}` is built in and cannot be deleted"
                )));
            }
            roles::delete_role(conn, role.id).await?;
            record_account_change(conn, None).await?;
            let event = Event::on(Some(actor), action::ROLE_DELETED, ("role", role.id), client)
                .with_details(json!({ "name": name }));
            audit::record(conn, event).await?;
            Ok::<_, AppError>(())
        })?;
        self.callers.evict(None);
        Ok(())
    }
}

async fn record_admin(
    conn: &mut Conn<'_>,
    actor: UserId,
    action: &'static str,
    target: UserId,
    client: &ClientInfo,
) -> AppResult<()> {
    let event = Event::on(Some(actor), action, ("user", target), client);
    audit::record(conn, event).await
}

async fn record_role_change(
    conn: &mut Conn<'_>,
    actor: UserId,
    action: &'static str,
    target: UserId,
    role: &str,
    client: &ClientInfo,
) -> AppResult<()> {
    let event = Event::on(Some(actor), action, ("user", target), client)
        .with_details(json!({ "role": role }));
    audit::record(conn, event).await
}

/// Soft-deletes (`Some`) or restores (`None`) the account `id`, recording that what
/// authorises it changed; `NOT_FOUND` when there is no such account.
async fn set_deleted_at(
    conn: &mut Conn<'_>,
    id: UserId,
    deleted_at: Option<NaiveDateTime>,
    at: NaiveDateTime,
) -> AppResult<User> {
    let changes = UserChanges {
        deleted_at: Some(deleted_at),
        ..UserChanges::default()
    };
    let user = users::update_user(conn, id, &changes, at)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    record_account_change(conn, Some(id)).await?;
    Ok(user)
}

/// Checks an administrator's account update; `BAD_USER_INPUT` lists each invalid field
/// (profile fields as `profile.<field>`).
fn parse_account_update(
    email: Option<&str>,
    profile: Option<ProfileUpdate>,
) -> AppResult<(Option<Email>, Option<ProfileChanges>)> {
    let mut errors = Vec::new();
    let email = match email.map(|e| Email::parse("email", e)).transpose() {
        Ok(email) => email,
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let profile = match profile.map(ProfileUpdate::validate).transpose() {
        Ok(profile) => profile,
        Err(fields) => {
            errors.extend(
                fields
                    .into_iter()
                    .map(|f| FieldError::new(format!("profile.{}", f.field), f.message)),
            );
            None
        }
    };
    if errors.is_empty() {
        Ok((email, profile))
    } else {
        Err(AppError::BadUserInput(errors))
    }
}

/// What an account update changed, as its audit row lists it.
fn changed_fields(changes: &UserChanges<'_>, profile: bool) -> Vec<&'static str> {
    let mut fields = Vec::new();
    if changes.email.is_some() {
        fields.push("email");
    }
    if let Some(active) = changes.is_active {
        fields.push(if active { "activated" } else { "deactivated" });
    }
    if profile {
        fields.push("profile");
    }
    fields
}

/// Checks a new role: its name (1 to 50 of a-z, 0-9, `-_:.`), permissions (known; returned
/// sorted without repeats) and description; `BAD_USER_INPUT` lists each invalid field.
fn parse_new_role(
    name: &str,
    description: Option<&str>,
    permissions: &[String],
) -> AppResult<(RoleName, Vec<String>)> {
    AppError::check(
        permissions
            .iter()
            .map(|p| bounded("permissions", p, bounds::PERMISSION).err()),
    )?;
    let mut errors = Vec::new();
    let name = match RoleName::parse("name", name) {
        Ok(name) => Some(name),
        Err(error) => {
            errors.push(error);
            None
        }
    };
    errors.extend(Permission::unknown("permissions", permissions));
    if let Some(description) = description {
        errors.extend(bounded("description", description, bounds::ROLE_DESCRIPTION).err());
    }
    let Some(name) = name.filter(|_| errors.is_empty()) else {
        return Err(AppError::BadUserInput(errors));
    };
    let mut permissions = permissions.to_vec();
    permissions.sort();
    permissions.dedup();
    Ok((name, permissions))
}

/// `CONFLICT` on `name` for a unique violation of a role's name, the error itself otherwise.
fn role_conflict(error: diesel::result::Error) -> AppError {
    match unique_violation(&error) {
        Some(Unique::RoleName) => AppError::Conflict {
            field: "name",
            message: "a role with this name exists".into(),
        },
        _ => error.into(),
    }
}

/// Refuses role names that are not names, and roles beyond `user` without `roles:assign`.
fn check_roles(by: &Authorized<'_, UsersWrite>, role_names: &[String]) -> AppResult<()> {
    AppError::check(
        role_names
            .iter()
            .map(|role| bounded("roles", role, bounds::ROLE_NAME).err()),
    )?;
    if role_names.iter().any(|r| r != DEFAULT_ROLE) {
        by.viewer().authorize::<RolesAssign>()?;
    }
    Ok(())
}

/// Gives `user` the roles named; `BAD_USER_INPUT` naming `roles` for one that does not exist.
async fn assign_roles(conn: &mut Conn<'_>, user: UserId, role_names: &[String]) -> AppResult<()> {
    for role in role_names {
        let Some(found) = roles::find_role_by_name(conn, role).await? else {
            let message = format!("there is no role `{role}`");
            return Err(AppError::BadUserInput(vec![FieldError::new(
                "roles", message,
            )]));
        };
        roles::assign_role(conn, user, found.id, now()).await?;
    }
    Ok(())
}
