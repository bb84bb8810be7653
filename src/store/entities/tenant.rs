//! A customer's Microsoft 365 (Entra ID) tenant managed by an MSP.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "tenants")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub msp_id: Uuid,
    pub microsoft_tenant_id: String,
    pub display_name: String,
    pub verified_domains: Json,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// When the MSP removed the tenant; the row stays for its verifications' history.
    pub removed_at: Option<DateTimeUtc>,
}

impl ActiveModelBehavior for ActiveModel {}
