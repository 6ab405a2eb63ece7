//! Counts the SQL statements a page of users costs, on PostgreSQL. diesel's instrumentation
//! hook is process-wide, so this test lives in a binary of its own: nothing else runs
//! queries while it counts (but the revocation reloader, whose statements it leaves out).

#[path = "api/helpers.rs"]
#[expect(
    dead_code,
    reason = "shared with the api test binary, which uses all of it"
)]
mod helpers;

use std::sync::Mutex;

use diesel::connection::{Instrumentation, InstrumentationEvent, set_default_instrumentation};
use serde_json::json;

use helpers::{Backend, TestApp};

static STATEMENTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn record(event: InstrumentationEvent<'_>) {
    if let InstrumentationEvent::StartQuery { query, .. } = event {
        let text = query.to_string();
        // Session set-up of a newly opened pool connection (`SET TIME ZONE …`) is not part
        // of the page, nor is the revocation reloader.
        if !text.starts_with("SET ") && !text.contains("\"sessions\"") {
            STATEMENTS.lock().unwrap().push(text);
        }
    }
}

fn counter() -> Option<Box<dyn Instrumentation>> {
    Some(Box::new(record))
}

fn take() -> Vec<String> {
    std::mem::take(&mut *STATEMENTS.lock().unwrap())
}

const PAGE: &str = "query($n: Int!) {
    users(first: $n) { totalCount nodes { id email profile { displayName } roles { name permissions } permissions } }
}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_costs_the_same_few_statements_whatever_its_size() {
    set_default_instrumentation(counter).unwrap();
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let admin = app.admin().await;
    app.services.seed_users(150).await.unwrap();

    let mut counts = Vec::new();
    for size in [10, 100] {
        // A warm-up fills the pool, so connection set-up is not counted.
        app.gql(PAGE, json!({ "n": size }), Some(&admin)).await;
        take();
        let answer = app.gql(PAGE, json!({ "n": size }), Some(&admin)).await;
        let statements = take();
        assert!(answer.get("errors").is_none(), "{answer}");
        assert_eq!(
            answer["data"]["users"]["nodes"].as_array().unwrap().len(),
            size
        );
        counts.push((size, statements));
    }
    let (_, small) = &counts[0];
    let (_, large) = &counts[1];
    assert_eq!(
        small.len(),
        large.len(),
        "10 users: {small:#?}\n100 users: {large:#?}"
    );
    // Two statements load the caller (account, roles); the page itself costs four: the
    // accounts, their count, their profiles, their roles with permissions.
    assert!(large.len() <= 6, "{large:#?}");
}
