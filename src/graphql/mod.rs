//! The GraphQL API: schema root, one module per area, object types, dataloaders and guards.

pub mod admission;
pub mod codes;
pub mod context;
pub mod cookie;
pub mod guards;
pub mod input_values;
pub mod loaders;
pub mod mutation;
pub mod persisted;
pub mod query;
mod spans;
pub mod subscription;
pub mod types;
pub mod validated;

use async_graphql::parser::types::{DocumentOperations, OperationDefinition};
use async_graphql::{SDLExportOptions, Schema, SchemaBuilder};

use crate::config::Config;
use crate::error::ErrorCode;
use crate::services::Services;

/// The schema type served at `/graphql` (subscriptions over WebSocket).
pub type AppSchema = Schema<query::Query, mutation::Mutation, subscription::Subscription>;

fn builder() -> SchemaBuilder<query::Query, mutation::Mutation, subscription::Subscription> {
    Schema::build(
        query::Query::default(),
        mutation::Mutation::default(),
        subscription::Subscription::default(),
    )
    .register_output_type::<ErrorCode>()
    .register_output_type::<types::node::Node>()
}

/// Builds the schema with the limits of `config` and the shared services, validating
/// documents as `mode` says (see [`validated`]).
pub fn build_schema(
    config: &Config,
    services: Services,
    mode: async_graphql::ValidationMode,
) -> AppSchema {
    let mut builder = builder()
        .data(services)
        .validation_mode(mode)
        // The limits are `admission`'s, checked before a document gets here and refused with
        // `QUERY_TOO_COMPLEX`: async-graphql's own limit errors carry no code and could be
        // told from its validation errors only by their wording. Its recursion limit cannot
        // be switched off; admission checks the same bound first.
        .limit_recursive_depth(admission::MAX_LEVELS);
    if !config.suggests_fields() {
        builder = builder.disable_suggestions();
    }
    if !config.serves_introspection() {
        builder = builder.disable_introspection();
    }
    if config.traces() {
        builder = builder.extension(spans::Spans);
    }
    if matches!(mode, async_graphql::ValidationMode::Strict) {
        builder = builder.extension(input_values::InputValues);
    }
    builder.finish()
}

/// `name` if it is a root field of the `Query` (`query`) or `Mutation` (`mutation`) type:
/// what metrics may name an operation by (anything a client invents is not). The names are
/// the schema's, kept for the life of the process.
pub fn root_field(kind: &str, name: &str) -> Option<&'static str> {
    use std::collections::HashMap;
    type Fields = HashMap<&'static str, HashMap<String, &'static str>>;
    static FIELDS: std::sync::OnceLock<Fields> = std::sync::OnceLock::new();
    FIELDS
        .get_or_init(|| {
            let mut fields = Fields::new();
            let Ok(document) = async_graphql::parser::parse_schema(sdl()) else {
                return fields;
            };
            for definition in document.definitions {
                let async_graphql::parser::types::TypeSystemDefinition::Type(ty) = definition
                else {
                    continue;
                };
                let kind = match ty.node.name.node.as_str() {
                    "Query" => "query",
                    "Mutation" => "mutation",
                    _ => continue,
                };
                if let async_graphql::parser::types::TypeKind::Object(object) = ty.node.kind {
                    for field in object.fields {
                        let name = field.node.name.node.to_string();
                        // Leaked once: a bounded set, read by every request's metrics.
                        let label: &'static str = Box::leak(name.clone().into_boxed_str());
                        fields.entry(kind).or_default().insert(name, label);
                    }
                }
            }
            fields
        })
        .get(kind)?
        .get(name)
        .copied()
}

/// The operation `request` runs, when its document parses and names one (the one named,
/// or its only one); async-graphql reports why otherwise.
pub fn operation_of(
    request: &mut async_graphql::Request,
) -> Option<&async_graphql::Positioned<OperationDefinition>> {
    let name = request.operation_name.clone();
    let document = request.parsed_query().ok()?;
    selected_operation(document, name.as_deref())
}

fn selected_operation<'a>(
    document: &'a async_graphql::parser::types::ExecutableDocument,
    name: Option<&str>,
) -> Option<&'a async_graphql::Positioned<OperationDefinition>> {
    match &document.operations {
        DocumentOperations::Single(operation) => Some(operation),
        DocumentOperations::Multiple(operations) => match name {
            Some(name) => operations.get(name),
            None if operations.len() == 1 => operations.values().next(),
            None => None,
        },
    }
}

/// The SDL of the schema, as committed in `schema.graphql`.
pub fn sdl() -> String {
    builder()
        .finish()
        .sdl_with_options(SDLExportOptions::new().sorted_fields())
}
