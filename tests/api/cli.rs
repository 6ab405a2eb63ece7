//! The binary: bad configuration, `schema`, `admin create`, and graceful shutdown.

use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_usergraph");

fn usergraph() -> Command {
    let mut command = Command::new(BIN);
    for var in ["DATABASE_URL", "USERGRAPH_LISTEN", "USERGRAPH_DATA_DIR"] {
        command.env_remove(var);
    }
    command
}

#[test]
fn bad_configuration_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("USERGRAPH_LISTEN", "not-an-address", "USERGRAPH_LISTEN"),
        (
            "USERGRAPH_ACCESS_TOKEN_TTL",
            "soon",
            "USERGRAPH_ACCESS_TOKEN_TTL",
        ),
        (
            "USERGRAPH_PASSWORD_MIN_LENGTH",
            "4",
            "USERGRAPH_PASSWORD_MIN_LENGTH",
        ),
        ("DATABASE_URL", "mysql://localhost/db", "DATABASE_URL"),
    ];
    for (var, value, named) in cases {
        let output = usergraph()
            .env("USERGRAPH_DATA_DIR", dir.path())
            .env(var, value)
            .arg("migrate")
            .output()
            .unwrap();
        assert!(!output.status.success(), "{var}={value} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{var}: {stderr}");
        assert!(lines[0].contains(named), "{var}: {stderr}");
        assert!(!stderr.contains("panicked"), "{var}: {stderr}");
    }
}

#[test]
fn schema_command_prints_the_sdl() {
    let output = usergraph().arg("schema").output().unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        usergraph::graphql::sdl()
    );
}

#[test]
fn admin_create_then_promote() {
    let dir = tempfile::tempdir().unwrap();
    let run = |email: &str, password: &str| {
        usergraph()
            .env("USERGRAPH_DATA_DIR", dir.path())
            .env("USERGRAPH_ARGON2_MEMORY_KIB", "64")
            .env("USERGRAPH_ARGON2_ITERATIONS", "1")
            .args(["admin", "create", "--email", email, "--password", password])
            .output()
            .unwrap()
    };
    let created = run("root@example.com", "correct horse battery staple");
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    assert!(String::from_utf8_lossy(&created.stdout).contains("created administrator"));
    let promoted = run("ROOT@example.com", "ignored for an existing account");
    assert!(String::from_utf8_lossy(&promoted.stdout).contains("existing account"));
    let bad = run("root", "short");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--email"));
}

/// A database failure during `admin create` names its cause on the one line the CLI prints,
/// not just "internal server error".
#[test]
fn admin_create_prints_the_cause_of_an_internal_error() {
    use diesel::{Connection as _, connection::SimpleConnection as _};
    let dir = tempfile::tempdir().unwrap();
    let migrated = usergraph()
        .env("USERGRAPH_DATA_DIR", dir.path())
        .arg("migrate")
        .output()
        .unwrap();
    assert!(migrated.status.success());
    let path = dir.path().join("usergraph.sqlite3");
    let mut db = diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    db.batch_execute("DROP TABLE profiles").unwrap();
    let output = usergraph()
        .env("USERGRAPH_DATA_DIR", dir.path())
        .env("USERGRAPH_ARGON2_MEMORY_KIB", "64")
        .env("USERGRAPH_ARGON2_ITERATIONS", "1")
        .args(["admin", "create", "--email", "root@example.com"])
        .args(["--password", "correct horse battery staple"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("internal error") && stderr.contains("no such table: profiles"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_server_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!(
        "sqlite://{}",
        dir.path().join("usergraph.sqlite3").display()
    );
    let mut server = crate::process::Server::start(dir.path(), &database, &[]).await;
    let health = usergraph()
        .env(
            "USERGRAPH_LISTEN",
            format!("0.0.0.0:{}", server.address.port()),
        )
        .arg("healthcheck")
        .output()
        .unwrap();
    assert!(
        health.status.success(),
        "{}",
        String::from_utf8_lossy(&health.stderr)
    );
    server.terminate();
    let status = server.exited(Duration::from_secs(30)).await;
    assert!(status.success(), "exit status {status}");
}
