//! The test harness: a fresh database per test on either backend, the app built on it, and
//! helpers to send GraphQL through the router.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode};
use clap::Parser as _;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::OnceCell;
use tower::ServiceExt as _;
use usergraph::config::Cli;
use usergraph::services::Services;

/// The `usergraph` binary on the data directory `dir`, with none of the settings of the
/// environment that runs the tests.
pub fn usergraph_in(dir: &std::path::Path) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_usergraph"));
    for var in ["DATABASE_URL", "USERGRAPH_LISTEN", "USERGRAPH_JWT_KEY_FILE"] {
        command.env_remove(var);
    }
    command.env("USERGRAPH_DATA_DIR", dir);
    command
}

/// A password that meets the default policy.
pub const PASSWORD: &str = "correct horse battery staple";

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A fresh SQLite file.
    Sqlite,
    /// A fresh PostgreSQL database cloned from a migrated template.
    Postgres,
}

/// Emits `mod NAME { fn sqlite(); fn postgres(); }` running `NAME(Backend)` on each backend.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::helpers::Backend::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::helpers::Backend::Postgres).await;
                }
            }
        )*
    };
}

/// A database made for one test; a PostgreSQL one is dropped when the test ends.
pub struct TestDb {
    /// The URL the app connects to.
    pub url: String,
    /// The backend.
    pub backend: Backend,
    postgres: Option<(String, String)>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs outside async: use a small runtime of its own on another thread.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async {
                    if let Ok(mut conn) = AsyncPgConnection::establish(&admin_url).await {
                        let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                        let _ = diesel::sql_query(sql).execute(&mut conn).await;
                    }
                });
            }
        })
        .join();
    }
}

/// Whether this run covers `backend`: `USERGRAPH_TEST_BACKEND=sqlite|postgres` picks one
/// (CI runs the suite once per backend); unset, both run.
fn selected(backend: Backend) -> bool {
    match std::env::var("USERGRAPH_TEST_BACKEND").as_deref() {
        Ok("sqlite") => backend == Backend::Sqlite,
        Ok("postgres") => backend == Backend::Postgres,
        _ => true,
    }
}

/// The PostgreSQL server for tests, if configured. In CI it must be.
fn postgres_admin_url() -> Option<String> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("CI").is_none()
                    || std::env::var("USERGRAPH_TEST_BACKEND").as_deref() == Ok("sqlite"),
                "CI must set TEST_DATABASE_URL: the PostgreSQL half of the suite would not run"
            );
            None
        }
    }
}

/// `url` with its database name replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

const TEMPLATE: &str = "ugtest_template";
static TEMPLATE_READY: OnceCell<()> = OnceCell::const_new();

/// Creates (once per test run) a migrated template database, sweeping leftovers first.
async fn prepare_template(admin_url: &str) {
    TEMPLATE_READY
        .get_or_init(|| async {
            let mut conn = AsyncPgConnection::establish(admin_url)
                .await
                .expect("TEST_DATABASE_URL must name a reachable PostgreSQL server");
            #[derive(diesel::QueryableByName)]
            struct Name {
                #[diesel(sql_type = diesel::sql_types::Text)]
                datname: String,
            }
            let leftovers: Vec<Name> = diesel::sql_query(
                "SELECT datname FROM pg_database WHERE datname LIKE 'ugtest\\_%'",
            )
            .load(&mut conn)
            .await
            .expect("listing databases");
            for Name { datname } in leftovers {
                diesel::sql_query(format!(
                    "DROP DATABASE IF EXISTS \"{datname}\" WITH (FORCE)"
                ))
                .execute(&mut conn)
                .await
                .expect("dropping a leftover test database");
            }
            diesel::sql_query(format!("CREATE DATABASE \"{TEMPLATE}\""))
                .execute(&mut conn)
                .await
                .expect("creating the template database");
            let url = usergraph::config::DatabaseUrl::Postgres(with_database(admin_url, TEMPLATE));
            usergraph::db::migrate(&url)
                .await
                .expect("migrating the template");
        })
        .await;
}

impl TestDb {
    /// A fresh, migrated database, or `None` when PostgreSQL is not configured here.
    pub async fn create(backend: Backend, dir: &std::path::Path) -> Option<Self> {
        Self::make(backend, dir, Some(TEMPLATE)).await
    }

    /// A fresh database with no tables yet (a new deployment's), or `None` when PostgreSQL
    /// is not configured here.
    pub async fn empty(backend: Backend, dir: &std::path::Path) -> Option<Self> {
        Self::make(backend, dir, None).await
    }

    async fn make(backend: Backend, dir: &std::path::Path, template: Option<&str>) -> Option<Self> {
        if !selected(backend) {
            return None;
        }
        match backend {
            Backend::Sqlite => Some(Self {
                url: format!("sqlite://{}", dir.join("test.sqlite3").display()),
                backend,
                postgres: None,
            }),
            Backend::Postgres => {
                let Some(admin_url) = postgres_admin_url() else {
                    eprintln!("skipped: set TEST_DATABASE_URL to run the PostgreSQL tests");
                    return None;
                };
                prepare_template(&admin_url).await;
                let name = format!("ugtest_{}", uuid::Uuid::now_v7().simple());
                let mut conn = AsyncPgConnection::establish(&admin_url)
                    .await
                    .expect("connect");
                let create = match template {
                    Some(template) => format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""),
                    None => format!("CREATE DATABASE \"{name}\""),
                };
                diesel::sql_query(create)
                    .execute(&mut conn)
                    .await
                    .expect("creating a test database");
                Some(Self {
                    url: with_database(&admin_url, &name),
                    backend,
                    postgres: Some((admin_url, name)),
                })
            }
        }
    }

    /// The database name on PostgreSQL.
    pub fn postgres_name(&self) -> Option<&str> {
        self.postgres.as_ref().map(|(_, name)| name.as_str())
    }

    /// The admin URL of the PostgreSQL server.
    pub fn postgres_admin_url(&self) -> Option<&str> {
        self.postgres.as_ref().map(|(url, _)| url.as_str())
    }
}

/// An application on a fresh database and data directory.
pub struct TestApp {
    /// The router, as served.
    pub router: Router,
    /// The services behind it.
    pub services: Services,
    /// The data directory (signing key, SQLite file).
    pub dir: Arc<TempDir>,
    /// The database.
    pub db: Arc<TestDb>,
    /// The test's own connections to that database, opened when first asked for.
    sql: OnceCell<usergraph::db::DbPool>,
    url: usergraph::config::DatabaseUrl,
    extra: Vec<String>,
}

impl TestApp {
    /// Builds the app on `backend`; `None` when that backend is not available here.
    pub async fn spawn(backend: Backend) -> Option<Self> {
        Self::spawn_with(backend, &[]).await
    }

    /// Like [`spawn`](Self::spawn) with extra command-line settings.
    pub async fn spawn_with(backend: Backend, extra: &[&str]) -> Option<Self> {
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        let db = Arc::new(TestDb::create(backend, dir.path()).await?);
        let extra = extra.iter().map(|s| (*s).to_owned()).collect();
        Some(Self::build(dir, db, extra).await)
    }

    /// Like [`spawn_with`](Self::spawn_with), connecting through the URL `route` makes of
    /// the test database's (a proxy in front of it, say).
    pub async fn spawn_routed(
        backend: Backend,
        route: impl AsyncFnOnce(&str) -> String,
        extra: &[&str],
    ) -> Option<Self> {
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        let db = Arc::new(TestDb::create(backend, dir.path()).await?);
        let mut extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        extra.extend(["--database-url".to_owned(), route(&db.url).await]);
        Some(Self::build(dir, db, extra).await)
    }

    async fn build(dir: Arc<TempDir>, db: Arc<TestDb>, extra: Vec<String>) -> Self {
        let dir_arg = dir.path().display().to_string();
        let defaults = [
            ("--data-dir", dir_arg.as_str()),
            ("--database-url", db.url.as_str()),
            // Cheap hashing keeps the suite fast; production defaults are OWASP's.
            ("--argon2-memory-kib", "64"),
            ("--argon2-iterations", "1"),
            ("--db-pool-size", "5"),
            ("--log", "warn"),
        ];
        let mut args = vec!["usergraph".to_owned()];
        for (flag, value) in defaults {
            // A test's own setting replaces the default.
            if !extra.iter().any(|e| e == flag) {
                args.extend([flag.to_owned(), value.to_owned()]);
            }
        }
        args.extend(extra.iter().cloned());
        let config = Cli::try_parse_from(&args)
            .expect("test configuration")
            .config;
        let url = config.database().expect("database URL");
        let app = usergraph::build(config).await.expect("building the app");
        Self {
            router: app.router,
            services: app.services,
            dir,
            db,
            sql: OnceCell::new(),
            url,
            extra,
        }
    }

    /// Builds a new app on the same data directory and database, as after a restart.
    pub async fn restart(self) -> Self {
        let Self { dir, db, extra, .. } = self;
        Self::build(dir, db, extra).await
    }

    /// Restarts with other extra settings.
    pub async fn restart_with(self, extra: &[&str]) -> Self {
        let Self { dir, db, .. } = self;
        Self::build(dir, db, extra.iter().map(|s| (*s).to_owned()).collect()).await
    }

    /// A second instance on the same database and data directory, as behind a load balancer.
    pub async fn twin(&self) -> Self {
        Self::build(self.dir.clone(), self.db.clone(), self.extra.clone()).await
    }

    /// A pool of the test's own on the app's database, for what no API shows: statements
    /// behind the app's back, rows to inspect.
    pub async fn sql(&self) -> &usergraph::db::DbPool {
        self.sql
            .get_or_init(|| async {
                let timeout = std::time::Duration::from_secs(10);
                usergraph::db::DbPool::connect(&self.url, 2, timeout)
                    .await
                    .expect("the test's own pool")
            })
            .await
    }

    /// Runs a statement on the app's database (to move clocks or roles behind its back).
    pub async fn exec(&self, sql: &str) {
        let mut db = self.sql().await.get().await.expect("connection");
        let mut conn = db.conn();
        usergraph::with_conn!(&mut conn, |c| diesel::sql_query(sql).execute(c).await).expect(sql);
    }

    /// The `bytes` column of every row `sql` selects: stored values no API shows.
    pub async fn stored_bytes(&self, sql: &str) -> Vec<Vec<u8>> {
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Binary)]
            bytes: Vec<u8>,
        }
        let mut db = self.sql().await.get().await.expect("connection");
        let mut conn = db.conn();
        let rows: Vec<Row> =
            usergraph::with_conn!(&mut conn, |c| diesel::sql_query(sql).load(c).await).expect(sql);
        rows.into_iter().map(|row| row.bytes).collect()
    }

    /// The audit events with this action, oldest first.
    pub async fn audit(&self, action: &str) -> Vec<usergraph::db::audit::AuditEvent> {
        use diesel::{ExpressionMethods as _, QueryDsl as _, SelectableHelper as _};
        use usergraph::db::{audit::AuditEvent, schema::audit_events};
        let mut db = self.sql().await.get().await.expect("connection");
        let mut conn = db.conn();
        usergraph::with_conn!(&mut conn, |c| {
            audit_events::table
                .filter(audit_events::action.eq(action))
                .select(AuditEvent::as_select())
                .order(audit_events::id.asc())
                .load(c)
                .await
        })
        .expect("audit query")
    }

    /// Calls `refreshToken`; returns the whole answer.
    pub async fn refresh(&self, refresh_token: &str) -> Value {
        self.gql(
            "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken refreshToken expiresIn user { id } } }",
            json!({ "t": refresh_token }),
            None,
        )
        .await
    }

    /// Logs in and returns the whole `login` payload (access and refresh token).
    pub async fn login_pair(&self, email: &str, user_agent: &str) -> (String, String) {
        let answer = self
            .gql_as(
                "mutation($email: String!, $password: String!) {
                    login(input: { email: $email, password: $password }) { accessToken refreshToken }
                }",
                json!({ "email": email, "password": PASSWORD }),
                None,
                user_agent,
            )
            .await;
        let login = &answer["data"]["login"];
        (
            login["accessToken"]
                .as_str()
                .unwrap_or_else(|| panic!("login failed: {answer}"))
                .to_owned(),
            login["refreshToken"]
                .as_str()
                .expect("refresh token")
                .to_owned(),
        )
    }

    /// Serves the app on a free loopback port, as `usergraph serve` does; the server stops
    /// when the returned sender is sent to or dropped.
    pub async fn listen(
        &self,
        options: usergraph::http::serve::ServeOptions,
    ) -> (
        std::net::SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a port");
        let address = listener.local_addr().expect("local address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let router = self.router.clone();
        let server = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            usergraph::http::serve::serve(listener, router, options, shutdown).await;
        });
        (address, stop, server)
    }

    /// Like [`twin`](Self::twin) with other extra settings.
    pub async fn twin_with(&self, extra: &[&str]) -> Self {
        let extra = extra.iter().map(|s| (*s).to_owned()).collect();
        Self::build(self.dir.clone(), self.db.clone(), extra).await
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Sends a raw request through the router, from 127.0.0.1 unless the request says from
    /// where (a `ConnectInfo` extension, as the server adds).
    pub async fn send(&self, mut request: Request<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
        let extensions = request.extensions_mut();
        if extensions.get::<ConnectInfo<SocketAddr>>().is_none() {
            extensions.insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40_000))));
        }
        let response = self.router.clone().oneshot(request).await.expect("router");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec();
        (status, headers, body)
    }

    /// Posts a GraphQL operation and returns the JSON answer.
    pub async fn gql(&self, query: &str, variables: Value, token: Option<&str>) -> Value {
        self.gql_as(query, variables, token, "usergraph-tests")
            .await
    }

    /// Like [`gql`](Self::gql) with a User-Agent, as from another device.
    pub async fn gql_as(
        &self,
        query: &str,
        variables: Value,
        token: Option<&str>,
        user_agent: &str,
    ) -> Value {
        let body = json!({ "query": query, "variables": variables });
        let mut request = Request::post("/graphql")
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .header("user-agent", user_agent);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let (status, _, body) = self
            .send(request.body(Body::from(body.to_string())).expect("request"))
            .await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).expect("JSON body")
    }

    /// Posts a GraphQL body from the client at `ip` with extra headers; the status, headers
    /// and JSON answer.
    pub async fn post_from(
        &self,
        ip: &str,
        headers: &[(&str, &str)],
        body: Value,
    ) -> (StatusCode, HeaderMap, Value) {
        let addr: std::net::IpAddr = ip.parse().expect("an IP address");
        let mut request = Request::post("/graphql");
        for (name, value) in [
            ("content-type", "application/json"),
            ("accept", "application/json"),
        ] {
            // A test's own header replaces the default.
            if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                request = request.header(name, value);
            }
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut request = request.body(Body::from(body.to_string())).expect("request");
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(addr, 40_000)));
        let (status, headers, body) = self.send(request).await;
        let answer = serde_json::from_slice(&body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&body)));
        (status, headers, answer)
    }

    /// Registers an account; returns the `register` payload.
    pub async fn register(&self, email: &str) -> Value {
        let answer = self
            .gql(
                "mutation($email: String!, $password: String!) {
                    register(input: { email: $email, password: $password }) {
                        accessToken refreshToken tokenType expiresIn user { id email }
                    }
                }",
                json!({ "email": email, "password": PASSWORD }),
                None,
            )
            .await;
        assert!(answer.get("errors").is_none(), "register failed: {answer}");
        answer["data"]["register"].clone()
    }

    /// Registers an account; returns (access token, user id).
    pub async fn user(&self, email: &str) -> (String, String) {
        let payload = self.register(email).await;
        (
            payload["accessToken"].as_str().expect("token").to_owned(),
            payload["user"]["id"].as_str().expect("id").to_owned(),
        )
    }

    /// Creates an administrator and logs in; returns its access token.
    pub async fn admin(&self) -> String {
        self.services
            .create_admin("admin@example.com", PASSWORD)
            .await
            .expect("creating an admin");
        self.login("admin@example.com", PASSWORD).await
    }

    /// Creates a personal access token without scopes as the holder of `access`; returns it.
    pub async fn personal_token(&self, access: &str, name: &str) -> String {
        let answer = self
            .gql(
                "mutation($name: String!) {
                    createPersonalAccessToken(input: { name: $name, scopes: [] }) { token }
                }",
                json!({ "name": name }),
                Some(access),
            )
            .await;
        answer["data"]["createPersonalAccessToken"]["token"]
            .as_str()
            .unwrap_or_else(|| panic!("no personal token: {answer}"))
            .to_owned()
    }

    /// Logs in; returns the access token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let answer = self
            .gql(
                "mutation($email: String!, $password: String!) {
                    login(input: { email: $email, password: $password }) { accessToken }
                }",
                json!({ "email": email, "password": password }),
                None,
            )
            .await;
        answer["data"]["login"]["accessToken"]
            .as_str()
            .unwrap_or_else(|| panic!("login failed: {answer}"))
            .to_owned()
    }
}

/// The `extensions.code` of the first error.
pub fn error_code(answer: &Value) -> &str {
    answer["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {answer}"))
}

/// The fields named by the first error's `extensions.fields`.
pub fn error_fields(answer: &Value) -> Vec<String> {
    answer["errors"][0]["extensions"]["fields"]
        .as_array()
        .map(|fields| {
            fields
                .iter()
                .filter_map(|f| f["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
