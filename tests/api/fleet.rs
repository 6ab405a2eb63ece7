//! Two real server processes on one database behave as one: they start together on an
//! empty database, accept each other's tokens, hear of each other's revocations and role
//! changes within the stated second, and share rate limits (through the database, or
//! through Redis on PostgreSQL when `TEST_REDIS_URL` names one).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, PASSWORD, TestDb, error_code, usergraph_in};
use crate::process::Server;

both_backends!(two_processes_behave_as_one);

/// How long a change made on one instance may take to apply on the other: the README's one
/// second, with slack for a busy machine.
const BOUND: Duration = Duration::from_secs(5);

/// Waits until `check` holds, failing with `what` after [`BOUND`].
async fn within_bound(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < BOUND, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn login(server: &Server, email: &str) -> Value {
    server
        .gql(
            "mutation($email: String!, $password: String!) {
                login(input: { email: $email, password: $password }) { accessToken refreshToken }
            }",
            json!({ "email": email, "password": PASSWORD }),
            None,
        )
        .await
}

/// Logs in; the access and refresh tokens.
async fn tokens(server: &Server, email: &str) -> (String, String) {
    let answer = login(server, email).await;
    let login = &answer["data"]["login"];
    let access = login["accessToken"].as_str();
    let access = access.unwrap_or_else(|| panic!("login failed: {answer}"));
    (
        access.to_owned(),
        login["refreshToken"].as_str().unwrap().to_owned(),
    )
}

async fn register(server: &Server, email: &str) -> String {
    let answer = server
        .gql(
            "mutation($email: String!, $password: String!) {
                register(input: { email: $email, password: $password, displayName: \"Fleet\" }) {
                    user { id }
                }
            }",
            json!({ "email": email, "password": PASSWORD }),
            None,
        )
        .await;
    let id = answer["data"]["register"]["user"]["id"].as_str();
    id.unwrap_or_else(|| panic!("register failed: {answer}"))
        .to_owned()
}

/// The error code of `me` with `token` on `server` (`None` when it answered).
async fn me(server: &Server, token: &str) -> Option<String> {
    let answer = server.gql("{ me { id } }", json!({}), Some(token)).await;
    answer.get("errors").map(|_| error_code(&answer).to_owned())
}

/// Runs `query` on `server` as `token`; fails the test if it answers an error.
async fn succeeds(server: &Server, query: &str, variables: Value, token: &str) {
    let answer = server.gql(query, variables, Some(token)).await;
    assert!(answer.get("errors").is_none(), "{answer}");
}

async fn can_list_users(server: &Server, token: &str) -> bool {
    let answer = server
        .gql(
            "{ users(first: 1) { nodes { id } } }",
            json!({}),
            Some(token),
        )
        .await;
    answer.get("errors").is_none()
}

/// Runs `usergraph` with `args` on the fleet's database and keys; fails when it does.
fn command(dir: &Path, database: &str, keys: &Path, args: &[&str]) {
    let output = usergraph_in(dir)
        .env("DATABASE_URL", database)
        .env("USERGRAPH_JWT_KEY_DIR", keys)
        .env("USERGRAPH_ARGON2_MEMORY_KIB", "64")
        .env("USERGRAPH_ARGON2_ITERATIONS", "1")
        .args(args)
        .output()
        .expect("running usergraph");
    assert!(
        output.status.success(),
        "usergraph {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Creates the administrator `ops@example.com` with `usergraph admin create`.
pub(crate) fn create_admin(dir: &Path, database: &str, keys: &Path) {
    let args = [
        "admin",
        "create",
        "--email",
        "ops@example.com",
        "--password",
        PASSWORD,
    ];
    command(dir, database, keys, &args);
}

async fn two_processes_behave_as_one(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = TestDb::empty(backend, dir.path()).await else {
        return;
    };
    let (a_dir, b_dir, keys) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("keys"),
    );
    // The signing key is provisioned before the fleet starts, as a Kubernetes Secret is.
    std::fs::create_dir_all(&keys).unwrap();
    command(dir.path(), &db.url, &keys, &["keys", "list"]);
    let keys_dir = keys.display().to_string();
    let mut settings = vec![
        ("USERGRAPH_JWT_KEY_DIR", keys_dir.as_str()),
        ("USERGRAPH_RATE_LIMITS", "login.account=3/1h"),
    ];
    // Buckets in the database on SQLite; on PostgreSQL in Redis where there is one (CI),
    // so that both shared stores are crossed by real processes.
    let redis = std::env::var("TEST_REDIS_URL").ok();
    let prefix = format!("usergraph-fleet-{}:", uuid::Uuid::now_v7());
    match (&redis, backend) {
        (Some(url), Backend::Postgres) => settings.extend([
            ("USERGRAPH_RATE_LIMIT_STORE", "redis"),
            ("USERGRAPH_REDIS_URL", url.as_str()),
            ("USERGRAPH_REDIS_KEY_PREFIX", prefix.as_str()),
        ]),
        _ => settings.push(("USERGRAPH_RATE_LIMIT_STORE", "database")),
    }

    // Both start at once on a database with no tables: one migrates, the other waits.
    let a = Server::spawn(&a_dir, &db.url, &settings);
    let b = Server::spawn(&b_dir, &db.url, &settings);
    a.wait_healthy().await;
    b.wait_healthy().await;
    for server in [&a, &b] {
        let (status, _, _) = crate::process::request(server.address, "GET", "/ready", &[], None)
            .await
            .unwrap();
        assert_eq!(status, 200, "{}", server.log().join("\n"));
    }
    let applied: u64 = [&a, &b]
        .iter()
        .flat_map(|s| s.json_log())
        .filter(|l| l["fields"]["message"] == "applied database migrations")
        .filter_map(|l| l["fields"]["count"].as_u64())
        .sum();
    let tree = match backend {
        Backend::Sqlite => "migrations/sqlite",
        Backend::Postgres => "migrations/postgres",
    };
    let migrations = std::fs::read_dir(tree).unwrap().count() as u64;
    assert_eq!(applied, migrations, "each migration applied once in all");

    // A token signed by A is accepted by B.
    create_admin(dir.path(), &db.url, &keys);
    let (admin, _) = tokens(&a, "ops@example.com").await;
    let user = register(&b, "member@example.com").await;
    let (access, refresh) = tokens(&a, "member@example.com").await;
    assert_eq!(me(&b, &access).await, None);

    // A session ended on A is refused on B within the bound.
    let logout = "mutation($token: String!) { logout(refreshToken: $token) }";
    succeeds(&a, logout, json!({ "token": refresh }), &access).await;
    within_bound("B kept accepting a session revoked on A", async || {
        me(&b, &access).await.as_deref() == Some("UNAUTHENTICATED")
    })
    .await;

    // A role given on A applies on B within the bound, and so does taking it back.
    let (access, _) = tokens(&b, "member@example.com").await;
    assert!(!can_list_users(&b, &access).await);
    let grant = "mutation($id: ID!) {
        createRole(input: { name: \"reader\", permissions: [\"users:read\"] }) { name }
        assignRole(userId: $id, role: \"reader\") { id }
    }";
    succeeds(&a, grant, json!({ "id": user }), &admin).await;
    within_bound("B ignored a role given on A", async || {
        can_list_users(&b, &access).await
    })
    .await;
    let revoke = "mutation($id: ID!) { revokeRole(userId: $id, role: \"reader\") { id } }";
    succeeds(&a, revoke, json!({ "id": user }), &admin).await;
    within_bound("B kept a role taken away on A", async || {
        !can_list_users(&b, &access).await
    })
    .await;

    // One account's login budget (3 an hour here) is spent across both instances.
    register(&a, "limited@example.com").await;
    for server in [&a, &b, &a] {
        tokens(server, "limited@example.com").await;
    }
    let refused = login(&b, "limited@example.com").await;
    assert_eq!(error_code(&refused), "RATE_LIMITED", "{refused}");
}
