//! The clock the database layer writes with.

use chrono::{NaiveDateTime, SubsecRound as _, Utc};

/// The current time in UTC, cut to microseconds: what PostgreSQL keeps, so both backends
/// store and compare the same instants.
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(6)
}
