//! Avatars: an uploaded picture checked, re-encoded and kept with its square version;
//! `avatarUrl` names the square one.

use serde_json::json;

use super::shared::audit::{self, Event, action};
use super::shared::{ClientInfo, Services, Viewer};
use crate::avatars::AvatarFiles;
use crate::avatars::picture::{self, Picture};
use crate::db::clock::now;
use crate::db::transaction;
use crate::db::users::{self, Profile, ProfileChanges};
use crate::error::{AppError, AppResult};

/// An uploaded file as the GraphQL layer received it.
#[derive(Debug)]
pub struct UploadedFile {
    /// The name the client gave (only checked: never used for storing).
    pub filename: String,
    /// Its bytes (bounded by the request's body limit).
    pub bytes: Vec<u8>,
}

impl Services {
    /// Keeps `file` as the caller's avatar, replacing the old one (whose files go). Refused
    /// with `BAD_USER_INPUT` on `file`, and nothing stored, unless it is a JPEG, PNG or
    /// WebP picture within the limits and nothing else.
    pub async fn upload_avatar(
        &self,
        viewer: &Viewer,
        file: UploadedFile,
        client: &ClientInfo,
    ) -> AppResult<Profile> {
        let name = &file.filename;
        if name.contains(['/', '\\', '\0']) || name.contains("..") {
            return Err(AppError::bad_field(
                "file",
                "has a path in its name; send the file alone",
            ));
        }
        let max = self.config.max_upload_bytes;
        if u64::try_from(file.bytes.len()).unwrap_or(u64::MAX) > max {
            return Err(AppError::bad_field(
                "file",
                format!("is larger than {max} bytes"),
            ));
        }
        let picture = self.decode(file.bytes).await?;
        let files = AvatarFiles::new(picture.kind);
        self.avatars
            .put(&files.full, picture.full)
            .await
            .map_err(AppError::internal)?;
        self.avatars
            .put(&files.thumb, picture.thumb)
            .await
            .map_err(AppError::internal)?;
        let stored = self.set_avatar(viewer, Some(files.url()), client).await;
        if stored.is_err() {
            // Not recorded: its files must not stay either.
            self.delete_avatar_files(Some(&files.url())).await;
        }
        stored
    }

    /// Removes the caller's avatar and its files.
    pub async fn remove_avatar(&self, viewer: &Viewer, client: &ClientInfo) -> AppResult<Profile> {
        self.set_avatar(viewer, None, client).await
    }

    /// Checks and re-encodes on a blocking thread, two pictures at a time at most.
    async fn decode(&self, bytes: Vec<u8>) -> AppResult<Picture> {
        let _turn = self
            .decoding
            .clone()
            .acquire_owned()
            .await
            .map_err(AppError::internal)?;
        let max_pixels = self.config.max_upload_pixels;
        tokio::task::spawn_blocking(move || picture::process(&bytes, max_pixels))
            .await
            .map_err(AppError::internal)?
            .map_err(|why| AppError::bad_field("file", why))
    }

    /// Writes the avatar URL (with its audit row), then removes the files of the old one.
    async fn set_avatar(
        &self,
        viewer: &Viewer,
        url: Option<String>,
        client: &ClientInfo,
    ) -> AppResult<Profile> {
        let me = viewer.user.id;
        let at = now();
        let mut db = self.db.get().await?;
        let (profile, old) = transaction!(&mut db, |conn| {
            let old = users::profiles_of(conn, &[me])
                .await?
                .into_iter()
                .find_map(|p| p.avatar_url);
            let changes = ProfileChanges {
                avatar_url: Some(url.clone()),
                ..ProfileChanges::default()
            };
            let profile = users::update_profile(conn, me, &changes, at)
                .await?
                .ok_or(AppError::NotFound("profile"))?;
            let done = if url.is_some() {
                action::AVATAR_UPLOADED
            } else {
                action::AVATAR_REMOVED
            };
            let event = Event::on(Some(me), done, ("user", me), client)
                .with_details(json!({ "replaced": old.is_some() }));
            audit::record(conn, event).await?;
            Ok::<_, AppError>((profile, old))
        })?;
        self.callers.evict(Some(me));
        if old != url {
            self.delete_avatar_files(old.as_deref()).await;
        }
        Ok(profile)
    }
}
