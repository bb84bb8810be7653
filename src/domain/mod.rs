//! Vouch's vocabulary: the closed sets of values that cross the layers and the wire (error
//! codes, and later statuses, methods and kinds). Each is a Rust enum, published in the
//! OpenAPI document, so no layer spells them as free strings.

mod error_code;
mod kinds;

pub use error_code::ErrorCode;
pub use kinds::{ActorKind, IntegrationKind, IntegrationStatus, PasswordStyle, PsaKind};
