//! Trace spans for GraphQL execution, added to the schema only while traces are sent: one
//! for the operation and one for each root field, whose resolver is the one that calls a
//! service (and the database). Nested fields read what their root field or a batch loaded,
//! so a span each would only bury the ones that matter.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextResolve, ResolveInfo,
};
use async_graphql::{Response, ServerResult, Value};
use tracing::Instrument as _;

/// The extension factory for [`build_schema`](super::build_schema).
pub struct Spans;

impl ExtensionFactory for Spans {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(SpansExtension)
    }
}

struct SpansExtension;

#[async_trait::async_trait]
impl Extension for SpansExtension {
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let span = tracing::info_span!(
            "graphql.execute",
            graphql.operation.name = operation_name.unwrap_or_default(),
        );
        next.run(ctx, operation_name).instrument(span).await
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        if info.path_node.parent.is_some() || info.is_for_introspection {
            return next.run(ctx, info).await;
        }
        let span = tracing::info_span!(
            "graphql.resolve",
            graphql.field = info.name,
            graphql.parent_type = info.parent_type,
        );
        next.run(ctx, info).instrument(span).await
    }
}
