//! The caller's own profile.

use async_graphql::{Context, Object};

use crate::graphql::context;
use crate::graphql::types::user::{ProfileInput, User};

/// The caller's own profile.
#[derive(Default)]
pub struct ProfileMutation;

#[Object]
impl ProfileMutation {
    /// Changes the fields given of your profile (null clears one); `BAD_USER_INPUT` lists
    /// each invalid field.
    async fn update_my_profile(
        &self,
        ctx: &Context<'_>,
        input: ProfileInput,
    ) -> async_graphql::Result<User> {
        let viewer = context::viewer(ctx).await?;
        let (user, profile) = context::services(ctx)
            .update_my_profile(viewer, input.into(), context::client(ctx))
            .await?;
        // What the UPDATE returned answers `profile { … }` without another read.
        Ok(User::owned(user).with_profile(profile))
    }
}
