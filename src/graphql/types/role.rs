//! `Role`.

use std::sync::Arc;

use async_graphql::parser::types::SelectionSet;
use async_graphql::{ID, Object, Value};

use crate::db::roles;

/// A named set of permissions that accounts can be given.
pub struct Role(pub Arc<roles::Role>);

impl Role {
    /// The answer to a plain selection (see [`plain`](super::plain)).
    pub(super) fn plain(&self, set: &SelectionSet) -> Option<Value> {
        let role = &self.0;
        super::plain::object(set, "Role", |name, _| {
            Some(match name {
                "id" => Value::String(role.id.to_string()),
                "name" => Value::String(role.name.clone()),
                "description" => super::plain::text(role.description.as_deref()),
                _ => return None,
            })
        })
    }
}

#[Object]
impl Role {
    /// The role's id.
    pub async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Unique name, e.g. `admin`.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// What the role is for.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    /// The permissions the role grants, e.g. `users:read`.
    async fn permissions(&self) -> Vec<String> {
        self.0.permission_names()
    }
}
