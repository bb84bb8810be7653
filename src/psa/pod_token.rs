//! The pod token: after the PSA vouched for an embed load, the pod gets a short-lived token
//! bound to the MSP, the PSA connection, the technician and the ticket. The pod keeps it in
//! memory and sends it with each action (`Authorization: Bearer ...`); no cookies, since
//! browsers block third-party cookies in iframes.
//!
//! Format: `base64url(claims JSON) "." key-id "." hex HMAC-SHA256(claims)`, keyed with the
//! pod-token key derived from the master key (`MacPurpose::PodToken`, see `store::crypto`),
//! so any instance sharing the master key can check it, and no other digest Vouch makes
//! passes for a pod token.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::store::crypto::{Keyring, MacPurpose};

/// A pod stays usable for an hour; then the technician reloads the ticket.
pub const LIFETIME_SECONDS: i64 = 3600;

/// What a pod token vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodClaims {
    pub msp: Uuid,
    pub connection: Uuid,
    pub technician: Uuid,
    pub ticket: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Set when the pod was opened from the MSP console (its Tickets page) by a signed-in
    /// console user: the audit names them, and each pod call checks they may still sign in.
    /// `technician` is then the technician record that console user acts through on this
    /// connection. Absent from the tokens the PSAs' loads get.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_user: Option<ConsoleActor>,
}

/// The console user a console-opened pod acts for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleActor {
    pub id: Uuid,
    pub name: String,
}

pub fn issue(
    keyring: &Keyring,
    msp: Uuid,
    connection: Uuid,
    technician: Uuid,
    ticket: &str,
) -> String {
    sign(
        keyring,
        &PodClaims {
            msp,
            connection,
            technician,
            ticket: ticket.to_owned(),
            exp: Utc::now().timestamp() + LIFETIME_SECONDS,
            console_user: None,
        },
    )
}

/// A token for a pod a console user opened from the MSP console, in their own name.
pub fn issue_for_console_user(
    keyring: &Keyring,
    msp: Uuid,
    connection: Uuid,
    technician: Uuid,
    ticket: &str,
    console_user: ConsoleActor,
) -> String {
    sign(
        keyring,
        &PodClaims {
            msp,
            connection,
            technician,
            ticket: ticket.to_owned(),
            exp: Utc::now().timestamp() + LIFETIME_SECONDS,
            console_user: Some(console_user),
        },
    )
}

fn sign(keyring: &Keyring, claims: &PodClaims) -> String {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialise"));
    let mac = keyring.mac_hex(MacPurpose::PodToken, &payload);
    format!("{payload}.{mac}")
}

/// Why a pod token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Invalid,
    Expired,
}

pub fn verify(keyring: &Keyring, token: &str) -> Result<PodClaims, TokenError> {
    let (payload, mac) = token.split_once('.').ok_or(TokenError::Invalid)?;
    if !keyring.verify_mac(MacPurpose::PodToken, payload, mac) {
        return Err(TokenError::Invalid);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::Invalid)?;
    let claims: PodClaims = serde_json::from_slice(&bytes).map_err(|_| TokenError::Invalid)?;
    if claims.exp <= Utc::now().timestamp() {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::crypto::MasterKey;

    #[test]
    fn tokens_verify_and_cannot_be_altered() {
        let ring = Keyring::new(
            MasterKey::parse(&MasterKey::generate_encoded()).unwrap(),
            [],
        );
        let token = issue(&ring, Uuid::nil(), Uuid::nil(), Uuid::nil(), "1001");
        let claims = verify(&ring, &token).unwrap();
        assert_eq!(claims.ticket, "1001");
        // Another ticket in the claims, same MAC: refused.
        let forged_claims = PodClaims {
            ticket: "1002".into(),
            ..claims
        };
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged_claims).unwrap());
        let mac = token.split_once('.').unwrap().1;
        assert_eq!(
            verify(&ring, &format!("{forged_payload}.{mac}")),
            Err(TokenError::Invalid)
        );
        let other = Keyring::new(
            MasterKey::parse(&MasterKey::generate_encoded()).unwrap(),
            [],
        );
        assert_eq!(verify(&other, &token), Err(TokenError::Invalid));
        assert_eq!(verify(&ring, "garbage"), Err(TokenError::Invalid));
    }

    #[test]
    fn a_digest_made_for_another_purpose_is_no_pod_token() {
        let ring = Keyring::new(
            MasterKey::parse(&MasterKey::generate_encoded()).unwrap(),
            [],
        );
        let token = issue(&ring, Uuid::nil(), Uuid::nil(), Uuid::nil(), "1001");
        let payload = token.split_once('.').unwrap().0;
        // Same claims, same master key, but the MAC of an SMS code digest: refused.
        let code_mac = ring.mac_hex(MacPurpose::SmsCode, payload);
        assert_eq!(
            verify(&ring, &format!("{payload}.{code_mac}")),
            Err(TokenError::Invalid)
        );
        assert!(verify(&ring, &token).is_ok());
    }
}
