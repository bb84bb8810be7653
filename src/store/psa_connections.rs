//! PSA connections (sealed credentials) and the technicians the PSAs vouch for.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::crypto::SealedPlace;
use super::entities::{psa_connection, technician};
use super::{Store, StoreError};
use crate::domain::PsaKind;

#[derive(Debug, Clone)]
pub struct NewPsaConnection {
    pub msp_id: Uuid,
    pub kind: PsaKind,
    pub name: String,
    pub base_url: String,
    /// Non-secret settings (company id, integration codes...).
    pub settings: serde_json::Value,
    /// The API credentials, typically a JSON document; sealed at rest.
    pub credentials: SecretString,
}

#[derive(Debug, Clone)]
pub struct PsaConnection {
    pub id: Uuid,
    pub msp_id: Uuid,
    pub kind: PsaKind,
    pub name: String,
    pub base_url: String,
    pub settings: serde_json::Value,
    pub credentials: SecretString,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TechnicianSighting {
    pub msp_id: Uuid,
    pub psa_connection_id: Uuid,
    pub psa_member_id: String,
    pub display_name: String,
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Technician {
    pub id: Uuid,
    pub msp_id: Uuid,
    pub psa_connection_id: Uuid,
    pub psa_member_id: String,
    pub display_name: String,
    pub email: Option<String>,
}

impl Store {
    fn connection_from_model(&self, m: psa_connection::Model) -> Result<PsaConnection, StoreError> {
        let place = SealedPlace::new("psa_connections", "credentials_sealed", m.id);
        Ok(PsaConnection {
            credentials: self.keyring().open(&place, &m.credentials_sealed)?,
            kind: m.kind,
            id: m.id,
            msp_id: m.msp_id,
            name: m.name,
            base_url: m.base_url,
            settings: m.settings,
            created_at: m.created_at,
        })
    }
}

impl Store {
    pub async fn create_connection(
        &self,
        new: NewPsaConnection,
    ) -> Result<PsaConnection, StoreError> {
        let id = Uuid::now_v7();
        let now = Utc::now();
        let sealed = self.keyring().seal(
            &SealedPlace::new("psa_connections", "credentials_sealed", id),
            new.credentials.expose_secret(),
        );
        let model = psa_connection::ActiveModel {
            id: Set(id),
            msp_id: Set(new.msp_id),
            kind: Set(new.kind),
            name: Set(new.name),
            base_url: Set(new.base_url),
            settings: Set(new.settings),
            credentials_sealed: Set(sealed),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let model = psa_connection::Entity::insert(model)
            .exec_with_returning(self.connection())
            .await?;
        self.connection_from_model(model)
    }

    pub async fn get_connection(&self, id: Uuid) -> Result<Option<PsaConnection>, StoreError> {
        psa_connection::Entity::find_by_id(id)
            .one(self.connection())
            .await?
            .map(|m| self.connection_from_model(m))
            .transpose()
    }

    pub async fn list_connections(&self, msp_id: Uuid) -> Result<Vec<PsaConnection>, StoreError> {
        psa_connection::Entity::find()
            .filter(psa_connection::Column::MspId.eq(msp_id))
            .order_by_asc(psa_connection::Column::CreatedAt)
            .all(self.connection())
            .await?
            .into_iter()
            .map(|m| self.connection_from_model(m))
            .collect()
    }

    /// Records that the PSA vouched for this member; creates or refreshes the technician.
    pub async fn record_technician(
        &self,
        seen: TechnicianSighting,
    ) -> Result<Technician, StoreError> {
        let now = Utc::now();
        let model = technician::ActiveModel {
            id: Set(Uuid::now_v7()),
            msp_id: Set(seen.msp_id),
            psa_connection_id: Set(seen.psa_connection_id),
            psa_member_id: Set(seen.psa_member_id.clone()),
            display_name: Set(seen.display_name),
            email: Set(seen.email),
            created_at: Set(now),
            last_seen_at: Set(Some(now)),
        };
        // One statement, so two instances seeing the same member at once cannot both insert.
        technician::Entity::insert(model)
            .on_conflict(
                OnConflict::columns([
                    technician::Column::PsaConnectionId,
                    technician::Column::PsaMemberId,
                ])
                .update_columns([
                    technician::Column::DisplayName,
                    technician::Column::Email,
                    technician::Column::LastSeenAt,
                ])
                .to_owned(),
            )
            .exec(self.connection())
            .await?;
        let stored = technician::Entity::find()
            .filter(technician::Column::PsaConnectionId.eq(seen.psa_connection_id))
            .filter(technician::Column::PsaMemberId.eq(seen.psa_member_id))
            .one(self.connection())
            .await?
            .ok_or(StoreError::NotFound("technician"))?;
        Ok(Technician {
            id: stored.id,
            msp_id: stored.msp_id,
            psa_connection_id: stored.psa_connection_id,
            psa_member_id: stored.psa_member_id,
            display_name: stored.display_name,
            email: stored.email,
        })
    }

    pub async fn get_technician(&self, id: Uuid) -> Result<Option<Technician>, StoreError> {
        Ok(technician::Entity::find_by_id(id)
            .one(self.connection())
            .await?
            .map(|t| Technician {
                id: t.id,
                msp_id: t.msp_id,
                psa_connection_id: t.psa_connection_id,
                psa_member_id: t.psa_member_id,
                display_name: t.display_name,
                email: t.email,
            }))
    }
}
