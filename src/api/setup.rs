//! Setting Vouch up: company mappings, tenants and API keys. The handlers parse, call one
//! method of `core::setup::SetupService` and map its answer; every change is audited there.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, Tags};
use secrecy::ExposeSecret;
use uuid::Uuid;

use super::ApiError;
use super::auth::AdminApiKey;
use super::integrations::ExpiryDto;
use crate::app::AppContext;
use crate::core::integrations::ExpiryState;
use crate::core::setup::{
    IntegrationSummary, MappingInput, MappingOutcome, MappingView, TenantHealth, TenantRemoved,
    TenantView,
};
use crate::domain::{IntegrationKind, IntegrationStatus};
use crate::store::access::ApiKey as StoredApiKey;

#[derive(Tags)]
enum ApiTags {
    /// Which customer tenant the users of each PSA company live in.
    CompanyMappings,
    /// The customers' Microsoft 365 tenants Vouch reaches.
    Tenants,
    /// The MSP's API keys.
    ApiKeys,
}

/// A PSA company mapped to a customer tenant: tickets of that company act on that tenant.
#[derive(Debug, Object)]
pub struct CompanyMappingDto {
    /// Vouch's id of this mapping (to remove it).
    pub id: Uuid,
    /// The PSA connection the company belongs to.
    pub psa_connection_id: Uuid,
    /// The company's id in the PSA.
    pub psa_company_id: String,
    /// The company's name in the PSA.
    pub psa_company_name: String,
    /// Vouch's id of the tenant.
    pub tenant_id: Uuid,
    /// The tenant's display name.
    pub tenant_name: String,
    /// When the mapping was made.
    pub created_at: DateTime<Utc>,
}

impl From<MappingView> for CompanyMappingDto {
    fn from(m: MappingView) -> Self {
        CompanyMappingDto {
            id: m.id,
            psa_connection_id: m.psa_connection_id,
            psa_company_id: m.psa_company_id,
            psa_company_name: m.psa_company_name,
            tenant_id: m.tenant_id,
            tenant_name: m.tenant_name,
            created_at: m.created_at,
        }
    }
}

/// Map a PSA company to a tenant.
#[derive(Debug, Object)]
pub struct CompanyMappingRequest {
    /// The PSA connection (`GET /api/v1/psa-connections`).
    pub psa_connection_id: Uuid,
    /// The company's id in the PSA (ConnectWise company id, HaloPSA client id, Autotask
    /// company id).
    #[oai(validator(max_length = 256))]
    pub psa_company_id: String,
    /// The company's name, as shown in lists and notes.
    #[oai(validator(max_length = 200))]
    pub psa_company_name: String,
    /// Vouch's id of the tenant (`GET /api/v1/tenants`).
    pub tenant_id: Uuid,
}

#[derive(ApiResponse)]
enum MappingPut {
    /// The mapping was made.
    #[oai(status = 201)]
    Created(Json<CompanyMappingDto>),
    /// The company was already mapped to this tenant; it stays (its name is refreshed).
    #[oai(status = 200)]
    Kept(Json<CompanyMappingDto>),
}

/// An integration of a tenant. Never includes a secret.
#[derive(Debug, Object)]
pub struct TenantIntegrationDto {
    /// Vouch's id of the integration (`/api/v1/integrations/{id}`).
    pub id: Uuid,
    /// Which integration.
    pub kind: IntegrationKind,
    /// Whether it worked at its last check.
    pub status: IntegrationStatus,
    /// When its secret stops working.
    #[oai(nullable)]
    pub secret_expires_at: Option<DateTime<Utc>>,
    /// Expiry state of the secret.
    pub expiry: ExpiryDto,
    /// When Vouch last checked it.
    #[oai(nullable)]
    pub last_checked_at: Option<DateTime<Utc>>,
    /// Outcome of the last check: `ok`, `renewed`, or an error code.
    #[oai(nullable)]
    pub last_check_code: Option<String>,
}

impl From<IntegrationSummary> for TenantIntegrationDto {
    fn from(i: IntegrationSummary) -> Self {
        TenantIntegrationDto {
            id: i.id,
            kind: i.kind,
            status: i.status,
            secret_expires_at: i.secret_expires_at,
            expiry: match i.expiry {
                ExpiryState::Ok => ExpiryDto::Ok,
                ExpiryState::ExpiringSoon => ExpiryDto::ExpiringSoon,
                ExpiryState::Expired => ExpiryDto::Expired,
                ExpiryState::Unknown => ExpiryDto::Unknown,
            },
            last_checked_at: i.last_checked_at,
            last_check_code: i.last_check_code,
        }
    }
}

/// A tenant's health, from its integrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum TenantHealthDto {
    /// Every integration worked at its last check and no secret ends within 30 days.
    Ok,
    /// An integration failed its last check, or a secret expires within 30 days.
    Attention,
    /// A secret has expired: Vouch cannot use that integration.
    Broken,
    /// No integration: Vouch cannot reach the tenant.
    NotConnected,
}

/// A customer tenant.
#[derive(Debug, Object)]
pub struct TenantDto {
    /// Vouch's id of the tenant.
    pub id: Uuid,
    /// The tenant's Microsoft tenant id (a GUID).
    pub microsoft_tenant_id: String,
    /// The name Vouch shows (technicians see it in the pod).
    pub display_name: String,
    /// The tenant's verified domains, as Microsoft last said.
    pub verified_domains: Vec<String>,
    /// Its integrations, without secrets.
    pub integrations: Vec<TenantIntegrationDto>,
    /// The PSA companies mapped to it.
    pub mappings: Vec<CompanyMappingDto>,
    /// Its health.
    pub health: TenantHealthDto,
    /// What the health means and what to do.
    pub health_message: String,
}

impl From<TenantView> for TenantDto {
    fn from(v: TenantView) -> Self {
        TenantDto {
            id: v.tenant.id,
            microsoft_tenant_id: v.tenant.microsoft_tenant_id,
            display_name: v.tenant.display_name,
            verified_domains: v.tenant.verified_domains,
            integrations: v.integrations.into_iter().map(Into::into).collect(),
            mappings: v.mappings.into_iter().map(Into::into).collect(),
            health: match v.health {
                TenantHealth::Ok => TenantHealthDto::Ok,
                TenantHealth::Attention => TenantHealthDto::Attention,
                TenantHealth::Broken => TenantHealthDto::Broken,
                TenantHealth::NotConnected => TenantHealthDto::NotConnected,
            },
            health_message: v.health_message,
        }
    }
}

/// The changes to a tenant.
#[derive(Debug, Object)]
pub struct TenantPatch {
    /// The new display name: trimmed, 1 to 200 characters, no NUL.
    #[oai(validator(max_length = 200))]
    #[oai(nullable)]
    pub display_name: Option<String>,
}

/// A tenant as it is after a change.
#[derive(Debug, Object)]
pub struct TenantSummaryDto {
    /// Vouch's id of the tenant.
    pub id: Uuid,
    /// The tenant's Microsoft tenant id.
    pub microsoft_tenant_id: String,
    /// The name Vouch shows.
    pub display_name: String,
}

/// What removing a tenant did, and what is left to do in Microsoft.
#[derive(Debug, Object)]
pub struct TenantRemovedDto {
    /// The tenant removed.
    pub tenant: TenantSummaryDto,
    /// The integrations removed (Vouch no longer holds their secrets).
    pub integrations_removed: Vec<IntegrationKind>,
    /// How many company mappings were removed (their tickets now answer
    /// `company_not_mapped`).
    pub mappings_removed: u64,
    /// What the customer's administrator removes in Microsoft Entra, one step each.
    pub microsoft_cleanup: Vec<String>,
}

impl From<TenantRemoved> for TenantRemovedDto {
    fn from(r: TenantRemoved) -> Self {
        TenantRemovedDto {
            tenant: TenantSummaryDto {
                id: r.tenant.id,
                microsoft_tenant_id: r.tenant.microsoft_tenant_id,
                display_name: r.tenant.display_name,
            },
            integrations_removed: r.integrations_removed,
            mappings_removed: r.mappings_removed as u64,
            microsoft_cleanup: r.microsoft_cleanup,
        }
    }
}

/// An API key. Never includes the key or its hash.
#[derive(Debug, Object)]
pub struct ApiKeyDto {
    /// Vouch's id of the key (to revoke it).
    pub id: Uuid,
    /// The name given when it was created.
    pub name: String,
    /// The key's first characters, to tell keys apart (`vouch_1a2b3c`).
    pub prefix: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last used, to the minute (recorded at most once a minute).
    #[oai(nullable)]
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked; a revoked key is refused.
    #[oai(nullable)]
    pub revoked_at: Option<DateTime<Utc>>,
    /// What it may do: `admin` (everything) or `technician` (no set-up).
    pub scope: crate::domain::ApiKeyScope,
}

/// A new API key.
#[derive(Debug, Object)]
pub struct ApiKeyCreateRequest {
    /// What the key is for, to tell it apart later ("PSA automation"); 1 to 200 characters.
    pub name: String,
    /// What it may do: `admin` (everything) or `technician` (no set-up).
    pub scope: crate::domain::ApiKeyScope,
}

/// A key just created: the only answer that ever carries the key itself.
#[derive(Debug, Object)]
pub struct ApiKeyCreated {
    /// The key, shown this once: store it now. Vouch keeps only its hash.
    pub key: String,
    /// The key's record, as listed from now on.
    pub api_key: ApiKeyDto,
}

#[derive(ApiResponse)]
enum ApiKeyCreate {
    /// The key was created; `key` is shown only in this answer.
    #[oai(status = 201)]
    Created(Json<ApiKeyCreated>),
}

impl From<StoredApiKey> for ApiKeyDto {
    fn from(k: StoredApiKey) -> Self {
        ApiKeyDto {
            id: k.id,
            name: k.name,
            prefix: k.key_prefix,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            scope: k.scope,
            revoked_at: k.revoked_at,
        }
    }
}

pub struct CompanyMappingsApi;

#[OpenApi(prefix_path = "/v1/company-mappings", tag = "ApiTags::CompanyMappings")]
impl CompanyMappingsApi {
    /// List the company mappings, of every PSA connection or of one.
    #[oai(path = "/", method = "get", operation_id = "company_mappings_list")]
    async fn list(
        &self,
        auth: AdminApiKey,
        ctx: Data<&Arc<AppContext>>,
        /// Only this PSA connection's mappings.
        psa_connection_id: Query<Option<Uuid>>,
    ) -> Result<Json<Vec<CompanyMappingDto>>, ApiError> {
        let views = ctx
            .setup
            .list_mappings(auth.msp_id(), psa_connection_id.0)
            .await?;
        Ok(Json(views.into_iter().map(Into::into).collect()))
    }

    /// Map a PSA company to a tenant (or keep the mapping that is there).
    ///
    /// A company maps to at most one tenant: mapping it to another one is refused with 409
    /// `company_already_mapped`, naming the tenant it is mapped to; remove that mapping
    /// first. Pods see the mapping at once, on every instance.
    #[oai(path = "/", method = "put", operation_id = "company_mappings_put")]
    async fn put(
        &self,
        auth: AdminApiKey,
        ctx: Data<&Arc<AppContext>>,
        body: Json<CompanyMappingRequest>,
    ) -> Result<MappingPut, ApiError> {
        let body = body.0;
        let (view, outcome) = ctx
            .setup
            .put_mapping(
                auth.msp_id(),
                &auth.actor(),
                MappingInput {
                    psa_connection_id: body.psa_connection_id,
                    psa_company_id: body.psa_company_id,
                    psa_company_name: body.psa_company_name,
                    tenant_id: body.tenant_id,
                },
            )
            .await?;
        Ok(match outcome {
            MappingOutcome::Created => MappingPut::Created(Json(view.into())),
            MappingOutcome::Kept => MappingPut::Kept(Json(view.into())),
        })
    }

    /// Remove a company mapping, by its id; its tickets then answer `company_not_mapped`.
    #[oai(
        path = "/:id",
        method = "delete",
        operation_id = "company_mappings_delete"
    )]
    async fn delete(
        &self,
        auth: AdminApiKey,
        ctx: Data<&Arc<AppContext>>,
        /// The mapping's id.
        id: Path<Uuid>,
    ) -> Result<Json<CompanyMappingDto>, ApiError> {
        let view = ctx
            .setup
            .delete_mapping(auth.msp_id(), &auth.actor(), id.0)
            .await?;
        Ok(Json(view.into()))
    }
}

pub struct TenantsApi;

#[OpenApi(prefix_path = "/v1/tenants", tag = "ApiTags::Tenants")]
impl TenantsApi {
    /// List the tenants, each with its integrations, its mappings and its health.
    #[oai(path = "/", method = "get", operation_id = "tenants_list")]
    async fn list(
        &self,
        auth: AdminApiKey,
        ctx: Data<&Arc<AppContext>>,
    ) -> Result<Json<Vec<TenantDto>>, ApiError> {
        let views = ctx.setup.list_tenants(auth.msp_id()).await?;
        Ok(Json(views.into_iter().map(Into::into).collect()))
    }

    /// Rename a tenant: the name pods and notes show, at once.
    ///
    /// Trimmed; 1 to 200 characters. Connecting an integration again later may bring back
    /// the name Microsoft holds.
    #[oai(path = "/:id", method = "patch", operation_id = "tenants_update")]
    async fn update(
        &self,
        auth: AdminApiKey,
        ctx: Data<&Arc<AppContext>>,
        /// Vouch's id of the tenant.
        id: Path<Uuid>,
        body: Json<TenantPatch>,
    ) -> Result<Json<TenantSummaryDto>, ApiError> {
        let tenant = match body.0.display_name {
            Some(name) => {
                ctx.setup
                    .rename_tenant(auth.msp_id(), &auth.actor(), id.0, &name)
                    .await?
            }
            None => ctx.setup.tenant(auth.msp_id(), id.0).await?,
        };
        Ok(Json(TenantSummaryDto {
            id: tenant.id,
            microsoft_tenant_id: tenant.microsoft_tenant_id,
            display_name: tenant.display_name,
        }))
    }

    /// Remove a tenant: its integrations and their secrets, and its company mappings.
    ///
    /// The audit log and the history of its verifications and resets stay. Refused with
    /// 409 `tenant_busy` while one of its password resets is in progress. The answer lists
    /// what the customer's administrator removes in Microsoft Entra.
    #[oai(path = "/:id", method = "delete", operation_id = "tenants_delete")]
    async fn delete(
        &self,
        auth: AdminApiKey,
        ctx: Data<&Arc<AppContext>>,
        /// Vouch's id of the tenant.
        id: Path<Uuid>,
    ) -> Result<Json<TenantRemovedDto>, ApiError> {
        let removed = ctx
            .setup
            .remove_tenant(auth.msp_id(), &auth.actor(), id.0)
            .await?;
        Ok(Json(removed.into()))
    }
}

pub struct ApiKeysApi;

#[OpenApi(prefix_path = "/v1/api-keys", tag = "ApiTags::ApiKeys")]
impl ApiKeysApi {
    /// List the MSP's API keys, revoked ones included. Never a key or its hash.
    #[oai(path = "/", method = "get", operation_id = "api_keys_list")]
    async fn list(
        &self,
        auth: AdminApiKey,
        ctx: Data<&Arc<AppContext>>,
    ) -> Result<Json<Vec<ApiKeyDto>>, ApiError> {
        let keys = ctx.setup.list_api_keys(auth.msp_id()).await?;
        Ok(Json(keys.into_iter().map(Into::into).collect()))
    }

    /// Create an API key. The key is in this answer only; the audit records its prefix.
    #[oai(path = "/", method = "post", operation_id = "api_keys_create")]
    async fn create(
        &self,
        auth: AdminApiKey,
        ctx: Data<&Arc<AppContext>>,
        body: Json<ApiKeyCreateRequest>,
    ) -> Result<ApiKeyCreate, ApiError> {
        let (key, secret) = ctx
            .setup
            .create_api_key(auth.msp_id(), &auth.actor(), &body.0.name, body.0.scope)
            .await?;
        Ok(ApiKeyCreate::Created(Json(ApiKeyCreated {
            key: secret.expose_secret().to_owned(),
            api_key: key.into(),
        })))
    }

    /// Revoke an API key, on every instance from the next request on.
    ///
    /// Keys are checked against the database on every request (no cache). The key making
    /// this call may revoke itself: this call succeeds, the next one with it gets 401.
    /// Revoking a key already revoked answers it as it is.
    #[oai(path = "/:id", method = "delete", operation_id = "api_keys_revoke")]
    async fn revoke(
        &self,
        auth: AdminApiKey,
        ctx: Data<&Arc<AppContext>>,
        /// The key's id.
        id: Path<Uuid>,
    ) -> Result<Json<ApiKeyDto>, ApiError> {
        let key = ctx
            .setup
            .revoke_api_key(auth.msp_id(), &auth.actor(), id.0)
            .await?;
        Ok(Json(key.into()))
    }
}
