//! The real binary as a server: started on a free loopback port with its log kept, spoken
//! to over plain HTTP/1.1, stopped with SIGTERM.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::helpers::usergraph_in;

/// A `usergraph serve` process.
pub struct Server {
    child: Child,
    /// Where it listens.
    pub address: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

/// A free loopback port (free when asked; the server binds it a moment later).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

impl Server {
    /// Starts the binary on `database` with the data directory `dir`, cheap hashing, JSON
    /// logs and `settings` (environment variables); does not wait for it.
    pub fn spawn(dir: &Path, database: &str, settings: &[(&str, &str)]) -> Self {
        let address = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut command = usergraph_in(dir);
        command
            .env("DATABASE_URL", database)
            .env("USERGRAPH_LISTEN", address.to_string())
            .env("USERGRAPH_ARGON2_MEMORY_KIB", "64")
            .env("USERGRAPH_ARGON2_ITERATIONS", "1")
            .env("USERGRAPH_DB_POOL_SIZE", "4")
            .env("USERGRAPH_LOG_FORMAT", "json")
            .env("USERGRAPH_LOG", "info");
        for (name, value) in settings {
            command.env(name, value);
        }
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting usergraph");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().expect("log").push(line);
            }
        });
        Self {
            child,
            address,
            log,
        }
    }

    /// Like [`spawn`](Self::spawn), then waits until `/health` answers.
    pub async fn start(dir: &Path, database: &str, settings: &[(&str, &str)]) -> Self {
        let server = Self::spawn(dir, database, settings);
        server.wait_healthy().await;
        server
    }

    /// Waits until `/health` answers (30 s at most: a first start migrates).
    pub async fn wait_healthy(&self) {
        let started = Instant::now();
        loop {
            if let Ok((200, _, _)) = request(self.address, "GET", "/health", &[], None).await {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the server did not start:\n{}",
                self.log().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What it has logged so far, a line each.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().expect("log").clone()
    }

    /// Its log lines that are JSON objects.
    pub fn json_log(&self) -> Vec<Value> {
        self.log()
            .iter()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// The request log's line for the request id `id`, once the server has written it.
    pub async fn request_line(&self, id: &str) -> Value {
        let started = Instant::now();
        loop {
            let line = self.json_log().into_iter().find(|line| {
                line["target"] == "usergraph::request" && line["fields"]["request.id"] == id
            });
            if let Some(line) = line {
                return line;
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "no request line for {id}:\n{}",
                self.log().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit, failing after `within`.
    pub async fn exited(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running after {within:?}:\n{}",
                self.log().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// POSTs a GraphQL operation (with a bearer token when given); the answer's JSON.
    pub async fn gql(&self, query: &str, variables: Value, token: Option<&str>) -> Value {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(auth) = &auth {
            headers.push(("Authorization", auth.as_str()));
        }
        let body = serde_json::json!({ "query": query, "variables": variables });
        let (_, _, body) = request(self.address, "POST", "/graphql", &headers, Some(&body))
            .await
            .expect("the server answers");
        serde_json::from_slice(&body).expect("a JSON answer")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response: status, headers (names in lower case), body.
pub type Answer = (u16, Vec<(String, String)>, Vec<u8>);

/// One request on a connection of its own (`Connection: close`).
pub async fn request(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> std::io::Result<Answer> {
    let mut stream = TcpStream::connect(address).await?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    read_answer(&mut stream).await
}

/// Reads a whole response from a connection the server closes after it.
pub async fn read_answer(stream: &mut TcpStream) -> std::io::Result<Answer> {
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no complete response head"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"))
    {
        body = unchunk(&body);
    }
    Ok((status, headers, body))
}

/// A chunked body's bytes.
fn unchunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&raw[..end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = end + 2;
        body.extend_from_slice(&raw[start..(start + size).min(raw.len())]);
        raw = raw.get(start + size + 2..).unwrap_or_default();
    }
    body
}

/// The value of header `name` (lower case) in `headers`.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}
