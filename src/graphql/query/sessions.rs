//! The caller's sessions and personal access tokens.

use async_graphql::{Context, Object};

use crate::graphql::context;
use crate::graphql::types::session::{PersonalAccessToken, Session};

/// The caller's sessions and personal access tokens.
#[derive(Default)]
pub struct SessionsQuery;

#[Object]
impl SessionsQuery {
    /// Your live sessions, newest first; `current` marks the one this request uses.
    async fn my_sessions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Session>> {
        let viewer = context::viewer(ctx).await?;
        let sessions = context::services(ctx).my_sessions(viewer).await?;
        let current = viewer.session();
        Ok(sessions
            .into_iter()
            .map(|s| {
                let is_current = Some(s.id) == current;
                Session::new(s, is_current)
            })
            .collect())
    }

    /// Your personal access tokens that are not revoked (never the tokens themselves).
    async fn my_personal_access_tokens(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<PersonalAccessToken>> {
        let viewer = context::viewer(ctx).await?;
        let tokens = context::services(ctx).my_personal_tokens(viewer).await?;
        Ok(tokens.into_iter().map(PersonalAccessToken).collect())
    }
}
