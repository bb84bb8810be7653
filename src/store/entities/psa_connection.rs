//! An MSP's connection to its PSA; credentials are sealed.

use sea_orm::entity::prelude::*;

use crate::domain::PsaKind;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "psa_connections")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub msp_id: Uuid,
    pub kind: PsaKind,
    pub name: String,
    pub base_url: String,
    pub settings: Json,
    pub credentials_sealed: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// When the connection was last tested (null: never, or since its credentials changed).
    pub last_tested_at: Option<DateTimeUtc>,
    /// The last test's checks (`Vec<ConnectionCheck>` as JSON).
    pub last_test: Option<Json>,
}

impl ActiveModelBehavior for ActiveModel {}
