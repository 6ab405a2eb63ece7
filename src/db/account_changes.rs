//! Recorded changes to what authorises an account, read by every instance's caller cache.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::account_changes;
use super::{Conn, live_events};
use crate::db::with_conn;
use crate::ids::{AccountChangeId, UserId};

/// Records that `user` (every account when `None`) changed at `at`, and announces it to
/// every instance's live events (so their caches drop it at once).
pub async fn record(
    conn: &mut Conn<'_>,
    user: Option<UserId>,
    at: NaiveDateTime,
) -> QueryResult<()> {
    let row = (
        account_changes::id.eq(AccountChangeId::new()),
        account_changes::user_id.eq(user),
        account_changes::changed_at.eq(at),
    );
    match conn {
        Conn::Postgres(c) => diesel::insert_into(account_changes::table)
            .values(row)
            .returning(live_events::announce_account_change_row(
                account_changes::user_id,
            ))
            .load::<bool>(&mut **c)
            .await
            .map(drop),
        Conn::Sqlite(c) => {
            diesel::insert_into(account_changes::table)
                .values(row)
                .execute(&mut **c)
                .await?;
            live_events::announce_account_change(conn, user).await
        }
    }
}

/// The changes recorded after `since`: (change, account or `None` for every account).
pub async fn since(
    conn: &mut Conn<'_>,
    since: NaiveDateTime,
) -> QueryResult<Vec<(AccountChangeId, Option<UserId>)>> {
    with_conn!(conn, |c| {
        account_changes::table
            .filter(account_changes::changed_at.gt(since))
            .select((account_changes::id, account_changes::user_id))
            .load(c)
            .await
    })
}

/// Deletes the changes recorded before `before`; returns how many.
pub async fn prune(conn: &mut Conn<'_>, before: NaiveDateTime) -> QueryResult<usize> {
    with_conn!(conn, |c| {
        diesel::delete(account_changes::table.filter(account_changes::changed_at.lt(before)))
            .execute(c)
            .await
    })
}
