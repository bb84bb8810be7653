//! What kind of audit entry an entry is, so that security events stand out of the rest.

use sea_orm::{DeriveActiveEnum, EnumIter};
use serde::{Deserialize, Serialize};

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
}
