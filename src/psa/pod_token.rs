//! The pod token: after the PSA vouched for an embed load, the pod gets a short-lived token
//! bound to the MSP, the PSA connection, the technician and the ticket. The pod keeps it in
//! memory and sends it with each action (`Authorization: Bearer ...`); no cookies, since
//! browsers block third-party cookies in iframes.
//!
//! A console user gets one too, for the same panel on a console page: on a ticket (the
//! Tickets page, as in the PSA) or on a contact, a user of one of the MSP's tenants with no
//! ticket at all (the Contacts page). What a token is for is its [`PodSubject`].
//!
//! Format: `base64url(claims JSON) "." key-id "." hex HMAC-SHA256(claims)`, keyed with the
//! pod-token key derived from the master key (`MacPurpose::PodToken`, see `store::crypto`),
//! so any instance sharing the master key can check it, and no other digest Vouch makes
//! passes for a pod token.
//!
//! The claims JSON is flat (`WireClaims`): a ticket token carries `connection`, `technician`
//! and `ticket`, exactly as the tokens PSA loads got before contacts existed, so those still
//! verify; a contact token carries `tenant` and `user` instead. A payload with both, or with
//! neither, or a contact without the console user and session that opened it, is invalid.

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
#[serde(try_from = "WireClaims", into = "WireClaims")]
pub struct PodClaims {
    pub msp: Uuid,
    /// What the pod acts on.
    pub subject: PodSubject,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Set when the pod was opened from the MSP console by a signed-in console user: the
    /// audit names them, and each pod call checks that their console session is still
    /// alive. Always set on a [`PodSubject::Contact`]; absent from the tokens the PSAs'
    /// loads get.
    pub console_user: Option<ConsoleActor>,
}

/// What a pod acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PodSubject {
    /// A PSA ticket: everything is derived from the ticket (its company's tenant, its
    /// contact), and notes go to it. `technician` is the technician record acting (for a
    /// console user, the record they act through on this connection).
    Ticket {
        connection: Uuid,
        technician: Uuid,
        ticket: String,
    },
    /// A user of one of the MSP's tenants, opened from the console's Contacts page: no PSA,
    /// no ticket, no notes; the console user acts in their own name.
    Contact {
        tenant: Uuid,
        /// The user's Entra (Azure AD) object id.
        object_id: String,
    },
}

impl PodSubject {
    /// The ticket, for a ticket subject.
    pub fn ticket(&self) -> Option<&str> {
        match self {
            PodSubject::Ticket { ticket, .. } => Some(ticket),
            PodSubject::Contact { .. } => None,
        }
    }
}

/// The console user a console-opened pod acts for, and the console session it lives in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleActor {
    pub id: Uuid,
    pub name: String,
    /// The console session (sign-in) that opened the pod: the pod ends with it.
    pub session: Uuid,
}

/// The claims as they travel (see the module's documentation).
#[derive(Serialize, Deserialize)]
struct WireClaims {
    msp: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    connection: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    technician: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ticket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tenant: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    console_user: Option<WireActor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    console_session: Option<Uuid>,
}

#[derive(Serialize, Deserialize)]
struct WireActor {
    id: Uuid,
    name: String,
}

impl TryFrom<WireClaims> for PodClaims {
    type Error = &'static str;

    fn try_from(wire: WireClaims) -> Result<Self, Self::Error> {
        let subject = match (
            wire.connection,
            wire.technician,
            wire.ticket,
            wire.tenant,
            wire.user,
        ) {
            (Some(connection), Some(technician), Some(ticket), None, None) => PodSubject::Ticket {
                connection,
                technician,
                ticket,
            },
            (None, None, None, Some(tenant), Some(object_id)) => {
                PodSubject::Contact { tenant, object_id }
            }
            _ => return Err("a pod token names one ticket or one contact"),
        };
        let console_user = match (wire.console_user, wire.console_session) {
            (Some(actor), Some(session)) => Some(ConsoleActor {
                id: actor.id,
                name: actor.name,
                session,
            }),
            (None, None) => None,
            _ => return Err("a console user comes with their console session"),
        };
        if matches!(subject, PodSubject::Contact { .. }) && console_user.is_none() {
            return Err("only a console user opens a contact's pod");
        }
        Ok(PodClaims {
            msp: wire.msp,
            subject,
            exp: wire.exp,
            console_user,
        })
    }
}

impl From<PodClaims> for WireClaims {
    fn from(claims: PodClaims) -> Self {
        let mut wire = WireClaims {
            msp: claims.msp,
            connection: None,
            technician: None,
            ticket: None,
            tenant: None,
            user: None,
            exp: claims.exp,
            console_session: claims.console_user.as_ref().map(|a| a.session),
            console_user: claims.console_user.map(|a| WireActor {
                id: a.id,
                name: a.name,
            }),
        };
        match claims.subject {
            PodSubject::Ticket {
                connection,
                technician,
                ticket,
            } => {
                wire.connection = Some(connection);
                wire.technician = Some(technician);
                wire.ticket = Some(ticket);
            }
            PodSubject::Contact { tenant, object_id } => {
                wire.tenant = Some(tenant);
                wire.user = Some(object_id);
            }
        }
        wire
    }
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
            subject: PodSubject::Ticket {
                connection,
                technician,
                ticket: ticket.to_owned(),
            },
            exp: Utc::now().timestamp() + LIFETIME_SECONDS,
            console_user: None,
        },
    )
}

/// A token for a pod a console user opened from the MSP console, in their own name: on a
/// ticket (through their technician record on its connection) or on a contact.
pub fn issue_for_console_user(
    keyring: &Keyring,
    msp: Uuid,
    subject: PodSubject,
    console_user: ConsoleActor,
) -> String {
    sign(
        keyring,
        &PodClaims {
            msp,
            subject,
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
    /// Expired, and opened from the console (the console page is reloaded, not the PSA).
    ExpiredConsole,
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
        return Err(if claims.console_user.is_some() {
            TokenError::ExpiredConsole
        } else {
            TokenError::Expired
        });
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
        assert_eq!(claims.subject.ticket(), Some("1001"));
        // Another ticket in the claims, same MAC: refused.
        let forged_claims = PodClaims {
            subject: PodSubject::Ticket {
                connection: Uuid::nil(),
                technician: Uuid::nil(),
                ticket: "1002".into(),
            },
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

    #[test]
    fn a_ticket_token_keeps_the_wire_format_psa_loads_always_had() {
        let ring = Keyring::new(
            MasterKey::parse(&MasterKey::generate_encoded()).unwrap(),
            [],
        );
        // The claims exactly as a PSA load's token carried them before contacts existed.
        let connection = Uuid::new_v4();
        let technician = Uuid::new_v4();
        let old = serde_json::json!({
            "msp": Uuid::nil(),
            "connection": connection,
            "technician": technician,
            "ticket": "2001",
            "exp": Utc::now().timestamp() + 60,
        });
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&old).unwrap());
        let token = format!("{payload}.{}", ring.mac_hex(MacPurpose::PodToken, &payload));
        let claims = verify(&ring, &token).unwrap();
        assert_eq!(
            claims.subject,
            PodSubject::Ticket {
                connection,
                technician,
                ticket: "2001".into()
            }
        );
        assert_eq!(claims.console_user, None);
        // And a token issued now reads the same.
        let issued = issue(&ring, Uuid::nil(), connection, technician, "2001");
        let payload = issued.split_once('.').unwrap().0;
        let json: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        let mut keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        keys.sort();
        assert_eq!(keys, ["connection", "exp", "msp", "technician", "ticket"]);
    }

    #[test]
    fn a_contact_token_names_its_console_user_and_session_and_nothing_ambiguous_verifies() {
        let ring = Keyring::new(
            MasterKey::parse(&MasterKey::generate_encoded()).unwrap(),
            [],
        );
        let actor = ConsoleActor {
            id: Uuid::new_v4(),
            name: "Jo Tech".into(),
            session: Uuid::new_v4(),
        };
        let subject = PodSubject::Contact {
            tenant: Uuid::new_v4(),
            object_id: "object-1".into(),
        };
        let token = issue_for_console_user(&ring, Uuid::nil(), subject.clone(), actor.clone());
        let claims = verify(&ring, &token).unwrap();
        assert_eq!(claims.subject, subject);
        assert_eq!(claims.console_user, Some(actor));
        assert_eq!(claims.subject.ticket(), None);

        let signed = |json: serde_json::Value| {
            let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&json).unwrap());
            format!("{payload}.{}", ring.mac_hex(MacPurpose::PodToken, &payload))
        };
        let exp = Utc::now().timestamp() + 60;
        // A contact with no console user, a ticket and a contact at once, a console user
        // without their session: all invalid, even genuinely signed.
        for json in [
            serde_json::json!({"msp": Uuid::nil(), "tenant": Uuid::nil(), "user": "o", "exp": exp}),
            serde_json::json!({"msp": Uuid::nil(), "connection": Uuid::nil(), "technician": Uuid::nil(),
                "ticket": "1", "tenant": Uuid::nil(), "user": "o", "exp": exp,
                "console_user": {"id": Uuid::nil(), "name": "x"}, "console_session": Uuid::nil()}),
            serde_json::json!({"msp": Uuid::nil(), "connection": Uuid::nil(), "technician": Uuid::nil(),
                "ticket": "1", "exp": exp, "console_user": {"id": Uuid::nil(), "name": "x"}}),
            serde_json::json!({"msp": Uuid::nil(), "exp": exp}),
        ] {
            assert_eq!(
                verify(&ring, &signed(json.clone())),
                Err(TokenError::Invalid),
                "{json}"
            );
        }
    }
}
