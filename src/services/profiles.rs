//! Profiles: what an account shows about its owner.

use chrono::Datelike as _;
use serde_json::json;

use super::accounts::Viewer;
use super::audit::{self, Event, action};
use super::{ClientInfo, Services};
use crate::db::types::{UserId, now};
use crate::db::users::{self, ProfileChanges, User};
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
    /// Updates the caller's own profile: only the fields given.
    pub async fn update_my_profile(
        &self,
        viewer: &Viewer,
        update: ProfileUpdate,
        client: &ClientInfo,
    ) -> AppResult<User> {
        let changes = update.validate().map_err(AppError::BadUserInput)?;
        self.apply_profile(viewer.user.id, viewer.user.id, &changes, client)
            .await
    }

    /// Writes validated profile changes of `target` and records them; returns the account.
    pub(super) async fn apply_profile(
        &self,
        actor: UserId,
        target: UserId,
        changes: &ProfileChanges,
        client: &ClientInfo,
    ) -> AppResult<User> {
        let at = now();
        let mut db = self.db.get().await?;
        transaction!(&mut db, |conn| {
            users::update_profile(conn, target, changes, at).await?;
            let event = Event {
                actor: Some(actor),
                action: action::PROFILE_UPDATED,
                target: Some(("user", target.to_string())),
                details: Some(json!({ "fields": changed_fields(changes) })),
                client,
            };
            audit::record(conn, event).await?;
            users::find_user(conn, target)
                .await?
                .ok_or(AppError::NotFound("user"))
        })
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
