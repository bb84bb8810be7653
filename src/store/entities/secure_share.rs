//! A one-time secret link; only the token's hash is stored, the content is sealed.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "secure_shares")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub msp_id: Uuid,
    pub token_hash: String,
    pub content_sealed: String,
    pub expires_at: DateTimeUtc,
    pub max_views: i32,
    pub views: i32,
    pub created_by_technician_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub last_viewed_at: Option<DateTimeUtc>,
    pub revoked_at: Option<DateTimeUtc>,
    /// `message`, or `password_reset` (the new password of `account_name`).
    pub purpose: String,
    /// The user principal name a password-reset share is for; not secret.
    pub account_name: Option<String>,
    /// Whether Microsoft asks the user for a new password at their next sign-in.
    pub change_password_at_sign_in: bool,
}

impl ActiveModelBehavior for ActiveModel {}
