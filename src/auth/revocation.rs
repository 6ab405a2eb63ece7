//! Instant revocation of access tokens. An access token is refused when its session was
//! revoked. Checking the database on every request would cost a round trip, so each
//! instance keeps the set of sessions revoked within the last access-token lifetime (older
//! revocations need no entry: their tokens have expired) and refreshes it from the database
//! every second. Revocations made by this instance enter the set at once; those made by
//! another instance are seen within one refresh interval.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use chrono::TimeDelta;

use super::callers::CallerCache;
use crate::db::clock::now;
use crate::db::{DbPool, sessions};
use crate::error::AppError;
use crate::ids::SessionId;

/// How often the set is reloaded: the bound on staleness across instances.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(1);

/// How long a locally added entry survives reloads that do not (yet) include it.
const LOCAL_GRACE: Duration = Duration::from_secs(10);

/// The sessions whose access tokens must be refused.
pub struct RevokedSessions {
    entries: RwLock<HashMap<SessionId, Instant>>,
    window: Duration,
    /// When the set was last read from the database.
    reloaded: std::sync::Mutex<Option<Instant>>,
}

impl RevokedSessions {
    /// A set covering revocations of the last `access_token_ttl`.
    pub fn new(access_token_ttl: Duration) -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            window: access_token_ttl,
            reloaded: std::sync::Mutex::new(None),
        }
    }

    /// How many sessions the set holds.
    pub fn len(&self) -> usize {
        self.entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Whether the set holds no session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How long ago the set was last read from the database (`None` before the first read).
    pub fn reload_age(&self) -> Option<Duration> {
        self.reloaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .map(|at| at.elapsed())
    }

    /// Whether `session` was revoked.
    pub fn contains(&self, session: SessionId) -> bool {
        self.entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains_key(&session)
    }

    /// Adds sessions this instance just revoked (after the revocation committed).
    pub fn insert(&self, revoked: impl IntoIterator<Item = SessionId>) {
        let at = Instant::now();
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.extend(revoked.into_iter().map(|id| (id, at)));
    }

    /// Reloads the set from the database.
    pub async fn reload(&self, db: &DbPool) -> Result<(), AppError> {
        // A minute of margin covers clock skew between instances and the database.
        let window = TimeDelta::from_std(self.window + Duration::from_secs(60))
            .map_err(AppError::internal)?;
        let ids = {
            let mut conn = db.get().await?;
            sessions::revoked_since(&mut conn.conn(), now() - window).await?
        };
        let at = Instant::now();
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Keep recent local entries a reload may have raced past; drop the rest.
        entries.retain(|_, added| at.duration_since(*added) < LOCAL_GRACE);
        entries.extend(ids.into_iter().map(|id| (id, at)));
        *self
            .reloaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(at);
        Ok(())
    }

    /// Reloads the set, and the recent account changes of `callers`, every
    /// [`REFRESH_INTERVAL`] until either is dropped.
    pub fn spawn_reloader(self: &Arc<Self>, callers: &Arc<CallerCache>, db: DbPool) {
        let weak: Weak<Self> = Arc::downgrade(self);
        let callers: Weak<CallerCache> = Arc::downgrade(callers);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(REFRESH_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let (Some(set), Some(callers)) = (weak.upgrade(), callers.upgrade()) else {
                    break;
                };
                if let Err(error) = set.reload(&db).await {
                    tracing::warn!(error = %error, "reloading revoked sessions failed");
                }
                if let Err(error) = callers.reload(&db).await {
                    tracing::warn!(error = %error, "reloading account changes failed");
                }
            }
        });
    }
}
