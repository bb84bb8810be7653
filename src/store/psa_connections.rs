//! PSA connections (sealed credentials) and the technicians the PSAs vouch for.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use std::collections::HashMap;

use sea_orm::{
    ActiveValue::NotSet, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::audit::{NewAuditEvent, append_on};
use super::crypto::SealedPlace;
use super::entities::{
    company_tenant_mapping, password_reset, psa_connection, technician, verification,
};
use super::{Store, StoreError};
use crate::domain::{ConnectionCheck, PsaKind};

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
    /// When the connection was last changed (the version [`Store::update_connection`]
    /// checks).
    pub updated_at: DateTime<Utc>,
    /// When it was last tested, and that test's checks (`None`: never, or not since its
    /// credentials changed).
    pub last_test: Option<(DateTime<Utc>, Vec<ConnectionCheck>)>,
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
    pub created_at: DateTime<Utc>,
    /// When a PSA last vouched for them (refreshed at most once per `cache.technicians`
    /// lifetime).
    pub last_seen_at: Option<DateTime<Utc>>,
    /// When an MSP admin blocked their Vouch actions; `None` when not blocked.
    pub blocked_at: Option<DateTime<Utc>>,
    /// Who blocked them.
    pub blocked_by: Option<String>,
    /// The console user they are, when an admin linked them.
    pub console_user_id: Option<Uuid>,
}

impl From<technician::Model> for Technician {
    fn from(t: technician::Model) -> Technician {
        Technician {
            id: t.id,
            msp_id: t.msp_id,
            psa_connection_id: t.psa_connection_id,
            psa_member_id: t.psa_member_id,
            display_name: t.display_name,
            email: t.email,
            created_at: t.created_at,
            last_seen_at: t.last_seen_at,
            blocked_at: t.blocked_at,
            blocked_by: t.blocked_by,
            console_user_id: t.console_user_id,
        }
    }
}

/// What a technician last did through Vouch: the newest verification or password reset they
/// asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TechnicianAction {
    Verification,
    PasswordReset,
}

/// A block to set on a technician, or `None` to lift it.
#[derive(Debug, Clone)]
pub struct TechnicianBlock {
    pub at: DateTime<Utc>,
    pub by: String,
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
            updated_at: m.updated_at,
            last_test: match (m.last_tested_at, m.last_test) {
                (Some(at), Some(checks)) => match serde_json::from_value(checks) {
                    Ok(checks) => Some((at, checks)),
                    Err(err) => {
                        tracing::warn!(connection = %m.id, %err, "an unreadable stored connection test is ignored");
                        None
                    }
                },
                _ => None,
            },
        })
    }
}

/// A connection's new state (every column that can change), for [`Store::update_connection`].
#[derive(Debug, Clone)]
pub struct PsaConnectionUpdate {
    pub name: String,
    pub base_url: String,
    pub settings: serde_json::Value,
    pub credentials: SecretString,
    /// Forget the last test (the credentials or addresses it tested changed).
    pub forget_test: bool,
}

/// What deleting a connection removed besides its row (and its sealed credentials).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemovedWithConnection {
    pub company_mappings: u64,
    pub technicians: u64,
}

impl Store {
    pub async fn create_connection(
        &self,
        new: NewPsaConnection,
    ) -> Result<PsaConnection, StoreError> {
        let id = Uuid::now_v7();
        self.insert_connection(self.connection(), id, new).await
    }

    /// Creates the connection `id` and appends its audit entry, in one transaction.
    pub async fn create_connection_audited(
        &self,
        id: Uuid,
        new: NewPsaConnection,
        audit: NewAuditEvent,
    ) -> Result<PsaConnection, StoreError> {
        let txn = self.connection().begin().await?;
        let created = self.insert_connection(&txn, id, new).await?;
        append_on(&txn, audit).await?;
        txn.commit().await?;
        Ok(created)
    }

    /// Replaces the changeable columns of connection `id`, provided it is still as last read
    /// (`read_at` is the `updated_at` the caller saw), and appends the audit entry, in one
    /// transaction. `None` when the connection is gone or was changed meanwhile.
    pub async fn update_connection(
        &self,
        id: Uuid,
        read_at: DateTime<Utc>,
        update: PsaConnectionUpdate,
        audit: NewAuditEvent,
    ) -> Result<Option<PsaConnection>, StoreError> {
        let sealed = self.keyring().seal(
            &SealedPlace::new("psa_connections", "credentials_sealed", id),
            update.credentials.expose_secret(),
        );
        let txn = self.connection().begin().await?;
        let mut statement = psa_connection::Entity::update_many();
        if update.forget_test {
            statement = statement
                .col_expr(
                    psa_connection::Column::LastTestedAt,
                    Expr::value(Option::<DateTime<Utc>>::None),
                )
                .col_expr(
                    psa_connection::Column::LastTest,
                    Expr::value(Option::<serde_json::Value>::None),
                );
        }
        let changed = statement
            .col_expr(psa_connection::Column::Name, Expr::value(update.name))
            .col_expr(
                psa_connection::Column::BaseUrl,
                Expr::value(update.base_url),
            )
            .col_expr(
                psa_connection::Column::Settings,
                Expr::value(update.settings),
            )
            .col_expr(
                psa_connection::Column::CredentialsSealed,
                Expr::value(sealed),
            )
            .col_expr(psa_connection::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(psa_connection::Column::Id.eq(id))
            .filter(psa_connection::Column::UpdatedAt.eq(read_at))
            .exec(&txn)
            .await?;
        if changed.rows_affected != 1 {
            return Ok(None);
        }
        append_on(&txn, audit).await?;
        let model = psa_connection::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound("PSA connection"))?;
        self.commit_announced(txn).await?;
        self.connection_from_model(model).map(Some)
    }

    /// Records the test of connection `id` run on its state as last read (`read_at`, its
    /// `updated_at` then), without changing `updated_at`, and appends the audit entry, in one
    /// transaction. The audit entry is written either way; the test is recorded only when the
    /// connection is still as read (`false` otherwise: it changed, or is gone, meanwhile).
    pub async fn record_connection_test(
        &self,
        id: Uuid,
        read_at: DateTime<Utc>,
        tested_at: DateTime<Utc>,
        checks: &[ConnectionCheck],
        audit: NewAuditEvent,
    ) -> Result<bool, StoreError> {
        let checks = serde_json::to_value(checks).expect("checks serialise");
        let txn = self.connection().begin().await?;
        let recorded = psa_connection::Entity::update_many()
            .col_expr(
                psa_connection::Column::LastTestedAt,
                Expr::value(Some(tested_at)),
            )
            .col_expr(psa_connection::Column::LastTest, Expr::value(Some(checks)))
            .filter(psa_connection::Column::Id.eq(id))
            .filter(psa_connection::Column::UpdatedAt.eq(read_at))
            .exec(&txn)
            .await?
            .rows_affected
            == 1;
        append_on(&txn, audit).await?;
        txn.commit().await?;
        Ok(recorded)
    }

    /// Deletes connection `id` with its sealed credentials, its company mappings and its
    /// technicians, and appends the audit entry, in one transaction. The audit log keeps
    /// every entry about it (they name it by id, as text). `None` when there was no such
    /// connection.
    pub async fn delete_connection(
        &self,
        id: Uuid,
        audit: NewAuditEvent,
    ) -> Result<Option<RemovedWithConnection>, StoreError> {
        let txn = self.connection().begin().await?;
        let company_mappings = company_tenant_mapping::Entity::delete_many()
            .filter(company_tenant_mapping::Column::PsaConnectionId.eq(id))
            .exec(&txn)
            .await?
            .rows_affected;
        let technicians = technician::Entity::delete_many()
            .filter(technician::Column::PsaConnectionId.eq(id))
            .exec(&txn)
            .await?
            .rows_affected;
        let deleted = psa_connection::Entity::delete_by_id(id)
            .exec(&txn)
            .await?
            .rows_affected;
        if deleted != 1 {
            return Ok(None);
        }
        append_on(&txn, audit).await?;
        self.commit_announced(txn).await?;
        Ok(Some(RemovedWithConnection {
            company_mappings,
            technicians,
        }))
    }

    /// How many PSA companies of connection `id` are mapped to a tenant.
    pub async fn count_company_mappings(&self, id: Uuid) -> Result<u64, StoreError> {
        Ok(company_tenant_mapping::Entity::find()
            .filter(company_tenant_mapping::Column::PsaConnectionId.eq(id))
            .count(self.connection())
            .await?)
    }

    async fn insert_connection(
        &self,
        conn: &impl sea_orm::ConnectionTrait,
        id: Uuid,
        new: NewPsaConnection,
    ) -> Result<PsaConnection, StoreError> {
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
            last_tested_at: Set(None),
            last_test: Set(None),
        };
        let model = psa_connection::Entity::insert(model)
            .exec_with_returning(conn)
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

    /// When connection `id` was last changed (`None` when it is gone): one primary-key read
    /// of one column, so a cached copy can be checked on every use.
    pub async fn connection_version(&self, id: Uuid) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(psa_connection::Entity::find_by_id(id)
            .select_only()
            .column(psa_connection::Column::UpdatedAt)
            .into_tuple::<DateTime<Utc>>()
            .one(self.connection())
            .await?)
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
            blocked_at: NotSet,
            blocked_by: NotSet,
            console_user_id: NotSet,
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
        Ok(stored.into())
    }

    pub async fn get_technician(&self, id: Uuid) -> Result<Option<Technician>, StoreError> {
        Ok(technician::Entity::find_by_id(id)
            .one(self.connection())
            .await?
            .map(Technician::from))
    }

    /// The MSP's technicians, most recently seen first.
    pub async fn list_technicians(&self, msp_id: Uuid) -> Result<Vec<Technician>, StoreError> {
        Ok(technician::Entity::find()
            .filter(technician::Column::MspId.eq(msp_id))
            .order_by_desc(technician::Column::LastSeenAt)
            .order_by_asc(technician::Column::Id)
            .all(self.connection())
            .await?
            .into_iter()
            .map(Technician::from)
            .collect())
    }

    /// What each of the MSP's technicians last did, and when: the newest verification or
    /// password reset each asked for (two grouped queries, on the indexed `msp_id`).
    pub async fn last_technician_actions(
        &self,
        msp_id: Uuid,
    ) -> Result<HashMap<Uuid, (TechnicianAction, DateTime<Utc>)>, StoreError> {
        let verifications: Vec<(Option<Uuid>, Option<DateTime<Utc>>)> =
            verification::Entity::find()
                .select_only()
                .column(verification::Column::TechnicianId)
                .column_as(verification::Column::CreatedAt.max(), "last")
                .filter(verification::Column::MspId.eq(msp_id))
                .filter(verification::Column::TechnicianId.is_not_null())
                .group_by(verification::Column::TechnicianId)
                .into_tuple()
                .all(self.connection())
                .await?;
        let resets: Vec<(Option<Uuid>, Option<DateTime<Utc>>)> = password_reset::Entity::find()
            .select_only()
            .column(password_reset::Column::TechnicianId)
            .column_as(password_reset::Column::CreatedAt.max(), "last")
            .filter(password_reset::Column::MspId.eq(msp_id))
            .filter(password_reset::Column::TechnicianId.is_not_null())
            .group_by(password_reset::Column::TechnicianId)
            .into_tuple()
            .all(self.connection())
            .await?;
        let mut last = HashMap::new();
        let tagged = verifications
            .into_iter()
            .map(|row| (TechnicianAction::Verification, row))
            .chain(
                resets
                    .into_iter()
                    .map(|row| (TechnicianAction::PasswordReset, row)),
            );
        for (action, (id, at)) in tagged {
            let (Some(id), Some(at)) = (id, at) else {
                continue;
            };
            let entry = last.entry(id).or_insert((action, at));
            // A reset follows its verification: on a tie, the reset is the last action.
            if at >= entry.1 {
                *entry = (action, at);
            }
        }
        Ok(last)
    }

    /// Blocks (`Some`) or unblocks (`None`) technician `id` and appends the audit entry, in
    /// one transaction; the technician as it is now. `None` when there is no such
    /// technician.
    pub async fn set_technician_block(
        &self,
        id: Uuid,
        block: Option<TechnicianBlock>,
        audit: NewAuditEvent,
    ) -> Result<Option<Technician>, StoreError> {
        let txn = self.connection().begin().await?;
        let (at, by) = match block {
            Some(block) => (Some(block.at), Some(block.by)),
            None => (None, None),
        };
        let changed = technician::Entity::update_many()
            .col_expr(technician::Column::BlockedAt, Expr::value(at))
            .col_expr(technician::Column::BlockedBy, Expr::value(by))
            .filter(technician::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        if changed.rows_affected != 1 {
            return Ok(None);
        }
        append_on(&txn, audit).await?;
        let model = technician::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound("technician"))?;
        self.commit_announced(txn).await?;
        Ok(Some(model.into()))
    }

    /// Links technician `id` of `msp_id` to console user `console_user_id` (`None`: unlinks)
    /// and appends the audit entry, in one transaction. `None` when the MSP has no such
    /// technician.
    pub async fn set_technician_console_user(
        &self,
        msp_id: Uuid,
        id: Uuid,
        console_user_id: Option<Uuid>,
        audit: NewAuditEvent,
    ) -> Result<Option<Technician>, StoreError> {
        let txn = self.connection().begin().await?;
        let changed = technician::Entity::update_many()
            .col_expr(
                technician::Column::ConsoleUserId,
                Expr::value(console_user_id),
            )
            .filter(technician::Column::Id.eq(id))
            .filter(technician::Column::MspId.eq(msp_id))
            .exec(&txn)
            .await?;
        if changed.rows_affected != 1 {
            return Ok(None);
        }
        append_on(&txn, audit).await?;
        let model = technician::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound("technician"))?;
        txn.commit().await?;
        Ok(Some(model.into()))
    }
}
