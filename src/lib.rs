//! Vouch: verify a help-desk caller through their Microsoft 365 tenant, then reset their
//! password, from inside the MSP's PSA ticket.
//!
//! Data flows one way: PSA request -> `psa` adapter -> `core` -> `microsoft` client.
//! `store` keeps state; `api` is the JSON API; `app` is the composition root that wires it
//! all from a `Config`. `sandbox` holds the test doubles of the upstream services, used by
//! the demo and the tests only: it and `demo` are left out of a build without the default
//! `sandbox` feature.

pub mod api;
pub mod app;
pub mod cache;
pub mod cli;
pub mod config;
pub mod core;
#[cfg(feature = "sandbox")]
pub mod demo;
pub mod domain;
pub mod microsoft;
pub mod psa;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod server;
pub mod sms;
pub mod store;
pub mod telemetry;
pub mod upstream;
pub mod web;
