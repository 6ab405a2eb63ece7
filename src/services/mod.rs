//! Business rules. Resolvers call these; they know nothing of HTTP or GraphQL.

pub mod accounts;
pub mod admin;
pub mod audit_log;
pub mod avatars;
pub mod email;
pub mod export;
pub mod invitations;
pub mod live;
pub mod mfa;
pub mod password_reset;
pub mod personal_tokens;
pub mod profiles;
pub mod seed;
pub mod sessions;
pub mod shared;
pub mod users;

pub use shared::{ClientInfo, Services};
