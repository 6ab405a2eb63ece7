//! Persisted operations, sent by hash (`extensions.persistedQuery.sha256Hash`).
//!
//! With `USERGRAPH_PERSISTED_OPERATIONS`, only the operations of a manifest run, whatever
//! else a client sends ([`PersistedOperations`]). The manifest is Apollo's
//! (`generate-persisted-query-manifest` writes it): each operation's `id` is the SHA-256 of
//! its `body`, checked at start. A hash alone runs the manifest's text; a text runs only if
//! its hash is listed.
//!
//! Without one, automatic persisted queries ([`AutomaticQueries`]): the protocol of Apollo
//! Client's persisted-query link and urql's `persistedExchange`. A client sends the hash
//! alone; a hash this instance does not know answers `PERSISTED_QUERY_NOT_FOUND`, and the
//! client sends the text with its hash, which is checked and kept. Later requests carry
//! only the hash (a GET then fits in a URL a CDN can cache).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use anyhow::{Context as _, bail};
use async_graphql::Request;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::error::AppError;

/// The manifest's operations by hash (lower-case hex SHA-256 of the text).
#[derive(Debug)]
pub struct PersistedOperations {
    bodies: HashMap<String, String>,
}

#[derive(Deserialize)]
struct Manifest {
    operations: Vec<Operation>,
}

#[derive(Deserialize)]
struct Operation {
    id: String,
    body: String,
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl PersistedOperations {
    /// Reads the manifest at `path`; refuses one whose ids are not the hashes of their bodies.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let context = || format!("USERGRAPH_PERSISTED_OPERATIONS: {}", path.display());
        let text = std::fs::read_to_string(path).with_context(context)?;
        let manifest: Manifest = serde_json::from_str(&text).with_context(context)?;
        let mut bodies = HashMap::new();
        for operation in manifest.operations {
            let hash = sha256_hex(&operation.body);
            if !hash.eq_ignore_ascii_case(&operation.id) {
                bail!(
                    "{}: the id {} is not the SHA-256 of its body ({hash})",
                    context(),
                    operation.id
                );
            }
            bodies.insert(hash, operation.body);
        }
        Ok(Self { bodies })
    }

    /// Lets `request` through with the listed text, or refuses it.
    pub fn resolve(&self, request: &mut Request) -> Result<(), AppError> {
        let hash = hash_of(request)?;
        if request.query.is_empty() {
            let body = hash
                .and_then(|hash| self.bodies.get(&hash))
                .ok_or(AppError::PersistedQueryNotFound)?;
            request.query.clone_from(body);
            return Ok(());
        }
        let actual = sha256_hex(&request.query);
        if hash.is_some_and(|hash| hash != actual) || !self.bodies.contains_key(&actual) {
            return Err(AppError::PersistedQueryNotInList);
        }
        Ok(())
    }
}

/// The hash `request` names in `extensions.persistedQuery` (lower-case), if it names one.
fn hash_of(request: &Request) -> Result<Option<String>, AppError> {
    let Some(async_graphql::Value::Object(fields)) = request.extensions.get("persistedQuery")
    else {
        return Ok(None);
    };
    match fields.get("version") {
        None => {}
        Some(async_graphql::Value::Number(version)) if version.as_u64() == Some(1) => {}
        Some(_) => {
            return Err(AppError::bad_field(
                "extensions.persistedQuery.version",
                "unsupported persisted query version: only 1 is known",
            ));
        }
    }
    Ok(match fields.get("sha256Hash") {
        Some(async_graphql::Value::String(hash)) => Some(hash.to_ascii_lowercase()),
        _ => None,
    })
}

/// Longest text kept, in bytes: a longer one still runs, and its client keeps sending it.
const MAX_TEXT_BYTES: usize = 16 * 1024;
/// Bytes of text kept in all; past this everything is forgotten (clients send their texts
/// again when told the hash is not found), so a flood of texts holds at most this much.
const MAX_KEPT_BYTES: usize = 4 * 1024 * 1024;

/// The texts this instance was sent with their hashes (automatic persisted queries).
#[derive(Debug, Default)]
pub struct AutomaticQueries {
    kept: Mutex<Kept>,
}

#[derive(Debug, Default)]
struct Kept {
    texts: HashMap<String, String>,
    bytes: usize,
}

impl AutomaticQueries {
    /// Puts the kept text of a hash-only `request` in place (`PERSISTED_QUERY_NOT_FOUND`
    /// when there is none); keeps a text sent with its hash, once the hash checks out.
    pub fn resolve(&self, request: &mut Request) -> Result<(), AppError> {
        let Some(hash) = hash_of(request)? else {
            return Ok(());
        };
        if request.query.is_empty() {
            let text = self.kept().texts.get(&hash).cloned();
            request.query = text.ok_or(AppError::PersistedQueryNotFound)?;
            return Ok(());
        }
        if sha256_hex(&request.query) != hash {
            return Err(AppError::bad_field(
                "extensions.persistedQuery.sha256Hash",
                "provided sha does not match query",
            ));
        }
        if request.query.len() <= MAX_TEXT_BYTES {
            let mut kept = self.kept();
            if !kept.texts.contains_key(&hash) {
                if kept.bytes + request.query.len() > MAX_KEPT_BYTES {
                    *kept = Kept::default();
                }
                kept.bytes += request.query.len();
                kept.texts.insert(hash, request.query.clone());
            }
        }
        Ok(())
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by_hash(hash: &str, query: &str) -> Request {
        let mut extensions = async_graphql::indexmap::IndexMap::new();
        extensions.insert(
            async_graphql::Name::new("sha256Hash"),
            async_graphql::Value::from(hash),
        );
        let mut request = Request::new(query);
        request.extensions.insert(
            "persistedQuery".into(),
            async_graphql::Value::Object(extensions),
        );
        request
    }

    #[test]
    fn kept_texts_are_bounded_in_bytes_and_forgotten_together() {
        let queries = AutomaticQueries::default();
        let first = "{ __typename }";
        queries
            .resolve(&mut by_hash(&sha256_hex(first), first))
            .unwrap();
        let mut alone = by_hash(&sha256_hex(first), "");
        queries.resolve(&mut alone).unwrap();
        assert_eq!(alone.query, first);

        // Texts past the longest kept run but are not kept.
        let long = format!("{{ __typename }}{}", " ".repeat(MAX_TEXT_BYTES));
        queries
            .resolve(&mut by_hash(&sha256_hex(&long), &long))
            .unwrap();
        assert!(matches!(
            queries.resolve(&mut by_hash(&sha256_hex(&long), "")),
            Err(AppError::PersistedQueryNotFound)
        ));

        // Filling the store past its bytes forgets everything once, then keeps going.
        for n in 0..(MAX_KEPT_BYTES / MAX_TEXT_BYTES + 1) {
            let text = format!("{{ __typename }}#{n}{}", " ".repeat(MAX_TEXT_BYTES - 40));
            queries
                .resolve(&mut by_hash(&sha256_hex(&text), &text))
                .unwrap();
            assert!(queries.kept().bytes <= MAX_KEPT_BYTES);
        }
        assert!(matches!(
            queries.resolve(&mut by_hash(&sha256_hex(first), "")),
            Err(AppError::PersistedQueryNotFound)
        ));
        assert_eq!(queries.kept().texts.len(), 1);
    }
}
