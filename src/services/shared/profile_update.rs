//! A profile update as a client sends it, its validation, and the queues that combine
//! concurrent updates of one profile.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use chrono::Datelike as _;
use tokio::sync::oneshot;

use super::ClientInfo;
use crate::db::types::UserId;
use crate::db::users::{Profile, ProfileChanges};
use crate::domain::{DisplayName, bounded, bounds};
use crate::error::AppResult;
use crate::error::FieldError;

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

/// Concurrent updates of one profile, combined: while one transaction writes the row, the
/// updates that arrive queue up, and the next transaction writes them all at once.
///
/// A hot row serialises its writers on the row lock, one commit (one WAL flush) each: on
/// this kind of machine about 2,000 a second, whoever sends them. Combined, the queued
/// updates of a row cost one transaction: their audit rows in one INSERT, the UPDATE with
/// the last one's values, one COMMIT. Each request is answered only after that commit, with
/// the profile as its own update left it (a later update in the same batch overwrote it,
/// as it would have a moment later). Only updates of the same fields are combined, so that
/// state is exact; a different set of fields starts the next batch. Per instance: other
/// instances' writers still meet on the row lock.
#[derive(Default)]
pub struct ProfileWrites {
    queues: Mutex<HashMap<UserId, VecDeque<Pending>>>,
}

/// Most updates written by one transaction.
pub(crate) const BATCH: usize = 64;

/// One queued update and where its answer goes.
pub(crate) struct Pending {
    pub(crate) changes: ProfileChanges,
    pub(crate) client: ClientInfo,
    pub(crate) reply: oneshot::Sender<AppResult<Profile>>,
}

impl ProfileWrites {
    pub(crate) fn queues(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, VecDeque<Pending>>> {
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
