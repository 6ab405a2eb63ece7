//! Outbound mail: letters written once and rendered as plain text and HTML, and the
//! transport that delivers them — SMTP when `USERGRAPH_SMTP_URL` is set, else `.eml` files in
//! an outbox directory (by default `outbox/` in the data directory) where a developer can
//! read them. Services never send directly: they queue mail in the database in the
//! transaction of their change (`services::shared::mail`), and a background task delivers.

use std::path::PathBuf;

use anyhow::Context as _;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{
    AsyncFileTransport, AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor,
};

use crate::config::Config;

/// A message in words: paragraphs, links and codes, rendered to both parts alike.
#[derive(Debug, Clone, Default)]
pub struct Letter {
    /// The subject line.
    pub subject: String,
    blocks: Vec<Block>,
}

#[derive(Debug, Clone)]
enum Block {
    Paragraph(String),
    Link { label: String, url: String },
    Code(String),
}

impl Letter {
    /// An empty letter with `subject`.
    pub fn new(subject: impl Into<String>) -> Self {
        Self {
            subject: subject.into(),
            blocks: Vec::new(),
        }
    }

    /// Adds a paragraph of text.
    #[must_use]
    pub fn paragraph(mut self, text: impl Into<String>) -> Self {
        self.blocks.push(Block::Paragraph(text.into()));
        self
    }

    /// Adds a link, shown as a button in HTML and as the bare URL in text.
    #[must_use]
    pub fn link(mut self, label: impl Into<String>, url: impl Into<String>) -> Self {
        self.blocks.push(Block::Link {
            label: label.into(),
            url: url.into(),
        });
        self
    }

    /// Adds a code to copy, on a line of its own.
    #[must_use]
    pub fn code(mut self, code: impl Into<String>) -> Self {
        self.blocks.push(Block::Code(code.into()));
        self
    }

    /// The plain-text part.
    pub fn text(&self) -> String {
        let parts: Vec<String> = self
            .blocks
            .iter()
            .map(|block| match block {
                Block::Paragraph(text) => text.clone(),
                Block::Link { label, url } => format!("{label}:\n{url}"),
                Block::Code(code) => format!("    {code}"),
            })
            .collect();
        parts.join("\n\n") + "\n"
    }

    /// The HTML part; every text is escaped.
    pub fn html(&self) -> String {
        let body: String = self
            .blocks
            .iter()
            .map(|block| match block {
                Block::Paragraph(text) => format!("<p>{}</p>\n", escape(text)),
                Block::Link { label, url } => format!(
                    "<p><a href=\"{}\" style=\"display:inline-block;padding:10px 16px;\
                     background:#1f6feb;color:#fff;border-radius:6px;text-decoration:none\">{}</a></p>\n\
                     <p style=\"font-size:12px;color:#555\">{}</p>\n",
                    escape(url),
                    escape(label),
                    escape(url)
                ),
                Block::Code(code) => format!(
                    "<p><code style=\"font-size:16px;padding:4px 8px;background:#f3f3f3\">{}</code></p>\n",
                    escape(code)
                ),
            })
            .collect();
        format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\
             <body style=\"font-family:sans-serif;max-width:560px\">\n{body}</body></html>\n",
            escape(&self.subject)
        )
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Where mail goes.
#[derive(Clone)]
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(AsyncFileTransport<Tokio1Executor>),
}

/// Delivers messages.
#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    // The SMTP transport holds credentials: say only which kind this is.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.transport {
            Transport::Smtp(_) => "smtp",
            Transport::Outbox(_) => "outbox",
        };
        f.debug_struct("Mailer").field("transport", &kind).finish()
    }
}

impl Mailer {
    /// The mailer `config` describes: SMTP, or the `.eml` outbox.
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let from_text = &config.mail_from;
        let from = from_text.parse().map_err(|e| {
            anyhow::anyhow!("USERGRAPH_MAIL_FROM: `{from_text}` is not a mailbox ({e})")
        })?;
        let transport = match &config.smtp_url {
            Some(url) => {
                let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .context("USERGRAPH_SMTP_URL: not an smtp:// or smtps:// URL")?
                    .timeout(Some(std::time::Duration::from_secs(30)));
                if let Some(user) = &config.smtp_username {
                    let password = config.smtp_password.clone().unwrap_or_default();
                    builder = builder.credentials(Credentials::new(user.clone(), password));
                }
                Transport::Smtp(builder.build())
            }
            None => {
                let outbox: PathBuf = config.mail_outbox_path();
                std::fs::create_dir_all(&outbox)
                    .with_context(|| format!("creating the mail outbox {}", outbox.display()))?;
                Transport::Outbox(AsyncFileTransport::new(outbox))
            }
        };
        Ok(Self { transport, from })
    }

    /// Sends `subject` with its two parts to `to`.
    pub async fn deliver(
        &self,
        to: &str,
        subject: &str,
        text: String,
        html: String,
    ) -> anyhow::Result<()> {
        let message = Message::builder()
            .from(self.from.clone())
            .to(to.parse().context("recipient address")?)
            .subject(subject)
            .multipart(
                MultiPart::alternative()
                    .singlepart(SinglePart::plain(text))
                    .singlepart(SinglePart::html(html)),
            )
            .context("building the message")?;
        match &self.transport {
            Transport::Smtp(smtp) => smtp.send(message).await.map(drop).context("SMTP"),
            Transport::Outbox(outbox) => outbox
                .send(message)
                .await
                .map(drop)
                .context("writing the message to the outbox"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_escape_what_they_are_given() {
        let letter = Letter::new("Hi <you>")
            .paragraph("a & b")
            .link("Go", "https://app/x?a=1&b=\"2\"")
            .code("ugev_x");
        let html = letter.html();
        assert!(html.contains("a &amp; b"));
        assert!(html.contains("href=\"https://app/x?a=1&amp;b=&quot;2&quot;\""));
        assert!(html.contains("<title>Hi &lt;you&gt;</title>"));
        let text = letter.text();
        assert!(text.contains("Go:\nhttps://app/x?a=1&b=\"2\""));
        assert!(text.contains("    ugev_x"));
    }
}
