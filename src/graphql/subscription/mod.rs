//! The subscription root, merged from one object per area. Served over WebSocket only
//! (`http::socket`).

mod audit;
mod sessions;
mod users;

use async_graphql::MergedSubscription;

/// Every subscription.
#[derive(MergedSubscription, Default)]
pub struct Subscription(
    sessions::SessionsSubscription,
    audit::AuditSubscription,
    users::UsersSubscription,
);

/// An error of a stream's item as GraphQL reports it.
fn graphql_error(error: crate::error::AppError) -> async_graphql::Error {
    async_graphql::Error::from(error)
}
