//! One attempt to verify a caller as a Microsoft user.

use sea_orm::entity::prelude::*;

use crate::domain::{ErrorCode, VerificationMethod, VerificationStatus};

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "verifications")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub msp_id: Uuid,
    pub tenant_id: Uuid,
    pub technician_id: Option<Uuid>,
    pub psa_connection_id: Option<Uuid>,
    pub psa_ticket_id: Option<String>,
    pub psa_contact_id: Option<String>,
    pub user_object_id: String,
    pub user_principal_name: String,
    pub method: VerificationMethod,
    pub status: VerificationStatus,
    pub failure_code: Option<ErrorCode>,
    pub code_hash: Option<String>,
    pub attempts: i32,
    pub reason: Option<String>,
    pub used_contact_phone_fallback: bool,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub decided_at: Option<DateTimeUtc>,
    pub verified_until: Option<DateTimeUtc>,
    pub consumed_at: Option<DateTimeUtc>,
    /// The instance waiting on a pending push for the user's answer.
    pub waiter_instance_id: Option<Uuid>,
    /// The console user who started it (from the console's Tickets or Contacts page).
    pub console_user_id: Option<Uuid>,
}

impl ActiveModelBehavior for ActiveModel {}
