//! Holds on password resets: a user who reported a verification as fraud ("It's not me") has
//! their resets held until the hold ends or an MSP admin lifts it. A hold is put in the same
//! transaction as the decision that reported the fraud (see [`super::verifications`]), and a
//! lift in the same transaction as its audit entry.

use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait};
use uuid::Uuid;

use super::audit::{NewAuditEvent, append_categorised_on};
use super::entities::reset_hold;
use super::{Store, StoreError};
use crate::domain::AuditCategory;

pub use crate::domain::ResetHold;

/// A hold to put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewHold {
    pub msp_id: Uuid,
    pub tenant_id: Uuid,
    pub user_object_id: String,
    pub user_principal_name: String,
    /// The verification the user reported as fraud.
    pub verification_id: Uuid,
    pub held_until: DateTime<Utc>,
}

/// How a lift went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiftOutcome {
    /// Lifted now (its audit entry written with it).
    Lifted(ResetHold),
    /// Already lifted, or already over: nothing changed.
    NotActive(ResetHold),
    /// No such hold for this MSP.
    NotFound,
}

impl From<reset_hold::Model> for ResetHold {
    fn from(m: reset_hold::Model) -> Self {
        ResetHold {
            id: m.id,
            msp_id: m.msp_id,
            tenant_id: m.tenant_id,
            user_object_id: m.user_object_id,
            user_principal_name: m.user_principal_name,
            verification_id: m.verification_id,
            held_until: m.held_until,
            reported_at: m.created_at,
            lifted_at: m.lifted_at,
            lifted_by: m.lifted_by,
            lift_reason: m.lift_reason,
        }
    }
}

/// Puts `hold` on `conn` (a transaction: the decision that reported the fraud).
pub(crate) async fn create_hold_on(
    conn: &impl sea_orm::ConnectionTrait,
    hold: NewHold,
) -> Result<ResetHold, StoreError> {
    let model = reset_hold::ActiveModel {
        id: Set(Uuid::now_v7()),
        msp_id: Set(hold.msp_id),
        tenant_id: Set(hold.tenant_id),
        user_object_id: Set(hold.user_object_id),
        user_principal_name: Set(hold.user_principal_name),
        verification_id: Set(hold.verification_id),
        held_until: Set(hold.held_until),
        lifted_at: Set(None),
        lifted_by: Set(None),
        lift_reason: Set(None),
        created_at: Set(Utc::now()),
    };
    Ok(reset_hold::Entity::insert(model)
        .exec_with_returning(conn)
        .await?
        .into())
}

impl Store {
    /// The hold on the resets of this user that lasts longest, if one is active at `now`.
    pub async fn active_hold(
        &self,
        msp_id: Uuid,
        tenant_id: Uuid,
        user_object_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ResetHold>, StoreError> {
        Ok(reset_hold::Entity::find()
            .filter(reset_hold::Column::MspId.eq(msp_id))
            .filter(reset_hold::Column::TenantId.eq(tenant_id))
            .filter(reset_hold::Column::UserObjectId.eq(user_object_id))
            .filter(reset_hold::Column::LiftedAt.is_null())
            .filter(reset_hold::Column::HeldUntil.gt(now))
            .order_by_desc(reset_hold::Column::HeldUntil)
            .one(self.connection())
            .await?
            .map(Into::into))
    }

    /// Every hold of the MSP active at `now`, newest first.
    pub async fn active_holds(
        &self,
        msp_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<ResetHold>, StoreError> {
        Ok(reset_hold::Entity::find()
            .filter(reset_hold::Column::MspId.eq(msp_id))
            .filter(reset_hold::Column::LiftedAt.is_null())
            .filter(reset_hold::Column::HeldUntil.gt(now))
            .order_by_desc(reset_hold::Column::CreatedAt)
            .order_by_desc(reset_hold::Column::Id)
            .all(self.connection())
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// One hold of the MSP, active or not.
    pub async fn get_hold(&self, msp_id: Uuid, id: Uuid) -> Result<Option<ResetHold>, StoreError> {
        Ok(reset_hold::Entity::find_by_id(id)
            .filter(reset_hold::Column::MspId.eq(msp_id))
            .one(self.connection())
            .await?
            .map(Into::into))
    }

    /// The hold a fraud report on `verification_id` put, if any.
    pub async fn hold_of_verification(
        &self,
        verification_id: Uuid,
    ) -> Result<Option<ResetHold>, StoreError> {
        Ok(reset_hold::Entity::find()
            .filter(reset_hold::Column::VerificationId.eq(verification_id))
            .order_by_desc(reset_hold::Column::HeldUntil)
            .one(self.connection())
            .await?
            .map(Into::into))
    }

    /// Lifts an active hold of the MSP, with its audit entry (a security event) in the same
    /// transaction. A hold already lifted or over is left as it is.
    pub async fn lift_hold(
        &self,
        msp_id: Uuid,
        id: Uuid,
        lifted_by: String,
        reason: String,
        audit: NewAuditEvent,
    ) -> Result<LiftOutcome, StoreError> {
        let now = Utc::now();
        let txn = self.connection().begin().await?;
        let result = reset_hold::Entity::update_many()
            .col_expr(reset_hold::Column::LiftedAt, Expr::value(Some(now)))
            .col_expr(reset_hold::Column::LiftedBy, Expr::value(Some(lifted_by)))
            .col_expr(reset_hold::Column::LiftReason, Expr::value(Some(reason)))
            .filter(reset_hold::Column::Id.eq(id))
            .filter(reset_hold::Column::MspId.eq(msp_id))
            .filter(reset_hold::Column::LiftedAt.is_null())
            .filter(reset_hold::Column::HeldUntil.gt(now))
            .exec(&txn)
            .await?;
        let lifted = result.rows_affected == 1;
        if lifted {
            append_categorised_on(&txn, audit, AuditCategory::Security).await?;
        }
        let hold = reset_hold::Entity::find_by_id(id)
            .filter(reset_hold::Column::MspId.eq(msp_id))
            .one(&txn)
            .await?;
        txn.commit().await?;
        Ok(match hold {
            None => LiftOutcome::NotFound,
            Some(hold) if lifted => LiftOutcome::Lifted(hold.into()),
            Some(hold) => LiftOutcome::NotActive(hold.into()),
        })
    }

    /// A fraud report that came after its verification had ended (cancelled first): the
    /// answer is audited as a security event and, when `hold` is given, the user's resets are
    /// held, both in one transaction.
    pub async fn record_late_fraud(
        &self,
        audit: NewAuditEvent,
        hold: Option<NewHold>,
    ) -> Result<(), StoreError> {
        let txn = self.connection().begin().await?;
        append_categorised_on(&txn, audit, AuditCategory::Security).await?;
        if let Some(hold) = hold {
            create_hold_on(&txn, hold).await?;
        }
        txn.commit().await?;
        Ok(())
    }
}
