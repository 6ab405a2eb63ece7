//! Profiles: what an account shows about its owner.

use std::collections::VecDeque;
use std::collections::hash_map::Entry;

use serde_json::json;
use tokio::sync::oneshot;

use super::shared::Viewer;
use super::shared::audit::{self, Event, action};
use super::shared::profile_update::{BATCH, Pending, ProfileUpdate, ProfileWrites};
use super::shared::{ClientInfo, Services};
use crate::db::clock::now;
use crate::db::transaction;
use crate::db::users::{self, Profile, ProfileChanges, User};
use crate::error::{AppError, AppResult};
use crate::ids::UserId;

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
            .map(|pending| {
                Event::on(
                    Some(user),
                    action::PROFILE_UPDATED,
                    ("user", user),
                    &pending.client,
                )
                .with_details(details.clone())
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
