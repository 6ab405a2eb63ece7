//! Argument values async-graphql's validation lets through, refused as the validation
//! errors they are.
//!
//! A value of the wrong type as an argument (a literal, a variable, or a field of an input
//! object) fails the request before it runs: a request error, 400 under
//! `application/graphql-response+json`. async-graphql checks argument values against the
//! schema in its validation, but three kinds pass it and are refused only when the field
//! reads them, as a 200 with `data: null` and a field error:
//! - an `Int` outside 32 bits (its `Int` takes any 64-bit number);
//! - anything but an object for an input object (`filter: "x"`, a list for `input`);
//! - a `DateTime` that does not parse (the scalar has no check of its own there).
//!
//! Its registry keeps one check per scalar name and ours cannot replace those, so this
//! extension walks the operation's arguments once more with the schema's argument types and
//! reports what it finds as validation errors, after async-graphql's own rules passed
//! (theirs are reported first), worded as it words its own. Only the schema that validates
//! in full carries it: a document remembered by [`validated`](super::validated) passed it,
//! and the key holds the whole value of every variable that is neither a `String` nor an
//! `ID`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest,
    NextValidation,
};
use async_graphql::parser::types::{
    Directive, ExecutableDocument, OperationType, Selection, SelectionSet, VariableDefinition,
};
use async_graphql::registry::{MetaInputValue, MetaType, MetaTypeName, Registry};
use async_graphql::{
    InputType, Name, Pos, Positioned, QueryPathNode, QueryPathSegment, Request, ServerError,
    ServerResult, ValidationResult, Value, Variables,
};
use chrono::{DateTime, Utc};

/// The extension factory for [`build_schema`](super::build_schema).
pub struct InputValues;

impl ExtensionFactory for InputValues {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(InputValuesExtension::default())
    }
}

/// One request's: the operation it names, then what the walk found.
#[derive(Default)]
struct InputValuesExtension {
    operation: Mutex<Option<String>>,
    found: Mutex<Vec<ServerError>>,
}

#[async_trait::async_trait]
impl Extension for InputValuesExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let request = next.run(ctx, request).await?;
        *lock(&self.operation) = request.operation_name.clone();
        Ok(request)
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let operation = lock(&self.operation).take();
        *lock(&self.found) = refused_arguments(
            &ctx.schema_env.registry,
            &document,
            operation.as_deref(),
            variables,
        );
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        let found = std::mem::take(&mut *lock(&self.found));
        if found.is_empty() {
            Ok(result)
        } else {
            Err(found)
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An error for each argument of the operation `name` picks in `document` whose value
/// (variables and their defaults put in) holds one of the values this module refuses.
/// Whatever the walk does not find in the schema (an unknown field, a missing variable) is
/// left to async-graphql's rules.
fn refused_arguments(
    registry: &Registry,
    document: &ExecutableDocument,
    name: Option<&str>,
    variables: &Variables,
) -> Vec<ServerError> {
    let Some(operation) = super::selected_operation(document, name) else {
        return Vec::new();
    };
    let operation = &operation.node;
    let root = match operation.ty {
        OperationType::Query => Some(registry.query_type.as_str()),
        OperationType::Mutation => registry.mutation_type.as_deref(),
        OperationType::Subscription => registry.subscription_type.as_deref(),
    };
    let mut walk = Walk {
        registry,
        document,
        variables,
        definitions: &operation.variable_definitions,
        fragments_seen: HashSet::new(),
        found: Vec::new(),
    };
    walk.directives(&operation.directives);
    if let Some(root) = root {
        walk.selections(&operation.selection_set.node, root);
    }
    walk.found
}

struct Walk<'a> {
    registry: &'a Registry,
    document: &'a ExecutableDocument,
    variables: &'a Variables,
    definitions: &'a [Positioned<VariableDefinition>],
    /// A fragment's arguments are the same wherever it is spread: each is walked once.
    fragments_seen: HashSet<&'a str>,
    found: Vec<ServerError>,
}

impl<'a> Walk<'a> {
    /// The value of the variable `name`: the request's, else its declared default.
    fn value_of(&self, name: &Name) -> Option<Value> {
        self.variables.get(name).cloned().or_else(|| {
            self.definitions
                .iter()
                .find(|definition| definition.node.name.node == *name)
                .and_then(|definition| definition.node.default_value.as_ref())
                .map(|value| value.node.clone())
        })
    }

    fn selections(&mut self, set: &'a SelectionSet, parent: &str) {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    self.directives(&field.directives);
                    let Some(meta) = self
                        .registry
                        .types
                        .get(parent)
                        .and_then(|ty| ty.field_by_name(&field.name.node))
                    else {
                        continue;
                    };
                    self.arguments(&field.arguments, |name| meta.args.get(name));
                    let child = MetaTypeName::concrete_typename(&meta.ty);
                    self.selections(&field.selection_set.node, child);
                }
                Selection::FragmentSpread(spread) => {
                    let spread = &spread.node;
                    self.directives(&spread.directives);
                    let name = spread.fragment_name.node.as_str();
                    let Some(fragment) = self.document.fragments.get(name) else {
                        continue;
                    };
                    if self.fragments_seen.insert(name) {
                        let fragment = &fragment.node;
                        self.directives(&fragment.directives);
                        let on = fragment.type_condition.node.on.node.as_str();
                        self.selections(&fragment.selection_set.node, on);
                    }
                }
                Selection::InlineFragment(inline) => {
                    let inline = &inline.node;
                    self.directives(&inline.directives);
                    let on = inline
                        .type_condition
                        .as_ref()
                        .map_or(parent, |condition| condition.node.on.node.as_str());
                    self.selections(&inline.selection_set.node, on);
                }
            }
        }
    }

    fn directives(&mut self, directives: &[Positioned<Directive>]) {
        for directive in directives {
            let directive = &directive.node;
            if let Some(meta) = self.registry.directives.get(directive.name.node.as_str()) {
                self.arguments(&directive.arguments, |name| meta.args.get(name));
            }
        }
    }

    fn arguments<'m>(
        &mut self,
        arguments: &[(Positioned<Name>, Positioned<async_graphql_value::Value>)],
        meta: impl Fn(&str) -> Option<&'m MetaInputValue>,
    ) {
        for (name, value) in arguments {
            let Some(argument) = meta(name.node.as_str()) else {
                continue;
            };
            // Most arguments are strings, IDs or enums, which async-graphql checks in full:
            // their values (a variable's megabyte of text, say) are not copied.
            if !may_be_refused(self.registry, &argument.ty) {
                continue;
            }
            let Ok(value) = value
                .node
                .clone()
                .into_const_with(|variable| self.value_of(&variable).ok_or(()))
            else {
                continue;
            };
            let path = QueryPathNode {
                parent: None,
                segment: QueryPathSegment::Name(&argument.name),
            };
            if let Some(reason) = refused(self.registry, &argument.ty, &value, &path) {
                self.found.push(ServerError::new(
                    format!("Invalid value for argument {reason}"),
                    Some(name.pos),
                ));
            }
        }
    }
}

/// Whether a value of `ty` may hold what [`refused`] looks for.
fn may_be_refused(registry: &Registry, ty: &str) -> bool {
    let name = MetaTypeName::concrete_typename(ty);
    name == "Int"
        || name == "DateTime"
        || matches!(registry.types.get(name), Some(MetaType::InputObject { .. }))
}

/// Why `value`, given for a `ty`, is refused, if it is; worded as async-graphql words its
/// own argument errors (`"input.yearOfBirth", expected type "Int"`).
fn refused(
    registry: &Registry,
    ty: &str,
    value: &Value,
    path: &QueryPathNode<'_>,
) -> Option<String> {
    match MetaTypeName::create(ty) {
        MetaTypeName::NonNull(inner) => refused(registry, inner, value, path),
        MetaTypeName::List(item) => match value {
            Value::List(items) => items.iter().enumerate().find_map(|(index, value)| {
                let path = QueryPathNode {
                    parent: Some(path),
                    segment: QueryPathSegment::Index(index),
                };
                refused(registry, item, value, &path)
            }),
            single => refused(registry, item, single, path),
        },
        // A missing value where one is required is async-graphql's to report.
        MetaTypeName::Named(_) if *value == Value::Null => None,
        MetaTypeName::Named(name) => refused_named(registry, name, value, path),
    }
}

/// [`refused`] for a value of the named type `name` (not null).
fn refused_named(
    registry: &Registry,
    name: &str,
    value: &Value,
    path: &QueryPathNode<'_>,
) -> Option<String> {
    match (name, registry.types.get(name), value) {
        ("Int", _, Value::Number(number))
            if number
                .as_i64()
                .is_some_and(|number| i32::try_from(number).is_err()) =>
        {
            Some(format!(
                "\"{path}\", expected type \"Int\": {number} is outside the 32-bit range"
            ))
        }
        ("DateTime", ..) => <DateTime<Utc> as InputType>::parse(Some(value.clone()))
            .err()
            .map(|error| {
                let why = error.into_server_error(Pos::default()).message;
                format!("\"{path}\", expected type \"DateTime\": {why}")
            }),
        (_, Some(MetaType::InputObject { input_fields, .. }), Value::Object(values)) => {
            input_fields.values().find_map(|field| {
                let value = values.get(field.name.as_str())?;
                let path = QueryPathNode {
                    parent: Some(path),
                    segment: QueryPathSegment::Name(&field.name),
                };
                refused(registry, &field.ty, value, &path)
            })
        }
        (_, Some(MetaType::InputObject { .. }), _) => {
            Some(format!("\"{path}\", expected type \"{name}\""))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute};
    use async_graphql::{Request, Response, Value, Variables};

    /// Ends a request after validation: these tests have no services to resolve with.
    struct Unresolved;

    impl ExtensionFactory for Unresolved {
        fn create(&self) -> Arc<dyn Extension> {
            Arc::new(Unresolved)
        }
    }

    #[async_trait::async_trait]
    impl Extension for Unresolved {
        async fn execute(
            &self,
            _ctx: &ExtensionContext<'_>,
            _operation_name: Option<&str>,
            _next: NextExecute<'_>,
        ) -> Response {
            Response::new(Value::Null)
        }
    }

    /// The messages of the errors `query` with `variables` gets.
    fn found(query: &str, variables: serde_json::Value) -> Vec<String> {
        let schema = super::super::builder()
            .extension(super::InputValues)
            .extension(Unresolved)
            .finish();
        let request = Request::new(query).variables(Variables::from_json(variables));
        let response = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
            .block_on(schema.execute(request));
        response
            .errors
            .into_iter()
            .map(|error| error.message)
            .collect()
    }

    #[test]
    fn ints_past_32_bits_are_found_wherever_they_are_given() {
        let none = serde_json::json!({});
        assert_eq!(
            found("{ users(first: 4294967296) { totalCount } }", none.clone()),
            [
                "Invalid value for argument \"first\", expected type \"Int\": 4294967296 is \
                 outside the 32-bit range"
            ]
        );
        assert_eq!(
            found("{ users(first: -2147483649) { totalCount } }", none.clone()).len(),
            1
        );
        for edge in ["2147483647", "-2147483648", "2"] {
            let query = format!("{{ users(first: {edge}) {{ totalCount }} }}");
            assert!(found(&query, none.clone()).is_empty(), "{edge}");
        }
        let variable = "query($n: Int) { users(first: $n) { totalCount } }";
        assert_eq!(
            found(variable, serde_json::json!({ "n": 1u64 << 32 })).len(),
            1
        );
        assert!(found(variable, serde_json::json!({ "n": 7 })).is_empty());
        let defaulted = "query($n: Int = 4294967296) { users(first: $n) { totalCount } }";
        assert_eq!(found(defaulted, none.clone()).len(), 1);
        assert!(found(defaulted, serde_json::json!({ "n": 3 })).is_empty());
        let nested = "mutation($input: ProfileInput!) { updateMyProfile(input: $input) { id } }";
        assert_eq!(
            found(
                nested,
                serde_json::json!({ "input": { "yearOfBirth": 1u64 << 40 } })
            ),
            [
                "Invalid value for argument \"input.yearOfBirth\", expected type \"Int\": \
                 1099511627776 is outside the 32-bit range"
            ]
        );
        let fragment = "query { ...F ...F } fragment F on Query { ... on Query { users(first: 9999999999) { totalCount } } }";
        assert_eq!(found(fragment, none.clone()).len(), 1);
    }

    #[test]
    fn input_objects_get_objects() {
        let none = serde_json::json!({});
        let filter = "query($f: UserFilter) { users(first: 1, filter: $f) { totalCount } }";
        for given in [
            serde_json::json!("x"),
            serde_json::json!(5),
            serde_json::json!([{}]),
        ] {
            assert_eq!(
                found(filter, serde_json::json!({ "f": given })),
                ["Invalid value for argument \"filter\", expected type \"UserFilter\""],
                "{given}"
            );
        }
        assert!(found(filter, serde_json::json!({ "f": {} })).is_empty());
        assert!(found(filter, serde_json::json!({ "f": null })).is_empty());
        assert_eq!(
            found(
                "mutation { updateMyProfile(input: \"x\") { id } }",
                none.clone()
            )
            .len(),
            1
        );
    }

    #[test]
    fn dates_must_parse() {
        let none = serde_json::json!({});
        let audit =
            "query($s: DateTime) { auditLog(first: 1, filter: { since: $s }) { totalCount } }";
        for given in [serde_json::json!("yesterday"), serde_json::json!(5)] {
            let found = found(audit, serde_json::json!({ "s": given }));
            assert_eq!(found.len(), 1, "{given}: {found:?}");
            assert!(
                found[0].starts_with(
                    "Invalid value for argument \"filter.since\", expected type \"DateTime\": "
                ),
                "{found:?}"
            );
        }
        assert!(found(audit, serde_json::json!({ "s": "2026-01-01T00:00:00Z" })).is_empty());
        let inline = "{ auditLog(first: 1, filter: { until: \"soon\" }) { totalCount } }";
        assert_eq!(found(inline, none).len(), 1);
    }

    #[test]
    fn what_the_other_rules_refuse_is_theirs_to_word() {
        let none = serde_json::json!({});
        // An ID may be written as a number of any size.
        assert!(found("{ user(id: 4294967296) { id } }", none.clone()).is_empty());
        // What async-graphql's rules refuse is reported as they word it, and only that.
        assert_eq!(
            found("{ users(first: 1.5) { totalCount } }", none.clone()),
            ["Invalid value for argument \"first\", expected type \"Int\""]
        );
        let unknown = found(
            "{ nothing(first: 4294967296) users(first: 4294967296) { totalCount } }",
            none,
        );
        assert_eq!(unknown.len(), 1, "{unknown:?}");
        assert!(
            unknown[0].starts_with("Unknown field \"nothing\""),
            "{unknown:?}"
        );
    }
}
