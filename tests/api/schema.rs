//! `schema.graphql` is generated from the code and must match it, and the schema keeps the
//! shapes of `contract.graphql` (a copy of the shared contract).

use std::collections::BTreeMap;

use async_graphql::Positioned;
use async_graphql::parser::parse_schema;
use async_graphql::parser::types::{FieldDefinition, TypeKind, TypeSystemDefinition};

#[test]
fn schema_graphql_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema.graphql");
    let sdl = usergraph::graphql::sdl();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &sdl).expect("writing schema.graphql");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == sdl,
        "schema.graphql is out of date: run `UPDATE_SCHEMA=1 cargo test schema_graphql_is_current`"
    );
}

/// Every type, field, argument and enum value of the contract, with its type.
fn contract_items(sdl: &str) -> BTreeMap<String, String> {
    let document = parse_schema(sdl).expect("valid SDL");
    let mut items = BTreeMap::new();
    let fields = |owner: &str,
                  list: &[Positioned<FieldDefinition>],
                  items: &mut BTreeMap<String, String>| {
        for field in list {
            let name = &field.node.name.node;
            items.insert(format!("{owner}.{name}"), field.node.ty.node.to_string());
            for arg in &field.node.arguments {
                items.insert(
                    format!("{owner}.{name}({})", arg.node.name.node),
                    arg.node.ty.node.to_string(),
                );
            }
        }
    };
    for definition in document.definitions {
        let TypeSystemDefinition::Type(ty) = definition else {
            continue;
        };
        let owner = ty.node.name.node.to_string();
        match &ty.node.kind {
            TypeKind::Scalar => {
                items.insert(owner, "scalar".into());
            }
            TypeKind::Object(object) => {
                items.insert(owner.clone(), "type".into());
                for interface in &object.implements {
                    items.insert(
                        format!("{owner} implements {}", interface.node),
                        String::new(),
                    );
                }
                fields(&owner, &object.fields, &mut items);
            }
            TypeKind::Interface(interface) => {
                items.insert(owner.clone(), "interface".into());
                fields(&owner, &interface.fields, &mut items);
            }
            TypeKind::Union(_) => {
                items.insert(owner, "union".into());
            }
            TypeKind::Enum(values) => {
                items.insert(owner.clone(), "enum".into());
                for value in &values.values {
                    items.insert(format!("{owner}.{}", value.node.value.node), "value".into());
                }
            }
            TypeKind::InputObject(input) => {
                items.insert(owner.clone(), "input".into());
                for field in &input.fields {
                    items.insert(
                        format!("{owner}.{}", field.node.name.node),
                        field.node.ty.node.to_string(),
                    );
                }
            }
        }
    }
    items
}

/// Everything of the contract is in the schema, with the contract's exact name,
/// type, nullability and arguments, and nothing of it is missing.
#[test]
fn schema_keeps_the_contract_shapes() {
    let contract = contract_items(include_str!("../contract.graphql"));
    let ours = contract_items(&usergraph::graphql::sdl());
    let mut missing = Vec::new();
    for (item, shape) in &contract {
        match ours.get(item) {
            Some(our_shape) => assert_eq!(our_shape, shape, "`{item}` differs from the contract"),
            None => missing.push(item.as_str()),
        }
    }
    assert!(
        missing.is_empty(),
        "contract items missing from the schema: {missing:?}"
    );
}
