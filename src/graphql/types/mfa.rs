//! What second-factor mutations return.

use async_graphql::SimpleObject;
use base64::Engine as _;

use crate::auth::totp::Enrolment;

/// A TOTP secret being enrolled: scan the QR code (or type the secret) into an
/// authenticator app, then call `confirmTotpEnrollment` with its first code. Shown once.
#[derive(SimpleObject)]
pub struct TotpEnrollment {
    /// The secret in base32, for typing into an app.
    pub secret: String,
    /// The `otpauth://totp/…` URI apps read (SHA-1, 6 digits, 30 seconds).
    pub otpauth_uri: String,
    /// The URI as a QR code: an SVG document.
    pub qr_code_svg: String,
    /// The same QR code as a `data:image/svg+xml;base64,…` URL: open it in a browser tab (or
    /// an `<img>`) to scan it.
    pub qr_code_data_url: String,
}

impl From<Enrolment> for TotpEnrollment {
    fn from(enrolment: Enrolment) -> Self {
        let encoded = base64::engine::general_purpose::STANDARD.encode(&enrolment.qr_svg);
        Self {
            secret: enrolment.secret,
            otpauth_uri: enrolment.uri,
            qr_code_svg: enrolment.qr_svg,
            qr_code_data_url: format!("data:image/svg+xml;base64,{encoded}"),
        }
    }
}

/// Single-use recovery codes, each good for one login (or reauthentication) without the
/// authenticator app. Shown once: keep them somewhere safe. New ones void the old.
#[derive(SimpleObject)]
pub struct RecoveryCodes {
    /// The codes (`xxxxx-xxxxx`; case, spaces and dashes do not matter when typed).
    pub codes: Vec<String>,
}
