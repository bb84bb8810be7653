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
}

impl ActiveModelBehavior for ActiveModel {}
