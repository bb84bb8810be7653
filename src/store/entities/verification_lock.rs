//! One row per Microsoft user that has been verified: updating it is a portable row lock
//! that serialises push-limit checks across Vouch instances.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "verification_locks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub user_object_id: String,
    pub touched_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
