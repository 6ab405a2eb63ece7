//! The one error type clients see. Every variant has a fixed [`ErrorCode`] that becomes
//! `extensions.code`; internal details never reach a client. They travel with the GraphQL
//! error as its [`Cause`] and are logged once per request at the HTTP boundary
//! ([`log_causes`]); the CLI prints them ([`AppError::into_report`]).

use async_graphql::ErrorExtensions as _;
use serde::Serialize;

/// The stable codes of the contract, sent as `extensions.code`.
#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(rename_items = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// No, bad, expired or revoked credentials.
    Unauthenticated,
    /// Authenticated but not allowed.
    Forbidden,
    /// The thing asked for does not exist.
    NotFound,
    /// Validation failed; `extensions.fields` lists each invalid input field.
    BadUserInput,
    /// The change clashes with existing data, e.g. an email already registered.
    Conflict,
    /// Too many requests; `extensions.retryAfter` says when to try again, in seconds.
    RateLimited,
    /// Too many failed logins; `extensions.retryAfter` says when to try again, in seconds.
    AccountLocked,
    /// Depth, complexity or batch limits exceeded.
    QueryTooComplex,
    /// The database or another dependency is down; retry later.
    ServiceUnavailable,
    /// The account's email address is not verified and `USERGRAPH_REQUIRE_VERIFIED_EMAIL`
    /// is on; a new verification mail was sent.
    EmailNotVerified,
    /// The hash sent alone names no operation known here: none of the manifest's when only
    /// persisted operations are accepted, else no text sent before with this hash (send the
    /// text as well, as the persisted-query links of Apollo Client and urql then do).
    PersistedQueryNotFound,
    /// Only persisted operations are accepted and this one is not on the list.
    PersistedQueryNotInList,
    /// The password was right and the account has a second factor: no session yet.
    /// `extensions.challenge` goes to `verifyMfa` with a code.
    MfaRequired,
    /// A sensitive change needs a recent authentication: call `reauthenticate` (with a code
    /// too when `extensions.factors` lists `totp`), then try again.
    ReauthenticationRequired,
    /// Something failed inside the server; the details are in its log.
    InternalServerError,
}

impl ErrorCode {
    /// The code as it appears in `extensions.code`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::BadUserInput => "BAD_USER_INPUT",
            Self::Conflict => "CONFLICT",
            Self::RateLimited => "RATE_LIMITED",
            Self::AccountLocked => "ACCOUNT_LOCKED",
            Self::QueryTooComplex => "QUERY_TOO_COMPLEX",
            Self::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            Self::EmailNotVerified => "EMAIL_NOT_VERIFIED",
            Self::PersistedQueryNotFound => "PERSISTED_QUERY_NOT_FOUND",
            Self::PersistedQueryNotInList => "PERSISTED_QUERY_NOT_IN_LIST",
            Self::MfaRequired => "MFA_REQUIRED",
            Self::ReauthenticationRequired => "REAUTHENTICATION_REQUIRED",
            Self::InternalServerError => "INTERNAL_SERVER_ERROR",
        }
    }
}

/// One invalid input field: `extensions.fields[]` of a `BAD_USER_INPUT` error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The input field's name as the client sent it (`email`, `password`, …).
    pub field: String,
    /// What is wrong, in words a user understands.
    pub message: String,
}

impl FieldError {
    /// A field error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// What became of a change when the database failed to answer: `extensions.outcome` of a
/// `SERVICE_UNAVAILABLE` error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing reached the database: no change was made, and retrying is safe.
    NotApplied,
    /// The database stopped answering after statements were sent: a change may or may not
    /// have been made. Look before retrying a mutation that is not idempotent.
    Unknown,
}

impl Outcome {
    /// The value of `extensions.outcome`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotApplied => "NOT_APPLIED",
            Self::Unknown => "UNKNOWN",
        }
    }
}

/// What database errors say when the server is going away, overloaded or stopped
/// answering in time, on either backend: the client may retry later.
const UNAVAILABLE_MESSAGES: [&str; 5] = [
    "statement timeout",
    "terminating connection",
    "the database system is",
    "database is locked",
    "server closed the connection",
];

/// Every failure a client can be told about.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Missing, invalid, expired or revoked credentials.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The caller lacks a permission.
    #[error("{0}")]
    Forbidden(String),
    /// The named thing does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// One or more input fields are invalid.
    #[error("invalid input: {}", summary(.0))]
    BadUserInput(Vec<FieldError>),
    /// A unique value is taken.
    #[error("{message}")]
    Conflict {
        /// The input field that clashes.
        field: &'static str,
        /// What clashes, for people.
        message: String,
    },
    /// A limit on how often something may be done was reached.
    #[error("too many requests ({limit}); try again in {retry_after} seconds")]
    RateLimited {
        /// Seconds until trying again may succeed.
        retry_after: u64,
        /// Which limit, e.g. `login.checks_in_flight`.
        limit: &'static str,
    },
    /// The document is nested too deep, selects too much, or the batch is too large.
    #[error("{0}")]
    QueryTooComplex(String),
    /// The account's address must be verified before it may log in.
    #[error(
        "verify your email address first: follow the link in the mail we just sent to it \
         (or call requestEmailVerification once logged in)"
    )]
    EmailNotVerified,
    /// The operation a hash sent alone names is unknown here. The message is the protocol's
    /// word for it, exactly: urql's persisted exchange looks for it (Apollo's link for the
    /// code).
    #[error("PersistedQueryNotFound")]
    PersistedQueryNotFound,
    /// Only persisted operations are accepted, and this is none of them.
    #[error("only persisted operations are accepted here, and this one is not on the list")]
    PersistedQueryNotInList,
    /// Too many failed logins for this email.
    #[error("too many failed logins; try again in {retry_after} seconds")]
    AccountLocked {
        /// Seconds until the lock ends.
        retry_after: u64,
    },
    /// The password was right; a second factor must complete the login.
    #[error(
        "this account has two-step verification: call verifyMfa with extensions.challenge \
         and a code from your authenticator app (or a recovery code)"
    )]
    MfaRequired {
        /// The token `verifyMfa` takes.
        challenge: String,
        /// Seconds it stays valid.
        expires_in: i64,
    },
    /// The session's last authentication is too old for this change.
    #[error(
        "this change needs a recent authentication: call reauthenticate with your password{} \
         first",
        if *.code { " and a code from your authenticator app" } else { "" }
    )]
    ReauthenticationRequired {
        /// Whether a second factor is asked for too.
        code: bool,
    },
    /// Holders of the caller's roles must turn a second factor on first.
    #[error(
        "your role requires two-step verification: turn it on (startTotpEnrollment, then \
         confirmTotpEnrollment) before anything else"
    )]
    MfaEnrollmentRequired,
    /// A dependency (the database) does not answer.
    #[error("{}", unavailable_message(*.0))]
    ServiceUnavailable(Outcome, #[source] anyhow::Error),
    /// A bug or an unexpected failure; logged, never shown.
    #[error("internal server error")]
    Internal(#[source] anyhow::Error),
}

fn unavailable_message(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::NotApplied => "the database is unavailable; nothing was changed, retry later",
        Outcome::Unknown => {
            "the database stopped answering; a change this asked for may or may not have been \
             made (extensions.outcome is UNKNOWN), retry later"
        }
    }
}

fn summary(fields: &[FieldError]) -> String {
    fields
        .iter()
        .map(|f| format!("{}: {}", f.field, f.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl AppError {
    /// The same failure again, for another request that shared the work that failed (the
    /// sources of internal errors are not `Clone`: their text is kept).
    pub fn again(&self) -> Self {
        match self {
            Self::Unauthenticated(why) => Self::Unauthenticated(why),
            Self::Forbidden(why) => Self::Forbidden(why.clone()),
            Self::NotFound(what) => Self::NotFound(what),
            Self::BadUserInput(fields) => Self::BadUserInput(fields.clone()),
            Self::Conflict { field, message } => Self::Conflict {
                field,
                message: message.clone(),
            },
            Self::RateLimited { retry_after, limit } => Self::RateLimited {
                retry_after: *retry_after,
                limit,
            },
            Self::QueryTooComplex(why) => Self::QueryTooComplex(why.clone()),
            Self::EmailNotVerified => Self::EmailNotVerified,
            Self::PersistedQueryNotFound => Self::PersistedQueryNotFound,
            Self::PersistedQueryNotInList => Self::PersistedQueryNotInList,
            Self::AccountLocked { retry_after } => Self::AccountLocked {
                retry_after: *retry_after,
            },
            Self::MfaRequired {
                challenge,
                expires_in,
            } => Self::MfaRequired {
                challenge: challenge.clone(),
                expires_in: *expires_in,
            },
            Self::ReauthenticationRequired { code } => {
                Self::ReauthenticationRequired { code: *code }
            }
            Self::MfaEnrollmentRequired => Self::MfaEnrollmentRequired,
            Self::ServiceUnavailable(outcome, source) => {
                Self::ServiceUnavailable(*outcome, anyhow::anyhow!("{source:#}"))
            }
            Self::Internal(source) => Self::Internal(anyhow::anyhow!("{source:#}")),
        }
    }

    /// The client-facing code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Unauthenticated(_) => ErrorCode::Unauthenticated,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::BadUserInput(_) => ErrorCode::BadUserInput,
            Self::Conflict { .. } => ErrorCode::Conflict,
            Self::AccountLocked { .. } => ErrorCode::AccountLocked,
            Self::QueryTooComplex(_) => ErrorCode::QueryTooComplex,
            Self::EmailNotVerified => ErrorCode::EmailNotVerified,
            Self::PersistedQueryNotFound => ErrorCode::PersistedQueryNotFound,
            Self::PersistedQueryNotInList => ErrorCode::PersistedQueryNotInList,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::MfaRequired { .. } => ErrorCode::MfaRequired,
            Self::ReauthenticationRequired { .. } => ErrorCode::ReauthenticationRequired,
            Self::MfaEnrollmentRequired => ErrorCode::Forbidden,
            Self::ServiceUnavailable(..) => ErrorCode::ServiceUnavailable,
            Self::Internal(_) => ErrorCode::InternalServerError,
        }
    }

    /// A `BAD_USER_INPUT` error for a single field.
    pub fn bad_field(field: &str, message: impl Into<String>) -> Self {
        Self::BadUserInput(vec![FieldError::new(field, message)])
    }

    /// `BAD_USER_INPUT` listing every error given; `Ok` when there is none.
    pub fn check(errors: impl IntoIterator<Item = Option<FieldError>>) -> AppResult<()> {
        let errors: Vec<FieldError> = errors.into_iter().flatten().collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Self::BadUserInput(errors))
        }
    }

    /// `FORBIDDEN` for a missing permission.
    pub fn missing_permission(permission: &str) -> Self {
        Self::Forbidden(format!("this needs the `{permission}` permission"))
    }

    /// Wraps an unexpected failure.
    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        Self::Internal(error.into())
    }

    /// The error as an operator should read it (the CLI): the cause chain of an internal or
    /// unavailable dependency error, the client's message otherwise.
    pub fn into_report(self) -> anyhow::Error {
        match self {
            Self::Internal(source) => source.context("internal error"),
            Self::ServiceUnavailable(_, source) => source.context("a dependency is unavailable"),
            other => anyhow::anyhow!("{other}"),
        }
    }

    /// What the server log needs of an internal or dependency error; `None` for errors
    /// that are the client's.
    fn cause(&self) -> Option<Cause> {
        match self {
            Self::Internal(source) => Some(Cause {
                unavailable: false,
                chain: format!("{source:#}"),
            }),
            Self::ServiceUnavailable(_, source) => Some(Cause {
                unavailable: true,
                chain: format!("{source:#}"),
            }),
            _ => None,
        }
    }
}

/// The cause of an internal or dependency error, carried as the GraphQL error's `source`
/// (never serialised) so that it is logged where the request id is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// A dependency (the database) failed, rather than the server itself.
    pub unavailable: bool,
    /// The error and its sources, outermost first.
    pub chain: String,
}

/// Logs, once each, the causes behind `errors` (one response's), with the request id. An
/// error shared by many fields (a failed dataloader batch) appears once.
pub fn log_causes<'a>(
    errors: impl IntoIterator<Item = &'a async_graphql::ServerError>,
    request_id: &str,
) {
    let mut seen: Vec<&Cause> = Vec::new();
    for cause in errors.into_iter().filter_map(|e| e.source::<Cause>()) {
        if seen.contains(&cause) {
            continue;
        }
        seen.push(cause);
        log_cause(cause, request_id);
    }
}

/// Logs the cause of `error`, if it has one (internal or dependency errors), with the request
/// id: for errors raised outside GraphQL execution.
pub fn log_error(error: &AppError, request_id: &str) {
    if let Some(cause) = error.cause() {
        log_cause(&cause, request_id);
    }
}

fn log_cause(cause: &Cause, request_id: &str) {
    if cause.unavailable {
        tracing::warn!(request.id = request_id, error = %cause.chain, "dependency unavailable");
    } else {
        tracing::error!(request.id = request_id, error = %cause.chain, "internal error");
    }
}

impl From<FieldError> for AppError {
    fn from(error: FieldError) -> Self {
        Self::BadUserInput(vec![error])
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        let unavailable = match &error {
            Error::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                _,
            ) => true,
            Error::DatabaseError(_, info) => {
                let message = info.message();
                UNAVAILABLE_MESSAGES.iter().any(|m| message.contains(m))
            }
            _ => false,
        };
        if unavailable {
            // Statements were sent: whatever they asked for may have been done.
            Self::ServiceUnavailable(Outcome::Unknown, error.into())
        } else {
            Self::Internal(error.into())
        }
    }
}

impl From<AppError> for async_graphql::Error {
    fn from(error: AppError) -> Self {
        Self::from(&error)
    }
}

impl From<&AppError> for async_graphql::Error {
    fn from(error: &AppError) -> Self {
        let code = error.code().as_str();
        let mut graphql = async_graphql::Error::new(error.to_string());
        if let Some(cause) = error.cause() {
            graphql.source = Some(std::sync::Arc::new(cause));
        }
        graphql.extend_with(|_, ext| {
            ext.set("code", code);
            match error {
                AppError::BadUserInput(fields) => {
                    ext.set("fields", to_value(fields));
                }
                AppError::Conflict { field, message } => {
                    ext.set(
                        "fields",
                        to_value(&[FieldError::new(*field, message.clone())]),
                    );
                }
                AppError::AccountLocked { retry_after } => {
                    ext.set("retryAfter", *retry_after);
                }
                AppError::RateLimited { retry_after, limit } => {
                    ext.set("retryAfter", *retry_after);
                    ext.set("limit", *limit);
                }
                AppError::ServiceUnavailable(outcome, _) => {
                    ext.set("outcome", outcome.as_str());
                }
                AppError::MfaRequired {
                    challenge,
                    expires_in,
                } => {
                    ext.set("challenge", challenge.as_str());
                    ext.set("expiresIn", *expires_in);
                }
                AppError::ReauthenticationRequired { code } => {
                    let factors: &[&str] = if *code {
                        &["password", "totp"]
                    } else {
                        &["password"]
                    };
                    ext.set("factors", factors.to_vec());
                }
                AppError::MfaEnrollmentRequired => {
                    ext.set("reason", "MFA_ENROLLMENT_REQUIRED");
                }
                _ => {}
            }
        })
    }
}

fn to_value(fields: &[FieldError]) -> async_graphql::Value {
    async_graphql::Value::from_json(serde_json::json!(fields)).unwrap_or_default()
}

/// The result of a service call.
pub type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    use super::*;

    // Clients switch on these strings: they must never change.
    #[test]
    fn codes_are_stable() {
        let cases = [
            (AppError::Unauthenticated("x"), "UNAUTHENTICATED"),
            (AppError::Forbidden("x".into()), "FORBIDDEN"),
            (AppError::NotFound("user"), "NOT_FOUND"),
            (AppError::bad_field("email", "bad"), "BAD_USER_INPUT"),
            (
                AppError::Conflict {
                    field: "email",
                    message: "taken".into(),
                },
                "CONFLICT",
            ),
            (
                AppError::AccountLocked { retry_after: 60 },
                "ACCOUNT_LOCKED",
            ),
            (
                AppError::RateLimited {
                    retry_after: 1,
                    limit: "login.checks_in_flight",
                },
                "RATE_LIMITED",
            ),
            (
                AppError::QueryTooComplex("deep".into()),
                "QUERY_TOO_COMPLEX",
            ),
            (
                AppError::ServiceUnavailable(Outcome::NotApplied, anyhow::anyhow!("down")),
                "SERVICE_UNAVAILABLE",
            ),
            (
                AppError::MfaRequired {
                    challenge: "ugm_x".into(),
                    expires_in: 300,
                },
                "MFA_REQUIRED",
            ),
            (
                AppError::ReauthenticationRequired { code: true },
                "REAUTHENTICATION_REQUIRED",
            ),
            (AppError::MfaEnrollmentRequired, "FORBIDDEN"),
            (
                AppError::internal(anyhow::anyhow!("boom")),
                "INTERNAL_SERVER_ERROR",
            ),
        ];
        for (error, code) in cases {
            assert_eq!(error.code().as_str(), code);
        }
    }

    #[test]
    fn locks_say_when_to_retry() {
        let error: async_graphql::Error = AppError::AccountLocked { retry_after: 60 }.into();
        let retry = error.extensions.as_ref().and_then(|e| e.get("retryAfter"));
        assert_eq!(retry, Some(&async_graphql::Value::from(60)));
    }

    #[test]
    fn internal_details_do_not_reach_the_message_but_travel_as_the_cause() {
        let inner = anyhow::anyhow!("relation \"users\" does not exist").context("listing users");
        let error: async_graphql::Error = AppError::internal(inner).into();
        assert_eq!(error.message, "internal server error");
        let server = error.into_server_error(async_graphql::Pos::default());
        let cause = server.source::<Cause>().map(|c| c.chain.as_str());
        assert_eq!(
            cause,
            Some("listing users: relation \"users\" does not exist")
        );
        let json = serde_json::to_string(&server).unwrap_or_default();
        assert!(!json.contains("relation"), "{json}");
    }

    #[test]
    fn the_cli_sees_the_cause() {
        let error = AppError::internal(anyhow::anyhow!("disk full"));
        assert_eq!(
            format!("{:#}", error.into_report()),
            "internal error: disk full"
        );
        let error = AppError::bad_field("email", "is not an email address");
        assert_eq!(
            format!("{:#}", error.into_report()),
            AppError::bad_field("email", "is not an email address").to_string()
        );
    }

    /// A writer for `tracing` that keeps what it is given.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_cause_shared_by_many_fields_is_logged_once_with_the_request_id() {
        let failed_batch = AppError::internal(anyhow::anyhow!("loader batch failed"));
        let outage =
            AppError::ServiceUnavailable(Outcome::Unknown, anyhow::anyhow!("connection reset"));
        let server_error = |e: &AppError| {
            async_graphql::Error::from(e).into_server_error(async_graphql::Pos::default())
        };
        // Three fields answered from one failed batch, one from an outage, one user error.
        let errors = [
            server_error(&failed_batch),
            server_error(&failed_batch),
            server_error(&outage),
            server_error(&failed_batch),
            server_error(&AppError::NotFound("user")),
        ];
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || log_causes(&errors, "req-42"));
        let log = String::from_utf8(captured.0.lock().map(|b| b.clone()).unwrap_or_default())
            .unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 2, "{log}");
        assert!(lines.iter().all(|l| l.contains("req-42")), "{log}");
        assert_eq!(log.matches("loader batch failed").count(), 1, "{log}");
        assert!(
            lines[0].contains("ERROR") && lines[0].contains("internal error"),
            "{log}"
        );
        assert!(
            lines[1].contains("WARN") && lines[1].contains("connection reset"),
            "{log}"
        );
    }
}
