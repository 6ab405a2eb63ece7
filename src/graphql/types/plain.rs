//! Accounts answered without the executor's work per field, when the selection asks only
//! for values already in memory.
//!
//! async-graphql resolves every field of every object through a boxed future, a task in a
//! `FuturesUnordered` and an `IndexMap` insert: a page of 50 accounts with their profiles
//! and roles cost about 3.1M instructions (callgrind), of which the statements and their rows
//! were 0.3M. A listed account holds its row, profile and roles already, so when a selection
//! is *plain* (fields only: no fragments, no directives, no arguments, no response key twice)
//! and names only fields whose value is at hand (a private field only when the caller may
//! see it), the answer is built here directly. Anything else goes through `User`'s own
//! resolvers, which give the same answer and every error; a test compares both ways.

use std::borrow::Cow;

use async_graphql::parser::types::{Field, Selection, SelectionSet};
use async_graphql::registry::Registry;
use async_graphql::{
    ContextSelectionSet, Name, OutputType, Positioned, ScalarType, ServerResult, Value,
};
use async_graphql_value::indexmap::IndexMap;

use super::user::User;

/// A `User` as the schema has it, answered directly when the selection lets it.
pub struct Direct(pub User);

impl OutputType for Direct {
    fn type_name() -> Cow<'static, str> {
        User::type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        User::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        match self.0.plain(&ctx.item.node) {
            Some(value) => Ok(value),
            None => OutputType::resolve(&self.0, ctx, field).await,
        }
    }
}

/// Builds an object from a plain selection, asking `value` for each field's value by name
/// and selection; `None` when the selection is not plain or a field's value is not at hand.
pub fn object(
    set: &SelectionSet,
    type_name: &str,
    mut value: impl FnMut(&str, &SelectionSet) -> Option<Value>,
) -> Option<Value> {
    let mut object = IndexMap::with_capacity(set.items.len());
    for item in &set.items {
        let Selection::Field(field) = &item.node else {
            return None;
        };
        let field = &field.node;
        if !field.directives.is_empty() || !field.arguments.is_empty() {
            return None;
        }
        let name = field.name.node.as_str();
        let answer = if name == "__typename" {
            Value::String(type_name.to_owned())
        } else {
            value(name, &field.selection_set.node)?
        };
        let key: Name = field.response_key().node.clone();
        if object.insert(key, answer).is_some() {
            return None;
        }
    }
    Some(Value::Object(object))
}

/// A scalar as its resolver would answer it.
pub fn scalar<T: ScalarType>(value: &T) -> Value {
    value.to_value()
}

/// An optional scalar as its resolver would answer it.
pub fn optional<T: ScalarType>(value: Option<&T>) -> Value {
    value.map_or(Value::Null, scalar)
}

/// An optional text as its resolver would answer it.
pub fn text(value: Option<&str>) -> Value {
    value.map_or(Value::Null, |text| Value::String(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;
    use async_graphql::parser::types::DocumentOperations;

    use super::*;

    /// The answer of `object` to the first operation of `query`, every field's value its
    /// name (and `None` for a field named `missing`).
    fn answer(query: &str) -> Option<Value> {
        let document = parse_query(query).unwrap();
        let DocumentOperations::Single(operation) = &document.operations else {
            panic!("one operation");
        };
        object(&operation.node.selection_set.node, "User", |name, _| {
            (name != "missing").then(|| Value::String(name.to_owned()))
        })
    }

    #[test]
    fn plain_selections_are_answered_with_aliases_and_typename_in_order() {
        let value = answer("{ b: id __typename email a: id }").unwrap();
        assert_eq!(
            value.to_string(),
            r#"{b: "id", __typename: "User", email: "email", a: "id"}"#
        );
    }

    #[test]
    fn anything_else_is_left_to_the_resolvers() {
        for query in [
            "{ id ... on User { email } }",
            "{ id ...Rest } fragment Rest on User { email }",
            "{ id @include(if: true) }",
            "{ roles(first: 1) { id } }",
            "{ id id }",
            "{ a: id a: email }",
            "{ id missing }",
        ] {
            assert_eq!(answer(query), None, "{query}");
        }
    }
}
