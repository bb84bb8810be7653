//! Setting Vouch up for real: company mappings, tenants and API keys, as an MSP admin
//! manages them (the JSON API now, the CLI later, over these same methods). Every change is
//! audited with the actor and the values before and after; no secret is ever in a view or
//! an audit entry (API keys are listed by prefix, integrations by kind and expiry).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::core::error::CoreError;
use crate::core::integrations::ExpiryState;
use crate::domain::{ApiKeyScope, AuditOutcome, IntegrationKind, IntegrationStatus, MspPolicy};
use crate::microsoft::graph::MFA_CLIENT_APP_ID;
use crate::store::access::ApiKey;
use crate::store::audit::{AuditActor, NewAuditEvent};
use crate::store::mappings::{CompanyMapping, StoredMapping};
use crate::store::msp::{MspAccount, NewMspAccount};
use crate::store::tenants::{Tenant, TenantIntegration, TenantRemoval};
use crate::store::{Store, StoreError};
use secrecy::SecretString;

/// The longest tenant display name Vouch keeps.
pub const MAX_TENANT_NAME_CHARS: usize = 200;
/// The longest PSA company id and name Vouch keeps.
pub const MAX_COMPANY_ID_CHARS: usize = 256;
pub const MAX_COMPANY_NAME_CHARS: usize = 200;

/// A company mapping as the admin sees it, with its tenant's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingView {
    pub id: Uuid,
    pub psa_connection_id: Uuid,
    pub psa_company_id: String,
    pub psa_company_name: String,
    pub tenant_id: Uuid,
    pub tenant_name: String,
    pub created_at: DateTime<Utc>,
}

/// What the admin asks to map.
#[derive(Debug, Clone)]
pub struct MappingInput {
    pub psa_connection_id: Uuid,
    pub psa_company_id: String,
    pub psa_company_name: String,
    pub tenant_id: Uuid,
}

/// Whether a PUT created the mapping or found it already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MappingOutcome {
    Created,
    Kept,
}

/// One integration of a tenant, without its secret.
#[derive(Debug, Clone)]
pub struct IntegrationSummary {
    pub id: Uuid,
    pub kind: IntegrationKind,
    pub status: IntegrationStatus,
    pub secret_expires_at: Option<DateTime<Utc>>,
    pub expiry: ExpiryState,
    pub last_checked_at: Option<DateTime<Utc>>,
    pub last_check_code: Option<String>,
}

/// A tenant's health, from its integrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantHealth {
    /// Every integration worked at its last check and no secret ends within 30 days.
    Ok,
    /// An integration failed its last check, or a secret expires within 30 days.
    Attention,
    /// An integration cannot work: its secret has expired.
    Broken,
    /// No integration: Vouch cannot reach the tenant.
    NotConnected,
}

/// A tenant as the admin sees it.
#[derive(Debug, Clone)]
pub struct TenantView {
    pub tenant: Tenant,
    pub integrations: Vec<IntegrationSummary>,
    pub mappings: Vec<MappingView>,
    pub health: TenantHealth,
    /// What the health means and what to do, for a person.
    pub health_message: String,
}

/// What removing a tenant did, and what the admin still does on Microsoft's side.
#[derive(Debug, Clone)]
pub struct TenantRemoved {
    pub tenant: Tenant,
    pub integrations_removed: Vec<IntegrationKind>,
    pub mappings_removed: usize,
    /// Sentences, one step each, for the customer's Entra admin center.
    pub microsoft_cleanup: Vec<String>,
}

/// Mappings, tenants and API keys.
#[derive(Clone)]
pub struct SetupService {
    store: Store,
}

fn not_found(message: &str) -> CoreError {
    CoreError::NotFoundHere {
        message: message.to_owned(),
    }
}

const CONNECTION_NOT_FOUND: &str = "No PSA connection with this id belongs to your MSP account. List your connections with GET /api/v1/psa-connections.";
const MAPPING_NOT_FOUND: &str = "No company mapping with this id belongs to your MSP account. List your mappings with GET /api/v1/company-mappings.";
const API_KEY_NOT_FOUND: &str = "No API key with this id belongs to your MSP account. List your keys with GET /api/v1/api-keys.";

/// `value` trimmed, refused when empty, longer than `max` characters or holding NUL.
fn clean_text(field: &'static str, value: &str, max: usize) -> Result<String, CoreError> {
    let trimmed = value.trim();
    if trimmed.contains('\0') {
        return Err(CoreError::InvalidInput {
            field,
            problem: "must not contain a NUL character".into(),
        });
    }
    if trimmed.is_empty() {
        return Err(CoreError::InvalidInput {
            field,
            problem: "must not be empty".into(),
        });
    }
    if trimmed.chars().count() > max {
        return Err(CoreError::InvalidInput {
            field,
            problem: format!("must be at most {max} characters long"),
        });
    }
    Ok(trimmed.to_owned())
}

fn audit(
    msp_id: Uuid,
    actor: &AuditActor,
    action: &str,
    subject: (&str, String, Option<String>),
    outcome: AuditOutcome,
    details: serde_json::Value,
) -> NewAuditEvent {
    NewAuditEvent {
        msp_id,
        actor: actor.clone(),
        action: action.to_owned(),
        subject_kind: Some(subject.0.to_owned()),
        subject_id: Some(subject.1),
        subject_name: subject.2,
        psa_ticket_id: None,
        outcome,
        upstream_request_id: None,
        details,
    }
}

fn mapping_json(m: &StoredMapping, tenant_name: &str) -> serde_json::Value {
    serde_json::json!({
        "id": m.id,
        "psa_connection_id": m.psa_connection_id,
        "psa_company_id": m.psa_company_id,
        "psa_company_name": m.psa_company_name,
        "tenant_id": m.tenant_id,
        "tenant_name": tenant_name,
    })
}

impl SetupService {
    pub fn new(store: Store) -> SetupService {
        SetupService { store }
    }

    async fn own_tenant(&self, msp_id: Uuid, id: Uuid) -> Result<Tenant, CoreError> {
        match self.store.get_tenant(id).await? {
            Some(tenant) if tenant.msp_id == msp_id => Ok(tenant),
            _ => Err(CoreError::TenantNotFound),
        }
    }

    async fn own_connection(&self, msp_id: Uuid, id: Uuid) -> Result<(), CoreError> {
        match self.store.get_connection(id).await? {
            Some(connection) if connection.msp_id == msp_id => Ok(()),
            _ => Err(not_found(CONNECTION_NOT_FOUND)),
        }
    }

    async fn tenant_name(&self, id: Uuid) -> Result<String, CoreError> {
        Ok(self
            .store
            .get_tenant(id)
            .await?
            .map(|t| t.display_name)
            .unwrap_or_else(|| "a removed tenant".to_owned()))
    }

    async fn view_of(&self, m: StoredMapping) -> Result<MappingView, CoreError> {
        let tenant_name = self.tenant_name(m.tenant_id).await?;
        Ok(MappingView {
            id: m.id,
            psa_connection_id: m.psa_connection_id,
            psa_company_id: m.psa_company_id,
            psa_company_name: m.psa_company_name,
            tenant_id: m.tenant_id,
            tenant_name,
            created_at: m.created_at,
        })
    }

    /// The MSP's company mappings, of one PSA connection or of all.
    pub async fn list_mappings(
        &self,
        msp_id: Uuid,
        psa_connection_id: Option<Uuid>,
    ) -> Result<Vec<MappingView>, CoreError> {
        if let Some(connection) = psa_connection_id {
            self.own_connection(msp_id, connection).await?;
        }
        let tenants: std::collections::HashMap<Uuid, String> = self
            .store
            .list_tenants(msp_id)
            .await?
            .into_iter()
            .map(|t| (t.id, t.display_name))
            .collect();
        Ok(self
            .store
            .list_mappings(msp_id, psa_connection_id)
            .await?
            .into_iter()
            .map(|m| MappingView {
                tenant_name: tenants
                    .get(&m.tenant_id)
                    .cloned()
                    .unwrap_or_else(|| "a removed tenant".to_owned()),
                id: m.id,
                psa_connection_id: m.psa_connection_id,
                psa_company_id: m.psa_company_id,
                psa_company_name: m.psa_company_name,
                tenant_id: m.tenant_id,
                created_at: m.created_at,
            })
            .collect())
    }

    /// Maps a PSA company to a tenant, or keeps the mapping that is already there (its
    /// company name refreshed). A company mapped to another tenant is refused, naming it:
    /// unmap it first. Seen by every pod at once (the pod reads mappings uncached).
    pub async fn put_mapping(
        &self,
        msp_id: Uuid,
        actor: &AuditActor,
        input: MappingInput,
    ) -> Result<(MappingView, MappingOutcome), CoreError> {
        let company_id = clean_text(
            "psa_company_id",
            &input.psa_company_id,
            MAX_COMPANY_ID_CHARS,
        )?;
        let company_name = clean_text(
            "psa_company_name",
            &input.psa_company_name,
            MAX_COMPANY_NAME_CHARS,
        )?;
        self.own_connection(msp_id, input.psa_connection_id).await?;
        let tenant = self.own_tenant(msp_id, input.tenant_id).await?;
        // Twice at most: a mapping made by someone else between the read and the insert is
        // read again and answered as if it had been there first.
        for _ in 0..2 {
            if let Some(existing) = self
                .store
                .find_mapping(input.psa_connection_id, &company_id)
                .await?
            {
                if existing.tenant_id != tenant.id {
                    let current = self.tenant_name(existing.tenant_id).await?;
                    let refused = audit(
                        msp_id,
                        actor,
                        "company_mapping.create",
                        (
                            "company_mapping",
                            existing.id.to_string(),
                            Some(existing.psa_company_name.clone()),
                        ),
                        AuditOutcome::Refused,
                        serde_json::json!({
                            "code": "company_already_mapped",
                            "current": mapping_json(&existing, &current),
                            "asked_tenant_id": tenant.id,
                        }),
                    );
                    if let Err(err) = self.store.append(refused).await {
                        tracing::error!(error = %err, "audit append failed");
                    }
                    return Err(CoreError::CompanyAlreadyMapped {
                        company: existing.psa_company_name,
                        tenant: current,
                    });
                }
                if existing.psa_company_name == company_name {
                    return Ok((self.view_of(existing).await?, MappingOutcome::Kept));
                }
                let before = mapping_json(&existing, &tenant.display_name);
                let mut after_mapping = existing.clone();
                after_mapping.psa_company_name = company_name.clone();
                let after = mapping_json(&after_mapping, &tenant.display_name);
                let renamed = self
                    .store
                    .rename_mapped_company(
                        existing.id,
                        company_name.clone(),
                        audit(
                            msp_id,
                            actor,
                            "company_mapping.update",
                            (
                                "company_mapping",
                                existing.id.to_string(),
                                Some(company_name.clone()),
                            ),
                            AuditOutcome::Success,
                            serde_json::json!({ "before": before, "after": after }),
                        ),
                    )
                    .await?;
                return Ok((self.view_of(renamed).await?, MappingOutcome::Kept));
            }
            let created = self
                .store
                .create_mapping(
                    CompanyMapping {
                        msp_id,
                        psa_connection_id: input.psa_connection_id,
                        psa_company_id: company_id.clone(),
                        psa_company_name: company_name.clone(),
                        tenant_id: tenant.id,
                    },
                    |stored| {
                        audit(
                            msp_id,
                            actor,
                            "company_mapping.create",
                            (
                                "company_mapping",
                                stored.id.to_string(),
                                Some(stored.psa_company_name.clone()),
                            ),
                            AuditOutcome::Success,
                            serde_json::json!({
                                "before": null,
                                "after": mapping_json(stored, &tenant.display_name),
                            }),
                        )
                    },
                )
                .await;
            match created {
                Ok(stored) => return Ok((self.view_of(stored).await?, MappingOutcome::Created)),
                Err(StoreError::Conflict(_)) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(CoreError::Store(
            "a company mapping kept changing while it was being made".into(),
        ))
    }

    /// Removes a mapping: tickets of that company then answer `company_not_mapped`.
    pub async fn delete_mapping(
        &self,
        msp_id: Uuid,
        actor: &AuditActor,
        id: Uuid,
    ) -> Result<MappingView, CoreError> {
        let existing = match self.store.get_mapping(id).await? {
            Some(m) if m.msp_id == msp_id => m,
            _ => return Err(not_found(MAPPING_NOT_FOUND)),
        };
        let view = self.view_of(existing.clone()).await?;
        let removed = self
            .store
            .delete_mapping(
                id,
                audit(
                    msp_id,
                    actor,
                    "company_mapping.delete",
                    (
                        "company_mapping",
                        id.to_string(),
                        Some(existing.psa_company_name.clone()),
                    ),
                    AuditOutcome::Success,
                    serde_json::json!({
                        "before": mapping_json(&existing, &view.tenant_name),
                        "after": null,
                    }),
                ),
            )
            .await?;
        if !removed {
            return Err(not_found(MAPPING_NOT_FOUND));
        }
        Ok(view)
    }

    /// One tenant of the MSP.
    pub async fn tenant(&self, msp_id: Uuid, id: Uuid) -> Result<Tenant, CoreError> {
        self.own_tenant(msp_id, id).await
    }

    /// Every tenant of the MSP with its integrations, mappings and health.
    pub async fn list_tenants(&self, msp_id: Uuid) -> Result<Vec<TenantView>, CoreError> {
        let now = Utc::now();
        let mappings = self.list_mappings(msp_id, None).await?;
        let mut views = Vec::new();
        for tenant in self.store.list_tenants(msp_id).await? {
            let integrations: Vec<IntegrationSummary> = self
                .store
                .integrations_of(tenant.id)
                .await?
                .iter()
                .map(|i| summary(i, now))
                .collect();
            let (health, health_message) = health_of(&integrations);
            views.push(TenantView {
                mappings: mappings
                    .iter()
                    .filter(|m| m.tenant_id == tenant.id)
                    .cloned()
                    .collect(),
                tenant,
                integrations,
                health,
                health_message,
            });
        }
        Ok(views)
    }

    /// Sets a tenant's display name (trimmed, 1 to 200 characters, no NUL). Pods, notes and
    /// lists show the new name at once. A later re-connection of the tenant may replace it
    /// with the name Microsoft holds.
    pub async fn rename_tenant(
        &self,
        msp_id: Uuid,
        actor: &AuditActor,
        id: Uuid,
        display_name: &str,
    ) -> Result<Tenant, CoreError> {
        let name = clean_text("display_name", display_name, MAX_TENANT_NAME_CHARS)?;
        let tenant = self.own_tenant(msp_id, id).await?;
        if tenant.display_name == name {
            return Ok(tenant);
        }
        Ok(self
            .store
            .rename_tenant(
                id,
                name.clone(),
                audit(
                    msp_id,
                    actor,
                    "tenant.rename",
                    (
                        "tenant",
                        tenant.microsoft_tenant_id.clone(),
                        Some(name.clone()),
                    ),
                    AuditOutcome::Success,
                    serde_json::json!({
                        "tenant_id": tenant.id,
                        "before": { "display_name": tenant.display_name },
                        "after": { "display_name": name },
                    }),
                ),
            )
            .await?)
    }

    /// Removes a tenant: its integrations and their secrets, its company mappings. The audit
    /// log and the history of its verifications and resets stay. Refused while one of its
    /// password resets is in progress.
    pub async fn remove_tenant(
        &self,
        msp_id: Uuid,
        actor: &AuditActor,
        id: Uuid,
    ) -> Result<TenantRemoved, CoreError> {
        let tenant = self.own_tenant(msp_id, id).await?;
        let integrations = self.store.integrations_of(id).await?;
        let mappings = self.store.list_mappings(msp_id, None).await?;
        let mappings: Vec<&StoredMapping> = mappings.iter().filter(|m| m.tenant_id == id).collect();
        let kinds: Vec<IntegrationKind> = integrations.iter().map(|i| i.kind).collect();
        let event = audit(
            msp_id,
            actor,
            "tenant.remove",
            (
                "tenant",
                tenant.microsoft_tenant_id.clone(),
                Some(tenant.display_name.clone()),
            ),
            AuditOutcome::Success,
            serde_json::json!({
                "tenant_id": tenant.id,
                "before": {
                    "display_name": tenant.display_name,
                    "integrations": integrations.iter().map(|i| serde_json::json!({
                        "kind": i.kind.as_str(),
                        "client_id": i.client_id,
                    })).collect::<Vec<_>>(),
                    "mappings": mappings.iter().map(|m| mapping_json(m, &tenant.display_name)).collect::<Vec<_>>(),
                },
                "after": null,
            }),
        );
        match self.store.remove_tenant(id, event).await? {
            TenantRemoval::Removed => Ok(TenantRemoved {
                microsoft_cleanup: cleanup_steps(&tenant, &integrations),
                integrations_removed: kinds,
                mappings_removed: mappings.len(),
                tenant,
            }),
            TenantRemoval::NotFound => Err(CoreError::TenantNotFound),
            TenantRemoval::ResetsInProgress(count) => Err(CoreError::TenantBusy {
                tenant: tenant.display_name,
                resets: count,
            }),
        }
    }

    /// Creates an MSP account with the default policy; audited (`msp.create`) in the same
    /// transaction. `vouch msp create` and `vouch demo` call it.
    pub async fn create_msp(
        &self,
        actor: &AuditActor,
        name: &str,
        color: Option<String>,
    ) -> Result<MspAccount, CoreError> {
        let name = clean_text("name", name, 200)?;
        Ok(self
            .store
            .create_msp_audited(
                NewMspAccount {
                    name,
                    brand_logo_url: None,
                    brand_color: color,
                    policy: MspPolicy::default(),
                },
                |msp| {
                    audit(
                        msp.id,
                        actor,
                        "msp.create",
                        ("msp", msp.id.to_string(), Some(msp.name.clone())),
                        AuditOutcome::Success,
                        serde_json::json!({ "name": msp.name }),
                    )
                },
            )
            .await?)
    }

    /// Every MSP account on this Vouch, by name.
    pub async fn list_msps(&self) -> Result<Vec<MspAccount>, CoreError> {
        Ok(self.store.list_msps().await?)
    }

    /// Creates an API key of `scope`; audited (`api_key.create`, never the key) in the same
    /// transaction. The key is returned once and never stored, only its hash.
    pub async fn create_api_key(
        &self,
        msp_id: Uuid,
        actor: &AuditActor,
        name: &str,
        scope: ApiKeyScope,
    ) -> Result<(ApiKey, SecretString), CoreError> {
        let name = clean_text("name", name, 200)?;
        Ok(self
            .store
            .create_api_key_audited(msp_id, &name, scope, |key| {
                audit(
                    msp_id,
                    actor,
                    "api_key.create",
                    ("api_key", key.key_prefix.clone(), Some(key.name.clone())),
                    AuditOutcome::Success,
                    serde_json::json!({ "api_key_id": key.id, "scope": key.scope }),
                )
            })
            .await?)
    }

    /// The MSP's API keys (never a secret or its hash), revoked ones included.
    pub async fn list_api_keys(&self, msp_id: Uuid) -> Result<Vec<ApiKey>, CoreError> {
        Ok(self.store.list_api_keys(msp_id).await?)
    }

    /// Revokes a key. Every instance checks keys against the database on every request (no
    /// cache), so the key is refused from the next request on, everywhere. Revoking the key
    /// making the call is allowed: the call succeeds, the next one with it gets 401.
    pub async fn revoke_api_key(
        &self,
        msp_id: Uuid,
        actor: &AuditActor,
        id: Uuid,
    ) -> Result<ApiKey, CoreError> {
        let key = self
            .store
            .list_api_keys(msp_id)
            .await?
            .into_iter()
            .find(|k| k.id == id)
            .ok_or_else(|| not_found(API_KEY_NOT_FOUND))?;
        if key.revoked_at.is_some() {
            return Ok(key);
        }
        let event = audit(
            msp_id,
            actor,
            "api_key.revoke",
            ("api_key", key.key_prefix.clone(), Some(key.name.clone())),
            AuditOutcome::Success,
            serde_json::json!({
                "api_key_id": key.id,
                "before": { "revoked_at": null },
                "after": { "revoked_at": "now" },
            }),
        );
        match self.store.revoke_api_key_audited(msp_id, id, event).await? {
            Some(revoked) => Ok(revoked),
            None => Err(not_found(API_KEY_NOT_FOUND)),
        }
    }
}

fn summary(i: &TenantIntegration, now: DateTime<Utc>) -> IntegrationSummary {
    IntegrationSummary {
        id: i.id,
        kind: i.kind,
        status: i.status,
        secret_expires_at: i.secret_expires_at,
        expiry: ExpiryState::of(i.secret_expires_at, now),
        last_checked_at: i.last_checked_at,
        last_check_code: i.last_check_code.clone(),
    }
}

fn health_of(integrations: &[IntegrationSummary]) -> (TenantHealth, String) {
    if integrations.is_empty() {
        return (
            TenantHealth::NotConnected,
            "No integration: Vouch cannot reach this tenant. Connect it under Integrations.".into(),
        );
    }
    if let Some(i) = integrations
        .iter()
        .find(|i| i.expiry == ExpiryState::Expired)
    {
        return (
            TenantHealth::Broken,
            format!(
                "The {} secret has expired: enter a new one under Integrations.",
                i.kind.as_str()
            ),
        );
    }
    if let Some(i) = integrations
        .iter()
        .find(|i| i.status == IntegrationStatus::Failed)
    {
        return (
            TenantHealth::Attention,
            format!(
                "The {} integration failed its last check ({}): re-check it under Integrations.",
                i.kind.as_str(),
                i.last_check_code.as_deref().unwrap_or("unknown")
            ),
        );
    }
    if let Some(i) = integrations
        .iter()
        .find(|i| i.expiry == ExpiryState::ExpiringSoon)
    {
        return (
            TenantHealth::Attention,
            format!(
                "The {} secret expires within 30 days: renew it before then.",
                i.kind.as_str()
            ),
        );
    }
    (
        TenantHealth::Ok,
        "Every integration worked at its last check.".into(),
    )
}

/// What the customer's administrator removes in Microsoft once Vouch let go of the tenant.
fn cleanup_steps(tenant: &Tenant, integrations: &[TenantIntegration]) -> Vec<String> {
    let at = format!(
        "In the Microsoft Entra admin center of {} (tenant {})",
        tenant.display_name, tenant.microsoft_tenant_id
    );
    let mut steps = Vec::new();
    for integration in integrations {
        match integration.kind {
            IntegrationKind::IdentityManagement => {
                steps.push(format!(
                    "{at}, open App registrations > the app with client id {}: under Certificates & secrets, delete the client secret you gave Vouch (or delete the app registration if nothing else uses it).",
                    integration.client_id
                ));
            }
            IntegrationKind::Authenticator => {
                steps.push(format!(
                    "{at}, open Enterprise applications > Azure Multi-Factor Auth Client (app id {MFA_CLIENT_APP_ID}) and remove the credential named \"Vouch MFA connector\" (Remove-MgServicePrincipalPassword in Microsoft Graph PowerShell)."
                ));
                steps.push(format!(
                    "{at}, open Enterprise applications > Vouch and delete it, which withdraws the admin consent granted to Vouch's app."
                ));
            }
        }
    }
    if steps.is_empty() {
        steps.push(format!(
            "{at}: Vouch held no credential for this tenant, so there is nothing to remove."
        ));
    }
    steps
}
