//! The roles by id, kept in memory: a page of accounts reads which roles each holds, not the
//! roles themselves.
//!
//! A role row never changes once created: there is no update, a deleted role's grants go
//! with it (`user_roles` cascades), and ids are never reused. So an entry is never stale, and
//! an id not found here is a role created since the last read: the table is read again.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use crate::db::roles::Role;
use crate::ids::RoleId;

/// The roles by id.
#[derive(Default)]
pub struct RoleCache(RwLock<HashMap<RoleId, Arc<Role>>>);

impl RoleCache {
    /// Whether every one of `ids` is known.
    pub fn has_all(&self, mut ids: impl Iterator<Item = RoleId>) -> bool {
        let roles = self.0.read().unwrap_or_else(PoisonError::into_inner);
        ids.all(|id| roles.contains_key(&id))
    }

    /// The role `id`, if known.
    pub fn get(&self, id: RoleId) -> Option<Arc<Role>> {
        let roles = self.0.read().unwrap_or_else(PoisonError::into_inner);
        roles.get(&id).cloned()
    }

    /// Replaces what is known with `roles`, the whole table.
    pub fn replace(&self, roles: Vec<Role>) {
        let fresh = roles
            .into_iter()
            .map(|role| (role.id, Arc::new(role)))
            .collect();
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = fresh;
    }
}
