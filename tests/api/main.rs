//! Black-box tests over the real router and a real database. Every test body runs on SQLite
//! and on PostgreSQL (when `TEST_DATABASE_URL` names a server; CI always sets it).

mod helpers;
mod process;

mod access;
mod admin;
mod audit;
mod auth;
mod avatars;
mod callers;
mod cli;
mod connections;
mod cookies;
mod deploy;
mod email;
mod faults;
mod fleet;
mod http;
mod invitations;
mod keys;
mod listing;
mod live;
mod lockout;
mod mailbox;
mod metrics;
mod mfa;
mod migrations;
mod operations;
mod passwords;
mod personal_tokens;
mod playground;
mod production;
mod profiles;
mod rate_limits;
mod robustness;
mod schema;
mod sessions;
mod tokens;
mod traces;
mod users;
