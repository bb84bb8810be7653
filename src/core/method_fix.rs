//! The offer to make the Authenticator push a user's default sign-in method, bound to the
//! attempt that found the mismatch.
//!
//! A push refused with `preferred_method_mismatch` carries a fix token naming the user that
//! push was for, the ticket it was sent from and who sent it. Accepting the fix hands the
//! token back, so the change acts on that person and no one else: never on the ticket's
//! contact when someone else was being verified, and never on a user the pod merely names.
//! It names the pod it was offered in (its [`PodSubject`]: a ticket with its technician, or
//! a console contact) and the console user acting there, if any; only that pod accepts it.
//!
//! Format as the pod token's: `base64url(claims JSON) "." hex HMAC-SHA256`, keyed with
//! `MacPurpose::MethodFix`, so no other digest Vouch makes passes for one.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::core::error::CoreError;
use crate::psa::pod_token::PodSubject;
use crate::store::crypto::{Keyring, MacPurpose};

/// Long enough to read the question and confirm; short enough not to outlive the call.
pub const LIFETIME_SECONDS: i64 = 600;

/// Whose default method the fix changes, and where it was offered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodFix {
    pub msp: Uuid,
    pub tenant: Uuid,
    pub user_object_id: String,
    pub upn: String,
    /// What the pod it was offered in acts on (for a ticket, with the technician acting).
    pub offered_in: PodSubject,
    /// The console user it was offered to, when a console user opened that pod.
    pub console_user: Option<Uuid>,
    /// Expiry, Unix seconds.
    pub exp: i64,
}

impl MethodFix {
    /// The fix for a mismatch found now; it expires in [`LIFETIME_SECONDS`].
    pub fn offered_now(
        msp: Uuid,
        tenant: Uuid,
        user_object_id: &str,
        upn: &str,
        offered_in: PodSubject,
        console_user: Option<Uuid>,
    ) -> MethodFix {
        MethodFix {
            msp,
            tenant,
            user_object_id: user_object_id.to_owned(),
            upn: upn.to_owned(),
            offered_in,
            console_user,
            exp: Utc::now().timestamp() + LIFETIME_SECONDS,
        }
    }

    pub fn seal(&self, keyring: &Keyring) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("claims serialise"));
        let mac = keyring.mac_hex(MacPurpose::MethodFix, &payload);
        format!("{payload}.{mac}")
    }

    /// The fix `token` offers, if it is genuine and still current.
    pub fn open(keyring: &Keyring, token: &str) -> Result<MethodFix, CoreError> {
        let (payload, mac) = token
            .trim()
            .split_once('.')
            .ok_or(CoreError::MethodFixInvalid)?;
        if !keyring.verify_mac(MacPurpose::MethodFix, payload, mac) {
            return Err(CoreError::MethodFixInvalid);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| CoreError::MethodFixInvalid)?;
        let fix: MethodFix =
            serde_json::from_slice(&bytes).map_err(|_| CoreError::MethodFixInvalid)?;
        if fix.exp <= Utc::now().timestamp() {
            return Err(CoreError::MethodFixInvalid);
        }
        Ok(fix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::crypto::MasterKey;

    fn ring() -> Keyring {
        Keyring::new(
            MasterKey::parse(&MasterKey::generate_encoded()).unwrap(),
            [],
        )
    }

    #[test]
    fn a_fix_opens_as_sealed_and_cannot_be_pointed_at_someone_else() {
        let ring = ring();
        let fix = MethodFix::offered_now(
            Uuid::nil(),
            Uuid::nil(),
            "object-1",
            "sam@contoso.example",
            PodSubject::Ticket {
                connection: Uuid::nil(),
                technician: Uuid::nil(),
                ticket: "2002".into(),
            },
            None,
        );
        let token = fix.seal(&ring);
        assert_eq!(MethodFix::open(&ring, &token).unwrap(), fix);

        let other = MethodFix {
            user_object_id: "object-2".into(),
            ..fix.clone()
        };
        let forged = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&other).unwrap());
        let mac = token.split_once('.').unwrap().1;
        assert!(MethodFix::open(&ring, &format!("{forged}.{mac}")).is_err());
        // A pod token's digest of the same claims is no fix.
        let payload = token.split_once('.').unwrap().0;
        let pod_mac = ring.mac_hex(MacPurpose::PodToken, payload);
        assert!(MethodFix::open(&ring, &format!("{payload}.{pod_mac}")).is_err());

        let stale = MethodFix {
            exp: Utc::now().timestamp() - 1,
            ..fix
        };
        assert!(MethodFix::open(&ring, &stale.seal(&ring)).is_err());
    }
}
