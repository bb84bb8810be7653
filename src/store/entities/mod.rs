//! sea-orm entities, one per table of `store::migration`.

pub mod msp_account;
pub mod psa_connection;
pub mod technician;
pub mod tenant;
pub mod tenant_integration;
pub mod company_tenant_mapping;
pub mod verification;
pub mod password_reset;
pub mod secure_share;
pub mod outbound_message;
pub mod audit_event;
