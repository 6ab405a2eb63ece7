//! PostgreSQL connections that give up on a server that stops answering.
//!
//! tokio-postgres waits for an answer as long as the socket stays open, and a server (or a
//! proxy, or a network) can keep a socket open and say nothing. Each pooled connection
//! therefore runs over a [`Deadline`] stream that counts the requests it forwards and the
//! answers it sees in the wire protocol's framing, and fails the socket when an answer is
//! owed and nothing has arrived for the timeout: tokio-postgres then fails every request
//! on it, and the pool drops it as broken. The server bounds its own side with
//! `statement_timeout` and `idle_in_transaction_session_timeout`.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use diesel::ConnectionError;
use diesel_async::{AsyncPgConnection, SimpleAsyncConnection as _};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};
use tokio_postgres::config::Host;

/// Opens a connection to `url` whose every wait for the server is bounded by `timeout`.
pub async fn establish(
    url: &str,
    timeout: Duration,
) -> diesel::ConnectionResult<AsyncPgConnection> {
    let (client, connection) = start_session(url, timeout).await?;
    tokio::spawn(async move {
        // Ends with the client, or with an error that every waiting request also gets.
        if let Err(error) = connection.await {
            tracing::debug!(%error, "database connection closed");
        }
    });
    let bad = |what: String| ConnectionError::BadConnection(what);
    let mut conn = AsyncPgConnection::try_from(client).await?;
    let millis = timeout.as_millis();
    conn.batch_execute(&format!(
        "SET statement_timeout = {millis}; SET idle_in_transaction_session_timeout = {}",
        millis.saturating_mul(2)
    ))
    .await
    .map_err(|e| bad(format!("setting timeouts: {e}")))?;
    Ok(conn)
}

/// A connection to `url` listening on `channel`, and the payloads of its notifications. The
/// stream ends when the connection fails; the client must be kept (dropping it closes the
/// connection) and used now and then (`SELECT 1`), so that a server gone silent is noticed
/// within `timeout`.
pub async fn listen(
    url: &str,
    timeout: Duration,
    channel: &str,
) -> Result<(tokio_postgres::Client, tokio::sync::mpsc::Receiver<String>), ConnectionError> {
    let (client, mut connection) = start_session(url, timeout).await?;
    let (sender, receiver) = tokio::sync::mpsc::channel(1024);
    tokio::spawn(async move {
        loop {
            let message = std::future::poll_fn(|cx| connection.poll_message(cx)).await;
            match message {
                Some(Ok(tokio_postgres::AsyncMessage::Notification(note))) => {
                    if sender.send(note.payload().to_owned()).await.is_err() {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => {
                    tracing::debug!(%error, "listening connection closed");
                    break;
                }
                None => break,
            }
        }
    });
    let bad = |what: String| ConnectionError::BadConnection(what);
    let listen = format!("LISTEN \"{}\"", channel.replace('"', "\"\""));
    tokio::time::timeout(timeout, client.batch_execute(&listen))
        .await
        .map_err(|_| bad(format!("no answer within {timeout:?}")))?
        .map_err(|e| bad(format!("LISTEN: {e}")))?;
    Ok((client, receiver))
}

/// A session with the server at `url` over a [`Deadline`] socket, started within `timeout`;
/// the connection must be driven for the client to be answered.
async fn start_session(
    url: &str,
    timeout: Duration,
) -> Result<
    (
        tokio_postgres::Client,
        tokio_postgres::Connection<Deadline, tokio_postgres::tls::NoTlsStream>,
    ),
    ConnectionError,
> {
    let bad = |what: String| ConnectionError::BadConnection(what);
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| ConnectionError::InvalidConnectionUrl(format!("{e}")))?;
    let connecting = async {
        let socket = open_socket(&config)
            .await
            .map_err(|e| bad(format!("connecting: {e}")))?;
        config
            .connect_raw(Deadline::new(socket, timeout), tokio_postgres::NoTls)
            .await
            .map_err(|e| bad(format!("starting the session: {e}")))
    };
    tokio::time::timeout(timeout, connecting)
        .await
        .map_err(|_| bad(format!("no answer within {timeout:?}")))?
}

/// A socket to the first of the configured hosts that accepts one.
async fn open_socket(config: &tokio_postgres::Config) -> io::Result<Socket> {
    let ports = config.get_ports();
    let mut last = io::Error::new(io::ErrorKind::InvalidInput, "the URL names no host");
    for (i, host) in config.get_hosts().iter().enumerate() {
        let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
        let opened = match host {
            Host::Tcp(name) => tokio::net::TcpStream::connect((name.as_str(), port))
                .await
                .map(|tcp| {
                    let _ = tcp.set_nodelay(true);
                    Socket::Tcp(tcp)
                }),
            #[cfg(unix)]
            Host::Unix(dir) => {
                tokio::net::UnixStream::connect(dir.join(format!(".s.PGSQL.{port}")))
                    .await
                    .map(Socket::Unix)
            }
        };
        match opened {
            Ok(socket) => return Ok(socket),
            Err(error) => last = error,
        }
    }
    Err(last)
}

/// A TCP or Unix socket.
enum Socket {
    Tcp(tokio::net::TcpStream),
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
}

macro_rules! on_socket {
    ($self:expr, |$s:ident| $body:expr) => {
        match $self.get_mut() {
            Socket::Tcp($s) => {
                let $s = Pin::new($s);
                $body
            }
            #[cfg(unix)]
            Socket::Unix($s) => {
                let $s = Pin::new($s);
                $body
            }
        }
    };
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        on_socket!(self, |s| s.poll_read(cx, buf))
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        on_socket!(self, |s| s.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        on_socket!(self, |s| s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        on_socket!(self, |s| s.poll_shutdown(cx))
    }
}

/// Where a stream of protocol messages stands between two bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// Reading the 1-byte type and 4-byte length of a message (`have` bytes so far).
    Header {
        have: usize,
        kind: u8,
        length: [u8; 4],
    },
    /// Skipping the rest of a message.
    Body { left: usize },
}

impl Framing {
    const START: Self = Self::Header {
        have: 0,
        kind: 0,
        length: [0; 4],
    };

    /// Feeds `bytes`; calls `on_message` with the type of each message whose header ends.
    fn feed(&mut self, mut bytes: &[u8], mut on_message: impl FnMut(u8)) {
        while !bytes.is_empty() {
            match self {
                Self::Header { have, kind, length } => {
                    if *have == 0 {
                        *kind = bytes[0];
                    } else {
                        length[*have - 1] = bytes[0];
                    }
                    *have += 1;
                    bytes = &bytes[1..];
                    if *have == 5 {
                        on_message(*kind);
                        // The length counts itself.
                        let left = usize::try_from(u32::from_be_bytes(*length))
                            .unwrap_or(usize::MAX)
                            .saturating_sub(4);
                        *self = if left == 0 {
                            Self::START
                        } else {
                            Self::Body { left }
                        };
                    }
                }
                Self::Body { left } => {
                    let skip = (*left).min(bytes.len());
                    *left -= skip;
                    bytes = &bytes[skip..];
                    if *left == 0 {
                        *self = Self::START;
                    }
                }
            }
        }
    }
}

/// A socket that fails once the server owes an answer and has sent nothing for `timeout`.
///
/// The frontend's `Sync` and `Query` messages (and the startup message) each call for one
/// `ReadyForQuery` from the backend; while any is outstanding, every byte read pushes the
/// deadline back, so a long result streaming in is never cut.
struct Deadline {
    inner: Socket,
    timeout: Duration,
    sleep: Pin<Box<Sleep>>,
    /// Answers owed by the server.
    owed: usize,
    /// Whether the untyped startup message is still to be written.
    starting: bool,
    /// Bytes of the startup message still to be written, once its length is known.
    startup: StartupLength,
    written: Framing,
    read: Framing,
}

/// How much of the startup message (a 4-byte length, then the rest) is known.
#[derive(Debug, Clone, Copy)]
enum StartupLength {
    Reading { have: usize, length: [u8; 4] },
    Left(usize),
}

impl Deadline {
    fn new(inner: Socket, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            sleep: Box::pin(tokio::time::sleep(timeout)),
            owed: 0,
            starting: true,
            startup: StartupLength::Reading {
                have: 0,
                length: [0; 4],
            },
            written: Framing::START,
            read: Framing::START,
        }
    }

    fn push_back(&mut self) {
        self.sleep.as_mut().reset(Instant::now() + self.timeout);
    }

    /// Accounts for bytes handed to the socket.
    fn wrote(&mut self, mut bytes: &[u8]) {
        let before = self.owed;
        while self.starting && !bytes.is_empty() {
            match &mut self.startup {
                StartupLength::Reading { have, length } => {
                    length[*have] = bytes[0];
                    *have += 1;
                    bytes = &bytes[1..];
                    if *have == 4 {
                        let total =
                            usize::try_from(u32::from_be_bytes(*length)).unwrap_or(usize::MAX);
                        self.startup = StartupLength::Left(total.saturating_sub(4));
                    }
                }
                StartupLength::Left(left) => {
                    let skip = (*left).min(bytes.len());
                    *left -= skip;
                    bytes = &bytes[skip..];
                    if *left == 0 {
                        self.starting = false;
                        self.owed += 1;
                    }
                }
            }
        }
        let mut owed = 0;
        self.written.feed(bytes, |kind| {
            if matches!(kind, b'S' | b'Q') {
                owed += 1;
            }
        });
        self.owed += owed;
        if before == 0 && self.owed > 0 {
            self.push_back();
        }
    }

    /// Accounts for bytes received.
    fn received(&mut self, bytes: &[u8]) {
        let mut answered = 0;
        self.read.feed(bytes, |kind| {
            if kind == b'Z' {
                answered += 1;
            }
        });
        self.owed = self.owed.saturating_sub(answered);
        self.push_back();
    }

    /// `Ready(error)` when an answer is owed and the deadline passed; registers the waker.
    fn expired(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        if self.owed > 0 && self.sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the database sent nothing for {:?}", self.timeout),
            ));
        }
        Poll::Pending
    }
}

impl AsyncRead for Deadline {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let filled = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let this = &mut *self;
                this.received(&buf.filled()[filled..]);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => match self.expired(cx) {
                Poll::Ready(error) => Poll::Ready(Err(error)),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for Deadline {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            self.wrote(&buf[..n]);
            // Arm the waker now: the connection task may not read again before the deadline.
            if let Poll::Ready(error) = self.expired(cx) {
                return Poll::Ready(Err(error));
            }
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![kind];
        out.extend_from_slice(&u32::try_from(body.len() + 4).unwrap().to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn framing_finds_message_types_across_any_split() {
        let mut stream = message(b'T', b"row description");
        stream.extend(message(b'D', &[0u8; 300]));
        stream.extend(message(b'C', b"SELECT 1\0"));
        stream.extend(message(b'Z', b"I"));
        for chunk in [1, 2, 3, 7, 64, stream.len()] {
            let mut framing = Framing::START;
            let mut kinds = Vec::new();
            for piece in stream.chunks(chunk) {
                framing.feed(piece, |k| kinds.push(k));
            }
            assert_eq!(kinds, b"TDCZ", "chunks of {chunk}");
            assert_eq!(framing, Framing::START);
        }
    }
}
