//! GraphQL object and input types, named as in the SDL.

pub mod audit;
pub mod auth;
pub mod connection;
pub mod mfa;
pub mod node;
pub mod plain;
pub mod role;
pub mod session;
pub mod user;

use chrono::{DateTime, NaiveDateTime, Utc};

/// A stored UTC timestamp as the `DateTime` scalar.
fn utc(at: NaiveDateTime) -> DateTime<Utc> {
    at.and_utc()
}
