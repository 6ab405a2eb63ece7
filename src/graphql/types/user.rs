//! `User` and `Profile`.

use std::sync::Arc;

use async_graphql::parser::types::SelectionSet;
use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object};
use chrono::{DateTime, Utc};

use super::plain::{self, Direct};
use super::role::Role;
use super::utc;
use crate::db::{roles, users};
use crate::domain::{bounded, bounds};
use crate::error::AppError;
use crate::graphql::context;
use crate::graphql::loaders::{self, ProfileOf, RolesOf};
use crate::services::shared::profile_update::{Change, ProfileUpdate};

/// An account.
pub struct User {
    row: Arc<users::User>,
    /// Shown to its owner (a login payload, `me`): private fields need no further check.
    owner_view: bool,
    /// The caller may read its private fields (found when the account was looked up).
    readable: bool,
    /// The profile, when it was read with the account; otherwise the loader reads it.
    profile: Option<Arc<users::Profile>>,
    /// The roles, when they were read with the list; otherwise the loader reads them.
    roles: Option<Vec<Arc<roles::Role>>>,
}

impl User {
    /// An account as seen by whoever asked; private fields check the caller.
    pub fn new(row: impl Into<Arc<users::User>>) -> Self {
        Self {
            row: row.into(),
            owner_view: false,
            readable: false,
            profile: None,
            roles: None,
        }
    }

    /// An account as seen by its owner.
    pub fn owned(row: impl Into<Arc<users::User>>) -> Self {
        Self {
            owner_view: true,
            ..Self::new(row)
        }
    }

    /// The same account with its profile, read with it, so `profile` costs no lookup.
    pub fn with_profile(self, profile: impl Into<Arc<users::Profile>>) -> Self {
        Self {
            profile: Some(profile.into()),
            ..self
        }
    }

    /// The same account, with whether `viewer` may read its private fields (for
    /// [`Direct`] to answer them).
    pub fn seen_by(self, viewer: Option<&crate::services::shared::Viewer>) -> Self {
        Self {
            readable: viewer.is_some_and(|v| v.may_read(self.row.id)),
            ..self
        }
    }

    /// The same account with its roles, read with its list.
    fn with_roles(self, roles: Option<Vec<Arc<roles::Role>>>) -> Self {
        Self { roles, ..self }
    }

    /// The answer to a plain selection, when every value asked for is at hand (see
    /// [`plain`]): the same values as the resolvers below.
    pub(super) fn plain(&self, set: &SelectionSet) -> Option<async_graphql::Value> {
        use async_graphql::Value;
        let row = &self.row;
        let private = self.owner_view || self.readable;
        plain::object(set, "User", |name, set| {
            Some(match name {
                "id" => Value::String(row.id.to_string()),
                "email" if private => Value::String(row.email.clone()),
                "mfaEnabled" if private => Value::Boolean(row.mfa_enabled_at.is_some()),
                "emailVerified" => Value::Boolean(row.email_verified),
                "isActive" => Value::Boolean(row.is_active),
                "createdAt" => plain::scalar(&utc(row.created_at)),
                "updatedAt" => plain::scalar(&utc(row.updated_at)),
                "deletedAt" => plain::optional(row.deleted_at.map(utc).as_ref()),
                "lastLoginAt" => plain::optional(row.last_login_at.map(utc).as_ref()),
                "profile" => Profile(Some(self.profile.clone()?)).plain(set)?,
                "roles" => Value::List(
                    (self.roles.as_ref()?.iter())
                        .map(|role| Role(role.clone()).plain(set))
                        .collect::<Option<_>>()?,
                ),
                _ => return None,
            })
        })
    }
}

/// The profile of an account, when it has one.
pub struct Profile(Option<Arc<users::Profile>>);

impl Profile {
    fn plain(&self, set: &SelectionSet) -> Option<async_graphql::Value> {
        let profile = self.0.as_deref();
        plain::object(set, "Profile", |name, _| {
            Some(match name {
                "displayName" => plain::text(profile.and_then(|p| p.display_name.as_deref())),
                "yearOfBirth" => plain::optional(profile.and_then(|p| p.year_of_birth.as_ref())),
                "description" => plain::text(profile.and_then(|p| p.description.as_deref())),
                "avatarUrl" => plain::text(profile.and_then(|p| p.avatar_url.as_deref())),
                _ => return None,
            })
        })
    }
}

/// What an account shows about its owner. Every field is optional.
#[Object]
impl Profile {
    /// Name to show, 1 to 100 characters.
    async fn display_name(&self) -> Option<&str> {
        self.0.as_ref()?.display_name.as_deref()
    }

    /// Year of birth, from 1900 to the current year.
    async fn year_of_birth(&self) -> Option<i32> {
        self.0.as_ref()?.year_of_birth
    }

    /// Free text of up to 2,000 characters, stored verbatim.
    async fn description(&self) -> Option<&str> {
        self.0.as_ref()?.description.as_deref()
    }

    /// URL of the avatar image.
    async fn avatar_url(&self) -> Option<&str> {
        self.0.as_ref()?.avatar_url.as_deref()
    }
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

#[Object]
impl User {
    /// The account's id (a UUID v7).
    pub async fn id(&self) -> ID {
        ID(self.row.id.to_string())
    }

    /// The email address: visible to the account itself and to holders of `users:read`;
    /// anyone else gets `FORBIDDEN`.
    async fn email(&self, ctx: &Context<'_>) -> async_graphql::Result<&str> {
        if self.owner_view {
            return Ok(&self.row.email);
        }
        Ok(context::enrolling_viewer(ctx).await?.email_of(&self.row)?)
    }

    /// Whether two-step verification (TOTP) is on: visible to the account itself and to
    /// holders of `users:read`.
    async fn mfa_enabled(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        if !self.owner_view {
            context::enrolling_viewer(ctx).await?.email_of(&self.row)?;
        }
        Ok(self.row.mfa_enabled_at.is_some())
    }

    /// Unused recovery codes left: for the account itself only (null for anyone else, and
    /// when two-step verification is off).
    async fn recovery_codes_left(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<i64>> {
        if self.row.mfa_enabled_at.is_none() {
            return Ok(None);
        }
        if !self.owner_view && context::enrolling_viewer(ctx).await?.user.id != self.row.id {
            return Ok(None);
        }
        Ok(Some(
            context::services(ctx)
                .recovery_codes_left(self.row.id)
                .await?,
        ))
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
        if let Some(profile) = &self.profile {
            return Ok(Profile(Some(profile.clone())));
        }
        let profile = Box::pin(context::loader(ctx).load_one(ProfileOf(self.row.id)))
            .await
            .map_err(|e| async_graphql::Error::from(&*e))?;
        Ok(Profile(profile))
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
            .flat_map(|role| role.permission_names())
            .collect();
        permissions.sort();
        permissions.dedup();
        Ok(permissions)
    }
}

/// The accounts of a list, `(account, profile read with it)`, as `User`s, with their roles
/// read in one batch when the selection `fields` (the fields of each `User`) asks for them.
/// Each `User` then answers `profile` and `roles` from what it carries: a long list would
/// otherwise straddle the dataloader's batches and pay a cache lookup per field. Whether
/// the caller may read each account's private fields is found here once.
pub async fn list(
    ctx: &Context<'_>,
    fields: async_graphql::Lookahead<'_>,
    rows: &[(Arc<users::User>, Arc<users::Profile>)],
) -> async_graphql::Result<Vec<Direct>> {
    let viewer = context::enrolling_viewer(ctx).await.ok();
    let mut roles = if fields.field("roles").exists() || fields.field("permissions").exists() {
        let ids: Vec<_> = rows.iter().map(|(u, _)| u.id).collect();
        Some(loaders::roles_of(context::services(ctx), &ids).await?)
    } else {
        None
    };
    Ok(rows
        .iter()
        .map(|(u, p)| {
            let own = roles.as_mut().map(|r| r.remove(&u.id).unwrap_or_default());
            let user = User::new(u.clone()).seen_by(viewer);
            Direct(user.with_profile(p.clone()).with_roles(own))
        })
        .collect())
}

impl User {
    async fn load_roles(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Arc<roles::Role>>> {
        if let Some(roles) = &self.roles {
            return Ok(roles.clone());
        }
        let roles = Box::pin(context::loader(ctx).load_one(RolesOf(self.row.id)))
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
