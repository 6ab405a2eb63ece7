//! Documents that passed validation, remembered so that the next request with the same
//! document skips async-graphql's rules.
//!
//! Validation was a quarter of the server's work for a one-account query (callgrind: 72k of
//! about 290k instructions a request), done again for every request although clients send
//! the same few documents over and over. Its outcome depends on the document, the operation
//! picked and, through the rule that checks argument values, on the variables: a `String`
//! or `ID` variable passes whatever its text (only its kind matters), any other value may
//! pass or fail on its content. So the key is the document, the operation's name and each
//! declared variable's kind, or its whole value where the content counts. A remembered
//! request runs on a second schema built with [`ValidationMode::Fast`]: the executor still
//! checks what it needs (fragment cycles, uploads), the rules that already passed for this
//! key are skipped.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Mutex;

use async_graphql::parser::types::{BaseType, OperationDefinition};
use async_graphql::{Request, ValidationMode, Value, Variables};

use super::AppSchema;

/// Most keys kept; when full, all are forgotten (the next requests validate in full once).
const CAPACITY: usize = 512;
/// Longest key kept, in bytes: a key holds the document, and what varies of the variables.
const MAX_KEY_BYTES: usize = 8 * 1024;

/// The documents known to pass validation, and the schema that runs them without it.
pub struct Validated {
    lenient: AppSchema,
    known: Mutex<HashSet<String>>,
}

/// Which schema runs a request, and what to remember if it passes.
pub enum Pick {
    /// The same key passed before: the lenient schema runs it.
    Known,
    /// New (or not to be remembered): the full rules run; the key to remember, if any.
    Check(Option<String>),
}

impl Validated {
    /// `lenient` must be the served schema built with [`Validated::MODE`].
    pub fn new(lenient: AppSchema) -> Self {
        Self {
            lenient,
            known: Mutex::new(HashSet::new()),
        }
    }

    /// The validation mode of the lenient schema: what the executor relies on, without
    /// the rules.
    pub const MODE: ValidationMode = ValidationMode::Fast;

    /// Whether `request` is known to pass validation.
    pub fn pick(&self, request: &mut Request) -> Pick {
        let Some(key) = key(request) else {
            return Pick::Check(None);
        };
        if self.known().contains(&key) {
            Pick::Known
        } else {
            Pick::Check(Some(key))
        }
    }

    /// The schema that runs remembered requests.
    pub fn lenient(&self) -> &AppSchema {
        &self.lenient
    }

    /// Remembers `key`, whose request ran without any error (so it passed validation).
    pub fn remember(&self, key: String) {
        let mut known = self.known();
        if known.len() >= CAPACITY {
            known.clear();
        }
        known.insert(key);
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The request's key: its document, operation name and variables as far as validation
/// reads them; `None` when the document does not parse or the key would be too long.
fn key(request: &mut Request) -> Option<String> {
    let variables = std::mem::take(&mut request.variables);
    let name = request.operation_name.clone();
    let name_text = name.as_deref().unwrap_or_default();
    let mut key = String::with_capacity(request.query.len() + name_text.len() + 64);
    // Lengths first: no choice of document and name can spell another's key.
    let _ = write!(key, "{}:{}:", request.query.len(), name_text.len());
    key.push_str(&request.query);
    key.push_str(name_text);
    let described = super::operation_of(request)
        .is_some_and(|op| describe_variables(&op.node, &variables, &mut key));
    request.variables = variables;
    (described && key.len() <= MAX_KEY_BYTES).then_some(key)
}

/// Appends what validation may read of each declared variable; false when a value is too
/// long to be part of a key.
fn describe_variables(op: &OperationDefinition, variables: &Variables, key: &mut String) -> bool {
    for definition in &op.variable_definitions {
        let definition = &definition.node;
        key.push('\0');
        key.push_str(&definition.name.node);
        let text_only = matches!(
            &definition.var_type.node.base,
            BaseType::Named(name) if name == "String" || name == "ID"
        );
        match variables.get(&definition.name.node) {
            None => key.push_str("=absent"),
            Some(Value::String(_)) if text_only => key.push_str("=text"),
            Some(value) => {
                if write!(key, "={value}").is_err() || key.len() > MAX_KEY_BYTES {
                    return false;
                }
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(query: &str, variables: serde_json::Value) -> Option<String> {
        let mut request = Request::new(query).variables(Variables::from_json(variables));
        key(&mut request)
    }

    const QUERY: &str = "query($id: ID!, $n: Int) { user(id: $id) { id } }";

    #[test]
    fn text_of_a_string_or_id_does_not_count() {
        assert_eq!(
            key_of(QUERY, serde_json::json!({ "id": "a", "n": 1 })),
            key_of(QUERY, serde_json::json!({ "id": "b", "n": 1 })),
        );
    }

    #[test]
    fn kinds_absence_and_other_values_count() {
        let base = key_of(QUERY, serde_json::json!({ "id": "a", "n": 1 }));
        for other in [
            serde_json::json!({ "id": 7, "n": 1 }),
            serde_json::json!({ "id": null, "n": 1 }),
            serde_json::json!({ "n": 1 }),
            serde_json::json!({ "id": "a", "n": 2 }),
            serde_json::json!({ "id": "a", "n": 4_294_967_296u64 }),
        ] {
            assert_ne!(key_of(QUERY, other.clone()), base, "{other}");
        }
    }

    #[test]
    fn no_key_for_what_does_not_parse_or_is_too_long() {
        assert_eq!(key_of("{ user(", serde_json::json!({})), None);
        let long = "x".repeat(MAX_KEY_BYTES);
        assert_eq!(
            key_of(
                "query($n: [String]) { me { id } }",
                serde_json::json!({ "n": [long] })
            ),
            None
        );
        assert!(
            key_of(
                "query($n: String) { me { id } }",
                serde_json::json!({ "n": long })
            )
            .is_some()
        );
    }
}
