//! How the host pages build the pod URLs, and the signature of the Halo tab and the Autotask
//! Insight loads. The scheme is documented in the module docs of [`super`]; this is the one
//! place that implements it (Vouch's verifier implements the same scheme independently).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::sandbox::server::form_pairs;

/// The parameter carrying the signature (lowercase hex HMAC-SHA256).
pub const SIGNATURE_PARAM: &str = "sig";
/// The parameter carrying the signing time (Unix seconds, UTC).
pub const TIMESTAMP_PARAM: &str = "ts";
/// Halo tab: the ticket id.
pub const HALO_TICKET_PARAM: &str = "ticket_id";
/// Halo tab: the agent (technician) id.
pub const HALO_AGENT_PARAM: &str = "agent_id";
/// Autotask Insight: the ticket id.
pub const AUTOTASK_TICKET_PARAM: &str = "ticketId";
/// Autotask Insight: the resource (technician) id.
pub const AUTOTASK_RESOURCE_PARAM: &str = "resourceId";
/// ConnectWise pod: the record id (what Manage puts for `[cw_id]`).
pub const CW_ID_PARAM: &str = "id";
/// ConnectWise pod: the screen (what Manage puts for `[cw_screen]`).
pub const CW_SCREEN_PARAM: &str = "screen";
/// ConnectWise pod: the screen name of a service ticket.
pub const CW_SCREEN_SERVICE_TICKET: &str = "service_ticket";

/// A pod URL with the PSA's parameters added (and signed, for Halo and Autotask).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PodLoad {
    /// The full URL for a GET load (what goes into the iframe's `src`).
    pub url: String,
    /// The URL without query and fragment (a form POST's `action`).
    pub action: String,
    /// Every parameter of `url`, decoded, in URL order (a form POST's fields).
    pub params: Vec<(String, String)>,
    /// `scheme://host[:port]` of the pod, what `postMessage` targets.
    pub origin: String,
}

/// Why a pod URL cannot be used.
pub(super) fn check_pod_url(pod_url: &str) -> Result<url::Url, String> {
    let parsed = url::Url::parse(pod_url).map_err(|e| format!("not a valid URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err("not an http(s) URL".to_owned());
    }
    Ok(parsed)
}

/// The ConnectWise pod URL for a ticket: Manage replaces the `[cw_id]` and `[cw_screen]`
/// tokens of the configured URL; a URL without tokens gets `id=..&screen=service_ticket`
/// appended (as if configured with `?id=[cw_id]&screen=[cw_screen]`).
pub(super) fn connectwise_pod(pod_url: &str, ticket_id: u64) -> Result<PodLoad, String> {
    let id = ticket_id.to_string();
    let tokens = [
        ("[cw_id]", id.as_str()),
        ("%5Bcw_id%5D", id.as_str()),
        ("%5bcw_id%5d", id.as_str()),
        ("[cw_screen]", CW_SCREEN_SERVICE_TICKET),
        ("%5Bcw_screen%5D", CW_SCREEN_SERVICE_TICKET),
        ("%5bcw_screen%5d", CW_SCREEN_SERVICE_TICKET),
    ];
    let url = if tokens.iter().any(|(token, _)| pod_url.contains(token)) {
        tokens
            .iter()
            .fold(pod_url.to_owned(), |url, (token, value)| {
                url.replace(token, value)
            })
    } else {
        with_params(
            pod_url,
            &[
                (CW_ID_PARAM, id),
                (CW_SCREEN_PARAM, CW_SCREEN_SERVICE_TICKET.to_owned()),
            ],
        )
    };
    load(&url)
}

/// The pod URL with `added` appended (replacing parameters of the same names, and any
/// `sig`), then signed: `sig` = hex HMAC-SHA256 over [`canonical`] of every parameter.
pub(super) fn signed_pod(
    pod_url: &str,
    added: &[(&str, String)],
    secret: &str,
) -> Result<PodLoad, String> {
    check_pod_url(pod_url)?;
    let (head, fragment) = split_fragment(pod_url);
    let (base, query) = head.split_once('?').unwrap_or((head, ""));
    let mut pieces: Vec<String> = query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .filter(|piece| {
            let name = url::form_urlencoded::parse(piece.as_bytes())
                .next()
                .map(|(name, _)| name)
                .unwrap_or_default();
            name != SIGNATURE_PARAM && !added.iter().any(|(added, _)| *added == name)
        })
        .map(str::to_owned)
        .collect();
    pieces.extend(added.iter().map(|(name, value)| encode_pair(name, value)));
    let unsigned = pieces.join("&");
    let signature = sign(secret, &canonical(&form_pairs(unsigned.as_bytes())));
    pieces.push(encode_pair(SIGNATURE_PARAM, &signature));
    load(&format!("{base}?{}{fragment}", pieces.join("&")))
}

/// The string that is signed: every parameter except `sig`, decoded as
/// `application/x-www-form-urlencoded`, sorted by name and then value (byte order), written
/// `name=value` without any encoding and joined with `&`.
pub(super) fn canonical(params: &[(String, String)]) -> String {
    let mut params: Vec<&(String, String)> = params
        .iter()
        .filter(|(name, _)| name != SIGNATURE_PARAM)
        .collect();
    params.sort_by(|a, b| {
        a.0.as_bytes()
            .cmp(b.0.as_bytes())
            .then(a.1.as_bytes().cmp(b.1.as_bytes()))
    });
    params
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Lowercase hex HMAC-SHA256 of `message`, keyed with the UTF-8 bytes of `secret`.
pub(super) fn sign(secret: &str, message: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn load(url: &str) -> Result<PodLoad, String> {
    let parsed = check_pod_url(url)?;
    let (head, _) = split_fragment(url);
    let (action, query) = head.split_once('?').unwrap_or((head, ""));
    Ok(PodLoad {
        url: url.to_owned(),
        action: action.to_owned(),
        params: form_pairs(query.as_bytes()),
        origin: parsed.origin().ascii_serialization(),
    })
}

/// Appends parameters to a URL's query, before any fragment.
fn with_params(url: &str, params: &[(&str, String)]) -> String {
    let (head, fragment) = split_fragment(url);
    let encoded: Vec<String> = params.iter().map(|(n, v)| encode_pair(n, v)).collect();
    let separator = if !head.contains('?') {
        "?"
    } else if head.ends_with('?') || head.ends_with('&') {
        ""
    } else {
        "&"
    };
    format!("{head}{separator}{}{fragment}", encoded.join("&"))
}

/// `(before '#', '#...' or "")`.
fn split_fragment(url: &str) -> (&str, &str) {
    match url.find('#') {
        Some(index) => url.split_at(index),
        None => (url, ""),
    }
}

fn encode_pair(name: &str, value: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair(name, value)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_sorted_decoded_params_and_keeps_the_pods_own() {
        let load = signed_pod(
            "http://127.0.0.1:8080/pods/halopsa?connection=abc&x=a%20b#frag",
            &[
                ("ticket_id", "2001".to_owned()),
                ("ts", "1700000000".to_owned()),
            ],
            "secret",
        )
        .unwrap();
        assert!(load.url.starts_with(
            "http://127.0.0.1:8080/pods/halopsa?connection=abc&x=a%20b&ticket_id=2001&ts=1700000000&sig="
        ));
        assert!(load.url.ends_with("#frag"));
        let expected = sign(
            "secret",
            "connection=abc&ticket_id=2001&ts=1700000000&x=a b",
        );
        assert_eq!(load.params.last().unwrap(), &("sig".to_owned(), expected));
        assert_eq!(load.action, "http://127.0.0.1:8080/pods/halopsa");
        assert_eq!(load.origin, "http://127.0.0.1:8080");
    }

    #[test]
    fn replaces_params_the_psa_sets() {
        let load = signed_pod(
            "http://h/p?ts=1&sig=old&a=1",
            &[("ts", "2".to_owned())],
            "k",
        )
        .unwrap();
        assert_eq!(load.params.len(), 3);
        assert!(load.url.starts_with("http://h/p?a=1&ts=2&sig="));
    }

    #[test]
    fn connectwise_tokens_or_appended() {
        let load = connectwise_pod("http://h/pods/cw?x=1", 1001).unwrap();
        assert_eq!(
            load.url,
            "http://h/pods/cw?x=1&id=1001&screen=service_ticket"
        );
        let load = connectwise_pod("http://h/pods/cw?id=[cw_id]&s=[cw_screen]", 7).unwrap();
        assert_eq!(load.url, "http://h/pods/cw?id=7&s=service_ticket");
        let load = connectwise_pod("http://h/pods/cw", 7).unwrap();
        assert_eq!(load.url, "http://h/pods/cw?id=7&screen=service_ticket");
        assert!(connectwise_pod("not a url", 7).is_err());
    }
}
