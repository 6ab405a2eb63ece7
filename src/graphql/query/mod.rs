//! The query root, merged from one object per area.

mod audit;
mod roles;
mod sessions;
mod users;

use async_graphql::MergedObject;

/// Every query.
#[derive(MergedObject, Default)]
pub struct Query(
    users::UsersQuery,
    roles::RolesQuery,
    sessions::SessionsQuery,
    audit::AuditQueryRoot,
);
