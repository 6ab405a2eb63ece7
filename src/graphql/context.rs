//! What a resolver reads from the request: the services, the caller and the loaders.

use async_graphql::Context;
use async_graphql::dataloader::{DataLoader, HashMapCache};
use tokio::sync::OnceCell;

use super::cookie::RefreshCookie;
use super::loaders::AppLoader;
use crate::auth::Principal;
use crate::domain::Permission;
use crate::error::AppError;
use crate::services::shared::Viewer;
use crate::services::{ClientInfo, Services};

/// Per-request cache of the caller's account, so a request loads it at most once.
#[derive(Default)]
pub struct ViewerCell(OnceCell<Viewer>);

/// The data every request carries besides the schema-wide [`Services`].
pub struct RequestData {
    /// Who the request acts as.
    pub principal: Principal,
    /// Where it came from.
    pub client: ClientInfo,
    /// The refresh cookie it carried (cookie mode).
    pub refresh_cookie: RefreshCookie,
}

/// Adds the per-request data to `request`.
pub fn attach(
    request: async_graphql::Request,
    data: RequestData,
    services: &Services,
) -> async_graphql::Request {
    attach_with(request, data, loaders(services, true))
}

/// Adds the data of a subscription to `request`: its loaders cache nothing, since each
/// event must be resolved with what is stored now.
pub fn attach_live(
    request: async_graphql::Request,
    data: RequestData,
    services: &Services,
) -> async_graphql::Request {
    attach_with(request, data, loaders(services, false))
}

fn attach_with(
    request: async_graphql::Request,
    data: RequestData,
    loaders: Loaders,
) -> async_graphql::Request {
    request
        .data(data.principal)
        .data(data.client)
        .data(data.refresh_cookie)
        .data(ViewerCell::default())
        .data(loaders)
}

fn loaders(services: &Services, cache: bool) -> Loaders {
    let loaders = Loaders::with_cache(
        AppLoader::new(services.clone()),
        tokio::spawn,
        HashMapCache::default(),
    );
    loaders.enable_all_cache(cache);
    loaders
}

/// The shared services.
pub fn services<'a>(ctx: &Context<'a>) -> &'a Services {
    ctx.data_unchecked::<Services>()
}

/// Who the request acts as.
pub fn principal<'a>(ctx: &Context<'a>) -> &'a Principal {
    ctx.data_unchecked::<Principal>()
}

/// Where the request came from.
pub fn client<'a>(ctx: &Context<'a>) -> &'a ClientInfo {
    ctx.data_unchecked::<ClientInfo>()
}

/// The request's dataloader (it caches for the request's lifetime).
pub fn loader<'a>(ctx: &Context<'a>) -> &'a Loaders {
    ctx.data_unchecked::<Loaders>()
}

/// The per-request dataloader type.
pub type Loaders = DataLoader<AppLoader, HashMapCache>;

/// The caller's account; `UNAUTHENTICATED` without valid credentials, `FORBIDDEN` while a
/// role of the account requires a second factor it has not turned on
/// (`USERGRAPH_REQUIRE_MFA_FOR_ROLES`).
pub async fn viewer<'a>(ctx: &Context<'a>) -> Result<&'a Viewer, AppError> {
    let viewer = enrolling_viewer(ctx).await?;
    if viewer.must_enrol {
        return Err(AppError::MfaEnrollmentRequired);
    }
    Ok(viewer)
}

/// The caller's account, even while it must enrol a second factor: for the fields that lead
/// to enrolment (`me`, enrolment, reauthentication) and for fields nested under a root field
/// that checked the caller already.
pub async fn enrolling_viewer<'a>(ctx: &Context<'a>) -> Result<&'a Viewer, AppError> {
    let cell = ctx.data_unchecked::<ViewerCell>();
    if let Some(viewer) = cell.0.get() {
        return Ok(viewer);
    }
    let principal = ctx.data_unchecked::<Principal>();
    // Boxed: every resolver that may ask for the caller embeds this future, and the lookup's
    // state would otherwise be copied with each field of every object in a list.
    Box::pin(cell.0.get_or_try_init(|| services(ctx).viewer(principal))).await
}

/// The caller's account if it holds `permission`; `FORBIDDEN` otherwise.
pub async fn require<'a>(
    ctx: &Context<'a>,
    permission: Permission,
) -> Result<&'a Viewer, AppError> {
    let viewer = viewer(ctx).await?;
    if viewer.can(permission) {
        Ok(viewer)
    } else {
        Err(AppError::missing_permission(permission.as_str()))
    }
}
