//! A database that fails under load: a TCP proxy of the test's own between usergraph and
//! PostgreSQL cuts every connection, then accepts connections and never answers, then
//! behaves again, while writes keep coming. Every answer must tell the truth: a success is
//! in the database, `NOT_APPLIED` is not, `UNKNOWN` may be either; nothing else is allowed.
//! On SQLite, the same for a database file another process keeps locked.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::both_backends;
use crate::helpers::{Backend, PASSWORD, TestApp};

both_backends!(writes_tell_the_truth_while_the_database_fails);

/// What the proxy does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Forwards both ways.
    Pass,
    /// Closes every connection and each new one at once.
    Cut,
    /// Accepts connections, forwards nothing either way, never answers.
    Stall,
}

/// A TCP proxy to `upstream` whose behaviour the test switches.
struct Proxy {
    address: SocketAddr,
    mode: watch::Sender<Mode>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (mode, watching) = watch::channel(Mode::Pass);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let watching = watching.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let now = *watching.borrow();
                    match now {
                        Mode::Cut => drop(client),
                        // Hold the socket, read nothing, answer nothing, until the mode moves.
                        Mode::Stall => {
                            let mut watching = watching;
                            let _ = watching.wait_for(|m| *m != Mode::Stall).await;
                            drop(client);
                        }
                        Mode::Pass => {
                            let Ok(server) = TcpStream::connect(&upstream).await else {
                                return;
                            };
                            let (client_read, client_write) = client.into_split();
                            let (server_read, server_write) = server.into_split();
                            tokio::join!(
                                pump(client_read, server_write, watching.clone()),
                                pump(server_read, client_write, watching),
                            );
                        }
                    }
                });
            }
        });
        Self { address, mode }
    }

    fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

/// Copies `from` to `to` while the mode is `Pass`; holds still while it is `Stall`; ends
/// both (dropping them closes the sockets) when it is `Cut`.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let current = *mode.borrow_and_update();
        match current {
            Mode::Cut => return,
            Mode::Stall => {
                if mode.changed().await.is_err() {
                    return;
                }
            }
            Mode::Pass => {
                tokio::select! {
                    read = from.read(&mut buffer) => match read {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            // Bytes read just before a stall are held, not forwarded.
                            let after = mode.wait_for(|m| *m != Mode::Stall).await.map(|m| *m);
                            if !matches!(after, Ok(Mode::Pass)) {
                                return;
                            }
                            if to.write_all(&buffer[..n]).await.is_err() {
                                return;
                            }
                        }
                    },
                    changed = mode.changed() => if changed.is_err() { return },
                }
            }
        }
    }
}

/// `host:port` of a `postgres://` URL, and the URL with that part replaced by `via`.
fn reroute(url: &str, via: SocketAddr) -> (String, String) {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (user, host) = match authority.rsplit_once('@') {
        Some((user, host)) => (Some(user), host),
        None => (None, authority),
    };
    let upstream = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    };
    let user = user.map(|u| format!("{u}@")).unwrap_or_default();
    (upstream, format!("{scheme}://{user}{via}{path}"))
}

/// One write's email and what the server said.
struct Answer {
    email: String,
    status: StatusCode,
    body: Value,
    took: Duration,
}

async fn register(app: &TestApp, email: &str) -> Answer {
    let body = json!({
        "query": "mutation($e: String!, $p: String!) { register(input: { email: $e, password: $p }) { user { id } } }",
        "variables": { "e": email, "p": PASSWORD },
    });
    let request = Request::post("/graphql")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let started = Instant::now();
    let (status, _, bytes) = app.send(request).await;
    Answer {
        email: email.to_owned(),
        status,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        took: started.elapsed(),
    }
}

async fn status_of(app: &TestApp, path: &str) -> StatusCode {
    app.send(Request::get(path).body(Body::empty()).unwrap())
        .await
        .0
}

/// Keeps `workers` writers registering new accounts until `stop` says so.
fn load(
    app: &Arc<TestApp>,
    workers: usize,
    stop: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<Vec<Answer>>> {
    let counter = Arc::new(AtomicUsize::new(0));
    (0..workers)
        .map(|_| {
            let app = app.clone();
            let stop = stop.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut answers = Vec::new();
                while !*stop.borrow() {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    answers.push(register(&app, &format!("load{n}@example.com")).await);
                }
                answers
            })
        })
        .collect()
}

async fn writes_tell_the_truth_while_the_database_fails(backend: Backend) {
    match backend {
        Backend::Postgres => through_a_failing_proxy().await,
        Backend::Sqlite => with_the_file_locked().await,
    }
}

async fn through_a_failing_proxy() {
    let mut proxy = None;
    let routed = TestApp::spawn_routed(
        Backend::Postgres,
        async |url: &str| {
            let (upstream, _) = reroute(url, "127.0.0.1:1".parse().unwrap());
            let started = Proxy::start(upstream).await;
            let (_, via) = reroute(url, started.address);
            proxy = Some(started);
            via
        },
        // A load from one address: its rate limits are not what this test is about.
        &[
            "--db-timeout",
            "2s",
            "--db-pool-size",
            "4",
            "--rate-limits",
            "off",
        ],
    )
    .await;
    let Some(app) = routed else {
        return;
    };
    let proxy = proxy.expect("the proxy");
    let app = Arc::new(app);
    let (stop, stopping) = watch::channel(false);
    let writers = load(&app, 6, &stopping);

    let mut during_faults = Vec::new();
    tokio::time::sleep(Duration::from_secs(2)).await;
    for fault in [Mode::Cut, Mode::Stall] {
        proxy.set(fault);
        tokio::time::sleep(Duration::from_secs(3)).await;
        during_faults.push((
            fault,
            status_of(&app, "/ready").await,
            status_of(&app, "/health").await,
        ));
        tokio::time::sleep(Duration::from_secs(1)).await;
        proxy.set(Mode::Pass);
        tokio::time::sleep(Duration::from_secs(4)).await;
    }
    stop.send_replace(true);
    let mut answers = Vec::new();
    for writer in writers {
        answers.extend(writer.await.unwrap());
    }
    for (fault, ready, health) in during_faults {
        assert_eq!(
            ready,
            StatusCode::SERVICE_UNAVAILABLE,
            "/ready during {fault:?}"
        );
        assert_eq!(health, StatusCode::OK, "/health during {fault:?}");
    }

    // The truth, read straight from PostgreSQL, past the proxy.
    let url = app.db.url.clone();
    let mut direct = AsyncPgConnection::establish(&url).await.unwrap();
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        email: String,
    }
    let stored: std::collections::HashSet<String> = diesel::sql_query("SELECT email FROM users")
        .load::<Row>(&mut direct)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.email)
        .collect();
    let summary = check_answers(&answers, |email| stored.contains(email));
    let slowest = answers.iter().map(|a| a.took).max().unwrap_or_default();
    eprintln!(
        "{} writes: {summary:?}, slowest answer {slowest:?}",
        answers.len()
    );
    assert!(
        summary.unavailable > 0,
        "no write noticed the faults: {summary:?}"
    );
    assert!(summary.ok > 0, "no write succeeded: {summary:?}");

    // Recovered, without a restart.
    assert_eq!(status_of(&app, "/ready").await, StatusCode::OK);
    let after = register(&app, "after@example.com").await;
    assert!(after.body.get("errors").is_none(), "{}", after.body);
}

#[derive(Debug, Default)]
struct Summary {
    ok: usize,
    unavailable: usize,
    unknown: usize,
}

/// Checks every answer against what the database holds; returns the counts.
fn check_answers(answers: &[Answer], stored: impl Fn(&str) -> bool) -> Summary {
    let mut summary = Summary::default();
    for answer in answers {
        assert!(
            answer.took < Duration::from_secs(15),
            "{} took {:?}: {}",
            answer.email,
            answer.took,
            answer.body
        );
        let Some(error) = answer.body["errors"].get(0) else {
            assert_eq!(answer.status, StatusCode::OK);
            assert!(
                stored(&answer.email),
                "{} succeeded but is not stored",
                answer.email
            );
            summary.ok += 1;
            continue;
        };
        let code = error["extensions"]["code"].as_str().unwrap_or_default();
        assert_eq!(
            code, "SERVICE_UNAVAILABLE",
            "{}: {}",
            answer.email, answer.body
        );
        summary.unavailable += 1;
        match error["extensions"]["outcome"].as_str() {
            Some("NOT_APPLIED") => assert!(
                !stored(&answer.email),
                "{} was NOT_APPLIED but is stored",
                answer.email
            ),
            Some("UNKNOWN") => summary.unknown += 1,
            other => panic!("{}: outcome {other:?} in {}", answer.email, answer.body),
        }
        let text = answer.body.to_string();
        assert!(
            !text.contains("ugtest_") && !text.contains("SELECT"),
            "{text}"
        );
    }
    summary
}

async fn with_the_file_locked() {
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, &["--rate-limits", "off"]).await else {
        return;
    };
    let app = Arc::new(app);
    let path = app.db.url.trim_start_matches("sqlite://").to_owned();
    // Another process's writer: an exclusive lock held for longer than the busy timeout.
    let locker = std::thread::spawn(move || {
        use diesel::Connection as _;
        use diesel::connection::SimpleConnection as _;
        let mut conn = diesel::SqliteConnection::establish(&path).unwrap();
        conn.batch_execute("BEGIN EXCLUSIVE").unwrap();
        std::thread::sleep(Duration::from_secs(7));
        conn.batch_execute("COMMIT").unwrap();
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answers = vec![
        register(&app, "locked1@example.com").await,
        register(&app, "locked2@example.com").await,
    ];
    tokio::task::spawn_blocking(move || locker.join().unwrap())
        .await
        .unwrap();
    let mut stored = Vec::new();
    for email in ["locked1@example.com", "locked2@example.com"] {
        let found = app
            .gql(
                "mutation($e: String!, $p: String!) { login(input: { email: $e, password: $p }) { accessToken } }",
                json!({ "e": email, "p": PASSWORD }),
                None,
            )
            .await;
        if found.get("errors").is_none() {
            stored.push(email.to_owned());
        }
    }
    let summary = check_answers(&answers, |email| stored.iter().any(|s| s == email));
    assert!(summary.unavailable > 0, "{summary:?}");
    let after = register(&app, "after@example.com").await;
    assert!(after.body.get("errors").is_none(), "{}", after.body);
}
