//! The MSP's PSA connections: create, list, read, change, delete, and the values to paste into
//! the PSA. Each PSA has its own body, told apart by `kind`. Secrets are write-only.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, Tags, Union};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::ApiError;
use super::auth::AdminApiKey;
use crate::app::AppContext;
use crate::core::psa_connections as core;
use crate::domain::{CheckOutcome, ErrorCode, PsaKind};

#[derive(Tags)]
enum ApiTags {
    /// The MSP's connections to its PSA (ConnectWise PSA, HaloPSA, Autotask) and how to embed
    /// the pod in it.
    PsaConnections,
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

/// A new ConnectWise PSA connection.
#[derive(Debug, Object)]
pub struct ConnectWiseCreate {
    /// A name for people; defaults to "ConnectWise".
    #[oai(validator(max_length = 200))]
    #[oai(nullable)]
    pub name: Option<String>,
    /// The ConnectWise site's address, e.g. `https://api-na.myconnectwise.net` (the REST API
    /// is under `{site_url}/v4_6_release/apis/3.0`); defaults to
    /// `psa.connectwise.default_site_url`. `https://` only (plain `http://` for localhost).
    #[oai(validator(max_length = 2048))]
    #[oai(nullable)]
    pub site_url: Option<String>,
    /// The MSP's ConnectWise company id (the one technicians sign in with), e.g. `northwind`.
    #[oai(validator(max_length = 256))]
    pub company_id: String,
    /// The public key of the API member's key pair.
    #[oai(validator(max_length = 256))]
    pub public_key: String,
    /// The private key of the API member's key pair. Stored encrypted; never shown again.
    #[oai(write_only, validator(max_length = 256))]
    pub private_key: String,
    /// The `clientId` of a ConnectWise developer integration; overrides
    /// `psa.connectwise.client_id` (required when that is not configured).
    #[oai(validator(max_length = 256))]
    #[oai(nullable)]
    pub client_id: Option<String>,
    /// The origins (`https://host[:port]`) that may frame the pod; defaults to the site's
    /// (for `api-XX.myconnectwise.net`, also `XX.myconnectwise.net`, where technicians sign
    /// in).
    #[oai(validator(max_items = 20))]
    #[oai(nullable)]
    pub allowed_origins: Option<Vec<String>>,
}

/// A new HaloPSA connection. Vouch generates the custom tab's secret and returns it once in
/// the answer (and in the setup values).
#[derive(Debug, Object)]
pub struct HaloPsaCreate {
    /// A name for people; defaults to "HaloPSA".
    #[oai(validator(max_length = 200))]
    #[oai(nullable)]
    pub name: Option<String>,
    /// Halo's resource server, e.g. `https://msp.halopsa.com` (the API is
    /// `{resource_url}/api/...`).
    #[oai(validator(max_length = 2048))]
    pub resource_url: String,
    /// Halo's authorisation server, e.g. `https://msp.halopsa.com/auth` (tokens from
    /// `{auth_url}/token`).
    #[oai(validator(max_length = 2048))]
    pub auth_url: String,
    /// Hosted Halo's tenant name, sent with each token request; leave it out for a Halo of
    /// your own.
    #[oai(validator(max_length = 256))]
    #[oai(nullable)]
    pub tenant: Option<String>,
    /// The client id of the Halo API application (client credentials, scope `all`).
    #[oai(validator(max_length = 256))]
    pub client_id: String,
    /// The client secret of the Halo API application. Stored encrypted; never shown again.
    #[oai(write_only, validator(max_length = 1024))]
    pub client_secret: String,
    /// The origins (`https://host[:port]`) that may frame the pod; defaults to the resource
    /// server's.
    #[oai(validator(max_items = 20))]
    #[oai(nullable)]
    pub allowed_origins: Option<Vec<String>>,
}

/// A new Autotask connection. Vouch generates the Insight's secret and returns it once in the
/// answer (and in the setup values).
#[derive(Debug, Object)]
pub struct AutotaskCreate {
    /// A name for people; defaults to "Autotask".
    #[oai(validator(max_length = 200))]
    #[oai(nullable)]
    pub name: Option<String>,
    /// The API user's user name (an API-only resource), e.g. `vouch-api@msp.example`.
    #[oai(validator(max_length = 320))]
    pub api_user: String,
    /// The API user's secret. Stored encrypted; never shown again.
    #[oai(write_only, validator(max_length = 256))]
    pub api_secret: String,
    /// The API tracking identifier (`ApiIntegrationCode`) of the integration.
    #[oai(validator(max_length = 256))]
    pub integration_code: String,
    /// Where the zone is looked up; overrides `psa.autotask.zone_lookup_url`.
    #[oai(validator(max_length = 2048))]
    #[oai(nullable)]
    pub zone_lookup_url: Option<String>,
    /// The origins (`https://host[:port]`) that may frame the pod; defaults to
    /// `https://*.autotask.net` (the zone hosts Autotask's pages come from), or to the zone
    /// lookup's own origin when that is not Autotask's.
    #[oai(validator(max_items = 20))]
    #[oai(nullable)]
    pub allowed_origins: Option<Vec<String>>,
}

/// A new PSA connection: `kind` says which PSA, and which fields it takes.
#[derive(Debug, Union)]
#[oai(discriminator_name = "kind", one_of)]
pub enum PsaConnectionCreate {
    /// A ConnectWise PSA connection.
    #[oai(mapping = "connectwise")]
    ConnectWise(ConnectWiseCreate),
    /// A HaloPSA connection.
    #[oai(mapping = "halopsa")]
    HaloPsa(HaloPsaCreate),
    /// An Autotask connection.
    #[oai(mapping = "autotask")]
    Autotask(AutotaskCreate),
}

/// A change to a ConnectWise connection: what is left out stays as it is.
#[derive(Debug, Object)]
pub struct ConnectWisePatch {
    /// A name for people.
    #[oai(validator(max_length = 200))]
    #[oai(nullable)]
    pub name: Option<String>,
    /// The ConnectWise site's address.
    #[oai(validator(max_length = 2048))]
    #[oai(nullable)]
    pub site_url: Option<String>,
    /// The MSP's ConnectWise company id.
    #[oai(validator(max_length = 256))]
    #[oai(nullable)]
    pub company_id: Option<String>,
    /// The public key of the API member's key pair.
    #[oai(validator(max_length = 256))]
    #[oai(nullable)]
    pub public_key: Option<String>,
    /// A new private key; left out, the stored one stays.
    #[oai(write_only, validator(max_length = 256))]
    #[oai(nullable)]
    pub private_key: Option<String>,
    /// The `clientId` override; `null` falls back to `psa.connectwise.client_id`.
    #[oai(validator(max_length = 256))]
    pub client_id: MaybeUndefined<String>,
    /// The origins that may frame the pod; `null` goes back to those of the site.
    #[oai(validator(max_items = 20))]
    pub allowed_origins: MaybeUndefined<Vec<String>>,
}

/// A change to a HaloPSA connection: what is left out stays as it is.
#[derive(Debug, Object)]
pub struct HaloPsaPatch {
    /// A name for people.
    #[oai(validator(max_length = 200))]
    #[oai(nullable)]
    pub name: Option<String>,
    /// Halo's resource server.
    #[oai(validator(max_length = 2048))]
    #[oai(nullable)]
    pub resource_url: Option<String>,
    /// Halo's authorisation server.
    #[oai(validator(max_length = 2048))]
    #[oai(nullable)]
    pub auth_url: Option<String>,
    /// Hosted Halo's tenant name; `null` removes it.
    #[oai(validator(max_length = 256))]
    pub tenant: MaybeUndefined<String>,
    /// The client id of the Halo API application.
    #[oai(validator(max_length = 256))]
    #[oai(nullable)]
    pub client_id: Option<String>,
    /// A new client secret; left out, the stored one stays.
    #[oai(write_only, validator(max_length = 1024))]
    #[oai(nullable)]
    pub client_secret: Option<String>,
    /// The origins that may frame the pod; `null` goes back to the resource server's.
    #[oai(validator(max_items = 20))]
    pub allowed_origins: MaybeUndefined<Vec<String>>,
}

/// A change to an Autotask connection: what is left out stays as it is.
#[derive(Debug, Object)]
pub struct AutotaskPatch {
    /// A name for people.
    #[oai(validator(max_length = 200))]
    #[oai(nullable)]
    pub name: Option<String>,
    /// The API user's user name.
    #[oai(validator(max_length = 320))]
    #[oai(nullable)]
    pub api_user: Option<String>,
    /// A new API user secret; left out, the stored one stays.
    #[oai(write_only, validator(max_length = 256))]
    #[oai(nullable)]
    pub api_secret: Option<String>,
    /// The API tracking identifier.
    #[oai(validator(max_length = 256))]
    #[oai(nullable)]
    pub integration_code: Option<String>,
    /// The zone lookup override; `null` falls back to `psa.autotask.zone_lookup_url`.
    #[oai(validator(max_length = 2048))]
    pub zone_lookup_url: MaybeUndefined<String>,
    /// The origins that may frame the pod; `null` goes back to the default.
    #[oai(validator(max_items = 20))]
    pub allowed_origins: MaybeUndefined<Vec<String>>,
}

/// A change to a connection; `kind` must be the connection's own PSA.
#[derive(Debug, Union)]
#[oai(discriminator_name = "kind", one_of)]
pub enum PsaConnectionPatch {
    /// A change to a ConnectWise PSA connection.
    #[oai(mapping = "connectwise")]
    ConnectWise(ConnectWisePatch),
    /// A change to a HaloPSA connection.
    #[oai(mapping = "halopsa")]
    HaloPsa(HaloPsaPatch),
    /// A change to an Autotask connection.
    #[oai(mapping = "autotask")]
    Autotask(AutotaskPatch),
}

// ---------------------------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------------------------

/// A secret: whether it is set and when it last changed, never its value.
#[derive(Debug, Object)]
pub struct SecretState {
    /// Whether Vouch holds this secret.
    pub set: bool,
    /// When it was last set through this API (`null` when it was set another way).
    #[oai(nullable)]
    pub changed_at: Option<DateTime<Utc>>,
    /// The value: only in the answer that created the connection, and only for a secret
    /// Vouch generated (the HaloPSA `tab_secret`, the Autotask `insight_secret`). Never in
    /// any other answer; `GET /v1/psa-connections/{id}/setup` shows it again for pasting.
    #[oai(skip_serializing_if_is_none)]
    #[oai(nullable)]
    pub value: Option<String>,
    /// Only for a signing secret (`tab_secret`, `insight_secret`) that was rotated, while the
    /// secret it replaced is still accepted: that previous secret (never its value).
    #[oai(skip_serializing_if_is_none)]
    #[oai(nullable)]
    pub previous: Option<PreviousSecretState>,
}

/// A signing secret replaced by a rotation, still accepted until `expires_at`.
#[derive(Debug, Object)]
pub struct PreviousSecretState {
    /// Always `true`: Vouch still holds it.
    pub set: bool,
    /// When it had been set.
    #[oai(nullable)]
    pub changed_at: Option<DateTime<Utc>>,
    /// When pod loads signed with it stop being accepted.
    pub expires_at: DateTime<Utc>,
}

impl SecretState {
    fn of(status: core::SecretStatus) -> SecretState {
        SecretState {
            set: status.set,
            changed_at: status.changed_at,
            value: None,
            previous: status.previous.map(|p| PreviousSecretState {
                set: true,
                changed_at: p.changed_at,
                expires_at: p.expires_at,
            }),
        }
    }
}

/// What a connection's status is: what its last test said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum PsaConnectionStatus {
    /// Not tested since it was saved or since its credentials or addresses changed.
    Untested,
    /// Every check of the last test passed.
    Passed,
    /// A check of the last test failed: `last_test` says which, with its code.
    Failed,
}

impl PsaConnectionStatus {
    fn of(status: core::ConnectionStatus) -> PsaConnectionStatus {
        match status {
            core::ConnectionStatus::Untested => PsaConnectionStatus::Untested,
            core::ConnectionStatus::Passed => PsaConnectionStatus::Passed,
            core::ConnectionStatus::Failed => PsaConnectionStatus::Failed,
        }
    }
}

/// One check of a connection test.
#[derive(Debug, Object)]
pub struct PsaConnectionCheck {
    /// A stable name for what was checked: ConnectWise `company`, `api_keys`,
    /// `read_tickets`, `read_contacts`, `ticket_notes`; HaloPSA `token`, `read_tickets`,
    /// `actions`; Autotask `zone`, `credentials`, `read_tickets`.
    pub name: String,
    /// Whether it passed (`false` for a failed or a skipped check).
    pub passed: bool,
    /// `passed`, `failed`, or `skipped` (not run because a check it needs failed).
    pub outcome: CheckOutcome,
    /// Why it failed (only when `outcome` is `failed`).
    #[oai(nullable)]
    pub code: Option<ErrorCode>,
    /// What was checked and, when it failed, what to do.
    pub message: String,
}

/// The outcome of a connection test.
#[derive(Debug, Object)]
pub struct PsaConnectionTest {
    /// When it ran.
    pub tested_at: DateTime<Utc>,
    /// Whether no check failed.
    pub passed: bool,
    /// The name of the first check that failed, `null` when none did.
    #[oai(nullable)]
    pub failed_check: Option<String>,
    /// That check's code.
    #[oai(nullable)]
    pub code: Option<ErrorCode>,
    /// Every check, in the order they ran.
    pub checks: Vec<PsaConnectionCheck>,
}

impl PsaConnectionTest {
    fn of(test: core::LastTest) -> PsaConnectionTest {
        PsaConnectionTest {
            tested_at: test.tested_at,
            passed: test.passed,
            failed_check: test.failed_check,
            code: test.code,
            checks: test
                .checks
                .into_iter()
                .map(|c| PsaConnectionCheck {
                    name: c.name,
                    passed: c.outcome == CheckOutcome::Passed,
                    outcome: c.outcome,
                    code: c.code,
                    message: c.message,
                })
                .collect(),
        }
    }
}

/// What testing a connection found.
#[derive(Debug, Object)]
pub struct PsaConnectionTestResult {
    /// The connection.
    pub connection_id: Uuid,
    /// Its PSA.
    pub kind: PsaKind,
    /// The connection's status now (`passed` or `failed`; `untested` when it was changed
    /// while being tested, see `recorded`).
    pub status: PsaConnectionStatus,
    /// Whether this test is kept as the connection's status: `false` when the connection was
    /// changed while it ran (test it again).
    pub recorded: bool,
    #[oai(flatten)]
    pub test: PsaConnectionTest,
}

/// What every connection shows, whatever its PSA.
#[derive(Debug, Object)]
pub struct PsaConnectionCommon {
    /// Vouch's id of this connection (the `connection` of its pod URL).
    pub id: Uuid,
    /// A name for people.
    pub name: String,
    /// What the last test said: `untested` until the connection is tested (and again after
    /// its credentials or addresses change), then `passed` or `failed`.
    pub status: PsaConnectionStatus,
    /// The last test, `null` when there was none (since the credentials last changed).
    #[oai(nullable)]
    pub last_test: Option<PsaConnectionTest>,
    /// The origins that may frame the pod (its `Content-Security-Policy: frame-ancestors`).
    pub allowed_origins: Vec<String>,
    /// `true` when `allowed_origins` was set by the admin; `false` when it follows the PSA's
    /// address.
    pub allowed_origins_custom: bool,
    /// When the connection was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

/// A ConnectWise PSA connection.
#[derive(Debug, Object)]
pub struct ConnectWiseConnection {
    #[oai(flatten)]
    pub common: PsaConnectionCommon,
    /// The ConnectWise site's address.
    pub site_url: String,
    /// The MSP's ConnectWise company id.
    pub company_id: String,
    /// The public key of the API member's key pair.
    pub public_key: String,
    /// The private key (never its value).
    pub private_key: SecretState,
    /// This connection's `clientId` override, `null` when the configured one applies.
    #[oai(nullable)]
    pub client_id: Option<String>,
    /// The `clientId` Vouch sends: the override, else `psa.connectwise.client_id`.
    #[oai(nullable)]
    pub client_id_in_effect: Option<String>,
}

/// A HaloPSA connection.
#[derive(Debug, Object)]
pub struct HaloPsaConnection {
    #[oai(flatten)]
    pub common: PsaConnectionCommon,
    /// Halo's resource server.
    pub resource_url: String,
    /// Halo's authorisation server.
    pub auth_url: String,
    /// Hosted Halo's tenant name.
    #[oai(nullable)]
    pub tenant: Option<String>,
    /// The client id of the Halo API application.
    pub client_id: String,
    /// The API application's client secret (never its value).
    pub client_secret: SecretState,
    /// The custom tab's secret, generated by Vouch: its value only in the answers that create
    /// the connection or rotate the secret.
    pub tab_secret: SecretState,
}

/// An Autotask connection.
#[derive(Debug, Object)]
pub struct AutotaskConnection {
    #[oai(flatten)]
    pub common: PsaConnectionCommon,
    /// The API user's user name.
    pub api_user: String,
    /// The API tracking identifier.
    pub integration_code: String,
    /// The API user's secret (never its value).
    pub api_secret: SecretState,
    /// The Insight's secret, generated by Vouch: its value only in the answers that create
    /// the connection or rotate the secret.
    pub insight_secret: SecretState,
    /// This connection's zone lookup override, `null` when the configured one applies.
    #[oai(nullable)]
    pub zone_lookup_url: Option<String>,
    /// The zone lookup Vouch uses: the override, else `psa.autotask.zone_lookup_url`.
    pub zone_lookup_url_in_effect: String,
}

/// A PSA connection; `kind` says which PSA. Never carries a secret's value (except the one
/// Vouch generated, in the create answer only).
#[derive(Debug, Union)]
#[oai(discriminator_name = "kind", one_of)]
pub enum PsaConnection {
    /// A ConnectWise PSA connection.
    #[oai(mapping = "connectwise")]
    ConnectWise(ConnectWiseConnection),
    /// A HaloPSA connection.
    #[oai(mapping = "halopsa")]
    HaloPsa(HaloPsaConnection),
    /// An Autotask connection.
    #[oai(mapping = "autotask")]
    Autotask(AutotaskConnection),
}

impl PsaConnection {
    fn of(view: core::PsaConnectionView, generated: Option<core::GeneratedSecret>) -> Self {
        let common = PsaConnectionCommon {
            id: view.id,
            name: view.name,
            status: PsaConnectionStatus::of(view.status),
            last_test: view.last_test.map(PsaConnectionTest::of),
            allowed_origins: view.allowed_origins,
            allowed_origins_custom: view.allowed_origins_custom,
            created_at: view.created_at,
            updated_at: view.updated_at,
        };
        let with_value = |mut state: SecretState, field: &str| {
            if let Some(generated) = generated.as_ref().filter(|g| g.field == field) {
                state.value = Some(generated.value.expose_secret().to_owned());
            }
            state
        };
        match view.details {
            core::ConnectionDetails::ConnectWise {
                site_url,
                company_id,
                public_key,
                private_key,
                client_id,
                client_id_in_effect,
            } => PsaConnection::ConnectWise(ConnectWiseConnection {
                common,
                site_url,
                company_id,
                public_key,
                private_key: SecretState::of(private_key),
                client_id,
                client_id_in_effect,
            }),
            core::ConnectionDetails::HaloPsa {
                resource_url,
                auth_url,
                tenant,
                client_id,
                client_secret,
                tab_secret,
            } => PsaConnection::HaloPsa(HaloPsaConnection {
                common,
                resource_url,
                auth_url,
                tenant,
                client_id,
                client_secret: SecretState::of(client_secret),
                tab_secret: with_value(SecretState::of(tab_secret), "tab_secret"),
            }),
            core::ConnectionDetails::Autotask {
                api_user,
                integration_code,
                api_secret,
                insight_secret,
                zone_lookup_url,
                zone_lookup_url_in_effect,
            } => PsaConnection::Autotask(AutotaskConnection {
                common,
                api_user,
                integration_code,
                api_secret: SecretState::of(api_secret),
                insight_secret: with_value(SecretState::of(insight_secret), "insight_secret"),
                zone_lookup_url,
                zone_lookup_url_in_effect,
            }),
        }
    }
}

impl PsaConnectionTestResult {
    fn of(result: core::ConnectionTestResult) -> PsaConnectionTestResult {
        let status = match (result.recorded, result.test.passed) {
            (false, _) => PsaConnectionStatus::Untested,
            (true, true) => PsaConnectionStatus::Passed,
            (true, false) => PsaConnectionStatus::Failed,
        };
        PsaConnectionTestResult {
            connection_id: result.connection_id,
            kind: result.kind,
            status,
            recorded: result.recorded,
            test: PsaConnectionTest::of(result.test),
        }
    }
}

/// The signing secret to paste into the PSA.
#[derive(Debug, Object)]
pub struct SetupSecret {
    /// Which secret: `tab_secret` (HaloPSA) or `insight_secret` (Autotask).
    pub field: String,
    /// What the instructions call it.
    pub label: String,
    /// The value to paste. Treat it as a password: whoever holds it can open pods as the PSA.
    pub value: String,
}

/// What to paste into the PSA so it embeds the pod.
#[derive(Debug, Object)]
pub struct PsaConnectionSetup {
    /// The connection.
    pub connection_id: Uuid,
    /// Its PSA.
    pub kind: PsaKind,
    /// The pod's address, exactly as the PSA must load it. It carries no secret. For
    /// ConnectWise it ends with `id=[cw_id]&screen=[cw_screen]`, which ConnectWise fills in.
    pub pod_url: String,
    /// Vouch's own origin (ConnectWise's Manage Hosted API asks for it as "Origin").
    pub vouch_origin: String,
    /// The secret the PSA signs each load with (HaloPSA, Autotask); `null` for ConnectWise,
    /// whose loads are vouched for by its Hosted API instead.
    #[oai(nullable)]
    pub secret: Option<SetupSecret>,
    /// The recommended height of the pod, in pixels.
    pub height_px: u32,
    /// The steps to follow in the PSA, in order.
    pub steps: Vec<String>,
}

/// How long the secret being replaced keeps working.
#[derive(Debug, Object)]
pub struct RotateSecretRequest {
    /// Seconds during which pod loads signed with the old secret are still accepted, so the
    /// PSA can be updated without an outage: 0 to 604800 (7 days); defaults to 86400 (24
    /// hours). 0 stops the old secret at once. Rotating again during a grace period drops
    /// the secret in grace (only the current and the last one are kept).
    #[oai(nullable)]
    pub grace_seconds: Option<i64>,
}

#[derive(ApiResponse)]
enum Created {
    /// The connection is saved (it has not been tested).
    #[oai(status = 201)]
    Created(Json<PsaConnection>),
}

#[derive(ApiResponse)]
enum Removed {
    /// The connection, its secrets and its company mappings are removed; the audit log keeps
    /// its history.
    #[oai(status = 204)]
    Removed,
}

fn secret(value: String) -> SecretString {
    SecretString::from(value)
}

fn patch<T>(value: MaybeUndefined<T>) -> core::Patch<T> {
    match value {
        MaybeUndefined::Undefined => core::Patch::Keep,
        MaybeUndefined::Null => core::Patch::Clear,
        MaybeUndefined::Value(value) => core::Patch::Set(value),
    }
}

pub struct PsaConnectionsApi;

#[OpenApi(prefix_path = "/v1/psa-connections", tag = "ApiTags::PsaConnections")]
impl PsaConnectionsApi {
    /// Connect a PSA.
    ///
    /// The body depends on `kind`. Each field is checked, and a refusal names the field.
    /// Nothing is sent to the PSA yet (testing a connection is a separate step), so a saved
    /// connection is `untested`. For HaloPSA and Autotask, Vouch generates the secret the PSA
    /// signs pod loads with (256 bits) and returns its value in this answer only
    /// (`tab_secret.value`, `insight_secret.value`); the setup values show it again.
    #[oai(path = "/", method = "post", operation_id = "psa_connections_create")]
    async fn create(
        &self,
        auth: AdminApiKey,
        ctx: Data<&Arc<AppContext>>,
        body: Json<PsaConnectionCreate>,
    ) -> Result<Created, ApiError> {
        let input = match body.0 {
            PsaConnectionCreate::ConnectWise(b) => {
                core::NewConnectionInput::ConnectWise(core::ConnectWiseInput {
                    name: b.name,
                    site_url: b.site_url,
                    company_id: b.company_id,
                    public_key: b.public_key,
                    private_key: secret(b.private_key),
                    client_id: b.client_id,
                    allowed_origins: b.allowed_origins,
                })
            }
            PsaConnectionCreate::HaloPsa(b) => {
                core::NewConnectionInput::HaloPsa(core::HaloPsaInput {
                    name: b.name,
                    resource_url: b.resource_url,
                    auth_url: b.auth_url,
                    tenant: b.tenant,
                    client_id: b.client_id,
                    client_secret: secret(b.client_secret),
                    allowed_origins: b.allowed_origins,
                })
            }
            PsaConnectionCreate::Autotask(b) => {
                core::NewConnectionInput::Autotask(core::AutotaskInput {
                    name: b.name,
                    api_user: b.api_user,
                    api_secret: secret(b.api_secret),
                    integration_code: b.integration_code,
                    zone_lookup_url: b.zone_lookup_url,
                    allowed_origins: b.allowed_origins,
                })
            }
        };
        let created = ctx
            .psa_connections
            .create(auth.msp_id(), &auth.actor(), input)
            .await?;
        Ok(Created::Created(Json(PsaConnection::of(
            created.view,
            created.generated,
        ))))
    }

    /// List the MSP's PSA connections, oldest first. Never shows a secret.
    #[oai(path = "/", method = "get", operation_id = "psa_connections_list")]
    async fn list(
        &self,
        auth: AdminApiKey,
        ctx: Data<&Arc<AppContext>>,
    ) -> Result<Json<Vec<PsaConnection>>, ApiError> {
        let views = ctx.psa_connections.list(auth.msp_id()).await?;
        Ok(Json(
            views
                .into_iter()
                .map(|v| PsaConnection::of(v, None))
                .collect(),
        ))
    }

    /// Read one PSA connection. Never shows a secret.
    #[oai(path = "/:id", method = "get", operation_id = "psa_connections_get")]
    async fn get(
        &self,
        auth: AdminApiKey,
        ctx: Data<&Arc<AppContext>>,
        id: Path<Uuid>,
    ) -> Result<Json<PsaConnection>, ApiError> {
        let view = ctx.psa_connections.get(auth.msp_id(), id.0).await?;
        Ok(Json(PsaConnection::of(view, None)))
    }

    /// Change a PSA connection.
    ///
    /// `kind` must be the connection's PSA. Fields left out stay as they are; a secret is
    /// replaced only when a new one is given. `null` sets an optional value back to its
    /// default. The change is audited (before and after, never a secret) and every
    /// instance's pods see it at once.
    #[oai(
        path = "/:id",
        method = "patch",
        operation_id = "psa_connections_update"
    )]
    async fn update(
        &self,
        auth: AdminApiKey,
        ctx: Data<&Arc<AppContext>>,
        id: Path<Uuid>,
        body: Json<PsaConnectionPatch>,
    ) -> Result<Json<PsaConnection>, ApiError> {
        let change = match body.0 {
            PsaConnectionPatch::ConnectWise(b) => {
                core::ConnectionPatch::ConnectWise(core::ConnectWisePatch {
                    name: b.name,
                    site_url: b.site_url,
                    company_id: b.company_id,
                    public_key: b.public_key,
                    private_key: b.private_key.map(secret),
                    client_id: patch(b.client_id),
                    allowed_origins: patch(b.allowed_origins),
                })
            }
            PsaConnectionPatch::HaloPsa(b) => core::ConnectionPatch::HaloPsa(core::HaloPsaPatch {
                name: b.name,
                resource_url: b.resource_url,
                auth_url: b.auth_url,
                tenant: patch(b.tenant),
                client_id: b.client_id,
                client_secret: b.client_secret.map(secret),
                allowed_origins: patch(b.allowed_origins),
            }),
            PsaConnectionPatch::Autotask(b) => {
                core::ConnectionPatch::Autotask(core::AutotaskPatch {
                    name: b.name,
                    api_user: b.api_user,
                    api_secret: b.api_secret.map(secret),
                    integration_code: b.integration_code,
                    zone_lookup_url: patch(b.zone_lookup_url),
                    allowed_origins: patch(b.allowed_origins),
                })
            }
        };
        let view = ctx
            .psa_connections
            .update(auth.msp_id(), &auth.actor(), id.0, change)
            .await?;
        Ok(Json(PsaConnection::of(view, None)))
    }

    /// Remove a PSA connection.
    ///
    /// Removes its secrets, its company mappings and its technicians; the pods embedded with
    /// its pod URL stop working. The audit log keeps every entry about it.
    #[oai(
        path = "/:id",
        method = "delete",
        operation_id = "psa_connections_remove"
    )]
    async fn remove(
        &self,
        auth: AdminApiKey,
        ctx: Data<&Arc<AppContext>>,
        id: Path<Uuid>,
    ) -> Result<Removed, ApiError> {
        ctx.psa_connections
            .delete(auth.msp_id(), &auth.actor(), id.0)
            .await?;
        Ok(Removed::Removed)
    }

    /// Rotate the secret the PSA signs pod loads with.
    ///
    /// For HaloPSA (the tab secret) and Autotask (the Insight secret): Vouch generates a new
    /// secret (256 bits) and returns its value in this answer (`tab_secret.value`,
    /// `insight_secret.value`); the setup values show it from now on. The old secret keeps
    /// working for `grace_seconds` (`tab_secret.previous.expires_at`): paste the new one into
    /// the PSA within that time. ConnectWise signs no loads: 409
    /// `psa_connection_has_no_signing_secret`. The rotation is audited (never a secret) and
    /// every instance's pods see it at once.
    #[oai(
        path = "/:id/rotate-secret",
        method = "post",
        operation_id = "psa_connections_rotate_secret"
    )]
    async fn rotate_secret(
        &self,
        auth: AdminApiKey,
        ctx: Data<&Arc<AppContext>>,
        id: Path<Uuid>,
        body: Json<RotateSecretRequest>,
    ) -> Result<Json<PsaConnection>, ApiError> {
        let rotated = ctx
            .psa_connections
            .rotate_secret(auth.msp_id(), &auth.actor(), id.0, body.0.grace_seconds)
            .await?;
        Ok(Json(PsaConnection::of(
            rotated.view,
            Some(rotated.generated),
        )))
    }

    /// Test a PSA connection.
    ///
    /// Calls the PSA with the connection's credentials, harmless reads only (nothing is
    /// written to the PSA), and answers one check per thing Vouch needs of it, in order:
    /// ConnectWise the company id on the site, the API keys (`/system/info`), reading tickets
    /// and contacts, and ticket notes; HaloPSA a token, reading tickets, and ticket actions
    /// (notes); Autotask the zone lookup, the user, secret and integration code (`Version`),
    /// and reading tickets. A failed check has a code (`psa_credentials_rejected`,
    /// `psa_wrong_company`, `psa_api_user_unknown`, `psa_integration_code_rejected`,
    /// `psa_permission_missing`, `psa_throttled`, `psa_unreachable`, `psa_tls_failed`,
    /// `psa_timed_out`...) and a sentence saying what to fix; the checks that needed it are
    /// `skipped`. A failed test is still a 200 answer: the connection stays as saved, and
    /// its `status` shows this test (`passed` or `failed`) until its credentials change.
    /// Audited as `psa_connection.test`.
    #[oai(
        path = "/:id/test",
        method = "post",
        operation_id = "psa_connections_test"
    )]
    async fn test(
        &self,
        auth: AdminApiKey,
        ctx: Data<&Arc<AppContext>>,
        id: Path<Uuid>,
    ) -> Result<Json<PsaConnectionTestResult>, ApiError> {
        let result = ctx
            .psa_connections
            .test(auth.msp_id(), &auth.actor(), id.0)
            .await?;
        Ok(Json(PsaConnectionTestResult::of(result)))
    }

    /// What to paste into the PSA to embed the pod.
    ///
    /// The pod URL (it carries no secret), the recommended height, the PSA's step-by-step
    /// instructions and, for HaloPSA and Autotask, the secret the PSA signs each pod load
    /// with. This answer shows that secret's value because the admin must paste it into the
    /// PSA: treat it as a password. ConnectWise has no such secret (its Hosted API vouches for
    /// the technician).
    #[oai(
        path = "/:id/setup",
        method = "get",
        operation_id = "psa_connections_setup"
    )]
    async fn setup(
        &self,
        auth: AdminApiKey,
        ctx: Data<&Arc<AppContext>>,
        id: Path<Uuid>,
    ) -> Result<Json<PsaConnectionSetup>, ApiError> {
        let setup = ctx.psa_connections.setup(auth.msp_id(), id.0).await?;
        Ok(Json(PsaConnectionSetup {
            connection_id: setup.connection_id,
            kind: setup.kind,
            pod_url: setup.pod_url,
            vouch_origin: setup.vouch_origin,
            secret: setup.secret.map(|s| SetupSecret {
                field: s.field.to_owned(),
                label: s.label.to_owned(),
                value: s.value.expose_secret().to_owned(),
            }),
            height_px: setup.height_px,
            steps: setup.steps,
        }))
    }
}
