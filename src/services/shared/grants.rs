//! Permissions as proof: a service that needs a permission (one of the types of
//! [`crate::domain::grant`], re-exported here) takes an [`Authorized`] for it,
//! and only [`Viewer::authorize`] makes one. A resolver, the CLI or a subscription cannot
//! reach such an operation without the check; a forgotten check does not compile. This is
//! the one place permissions are decided; the schema's guards mirror it for the schema's
//! documentation and refuse early.

use std::marker::PhantomData;

use super::Viewer;
use crate::db::users::User;
use crate::domain::Permission;
pub use crate::domain::grant::*;
use crate::error::{AppError, AppResult};
use crate::ids::UserId;

/// Proof that the caller holds the permission `P`.
pub struct Authorized<'a, P: Grant> {
    viewer: &'a Viewer,
    permission: PhantomData<P>,
}

impl<'a, P: Grant> Authorized<'a, P> {
    /// The caller.
    pub fn viewer(&self) -> &'a Viewer {
        self.viewer
    }

    /// The caller's account id.
    pub fn actor(&self) -> UserId {
        self.viewer.user.id
    }
}

impl Viewer {
    /// Proof that the caller holds `P`; `FORBIDDEN` naming the permission otherwise.
    pub fn authorize<P: Grant>(&self) -> AppResult<Authorized<'_, P>> {
        if self.can(P::PERMISSION) {
            Ok(Authorized {
                viewer: self,
                permission: PhantomData,
            })
        } else {
            Err(AppError::missing_permission(P::PERMISSION.as_str()))
        }
    }

    /// Whether the caller may read the account `user`: its own, or any with `users:read`.
    pub fn may_read(&self, user: UserId) -> bool {
        self.user.id == user || self.can(Permission::UsersRead)
    }

    /// The email address of `user`, if the caller may read it ([`Self::may_read`]); the
    /// refusal naming `users:read` otherwise.
    pub fn email_of<'a>(&self, user: &'a User) -> AppResult<&'a str> {
        if self.may_read(user.id) {
            Ok(&user.email)
        } else {
            Err(AppError::missing_permission(Permission::UsersRead.as_str()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::shared::Credential;

    fn viewer(permissions: &[&str]) -> Viewer {
        let at = chrono::DateTime::UNIX_EPOCH.naive_utc();
        Viewer {
            user: User {
                id: UserId::new(),
                email: "a@example.com".into(),
                email_verified: false,
                is_active: true,
                created_at: at,
                updated_at: at,
                deleted_at: None,
                last_login_at: None,
                mfa_enabled_at: None,
            },
            credential: Credential::Session(crate::ids::SessionId::new()),
            permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
            must_enrol: false,
        }
    }

    #[test]
    fn proof_only_for_a_held_permission() {
        let reader = viewer(&["users:read"]);
        assert!(reader.authorize::<UsersRead>().is_ok());
        let refused = reader
            .authorize::<UsersDelete>()
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            refused.as_deref(),
            Some("this needs the `users:delete` permission")
        );
        let nobody = viewer(&[]);
        assert!(nobody.may_read(nobody.user.id));
        assert!(!nobody.may_read(UserId::new()));
        assert!(reader.may_read(UserId::new()));
        let someone = nobody.user.clone();
        let other = User {
            id: UserId::new(),
            ..someone.clone()
        };
        assert_eq!(nobody.email_of(&someone).ok(), Some(someone.email.as_str()));
        assert!(matches!(
            nobody.email_of(&other),
            Err(AppError::Forbidden(_))
        ));
        assert!(reader.email_of(&other).is_ok());
    }
}
