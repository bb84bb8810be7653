//! The verification and password-reset vocabulary: states and methods, as stored in the
//! database (`string_value`), sent on the wire (`oai`/`serde`, snake_case) and read by the
//! pod (`pods/pod.js`). The spellings are the ones the migrations and clients already use.

use chrono::{DateTime, Utc};
use sea_orm::{DeriveActiveEnum, EnumIter};
use uuid::Uuid;

use super::ErrorCode;

/// Declares the `as_str` of an enum from the same spellings the derives use.
macro_rules! wire_names {
    ($name:ident { $($variant:ident = $wire:literal,)+ }) => {
        impl $name {
            /// The stored and wire spelling (logs, audit, PSA notes).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// The state of a verification: `pending` until it ends in one of the others.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    poem_openapi::Enum,
    serde::Serialize,
    serde::Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum VerificationStatus {
    /// Waiting for the user (push) or the caller (code, link).
    #[sea_orm(string_value = "pending")]
    Pending,
    /// The user proved their identity.
    #[sea_orm(string_value = "approved")]
    Approved,
    /// The user said no (see `failure_code`, e.g. `fraud_reported`).
    #[sea_orm(string_value = "denied")]
    Denied,
    /// No answer in time.
    #[sea_orm(string_value = "expired")]
    Expired,
    /// Something went wrong (see `failure_code`).
    #[sea_orm(string_value = "failed")]
    Failed,
    /// The technician cancelled it.
    #[sea_orm(string_value = "cancelled")]
    Cancelled,
    /// The instance waiting on the push stopped (crash, restart) before the user answered:
    /// nobody will hear the answer. Start a new verification.
    #[sea_orm(string_value = "interrupted")]
    Interrupted,
}

wire_names!(VerificationStatus {
    Pending = "pending",
    Approved = "approved",
    Denied = "denied",
    Expired = "expired",
    Failed = "failed",
    Cancelled = "cancelled",
    Interrupted = "interrupted",
});

/// How to verify the caller.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    poem_openapi::Enum,
    serde::Serialize,
    serde::Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum VerificationMethod {
    /// A Microsoft Authenticator push to the user's phone.
    #[sea_orm(string_value = "push")]
    Push,
    /// A 6-digit code by SMS to the user's registered mobile phone, read back by the caller.
    #[sea_orm(string_value = "sms_code")]
    SmsCode,
    /// A one-tap "Yes, it's me" link by SMS, valid 5 minutes.
    #[sea_orm(string_value = "sms_link")]
    SmsLink,
}

wire_names!(VerificationMethod {
    Push = "push",
    SmsCode = "sms_code",
    SmsLink = "sms_link",
});

/// The state of a password reset.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    poem_openapi::Enum,
    serde::Serialize,
    serde::Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum ResetStatus {
    /// Claimed and still being carried out (a duplicate request waits for it).
    #[sea_orm(string_value = "in_progress")]
    InProgress,
    /// The password was changed and the secure link sent.
    #[sea_orm(string_value = "completed")]
    Completed,
    /// The password was changed but the SMS with the link failed: the technician must resend.
    #[sea_orm(string_value = "completed_sms_failed")]
    CompletedSmsFailed,
    /// The password was not changed (see `failure_code`).
    #[sea_orm(string_value = "failed")]
    Failed,
    /// Microsoft's answer to the change was lost every time it was sent (see
    /// `failure_code`): the password may have changed. The secure link holds the password
    /// Vouch sent; send it anyway, or start over with a new verification.
    #[sea_orm(string_value = "outcome_unknown")]
    OutcomeUnknown,
}

wire_names!(ResetStatus {
    InProgress = "in_progress",
    Completed = "completed",
    CompletedSmsFailed = "completed_sms_failed",
    Failed = "failed",
    OutcomeUnknown = "outcome_unknown",
});

/// One attempt to verify a caller as a Microsoft user.
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    pub id: Uuid,
    pub msp_id: Uuid,
    pub tenant_id: Uuid,
    /// The technician who asked (`None` when an API key did).
    pub technician_id: Option<Uuid>,
    pub psa_connection_id: Option<Uuid>,
    pub psa_ticket_id: Option<String>,
    pub psa_contact_id: Option<String>,
    pub user_object_id: String,
    pub user_principal_name: String,
    pub method: VerificationMethod,
    pub status: VerificationStatus,
    /// Why it did not end approved.
    pub failure_code: Option<ErrorCode>,
    /// Keyed digest of the SMS code, or digest of the link token; never the code itself.
    pub code_hash: Option<String>,
    /// Wrong codes entered so far.
    pub attempts: i32,
    /// Why the technician verified someone other than the ticket's contact.
    pub reason: Option<String>,
    pub used_contact_phone_fallback: bool,
    pub created_at: DateTime<Utc>,
    /// When a pending verification stops waiting.
    pub expires_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    /// An approval proves the identity until then.
    pub verified_until: Option<DateTime<Utc>>,
    /// When a password reset spent it.
    pub consumed_at: Option<DateTime<Utc>>,
    /// The instance waiting on a pending push for the user's answer.
    pub waiter_instance_id: Option<Uuid>,
    /// The console user who started it (from the console's Tickets or Contacts page); a
    /// verification from Contacts has no ticket, and this is where it was made.
    pub console_user_id: Option<Uuid>,
}

/// A password reset, spending exactly one verification.
#[derive(Debug, Clone, PartialEq)]
pub struct PasswordReset {
    pub id: Uuid,
    pub msp_id: Uuid,
    pub verification_id: Uuid,
    pub tenant_id: Uuid,
    pub user_object_id: String,
    pub technician_id: Option<Uuid>,
    pub idempotency_key: String,
    pub status: ResetStatus,
    /// Why it failed, or why the SMS with the link did not go.
    pub failure_code: Option<ErrorCode>,
    /// The secure link holding the new password.
    pub share_id: Option<Uuid>,
    /// Where the link was sent, masked (`+1 ••• ••• ••01`).
    pub sent_to_masked: Option<String>,
    /// Microsoft's request id of the password change, for support cases.
    pub upstream_request_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    /// How many times the password change was sent to Microsoft (more than one when an
    /// answer was lost).
    pub patch_attempts: i32,
    /// How many times the technician sent the link again.
    pub resends: i32,
}

#[cfg(test)]
mod tests {
    use sea_orm::{ActiveEnum, Iterable};

    use super::*;

    /// The stored, serde and `as_str` spellings agree (the database and the pod read them).
    #[test]
    fn spellings_agree() {
        fn check<T: ActiveEnum<Value = String> + serde::Serialize + Iterable>(
            as_str: fn(&T) -> &'static str,
        ) {
            for value in T::iter() {
                let stored = value.to_value();
                assert_eq!(stored, as_str(&value));
                assert_eq!(serde_json::to_value(&value).unwrap(), stored);
            }
        }
        check::<VerificationStatus>(|v| v.as_str());
        check::<VerificationMethod>(|v| v.as_str());
        check::<ResetStatus>(|v| v.as_str());
    }
}
