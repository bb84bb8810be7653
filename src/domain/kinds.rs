//! The kinds, statuses and styles Vouch stores and publishes. Each enum is stored as text
//! (the `string_value`s are exactly the strings the database has always held, so no migration
//! is needed) and goes over the wire with the same spelling (`rename`s where snake_case of the
//! variant name would differ), so `pods/` and API clients see no change.

use sea_orm::{DeriveActiveEnum, EnumIter};
use serde::{Deserialize, Serialize};

/// The PSAs Vouch embeds in.
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
#[serde(rename_all = "snake_case")]
pub enum PsaKind {
    /// ConnectWise PSA (Manage).
    #[sea_orm(string_value = "connectwise")]
    #[oai(rename = "connectwise")]
    #[serde(rename = "connectwise")]
    ConnectWise,
    /// HaloPSA.
    #[sea_orm(string_value = "halopsa")]
    #[oai(rename = "halopsa")]
    #[serde(rename = "halopsa")]
    HaloPsa,
    /// Datto Autotask PSA.
    #[sea_orm(string_value = "autotask")]
    #[oai(rename = "autotask")]
    Autotask,
}

impl PsaKind {
    /// Every PSA, in declaration order.
    pub const ALL: [PsaKind; 3] = [PsaKind::ConnectWise, PsaKind::HaloPsa, PsaKind::Autotask];

    /// The stored and wire value; also the PSA's segment in the pod's address (`/pods/{kind}`).
    pub const fn as_str(self) -> &'static str {
        match self {
            PsaKind::ConnectWise => "connectwise",
            PsaKind::HaloPsa => "halopsa",
            PsaKind::Autotask => "autotask",
        }
    }

    /// The PSA's name, as people write it.
    pub const fn display_name(self) -> &'static str {
        match self {
            PsaKind::ConnectWise => "ConnectWise",
            PsaKind::HaloPsa => "HaloPSA",
            PsaKind::Autotask => "Autotask",
        }
    }
}

/// The two ways Vouch reaches a customer tenant.
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
pub enum IntegrationKind {
    /// Vouch's own multi-tenant app, consented by the customer's admin, plus the MFA
    /// connector credential it creates; sends Authenticator pushes.
    #[sea_orm(string_value = "authenticator")]
    Authenticator,
    /// An app the MSP registered in the customer tenant and gave Vouch the secret of; looks
    /// users up and resets passwords.
    #[sea_orm(string_value = "identity_management")]
    IdentityManagement,
}

impl IntegrationKind {
    /// Every integration kind, in declaration order.
    pub const ALL: [IntegrationKind; 2] = [
        IntegrationKind::Authenticator,
        IntegrationKind::IdentityManagement,
    ];

    /// The stored and wire value, as metrics labels and audit actions spell it.
    pub const fn as_str(self) -> &'static str {
        match self {
            IntegrationKind::Authenticator => "authenticator",
            IntegrationKind::IdentityManagement => "identity_management",
        }
    }
}

/// Whether a tenant integration works, as of its last check.
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
pub enum IntegrationStatus {
    /// The last check (or the connection itself) succeeded.
    #[sea_orm(string_value = "active")]
    Active,
    /// The last check failed; `last_check_code` says why.
    #[sea_orm(string_value = "failed")]
    Failed,
}

/// How Vouch generates the passwords of a reset, as the MSP chose.
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
pub enum PasswordStyle {
    /// Random characters from all four classes.
    #[default]
    #[sea_orm(string_value = "random")]
    Random,
    /// Words joined by a symbol, with a digit and a capital.
    #[sea_orm(string_value = "passphrase")]
    Passphrase,
}

/// Who did what the audit log records.
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
pub enum ActorKind {
    /// A technician, vouched for by the PSA the pod runs in.
    #[sea_orm(string_value = "technician")]
    Technician,
    /// A program holding one of the MSP's API keys.
    #[sea_orm(string_value = "api_key")]
    ApiKey,
    /// The customer's administrator, granting consent in Microsoft.
    #[sea_orm(string_value = "customer_admin")]
    CustomerAdmin,
    /// The person a secure share was sent to, opening it.
    #[sea_orm(string_value = "share_recipient")]
    ShareRecipient,
    /// A user of the MSP's console, signed in with e-mail, password and second factor.
    #[sea_orm(string_value = "console_user")]
    ConsoleUser,
    /// Vouch itself (scheduled checks, the demo seed...).
    #[sea_orm(string_value = "system")]
    System,
}

/// What an API key may do.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    EnumIter,
    DeriveActiveEnum,
    poem_openapi::Enum,
    Serialize,
    Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum ApiKeyScope {
    /// Everything: set-up (integrations, PSA connections, tenants, mappings, settings, API
    /// keys, reset holds) as well as verify, reset and the audit.
    #[default]
    #[sea_orm(string_value = "admin")]
    Admin,
    /// Verify, reset, secure shares and reading the audit; no set-up.
    #[sea_orm(string_value = "technician")]
    Technician,
}

#[cfg(test)]
mod tests {
    use sea_orm::{ActiveEnum, Iterable};

    use super::*;

    /// The stored value, the wire value (serde and OpenAPI) must be one spelling.
    fn assert_one_spelling<E>()
    where
        E: ActiveEnum<Value = String> + Iterable + Serialize + poem_openapi::types::ToJSON,
    {
        for value in E::iter() {
            let stored = value.to_value();
            assert_eq!(serde_json::to_value(&value).unwrap(), stored.as_str());
            assert_eq!(value.to_json().unwrap(), stored.as_str());
        }
    }

    #[test]
    fn stored_and_wire_values_agree() {
        assert_one_spelling::<PsaKind>();
        assert_one_spelling::<IntegrationKind>();
        assert_one_spelling::<IntegrationStatus>();
        assert_one_spelling::<PasswordStyle>();
        assert_one_spelling::<ActorKind>();
        assert_one_spelling::<ApiKeyScope>();
    }

    #[test]
    fn as_str_is_the_stored_value() {
        for kind in PsaKind::ALL {
            assert_eq!(kind.as_str(), kind.to_value());
        }
        assert_eq!(PsaKind::iter().count(), PsaKind::ALL.len());
        for kind in IntegrationKind::ALL {
            assert_eq!(kind.as_str(), kind.to_value());
        }
        assert_eq!(IntegrationKind::iter().count(), IntegrationKind::ALL.len());
    }
}
