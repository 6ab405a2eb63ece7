//! The account's address: verifying it, changing it only once the new one confirms (and
//! telling the old one, which may cancel), and the mail behind both.

use super::shared::accounts::email_conflict;
use super::shared::audit::{self, Event, action};
use super::shared::email_tokens::Proof;
use super::shared::sessions::end_sessions;
use super::shared::{ClientInfo, Services, Viewer, record_account_change};
use crate::auth::token::{EMAIL_PREFIX, HashedToken};
use crate::db::clock::now;
use crate::db::email_tokens::{self, Claimed, Purpose};
use crate::db::users::{self, User};
use crate::db::{password_resets, transaction};
use crate::domain::{Email, bounded, bounds};
use crate::error::{AppError, AppResult};
use crate::ratelimit::Operation;

const INVALID: &str = "is invalid, used or expired; ask for a new one";

impl Services {
    /// Mails the caller a new verification link (voiding older ones); nothing when the
    /// address is verified already. Rate limited per account.
    pub async fn request_email_verification(
        &self,
        viewer: &Viewer,
        client: &ClientInfo,
    ) -> AppResult<()> {
        let user = &viewer.user;
        self.limit(
            Operation::RequestEmailVerification,
            client,
            Some(&user.id.to_string()),
        )
        .await?;
        if user.email_verified {
            return Ok(());
        }
        self.send_verification(user, client).await
    }

    /// Applies a mailed token: a verification token marks the address verified; a change
    /// token makes its new address the account's (`CONFLICT` if another account took it
    /// meanwhile). Returns the account.
    pub async fn verify_email(&self, token: &str, client: &ClientInfo) -> AppResult<User> {
        bounded("token", token, bounds::TOKEN)?;
        self.limit(Operation::VerifyEmail, client, None).await?;
        if !token.starts_with(EMAIL_PREFIX) {
            return Err(AppError::bad_field("token", INVALID));
        }
        let hash = HashedToken::of(token);
        let at = now();
        let mut db = self.db.get().await?;
        let user = transaction!(&mut db, |conn| {
            let claimed = email_tokens::claim(conn, hash.as_bytes(), at).await?;
            let Some(Claimed {
                user_id,
                purpose,
                email,
            }) = claimed.filter(|c| matches!(c.purpose, Purpose::Verify | Purpose::Change))
            else {
                return Err(AppError::bad_field("token", INVALID));
            };
            let (user, done) = if purpose == Purpose::Verify {
                let user = users::mark_email_verified(conn, user_id, &email, at).await?;
                (user, action::EMAIL_VERIFIED)
            } else {
                let user = users::set_verified_email(conn, user_id, &email, at)
                    .await
                    .map_err(email_conflict)?;
                // The change is done: what the old address could still cancel stays valid,
                // and undoes it. A password reset mailed there no longer reaches the owner.
                email_tokens::void(conn, user_id, &[Purpose::Change, Purpose::Verify], at).await?;
                password_resets::use_all_of(conn, user_id, at).await?;
                record_account_change(conn, Some(user_id)).await?;
                (user, action::EMAIL_CHANGED)
            };
            let user = user
                .filter(User::can_sign_in)
                .ok_or_else(|| AppError::bad_field("token", INVALID))?;
            audit::record(
                conn,
                Event::on(Some(user.id), done, ("user", user.id), client),
            )
            .await?;
            Ok::<_, AppError>(user)
        })?;
        self.callers.evict(Some(user.id));
        tracing::info!(user.id = %user.id, "email address confirmed");
        Ok(user)
    }

    /// Starts a change of address after checking the password: the new address gets a
    /// confirmation link and nothing changes until it is used; the old one is told, with a
    /// link that cancels. A taken address gets the same answer (the conflict shows only at
    /// confirmation), so the answer says nothing about who has an account.
    pub async fn change_email(
        &self,
        viewer: &Viewer,
        new_email: &str,
        password: &str,
        client: &ClientInfo,
    ) -> AppResult<()> {
        self.require_recent(viewer, "change the email address")
            .await?;
        let new =
            Email::parse("newEmail", new_email).map_err(|e| AppError::BadUserInput(vec![e]))?;
        let user = &viewer.user;
        if new.as_str() == user.email {
            return Err(AppError::bad_field("newEmail", "is your address already"));
        }
        self.limit(Operation::ChangeEmail, client, Some(&user.id.to_string()))
            .await?;
        self.confirm_password(viewer, "password", password, client)
            .await?;
        let new = new.as_str();
        let proofs = [
            (
                Proof::Change { new },
                &[Purpose::Change, Purpose::Cancel][..],
            ),
            (Proof::Cancel { new }, &[][..]),
        ];
        self.mail_proofs(user, &proofs, action::EMAIL_CHANGE_REQUESTED, client)
            .await
    }

    /// "It was not me", from the old address: the pending change is voided, or undone if it
    /// went through (when the old address is still free), and every session ends.
    pub async fn cancel_email_change(&self, token: &str, client: &ClientInfo) -> AppResult<()> {
        bounded("token", token, bounds::TOKEN)?;
        self.limit(Operation::CancelEmailChange, client, None)
            .await?;
        if !token.starts_with(EMAIL_PREFIX) {
            return Err(AppError::bad_field("token", INVALID));
        }
        let hash = HashedToken::of(token);
        let at = now();
        let mut db = self.db.get().await?;
        let (user, ended) = transaction!(&mut db, |conn| {
            let Some(claimed) = email_tokens::claim(conn, hash.as_bytes(), at)
                .await?
                .filter(|c| c.purpose == Purpose::Cancel)
            else {
                return Err(AppError::bad_field("token", INVALID));
            };
            email_tokens::void(conn, claimed.user_id, &[Purpose::Change], at).await?;
            // Resets mailed to the address being undone are its, not the owner's.
            password_resets::use_all_of(conn, claimed.user_id, at).await?;
            let restored = users::set_verified_email(conn, claimed.user_id, &claimed.email, at)
                .await
                .map_err(email_conflict)?
                .ok_or_else(|| AppError::bad_field("token", INVALID))?;
            record_account_change(conn, Some(restored.id)).await?;
            let ended = end_sessions(
                conn,
                restored.id,
                None,
                at,
                action::EMAIL_CHANGE_CANCELLED,
                client,
            )
            .await?;
            Ok::<_, AppError>((restored, ended))
        })?;
        self.committed(user.id, ended);
        tracing::warn!(user.id = %user.id, "email change cancelled from the old address; sessions ended");
        Ok(())
    }
}
