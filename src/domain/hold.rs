//! A hold on a user's password resets, put when the user reported a verification as fraud
//! ("It's not me"): until it ends or an MSP admin lifts it, no reset of that user is made.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A hold on the password resets of one user (MSP, tenant, Microsoft object id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetHold {
    pub id: Uuid,
    pub msp_id: Uuid,
    pub tenant_id: Uuid,
    pub user_object_id: String,
    pub user_principal_name: String,
    /// The verification the user reported as fraud.
    pub verification_id: Uuid,
    /// Resets are held until then, unless lifted first.
    pub held_until: DateTime<Utc>,
    /// When the user reported the fraud (the hold was put).
    pub reported_at: DateTime<Utc>,
    /// When an admin lifted the hold, by whom (their API key's prefix and name) and why.
    pub lifted_at: Option<DateTime<Utc>>,
    pub lifted_by: Option<String>,
    pub lift_reason: Option<String>,
}

impl ResetHold {
    /// Whether the hold still holds resets at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.lifted_at.is_none() && self.held_until > now
    }
}

/// A date and time as notes and messages write it: `2026-12-04 06:30 UTC`.
pub fn utc_minute(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}
