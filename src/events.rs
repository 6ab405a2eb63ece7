//! Live events on this instance: the bus receives the events every instance announced
//! (`db::live_events`: on PostgreSQL through a connection listening on the channel, on
//! SQLite from the table, read every [`SQLITE_POLL`]) and hands each to this instance's
//! subscribers.
//!
//! The feed starts with the first subscriber and runs as long as the bus lives (on
//! PostgreSQL holding the lease that makes changes announce themselves). Receiving
//! an event also applies it to this instance's caches at once (a revoked session is refused,
//! a changed account read again), ahead of their once-a-second reload.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use chrono::TimeDelta;
use tokio::sync::{broadcast, watch};

use crate::auth::callers::CallerCache;
use crate::auth::revocation::RevokedSessions;
use crate::config::DatabaseUrl;
use crate::db::clock::now;
use crate::db::live_events::{self, Event};
use crate::db::{DbPool, audit, connect};
use crate::error::AppError;

/// Events a slow subscriber may fall behind by before it misses some.
const CAPACITY: usize = 1024;

/// How often SQLite's table is read while the feed runs.
const SQLITE_POLL: Duration = Duration::from_millis(100);

/// Rows read at once from SQLite's table.
const SQLITE_BATCH: i64 = 500;

/// SQLite rows older than this are deleted.
const SQLITE_KEEP: Duration = Duration::from_secs(60);

/// How often the listening connection renews its lease (a statement that must be answered,
/// so also the check that the connection works).
const LISTEN_CHECK: Duration = Duration::from_secs(10);

/// How long the first subscriber waits once the lease is taken: a change whose statement
/// ran just before it may not announce itself, and commits a moment later.
const LEASE_GRACE: Duration = Duration::from_millis(300);

/// How long a new subscriber waits for the feed to be up.
const READY_WAIT: Duration = Duration::from_secs(5);

/// Where the events come from.
enum Source {
    /// A PostgreSQL connection listening on the channel: the URL and the answer timeout.
    Postgres(String, Duration),
    /// The `live_events` table of this SQLite file.
    Sqlite,
}

/// One instance's bus.
pub struct Bus {
    sender: broadcast::Sender<Arc<Event>>,
    started: AtomicBool,
    /// Whether the feed is receiving (PostgreSQL: listening; SQLite: past the last row).
    live: watch::Sender<bool>,
    source: Source,
    db: DbPool,
    revoked: Arc<RevokedSessions>,
    callers: Arc<CallerCache>,
}

impl Bus {
    /// The bus of the database at `url` (`db` its pool; `timeout` bounds each wait for
    /// PostgreSQL), applying what it hears to `revoked` and `callers`.
    pub fn new(
        url: &DatabaseUrl,
        timeout: Duration,
        db: DbPool,
        revoked: &Arc<RevokedSessions>,
        callers: &Arc<CallerCache>,
    ) -> Arc<Self> {
        let source = match url {
            DatabaseUrl::Postgres(url) => Source::Postgres(url.clone(), timeout),
            DatabaseUrl::Sqlite(_) => Source::Sqlite,
        };
        Arc::new(Self {
            sender: broadcast::channel(CAPACITY).0,
            started: AtomicBool::new(false),
            live: watch::channel(false).0,
            source,
            db,
            revoked: revoked.clone(),
            callers: callers.clone(),
        })
    }

    /// Every event from now on; starts the feed if needed and waits until it receives, so no
    /// event committed after this returns is missed. `SERVICE_UNAVAILABLE` when the feed
    /// cannot start.
    pub async fn subscribe(self: &Arc<Self>) -> Result<broadcast::Receiver<Arc<Event>>, AppError> {
        let receiver = self.sender.subscribe();
        if !self.started.swap(true, Ordering::AcqRel) {
            let bus = Arc::downgrade(self);
            match &self.source {
                Source::Postgres(url, timeout) => {
                    tokio::spawn(listen(bus, url.clone(), *timeout));
                }
                Source::Sqlite => {
                    tokio::spawn(poll(bus));
                }
            }
        }
        let mut live = self.live.subscribe();
        match tokio::time::timeout(READY_WAIT, live.wait_for(|live| *live)).await {
            Ok(Ok(_)) => Ok(receiver),
            _ => Err(AppError::ServiceUnavailable(
                crate::error::Outcome::NotApplied,
                anyhow::anyhow!("the live event feed is not up"),
            )),
        }
    }

    /// How many subscriptions listen on this instance.
    pub fn subscribers(&self) -> usize {
        self.sender.receiver_count()
    }

    /// SQLite: deletes rows older than [`SQLITE_KEEP`] every minute, whether or not anyone
    /// here subscribes (every instance writes them).
    pub fn spawn_pruner(self: &Arc<Self>) {
        if !matches!(self.source, Source::Sqlite) {
            return;
        }
        let bus = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(SQLITE_KEEP);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(bus) = bus.upgrade() else {
                    return;
                };
                if let Err(error) = prune(&bus).await {
                    tracing::warn!(%error, "deleting old live events failed");
                }
            }
        });
    }

    /// Applies `event` to this instance's caches and hands it to the subscribers.
    fn deliver(&self, event: Event) {
        match &event {
            Event::Revoked { user, sessions } => {
                self.revoked
                    .insert(sessions.iter().map(|session| session.id));
                self.callers.evict(Some(*user));
            }
            Event::AccountChanged { user } => self.callers.evict(*user),
            Event::Audit(_) | Event::AuditRef { .. } => {}
        }
        // No subscriber is not an error: the caches were the point.
        let _ = self.sender.send(Arc::new(event));
    }

    /// Decodes a payload, loading an audit event that was sent by reference.
    async fn decode(&self, payload: &str) -> Option<Event> {
        let event: Event = match serde_json::from_str(payload) {
            Ok(event) => event,
            Err(error) => {
                tracing::warn!(%error, "an undecodable live event was skipped");
                return None;
            }
        };
        let Event::AuditRef { id } = event else {
            return Some(event);
        };
        let loaded = async {
            let mut db = self.db.get().await?;
            Ok::<_, AppError>(audit::find(&mut db.conn(), id).await?)
        };
        match loaded.await {
            Ok(row) => row.map(Event::Audit),
            Err(error) => {
                tracing::warn!(%error, "a live audit event could not be read");
                None
            }
        }
    }
}

/// PostgreSQL: listens until the bus is dropped, connecting again after failures.
async fn listen(bus: Weak<Bus>, url: String, timeout: Duration) {
    let instance = uuid::Uuid::now_v7().to_string();
    let mut backoff = Duration::from_millis(250);
    loop {
        match connect::listen(&url, timeout, live_events::CHANNEL).await {
            Ok((client, payloads)) => {
                if relay(&bus, &client, payloads, &instance).await.is_break() {
                    return;
                }
                backoff = Duration::from_millis(250);
            }
            Err(error) => tracing::warn!(%error, "listening for live events failed"),
        }
        let Some(strong) = bus.upgrade() else {
            return;
        };
        // Events announced while not listening are lost; revocations still reach this
        // instance through the revoked-session reload.
        strong.live.send_replace(false);
        drop(strong);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// Takes the lease of `instance` on the listening connection `client`, then hands the
/// bus what arrives, renewing the lease every [`LISTEN_CHECK`]. `Break` when the bus is
/// gone; `Continue` when the connection failed (the caller connects again).
async fn relay(
    bus: &Weak<Bus>,
    client: &tokio_postgres::Client,
    mut payloads: tokio::sync::mpsc::Receiver<String>,
    instance: &str,
) -> ControlFlow<()> {
    if let Err(error) = live_events::renew_listener(client, instance).await {
        tracing::warn!(%error, "taking the live event lease failed");
        return ControlFlow::Continue(());
    }
    tokio::time::sleep(LEASE_GRACE).await;
    let mut checks = tokio::time::interval(LISTEN_CHECK);
    checks.tick().await;
    match bus.upgrade() {
        Some(bus) => bus.live.send_replace(true),
        None => return ControlFlow::Break(()),
    };
    loop {
        tokio::select! {
            payload = payloads.recv() => {
                let Some(payload) = payload else {
                    return ControlFlow::Continue(());
                };
                let Some(bus) = bus.upgrade() else {
                    return ControlFlow::Break(());
                };
                if let Some(event) = bus.decode(&payload).await {
                    bus.deliver(event);
                }
            }
            _ = checks.tick() => {
                if bus.strong_count() == 0 {
                    return ControlFlow::Break(());
                }
                if let Err(error) = live_events::renew_listener(client, instance).await {
                    tracing::warn!(%error, "the live event connection failed");
                    return ControlFlow::Continue(());
                }
            }
        }
    }
}

/// SQLite: reads the rows after the last one seen every [`SQLITE_POLL`] until the bus is
/// dropped.
async fn poll(bus: Weak<Bus>) {
    let mut seen: Option<i64> = None;
    let mut ticks = tokio::time::interval(SQLITE_POLL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(bus) = bus.upgrade() else {
            return;
        };
        match read(&bus, seen).await {
            Ok((last, payloads)) => {
                seen = Some(last);
                bus.live.send_replace(true);
                for payload in payloads {
                    if let Some(event) = bus.decode(&payload).await {
                        bus.deliver(event);
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "reading live events failed"),
        }
    }
}

/// The rows after `seen` (none, only the newest number, when starting) and the new last.
async fn read(bus: &Bus, seen: Option<i64>) -> Result<(i64, Vec<String>), AppError> {
    let mut db = bus.db.get().await?;
    let mut conn = db.conn();
    let Some(seen) = seen else {
        return Ok((live_events::last(&mut conn).await?, Vec::new()));
    };
    let rows = live_events::after(&mut conn, seen, SQLITE_BATCH).await?;
    let last = rows.last().map_or(seen, |(seq, _)| *seq);
    Ok((last, rows.into_iter().map(|(_, payload)| payload).collect()))
}

async fn prune(bus: &Bus) -> Result<(), AppError> {
    let keep = TimeDelta::from_std(SQLITE_KEEP).map_err(AppError::internal)?;
    let mut db = bus.db.get().await?;
    live_events::prune(&mut db.conn(), now() - keep).await?;
    Ok(())
}
