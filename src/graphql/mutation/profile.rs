//! The caller's own profile.

use async_graphql::{Context, Object, Upload};

use crate::error::AppError;
use crate::graphql::context;
use crate::graphql::types::user::{ProfileInput, User};
use crate::services::avatars::UploadedFile;

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

    /// Makes the uploaded picture your avatar (GraphQL multipart request spec, one file).
    /// JPEG, PNG or WebP, judged by its bytes; at most `USERGRAPH_MAX_UPLOAD_BYTES` and
    /// `USERGRAPH_MAX_UPLOAD_PIXELS`. It is re-encoded (no metadata survives) and kept with
    /// a 256 px square version, which `avatarUrl` names (`/uploads/…`). Anything else is
    /// `BAD_USER_INPUT` on `file`, and nothing is stored.
    async fn upload_avatar(&self, ctx: &Context<'_>, file: Upload) -> async_graphql::Result<User> {
        let viewer = context::viewer(ctx).await?;
        let upload = file
            .value(ctx)
            .map_err(|_| AppError::bad_field("file", "was not received"))?;
        let file = UploadedFile {
            filename: upload.filename,
            bytes: upload.content.to_vec(),
        };
        let profile = context::services(ctx)
            .upload_avatar(viewer, file, context::client(ctx))
            .await?;
        Ok(User::owned(viewer.user.clone()).with_profile(profile))
    }

    /// Removes your avatar and its files.
    async fn remove_avatar(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        let viewer = context::viewer(ctx).await?;
        let profile = context::services(ctx)
            .remove_avatar(viewer, context::client(ctx))
            .await?;
        Ok(User::owned(viewer.user.clone()).with_profile(profile))
    }
}
