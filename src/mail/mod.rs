//! Outbound mail. Messages are written as `.eml` files to an outbox directory (by default
//! `outbox/` in the data directory), where a developer can read them or a relay can pick
//! them up.

use std::path::PathBuf;

use anyhow::Context as _;
use lettre::message::{Mailbox, header::ContentType};
use lettre::{FileTransport, Message, Transport as _};

/// Sends mail.
#[derive(Clone, Debug)]
pub struct Mailer {
    outbox: PathBuf,
    from: Mailbox,
}

impl Mailer {
    /// A mailer writing to `outbox`, sending as `from`.
    pub fn new(outbox: PathBuf, from: &str) -> anyhow::Result<Self> {
        let from = from
            .parse()
            .map_err(|e| anyhow::anyhow!("USERGRAPH_MAIL_FROM: `{from}` is not a mailbox ({e})"))?;
        std::fs::create_dir_all(&outbox)
            .with_context(|| format!("creating the mail outbox {}", outbox.display()))?;
        Ok(Self { outbox, from })
    }

    /// Sends a plain-text message.
    pub async fn send(&self, to: &str, subject: &str, body: String) -> anyhow::Result<()> {
        let message = Message::builder()
            .from(self.from.clone())
            .to(to.parse().context("recipient address")?)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .context("building the message")?;
        let outbox = self.outbox.clone();
        tokio::task::spawn_blocking(move || FileTransport::new(outbox).send(&message))
            .await
            .context("mail task")?
            .context("writing the message")?;
        Ok(())
    }
}
