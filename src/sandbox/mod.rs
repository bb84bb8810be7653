//! Test doubles of the upstream services (Microsoft, the PSAs, the SMS provider): local servers
//! speaking the same wire protocols, used by `vouch demo` and the tests, never by Vouch itself.

pub mod microsoft;
pub mod psa;
pub mod sms;

use poem::Response;
use poem::http::StatusCode;

/// Escapes text for HTML element content and quoted attribute values (the sandbox pages).
pub(crate) fn html_escape(text: &str) -> String {
    crate::web::escape_html(text)
}

/// An injected fault's answer: the status, the body as given (JSON when it looks like JSON)
/// and `Retry-After` when set.
pub(crate) fn fault_response(status: u16, body: String, retry_after: Option<u64>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let trimmed = body.trim_start();
    let content_type = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        "application/json; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    let mut builder = Response::builder()
        .status(status)
        .content_type(content_type);
    if let Some(seconds) = retry_after {
        builder = builder.header("Retry-After", seconds.to_string());
    }
    builder.body(body)
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
