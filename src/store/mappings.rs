//! PSA company mappings: which customer tenant the users of a PSA company live in. A company
//! (one PSA connection, one company id) maps to at most one tenant: the database holds that
//! with a unique index, so two admins mapping the same company at once cannot both win.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
};
use uuid::Uuid;

use super::audit::{NewAuditEvent, append_on};
use super::entities::company_tenant_mapping;
use super::tenants::Tenant;
use super::{Store, StoreError, conflict_or};

/// A mapping to create (the id and time are Vouch's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompanyMapping {
    pub msp_id: Uuid,
    pub psa_connection_id: Uuid,
    pub psa_company_id: String,
    pub psa_company_name: String,
    pub tenant_id: Uuid,
}

/// A stored mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMapping {
    pub id: Uuid,
    pub msp_id: Uuid,
    pub psa_connection_id: Uuid,
    pub psa_company_id: String,
    pub psa_company_name: String,
    pub tenant_id: Uuid,
    pub created_at: DateTime<Utc>,
}

fn mapping_from_model(m: company_tenant_mapping::Model) -> StoredMapping {
    StoredMapping {
        id: m.id,
        msp_id: m.msp_id,
        psa_connection_id: m.psa_connection_id,
        psa_company_id: m.psa_company_id,
        psa_company_name: m.psa_company_name,
        tenant_id: m.tenant_id,
        created_at: m.created_at,
    }
}

impl Store {
    /// Maps a company, replacing the tenant of an existing mapping (the demo's seeding).
    pub async fn map_company(&self, mapping: CompanyMapping) -> Result<(), StoreError> {
        let model = company_tenant_mapping::ActiveModel {
            id: Set(Uuid::now_v7()),
            msp_id: Set(mapping.msp_id),
            psa_connection_id: Set(mapping.psa_connection_id),
            psa_company_id: Set(mapping.psa_company_id),
            psa_company_name: Set(mapping.psa_company_name),
            tenant_id: Set(mapping.tenant_id),
            created_at: Set(Utc::now()),
        };
        company_tenant_mapping::Entity::insert(model)
            .on_conflict(
                OnConflict::columns([
                    company_tenant_mapping::Column::PsaConnectionId,
                    company_tenant_mapping::Column::PsaCompanyId,
                ])
                .update_columns([
                    company_tenant_mapping::Column::TenantId,
                    company_tenant_mapping::Column::PsaCompanyName,
                ])
                .to_owned(),
            )
            .exec(self.connection())
            .await?;
        Ok(())
    }

    /// Creates a mapping and its audit entry in one transaction. A company already mapped
    /// (to any tenant) is a [`StoreError::Conflict`]: the caller reads who holds it.
    pub async fn create_mapping(
        &self,
        mapping: CompanyMapping,
        audit: impl FnOnce(&StoredMapping) -> NewAuditEvent,
    ) -> Result<StoredMapping, StoreError> {
        let model = company_tenant_mapping::ActiveModel {
            id: Set(Uuid::now_v7()),
            msp_id: Set(mapping.msp_id),
            psa_connection_id: Set(mapping.psa_connection_id),
            psa_company_id: Set(mapping.psa_company_id),
            psa_company_name: Set(mapping.psa_company_name),
            tenant_id: Set(mapping.tenant_id),
            created_at: Set(Utc::now()),
        };
        let txn = self.connection().begin().await?;
        let stored = company_tenant_mapping::Entity::insert(model)
            .exec_with_returning(&txn)
            .await
            .map_err(|err| conflict_or(err, "a mapping of this company"))?;
        let stored = mapping_from_model(stored);
        append_on(&txn, audit(&stored)).await?;
        txn.commit().await?;
        Ok(stored)
    }

    /// Renames the company of a mapping (the PSA's name changed), with its audit entry.
    pub async fn rename_mapped_company(
        &self,
        id: Uuid,
        psa_company_name: String,
        audit: NewAuditEvent,
    ) -> Result<StoredMapping, StoreError> {
        let txn = self.connection().begin().await?;
        let model = company_tenant_mapping::ActiveModel {
            id: sea_orm::ActiveValue::Unchanged(id),
            psa_company_name: Set(psa_company_name),
            ..Default::default()
        };
        let stored = company_tenant_mapping::Entity::update(model)
            .exec(&txn)
            .await?;
        append_on(&txn, audit).await?;
        txn.commit().await?;
        Ok(mapping_from_model(stored))
    }

    /// Removes a mapping and appends its audit entry, in one transaction. `false` when no
    /// such mapping was there (nothing is audited then).
    pub async fn delete_mapping(&self, id: Uuid, audit: NewAuditEvent) -> Result<bool, StoreError> {
        let txn = self.connection().begin().await?;
        let deleted = company_tenant_mapping::Entity::delete_by_id(id)
            .exec(&txn)
            .await?;
        if deleted.rows_affected != 1 {
            return Ok(false);
        }
        append_on(&txn, audit).await?;
        txn.commit().await?;
        Ok(true)
    }

    pub async fn get_mapping(&self, id: Uuid) -> Result<Option<StoredMapping>, StoreError> {
        Ok(company_tenant_mapping::Entity::find_by_id(id)
            .one(self.connection())
            .await?
            .map(mapping_from_model))
    }

    /// The mapping of one PSA company, if it is mapped.
    pub async fn find_mapping(
        &self,
        psa_connection_id: Uuid,
        psa_company_id: &str,
    ) -> Result<Option<StoredMapping>, StoreError> {
        Ok(company_tenant_mapping::Entity::find()
            .filter(company_tenant_mapping::Column::PsaConnectionId.eq(psa_connection_id))
            .filter(company_tenant_mapping::Column::PsaCompanyId.eq(psa_company_id))
            .one(self.connection())
            .await?
            .map(mapping_from_model))
    }

    /// The MSP's mappings, of one connection or of all, by company name.
    pub async fn list_mappings(
        &self,
        msp_id: Uuid,
        psa_connection_id: Option<Uuid>,
    ) -> Result<Vec<StoredMapping>, StoreError> {
        let mut select = company_tenant_mapping::Entity::find()
            .filter(company_tenant_mapping::Column::MspId.eq(msp_id));
        if let Some(connection) = psa_connection_id {
            select = select.filter(company_tenant_mapping::Column::PsaConnectionId.eq(connection));
        }
        Ok(select
            .order_by_asc(company_tenant_mapping::Column::PsaCompanyName)
            .order_by_asc(company_tenant_mapping::Column::Id)
            .all(self.connection())
            .await?
            .into_iter()
            .map(mapping_from_model)
            .collect())
    }

    /// The tenant a ticket's company lives in. Read from the database on every call (no
    /// cache), so a mapping made or removed through the API is seen by every pod at once.
    pub async fn tenant_for_company(
        &self,
        psa_connection_id: Uuid,
        psa_company_id: &str,
    ) -> Result<Option<Tenant>, StoreError> {
        let Some(mapping) = self.find_mapping(psa_connection_id, psa_company_id).await? else {
            return Ok(None);
        };
        self.get_tenant(mapping.tenant_id).await
    }
}
