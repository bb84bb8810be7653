//! Running instances and what they wait on. Each instance beats a heartbeat row; a pending
//! push names the instance waiting for its answer. A push whose instance stopped beating
//! (killed, restarted) has nobody left to hear the answer: it is interrupted, with its audit
//! entry in the same transaction, so that it never blocks a new push for that user.

use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, TransactionTrait};
use uuid::Uuid;

use super::audit::{NewAuditEvent, append_on};
use super::entities::{instance, verification};
use super::{Store, StoreError};
use crate::domain::{ErrorCode, Verification, VerificationMethod, VerificationStatus};

/// Which pending pushes to look at.
#[derive(Debug, Clone, Copy)]
pub enum OrphanScope<'a> {
    /// Every pending push (at start-up).
    All,
    /// The pending pushes to one user (before a new push to them).
    User {
        tenant_id: Uuid,
        user_object_id: &'a str,
    },
    /// One verification (when it is read).
    One(Uuid),
}

impl Store {
    /// Records that instance `id` is alive now (creating its row on the first beat).
    pub async fn beat_heartbeat(&self, id: Uuid) -> Result<(), StoreError> {
        let now = Utc::now();
        instance::Entity::insert(instance::ActiveModel {
            id: Set(id),
            started_at: Set(now),
            heartbeat_at: Set(now),
        })
        .on_conflict(
            OnConflict::column(instance::Column::Id)
                .update_column(instance::Column::HeartbeatAt)
                .to_owned(),
        )
        .exec_without_returning(self.connection())
        .await?;
        Ok(())
    }

    /// The instances that beat since `since`.
    pub async fn live_instances(&self, since: DateTime<Utc>) -> Result<Vec<Uuid>, StoreError> {
        use sea_orm::QuerySelect;
        Ok(instance::Entity::find()
            .select_only()
            .column(instance::Column::Id)
            .filter(instance::Column::HeartbeatAt.gte(since))
            .into_tuple()
            .all(self.connection())
            .await?)
    }

    /// Marks the pending pushes in `scope` whose waiting instance is not in `live` as
    /// interrupted, each with the audit entry `audit` makes for it, in one transaction per
    /// push. Returns the pushes it interrupted.
    pub async fn interrupt_orphaned_pushes(
        &self,
        live: &[Uuid],
        scope: OrphanScope<'_>,
        audit: impl Fn(&Verification) -> NewAuditEvent,
    ) -> Result<Vec<Verification>, StoreError> {
        let mut orphaned = verification::Entity::find()
            .filter(verification::Column::Method.eq(VerificationMethod::Push))
            .filter(verification::Column::Status.eq(VerificationStatus::Pending))
            .filter(
                Condition::any()
                    .add(verification::Column::WaiterInstanceId.is_null())
                    .add(verification::Column::WaiterInstanceId.is_not_in(live.iter().copied())),
            );
        orphaned = match scope {
            OrphanScope::All => orphaned,
            OrphanScope::User {
                tenant_id,
                user_object_id,
            } => orphaned
                .filter(verification::Column::TenantId.eq(tenant_id))
                .filter(verification::Column::UserObjectId.eq(user_object_id)),
            OrphanScope::One(id) => orphaned.filter(verification::Column::Id.eq(id)),
        };
        let found = orphaned.all(self.connection()).await?;
        let mut interrupted = Vec::with_capacity(found.len());
        for model in found {
            let txn = self.connection().begin().await?;
            let changed = verification::Entity::update_many()
                .col_expr(
                    verification::Column::Status,
                    Expr::value(VerificationStatus::Interrupted),
                )
                .col_expr(
                    verification::Column::FailureCode,
                    Expr::value(Some(ErrorCode::VerificationInterrupted)),
                )
                .col_expr(
                    verification::Column::DecidedAt,
                    Expr::value(Some(Utc::now())),
                )
                .filter(verification::Column::Id.eq(model.id))
                .filter(verification::Column::Status.eq(VerificationStatus::Pending))
                .exec(&txn)
                .await?;
            if changed.rows_affected != 1 {
                // Decided meanwhile (its answer arrived after all).
                continue;
            }
            let mut verification = Verification::from(model);
            verification.status = VerificationStatus::Interrupted;
            verification.failure_code = Some(ErrorCode::VerificationInterrupted);
            append_on(&txn, audit(&verification)).await?;
            txn.commit().await?;
            interrupted.push(verification);
        }
        Ok(interrupted)
    }
}
