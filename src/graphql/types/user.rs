//! `User` and `Profile`.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::role::Role;
use super::utc;
use crate::db::users;
use crate::domain::{Permission, bounded, bounds};
use crate::error::AppError;
use crate::graphql::context;
use crate::graphql::loaders::{ProfileOf, RolesOf};
use crate::services::profiles::{Change, ProfileUpdate};

/// An account.
pub struct User {
    row: users::User,
    /// Shown to its owner (a login payload, `me`): private fields need no further check.
    owner_view: bool,
}

impl User {
    /// An account as seen by whoever asked; private fields check the caller.
    pub fn new(row: users::User) -> Self {
        Self {
            row,
            owner_view: false,
        }
    }

    /// An account as seen by its owner.
    pub fn owned(row: users::User) -> Self {
        Self {
            row,
            owner_view: true,
        }
    }
}

/// What an account shows about its owner. Every field is optional.
#[derive(SimpleObject, Default)]
pub struct Profile {
    /// Name to show, 1 to 100 characters.
    pub display_name: Option<String>,
    /// Year of birth, from 1900 to the current year.
    pub year_of_birth: Option<i32>,
    /// Free text of up to 2,000 characters, stored verbatim.
    pub description: Option<String>,
    /// URL of the avatar image.
    pub avatar_url: Option<String>,
}

/// Profile fields to change: an omitted field is kept, a field given as null is cleared.
#[derive(InputObject)]
pub struct ProfileInput {
    /// Name to show, 1 to 100 characters.
    pub display_name: MaybeUndefined<String>,
    /// Year of birth, from 1900 to the current year.
    pub year_of_birth: MaybeUndefined<i32>,
    /// Free text of up to 2,000 characters, stored verbatim.
    pub description: MaybeUndefined<String>,
}

impl From<ProfileInput> for ProfileUpdate {
    fn from(input: ProfileInput) -> Self {
        fn change<T>(value: MaybeUndefined<T>) -> Change<T> {
            match value {
                MaybeUndefined::Undefined => Change::Keep,
                MaybeUndefined::Null => Change::Clear,
                MaybeUndefined::Value(v) => Change::Set(v),
            }
        }
        Self {
            display_name: change(input.display_name),
            year_of_birth: change(input.year_of_birth),
            description: change(input.description),
        }
    }
}

impl From<users::Profile> for Profile {
    fn from(p: users::Profile) -> Self {
        Self {
            display_name: p.display_name,
            year_of_birth: p.year_of_birth,
            description: p.description,
            avatar_url: p.avatar_url,
        }
    }
}

#[Object]
impl User {
    /// The account's id (a UUID v7).
    pub async fn id(&self) -> ID {
        ID(self.row.id.to_string())
    }

    /// The email address: visible to the account itself and to holders of `users:read`;
    /// anyone else gets `FORBIDDEN`.
    async fn email(&self, ctx: &Context<'_>) -> async_graphql::Result<&str> {
        if !self.owner_view {
            let viewer = context::viewer(ctx).await?;
            if viewer.user.id != self.row.id && !viewer.can(Permission::UsersRead) {
                return Err(AppError::missing_permission(Permission::UsersRead.as_str()).into());
            }
        }
        Ok(&self.row.email)
    }

    /// Whether the email address was confirmed.
    async fn email_verified(&self) -> bool {
        self.row.email_verified
    }

    /// False when an administrator deactivated the account.
    async fn is_active(&self) -> bool {
        self.row.is_active
    }

    /// When the account was created.
    async fn created_at(&self) -> DateTime<Utc> {
        utc(self.row.created_at)
    }

    /// When the account last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        utc(self.row.updated_at)
    }

    /// When the account was deleted (soft delete), if it was.
    async fn deleted_at(&self) -> Option<DateTime<Utc>> {
        self.row.deleted_at.map(utc)
    }

    /// When the account last logged in.
    async fn last_login_at(&self) -> Option<DateTime<Utc>> {
        self.row.last_login_at.map(utc)
    }

    /// The account's profile.
    async fn profile(&self, ctx: &Context<'_>) -> async_graphql::Result<Profile> {
        let profile = context::loader(ctx)
            .load_one(ProfileOf(self.row.id))
            .await
            .map_err(|e| async_graphql::Error::from(&*e))?;
        Ok(profile.map(Profile::from).unwrap_or_default())
    }

    /// The account's roles, by name.
    async fn roles(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Role>> {
        Ok(self.load_roles(ctx).await?.into_iter().map(Role).collect())
    }

    /// Every permission the account's roles grant, sorted, without repeats.
    async fn permissions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<String>> {
        let mut permissions: Vec<String> = self
            .load_roles(ctx)
            .await?
            .iter()
            .flat_map(crate::db::roles::Role::permission_names)
            .collect();
        permissions.sort();
        permissions.dedup();
        Ok(permissions)
    }
}

/// Loads, in one batch each, the profiles and roles that the selection `fields` (the fields
/// of each `User` in a list) will ask for. The dataloader batches by time; a long list can
/// straddle two batches, so lists prime it up front and every `User` then reads the cache.
pub async fn prefetch(
    ctx: &Context<'_>,
    fields: async_graphql::Lookahead<'_>,
    ids: &[crate::db::types::UserId],
) -> async_graphql::Result<()> {
    let loader = context::loader(ctx);
    let to_error = |e: std::sync::Arc<AppError>| async_graphql::Error::from(&*e);
    if fields.field("profile").exists() {
        loader
            .load_many(ids.iter().map(|id| ProfileOf(*id)))
            .await
            .map_err(to_error)?;
    }
    if fields.field("roles").exists() || fields.field("permissions").exists() {
        loader
            .load_many(ids.iter().map(|id| RolesOf(*id)))
            .await
            .map_err(to_error)?;
    }
    Ok(())
}

impl User {
    async fn load_roles(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<crate::db::roles::Role>> {
        let roles = context::loader(ctx)
            .load_one(RolesOf(self.row.id))
            .await
            .map_err(|e| async_graphql::Error::from(&*e))?;
        Ok(roles.unwrap_or_default())
    }
}

/// Which accounts `users` lists; every condition given must hold.
#[derive(InputObject, Default)]
pub struct UserFilter {
    /// Text to find in the email or the display name, ignoring letter case.
    pub search: Option<String>,
    /// Only holders of this role (by name).
    pub role: Option<String>,
    /// Only active (true) or deactivated (false) accounts.
    pub is_active: Option<bool>,
    /// Include soft-deleted accounts (default false).
    pub include_deleted: Option<bool>,
}

impl TryFrom<UserFilter> for users::UserFilter {
    type Error = AppError;

    fn try_from(filter: UserFilter) -> Result<Self, AppError> {
        let search = filter.search.as_deref().map(str::trim);
        let role = filter.role.as_deref();
        AppError::check([
            search.and_then(|s| bounded("filter.search", s, bounds::SEARCH).err()),
            role.and_then(|r| bounded("filter.role", r, bounds::ROLE_NAME).err()),
        ])?;
        Ok(Self {
            search: search.map(str::to_lowercase).filter(|s| !s.is_empty()),
            role: filter.role,
            is_active: filter.is_active,
            include_deleted: filter.include_deleted.unwrap_or(false),
        })
    }
}

/// What `users` is ordered by; ties are broken by id, so the order is total.
#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq)]
pub enum UserOrderField {
    /// Creation time.
    CreatedAt,
    /// Email address.
    Email,
    /// Display name; accounts without one come first in ascending order.
    DisplayName,
}

/// Ascending or descending.
#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq)]
pub enum OrderDirection {
    /// Smallest first.
    Asc,
    /// Largest first.
    Desc,
}

/// The order of `users`.
#[derive(InputObject)]
pub struct UserOrder {
    /// What to order by.
    pub field: UserOrderField,
    /// Which way.
    pub direction: OrderDirection,
}

impl From<UserOrderField> for users::SortField {
    fn from(field: UserOrderField) -> Self {
        match field {
            UserOrderField::CreatedAt => Self::CreatedAt,
            UserOrderField::Email => Self::Email,
            UserOrderField::DisplayName => Self::DisplayName,
        }
    }
}
