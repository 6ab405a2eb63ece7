//! Traces over OTLP: a request's spans reach a collector (a fake one, decoding what the
//! exporter sends), tied to the request id (the one in its response and its log line) and
//! to the caller's `traceparent`, down to the SQL statements on PostgreSQL; and nothing
//! secret in any of them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{Backend, PASSWORD, TestDb};
use crate::process::{Server, request};

both_backends!(a_request_is_traced_from_its_id_to_its_statements);

/// The caller's trace, as a W3C `traceparent` names it.
const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT: &str = "b7ad6b7169203331";

/// Listens as an OTLP/HTTP collector; every export body it was sent.
async fn collector() -> (std::net::SocketAddr, Arc<Mutex<Vec<Bytes>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let router = axum::Router::new()
        .route(
            "/v1/traces",
            post(
                |State(received): State<Arc<Mutex<Vec<Bytes>>>>, body: Bytes| async move {
                    received.lock().unwrap().push(body);
                    (
                        [("content-type", "application/x-protobuf")],
                        Vec::<u8>::new(),
                    )
                },
            ),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (address, received)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    let value = span
        .attributes
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_ref()?;
    match value.value.as_ref()? {
        Any::StringValue(s) => Some(s.clone()),
        Any::IntValue(n) => Some(n.to_string()),
        other => Some(format!("{other:?}")),
    }
}

async fn a_request_is_traced_from_its_id_to_its_statements(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = TestDb::create(backend, dir.path()).await else {
        return;
    };
    let (address, received) = collector().await;
    let endpoint = format!("http://{address}");
    let settings = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let mut server = Server::start(dir.path(), &db.url, &settings).await;
    let email = "traced.person@example.com";
    let register = json!({
        "query": "mutation($email: String!, $password: String!) {
            register(input: { email: $email, password: $password, displayName: \"T\" }) {
                accessToken user { id }
            }
        }",
        "variables": { "email": email, "password": PASSWORD },
    });
    let traceparent = format!("00-{TRACE}-{PARENT}-01");
    let headers = [
        ("Content-Type", "application/json"),
        ("X-Request-Id", "traced-register"),
        ("traceparent", traceparent.as_str()),
    ];
    let (status, answer_headers, body) = request(
        server.address,
        "POST",
        "/graphql",
        &headers,
        Some(&register),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        crate::process::header(&answer_headers, "x-request-id"),
        Some("traced-register")
    );
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let access = answer["data"]["register"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let user = answer["data"]["register"]["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bearer = format!("Bearer {access}");
    let headers = [
        ("Content-Type", "application/json"),
        ("X-Request-Id", "traced-me"),
        ("Authorization", bearer.as_str()),
    ];
    let me = json!({ "query": "{ me { id } }" });
    request(server.address, "POST", "/graphql", &headers, Some(&me))
        .await
        .unwrap();

    // The same id on the response and in the request's log line.
    let line = server.request_line("traced-register").await;
    assert_eq!(line["fields"]["field"], "mutation register");

    // Stopping sends what is still buffered.
    server.terminate();
    assert!(server.exited(Duration::from_secs(20)).await.success());
    let spans: Vec<Span> = received
        .lock()
        .unwrap()
        .iter()
        .map(|body| ExportTraceServiceRequest::decode(body.as_ref()).expect("OTLP protobuf"))
        .flat_map(|export| export.resource_spans)
        .flat_map(|resource| resource.scope_spans)
        .flat_map(|scope| scope.spans)
        .collect();
    let find = |name: &str, key: &str, value: &str| {
        spans
            .iter()
            .find(|s| s.name == name && attribute(s, key).as_deref() == Some(value))
            .unwrap_or_else(|| panic!("no {name} span with {key}={value}: {spans:#?}"))
    };

    // The request's span carries its id and continues the caller's trace.
    let registered = find("request", "request.id", "traced-register");
    assert_eq!(hex(&registered.trace_id), TRACE);
    assert_eq!(hex(&registered.parent_span_id), PARENT);
    assert_eq!(attribute(registered, "http.status").as_deref(), Some("200"));
    let in_trace: Vec<&Span> = spans
        .iter()
        .filter(|s| s.trace_id == registered.trace_id)
        .collect();
    let execute = in_trace
        .iter()
        .find(|s| s.name == "graphql.execute")
        .expect("an operation span");
    assert_eq!(execute.parent_span_id, registered.span_id);
    let resolve = in_trace
        .iter()
        .find(|s| s.name == "graphql.resolve")
        .expect("a root field span");
    assert_eq!(
        attribute(resolve, "graphql.field").as_deref(),
        Some("register")
    );
    assert_eq!(resolve.parent_span_id, execute.span_id);
    if backend == Backend::Postgres {
        let statements: Vec<&&Span> = in_trace
            .iter()
            .filter(|s| s.name == "db.statement")
            .collect();
        assert!(
            statements
                .iter()
                .any(|s| attribute(s, "db.query.text").is_some_and(|q| q.contains("INSERT"))),
            "no INSERT among {statements:#?}"
        );
    }

    // Without a traceparent a request starts its own trace; the caller is named.
    let me = find("request", "request.id", "traced-me");
    assert_ne!(hex(&me.trace_id), TRACE);
    assert!(me.parent_span_id.is_empty());
    assert_eq!(attribute(me, "user.id").as_deref(), Some(user.as_str()));

    // No span holds the password, the address or the token.
    let printed = format!("{spans:?}");
    for secret in [PASSWORD, email, access.as_str()] {
        assert!(!printed.contains(secret), "a span holds {secret:?}");
    }
}
