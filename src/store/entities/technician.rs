//! A PSA member who has used Vouch, as the PSA vouched for them.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "technicians")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub msp_id: Uuid,
    pub psa_connection_id: Uuid,
    pub psa_member_id: String,
    pub display_name: String,
    pub email: Option<String>,
    pub created_at: DateTimeUtc,
    pub last_seen_at: Option<DateTimeUtc>,
    /// When an MSP admin blocked this technician's Vouch actions; `None` when not blocked.
    pub blocked_at: Option<DateTimeUtc>,
    /// Who blocked them (the admin's name, as the audit log gives it).
    pub blocked_by: Option<String>,
    /// The console user this technician is (so the audit shows one person); `None` when
    /// not linked.
    pub console_user_id: Option<Uuid>,
}

impl ActiveModelBehavior for ActiveModel {}
