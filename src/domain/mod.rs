//! Vouch's vocabulary: the closed sets of values that cross the layers and the wire (error
//! codes, statuses, methods and kinds). Each is a Rust enum, stored as its string through
//! sea-orm and published in the OpenAPI document, so no layer spells them as free strings.

mod audit;
mod connection_test;
mod console;
mod error_code;
mod hold;
mod kinds;
mod matching;
mod policy;
mod shield;
mod verification;
mod wait;

pub use audit::{AuditCategory, AuditOutcome};
pub use connection_test::{CheckOutcome, ConnectionCheck, ConnectionStatus};
pub use console::ConsoleRole;
pub use error_code::ErrorCode;
pub use hold::{ResetHold, utc_minute};
pub use kinds::{
    ActorKind, ApiKeyScope, IntegrationKind, IntegrationStatus, PasswordStyle, PsaKind,
};
pub use matching::{AcceptOutcome, MatchConfidence, MatchEvidenceKind};
pub use policy::MspPolicy;
pub use shield::ShieldState;
pub use verification::{
    PasswordReset, ResetStatus, Verification, VerificationMethod, VerificationStatus,
};
pub use wait::{retry_after_seconds, wait_in_words, whole_minutes_left};
