//! The domain core: verification, reset, secure share, policy, audit and the tenant
//! integrations. Nothing here knows which PSA asked.

pub mod accounts;
pub mod activity;
pub mod audit;
pub mod companies;
pub mod directory;
pub mod error;
pub mod integrations;
pub mod logo;
pub mod messaging;
pub mod method_fix;
pub mod overview;
pub mod password;
pub mod pod;
pub mod psa_connections;
pub mod reset;
pub mod settings;
pub mod setup;
pub mod share;
pub mod suggestions;
pub mod technicians;
pub mod texts;
pub mod verification;
