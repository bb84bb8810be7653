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
}

impl ActiveModelBehavior for ActiveModel {}
