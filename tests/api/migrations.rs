//! Migrations go up, down and up again, and both trees describe the same tables.

use std::collections::BTreeSet;

use diesel::QueryableByName;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use usergraph::config::DatabaseUrl;

use crate::both_backends;
use crate::helpers::{Backend, TestApp, TestDb};

both_backends!(migrations_go_up_down_and_up);

fn url_of(db: &TestDb) -> DatabaseUrl {
    match db.backend {
        Backend::Postgres => DatabaseUrl::Postgres(db.url.clone()),
        Backend::Sqlite => DatabaseUrl::Sqlite(db.url.trim_start_matches("sqlite://").into()),
    }
}

/// Runs every down script of `db`'s backend, newest first; returns how many ran.
async fn revert_all(db: &TestDb) -> usize {
    use diesel::Connection as _;
    use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
    use diesel_migrations::{EmbeddedMigrations, MigrationHarness as _, embed_migrations};
    const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");
    const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
    let (backend, url) = (db.backend, db.url.clone());
    // diesel's migrations are synchronous; the PostgreSQL wrapper runs its own runtime.
    tokio::task::spawn_blocking(move || match backend {
        Backend::Postgres => {
            <AsyncConnectionWrapper<AsyncPgConnection> as diesel::Connection>::establish(&url)
                .expect("connect")
                .revert_all_migrations(POSTGRES)
                .expect("revert")
                .len()
        }
        Backend::Sqlite => {
            let mut conn = diesel::SqliteConnection::establish(url.trim_start_matches("sqlite://"))
                .expect("open");
            diesel::connection::SimpleConnection::batch_execute(
                &mut conn,
                "PRAGMA foreign_keys = ON",
            )
            .expect("pragma");
            conn.revert_all_migrations(SQLITE).expect("revert").len()
        }
    })
    .await
    .expect("revert task")
}

async fn migrations_go_up_down_and_up(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = TestDb::create(backend, dir.path()).await else {
        return;
    };
    let url = url_of(&db);
    // A PostgreSQL test database starts migrated (from the template); SQLite starts empty.
    let first = usergraph::db::migrate(&url).await.unwrap();
    let tree = match backend {
        Backend::Sqlite => concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"),
        Backend::Postgres => concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"),
    };
    let trees = std::fs::read_dir(tree).unwrap().count();
    assert_eq!(first, if backend == Backend::Sqlite { trees } else { 0 });
    let before = columns(&db).await;
    assert!(before.contains(&("users".into(), "email".into())));
    let reverted = revert_all(&db).await;
    assert_eq!(reverted, trees);
    assert!(
        columns(&db).await.is_empty(),
        "tables left after reverting everything"
    );
    let again = usergraph::db::migrate(&url).await.unwrap();
    assert_eq!(again, reverted);
    assert_eq!(columns(&db).await, before);
}

#[derive(QueryableByName)]
struct Column {
    #[diesel(sql_type = diesel::sql_types::Text)]
    table_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    column_name: String,
}

/// (table, column) of every application table.
async fn columns(db: &TestDb) -> BTreeSet<(String, String)> {
    columns_at(db.backend, &db.url).await
}

async fn columns_at(backend: Backend, url: &str) -> BTreeSet<(String, String)> {
    let rows: Vec<Column> = match backend {
        Backend::Postgres => {
            let mut conn = AsyncPgConnection::establish(url).await.unwrap();
            diesel::sql_query(
                "SELECT table_name::text AS table_name, column_name::text AS column_name
                 FROM information_schema.columns
                 WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations'",
            )
            .load(&mut conn)
            .await
            .unwrap()
        }
        Backend::Sqlite => {
            use diesel::Connection as _;
            let path = url.trim_start_matches("sqlite://").to_owned();
            tokio::task::spawn_blocking(move || {
                let mut conn = diesel::SqliteConnection::establish(&path).unwrap();
                let query = diesel::sql_query(
                    "SELECT m.name AS table_name, p.name AS column_name
                     FROM sqlite_master m JOIN pragma_table_info(m.name) p
                     WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'
                       AND m.name <> '__diesel_schema_migrations'",
                );
                diesel::RunQueryDsl::load(query, &mut conn).unwrap()
            })
            .await
            .unwrap()
        }
    };
    rows.into_iter()
        .map(|c| (c.table_name, c.column_name))
        .collect()
}

/// Tables only the SQLite tree has, each for something PostgreSQL does without a table:
/// live events (PostgreSQL announces them with NOTIFY).
const SQLITE_ONLY: &[&str] = &["live_events"];

/// Tables only the PostgreSQL tree has: the instances listening for live events (SQLite
/// writes its events whether or not anyone listens: a row in-process costs next to
/// nothing).
const POSTGRES_ONLY: &[&str] = &["live_listeners"];

/// Both migration trees give the same tables and columns (but [`SQLITE_ONLY`] and
/// [`POSTGRES_ONLY`]).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_trees_have_the_same_tables_and_columns() {
    let dir = tempfile::tempdir().unwrap();
    let Some(postgres) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    // Made directly, not with TestDb: this test runs in the PostgreSQL pass too.
    let sqlite = dir.path().join("parity.sqlite3");
    usergraph::db::migrate(&DatabaseUrl::Sqlite(sqlite.clone()))
        .await
        .unwrap();
    let mut pg = columns(&postgres.db).await;
    let mut lite = columns_at(Backend::Sqlite, &sqlite.display().to_string()).await;
    pg.retain(|(table, _)| !POSTGRES_ONLY.contains(&table.as_str()));
    lite.retain(|(table, _)| !SQLITE_ONLY.contains(&table.as_str()));
    assert!(!pg.is_empty());
    assert_eq!(pg, lite, "the migration trees differ");
}
