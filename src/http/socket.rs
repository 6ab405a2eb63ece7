//! GraphQL subscriptions over WebSocket: the graphql-transport-ws protocol (the `graphql-ws`
//! library's) and the older subscriptions-transport-ws, at `/graphql/ws` and on `/graphql`.
//!
//! async-graphql runs the protocol; every client message passes through [`Connection`]
//! first, which holds what the protocol leaves to the server: the token in
//! `connection_init` (checked like a request's, then again every [`RECHECK`], so a socket
//! whose token expires or whose session is revoked is closed), the admission checks on
//! each document, subscriptions only (queries and mutations go over HTTP, where the rate
//! limits are), limits on sockets per account and per address and on messages per second,
//! keep-alive pings, and closing when the instance shuts down.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_graphql::http::{ClientMessage, WebSocket as Protocol, WebSocketProtocols, WsMessage};
use async_graphql::parser::types::OperationType;
use async_graphql::{Data, ServerError};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::HttpState;
use super::graphql::{bearer, client_info, operation_of, principal_of, refusal};
use crate::auth::Principal;
use crate::error::AppError;
use crate::graphql::context::{RequestData, attach_live};
use crate::graphql::cookie::RefreshCookie;
use crate::ids::UserId;
use crate::services::ClientInfo;

/// Where subscriptions are served (`/graphql` takes upgrades too).
pub const PATH: &str = "/graphql/ws";

/// How often a connection's credentials are checked again.
const RECHECK: Duration = Duration::from_millis(250);

/// A personal token is looked up in the database: only every this many checks.
const PERSONAL_TOKEN_EVERY: u32 = 20;

/// The account behind a socket is checked every this many checks.
const ACCOUNT_EVERY: u32 = 4;

/// How long a client has to send `connection_init`.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the server pings; a client silent for three of these is gone.
const PING_EVERY: Duration = Duration::from_secs(15);

/// Most subscriptions one socket runs at once.
const MAX_SUBSCRIPTIONS: usize = 20;

/// Largest message accepted from a client: a document at the query limit with variables.
const MAX_MESSAGE: usize = 256 * 1024;

/// Client messages waiting for async-graphql; a client that gets this far ahead is cut off.
const INBOX: usize = 64;

/// How long the close of a revoked session waits for its `sessionRevoked` message.
const REVOKED_GRACE: Duration = Duration::from_secs(1);

/// The sockets open on this instance, per client address and per account.
#[derive(Default)]
pub struct Sockets(Mutex<HashMap<Holder, usize>>);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Holder {
    Address(u128),
    Account(UserId),
}

/// One socket's place in [`Sockets`], given back when dropped.
pub struct Place {
    sockets: Arc<Sockets>,
    holder: Holder,
}

impl Sockets {
    fn take(self: &Arc<Self>, holder: Holder, max: usize) -> Option<Place> {
        let mut counts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(holder).or_default();
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(Place {
            sockets: self.clone(),
            holder,
        })
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut counts = self
            .sockets
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.holder) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.holder);
            }
        }
    }
}

/// `GET /graphql/ws`.
pub async fn get(State(state): State<HttpState>, request: Request) -> Response {
    upgrade(state, request.into_parts().0).await
}

/// Whether `parts` ask for a WebSocket.
pub fn wants_upgrade(parts: &Parts) -> bool {
    parts
        .headers
        .get(axum::http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Upgrades the request to a subscription socket: 429 when its address holds too many.
pub async fn upgrade(state: HttpState, mut parts: Parts) -> Response {
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let client = client_info(&parts);
    let config = state.services.config();
    let address = Holder::Address(crate::ratelimit::ip_bits(client.addr()));
    let Some(place) = state.sockets.take(address, config.ws_max_per_ip) else {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            "too many subscription sockets from this address",
        )
            .into_response();
    };
    let upgrade = upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE);
    // A client that names no protocol speaks the current one.
    let protocol = upgrade
        .selected_protocol()
        .and_then(|p| p.to_str().ok())
        .and_then(|p| p.parse().ok())
        .unwrap_or(WebSocketProtocols::GraphQLWS);
    upgrade.on_upgrade(move |socket| serve(socket, state, client, protocol, place))
}

/// Why a socket ends: a close frame's code and reason.
type Close = (u16, String);

async fn serve(
    socket: WebSocket,
    state: HttpState,
    client: ClientInfo,
    protocol: WebSocketProtocols,
    place: Place,
) {
    let (mut sink, mut source) = socket.split();
    let (inbox, messages) = mpsc::channel::<serde_json::Result<ClientMessage>>(INBOX);
    let granted = Arc::new(Mutex::new(None::<Data>));
    let mut graphql = Box::pin(run_protocol(&state, protocol, messages, granted.clone()));
    metrics::gauge!(crate::instruments::SOCKETS).increment(1.0);
    let mut connection = Connection::new(state, client, protocol, granted, place);
    let mut pings = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    let mut checks = tokio::time::interval(RECHECK);
    let close: Option<Close> = loop {
        let step = tokio::select! {
            frame = source.next() => connection.received(frame, &inbox).await,
            out = graphql.next() => match out {
                Some(WsMessage::Text(text)) => connection.sent(text),
                Some(WsMessage::Close(code, reason)) => Step::Close((code, reason)),
                None => Step::End,
            },
            _ = pings.tick() => connection.ping(),
            _ = checks.tick() => connection.check().await,
        };
        match step {
            Step::Continue => {}
            Step::Send(message) => {
                if sink.send(message).await.is_err() {
                    break None;
                }
            }
            Step::Close(close) => break Some(close),
            Step::End => break None,
        }
    };
    if let Some((code, reason)) = close {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        // The client may be gone already; the socket ends either way.
        let _ = sink.send(Message::Close(Some(frame))).await;
    }
    metrics::gauge!(crate::instruments::SOCKETS).decrement(1.0);
}

/// async-graphql's side of the protocol, fed the vetted `messages`; it acknowledges
/// `connection_init` with what [`Connection::authenticate`] `granted`.
fn run_protocol(
    state: &HttpState,
    protocol: WebSocketProtocols,
    mut messages: mpsc::Receiver<serde_json::Result<ClientMessage>>,
    granted: Arc<Mutex<Option<Data>>>,
) -> impl futures_util::Stream<Item = WsMessage> + use<> {
    Protocol::from_message_stream(
        state.schema.clone(),
        futures_util::stream::poll_fn(move |cx| messages.poll_recv(cx)),
        protocol,
    )
    .on_connection_init(move |_| async move {
        granted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .ok_or_else(|| async_graphql::Error::new("Forbidden"))
    })
}

/// What the loop does next.
enum Step {
    Continue,
    Send(Message),
    Close(Close),
    End,
}

/// A socket's state: its caller once `connection_init` passed, its subscriptions, its
/// limits.
struct Connection {
    state: HttpState,
    client: ClientInfo,
    protocol: WebSocketProtocols,
    granted: Arc<Mutex<Option<Data>>>,
    _address: Place,
    opened: Instant,
    caller: Option<Caller>,
    /// The running subscriptions, and whether each is a `sessionRevoked`.
    subscriptions: HashMap<String, bool>,
    heard: Instant,
    messages: DefaultDirectRateLimiter,
    checks: u32,
    /// Set when the session was revoked: close then at the latest.
    closing: Option<(Instant, Close)>,
}

/// Who a socket acts for.
struct Caller {
    token: String,
    principal: Principal,
    _account: Place,
}

impl Connection {
    fn new(
        state: HttpState,
        client: ClientInfo,
        protocol: WebSocketProtocols,
        granted: Arc<Mutex<Option<Data>>>,
        address: Place,
    ) -> Self {
        let rate = state.services.config().ws_messages_per_second;
        let burst = rate.saturating_mul(NonZeroU32::MIN.saturating_add(1));
        Self {
            state,
            client,
            protocol,
            granted,
            _address: address,
            opened: Instant::now(),
            caller: None,
            subscriptions: HashMap::new(),
            heard: Instant::now(),
            messages: RateLimiter::direct(Quota::per_second(rate).allow_burst(burst)),
            checks: 0,
            closing: None,
        }
    }

    /// A frame from the client.
    async fn received(
        &mut self,
        frame: Option<Result<Message, axum::Error>>,
        inbox: &mpsc::Sender<serde_json::Result<ClientMessage>>,
    ) -> Step {
        let bytes = match frame {
            Some(Ok(Message::Text(text))) => axum::body::Bytes::from(text),
            Some(Ok(Message::Binary(bytes))) => bytes,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                self.heard = Instant::now();
                return Step::Continue;
            }
            Some(Err(error)) => return too_big(error).map_or(Step::End, Step::Close),
            Some(Ok(Message::Close(_))) | None => return Step::End,
        };
        self.heard = Instant::now();
        if self.messages.check().is_err() {
            return Step::Close((4429, "Too many messages".into()));
        }
        let message = match ClientMessage::from_bytes(&bytes) {
            Ok(message) => self.vet(message).await,
            Err(_) => Err(Step::Close((4400, "Invalid message received".into()))),
        };
        let message = match message {
            Ok(message) => message,
            Err(step) => return step,
        };
        // Never waits: the loop that would empty the inbox is the one running this.
        match inbox.try_send(Ok(message)) {
            Ok(()) => Step::Continue,
            Err(mpsc::error::TrySendError::Full(_)) => {
                Step::Close((4429, "Too many messages".into()))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Step::End,
        }
    }

    /// `message` as async-graphql should get it, or what to do instead.
    async fn vet(&mut self, message: ClientMessage) -> Result<ClientMessage, Step> {
        match message {
            ClientMessage::ConnectionInit { payload } => {
                self.authenticate(payload).await?;
                Ok(ClientMessage::ConnectionInit { payload: None })
            }
            ClientMessage::Start { id, payload } => {
                let payload = self.admit(&id, payload)?;
                Ok(ClientMessage::Start { id, payload })
            }
            ClientMessage::Stop { id } => {
                self.subscriptions.remove(&id);
                Ok(ClientMessage::Stop { id })
            }
            other => Ok(other),
        }
    }

    /// Checks the token of `connection_init` like a request's: 4403 when there is none or
    /// it is refused, 4429 when the account holds too many sockets here.
    async fn authenticate(&mut self, payload: Option<serde_json::Value>) -> Result<(), Step> {
        if self.caller.is_some() {
            return Err(Step::Close((
                4429,
                "Too many initialisation requests".into(),
            )));
        }
        let value = authorization(payload.as_ref());
        let forbidden = |why: &str| Step::Close((4403, format!("Forbidden: {why}")));
        if value.is_none() {
            return Err(forbidden(NO_AUTHORIZATION));
        }
        let principal = principal_of(value, &self.state).await.map_err(|error| {
            tracing::warn!(error = %error, "authenticating a subscription socket failed");
            Step::Close((4500, "Internal server error".into()))
        })?;
        let services = &self.state.services;
        let user = services
            .viewer(&principal)
            .await
            .map_err(|_| forbidden("the token is not valid (it may have expired or been revoked)"))?
            .user
            .id;
        let max = services.config().ws_max_per_account;
        let account = self
            .state
            .sockets
            .take(Holder::Account(user), max)
            .ok_or_else(|| Step::Close((4429, "Too many sockets for this account".into())))?;
        *self.granted.lock().unwrap_or_else(PoisonError::into_inner) = Some(Data::default());
        self.caller = Some(Caller {
            token: bearer(value).unwrap_or_default().to_owned(),
            principal,
            _account: account,
        });
        Ok(())
    }

    /// A subscription to start, with its request data; an `error` message for its id when
    /// it may not run.
    fn admit(
        &mut self,
        id: &str,
        mut request: async_graphql::Request,
    ) -> Result<async_graphql::Request, Step> {
        let Some(caller) = &self.caller else {
            return Err(Step::Close((4401, "Unauthorized".into())));
        };
        if self.subscriptions.contains_key(id) {
            return Err(Step::Close((
                4409,
                format!("Subscriber for {id} already exists"),
            )));
        }
        if self.closing.is_some() {
            return Err(self.refuse(id, &crate::services::shared::TOKEN_REFUSED));
        }
        if self.subscriptions.len() >= MAX_SUBSCRIPTIONS {
            let error = AppError::QueryTooComplex(format!(
                "at most {MAX_SUBSCRIPTIONS} subscriptions run on one socket"
            ));
            return Err(self.refuse(id, &error));
        }
        if let Err(error) = self.state.admission.admit(&mut request) {
            return Err(self.refuse(id, &error));
        }
        let revocations = match subscription_fields(&mut request) {
            Some(fields) => fields.iter().any(|f| f == "sessionRevoked"),
            None => {
                let error = AppError::bad_field(
                    "query",
                    "only subscriptions are served over WebSocket: send queries and mutations \
                     over HTTP",
                );
                return Err(self.refuse(id, &error));
            }
        };
        let data = RequestData {
            principal: caller.principal.clone(),
            client: self.client.clone(),
            refresh_cookie: RefreshCookie::default(),
        };
        self.subscriptions.insert(id.to_owned(), revocations);
        Ok(attach_live(request, data, &self.state.services))
    }

    /// The `error` message for subscription `id`.
    fn refuse(&self, id: &str, error: &AppError) -> Step {
        let errors: Vec<ServerError> = refusal(error).errors;
        let payload = match self.protocol {
            WebSocketProtocols::GraphQLWS => json!(errors),
            WebSocketProtocols::SubscriptionsTransportWS => json!(errors.first()),
        };
        let message = json!({ "type": "error", "id": id, "payload": payload });
        Step::Send(Message::Text(message.to_string().into()))
    }

    /// A message async-graphql sends: a subscription that completed is forgotten, and the
    /// socket closes once a revoked session's `sessionRevoked` has told the client.
    fn sent(&mut self, text: String) -> Step {
        #[derive(serde::Deserialize)]
        struct Head {
            r#type: String,
            id: Option<String>,
        }
        if let Ok(Head {
            r#type,
            id: Some(id),
        }) = serde_json::from_str::<Head>(&text)
            && (r#type == "complete" || r#type == "error")
            && self.subscriptions.remove(&id).is_some()
            && self.closing.is_some()
            && !self.subscriptions.values().any(|revocations| *revocations)
        {
            // The client still gets this message: the close follows at the next check.
            if let Some((at, _)) = &mut self.closing {
                *at = Instant::now();
            }
        }
        Step::Send(Message::Text(text.into()))
    }

    /// A keep-alive ping, or the end of a client that stopped answering.
    fn ping(&self) -> Step {
        if self.heard.elapsed() > PING_EVERY * 3 {
            return Step::Close((4408, "Keep-alive timeout".into()));
        }
        Step::Send(Message::Ping(axum::body::Bytes::new()))
    }

    /// Closes a socket that waited too long for `connection_init`, whose caller may no
    /// longer sign in, whose token expired or session was revoked, or whose instance is
    /// shutting down.
    async fn check(&mut self) -> Step {
        if self.state.readiness.draining() {
            return Step::Close((1001, "The server is shutting down".into()));
        }
        if let Some((at, close)) = &self.closing {
            return if Instant::now() >= *at {
                Step::Close(close.clone())
            } else {
                Step::Continue
            };
        }
        let Some(caller) = &self.caller else {
            return if self.opened.elapsed() > INIT_TIMEOUT {
                Step::Close((4408, "Connection initialisation timeout".into()))
            } else {
                Step::Continue
            };
        };
        self.checks = self.checks.wrapping_add(1);
        let personal = matches!(caller.principal, Principal::PersonalToken { .. });
        if personal && !self.checks.is_multiple_of(PERSONAL_TOKEN_EVERY) {
            return Step::Continue;
        }
        if let Some(why) = self.refused(caller).await {
            let close = (4403, format!("Forbidden: {why}"));
            // A `sessionRevoked` subscription tells the client first, then the socket closes.
            let wait = if self.subscriptions.values().any(|revocations| *revocations) {
                REVOKED_GRACE
            } else {
                Duration::ZERO
            };
            self.closing = Some((Instant::now() + wait, close));
        }
        Step::Continue
    }

    /// Why `caller`'s token no longer holds, if it does not.
    async fn refused(&self, caller: &Caller) -> Option<&'static str> {
        let services = &self.state.services;
        match services.authenticate(&caller.token).await {
            Ok(principal) if principal == caller.principal => {}
            Ok(_) => return Some("the token expired or its session was revoked"),
            // The database did not answer: the next check decides.
            Err(_) => return None,
        }
        // The account (from the caller cache, or the database when the cache is stale):
        // once a second is enough, since deactivating or deleting one revokes its sessions.
        if !self.checks.is_multiple_of(ACCOUNT_EVERY) {
            return None;
        }
        match services.viewer(&caller.principal).await {
            Ok(_) => None,
            Err(AppError::Unauthenticated(_)) => Some("the account may no longer sign in"),
            Err(_) => None,
        }
    }
}

/// Why a `connection_init` without a token is refused.
const NO_AUTHORIZATION: &str =
    "send { \"Authorization\": \"Bearer <access token>\" } in connection_init";

/// The `Authorization` of a `connection_init` payload (any case of its first letter).
fn authorization(payload: Option<&serde_json::Value>) -> Option<&str> {
    let payload = payload?;
    payload
        .get("Authorization")
        .or_else(|| payload.get("authorization"))
        .and_then(|v| v.as_str())
}

/// The root fields of the operation `request` runs, when it is a subscription.
fn subscription_fields(request: &mut async_graphql::Request) -> Option<Vec<String>> {
    let Some(operation) = operation_of(request) else {
        // async-graphql reports what is wrong with the text.
        return Some(Vec::new());
    };
    if operation.node.ty != OperationType::Subscription {
        return None;
    }
    Some(
        operation
            .node
            .selection_set
            .node
            .items
            .iter()
            .filter_map(|item| match &item.node {
                async_graphql::parser::types::Selection::Field(field) => {
                    Some(field.node.name.node.to_string())
                }
                _ => None,
            })
            .collect(),
    )
}

/// The close a read error calls for: 1009 (message too big) for a message over
/// [`MAX_MESSAGE`], so the client learns why; none for the rest (the peer is gone, or
/// broke the protocol and gets no answer from a stream that cannot read it).
fn too_big(error: axum::Error) -> Option<Close> {
    match error.into_inner().downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(_)) => Some((
            1009,
            format!("Message too big: at most {MAX_MESSAGE} bytes"),
        )),
        _ => None,
    }
}
