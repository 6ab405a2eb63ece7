//! Cookie mode (`USERGRAPH_REFRESH_COOKIE`): the refresh token travels in an `HttpOnly`
//! cookie instead of the response body, so a browser app's JavaScript never holds it.
//!
//! The contract's shapes stay: `AuthPayload.refreshToken` is then the empty string, and
//! `refreshToken(refreshToken: "")` and `logout(refreshToken: "")` use the cookie. The HTTP
//! layer reads the cookie and holds cookie-carrying requests to the CSRF rules
//! (`http/graphql.rs`).

use async_graphql::Context;
use axum::http::header;

use super::context;
use crate::services::shared::AuthGrant;

/// The cookie's name. `__Secure-`: browsers accept it only with `Secure`, from HTTPS (or
/// localhost).
pub const NAME: &str = "__Secure-usergraph-refresh";

/// The path the cookie is sent to: the GraphQL endpoint only.
const PATH: &str = "/graphql";

/// The refresh cookie a request carried, when cookie mode is on.
#[derive(Debug, Clone, Default)]
pub struct RefreshCookie(pub Option<String>);

fn on(ctx: &Context<'_>) -> bool {
    context::services(ctx).config().refresh_cookie
}

/// `grant` as the client gets it: in cookie mode its refresh token is moved to a
/// `Set-Cookie` header of the response and the payload's is empty.
pub fn deliver(ctx: &Context<'_>, mut grant: AuthGrant) -> AuthGrant {
    if on(ctx) {
        let max_age = context::services(ctx).config().refresh_token_ttl.as_secs();
        let token = std::mem::take(&mut grant.refresh_token);
        ctx.append_http_header(
            header::SET_COOKIE,
            format!(
                "{NAME}={token}; Path={PATH}; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict"
            ),
        );
    }
    grant
}

/// The refresh token a mutation acts on: the argument, or in cookie mode, when the argument
/// is empty, the cookie's.
pub fn presented(ctx: &Context<'_>, argument: String) -> String {
    if on(ctx) && argument.is_empty() {
        return ctx
            .data_opt::<RefreshCookie>()
            .and_then(|cookie| cookie.0.clone())
            .unwrap_or_default();
    }
    argument
}

/// In cookie mode, tells the browser to drop the cookie (after a logout).
pub fn clear(ctx: &Context<'_>) {
    if on(ctx) {
        ctx.append_http_header(
            header::SET_COOKIE,
            format!("{NAME}=; Path={PATH}; Max-Age=0; HttpOnly; Secure; SameSite=Strict"),
        );
    }
}
