//! Id newtypes, one per kind of record, and the column type they are stored in: `uuid` on
//! PostgreSQL, text on SQLite. Every layer names records by these; the database layer is
//! only where they are read and written.

/// SQL types that differ between the backends.
pub mod sql {
    /// A UUID column: `uuid` on PostgreSQL, `TEXT` on SQLite.
    #[derive(diesel::sql_types::SqlType, diesel::query_builder::QueryId, Debug, Clone, Copy)]
    #[diesel(postgres_type(name = "uuid"))]
    #[diesel(sqlite_type(name = "Text"))]
    pub struct Uuid;
}

/// Declares an id newtype stored in a [`sql::Uuid`] column.
macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            diesel::expression::AsExpression, diesel::deserialize::FromSqlRow,
            serde::Serialize, serde::Deserialize,
        )]
        #[diesel(sql_type = sql::Uuid)]
        #[serde(transparent)]
        pub struct $name(pub uuid::Uuid);

        impl $name {
            /// A new time-ordered (v7) id.
            pub fn new() -> Self {
                Self(uuid::Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                uuid::Uuid::parse_str(s).map(Self)
            }
        }

        impl diesel::serialize::ToSql<sql::Uuid, diesel::pg::Pg> for $name {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>,
            ) -> diesel::serialize::Result {
                use std::io::Write as _;
                out.write_all(self.0.as_bytes())?;
                Ok(diesel::serialize::IsNull::No)
            }
        }

        impl diesel::deserialize::FromSql<sql::Uuid, diesel::pg::Pg> for $name {
            fn from_sql(value: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
                Ok(Self(uuid::Uuid::from_slice(value.as_bytes())?))
            }
        }

        impl diesel::serialize::ToSql<sql::Uuid, diesel::sqlite::Sqlite> for $name {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, diesel::sqlite::Sqlite>,
            ) -> diesel::serialize::Result {
                out.set_value(self.0.hyphenated().to_string());
                Ok(diesel::serialize::IsNull::No)
            }
        }

        impl diesel::deserialize::FromSql<sql::Uuid, diesel::sqlite::Sqlite> for $name {
            fn from_sql(
                value: diesel::sqlite::SqliteValue<'_, '_, '_>,
            ) -> diesel::deserialize::Result<Self> {
                let text = <String as diesel::deserialize::FromSql<
                    diesel::sql_types::Text,
                    diesel::sqlite::Sqlite,
                >>::from_sql(value)?;
                Ok(Self(uuid::Uuid::parse_str(&text)?))
            }
        }
    };
}

id_type!(
    /// The id of a user.
    UserId
);
id_type!(
    /// The id of a role.
    RoleId
);
id_type!(
    /// The id of a session (one login on one device).
    SessionId
);
id_type!(
    /// The id of a refresh token.
    RefreshTokenId
);

id_type!(
    /// The id of a personal access token.
    PersonalTokenId
);
id_type!(
    /// The id of a password reset token.
    PasswordResetId
);
id_type!(
    /// The id of an audit event.
    AuditEventId
);
id_type!(
    /// The id of a recorded change to what authorises an account.
    AccountChangeId
);
id_type!(
    /// The id of a message in the mail outbox.
    MailId
);
id_type!(
    /// The id of an emailed token (address verification, address change).
    EmailTokenId
);
id_type!(
    /// The id of a recovery code.
    RecoveryCodeId
);
id_type!(
    /// The id of a login waiting for its second factor.
    MfaChallengeId
);
