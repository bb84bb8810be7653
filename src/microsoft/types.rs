//! Values Vouch only holds once they have been checked ("parse, don't validate").

use std::fmt;

use secrecy::SecretString;

/// A user principal name such as `dana@contoso.com`, compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Upn(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a user principal name (expected name@domain)")]
pub struct InvalidUpn(pub String);

impl Upn {
    pub fn parse(value: &str) -> Result<Upn, InvalidUpn> {
        let value = value.trim();
        let valid = value.len() <= 256
            && value.split('@').count() == 2
            && value
                .split_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
            && !value.chars().any(|c| c.is_whitespace() || c.is_control());
        if valid {
            Ok(Upn(value.to_owned()))
        } else {
            Err(InvalidUpn(value.chars().take(80).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn matches(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other.trim())
    }
}

impl fmt::Display for Upn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tenant as Microsoft's login endpoint accepts it: its GUID or one of its domains.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantRef(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a tenant id (a GUID such as 7f3c1a52-5b1e-4c8e-9a47-2f6d1e0b9c11) or a domain"
)]
pub struct InvalidTenant(pub String);

impl TenantRef {
    pub fn parse(value: &str) -> Result<TenantRef, InvalidTenant> {
        let value = value.trim().to_ascii_lowercase();
        let is_guid = uuid::Uuid::parse_str(&value).is_ok();
        let is_domain = value.contains('.')
            && value.len() <= 253
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if is_guid || is_domain {
            Ok(TenantRef(value))
        } else {
            Err(InvalidTenant(value.chars().take(80).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An app's client-credentials in one tenant. `Debug` never shows the secret.
#[derive(Clone)]
pub struct ClientCredentials {
    pub tenant: TenantRef,
    pub client_id: String,
    pub client_secret: SecretString,
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upns_and_tenants_are_parsed() {
        assert!(Upn::parse("dana@contoso.com").is_ok());
        assert!(
            Upn::parse("Dana@Contoso.com")
                .unwrap()
                .matches("dana@contoso.COM")
        );
        for bad in [
            "",
            "dana",
            "@contoso.com",
            "a@b@c.com",
            "dana@localhost",
            "da na@c.com",
        ] {
            assert!(Upn::parse(bad).is_err(), "{bad}");
        }
        assert!(TenantRef::parse("7F3C1A52-5B1E-4C8E-9A47-2F6D1E0B9C11").is_ok());
        assert!(TenantRef::parse("contoso.onmicrosoft.com").is_ok());
        for bad in ["", "contoso", "../etc", "a b.com"] {
            assert!(TenantRef::parse(bad).is_err(), "{bad}");
        }
    }
}
