//! A profile update as a client sends it, its validation, and the queues that combine
//! concurrent updates of one profile.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use tokio::sync::oneshot;

use super::ClientInfo;
use crate::db::users::{Profile, ProfileChanges};
use crate::domain::{Description, DisplayName, YearOfBirth};
use crate::error::AppResult;
use crate::error::FieldError;
use crate::ids::UserId;

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
        let display_name = parsed(self.display_name, &mut errors, |name| {
            DisplayName::parse("displayName", &name).map(DisplayName::into_inner)
        });
        let year_of_birth = parsed(self.year_of_birth, &mut errors, |year| {
            YearOfBirth::parse("yearOfBirth", year).map(YearOfBirth::get)
        });
        let description = parsed(self.description, &mut errors, |text| {
            Description::parse("description", text).map(Description::into_inner)
        });
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

/// The column change for one field: `None` keeps it, `Some(None)` clears it, `Some(Some(v))`
/// sets what `parse` made of the value; a value `parse` refuses adds to `errors`.
fn parsed<T, U>(
    change: Change<T>,
    errors: &mut Vec<FieldError>,
    parse: impl FnOnce(T) -> Result<U, FieldError>,
) -> Option<Option<U>> {
    match change {
        Change::Keep => None,
        Change::Clear => Some(None),
        Change::Set(value) => match parse(value) {
            Ok(value) => Some(Some(value)),
            Err(error) => {
                errors.push(error);
                None
            }
        },
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
