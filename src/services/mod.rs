//! Business rules. Resolvers call these; they know nothing of HTTP or GraphQL.

pub mod accounts;
pub mod admin;
pub mod audit;
pub mod audit_log;
pub mod lockout;
pub mod password_reset;
pub mod personal_tokens;
pub mod profiles;
pub mod seed;
pub mod sessions;
pub mod users;

use std::sync::Arc;

use crate::auth::callers::CallerCache;
use crate::auth::jwt::JwtKeys;
use crate::auth::password::PasswordHasher;
use crate::auth::revocation::RevokedSessions;
use crate::config::Config;
use crate::db::DbPool;
use crate::domain::PasswordPolicy;
use crate::error::AppResult;

/// Longest accepted password, in characters.
const PASSWORD_MAX_CHARS: usize = 128;

/// Everything a service needs, built once at start and shared by every request.
#[derive(Clone)]
pub struct Services {
    /// The settings.
    pub config: Arc<Config>,
    /// The database.
    pub db: DbPool,
    /// Password hashing.
    pub passwords: PasswordHasher,
    /// Access-token signing and checking.
    pub jwt: Arc<JwtKeys>,
    /// Sessions whose access tokens are refused.
    pub revoked: Arc<RevokedSessions>,
    /// The accounts behind recent requests.
    pub callers: Arc<CallerCache>,
    /// Login checks under way per email.
    pub login_gate: Arc<lockout::LoginGate>,
    /// Profile updates waiting to be combined.
    pub profile_writes: Arc<profiles::ProfileWrites>,
    /// Outbound mail.
    pub mailer: crate::mail::Mailer,
}

impl Services {
    /// The password rules in force.
    pub fn password_policy(&self) -> PasswordPolicy {
        PasswordPolicy {
            min_chars: usize::from(self.config.password_min_length),
            max_chars: PASSWORD_MAX_CHARS,
        }
    }
}

/// Records, in the transaction of the change, that what authorises `user` (every account
/// when `None`) changed, so every instance's caller cache drops it within a second. The
/// instance making the change also calls [`CallerCache::evict`] once it has committed.
pub(crate) async fn record_account_change(
    conn: &mut crate::db::Conn<'_>,
    user: Option<crate::db::types::UserId>,
) -> AppResult<()> {
    crate::db::account_changes::record(conn, user, crate::db::types::now()).await?;
    Ok(())
}

/// Where a request came from, recorded with sessions (and, later, audit events).
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// The peer's IP address.
    pub ip: Option<String>,
    /// The User-Agent header, cut to a sane length.
    pub user_agent: Option<String>,
}
