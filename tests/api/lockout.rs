//! Account lockout: counted per normalised email before any argon2 work, growing locks.

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, PASSWORD, TestApp, error_code};

both_backends!(
    five_failures_lock_the_email,
    unknown_emails_lock_the_same_way,
    parallel_guesses_cannot_pass_the_threshold,
    parallel_correct_logins_never_lock_the_account,
    checks_under_way_elsewhere_count_until_they_go_stale,
);

/// The lockout alone: the rate limits would refuse many of these attempts first.
const UNLIMITED: &[&str] = &["--rate-limits", "off"];

async fn login(app: &TestApp, email: &str, password: &str) -> Value {
    app.gql(
        "mutation($e: String!, $p: String!) { login(input: { email: $e, password: $p }) { accessToken } }",
        json!({ "e": email, "p": password }),
        None,
    )
    .await
}

fn retry_after(answer: &Value) -> u64 {
    answer["errors"][0]["extensions"]["retryAfter"]
        .as_u64()
        .unwrap_or_else(|| panic!("no retryAfter: {answer}"))
}

async fn five_failures_lock_the_email(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, UNLIMITED).await else {
        return;
    };
    app.register("target@example.com").await;
    // A success resets the counter.
    for _ in 0..4 {
        assert_eq!(
            error_code(&login(&app, "target@example.com", "wrong password here").await),
            "UNAUTHENTICATED"
        );
    }
    app.login("target@example.com", PASSWORD).await;
    for attempt in 1..=4 {
        // Letter-case variants share one counter.
        let email = if attempt % 2 == 0 {
            "TARGET@example.com"
        } else {
            "target@Example.com"
        };
        assert_eq!(
            error_code(&login(&app, email, "wrong password here").await),
            "UNAUTHENTICATED"
        );
    }
    let fifth = login(&app, "target@example.com", "wrong password here").await;
    assert_eq!(error_code(&fifth), "ACCOUNT_LOCKED", "{fifth}");
    assert_eq!(retry_after(&fifth), 60);
    // Even the right password is refused while locked, without being checked.
    let locked = login(&app, "target@example.com", PASSWORD).await;
    assert_eq!(error_code(&locked), "ACCOUNT_LOCKED");
    assert!((1..=60).contains(&retry_after(&locked)));
    assert_eq!(app.audit("user.account_locked").await.len(), 1);

    // When the lock ends, counting starts again and the next lock lasts longer.
    app.exec("UPDATE login_failures SET locked_until = '2000-01-01 00:00:00'")
        .await;
    for _ in 0..4 {
        assert_eq!(
            error_code(&login(&app, "target@example.com", "wrong password here").await),
            "UNAUTHENTICATED"
        );
    }
    let second = login(&app, "target@example.com", "wrong password here").await;
    assert_eq!(retry_after(&second), 300);

    app.exec("UPDATE login_failures SET locked_until = '2000-01-01 00:00:00'")
        .await;
    app.login("target@example.com", PASSWORD).await;
}

async fn unknown_emails_lock_the_same_way(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, UNLIMITED).await else {
        return;
    };
    let mut answers = Vec::new();
    for _ in 0..6 {
        answers.push(login(&app, "ghost@example.com", "some password or other").await);
    }
    let codes: Vec<&str> = answers.iter().map(error_code).collect();
    assert_eq!(
        codes,
        [
            "UNAUTHENTICATED",
            "UNAUTHENTICATED",
            "UNAUTHENTICATED",
            "UNAUTHENTICATED",
            "ACCOUNT_LOCKED",
            "ACCOUNT_LOCKED"
        ]
    );
    // Other emails are not affected.
    app.register("real@example.com").await;
    app.login("real@example.com", PASSWORD).await;
}

async fn parallel_guesses_cannot_pass_the_threshold(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, UNLIMITED).await else {
        return;
    };
    app.register("busy@example.com").await;
    let guesses = (0..20).map(|i| {
        let app = &app;
        async move {
            login(
                app,
                "busy@example.com",
                &format!("guess number {i} is wrong"),
            )
            .await
        }
    });
    let answers = futures_util::future::join_all(guesses).await;
    let locked = answers
        .iter()
        .filter(|a| error_code(a) == "ACCOUNT_LOCKED")
        .count();
    let refused = answers
        .iter()
        .filter(|a| error_code(a) == "UNAUTHENTICATED")
        .count();
    // Checks under way count towards the threshold: beyond it, retry in a second.
    let busy = answers
        .iter()
        .filter(|a| error_code(a) == "RATE_LIMITED")
        .count();
    assert_eq!(locked + refused + busy, 20, "{answers:?}");
    assert!(refused <= 5, "{answers:?}");
    // No more than five passwords were checked: one failure is recorded per check.
    assert_eq!(app.audit("user.login_failed").await.len(), 5);
    assert_eq!(
        error_code(&login(&app, "busy@example.com", PASSWORD).await),
        "ACCOUNT_LOCKED"
    );
}

async fn parallel_correct_logins_never_lock_the_account(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, UNLIMITED).await else {
        return;
    };
    app.register("owner@example.com").await;
    let logins = (0..40).map(|_| login(&app, "owner@example.com", PASSWORD));
    let answers = futures_util::future::join_all(logins).await;
    let mut succeeded = 0;
    for answer in &answers {
        if answer.get("errors").is_none() {
            succeeded += 1;
            continue;
        }
        // Only ever told to come back within a second, never locked out.
        assert_eq!(error_code(answer), "RATE_LIMITED", "{answer}");
        assert_eq!(
            answer["errors"][0]["extensions"]["retryAfter"], 1,
            "{answer}"
        );
        assert_eq!(
            answer["errors"][0]["extensions"]["limit"], "login.checks_in_flight",
            "{answer}"
        );
    }
    assert!(succeeded >= 5, "{answers:?}");
    assert!(app.audit("user.account_locked").await.is_empty());
    assert!(app.audit("user.login_failed").await.is_empty());
    // Checks that ended count no more: the next ones pass.
    for _ in 0..10 {
        app.login("owner@example.com", PASSWORD).await;
    }
}

/// The counter of `email` as stored: (failures, checks under way).
async fn counter(app: &TestApp, email: &str) -> (i32, i32) {
    let mut db = app.sql().await.get().await.expect("connection");
    let row = usergraph::db::login_failures::find(&mut db.conn(), email)
        .await
        .expect("the counter's row")
        .expect("a counter");
    (row.failures, row.in_flight)
}

/// The checks another instance has under way are only in the database: they count towards
/// the threshold there (this instance's own gate does not see them) until they are older
/// than twice the request timeout, when that instance is taken to have died.
async fn checks_under_way_elsewhere_count_until_they_go_stale(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, UNLIMITED).await else {
        return;
    };
    let email = "owner@example.com";
    app.register(email).await;
    app.login(email, PASSWORD).await;
    assert_eq!(
        counter(&app, email).await,
        (0, 0),
        "a login leaves nothing under way"
    );

    // Three failures and two live checks fill the threshold of five.
    app.exec("UPDATE login_failures SET failures = 3, in_flight = 2, in_flight_at = '2999-01-01 00:00:00'")
        .await;
    let refused = login(&app, email, PASSWORD).await;
    assert_eq!(error_code(&refused), "RATE_LIMITED", "{refused}");
    assert_eq!(
        refused["errors"][0]["extensions"]["limit"], "login.checks_in_flight",
        "{refused}"
    );
    assert_eq!(retry_after(&refused), 1);
    assert_eq!(
        counter(&app, email).await,
        (3, 2),
        "a refusal writes nothing"
    );

    // One live check fewer leaves room for one: it passes and forgets the failures, and
    // the other check stays counted.
    app.exec("UPDATE login_failures SET in_flight = 1").await;
    app.login(email, PASSWORD).await;
    assert_eq!(counter(&app, email).await, (0, 1));

    // Checks that began long ago count no longer, however many.
    app.exec("UPDATE login_failures SET failures = 4, in_flight = 9, in_flight_at = '2000-01-01 00:00:00'")
        .await;
    app.login(email, PASSWORD).await;
    assert_eq!(counter(&app, email).await, (0, 0));

    // A live lock refuses before anything is counted.
    app.exec("UPDATE login_failures SET locked_until = '2999-01-01 00:00:00'")
        .await;
    let locked = login(&app, email, PASSWORD).await;
    assert_eq!(error_code(&locked), "ACCOUNT_LOCKED", "{locked}");
    assert_eq!(counter(&app, email).await, (0, 0));
}
