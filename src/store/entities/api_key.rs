//! A per-MSP API key; only the SHA-256 of the key is stored.

use sea_orm::entity::prelude::*;

use crate::domain::ApiKeyScope;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub msp_id: Uuid,
    pub name: String,
    pub key_prefix: String,
    pub key_hash: String,
    pub created_at: DateTimeUtc,
    pub last_used_at: Option<DateTimeUtc>,
    pub revoked_at: Option<DateTimeUtc>,
    pub scope: ApiKeyScope,
}

impl ActiveModelBehavior for ActiveModel {}
