//! The customer tenants' security integrations: status, connect, re-check, remove.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, Tags};
use secrecy::SecretString;
use uuid::Uuid;

use super::ApiError;
use super::auth::AdminApiKey;
use crate::app::AppContext;
use crate::core::integrations::{IdentityManagementInput, IntegrationView};
use crate::domain::{IntegrationKind, IntegrationStatus};

#[derive(Tags)]
enum ApiTags {
    /// How Vouch reaches each customer's Microsoft 365 tenant.
    Integrations,
}

/// How close the integration's secret is to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum ExpiryDto {
    /// More than 30 days left.
    Ok,
    /// 30 days or fewer left: renew it.
    ExpiringSoon,
    /// Expired: Vouch can no longer reach the tenant with it.
    Expired,
    /// No end date known.
    Unknown,
}

/// A tenant integration, as the MSP admin sees it. Never includes the secret.
#[derive(Debug, Object)]
pub struct Integration {
    /// Vouch's id of this integration.
    pub id: Uuid,
    /// Which integration.
    pub kind: IntegrationKind,
    /// The customer's Microsoft tenant id.
    pub tenant_id: String,
    /// The customer's organisation name in Microsoft.
    pub tenant_name: String,
    /// Whether the integration worked at its last check.
    pub status: IntegrationStatus,
    /// The app (client) id the integration uses.
    pub client_id: String,
    /// When the secret stops working.
    #[oai(nullable)]
    pub secret_expires_at: Option<DateTime<Utc>>,
    /// Expiry state of the secret.
    pub expiry: ExpiryDto,
    /// Whole days until the secret expires (negative once expired).
    #[oai(nullable)]
    pub days_left: Option<i64>,
    /// What to do about the secret's expiry, when something must be done.
    #[oai(nullable)]
    pub warning: Option<String>,
    /// When Vouch last checked that the integration works.
    #[oai(nullable)]
    pub last_checked_at: Option<DateTime<Utc>>,
    /// Outcome of the last check: `ok`, `renewed`, or an error code.
    #[oai(nullable)]
    pub last_check_code: Option<String>,
    /// What the last failed check means, for a person.
    #[oai(nullable)]
    pub last_check_message: Option<String>,
}

impl From<IntegrationView> for Integration {
    fn from(view: IntegrationView) -> Self {
        use crate::core::integrations::ExpiryState;
        Integration {
            id: view.id,
            kind: view.kind,
            tenant_id: view.tenant_id,
            tenant_name: view.tenant_name,
            status: view.status,
            client_id: view.client_id,
            secret_expires_at: view.secret_expires_at,
            expiry: match view.expiry {
                ExpiryState::Ok => ExpiryDto::Ok,
                ExpiryState::ExpiringSoon => ExpiryDto::ExpiringSoon,
                ExpiryState::Expired => ExpiryDto::Expired,
                ExpiryState::Unknown => ExpiryDto::Unknown,
            },
            days_left: view.days_left,
            warning: view.warning,
            last_checked_at: view.last_checked_at,
            last_check_code: view.last_check_code,
            last_check_message: view.last_check_message,
        }
    }
}

/// The credentials of the app the MSP registered in the customer's tenant.
#[derive(Debug, Object)]
pub struct IdentityManagementRequest {
    /// The customer's tenant id (a GUID) or one of its domains.
    #[oai(validator(max_length = 256))]
    pub tenant_id: String,
    /// The app registration's Application (client) ID.
    #[oai(validator(max_length = 256))]
    pub client_id: String,
    /// The client secret's Value (not its ID). Stored encrypted; never shown again.
    #[oai(write_only, validator(max_length = 1024))]
    pub client_secret: String,
    /// When the secret expires; defaults to 730 days from now.
    #[oai(nullable)]
    pub secret_expires_at: Option<DateTime<Utc>>,
}

/// Where to send the customer's administrator.
#[derive(Debug, Object)]
pub struct ConsentLink {
    /// The Microsoft admin-consent page; valid for 30 minutes, usable once.
    pub url: String,
}

#[derive(ApiResponse)]
enum Created {
    /// The integration works and is saved.
    #[oai(status = 201)]
    Created(Json<Integration>),
}

#[derive(ApiResponse)]
enum Removed {
    /// The integration is removed; Vouch no longer holds its secret.
    #[oai(status = 204)]
    Removed,
}

pub struct IntegrationsApi;

#[OpenApi(prefix_path = "/v1/integrations", tag = "ApiTags::Integrations")]
impl IntegrationsApi {
    /// List the integrations of every customer tenant.
    ///
    /// Includes each secret's expiry: `expiring_soon` from 30 days before, `expired` after.
    #[oai(path = "/", method = "get", operation_id = "integrations_list")]
    async fn list(
        &self,
        auth: AdminApiKey,
        ctx: Data<&Arc<AppContext>>,
    ) -> Result<Json<Vec<Integration>>, ApiError> {
        let views = ctx.integrations.list(auth.msp_id()).await?;
        Ok(Json(views.into_iter().map(Integration::from).collect()))
    }

    /// Connect a tenant through the MSP's own app registration (M365 Identity Management).
    ///
    /// Vouch first gets a token and makes a harmless read with these credentials; when that
    /// fails nothing is saved and the error says what to fix.
    #[oai(
        path = "/identity-management",
        method = "post",
        operation_id = "integrations_connect_identity_management"
    )]
    async fn connect_identity_management(
        &self,
        auth: AdminApiKey,
        ctx: Data<&Arc<AppContext>>,
        body: Json<IdentityManagementRequest>,
    ) -> Result<Created, ApiError> {
        let body = body.0;
        let view = ctx
            .integrations
            .connect_identity_management(
                auth.msp_id(),
                &auth.actor(),
                IdentityManagementInput {
                    tenant: body.tenant_id,
                    client_id: body.client_id,
                    client_secret: SecretString::from(body.client_secret),
                    secret_expires_at: body.secret_expires_at,
                },
            )
            .await?;
        Ok(Created::Created(Json(view.into())))
    }

    /// Start the Microsoft Authenticator onboarding: a link for the customer's administrator.
    ///
    /// The administrator (Global Administrator or Cloud Application Administrator) grants
    /// consent; Vouch then checks the Entra ID P1 licence and sets up the MFA connector.
    #[oai(
        path = "/authenticator/consent",
        method = "post",
        operation_id = "integrations_start_authenticator_consent"
    )]
    async fn start_consent(
        &self,
        auth: AdminApiKey,
        ctx: Data<&Arc<AppContext>>,
    ) -> Result<Json<ConsentLink>, ApiError> {
        let url = ctx
            .integrations
            .start_authenticator_consent(auth.msp_id())
            .await?;
        Ok(Json(ConsentLink {
            url: url.to_string(),
        }))
    }

    /// Check an integration again now and record the outcome.
    #[oai(
        path = "/:id/recheck",
        method = "post",
        operation_id = "integrations_recheck"
    )]
    async fn recheck(
        &self,
        auth: AdminApiKey,
        ctx: Data<&Arc<AppContext>>,
        id: Path<Uuid>,
    ) -> Result<Json<Integration>, ApiError> {
        let view = ctx
            .integrations
            .recheck(auth.msp_id(), &auth.actor(), id.0)
            .await?;
        Ok(Json(view.into()))
    }

    /// Remove an integration and the secret Vouch holds for it.
    #[oai(path = "/:id", method = "delete", operation_id = "integrations_remove")]
    async fn remove(
        &self,
        auth: AdminApiKey,
        ctx: Data<&Arc<AppContext>>,
        id: Path<Uuid>,
    ) -> Result<Removed, ApiError> {
        ctx.integrations
            .remove(auth.msp_id(), &auth.actor(), id.0)
            .await?;
        Ok(Removed::Removed)
    }
}
