//! Browser pages that are not part of the JSON API: the pod, the secure-share pages end
//! users open from an SMS, the one-tap verification page, the admin-consent result and the
//! landing page. All of them render through [`page`], under one layout.

pub mod brand;
pub mod consent;
pub mod console;
pub mod landing;
pub mod mount;
pub mod page;
pub mod pod;
pub mod share;
pub mod verify;

/// Escapes text for HTML element content and quoted attribute values. The pages escape
/// through their templates; the sandbox's hand-built pages use this.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            _ => out.push(c),
        }
    }
    out
}
