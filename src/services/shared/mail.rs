//! Mail through the outbox: services queue a [`Letter`] in the transaction of the change
//! that causes it ([`enqueue`]); a background task on every instance sends what is due, one
//! message at a time, claiming each with one statement so no two instances send it. A
//! refused message is retried after `USERGRAPH_MAIL_RETRY_DELAY`, then twice as long each
//! time (at most an hour), and given up after [`MAX_ATTEMPTS`]. A sender that dies mid-way
//! leaves its claim to expire ([`LEASE`]): mail is sent at least once, never lost.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use chrono::{NaiveDateTime, TimeDelta};
use tokio::sync::Notify;

use super::Services;
use crate::db::clock::now;
use crate::db::mail_outbox::{self, OutboxMail};
use crate::db::{Conn, DbPool};
use crate::error::{AppError, AppResult};
use crate::ids::MailId;
use crate::mail::{Letter, Mailer};

/// Attempts before a message is given up on (about seven hours of retries by default).
pub const MAX_ATTEMPTS: i32 = 12;

/// How long a claimed message is left to its sender before another may try it.
const LEASE: TimeDelta = TimeDelta::minutes(5);

/// The longest wait between two attempts.
const MAX_DELAY: Duration = Duration::from_secs(3_600);

/// How often the outbox is looked at when nothing wakes the sender.
const POLL: Duration = Duration::from_secs(1);

/// How long the records of sent messages are kept (their bodies are erased at once).
const KEEP_RECORDS: TimeDelta = TimeDelta::days(7);

/// Most messages taken from the outbox per look.
const BATCH: i64 = 20;

/// Queues `letter` to `to`, in the caller's transaction.
pub async fn enqueue(conn: &mut Conn<'_>, to: &str, letter: &Letter) -> AppResult<()> {
    let at = now();
    let mail = OutboxMail {
        id: MailId::new(),
        recipient: to.to_owned(),
        subject: letter.subject.clone(),
        text_body: letter.text(),
        html_body: letter.html(),
        created_at: at,
        attempts: 0,
        next_attempt_at: at,
    };
    mail_outbox::insert(conn, &mail).await?;
    Ok(())
}

/// Wakes this instance's sender (after a commit that queued mail).
#[derive(Default)]
pub struct MailQueue {
    wake: Notify,
}

impl Services {
    /// Lets this instance's sender know mail was queued (call after the commit).
    pub(crate) fn mail_queued(&self) {
        self.mail_queue.wake.notify_one();
    }

    /// Messages waiting to be sent.
    pub async fn mail_pending(&self) -> AppResult<i64> {
        let mut db = self.db.get().await?;
        Ok(mail_outbox::pending_count(&mut db.conn()).await?)
    }
}

/// Starts the sender; it stops when `queue` is dropped.
pub(super) fn spawn_sender(
    queue: &Arc<MailQueue>,
    db: DbPool,
    mailer: Mailer,
    first_retry: Duration,
) {
    let weak: Weak<MailQueue> = Arc::downgrade(queue);
    tokio::spawn(async move {
        let mut pruned = Instant::now();
        loop {
            if let Err(error) = send_due(&db, &mailer, first_retry).await {
                tracing::warn!(error = %error, "sending queued mail failed; retrying soon");
            }
            if pruned.elapsed() > Duration::from_secs(3_600) {
                pruned = Instant::now();
                if let Err(error) = prune(&db).await {
                    tracing::warn!(error = %error, "pruning the mail outbox failed");
                }
            }
            let Some(queue) = weak.upgrade() else {
                break;
            };
            // A wake while mail was being sent is kept as a permit: nothing is missed.
            let _ = tokio::time::timeout(POLL, queue.wake.notified()).await;
        }
    });
}

async fn send_due(db: &DbPool, mailer: &Mailer, first_retry: Duration) -> AppResult<()> {
    let due = {
        let mut pooled = db.get().await?;
        mail_outbox::due(&mut pooled.conn(), now(), BATCH).await?
    };
    for mail in due {
        let at = now();
        let claimed = {
            let mut pooled = db.get().await?;
            mail_outbox::claim(&mut pooled.conn(), mail.id, at, at + LEASE).await?
        };
        if !claimed {
            continue;
        }
        // No connection is held while the mail server answers.
        let result = mailer
            .deliver(
                &mail.recipient,
                &mail.subject,
                mail.text_body.clone(),
                mail.html_body.clone(),
            )
            .await;
        let mut pooled = db.get().await?;
        let mut conn = pooled.conn();
        let attempts = mail.attempts + 1;
        match result {
            Ok(()) => {
                mail_outbox::mark_sent(&mut conn, mail.id, now()).await?;
                tracing::info!(mail.id = %mail.id, attempts, "mail sent");
            }
            Err(error) => {
                let error = format!("{error:#}");
                let retry_at =
                    (attempts < MAX_ATTEMPTS).then(|| now() + backoff(first_retry, attempts));
                mail_outbox::mark_failed(&mut conn, mail.id, &error, retry_at, now()).await?;
                match retry_at {
                    Some(_) => {
                        tracing::warn!(mail.id = %mail.id, attempts, error = %error, "mail refused; will retry")
                    }
                    None => {
                        tracing::error!(mail.id = %mail.id, attempts, error = %error, "mail given up after every retry")
                    }
                }
            }
        }
    }
    Ok(())
}

/// The wait after the `attempts`-th failure: the first retry delay, doubled each time.
fn backoff(first: Duration, attempts: i32) -> TimeDelta {
    let doublings = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(20);
    let delay = first.saturating_mul(1 << doublings).min(MAX_DELAY);
    TimeDelta::from_std(delay).unwrap_or(TimeDelta::hours(1))
}

async fn prune(db: &DbPool) -> AppResult<()> {
    let mut pooled = db.get().await?;
    let before: NaiveDateTime = now() - KEEP_RECORDS;
    mail_outbox::prune(&mut pooled.conn(), before)
        .await
        .map(drop)
        .map_err(AppError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_twice_as_long_each_time_up_to_an_hour() {
        let first = Duration::from_secs(5);
        assert_eq!(backoff(first, 1), TimeDelta::seconds(5));
        assert_eq!(backoff(first, 2), TimeDelta::seconds(10));
        assert_eq!(backoff(first, 4), TimeDelta::seconds(40));
        assert_eq!(backoff(first, 11), TimeDelta::hours(1));
    }
}
