//! The vocabulary of a PSA connection test: what each check came to, and what a connection's
//! status says about its last test.

use serde::{Deserialize, Serialize};

use super::ErrorCode;

/// What one check of a connection test came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, poem_openapi::Enum)]
#[serde(rename_all = "snake_case")]
#[oai(rename_all = "snake_case")]
pub enum CheckOutcome {
    /// The PSA answered as it should.
    Passed,
    /// The PSA refused, or could not be reached: `code` and `message` say why and what to do.
    Failed,
    /// Not run, because a check it depends on failed (the message names that check).
    Skipped,
}

/// One check of a connection test, as the adapter of its PSA ran it. Never carries a
/// secret: `message` names fields and PSA screens, never values of secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionCheck {
    /// A stable name (`api_keys`, `read_tickets`...), the same for every run of the PSA.
    pub name: String,
    pub outcome: CheckOutcome,
    /// Why it failed (`None` unless it failed).
    pub code: Option<ErrorCode>,
    /// What was checked and, when it failed, what to do.
    pub message: String,
}

impl ConnectionCheck {
    pub fn passed(name: &str, message: impl Into<String>) -> ConnectionCheck {
        ConnectionCheck {
            name: name.to_owned(),
            outcome: CheckOutcome::Passed,
            code: None,
            message: message.into(),
        }
    }

    pub fn failed(name: &str, code: ErrorCode, message: impl Into<String>) -> ConnectionCheck {
        ConnectionCheck {
            name: name.to_owned(),
            outcome: CheckOutcome::Failed,
            code: Some(code),
            message: message.into(),
        }
    }

    /// Not run because `because` (the name of a check that failed) did not pass.
    pub fn skipped(name: &str, because: &str) -> ConnectionCheck {
        ConnectionCheck {
            name: name.to_owned(),
            outcome: CheckOutcome::Skipped,
            code: None,
            message: format!("Not run: it needs the `{because}` check to pass first."),
        }
    }

    pub fn is_passed(&self) -> bool {
        self.outcome == CheckOutcome::Passed
    }
}

/// A connection's status: what its last test said, if it still applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, poem_openapi::Enum)]
#[serde(rename_all = "snake_case")]
#[oai(rename_all = "snake_case")]
pub enum ConnectionStatus {
    /// Never tested, or its credentials or addresses changed since the last test.
    Untested,
    /// Every check of the last test passed.
    Passed,
    /// A check of the last test failed (see `last_test`).
    Failed,
}
