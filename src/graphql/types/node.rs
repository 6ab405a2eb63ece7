//! The Relay `Node` interface.

use async_graphql::{ID, Interface};

use super::audit::AuditEvent;
use super::role::Role;
use super::user::User;

/// An object with a globally unique id, fetchable with `node(id:)`.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "The object's id (a UUID)."))]
pub enum Node {
    /// An account.
    User(User),
    /// A role.
    Role(Role),
    /// An audit event.
    AuditEvent(AuditEvent),
}
