//! Who else wants to know when a verification is decided or a reset finishes (the PSA
//! ticket notes, for instance). The core calls this trait and knows nothing of PSAs.

use async_trait::async_trait;

use crate::domain::{PasswordReset, Verification};

#[async_trait]
pub trait ActivityObserver: Send + Sync {
    async fn verification_decided(&self, verification: &Verification);
    async fn reset_finished(&self, reset: &PasswordReset, verification: &Verification);
    /// The technician sent the reset's link again.
    async fn reset_link_resent(&self, reset: &PasswordReset, verification: &Verification);
}
