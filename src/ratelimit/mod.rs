//! Rate limits: GCRA buckets per client address, per account, and per both.
//!
//! Every limit is a rate (`COUNT/PERIOD`: a full bucket holds COUNT cells and one comes back
//! every PERIOD / COUNT). All GraphQL traffic of a client fills the [`TRAFFIC`] bucket, each
//! operation of a batch one cell; the operations that guess or mail (`login`, `register`,
//! `refreshToken`, `requestPasswordReset`, `resetPassword`) fill buckets of their own, one
//! cell per *field*, so aliases and batches pay for every copy. A request's buckets are taken
//! in order and the first that is empty refuses it; those before it stay taken (a refused
//! attempt was still an attempt).
//!
//! Buckets live where the configuration says: in memory (each instance counts alone; the
//! embedded default), in the database or in Redis (every instance shares them). The traffic
//! bucket is checked on every request, so with the database store it stays in memory: a
//! write per request would cost more than what it protects; Redis shares it too. A store
//! that fails lets requests through (and says so in the log, at most every ten seconds):
//! limits must not turn an outage of Redis into an outage of logins.

mod database;
mod memory;
pub mod policy;
mod redis_store;

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};

pub use self::policy::{Operation, Policy, Scope, TRAFFIC};
use crate::config::{Config, DatabaseUrl, Rate, RateLimitStore};
use crate::db::DbPool;

/// A request refused by a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The limit's name.
    pub limit: &'static str,
    /// Whole seconds until the bucket has the cells again (at least 1).
    pub retry_after: u64,
}

/// The configured limits over their stores.
pub struct RateLimits {
    policies: Vec<Policy>,
    /// Where the traffic bucket lives.
    traffic: Store,
    /// Where the operations' buckets live.
    operations: Store,
    /// When a store failure was last logged (seconds since the epoch).
    warned_at: AtomicU64,
}

/// A bucket to take cells from.
struct Take {
    /// Index into the policies.
    policy: usize,
    name: &'static str,
    key: u128,
    rate: Rate,
    cost: u32,
}

impl Take {
    /// The bucket's key in a shared store: the limit's name and a digest, so that neither
    /// addresses nor emails are stored and every key has the same small size.
    fn shared_key(&self) -> String {
        format!("{}:{:032x}", self.name, self.key)
    }

    /// Microseconds between two cells, and the window they fit in (the period, rounded to
    /// whole intervals).
    fn interval_and_window(&self) -> (i64, i64) {
        let period = i64::try_from(self.rate.period.as_micros()).unwrap_or(i64::MAX);
        let interval = (period / i64::from(self.rate.count)).max(1);
        (
            interval,
            interval.saturating_mul(i64::from(self.rate.count)),
        )
    }
}

enum Store {
    Memory(Arc<memory::Buckets>),
    Database(DbPool),
    Redis(redis_store::Buckets),
}

impl Store {
    /// Takes each bucket in order; the index and wait of the first that is short.
    async fn take(&self, takes: &[Take]) -> anyhow::Result<Option<(usize, Duration)>> {
        match self {
            Self::Memory(buckets) => Ok(buckets.take(takes)),
            Self::Database(db) => database::take(db, takes, micros_now()).await,
            Self::Redis(redis) => redis.take(takes, micros_now()).await,
        }
    }
}

impl RateLimits {
    /// The limits of `config`, their stores opened (Redis is connected to now, so a wrong URL
    /// stops the start), with a task that drops full buckets every minute.
    pub async fn start(config: &Config, db: &DbPool) -> anyhow::Result<Arc<Self>> {
        let policies = policy::policies(&config.rate_limits)?;
        let memory = || Store::Memory(Arc::new(memory::Buckets::new(&policies)));
        let store = match config.rate_limit_store {
            RateLimitStore::Auto if config.redis_url.is_some() => RateLimitStore::Redis,
            RateLimitStore::Auto if matches!(config.database()?, DatabaseUrl::Postgres(_)) => {
                RateLimitStore::Database
            }
            RateLimitStore::Auto => RateLimitStore::Memory,
            chosen => chosen,
        };
        let (traffic, operations) = match store {
            RateLimitStore::Redis => {
                let url = config
                    .redis_url
                    .as_deref()
                    .context("USERGRAPH_REDIS_URL is not set")?;
                let redis = redis_store::Buckets::connect(url, &config.redis_key_prefix)
                    .await
                    .context("USERGRAPH_REDIS_URL: cannot reach Redis")?;
                (Store::Redis(redis.clone()), Store::Redis(redis))
            }
            RateLimitStore::Database => (memory(), Store::Database(db.clone())),
            RateLimitStore::Memory | RateLimitStore::Auto => {
                let buckets = Arc::new(memory::Buckets::new(&policies));
                (Store::Memory(buckets.clone()), Store::Memory(buckets))
            }
        };
        let limits = Arc::new(Self {
            policies,
            traffic,
            operations,
            warned_at: AtomicU64::new(0),
        });
        limits.spawn_sweeper();
        Ok(limits)
    }

    /// The rate of the limit called `name`, when it is on.
    pub fn rate(&self, name: &str) -> Option<Rate> {
        self.policies
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| p.rate)
    }

    /// Takes `cost` cells of the client's traffic bucket.
    pub async fn traffic(&self, ip: Option<IpAddr>, cost: u32) -> Result<(), Refusal> {
        let takes: Vec<Take> = self
            .policies
            .iter()
            .enumerate()
            .filter(|(_, p)| p.name == TRAFFIC)
            .filter_map(|(n, p)| self.take_of(n, p, ip, None, cost))
            .collect();
        self.run(&self.traffic, &takes).await
    }

    /// Takes a cell of each of the operation's buckets: the client's, and when the operation
    /// names an `account`, the account's and the pair's.
    pub async fn operation(
        &self,
        operation: Operation,
        ip: Option<IpAddr>,
        account: Option<&str>,
    ) -> Result<(), Refusal> {
        let takes = self.takes_of(operation, ip, account, |_| true);
        self.run(&self.operations, &takes).await
    }

    /// Takes a cell of the operation's account and pair buckets only: for an operation that
    /// learns its account after its client was counted (`resetPassword` from its token).
    pub async fn account(
        &self,
        operation: Operation,
        ip: Option<IpAddr>,
        account: &str,
    ) -> Result<(), Refusal> {
        let takes = self.takes_of(operation, ip, Some(account), |scope| scope != Scope::Ip);
        self.run(&self.operations, &takes).await
    }

    fn takes_of(
        &self,
        operation: Operation,
        ip: Option<IpAddr>,
        account: Option<&str>,
        scopes: impl Fn(Scope) -> bool,
    ) -> Vec<Take> {
        self.policies
            .iter()
            .enumerate()
            .filter(|(_, p)| p.counts(operation) && scopes(p.scope))
            .filter_map(|(n, p)| self.take_of(n, p, ip, account, 1))
            .collect()
    }

    /// The bucket `policy` keeps for this client and account, if it is on and applies.
    fn take_of(
        &self,
        index: usize,
        policy: &Policy,
        ip: Option<IpAddr>,
        account: Option<&str>,
        cost: u32,
    ) -> Option<Take> {
        let rate = policy.rate?;
        let key = match (policy.scope, account) {
            (Scope::Ip, _) => ip_bits(ip),
            (Scope::Account, Some(account)) => digest(&[account.as_bytes()]),
            (Scope::IpAccount, Some(account)) => {
                digest(&[&ip_bits(ip).to_be_bytes(), account.as_bytes()])
            }
            (_, None) => return None,
        };
        Some(Take {
            policy: index,
            name: policy.name,
            key,
            rate,
            cost,
        })
    }

    async fn run(&self, store: &Store, takes: &[Take]) -> Result<(), Refusal> {
        if takes.is_empty() {
            return Ok(());
        }
        // More cells than the bucket holds: no wait would let it through.
        if let Some(take) = takes.iter().find(|t| t.cost > t.rate.count) {
            return Err(refusal(take.name, take.rate.period));
        }
        match store.take(takes).await {
            Ok(None) => Ok(()),
            Ok(Some((index, wait))) => Err(refusal(takes[index].name, wait)),
            Err(error) => {
                self.warn(&error);
                Ok(())
            }
        }
    }

    /// Logs a store failure, at most every ten seconds.
    fn warn(&self, error: &anyhow::Error) {
        let now = micros_now().unsigned_abs() / 1_000_000;
        let last = self.warned_at.load(Ordering::Relaxed);
        if now >= last + 10
            && self
                .warned_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(error = %format!("{error:#}"), "rate-limit store failed; requests are let through");
        }
    }

    fn spawn_sweeper(self: &Arc<Self>) {
        const EVERY: Duration = Duration::from_secs(60);
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(EVERY);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(limits) = weak.upgrade() else {
                    break;
                };
                for store in [&limits.traffic, &limits.operations] {
                    match store {
                        Store::Memory(buckets) => buckets.sweep(),
                        Store::Database(db) => {
                            if let Err(error) = database::sweep(db, micros_now()).await {
                                limits.warn(&error);
                            }
                        }
                        // Redis drops a key when its bucket is full again.
                        Store::Redis(_) => {}
                    }
                }
            }
        });
    }
}

fn refusal(limit: &'static str, wait: Duration) -> Refusal {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Refusal {
        limit,
        retry_after: seconds.max(1),
    }
}

/// A client's bucket key: its IPv4 address, or its IPv6 /64 (one host holds a whole /64,
/// so counting single IPv6 addresses would count nothing); 0 when unknown.
pub(crate) fn ip_bits(ip: Option<IpAddr>) -> u128 {
    match ip.map(|ip| ip.to_canonical()) {
        None => 0,
        Some(IpAddr::V4(v4)) => u128::from(v4.to_ipv6_mapped()),
        Some(IpAddr::V6(v6)) => u128::from(v6) & !u128::from(u64::MAX),
    }
}

/// The first 128 bits of the SHA-256 of `parts`, each length-prefixed.
fn digest(parts: &[&[u8]]) -> u128 {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    let bytes: [u8; 32] = hash.finalize().into();
    let mut first = [0u8; 16];
    first.copy_from_slice(&bytes[..16]);
    u128::from_be_bytes(first)
}

/// Microseconds since the epoch (the shared stores' clock: instances must agree on it, as
/// NTP makes them).
fn micros_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// `cost` as governor counts it.
fn cells(cost: u32) -> NonZeroU32 {
    NonZeroU32::new(cost).unwrap_or(NonZeroU32::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_keyed_by_address_and_ipv6_by_its_64() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(ip_bits(ip("192.0.2.1")), ip_bits(ip("::ffff:192.0.2.1")));
        assert_ne!(ip_bits(ip("192.0.2.1")), ip_bits(ip("192.0.2.2")));
        assert_eq!(
            ip_bits(ip("2001:db8:1:2::1")),
            ip_bits(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            ip_bits(ip("2001:db8:1:2::1")),
            ip_bits(ip("2001:db8:1:3::1"))
        );
        assert_eq!(ip_bits(None), 0);
    }

    #[test]
    fn waits_round_up_to_whole_seconds() {
        assert_eq!(refusal("x", Duration::from_millis(1)).retry_after, 1);
        assert_eq!(refusal("x", Duration::ZERO).retry_after, 1);
        assert_eq!(refusal("x", Duration::from_secs(2)).retry_after, 2);
        assert_eq!(refusal("x", Duration::from_millis(2_001)).retry_after, 3);
    }

    #[test]
    fn pairs_are_not_confused_with_their_parts() {
        assert_ne!(digest(&[b"ab", b"c"]), digest(&[b"a", b"bc"]));
    }
}
