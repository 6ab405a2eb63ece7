//! Listing accounts: keyset paging in every order, both ways, with filters and search.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, error_code};

both_backends!(
    paging_visits_everyone_once_in_every_order,
    filters_and_search,
    lists_carry_each_accounts_own_profile_and_roles,
    plain_selections_get_the_answers_of_the_resolvers,
);

const PAGE: &str = "query($first: Int, $after: String, $last: Int, $before: String, $filter: UserFilter, $order: UserOrder) {
    users(first: $first, after: $after, last: $last, before: $before, filter: $filter, orderBy: $order) {
        totalCount
        edges { cursor node { id email createdAt profile { displayName } } }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
}";

fn nodes(answer: &Value) -> Vec<Value> {
    answer["data"]["users"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

/// Every account of the listing, read forwards `size` at a time.
async fn forwards(
    app: &TestApp,
    token: &str,
    order: &Value,
    filter: &Value,
    size: i64,
) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after = Value::Null;
    loop {
        let vars = json!({ "first": size, "after": after, "order": order, "filter": filter });
        let answer = app.gql(PAGE, vars, Some(token)).await;
        all.extend(nodes(&answer));
        let info = &answer["data"]["users"]["pageInfo"];
        if info["hasNextPage"] != true {
            return all;
        }
        after = info["endCursor"].clone();
    }
}

/// Every account of the listing, read backwards from the end, returned in listing order.
async fn backwards(
    app: &TestApp,
    token: &str,
    order: &Value,
    filter: &Value,
    size: i64,
) -> Vec<Value> {
    let mut all: Vec<Value> = Vec::new();
    let mut before = Value::Null;
    loop {
        let vars = json!({ "last": size, "before": before, "order": order, "filter": filter });
        let answer = app.gql(PAGE, vars, Some(token)).await;
        let mut page = nodes(&answer);
        page.extend(all);
        all = page;
        let info = &answer["data"]["users"]["pageInfo"];
        if info["hasPreviousPage"] != true {
            return all;
        }
        before = info["startCursor"].clone();
    }
}

fn ids(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn paging_visits_everyone_once_in_every_order(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = app.admin().await;
    assert_eq!(app.services.seed_users(10_000).await.unwrap(), 10_000);
    let total = 10_001;
    for field in ["CREATED_AT", "EMAIL", "DISPLAY_NAME"] {
        for direction in ["ASC", "DESC"] {
            let order = json!({ "field": field, "direction": direction });
            let forward = forwards(&app, &admin, &order, &Value::Null, 100).await;
            let unique: HashSet<String> = ids(&forward).into_iter().collect();
            assert_eq!(
                (forward.len(), unique.len()),
                (total, total),
                "{field} {direction}"
            );
            let backward = backwards(&app, &admin, &order, &Value::Null, 100).await;
            assert_eq!(
                ids(&backward),
                ids(&forward),
                "{field} {direction}: backwards differs"
            );

            // The order is the one asked for, where Rust and both databases agree on it.
            let keys: Vec<String> = match field {
                "EMAIL" => forward
                    .iter()
                    .map(|n| n["email"].as_str().unwrap().to_owned())
                    .collect(),
                "CREATED_AT" => forward
                    .iter()
                    .map(|n| n["createdAt"].as_str().unwrap().to_owned())
                    .collect(),
                _ => continue,
            };
            let mut sorted = keys.clone();
            sorted.sort();
            if direction == "DESC" {
                sorted.reverse();
            }
            assert_eq!(keys, sorted, "{field} {direction}");
        }
    }
    // A cursor from one order does not fit another.
    let by_email = json!({ "field": "EMAIL", "direction": "ASC" });
    let first = app
        .gql(PAGE, json!({ "first": 2, "order": by_email }), Some(&admin))
        .await;
    let cursor = first["data"]["users"]["pageInfo"]["endCursor"].clone();
    let mixed = app
        .gql(PAGE, json!({ "first": 2, "after": cursor }), Some(&admin))
        .await;
    assert_eq!(error_code(&mixed), "BAD_USER_INPUT");
}

async fn filters_and_search(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = app.admin().await;
    app.services.seed_users(400).await.unwrap();
    let count = |filter: Value| {
        let app = &app;
        let admin = admin.clone();
        async move {
            let answer = app
                .gql(PAGE, json!({ "first": 1, "filter": filter }), Some(&admin))
                .await;
            answer["data"]["users"]["totalCount"]
                .as_i64()
                .unwrap_or_else(|| panic!("{answer}"))
        }
    };
    assert_eq!(count(Value::Null).await, 401);
    assert_eq!(count(json!({ "isActive": false })).await, 40);
    assert_eq!(count(json!({ "isActive": true })).await, 361);
    assert_eq!(count(json!({ "role": "admin" })).await, 1);
    assert_eq!(count(json!({ "role": "user" })).await, 401);
    assert_eq!(count(json!({ "role": "nobody" })).await, 0);

    // Search: email or display name, any letter case.
    let lovelace = forwards(
        &app,
        &admin,
        &Value::Null,
        &json!({ "search": "LoveLace" }),
        50,
    )
    .await;
    assert!(!lovelace.is_empty());
    for node in &lovelace {
        let email = node["email"].as_str().unwrap();
        let name = node["profile"]["displayName"].as_str().unwrap_or_default();
        assert!(
            email.contains("lovelace") || name.to_lowercase().contains("lovelace"),
            "{node}"
        );
    }
    assert_eq!(
        count(json!({ "search": "lovelace" })).await,
        lovelace.len() as i64
    );
    let by_name = count(json!({ "search": "grace lovelace" })).await;
    assert!(by_name > 0 && by_name < lovelace.len() as i64, "{by_name}");
    // LIKE wildcards in the text match literally.
    assert_eq!(count(json!({ "search": "%" })).await, 0);
    assert_eq!(count(json!({ "search": "_" })).await, 0);
    // Combined with another filter.
    let inactive = count(json!({ "search": "lovelace", "isActive": false })).await;
    assert!(inactive < lovelace.len() as i64);

    // Deleted accounts are hidden unless asked for.
    let victim = lovelace[0]["id"].clone();
    app.gql(
        "mutation($id: ID!) { deleteUser(id: $id) { id } }",
        json!({ "id": victim }),
        Some(&admin),
    )
    .await;
    assert_eq!(
        count(json!({ "search": "lovelace" })).await,
        lovelace.len() as i64 - 1
    );
    assert_eq!(
        count(json!({ "search": "lovelace", "includeDeleted": true })).await,
        lovelace.len() as i64
    );
}

/// A page answers `profile`, `roles` and `permissions` from what it read with the list; each
/// account must get its own, the same as when it is read alone (through the loader).
async fn lists_carry_each_accounts_own_profile_and_roles(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = app.admin().await;
    app.services.seed_users(150).await.unwrap();
    let fields = "id email profile { displayName description } roles { id name } permissions";
    let page = app
        .gql(
            &format!(
                "{{ users(first: 100) {{ edges {{ node {{ {fields} }} }} nodes {{ {fields} }} }} }}"
            ),
            json!({}),
            Some(&admin),
        )
        .await;
    let listed = nodes(&page);
    let plain = page["data"]["users"]["nodes"].as_array().unwrap();
    assert_eq!(listed.len(), 100, "{page}");
    assert_eq!(&listed, plain, "edges and nodes differ");
    let distinct: HashSet<String> = listed.iter().map(|n| n["roles"].to_string()).collect();
    assert!(
        distinct.len() > 1,
        "the seed gives accounts different roles"
    );
    for node in listed.iter().step_by(7) {
        let alone = app
            .gql(
                &format!("query($id: ID!) {{ user(id: $id) {{ {fields} }} }}"),
                json!({ "id": node["id"] }),
                Some(&admin),
            )
            .await;
        assert_eq!(&alone["data"]["user"], node, "{}", node["email"]);
    }
}

/// Listed accounts answer plain selections directly (`graphql/types/plain.rs`); the same
/// fields inside a fragment go through the resolvers. Both must give the same answer.
async fn plain_selections_get_the_answers_of_the_resolvers(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = app.admin().await;
    app.services.seed_users(40).await.unwrap();
    let fields = "__typename id e: email mfaEnabled emailVerified isActive createdAt \
        updatedAt deletedAt lastLoginAt profile { __typename displayName yearOfBirth \
        description avatarUrl } roles { __typename id name n: name description }";
    let page = |selection: String| {
        let query = format!(
            "{{ users(first: 50) {{ nodes {{ {selection} }} edges {{ node {{ {selection} }} }} }} }}"
        );
        let (app, admin) = (&app, &admin);
        async move { app.gql(&query, json!({}), Some(admin)).await }
    };
    let direct = page(fields.to_owned()).await;
    let resolved = page(format!("... on User {{ {fields} }}")).await;
    assert!(direct.get("errors").is_none(), "{direct}");
    assert_eq!(direct, resolved);
    let listed = direct["data"]["users"]["nodes"].as_array().unwrap();
    assert_eq!(listed.len(), 41, "{direct}");
    let named = listed
        .iter()
        .filter(|n| n["profile"]["displayName"].is_string());
    assert!(
        (1..41).contains(&named.count()),
        "some profiles have names, some not"
    );
    assert!(
        listed.iter().any(|n| n["lastLoginAt"].is_string()),
        "the admin logged in"
    );
    for node in listed.iter().step_by(10) {
        for selection in [fields.to_owned(), format!("... on User {{ {fields} }}")] {
            let query = format!("query($id: ID!) {{ user(id: $id) {{ {selection} }} }}");
            let alone = app
                .gql(&query, json!({ "id": node["id"] }), Some(&admin))
                .await;
            assert_eq!(&alone["data"]["user"], node, "{selection}");
        }
    }
}
