//! Password resets.
//!
//! The rules that must hold across several Vouch instances are enforced here, in the
//! database: one reset per idempotency key (a unique index), a verification spent by at most
//! one reset (a unique index on `spends_verification_id`, which a reset that changed nothing
//! lets go of), and one owner at a time for a reset in progress (a lease taken and renewed by
//! conditional updates, so a sweeper on any instance finishes only what nobody carries out).
//!
//! The new password and its link are sealed with the reset before the password is sent to
//! Microsoft: whatever happens next (a lost answer, a killed instance, a failed SMS), Vouch can
//! still deliver the password it set.

use chrono::{DateTime, Duration, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr,
    TransactionTrait,
};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::crypto::SealedPlace;
use super::entities::{password_reset, secure_share, verification};
use super::{Store, StoreError};
use crate::domain::{ErrorCode, PasswordReset, ResetStatus};

const TABLE: &str = "password_resets";
const PASSWORD_COLUMN: &str = "password_sealed";
const LINK_COLUMN: &str = "link_sealed";

impl From<password_reset::Model> for PasswordReset {
    fn from(m: password_reset::Model) -> Self {
        PasswordReset {
            id: m.id,
            msp_id: m.msp_id,
            verification_id: m.verification_id,
            tenant_id: m.tenant_id,
            user_object_id: m.user_object_id,
            technician_id: m.technician_id,
            idempotency_key: m.idempotency_key,
            status: m.status,
            failure_code: m.failure_code,
            share_id: m.share_id,
            sent_to_masked: m.sent_to_masked,
            upstream_request_id: m.upstream_request_id,
            created_at: m.created_at,
            completed_at: m.completed_at,
            patch_attempts: m.patch_attempts,
            resends: m.resends,
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewReset {
    pub msp_id: Uuid,
    pub verification_id: Uuid,
    pub tenant_id: Uuid,
    pub user_object_id: String,
    pub technician_id: Option<Uuid>,
    pub idempotency_key: String,
    /// How long the claimer owns the reset before it must renew its lease.
    pub lease: Duration,
}

#[derive(Debug, Clone)]
pub enum ClaimOutcome {
    /// This caller owns the reset and must carry it out.
    Claimed(PasswordReset),
    /// A reset with this idempotency key exists (maybe still running): its state.
    Existing(PasswordReset),
    /// The verification was already spent by another reset.
    VerificationSpent,
}

/// How a reset ended.
#[derive(Debug, Clone)]
pub struct ResetCompletion {
    pub status: ResetStatus,
    pub failure_code: Option<ErrorCode>,
    pub sent_to_masked: Option<String>,
    pub upstream_request_id: Option<String>,
}

/// What a reset holds sealed.
pub struct ResetSecrets {
    /// Present until the outcome of the password change is known.
    pub password: Option<SecretString>,
    /// The secure link, present once prepared.
    pub link: Option<SecretString>,
}

impl Store {
    pub async fn claim_reset(&self, new: NewReset) -> Result<ClaimOutcome, StoreError> {
        // Look first, so that a retry or a spent verification writes nothing: an insert that
        // fails on a unique index still leaves a dead row behind on PostgreSQL.
        if let Some(outcome) = self.claim_taken(&new).await? {
            return Ok(outcome);
        }
        let now = Utc::now();
        let model = password_reset::ActiveModel {
            id: Set(Uuid::now_v7()),
            msp_id: Set(new.msp_id),
            verification_id: Set(new.verification_id),
            spends_verification_id: Set(Some(new.verification_id)),
            tenant_id: Set(new.tenant_id),
            user_object_id: Set(new.user_object_id.clone()),
            technician_id: Set(new.technician_id),
            idempotency_key: Set(new.idempotency_key.clone()),
            status: Set(ResetStatus::InProgress),
            failure_code: Set(None),
            share_id: Set(None),
            sent_to_masked: Set(None),
            upstream_request_id: Set(None),
            created_at: Set(now),
            completed_at: Set(None),
            password_sealed: Set(None),
            link_sealed: Set(None),
            patch_attempts: Set(0),
            lease_until: Set(Some(now + new.lease)),
            resends: Set(0),
        };
        match password_reset::Entity::insert(model)
            .exec_with_returning(self.connection())
            .await
        {
            Ok(reset) => Ok(ClaimOutcome::Claimed(reset.into())),
            // The unique indexes settle a race between identical requests: the losers find
            // the winner's reset (committed before their insert failed).
            Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Ok(self
                    .claim_taken(&new)
                    .await?
                    .unwrap_or(ClaimOutcome::VerificationSpent))
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Why `new` cannot be claimed, if it cannot: a reset with its idempotency key exists
    /// (the key comes first, so that a retry gets its outcome), or its verification was spent
    /// by a reset under another key.
    pub async fn claim_taken(&self, new: &NewReset) -> Result<Option<ClaimOutcome>, StoreError> {
        // One statement reads both facts: with two reads, a concurrent identical request
        // could insert between them, and this one would see "verification spent" instead
        // of its own key's reset.
        let taken = password_reset::Entity::find()
            .filter(
                Condition::any()
                    .add(
                        Condition::all()
                            .add(password_reset::Column::MspId.eq(new.msp_id))
                            .add(
                                password_reset::Column::IdempotencyKey
                                    .eq(new.idempotency_key.as_str()),
                            ),
                    )
                    .add(password_reset::Column::SpendsVerificationId.eq(new.verification_id)),
            )
            .all(self.connection())
            .await?;
        if let Some(existing) = taken
            .iter()
            .find(|r| r.msp_id == new.msp_id && r.idempotency_key == new.idempotency_key)
        {
            return Ok(Some(ClaimOutcome::Existing(existing.clone().into())));
        }
        Ok((!taken.is_empty()).then_some(ClaimOutcome::VerificationSpent))
    }

    /// Seals the new password and its link with the reset, before the password goes to
    /// Microsoft. False when the reset is no longer this caller's (swept meanwhile).
    pub async fn prepare_reset(
        &self,
        id: Uuid,
        password: &SecretString,
        share_id: Uuid,
        link: &SecretString,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let keyring = self.keyring();
        let password_sealed = keyring.seal(
            &SealedPlace::new(TABLE, PASSWORD_COLUMN, id),
            password.expose_secret(),
        );
        let link_sealed = keyring.seal(
            &SealedPlace::new(TABLE, LINK_COLUMN, id),
            link.expose_secret(),
        );
        let result = password_reset::Entity::update_many()
            .col_expr(
                password_reset::Column::PasswordSealed,
                Expr::value(Some(password_sealed)),
            )
            .col_expr(
                password_reset::Column::LinkSealed,
                Expr::value(Some(link_sealed)),
            )
            .col_expr(password_reset::Column::ShareId, Expr::value(Some(share_id)))
            .col_expr(
                password_reset::Column::LeaseUntil,
                Expr::value(Some(lease_until)),
            )
            .filter(password_reset::Column::Id.eq(id))
            .filter(password_reset::Column::Status.eq(ResetStatus::InProgress))
            .exec(self.connection())
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Counts one attempt at the password change and renews the lease for it.
    pub async fn record_patch_attempt(
        &self,
        id: Uuid,
        lease_until: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        password_reset::Entity::update_many()
            .col_expr(
                password_reset::Column::PatchAttempts,
                Expr::col(password_reset::Column::PatchAttempts).add(1),
            )
            .col_expr(
                password_reset::Column::LeaseUntil,
                Expr::value(Some(lease_until)),
            )
            .filter(password_reset::Column::Id.eq(id))
            .exec(self.connection())
            .await?;
        Ok(())
    }

    /// The password and link sealed with the reset.
    pub async fn reset_secrets(&self, id: Uuid) -> Result<ResetSecrets, StoreError> {
        let model = password_reset::Entity::find_by_id(id)
            .one(self.connection())
            .await?
            .ok_or(StoreError::NotFound("password reset"))?;
        let keyring = self.keyring();
        let open = |column: &'static str, sealed: Option<String>| {
            sealed
                .map(|sealed| keyring.open(&SealedPlace::new(TABLE, column, id), &sealed))
                .transpose()
        };
        Ok(ResetSecrets {
            password: open(PASSWORD_COLUMN, model.password_sealed)?,
            link: open(LINK_COLUMN, model.link_sealed)?,
        })
    }

    /// Ends the reset. The password is forgotten (the share still holds it for the user);
    /// the link is kept, so that it can be sent again.
    pub async fn complete_reset(
        &self,
        id: Uuid,
        completion: ResetCompletion,
    ) -> Result<PasswordReset, StoreError> {
        password_reset::Entity::update_many()
            .col_expr(
                password_reset::Column::Status,
                Expr::value(completion.status),
            )
            .col_expr(
                password_reset::Column::FailureCode,
                Expr::value(completion.failure_code),
            )
            .col_expr(
                password_reset::Column::SentToMasked,
                Expr::value(completion.sent_to_masked),
            )
            .col_expr(
                password_reset::Column::UpstreamRequestId,
                Expr::value(completion.upstream_request_id),
            )
            .col_expr(
                password_reset::Column::CompletedAt,
                Expr::value(Some(Utc::now())),
            )
            .col_expr(
                password_reset::Column::PasswordSealed,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                password_reset::Column::LeaseUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(password_reset::Column::Id.eq(id))
            .exec(self.connection())
            .await?;
        self.get_reset(id)
            .await?
            .ok_or(StoreError::NotFound("password reset"))
    }

    /// Fails a reset that changed nothing and gives its verification back, in one
    /// transaction: the technician may try again without asking the user to verify again.
    pub async fn release_reset(
        &self,
        id: Uuid,
        verification_id: Uuid,
        failure_code: ErrorCode,
    ) -> Result<PasswordReset, StoreError> {
        let txn = self.connection().begin().await?;
        password_reset::Entity::update_many()
            .col_expr(
                password_reset::Column::Status,
                Expr::value(ResetStatus::Failed),
            )
            .col_expr(
                password_reset::Column::FailureCode,
                Expr::value(Some(failure_code)),
            )
            .col_expr(
                password_reset::Column::SpendsVerificationId,
                Expr::value(Option::<Uuid>::None),
            )
            .col_expr(
                password_reset::Column::CompletedAt,
                Expr::value(Some(Utc::now())),
            )
            .col_expr(
                password_reset::Column::PasswordSealed,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                password_reset::Column::LinkSealed,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                password_reset::Column::LeaseUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(password_reset::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        verification::Entity::update_many()
            .col_expr(
                verification::Column::ConsumedAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(verification::Column::Id.eq(verification_id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        self.get_reset(id)
            .await?
            .ok_or(StoreError::NotFound("password reset"))
    }

    pub async fn get_reset(&self, id: Uuid) -> Result<Option<PasswordReset>, StoreError> {
        Ok(password_reset::Entity::find_by_id(id)
            .one(self.connection())
            .await?
            .map(Into::into))
    }

    /// Takes over one reset left in progress whose lease ran out by `now` (its instance died
    /// or lost the database), for `lease`. Of several instances sweeping at once, exactly one
    /// gets each reset: the take is one conditional update.
    pub async fn take_abandoned_reset(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Option<PasswordReset>, StoreError> {
        let abandoned = || {
            Condition::all()
                .add(password_reset::Column::Status.eq(ResetStatus::InProgress))
                .add(
                    Condition::any()
                        .add(password_reset::Column::LeaseUntil.is_null())
                        .add(password_reset::Column::LeaseUntil.lt(now)),
                )
        };
        let candidates: Vec<Uuid> = password_reset::Entity::find()
            .select_only()
            .column(password_reset::Column::Id)
            .filter(abandoned())
            .order_by_asc(password_reset::Column::CreatedAt)
            .limit(16)
            .into_tuple()
            .all(self.connection())
            .await?;
        for id in candidates {
            let taken = password_reset::Entity::update_many()
                .col_expr(
                    password_reset::Column::LeaseUntil,
                    Expr::value(Some(now + lease)),
                )
                .filter(password_reset::Column::Id.eq(id))
                .filter(abandoned())
                .exec(self.connection())
                .await?;
            if taken.rows_affected == 1 {
                return self.get_reset(id).await;
            }
        }
        Ok(None)
    }

    /// Counts one more sending of the reset's link, if fewer than `max` were made.
    pub async fn count_resend(&self, id: Uuid, max: u32) -> Result<bool, StoreError> {
        let result = password_reset::Entity::update_many()
            .col_expr(
                password_reset::Column::Resends,
                Expr::col(password_reset::Column::Resends).add(1),
            )
            .filter(password_reset::Column::Id.eq(id))
            .filter(password_reset::Column::Resends.lt(max as i32))
            .exec(self.connection())
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Records where the link went, and that a reset whose SMS failed has now been delivered.
    pub async fn record_link_sent(
        &self,
        id: Uuid,
        sent_to_masked: &str,
    ) -> Result<PasswordReset, StoreError> {
        let txn = self.connection().begin().await?;
        password_reset::Entity::update_many()
            .col_expr(
                password_reset::Column::SentToMasked,
                Expr::value(Some(sent_to_masked.to_owned())),
            )
            .filter(password_reset::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        password_reset::Entity::update_many()
            .col_expr(
                password_reset::Column::Status,
                Expr::value(ResetStatus::Completed),
            )
            .col_expr(
                password_reset::Column::FailureCode,
                Expr::value(Option::<ErrorCode>::None),
            )
            .filter(password_reset::Column::Id.eq(id))
            .filter(password_reset::Column::Status.eq(ResetStatus::CompletedSmsFailed))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        self.get_reset(id)
            .await?
            .ok_or(StoreError::NotFound("password reset"))
    }

    /// The links of the user's earlier resets that still open: nobody has opened them, and
    /// they have not expired or been withdrawn. A newer reset makes their password stale.
    pub async fn open_links_of_earlier_resets(
        &self,
        reset: &PasswordReset,
        now: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, StoreError> {
        let share_ids: Vec<Option<Uuid>> = password_reset::Entity::find()
            .select_only()
            .column(password_reset::Column::ShareId)
            .filter(password_reset::Column::TenantId.eq(reset.tenant_id))
            .filter(password_reset::Column::UserObjectId.eq(reset.user_object_id.as_str()))
            .filter(password_reset::Column::Id.ne(reset.id))
            .filter(password_reset::Column::CreatedAt.lte(reset.created_at))
            .filter(password_reset::Column::ShareId.is_not_null())
            .into_tuple()
            .all(self.connection())
            .await?;
        let share_ids: Vec<Uuid> = share_ids.into_iter().flatten().collect();
        if share_ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(secure_share::Entity::find()
            .select_only()
            .column(secure_share::Column::Id)
            .filter(secure_share::Column::Id.is_in(share_ids))
            .filter(secure_share::Column::MspId.eq(reset.msp_id))
            .filter(secure_share::Column::RevokedAt.is_null())
            .filter(secure_share::Column::ExpiresAt.gt(now))
            .filter(
                Expr::col(secure_share::Column::Views)
                    .lt(Expr::col(secure_share::Column::MaxViews)),
            )
            .into_tuple()
            .all(self.connection())
            .await?)
    }
}
