//! Finding NUL characters (U+0000) in what a request carries. PostgreSQL cannot store NUL in
//! text and SQLite would keep it, so the error boundary refuses it everywhere, whatever the
//! backend. Each finder names the field; none returns the value, which may be a secret.
//!
//! A NUL can reach Vouch only percent-encoded in a URL or form (`%00`) or escaped in JSON
//! (`\u0000`): a raw NUL byte is not valid in either. So the common case, no NUL, costs one
//! scan of the bytes and no parsing.

use serde_json::Value;

/// Where a NUL was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NulAt {
    /// A query or form field, by name (`None` when the name itself is unfit to repeat).
    Field(Option<String>),
    /// A field of a JSON body, as a path such as `send_to.user` (`None`: the body itself).
    JsonField(Option<String>),
    /// The `n`-th segment of the path (`path.split('/')`).
    PathSegment(usize),
}

/// A name is repeated in a message only when it looks like a field name.
fn fit_to_repeat(name: &str) -> Option<String> {
    let fit = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'[' | b']'));
    fit.then(|| name.to_owned())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// In `a=1&b=2` (a URL query or an `application/x-www-form-urlencoded` body).
pub fn in_form(encoded: &[u8]) -> Option<NulAt> {
    if !contains(encoded, b"%00") && !encoded.contains(&0) {
        return None;
    }
    url::form_urlencoded::parse(encoded)
        .find(|(name, value)| name.contains('\0') || value.contains('\0'))
        .map(|(name, _)| NulAt::Field(fit_to_repeat(&name)))
}

/// In the path of the URL, still percent-encoded: there `%00` is always a NUL (a literal
/// "%00" would be written `%2500`).
pub fn in_path(path: &str) -> Option<NulAt> {
    path.split('/')
        .position(|segment| segment.contains("%00"))
        .map(NulAt::PathSegment)
}

/// In a JSON body. A body that is not JSON is left to the operation, which refuses it.
pub fn in_json(body: &[u8]) -> Option<NulAt> {
    if !contains(body, b"\\u0000") {
        return None;
    }
    let value: Value = serde_json::from_slice(body).ok()?;
    let mut at = String::new();
    in_value(&value, &mut at).map(|found| NulAt::JsonField(found.filter(|p| !p.is_empty())))
}

/// `Some(path)` of the first string holding a NUL (a key's own NUL names its parent).
fn in_value(value: &Value, at: &mut String) -> Option<Option<String>> {
    match value {
        Value::String(text) => text.contains('\0').then(|| Some(at.clone())),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            let mark = at.len();
            at.push_str(&format!("[{i}]"));
            let found = in_value(item, at);
            at.truncate(mark);
            found
        }),
        Value::Object(fields) => fields.iter().find_map(|(name, item)| {
            if name.contains('\0') {
                return Some(Some(at.clone()));
            }
            let mark = at.len();
            let Some(name) = fit_to_repeat(name) else {
                // Not a field Vouch knows; the path stops at the parent.
                return in_value(item, &mut at.clone()).map(|_| Some(at.clone()));
            };
            if !at.is_empty() {
                at.push('.');
            }
            at.push_str(&name);
            let found = in_value(item, at);
            at.truncate(mark);
            found
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_form_fields_are_named() {
        assert_eq!(
            in_form(b"tenant_id=t&user=a%00b"),
            Some(NulAt::Field(Some("user".into())))
        );
        assert_eq!(in_form(b"a=1&b=2"), None);
        assert_eq!(in_form(b"we%00ird=1"), Some(NulAt::Field(None)));
        assert_eq!(
            in_form(b"x=%2500"),
            None,
            "an encoded percent sign is not a NUL"
        );
    }

    #[test]
    fn path_segments_are_found() {
        assert_eq!(
            in_path("/api/v1/shares/ab%00cd"),
            Some(NulAt::PathSegment(4))
        );
        assert_eq!(in_path("/api/v1/shares/abcd"), None);
    }

    #[test]
    fn json_fields_are_named_by_their_path() {
        let at = |body: &str| in_json(body.as_bytes());
        assert_eq!(
            at(r#"{"content":"pass\u0000word"}"#),
            Some(NulAt::JsonField(Some("content".into())))
        );
        assert_eq!(
            at(r#"{"send_to":{"tenant_id":"t","user":"\u0000"}}"#),
            Some(NulAt::JsonField(Some("send_to.user".into())))
        );
        assert_eq!(
            at(r#"{"items":["a","b\u0000"]}"#),
            Some(NulAt::JsonField(Some("items[1]".into())))
        );
        assert_eq!(at(r#""\u0000""#), Some(NulAt::JsonField(None)));
        assert_eq!(
            at(r#"{"a":"\\u0000"}"#),
            None,
            "an escaped backslash is no NUL"
        );
        assert_eq!(at(r#"{"a":"plain"}"#), None);
        assert_eq!(at("not json \\u0000"), None);
    }
}
