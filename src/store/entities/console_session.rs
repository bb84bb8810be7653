//! A console session; only the cookie token's SHA-256 is stored.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "console_sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub token_hash: String,
    /// The synchronizer token every form of this session carries.
    pub csrf_token: String,
    /// `second_factor`, `enrol_totp` or `signed_in` (see `store::console_users::SessionStage`).
    pub stage: String,
    pub created_at: DateTimeUtc,
    pub last_seen_at: DateTimeUtc,
    /// The absolute end of the session.
    pub expires_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
