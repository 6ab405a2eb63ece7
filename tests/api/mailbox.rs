//! Reading the mail a test's server sent: the `.eml` outbox, or a real SMTP server started
//! by the test (a small sink speaking enough SMTP for lettre) that can refuse for a while.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpListener;

use crate::helpers::TestApp;

/// One received message, decoded.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The `To` address.
    pub to: String,
    /// The subject.
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
}

impl Mail {
    /// The first token with `prefix` in the text part.
    pub fn token(&self, prefix: &str) -> String {
        let at = self
            .text
            .find(prefix)
            .unwrap_or_else(|| panic!("no {prefix} token in {}", self.text));
        self.text[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect()
    }
}

/// Decodes a raw RFC 5322 message.
pub fn parse(raw: &[u8]) -> Mail {
    let message = mail_parser::MessageParser::default()
        .parse(raw)
        .expect("a mail message");
    let to = message
        .to()
        .and_then(|to| to.first())
        .and_then(|a| a.address())
        .unwrap_or_default()
        .to_owned();
    Mail {
        to,
        subject: message.subject().unwrap_or_default().to_owned(),
        text: message.body_text(0).unwrap_or_default().into_owned(),
        html: message.body_html(0).unwrap_or_default().into_owned(),
    }
}

/// Every message in the app's outbox directory.
pub fn outbox(app: &TestApp) -> Vec<Mail> {
    let dir = app.data_dir().join("outbox");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .map(|e| parse(&std::fs::read(e.path()).expect("a mail file")))
        .collect()
}

/// Waits (at most 10 s) until `count` messages to `to` whose subject holds `subject` are in
/// what `read` returns; returns them.
pub async fn wait_for(
    read: impl Fn() -> Vec<Mail>,
    to: &str,
    subject: &str,
    count: usize,
) -> Vec<Mail> {
    let started = Instant::now();
    loop {
        let found: Vec<Mail> = read()
            .into_iter()
            .filter(|m| m.to == to && m.subject.contains(subject))
            .collect();
        if found.len() >= count {
            return found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{count} mail(s) `{subject}` to {to} did not arrive; got {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An SMTP server on a loopback port that keeps what it is given.
#[derive(Clone)]
pub struct SmtpSink {
    /// Where it listens.
    pub address: SocketAddr,
    received: Arc<Mutex<Vec<Vec<u8>>>>,
    /// Transactions still to refuse with a temporary error (451).
    refusals: Arc<AtomicUsize>,
    /// Transactions refused so far.
    pub refused: Arc<AtomicUsize>,
}

impl SmtpSink {
    /// Starts a sink that refuses its first `refuse` transactions.
    pub async fn start(refuse: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let sink = Self {
            address: listener.local_addr().expect("its address"),
            received: Arc::default(),
            refusals: Arc::new(AtomicUsize::new(refuse)),
            refused: Arc::default(),
        };
        let serving = sink.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let sink = serving.clone();
                tokio::spawn(async move { sink.session(socket).await });
            }
        });
        sink
    }

    /// The URL to give the server.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.address)
    }

    /// From now on, refuse `n` more transactions.
    pub fn refuse(&self, n: usize) {
        self.refusals.store(n, Ordering::SeqCst);
    }

    /// What it accepted.
    pub fn mails(&self) -> Vec<Mail> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|raw| parse(raw))
            .collect()
    }

    async fn session(&self, socket: tokio::net::TcpStream) {
        let (read, mut write) = socket.into_split();
        let mut lines = BufReader::new(read);
        let _ = write.write_all(b"220 sink ESMTP\r\n").await;
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let command = line.trim_end().to_ascii_uppercase();
            let reply: &[u8] = if command.starts_with("EHLO") || command.starts_with("HELO") {
                b"250 sink\r\n"
            } else if command.starts_with("MAIL FROM") {
                let refuse = self
                    .refusals
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if refuse {
                    self.refused.fetch_add(1, Ordering::SeqCst);
                    b"451 4.3.0 try again later\r\n"
                } else {
                    b"250 OK\r\n"
                }
            } else if command.starts_with("DATA") {
                let _ = write.write_all(b"354 go on\r\n").await;
                let mut message = Vec::new();
                loop {
                    let mut data = String::new();
                    if lines.read_line(&mut data).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if data == ".\r\n" {
                        break;
                    }
                    // Dot-stuffing: a leading dot was doubled by the client.
                    let data = data.strip_prefix('.').unwrap_or(&data);
                    message.extend_from_slice(data.as_bytes());
                }
                self.received.lock().unwrap().push(message);
                b"250 OK queued\r\n"
            } else if command.starts_with("QUIT") {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            } else {
                b"250 OK\r\n"
            };
            if write.write_all(reply).await.is_err() {
                return;
            }
        }
    }
}
