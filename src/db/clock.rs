//! The clock the database layer writes with.

use chrono::{NaiveDateTime, SubsecRound as _, Utc};

/// The current time in UTC, cut to microseconds: what PostgreSQL keeps, so both backends
/// store and compare the same instants.
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(6)
}

/// The clock of the rules that count time in seconds (TOTP steps, challenges, the step-up
/// window): the system's, moved by an offset that tests set to travel in time.
#[derive(Debug, Default)]
pub struct Clock {
    offset_micros: std::sync::atomic::AtomicI64,
}

impl Clock {
    /// The current time by this clock.
    pub fn now(&self) -> NaiveDateTime {
        let offset = self
            .offset_micros
            .load(std::sync::atomic::Ordering::Relaxed);
        now() + chrono::TimeDelta::microseconds(offset)
    }

    /// Moves the clock by `seconds` (negative: back). For tests and tools: nothing a client
    /// sends reaches it.
    pub fn advance(&self, seconds: i64) {
        self.offset_micros.fetch_add(
            seconds.saturating_mul(1_000_000),
            std::sync::atomic::Ordering::Relaxed,
        );
    }
}
