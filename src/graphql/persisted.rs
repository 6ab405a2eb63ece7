//! Persisted operations: with `USERGRAPH_PERSISTED_OPERATIONS`, only the operations of a
//! manifest run, whatever else a client sends.
//!
//! The manifest is Apollo's (`generate-persisted-query-manifest` writes it): each operation's
//! `id` is the SHA-256 of its `body`, checked at start. Clients send the hash the way
//! automatic persisted queries do, `extensions.persistedQuery.sha256Hash`, with or without
//! the text: a hash alone runs the manifest's text; a text runs only if its hash is listed.

use std::collections::HashMap;
use std::path::Path;

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
        let hash = request
            .extensions
            .get("persistedQuery")
            .and_then(|pq| match pq {
                async_graphql::Value::Object(fields) => fields.get("sha256Hash").cloned(),
                _ => None,
            })
            .and_then(|hash| match hash {
                async_graphql::Value::String(hash) => Some(hash.to_ascii_lowercase()),
                _ => None,
            });
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
