//! What no honest client sends: documents nested to overflow a parser, fragment bombs, control
//! characters in strings. Every one gets a clean answer and the server keeps serving.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, PASSWORD, TestApp, error_code, error_fields};

both_backends!(
    deep_documents_are_refused_and_the_server_survives,
    fragment_chains_and_bombs_are_refused,
    standard_introspection_passes_and_loops_through_types_do_not,
    user_data_depth_is_still_limited,
    control_characters_never_reach_the_database,
    oversized_and_out_of_range_inputs_are_refused_by_name,
    mistyped_values_are_request_errors_and_change_nothing,
    aliased_password_checks_are_capped_per_request,
    each_query_limit_refuses_with_its_own_message,
);

/// The shapes of a deeply nested document, each at `depth`.
fn deep_documents(depth: usize) -> Vec<(&'static str, String)> {
    let lists = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    let objects = format!("{}1{}", "{a:".repeat(depth), "}".repeat(depth));
    vec![
        ("list argument", format!("{{__typename(x:{lists})}}")),
        ("object argument", format!("{{__typename(x:{objects})}}")),
        (
            "directive argument",
            format!("{{__typename @skip(if:{lists})}}"),
        ),
        (
            "variable default",
            format!("query($v: Int = {objects}) {{ __typename }}"),
        ),
        (
            "variable type",
            format!(
                "query($v: {}Int{}) {{ __typename }}",
                "[".repeat(depth),
                "]".repeat(depth)
            ),
        ),
        (
            "selection sets",
            format!("{}__typename{}", "{a".repeat(depth), "}".repeat(depth)),
        ),
    ]
}

fn post_query(query: &str) -> Request<Body> {
    Request::post("/graphql")
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(Body::from(json!({ "query": query }).to_string()))
        .unwrap()
}

fn get_query(query: &str) -> Request<Body> {
    let encoded: String = query
        .bytes()
        .map(|b| format!("%{b:02X}"))
        .collect::<Vec<_>>()
        .concat();
    Request::get(format!("/graphql?query={encoded}"))
        .header("accept", "application/json")
        .body(Body::empty())
        .unwrap()
}

async fn answer(app: &TestApp, request: Request<Body>) -> (StatusCode, Value) {
    let (status, _, body) = app.send(request).await;
    let body = serde_json::from_slice(&body)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&body)));
    (status, body)
}

async fn still_serving(app: &TestApp) {
    let (status, body) = answer(app, post_query("{ __typename }")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["__typename"], "Query", "{body}");
}

async fn deep_documents_are_refused_and_the_server_survives(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    for depth in [70, 1_600, 20_000] {
        for (shape, query) in deep_documents(depth) {
            let mut requests = vec![("POST", post_query(&query))];
            // A URI holds at most 64 KiB.
            if query.len() * 3 < 60_000 {
                requests.push(("GET", get_query(&query)));
            }
            for (method, request) in requests {
                let (status, body) = answer(&app, request).await;
                assert_eq!(status, StatusCode::OK, "{method} {shape} at {depth}");
                assert_eq!(
                    error_code(&body),
                    "QUERY_TOO_COMPLEX",
                    "{method} {shape} at {depth}: {body}"
                );
                assert!(body.get("data").is_none_or(Value::is_null), "{body}");
            }
        }
        still_serving(&app).await;
    }
    // Shallow enough to parse: answered after parsing (selection sets by the limit on their
    // nesting, values by validation), never by the scan of the text.
    for (shape, query) in deep_documents(60) {
        let (_, body) = answer(&app, post_query(&query)).await;
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(!message.contains("braces"), "{shape}: {body}");
    }
    // The same guard covers every operation of a batch, the others still run.
    let deep = deep_documents(1_600).remove(0).1;
    let batch = json!([{ "query": "{ __typename }" }, { "query": deep }]).to_string();
    let request = Request::post("/graphql")
        .header("content-type", "application/json")
        .body(Body::from(batch))
        .unwrap();
    let (status, body) = answer(&app, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body[0]["data"]["__typename"], "Query", "{body}");
    assert_eq!(error_code(&body[1]), "QUERY_TOO_COMPLEX", "{body}");
    // Deep JSON variables are refused by the JSON parser, cleanly.
    let variables = format!("{}1{}", "[".repeat(5_000), "]".repeat(5_000));
    let body = format!("{{\"query\":\"{{ __typename }}\",\"variables\":{{\"v\":{variables}}}}}");
    let request = Request::post("/graphql")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let (status, body) = answer(&app, request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    still_serving(&app).await;
}

async fn fragment_chains_and_bombs_are_refused(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    // A chain of 5,000 fragments, each spreading the next.
    let mut chain = String::from("{ ...F0 }\n");
    for i in 0..5_000 {
        chain.push_str(&format!("fragment F{i} on Query {{ ...F{} }}\n", i + 1));
    }
    chain.push_str("fragment F5000 on Query { __typename }\n");
    let (_, body) = answer(&app, post_query(&chain)).await;
    assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX", "{body}");

    // Each fragment spreads the next twice: 2^25 fields if expanded.
    let mut bomb = String::from("{ ...F0 }\n");
    for i in 0..25 {
        bomb.push_str(&format!(
            "fragment F{i} on Query {{ ...F{n} ...F{n} }}\n",
            n = i + 1
        ));
    }
    bomb.push_str("fragment F25 on Query { __typename }\n");
    let (_, body) = answer(&app, post_query(&bomb)).await;
    assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX", "{body}");

    // Thousands of aliases of one field.
    let aliases: String = (0..5_000).map(|i| format!("a{i}: __typename ")).collect();
    let (_, body) = answer(&app, post_query(&format!("{{ {aliases} }}"))).await;
    assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX", "{body}");

    // Inline fragments add levels without adding fields or user-data depth: 33 of them are
    // over the nesting limit, 31 are not.
    let inline = |n: usize| {
        format!(
            "{{ {} __typename {} }}",
            "... on Query { ".repeat(n),
            "} ".repeat(n)
        )
    };
    let (_, body) = answer(&app, post_query(&inline(33))).await;
    assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX", "{body}");
    let (_, body) = answer(&app, post_query(&inline(31))).await;
    assert_eq!(body["data"]["__typename"], "Query", "{body}");

    // A cycle is an invalid document, not a complex one; it is not looped through.
    for cycle in [
        "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }",
        "{ ...A } fragment A on Query { ...B ...B ...B } fragment B on Query { ...A ...A ...A }",
    ] {
        let (_, body) = answer(&app, post_query(cycle)).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    }
    still_serving(&app).await;
}

async fn standard_introspection_passes_and_loops_through_types_do_not(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    // graphql-js 16's getIntrospectionQuery with every option: what GraphiQL, GraphQL Code
    // Generator and IDE plugins send.
    let query = include_str!("../fixtures/introspection.graphql");
    for request in [post_query(query), get_query(query)] {
        let (status, body) = answer(&app, request).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.get("errors").is_none(), "{body}");
        let types = body["data"]["__schema"]["types"].as_array().unwrap();
        let user = types.iter().find(|t| t["name"] == "User").expect("User");
        assert!(user["fields"].as_array().unwrap().len() > 5, "{user}");
        assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query");
    }
    // Looping through the type graph multiplies it by itself: refused.
    let looping =
        "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }";
    let (_, body) = answer(&app, post_query(looping)).await;
    assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX", "{body}");
    let via_type =
        "{ __type(name: \"User\") { fields { type { interfaces { possibleTypes { name } } } } } }";
    let (_, body) = answer(&app, post_query(via_type)).await;
    assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX", "{body}");
}

async fn user_data_depth_is_still_limited(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &["--max-query-depth", "3"]).await else {
        return;
    };
    let token = app.admin().await;
    let shallow = app
        .gql(
            "{ users(first: 1) { totalCount } }",
            json!({}),
            Some(&token),
        )
        .await;
    assert!(shallow.get("errors").is_none(), "{shallow}");
    // Fragments do not hide depth.
    let deep = "{ ...U } fragment U on Query { users(first: 1) { edges { node { id } } } }";
    let answer = app.gql(deep, json!({}), Some(&token)).await;
    assert_eq!(error_code(&answer), "QUERY_TOO_COMPLEX", "{answer}");
}

async fn control_characters_never_reach_the_database(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (token, _) = app.user("ada@example.com").await;
    let update = "mutation($input: ProfileInput!) { updateMyProfile(input: $input) { profile { description } } }";
    for bad in [
        "nul\u{0}inside",
        "bell\u{7}",
        "escape\u{1b}[31m",
        "del\u{7f}",
    ] {
        let answer = app
            .gql(
                update,
                json!({ "input": { "description": bad } }),
                Some(&token),
            )
            .await;
        assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{answer}");
        assert_eq!(error_fields(&answer), ["description"], "{answer}");
    }
    // In a literal, too.
    let literal = "mutation { updateMyProfile(input: { displayName: \"a\\u0000b\" }) { id } }";
    let answer = app.gql(literal, json!({}), Some(&token)).await;
    assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{answer}");
    assert_eq!(error_fields(&answer), ["displayName"], "{answer}");
    // Tabs and line breaks are text.
    let answer = app
        .gql(
            update,
            json!({ "input": { "description": "two\nlines\tand a tab" } }),
            Some(&token),
        )
        .await;
    assert_eq!(
        answer["data"]["updateMyProfile"]["profile"]["description"], "two\nlines\tand a tab",
        "{answer}"
    );
    // Nothing was stored but the good one.
    let me = app
        .gql(
            "{ me { profile { description displayName } } }",
            json!({}),
            Some(&token),
        )
        .await;
    assert_eq!(
        me["data"]["me"]["profile"]["displayName"],
        Value::Null,
        "{me}"
    );

    // Login: the email is refused before any lockout row or query sees it.
    let login = "mutation($email: String!, $password: String!) { login(input: { email: $email, password: $password }) { accessToken } }";
    // Admitted once with clean variables, the text is remembered: its variables are still
    // checked every time.
    let clean = app
        .gql(
            login,
            json!({ "email": "ada@example.com", "password": PASSWORD }),
            None,
        )
        .await;
    assert!(clean.get("errors").is_none(), "{clean}");
    let answer = app
        .gql(
            login,
            json!({ "email": "ada@example.com\u{0}", "password": PASSWORD }),
            None,
        )
        .await;
    assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{answer}");
    assert_eq!(error_fields(&answer), ["email"], "{answer}");
    let answer = app
        .gql(
            login,
            json!({ "email": "ada@example.com", "password": format!("{PASSWORD}\u{0}") }),
            None,
        )
        .await;
    assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{answer}");
    assert_eq!(error_fields(&answer), ["password"], "{answer}");
    // The account was not locked or touched by any of it.
    app.login("ada@example.com", PASSWORD).await;
}

/// Asserts a `BAD_USER_INPUT` that names `field` and says what the bound is.
fn assert_refused(answer: &Value, field: &str, bound: &str) {
    assert_eq!(error_code(answer), "BAD_USER_INPUT", "{field}: {answer}");
    assert_eq!(error_fields(answer), [field], "{answer}");
    let message = answer["errors"][0]["extensions"]["fields"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains(bound), "{field}: {message}");
    assert!(
        answer.to_string().len() < 2_000,
        "the error echoes the input"
    );
}

async fn count(app: &TestApp, table: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut db = app.sql().await.get().await.unwrap();
    let mut conn = db.conn();
    let sql = format!("SELECT COUNT(*) AS n FROM {table}");
    let rows: Vec<Count> = usergraph::with_conn!(&mut conn, |c| {
        diesel_async::RunQueryDsl::load(diesel::sql_query(&sql), c).await
    })
    .unwrap();
    rows[0].n
}

async fn oversized_and_out_of_range_inputs_are_refused_by_name(backend: Backend) {
    use base64::Engine as _;
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = app.admin().await;
    let (token, _) = app.user("ada@example.com").await;
    let failures_before = count(&app, "login_failures").await;

    let login = "mutation($e: String!, $p: String!) { login(input: { email: $e, password: $p }) { accessToken } }";
    for email in [
        format!("{}@example.com", "a".repeat(500_000)),
        format!("{}@example.com", "a".repeat(243)),
    ] {
        let answer = app
            .gql(login, json!({ "e": email, "p": PASSWORD }), None)
            .await;
        assert_refused(&answer, "email", "254");
    }
    let answer = app
        .gql(
            login,
            json!({ "e": "ada@example.com", "p": "p".repeat(129) }),
            None,
        )
        .await;
    assert_refused(&answer, "password", "128");
    assert_eq!(
        count(&app, "login_failures").await,
        failures_before,
        "no lockout key was written"
    );

    let register = "mutation($e: String!) { register(input: { email: $e, password: \"correct horse battery staple\" }) { accessToken } }";
    let answer = app
        .gql(
            register,
            json!({ "e": format!("{}@example.com", "b".repeat(250)) }),
            None,
        )
        .await;
    assert_refused(&answer, "email", "254");
    let reset = "mutation($e: String!) { requestPasswordReset(email: $e) }";
    let answer = app.gql(reset, json!({ "e": "c".repeat(300) }), None).await;
    assert_refused(&answer, "email", "254");

    let update = "mutation($input: ProfileInput!) { updateMyProfile(input: $input) { id } }";
    let answer = app
        .gql(
            update,
            json!({ "input": { "description": "d".repeat(2_001) } }),
            Some(&token),
        )
        .await;
    assert_refused(&answer, "description", "2000");
    let answer = app
        .gql(
            update,
            json!({ "input": { "displayName": "n".repeat(101) } }),
            Some(&token),
        )
        .await;
    assert_refused(&answer, "displayName", "100");

    let refresh = "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken } }";
    let answer = app
        .gql(refresh, json!({ "t": "r".repeat(100_000) }), None)
        .await;
    assert_refused(&answer, "refreshToken", "256");
    let logout = "mutation($t: String!) { logout(refreshToken: $t) }";
    let answer = app
        .gql(logout, json!({ "t": "r".repeat(100_000) }), None)
        .await;
    assert_refused(&answer, "refreshToken", "256");
    let reset = "mutation($t: String!) { resetPassword(token: $t, newPassword: \"a brand new passphrase\") }";
    let answer = app
        .gql(reset, json!({ "t": "t".repeat(10_000) }), None)
        .await;
    assert_refused(&answer, "token", "256");

    // Listing: a search of 50,000 characters used to make SQLite's LIKE fail.
    let users = "query($f: UserFilter, $after: String) { users(first: 5, after: $after, filter: $f) { totalCount } }";
    let answer = app
        .gql(
            users,
            json!({ "f": { "search": "%".repeat(50_000) } }),
            Some(&admin),
        )
        .await;
    assert_refused(&answer, "filter.search", "100");
    let answer = app
        .gql(users, json!({ "f": { "search": "%_\\%" } }), Some(&admin))
        .await;
    assert_eq!(answer["data"]["users"]["totalCount"], 0, "{answer}");
    let answer = app
        .gql(
            users,
            json!({ "f": { "role": "r".repeat(51) } }),
            Some(&admin),
        )
        .await;
    assert_refused(&answer, "filter.role", "50");
    let answer = app
        .gql(users, json!({ "after": "c".repeat(5_000) }), Some(&admin))
        .await;
    assert_refused(&answer, "after", "1024");
    // A forged cursor carrying a NUL into the keyset condition.
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
        "user:{}",
        json!(["e", "a\u{0}b", "0190a000-0000-7000-8000-000000000000"])
    ));
    let answer = app
        .gql(users, json!({ "after": forged }), Some(&admin))
        .await;
    assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{answer}");
    assert_eq!(error_fields(&answer), ["after"], "{answer}");

    // Audit filters: long text, and times that one of the databases cannot store.
    let audit = "query($f: AuditFilter) { auditLog(first: 5, filter: $f) { totalCount } }";
    for (filter, field, bound) in [
        (
            json!({ "action": "a".repeat(1_000) }),
            "filter.action",
            "100",
        ),
        (
            json!({ "targetId": "t".repeat(1_000) }),
            "filter.targetId",
            "100",
        ),
        (
            json!({ "since": "-9999-01-01T00:00:00Z" }),
            "filter.since",
            "1970",
        ),
        (
            json!({ "until": "0001-01-01T00:00:00Z" }),
            "filter.until",
            "1970",
        ),
        (
            json!({ "since": "+10000-01-01T00:00:00Z" }),
            "filter.since",
            "9999",
        ),
    ] {
        let answer = app.gql(audit, json!({ "f": filter }), Some(&admin)).await;
        if error_fields(&answer).is_empty() {
            // The DateTime scalar itself refused it: still the client's error, never ours.
            assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{field}: {answer}");
        } else {
            assert_refused(&answer, field, bound);
        }
    }
    let answer = app
        .gql(
            audit,
            json!({ "f": { "since": "2020-01-01T00:00:00Z" } }),
            Some(&admin),
        )
        .await;
    assert!(answer.get("errors").is_none(), "{answer}");

    // Administration.
    let assign = "mutation($u: ID!, $r: String!) { assignRole(userId: $u, role: $r) { id } }";
    let me = app.gql("{ me { id } }", json!({}), Some(&token)).await;
    let id = me["data"]["me"]["id"].as_str().unwrap().to_owned();
    let answer = app
        .gql(
            assign,
            json!({ "u": id, "r": "x".repeat(10_000) }),
            Some(&admin),
        )
        .await;
    assert_refused(&answer, "role", "50");
    let create_role = "mutation($p: [String!]!) { createRole(input: { name: \"ops\", permissions: $p }) { name } }";
    let answer = app
        .gql(
            create_role,
            json!({ "p": ["p".repeat(10_000)] }),
            Some(&admin),
        )
        .await;
    assert_refused(&answer, "permissions", "64");
    let pat = "mutation($n: String!, $at: DateTime) { createPersonalAccessToken(input: { name: $n, scopes: [], expiresAt: $at }) { token } }";
    let answer = app
        .gql(pat, json!({ "n": "n".repeat(101) }), Some(&token))
        .await;
    assert_refused(&answer, "name", "100");
    let answer = app
        .gql(
            pat,
            json!({ "n": "ci", "at": "9999-12-31T23:59:59Z" }),
            Some(&token),
        )
        .await;
    assert!(answer.get("errors").is_none(), "{answer}");
    still_serving(&app).await;
}

/// Posts `query` with `variables` as `token`, asking for `application/graphql-response+json`
/// (where a request error is a 400).
async fn post_as(app: &TestApp, token: &str, query: &str, variables: Value) -> (StatusCode, Value) {
    let request = Request::post("/graphql")
        .header("content-type", "application/json")
        .header("accept", "application/graphql-response+json")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::from(
            json!({ "query": query, "variables": variables }).to_string(),
        ))
        .unwrap();
    answer(app, request).await
}

/// Values of the wrong type that async-graphql's validation lets through (an `Int` past 32
/// bits, a string or a list for an input object, a `DateTime` that does not parse) fail the
/// request before anything runs, as any other argument of the wrong type does.
async fn mistyped_values_are_request_errors_and_change_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = app.admin().await;
    let (token, _) = app.user("ada@example.com").await;
    let set = "mutation { updateMyProfile(input: { yearOfBirth: 1990 }) { id } }";
    let (status, body) = post_as(&app, &token, set, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let audit_rows = count(&app, "audit_events").await;
    let tokens = count(&app, "personal_access_tokens").await;

    let refused = |status: StatusCode, body: &Value, argument: &str, why: &str| {
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body.get("data").is_none(), "{body}");
        assert_eq!(error_code(body), "BAD_USER_INPUT", "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("argument \"{argument}\"")) && message.contains(why),
            "{body}"
        );
    };
    let page = "query($n: Int) { users(first: $n) { totalCount } }";
    for n in [json!(4_294_967_296u64), json!(-2_147_483_649i64)] {
        let (status, body) = post_as(&app, &admin, page, json!({ "n": n })).await;
        refused(status, &body, "first", "32-bit");
    }
    for (query, argument) in [
        ("{ users(first: 4294967296) { totalCount } }", "first"),
        (
            "query($n: Int = 4294967296) { users(first: $n) { totalCount } }",
            "first",
        ),
        (
            "{ ...Page } fragment Page on Query { ... on Query { users(last: 9999999999) { totalCount } } }",
            "last",
        ),
    ] {
        let (status, body) = post_as(&app, &admin, query, json!({})).await;
        refused(status, &body, argument, "32-bit");
    }
    // The edges of the range are Ints: whatever the field says of them, it is not this.
    for n in [2_147_483_647i64, -2_147_483_648] {
        let (status, body) = post_as(&app, &admin, page, json!({ "n": n })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(!body.to_string().contains("32-bit"), "{body}");
    }
    let filtered = "query($f: UserFilter) { users(first: 1, filter: $f) { totalCount } }";
    for filter in [json!("x"), json!([{ "search": "a" }])] {
        let (status, body) = post_as(&app, &admin, filtered, json!({ "f": filter })).await;
        refused(status, &body, "filter", "UserFilter");
    }
    let audit = "query($s: DateTime) { auditLog(first: 1, filter: { since: $s }) { totalCount } }";
    let (status, body) = post_as(&app, &admin, audit, json!({ "s": "yesterday" })).await;
    refused(status, &body, "filter.since", "DateTime");

    let update = "mutation($input: ProfileInput!) { updateMyProfile(input: $input) { id } }";
    let (status, body) = post_as(
        &app,
        &token,
        update,
        json!({ "input": { "yearOfBirth": 4_294_967_296u64, "displayName": "lost" } }),
    )
    .await;
    refused(status, &body, "input.yearOfBirth", "32-bit");
    let (status, body) = post_as(
        &app,
        &token,
        update,
        json!({ "input": [{ "displayName": "lost" }] }),
    )
    .await;
    refused(status, &body, "input", "ProfileInput");
    let inline = "mutation { updateMyProfile(input: { displayName: \"lost\", yearOfBirth: 4294967296 }) { id } }";
    let (status, body) = post_as(&app, &token, inline, json!({})).await;
    refused(status, &body, "input.yearOfBirth", "32-bit");
    let pat = "mutation($at: DateTime) { createPersonalAccessToken(input: { name: \"ci\", scopes: [], expiresAt: $at }) { token } }";
    let (status, body) = post_as(&app, &token, pat, json!({ "at": "never" })).await;
    refused(status, &body, "input.expiresAt", "DateTime");

    let (_, body) = post_as(
        &app,
        &token,
        "{ me { profile { displayName yearOfBirth } } }",
        json!({}),
    )
    .await;
    assert_eq!(body["data"]["me"]["profile"]["yearOfBirth"], 1990, "{body}");
    assert_ne!(
        body["data"]["me"]["profile"]["displayName"], "lost",
        "{body}"
    );
    assert_eq!(count(&app, "personal_access_tokens").await, tokens);
    assert_eq!(
        count(&app, "audit_events").await,
        audit_rows,
        "nothing was audited"
    );
    still_serving(&app).await;
}

async fn aliased_password_checks_are_capped_per_request(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.register("capped@example.com").await;
    let login = |alias: usize| {
        format!(
            "l{alias}: login(input: {{ email: \"capped@example.com\", password: \"not the password at all\" }}) {{ accessToken }}"
        )
    };
    // 1,000 aliased logins (450 used to cost 10 s of CPU): refused before any password is checked.
    let many: String = (0..1_000).map(login).collect::<Vec<_>>().join(" ");
    let (_, body) = answer(&app, post_query(&format!("mutation {{ {many} }}"))).await;
    assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX", "{body}");
    // Through a fragment spread three times.
    let spread = format!(
        "mutation {{ ...F ...F ...F }} fragment F on Mutation {{ {} }}",
        login(0)
    );
    let (_, body) = answer(&app, post_query(&spread)).await;
    assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX", "{body}");
    // A batch adds its operations up: three single logins are over the default of two.
    let one = json!({ "query": format!("mutation {{ {} }}", login(0)) });
    let batch = json!([one, one, one]).to_string();
    let request = Request::post("/graphql")
        .header("content-type", "application/json")
        .body(Body::from(batch))
        .unwrap();
    let (_, body) = answer(&app, request).await;
    assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX", "{body}");
    assert!(
        app.audit("user.login_failed").await.is_empty(),
        "no password was checked"
    );
    // Two are allowed, and both are checked.
    let two = format!("mutation {{ {} {} }}", login(0), login(1));
    let (_, body) = answer(&app, post_query(&two)).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    assert_eq!(app.audit("user.login_failed").await.len(), 2);
}

async fn each_query_limit_refuses_with_its_own_message(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let repeat = |n: usize, item: &dyn Fn(usize) -> String| -> String {
        (0..n).map(item).collect::<Vec<_>>().join(" ")
    };
    let cases = [
        (
            "aliases",
            format!(
                "{{ __schema {{ {} }} }}",
                repeat(101, &|i| format!("a{i}: description"))
            ),
            "101 aliases",
        ),
        (
            "root fields",
            format!("{{ {} }}", repeat(21, &|_| "__typename".to_owned())),
            "21 root fields",
        ),
        (
            "complexity",
            format!(
                "{{ __schema {{ types {{ {} }} }} }}",
                repeat(1_001, &|_| "name".to_owned())
            ),
            "more than 1000 fields",
        ),
        (
            "directives",
            format!(
                "{{ __typename {} }}",
                repeat(6, &|_| "@skip(if: false)".to_owned())
            ),
            "6 directives",
        ),
        (
            "text size",
            format!("{{ __typename }} # {}", "x".repeat(70_000)),
            "bytes long",
        ),
        (
            "depth",
            // Measured before validation: names need not exist to be too deep.
            format!("{{ {} b {} }}", "a { ".repeat(13), "} ".repeat(13)),
            "14 levels deep",
        ),
    ];
    for (limit, query, message) in cases {
        let (_, body) = answer(&app, post_query(&query)).await;
        assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX", "{limit}: {body}");
        let text = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(text.contains(message), "{limit}: {text}");
    }
    let batch: Vec<Value> = (0..11)
        .map(|_| json!({ "query": "{ __typename }" }))
        .collect();
    let request = Request::post("/graphql")
        .header("content-type", "application/json")
        .body(Body::from(Value::from(batch).to_string()))
        .unwrap();
    let (_, body) = answer(&app, request).await;
    assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX", "batch: {body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("at most 10")
    );

    // Nothing runs: 21 resets asked for a real account leave no trace.
    app.register("limits@example.com").await;
    let resets = repeat(21, &|i| {
        format!("r{i}: requestPasswordReset(email: \"limits@example.com\")")
    });
    let (_, body) = answer(&app, post_query(&format!("mutation {{ {resets} }}"))).await;
    assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX", "{body}");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(app.audit("user.password_reset_request").await.is_empty());
    still_serving(&app).await;
}
