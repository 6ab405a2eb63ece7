//! Dataloaders: one loader type, one `Loader<K>` per small key type, one statement per batch,
//! so a page of N users costs the same few statements as a page of one.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;

use crate::db::roles::Role;
use crate::db::users::{Profile, User};
use crate::error::AppError;
use crate::ids::UserId;
use crate::services::Services;

/// The profile of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProfileOf(pub UserId);

/// The roles of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RolesOf(pub UserId);

/// An account by id (an audit event's actor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserOf(pub UserId);

/// Loads nested fields in batches.
pub struct AppLoader {
    services: Services,
}

impl AppLoader {
    /// A loader over `services`.
    pub fn new(services: Services) -> Self {
        Self { services }
    }
}

// Values are shared (`Arc`): the loader's cache hands out a clone for every lookup.
impl Loader<ProfileOf> for AppLoader {
    type Value = Arc<Profile>;
    type Error = Arc<AppError>;

    async fn load(
        &self,
        keys: &[ProfileOf],
    ) -> Result<HashMap<ProfileOf, Arc<Profile>>, Self::Error> {
        let ids: Vec<UserId> = keys.iter().map(|k| k.0).collect();
        let profiles = self.services.profiles_of(&ids).await.map_err(Arc::new)?;
        Ok(profiles
            .into_iter()
            .map(|p| (ProfileOf(p.user_id), Arc::new(p)))
            .collect())
    }
}

impl Loader<RolesOf> for AppLoader {
    type Value = Vec<Arc<Role>>;
    type Error = Arc<AppError>;

    async fn load(
        &self,
        keys: &[RolesOf],
    ) -> Result<HashMap<RolesOf, Vec<Arc<Role>>>, Self::Error> {
        let ids: Vec<UserId> = keys.iter().map(|k| k.0).collect();
        let roles = roles_of(&self.services, &ids).await.map_err(Arc::new)?;
        Ok(roles.into_iter().map(|(id, r)| (RolesOf(id), r)).collect())
    }
}

/// The roles of each of `ids`, in one statement. Every id gets an entry (an account without
/// roles has an empty list); a page holds a few distinct roles many times over, each kept
/// once. For a batch known whole (a page), called directly: the loader would wait its batch
/// delay and hand the answer over through a task of its own.
pub async fn roles_of(
    services: &Services,
    ids: &[UserId],
) -> Result<HashMap<UserId, Vec<Arc<Role>>>, AppError> {
    let pairs = services.roles_of(ids).await?;
    let mut out: HashMap<UserId, Vec<Arc<Role>>> = ids.iter().map(|id| (*id, Vec::new())).collect();
    for (user, role) in pairs {
        out.entry(user).or_default().push(role);
    }
    Ok(out)
}

impl Loader<UserOf> for AppLoader {
    type Value = User;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[UserOf]) -> Result<HashMap<UserOf, User>, Self::Error> {
        let ids: Vec<UserId> = keys.iter().map(|k| k.0).collect();
        let users = self.services.users_by_id(&ids).await.map_err(Arc::new)?;
        Ok(users.into_iter().map(|u| (UserOf(u.id), u)).collect())
    }
}
