//! Signed embed loads (HaloPSA custom tab, Autotask Insight). The exact scheme is unconfirmed
//! in the vendors' documentation, so Vouch defines it here, in one place:
//!
//! - the signed string is every parameter of the load (query or form) except `sig`, decoded,
//!   sorted by name then value (bytewise), written `name=value` (raw, not percent-encoded)
//!   and joined with `&`;
//! - `sig` is the lowercase hex HMAC-SHA256 of that string, keyed with the UTF-8 bytes of the
//!   shared secret (the Halo tab's iframe secret, or the Autotask connection's secret);
//! - `ts` (Unix seconds) must be at most `psa.halopsa.max_signature_age_seconds` old (60 s of
//!   clock skew into the future are tolerated).
//!
//! The comparison is constant-time (the `hmac` crate's `verify_slice`).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::PsaError;

pub const SIGNATURE_PARAM: &str = "sig";
pub const TIMESTAMP_PARAM: &str = "ts";
const FUTURE_SKEW_SECONDS: i64 = 60;

/// The one value of `name`; `None` when absent or given twice (ambiguous loads are refused).
pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let mut values = params
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str());
    match (values.next(), values.next()) {
        (Some(value), None) => Some(value),
        _ => None,
    }
}

fn canonical(params: &[(String, String)]) -> String {
    let mut signed: Vec<&(String, String)> = params
        .iter()
        .filter(|(k, _)| k != SIGNATURE_PARAM)
        .collect();
    signed.sort_by(|a, b| {
        a.0.as_bytes()
            .cmp(b.0.as_bytes())
            .then(a.1.as_bytes().cmp(b.1.as_bytes()))
    });
    signed
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The signature of `params` under `secret` (used by tests and tools that sign loads).
pub fn sign(params: &[(String, String)], secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(canonical(params).as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Checks the signature and the age of a load.
pub fn verify(
    params: &[(String, String)],
    secret: &str,
    max_age_seconds: u64,
    now: i64,
) -> Result<(), PsaError> {
    if secret.is_empty() {
        return Err(PsaError::Misconfigured(
            "no signing secret is configured for this connection".into(),
        ));
    }
    let signature = param(params, SIGNATURE_PARAM).ok_or(PsaError::Unsigned)?;
    let signature = hex::decode(signature).map_err(|_| PsaError::BadSignature)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(canonical(params).as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| PsaError::BadSignature)?;
    let timestamp: i64 = param(params, TIMESTAMP_PARAM)
        .and_then(|ts| ts.parse().ok())
        .ok_or(PsaError::Stale)?;
    if now - timestamp > max_age_seconds as i64 || timestamp - now > FUTURE_SKEW_SECONDS {
        return Err(PsaError::Stale);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn signed_loads_verify_and_tampering_is_refused() {
        let now = 1_800_000_000;
        let mut load = params(&[
            ("ticket_id", "2001"),
            ("agent_id", "5"),
            ("ts", "1800000000"),
            ("connection", "c"),
        ]);
        let sig = sign(&load, "secret");
        load.push(("sig".into(), sig.clone()));
        assert_eq!(verify(&load, "secret", 300, now), Ok(()));
        assert_eq!(
            verify(&load, "other", 300, now),
            Err(PsaError::BadSignature)
        );
        assert_eq!(
            verify(&load, "secret", 300, now + 301),
            Err(PsaError::Stale)
        );
        let mut tampered = load.clone();
        tampered[0].1 = "2002".into();
        assert_eq!(
            verify(&tampered, "secret", 300, now),
            Err(PsaError::BadSignature)
        );
        let unsigned: Vec<_> = load.iter().filter(|(k, _)| k != "sig").cloned().collect();
        assert_eq!(
            verify(&unsigned, "secret", 300, now),
            Err(PsaError::Unsigned)
        );
        let mut doubled = load.clone();
        doubled.push(("sig".into(), sig));
        assert_eq!(
            verify(&doubled, "secret", 300, now),
            Err(PsaError::Unsigned)
        );
    }

    #[test]
    fn the_canonical_string_is_sorted_and_raw() {
        let load = params(&[("b", "2 3"), ("a", "x&y"), ("sig", "zz")]);
        assert_eq!(canonical(&load), "a=x&y&b=2 3");
    }
}
