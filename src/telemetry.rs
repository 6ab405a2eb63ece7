//! Logs and traces: the process's `tracing` subscriber, and, when an OTLP endpoint is named,
//! the OpenTelemetry pipeline behind it.
//!
//! Traces hold a span per request (`request`, with its id, and the caller's `traceparent`
//! as its parent), per operation (`graphql.execute`), per root field (`graphql.resolve`:
//! the resolvers that call services and the database) and per SQL statement run within
//! them (`db.statement`, its text without bound values). With no endpoint none of that is
//! set up: no layer, no GraphQL extension, no statement hook.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use diesel::connection::{Instrumentation, InstrumentationEvent};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::{Config, LogFormat};

/// Whether traces are being sent (set once, at start).
static TRACING: AtomicBool = AtomicBool::new(false);

/// How long one export to the collector may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest statement text a span carries.
const MAX_STATEMENT_CHARS: usize = 2_000;

/// The running pipeline; [`shutdown`](Self::shutdown) sends what is still buffered.
#[must_use = "shut it down before exiting, or the last spans are lost"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans still buffered (giving up after `within`) and stops the exporter.
    pub fn shutdown(self, within: Duration) {
        if let Some(provider) = self.provider
            && let Err(error) = provider.shutdown_with_timeout(within)
        {
            tracing::warn!(%error, "sending the last traces failed");
        }
    }
}

/// Whether this process sends traces.
pub fn tracing_on() -> bool {
    TRACING.load(Ordering::Relaxed)
}

/// Installs the subscriber: log lines to stderr as `USERGRAPH_LOG` and the log format say,
/// and traces when `traces` is asked for and configured. Call it once, inside the runtime.
pub fn init(config: &Config, traces: bool) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_new(&config.log).map_err(|e| {
        anyhow::anyhow!(
            "USERGRAPH_LOG: `{}` is not a valid filter ({e})",
            config.log
        )
    })?;
    if !(traces && config.traces()) {
        // The filter applies to the whole subscriber, so disabled callsites cost nothing.
        tracing_subscriber::registry()
            .with(filter)
            .with(log_lines(config))
            .init();
        return Ok(Telemetry { provider: None });
    }
    let provider = provider(config)?;
    // Spans of our own code at INFO, whatever the log filter keeps.
    let spans = Targets::new().with_target("usergraph", tracing::Level::INFO);
    let otel = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("usergraph"))
        .with_filter(spans);
    tracing_subscriber::registry()
        .with(log_lines(config).with_filter(filter))
        .with(otel)
        .init();
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    diesel::connection::set_default_instrumentation(statement_spans)
        .context("installing the SQL statement spans")?;
    TRACING.store(true, Ordering::Relaxed);
    Ok(Telemetry {
        provider: Some(provider),
    })
}

/// Log lines on stderr, in the configured format.
fn log_lines<S>(config: &Config) -> Box<dyn tracing_subscriber::Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    match config.log_format() {
        LogFormat::Json => lines.json().boxed(),
        LogFormat::Pretty => lines.boxed(),
    }
}

/// The tracer provider: batches of spans over OTLP/HTTP to the configured collector.
fn provider(config: &Config) -> anyhow::Result<SdkTracerProvider> {
    let endpoint = traces_url(config)?;
    let client = OnRuntime {
        client: opentelemetry_http::hyper::HyperClient::with_default_connector(
            EXPORT_TIMEOUT,
            None,
        ),
        runtime: tokio::runtime::Handle::try_current().context("traces need the async runtime")?,
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(endpoint)
        .with_http_client(client)
        .build()
        .context("OTEL_EXPORTER_OTLP_ENDPOINT: setting up the trace exporter")?;
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("usergraph");
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

/// Where spans are sent: the traces endpoint as given, or the endpoint's `/v1/traces`.
fn traces_url(config: &Config) -> anyhow::Result<String> {
    fn given(endpoint: &Option<String>) -> Option<&str> {
        endpoint.as_deref().map(str::trim).filter(|e| !e.is_empty())
    }
    let url = match (
        given(&config.otlp_traces_endpoint),
        given(&config.otlp_endpoint),
    ) {
        (Some(url), _) => url.to_owned(),
        (None, Some(base)) => format!("{}/v1/traces", base.trim_end_matches('/')),
        (None, None) => anyhow::bail!("no OTLP endpoint is set"),
    };
    anyhow::ensure!(
        url.starts_with("http://"),
        "OTEL_EXPORTER_OTLP_ENDPOINT: `{url}`: traces go over plain http:// to a collector \
         nearby (an agent or sidecar, which forwards them over TLS)"
    );
    Ok(url)
}

/// hyper's client needs tokio, and the SDK exports from a thread of its own: each export
/// runs as a task on the server's runtime.
#[derive(Debug)]
struct OnRuntime {
    client: opentelemetry_http::hyper::HyperClient,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for OnRuntime {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        self.runtime
            .spawn(async move { client.send_bytes(request).await })
            .await?
    }
}

/// The statement hook every new connection gets while traces are on.
fn statement_spans() -> Option<Box<dyn Instrumentation>> {
    Some(Box::new(Statements::default()))
}

/// A connection's statements in flight, each with its span (PostgreSQL connections may
/// pipeline several).
#[derive(Default)]
struct Statements(Vec<(String, tracing::Span)>);

impl Instrumentation for Statements {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            InstrumentationEvent::StartQuery { query, .. } => {
                // Only within a request's spans: a statement run on a blocking thread
                // (SQLite's) or by a background task would start a trace of its own.
                if tracing::Span::current().is_none() {
                    return;
                }
                let text = statement_text(&query.to_string());
                let span = tracing::info_span!(
                    target: "usergraph::db",
                    "db.statement",
                    otel.kind = "client",
                    db.query.text = %text,
                );
                self.0.push((text, span));
            }
            InstrumentationEvent::FinishQuery { query, error, .. } => {
                let text = statement_text(&query.to_string());
                if let Some(at) = self.0.iter().position(|(t, _)| *t == text) {
                    let (_, span) = self.0.remove(at);
                    if error.is_some() {
                        span.record("otel.status_code", "error");
                    }
                }
            }
            _ => {}
        }
    }
}

/// A statement as diesel prints it, without the bound values diesel appends (emails,
/// hashes, tokens' digests) and cut to a bounded length.
fn statement_text(printed: &str) -> String {
    let sql = printed
        .split_once(" -- binds: ")
        .map_or(printed, |(sql, _)| sql);
    sql.chars().take(MAX_STATEMENT_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_text_drops_bound_values() {
        let printed = "SELECT \"users\".\"id\" FROM \"users\" WHERE \"users\".\"email\" = $1 \
                       -- binds: [\"ada@example.com\"]";
        let text = statement_text(printed);
        assert!(!text.contains("ada@example.com"), "{text}");
        assert!(text.ends_with("= $1"), "{text}");
        assert_eq!(
            statement_text(&"x".repeat(5_000)).len(),
            MAX_STATEMENT_CHARS
        );
    }

    #[test]
    fn only_plain_http_collectors_are_taken() {
        use clap::Parser as _;
        let config = |args: &[&str]| {
            let mut all = vec!["usergraph"];
            all.extend_from_slice(args);
            crate::config::Cli::try_parse_from(all).unwrap().config
        };
        let base = config(&["--otlp-endpoint", "http://collector:4318/"]);
        assert_eq!(
            traces_url(&base).unwrap(),
            "http://collector:4318/v1/traces"
        );
        let full = config(&[
            "--otlp-endpoint",
            "http://collector:4318",
            "--otlp-traces-endpoint",
            "http://tempo:4318/otlp/v1/traces",
        ]);
        assert_eq!(
            traces_url(&full).unwrap(),
            "http://tempo:4318/otlp/v1/traces"
        );
        assert!(traces_url(&config(&["--otlp-endpoint", "https://x:4318"])).is_err());
        assert!(!config(&[]).traces());
        assert!(
            !config(&[
                "--otlp-endpoint",
                "http://c:4318",
                "--otel-sdk-disabled",
                "TRUE"
            ])
            .traces()
        );
    }
}
