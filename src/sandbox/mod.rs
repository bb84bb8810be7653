//! Test doubles of the upstream services (Microsoft, the PSAs, the SMS provider): local servers
//! speaking the same wire protocols, used by `vouch demo` and the tests, never by Vouch itself.
//! All three are built on one skeleton (`server.rs`): bind, state, fault injection, the request
//! log and the decoding of what arrives.

pub mod microsoft;
pub mod psa;
mod server;
pub mod sms;

pub use server::{Fault, RecordedRequest};

use poem::Response;
use poem::http::StatusCode;

/// Escapes text for HTML element content and quoted attribute values (the sandbox pages).
pub(crate) fn html_escape(text: &str) -> String {
    crate::web::escape_html(text)
}

pub(crate) fn plain(status: StatusCode, text: &str) -> Response {
    Response::builder()
        .status(status)
        .content_type("text/plain; charset=utf-8")
        .body(text.to_owned())
}

pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json; charset=utf-8")
        .body(body.to_string())
}

pub(crate) fn html_response(status: StatusCode, html: String) -> Response {
    Response::builder()
        .status(status)
        .content_type("text/html; charset=utf-8")
        .header("Cache-Control", "no-store")
        .body(html)
}

/// Letters and digits, for generated tokens, hashes and ids.
const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A random string of `len` characters from `alphabet`.
fn random_string(len: usize, alphabet: &[u8]) -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
        .collect()
}
