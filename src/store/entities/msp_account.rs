//! An MSP using Vouch: its branding and its policies.

use sea_orm::entity::prelude::*;

use crate::domain::PasswordStyle;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "msp_accounts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    pub brand_logo_url: Option<String>,
    pub brand_color: Option<String>,
    pub verified_window_seconds: i32,
    pub push_limit_count: i32,
    pub push_limit_window_seconds: i32,
    pub allow_contact_phone_fallback: bool,
    pub allow_admin_reset: bool,
    pub show_password_to_technician: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub password_length: i32,
    pub password_style: PasswordStyle,
    pub force_change_at_next_sign_in: bool,
    pub technician_push_limit_count: i32,
    /// The phone number end users are told to call (SMS texts, share and one-tap pages).
    pub brand_support_phone: Option<String>,
    pub fraud_hold_seconds: i32,
    pub count_approved_pushes: bool,
    pub share_lifetime_seconds: i32,
    pub one_tap_link_lifetime_seconds: i32,
    /// The name SMS texts are signed with, when shorter than the MSP's name.
    pub brand_sms_sender_name: Option<String>,
    /// The version of the logo uploaded to Vouch (`msp_logos`), if one is.
    pub brand_logo_version: Option<String>,
}

impl ActiveModelBehavior for ActiveModel {}
