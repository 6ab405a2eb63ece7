//! Database access for both backends: pools, the connection enum the repositories take, the
//! dispatch macros, migrations, and the mapping of constraint violations.
//!
//! diesel-async has no multi-backend connection yet, so [`Conn`] is an enum of the two and
//! [`with_conn!`] expands a query body once per backend. Only this module and its children
//! contain SQL.

pub mod account_changes;
pub mod audit;
pub mod clock;
pub mod connect;
pub mod email_tokens;
pub mod live_events;
pub mod login_failures;
pub mod mail_outbox;
pub mod mfa;
pub mod password_resets;
pub mod personal_tokens;
pub mod rate_limits;
pub mod roles;
pub mod schema;
pub mod sessions;
pub mod users;

use std::time::Duration;

use anyhow::Context as _;
use diesel::connection::SimpleConnection as _;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{
    AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _, SimpleAsyncConnection as _,
};
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use futures_util::FutureExt as _;

use crate::config::DatabaseUrl;
use crate::error::{AppError, Outcome};

/// SQLite behind diesel-async: a sync connection run on the blocking pool.
pub type SqliteConnection = SyncConnectionWrapper<diesel::SqliteConnection>;

const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// How long a SQLite connection waits for another writer's lock before failing.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 5_000;

pub use crate::{transaction, with_conn};

/// A connection pool for either backend.
#[derive(Clone)]
pub enum DbPool {
    /// PostgreSQL.
    Postgres(Pool<AsyncPgConnection>),
    /// SQLite.
    Sqlite(Pool<SqliteConnection>),
}

/// A pooled connection for either backend.
#[expect(
    clippy::large_enum_variant,
    reason = "one lives on the stack per request; boxing would add an allocation for nothing"
)]
pub enum DbConn {
    /// PostgreSQL.
    Postgres(Object<AsyncPgConnection>),
    /// SQLite.
    Sqlite(Object<SqliteConnection>),
}

/// A borrowed connection for either backend: what every repository function takes, so the
/// same function runs on a pooled connection and inside a transaction.
pub enum Conn<'a> {
    /// PostgreSQL.
    Postgres(&'a mut AsyncPgConnection),
    /// SQLite.
    Sqlite(&'a mut SqliteConnection),
}

/// Runs `$body` with `$c` bound to the backend's concrete connection. `$conn` is a
/// `&mut Conn<'_>`.
#[macro_export]
macro_rules! with_conn {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::Conn::Postgres($c) => {
                let $c = &mut **$c;
                $body
            }
            $crate::db::Conn::Sqlite($c) => {
                let $c = &mut **$c;
                $body
            }
        }
    };
}

/// Runs `$body` in a write transaction with `$c: &mut Conn`. `$db` is a `&mut DbConn`. On
/// SQLite the transaction starts with `BEGIN IMMEDIATE`, so it takes the write lock up front
/// and waits for it (`busy_timeout`) instead of failing with `SQLITE_BUSY` when it upgrades.
#[macro_export]
macro_rules! transaction {
    ($db:expr, |$c:ident| $body:expr) => {
        match $db {
            $crate::db::DbConn::Postgres(pooled) => {
                diesel_async::AsyncConnection::transaction(&mut **pooled, async |tx| {
                    let mut conn = $crate::db::Conn::Postgres(tx);
                    let $c = &mut conn;
                    $body
                })
                .await
            }
            $crate::db::DbConn::Sqlite(pooled) => {
                pooled
                    .immediate_transaction(async |tx| {
                        let mut conn = $crate::db::Conn::Sqlite(tx);
                        let $c = &mut conn;
                        $body
                    })
                    .await
            }
        }
    };
}

impl DbPool {
    /// Opens a pool of at most `size` connections; waits at most `timeout` for one.
    pub async fn connect(url: &DatabaseUrl, size: u32, timeout: Duration) -> anyhow::Result<Self> {
        let size = usize::try_from(size).context("pool size")?;
        let pool = match url {
            DatabaseUrl::Postgres(url) => {
                let mut config = ManagerConfig::default();
                config.recycling_method = RecyclingMethod::Fast;
                config.custom_setup = Box::new(move |url| connect::establish(url, timeout).boxed());
                let manager =
                    AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
                Self::Postgres(bounded_pool(manager, size, timeout).context("the PostgreSQL pool")?)
            }
            DatabaseUrl::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("creating {}", dir.display()))?;
                }
                let path = path
                    .to_str()
                    .context("the SQLite path is not valid UTF-8")?;
                let mut config = ManagerConfig::<SqliteConnection>::default();
                config.recycling_method = RecyclingMethod::Fast;
                config.custom_setup = Box::new(|url| establish_sqlite(url.to_owned()).boxed());
                let manager = AsyncDieselConnectionManager::new_with_config(path, config);
                Self::Sqlite(bounded_pool(manager, size, timeout).context("the SQLite pool")?)
            }
        };
        // Fail at start, with a clear message, when the database cannot be reached.
        pool.get()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("connecting to the database")?;
        Ok(pool)
    }

    /// Takes a connection from the pool; `SERVICE_UNAVAILABLE` when none comes in time.
    pub async fn get(&self) -> Result<DbConn, AppError> {
        let conn = match self {
            Self::Postgres(pool) => pool.get().await.map(DbConn::Postgres),
            Self::Sqlite(pool) => pool.get().await.map(DbConn::Sqlite),
        };
        // Nothing was sent yet: whatever the caller meant to change is unchanged.
        conn.map_err(|e| {
            AppError::ServiceUnavailable(Outcome::NotApplied, anyhow::anyhow!("database pool: {e}"))
        })
    }

    /// Answers whether the database runs a trivial query.
    pub async fn ping(&self) -> Result<(), AppError> {
        let mut db = self.get().await?;
        with_conn!(&mut db.conn(), |c| {
            diesel::select(diesel::dsl::sql::<diesel::sql_types::Integer>("1"))
                .execute(c)
                .await
        })
        .map(drop)
        .map_err(|e| AppError::ServiceUnavailable(Outcome::Unknown, e.into()))
    }

    /// The pool's state: its maximum size, connections open, idle ones, and requests
    /// waiting for one.
    pub fn status(&self) -> deadpool::Status {
        match self {
            Self::Postgres(pool) => pool.status(),
            Self::Sqlite(pool) => pool.status(),
        }
    }

    /// Which backend this pool talks to, for logs.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "postgres",
            Self::Sqlite(_) => "sqlite",
        }
    }
}

impl DbConn {
    /// Borrows the connection for repository functions.
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            Self::Postgres(c) => Conn::Postgres(c),
            Self::Sqlite(c) => Conn::Sqlite(c),
        }
    }
}

/// A pool of at most `size` connections that waits at most `timeout` for one, and as long
/// to open one.
fn bounded_pool<C>(
    manager: AsyncDieselConnectionManager<C>,
    size: usize,
    timeout: Duration,
) -> Result<deadpool::managed::Pool<AsyncDieselConnectionManager<C>>, deadpool::managed::BuildError>
where
    AsyncDieselConnectionManager<C>: deadpool::managed::Manager,
{
    Pool::builder(manager)
        .max_size(size)
        .wait_timeout(Some(timeout))
        .create_timeout(Some(timeout))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
}

async fn establish_sqlite(path: String) -> diesel::ConnectionResult<SqliteConnection> {
    let mut conn = SqliteConnection::establish(&path).await?;
    // One statement each: a failed pragma must not hide behind a later one.
    for pragma in [
        "PRAGMA foreign_keys = ON".to_owned(),
        format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}"),
        "PRAGMA journal_mode = WAL".to_owned(),
        "PRAGMA synchronous = NORMAL".to_owned(),
    ] {
        run_pragma(&mut conn, &pragma)
            .await
            .map_err(|e| diesel::ConnectionError::BadConnection(format!("{pragma}: {e}")))?;
    }
    Ok(conn)
}

/// Runs `pragma`, trying again for up to the busy timeout while another connection's lock
/// refuses it. Switching a new database to WAL needs the exclusive lock, and SQLite refuses
/// it at once, without waiting, while another connection holds the write lock: an instance
/// starting beside one that is migrating the same new file failed to start that way.
async fn run_pragma(conn: &mut SqliteConnection, pragma: &str) -> diesel::QueryResult<()> {
    let patience = Duration::from_millis(SQLITE_BUSY_TIMEOUT_MS.into());
    let started = std::time::Instant::now();
    loop {
        match conn.batch_execute(pragma).await {
            Err(e)
                if e.to_string().contains("database is locked") && started.elapsed() < patience =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            done => return done,
        }
    }
}

/// Refreshes the planner's statistics of every table (after a bulk load).
pub async fn analyze(conn: &mut Conn<'_>) -> diesel::QueryResult<()> {
    with_conn!(conn, |c| c.batch_execute("ANALYZE").await)
}

/// The PostgreSQL advisory lock held while migrations run (any number; this one spells
/// "usergraph" in hex, so it can be told apart in `pg_locks`).
const MIGRATION_LOCK: i64 = 0x7573_6572_6772_6170;

/// Applies pending migrations; returns how many ran. Instances starting at once take turns
/// (an advisory lock on PostgreSQL, a write lock on SQLite): the first applies, the others
/// find nothing left to do. On a blocking thread: diesel's migration machinery is synchronous.
pub async fn migrate(url: &DatabaseUrl) -> anyhow::Result<usize> {
    use diesel::Connection as _;
    let url = url.clone();
    tokio::task::spawn_blocking(move || match url {
        DatabaseUrl::Postgres(url) => {
            type Wrapper =
                diesel_async::async_connection_wrapper::AsyncConnectionWrapper<AsyncPgConnection>;
            let mut conn = <Wrapper as diesel::Connection>::establish(&url)
                .context("connecting to PostgreSQL")?;
            // A session lock: released by the unlock below, or when the connection closes
            // if this process dies half-way.
            let lock = format!("SELECT pg_advisory_lock({MIGRATION_LOCK})");
            diesel::connection::SimpleConnection::batch_execute(&mut conn, &lock)
                .context("waiting for the migration lock")?;
            let applied = apply(&mut conn, POSTGRES_MIGRATIONS);
            let unlock = format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})");
            diesel::connection::SimpleConnection::batch_execute(&mut conn, &unlock)
                .context("releasing the migration lock")?;
            applied
        }
        DatabaseUrl::Sqlite(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let path = path
                .to_str()
                .context("the SQLite path is not valid UTF-8")?;
            let mut conn = diesel::SqliteConnection::establish(path)
                .with_context(|| format!("opening SQLite database {path}"))?;
            conn.batch_execute("PRAGMA foreign_keys = ON")?;
            conn.batch_execute("PRAGMA busy_timeout = 30000")?;
            // Taken before the list of applied migrations is read, so a second process waits
            // for the first and then sees them applied.
            conn.immediate_transaction(|conn| apply(conn, SQLITE_MIGRATIONS))
        }
    })
    .await
    .context("migration task panicked")?
}

fn apply<B: diesel::backend::Backend>(
    harness: &mut impl diesel_migrations::MigrationHarness<B>,
    migrations: EmbeddedMigrations,
) -> anyhow::Result<usize> {
    harness
        .run_pending_migrations(migrations)
        .map(|versions| versions.len())
        .map_err(|e| anyhow::anyhow!("migration failed: {e}"))
}

/// A unique rule of the schema, named the same on both backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unique {
    /// `users.email`: one account per address.
    UserEmail,
    /// `roles.name`: one role per name.
    RoleName,
    /// Any other unique constraint or key.
    Other,
}

/// Which unique rule `error` broke, if it is a unique violation: PostgreSQL names the
/// constraint, SQLite only says `UNIQUE constraint failed: table.column`.
pub fn unique_violation(error: &diesel::result::Error) -> Option<Unique> {
    use diesel::result::{DatabaseErrorKind, Error};
    let Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) = error else {
        return None;
    };
    let name = match info.constraint_name() {
        Some(name) => name,
        None => info.message().strip_prefix("UNIQUE constraint failed: ")?,
    };
    Some(match name {
        "users_email_key" | "users.email" => Unique::UserEmail,
        "roles_name_key" | "roles.name" => Unique::RoleName,
        _ => Unique::Other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The race of two instances starting on one new SQLite file: one holds the write lock
    /// (migrating) while the other opens its pool, which switches the file to WAL.
    #[tokio::test]
    async fn a_pool_opens_on_a_new_file_while_another_process_writes_it() {
        use diesel::Connection as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.sqlite3");
        let mut writer = diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        writer
            .batch_execute("CREATE TABLE t (x INTEGER); BEGIN IMMEDIATE; INSERT INTO t VALUES (1)")
            .unwrap();
        let migrating = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            writer.batch_execute("COMMIT").unwrap();
        });
        let url = DatabaseUrl::Sqlite(path);
        let pool = DbPool::connect(&url, 2, Duration::from_secs(10)).await;
        migrating.join().unwrap();
        let pool = pool.expect("the pool waits for the lock instead of failing");
        let mut db = pool.get().await.unwrap();
        let DbConn::Sqlite(conn) = &mut db else {
            panic!("a SQLite pool")
        };
        #[derive(diesel::QueryableByName)]
        struct Mode {
            #[diesel(sql_type = diesel::sql_types::Text)]
            journal_mode: String,
        }
        let mode: Mode = diesel_async::RunQueryDsl::get_result(
            diesel::sql_query("PRAGMA journal_mode"),
            &mut **conn,
        )
        .await
        .unwrap();
        assert_eq!(mode.journal_mode, "wal");
    }
}
