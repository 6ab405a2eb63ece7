//! The login lockout: password checks per email, counted so that parallel guesses cannot get
//! past the threshold, while an owner's own correct logins never lock the account.
//!
//! A check is *reserved* before any hashing — atomically, under the counter's row lock — and
//! settled after: a check under way counts towards the threshold, but only a failed one is
//! a failure. When failures plus checks under way reach the threshold, further attempts
//! get `RATE_LIMITED` with a retry in a second instead of a password check, and only
//! failures that happened lock the email. The whole check runs on a task of its own, so a
//! client that hangs up cannot leave its reservation counted; a reservation left by a
//! process that died counts no longer once it is older than twice the request timeout.
//!
//! Second factors' codes are counted by the same rules, per account (an [`Attempt`] keyed
//! `mfa:<account id>`, on a counter apart from the password's).
//!
//! No database connection is held while a password is hashed or waits for a hashing slot.
//!
//! On each instance, checks of one email beyond the threshold first wait their turn (a
//! second at most, holding nothing) in a [`LoginGate`], instead of being refused at once: a
//! client that retries without pause would otherwise spin on refusals and take the CPU the
//! hashing needs. Across instances the database reservation still bounds them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::NaiveDateTime;
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::audit::{self, Event, action};
use super::{ClientInfo, Services, Viewer, delta};
use crate::db::clock::now;
use crate::db::login_failures::{self, LoginFailures};
use crate::db::transaction;
use crate::domain::{bounded, bounds};
use crate::error::{AppError, AppResult};
use crate::ids::UserId;

/// The answer to a refused login, whatever the reason: unknown email, wrong password or an
/// account that may not sign in.
pub const LOGIN_REFUSED: AppError = AppError::Unauthenticated("invalid email or password");

/// Seconds after which a client refused for checks under way may try again.
const IN_FLIGHT_RETRY_SECONDS: u64 = 1;

/// An attempt at a secret (a password, or a second factor's code) counted against one key.
pub struct Attempt {
    /// What the attempt counts against: the normalised email for passwords, the account for
    /// codes.
    pub key: String,
    /// The account, if the key names one.
    pub user: Option<UserId>,
    /// Whether the account may sign in at all (a correct secret still fails otherwise).
    pub allowed: bool,
    /// Where the attempt came from, for the audit trail.
    pub client: ClientInfo,
    /// The audit action of a failure.
    pub failure: &'static str,
}

/// A password to check as an attempt on one email.
pub struct Check {
    /// What it counts against.
    pub attempt: Attempt,
    /// The account's password hash, if it has one.
    pub hash: Option<String>,
    /// The password as typed.
    pub password: String,
}

/// Per email, the checks under way on this instance: at most the lockout threshold at once.
#[derive(Default)]
pub struct LoginGate {
    keys: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// A turn through the [`LoginGate`]; the email's entry goes when no one holds or waits for one.
struct Turn<'a> {
    gate: &'a LoginGate,
    key: String,
    semaphore: Arc<Semaphore>,
    permit: Option<OwnedSemaphorePermit>,
}

impl LoginGate {
    fn keys(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Semaphore>>> {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits up to `wait` for one of `permits` turns at checking `key`.
    async fn enter(&self, key: &str, permits: usize, wait: Duration) -> Option<Turn<'_>> {
        let semaphore = self
            .keys()
            .entry(key.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(permits)))
            .clone();
        let mut turn = Turn {
            gate: self,
            key: key.to_owned(),
            semaphore: semaphore.clone(),
            permit: None,
        };
        let permit = tokio::time::timeout(wait, semaphore.acquire_owned()).await;
        turn.permit = Some(permit.ok()?.ok()?);
        Some(turn)
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        drop(self.permit.take());
        let mut keys = self.gate.keys();
        // Held by the map and by this turn only: nobody else holds or waits.
        let idle = keys
            .get(&self.key)
            .is_some_and(|s| Arc::ptr_eq(s, &self.semaphore) && Arc::strong_count(s) == 2);
        if idle {
            keys.remove(&self.key);
        }
    }
}

impl Services {
    /// Checks a password as an attempt on `check.key`: `Ok` when it matched an account that
    /// may sign in; `LOGIN_REFUSED`, `ACCOUNT_LOCKED` or `RATE_LIMITED` otherwise.
    pub(crate) async fn check_password(&self, check: Check) -> AppResult<()> {
        let passwords = self.passwords.clone();
        let Check {
            attempt,
            hash,
            password,
        } = check;
        let verdict = async move {
            let matches = passwords.verify(&password, hash.as_deref()).await?;
            Ok(matches.then_some(()))
        };
        self.counted(attempt, verdict).await
    }

    /// Runs `verdict` (`Some` when the secret matched) as an attempt on `attempt.key`, under
    /// the threshold: what it found, or `LOGIN_REFUSED`, `ACCOUNT_LOCKED`, `RATE_LIMITED`.
    pub(crate) async fn counted<T: Send + 'static>(
        &self,
        attempt: Attempt,
        verdict: impl Future<Output = AppResult<Option<T>>> + Send + 'static,
    ) -> AppResult<T> {
        let services = self.clone();
        tokio::spawn(async move { services.run_check(attempt, verdict).await })
            .await
            .map_err(AppError::internal)?
    }

    async fn run_check<T>(
        &self,
        attempt: Attempt,
        verdict: impl Future<Output = AppResult<Option<T>>>,
    ) -> AppResult<T> {
        let permits = usize::try_from(self.config.lockout_threshold)
            .unwrap_or(1)
            .max(1);
        let wait = Duration::from_secs(IN_FLIGHT_RETRY_SECONDS);
        let Some(_turn) = self.login_gate.enter(&attempt.key, permits, wait).await else {
            return Err(AppError::RateLimited {
                retry_after: IN_FLIGHT_RETRY_SECONDS,
                limit: "login.checks_in_flight",
            });
        };
        self.reserve(&attempt.key).await?;
        match verdict.await {
            Ok(Some(found)) if attempt.allowed => {
                self.settle(&attempt, Some(true)).await?;
                Ok(found)
            }
            Ok(_) => Err(self
                .settle(&attempt, Some(false))
                .await
                .err()
                .unwrap_or(LOGIN_REFUSED)),
            Err(error) => {
                // No verdict: the reservation ends without counting as a failure.
                self.settle(&attempt, None).await?;
                Err(error)
            }
        }
    }

    /// Reserves a check of `key`, or says why there is none to have.
    async fn reserve(&self, key: &str) -> AppResult<()> {
        let at = now();
        let threshold = i32::try_from(self.config.lockout_threshold).unwrap_or(i32::MAX);
        let stale = at - delta(self.config.request_timeout * 2)?;
        let mut db = self.db.get().await?;
        // One statement for a check that goes ahead (a login flood's every success pays
        // it); a refusal reads the counter again to say why.
        if login_failures::reserve(&mut db.conn(), key, at, stale, threshold)
            .await?
            .is_some()
        {
            return Ok(());
        }
        let row = login_failures::find(&mut db.conn(), key).await?;
        Err(row
            .and_then(|row| refusal(&row, at, stale, threshold))
            .unwrap_or(AppError::RateLimited {
                retry_after: IN_FLIGHT_RETRY_SECONDS,
                limit: "login.checks_in_flight",
            }))
    }

    /// Ends a reserved check: `Some(true)` passed, `Some(false)` failed (counted, audited,
    /// and locking the email when it was the last allowed), `None` no verdict (the caller
    /// reports why there was none).
    async fn settle(&self, check: &Attempt, passed: Option<bool>) -> AppResult<()> {
        let mut db = self.db.get().await?;
        if passed != Some(false) {
            // Nothing to read first: one statement (a login flood's every success pays it).
            login_failures::release(&mut db.conn(), &check.key, passed == Some(true)).await?;
            return Ok(());
        }
        let at = now();
        let threshold = i32::try_from(self.config.lockout_threshold).unwrap_or(i32::MAX);
        let locked = transaction!(&mut db, |conn| {
            let row = login_failures::lock_row(conn, &check.key, at).await?;
            let mut next = row.clone();
            next.in_flight = (row.in_flight - 1).max(0);
            next.failures = row.failures.saturating_add(1);
            next.last_failure_at = at;
            let event = Event {
                actor: None,
                action: check.failure,
                target: check.user.map(|id| ("user", id.to_string())),
                details: Some(json!({ "attempt": next.failures })),
                client: &check.client,
            };
            audit::record(conn, event).await?;
            let mut locked = None;
            if next.failures >= threshold {
                locked = Some(self.lock(conn, check, &row, &mut next, at).await?);
            }
            login_failures::save(conn, &check.key, &next).await?;
            Ok::<_, AppError>(locked)
        })?;
        match locked {
            Some(retry_after) => Err(AppError::AccountLocked { retry_after }),
            None => Err(LOGIN_REFUSED),
        }
    }

    /// Locks the email of `check` for the next lock's length; returns it in seconds.
    async fn lock(
        &self,
        conn: &mut crate::db::Conn<'_>,
        check: &Attempt,
        row: &LoginFailures,
        next: &mut LoginFailures,
        at: NaiveDateTime,
    ) -> AppResult<u64> {
        let locks = usize::try_from(row.lock_count).unwrap_or(0);
        let duration = self.config.lockout_durations.nth_or_last(locks);
        next.locked_until = Some(at + delta(duration)?);
        metrics::counter!(crate::instruments::LOCKOUTS).increment(1);
        next.failures = 0;
        next.lock_count = row.lock_count.saturating_add(1);
        let event = Event {
            actor: None,
            action: action::ACCOUNT_LOCKED,
            target: check.user.map(|id| ("user", id.to_string())),
            details: Some(json!({ "seconds": duration.as_secs(), "lock": next.lock_count })),
            client: &check.client,
        };
        audit::record(conn, event).await?;
        tracing::warn!(
            lock = next.lock_count,
            seconds = duration.as_secs(),
            "login locked"
        );
        Ok(duration.as_secs())
    }
}

/// Why no check of `row`'s email may begin at `at`, if none may: it is locked, or failures
/// and live checks under way fill the threshold.
fn refusal(
    row: &LoginFailures,
    at: NaiveDateTime,
    stale: NaiveDateTime,
    threshold: i32,
) -> Option<AppError> {
    match row.locked_until {
        Some(until) if until > at => {
            return Some(AppError::AccountLocked {
                retry_after: seconds_until(at, until),
            });
        }
        Some(_) => return None,
        None => {}
    }
    let live = if row.in_flight_at.is_some_and(|began| began >= stale) {
        row.in_flight
    } else {
        0
    };
    (row.failures.saturating_add(live) >= threshold).then_some(AppError::RateLimited {
        retry_after: IN_FLIGHT_RETRY_SECONDS,
        limit: "login.checks_in_flight",
    })
}

fn seconds_until(now: NaiveDateTime, until: NaiveDateTime) -> u64 {
    u64::try_from((until - now).num_seconds().max(1)).unwrap_or(1)
}

impl Services {
    /// Checks the caller's password before a sensitive change. Counted like a login: a
    /// stolen access token cannot be used to guess the password either.
    pub(crate) async fn confirm_password(
        &self,
        viewer: &Viewer,
        field: &str,
        password: &str,
        client: &ClientInfo,
    ) -> AppResult<()> {
        bounded(field, password, bounds::PASSWORD)?;
        // From the table, not the cached caller: a change on another instance counts now.
        let hash = {
            let mut db = self.db.get().await?;
            crate::db::users::password_hash_of(&mut db.conn(), viewer.user.id).await?
        };
        let check = Check {
            attempt: Attempt {
                key: viewer.user.email.clone(),
                user: Some(viewer.user.id),
                allowed: true,
                client: client.clone(),
                failure: action::LOGIN_FAILED,
            },
            hash,
            password: password.to_owned(),
        };
        match self.check_password(check).await {
            Err(AppError::Unauthenticated(_)) => {
                Err(AppError::bad_field(field, "is not your current password"))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_gate_lets_permits_through_makes_others_wait_and_forgets_idle_emails() {
        let gate = LoginGate::default();
        let wait = Duration::from_millis(50);
        let first = gate.enter("a@example.com", 2, wait).await.expect("a turn");
        let second = gate.enter("a@example.com", 2, wait).await.expect("a turn");
        assert!(
            gate.enter("a@example.com", 2, wait).await.is_none(),
            "a third waits, then gives up"
        );
        // Another email has turns of its own.
        assert!(gate.enter("b@example.com", 2, wait).await.is_some());
        drop(first);
        let third = gate.enter("a@example.com", 2, wait).await;
        assert!(third.is_some(), "a finished check frees a turn");
        drop((second, third));
        assert!(gate.keys().is_empty(), "no entry outlives its last turn");
    }
}
