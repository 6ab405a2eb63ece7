//! Configuration: command-line flags, each with an environment variable, parsed once in `main`
//! and passed down as a [`Config`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};

/// The command line of the `usergraph` binary.
#[derive(Debug, Parser)]
#[command(
    name = "usergraph",
    version,
    about = "A GraphQL user-management server"
)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings shared by every command.
    #[command(flatten)]
    pub config: Config,
}

/// The sub-commands of `usergraph`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the GraphQL API (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Administrative tasks.
    Admin {
        /// The administrative task.
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Print the GraphQL schema (SDL) and exit.
    Schema,
    /// Tools for development, demos and benchmarks.
    Dev {
        /// The tool.
        #[command(subcommand)]
        command: DevCommand,
    },
    /// The access-token signing keys.
    Keys {
        /// What to do with them.
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Ask the server at `USERGRAPH_LISTEN` for `/health`; exit 0 when it answers 200 (for
    /// container health checks, with no curl in the image).
    Healthcheck,
}

/// The sub-commands of `usergraph admin`.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an administrator, or give `admin` to an existing account.
    Create {
        /// The administrator's email address.
        #[arg(long)]
        email: String,
        /// The password of a new account (ignored when the account exists).
        #[arg(long, env = "USERGRAPH_ADMIN_PASSWORD", hide_env_values = true)]
        password: String,
    },
}

/// The sub-commands of `usergraph keys`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Add a signing key to the key directory. Every instance reading the directory
    /// publishes it within 10 s and signs with it from its start.
    Rotate {
        /// How long until it starts signing: on a fleet, longer than the key directory
        /// takes to reach every instance (and their JWKS, the verifiers that cache it).
        #[arg(long, default_value = "0s", value_parser = parse_duration_or_zero)]
        starts_in: Duration,
    },
    /// List the keys: their `kid`, when each starts signing, and whether it signs, waits,
    /// still verifies or is retired.
    List,
}

/// The sub-commands of `usergraph dev`.
#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Add realistic accounts with profiles and roles (password: "seeded account password").
    Seed {
        /// How many accounts to add.
        #[arg(long, default_value_t = 1_000)]
        users: usize,
    },
    /// Time password hashes with the configured argon2 parameters, one at a time on one
    /// thread; prints `{"ms_per_hash": …}` (the benchmark's hashing ceiling).
    HashTiming {
        /// How many hashes to time.
        #[arg(long, default_value_t = 20)]
        hashes: u32,
    },
}

/// Every setting of the server. Each flag also reads the environment variable named beside it.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address and port to listen on.
    #[arg(
        long,
        env = "USERGRAPH_LISTEN",
        default_value = "127.0.0.1:8000",
        global = true
    )]
    pub listen: SocketAddr,

    /// Directory for the SQLite database, the signing key and other local state; created on start.
    #[arg(
        long,
        env = "USERGRAPH_DATA_DIR",
        default_value = "./data",
        global = true
    )]
    pub data_dir: PathBuf,

    /// Database: `postgres://…` for PostgreSQL, `sqlite://PATH` or a plain path for SQLite.
    /// Default: `usergraph.sqlite3` inside the data directory.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<String>,

    /// Maximum number of pooled database connections.
    #[arg(long, env = "USERGRAPH_DB_POOL_SIZE", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=1000), global = true)]
    pub db_pool_size: u32,

    /// Longest wait for a pooled database connection, for connecting, and for the database's
    /// answer to a statement (also PostgreSQL's `statement_timeout`) before SERVICE_UNAVAILABLE.
    #[arg(long, env = "USERGRAPH_DB_TIMEOUT", default_value = "5s", value_parser = parse_duration, global = true)]
    pub db_timeout: Duration,

    /// Log filter, in `tracing` syntax (e.g. `info`, `usergraph=debug,tower_http=info`).
    #[arg(long, env = "USERGRAPH_LOG", default_value = "info", global = true)]
    pub log: String,

    /// `development` or `production`. Production turns off what helps strangers explore the
    /// API (GraphiQL, introspection, field suggestions) unless each is turned on, logs JSON,
    /// and refuses to start on insecure settings.
    #[arg(
        long,
        env = "USERGRAPH_ENV",
        default_value = "development",
        global = true
    )]
    pub env: Environment,

    /// Log format: `pretty` or `json` (default: `json` in production, else `pretty`).
    #[arg(long, env = "USERGRAPH_LOG_FORMAT", global = true)]
    pub log_format: Option<LogFormat>,

    /// Lifetime of an access token (JWT).
    #[arg(long, env = "USERGRAPH_ACCESS_TOKEN_TTL", default_value = "15m", value_parser = parse_duration, global = true)]
    pub access_token_ttl: Duration,

    /// Idle lifetime of a refresh token: a session not refreshed for this long ends.
    #[arg(long, env = "USERGRAPH_REFRESH_TOKEN_TTL", default_value = "7d", value_parser = parse_duration, global = true)]
    pub refresh_token_ttl: Duration,

    /// Absolute lifetime of a session, however often it is refreshed.
    #[arg(long, env = "USERGRAPH_SESSION_TTL", default_value = "30d", value_parser = parse_duration, global = true)]
    pub session_ttl: Duration,

    /// How long a used refresh token still returns the same successor (two tabs refreshing at
    /// once); presented later, it counts as theft and ends the session.
    #[arg(long, env = "USERGRAPH_REFRESH_REUSE_GRACE", default_value = "10s", value_parser = parse_duration, global = true)]
    pub refresh_reuse_grace: Duration,

    /// Consecutive failed logins for one email before it is locked.
    #[arg(long, env = "USERGRAPH_LOCKOUT_THRESHOLD", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=1000), global = true)]
    pub lockout_threshold: u32,

    /// How long each successive lock lasts, comma-separated; the last one repeats.
    #[arg(long, env = "USERGRAPH_LOCKOUT_DURATIONS", default_value = "1m,5m,15m,1h",
          value_parser = parse_durations, global = true)]
    pub lockout_durations: Durations,

    /// How long a password reset token stays valid.
    #[arg(long, env = "USERGRAPH_PASSWORD_RESET_TTL", default_value = "1h", value_parser = parse_duration, global = true)]
    pub password_reset_ttl: Duration,

    /// Directory outgoing mail is written to as `.eml` files. Default: `outbox` in the data
    /// directory.
    #[arg(long, env = "USERGRAPH_MAIL_OUTBOX", global = true)]
    pub mail_outbox: Option<PathBuf>,

    /// Sender of outgoing mail.
    #[arg(
        long,
        env = "USERGRAPH_MAIL_FROM",
        default_value = "usergraph <no-reply@localhost>",
        global = true
    )]
    pub mail_from: String,

    /// SMTP server mail is sent through: `smtps://user:pass@host:465` (TLS),
    /// `smtp://user:pass@host:587?tls=required` (STARTTLS), `smtp://host:25` (plain, for a
    /// local relay). Without it mail is written to the outbox directory.
    #[arg(
        long,
        env = "USERGRAPH_SMTP_URL",
        hide_env_values = true,
        global = true
    )]
    pub smtp_url: Option<String>,

    /// SMTP user name, when not in the URL.
    #[arg(long, env = "USERGRAPH_SMTP_USERNAME", global = true)]
    pub smtp_username: Option<String>,

    /// SMTP password, when not in the URL.
    #[arg(
        long,
        env = "USERGRAPH_SMTP_PASSWORD",
        hide_env_values = true,
        global = true
    )]
    pub smtp_password: Option<String>,

    /// Delay before the first retry of a message the mail server refused; each retry waits
    /// twice as long (at most an hour), and a message is given up after 12 attempts.
    #[arg(long, env = "USERGRAPH_MAIL_RETRY_DELAY", default_value = "5s", value_parser = parse_duration, global = true)]
    pub mail_retry_delay: Duration,

    /// Base URL of your app's pages that take a mailed token: mails link to
    /// `<URL>/verify-email?token=…`, `<URL>/cancel-email-change?token=…` and, unless
    /// USERGRAPH_PASSWORD_RESET_URL says otherwise, `<URL>/reset-password?token=…`. Without
    /// it mails show the token to paste.
    #[arg(long, env = "USERGRAPH_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,

    /// How long an email verification or address-change token stays valid.
    #[arg(long, env = "USERGRAPH_EMAIL_TOKEN_TTL", default_value = "24h", value_parser = parse_duration, global = true)]
    pub email_token_ttl: Duration,

    /// How long an invitation (`inviteUser`) stays valid.
    #[arg(long, env = "USERGRAPH_INVITATION_TTL", default_value = "7d", value_parser = parse_duration, global = true)]
    pub invitation_ttl: Duration,

    /// Refuse logins of accounts whose email is not verified (EMAIL_NOT_VERIFIED; a new
    /// verification mail is sent).
    #[arg(long, env = "USERGRAPH_REQUIRE_VERIFIED_EMAIL", default_value_t = false,
          action = clap::ArgAction::Set, global = true)]
    pub require_verified_email: bool,

    /// Page of your app that completes a password reset; the mail links to it with
    /// `?token=…` appended. Without it the mail shows the token alone.
    #[arg(long, env = "USERGRAPH_PASSWORD_RESET_URL", global = true)]
    pub password_reset_url: Option<String>,

    /// `iss` claim of access tokens.
    #[arg(
        long,
        env = "USERGRAPH_JWT_ISSUER",
        default_value = "usergraph",
        global = true
    )]
    pub jwt_issuer: String,

    /// `aud` claim of access tokens.
    #[arg(
        long,
        env = "USERGRAPH_JWT_AUDIENCE",
        default_value = "usergraph",
        global = true
    )]
    pub jwt_audience: String,

    /// Directory of the Ed25519 keys (PKCS#8 PEM) that sign access tokens, each named after
    /// the UTC time it starts signing (`20261201T120000Z.pem`); `usergraph keys rotate` adds
    /// one. Default: `keys` in the data directory, with a first key made on first start.
    #[arg(long, env = "USERGRAPH_JWT_KEY_DIR", global = true)]
    pub jwt_key_dir: Option<PathBuf>,

    /// One fixed Ed25519 key (PKCS#8 PEM) instead of the key directory: no rotation.
    #[arg(long, env = "USERGRAPH_JWT_KEY_FILE", global = true)]
    pub jwt_key_file: Option<PathBuf>,

    /// Argon2id memory cost in KiB (OWASP: 19456).
    #[arg(long, env = "USERGRAPH_ARGON2_MEMORY_KIB", default_value_t = 19_456,
          value_parser = clap::value_parser!(u32).range(8..=4_194_304), global = true)]
    pub argon2_memory_kib: u32,

    /// Argon2id iterations (OWASP: 2).
    #[arg(long, env = "USERGRAPH_ARGON2_ITERATIONS", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..=100), global = true)]
    pub argon2_iterations: u32,

    /// Argon2id parallelism (OWASP: 1).
    #[arg(long, env = "USERGRAPH_ARGON2_PARALLELISM", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=16), global = true)]
    pub argon2_parallelism: u32,

    /// Password hashing threads, each keeping one argon2 memory block; 32 hashes may wait per
    /// thread, more are refused with RATE_LIMITED (default: the number of CPU cores).
    #[arg(long, env = "USERGRAPH_PASSWORD_HASH_CONCURRENCY", global = true)]
    pub password_hash_concurrency: Option<usize>,

    /// Shortest accepted password, in Unicode characters (at least 8).
    #[arg(long, env = "USERGRAPH_PASSWORD_MIN_LENGTH", default_value_t = 15,
          value_parser = clap::value_parser!(u16).range(8..=128), global = true)]
    pub password_min_length: u16,

    /// Shortest accepted password of an account with a second factor on, in Unicode
    /// characters (NIST SP 800-63B allows 8 then), in place of USERGRAPH_PASSWORD_MIN_LENGTH.
    #[arg(long, env = "USERGRAPH_PASSWORD_MIN_LENGTH_WITH_MFA", default_value_t = 8,
          value_parser = clap::value_parser!(u16).range(8..=128), global = true)]
    pub password_min_length_with_mfa: u16,

    /// Roles whose holders must turn on a second factor (TOTP) before they can do anything
    /// but enrol, comma-separated (e.g. `admin`). Default: none.
    #[arg(
        long,
        env = "USERGRAPH_REQUIRE_MFA_FOR_ROLES",
        value_delimiter = ',',
        global = true
    )]
    pub require_mfa_for_roles: Vec<String>,

    /// How recent the password (and, with MFA on, a code) must be for sensitive changes
    /// (password, email, personal tokens, account deletion, second factor); older sessions
    /// get REAUTHENTICATION_REQUIRED until they call `reauthenticate`.
    #[arg(long, env = "USERGRAPH_REAUTHENTICATION_WINDOW", default_value = "10m", value_parser = parse_duration, global = true)]
    pub reauthentication_window: Duration,

    /// The name authenticator apps show for TOTP entries (the `issuer` of the otpauth URI).
    #[arg(
        long,
        env = "USERGRAPH_MFA_ISSUER",
        default_value = "usergraph",
        global = true
    )]
    pub mfa_issuer: String,

    /// The file of the key TOTP secrets are sealed with and recovery codes hashed with (32
    /// random bytes, hex); every instance must share it. Default: `mfa.key` in the data
    /// directory, made on first start. Losing it turns every second factor off for good.
    #[arg(long, env = "USERGRAPH_MFA_KEY_FILE", global = true)]
    pub mfa_key_file: Option<PathBuf>,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "USERGRAPH_MAX_BODY_BYTES", default_value_t = 1_048_576,
          value_parser = clap::value_parser!(u64).range(1024..), global = true)]
    pub max_body_bytes: u64,

    /// Largest avatar upload, in bytes (the multipart body may be this much larger than
    /// USERGRAPH_MAX_BODY_BYTES); enforced while the body arrives.
    #[arg(long, env = "USERGRAPH_MAX_UPLOAD_BYTES", default_value_t = 10_485_760,
          value_parser = clap::value_parser!(u64).range(1024..=1_073_741_824), global = true)]
    pub max_upload_bytes: u64,

    /// Most pixels of an uploaded picture, read from its header before it is decoded.
    #[arg(long, env = "USERGRAPH_MAX_UPLOAD_PIXELS", default_value_t = 40_000_000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000_000), global = true)]
    pub max_upload_pixels: u64,

    /// Most operations accepted in one batched request.
    #[arg(long, env = "USERGRAPH_MAX_BATCH", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=1000), global = true)]
    pub max_batch: u32,

    /// Deepest accepted nesting of fields of user data (introspection is bounded apart, by the
    /// schema's shape).
    #[arg(
        long,
        env = "USERGRAPH_MAX_QUERY_DEPTH",
        default_value_t = 12,
        global = true
    )]
    pub max_query_depth: usize,

    /// Most fields that hash a password or create an account (login, register,
    /// changePassword, resetPassword, deleteMyAccount, createUser, reauthenticate) in one
    /// request, aliases and every operation of a batch counted; more is refused with
    /// QUERY_TOO_COMPLEX.
    #[arg(long, env = "USERGRAPH_MAX_PASSWORD_FIELDS", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..=100), global = true)]
    pub max_password_fields: u32,

    /// Highest accepted query complexity (one point per field).
    #[arg(
        long,
        env = "USERGRAPH_MAX_QUERY_COMPLEXITY",
        default_value_t = 1000,
        global = true
    )]
    pub max_query_complexity: usize,

    /// Most aliases in one document, fragments expanded.
    #[arg(
        long,
        env = "USERGRAPH_MAX_ALIASES",
        default_value_t = 100,
        global = true
    )]
    pub max_aliases: usize,

    /// Most root fields in one operation, fragments expanded.
    #[arg(
        long,
        env = "USERGRAPH_MAX_ROOT_FIELDS",
        default_value_t = 20,
        global = true
    )]
    pub max_root_fields: usize,

    /// Most directives on one field, fragment or operation.
    #[arg(
        long,
        env = "USERGRAPH_MAX_DIRECTIVES",
        default_value_t = 5,
        global = true
    )]
    pub max_directives: usize,

    /// Longest accepted query text, in bytes (the body may be larger: variables).
    #[arg(
        long,
        env = "USERGRAPH_MAX_QUERY_BYTES",
        default_value_t = 65_536,
        global = true
    )]
    pub max_query_bytes: usize,

    /// Most WebSocket connections (for subscriptions) one account may hold open on one
    /// instance; more are closed at `connection_init` with 4429.
    #[arg(
        long,
        env = "USERGRAPH_WS_MAX_PER_ACCOUNT",
        default_value_t = 10,
        global = true
    )]
    pub ws_max_per_account: usize,

    /// Most WebSocket connections from one client address (an IPv6 client's /64) on one
    /// instance; more are refused with 429.
    #[arg(
        long,
        env = "USERGRAPH_WS_MAX_PER_IP",
        default_value_t = 50,
        global = true
    )]
    pub ws_max_per_ip: usize,

    /// Messages a WebSocket client may send per second (twice as many at once); a client
    /// sending more is disconnected (4429).
    #[arg(
        long,
        env = "USERGRAPH_WS_MESSAGES_PER_SECOND",
        default_value = "10",
        global = true
    )]
    pub ws_messages_per_second: std::num::NonZeroU32,

    /// Serve the GraphiQL playground on `GET /graphql` to browsers, with its files under
    /// `/graphql/assets/` (default: on, but off in production).
    #[arg(long, env = "USERGRAPH_GRAPHIQL", action = clap::ArgAction::Set, global = true)]
    pub graphiql: Option<bool>,

    /// Answer introspection queries; GraphiQL and code generators need them (default: on,
    /// but off in production).
    #[arg(long, env = "USERGRAPH_INTROSPECTION", action = clap::ArgAction::Set, global = true)]
    pub introspection: Option<bool>,

    /// Suggest field and type names in validation errors ("did you mean …?"); they reveal
    /// the schema bit by bit (default: on, but off in production).
    #[arg(long, env = "USERGRAPH_FIELD_SUGGESTIONS", action = clap::ArgAction::Set, global = true)]
    pub field_suggestions: Option<bool>,

    /// Accept only the operations of this persisted-operation manifest (Apollo's
    /// `persisted-query-manifest.json`: `{"operations": [{"id": SHA-256, "body": …}]}`);
    /// clients send the hash as in automatic persisted queries, with or without the text.
    #[arg(long, env = "USERGRAPH_PERSISTED_OPERATIONS", global = true)]
    pub persisted_operations: Option<PathBuf>,

    /// Longest time a request may take; it is then answered with SERVICE_UNAVAILABLE (its
    /// outcome unknown).
    #[arg(long, env = "USERGRAPH_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration, global = true)]
    pub request_timeout: Duration,

    /// How long a client may take to send a request's headers, from when the connection
    /// opened or the previous response was sent; also how long an idle keep-alive
    /// connection is kept.
    #[arg(long, env = "USERGRAPH_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration, global = true)]
    pub header_timeout: Duration,

    /// On SIGTERM, how long the server keeps serving with `/ready` answering 503, so a load
    /// balancer stops sending it traffic before its listener closes (a few seconds behind a
    /// Kubernetes Service; 0 when nothing routes by readiness).
    #[arg(long, env = "USERGRAPH_SHUTDOWN_DELAY", default_value = "0s", value_parser = parse_duration_or_zero, global = true)]
    pub shutdown_delay: Duration,

    /// On SIGTERM, the longest time from the signal to the exit, the delay above included:
    /// in-flight requests get what is left, then whatever is still open is closed.
    #[arg(long, env = "USERGRAPH_SHUTDOWN_TIMEOUT", default_value = "25s", value_parser = parse_duration, global = true)]
    pub shutdown_timeout: Duration,

    /// Longest pause while a client sends a request body; it is then answered with 408.
    #[arg(long, env = "USERGRAPH_BODY_TIMEOUT", default_value = "10s", value_parser = parse_duration, global = true)]
    pub body_timeout: Duration,

    /// Most client connections served at once; more wait until one closes.
    #[arg(long, env = "USERGRAPH_MAX_CONNECTIONS", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000), global = true)]
    pub max_connections: u32,

    /// Rate limits that differ from the defaults, comma-separated `NAME=COUNT/PERIOD` or
    /// `NAME=off` (e.g. `login.ip=30/1m,register.ip=off`); `off` turns off every limit not
    /// named (`off` alone: none at all). The names and their defaults are in the README
    /// ("Rate limits").
    #[arg(long, env = "USERGRAPH_RATE_LIMITS", default_value = "",
          value_parser = parse_rate_overrides, global = true)]
    pub rate_limits: RateOverrides,

    /// Where rate-limit buckets are kept: `auto` (Redis when USERGRAPH_REDIS_URL is set, else
    /// the database on PostgreSQL, else memory), `memory` (this instance only), `database`
    /// or `redis` (shared by every instance).
    #[arg(
        long,
        env = "USERGRAPH_RATE_LIMIT_STORE",
        default_value = "auto",
        global = true
    )]
    pub rate_limit_store: RateLimitStore,

    /// Redis, for state shared by every instance (rate limits): `redis://[:PASSWORD@]HOST[:PORT][/DB]`
    /// or `rediss://…` for TLS.
    #[arg(
        long,
        env = "USERGRAPH_REDIS_URL",
        hide_env_values = true,
        global = true
    )]
    pub redis_url: Option<String>,

    /// Prefix of every Redis key usergraph writes (several deployments may share a Redis).
    #[arg(
        long,
        env = "USERGRAPH_REDIS_KEY_PREFIX",
        default_value = "usergraph:",
        global = true
    )]
    pub redis_key_prefix: String,

    /// Proxies whose `Forwarded` / `X-Forwarded-For` headers are believed, comma-separated
    /// addresses or CIDR ranges (e.g. `10.0.0.0/8,::1`). Without them the client is the
    /// socket's peer.
    #[arg(long, env = "USERGRAPH_TRUSTED_PROXIES", default_value = "",
          value_parser = parse_proxies, global = true)]
    pub trusted_proxies: TrustedProxies,

    /// Serve `/metrics` on this address instead of on `USERGRAPH_LISTEN` (keep it off the
    /// public network).
    #[arg(long, env = "USERGRAPH_METRICS_LISTEN", global = true)]
    pub metrics_listen: Option<SocketAddr>,

    /// Send traces over OTLP/HTTP (protobuf) to this collector (`/v1/traces` is appended),
    /// e.g. `http://otel-collector:4318`; unset, tracing costs nothing. The other standard
    /// `OTEL_*` variables (`OTEL_SERVICE_NAME`, `OTEL_EXPORTER_OTLP_HEADERS`,
    /// `OTEL_TRACES_SAMPLER`, …) apply.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", global = true)]
    pub otlp_endpoint: Option<String>,

    /// The full URL traces are sent to, when it is not the endpoint's `/v1/traces`.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", global = true)]
    pub otlp_traces_endpoint: Option<String>,

    /// The OTLP protocol: only `http/protobuf` is built in.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_PROTOCOL", global = true)]
    pub otlp_protocol: Option<String>,

    /// `true` turns traces off whatever the endpoint says (the OpenTelemetry switch; any
    /// letter case, as its specification allows).
    #[arg(long, env = "OTEL_SDK_DISABLED", default_value_t = false,
          action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new(),
          global = true)]
    pub otel_sdk_disabled: bool,

    /// Cookie mode for browser apps: the refresh token is set as an `HttpOnly; Secure;
    /// SameSite=Strict` cookie for `/graphql` instead of being returned in the body;
    /// requests carrying it must send `X-Usergraph-CSRF` and a JSON body, and CORS allows
    /// credentials for the listed origins only (`*` is refused).
    #[arg(long, env = "USERGRAPH_REFRESH_COOKIE", default_value_t = false,
          action = clap::ArgAction::Set, global = true)]
    pub refresh_cookie: bool,

    /// Origins allowed by CORS, comma-separated, or `*` for any (tokens travel in a header,
    /// not a cookie, so `*` is safe for browsers; not in cookie mode).
    #[arg(
        long,
        env = "USERGRAPH_CORS_ORIGINS",
        default_value = "*",
        global = true
    )]
    pub cors_origins: String,
}

/// Where the server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Environment {
    /// A laptop, CI, a staging box: exploring the API is welcome.
    Development,
    /// On the internet: safe defaults, insecure settings refused.
    Production,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Where rate-limit buckets are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RateLimitStore {
    /// Redis when configured, else the database on PostgreSQL, else memory.
    Auto,
    /// In this process: each instance counts on its own.
    Memory,
    /// In the database, shared by every instance on it.
    Database,
    /// In Redis (`USERGRAPH_REDIS_URL`), shared by every instance on it.
    Redis,
}

/// A rate: `count` cells per `period`, all of them available at once when the bucket is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Cells per period (the burst).
    pub count: u32,
    /// The period.
    pub period: Duration,
}

/// The rate limits set apart from their defaults: `(name, None)` turns one off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateOverrides {
    /// Every limit not named is off.
    pub all_off: bool,
    /// Each named limit's rate, `None` for off.
    pub limits: Vec<(String, Option<Rate>)>,
}

fn parse_rate_overrides(value: &str) -> Result<RateOverrides, String> {
    let mut overrides = RateOverrides::default();
    for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        if item.eq_ignore_ascii_case("off") {
            overrides.all_off = true;
            continue;
        }
        let Some((name, rate)) = item.split_once('=') else {
            return Err(format!(
                "`{item}`: write NAME=COUNT/PERIOD, NAME=off or off"
            ));
        };
        let rate = rate.trim();
        let rate = if rate.eq_ignore_ascii_case("off") {
            None
        } else {
            Some(parse_rate(rate).map_err(|e| format!("`{item}`: {e}"))?)
        };
        overrides.limits.push((name.trim().to_owned(), rate));
    }
    Ok(overrides)
}

/// Parses `COUNT/PERIOD`, e.g. `60/1m`.
pub fn parse_rate(value: &str) -> Result<Rate, String> {
    let (count, period) = value
        .split_once('/')
        .ok_or_else(|| format!("`{value}` is not COUNT/PERIOD like 60/1m"))?;
    let count: u32 = count
        .trim()
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("`{count}` is not a count above zero"))?;
    let period = parse_duration(period)?;
    if period.as_micros() < u128::from(count) {
        return Err(format!("`{value}`: more than one per microsecond"));
    }
    Ok(Rate { count, period })
}

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(pub Vec<ipnet::IpNet>);

impl TrustedProxies {
    /// Whether `ip` is one of them.
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }
}

fn parse_proxies(value: &str) -> Result<TrustedProxies, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<ipnet::IpNet>()
                .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| format!("`{p}` is not an IP address or a CIDR range"))
        })
        .collect::<Result<_, _>>()
        .map(TrustedProxies)
}

/// Which database a [`Config`] points at.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A PostgreSQL connection URL.
    Postgres(String),
    /// The path of a SQLite database file.
    Sqlite(PathBuf),
}

impl std::fmt::Debug for DatabaseUrl {
    // A PostgreSQL URL may hold a password: print only the backend.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Postgres(_) => f.write_str("Postgres(…)"),
            Self::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
        }
    }
}

impl Config {
    /// The database this configuration selects, the SQLite default included.
    pub fn database(&self) -> anyhow::Result<DatabaseUrl> {
        let Some(url) = self.database_url.as_deref().map(str::trim) else {
            return Ok(DatabaseUrl::Sqlite(self.data_dir.join("usergraph.sqlite3")));
        };
        parse_database_url(url).context("DATABASE_URL")
    }

    /// Whether this is production.
    pub fn production(&self) -> bool {
        self.env == Environment::Production
    }

    /// Whether the playground is served.
    pub fn serves_graphiql(&self) -> bool {
        self.graphiql.unwrap_or(!self.production())
    }

    /// Whether introspection is answered.
    pub fn serves_introspection(&self) -> bool {
        self.introspection.unwrap_or(!self.production())
    }

    /// Whether validation errors suggest names.
    pub fn suggests_fields(&self) -> bool {
        self.field_suggestions.unwrap_or(!self.production())
    }

    /// How log lines are written.
    pub fn log_format(&self) -> LogFormat {
        self.log_format.unwrap_or(if self.production() {
            LogFormat::Json
        } else {
            LogFormat::Pretty
        })
    }

    /// The directory of the access-token signing keys.
    pub fn jwt_key_dir(&self) -> PathBuf {
        self.jwt_key_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("keys"))
    }

    /// The file of the second factors' key.
    pub fn mfa_key_file(&self) -> PathBuf {
        self.mfa_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("mfa.key"))
    }

    /// Where avatar files are kept.
    pub fn uploads_path(&self) -> PathBuf {
        self.data_dir.join("uploads")
    }

    /// Where outgoing mail is written.
    pub fn mail_outbox_path(&self) -> PathBuf {
        self.mail_outbox
            .clone()
            .unwrap_or_else(|| self.data_dir.join("outbox"))
    }

    /// The second-factor settings: a name apps can show, role names that are names.
    fn validate_mfa(&self) -> anyhow::Result<()> {
        if self.mfa_issuer.trim().is_empty() || self.mfa_issuer.contains(':') {
            bail!("USERGRAPH_MFA_ISSUER: must be a name without `:` (authenticator apps show it)");
        }
        if self
            .require_mfa_for_roles
            .iter()
            .any(|r| r.trim().is_empty())
        {
            bail!("USERGRAPH_REQUIRE_MFA_FOR_ROLES: role names, comma-separated, none empty");
        }
        Ok(())
    }

    /// Checks what clap's parsers cannot: relations between settings.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.database()?;
        if self.access_token_ttl < Duration::from_secs(10) {
            bail!("USERGRAPH_ACCESS_TOKEN_TTL: must be at least 10s");
        }
        if self.refresh_token_ttl < self.access_token_ttl {
            bail!(
                "USERGRAPH_REFRESH_TOKEN_TTL: must not be shorter than USERGRAPH_ACCESS_TOKEN_TTL"
            );
        }
        if self.session_ttl < self.refresh_token_ttl {
            bail!("USERGRAPH_SESSION_TTL: must not be shorter than USERGRAPH_REFRESH_TOKEN_TTL");
        }
        if self.argon2_memory_kib < 8 * self.argon2_parallelism {
            bail!("USERGRAPH_ARGON2_MEMORY_KIB: must be at least 8 × USERGRAPH_ARGON2_PARALLELISM");
        }
        self.validate_mfa()?;
        if self.rate_limit_store == RateLimitStore::Redis && self.redis_url.is_none() {
            bail!("USERGRAPH_RATE_LIMIT_STORE=redis: set USERGRAPH_REDIS_URL");
        }
        if self.production() {
            self.validate_production()?;
        }
        if self.refresh_cookie && self.cors_origins.split(',').any(|o| o.trim() == "*") {
            bail!(
                "USERGRAPH_REFRESH_COOKIE: a cookie must not be sent from any origin; list \
                 your app's origins in USERGRAPH_CORS_ORIGINS instead of `*`"
            );
        }
        if self.traces()
            && let Some(protocol) = self.otlp_protocol.as_deref()
            && protocol != "http/protobuf"
        {
            bail!(
                "OTEL_EXPORTER_OTLP_PROTOCOL: `{protocol}` is not built in; usergraph sends \
                 traces as http/protobuf (a collector's port 4318)"
            );
        }
        if self.shutdown_delay >= self.shutdown_timeout {
            bail!(
                "USERGRAPH_SHUTDOWN_DELAY: must be shorter than USERGRAPH_SHUTDOWN_TIMEOUT, which \
                 bounds the whole shutdown"
            );
        }
        if self.password_hash_concurrency == Some(0) {
            bail!("USERGRAPH_PASSWORD_HASH_CONCURRENCY: must be at least 1");
        }
        Ok(())
    }
}

impl Config {
    /// Whether traces are sent: an OTLP endpoint is named and the SDK is not disabled.
    pub fn traces(&self) -> bool {
        let named =
            |endpoint: &Option<String>| endpoint.as_deref().is_some_and(|e| !e.trim().is_empty());
        !self.otel_sdk_disabled && (named(&self.otlp_endpoint) || named(&self.otlp_traces_endpoint))
    }
}

impl Config {
    /// The settings production refuses to start with (the signing key's file mode is
    /// checked where it is read).
    fn validate_production(&self) -> anyhow::Result<()> {
        let (memory, iterations) = (self.argon2_memory_kib, self.argon2_iterations);
        // OWASP's argon2id minimums trade memory for passes: 47104×1 … 19456×2 … 7168×5.
        if memory < 7_168 || u64::from(memory) * u64::from(iterations) < 35_840 {
            bail!(
                "USERGRAPH_ENV=production: argon2id with {memory} KiB × {iterations} passes is \
                 below OWASP's minimum (19456 KiB × 2, the default); raise \
                 USERGRAPH_ARGON2_MEMORY_KIB or USERGRAPH_ARGON2_ITERATIONS"
            );
        }
        Ok(())
    }
}

fn parse_database_url(url: &str) -> anyhow::Result<DatabaseUrl> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(DatabaseUrl::Postgres(url.to_owned()));
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    if path.is_empty() {
        bail!("empty SQLite path");
    }
    if path.contains(":memory:") || path.starts_with("file::memory") {
        bail!("an in-memory SQLite database cannot be shared by a connection pool; name a file");
    }
    if let Some((scheme, _)) = path.split_once("://") {
        bail!("unsupported scheme `{scheme}://`; use postgres://, sqlite:// or a file path");
    }
    Ok(DatabaseUrl::Sqlite(Path::new(path).to_path_buf()))
}

/// A non-empty list of durations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Durations(pub Vec<Duration>);

impl Durations {
    /// The `n`th duration (from 0), or the last one past the end.
    pub fn nth_or_last(&self, n: usize) -> Duration {
        self.0.get(n).or(self.0.last()).copied().unwrap_or_default()
    }
}

fn parse_durations(value: &str) -> Result<Durations, String> {
    let list = value
        .split(',')
        .map(|part| parse_duration(part.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    if list.is_empty() {
        return Err("give at least one duration".into());
    }
    Ok(Durations(list))
}

fn parse_duration_or_zero(value: &str) -> Result<Duration, String> {
    humantime::parse_duration(value.trim())
        .map_err(|e| format!("`{value}` is not a duration like 10m ({e})"))
}

/// Parses durations written like `15m`, `7d` or `1h 30m`.
fn parse_duration(value: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(value.trim())
        .map_err(|e| format!("`{value}` is not a duration like 15m or 7d ({e})"))?;
    if duration.is_zero() {
        return Err("must be longer than zero".into());
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_select_the_backend() {
        assert!(matches!(
            parse_database_url("postgres://u@h/db"),
            Ok(DatabaseUrl::Postgres(_))
        ));
        assert!(matches!(
            parse_database_url("postgresql://h/db"),
            Ok(DatabaseUrl::Postgres(_))
        ));
        assert_eq!(
            parse_database_url("sqlite://data/x.db").unwrap(),
            DatabaseUrl::Sqlite("data/x.db".into())
        );
        assert_eq!(
            parse_database_url("x.db").unwrap(),
            DatabaseUrl::Sqlite("x.db".into())
        );
        assert!(parse_database_url("mysql://h/db").is_err());
        assert!(parse_database_url("sqlite::memory:").is_err());
    }

    #[test]
    fn rates_and_proxies_read_like_people_write_them() {
        let rate = |count, secs| Rate {
            count,
            period: Duration::from_secs(secs),
        };
        assert_eq!(parse_rate("60/1m"), Ok(rate(60, 60)));
        assert!(parse_rate("0/1m").is_err());
        assert!(parse_rate("60").is_err());
        assert!(parse_rate("5/soon").is_err());
        let overrides = parse_rate_overrides("login.ip=30/1m, register.ip=off").unwrap();
        assert_eq!(
            overrides.limits,
            vec![
                ("login.ip".to_owned(), Some(rate(30, 60))),
                ("register.ip".to_owned(), None)
            ]
        );
        assert!(!overrides.all_off);
        assert!(parse_rate_overrides("OFF").unwrap().all_off);
        let only_ip = parse_rate_overrides("off, ip=5/1s").unwrap();
        assert!(only_ip.all_off);
        assert_eq!(only_ip.limits, vec![("ip".to_owned(), Some(rate(5, 1)))]);
        assert_eq!(parse_rate_overrides(""), Ok(RateOverrides::default()));
        assert!(parse_rate_overrides("login.ip").is_err());
        let proxies = parse_proxies("10.0.0.0/8, ::1").unwrap();
        assert!(proxies.contains("10.1.2.3".parse().unwrap()));
        assert!(proxies.contains("::1".parse().unwrap()));
        assert!(!proxies.contains("11.0.0.1".parse().unwrap()));
        assert!(parse_proxies("10.0.0.0/33").is_err());
        assert!(parse_proxies("proxy.local").is_err());
    }

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("0s").is_err());
        let list = parse_durations("1m, 5m").unwrap();
        assert_eq!(list.nth_or_last(0), Duration::from_secs(60));
        assert_eq!(list.nth_or_last(7), Duration::from_secs(300));
        assert!(parse_durations("1m,,5m").is_err());
    }
}
