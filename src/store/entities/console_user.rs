//! A user of the MSP console. Only the argon2id hash of the password is stored, and the TOTP
//! secret is sealed.

use sea_orm::entity::prelude::*;

use crate::domain::ConsoleRole;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "console_users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub msp_id: Uuid,
    /// Lower-cased; unique across Vouch.
    pub email: String,
    pub name: String,
    pub role: ConsoleRole,
    /// The PHC string of the argon2id hash; `None` until the set-up link is used.
    pub password_hash: Option<String>,
    pub totp_secret_sealed: Option<String>,
    /// Whether the TOTP secret was confirmed with a code (enrolment finished).
    pub totp_enabled: bool,
    /// Signs in without a second factor whatever the policy (the demo's accounts only).
    pub totp_exempt: bool,
    /// The last TOTP time step accepted: a code of that step or before is refused (replay).
    pub totp_last_step: Option<i64>,
    pub failed_attempts: i32,
    pub next_attempt_at: Option<DateTimeUtc>,
    pub locked_until: Option<DateTimeUtc>,
    pub disabled_at: Option<DateTimeUtc>,
    pub last_sign_in_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
