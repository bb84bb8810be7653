//! Who else wants to know when a verification is decided or a reset finishes (the PSA
//! ticket notes, for instance). The core calls this trait and knows nothing of PSAs.

use async_trait::async_trait;
use uuid::Uuid;

use crate::domain::{PasswordReset, Verification};

/// A user's default sign-in method was made the Microsoft Authenticator push.
#[derive(Debug, Clone)]
pub struct MethodChange {
    pub msp_id: Uuid,
    pub tenant_id: Uuid,
    pub user_object_id: String,
    pub upn: String,
    /// The ticket it was asked from (a pod), if any.
    pub psa_connection_id: Option<Uuid>,
    pub psa_ticket_id: Option<String>,
    /// Who asked, as a note names them ("Jordan Tech", "the Vouch API").
    pub requested_by: String,
}

#[async_trait]
pub trait ActivityObserver: Send + Sync {
    async fn verification_decided(&self, verification: &Verification);
    async fn reset_finished(&self, reset: &PasswordReset, verification: &Verification);
    /// The technician sent the reset's link again.
    async fn reset_link_resent(&self, reset: &PasswordReset, verification: &Verification);
    /// A user's default sign-in method was changed (only after it changed).
    async fn default_method_changed(&self, change: &MethodChange);
}
