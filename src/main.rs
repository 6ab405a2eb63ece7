//! The `usergraph` binary: `serve` (the default), `migrate`, `admin create`, `schema`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{CommandFactory as _, Parser as _};
use usergraph::config::{AdminCommand, Cli, Command, Config, DevCommand, KeysCommand};
use usergraph::services::accounts::AdminOutcome;

/// A GraphQL answer is built from many small allocations (a value tree, then its JSON):
/// glibc's allocator spent a quarter of the server's CPU on Q2; mimalloc's thread-local
/// free lists make them cheap.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Kept from the shutdown's bound for what follows the last request: half to send the
/// last traces, half for the runtime to stop.
const EXIT_RESERVE: Duration = Duration::from_millis(500);

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return configuration_error(&error),
    };
    // SQLite runs every statement on a blocking thread. With tokio's default of up to 512
    // such threads, a burst grew ~30 of them, each keeping its own allocator heap (+50 MB);
    // the pool bounds how many statements run at once anyway, so a few more threads than
    // pooled connections (for mail files and migrations) lose nothing.
    let blocking_threads = cli.config.db_pool_size as usize + 4;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(blocking_threads)
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("usergraph: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(cli));
    // Whatever still runs on a blocking thread (a statement, a hash) is not waited for: the
    // shutdown's bound has been spent by now.
    runtime.shutdown_timeout(EXIT_RESERVE / 2);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line: what failed and why, never a backtrace.
            eprintln!("usergraph: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.config;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let telemetry = usergraph::telemetry::init(&config, true)?;
            let served = serve(config).await;
            telemetry.shutdown(EXIT_RESERVE / 2);
            served
        }
        Command::Migrate => {
            init_logging(&config)?;
            config.validate()?;
            let applied = usergraph::db::migrate(&config.database()?).await?;
            println!("applied {applied} migration(s)");
            Ok(())
        }
        Command::Admin {
            command: AdminCommand::Create { email, password },
        } => create_admin(config, &email, &password).await,
        Command::Schema => {
            print!("{}", usergraph::graphql::sdl());
            Ok(())
        }
        Command::Healthcheck => healthcheck(config.listen),
        Command::Keys { command } => keys(&config, command),
        Command::Dev {
            command: DevCommand::Seed { users },
        } => seed(config, users).await,
        Command::Dev {
            command: DevCommand::HashTiming { hashes },
        } => hash_timing(config, hashes).await,
    }
}

/// `keys rotate` and `keys list`.
fn keys(config: &Config, command: KeysCommand) -> anyhow::Result<()> {
    init_logging(config)?;
    config.validate()?;
    let print_list = || -> anyhow::Result<()> {
        for key in usergraph::auth::jwt::JwtKeys::load_or_generate(config)?.states() {
            let starts = chrono::DateTime::from_timestamp(key.starts, 0).unwrap_or_default();
            println!("{}  starts {}  {}", key.kid, starts.to_rfc3339(), key.state);
        }
        Ok(())
    };
    match command {
        KeysCommand::List => print_list(),
        KeysCommand::Rotate { starts_in } => {
            if config.jwt_key_file.is_some() {
                anyhow::bail!(
                    "USERGRAPH_JWT_KEY_FILE names one fixed key; rotation needs the key \
                     directory (USERGRAPH_JWT_KEY_DIR)"
                );
            }
            // Make sure the directory has its first key before a newer one joins it.
            usergraph::auth::jwt::JwtKeys::load_or_generate(config)?;
            let starts = chrono::Utc::now() + chrono::TimeDelta::from_std(starts_in)?;
            let (path, _) = usergraph::auth::keys::add(&config.jwt_key_dir(), starts)?;
            println!("added {}", path.display());
            print_list()
        }
    }
}

/// `admin create`: a new administrator, or the admin role for an existing account.
async fn create_admin(config: Config, email: &str, password: &str) -> anyhow::Result<()> {
    init_logging(&config)?;
    let services = usergraph::build_services(config).await?;
    match services.create_admin(email, password).await {
        Ok(AdminOutcome::Created(id)) => println!("created administrator {id}"),
        Ok(AdminOutcome::Promoted(id)) => {
            println!("gave the admin role to the existing account {id} (password unchanged)");
        }
        Err(usergraph::error::AppError::BadUserInput(fields)) => {
            let why: Vec<String> = fields
                .iter()
                .map(|f| format!("--{} {}", f.field, f.message))
                .collect();
            anyhow::bail!("{}", why.join("; "));
        }
        Err(error) => return Err(error.into_report()),
    }
    Ok(())
}

/// `dev seed`: `users` generated accounts, for benchmarks and demos.
async fn seed(config: Config, users: usize) -> anyhow::Result<()> {
    init_logging(&config)?;
    let services = usergraph::build_services(config).await?;
    let started = std::time::Instant::now();
    let added = services
        .seed_users(users)
        .await
        .map_err(|e| e.into_report().context("seeding"))?;
    println!(
        "added {added} accounts in {:.1?} (password: \"{}\")",
        started.elapsed(),
        usergraph::services::seed::SEED_PASSWORD
    );
    Ok(())
}

/// Times `hashes` password hashes in a row on one hashing thread, as the server runs them.
async fn hash_timing(mut config: Config, hashes: u32) -> anyhow::Result<()> {
    config.password_hash_concurrency = Some(1);
    let hasher = usergraph::auth::password::PasswordHasher::new(&config).await?;
    let password = usergraph::domain::Password::verified("a password to time hashing with");
    let hash = |_| async {
        hasher
            .hash(&password)
            .await
            .map_err(|e| e.into_report().context("hashing"))
    };
    hash(()).await?;
    let started = std::time::Instant::now();
    for _ in 0..hashes.max(1) {
        hash(()).await?;
    }
    let ms = started.elapsed().as_secs_f64() * 1000.0 / f64::from(hashes.max(1));
    println!(
        "{}",
        serde_json::json!({
            "ms_per_hash": (ms * 100.0).round() / 100.0,
            "memory_kib": config.argon2_memory_kib,
            "iterations": config.argon2_iterations,
            "parallelism": config.argon2_parallelism,
        })
    );
    Ok(())
}

/// A plain HTTP/1.0 GET of `/health` on the listen address (loopback when it is a wildcard).
fn healthcheck(listen: SocketAddr) -> anyhow::Result<()> {
    use std::io::{Read as _, Write as _};
    let mut target = listen;
    if target.ip().is_unspecified() {
        target.set_ip(if listen.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let timeout = std::time::Duration::from_secs(3);
    let mut stream = std::net::TcpStream::connect_timeout(&target, timeout)
        .with_context(|| format!("cannot connect to {target}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(b"GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut head = [0u8; 16];
    let n = stream.read(&mut head)?;
    let status = String::from_utf8_lossy(&head[..n]);
    anyhow::ensure!(
        status.starts_with("HTTP/1.0 200") || status.starts_with("HTTP/1.1 200"),
        "unhealthy: {status}"
    );
    println!("healthy");
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.listen;
    let app = usergraph::build(config).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("USERGRAPH_LISTEN: cannot listen on {listen}"))?;
    tracing::info!(
        address = %listen,
        database = app.services.backend(),
        "serving GraphQL at http://{listen}/graphql"
    );
    let config = app.services.config();
    let options = usergraph::http::serve::ServeOptions {
        header_timeout: config.header_timeout,
        max_connections: usize::try_from(config.max_connections).unwrap_or(1024),
        // What the shutdown's bound leaves once the draining delay is over, less a moment
        // for the last traces and the runtime's end.
        shutdown_grace: config
            .shutdown_timeout
            .saturating_sub(config.shutdown_delay)
            .saturating_sub(EXIT_RESERVE),
    };
    if let Some(address) = app.services.config().metrics_listen {
        let metrics = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("USERGRAPH_METRICS_LISTEN: cannot listen on {address}"))?;
        tracing::info!(address = %address, "serving metrics at http://{address}/metrics");
        let router = usergraph::http::scrape::router(app.services.clone());
        tokio::spawn(async move { axum::serve(metrics, router).await });
    }
    let draining = drain(app.readiness.clone(), config.shutdown_delay);
    usergraph::http::serve::serve(listener, app.router, options, draining).await;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves once a stop was asked for and `/ready` has answered 503 for `delay`: the server
/// then stops accepting and finishes in-flight requests.
async fn drain(readiness: usergraph::http::health::Readiness, delay: Duration) {
    shutdown_signal().await;
    readiness.drain();
    tracing::info!(
        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        "shutting down: /ready answers 503; still serving until the delay is over"
    );
    tokio::time::sleep(delay).await;
    tracing::info!("shutting down: no new connections; finishing in-flight requests");
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// Logs only: the commands besides `serve` send no traces.
fn init_logging(config: &Config) -> anyhow::Result<()> {
    // Nothing to shut down without traces.
    let _ = usergraph::telemetry::init(config, false)?;
    Ok(())
}

/// Prints a clap error as one line that names the environment variable, then exits.
fn configuration_error(error: &clap::Error) -> ExitCode {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = error.print();
        return ExitCode::SUCCESS;
    }
    let arg = match error.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => Some(arg.clone()),
        _ => None,
    };
    let value = match error.get(ContextKind::InvalidValue) {
        Some(ContextValue::String(value)) => Some(value.clone()),
        _ => None,
    };
    let Some(arg) = arg else {
        let text = error.to_string();
        let first = text.lines().next().unwrap_or("invalid command line");
        eprintln!("usergraph: {}", first.trim_start_matches("error: "));
        return ExitCode::from(2);
    };
    // `--listen <LISTEN>` → the flag's environment variable, if it has one.
    let long = arg
        .split_whitespace()
        .next()
        .unwrap_or(&arg)
        .trim_start_matches("--")
        .to_owned();
    let env = Cli::command()
        .get_arguments()
        .find(|a| a.get_long() == Some(long.as_str()))
        .and_then(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()));
    let reason = std::error::Error::source(error)
        .map(ToString::to_string)
        .unwrap_or_else(|| "invalid value".to_owned());
    let name = env.map_or_else(|| format!("--{long}"), |env| format!("{env} (--{long})"));
    match value {
        Some(value) => eprintln!("usergraph: {name}: `{value}` is invalid: {reason}"),
        None => eprintln!("usergraph: {name}: {reason}"),
    }
    ExitCode::from(2)
}
