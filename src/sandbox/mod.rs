//! Test doubles of the upstream services (Microsoft, the PSAs, the SMS provider): local servers
//! speaking the same wire protocols, used by `vouch demo` and the tests, never by Vouch itself.

pub mod microsoft;
pub mod psa;
pub mod sms;

/// Escapes text for HTML element content and quoted attribute values (the sandbox pages).
pub(crate) fn html_escape(text: &str) -> String {
    crate::web::escape_html(text)
}
