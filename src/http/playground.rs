//! The GraphiQL playground, served whole from the binary: the page, GraphiQL 4, React, the
//! explorer plugin and our tour (`assets/graphiql/`; its `update.py` fetches the pinned
//! packages from the npm registry and checks their integrity). No request leaves the
//! server's origin, so the playground works without internet access and under the strict
//! Content-Security-Policy it is sent with. Files are named by their content
//! (`/graphql/assets/<name>.<hash>.<ext>`) and cached for a year; gzip copies, made by
//! `update.py`, go to clients that accept them. `USERGRAPH_GRAPHIQL=false` turns it all off.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};

/// Where the files are served.
pub const ASSETS: &str = "/graphql/assets";

/// What the page may load: scripts, styles and requests from its own origin only; fonts and
/// images also as `data:` URLs (GraphiQL's stylesheet carries its fonts and icons inline).
/// Neither `unsafe-inline` nor `unsafe-eval`: the page has no inline script, and GraphiQL 4
/// evaluates no strings. One kind of inline style is needed: its menus and dialogs lock
/// scrolling with a `<style>` element they write (react-remove-scroll), which carries the
/// nonce it finds in `__webpack_nonce__`; `playground.js` sets that from its own script
/// tag, so only styles of this response's nonce apply.
fn content_security_policy(nonce: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self' 'nonce-{nonce}'; \
         img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'"
    )
}

/// Where the page's nonce goes.
const NONCE: &str = "{nonce}";

/// One file of the playground.
struct File {
    /// Its name in `assets/graphiql/`.
    name: &'static str,
    /// Where it is served, with a hash of its content in the name.
    path: String,
    body: &'static [u8],
    /// The same, gzipped (`None` for our own small files).
    gzip: Option<&'static [u8]>,
    content_type: &'static str,
}

/// The bytes of `assets/graphiql/<name>`.
macro_rules! bytes {
    ($name:expr) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/assets/graphiql/",
            $name
        ))
        .as_slice()
    };
}

/// A file of ours (small: served as it is), or a vendored one with its gzip copy.
macro_rules! file {
    ($name:literal, $type:expr) => {
        ($name, bytes!($name), None, $type)
    };
    ($name:literal, $type:expr, gzipped) => {
        (
            $name,
            bytes!($name),
            Some(bytes!(concat!($name, ".gz"))),
            $type,
        )
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Hashed on first use (a few milliseconds), not at start: most deployments never serve it.
static FILES: LazyLock<Vec<File>> = LazyLock::new(|| {
    [
        file!("graphiql.min.css", CSS, gzipped),
        file!("plugin-explorer.css", CSS, gzipped),
        file!("playground.css", CSS),
        file!("react.production.min.js", JS, gzipped),
        file!("react-dom.production.min.js", JS, gzipped),
        file!("graphiql.min.js", JS, gzipped),
        file!("plugin-explorer.umd.js", JS, gzipped),
        file!("graphql-ws.min.js", JS, gzipped),
        file!("playground.js", JS),
    ]
    .into_iter()
    .map(|(name, body, gzip, content_type)| File {
        name,
        path: hashed_path(name, body),
        body,
        gzip,
        content_type,
    })
    .collect()
});

static PAGE: LazyLock<String> = LazyLock::new(|| {
    let mut styles = String::new();
    let mut scripts = String::new();
    for file in FILES.iter() {
        if file.name.ends_with(".css") {
            styles.push_str(&format!(
                "<link rel=\"stylesheet\" href=\"{}\">\n",
                file.path
            ));
        } else if file.name == "playground.js" {
            scripts.push_str(&format!(
                "<script src=\"{}\" nonce=\"{NONCE}\"></script>\n",
                file.path
            ));
        } else {
            scripts.push_str(&format!("<script src=\"{}\"></script>\n", file.path));
        }
    }
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>usergraph playground</title>\n<link rel=\"icon\" href=\"data:,\">\n{styles}\
         </head>\n<body>\n<div id=\"graphiql\"><p class=\"loading\">Loading the \
         playground…</p></div>\n{scripts}</body>\n</html>\n"
    )
});

/// `/graphql/assets/graphiql.min.<first 12 hex digits of its SHA-256>.css` for
/// `graphiql.min.css`.
fn hashed_path(name: &str, body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let hash: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
    format!("{ASSETS}/{stem}.{hash}.{ext}")
}

/// The playground's page, with a nonce of its own.
pub fn page() -> Response {
    let mut random = [0u8; 16];
    if getrandom::fill(&mut random).is_err() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let nonce: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let Ok(policy) = HeaderValue::from_str(&content_security_policy(&nonce)) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut response = PAGE.replace(NONCE, &nonce).into_response();
    let headers = response.headers_mut();
    describe(headers, "text/html; charset=utf-8", "no-cache");
    headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// `GET /graphql/assets/{name}`: a file of the playground, gzipped when the client takes it.
pub async fn asset(Path(name): Path<String>, request: HeaderMap) -> Response {
    let path = format!("{ASSETS}/{name}");
    let Some(file) = FILES.iter().find(|f| f.path == path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let gzip = file.gzip.filter(|_| accepts_gzip(&request));
    let mut response = gzip.unwrap_or(file.body).into_response();
    let headers = response.headers_mut();
    describe(
        headers,
        file.content_type,
        "public, max-age=31536000, immutable",
    );
    if gzip.is_some() {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    response
}

/// What every answer of the playground says: its type, how long it may be kept, and that
/// browsers take the type as given and show it in no frame.
fn describe(headers: &mut HeaderMap, content_type: &'static str, cache: &'static str) {
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

/// Whether `Accept-Encoding` lists gzip with a weight above zero.
fn accepts_gzip(request: &HeaderMap) -> bool {
    request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_files_are_the_ones_versions_json_pins() {
        let versions: serde_json::Value =
            serde_json::from_str(include_str!("../../assets/graphiql/VERSIONS.json"))
                .unwrap_or_default();
        let mut pinned = 0;
        for package in versions.as_object().into_iter().flat_map(|m| m.values()) {
            for (name, digest) in package["files"].as_object().into_iter().flatten() {
                let file = FILES.iter().find(|f| f.name == name).expect(name);
                let actual: String = Sha256::digest(file.body)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                assert_eq!(Some(actual.as_str()), digest.as_str(), "{name}");
                pinned += 1;
            }
        }
        assert_eq!(pinned, 7);
    }

    #[test]
    fn gzip_is_taken_unless_refused() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(value));
            accepts_gzip(&headers)
        };
        assert!(with("gzip, deflate, br"));
        assert!(with("br;q=1.0, gzip;q=0.8"));
        assert!(with("*"));
        assert!(!with("gzip;q=0"));
        assert!(!with("br, deflate"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
