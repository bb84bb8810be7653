//! The vocabulary of suggested company mappings: what kind of evidence links a PSA company
//! to a tenant, how sure a suggestion is, and what accepting one did.

use serde::Serialize;

/// What links a PSA company to a tenant.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, poem_openapi::Enum, Serialize,
)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum MatchEvidenceKind {
    /// The company's contacts have e-mail addresses at a verified domain of the tenant.
    ContactDomains,
    /// The company's website (or domain field) is at a verified domain of the tenant.
    Website,
    /// The company's name is like the tenant's display name.
    Name,
}

/// How sure a suggestion is, from its score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum, Serialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum MatchConfidence {
    /// Score 80 or more: domains the tenant verified with Microsoft say so.
    High,
    /// Score 60 to 79: a close name, or a single contact.
    Medium,
    /// Under 60: check before accepting.
    Low,
}

impl MatchConfidence {
    /// The confidence of a score (0 to 100).
    pub fn of(score: u8) -> MatchConfidence {
        match score {
            80.. => MatchConfidence::High,
            60..=79 => MatchConfidence::Medium,
            _ => MatchConfidence::Low,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MatchConfidence::High => "high",
            MatchConfidence::Medium => "medium",
            MatchConfidence::Low => "low",
        }
    }
}

/// What accepting one suggestion did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum, Serialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum AcceptOutcome {
    /// The mapping was made.
    Created,
    /// The company was already mapped to that tenant; it stays.
    Kept,
    /// Nothing changed for this company; `code` and `message` say why.
    Failed,
}

impl AcceptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AcceptOutcome::Created => "created",
            AcceptOutcome::Kept => "kept",
            AcceptOutcome::Failed => "failed",
        }
    }
}

impl MatchEvidenceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchEvidenceKind::ContactDomains => "contact_domains",
            MatchEvidenceKind::Website => "website",
            MatchEvidenceKind::Name => "name",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_str_is_the_wire_value() {
        for kind in [
            MatchEvidenceKind::ContactDomains,
            MatchEvidenceKind::Website,
            MatchEvidenceKind::Name,
        ] {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        for c in [
            MatchConfidence::High,
            MatchConfidence::Medium,
            MatchConfidence::Low,
        ] {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
        for o in [
            AcceptOutcome::Created,
            AcceptOutcome::Kept,
            AcceptOutcome::Failed,
        ] {
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
        assert_eq!(MatchConfidence::of(80), MatchConfidence::High);
        assert_eq!(MatchConfidence::of(79), MatchConfidence::Medium);
        assert_eq!(MatchConfidence::of(59), MatchConfidence::Low);
    }
}
