//! Verifications.
//!
//! The rules that must hold across several Vouch instances are enforced here, in the
//! database: at most one pending push per user and at most N pushes per window (serialised by
//! a per-user lock row), and a verification spent at most once (see [`super::resets`]).

use chrono::{DateTime, Duration, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use uuid::Uuid;

use super::audit::{NewAuditEvent, append_categorised_on};
use super::entities::{verification, verification_lock};
use super::holds::{NewHold, create_hold_on};
use super::{Store, StoreError};
use crate::domain::{AuditCategory, ErrorCode, VerificationMethod, VerificationStatus};

pub use crate::domain::Verification;

impl From<verification::Model> for Verification {
    fn from(m: verification::Model) -> Self {
        Verification {
            id: m.id,
            msp_id: m.msp_id,
            tenant_id: m.tenant_id,
            technician_id: m.technician_id,
            psa_connection_id: m.psa_connection_id,
            psa_ticket_id: m.psa_ticket_id,
            psa_contact_id: m.psa_contact_id,
            user_object_id: m.user_object_id,
            user_principal_name: m.user_principal_name,
            method: m.method,
            status: m.status,
            failure_code: m.failure_code,
            code_hash: m.code_hash,
            attempts: m.attempts,
            reason: m.reason,
            used_contact_phone_fallback: m.used_contact_phone_fallback,
            created_at: m.created_at,
            expires_at: m.expires_at,
            decided_at: m.decided_at,
            verified_until: m.verified_until,
            consumed_at: m.consumed_at,
            waiter_instance_id: m.waiter_instance_id,
            console_user_id: m.console_user_id,
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewVerification {
    pub msp_id: Uuid,
    pub tenant_id: Uuid,
    pub technician_id: Option<Uuid>,
    pub psa_connection_id: Option<Uuid>,
    pub psa_ticket_id: Option<String>,
    pub psa_contact_id: Option<String>,
    pub user_object_id: String,
    pub user_principal_name: String,
    pub method: VerificationMethod,
    /// Keyed hash of the SMS code, or hash of the link token.
    pub code_hash: Option<String>,
    pub reason: Option<String>,
    pub used_contact_phone_fallback: bool,
    pub expires_at: DateTime<Utc>,
    /// The instance that will wait for a push's answer.
    pub waiter_instance_id: Option<Uuid>,
    /// The console user who asked, when one did (see [`Verification::console_user_id`]).
    pub console_user_id: Option<Uuid>,
}

/// Push-bombing limits (the MSP's policy).
#[derive(Debug, Clone, Copy)]
pub struct PushLimits {
    /// Per user.
    pub max_per_window: u64,
    /// Per technician, across users.
    pub max_per_technician: u64,
    pub window: Duration,
    /// Approved pushes count too (the MSP's `count_approved_pushes`).
    pub count_approved: bool,
}

impl PushLimits {
    /// The statuses of the pushes that count towards these limits.
    fn counted_statuses(&self) -> Vec<VerificationStatus> {
        let mut statuses = BOMBING_STATUSES.to_vec();
        if self.count_approved {
            statuses.push(VerificationStatus::Approved);
        }
        statuses
    }
}

/// The pushes that count towards the limits: what push-bombing looks like to the user
/// (denied, unanswered or cancelled before an answer, or still waiting), not the pushes the
/// user approved, those that failed before reaching them, nor those interrupted by a stopped
/// instance (Vouch's failure, not the caller's).
const BOMBING_STATUSES: [VerificationStatus; 4] = [
    VerificationStatus::Pending,
    VerificationStatus::Denied,
    VerificationStatus::Expired,
    VerificationStatus::Cancelled,
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BeginPushError {
    #[error("a push to this user is already waiting for an answer")]
    AlreadyPending { pending_id: Uuid },
    #[error("too many pushes to this user")]
    RateLimited { retry_after: Duration },
    #[error("too many pushes by this technician")]
    TechnicianRateLimited { retry_after: Duration },
    #[error("{0}")]
    Store(String),
}

/// The end of a verification.
#[derive(Debug, Clone)]
pub struct Decision {
    pub status: VerificationStatus,
    pub failure_code: Option<ErrorCode>,
    pub verified_until: Option<DateTime<Utc>>,
    /// Appended in the same transaction as the decision, only if the decision is made.
    pub audit: Option<NewAuditEvent>,
    /// The category of `audit` (`security` for a fraud report).
    pub audit_category: AuditCategory,
    /// A hold on the user's resets (a fraud report), put with the decision, only if the
    /// decision is made.
    pub hold: Option<NewHold>,
}

impl Store {
    /// Records a pending push if the user has none pending and the window allows another.
    pub async fn begin_push(
        &self,
        new: NewVerification,
        limits: PushLimits,
    ) -> Result<Verification, BeginPushError> {
        let store_err = |err: sea_orm::DbErr| BeginPushError::Store(err.to_string());
        let now = Utc::now();
        // Make sure the user's lock row exists (outside the transaction, idempotent).
        verification_lock::Entity::insert(verification_lock::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(new.tenant_id),
            user_object_id: Set(new.user_object_id.clone()),
            touched_at: Set(now),
        })
        .on_conflict(
            OnConflict::columns([
                verification_lock::Column::TenantId,
                verification_lock::Column::UserObjectId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(self.connection())
        .await
        .map_err(store_err)?;

        // SQLite: IMMEDIATE takes the write lock at BEGIN, so two starts wait for each other
        // instead of deadlocking on a lock upgrade (PostgreSQL ignores the option).
        let txn = self
            .connection()
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..TransactionOptions::default()
            })
            .await
            .map_err(store_err)?;
        // The first statement writes the user's lock row: PostgreSQL locks that row until
        // commit and SQLite takes its write lock, so concurrent starts for the same user
        // (from any instance) run one after the other.
        verification_lock::Entity::update_many()
            .col_expr(verification_lock::Column::TouchedAt, Expr::value(now))
            .filter(verification_lock::Column::TenantId.eq(new.tenant_id))
            .filter(verification_lock::Column::UserObjectId.eq(new.user_object_id.clone()))
            .exec(&txn)
            .await
            .map_err(store_err)?;
        let user_pushes = || {
            verification::Entity::find()
                .filter(verification::Column::TenantId.eq(new.tenant_id))
                .filter(verification::Column::UserObjectId.eq(new.user_object_id.clone()))
                .filter(verification::Column::Method.eq(VerificationMethod::Push))
        };
        if let Some(pending) = user_pushes()
            .filter(verification::Column::Status.eq(VerificationStatus::Pending))
            .filter(verification::Column::ExpiresAt.gt(now))
            .one(&txn)
            .await
            .map_err(store_err)?
        {
            return Err(BeginPushError::AlreadyPending {
                pending_id: pending.id,
            });
        }
        let window_start = now - limits.window;
        let recent: Vec<DateTime<Utc>> = user_pushes()
            .select_only()
            .column(verification::Column::CreatedAt)
            .filter(verification::Column::CreatedAt.gt(window_start))
            .filter(verification::Column::Status.is_in(limits.counted_statuses()))
            .order_by_asc(verification::Column::CreatedAt)
            .into_tuple()
            .all(&txn)
            .await
            .map_err(store_err)?;
        if let Some(retry_after) = over_limit(&recent, limits.max_per_window, limits.window, now) {
            return Err(BeginPushError::RateLimited { retry_after });
        }
        // The per-technician limit counts the person asking: a console user by their console
        // account (on Contacts they have no technician record, and on Tickets they may act
        // through several), a PSA technician by their record.
        let asker = match (new.console_user_id, new.technician_id) {
            (Some(console_user), _) => Some(verification::Column::ConsoleUserId.eq(console_user)),
            (None, Some(technician)) => Some(verification::Column::TechnicianId.eq(technician)),
            (None, None) => None,
        };
        if let Some(asker) = asker {
            let by_technician: Vec<DateTime<Utc>> = verification::Entity::find()
                .select_only()
                .column(verification::Column::CreatedAt)
                .filter(verification::Column::MspId.eq(new.msp_id))
                .filter(asker)
                .filter(verification::Column::Method.eq(VerificationMethod::Push))
                .filter(verification::Column::CreatedAt.gt(window_start))
                .filter(verification::Column::Status.is_in(limits.counted_statuses()))
                .order_by_asc(verification::Column::CreatedAt)
                .into_tuple()
                .all(&txn)
                .await
                .map_err(store_err)?;
            if let Some(retry_after) = over_limit(
                &by_technician,
                limits.max_per_technician,
                limits.window,
                now,
            ) {
                return Err(BeginPushError::TechnicianRateLimited { retry_after });
            }
        }
        let model = insert_model(new, now);
        let inserted = verification::Entity::insert(model)
            .exec_with_returning(&txn)
            .await
            .map_err(store_err)?;
        txn.commit().await.map_err(store_err)?;
        Ok(inserted.into())
    }

    /// Records a pending SMS-code or link verification.
    pub async fn create_verification(
        &self,
        new: NewVerification,
    ) -> Result<Verification, StoreError> {
        Ok(verification::Entity::insert(insert_model(new, Utc::now()))
            .exec_with_returning(self.connection())
            .await?
            .into())
    }

    pub async fn get_verification(&self, id: Uuid) -> Result<Option<Verification>, StoreError> {
        self.reachable()?;
        Ok(verification::Entity::find_by_id(id)
            .one(self.connection())
            .await?
            .map(Into::into))
    }

    /// The verification of `method` whose stored hash is `code_hash` (one-tap links).
    pub async fn find_by_code_hash(
        &self,
        method: VerificationMethod,
        code_hash: &str,
    ) -> Result<Option<Verification>, StoreError> {
        Ok(verification::Entity::find()
            .filter(verification::Column::Method.eq(method))
            .filter(verification::Column::CodeHash.eq(code_hash))
            .one(self.connection())
            .await?
            .map(Into::into))
    }

    /// Ends a pending verification; false when it was no longer pending (cancelled, expired).
    pub async fn decide_verification(
        &self,
        id: Uuid,
        decision: Decision,
    ) -> Result<bool, StoreError> {
        self.reachable()?;
        // The decision, its audit entry and its hold: all or nothing.
        let txn = self.connection().begin().await?;
        let result = verification::Entity::update_many()
            .col_expr(verification::Column::Status, Expr::value(decision.status))
            .col_expr(
                verification::Column::FailureCode,
                Expr::value(decision.failure_code),
            )
            .col_expr(
                verification::Column::DecidedAt,
                Expr::value(Some(Utc::now())),
            )
            .col_expr(
                verification::Column::VerifiedUntil,
                Expr::value(decision.verified_until),
            )
            .filter(verification::Column::Id.eq(id))
            .filter(verification::Column::Status.eq(VerificationStatus::Pending))
            .exec(&txn)
            .await?;
        let decided = result.rows_affected == 1;
        if decided && let Some(event) = decision.audit {
            append_categorised_on(&txn, event, decision.audit_category).await?;
        }
        if decided && let Some(hold) = decision.hold {
            create_hold_on(&txn, hold).await?;
        }
        txn.commit().await?;
        Ok(decided)
    }

    /// Counts one code attempt if fewer than `max` were made; the attempts so far, or None
    /// when the attempt is not allowed (limit reached or no longer pending).
    pub async fn count_code_attempt(&self, id: Uuid, max: i32) -> Result<Option<i32>, StoreError> {
        let result = verification::Entity::update_many()
            .col_expr(
                verification::Column::Attempts,
                Expr::col(verification::Column::Attempts).add(1),
            )
            .filter(verification::Column::Id.eq(id))
            .filter(verification::Column::Status.eq(VerificationStatus::Pending))
            .filter(verification::Column::Attempts.lt(max))
            .exec(self.connection())
            .await?;
        if result.rows_affected != 1 {
            return Ok(None);
        }
        Ok(self.get_verification(id).await?.map(|v| v.attempts))
    }

    pub async fn verification_history(
        &self,
        tenant_id: Uuid,
        user_object_id: &str,
        limit: u64,
    ) -> Result<Vec<Verification>, StoreError> {
        self.newest_verifications(
            Condition::all()
                .add(verification::Column::TenantId.eq(tenant_id))
                .add(verification::Column::UserObjectId.eq(user_object_id)),
            limit,
        )
        .await
    }

    /// The newest verifications made from one PSA ticket, of anyone.
    pub async fn ticket_verifications(
        &self,
        psa_connection_id: Uuid,
        psa_ticket_id: &str,
        limit: u64,
    ) -> Result<Vec<Verification>, StoreError> {
        self.newest_verifications(
            Condition::all()
                .add(verification::Column::PsaConnectionId.eq(psa_connection_id))
                .add(verification::Column::PsaTicketId.eq(psa_ticket_id)),
            limit,
        )
        .await
    }

    async fn newest_verifications(
        &self,
        which: Condition,
        limit: u64,
    ) -> Result<Vec<Verification>, StoreError> {
        Ok(verification::Entity::find()
            .filter(which)
            .order_by_desc(verification::Column::CreatedAt)
            .limit(limit)
            .all(self.connection())
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Marks an approved verification as used by a reset; false when it was already used.
    pub async fn spend_verification(&self, id: Uuid) -> Result<bool, StoreError> {
        let result = verification::Entity::update_many()
            .col_expr(
                verification::Column::ConsumedAt,
                Expr::value(Some(Utc::now())),
            )
            .filter(verification::Column::Id.eq(id))
            .filter(verification::Column::ConsumedAt.is_null())
            .exec(self.connection())
            .await?;
        Ok(result.rows_affected == 1)
    }
}

/// When `recent` (oldest first) already holds `max` pushes in `window`, how long until the
/// oldest that counts leaves it.
fn over_limit(
    recent: &[DateTime<Utc>],
    max: u64,
    window: Duration,
    now: DateTime<Utc>,
) -> Option<Duration> {
    if (recent.len() as u64) < max {
        return None;
    }
    let oldest = recent[recent.len() - max as usize];
    Some((oldest + window - now).max(Duration::seconds(1)))
}

fn insert_model(new: NewVerification, now: DateTime<Utc>) -> verification::ActiveModel {
    verification::ActiveModel {
        id: Set(Uuid::now_v7()),
        msp_id: Set(new.msp_id),
        tenant_id: Set(new.tenant_id),
        technician_id: Set(new.technician_id),
        psa_connection_id: Set(new.psa_connection_id),
        psa_ticket_id: Set(new.psa_ticket_id),
        psa_contact_id: Set(new.psa_contact_id),
        user_object_id: Set(new.user_object_id),
        user_principal_name: Set(new.user_principal_name),
        method: Set(new.method),
        status: Set(VerificationStatus::Pending),
        failure_code: Set(None),
        code_hash: Set(new.code_hash),
        attempts: Set(0),
        reason: Set(new.reason),
        used_contact_phone_fallback: Set(new.used_contact_phone_fallback),
        created_at: Set(now),
        expires_at: Set(new.expires_at),
        decided_at: Set(None),
        verified_until: Set(None),
        consumed_at: Set(None),
        waiter_instance_id: Set(new.waiter_instance_id),
        console_user_id: Set(new.console_user_id),
    }
}
