//! The integration suite: one test binary, so the whole of Vouch and its dependencies is linked
//! once rather than once per file (which made the test build outgrow a CI machine's disk).
//!
//! Two suites stay binaries of their own because they change the whole process:
//! `tests/tracing.rs` installs the global log subscriber, and `tests/limits.rs` lowers the
//! open-file limit.

#[path = "../backends/mod.rs"]
mod backends;
#[path = "../common/mod.rs"]
mod common;

mod branding;
mod browser;
mod companies;
mod config;
mod console_auth;
mod console_browser;
mod console_contacts;
mod console_pages;
mod console_setup;
mod console_work;
mod enduser;
mod errors;
mod holds;
mod http;
mod microsoft;
mod pod_truth;
mod pods;
mod properties;
mod psa_connections;
mod psa_test;
mod pushes;
mod resets;
mod rotation;
mod sandbox_microsoft;
mod sandbox_psa;
mod scopes;
mod settings;
mod setup_api;
mod shares;
mod sms;
mod store;
mod technicians;
mod upstream_calls;
mod verification;
mod whole_setup;
mod wire;
