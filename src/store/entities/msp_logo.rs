//! A logo an MSP uploaded: always a PNG (an uploaded SVG is rasterised first).

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "msp_logos")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub msp_id: Uuid,
    pub content_type: String,
    pub bytes: Vec<u8>,
    pub sha256: String,
    pub width: i32,
    pub height: i32,
    pub updated_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
