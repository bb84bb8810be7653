//! What kind of audit entry an entry is, so that security events stand out of the rest, and
//! how the step it records ended.

use sea_orm::{DeriveActiveEnum, EnumIter};
use serde::{Deserialize, Serialize};

use super::{ErrorCode, ResetStatus, VerificationStatus};

/// The category of an audit entry.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    poem_openapi::Enum,
    Serialize,
    Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum AuditCategory {
    /// An ordinary step (a start, a decision, a reset...).
    #[default]
    #[sea_orm(string_value = "general")]
    General,
    /// A security event: a user reported a verification as fraud ("It's not me"), or an
    /// admin lifted the hold on resets that such a report put.
    #[sea_orm(string_value = "security")]
    Security,
}

impl AuditCategory {
    /// The stored and wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuditCategory::General => "general",
            AuditCategory::Security => "security",
        }
    }
}

impl std::fmt::Display for AuditCategory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Declares the outcomes once: the enum (stored, wire and OpenAPI spellings from the same
/// literal) and its `as_str`.
macro_rules! audit_outcomes {
    ($($(#[$doc:meta])* $variant:ident = $wire:literal,)+) => {
        /// How the step an audit entry records ended. A verification's decision and a
        /// reset's end are recorded as their status, spelled as the status is.
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
            Serialize,
            Deserialize,
        )]
        #[sea_orm(rs_type = "String", db_type = "Text")]
        #[oai(rename_all = "snake_case")]
        #[serde(rename_all = "snake_case")]
        pub enum AuditOutcome {
            $($(#[$doc])* #[sea_orm(string_value = $wire)] $variant,)+
        }

        impl AuditOutcome {
            /// The stored and wire spelling (the audit API, its CSV export).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(AuditOutcome::$variant => $wire,)+
                }
            }
        }
    };
}

audit_outcomes! {
    /// The step was carried out.
    Success = "success",
    /// The step was tried and did not work (an integration check, a share's SMS).
    Failure = "failure",
    /// A verification was started: the push, code or link is on its way.
    Started = "started",
    /// Vouch refused the request (see `details.code`).
    Refused = "refused",
    /// An admin lifted a hold on resets.
    Lifted = "lifted",
    /// The caller read back a wrong code; attempts are left.
    CodeIncorrect = "code_incorrect",
    /// A verification that stopped waiting: its one-tap link expired.
    LinkExpired = "link_expired",
    /// A verification that stopped waiting: its SMS code expired.
    CodeExpired = "code_expired",
    /// A verification that stopped waiting: nobody answered in time.
    VerificationExpired = "verification_expired",
    /// A verification still waiting (as its status).
    Pending = "pending",
    /// A verification approved (as its status).
    Approved = "approved",
    /// A verification denied (as its status).
    Denied = "denied",
    /// A verification expired (as its status).
    Expired = "expired",
    /// A verification or a reset that failed, or a PSA connection test that did not pass.
    Failed = "failed",
    /// A verification cancelled (as its status).
    Cancelled = "cancelled",
    /// A verification interrupted (as its status).
    Interrupted = "interrupted",
    /// A reset still being carried out (as its status).
    InProgress = "in_progress",
    /// A reset completed (as its status).
    Completed = "completed",
    /// A reset whose link SMS failed (as its status).
    CompletedSmsFailed = "completed_sms_failed",
    /// A reset whose outcome is unknown (as its status).
    OutcomeUnknown = "outcome_unknown",
}

impl std::fmt::Display for AuditOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A verification's decision is audited as its status.
impl From<VerificationStatus> for AuditOutcome {
    fn from(status: VerificationStatus) -> AuditOutcome {
        match status {
            VerificationStatus::Pending => AuditOutcome::Pending,
            VerificationStatus::Approved => AuditOutcome::Approved,
            VerificationStatus::Denied => AuditOutcome::Denied,
            VerificationStatus::Expired => AuditOutcome::Expired,
            VerificationStatus::Failed => AuditOutcome::Failed,
            VerificationStatus::Cancelled => AuditOutcome::Cancelled,
            VerificationStatus::Interrupted => AuditOutcome::Interrupted,
        }
    }
}

/// A reset's end is audited as its status.
impl From<ResetStatus> for AuditOutcome {
    fn from(status: ResetStatus) -> AuditOutcome {
        match status {
            ResetStatus::InProgress => AuditOutcome::InProgress,
            ResetStatus::Completed => AuditOutcome::Completed,
            ResetStatus::CompletedSmsFailed => AuditOutcome::CompletedSmsFailed,
            ResetStatus::Failed => AuditOutcome::Failed,
            ResetStatus::OutcomeUnknown => AuditOutcome::OutcomeUnknown,
        }
    }
}

impl AuditOutcome {
    /// How a verification that stopped waiting is audited: by the code of its expiry.
    pub const fn expired_by(code: ErrorCode) -> AuditOutcome {
        match code {
            ErrorCode::LinkExpired => AuditOutcome::LinkExpired,
            ErrorCode::CodeExpired => AuditOutcome::CodeExpired,
            _ => AuditOutcome::VerificationExpired,
        }
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ActiveEnum, Iterable};

    use super::*;

    #[test]
    fn stored_wire_and_as_str_spellings_agree() {
        for category in AuditCategory::iter() {
            let stored = category.to_value();
            assert_eq!(category.as_str(), stored);
            assert_eq!(serde_json::to_value(category).unwrap(), stored.as_str());
            assert_eq!(
                poem_openapi::types::ToJSON::to_json(&category).unwrap(),
                stored.as_str()
            );
        }
        assert_eq!(AuditCategory::default(), AuditCategory::General);
    }

    /// The stored, JSON, OpenAPI and `as_str` spellings of an outcome agree, and a status
    /// is audited as exactly its own spelling (the strings stored before the enum).
    #[test]
    fn outcome_spellings_agree() {
        use poem_openapi::types::Type;

        let published = match AuditOutcome::schema_ref() {
            poem_openapi::registry::MetaSchemaRef::Reference(name) => {
                let mut registry = poem_openapi::registry::Registry::new();
                AuditOutcome::register(&mut registry);
                registry.schemas[&name].enum_items.clone()
            }
            poem_openapi::registry::MetaSchemaRef::Inline(schema) => schema.enum_items.clone(),
        };
        assert_eq!(published.len(), AuditOutcome::iter().count());
        for outcome in AuditOutcome::iter() {
            let stored = outcome.to_value();
            assert_eq!(outcome.as_str(), stored);
            assert_eq!(serde_json::to_value(outcome).unwrap(), stored.as_str());
            assert_eq!(
                poem_openapi::types::ToJSON::to_json(&outcome).unwrap(),
                stored.as_str()
            );
            assert!(published.contains(&serde_json::Value::from(stored.as_str())));
            assert_eq!(
                serde_json::from_value::<AuditOutcome>(stored.as_str().into()).unwrap(),
                outcome
            );
        }
        for status in VerificationStatus::iter() {
            assert_eq!(AuditOutcome::from(status).as_str(), status.as_str());
        }
        for status in ResetStatus::iter() {
            assert_eq!(AuditOutcome::from(status).as_str(), status.as_str());
        }
        for code in [
            ErrorCode::LinkExpired,
            ErrorCode::CodeExpired,
            ErrorCode::VerificationExpired,
        ] {
            assert_eq!(AuditOutcome::expired_by(code).as_str(), code.as_str());
        }
    }
}
