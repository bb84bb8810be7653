//! Customer tenants and their Microsoft integrations (sealed secrets).
//!
//! A tenant the MSP removes keeps its row, marked `removed_at` (migration
//! `m20261203_000011`): its verifications and resets reference it, and they are history.
//! Its integrations, their secrets and its company mappings are deleted with it. A removed
//! tenant is never returned by the reads below; connecting the same Microsoft tenant again
//! brings the row back.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    TransactionTrait,
};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::audit::{NewAuditEvent, append_on};
use super::crypto::SealedPlace;
use super::entities::{company_tenant_mapping, password_reset, tenant, tenant_integration};
use super::{Store, StoreError, conflict_or};
use crate::domain::{IntegrationKind, IntegrationStatus, ResetStatus};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTenant {
    pub msp_id: Uuid,
    pub microsoft_tenant_id: String,
    pub display_name: String,
    pub verified_domains: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: Uuid,
    pub msp_id: Uuid,
    pub microsoft_tenant_id: String,
    pub display_name: String,
    pub verified_domains: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct IntegrationUpdate {
    pub tenant_id: Uuid,
    pub kind: IntegrationKind,
    pub status: IntegrationStatus,
    pub client_id: String,
    pub secret: Option<SecretString>,
    pub secret_expires_at: Option<DateTime<Utc>>,
    pub last_checked_at: Option<DateTime<Utc>>,
    pub last_check_code: Option<String>,
    pub last_check_message: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TenantIntegration {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub kind: IntegrationKind,
    pub status: IntegrationStatus,
    pub client_id: String,
    pub secret: Option<SecretString>,
    pub secret_expires_at: Option<DateTime<Utc>>,
    pub last_checked_at: Option<DateTime<Utc>>,
    pub last_check_code: Option<String>,
    pub last_check_message: Option<String>,
}

/// Kept here for the callers that name it so; mappings live in `store::mappings`.
pub use super::mappings::CompanyMapping;

impl Store {
    fn integration_from_model(
        &self,
        m: tenant_integration::Model,
    ) -> Result<TenantIntegration, StoreError> {
        let place = SealedPlace::new("tenant_integrations", "secret_sealed", m.id);
        let secret = m
            .secret_sealed
            .as_deref()
            .map(|sealed| self.keyring().open(&place, sealed))
            .transpose()?;
        Ok(TenantIntegration {
            kind: m.kind,
            id: m.id,
            tenant_id: m.tenant_id,
            status: m.status,
            client_id: m.client_id,
            secret,
            secret_expires_at: m.secret_expires_at,
            last_checked_at: m.last_checked_at,
            last_check_code: m.last_check_code,
            last_check_message: m.last_check_message,
        })
    }
}

fn tenant_from_model(m: tenant::Model) -> Tenant {
    Tenant {
        id: m.id,
        msp_id: m.msp_id,
        microsoft_tenant_id: m.microsoft_tenant_id,
        display_name: m.display_name,
        verified_domains: serde_json::from_value(m.verified_domains).unwrap_or_default(),
    }
}

impl Store {
    pub async fn create_tenant(&self, new: NewTenant) -> Result<Tenant, StoreError> {
        let now = Utc::now();
        // A tenant removed before comes back, with its history.
        if let Some(removed) = tenant::Entity::find()
            .filter(tenant::Column::MspId.eq(new.msp_id))
            .filter(
                tenant::Column::MicrosoftTenantId.eq(new.microsoft_tenant_id.to_ascii_lowercase()),
            )
            .filter(tenant::Column::RemovedAt.is_not_null())
            .one(self.connection())
            .await?
        {
            let model = tenant::ActiveModel {
                id: sea_orm::ActiveValue::Unchanged(removed.id),
                display_name: Set(new.display_name),
                verified_domains: Set(serde_json::json!(new.verified_domains)),
                updated_at: Set(now),
                removed_at: Set(None),
                ..Default::default()
            };
            let model = tenant::Entity::update(model)
                .exec(self.connection())
                .await?;
            return Ok(tenant_from_model(model));
        }
        let model = tenant::ActiveModel {
            id: Set(Uuid::now_v7()),
            msp_id: Set(new.msp_id),
            microsoft_tenant_id: Set(new.microsoft_tenant_id.to_ascii_lowercase()),
            display_name: Set(new.display_name),
            verified_domains: Set(serde_json::json!(new.verified_domains)),
            created_at: Set(now),
            updated_at: Set(now),
            removed_at: Set(None),
        };
        let model = tenant::Entity::insert(model)
            .exec_with_returning(self.connection())
            .await
            .map_err(|err| {
                conflict_or(err, "a tenant with this Microsoft tenant id for this MSP")
            })?;
        Ok(tenant_from_model(model))
    }

    /// Replaces a tenant's name and verified domains with what Microsoft says now.
    pub async fn update_tenant_details(
        &self,
        id: Uuid,
        display_name: String,
        verified_domains: Vec<String>,
    ) -> Result<Tenant, StoreError> {
        let model = tenant::ActiveModel {
            id: sea_orm::ActiveValue::Unchanged(id),
            display_name: Set(display_name),
            verified_domains: Set(serde_json::json!(verified_domains)),
            updated_at: Set(Utc::now()),
            ..Default::default()
        };
        let model = tenant::Entity::update(model)
            .exec(self.connection())
            .await?;
        Ok(tenant_from_model(model))
    }

    pub async fn get_tenant(&self, id: Uuid) -> Result<Option<Tenant>, StoreError> {
        Ok(tenant::Entity::find_by_id(id)
            .filter(tenant::Column::RemovedAt.is_null())
            .one(self.connection())
            .await?
            .map(tenant_from_model))
    }

    pub async fn list_tenants(&self, msp_id: Uuid) -> Result<Vec<Tenant>, StoreError> {
        Ok(tenant::Entity::find()
            .filter(tenant::Column::MspId.eq(msp_id))
            .filter(tenant::Column::RemovedAt.is_null())
            .order_by_asc(tenant::Column::DisplayName)
            .all(self.connection())
            .await?
            .into_iter()
            .map(tenant_from_model)
            .collect())
    }

    /// Creates or replaces the tenant's integration of that kind.
    pub async fn save_integration(
        &self,
        update: IntegrationUpdate,
    ) -> Result<TenantIntegration, StoreError> {
        let now = Utc::now();
        let existing = tenant_integration::Entity::find()
            .filter(tenant_integration::Column::TenantId.eq(update.tenant_id))
            .filter(tenant_integration::Column::Kind.eq(update.kind))
            .one(self.connection())
            .await?;
        let id = existing.as_ref().map(|m| m.id).unwrap_or_else(Uuid::now_v7);
        let place = SealedPlace::new("tenant_integrations", "secret_sealed", id);
        let sealed = update
            .secret
            .as_ref()
            .map(|secret| self.keyring().seal(&place, secret.expose_secret()));
        let model = tenant_integration::ActiveModel {
            id: Set(id),
            tenant_id: Set(update.tenant_id),
            kind: Set(update.kind),
            status: Set(update.status),
            client_id: Set(update.client_id),
            secret_sealed: Set(sealed),
            secret_expires_at: Set(update.secret_expires_at),
            last_checked_at: Set(update.last_checked_at),
            last_check_code: Set(update.last_check_code),
            last_check_message: Set(update.last_check_message),
            created_at: Set(existing.as_ref().map(|m| m.created_at).unwrap_or(now)),
            updated_at: Set(now),
        };
        let saved = match existing {
            Some(_) => {
                tenant_integration::Entity::update(model)
                    .exec(self.connection())
                    .await?
            }
            None => tenant_integration::Entity::insert(model)
                .exec_with_returning(self.connection())
                .await
                .map_err(|err| conflict_or(err, "an integration of this kind for this tenant"))?,
        };
        self.integration_from_model(saved)
    }

    pub async fn get_integration(
        &self,
        tenant_id: Uuid,
        kind: IntegrationKind,
    ) -> Result<Option<TenantIntegration>, StoreError> {
        tenant_integration::Entity::find()
            .filter(tenant_integration::Column::TenantId.eq(tenant_id))
            .filter(tenant_integration::Column::Kind.eq(kind))
            .one(self.connection())
            .await?
            .map(|m| self.integration_from_model(m))
            .transpose()
    }

    pub async fn find_tenant_by_microsoft_id(
        &self,
        msp_id: Uuid,
        microsoft_tenant_id: &str,
    ) -> Result<Option<Tenant>, StoreError> {
        Ok(tenant::Entity::find()
            .filter(tenant::Column::MspId.eq(msp_id))
            .filter(tenant::Column::MicrosoftTenantId.eq(microsoft_tenant_id.to_ascii_lowercase()))
            .filter(tenant::Column::RemovedAt.is_null())
            .one(self.connection())
            .await?
            .map(tenant_from_model))
    }

    /// Every integration of the MSP's tenants, with its tenant.
    pub async fn list_integrations(
        &self,
        msp_id: Uuid,
    ) -> Result<Vec<(Tenant, TenantIntegration)>, StoreError> {
        let mut result = Vec::new();
        for tenant in self.list_tenants(msp_id).await? {
            let integrations = tenant_integration::Entity::find()
                .filter(tenant_integration::Column::TenantId.eq(tenant.id))
                .order_by_asc(tenant_integration::Column::Kind)
                .all(self.connection())
                .await?;
            for model in integrations {
                result.push((tenant.clone(), self.integration_from_model(model)?));
            }
        }
        Ok(result)
    }

    pub async fn get_integration_by_id(
        &self,
        id: Uuid,
    ) -> Result<Option<(Tenant, TenantIntegration)>, StoreError> {
        let Some(model) = tenant_integration::Entity::find_by_id(id)
            .one(self.connection())
            .await?
        else {
            return Ok(None);
        };
        let tenant = self
            .get_tenant(model.tenant_id)
            .await?
            .ok_or(StoreError::NotFound("tenant"))?;
        Ok(Some((tenant, self.integration_from_model(model)?)))
    }

    pub async fn delete_integration(&self, id: Uuid) -> Result<bool, StoreError> {
        let result = tenant_integration::Entity::delete_by_id(id)
            .exec(self.connection())
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Active integrations of `kind` whose secret ends before `before` (for renewal).
    pub async fn integrations_expiring_before(
        &self,
        kind: IntegrationKind,
        before: DateTime<Utc>,
    ) -> Result<Vec<(Tenant, TenantIntegration)>, StoreError> {
        let models = tenant_integration::Entity::find()
            .filter(tenant_integration::Column::Kind.eq(kind))
            .filter(tenant_integration::Column::SecretExpiresAt.lt(before))
            .all(self.connection())
            .await?;
        let mut result = Vec::new();
        for model in models {
            if let Some(tenant) = self.get_tenant(model.tenant_id).await? {
                result.push((tenant, self.integration_from_model(model)?));
            }
        }
        Ok(result)
    }

    /// The integrations of one tenant, by kind.
    pub async fn integrations_of(
        &self,
        tenant_id: Uuid,
    ) -> Result<Vec<TenantIntegration>, StoreError> {
        tenant_integration::Entity::find()
            .filter(tenant_integration::Column::TenantId.eq(tenant_id))
            .order_by_asc(tenant_integration::Column::Kind)
            .all(self.connection())
            .await?
            .into_iter()
            .map(|m| self.integration_from_model(m))
            .collect()
    }

    /// Sets the tenant's display name, with its audit entry, in one transaction.
    pub async fn rename_tenant(
        &self,
        id: Uuid,
        display_name: String,
        audit: NewAuditEvent,
    ) -> Result<Tenant, StoreError> {
        let txn = self.connection().begin().await?;
        let model = tenant::ActiveModel {
            id: sea_orm::ActiveValue::Unchanged(id),
            display_name: Set(display_name),
            updated_at: Set(Utc::now()),
            ..Default::default()
        };
        let model = tenant::Entity::update(model).exec(&txn).await?;
        append_on(&txn, audit).await?;
        txn.commit().await?;
        Ok(tenant_from_model(model))
    }

    /// Removes a tenant: deletes its integrations (and so their sealed secrets) and its
    /// company mappings, marks the row removed and appends `audit`, in one transaction.
    /// Refused while one of its password resets is in progress: the reset (or the sweeper
    /// finishing it) still needs the tenant's credentials.
    pub async fn remove_tenant(
        &self,
        id: Uuid,
        audit: NewAuditEvent,
    ) -> Result<TenantRemoval, StoreError> {
        let txn = self.connection().begin().await?;
        let unfinished_resets = password_reset::Entity::find()
            .filter(password_reset::Column::TenantId.eq(id))
            .filter(password_reset::Column::Status.eq(ResetStatus::InProgress))
            .count(&txn)
            .await?;
        if unfinished_resets > 0 {
            return Ok(TenantRemoval::ResetsInProgress(unfinished_resets));
        }
        let now = Utc::now();
        let marked = tenant::Entity::update_many()
            .col_expr(tenant::Column::RemovedAt, Expr::value(now))
            .col_expr(tenant::Column::UpdatedAt, Expr::value(now))
            .filter(tenant::Column::Id.eq(id))
            .filter(tenant::Column::RemovedAt.is_null())
            .exec(&txn)
            .await?;
        if marked.rows_affected != 1 {
            return Ok(TenantRemoval::NotFound);
        }
        tenant_integration::Entity::delete_many()
            .filter(tenant_integration::Column::TenantId.eq(id))
            .exec(&txn)
            .await?;
        company_tenant_mapping::Entity::delete_many()
            .filter(company_tenant_mapping::Column::TenantId.eq(id))
            .exec(&txn)
            .await?;
        append_on(&txn, audit).await?;
        txn.commit().await?;
        Ok(TenantRemoval::Removed)
    }
}

/// What [`Store::remove_tenant`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantRemoval {
    Removed,
    /// No such tenant (or it was removed already).
    NotFound,
    /// Nothing was changed: this many of its password resets are in progress.
    ResetsInProgress(u64),
}
