//! Buckets in the database (`db::rate_limits`), shared by every instance on it.

use std::time::Duration;

use super::Take;
use crate::db::DbPool;
use crate::db::rate_limits::{self, Take as Cells};

/// Takes each bucket in order, one statement each; the index and wait of the first that is
/// short (its wait costs one more statement).
pub(super) async fn take(
    db: &DbPool,
    takes: &[Take],
    now: i64,
) -> anyhow::Result<Option<(usize, Duration)>> {
    let mut pooled = db.get().await?;
    let mut conn = pooled.conn();
    for (index, take) in takes.iter().enumerate() {
        let key = take.shared_key();
        let (interval, window) = take.interval_and_window();
        let cells = Cells {
            now,
            advance: interval.saturating_mul(i64::from(take.cost)),
            window,
        };
        if rate_limits::take(&mut conn, &key, cells).await?.is_some() {
            continue;
        }
        let tat = rate_limits::time_of(&mut conn, &key).await?.unwrap_or(now);
        let wait = tat.saturating_add(cells.advance) - cells.window - now;
        return Ok(Some((
            index,
            Duration::from_micros(wait.max(0).unsigned_abs()),
        )));
    }
    Ok(None)
}

/// Deletes the buckets that are full again.
pub(super) async fn sweep(db: &DbPool, now: i64) -> anyhow::Result<()> {
    let mut pooled = db.get().await?;
    rate_limits::sweep(&mut pooled.conn(), now).await?;
    Ok(())
}
