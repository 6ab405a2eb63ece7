//! Administration of accounts and roles; each field is guarded by its permission.

use async_graphql::{Context, ID, InputObject, Object};

use crate::domain::Permission;
use crate::error::AppError;
use crate::graphql::context;
use crate::graphql::guards::PermissionGuard;
use crate::graphql::types::role::Role;
use crate::graphql::types::user::{ProfileInput, User};
use crate::ids::UserId;
use crate::services::admin::{AccountUpdate, Invitation, NewAccount};

/// A new account, made by an administrator.
#[derive(InputObject)]
pub struct CreateUserInput {
    /// Email address.
    pub email: String,
    /// Initial password (the usual rules apply).
    pub password: String,
    /// Name to show.
    pub display_name: Option<String>,
    /// Role names; `user` when omitted. Roles other than `user` need `roles:assign`.
    pub roles: Option<Vec<String>>,
}

/// An address to invite: the account opens without a password.
#[derive(InputObject)]
pub struct InviteUserInput {
    /// Email address; the invitation is mailed there.
    pub email: String,
    /// Name to show.
    pub display_name: Option<String>,
    /// Role names; `user` when omitted. Roles other than `user` need `roles:assign`.
    pub roles: Option<Vec<String>>,
}

/// Changes to an account; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateUserInput {
    /// New email address.
    pub email: Option<String>,
    /// False deactivates the account and ends its sessions; true reactivates it.
    pub is_active: Option<bool>,
    /// Profile changes (errors name `profile.<field>`).
    pub profile: Option<ProfileInput>,
}

/// A new role.
#[derive(InputObject)]
pub struct CreateRoleInput {
    /// Unique name: 1 to 50 of a-z, 0-9, `-`, `_`, `:`, `.`.
    pub name: String,
    /// What the role is for.
    pub description: Option<String>,
    /// Permissions it grants, from the contract's list.
    pub permissions: Vec<String>,
}

/// Administration.
#[derive(Default)]
pub struct AdminMutation;

fn user_id(id: &ID) -> Result<UserId, AppError> {
    id.parse().map_err(|_| AppError::NotFound("user"))
}

#[Object]
impl AdminMutation {
    /// Creates an account (`users:write`).
    #[graphql(guard = "PermissionGuard(Permission::UsersWrite)")]
    async fn create_user(
        &self,
        ctx: &Context<'_>,
        input: CreateUserInput,
    ) -> async_graphql::Result<User> {
        let by = context::viewer(ctx).await?.authorize()?;
        let account = NewAccount {
            email: &input.email,
            password: &input.password,
            display_name: input.display_name.as_deref(),
            roles: input.roles.as_deref(),
        };
        let user = context::services(ctx)
            .create_user(by, account, context::client(ctx))
            .await?;
        Ok(User::new(user))
    }

    /// Invites an address (`users:write`): opens its account without a password and mails
    /// a link to choose one (`acceptInvitation`, valid `USERGRAPH_INVITATION_TTL`, 7 days by
    /// default). Until then nobody can sign in to it.
    #[graphql(guard = "PermissionGuard(Permission::UsersWrite)")]
    async fn invite_user(
        &self,
        ctx: &Context<'_>,
        input: InviteUserInput,
    ) -> async_graphql::Result<User> {
        let by = context::viewer(ctx).await?.authorize()?;
        let invitation = Invitation {
            email: &input.email,
            display_name: input.display_name.as_deref(),
            roles: input.roles.as_deref(),
        };
        let user = context::services(ctx)
            .invite_user(by, invitation, context::client(ctx))
            .await?;
        Ok(User::new(user))
    }

    /// Changes an account's email, activity or profile (`users:write`).
    #[graphql(guard = "PermissionGuard(Permission::UsersWrite)")]
    async fn update_user(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateUserInput,
    ) -> async_graphql::Result<User> {
        let by = context::viewer(ctx).await?.authorize()?;
        let update = AccountUpdate {
            email: input.email.as_deref(),
            is_active: input.is_active,
            profile: input.profile.map(Into::into),
        };
        let user = context::services(ctx)
            .update_user(by, user_id(&id)?, update, context::client(ctx))
            .await?;
        Ok(User::new(user))
    }

    /// Soft-deletes an account: hidden from lists unless `includeDeleted`, unable to log in,
    /// every session ended at once (`users:delete`).
    #[graphql(guard = "PermissionGuard(Permission::UsersDelete)")]
    async fn delete_user(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<User> {
        let by = context::viewer(ctx).await?.authorize()?;
        let user = context::services(ctx)
            .delete_user(by, user_id(&id)?, context::client(ctx))
            .await?;
        Ok(User::new(user))
    }

    /// Turns an account's two-step verification off, for a lost device (`users:write`): it
    /// logs in with its password alone until it enrols again. Audited; the owner is mailed.
    #[graphql(guard = "PermissionGuard(Permission::UsersWrite)")]
    async fn reset_user_mfa(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<User> {
        let by = context::viewer(ctx).await?.authorize()?;
        let user = context::services(ctx)
            .reset_mfa(by, user_id(&id)?, context::client(ctx))
            .await?;
        Ok(User::new(user))
    }

    /// Undoes a soft delete (`users:delete`).
    #[graphql(guard = "PermissionGuard(Permission::UsersDelete)")]
    async fn restore_user(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<User> {
        let by = context::viewer(ctx).await?.authorize()?;
        let user = context::services(ctx)
            .restore_user(by, user_id(&id)?, context::client(ctx))
            .await?;
        Ok(User::new(user))
    }

    /// Erases an account and everything that belongs to it for good; its audit rows stay
    /// (`users:delete`).
    #[graphql(guard = "PermissionGuard(Permission::UsersDelete)")]
    async fn purge_user(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<bool> {
        let by = context::viewer(ctx).await?.authorize()?;
        context::services(ctx)
            .purge_user(by, user_id(&id)?, context::client(ctx))
            .await?;
        Ok(true)
    }

    /// Gives a role to an account; it applies to the account's next request (`roles:assign`).
    #[graphql(guard = "PermissionGuard(Permission::RolesAssign)")]
    async fn assign_role(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        role: String,
    ) -> async_graphql::Result<User> {
        change_role(ctx, &user_id, &role, Change::Assign).await
    }

    /// Takes a role from an account; the last active administrator keeps `admin`
    /// (`roles:assign`).
    #[graphql(guard = "PermissionGuard(Permission::RolesAssign)")]
    async fn revoke_role(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        role: String,
    ) -> async_graphql::Result<User> {
        change_role(ctx, &user_id, &role, Change::Revoke).await
    }

    /// Creates a role (`roles:write`).
    #[graphql(guard = "PermissionGuard(Permission::RolesWrite)")]
    async fn create_role(
        &self,
        ctx: &Context<'_>,
        input: CreateRoleInput,
    ) -> async_graphql::Result<Role> {
        let by = context::viewer(ctx).await?.authorize()?;
        let role = context::services(ctx)
            .create_role(
                by,
                &input.name,
                input.description.as_deref(),
                &input.permissions,
                context::client(ctx),
            )
            .await?;
        Ok(Role(role.into()))
    }

    /// Deletes a role; built-in roles cannot be deleted (`roles:write`).
    #[graphql(guard = "PermissionGuard(Permission::RolesWrite)")]
    async fn delete_role(&self, ctx: &Context<'_>, name: String) -> async_graphql::Result<bool> {
        let by = context::viewer(ctx).await?.authorize()?;
        context::services(ctx)
            .delete_role(by, &name, context::client(ctx))
            .await?;
        Ok(true)
    }
}

/// Whether [`change_role`] gives or takes.
enum Change {
    Assign,
    Revoke,
}

/// `assignRole` and `revokeRole`: the same arguments, the same answer.
async fn change_role(
    ctx: &Context<'_>,
    user: &ID,
    role: &str,
    change: Change,
) -> async_graphql::Result<User> {
    let by = context::viewer(ctx).await?.authorize()?;
    let (services, client) = (context::services(ctx), context::client(ctx));
    let user = user_id(user)?;
    let user = match change {
        Change::Assign => services.assign_role(by, user, role, client).await?,
        Change::Revoke => services.revoke_role(by, user, role, client).await?,
    };
    Ok(User::new(user))
}
