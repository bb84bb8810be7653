//! Where a pod's verification shield stands: core words it, the API publishes it, and
//! `pods/pod.js` branches on these values alone.

use serde::{Deserialize, Serialize};

/// Where the verification shield stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, poem_openapi::Enum)]
#[serde(rename_all = "snake_case")]
#[oai(rename_all = "snake_case")]
pub enum ShieldState {
    /// No usable verification: verify the caller first.
    NotVerified,
    /// A verification is waiting for the user's answer.
    Pending,
    /// The user is verified; a reset may be made until `verified_until`.
    Verified,
    /// The last verification did not succeed.
    Failed,
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem_openapi::types::ToJSON;

    #[test]
    fn json_and_openapi_spell_each_state_alike() {
        for state in [
            ShieldState::NotVerified,
            ShieldState::Pending,
            ShieldState::Verified,
            ShieldState::Failed,
        ] {
            assert_eq!(
                serde_json::to_value(state).unwrap(),
                state.to_json().unwrap()
            );
        }
        assert_eq!(
            serde_json::to_value(ShieldState::NotVerified).unwrap(),
            "not_verified"
        );
    }
}
