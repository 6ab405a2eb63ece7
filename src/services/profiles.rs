//! Profiles: what an account shows about its owner.

use chrono::Datelike as _;
use serde_json::json;

use super::accounts::Viewer;
use super::audit::{self, Event, action};
use super::{ClientInfo, Services};
use crate::db::types::now;
use crate::db::users::{self, Profile, ProfileChanges, User};
use crate::domain::{DisplayName, bounded, bounds};
use crate::error::{AppError, AppResult, FieldError};
use crate::transaction;

/// A field of a profile update: left alone, cleared, or set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<T> {
    /// Not given: keep the value.
    Keep,
    /// Given as null: clear the value.
    Clear,
    /// Given: set it.
    Set(T),
}

/// A profile update as the client sent it, before validation.
#[derive(Debug, Clone)]
pub struct ProfileUpdate {
    /// Display name.
    pub display_name: Change<String>,
    /// Year of birth.
    pub year_of_birth: Change<i32>,
    /// Description.
    pub description: Change<String>,
}

impl ProfileUpdate {
    /// Checks every field; `BAD_USER_INPUT` lists each invalid one.
    pub fn validate(self) -> Result<ProfileChanges, Vec<FieldError>> {
        let mut errors = Vec::new();
        let display_name = match self.display_name {
            Change::Keep => None,
            Change::Clear => Some(None),
            Change::Set(name) => match DisplayName::parse("displayName", &name) {
                Ok(name) => Some(Some(name.into_inner())),
                Err(e) => {
                    errors.push(e);
                    None
                }
            },
        };
        let this_year = chrono::Utc::now().year();
        let year_of_birth = match self.year_of_birth {
            Change::Keep => None,
            Change::Clear => Some(None),
            Change::Set(year) if (1900..=this_year).contains(&year) => Some(Some(year)),
            Change::Set(_) => {
                errors.push(FieldError::new(
                    "yearOfBirth",
                    format!("must be between 1900 and {this_year}"),
                ));
                None
            }
        };
        let description = match self.description {
            Change::Keep => None,
            Change::Clear => Some(None),
            Change::Set(text) => match bounded("description", &text, bounds::DESCRIPTION) {
                Ok(_) => Some(Some(text)),
                Err(error) => {
                    errors.push(error);
                    None
                }
            },
        };
        if errors.is_empty() {
            Ok(ProfileChanges {
                display_name,
                year_of_birth,
                description,
                avatar_url: None,
            })
        } else {
            Err(errors)
        }
    }
}

impl Services {
    /// Updates the caller's own profile: only the fields given. Returns the account and
    /// the profile as written.
    pub async fn update_my_profile(
        &self,
        viewer: &Viewer,
        update: ProfileUpdate,
        client: &ClientInfo,
    ) -> AppResult<(User, Profile)> {
        let changes = update.validate().map_err(AppError::BadUserInput)?;
        let me = viewer.user.id;
        let at = now();
        let mut db = self.db.get().await?;
        let profile = transaction!(&mut db, |conn| {
            // The audit row goes first: the profile's row lock is then held only from the
            // UPDATE to the COMMIT, two round trips, however hot the row.
            let event = Event {
                actor: Some(me),
                action: action::PROFILE_UPDATED,
                target: Some(("user", me.to_string())),
                details: Some(json!({ "fields": changed_fields(&changes) })),
                client,
            };
            audit::record(conn, event).await?;
            users::update_profile(conn, me, &changes, at)
                .await?
                .ok_or(AppError::NotFound("profile"))
        })?;
        // The profile is not part of the account row: the caller's copy is still current.
        Ok((viewer.user.clone(), profile))
    }
}

/// The names of the fields a change touches, for the audit trail (values may be personal).
fn changed_fields(changes: &ProfileChanges) -> Vec<&'static str> {
    [
        ("displayName", changes.display_name.is_some()),
        ("yearOfBirth", changes.year_of_birth.is_some()),
        ("description", changes.description.is_some()),
        ("avatarUrl", changes.avatar_url.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, changed)| changed.then_some(name))
    .collect()
}
