//! usergraph: a GraphQL user-management server. This crate builds the application —
//! configuration, database pool, services, schema, router — for the binary and the tests.

pub mod auth;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod graphql;
pub mod http;
pub mod ids;
pub mod mail;
pub mod services;

use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;

use crate::auth::callers::CallerCache;
use crate::auth::jwt::JwtKeys;
use crate::auth::password::PasswordHasher;
use crate::auth::revocation::RevokedSessions;
use crate::config::Config;
use crate::db::DbPool;
use crate::services::Services;

/// A built application: its router and the services behind it.
pub struct App {
    /// The HTTP router, ready to serve.
    pub router: Router,
    /// The services, for CLI commands and tests.
    pub services: Services,
}

/// Builds the services: creates the data directory, applies migrations, opens the pool,
/// loads (or creates) the signing key.
pub async fn build_services(config: Config) -> anyhow::Result<Services> {
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
    let jwt = JwtKeys::load_or_generate(&config)?;
    let passwords = PasswordHasher::new(&config).await?;
    let mailer = mail::Mailer::new(config.mail_outbox_path(), &config.mail_from)?;
    let revoked = Arc::new(RevokedSessions::new(config.access_token_ttl));
    revoked
        .reload(&db)
        .await
        .map_err(|e| e.into_report().context("loading revoked sessions"))?;
    let callers = Arc::new(CallerCache::default());
    callers
        .reload(&db)
        .await
        .map_err(|e| e.into_report().context("loading account changes"))?;
    revoked.spawn_reloader(&callers, db.clone());
    Ok(Services {
        config: Arc::new(config),
        db,
        passwords,
        jwt: Arc::new(jwt),
        revoked,
        callers,
        profile_writes: Arc::default(),
        login_gate: Arc::default(),
        mailer,
    })
}

/// Builds the whole application.
pub async fn build(config: Config) -> anyhow::Result<App> {
    let services = build_services(config).await?;
    let schema = graphql::build_schema(&services.config, services.clone());
    let limits = graphql::admission::Limits {
        max_depth: services.config.max_query_depth,
        max_fields: services.config.max_query_complexity,
    };
    let router = http::router(http::HttpState {
        schema,
        services: services.clone(),
        admission: Arc::new(graphql::admission::Admission::new(limits)),
    });
    Ok(App { router, services })
}
