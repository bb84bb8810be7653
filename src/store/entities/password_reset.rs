//! A password reset, spending exactly one verification.

use sea_orm::entity::prelude::*;

use crate::domain::{ErrorCode, ResetStatus};

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "password_resets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub msp_id: Uuid,
    pub verification_id: Uuid,
    pub tenant_id: Uuid,
    pub user_object_id: String,
    pub technician_id: Option<Uuid>,
    pub idempotency_key: String,
    pub status: ResetStatus,
    pub failure_code: Option<ErrorCode>,
    pub share_id: Option<Uuid>,
    pub sent_to_masked: Option<String>,
    pub upstream_request_id: Option<String>,
    pub created_at: DateTimeUtc,
    pub completed_at: Option<DateTimeUtc>,
    /// The verification this reset holds spent; `None` once a reset that changed nothing let
    /// it go.
    pub spends_verification_id: Option<Uuid>,
    /// The new password, sealed before it is sent to Microsoft; cleared once the outcome of
    /// the change is known.
    pub password_sealed: Option<String>,
    /// The secure link's URL (it holds the share token), sealed, so the link can be resent.
    pub link_sealed: Option<String>,
    pub patch_attempts: i32,
    /// Until then the instance carrying the reset out owns it; after, the sweeper may.
    pub lease_until: Option<DateTimeUtc>,
    pub resends: i32,
}

impl ActiveModelBehavior for ActiveModel {}
