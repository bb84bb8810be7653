//! The MSP console's vocabulary: what a console user may do.

use sea_orm::{DeriveActiveEnum, EnumIter};
use serde::{Deserialize, Serialize};

/// The role of an MSP's console user.
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
pub enum ConsoleRole {
    /// Sets Vouch up: integrations, PSA connections, settings, users and API keys.
    #[sea_orm(string_value = "admin")]
    Admin,
    /// Verifies callers and resets passwords outside the PSA, and reads the audit.
    #[sea_orm(string_value = "technician")]
    Technician,
}

impl ConsoleRole {
    /// The stored and wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            ConsoleRole::Admin => "admin",
            ConsoleRole::Technician => "technician",
        }
    }

    /// As the pages name it.
    pub const fn display_name(self) -> &'static str {
        match self {
            ConsoleRole::Admin => "Admin",
            ConsoleRole::Technician => "Technician",
        }
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ActiveEnum, Iterable};

    use super::*;

    #[test]
    fn stored_wire_and_as_str_spellings_agree() {
        for role in ConsoleRole::iter() {
            let stored = role.to_value();
            assert_eq!(role.as_str(), stored);
            assert_eq!(serde_json::to_value(role).unwrap(), stored.as_str());
            assert_eq!(
                poem_openapi::types::ToJSON::to_json(&role).unwrap(),
                stored.as_str()
            );
        }
    }
}
