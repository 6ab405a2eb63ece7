//! `AuditEvent`, its connection and filter.

use async_graphql::{Context, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::connection::{PageInfo, encode_with};
use super::user::User;
use super::utc;
use crate::db::audit::{self, AuditQuery};
use crate::domain::{bounded, bounded_time, bounds};
use crate::error::AppError;
use crate::graphql::context;
use crate::graphql::loaders::UserOf;
use crate::services::audit_log::AuditPage;

/// Cursor kind of audit events.
pub const AUDIT_CURSOR: &str = "audit:";

/// Something that happened: who did what to which, from where, when.
pub struct AuditEvent(pub audit::AuditEvent);

#[Object]
impl AuditEvent {
    /// The event's id.
    pub async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// When it happened.
    async fn at(&self) -> DateTime<Utc> {
        utc(self.0.at)
    }

    /// Who did it; null for anonymous actions (failed login, sign-up) and erased accounts.
    async fn actor(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let Some(actor) = self.0.actor_id else {
            return Ok(None);
        };
        let user = context::loader(ctx)
            .load_one(UserOf(actor))
            .await
            .map_err(|e| async_graphql::Error::from(&*e))?;
        Ok(user.map(User::new))
    }

    /// What happened, e.g. `user.login`, `user.login_failed`, `role.assign`.
    async fn action(&self) -> &str {
        &self.0.action
    }

    /// The kind of thing acted on: `user`, `session`, `pat`, `role`.
    async fn target_type(&self) -> Option<&str> {
        self.0.target_type.as_deref()
    }

    /// The id of the thing acted on.
    async fn target_id(&self) -> Option<ID> {
        self.0.target_id.clone().map(ID)
    }

    /// The client's address.
    async fn ip(&self) -> Option<&str> {
        self.0.ip.as_deref()
    }

    /// The client's User-Agent.
    async fn user_agent(&self) -> Option<&str> {
        self.0.user_agent.as_deref()
    }

    /// Facts about the change; never a password, a token or a hash.
    async fn details(&self) -> Option<Json<serde_json::Value>> {
        self.0
            .details
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
            .map(Json)
    }
}

/// An event in a page, with its cursor.
#[derive(SimpleObject)]
pub struct AuditEventEdge {
    /// Opaque position, for `after`.
    pub cursor: String,
    /// The event.
    pub node: AuditEvent,
}

/// A page of audit events, newest first.
pub struct AuditEventConnection {
    page: AuditPage,
    filter: AuditQuery,
}

impl AuditEventConnection {
    /// Wraps a page and the filter it was read with (for `totalCount`).
    pub fn new(page: AuditPage, filter: AuditQuery) -> Self {
        Self { page, filter }
    }
}

impl AuditEventConnection {
    /// Loads every actor of the page in one batch when the selection asks for them.
    async fn prefetch_actors(
        &self,
        ctx: &Context<'_>,
        fields: async_graphql::Lookahead<'_>,
    ) -> async_graphql::Result<()> {
        if fields.field("actor").exists() {
            let actors = self
                .page
                .events
                .iter()
                .filter_map(|e| e.actor_id)
                .map(UserOf);
            context::loader(ctx)
                .load_many(actors)
                .await
                .map_err(|e| async_graphql::Error::from(&*e))?;
        }
        Ok(())
    }
}

#[Object]
impl AuditEventConnection {
    /// The events with their cursors.
    async fn edges(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<AuditEventEdge>> {
        self.prefetch_actors(ctx, ctx.look_ahead().field("node"))
            .await?;
        Ok(self
            .page
            .events
            .iter()
            .map(|e| AuditEventEdge {
                cursor: encode_with(AUDIT_CURSOR, &e.id),
                node: AuditEvent(e.clone()),
            })
            .collect())
    }

    /// The events.
    async fn nodes(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<AuditEvent>> {
        self.prefetch_actors(ctx, ctx.look_ahead()).await?;
        Ok(self.page.events.iter().cloned().map(AuditEvent).collect())
    }

    /// Where this page lies.
    async fn page_info(&self) -> PageInfo {
        PageInfo {
            has_next_page: self.page.has_next,
            has_previous_page: self.page.has_previous,
            start_cursor: self
                .page
                .events
                .first()
                .map(|e| encode_with(AUDIT_CURSOR, &e.id)),
            end_cursor: self
                .page
                .events
                .last()
                .map(|e| encode_with(AUDIT_CURSOR, &e.id)),
        }
    }

    /// How many events match the filter (counted only when asked for).
    async fn total_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        let by = context::enrolling_viewer(ctx).await?.authorize()?;
        Ok(context::services(ctx)
            .count_audit_events(by, &self.filter)
            .await?)
    }
}

/// Which audit events to show; every condition given must hold.
#[derive(InputObject, Default)]
pub struct AuditFilter {
    /// Only events by this account.
    pub actor_id: Option<ID>,
    /// Only this action, e.g. `user.login`.
    pub action: Option<String>,
    /// Only events about this thing.
    pub target_id: Option<ID>,
    /// Only events at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only events before this time.
    pub until: Option<DateTime<Utc>>,
}

impl TryFrom<AuditFilter> for AuditQuery {
    type Error = AppError;

    fn try_from(filter: AuditFilter) -> Result<Self, AppError> {
        let actor = filter
            .actor_id
            .map(|id| {
                id.parse()
                    .map_err(|_| AppError::bad_field("filter.actorId", "is not an account id"))
            })
            .transpose()?;
        let action = filter.action.as_deref();
        let target = filter.target_id.as_deref();
        let since = filter.since.map(|t| bounded_time("filter.since", t));
        let until = filter.until.map(|t| bounded_time("filter.until", t));
        AppError::check([
            action.and_then(|a| bounded("filter.action", a, bounds::AUDIT_KEY).err()),
            target.and_then(|t| bounded("filter.targetId", t, bounds::AUDIT_KEY).err()),
            since.clone().and_then(Result::err),
            until.clone().and_then(Result::err),
        ])?;
        Ok(Self {
            actor,
            action: filter.action,
            target_id: filter.target_id.map(|id| id.0),
            since: since.and_then(Result::ok),
            until: until.and_then(Result::ok),
        })
    }
}
