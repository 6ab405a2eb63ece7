//! Running the binary as operators do: one log line per request tied to its response by the
//! request id, and a shutdown that drains before it stops.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

use crate::both_backends;
use crate::helpers::{Backend, PASSWORD, TestDb};
use crate::process::{Server, header, read_answer, request};

both_backends!(
    each_request_logs_one_line_with_its_id,
    sigterm_drains_then_finishes_in_flight_requests,
    shutdown_is_bounded_by_its_timeout,
);

const REGISTER: &str = "mutation Register($email: String!, $password: String!) {
    register(input: { email: $email, password: $password, displayName: \"Logged\" }) {
        accessToken refreshToken user { id }
    }
}";

/// POSTs `body` with `headers`; the answer's request id and JSON.
async fn post(server: &Server, headers: &[(&str, &str)], body: &Value) -> (String, Value) {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    let (status, headers, body) = request(server.address, "POST", "/graphql", &all, Some(body))
        .await
        .expect("an answer");
    assert_eq!(status, 200);
    let id = header(&headers, "x-request-id")
        .expect("a request id")
        .to_owned();
    (id, serde_json::from_slice(&body).expect("JSON"))
}

async fn each_request_logs_one_line_with_its_id(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = TestDb::create(backend, dir.path()).await else {
        return;
    };
    let server = Server::start(dir.path(), &db.url, &[]).await;
    let email = "logged.person@example.com";

    // The client's id is kept and returned.
    let register = json!({
        "query": REGISTER,
        "operationName": "Register",
        "variables": { "email": email, "password": PASSWORD },
    });
    let (id, answer) = post(&server, &[("X-Request-Id", "edge-42:register")], &register).await;
    assert_eq!(id, "edge-42:register");
    let tokens = &answer["data"]["register"];
    let access = tokens["accessToken"]
        .as_str()
        .expect("registered")
        .to_owned();
    let refresh = tokens["refreshToken"].as_str().unwrap().to_owned();
    let user = tokens["user"]["id"].as_str().unwrap().to_owned();
    let line = server.request_line(&id).await;
    let fields = &line["fields"];
    assert_eq!(line["level"], "INFO", "{line}");
    assert_eq!(fields["status"], 200, "{line}");
    assert_eq!(fields["method"], "POST", "{line}");
    assert_eq!(fields["path"], "/graphql", "{line}");
    assert_eq!(fields["operation"], "Register", "{line}");
    assert_eq!(fields["field"], "mutation register", "{line}");
    assert!(fields["duration_ms"].as_f64().is_some(), "{line}");
    assert!(
        fields.get("user.id").is_none(),
        "an anonymous caller: {line}"
    );

    // Without an id (or with one that could break a line), the server makes one.
    let me = json!({ "query": "{ me { id } }" });
    let bearer = format!("Bearer {access}");
    for given in [None, Some("two words\tand a tab")] {
        let mut headers = vec![("Authorization", bearer.as_str())];
        if let Some(given) = given {
            headers.push(("X-Request-Id", given));
        }
        let (id, answer) = post(&server, &headers, &me).await;
        assert_eq!(answer["data"]["me"]["id"], user.as_str());
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        let line = server.request_line(&id).await;
        assert_eq!(line["fields"]["user.id"], user.as_str(), "{line}");
        assert_eq!(line["fields"]["field"], "query me", "{line}");
    }

    // A successful probe is logged at DEBUG only: one every few seconds says nothing.
    let (_, headers, _) = request(server.address, "GET", "/health", &[], None)
        .await
        .unwrap();
    let probe = header(&headers, "x-request-id").unwrap().to_owned();

    // A refused request has its line and id too.
    let (status, headers, _) = request(server.address, "GET", "/nowhere", &[], None)
        .await
        .unwrap();
    assert_eq!(status, 404);
    let id = header(&headers, "x-request-id").expect("an id on a 404");
    assert_eq!(server.request_line(id).await["fields"]["status"], 404);
    let logged = server.json_log();
    assert!(
        !logged
            .iter()
            .any(|l| l["fields"]["request.id"] == probe.as_str()),
        "a probe logged at INFO"
    );

    // Nothing secret in the whole log: no password, token or address.
    let log = server.log().join("\n");
    for secret in [PASSWORD, &access, &refresh, email] {
        assert!(!log.contains(secret), "the log holds {secret:?}:\n{log}");
    }
}

/// A POST whose headers and first half of a body are sent; the rest is up to the test.
async fn half_sent(server: &Server, body: &str) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let (first, rest) = body.split_at(body.len() / 2);
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first.as_bytes()).await.unwrap();
    // Until the server has read the head, the request is not in flight.
    tokio::time::sleep(Duration::from_millis(200)).await;
    (stream, rest.to_owned())
}

async fn sigterm_drains_then_finishes_in_flight_requests(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = TestDb::create(backend, dir.path()).await else {
        return;
    };
    let settings = [
        ("USERGRAPH_SHUTDOWN_DELAY", "2s"),
        ("USERGRAPH_SHUTDOWN_TIMEOUT", "20s"),
    ];
    let mut server = Server::start(dir.path(), &db.url, &settings).await;
    let ready = request(server.address, "GET", "/ready", &[], None)
        .await
        .unwrap();
    assert_eq!(ready.0, 200);

    let body = json!({ "query": "{ __typename }" }).to_string();
    let (mut in_flight, rest) = half_sent(&server, &body).await;
    server.terminate();
    let stopping = Instant::now();

    // Draining: not ready, still serving new requests until the delay is over.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _, answer) = request(server.address, "GET", "/ready", &[], None)
        .await
        .unwrap();
    assert_eq!(status, 503);
    assert_eq!(
        serde_json::from_slice::<Value>(&answer).unwrap()["status"],
        "draining"
    );
    let (status, _, _) = request(server.address, "GET", "/health", &[], None)
        .await
        .unwrap();
    assert_eq!(status, 200, "alive while draining");
    let answer = server.gql("{ __typename }", json!({}), None).await;
    assert_eq!(answer["data"]["__typename"], "Query");

    // After the delay the listener is gone, but the request in flight is answered.
    while stopping.elapsed() < Duration::from_millis(2_500) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        TcpStream::connect(server.address).await.is_err(),
        "still accepting connections after the delay"
    );
    in_flight.write_all(rest.as_bytes()).await.unwrap();
    let (status, _, answer) = read_answer(&mut in_flight).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_slice::<Value>(&answer).unwrap()["data"]["__typename"],
        "Query"
    );
    let exit = server.exited(Duration::from_secs(10)).await;
    assert!(exit.success(), "exit status {exit}");
}

async fn shutdown_is_bounded_by_its_timeout(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = TestDb::create(backend, dir.path()).await else {
        return;
    };
    // The body timeout would wait a minute: the shutdown's bound must end it first.
    let settings = [
        ("USERGRAPH_SHUTDOWN_TIMEOUT", "2s"),
        ("USERGRAPH_BODY_TIMEOUT", "60s"),
        ("USERGRAPH_REQUEST_TIMEOUT", "60s"),
    ];
    let mut server = Server::start(dir.path(), &db.url, &settings).await;
    let body = json!({ "query": "{ __typename }" }).to_string();
    let (_stuck, _) = half_sent(&server, &body).await;
    server.terminate();
    let stopping = Instant::now();
    let exit = server.exited(Duration::from_secs(10)).await;
    assert!(exit.success(), "exit status {exit}");
    let took = stopping.elapsed();
    assert!(
        took >= Duration::from_secs(1),
        "did not wait for the request in flight ({took:?})"
    );
}
