//! The GraphiQL playground comes whole from the server, under a strict
//! Content-Security-Policy, and goes away with `--graphiql false`. (The browser test in
//! `e2e/` proves it renders and runs operations.)

use axum::body::Body;
use axum::http::{Request, StatusCode, header};

use crate::both_backends;
use crate::helpers::{Backend, TestApp};

both_backends!(
    the_page_and_its_files_come_from_the_server,
    the_playground_can_be_turned_off
);

fn get(path: &str, accept: &str, encoding: Option<&str>) -> Request<Body> {
    let mut request = Request::get(path).header(header::ACCEPT, accept);
    if let Some(encoding) = encoding {
        request = request.header(header::ACCEPT_ENCODING, encoding);
    }
    request.body(Body::empty()).unwrap()
}

/// The values of `attribute="…"` in `html`.
fn attributes<'a>(html: &'a str, attribute: &str) -> Vec<&'a str> {
    let marker = format!("{attribute}=\"");
    html.match_indices(&marker)
        .filter_map(|(at, m)| html[at + m.len()..].split('"').next())
        .collect()
}

async fn the_page_and_its_files_come_from_the_server(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (status, headers, body) = app.send(get("/graphql", "text/html", None)).await;
    assert_eq!(status, StatusCode::OK);
    let html = String::from_utf8(body).unwrap();
    let policy = headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    for directive in [
        "default-src 'none'",
        "script-src 'self';",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(directive), "{policy}");
    }
    assert!(!policy.contains("unsafe"), "{policy}");
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    // The nonce of the policy is the one on the page, and a new one each time.
    let nonce = attributes(&html, "nonce");
    assert_eq!(nonce.len(), 1, "{html}");
    assert!(
        policy.contains(&format!("'nonce-{}'", nonce[0])),
        "{policy}"
    );
    let (_, again, _) = app.send(get("/graphql", "text/html", None)).await;
    assert_ne!(again[header::CONTENT_SECURITY_POLICY], policy.as_str());

    let files: Vec<&str> = attributes(&html, "src")
        .into_iter()
        .chain(attributes(&html, "href"))
        .filter(|f| !f.starts_with("data:"))
        .collect();
    assert_eq!(files.len(), 9, "{html}");
    for file in files {
        assert!(file.starts_with("/graphql/assets/"), "{file}");
        let (status, headers, plain) = app.send(get(file, "*/*", None)).await;
        assert_eq!(status, StatusCode::OK, "{file}");
        assert_eq!(
            headers[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        let kind = headers[header::CONTENT_TYPE].to_str().unwrap();
        assert!(
            kind.starts_with(if file.ends_with(".css") {
                "text/css"
            } else {
                "text/javascript"
            }),
            "{file}: {kind}"
        );
        assert!(headers.get(header::CONTENT_ENCODING).is_none());
        let (_, headers, packed) = app.send(get(file, "*/*", Some("gzip, br"))).await;
        if headers.get(header::CONTENT_ENCODING).is_some() {
            assert_eq!(headers[header::CONTENT_ENCODING], "gzip");
            assert_eq!(&packed[..2], &[0x1f, 0x8b], "{file}");
            assert!(packed.len() < plain.len(), "{file}");
        } else {
            // Only our own small files go uncompressed.
            assert!(file.contains("/playground."), "{file}");
        }
    }
    let (status, _, _) = app
        .send(get(
            "/graphql/assets/graphiql.min.000000000000.js",
            "*/*",
            None,
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn the_playground_can_be_turned_off(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &["--graphiql", "false"]).await else {
        return;
    };
    let (status, headers, body) = app.send(get("/graphql", "text/html", None)).await;
    assert!(headers.get(header::CONTENT_SECURITY_POLICY).is_none());
    assert!(
        !String::from_utf8_lossy(&body).contains("<html"),
        "{status}"
    );
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (_, _, page) = app.send(get("/graphql", "text/html", None)).await;
    let html = String::from_utf8(page).unwrap();
    let script = attributes(&html, "src")[0].to_owned();
    let off = app.restart_with(&["--graphiql", "false"]).await;
    let (status, _, _) = off.send(get(&script, "*/*", None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
