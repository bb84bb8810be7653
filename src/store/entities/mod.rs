//! sea-orm entities, one per table of `store::migration`.

pub mod api_key;
pub mod audit_event;
pub mod company_tenant_mapping;
pub mod consent_state;
pub mod console_link;
pub mod console_recovery_code;
pub mod console_session;
pub mod console_user;
pub mod instance;
pub mod msp_account;
pub mod msp_logo;
pub mod outbound_message;
pub mod password_reset;
pub mod psa_connection;
pub mod reset_hold;
pub mod secure_share;
pub mod technician;
pub mod tenant;
pub mod tenant_integration;
pub mod verification;
pub mod verification_lock;
