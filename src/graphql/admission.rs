//! What every GraphQL document must pass before async-graphql parses and runs it.
//!
//! async-graphql's parser is recursive: a value nested a few thousand levels deep overflows
//! the stack and aborts the process, and its depth and complexity checks walk fragments once
//! per spread, so a handful of fragments that spread each other twice cost exponential time.
//! [`admit`] guards against both in linear time: a scan of the raw text bounds its nesting
//! before anything recursive runs, and one pass over the parsed document (each fragment
//! measured once) bounds the selection depth, the number of fields once fragments are
//! expanded, the nesting of selection sets, and how far introspection may loop through the
//! type graph. It also refuses control characters in every string a client sends, so none
//! reaches a database. It is the only place these limits are enforced: async-graphql's own
//! depth and complexity limits are off (see `build_schema`).
//!
//! Introspection is measured apart from user data: its shape is bounded by the schema, and
//! the standard introspection query of graphql-js (what GraphiQL, code generators and IDE
//! plugins send) is deeper than any query of user data needs to be.

use std::collections::HashMap;
use std::sync::Mutex;

use async_graphql::parser::types::{ExecutableDocument, Field, Selection, SelectionSet};
use async_graphql::{Name, Positioned, Request};
use async_graphql_value::{ConstValue, Value};

use super::persisted::{AutomaticQueries, PersistedOperations};
use crate::domain::clean;
use crate::error::AppError;

/// Deepest nesting of braces, brackets and parentheses accepted in a document's text. Far
/// above what any honest operation needs (the introspection query nests about 20 deep), far
/// below what would exhaust a worker thread's stack in the parser.
pub const MAX_NESTING: usize = 64;

/// Longest chain of fragments spreading fragments.
pub const MAX_FRAGMENT_CHAIN: usize = 32;

/// Deepest nesting of selection sets, each field with a selection, inline fragment and
/// fragment spread one level, as async-graphql counts its recursion depth. The schema is
/// built with this same limit, so every document async-graphql would refuse for its depth
/// is refused here first, with `QUERY_TOO_COMPLEX`; only a fragment cycle reaches
/// async-graphql's check, and that is a validation error.
pub const MAX_LEVELS: usize = 32;

/// How many of introspection's list fields (`fields`, `interfaces`, `possibleTypes`,
/// `inputFields`) may nest inside one another, as graphql-js's `MaxIntrospectionDepthRule`
/// allows: enough for every standard introspection query, too few to multiply the whole
/// type graph by itself.
pub const MAX_INTROSPECTION_LISTS: usize = 3;

const INTROSPECTION_LISTS: [&str; 4] = ["fields", "interfaces", "possibleTypes", "inputFields"];

/// The mutations that hash a password (argon2: tens of milliseconds of a core and 19 MiB
/// each) or create an account. Aliases would let one request run hundreds of them.
pub const COSTLY_FIELDS: [&str; 7] = [
    "login",
    "register",
    "changePassword",
    "resetPassword",
    "deleteMyAccount",
    "createUser",
    "reauthenticate",
];

/// The limits a document is held to, from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Deepest selection of user data; introspection is bounded separately.
    pub max_depth: usize,
    /// Most fields once fragments are expanded (async-graphql's complexity, one per field).
    pub max_fields: usize,
    /// Most [`COSTLY_FIELDS`] in one request, aliases and every operation of a batch counted.
    pub max_costly: usize,
    /// Most aliases in one document, fragments expanded.
    pub max_aliases: usize,
    /// Most root fields of one operation, fragments expanded.
    pub max_root_fields: usize,
    /// Most directives on one field, fragment or operation.
    pub max_directives: usize,
    /// Longest document text, in bytes.
    pub max_query_bytes: usize,
}

/// The refusal of a request with more than `max` [`COSTLY_FIELDS`].
pub fn too_costly(max: usize) -> AppError {
    AppError::QueryTooComplex(format!(
        "a request may check a password or create an account at most {max} times \
         (login, register, changePassword, resetPassword, deleteMyAccount, createUser, reauthenticate)"
    ))
}

/// Most documents remembered as admitted; beyond this the memory starts over.
const REMEMBERED: usize = 1_000;

/// Longest document text worth remembering (clients send the same few operations).
const REMEMBERED_TEXT: usize = 16 * 1024;

/// The admission checks, with the documents that passed them: parsing costs more than the
/// rest of a small query (pest: about a tenth of Q1's CPU), and clients send the same few
/// operations again and again, so a text seen before is not parsed or measured again.
pub struct Admission {
    limits: Limits,
    /// The only operations accepted, when there is such a list.
    persisted: Option<PersistedOperations>,
    /// Texts clients sent with their hashes, when there is no list.
    automatic: AutomaticQueries,
    /// Each admitted document with its count of [`COSTLY_FIELDS`].
    admitted: Mutex<HashMap<String, (ExecutableDocument, usize)>>,
}

impl Admission {
    /// Admission under `limits`, remembering nothing yet.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            persisted: None,
            automatic: AutomaticQueries::default(),
            admitted: Mutex::new(HashMap::new()),
        }
    }

    /// The same checks, accepting only the operations of `persisted`.
    pub fn only(self, persisted: PersistedOperations) -> Self {
        Self {
            persisted: Some(persisted),
            ..self
        }
    }

    /// Checks `request` and, when it passes, stores its parsed document so it is parsed
    /// once; answers how many [`COSTLY_FIELDS`] it holds (a batch's must not add up to more
    /// than the limit either). A document that does not parse is left for async-graphql to
    /// report with positions.
    pub fn admit(&self, request: &mut Request) -> Result<usize, AppError> {
        match &self.persisted {
            Some(persisted) => persisted.resolve(request)?,
            None => self.automatic.resolve(request)?,
        }
        // An unknown name is echoed back in async-graphql's error: a megabyte would be too.
        if let Some(name) = &request.operation_name {
            crate::domain::bounded("operationName", name, crate::domain::bounds::OPERATION_NAME)?;
        }
        // Said plainly: the parser's answer to nothing is a dump of its grammar position.
        if request.query.trim().is_empty() {
            return Err(AppError::bad_field(
                "query",
                "is empty: send a GraphQL document, or a persisted query's hash",
            ));
        }
        if request.query.len() > self.limits.max_query_bytes {
            return Err(AppError::QueryTooComplex(format!(
                "the query text is {} bytes long; at most {} are accepted",
                request.query.len(),
                self.limits.max_query_bytes
            )));
        }
        let known = self.remembered().get(&request.query).cloned();
        if let Some((document, costly)) = known {
            // The text passed before; only the variables are new.
            check_strings(&document, &request.variables)?;
            request.set_parsed_query(document);
            return Ok(costly);
        }
        check_nesting(&request.query)?;
        let Ok(document) = async_graphql::parser::parse_query(&request.query) else {
            return Ok(0);
        };
        check_shape(&document, self.limits)?;
        let costly = count_costly(&document);
        if costly > self.limits.max_costly {
            return Err(too_costly(self.limits.max_costly));
        }
        check_strings(&document, &request.variables)?;
        if request.query.len() <= REMEMBERED_TEXT {
            let mut remembered = self.remembered();
            if remembered.len() >= REMEMBERED {
                remembered.clear();
            }
            remembered.insert(request.query.clone(), (document.clone(), costly));
        }
        request.set_parsed_query(document);
        Ok(costly)
    }

    /// The most [`COSTLY_FIELDS`] one request may hold.
    pub fn max_costly(&self) -> usize {
        self.limits.max_costly
    }

    fn remembered(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, (ExecutableDocument, usize)>> {
        self.admitted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Refuses a text whose braces, brackets and parentheses (outside strings and comments)
/// nest deeper than [`MAX_NESTING`]. One pass over the bytes, no allocation.
fn check_nesting(text: &str) -> Result<(), AppError> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                // A block string ends at the next `"""` not escaped as `\"""`.
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    i += if bytes[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && !matches!(bytes[i], b'"' | b'\n' | b'\r') {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(AppError::QueryTooComplex(format!(
                        "the document nests braces, brackets and parentheses more than \
                         {MAX_NESTING} deep"
                    )));
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// What one selection set amounts to once its fragments are expanded.
#[derive(Debug, Clone, Copy, Default)]
struct Shape {
    /// Deepest field nesting of user data.
    depth: usize,
    /// Fields in all.
    fields: usize,
    /// Deepest nesting of introspection's list fields.
    lists: usize,
    /// Deepest nesting of selection sets ([`MAX_LEVELS`]).
    levels: usize,
    /// Aliased fields in all.
    aliases: usize,
    /// Fields at this level (the root fields of an operation's selection set).
    top: usize,
}

impl Shape {
    fn merge(&mut self, other: Self) {
        self.depth = self.depth.max(other.depth);
        self.lists = self.lists.max(other.lists);
        self.levels = self.levels.max(other.levels);
        self.fields = self.fields.saturating_add(other.fields);
        self.aliases = self.aliases.saturating_add(other.aliases);
        self.top = self.top.saturating_add(other.top);
    }

    /// The same selections one selection set further in.
    fn nested(self) -> Self {
        Self {
            levels: self.levels + 1,
            ..self
        }
    }
}

fn check_shape(document: &ExecutableDocument, limits: Limits) -> Result<(), AppError> {
    let mut measure = Measure {
        document,
        fragments: HashMap::new(),
        chain: 0,
        max_directives: limits.max_directives,
    };
    let mut shape = Shape::default();
    for (_, operation) in document.operations.iter() {
        measure.directives(&operation.node.directives)?;
        let operation = measure.set(&operation.node.selection_set.node)?;
        if operation.top > limits.max_root_fields {
            return Err(AppError::QueryTooComplex(format!(
                "an operation selects {} root fields; at most {} are allowed",
                operation.top, limits.max_root_fields
            )));
        }
        shape.merge(operation);
    }
    if shape.levels > MAX_LEVELS {
        return Err(AppError::QueryTooComplex(format!(
            "the query nests selection sets and fragments more than {MAX_LEVELS} deep"
        )));
    }
    if shape.depth > limits.max_depth {
        return Err(AppError::QueryTooComplex(format!(
            "the query is nested {} levels deep; at most {} are allowed",
            shape.depth, limits.max_depth
        )));
    }
    if shape.aliases > limits.max_aliases {
        return Err(AppError::QueryTooComplex(format!(
            "the query uses {} aliases once its fragments are expanded; at most {} are allowed",
            shape.aliases, limits.max_aliases
        )));
    }
    if shape.fields > limits.max_fields {
        return Err(AppError::QueryTooComplex(format!(
            "the query selects more than {} fields once its fragments are expanded",
            limits.max_fields
        )));
    }
    Ok(())
}

/// Measures selection sets, each fragment once.
struct Measure<'a> {
    document: &'a ExecutableDocument,
    /// Measured fragments; `None` while one is being measured (a cycle, which async-graphql's
    /// validation then reports by name).
    fragments: HashMap<&'a str, Option<Shape>>,
    /// Fragments being measured now, one inside the other.
    chain: usize,
    /// Most directives in one place.
    max_directives: usize,
}

impl<'a> Measure<'a> {
    fn set(&mut self, set: &'a SelectionSet) -> Result<Shape, AppError> {
        let mut shape = Shape::default();
        for item in &set.items {
            shape.merge(match &item.node {
                Selection::Field(field) => self.field(&field.node)?,
                Selection::InlineFragment(inline) => {
                    self.directives(&inline.node.directives)?;
                    self.set(&inline.node.selection_set.node)?.nested()
                }
                Selection::FragmentSpread(spread) => {
                    self.directives(&spread.node.directives)?;
                    self.fragment(spread.node.fragment_name.node.as_str())?
                        .nested()
                }
            });
        }
        Ok(shape)
    }

    fn directives(
        &self,
        directives: &[Positioned<async_graphql::parser::types::Directive>],
    ) -> Result<(), AppError> {
        if directives.len() > self.max_directives {
            return Err(AppError::QueryTooComplex(format!(
                "a field, fragment or operation carries {} directives; at most {} are allowed",
                directives.len(),
                self.max_directives
            )));
        }
        Ok(())
    }

    fn field(&mut self, field: &'a Field) -> Result<Shape, AppError> {
        self.directives(&field.directives)?;
        let children = self.set(&field.selection_set.node)?;
        let aliases = children
            .aliases
            .saturating_add(usize::from(field.alias.is_some()));
        let name = field.name.node.as_str();
        let fields = children.fields.saturating_add(1);
        let levels = if field.selection_set.node.items.is_empty() {
            0
        } else {
            children.levels + 1
        };
        if matches!(name, "__schema" | "__type") {
            if children.lists >= MAX_INTROSPECTION_LISTS {
                return Err(AppError::QueryTooComplex(format!(
                    "introspection may nest `fields`, `interfaces`, `possibleTypes` and \
                     `inputFields` at most {} deep",
                    MAX_INTROSPECTION_LISTS - 1
                )));
            }
            return Ok(Shape {
                depth: 1,
                fields,
                lists: 0,
                levels,
                aliases,
                top: 1,
            });
        }
        Ok(Shape {
            depth: children.depth + 1,
            fields,
            lists: children.lists + usize::from(INTROSPECTION_LISTS.contains(&name)),
            levels,
            aliases,
            top: 1,
        })
    }

    fn fragment(&mut self, name: &'a str) -> Result<Shape, AppError> {
        if let Some(known) = self.fragments.get(name) {
            return Ok(known.unwrap_or_default());
        }
        let Some(definition) = self.document.fragments.get(name) else {
            return Ok(Shape::default());
        };
        if self.chain >= MAX_FRAGMENT_CHAIN {
            return Err(AppError::QueryTooComplex(format!(
                "fragments spread one another more than {MAX_FRAGMENT_CHAIN} deep"
            )));
        }
        self.directives(&definition.node.directives)?;
        self.fragments.insert(name, None);
        self.chain += 1;
        let shape = self.set(&definition.node.selection_set.node);
        self.chain -= 1;
        let shape = shape?;
        self.fragments.insert(name, Some(shape));
        Ok(shape)
    }
}

/// How many [`COSTLY_FIELDS`] the root selections of every operation hold, aliases and
/// fragments expanded (each fragment counted once and multiplied by its spreads, so a
/// fragment bomb is counted in linear time; a fragment cycle counts nothing, validation
/// refuses it). Every operation of the document counts, not only the one that will run.
fn count_costly(document: &ExecutableDocument) -> usize {
    fn count_in<'a>(
        document: &'a ExecutableDocument,
        set: &'a SelectionSet,
        fragments: &mut HashMap<&'a str, Option<usize>>,
    ) -> usize {
        set.items.iter().fold(0usize, |total, item| {
            total.saturating_add(match &item.node {
                Selection::Field(field) => {
                    usize::from(COSTLY_FIELDS.contains(&field.node.name.node.as_str()))
                }
                Selection::InlineFragment(inline) => {
                    count_in(document, &inline.node.selection_set.node, fragments)
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    match fragments.get(name) {
                        Some(known) => known.unwrap_or(0),
                        None => {
                            fragments.insert(name, None);
                            let count = document.fragments.get(name).map_or(0, |f| {
                                count_in(document, &f.node.selection_set.node, fragments)
                            });
                            fragments.insert(name, Some(count));
                            count
                        }
                    }
                }
            })
        })
    }
    let mut fragments = HashMap::new();
    document
        .operations
        .iter()
        .map(|(_, op)| count_in(document, &op.node.selection_set.node, &mut fragments))
        .fold(0usize, usize::saturating_add)
}

/// Refuses `text` if it holds a control character; the error names the innermost input
/// field around it.
fn check_text(field: &str, text: &str) -> Result<(), AppError> {
    clean(field, text)?;
    Ok(())
}

/// Refuses control characters in the variables and in every literal argument.
fn check_strings(
    document: &ExecutableDocument,
    variables: &async_graphql::Variables,
) -> Result<(), AppError> {
    for (name, value) in variables.iter() {
        check_const(name.as_str(), value)?;
    }
    let mut sets: Vec<&SelectionSet> = Vec::new();
    for (_, operation) in document.operations.iter() {
        for definition in &operation.node.variable_definitions {
            if let Some(default) = &definition.node.default_value {
                check_const(definition.node.name.node.as_str(), &default.node)?;
            }
        }
        check_directives(&operation.node.directives)?;
        sets.push(&operation.node.selection_set.node);
    }
    for fragment in document.fragments.values() {
        check_directives(&fragment.node.directives)?;
        sets.push(&fragment.node.selection_set.node);
    }
    // Iterative: selection sets nest, and the stack is what this module protects.
    while let Some(set) = sets.pop() {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    check_arguments(&field.node.arguments)?;
                    check_directives(&field.node.directives)?;
                    sets.push(&field.node.selection_set.node);
                }
                Selection::InlineFragment(inline) => {
                    check_directives(&inline.node.directives)?;
                    sets.push(&inline.node.selection_set.node);
                }
                Selection::FragmentSpread(spread) => check_directives(&spread.node.directives)?,
            }
        }
    }
    Ok(())
}

fn check_directives(
    directives: &[Positioned<async_graphql::parser::types::Directive>],
) -> Result<(), AppError> {
    directives
        .iter()
        .try_for_each(|d| check_arguments(&d.node.arguments))
}

fn check_arguments(arguments: &[(Positioned<Name>, Positioned<Value>)]) -> Result<(), AppError> {
    arguments
        .iter()
        .try_for_each(|(name, value)| check_value(name.node.as_str(), &value.node))
}

// Values nest at most MAX_NESTING deep (the text was scanned) and variables at most as deep
// as serde_json allows (128), so recursion is safe here.
fn check_value(field: &str, value: &Value) -> Result<(), AppError> {
    match value {
        Value::String(text) => check_text(field, text),
        Value::List(items) => items.iter().try_for_each(|v| check_value(field, v)),
        Value::Object(map) => map
            .iter()
            .try_for_each(|(key, v)| check_value(key.as_str(), v)),
        _ => Ok(()),
    }
}

fn check_const(field: &str, value: &ConstValue) -> Result<(), AppError> {
    match value {
        ConstValue::String(text) => check_text(field, text),
        ConstValue::List(items) => items.iter().try_for_each(|v| check_const(field, v)),
        ConstValue::Object(map) => map
            .iter()
            .try_for_each(|(key, v)| check_const(key.as_str(), v)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_depth: 12,
        max_fields: 1000,
        max_costly: 2,
        max_aliases: 3,
        max_root_fields: 4,
        max_directives: 2,
        max_query_bytes: 200,
    };

    fn refusal(query: &str) -> Option<String> {
        let mut request = Request::new(query);
        Admission::new(LIMITS)
            .admit(&mut request)
            .err()
            .map(|error| error.to_string())
    }

    #[test]
    fn each_limit_has_its_own_refusal() {
        assert_eq!(
            refusal("{ a: __typename b: __typename c: __typename }"),
            None
        );
        let aliases = refusal(
            "{ a: __typename ...F } fragment F on Query { b: __typename c: __typename d: __typename }",
        );
        assert!(aliases.is_some_and(|m| m.contains("4 aliases")));
        let roots =
            refusal("{ __typename __typename ... on Query { __typename __typename __typename } }");
        assert!(roots.is_some_and(|m| m.contains("5 root fields")));
        // Nested fields are not root fields.
        assert_eq!(
            refusal("{ __schema { types { name kind description fields { name } } } }"),
            None
        );
        let directives =
            refusal("{ __typename @skip(if: false) @include(if: true) @skip(if: false) }");
        assert!(directives.is_some_and(|m| m.contains("3 directives")));
        let on_fragment = refusal("{ ...F } fragment F on Query @a @b @c { __typename }");
        assert!(on_fragment.is_some_and(|m| m.contains("3 directives")));
        let long = format!("{{ __typename }} # {}", "x".repeat(200));
        assert!(refusal(&long).is_some_and(|m| m.contains("bytes long")));
    }

    fn nested(open: &str, close: &str, depth: usize) -> String {
        format!(
            "{{__typename(x:{}1{})}}",
            open.repeat(depth),
            close.repeat(depth)
        )
    }

    #[test]
    fn nesting_is_counted_outside_strings_and_comments() {
        assert!(check_nesting(&nested("[", "]", MAX_NESTING - 3)).is_ok());
        assert!(check_nesting(&nested("[", "]", MAX_NESTING)).is_err());
        let quoted = format!("{{ a(x: \"{}\") }}", "[".repeat(1000));
        assert!(check_nesting(&quoted).is_ok());
        let escaped = format!("{{ a(x: \"\\\"{}\") }}", "{".repeat(1000));
        assert!(check_nesting(&escaped).is_ok());
        let block = format!("{{ a(x: \"\"\" \\\"\"\" {} \"\"\") }}", "(".repeat(1000));
        assert!(check_nesting(&block).is_ok());
        let comment = format!("# {}\n{{ a }}", "{".repeat(1000));
        assert!(check_nesting(&comment).is_ok());
    }

    #[test]
    fn fragment_bombs_are_measured_in_linear_time() {
        // Each fragment spreads the next one twice: 2^30 fields if expanded naively.
        let mut query = String::from("{ ...F0 }\n");
        for i in 0..30 {
            query.push_str(&format!(
                "fragment F{i} on Query {{ ...F{} ...F{} }}\n",
                i + 1,
                i + 1
            ));
        }
        query.push_str("fragment F30 on Query { __typename }\n");
        let document = async_graphql::parser::parse_query(&query).unwrap();
        let limits = LIMITS;
        let error = check_shape(&document, limits).unwrap_err();
        assert!(matches!(error, AppError::QueryTooComplex(_)), "{error}");
    }

    fn costly(query: &str) -> usize {
        count_costly(&async_graphql::parser::parse_query(query).unwrap())
    }

    #[test]
    fn costly_fields_are_counted_through_aliases_fragments_and_operations() {
        let cases = [
            (
                "mutation { a: login(input: {}) { accessToken } b: login(input: {}) { accessToken } }",
                2,
            ),
            (
                "mutation { ...F ...F } fragment F on Mutation { register(input: {}) { accessToken } }",
                2,
            ),
            (
                "mutation A { ... on Mutation { deleteMyAccount(password: \"x\") } } mutation B { logout(refreshToken: \"x\") }",
                1,
            ),
            (
                "query Q { me { id } } mutation M { createUser(input: {}) { id } changePassword(input: {}) }",
                2,
            ),
            // A cycle counts what lies outside it.
            (
                "mutation { ...A } fragment A on Mutation { ...B login(input: {}) { accessToken } } fragment B on Mutation { ...A }",
                1,
            ),
        ];
        for (query, expected) in cases {
            assert_eq!(costly(query), expected, "{query}");
        }
    }

    #[test]
    fn costly_fields_of_a_fragment_bomb_are_counted_in_linear_time() {
        // Each fragment spreads the next twice: 2^40 logins if expanded naively.
        let mut bomb = String::from("mutation { ...F0 }\n");
        for i in 0..40 {
            bomb.push_str(&format!(
                "fragment F{i} on Mutation {{ ...F{n} ...F{n} }}\n",
                n = i + 1
            ));
        }
        bomb.push_str("fragment F40 on Mutation { login(input: {}) { accessToken } }\n");
        assert_eq!(costly(&bomb), 1 << 40);
    }

    #[test]
    fn control_characters_are_refused_wherever_they_hide() {
        let document =
            async_graphql::parser::parse_query("{ a(input: { deep: [\"ok\", \"no\\u0000\"] }) }")
                .unwrap();
        let error = check_strings(&document, &async_graphql::Variables::default()).unwrap_err();
        let AppError::BadUserInput(fields) = error else {
            panic!("{error}");
        };
        assert_eq!(fields[0].field, "deep");
        let fine = async_graphql::parser::parse_query("{ a(x: \"tab\\tand\\nline\") }").unwrap();
        assert!(check_strings(&fine, &async_graphql::Variables::default()).is_ok());
    }
}
