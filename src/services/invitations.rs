//! Accepting an administrator's invitation (`inviteUser` in [`admin`](super::admin)): the
//! mailed token proves the address, its owner chooses the first password, a session opens.

use chrono::NaiveDateTime;
use serde_json::json;

use super::shared::audit::{self, Event, action};
use super::shared::{AuthGrant, ClientInfo, Services, record_account_change};
use crate::auth::token::{EMAIL_PREFIX, HashedToken};
use crate::db::clock::now;
use crate::db::email_tokens::{self, Claimed, Purpose};
use crate::db::transaction;
use crate::db::{login_failures, users};
use crate::domain::{Email, Password, bounded, bounds};
use crate::error::{AppError, AppResult};
use crate::ratelimit::Operation;

const INVALID: &str = "is invalid, used or expired: ask for a new invitation, or for a \
                       password reset mail";

impl Services {
    /// Sets the first password of an invited account with the invitation's token, marks its
    /// address verified and logs it in. The token works once; a refused password leaves it
    /// unused.
    pub async fn accept_invitation(
        &self,
        token: &str,
        password: &str,
        client: &ClientInfo,
    ) -> AppResult<AuthGrant> {
        bounded("token", token, bounds::TOKEN)?;
        if !token.starts_with(EMAIL_PREFIX) {
            return Err(AppError::bad_field("token", INVALID));
        }
        self.limit(Operation::AcceptInvitation, client, None)
            .await?;
        let hash = HashedToken::of(token);
        let at = now();
        let Claimed { user_id, email, .. } = self.invitation(&hash, at).await?;
        let new_hash = self.first_password(password, &email).await?;
        let mut db = self.db.get().await?;
        let (user, refresh) = transaction!(&mut db, |conn| {
            let claimed = email_tokens::claim(conn, hash.as_bytes(), at).await?;
            if !claimed.is_some_and(|c| c.user_id == user_id && c.purpose == Purpose::Invite) {
                return Err(AppError::bad_field("token", INVALID));
            }
            // The account must still have the invited address, and may still sign in.
            let user = users::mark_email_verified(conn, user_id, &email, at)
                .await?
                .filter(users::User::can_sign_in)
                .ok_or_else(|| AppError::bad_field("token", INVALID))?;
            users::set_password_hash(conn, user_id, &new_hash, at).await?;
            login_failures::clear(conn, &user.email).await?;
            record_account_change(conn, Some(user_id)).await?;
            let refresh = self.start_session(conn, user_id, false, client).await?;
            let event = Event::on(
                Some(user_id),
                action::INVITATION_ACCEPTED,
                ("user", user_id),
                client,
            )
            .with_details(json!({ "session": refresh.session.to_string() }));
            audit::record(conn, event).await?;
            Ok::<_, AppError>((user, refresh))
        })?;
        self.callers.evict(Some(user_id));
        tracing::info!(user.id = %user_id, "invitation accepted");
        self.grant(user, refresh)
    }

    /// The hash of the first password `raw` of the account invited at `email`, once it
    /// passes the policy; hashed with no connection held (the pool serves others meanwhile).
    async fn first_password(&self, raw: &str, email: &str) -> AppResult<String> {
        let address = Email::parse("email", email).ok();
        let password = Password::parse("password", raw, self.password_policy(), address.as_ref())
            .map_err(|e| AppError::BadUserInput(vec![e]))?;
        self.passwords.hash(&password).await
    }

    /// The invitation a token (by its hash) holds, looked at without using it up, so that a
    /// refused password does not burn it.
    async fn invitation(&self, hash: &HashedToken, at: NaiveDateTime) -> AppResult<Claimed> {
        let mut db = self.db.get().await?;
        email_tokens::peek(&mut db.conn(), hash.as_bytes(), at)
            .await?
            .filter(|claimed| claimed.purpose == Purpose::Invite)
            .ok_or_else(|| AppError::bad_field("token", INVALID))
    }
}
