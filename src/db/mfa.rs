//! Second factors: an account's TOTP secret (sealed), its recovery codes (hashed), and the
//! challenges of logins waiting for a code.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::Conn;
use super::schema::{mfa_challenges, recovery_codes, totp_secrets, users};
use crate::db::with_conn;
use crate::ids::{MfaChallengeId, RecoveryCodeId, UserId};

/// A row of `totp_secrets`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = totp_secrets)]
pub struct TotpSecret {
    /// The account.
    pub user_id: UserId,
    /// The secret, sealed with the configuration's key.
    pub secret: Vec<u8>,
    /// When enrolment started.
    pub created_at: NaiveDateTime,
    /// When a first code confirmed it; `None` while enrolment is under way.
    pub confirmed_at: Option<NaiveDateTime>,
    /// The last time step whose code was accepted.
    pub last_step: Option<i64>,
}

/// A new row of `recovery_codes`.
#[derive(Debug, Insertable)]
#[diesel(table_name = recovery_codes)]
pub struct NewRecoveryCode {
    /// Primary key.
    pub id: RecoveryCodeId,
    /// The account.
    pub user_id: UserId,
    /// HMAC-SHA-256 of the code.
    pub code_hash: Vec<u8>,
    /// Issue time.
    pub created_at: NaiveDateTime,
}

/// A row of `mfa_challenges`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = mfa_challenges)]
pub struct MfaChallenge {
    /// Primary key.
    pub id: MfaChallengeId,
    /// The account whose password was right.
    pub user_id: UserId,
    /// SHA-256 of the challenge token.
    pub token_hash: Vec<u8>,
    /// When the password was checked.
    pub created_at: NaiveDateTime,
    /// End of validity.
    pub expires_at: NaiveDateTime,
    /// When a code completed it.
    pub used_at: Option<NaiveDateTime>,
}

/// Stores a new, unconfirmed secret for `user`, replacing an unconfirmed one; false (and
/// nothing stored) when a confirmed secret exists.
pub async fn put_pending_secret(
    conn: &mut Conn<'_>,
    user: UserId,
    sealed: &[u8],
    at: NaiveDateTime,
) -> QueryResult<bool> {
    let stored = with_conn!(conn, |c| {
        diesel::delete(
            totp_secrets::table
                .filter(totp_secrets::user_id.eq(user))
                .filter(totp_secrets::confirmed_at.is_null()),
        )
        .execute(c)
        .await?;
        diesel::insert_into(totp_secrets::table)
            .values((
                totp_secrets::user_id.eq(user),
                totp_secrets::secret.eq(sealed),
                totp_secrets::created_at.eq(at),
            ))
            .on_conflict_do_nothing()
            .execute(c)
            .await
    })?;
    Ok(stored == 1)
}

/// The secret of `user`, confirmed or not.
pub async fn find_secret(conn: &mut Conn<'_>, user: UserId) -> QueryResult<Option<TotpSecret>> {
    with_conn!(conn, |c| {
        totp_secrets::table
            .find(user)
            .select(TotpSecret::as_select())
            .first(c)
            .await
            .optional()
    })
}

/// Marks the code of time step `step` of `user`'s confirmed secret used, if no code of that
/// step or a later one was: false for a replay.
pub async fn use_step(conn: &mut Conn<'_>, user: UserId, step: i64) -> QueryResult<bool> {
    let updated = with_conn!(conn, |c| {
        diesel::update(totp_secrets::table)
            .filter(totp_secrets::user_id.eq(user))
            .filter(totp_secrets::confirmed_at.is_not_null())
            .filter(
                totp_secrets::last_step
                    .is_null()
                    .or(totp_secrets::last_step.lt(step)),
            )
            .set(totp_secrets::last_step.eq(step))
            .execute(c)
            .await
    })?;
    Ok(updated == 1)
}

/// Confirms the unconfirmed secret `sealed` of `user` at `at`, its code of time step `step`
/// spent; false when that secret is no longer the one waiting (confirmed meanwhile, or
/// replaced by a new enrolment).
pub async fn confirm_secret(
    conn: &mut Conn<'_>,
    user: UserId,
    sealed: &[u8],
    step: i64,
    at: NaiveDateTime,
) -> QueryResult<bool> {
    let updated = with_conn!(conn, |c| {
        diesel::update(totp_secrets::table)
            .filter(totp_secrets::user_id.eq(user))
            .filter(totp_secrets::confirmed_at.is_null())
            .filter(totp_secrets::secret.eq(sealed))
            .set((
                totp_secrets::last_step.eq(step),
                totp_secrets::confirmed_at.eq(at),
            ))
            .execute(c)
            .await
    })?;
    Ok(updated == 1)
}

/// Sets (or clears) when a second factor began guarding `user`.
pub async fn set_enabled(
    conn: &mut Conn<'_>,
    user: UserId,
    at: Option<NaiveDateTime>,
    changed_at: NaiveDateTime,
) -> QueryResult<()> {
    with_conn!(conn, |c| {
        diesel::update(users::table.find(user))
            .set((
                users::mfa_enabled_at.eq(at),
                users::updated_at.eq(changed_at),
            ))
            .execute(c)
            .await
    })
    .map(drop)
}

/// Removes every second factor of `user`: its secret and recovery codes. False when it had
/// no secret.
pub async fn remove_factors(conn: &mut Conn<'_>, user: UserId) -> QueryResult<bool> {
    let removed = with_conn!(conn, |c| {
        diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user)))
            .execute(c)
            .await?;
        diesel::delete(totp_secrets::table.find(user))
            .execute(c)
            .await
    })?;
    Ok(removed == 1)
}

/// Replaces the recovery codes of `user` with `codes`.
pub async fn replace_recovery_codes(
    conn: &mut Conn<'_>,
    user: UserId,
    codes: &[NewRecoveryCode],
) -> QueryResult<()> {
    with_conn!(conn, |c| {
        diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user)))
            .execute(c)
            .await?;
        // One row at a time: SQLite's batch insert wants rows without defaults, and ten
        // rows at enrolment cost nothing that matters.
        for code in codes {
            diesel::insert_into(recovery_codes::table)
                .values(code)
                .execute(c)
                .await?;
        }
        Ok(())
    })
}

/// Spends the unused recovery code of `user` with this hash; false when there is none.
pub async fn use_recovery_code(
    conn: &mut Conn<'_>,
    user: UserId,
    hash: &[u8],
    at: NaiveDateTime,
) -> QueryResult<bool> {
    let used = with_conn!(conn, |c| {
        diesel::update(recovery_codes::table)
            .filter(recovery_codes::user_id.eq(user))
            .filter(recovery_codes::code_hash.eq(hash))
            .filter(recovery_codes::used_at.is_null())
            .set(recovery_codes::used_at.eq(at))
            .execute(c)
            .await
    })?;
    Ok(used == 1)
}

/// How many unused recovery codes `user` has.
pub async fn recovery_codes_left(conn: &mut Conn<'_>, user: UserId) -> QueryResult<i64> {
    with_conn!(conn, |c| {
        recovery_codes::table
            .filter(recovery_codes::user_id.eq(user))
            .filter(recovery_codes::used_at.is_null())
            .count()
            .get_result(c)
            .await
    })
}

/// Stores a challenge, dropping the account's expired ones.
pub async fn insert_challenge(conn: &mut Conn<'_>, challenge: &MfaChallenge) -> QueryResult<()> {
    with_conn!(conn, |c| {
        diesel::delete(
            mfa_challenges::table
                .filter(mfa_challenges::user_id.eq(challenge.user_id))
                .filter(mfa_challenges::expires_at.lt(challenge.created_at)),
        )
        .execute(c)
        .await?;
        diesel::insert_into(mfa_challenges::table)
            .values(challenge)
            .execute(c)
            .await
    })
    .map(drop)
}

/// The challenge with this token hash.
pub async fn find_challenge(conn: &mut Conn<'_>, hash: &[u8]) -> QueryResult<Option<MfaChallenge>> {
    with_conn!(conn, |c| {
        mfa_challenges::table
            .filter(mfa_challenges::token_hash.eq(hash))
            .select(MfaChallenge::as_select())
            .first(c)
            .await
            .optional()
    })
}

/// Marks a challenge completed; false when it already was.
pub async fn complete_challenge(
    conn: &mut Conn<'_>,
    id: MfaChallengeId,
    at: NaiveDateTime,
) -> QueryResult<bool> {
    let done = with_conn!(conn, |c| {
        diesel::update(mfa_challenges::table.find(id))
            .filter(mfa_challenges::used_at.is_null())
            .set(mfa_challenges::used_at.eq(at))
            .execute(c)
            .await
    })?;
    Ok(done == 1)
}

/// Drops every challenge of `user` (its password changed: a challenge earned with the old
/// one must not complete).
pub async fn drop_challenges(conn: &mut Conn<'_>, user: UserId) -> QueryResult<()> {
    with_conn!(conn, |c| {
        diesel::delete(mfa_challenges::table.filter(mfa_challenges::user_id.eq(user)))
            .execute(c)
            .await
    })
    .map(drop)
}
