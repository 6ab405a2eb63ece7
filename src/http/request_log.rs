//! One log line per request, and the request id that ties it to the response, the causes
//! logged for it and its trace.
//!
//! The id is the client's `X-Request-Id` when it is a plausible id (a proxy's or an app's,
//! so one id follows a request through every hop), else a new UUID; either way it is sent
//! back. The line is written when the response is ready, with what `/graphql` learned
//! ([`Ran`]): the operation, and the caller's id. It never holds a password, token, hash or
//! email: those travel in bodies and headers, and the line takes neither.

use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument as _;
use tracing::field::Empty;

use super::REQUEST_ID;
use crate::ids::UserId;

/// The longest request id taken from a client.
const MAX_ID_CHARS: usize = 128;

/// The longest operation name a log line carries.
const MAX_NAME_CHARS: usize = 100;

/// What a request ran, set on its response by `/graphql` for the log line.
#[derive(Debug, Clone, Default)]
pub struct Ran {
    /// The (first) operation's name, when it has one.
    pub name: Option<async_graphql::Name>,
    /// The (first) operation's type and first root field, as the metrics label them.
    pub field: Option<(&'static str, &'static str)>,
    /// How many operations the request carried (a batch has several).
    pub operations: usize,
    /// The caller, when the request identified one.
    pub user: Option<UserId>,
}

impl Ran {
    /// `name`, cut to a length fit for a log line.
    fn name_of(name: &str) -> &str {
        name.char_indices()
            .nth(MAX_NAME_CHARS)
            .map_or(name, |(end, _)| &name[..end])
    }
}

/// Gives the request its id, runs it inside the `request` span and within the request
/// timeout ([`deadline`](super::deadline)), and logs one line for it. What only the span or
/// the line needs is worked out only when one of them is on.
pub async fn log(State(timeout): State<Duration>, mut request: Request, next: Next) -> Response {
    let id = request_id(request.headers().get(REQUEST_ID));
    request.headers_mut().insert(REQUEST_ID, id.clone());
    let method = request.method().clone();
    let uri = request.uri().clone();
    let span = tracing::info_span!(
        "request",
        request.id = %Text(&id),
        http.method = %method,
        http.path = uri.path(),
        http.status = Empty,
        graphql.operation = Empty,
        graphql.field = Empty,
        user.id = Empty,
        otel.kind = "server",
        otel.status_code = Empty,
    );
    if !span.is_disabled() && crate::telemetry::tracing_on() {
        follow_caller_trace(&span, request.headers());
    }
    let started = Instant::now();
    let mut response = super::deadline::within(timeout, next.run(request))
        .instrument(span.clone())
        .await;
    response.headers_mut().insert(REQUEST_ID, id.clone());
    let finished = Finished {
        id: &id,
        method: &method,
        path: uri.path(),
        status: response.status().as_u16(),
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
    };
    finished.report(&span, response.extensions().get::<Ran>());
    response
}

/// A request once its response is ready.
struct Finished<'a> {
    id: &'a HeaderValue,
    method: &'a axum::http::Method,
    path: &'a str,
    status: u16,
    duration_ms: f64,
}

impl Finished<'_> {
    /// Probes and scrapes arrive every few seconds and say nothing when they succeed.
    fn probe(&self) -> bool {
        self.status == 200 && matches!(self.path, "/health" | "/ready" | "/metrics")
    }

    /// Completes `span` and writes the line, when either is on.
    fn report(&self, span: &tracing::Span, ran: Option<&Ran>) {
        let logged = if self.probe() {
            tracing::enabled!(target: "usergraph::request", tracing::Level::DEBUG)
        } else {
            tracing::enabled!(target: "usergraph::request", tracing::Level::INFO)
        };
        if span.is_disabled() && !logged {
            return;
        }
        let name = ran.and_then(|r| r.name.as_deref()).map(Ran::name_of);
        let field = ran
            .and_then(|r| r.field)
            .map(|(kind, field)| format!("{kind} {field}"));
        let user = ran.and_then(|r| r.user).map(|u| u.to_string());
        span.record("http.status", self.status);
        if self.status >= 500 {
            span.record("otel.status_code", "error");
        }
        for (key, value) in [
            ("graphql.operation", name),
            ("graphql.field", field.as_deref()),
            ("user.id", user.as_deref()),
        ] {
            if let Some(value) = value {
                span.record(key, value);
            }
        }
        if logged {
            self.write(
                name,
                field.as_deref(),
                ran.map(|r| r.operations),
                user.as_deref(),
            );
        }
    }

    /// The line itself, at debug for a probe and at info otherwise.
    fn write(
        &self,
        name: Option<&str>,
        field: Option<&str>,
        operations: Option<usize>,
        user: Option<&str>,
    ) {
        // tracing wants the level as a constant: the same event twice.
        macro_rules! line {
            ($level:expr) => {
                tracing::event!(
                    target: "usergraph::request",
                    parent: None,
                    $level,
                    request.id = %Text(self.id),
                    method = %self.method,
                    path = self.path,
                    status = self.status,
                    duration_ms = (self.duration_ms * 100.0).round() / 100.0,
                    operation = name,
                    field,
                    operations,
                    user.id = user,
                    "request"
                )
            };
        }
        if self.probe() {
            line!(tracing::Level::DEBUG);
        } else {
            line!(tracing::Level::INFO);
        }
    }
}

/// A request id as text (ids are checked or made as plain ASCII).
struct Text<'a>(&'a HeaderValue);

impl std::fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.to_str().unwrap_or_default())
    }
}

/// Makes `span` part of the caller's trace when the request carries a W3C `traceparent`.
fn follow_caller_trace(span: &tracing::Span, headers: &axum::http::HeaderMap) {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&opentelemetry_http::HeaderExtractor(headers))
    });
    // Without a traceparent the context is empty and the span starts a trace of its own.
    let _ = span.set_parent(parent);
}

/// The client's id when it is 1 to 128 letters, digits and `-_.:/+=` (nothing that could
/// break a log line or a header), else a new one.
fn request_id(given: Option<&HeaderValue>) -> HeaderValue {
    let plausible = given.filter(|value| {
        let bytes = value.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= MAX_ID_CHARS
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(b))
    });
    match plausible {
        Some(value) => value.clone(),
        None => HeaderValue::from_str(&uuid::Uuid::now_v7().to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("unknown")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plausible_ids_are_kept_and_others_replaced() {
        let kept = HeaderValue::from_static("edge-7f3a:42/req=1");
        assert_eq!(request_id(Some(&kept)), kept);
        for bad in [
            "",
            "has space",
            "quote\"",
            "semi;colon",
            &"x".repeat(MAX_ID_CHARS + 1),
        ] {
            let given = HeaderValue::from_str(bad).unwrap();
            let id = request_id(Some(&given));
            assert_ne!(id, given, "{bad:?} was kept");
            assert!(uuid::Uuid::parse_str(id.to_str().unwrap()).is_ok());
        }
        assert!(uuid::Uuid::parse_str(request_id(None).to_str().unwrap()).is_ok());
    }

    #[test]
    fn long_operation_names_are_cut_on_a_character() {
        assert_eq!(Ran::name_of("Me"), "Me");
        let long = "é".repeat(MAX_NAME_CHARS + 5);
        assert_eq!(Ran::name_of(&long).chars().count(), MAX_NAME_CHARS);
    }
}
