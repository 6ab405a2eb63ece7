//! The mutation root, merged from one object per area.

mod admin;
mod auth;
mod email;
mod mfa;
mod profile;
mod sessions;

use async_graphql::MergedObject;

/// Every mutation.
#[derive(MergedObject, Default)]
pub struct Mutation(
    auth::AuthMutation,
    sessions::SessionsMutation,
    email::EmailMutation,
    mfa::MfaMutation,
    profile::ProfileMutation,
    admin::AdminMutation,
);
