//! `/graphql` over HTTP, after the GraphQL-over-HTTP spec.
//!
//! async-graphql reads the operations (`receive_batch_body`, `parse_query_string`), runs
//! them, and [`codes`] gives every error its contract code. This module adds only what the
//! spec and our limits ask for and async-graphql-axum's extractor and responder do not do:
//! JSON or `application/graphql-response+json` as the client accepts (the responder always
//! sends the latter, and 200 even for a request error); a body limit and read timeout that
//! answer 413 and 408 (the extractor reads without a limit and turns read errors into
//! text); no mutations over GET (the extractor runs them); a cap on batches; and
//! [`admission`](crate::graphql::admission) before anything parses a document. Browsers
//! asking for HTML get the playground (`playground.rs`).

use std::collections::BTreeMap;

use async_graphql::http::MultipartOptions;
use async_graphql::parser::types::{DocumentOperations, OperationType};
use async_graphql::{BatchRequest, ServerError};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header, request::Parts};
use axum::response::Response;
use serde::Serialize;
use serde_json::{Value, json};

use super::limits::{ClientAddr, refusal_headers, too_many_requests};
use super::request_log::Ran;
use super::{HttpState, REQUEST_ID};
use crate::auth::Principal;
use crate::config::Config;
use crate::error::{AppError, ErrorCode, log_causes, log_error};
use crate::graphql::admission::{Admission, too_costly};
use crate::graphql::codes;
use crate::graphql::context::{RequestData, attach};
use crate::graphql::cookie::{self, RefreshCookie};
pub(super) use crate::graphql::operation_of;
use crate::graphql::validated::Pick;
use crate::instruments;
use crate::services::ClientInfo;

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
const MAX_USER_AGENT_CHARS: usize = 512;

/// The media type of the answer, from the request's `Accept`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Media {
    Json,
    GraphqlResponseJson,
}

impl Media {
    fn of(headers: &HeaderMap) -> Self {
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        // The newer type wins when the client accepts it: its status codes carry meaning.
        if accept.contains(GRAPHQL_RESPONSE_JSON) {
            Self::GraphqlResponseJson
        } else {
            Self::Json
        }
    }

    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Self::Json => "application/json",
            Self::GraphqlResponseJson => "application/graphql-response+json; charset=utf-8",
        })
    }
}

/// The header a request carrying the refresh cookie must send (any value): a custom header
/// makes a cross-site request preflighted, which CORS then refuses for unlisted origins.
pub const CSRF_HEADER: HeaderName = HeaderName::from_static("x-usergraph-csrf");

/// `POST /graphql`.
pub async fn post(State(state): State<HttpState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let media = Media::of(&parts.headers);
    let config = state.services.config();
    if config.refresh_cookie
        && refresh_cookie(&parts.headers).is_some()
        && let Some(refusal) = csrf_refusal(&parts.headers, media)
    {
        return refusal;
    }
    let limit = body_limit(config, &parts.headers);
    let bytes = match read_body(&parts, body, media, limit).await {
        Ok(bytes) => bytes,
        Err(refusal) => return refusal,
    };
    let batch = match parse_batch(&parts, &bytes, media, config).await {
        Ok(batch) => batch,
        Err(refusal) => return refusal,
    };
    if let Some(refusal) = charge_batch(&state, &parts, &batch).await {
        return refusal;
    }
    let admission = &state.admission;
    let (items, batched) = match batch {
        BatchRequest::Single(request) => (vec![admit(request, admission)], false),
        BatchRequest::Batch(requests) => (
            requests.into_iter().map(|r| admit(r, admission)).collect(),
            true,
        ),
    };
    // Each document is held to the limit by admission; a batch's together as well.
    let costly = items
        .iter()
        .filter_map(|item| item.as_ref().ok().map(|(_, n)| *n))
        .fold(0usize, usize::saturating_add);
    if costly > admission.max_costly() {
        let (status, body) = render(refusal(&too_costly(admission.max_costly())), media);
        return bytes_response(status, media, body);
    }
    let items = items.into_iter().map(|item| item.map(|(r, _)| r)).collect();
    execute(&state, &parts, media, items, batched).await
}

/// The most body bytes read: a multipart body carries one file besides its operations.
fn body_limit(config: &Config, headers: &HeaderMap) -> u64 {
    if is_multipart(headers) {
        config
            .max_body_bytes
            .saturating_add(config.max_upload_bytes)
    } else {
        config.max_body_bytes
    }
}

/// Takes a traffic cell for each operation of a batch past the first (whose cell
/// `limits::admit` took with the request); the 429 when the bucket is short.
async fn charge_batch(state: &HttpState, parts: &Parts, batch: &BatchRequest) -> Option<Response> {
    let BatchRequest::Batch(requests) = batch else {
        return None;
    };
    let extra = u32::try_from(requests.len())
        .unwrap_or(u32::MAX)
        .saturating_sub(1);
    if extra == 0 {
        return None;
    }
    let addr = parts.extensions.get::<ClientAddr>().and_then(|c| c.0);
    let refusal = state.services.limit_traffic(addr, extra).await.err()?;
    Some(too_many_requests(&state.services, refusal, &parts.headers))
}

/// The refusal of a request carrying the refresh cookie, unless it sends [`CSRF_HEADER`]
/// and a JSON body, which no cross-site form or simple request can.
fn csrf_refusal(headers: &HeaderMap, media: Media) -> Option<Response> {
    let json = body_is(headers, "application/json");
    // An upload is multipart: allowed with the header, which no form can add.
    if headers.contains_key(CSRF_HEADER) && (json || is_multipart(headers)) {
        return None;
    }
    Some(request_error(
        media,
        StatusCode::FORBIDDEN,
        "a request carrying the refresh cookie must send the X-Usergraph-CSRF header and a \
         JSON body (Content-Type: application/json)",
        ErrorCode::Forbidden,
    ))
}

/// Whether the body is `multipart/form-data` (the GraphQL multipart request spec).
fn is_multipart(headers: &HeaderMap) -> bool {
    body_is(headers, "multipart/form-data")
}

/// Whether the `Content-Type` is `media` (parameters aside, in any letter case).
fn body_is(headers: &HeaderMap, media: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.trim_start().to_ascii_lowercase().starts_with(media))
}

/// The value of the refresh cookie, if the request carries it.
fn refresh_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == cookie::NAME && !value.is_empty()).then(|| value.to_owned())
        })
}

/// The request body, at most `max` bytes whatever Content-Length said (or with a chunked
/// body); the answer to send instead when it is too large, stalls or breaks off.
async fn read_body(parts: &Parts, body: Body, media: Media, max: u64) -> Result<Bytes, Response> {
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large(media, limit));
    }
    axum::body::to_bytes(body, limit).await.map_err(|error| {
        if caused_by::<http_body_util::LengthLimitError>(&error) {
            too_large(media, limit)
        } else if caused_by::<tower_http::timeout::TimeoutError>(&error) {
            request_error(
                media,
                StatusCode::REQUEST_TIMEOUT,
                "the request body stopped arriving",
                ErrorCode::BadUserInput,
            )
        } else {
            request_error(
                media,
                StatusCode::BAD_REQUEST,
                "could not read the request body",
                ErrorCode::BadUserInput,
            )
        }
    })
}

/// The operations of a body (JSON, a JSON batch, or multipart), within the batch limit; the
/// answer to send instead when it is not a GraphQL request.
async fn parse_batch(
    parts: &Parts,
    bytes: &Bytes,
    media: Media,
    config: &Config,
) -> Result<BatchRequest, Response> {
    let refuse = |message: &str, code| request_error(media, StatusCode::BAD_REQUEST, message, code);
    let Some(content_type) = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        // The GraphQL-over-HTTP spec: a body of unknown type is not guessed at.
        return Err(request_error(
            media,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "say what the body is: Content-Type: application/json",
            ErrorCode::BadUserInput,
        ));
    };
    let options = MultipartOptions::default()
        .max_file_size(usize::try_from(config.max_upload_bytes).unwrap_or(usize::MAX))
        .max_num_files(1);
    let batch =
        async_graphql::http::receive_batch_body(Some(content_type), bytes.as_ref(), options)
            .await
            .map_err(|error| {
                let message = format!("the request is not a valid GraphQL request: {error}");
                refuse(&message, ErrorCode::BadUserInput)
            })?;
    if files_in(&batch) > 1 {
        return Err(refuse(
            "a request may carry one file; send each upload on its own",
            ErrorCode::BadUserInput,
        ));
    }
    let max_batch = usize::try_from(config.max_batch).unwrap_or(usize::MAX);
    if let BatchRequest::Batch(requests) = &batch {
        if requests.len() > max_batch {
            let message = format!("a batch may hold at most {max_batch} operations");
            return Err(refuse(&message, ErrorCode::QueryTooComplex));
        }
        if requests.is_empty() {
            return Err(refuse("the batch is empty", ErrorCode::BadUserInput));
        }
    }
    Ok(batch)
}

/// How many files the operations of `batch` carry.
fn files_in(batch: &BatchRequest) -> usize {
    match batch {
        BatchRequest::Single(request) => request.uploads.len(),
        BatchRequest::Batch(requests) => requests.iter().map(|r| r.uploads.len()).sum(),
    }
}

/// `GET /graphql`: subscriptions for WebSocket upgrades, the playground for browsers
/// (unless turned off), queries (never mutations) for everyone else.
pub async fn get(State(state): State<HttpState>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    if super::socket::wants_upgrade(&parts) {
        return super::socket::upgrade(state, parts).await;
    }
    let wants_html = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if wants_html && state.services.config().serves_graphiql() {
        return super::playground::page();
    }
    let media = Media::of(&parts.headers);
    let query = parts.uri.query().unwrap_or_default();
    let mut request = match async_graphql::http::parse_query_string(query) {
        Ok(request) => request,
        Err(error) => {
            let message = format!("the query string is not a valid GraphQL request: {error}");
            return request_error(
                media,
                StatusCode::BAD_REQUEST,
                &message,
                ErrorCode::BadUserInput,
            );
        }
    };
    // Before anything parses the document: that is where a deep one would overflow.
    let admitted = state.admission.admit(&mut request);
    if let Err(error) = admitted.and_then(|_| not_a_subscription(&mut request)) {
        let (status, body) = render(refusal(&error), media);
        return bytes_response(status, media, body);
    }
    if is_mutation(&mut request) {
        let mut response = request_error(
            media,
            StatusCode::METHOD_NOT_ALLOWED,
            "mutations must be sent with POST",
            ErrorCode::BadUserInput,
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    execute(&state, &parts, media, vec![Ok(request)], false).await
}

fn is_mutation(request: &mut async_graphql::Request) -> bool {
    let name = request.operation_name.clone();
    let Ok(document) = request.parsed_query() else {
        // Unparsable queries fail later with a proper GraphQL error.
        return false;
    };
    let name = name.as_deref();
    match &document.operations {
        DocumentOperations::Single(op) => op.node.ty == OperationType::Mutation,
        DocumentOperations::Multiple(ops) => match name {
            Some(name) => ops
                .iter()
                .any(|(n, op)| n.as_str() == name && op.node.ty == OperationType::Mutation),
            None => ops.values().any(|op| op.node.ty == OperationType::Mutation),
        },
    }
}

/// A request that passed [`admission`], or why it did not.
type Admitted = Result<async_graphql::Request, AppError>;

/// A request that passed admission with its count of password-hashing and account-creating
/// fields, or why it did not pass.
fn admit(
    mut request: async_graphql::Request,
    admission: &Admission,
) -> Result<(async_graphql::Request, usize), AppError> {
    let costly = admission.admit(&mut request)?;
    not_a_subscription(&mut request)?;
    Ok((request, costly))
}

/// `BAD_USER_INPUT` saying where subscriptions are served, when `request` runs one.
fn not_a_subscription(request: &mut async_graphql::Request) -> Result<(), AppError> {
    match operation_of(request) {
        Some(operation) if operation.node.ty == OperationType::Subscription => {
            Err(AppError::bad_field(
                "query",
                "subscriptions are served over WebSocket at /graphql/ws \
                 (graphql-transport-ws), not over HTTP",
            ))
        }
        _ => Ok(()),
    }
}

/// The answer to a request refused before execution: a request error, nothing ran.
pub(super) fn refusal(error: &AppError) -> async_graphql::Response {
    let error = async_graphql::Error::from(error);
    let mut server_error = ServerError::new(error.message, None);
    server_error.extensions = error.extensions;
    async_graphql::Response::from_errors(vec![server_error])
}

async fn execute(
    state: &HttpState,
    parts: &Parts,
    media: Media,
    items: Vec<Admitted>,
    batched: bool,
) -> Response {
    if !batched && let Some(Err(error)) = items.first() {
        let (status, body) = render(refusal(error), media);
        return bytes_response(status, media, body);
    }
    let request_id = parts
        .headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let principal = match principal(&parts.headers, state).await {
        Ok(principal) => principal,
        Err(error) => return unidentified(&error, media, request_id),
    };
    let client = client_info(parts);
    let services = &state.services;
    let cookie = request_cookie(services.config(), parts);
    let data = |request| {
        let data = RequestData {
            principal: principal.clone(),
            client: client.clone(),
            refresh_cookie: cookie.clone(),
        };
        attach(request, data, services)
    };
    let mut ran = Ran {
        operations: items.len(),
        user: principal.user_id(),
        ..Ran::default()
    };
    let mut answers = Answers::default();
    // One after the other, as async-graphql runs a batch.
    for item in items {
        let response = match item {
            Ok(request) => run_counted(state, request, data, &mut ran).await,
            Err(error) => refusal(&error),
        };
        log_causes(&response.errors, request_id);
        answers.add(response, media, batched);
    }
    let mut response = answers.respond(services, media, batched);
    response.extensions_mut().insert(ran);
    response
}

/// The answers of a request's operations, gathered for one response.
#[derive(Default)]
struct Answers {
    /// Each operation's status and body, in order.
    bodies: Vec<(StatusCode, Vec<u8>)>,
    /// What resolvers set (the refresh cookie), from every operation of a batch.
    headers: HeaderMap,
    /// The limit and wait, when a rate limit refused a lone operation whole.
    refused_by_limit: Option<(String, u64)>,
}

impl Answers {
    fn add(&mut self, response: async_graphql::Response, media: Media, batched: bool) {
        for (name, value) in &response.http_headers {
            self.headers.append(name, value.clone());
        }
        if !batched {
            self.refused_by_limit = rate_limit_refusal(&response);
        }
        self.bodies.push(render(response, media));
    }

    /// One response: a batch's as a JSON array (always 200), a lone operation's with its
    /// own status and, when a rate limit refused it, the rate-limit headers.
    fn respond(
        mut self,
        services: &crate::services::Services,
        media: Media,
        batched: bool,
    ) -> Response {
        if batched {
            let bodies = self.bodies.into_iter().map(|(_, body)| body);
            let mut response = bytes_response(StatusCode::OK, media, json_array(bodies));
            response.headers_mut().extend(self.headers);
            return response;
        }
        let (status, body) = self
            .bodies
            .pop()
            .unwrap_or((StatusCode::OK, b"{}".to_vec()));
        let mut response = bytes_response(status, media, body);
        response.headers_mut().extend(self.headers);
        if let Some((limit, retry_after)) = self.refused_by_limit {
            refusal_headers(services, &limit, retry_after, response.headers_mut());
        }
        response
    }
}

/// The refresh cookie the resolvers may use: in cookie mode, on POST only (over GET no
/// mutation runs, and a cross-site GET may carry the cookie).
fn request_cookie(config: &Config, parts: &Parts) -> RefreshCookie {
    RefreshCookie(
        (config.refresh_cookie && parts.method == axum::http::Method::POST)
            .then(|| refresh_cookie(&parts.headers))
            .flatten(),
    )
}

/// Runs one operation, counted and timed by its type and root field; the first of a request
/// names it in `ran`.
async fn run_counted(
    state: &HttpState,
    mut request: async_graphql::Request,
    data: impl FnOnce(async_graphql::Request) -> async_graphql::Request,
    ran: &mut Ran,
) -> async_graphql::Response {
    let (kind, field, name) = operation_label(&mut request);
    if ran.field.is_none() {
        ran.field = Some((kind, field));
        ran.name = name;
    }
    let started = std::time::Instant::now();
    let pick = state.validated.pick(&mut request);
    let schema = match pick {
        Pick::Known => state.validated.lenient(),
        Pick::Check(_) => &state.schema,
    };
    let response = schema.execute(data(request)).await;
    if let Pick::Check(Some(key)) = pick
        && response.errors.is_empty()
    {
        state.validated.remember(key);
    }
    let outcome = if response.errors.is_empty() {
        "ok"
    } else {
        "error"
    };
    metrics::counter!(instruments::OPERATIONS, "type" => kind, "field" => field, "outcome" => outcome)
        .increment(1);
    metrics::histogram!(instruments::OPERATION_DURATION, "type" => kind, "field" => field)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The operation's type and first root field, for the metrics: `other` for a field the
/// schema does not have (and `unknown` for a document that does not parse); and its name,
/// for the log line.
fn operation_label(
    request: &mut async_graphql::Request,
) -> (&'static str, &'static str, Option<async_graphql::Name>) {
    let name = request.operation_name.clone();
    let Ok(document) = request.parsed_query() else {
        return ("unknown", "unknown", None);
    };
    let operation = match (&document.operations, name.as_deref()) {
        (DocumentOperations::Single(op), _) => Some((None, &op.node)),
        (DocumentOperations::Multiple(ops), Some(name)) => ops
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(n, op)| (Some(n), &op.node)),
        (DocumentOperations::Multiple(ops), None) => {
            ops.iter().next().map(|(n, op)| (Some(n), &op.node))
        }
    };
    let Some((name, operation)) = operation else {
        return ("unknown", "unknown", None);
    };
    let name = name.cloned();
    let kind = match operation.ty {
        OperationType::Query => "query",
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
    };
    let field = operation
        .selection_set
        .node
        .items
        .iter()
        .find_map(|item| match &item.node {
            async_graphql::parser::types::Selection::Field(field) => {
                Some(field.node.name.node.as_str())
            }
            _ => None,
        });
    let field = match field {
        Some(field) if field.starts_with("__") => "introspection",
        Some(field) => crate::graphql::root_field(kind, field).unwrap_or("other"),
        None => "other",
    };
    (kind, field, name)
}

/// The value of `key` in an error's extensions.
fn extension(error: &ServerError, key: &str) -> Option<async_graphql::Value> {
    error
        .extensions
        .as_ref()
        .and_then(|ext| ext.get(key))
        .cloned()
}

/// Counts errors by code, and rate-limit refusals by limit (both bounded sets).
fn count_errors(errors: &[ServerError]) {
    for error in errors {
        let Some(async_graphql::Value::String(code)) = extension(error, "code") else {
            continue;
        };
        if code == ErrorCode::RateLimited.as_str()
            && let Some(async_graphql::Value::String(limit)) = extension(error, "limit")
        {
            metrics::counter!(instruments::RATE_LIMITED, "limit" => limit).increment(1);
        }
        metrics::counter!(instruments::ERRORS, "code" => code).increment(1);
    }
}

/// The limit and wait when a rate limit refused the whole operation: no data, and every
/// error `RATE_LIMITED` (the first one's limit is named).
fn rate_limit_refusal(response: &async_graphql::Response) -> Option<(String, u64)> {
    let all_limited = !response.errors.is_empty()
        && response.errors.iter().all(|e| {
            extension(e, "code")
                == Some(async_graphql::Value::from(ErrorCode::RateLimited.as_str()))
        });
    if response.data != async_graphql::Value::Null || !all_limited {
        return None;
    }
    let first = response.errors.first()?;
    let limit = match extension(first, "limit")? {
        async_graphql::Value::String(limit) => limit,
        _ => return None,
    };
    let retry_after = match extension(first, "retryAfter")? {
        async_graphql::Value::Number(n) => n.as_u64()?,
        _ => return None,
    };
    Some((limit, retry_after))
}

/// The answer when the caller could not be identified because something failed (the
/// database, most likely): logged here, its details kept out of the message.
fn unidentified(error: &AppError, media: Media, request_id: &str) -> Response {
    let status = match error.code() {
        ErrorCode::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    log_error(error, request_id);
    let (_, body) = render(refusal(error), media);
    bytes_response(status, media, body)
}

/// The JSON array of already serialised `items`.
fn json_array(items: impl ExactSizeIterator<Item = Vec<u8>>) -> Vec<u8> {
    let mut array = Vec::with_capacity(2 + items.len() * 64);
    array.push(b'[');
    for (n, item) in items.enumerate() {
        if n > 0 {
            array.push(b',');
        }
        array.extend_from_slice(&item);
    }
    array.push(b']');
    array
}

/// Turns a GraphQL response into JSON, giving every error a contract code. A request error
/// (nothing executed) is a 400 with no `data` for `application/graphql-response+json`.
fn render(mut response: async_graphql::Response, media: Media) -> (StatusCode, Vec<u8>) {
    if response.errors.is_empty() {
        return (
            StatusCode::OK,
            serde_json::to_vec(&response).unwrap_or_default(),
        );
    }
    codes::complete(&mut response.errors);
    count_errors(&response.errors);
    let request_error = response.data == async_graphql::Value::Null
        && response.errors.iter().all(|e| e.path.is_empty());
    if request_error && media == Media::GraphqlResponseJson {
        let body = RequestErrors {
            errors: &response.errors,
            extensions: &response.extensions,
        };
        return (
            StatusCode::BAD_REQUEST,
            serde_json::to_vec(&body).unwrap_or_default(),
        );
    }
    (
        StatusCode::OK,
        serde_json::to_vec(&response).unwrap_or_default(),
    )
}

/// The body of a request error under `application/graphql-response+json`: the response
/// without its `data`, which the spec says must be absent when nothing was executed.
#[derive(Serialize)]
struct RequestErrors<'a> {
    errors: &'a [ServerError],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    extensions: &'a BTreeMap<String, async_graphql::Value>,
}

/// Who the request acts as. A JWT is checked in memory (signature, claims, and the revoked
/// session set); a personal token costs one indexed lookup.
async fn principal(headers: &HeaderMap, state: &HttpState) -> Result<Principal, AppError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(Principal::Anonymous);
    };
    principal_of(value.to_str().ok(), state).await
}

/// Who an `Authorization` value (`Bearer <token>`) names; `None` when it is not text.
pub(super) async fn principal_of(
    value: Option<&str>,
    state: &HttpState,
) -> Result<Principal, AppError> {
    let Some(token) = bearer(value) else {
        return Ok(Principal::Invalid(
            "use the header `Authorization: Bearer <token>`",
        ));
    };
    if token.len() > crate::domain::bounds::TOKEN * 16 {
        // No token of ours is this long; a JWT with every claim is well under 1 KiB.
        return Ok(Principal::Invalid("the token is not valid"));
    }
    state.services.authenticate(token).await
}

/// The token of a `Bearer <token>` value.
pub(super) fn bearer(value: Option<&str>) -> Option<&str> {
    value
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

pub(super) fn client_info(parts: &Parts) -> ClientInfo {
    let ip = parts
        .extensions
        .get::<ClientAddr>()
        .and_then(|addr| addr.0)
        .map(|ip| ip.to_string());
    let user_agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(MAX_USER_AGENT_CHARS).collect());
    ClientInfo { ip, user_agent }
}

/// Whether `error` or one of its sources is a `T`.
fn caused_by<T: std::error::Error + 'static>(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<T>() {
            return true;
        }
        source = e.source();
    }
    false
}

fn too_large(media: Media, limit: usize) -> Response {
    let message = format!("the request body is larger than {limit} bytes");
    request_error(
        media,
        StatusCode::PAYLOAD_TOO_LARGE,
        &message,
        ErrorCode::BadUserInput,
    )
}

fn request_error(media: Media, status: StatusCode, message: &str, code: ErrorCode) -> Response {
    let mut extensions = json!({ "code": code.as_str() });
    if code == ErrorCode::BadUserInput {
        extensions["fields"] = json!([]);
    }
    let body = json!({ "errors": [{ "message": message, "extensions": extensions }] });
    json_response(status, media, &body)
}

fn json_response(status: StatusCode, media: Media, body: &Value) -> Response {
    bytes_response(status, media, serde_json::to_vec(body).unwrap_or_default())
}

fn bytes_response(status: StatusCode, media: Media, bytes: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, media.content_type());
    response
}
