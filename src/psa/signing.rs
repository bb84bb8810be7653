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
//!
//! A rotated secret keeps working until its grace period ends ([`verify_rotating`]): a load
//! signed with the previous secret verifies while `now` is before its `expires_at`.

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

/// A secret replaced by a rotation, still accepted until `expires_at`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct PreviousSecret {
    pub value: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// Checks a load against the current secret and, while its grace period runs (`now` before
/// its `expires_at`), the previous one. `now` is Unix seconds (the clock the tests set).
pub fn verify_rotating(
    params: &[(String, String)],
    secret: &str,
    previous: Option<&PreviousSecret>,
    max_age_seconds: u64,
    now: i64,
) -> Result<(), PsaError> {
    match verify(params, secret, max_age_seconds, now) {
        Err(PsaError::BadSignature) => match previous {
            Some(previous)
                if now < previous.expires_at.timestamp() && !previous.value.is_empty() =>
            {
                verify(params, &previous.value, max_age_seconds, now)
            }
            _ => Err(PsaError::BadSignature),
        },
        other => other,
    }
}

/// The signing secrets of a connection: the current one and, during a rotation's grace, the
/// previous one.
pub struct SigningSecrets<'a> {
    pub current: &'a str,
    pub previous: Option<&'a PreviousSecret>,
}

/// The ticket id and the numeric id of the technician (`member_param`) of a signed load, once
/// its signature verifies (locally, no PSA call). HaloPSA tab loads and Autotask Insight loads
/// both carry these two.
pub fn verified_load(
    load: &crate::psa::EmbedLoad,
    secrets: SigningSecrets<'_>,
    max_age_seconds: u64,
    ticket_param: &str,
    member_param: &str,
) -> Result<crate::psa::SignedEmbed, PsaError> {
    let crate::psa::EmbedLoad::Signed(params) = load else {
        return Err(PsaError::Unsigned);
    };
    verify_rotating(
        params,
        secrets.current,
        secrets.previous,
        max_age_seconds,
        chrono::Utc::now().timestamp(),
    )?;
    let ticket_id = param(params, ticket_param)
        .ok_or(PsaError::Unsigned)?
        .to_owned();
    let member_id: u64 = param(params, member_param)
        .and_then(|id| id.parse().ok())
        .ok_or(PsaError::Unsigned)?;
    Ok(crate::psa::SignedEmbed {
        ticket_id,
        member_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_previous_secret_verifies_until_its_grace_ends_and_never_after() {
        let now = 1_800_000_000;
        let mut load = params(&[("ticket_id", "2001"), ("ts", "1800000000")]);
        load.push(("sig".into(), sign(&load, "old")));
        let previous = PreviousSecret {
            value: "old".into(),
            expires_at: chrono::DateTime::from_timestamp(now + 10, 0).unwrap(),
        };
        assert_eq!(
            verify_rotating(&load, "new", Some(&previous), 300, now),
            Ok(())
        );
        assert_eq!(
            verify_rotating(&load, "new", Some(&previous), 300, now + 9),
            Ok(())
        );
        // At its expiry and after, and with no previous secret at all: refused.
        for at in [now + 10, now + 11] {
            let mut later = params(&[("ticket_id", "2001"), ("ts", &at.to_string())]);
            later.push(("sig".into(), sign(&later, "old")));
            assert_eq!(
                verify_rotating(&later, "new", Some(&previous), 300, at),
                Err(PsaError::BadSignature)
            );
        }
        assert_eq!(
            verify_rotating(&load, "new", None, 300, now),
            Err(PsaError::BadSignature)
        );
        // The current secret works throughout; a stale load is stale with either.
        let mut current = params(&[("ticket_id", "2001"), ("ts", "1800000000")]);
        current.push(("sig".into(), sign(&current, "new")));
        assert_eq!(
            verify_rotating(&current, "new", Some(&previous), 300, now + 100),
            Ok(())
        );
        assert_eq!(
            verify_rotating(&load, "new", Some(&previous), 1, now + 5),
            Err(PsaError::Stale)
        );
    }

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
