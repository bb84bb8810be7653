//! A security integration of a tenant (Authenticator or Identity Management).

use sea_orm::entity::prelude::*;

use crate::domain::{IntegrationKind, IntegrationStatus};

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "tenant_integrations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub kind: IntegrationKind,
    pub status: IntegrationStatus,
    pub client_id: String,
    pub secret_sealed: Option<String>,
    pub secret_expires_at: Option<DateTimeUtc>,
    pub last_checked_at: Option<DateTimeUtc>,
    pub last_check_code: Option<String>,
    pub last_check_message: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
