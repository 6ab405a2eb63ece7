//! How the services are put together at start.

use std::sync::Arc;

use anyhow::Context as _;

use super::Services;
use crate::auth::callers::CallerCache;
use crate::auth::jwt::{JwtKeys, RELOAD_INTERVAL};
use crate::auth::password::PasswordHasher;
use crate::auth::revocation::RevokedSessions;
use crate::auth::totp::MfaKeys;
use crate::config::Config;
use crate::db::{self, DbPool};
use crate::events::Bus;
use crate::mail;
use crate::ratelimit::RateLimits;

impl Services {
    /// The services on `config`: creates the data directory, applies migrations, opens the
    /// pool, loads (or creates) the signing key, loads the revoked sessions and the account
    /// changes, and starts the task that reloads them every second; opens the rate limits'
    /// store.
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!(
                "USERGRAPH_DATA_DIR: cannot create {}",
                config.data_dir.display()
            )
        })?;
        let url = config.database()?;
        let applied = db::migrate(&url).await?;
        if applied > 0 {
            tracing::info!(count = applied, "applied database migrations");
        }
        let db = DbPool::connect(&url, config.db_pool_size, config.db_timeout).await?;
        warn_of_unknown_roles(&config, &db).await?;
        let jwt = JwtKeys::load_or_generate(&config)?;
        let passwords = PasswordHasher::new(&config).await?;
        let mailer = mail::Mailer::new(&config)?;
        let mail_queue = Arc::new(super::mail::MailQueue::default());
        super::mail::spawn_sender(&mail_queue, db.clone(), mailer, config.mail_retry_delay);
        let (revoked, callers) = caches(&config, &db).await?;
        let bus = Bus::new(&url, config.db_timeout, db.clone(), &revoked, &callers);
        bus.spawn_pruner();
        let limits = RateLimits::start(&config, &db).await?;
        let config_uploads = config.uploads_path();
        let jwt = Arc::new(jwt);
        spawn_key_reloader(&jwt);
        let mfa_keys = MfaKeys::load_or_generate(&config.mfa_key_file(), config.production())?;
        Ok(Self(Arc::new(super::Shared {
            config: Arc::new(config),
            db,
            passwords,
            jwt,
            revoked,
            callers,
            profile_writes: Arc::default(),
            login_gate: Arc::default(),
            mail_queue,
            limits,
            avatars: Arc::new(crate::avatars::Directory::new(config_uploads)?),
            decoding: Arc::new(tokio::sync::Semaphore::new(2)),
            bus,
            clock: Arc::default(),
            mfa_keys: Arc::new(mfa_keys),
            role_cache: Arc::default(),
        })))
    }
}

/// Says so when `USERGRAPH_REQUIRE_MFA_FOR_ROLES` names a role that does not exist (yet):
/// a misspelt name would otherwise require nothing of anyone.
async fn warn_of_unknown_roles(config: &Config, db: &DbPool) -> anyhow::Result<()> {
    if config.require_mfa_for_roles.is_empty() {
        return Ok(());
    }
    let mut conn = db.get().await.map_err(|e| e.into_report())?;
    let roles = crate::db::roles::list_roles(&mut conn.conn())
        .await
        .context("listing roles")?;
    for name in &config.require_mfa_for_roles {
        if !roles.iter().any(|role| &role.name == name) {
            tracing::warn!(role = %name, "USERGRAPH_REQUIRE_MFA_FOR_ROLES names a role that does not exist");
        }
    }
    Ok(())
}

/// The revoked sessions and the caller cache, loaded, with the task that reloads both.
async fn caches(
    config: &Config,
    db: &DbPool,
) -> anyhow::Result<(Arc<RevokedSessions>, Arc<CallerCache>)> {
    let revoked = Arc::new(RevokedSessions::new(config.access_token_ttl));
    revoked
        .reload(db)
        .await
        .map_err(|e| e.into_report().context("loading revoked sessions"))?;
    let callers = Arc::new(CallerCache::default());
    callers
        .reload(db)
        .await
        .map_err(|e| e.into_report().context("loading account changes"))?;
    revoked.spawn_reloader(&callers, db.clone());
    Ok((revoked, callers))
}

/// Looks at the key directory every [`RELOAD_INTERVAL`] for keys another process added.
fn spawn_key_reloader(jwt: &Arc<JwtKeys>) {
    let weak = Arc::downgrade(jwt);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(RELOAD_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let Some(jwt) = weak.upgrade() else {
                break;
            };
            if let Err(error) = jwt.reload() {
                tracing::warn!(error = %format!("{error:#}"), "reloading the signing keys failed; the ones loaded before stay");
            }
        }
    });
}
