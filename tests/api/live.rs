//! Subscriptions over a real WebSocket on a bound port: revocations pushed and the socket
//! closed, the audit trail live for holders of `audit:read` (and not after they lose it),
//! the caller's own account changes, the refusals of the transport, and that a change that
//! rolled back announces nothing.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use usergraph::http::serve::ServeOptions;

use crate::both_backends;
use crate::helpers::{Backend, PASSWORD, TestApp, TestDb, error_code};
use crate::process::Server;
use crate::tokens::{claims_of, kid_of, sign};

both_backends!(
    sessions_hear_their_revocation_and_close,
    deactivated_and_erased_accounts_are_told_and_closed,
    holders_of_audit_read_watch_the_trail,
    user_updated_follows_the_account,
    connection_init_decides_who_listens,
    documents_and_floods_are_refused,
    an_expired_token_closes_the_socket,
    a_personal_token_listens_until_revoked,
    rolled_back_changes_announce_nothing,
);

/// Far above any wait below: only a server that never sends fails on it.
const PATIENCE: Duration = Duration::from_secs(10);

/// A subscription client speaking graphql-transport-ws (or the protocol it was opened with).
pub struct Socket {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Socket {
    /// Opens a socket to `path` on `address` asking for `protocol`.
    pub async fn open(address: SocketAddr, path: &str, protocol: &str) -> Self {
        let mut request = format!("ws://{address}{path}")
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("sec-websocket-protocol", protocol.parse().unwrap());
        let (stream, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("opening the socket");
        assert_eq!(response.headers()["sec-websocket-protocol"], protocol);
        Self { stream }
    }

    /// Opens a graphql-transport-ws socket at `/graphql/ws` and sends `connection_init`
    /// with `token`; the socket once acknowledged.
    pub async fn connect(address: SocketAddr, token: &str) -> Self {
        let mut socket = Self::open(address, "/graphql/ws", "graphql-transport-ws").await;
        socket.init(Some(token)).await;
        let ack = socket.next().await;
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        socket
    }

    /// Sends `connection_init`, with `{ Authorization: Bearer <token> }` when given one.
    pub async fn init(&mut self, token: Option<&str>) {
        let payload = token.map(|t| json!({ "Authorization": format!("Bearer {t}") }));
        self.send(json!({ "type": "connection_init", "payload": payload }))
            .await;
    }

    /// Sends a JSON message.
    pub async fn send(&mut self, message: Value) {
        self.stream
            .send(Message::Text(message.to_string().into()))
            .await
            .expect("sending");
    }

    /// Sends `message` `times` times in one write.
    pub async fn burst(&mut self, message: Value, times: usize) {
        for _ in 0..times {
            let text = Message::Text(message.to_string().into());
            self.stream.feed(text).await.expect("queueing");
        }
        self.stream.flush().await.expect("sending");
    }

    /// Starts subscription `id`.
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        let payload = json!({ "query": query, "variables": variables });
        self.send(json!({ "type": "subscribe", "id": id, "payload": payload }))
            .await;
    }

    /// Starts subscription `id` and gives the server a moment to start it (graphql-ws has
    /// no acknowledgement of a subscription).
    pub async fn listen(&mut self, id: &str, query: &str) {
        self.subscribe(id, query, json!({})).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    /// The next message; fails on a close or after [`PATIENCE`].
    pub async fn next(&mut self) -> Value {
        match self.message(PATIENCE).await {
            Ok(Some(message)) => message,
            Ok(None) => panic!("no message within {PATIENCE:?}"),
            Err(close) => panic!("closed instead: {close:?}"),
        }
    }

    /// The next message within `wait` (`None` if there was none), or the close.
    pub async fn message(&mut self, wait: Duration) -> Result<Option<Value>, (u16, String)> {
        let until = tokio::time::Instant::now() + wait;
        loop {
            let frame = match tokio::time::timeout_at(until, self.stream.next()).await {
                Err(_) => return Ok(None),
                Ok(frame) => frame,
            };
            match frame {
                Some(Ok(Message::Text(text))) => {
                    return Ok(Some(serde_json::from_str(&text).expect("JSON message")));
                }
                Some(Ok(Message::Close(frame))) => {
                    return Err(frame.map_or((1005, String::new()), |f| {
                        (f.code.into(), f.reason.to_string())
                    }));
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err((1006, error.to_string())),
                None => return Err((1006, "ended".into())),
            }
        }
    }

    /// The messages up to the close, and its code and reason; fails after [`PATIENCE`].
    pub async fn until_closed(&mut self) -> (Vec<Value>, u16, String) {
        let mut messages = Vec::new();
        let started = Instant::now();
        loop {
            assert!(started.elapsed() < PATIENCE, "not closed: {messages:?}");
            match self.message(PATIENCE).await {
                Ok(Some(message)) => messages.push(message),
                Ok(None) => {}
                Err((code, reason)) => return (messages, code, reason),
            }
        }
    }

    /// Whether nothing arrives within `wait`.
    pub async fn quiet_for(&mut self, wait: Duration) -> bool {
        matches!(self.message(wait).await, Ok(None))
    }
}

/// The `data` of a `next` message for subscription `id`.
pub fn data<'a>(message: &'a Value, id: &str) -> &'a Value {
    assert_eq!(message["type"], "next", "{message}");
    assert_eq!(message["id"], id, "{message}");
    &message["payload"]["data"]
}

fn options() -> ServeOptions {
    ServeOptions {
        header_timeout: Duration::from_secs(5),
        max_connections: 64,
        shutdown_grace: Duration::from_secs(5),
    }
}

async fn served(backend: Backend, extra: &[&str]) -> Option<(TestApp, SocketAddr)> {
    let app = TestApp::spawn_with(backend, extra).await?;
    let (address, stop, _) = app.listen(options()).await;
    // Served for the rest of the test.
    std::mem::forget(stop);
    Some((app, address))
}

async fn succeeds(app: &TestApp, query: &str, variables: Value, token: &str) -> Value {
    let answer = app.gql(query, variables, Some(token)).await;
    assert!(answer.get("errors").is_none(), "{answer}");
    answer
}

/// The caller's current session id.
async fn session_of(app: &TestApp, token: &str) -> String {
    let answer = succeeds(app, "{ mySessions { id current } }", json!({}), token).await;
    let sessions = answer["data"]["mySessions"].as_array().unwrap();
    let current = sessions.iter().find(|s| s["current"] == true).unwrap();
    current["id"].as_str().unwrap().to_owned()
}

async fn sessions_hear_their_revocation_and_close(backend: Backend) {
    let Some((app, address)) = served(backend, &[]).await else {
        return;
    };
    app.register("tabs@example.com").await;
    let (tab_a, _) = app.login_pair("tabs@example.com", "tab A").await;
    let (tab_b, _) = app.login_pair("tabs@example.com", "tab B").await;
    let (phone, _) = app.login_pair("tabs@example.com", "phone").await;
    let (a, phone_session) = (
        session_of(&app, &tab_a).await,
        session_of(&app, &phone).await,
    );

    let mut listening = Socket::connect(address, &tab_a).await;
    listening
        .subscribe(
            "s",
            "subscription { sessionRevoked { id current } }",
            json!({}),
        )
        .await;
    // A socket of the same session that subscribes to nothing is closed too.
    let mut idle = Socket::connect(address, &tab_a).await;

    // Another session revoked: told, and the socket stays.
    let revoke = "mutation($id: ID!) { revokeSession(id: $id) }";
    succeeds(&app, revoke, json!({ "id": phone_session }), &tab_b).await;
    let message = listening.next().await;
    assert_eq!(
        data(&message, "s")["sessionRevoked"],
        json!({ "id": phone_session, "current": false })
    );
    assert!(idle.quiet_for(Duration::from_millis(600)).await);

    // Logged out everywhere from tab B: tab A is told at once, then its sockets close.
    let started = Instant::now();
    succeeds(&app, "mutation { logoutAll }", json!({}), &tab_b).await;
    let (messages, code, reason) = listening.until_closed().await;
    let revoked: Vec<&Value> = messages
        .iter()
        .filter(|m| m["type"] == "next")
        .map(|m| &data(m, "s")["sessionRevoked"])
        .collect();
    assert!(
        revoked.contains(&&json!({ "id": a, "current": true })),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m["type"] == "complete"),
        "{messages:?}"
    );
    assert_eq!(code, 4403, "{reason}");
    let (_, code, _) = idle.until_closed().await;
    assert_eq!(code, 4403);
    // "At once": well under the fleet's bound of five seconds, even on a busy machine.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // The token is refused from then on, at connection_init too.
    let mut again = Socket::open(address, "/graphql/ws", "graphql-transport-ws").await;
    again.init(Some(&tab_a)).await;
    assert_eq!(again.until_closed().await.1, 4403);
}

async fn deactivated_and_erased_accounts_are_told_and_closed(backend: Backend) {
    let Some((app, address)) = served(backend, &[]).await else {
        return;
    };
    let admin = app.admin().await;
    let told = json!({ "type": "next", "id": "s", "payload": { "data": { "sessionRevoked": { "current": true } } } });

    // Deactivated by an administrator.
    let (token, id) = app.user("leaving@example.com").await;
    let mut socket = Socket::connect(address, &token).await;
    socket
        .listen("s", "subscription { sessionRevoked { current } }")
        .await;
    let deactivate =
        "mutation($id: ID!) { updateUser(id: $id, input: { isActive: false }) { id } }";
    succeeds(&app, deactivate, json!({ "id": id }), &admin).await;
    let (messages, code, reason) = socket.until_closed().await;
    assert!(messages.contains(&told), "{messages:?}");
    assert_eq!(code, 4403, "{reason}");

    // Erased by its owner from another tab: its sessions are gone with it, and this tab
    // is still told.
    app.register("erased@example.com").await;
    let (tab, _) = app.login_pair("erased@example.com", "tab").await;
    let (other, _) = app.login_pair("erased@example.com", "other tab").await;
    let mut socket = Socket::connect(address, &tab).await;
    socket
        .listen("s", "subscription { sessionRevoked { current } }")
        .await;
    let erase = "mutation($password: String!) { deleteMyAccount(password: $password) }";
    succeeds(&app, erase, json!({ "password": PASSWORD }), &other).await;
    let (messages, code, reason) = socket.until_closed().await;
    assert!(messages.contains(&told), "{messages:?}");
    assert_eq!(code, 4403, "{reason}");
}

async fn holders_of_audit_read_watch_the_trail(backend: Backend) {
    let Some((app, address)) = served(backend, &[]).await else {
        return;
    };
    let admin = app.admin().await;
    let (_, auditor_id) = app.user("auditor@example.com").await;
    let grant = "mutation($id: ID!) {
        createRole(input: { name: \"auditor\", permissions: [\"audit:read\"] }) { name }
        assignRole(userId: $id, role: \"auditor\") { id }
    }";
    succeeds(&app, grant, json!({ "id": auditor_id }), &admin).await;
    let auditor = app.login("auditor@example.com", PASSWORD).await;
    let (member, member_id) = app.user("member@example.com").await;

    // Without audit:read: refused at once.
    let watch = "subscription($filter: AuditFilter) {
        auditEvents(filter: $filter) { action actor { id } targetType }
    }";
    let mut plain = Socket::connect(address, &member).await;
    plain.subscribe("a", watch, json!({})).await;
    let refused = plain.next().await;
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{refused}"
    );

    let mut socket = Socket::connect(address, &auditor).await;
    let filter = json!({ "filter": { "action": "user.login" } });
    socket.subscribe("a", watch, filter).await;
    // graphql-ws has no acknowledgement of a subscription: give it a moment to start.
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.register("quiet@example.com").await;
    app.login("member@example.com", PASSWORD).await;
    let message = socket.next().await;
    assert_eq!(
        data(&message, "a")["auditEvents"],
        json!({ "action": "user.login", "actor": { "id": member_id }, "targetType": "user" })
    );

    // audit:read taken away: the subscription ends with FORBIDDEN.
    let revoke = "mutation($id: ID!) { revokeRole(userId: $id, role: \"auditor\") { id } }";
    succeeds(&app, revoke, json!({ "id": auditor_id }), &admin).await;
    let ended = socket.next().await;
    assert_eq!(
        ended["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{ended}"
    );
    assert_eq!(
        socket.next().await,
        json!({ "type": "complete", "id": "a" })
    );
    app.login("member@example.com", PASSWORD).await;
    assert!(socket.quiet_for(Duration::from_millis(500)).await);
}

async fn user_updated_follows_the_account(backend: Backend) {
    let Some((app, address)) = served(backend, &[]).await else {
        return;
    };
    let admin = app.admin().await;
    let (token, id) = app.user("self@example.com").await;
    let (other, _) = app.user("other@example.com").await;
    let mut socket = Socket::connect(address, &token).await;
    let watch =
        "subscription { userUpdated { id profile { displayName } roles { name } permissions } }";
    socket.listen("u", watch).await;
    assert_eq!(gauge(&app, "usergraph_subscriptions").await, 1.0);

    let rename =
        "mutation($name: String!) { updateMyProfile(input: { displayName: $name }) { id } }";
    succeeds(&app, rename, json!({ "name": "Someone else" }), &other).await;
    succeeds(&app, rename, json!({ "name": "New name" }), &token).await;
    let message = socket.next().await;
    let user = &data(&message, "u")["userUpdated"];
    assert_eq!(user["id"], id);
    assert_eq!(user["profile"]["displayName"], "New name");

    let assign = "mutation($id: ID!) { assignRole(userId: $id, role: \"admin\") { id } }";
    succeeds(&app, assign, json!({ "id": id }), &admin).await;
    let message = socket.next().await;
    let user = &data(&message, "u")["userUpdated"];
    let roles: Vec<&str> = user["roles"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(roles.contains(&"admin"), "{user}");
    assert!(
        user["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("audit:read")),
        "{user}"
    );
    assert!(socket.quiet_for(Duration::from_millis(500)).await);
}

/// The value of an unlabelled gauge in `app`'s `/metrics`.
async fn gauge(app: &TestApp, name: &str) -> f64 {
    let request = axum::http::Request::get("/metrics")
        .body(axum::body::Body::empty())
        .unwrap();
    let (_, _, body) = app.send(request).await;
    let text = String::from_utf8(body).unwrap();
    let line = text.lines().find(|l| l.starts_with(&format!("{name} ")));
    let value = line.and_then(|l| l.rsplit(' ').next());
    value
        .unwrap_or_else(|| panic!("no {name}"))
        .parse()
        .unwrap()
}

async fn a_personal_token_listens_until_revoked(backend: Backend) {
    let Some((app, address)) = served(backend, &[]).await else {
        return;
    };
    let admin = app.admin().await;
    let create = "mutation { createPersonalAccessToken(input: { name: \"siem\", scopes: [\"audit:read\"] }) {
        token personalAccessToken { id } } }";
    let created = succeeds(&app, create, json!({}), &admin).await;
    let created = &created["data"]["createPersonalAccessToken"];
    let pat = created["token"].as_str().unwrap().to_owned();
    let mut socket = Socket::connect(address, &pat).await;
    socket
        .listen(
            "a",
            "subscription { auditEvents(filter: { action: \"user.register\" }) { action } }",
        )
        .await;
    app.register("newcomer@example.com").await;
    let message = socket.next().await;
    assert_eq!(
        data(&message, "a")["auditEvents"]["action"],
        "user.register"
    );

    // Revoked: the socket closes (personal tokens are looked up every five seconds).
    let revoke = "mutation($id: ID!) { revokePersonalAccessToken(id: $id) }";
    let id = created["personalAccessToken"]["id"].clone();
    succeeds(&app, revoke, json!({ "id": id }), &admin).await;
    let (_, code, reason) = socket.until_closed().await;
    assert_eq!(code, 4403, "{reason}");
}

/// A socket acting for a fresh account of an app allowing one socket per account and three
/// messages a second.
async fn strict(backend: Backend) -> Option<(TestApp, SocketAddr, String)> {
    let extra = ["--ws-max-per-account", "1", "--ws-messages-per-second", "3"];
    let (app, address) = served(backend, &extra).await?;
    let (token, _) = app.user("strict@example.com").await;
    Some((app, address, token))
}

async fn connection_init_decides_who_listens(backend: Backend) {
    let Some((_app, address, token)) = strict(backend).await else {
        return;
    };
    let open = || Socket::open(address, "/graphql/ws", "graphql-transport-ws");
    // Says nothing: closed after ten seconds (looked at last).
    let mut mute = open().await;

    // No token, a bad token: 4403.
    let mut socket = open().await;
    socket.init(None).await;
    assert_eq!(socket.until_closed().await.1, 4403);
    let mut socket = open().await;
    socket.init(Some("not-a-token")).await;
    assert_eq!(socket.until_closed().await.1, 4403);

    // Subscribing before connection_init: 4401.
    let mut socket = open().await;
    socket
        .subscribe("x", "subscription { userUpdated { id } }", json!({}))
        .await;
    assert_eq!(socket.until_closed().await.1, 4401);

    let mut socket = Socket::connect(address, &token).await;
    socket.send(json!({ "type": "ping" })).await;
    assert_eq!(socket.next().await, json!({ "type": "pong" }));
    // One socket per account here.
    let mut second = open().await;
    second.init(Some(&token)).await;
    assert_eq!(second.until_closed().await.1, 4429);

    let (_, code, reason) = mute.until_closed().await;
    assert_eq!(code, 4408, "{reason}");
}

async fn documents_and_floods_are_refused(backend: Backend) {
    let Some((app, address, token)) = strict(backend).await else {
        return;
    };
    // Over HTTP, a subscription is told where it is served.
    let answer = app
        .gql(
            "subscription { userUpdated { id } }",
            json!({}),
            Some(&token),
        )
        .await;
    assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{answer}");
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("/graphql/ws"),
        "{answer}"
    );
    let mut socket = Socket::connect(address, &token).await;
    // Queries and mutations go over HTTP; documents pass the same admission as there.
    socket.subscribe("q", "{ me { id } }", json!({})).await;
    let refused = socket.next().await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"],
        "BAD_USER_INPUT"
    );
    // A second apart, as the three-a-second limit wants.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let aliases: String = (0..150).map(|i| format!("a{i}: id ")).collect();
    let wide = format!("subscription {{ userUpdated {{ {aliases} }} }}");
    socket.subscribe("d", &wide, json!({})).await;
    let refused = socket.next().await;
    assert_eq!(
        refused["payload"][0]["extensions"]["code"], "QUERY_TOO_COMPLEX",
        "{refused}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;

    // The same id twice: 4409.
    socket
        .subscribe("s", "subscription { userUpdated { id } }", json!({}))
        .await;
    socket
        .subscribe("s", "subscription { userUpdated { id } }", json!({}))
        .await;
    assert_eq!(socket.until_closed().await.1, 4409);

    // A client flooding the socket: 4429. (A second on: the account's one socket is free.)
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut socket = Socket::connect(address, &token).await;
    // In one write: the server may close before a later write would land.
    socket.burst(json!({ "type": "ping" }), 20).await;
    let (_, code, _) = socket.until_closed().await;
    assert_eq!(code, 4429);

    // A message over the limit: 1009, with the limit.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut socket = Socket::connect(address, &token).await;
    let padding = "x".repeat(300 * 1024);
    socket
        .subscribe(
            "big",
            "subscription { userUpdated { id } }",
            json!({ "pad": padding }),
        )
        .await;
    let (_, code, reason) = socket.until_closed().await;
    assert_eq!(
        (code, reason.as_str()),
        (1009, "Message too big: at most 262144 bytes")
    );

    // The older protocol, and upgrades on /graphql itself.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut legacy = Socket::open(address, "/graphql", "graphql-ws").await;
    legacy.init(Some(&token)).await;
    assert_eq!(legacy.next().await["type"], "connection_ack");
    legacy
        .send(json!({ "type": "start", "id": "1", "payload": { "query": "subscription { userUpdated { id } }" } }))
        .await;
    let rename = "mutation { updateMyProfile(input: { displayName: \"Legacy\" }) { id } }";
    tokio::time::sleep(Duration::from_millis(500)).await;
    succeeds(&app, rename, json!({}), &token).await;
    let message = legacy.next().await;
    assert_eq!(message["type"], "data", "{message}");
}

async fn an_expired_token_closes_the_socket(backend: Backend) {
    let Some((app, address)) = served(backend, &[]).await else {
        return;
    };
    let (token, _) = app.user("brief@example.com").await;
    // The same token, but past its expiry by less than the verifier's leeway (5 s): good
    // for about two more seconds.
    let mut claims = claims_of(&token);
    claims["exp"] = json!(chrono::Utc::now().timestamp() - 3);
    let brief = sign(&app, &claims, "at+jwt", &kid_of(&token));
    let mut socket = Socket::connect(address, &brief).await;
    socket
        .subscribe("u", "subscription { userUpdated { id } }", json!({}))
        .await;
    let (_, code, reason) = socket.until_closed().await;
    assert_eq!(code, 4403, "{reason}");
    assert!(reason.contains("expired"), "{reason}");
}

async fn rolled_back_changes_announce_nothing(backend: Backend) {
    let Some((app, address)) = served(backend, &[]).await else {
        return;
    };
    let admin = app.admin().await;
    let mut socket = Socket::connect(address, &admin).await;
    socket
        .listen("a", "subscription { auditEvents { action } }")
        .await;
    let row = |action| usergraph::db::audit::NewAuditEvent {
        id: usergraph::ids::AuditEventId::new(),
        at: usergraph::db::clock::now(),
        actor_id: None,
        action,
        target_type: None,
        target_id: None,
        ip: None,
        user_agent: None,
        details: None,
    };
    // Written as every change writes its audit rows: in the change's transaction.
    let mut db = app.sql().await.get().await.unwrap();
    let rolled_back: Result<(), diesel::result::Error> = usergraph::transaction!(&mut db, |conn| {
        usergraph::db::audit::insert_many(conn, &[row("test.rolled_back")]).await?;
        Err(diesel::result::Error::RollbackTransaction)
    });
    assert!(rolled_back.is_err());
    let committed: Result<(), diesel::result::Error> = usergraph::transaction!(&mut db, |conn| {
        usergraph::db::audit::insert_many(conn, &[row("test.committed")]).await
    });
    committed.unwrap();
    let message = socket.next().await;
    assert_eq!(
        data(&message, "a")["auditEvents"]["action"],
        "test.committed"
    );
    assert!(socket.quiet_for(Duration::from_millis(500)).await);

    // Too long for one PostgreSQL notification (8000 bytes): it still arrives whole.
    let long = "x".repeat(9_000);
    let committed: Result<(), diesel::result::Error> = usergraph::transaction!(&mut db, |conn| {
        let big = usergraph::db::audit::NewAuditEvent {
            user_agent: Some(&long),
            ..row("test.long")
        };
        usergraph::db::audit::insert_many(conn, &[big]).await
    });
    committed.unwrap();
    let message = socket.next().await;
    assert_eq!(data(&message, "a")["auditEvents"]["action"], "test.long");
}

both_backends!(two_processes_share_live_events);

/// What "within a second" may stretch to on a machine busy with the rest of the suite.
const SECOND_ON_A_BUSY_MACHINE: Duration = Duration::from_secs(2);

async fn login_on(server: &Server, email: &str) -> String {
    let login = "mutation($email: String!, $password: String!) {
        login(input: { email: $email, password: $password }) { accessToken }
    }";
    let answer = server
        .gql(login, json!({ "email": email, "password": PASSWORD }), None)
        .await;
    let token = answer["data"]["login"]["accessToken"].as_str();
    token
        .unwrap_or_else(|| panic!("login failed: {answer}"))
        .to_owned()
}

/// Two real server processes on one database: an admin watching the audit trail on B sees
/// a login on A within a second; a tab on B is told when the account logs out everywhere
/// on A, and its socket closes; B closes its sockets with 1001 when it shuts down.
async fn two_processes_share_live_events(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = TestDb::create(backend, dir.path()).await else {
        return;
    };
    let a = Server::start(dir.path(), &db.url, &[]).await;
    // B loads the signing key A made; it keeps serving for a moment after SIGTERM.
    let mut b = Server::start(dir.path(), &db.url, &[("USERGRAPH_SHUTDOWN_DELAY", "2s")]).await;
    let keys = dir.path().join("keys");
    crate::fleet::create_admin(dir.path(), &db.url, &keys);
    let register = "mutation($email: String!, $password: String!) {
        register(input: { email: $email, password: $password }) { user { id } }
    }";
    let member = json!({ "email": "member@example.com", "password": PASSWORD });
    let answer = a.gql(register, member, None).await;
    let member_id = answer["data"]["register"]["user"]["id"].clone();
    let admin = login_on(&a, "ops@example.com").await;
    let on_b = login_on(&b, "member@example.com").await;

    let mut watch = Socket::connect(b.address, &admin).await;
    let audit =
        "subscription { auditEvents(filter: { action: \"user.login\" }) { action actor { id } } }";
    watch.subscribe("w", audit, json!({})).await;
    let mut tab = Socket::connect(b.address, &on_b).await;
    tab.listen("t", "subscription { sessionRevoked { current } }")
        .await;

    let started = Instant::now();
    let on_a = login_on(&a, "member@example.com").await;
    let message = watch.next().await;
    let seen = started.elapsed();
    assert_eq!(
        data(&message, "w")["auditEvents"],
        json!({ "action": "user.login", "actor": { "id": member_id } })
    );
    assert!(
        seen < SECOND_ON_A_BUSY_MACHINE,
        "the login reached B after {seen:?}"
    );

    let logout = a
        .gql("mutation { logoutAll }", json!({}), Some(&on_a))
        .await;
    assert_eq!(logout["data"]["logoutAll"], true, "{logout}");
    let (messages, code, reason) = tab.until_closed().await;
    assert!(
        messages.contains(&json!({ "type": "next", "id": "t", "payload": { "data": { "sessionRevoked": { "current": true } } } })),
        "{messages:?}"
    );
    assert_eq!(code, 4403, "{reason}");

    b.terminate();
    let (_, code, _) = watch.until_closed().await;
    assert_eq!(code, 1001);
    assert!(b.exited(Duration::from_secs(20)).await.success());
}

/// On PostgreSQL a change announces itself only while some instance listens: NOTIFY
/// serialises the commits of the transactions that use it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_announces_only_while_someone_listens() {
    let Some((app, address)) = served(Backend::Postgres, &[]).await else {
        return;
    };
    let (_client, mut heard) = raw_listener(&app.db.url).await;
    app.register("first@example.com").await;
    let nothing = tokio::time::timeout(Duration::from_millis(500), heard.recv()).await;
    assert!(
        nothing.is_err(),
        "announced with nobody listening: {nothing:?}"
    );

    let admin = app.admin().await;
    let mut socket = Socket::connect(address, &admin).await;
    socket
        .listen("a", "subscription { auditEvents { action } }")
        .await;
    app.register("second@example.com").await;
    let payload = tokio::time::timeout(PATIENCE, heard.recv()).await;
    let payload = payload.expect("an announcement").expect("the listener");
    assert!(payload.contains("user.register"), "{payload}");
    assert_eq!(
        data(&socket.next().await, "a")["auditEvents"]["action"],
        "user.register"
    );
}

/// A connection of the test's own listening on the channel (keep the client), and its
/// notifications' payloads.
async fn raw_listener(
    url: &str,
) -> (
    tokio_postgres::Client,
    tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    let (client, mut connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(message)) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            if let tokio_postgres::AsyncMessage::Notification(note) = message {
                // The test may be done listening: then nobody reads this.
                let _ = sender.send(note.payload().to_owned());
            }
        }
    });
    client
        .batch_execute("LISTEN usergraph_events")
        .await
        .unwrap();
    (client, receiver)
}
