//! Logos MSPs upload. The bytes live in their own table (read only when a page shows the
//! logo); the MSP row carries the version, so pages know the address without reading them.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, EntityTrait, TransactionTrait};
use uuid::Uuid;

use super::audit::{NewAuditEvent, append_on};
use super::entities::{msp_account, msp_logo};
use super::{Store, StoreError};

/// A logo ready to serve: a PNG, checked and measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLogo {
    pub msp_id: Uuid,
    pub content_type: String,
    pub bytes: Vec<u8>,
    /// Hex SHA-256 of `bytes`.
    pub sha256: String,
    pub width: u32,
    pub height: u32,
    pub updated_at: DateTime<Utc>,
}

impl StoredLogo {
    /// The version in the logo's address: a new logo gets a new address, so no cache serves
    /// the old one.
    pub fn version(&self) -> &str {
        &self.sha256[..16]
    }
}

impl Store {
    /// Stores `logo` as its MSP's logo (replacing any), points the MSP at it (dropping a
    /// logo address set before) and appends `audit`, in one transaction.
    pub async fn put_logo(&self, logo: StoredLogo, audit: NewAuditEvent) -> Result<(), StoreError> {
        let txn = self.connection().begin().await?;
        let model = msp_logo::ActiveModel {
            msp_id: Set(logo.msp_id),
            content_type: Set(logo.content_type.clone()),
            bytes: Set(logo.bytes.clone()),
            sha256: Set(logo.sha256.clone()),
            width: Set(logo.width as i32),
            height: Set(logo.height as i32),
            updated_at: Set(logo.updated_at),
        };
        msp_logo::Entity::insert(model)
            .on_conflict(
                OnConflict::column(msp_logo::Column::MspId)
                    .update_columns([
                        msp_logo::Column::ContentType,
                        msp_logo::Column::Bytes,
                        msp_logo::Column::Sha256,
                        msp_logo::Column::Width,
                        msp_logo::Column::Height,
                        msp_logo::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec(&txn)
            .await?;
        msp_account::Entity::update(msp_account::ActiveModel {
            id: Set(logo.msp_id),
            brand_logo_version: Set(Some(logo.version().to_owned())),
            brand_logo_url: Set(None),
            updated_at: Set(Utc::now()),
            ..Default::default()
        })
        .exec(&txn)
        .await?;
        append_on(&txn, audit).await?;
        self.commit_announced(txn).await?;
        Ok(())
    }

    /// Removes the MSP's uploaded logo, if any, and appends `audit`, in one transaction.
    /// Returns whether there was one.
    pub async fn delete_logo(
        &self,
        msp_id: Uuid,
        audit: NewAuditEvent,
    ) -> Result<bool, StoreError> {
        let txn = self.connection().begin().await?;
        let removed = msp_logo::Entity::delete_by_id(msp_id).exec(&txn).await?;
        if removed.rows_affected == 0 {
            return Ok(false);
        }
        msp_account::Entity::update(msp_account::ActiveModel {
            id: Set(msp_id),
            brand_logo_version: Set(None),
            updated_at: Set(Utc::now()),
            ..Default::default()
        })
        .exec(&txn)
        .await?;
        append_on(&txn, audit).await?;
        self.commit_announced(txn).await?;
        Ok(true)
    }

    /// The MSP's uploaded logo, if it has one.
    pub async fn get_logo(&self, msp_id: Uuid) -> Result<Option<StoredLogo>, StoreError> {
        Ok(msp_logo::Entity::find_by_id(msp_id)
            .one(self.connection())
            .await?
            .map(|m| StoredLogo {
                msp_id: m.msp_id,
                content_type: m.content_type,
                bytes: m.bytes,
                sha256: m.sha256,
                width: m.width.max(0) as u32,
                height: m.height.max(0) as u32,
                updated_at: m.updated_at,
            }))
    }
}
