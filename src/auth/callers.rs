//! The accounts behind recent requests, kept in memory so a request's caller costs no SQL.
//!
//! Every request needs its caller's account and the permissions of its roles: two statements
//! when read from the database, more than the rest of a typical query. Each instance keeps
//! them here. What can change them (status, password, roles, a role's grants, erasure) is
//! recorded in `account_changes` in the same transaction; once a second every instance reads
//! the changes of the last minute and drops the entries they name (the same tick that
//! reloads revoked sessions), and the instance that made a change drops its entry at once.
//! So a deactivation or a role change applies within about a second everywhere.
//!
//! The roles each account holds are kept by the same rules, for the accounts of recent pages
//! (`users { roles }`): a page then reads the accounts and nothing else. A grant, a revocation
//! and a role's deletion are changes the log records, so a page shows them within the same
//! second.
//!
//! Safety nets: when the reload has not succeeded for [`STALE_AFTER`] (the database is
//! unreachable, say), the cache answers nothing and every request reads the database; an
//! entry older than [`MAX_AGE`] is read again (this bounds how stale a field no change
//! records, such as the last login time seen by another instance, can be); and a load that
//! raced with a change is not cached (the generation check in [`CallerCache::put`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use chrono::TimeDelta;

use crate::db::clock::now;
use crate::db::users::User;
use crate::db::{DbPool, account_changes};
use crate::error::AppError;
use crate::ids::{AccountChangeId, RoleId, UserId};

/// How far back each reload reads changes: covers commit delays and clock skew between
/// instances (as for revocations).
const WINDOW: Duration = Duration::from_secs(60);

/// Without a successful reload for this long, the cache is not trusted.
pub const STALE_AFTER: Duration = Duration::from_secs(3);

/// Entries are read again after this long, whatever the change log says.
pub const MAX_AGE: Duration = Duration::from_secs(30);

/// Most accounts kept; beyond this the cache starts over (a crude bound, rarely reached).
const CAPACITY: usize = 100_000;

/// Changes older than this are deleted from the table now and then.
const KEEP_ROWS: Duration = Duration::from_secs(600);

/// An account as its requests see it: the row and the permissions of its roles.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The account row.
    pub user: User,
    /// The permissions its roles grant.
    pub permissions: Arc<BTreeSet<String>>,
    /// A role of the account requires a second factor it has not turned on.
    pub must_enrol: bool,
}

struct Entry {
    caller: Caller,
    loaded: Instant,
}

/// The roles one account holds, by id.
struct Held {
    roles: Box<[RoleId]>,
    loaded: Instant,
}

#[derive(Default)]
struct Entries {
    by_user: HashMap<UserId, Entry>,
    roles_by_user: HashMap<UserId, Held>,
    /// Bumped by every eviction: a load that started before it is not cached.
    generation: u64,
}

#[derive(Default)]
struct Log {
    /// The changes already applied, with when they were first seen.
    seen: HashMap<AccountChangeId, Instant>,
    /// When the last reload succeeded.
    reloaded: Option<Instant>,
    reloads: u64,
}

/// The in-memory caller cache of one instance.
#[derive(Default)]
pub struct CallerCache {
    entries: RwLock<Entries>,
    log: Mutex<Log>,
}

impl CallerCache {
    /// Whether the entries may be used: the change log was read recently.
    fn trusted(&self) -> bool {
        let reloaded = self
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .reloaded;
        reloaded.is_some_and(|at| at.elapsed() <= STALE_AFTER)
    }

    /// The cached account `user`, if the cache is fresh and holds a recent copy.
    pub fn get(&self, user: UserId) -> Option<Caller> {
        if !self.trusted() {
            return None;
        }
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        entries
            .by_user
            .get(&user)
            .filter(|e| e.loaded.elapsed() < MAX_AGE)
            .map(|e| e.caller.clone())
    }

    /// The roles each of `users` holds, as (account, role) pairs, if the cache is fresh and
    /// holds a recent copy for every one of them.
    pub fn roles_of(&self, users: &[UserId]) -> Option<Vec<(UserId, RoleId)>> {
        if !self.trusted() {
            return None;
        }
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let mut pairs = Vec::with_capacity(users.len() * 2);
        for user in users {
            let held = entries
                .roles_by_user
                .get(user)
                .filter(|h| h.loaded.elapsed() < MAX_AGE)?;
            pairs.extend(held.roles.iter().map(|role| (*user, *role)));
        }
        Some(pairs)
    }

    /// The generation to pass to [`put`](Self::put): read it before loading from the database.
    pub fn generation(&self) -> u64 {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .generation
    }

    /// Caches `caller`, loaded after [`generation`](Self::generation) returned `generation`;
    /// does nothing if an eviction happened since (the load may predate the change).
    pub fn put(&self, caller: Caller, generation: u64) {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if entries.generation != generation {
            return;
        }
        if entries.by_user.len() >= CAPACITY {
            entries.by_user.clear();
        }
        let loaded = Instant::now();
        entries
            .by_user
            .insert(caller.user.id, Entry { caller, loaded });
    }

    /// Caches which roles each of `users` holds, `pairs` as read from the database after
    /// [`generation`](Self::generation) returned `generation` (an account missing from them
    /// holds none); does nothing if an eviction happened since.
    pub fn put_roles(&self, users: &[UserId], pairs: &[(UserId, RoleId)], generation: u64) {
        let mut held: HashMap<UserId, Vec<RoleId>> =
            users.iter().map(|user| (*user, Vec::new())).collect();
        for (user, role) in pairs {
            held.entry(*user).or_default().push(*role);
        }
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if entries.generation != generation {
            return;
        }
        if entries.roles_by_user.len() + held.len() > CAPACITY {
            entries.roles_by_user.clear();
        }
        let loaded = Instant::now();
        for (user, roles) in held {
            let roles = roles.into_boxed_slice();
            entries.roles_by_user.insert(user, Held { roles, loaded });
        }
    }

    /// Drops what is kept of `user` (its account and its roles), or everything when `None`.
    pub fn evict(&self, user: Option<UserId>) {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        entries.generation += 1;
        match user {
            Some(id) => {
                entries.by_user.remove(&id);
                entries.roles_by_user.remove(&id);
            }
            None => {
                entries.by_user.clear();
                entries.roles_by_user.clear();
            }
        }
    }

    /// Reads the recent changes and drops the entries they name; now and then deletes old
    /// rows of the change log.
    pub async fn reload(&self, db: &DbPool) -> Result<(), AppError> {
        let window = TimeDelta::from_std(WINDOW).map_err(AppError::internal)?;
        let prune = {
            let log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
            log.reloads.is_multiple_of(60)
        };
        let changes = {
            let mut conn = db.get().await?;
            let changes = account_changes::since(&mut conn.conn(), now() - window).await?;
            if prune {
                let keep = TimeDelta::from_std(KEEP_ROWS).map_err(AppError::internal)?;
                account_changes::prune(&mut conn.conn(), now() - keep).await?;
            }
            changes
        };
        let at = Instant::now();
        let new: Vec<Option<UserId>> = {
            let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
            let new = changes
                .into_iter()
                .filter(|(id, _)| log.seen.insert(*id, at).is_none())
                .map(|(_, user)| user)
                .collect();
            // A change is re-read for a minute; remembering it a little longer is enough.
            log.seen
                .retain(|_, first| at.duration_since(*first) < WINDOW + WINDOW);
            new
        };
        if new.contains(&None) {
            self.evict(None);
        } else {
            for user in new {
                self.evict(user);
            }
        }
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        log.reloaded = Some(at);
        log.reloads += 1;
        Ok(())
    }
}
