//! Mailed tokens that prove an address: issued in the caller's transaction, with their mail
//! queued in the same one. Random, stored as SHA-256 only, single use, valid for
//! `USERGRAPH_EMAIL_TOKEN_TTL`; a newer token of a purpose voids the older ones.

use super::audit::{self, Event, action};
use super::{ClientInfo, Services, delta, mail};
use crate::auth::token::{EMAIL_PREFIX, PlainToken};
use crate::db::clock::now;
use crate::db::email_tokens::{self, NewEmailToken, Purpose};
use crate::db::users::User;
use crate::db::{Conn, transaction};
use crate::error::AppResult;
use crate::ids::EmailTokenId;
use crate::mail::Letter;

/// What a mailed token proves, with the addresses involved.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Proof<'a> {
    /// The account's own address (mailed to it).
    Verify,
    /// A new address for the account (mailed to the new address).
    Change {
        /// The new address.
        new: &'a str,
    },
    /// The right to undo a change (mailed to the old address).
    Cancel {
        /// The address the account asked to move to.
        new: &'a str,
    },
    /// An administrator's invitation: the owner chooses the first password (mailed to the
    /// account's address).
    Invite,
}

impl Services {
    /// Mails `user` a verification link, in one transaction with its audit row.
    pub(crate) async fn send_verification(
        &self,
        user: &User,
        client: &ClientInfo,
    ) -> AppResult<()> {
        let proofs = [(Proof::Verify, &[Purpose::Verify][..])];
        self.mail_proofs(user, &proofs, action::EMAIL_VERIFICATION_REQUESTED, client)
            .await
    }

    /// Issues the tokens of `proofs` (each with the purposes it voids) and queues their mail,
    /// in one transaction with the audit row `done`.
    pub(crate) async fn mail_proofs(
        &self,
        user: &User,
        proofs: &[(Proof<'_>, &[Purpose])],
        done: &'static str,
        client: &ClientInfo,
    ) -> AppResult<()> {
        let mut db = self.db.get().await?;
        transaction!(&mut db, |conn| {
            for (proof, voids) in proofs {
                self.mail_email_token(conn, user, *proof, voids).await?;
            }
            audit::record(
                conn,
                Event::on(Some(user.id), done, ("user", user.id), client),
            )
            .await
        })?;
        self.mail_queued();
        Ok(())
    }

    /// Issues the token `proof` asks for and queues its mail. `voids` lists the purposes
    /// whose open tokens it replaces.
    pub(crate) async fn mail_email_token(
        &self,
        conn: &mut Conn<'_>,
        user: &User,
        proof: Proof<'_>,
        voids: &[Purpose],
    ) -> AppResult<()> {
        let at = now();
        email_tokens::void(conn, user.id, voids, at).await?;
        let token = PlainToken::generate(EMAIL_PREFIX);
        let (purpose, address) = match proof {
            Proof::Verify => (Purpose::Verify, user.email.as_str()),
            Proof::Change { new } => (Purpose::Change, new),
            // The old address, to restore if the change went through meanwhile.
            Proof::Cancel { .. } => (Purpose::Cancel, user.email.as_str()),
            Proof::Invite => (Purpose::Invite, user.email.as_str()),
        };
        let ttl = match proof {
            Proof::Invite => self.config.invitation_ttl,
            _ => self.config.email_token_ttl,
        };
        email_tokens::insert(
            conn,
            &NewEmailToken {
                id: EmailTokenId::new(),
                user_id: user.id,
                purpose: purpose.as_str(),
                email: address,
                token_hash: token.hashed().as_bytes(),
                created_at: at,
                expires_at: at + delta(ttl)?,
            },
        )
        .await?;
        let letter = self.email_letter(proof, user, &token.expose());
        mail::enqueue(conn, address, &letter).await
    }

    fn email_letter(&self, proof: Proof<'_>, user: &User, token: &str) -> Letter {
        let hours = self.config.email_token_ttl.as_secs().div_ceil(3_600);
        let valid = format!("The link works once, within {hours} hours.");
        let confirm = |subject: &str, why: &str| {
            let letter = Letter::new(subject).paragraph(why);
            self.with_token(
                letter,
                "verify-email",
                "Confirm the address",
                "verifyEmail",
                token,
            )
            .paragraph(valid.clone())
            .paragraph("If you did not ask for this, ignore this mail.")
        };
        match proof {
            Proof::Verify => confirm(
                "Confirm your email address",
                "Confirm that this address belongs to your account.",
            ),
            Proof::Change { .. } => confirm(
                "Confirm your new email address",
                "Your account asked to use this address from now on. It changes once you \
                 confirm it.",
            ),
            Proof::Cancel { new } => {
                let letter = Letter::new("Your email address is being changed").paragraph(format!(
                    "Someone asked to change the email address of your account from {} to {}. \
                     Nothing changes until the new address is confirmed. If it was you, there \
                     is nothing to do.",
                    user.email,
                    mask(new)
                ));
                self.with_token(
                    letter.paragraph(
                        "If it was not you, cancel it: the change is undone and every session \
                         of your account ends. Then choose a new password.",
                    ),
                    "cancel-email-change",
                    "It was not me: cancel the change",
                    "cancelEmailChange",
                    token,
                )
                .paragraph(valid)
            }
            Proof::Invite => self.invitation_letter(token),
        }
    }

    /// The invitation `inviteUser` mails: a link to choose the first password.
    fn invitation_letter(&self, token: &str) -> Letter {
        let days = self.config.invitation_ttl.as_secs().div_ceil(86_400);
        let letter = Letter::new("You are invited").paragraph(
            "An administrator opened an account for this address. Choose its password to sign \
             in.",
        );
        self.with_token(
            letter,
            "accept-invitation",
            "Choose your password",
            "acceptInvitation",
            token,
        )
        .paragraph(format!(
            "The link works once, within {days} days. Later, \"forgot password\" still sets \
             one. If you did not expect this, ignore this mail."
        ))
    }

    /// A link to the public URL's `path`, or the code to give `mutation`.
    fn with_token(
        &self,
        letter: Letter,
        path: &str,
        label: &str,
        mutation: &str,
        token: &str,
    ) -> Letter {
        match self.token_link(None, path, token) {
            Some(url) => letter.link(label, url),
            None => letter
                .paragraph(format!(
                    "Give this code to your app (the `{mutation}` operation):"
                ))
                .code(token),
        }
    }
}

/// An address with most of its local part hidden: `ad***@example.com`.
fn mask(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let shown: String = local.chars().take(2).collect();
            format!("{shown}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::mask;

    #[test]
    fn masked_addresses_keep_their_domain_only() {
        assert_eq!(mask("ada@example.com"), "ad***@example.com");
        assert_eq!(mask("a@x.io"), "a***@x.io");
        assert_eq!(mask("nonsense"), "***");
    }
}
