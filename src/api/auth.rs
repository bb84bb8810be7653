//! How API callers prove which MSP they act for: a per-MSP API key, sent as
//! `Authorization: Bearer vouch_...`. Keys are stored hashed and shown once when created.
//!
//! Keys have a scope. Set-up operations (integrations, PSA connections, tenants, mappings,
//! settings, API keys, reset holds) take [`AdminApiKey`]: an admin-scoped key. Everything
//! else takes [`MspApiKey`]: any key of the MSP. The OpenAPI document names the scheme of
//! every operation, so which operations need an admin key is published, not folklore.

use std::sync::Arc;

use poem::Request;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;

use super::error::{ErrorCode, error_response};
use crate::app::AppContext;
use crate::domain::ApiKeyScope;
use crate::store::access::ApiKey;
use crate::store::audit::AuditActor;

/// A per-MSP API key (`Authorization: Bearer vouch_...`), created with `vouch api-key create`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check_api_key")]
pub struct MspApiKey(pub ApiKey);

impl MspApiKey {
    pub fn msp_id(&self) -> uuid::Uuid {
        self.0.msp_id
    }

    /// How this caller appears in the audit log.
    pub fn actor(&self) -> AuditActor {
        AuditActor {
            kind: crate::domain::ActorKind::ApiKey,
            id: Some(self.0.key_prefix.clone()),
            name: Some(self.0.name.clone()),
        }
    }
}

/// An admin-scoped API key (`Authorization: Bearer vouch_...`): set-up operations need one.
/// A technician-scoped key is refused with `403 admin_scope_required`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check_admin_key")]
pub struct AdminApiKey(pub ApiKey);

impl AdminApiKey {
    pub fn msp_id(&self) -> uuid::Uuid {
        self.0.msp_id
    }

    /// How this caller appears in the audit log.
    pub fn actor(&self) -> AuditActor {
        MspApiKey(self.0.clone()).actor()
    }
}

async fn check_admin_key(req: &Request, bearer: Bearer) -> poem::Result<ApiKey> {
    let key = check_api_key(req, bearer).await?;
    if key.scope != ApiKeyScope::Admin {
        return Err(poem::Error::from_response(error_response(
            ErrorCode::AdminScopeRequired,
            "This API key has the technician scope, which verifies, resets and reads the audit; setting Vouch up needs an admin key. Create one with `vouch api-key create --scope admin`.",
        )));
    }
    Ok(key)
}

async fn check_api_key(req: &Request, bearer: Bearer) -> poem::Result<ApiKey> {
    let ctx = req
        .data::<Arc<AppContext>>()
        .expect("the application context is attached to every request");
    match ctx.store.authenticate_api_key(bearer.token.trim()).await {
        Ok(Some(key)) => Ok(key),
        Ok(None) => Err(poem::Error::from_response(error_response(
            ErrorCode::Unauthorized,
            "The API key is not valid or has been revoked. Create one with `vouch api-key create` and send it as `Authorization: Bearer <key>`.",
        ))),
        Err(err) => {
            tracing::error!(error = %err, "API key lookup failed");
            Err(poem::Error::from_response(error_response(
                ErrorCode::Unavailable,
                "Vouch cannot check API keys right now (database unavailable). Try again shortly.",
            )))
        }
    }
}
