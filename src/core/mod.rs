//! The domain core: verification, reset, secure share, policy, audit and the tenant
//! integrations. Nothing here knows which PSA asked.

pub mod integrations;
pub mod share;
