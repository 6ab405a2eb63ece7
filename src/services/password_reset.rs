//! Self-service password reset by emailed, single-use token. It works while the email is
//! locked out: the lockout guards password guessing, not the owner's mailbox.

use chrono::NaiveDateTime;

use super::shared::audit::{self, Event, action};
use super::shared::delta;
use super::shared::sessions::end_sessions;
use super::shared::{ClientInfo, Services, mail, record_account_change};
use crate::auth::token::{HashedToken, PlainToken, RESET_PREFIX};
use crate::db::clock::now;
use crate::db::password_resets::{self, NewPasswordReset};
use crate::db::transaction;
use crate::db::users::User;
use crate::db::{login_failures, mfa, users};
use crate::domain::{Email, Password, bounded, bounds};
use crate::error::{AppError, AppResult};
use crate::ids::PasswordResetId;
use crate::mail::Letter;
use crate::ratelimit::Operation;

impl Services {
    /// Starts a reset: mails a token if an active account has this email. Answers at once
    /// and the same way whether or not it does; the lookup and the mail happen afterwards,
    /// so the response time reveals nothing either.
    ///
    /// `BAD_USER_INPUT` only for text that is no email address at all: too long or holding
    /// control characters. Anything else answers alike, account or not.
    ///
    /// Rate limited per client and per email whether or not an account has it (so that a
    /// refusal reveals nothing either), and before anything is looked up.
    pub async fn request_password_reset(&self, email: &str, client: &ClientInfo) -> AppResult<()> {
        bounded("email", email, bounds::EMAIL)?;
        let (parsed, key) = Email::keyed(email);
        self.limit(Operation::RequestPasswordReset, client, Some(&key))
            .await?;
        let Some(email) = parsed else {
            return Ok(());
        };
        let services = self.clone();
        let client = client.clone();
        tokio::spawn(async move {
            if let Err(error) = services.send_reset_mail(&email, &client).await {
                tracing::error!(error = %error, "password reset mail failed");
            }
        });
        Ok(())
    }

    async fn send_reset_mail(&self, email: &Email, client: &ClientInfo) -> AppResult<()> {
        let mut db = self.db.get().await?;
        let Some(user) = users::find_user_by_email(&mut db.conn(), email.as_str())
            .await?
            .filter(users::User::can_sign_in)
        else {
            return Ok(());
        };
        let token = PlainToken::generate(RESET_PREFIX);
        let at = now();
        let ttl = self.config.password_reset_ttl;
        transaction!(&mut db, |conn| {
            password_resets::insert(
                conn,
                &NewPasswordReset {
                    id: PasswordResetId::new(),
                    user_id: user.id,
                    token_hash: token.hashed().as_bytes(),
                    created_at: at,
                    expires_at: at + delta(ttl)?,
                },
            )
            .await?;
            let event = Event::on(
                None,
                action::PASSWORD_RESET_REQUESTED,
                ("user", user.id),
                client,
            );
            audit::record(conn, event).await?;
            let letter = self.reset_letter(&token.expose());
            mail::enqueue(conn, &user.email, &letter).await
        })?;
        self.mail_queued();
        Ok(())
    }

    /// The reset mail for `token`: a link to USERGRAPH_PASSWORD_RESET_URL (or the public
    /// URL's `/reset-password`) when one is set, the bare code otherwise.
    fn reset_letter(&self, token: &str) -> Letter {
        let minutes = self.config.password_reset_ttl.as_secs() / 60;
        let letter = Letter::new("Reset your password")
            .paragraph("Someone asked to reset the password of this account.");
        let letter = match self.token_link(
            self.config.password_reset_url.as_deref(),
            "reset-password",
            token,
        ) {
            Some(url) => letter.link("Choose a new password", url),
            None => letter
                .paragraph("Use this code to choose a new password:")
                .code(token),
        };
        letter.paragraph(format!(
            "It works once, within {minutes} minutes. If you did not ask for it, ignore this \
             mail: your password stays as it is."
        ))
    }

    /// The account a live reset token (by its hash) is for, if it may still sign in; the
    /// token stays unused.
    async fn reset_target(&self, hash: &HashedToken, at: NaiveDateTime) -> AppResult<Option<User>> {
        let mut db = self.db.get().await?;
        let mut conn = db.conn();
        let Some(id) = password_resets::peek(&mut conn, hash.as_bytes(), at).await? else {
            return Ok(None);
        };
        Ok(users::find_user(&mut conn, id)
            .await?
            .filter(users::User::can_sign_in))
    }

    /// Sets a new password with a reset token; ends every session and lifts any lockout.
    pub async fn reset_password(
        &self,
        token: &str,
        new_password: &str,
        client: &ClientInfo,
    ) -> AppResult<()> {
        const INVALID: &str = "is invalid, used or expired; ask for a new one";
        bounded("token", token, bounds::TOKEN)?;
        if !token.starts_with(RESET_PREFIX) {
            return Err(AppError::bad_field("token", INVALID));
        }
        self.limit(Operation::ResetPassword, client, None).await?;
        let hash = HashedToken::of(token);
        let at = now();
        // Look first without using the token up, so a weak new password does not burn it.
        let user = self
            .reset_target(&hash, at)
            .await?
            .ok_or_else(|| AppError::bad_field("token", INVALID))?;
        self.limit_account(Operation::ResetPassword, client, &user.id.to_string())
            .await?;
        let email = Email::parse("email", &user.email).ok();
        let password = Password::parse(
            "newPassword",
            new_password,
            self.password_policy_for(&user),
            email.as_ref(),
        )
        .map_err(|e| AppError::BadUserInput(vec![e]))?;
        // Hashed with no connection held: the pool serves others meanwhile.
        let new_hash = self.passwords.hash(&password).await?;
        let mut db = self.db.get().await?;
        let revoked = transaction!(&mut db, |conn| {
            if password_resets::claim(conn, hash.as_bytes(), at).await? != Some(user.id) {
                return Err(AppError::bad_field("token", INVALID));
            }
            password_resets::use_all_of(conn, user.id, at).await?;
            users::set_password_hash(conn, user.id, &new_hash, at).await?;
            mfa::drop_challenges(conn, user.id).await?;
            record_account_change(conn, Some(user.id)).await?;
            login_failures::clear(conn, &user.email).await?;
            end_sessions(conn, user.id, None, at, action::PASSWORD_RESET, client).await
        })?;
        self.committed(user.id, revoked);
        tracing::info!(user.id = %user.id, "password reset");
        Ok(())
    }
}
