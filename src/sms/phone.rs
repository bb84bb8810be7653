//! E.164 phone numbers (being written).

/// A phone number in E.164 form, such as `+12065550101`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct E164(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid phone number")]
pub struct PhoneError;

impl E164 {
    /// Parses `raw` (E.164, or national in `default_region`, e.g. "US").
    pub fn parse(raw: &str, default_region: &str) -> Result<E164, PhoneError> {
        let _ = (raw, default_region);
        Err(PhoneError)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// For people: all but the last two digits hidden, e.g. `+1 ••• ••• ••01`.
    pub fn masked(&self) -> String {
        String::new()
    }
}
