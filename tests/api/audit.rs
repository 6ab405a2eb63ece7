//! The audit log: newest first, filtered, paged, for `audit:read` only, append-only.

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, error_code};

both_backends!(
    audit_log_filters_and_pages,
    audit_log_is_for_audit_read_only
);

const LOG: &str = "query($first: Int, $after: String, $filter: AuditFilter) {
    auditLog(first: $first, after: $after, filter: $filter) {
        totalCount
        edges { cursor node { id at action targetType targetId ip userAgent details actor { email } } }
        pageInfo { hasNextPage hasPreviousPage endCursor }
    }
}";

fn actions(answer: &Value) -> Vec<String> {
    answer["data"]["auditLog"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .iter()
        .map(|e| e["node"]["action"].as_str().unwrap().to_owned())
        .collect()
}

async fn audit_log_filters_and_pages(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (_, alice) = app.user("alice@example.com").await;
    let failed = app
        .gql("mutation { login(input: { email: \"alice@example.com\", password: \"wrong wrong wrong\" }) { accessToken } }", json!({}), None)
        .await;
    assert_eq!(error_code(&failed), "UNAUTHENTICATED");
    let admin = app.admin().await;
    app.gql(
        "mutation($u: ID!) { updateUser(id: $u, input: { isActive: false }) { id } }",
        json!({ "u": alice }),
        Some(&admin),
    )
    .await;

    let all = app.gql(LOG, json!({ "first": 100 }), Some(&admin)).await;
    let seen = actions(&all);
    // Newest first: the deactivation came last.
    assert_eq!(seen[0], "user.update", "{seen:?}");
    assert!(
        seen.contains(&"user.register".to_owned())
            && seen.contains(&"user.login_failed".to_owned())
    );
    let total = all["data"]["auditLog"]["totalCount"].as_i64().unwrap();
    assert_eq!(total as usize, seen.len());

    let edges = all["data"]["auditLog"]["edges"].as_array().unwrap();
    let failure = edges
        .iter()
        .find(|e| e["node"]["action"] == "user.login_failed")
        .unwrap();
    assert!(
        failure["node"]["actor"].is_null(),
        "anonymous actions have no actor"
    );
    assert_eq!(failure["node"]["targetId"], alice.as_str());
    assert_eq!(failure["node"]["userAgent"], "usergraph-tests");
    assert!(failure["node"]["details"].is_object());
    let update = &edges[0]["node"];
    assert_eq!(update["actor"]["email"], "admin@example.com");

    // Filters.
    let by_action = app
        .gql(
            LOG,
            json!({ "filter": { "action": "user.login_failed" } }),
            Some(&admin),
        )
        .await;
    assert_eq!(actions(&by_action), ["user.login_failed"]);
    assert_eq!(by_action["data"]["auditLog"]["totalCount"], 1);
    let by_target = app
        .gql(
            LOG,
            json!({ "filter": { "targetId": alice } }),
            Some(&admin),
        )
        .await;
    assert!(actions(&by_target).iter().all(|a| {
        [
            "user.register",
            "user.login_failed",
            "user.update",
            "user.sessions_end",
        ]
        .contains(&a.as_str())
    }));
    let me = app.gql("{ me { id } }", json!({}), Some(&admin)).await;
    let by_actor = app
        .gql(
            LOG,
            json!({ "filter": { "actorId": me["data"]["me"]["id"] } }),
            Some(&admin),
        )
        .await;
    assert!(actions(&by_actor).contains(&"user.update".to_owned()));
    assert!(!actions(&by_actor).contains(&"user.login_failed".to_owned()));
    let future = app
        .gql(
            LOG,
            json!({ "filter": { "since": "2999-01-01T00:00:00Z" } }),
            Some(&admin),
        )
        .await;
    assert!(actions(&future).is_empty());
    let past = app
        .gql(
            LOG,
            json!({ "filter": { "until": "2000-01-01T00:00:00Z" } }),
            Some(&admin),
        )
        .await;
    assert!(actions(&past).is_empty());

    // Paging two at a time visits every event once, in the same order.
    let mut paged = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = app
            .gql(LOG, json!({ "first": 2, "after": after }), Some(&admin))
            .await;
        paged.extend(actions(&page));
        if page["data"]["auditLog"]["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["data"]["auditLog"]["pageInfo"]["endCursor"].clone();
    }
    // The reads above were not audited, so the log is as it was.
    assert_eq!(paged, seen);

    let event_id = update["id"].clone();
    let node = app
        .gql(
            "query($id: ID!) { node(id: $id) { __typename ... on AuditEvent { action } } }",
            json!({ "id": event_id }),
            Some(&admin),
        )
        .await;
    assert_eq!(node["data"]["node"]["action"], "user.update");
}

async fn audit_log_is_for_audit_read_only(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (plain, _) = app.user("plain@example.com").await;
    let answer = app.gql(LOG, json!({}), Some(&plain)).await;
    assert_eq!(error_code(&answer), "FORBIDDEN");
    let anonymous = app.gql(LOG, json!({}), None).await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
    let admin = app.admin().await;
    assert!(
        app.gql(LOG, json!({}), Some(&admin))
            .await
            .get("errors")
            .is_none()
    );
    // Append-only: no operation of the API changes or removes audit rows.
    let document = async_graphql::parser::parse_schema(usergraph::graphql::sdl()).unwrap();
    let mut fields = Vec::new();
    for definition in document.definitions {
        use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
        let TypeSystemDefinition::Type(ty) = definition else {
            continue;
        };
        if let (true, TypeKind::Object(object)) = (ty.node.name.node == "Mutation", &ty.node.kind) {
            fields.extend(object.fields.iter().map(|f| f.node.name.node.to_string()));
        }
    }
    assert!(fields.len() > 20, "{fields:?}");
    assert!(
        fields.iter().all(|f| !f.to_lowercase().contains("audit")),
        "{fields:?}"
    );
}
