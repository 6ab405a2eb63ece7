//! The HTTP surface: the router, its middleware, and the small handlers beside GraphQL.

mod deadline;
mod graphql;
pub mod health;
mod jwks;
mod limits;
mod playground;
pub mod request_log;
pub mod scrape;
pub mod serve;
pub mod socket;
mod uploads;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::routing::get;
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;

use crate::graphql::AppSchema;
use crate::graphql::admission::Admission;
use crate::services::Services;

/// What every handler shares, behind one reference count: axum clones it several times a
/// request (the route, each `State` extractor, the middleware that takes it).
#[derive(Clone)]
pub struct HttpState(Arc<HttpShared>);

impl HttpState {
    /// Shares `shared` among the handlers.
    pub fn new(shared: HttpShared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for HttpState {
    type Target = HttpShared;

    fn deref(&self) -> &HttpShared {
        &self.0
    }
}

/// The parts of [`HttpState`].
pub struct HttpShared {
    /// The GraphQL schema.
    pub schema: AppSchema,
    /// The documents known to pass validation, and the schema that runs them.
    pub validated: Arc<crate::graphql::validated::Validated>,
    /// The services (database, keys, settings).
    pub services: Services,
    /// The checks every document passes before it runs.
    pub admission: Arc<Admission>,
    /// Cleared when shutdown begins (`/ready`).
    pub readiness: health::Readiness,
    /// The subscription sockets open, per address and account.
    pub sockets: Arc<socket::Sockets>,
}

impl axum::extract::FromRef<HttpState> for Services {
    fn from_ref(state: &HttpState) -> Self {
        state.services.clone()
    }
}

pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The application's router with its middleware.
pub fn router(state: HttpState) -> Router {
    let config = state.services.config();
    let timeout = config.request_timeout;
    let body_timeout = config.body_timeout;
    let cors = cors(&config.cors_origins, config.refresh_cookie);
    routes(config)
        .route_layer(axum::middleware::from_fn(crate::instruments::track_http))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::admit,
        ))
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                // On every answer; the playground's own (a page, files cached for a year) stay.
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ))
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("no-referrer"),
                ))
                // GraphQL answers may carry tokens: no cache may keep them.
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("no-store"),
                ))
                // The request id, span and log line, and the deadline, in one layer.
                .layer(axum::middleware::from_fn_with_state(
                    timeout,
                    request_log::log,
                ))
                .layer(RequestBodyTimeoutLayer::new(body_timeout))
                .layer(cors),
        )
}

/// The routes `config` turns on, each counted by the metrics under its template.
fn routes(config: &crate::config::Config) -> Router<HttpState> {
    let mut router = Router::new()
        .route("/graphql", get(graphql::get).post(graphql::post))
        .route(socket::PATH, get(socket::get))
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/.well-known/jwks.json", get(jwks::jwks))
        .route("/uploads/{name}", get(uploads::file));
    if config.serves_graphiql() {
        router = router.route(
            &format!("{}/{{name}}", playground::ASSETS),
            get(playground::asset),
        );
    }
    if config.metrics_listen.is_none() {
        router = router.route("/metrics", get(scrape::metrics));
    }
    router
}

/// CORS: any origin, or the listed ones; with credentials (the refresh cookie) only for
/// listed ones, which `Config::validate` makes sure of.
fn cors(origins: &str, credentials: bool) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            graphql::CSRF_HEADER,
        ])
        .expose_headers([REQUEST_ID])
        .max_age(Duration::from_secs(600));
    if origins.trim() == "*" {
        return layer.allow_origin(Any);
    }
    let layer = layer.allow_credentials(credentials);
    let list: Vec<HeaderValue> = origins
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    layer.allow_origin(AllowOrigin::list(list))
}
