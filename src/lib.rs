//! usergraph: a GraphQL user-management server. This crate builds the application —
//! configuration, database pool, services, schema, router — for the binary and the tests.

pub mod auth;
pub mod avatars;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod events;
pub mod graphql;
pub mod http;
pub mod ids;
pub mod instruments;
pub mod mail;
pub mod ratelimit;
pub mod services;
pub mod telemetry;

use std::sync::Arc;

use axum::Router;

use crate::config::Config;
use crate::services::Services;

/// A built application: its router and the services behind it.
pub struct App {
    /// The HTTP router, ready to serve.
    pub router: Router,
    /// The services, for CLI commands and tests.
    pub services: Services,
    /// What `/ready` answers; shutdown drains it first.
    pub readiness: http::health::Readiness,
}

/// Builds the services: creates the data directory, applies migrations, opens the pool,
/// loads (or creates) the signing key.
pub async fn build_services(config: Config) -> anyhow::Result<Services> {
    Services::start(config).await
}

/// Builds the whole application.
pub async fn build(config: Config) -> anyhow::Result<App> {
    // Before anything is counted: until a recorder is installed, metrics go nowhere.
    instruments::handle();
    let services = build_services(config).await?;
    let strict = async_graphql::ValidationMode::Strict;
    let schema = graphql::build_schema(services.config(), services.clone(), strict);
    let lenient = graphql::build_schema(
        services.config(),
        services.clone(),
        graphql::validated::Validated::MODE,
    );
    let limits = graphql::admission::Limits {
        max_depth: services.config().max_query_depth,
        max_fields: services.config().max_query_complexity,
        max_costly: usize::try_from(services.config().max_password_fields).unwrap_or(1),
        max_aliases: services.config().max_aliases,
        max_root_fields: services.config().max_root_fields,
        max_directives: services.config().max_directives,
        max_query_bytes: services.config().max_query_bytes,
    };
    let mut admission = graphql::admission::Admission::new(limits);
    if let Some(path) = &services.config().persisted_operations {
        admission = admission.only(graphql::persisted::PersistedOperations::load(path)?);
    }
    let readiness = http::health::Readiness::default();
    let router = http::router(http::HttpState::new(http::HttpShared {
        schema,
        validated: Arc::new(graphql::validated::Validated::new(lenient)),
        services: services.clone(),
        admission: Arc::new(admission),
        readiness: readiness.clone(),
        sockets: Arc::default(),
    }));
    Ok(App {
        router,
        services,
        readiness,
    })
}
