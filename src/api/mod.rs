//! The JSON API (poem-openapi). Every operation, field and response is documented with `///`,
//! which becomes the OpenAPI document committed as `openapi/vouch.yaml`.

mod audit;
pub mod auth;
mod companies;
pub mod consent;
pub mod error;
pub mod health;
mod holds;
mod integrations;
mod nul;
pub mod pod;
mod psa_connections;
pub mod routes;
mod settings;
mod setup;
mod shares;
mod system;
mod technicians;
mod verifications;

use poem_openapi::OpenApiService;

pub use error::{ApiError, ErrorBody, ErrorCode};

/// Every group of operations, in the order the documentation lists them.
pub type Apis = (
    system::SystemApi,
    integrations::IntegrationsApi,
    psa_connections::PsaConnectionsApi,
    setup::TenantsApi,
    companies::CompaniesApi,
    setup::CompanyMappingsApi,
    setup::ApiKeysApi,
    technicians::TechniciansApi,
    verifications::VerificationsApi,
    verifications::ResetsApi,
    holds::HoldsApi,
    shares::SharesApi,
    audit::AuditApi,
    settings::SettingsApi,
    pod::PodApi,
);

/// The API. Operations reach the application state through `poem::web::Data`, so the
/// service (and its document) can be built without a running instance.
pub fn service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            system::SystemApi,
            integrations::IntegrationsApi,
            psa_connections::PsaConnectionsApi,
            setup::TenantsApi,
            companies::CompaniesApi,
            setup::CompanyMappingsApi,
            setup::ApiKeysApi,
            technicians::TechniciansApi,
            verifications::VerificationsApi,
            verifications::ResetsApi,
            holds::HoldsApi,
            shares::SharesApi,
            audit::AuditApi,
            settings::SettingsApi,
            pod::PodApi,
        ),
        "Vouch",
        env!("CARGO_PKG_VERSION"),
    )
    .summary("Verify callers and reset Microsoft 365 passwords from the PSA ticket.")
    .description(
        "Every error has the body `{code, message}`: `code` is stable and machine-readable, \
             `message` says what to do. Every response carries an `x-request-id` header; quote \
             it when asking for support.",
    )
    .server("/api")
}

/// The OpenAPI document as YAML, as committed in `openapi/vouch.yaml`.
pub fn spec_yaml() -> String {
    service().spec_yaml()
}
