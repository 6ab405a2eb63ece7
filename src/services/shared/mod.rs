//! The vocabulary every service shares: who is asking ([`Viewer`]), the built-in roles, where
//! a request came from, and the steps several features take (creating and erasing accounts,
//! opening and ending sessions, the audit trail, the login lockout, profile updates).
//!
//! Feature modules (`accounts`, `sessions`, `admin`, …) stand on this module and never on each
//! other; this module depends on none of them.

pub mod accounts;
pub mod audit;
pub mod email_tokens;
pub mod factors;
pub mod grants;
pub mod lockout;
pub mod mail;
pub mod profile_update;
pub mod role_cache;
pub mod sessions;
mod start;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use chrono::{NaiveDateTime, TimeDelta};

use crate::auth::callers::CallerCache;
use crate::auth::jwt::JwtKeys;
use crate::auth::password::PasswordHasher;
use crate::auth::revocation::RevokedSessions;
use crate::auth::token::PlainToken;
use crate::config::Config;
use crate::db::clock::now;
use crate::db::users::User;
use crate::db::{Conn, DbPool, account_changes};
use crate::domain::{PasswordPolicy, Permission};
use crate::error::{AppError, AppResult};
use crate::ids::{PersonalTokenId, RefreshTokenId, SessionId, UserId};
use crate::ratelimit::{Operation, RateLimits, Refusal};

/// The answer to every refused bearer token, whatever the reason (forged, expired, of the
/// wrong type, malformed, revoked, or its account deactivated or deleted): the reason is
/// logged, never told.
pub const TOKEN_REFUSED: AppError = AppError::Unauthenticated(
    "the token is not valid (it may have expired or been revoked): refresh it or log in again",
);

/// Longest accepted password, in characters.
const PASSWORD_MAX_CHARS: usize = 128;

/// Everything a service needs, built once at start and shared by every request. Cloning it
/// (several times a request: the router's state, each operation's data) counts one
/// reference, not one per part.
#[derive(Clone)]
pub struct Services(Arc<Shared>);

impl std::ops::Deref for Services {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`Services`] holds.
pub struct Shared {
    /// The settings.
    pub(super) config: Arc<Config>,
    /// The database.
    pub(super) db: DbPool,
    /// Password hashing.
    pub(super) passwords: PasswordHasher,
    /// Access-token signing and checking.
    pub(super) jwt: Arc<JwtKeys>,
    /// Sessions whose access tokens are refused.
    pub(super) revoked: Arc<RevokedSessions>,
    /// The accounts behind recent requests.
    pub(super) callers: Arc<CallerCache>,
    /// Login checks under way per email.
    pub(super) login_gate: Arc<lockout::LoginGate>,
    /// Profile updates waiting to be combined.
    pub(super) profile_writes: Arc<profile_update::ProfileWrites>,
    /// Wakes the mail sender.
    pub(super) mail_queue: Arc<mail::MailQueue>,
    /// The rate limits.
    pub(super) limits: Arc<RateLimits>,
    /// Where avatar files are kept.
    pub(super) avatars: crate::avatars::SharedStore,
    /// Pictures being decoded at once (each may take a few hundred MB).
    pub(super) decoding: Arc<tokio::sync::Semaphore>,
    /// The events of every instance, for live subscribers.
    pub(super) bus: Arc<crate::events::Bus>,
    /// The clock of second factors and step-up (tests move it).
    pub(super) clock: Arc<crate::db::clock::Clock>,
    /// The keys second factors are sealed and hashed with.
    pub(super) mfa_keys: Arc<crate::auth::totp::MfaKeys>,
    /// The roles by id.
    pub(super) role_cache: Arc<role_cache::RoleCache>,
}

/// What the HTTP layer may ask of the services besides their operations (it does not reach
/// into their fields).
impl Services {
    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The clock of second factors and of the step-up window, which tests move.
    pub fn clock(&self) -> &crate::db::clock::Clock {
        &self.clock
    }

    /// The public keys access tokens are signed with, as a JWK set.
    pub fn jwks(&self) -> serde_json::Value {
        self.jwt.jwks()
    }

    /// Reads the key directory now rather than at the next tick (for `keys rotate` run
    /// by tests and tools in this process).
    pub fn reload_signing_keys(&self) -> anyhow::Result<()> {
        self.jwt.reload()
    }

    /// Whether the database answers.
    pub async fn ping_database(&self) -> AppResult<()> {
        self.db.ping().await
    }

    /// Which database backs the services: `postgres` or `sqlite`.
    pub fn backend(&self) -> &'static str {
        self.db.backend()
    }

    /// Takes `cost` cells (one per operation) of the client's traffic bucket; the refusal
    /// when it is short.
    pub async fn limit_traffic(&self, ip: Option<IpAddr>, cost: u32) -> Result<(), Refusal> {
        self.limits.traffic(ip, cost).await
    }

    /// The rate of the limit called `name` (for the `RateLimit-Policy` header), when it is on.
    pub fn rate_limit(&self, name: &str) -> Option<crate::config::Rate> {
        self.limits.rate(name)
    }

    /// Sets the gauges read at scrape time: the pool, the mail queue, the revocation set,
    /// the subscriptions.
    pub async fn record_gauges(&self) {
        use crate::instruments as names;
        let pool = self.db.status();
        metrics::gauge!(names::POOL_MAX).set(pool.max_size as f64);
        let idle = pool.available.min(pool.size);
        metrics::gauge!(names::POOL_CONNECTIONS, "state" => "in_use")
            .set((pool.size - idle) as f64);
        metrics::gauge!(names::POOL_CONNECTIONS, "state" => "idle").set(idle as f64);
        metrics::gauge!(names::POOL_WAITING).set(pool.waiting as f64);
        metrics::gauge!(names::REVOKED_SESSIONS).set(self.revoked.len() as f64);
        if let Some(age) = self.revoked.reload_age() {
            metrics::gauge!(names::REVOCATION_AGE).set(age.as_secs_f64());
        }
        metrics::gauge!(names::SUBSCRIPTIONS).set(self.bus.subscribers() as f64);
        // Moved by each socket as it opens and closes; touched here so the series exists.
        metrics::gauge!(names::SOCKETS).increment(0.0);
        if let Ok(pending) = self.mail_pending().await {
            metrics::gauge!(names::MAIL_QUEUE).set(pending as f64);
        }
    }

    /// The password rules in force for a new account.
    pub fn password_policy(&self) -> PasswordPolicy {
        PasswordPolicy {
            min_chars: usize::from(self.config.password_min_length),
            max_chars: PASSWORD_MAX_CHARS,
        }
    }

    /// The password rules in force for `user`: shorter passwords are allowed once a second
    /// factor guards the account.
    pub fn password_policy_for(&self, user: &User) -> PasswordPolicy {
        let min = if user.mfa_enabled_at.is_some() {
            self.config.password_min_length_with_mfa
        } else {
            self.config.password_min_length
        };
        PasswordPolicy {
            min_chars: usize::from(min),
            max_chars: PASSWORD_MAX_CHARS,
        }
    }
}

/// Name of the role every new account gets.
pub const DEFAULT_ROLE: &str = "user";
/// Name of the role with every permission.
pub const ADMIN_ROLE: &str = "admin";

/// Largest page of a connection.
pub const MAX_PAGE_SIZE: i64 = 100;
/// Page size when neither `first` nor `last` is given.
pub const DEFAULT_PAGE_SIZE: i64 = 20;

/// The tokens a login or refresh hands out, with the account.
#[derive(Debug)]
pub struct AuthGrant {
    /// Signed access token.
    pub access_token: String,
    /// Opaque refresh token, shown once.
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The account.
    pub user: User,
}

/// A refresh token with what its access token is derived from.
#[derive(Debug)]
pub(crate) struct IssuedRefresh {
    pub session: SessionId,
    pub id: RefreshTokenId,
    pub created_at: NaiveDateTime,
    pub token: PlainToken,
    pub assurance: crate::auth::jwt::Assurance,
}

/// How a request authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// An access token of this session.
    Session(SessionId),
    /// This personal access token.
    PersonalToken(PersonalTokenId),
}

/// The account a request acts as, with its permissions, loaded once per request.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The account.
    pub user: User,
    /// The credential the request carried.
    pub credential: Credential,
    /// The permissions in force: those of the account's roles, narrowed to a personal
    /// token's scopes.
    pub permissions: BTreeSet<String>,
    /// A role of the account requires a second factor it has not turned on
    /// (`USERGRAPH_REQUIRE_MFA_FOR_ROLES`): it may do nothing but enrol.
    pub must_enrol: bool,
}

impl Viewer {
    /// Whether the request holds `permission`.
    pub fn can(&self, permission: Permission) -> bool {
        self.permissions.contains(permission.as_str())
    }

    /// The session of the access token, if the request used one.
    pub fn session(&self) -> Option<SessionId> {
        match self.credential {
            Credential::Session(id) => Some(id),
            Credential::PersonalToken(_) => None,
        }
    }

    /// `FORBIDDEN` unless the request used a session's access token: some actions (creating
    /// tokens, changing the password) are not for personal tokens.
    pub fn require_session(&self, what: &str) -> AppResult<SessionId> {
        self.session()
            .ok_or_else(|| AppError::Forbidden(format!("a personal access token cannot {what}")))
    }
}

/// Where a request came from, recorded with sessions (and, later, audit events).
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// The peer's IP address.
    pub ip: Option<String>,
    /// The User-Agent header, cut to a sane length.
    pub user_agent: Option<String>,
}

impl ClientInfo {
    /// The client's address.
    pub fn addr(&self) -> Option<IpAddr> {
        self.ip.as_deref()?.parse().ok()
    }
}

impl Services {
    /// Counts one field of `operation` from `client` (and against `account`, the normalised
    /// email or id it names, if any); `RATE_LIMITED` when a limit is reached.
    pub(crate) async fn limit(
        &self,
        operation: Operation,
        client: &ClientInfo,
        account: Option<&str>,
    ) -> AppResult<()> {
        self.limits
            .operation(operation, client.addr(), account)
            .await
            .map_err(rate_limited)
    }

    /// Counts `operation` against `account` only, its client counted before by [`Self::limit`].
    pub(crate) async fn limit_account(
        &self,
        operation: Operation,
        client: &ClientInfo,
        account: &str,
    ) -> AppResult<()> {
        self.limits
            .account(operation, client.addr(), account)
            .await
            .map_err(rate_limited)
    }
}

fn rate_limited(refusal: Refusal) -> AppError {
    AppError::RateLimited {
        retry_after: refusal.retry_after,
        limit: refusal.limit,
    }
}

/// Records, in the transaction of the change, that what authorises `user` (every account
/// when `None`) changed, so every instance's caller cache drops it within a second. The
/// instance making the change also calls [`crate::auth::callers::CallerCache::evict`] once it has committed.
pub(crate) async fn record_account_change(
    conn: &mut Conn<'_>,
    user: Option<UserId>,
) -> AppResult<()> {
    account_changes::record(conn, user, now()).await?;
    Ok(())
}

impl Services {
    /// Applies on this instance, at once, what a committed change to `user` did: the sessions
    /// it `ended` are refused and the account's cached authority is dropped (other instances
    /// learn both from the database within a second).
    pub(crate) fn committed(&self, user: UserId, ended: impl IntoIterator<Item = SessionId>) {
        self.revoked.insert(ended);
        self.callers.evict(Some(user));
    }
}

impl Services {
    /// The link a mail gives for `token`: `page` if the configuration names one, else the
    /// public URL's `path`; `None` when neither is set (the mail shows the token).
    pub(crate) fn token_link(&self, page: Option<&str>, path: &str, token: &str) -> Option<String> {
        let page = match page {
            Some(page) => page.to_owned(),
            None => format!(
                "{}/{path}",
                self.config.public_url.as_deref()?.trim_end_matches('/')
            ),
        };
        let separator = if page.contains('?') { '&' } else { '?' };
        Some(format!("{page}{separator}token={token}"))
    }
}

impl Services {
    /// The avatar file `name` (for `/uploads`), if it is one of ours and exists.
    pub async fn avatar_file(
        &self,
        name: &str,
    ) -> AppResult<Option<(crate::avatars::picture::Kind, Vec<u8>)>> {
        let Some(kind) = crate::avatars::served(name) else {
            return Ok(None);
        };
        let bytes = self.avatars.get(name).await.map_err(AppError::internal)?;
        Ok(bytes.map(|bytes| (kind, bytes)))
    }

    /// Removes the files behind an avatar URL of ours (after the commit that dropped it);
    /// a failure is logged, never the caller's: an orphan file harms no one.
    pub(crate) async fn delete_avatar_files(&self, url: Option<&str>) {
        let Some(files) = url.and_then(crate::avatars::AvatarFiles::of_url) else {
            return;
        };
        for name in [&files.full, &files.thumb] {
            if let Err(error) = self.avatars.delete(name).await {
                tracing::warn!(file = %name, error = %format!("{error:#}"), "an avatar file could not be removed");
            }
        }
    }
}

/// A configured duration as a chrono delta.
pub(crate) fn delta(duration: std::time::Duration) -> AppResult<TimeDelta> {
    TimeDelta::from_std(duration).map_err(AppError::internal)
}
