//! Slow and silent clients over a real socket: header and body deadlines, idle keep-alive,
//! the connection cap, and a shutdown that no silent connection can hold up.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use usergraph::http::serve::ServeOptions;

use crate::both_backends;
use crate::helpers::{Backend, TestApp};

both_backends!(
    trickled_headers_are_cut_off,
    idle_keep_alive_connections_are_closed,
    stalled_bodies_get_408,
    connections_beyond_the_cap_wait,
    shutdown_is_not_held_up_by_silent_connections,
);

/// Far above the deadlines below: only a server that never cuts a connection off fails.
const PATIENCE: Duration = Duration::from_secs(20);

fn options() -> ServeOptions {
    ServeOptions {
        header_timeout: Duration::from_secs(1),
        max_connections: 64,
        shutdown_grace: Duration::from_secs(30),
    }
}

async fn app_with_body_timeout(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, &["--body-timeout", "1s"]).await
}

/// Reads until the server closes the connection; returns what it sent.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut received)).await;
    assert!(read.is_ok(), "the server kept the connection open");
    received
}

async fn get_health(address: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    stream
}

/// Reads one response head and its short body (the `/health` answer).
async fn read_response(stream: &mut TcpStream) -> String {
    let mut buffer = vec![0u8; 4096];
    let n = tokio::time::timeout(PATIENCE, stream.read(&mut buffer))
        .await
        .expect("an answer")
        .unwrap();
    String::from_utf8_lossy(&buffer[..n]).into_owned()
}

async fn trickled_headers_are_cut_off(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (address, _stop, _server) = app.listen(options()).await;
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(b"GET /health HTTP/1.1\r\n").await.unwrap();
    // One header byte every 200 ms: never a whole head.
    let trickle = async {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if stream.write_all(b"X").await.is_err() {
                return;
            }
        }
    };
    assert!(
        tokio::time::timeout(PATIENCE, trickle).await.is_ok(),
        "the server kept reading a head that never ends"
    );
}

async fn idle_keep_alive_connections_are_closed(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (address, _stop, _server) = app.listen(options()).await;
    let mut stream = get_health(address).await;
    assert!(read_response(&mut stream).await.starts_with("HTTP/1.1 200"));
    // Then nothing: the server closes the idle connection.
    let rest = read_to_close(&mut stream).await;
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
}

async fn stalled_bodies_get_408(backend: Backend) {
    let Some(app) = app_with_body_timeout(backend).await else {
        return;
    };
    let (address, _stop, _server) = app.listen(options()).await;
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(
            b"POST /graphql HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"query\":",
        )
        .await
        .unwrap();
    let answer = read_response(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"BAD_USER_INPUT\""), "{answer}");
}

async fn connections_beyond_the_cap_wait(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let capped = ServeOptions {
        max_connections: 1,
        header_timeout: Duration::from_secs(30),
        ..options()
    };
    let (address, _stop, _server) = app.listen(capped).await;
    let mut first = get_health(address).await;
    assert!(read_response(&mut first).await.starts_with("HTTP/1.1 200"));
    // The first connection stays open: the second is not served meanwhile.
    let mut second = get_health(address).await;
    let mut buffer = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(500), second.read(&mut buffer)).await;
    assert!(
        early.is_err(),
        "a second connection was served beyond the cap"
    );
    drop(first);
    assert!(read_response(&mut second).await.starts_with("HTTP/1.1 200"));
}

async fn shutdown_is_not_held_up_by_silent_connections(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    // Header deadlines longer than the patience: only closing idle connections at once passes.
    let patient = ServeOptions {
        header_timeout: PATIENCE * 2,
        ..options()
    };
    let (address, stop, server) = app.listen(patient).await;
    // One connection that never says a thing, one that stopped halfway through its head,
    // and one request in flight: its headers are in, its body is still coming.
    let _silent = TcpStream::connect(address).await.unwrap();
    let mut halfway = TcpStream::connect(address).await.unwrap();
    halfway
        .write_all(b"GET /health HTTP/1.1\r\nHo")
        .await
        .unwrap();
    let body = br#"{"query":"{ __typename }"}"#;
    let mut in_flight = TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    in_flight.write_all(head.as_bytes()).await.unwrap();
    in_flight.write_all(&body[..5]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    in_flight.write_all(&body[5..]).await.unwrap();
    let answer = read_response(&mut in_flight).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"__typename\":\"Query\""), "{answer}");
    assert!(
        tokio::time::timeout(PATIENCE, server).await.is_ok(),
        "shutdown waited on connections that send nothing"
    );
}
