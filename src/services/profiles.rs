//! Profiles: what an account shows about its owner.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use chrono::Datelike as _;
use serde_json::json;
use tokio::sync::oneshot;

use super::accounts::Viewer;
use super::audit::{self, Event, action};
use super::{ClientInfo, Services};
use crate::db::types::{UserId, now};
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
const BATCH: usize = 64;

/// One queued update and where its answer goes.
struct Pending {
    changes: ProfileChanges,
    client: ClientInfo,
    reply: oneshot::Sender<AppResult<Profile>>,
}

impl ProfileWrites {
    fn queues(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, VecDeque<Pending>>> {
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
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
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            changes,
            client: client.clone(),
            reply,
        };
        let lead = match self.profile_writes.queues().entry(me) {
            Entry::Occupied(mut queue) => {
                queue.get_mut().push_back(pending);
                false
            }
            Entry::Vacant(slot) => {
                slot.insert(VecDeque::from([pending]));
                true
            }
        };
        if lead {
            // A task of its own: the writes go on even if this request is cancelled.
            tokio::spawn(self.clone().write_profiles(me));
        }
        let profile = answer
            .await
            .map_err(|_| AppError::internal(anyhow::anyhow!("the profile writer stopped")))??;
        // The profile is not part of the account row: the caller's copy is still current.
        Ok((viewer.user.clone(), profile))
    }

    /// Writes the queued updates of `user`'s profile, batch by batch, until none is left.
    async fn write_profiles(self, user: UserId) {
        let _unstick = Unstick(&self.profile_writes, user);
        loop {
            let batch: Vec<Pending> = {
                let mut queues = self.profile_writes.queues();
                let Some(queue) = queues.get_mut(&user) else {
                    return;
                };
                let Some(first) = queue.front() else {
                    queues.remove(&user);
                    return;
                };
                let fields = changed_fields(&first.changes);
                let same = queue
                    .iter()
                    .take(BATCH)
                    .take_while(|p| changed_fields(&p.changes) == fields)
                    .count();
                queue.drain(..same).collect()
            };
            match self.write_profile_batch(user, &batch).await {
                Ok(written) => {
                    for pending in batch {
                        let mine = as_left_by(&written, &pending.changes);
                        let _ = pending.reply.send(Ok(mine));
                    }
                }
                Err(error) => {
                    for pending in batch {
                        let _ = pending.reply.send(Err(error.again()));
                    }
                }
            }
        }
    }

    /// One transaction for a batch; returns the profile as the last update left it.
    async fn write_profile_batch(&self, user: UserId, batch: &[Pending]) -> AppResult<Profile> {
        let Some(last) = batch.last() else {
            return Err(AppError::internal(anyhow::anyhow!("an empty batch")));
        };
        let details = json!({ "fields": changed_fields(&last.changes) });
        let events: Vec<Event<'_>> = batch
            .iter()
            .map(|pending| Event {
                actor: Some(user),
                action: action::PROFILE_UPDATED,
                target: Some(("user", user.to_string())),
                details: Some(details.clone()),
                client: &pending.client,
            })
            .collect();
        let at = now();
        let mut db = self.db.get().await?;
        transaction!(&mut db, |conn| {
            // The audit rows go first: the profile's row lock is then held only from the
            // UPDATE to the COMMIT, two round trips.
            audit::record_all(conn, &events).await?;
            users::update_profile(conn, user, &last.changes, at)
                .await?
                .ok_or(AppError::NotFound("profile"))
        })
    }
}

/// Should a writer panic, its queue goes with it (its waiters get an error) so the next
/// update of the profile starts a new writer instead of waiting for ever.
struct Unstick<'a>(&'a ProfileWrites, UserId);

impl Drop for Unstick<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.queues().remove(&self.1);
        }
    }
}

/// The profile as `changes` left it, given `written`, the state after the whole batch: the
/// updates of a batch touch the same fields, so only those differ.
fn as_left_by(written: &Profile, changes: &ProfileChanges) -> Profile {
    let mut profile = written.clone();
    if let Some(name) = &changes.display_name {
        profile.display_name.clone_from(name);
    }
    if let Some(year) = changes.year_of_birth {
        profile.year_of_birth = year;
    }
    if let Some(description) = &changes.description {
        profile.description.clone_from(description);
    }
    if let Some(avatar) = &changes.avatar_url {
        profile.avatar_url.clone_from(avatar);
    }
    profile
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
