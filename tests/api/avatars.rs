//! Avatars through the GraphQL multipart request spec: kept re-encoded with a square
//! version, served from `/uploads`, removed with the avatar or the account; every hostile
//! file refused with nothing stored.

use std::io::Cursor;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use image::{DynamicImage, ImageFormat};
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, PASSWORD, TestApp, error_code, error_fields};

both_backends!(
    an_avatar_is_kept_re_encoded_and_served,
    hostile_files_are_refused_and_nothing_is_stored,
    replacing_removing_and_deleting_the_account_remove_the_files,
    uploads_serve_nothing_else,
);

const UPLOAD: &str = "mutation($f: Upload!) { uploadAvatar(file: $f) { profile { avatarUrl } } }";
const BOUNDARY: &str = "usergraph-test-boundary";

/// One file part: its field name, file name, declared type and bytes.
struct Part<'a>(&'a str, &'a str, &'a str, &'a [u8]);

/// A multipart request after the spec: `operations`, `map`, then the files.
fn multipart(token: &str, operations: &Value, map: &Value, files: &[Part<'_>]) -> Request<Body> {
    let mut body = Vec::new();
    let mut field = |name: &str, extra: &str, content: &[u8]| {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"{extra}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    };
    field("operations", "", operations.to_string().as_bytes());
    field("map", "", map.to_string().as_bytes());
    for Part(name, filename, kind, bytes) in files {
        field(
            name,
            &format!("; filename=\"{filename}\"\r\nContent-Type: {kind}"),
            bytes,
        );
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    Request::post("/graphql")
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .header("authorization", format!("Bearer {token}"))
        .body(Body::from(body))
        .unwrap()
}

async fn upload(
    app: &TestApp,
    token: &str,
    filename: &str,
    kind: &str,
    bytes: &[u8],
) -> (StatusCode, Value) {
    let operations = json!({ "query": UPLOAD, "variables": { "f": null } });
    let map = json!({ "0": ["variables.f"] });
    let request = multipart(
        token,
        &operations,
        &map,
        &[Part("0", filename, kind, bytes)],
    );
    let (status, _, body) = app.send(request).await;
    let answer = serde_json::from_slice(&body)
        .unwrap_or_else(|_| panic!("not JSON ({status}): {}", String::from_utf8_lossy(&body)));
    (status, answer)
}

fn encoded(picture: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    picture.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// A 640×480 picture with some detail, as `format`.
fn photo(format: ImageFormat) -> Vec<u8> {
    let picture = image::RgbImage::from_fn(640, 480, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    });
    encoded(&DynamicImage::ImageRgb8(picture), format)
}

/// A JPEG with an EXIF segment holding GPS coordinates, right after its start marker.
fn jpeg_with_gps() -> Vec<u8> {
    let plain = photo(ImageFormat::Jpeg);
    let payload = b"Exif\0\0GPSLatitude 48.8584 GPSLongitude 2.2945 secret-location";
    let length = u16::try_from(payload.len() + 2).unwrap().to_be_bytes();
    let mut jpeg = plain[..2].to_vec();
    jpeg.extend_from_slice(&[0xFF, 0xE1, length[0], length[1]]);
    jpeg.extend_from_slice(payload);
    jpeg.extend_from_slice(&plain[2..]);
    jpeg
}

fn uploaded_files(app: &TestApp) -> Vec<String> {
    let dir = app.data_dir().join("uploads");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

async fn get(app: &TestApp, path: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
    app.send(Request::get(path).body(Body::empty()).unwrap())
        .await
}

fn avatar_url(answer: &Value) -> &str {
    answer["data"]["uploadAvatar"]["profile"]["avatarUrl"]
        .as_str()
        .unwrap_or_else(|| panic!("no avatarUrl: {answer}"))
}

async fn an_avatar_is_kept_re_encoded_and_served(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (token, _) = app.user("face@example.com").await;
    // Declared as a PNG named .png: the bytes say JPEG, and JPEG it is.
    let (status, answer) = upload(&app, &token, "me.png", "image/png", &jpeg_with_gps()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let url = avatar_url(&answer);
    assert!(
        url.starts_with("/uploads/") && url.ends_with("-256.jpg"),
        "{url}"
    );
    let (status, headers, body) = get(&app, url).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "image/jpeg");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(
        headers["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let square = image::load_from_memory(&body).unwrap();
    assert_eq!((square.width(), square.height()), (256, 256));
    // Re-encoded: the location did not survive, in either file.
    let files = uploaded_files(&app);
    assert_eq!(files.len(), 2, "{files:?}");
    for name in &files {
        let bytes = std::fs::read(app.data_dir().join("uploads").join(name)).unwrap();
        assert!(
            !bytes.windows(15).any(|w| w == b"secret-location"),
            "{name}"
        );
        assert!(!bytes.windows(4).any(|w| w == b"Exif"), "{name}");
    }
    let full = url.replace("-256", "");
    let (status, _, body) = get(&app, &full).await;
    assert_eq!(status, StatusCode::OK);
    let whole = image::load_from_memory(&body).unwrap();
    assert_eq!((whole.width(), whole.height()), (640, 480));
    let me = app
        .gql("{ me { profile { avatarUrl } } }", json!({}), Some(&token))
        .await;
    assert_eq!(me["data"]["me"]["profile"]["avatarUrl"], url);
    // PNG and WebP are kept as what they are.
    for (format, ext, media) in [
        (ImageFormat::Png, "png", "image/png"),
        (ImageFormat::WebP, "webp", "image/webp"),
    ] {
        let (_, answer) = upload(
            &app,
            &token,
            "x",
            "application/octet-stream",
            &photo(format),
        )
        .await;
        let url = avatar_url(&answer).to_owned();
        assert!(url.ends_with(&format!("-256.{ext}")), "{url}");
        let (_, headers, _) = get(&app, &url).await;
        assert_eq!(headers["content-type"], media);
    }
    assert_eq!(app.audit("user.avatar_upload").await.len(), 3);
}

/// `png` with its header claiming `width`×`height` (CRC fixed), its pixels unchanged.
fn claiming(png: &[u8], width: u32, height: u32) -> Vec<u8> {
    let mut forged = png.to_vec();
    // Signature (8), IHDR length (4), "IHDR" (4), then width and height.
    forged[16..20].copy_from_slice(&width.to_be_bytes());
    forged[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32(&forged[12..29]);
    forged[29..33].copy_from_slice(&crc.to_be_bytes());
    forged
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

async fn hostile_files_are_refused_and_nothing_is_stored(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &["--max-upload-bytes", "65536"]).await else {
        return;
    };
    let (token, _) = app.user("attacker@example.com").await;
    let small = encoded(&DynamicImage::new_rgb8(8, 8), ImageFormat::Png);
    let mut appended = small.clone();
    appended.extend_from_slice(b"PK\x03\x04<html><script>alert(1)</script></html>");
    let cases: Vec<(&str, &str, &str, Vec<u8>, &str)> = vec![
        (
            "HTML named .png",
            "cat.png",
            "image/png",
            b"<!DOCTYPE html><html><script>alert(1)</script></html>".to_vec(),
            "not a JPEG",
        ),
        (
            "SVG named .png",
            "cat.png",
            "image/png",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>".to_vec(),
            "not a JPEG",
        ),
        (
            "a truncated image",
            "cut.png",
            "image/png",
            small[..small.len() - 30].to_vec(),
            "truncated",
        ),
        ("a polyglot", "poly.png", "image/png", appended, "polyglot"),
        (
            "a decompression bomb",
            "bomb.png",
            "image/png",
            claiming(&small, 60_000, 60_000),
            "pixels",
        ),
        (
            "a path in the file name",
            "../../etc/cron.d/x.png",
            "image/png",
            small.clone(),
            "path",
        ),
    ];
    for (what, filename, kind, bytes, why) in cases {
        let (status, answer) = upload(&app, &token, filename, kind, &bytes).await;
        assert_eq!(status, StatusCode::OK, "{what}: {answer}");
        assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{what}: {answer}");
        assert_eq!(error_fields(&answer), ["file"], "{what}");
        let message = answer["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(why), "{what}: {message}");
    }
    // Two files in one request.
    let operations = json!({ "query": UPLOAD, "variables": { "f": null } });
    let map = json!({ "0": ["variables.f"], "1": ["variables.f"] });
    let two = multipart(
        &token,
        &operations,
        &map,
        &[
            Part("0", "a.png", "image/png", &small),
            Part("1", "b.png", "image/png", &small),
        ],
    );
    let (status, _, body) = app.send(two).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{answer}");
    // A body over the limit (the upload's 64 KiB beside the 1 MiB of operations).
    let big: Vec<u8> = (0..1_300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let (status, answer) = upload(&app, &token, "big.png", "image/png", &big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert_eq!(error_code(&answer), "BAD_USER_INPUT");
    // Nothing was stored, and the server still serves.
    assert!(
        uploaded_files(&app).is_empty(),
        "{:?}",
        uploaded_files(&app)
    );
    let me = app
        .gql("{ me { profile { avatarUrl } } }", json!({}), Some(&token))
        .await;
    assert_eq!(me["data"]["me"]["profile"]["avatarUrl"], Value::Null);
    let (status, answer) = upload(&app, &token, "ok.png", "image/png", &small).await;
    assert_eq!(status, StatusCode::OK);
    avatar_url(&answer);
}

async fn replacing_removing_and_deleting_the_account_remove_the_files(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (token, _) = app.user("tidy@example.com").await;
    let png = photo(ImageFormat::Png);
    let (_, first) = upload(&app, &token, "a.png", "image/png", &png).await;
    let first = avatar_url(&first).to_owned();
    let (_, second) = upload(&app, &token, "b.png", "image/png", &png).await;
    let second = avatar_url(&second).to_owned();
    assert_ne!(first, second);
    assert_eq!(
        uploaded_files(&app).len(),
        2,
        "the first avatar's files went"
    );
    assert_eq!(get(&app, &first).await.0, StatusCode::NOT_FOUND);
    let removed = app
        .gql(
            "mutation { removeAvatar { profile { avatarUrl } } }",
            json!({}),
            Some(&token),
        )
        .await;
    assert_eq!(
        removed["data"]["removeAvatar"]["profile"]["avatarUrl"],
        Value::Null,
        "{removed}"
    );
    assert!(uploaded_files(&app).is_empty());
    upload(&app, &token, "c.png", "image/png", &png).await;
    assert_eq!(uploaded_files(&app).len(), 2);
    let deleted = app
        .gql(
            "mutation($p: String!) { deleteMyAccount(password: $p) }",
            json!({ "p": PASSWORD }),
            Some(&token),
        )
        .await;
    assert_eq!(deleted["data"]["deleteMyAccount"], true, "{deleted}");
    assert!(
        uploaded_files(&app).is_empty(),
        "{:?}",
        uploaded_files(&app)
    );
}

async fn uploads_serve_nothing_else(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let dir = app.data_dir().join("uploads");
    std::fs::write(dir.join("notes.txt"), "private").unwrap();
    std::fs::write(
        dir.join(".0190c2c4-0b65-7a1e-8f3e-0d4f1c2b3a49.png.partial"),
        "x",
    )
    .unwrap();
    for path in [
        "/uploads/notes.txt",
        "/uploads/..%2Fkeys%2F19700101T000000Z.pem",
        "/uploads/.0190c2c4-0b65-7a1e-8f3e-0d4f1c2b3a49.png.partial",
        "/uploads/0190c2c4-0b65-7a1e-8f3e-0d4f1c2b3a49.png",
        "/uploads/",
    ] {
        assert_eq!(get(&app, path).await.0, StatusCode::NOT_FOUND, "{path}");
    }
}
