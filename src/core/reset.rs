//! Resetting a user's Microsoft 365 password, only after a fresh verification of that same
//! user for the same MSP, used once. The new password goes into a one-time secure share whose
//! link is sent by SMS to the mobile phone the user registered in Microsoft; the technician
//! sees the masked number, and the password only where the MSP's policy allows it.
//!
//! These rules are enforced here, whatever the caller (pod, API, script). An idempotency key
//! makes retries and double-clicks one reset: concurrent identical requests reach Microsoft
//! once and all get the same outcome.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use tracing::Instrument;
use uuid::Uuid;

use super::activity::ActivityObserver;
use super::directory::Directory;
use super::error::CoreError;
use super::messaging::Messenger;
use super::password::generate;
use super::share::{ShareOptions, ShareService};
use super::verification::{VerificationService, verified_now};
use crate::domain::{ErrorCode, ResetStatus};
use crate::store::Store;
use crate::store::verifications::{
    ClaimOutcome, NewReset, PasswordReset, ResetCompletion, Verification,
};
use crate::store::{
    audit::{AuditActor, NewAuditEvent},
    msp::MspAccount,
    tenants::Tenant,
};

/// How long a duplicate request waits for the first one to finish.
const DUPLICATE_WAIT: StdDuration = StdDuration::from_secs(60);

#[derive(Debug, Clone)]
pub struct ResetRequest {
    pub msp: MspAccount,
    /// The user to reset: their tenant and Microsoft object id. The verification must be of
    /// this very user.
    pub tenant_id: Uuid,
    pub user_object_id: String,
    pub verification_id: Uuid,
    pub idempotency_key: String,
    pub confirmed: bool,
    pub actor: AuditActor,
    pub technician_id: Option<Uuid>,
}

/// What the technician is told.
#[derive(Debug, Clone)]
pub struct ResetResult {
    pub reset: PasswordReset,
    /// Only when the MSP allows showing passwords to technicians, and only to the request
    /// that performed the reset.
    pub password: Option<SecretString>,
    pub share_expires_at: Option<DateTime<Utc>>,
}

#[derive(Clone)]
pub struct ResetService {
    store: Store,
    directory: Directory,
    verification_service: VerificationService,
    shares: ShareService,
    messenger: Messenger,
    observer: Option<Arc<dyn ActivityObserver>>,
}

pub struct ResetDeps {
    pub store: Store,
    pub directory: Directory,
    pub verification_service: VerificationService,
    pub shares: ShareService,
    pub messenger: Messenger,
    /// Told when a reset finishes (ticket notes).
    pub observer: Option<Arc<dyn ActivityObserver>>,
}

impl ResetService {
    pub fn new(deps: ResetDeps) -> ResetService {
        ResetService {
            store: deps.store,
            directory: deps.directory,
            verification_service: deps.verification_service,
            shares: deps.shares,
            messenger: deps.messenger,
            observer: deps.observer,
        }
    }

    #[tracing::instrument(skip_all, fields(
        msp_id = %request.msp.id,
        tenant_id = %request.tenant_id,
        verification_id = %request.verification_id,
        reset_id = tracing::field::Empty,
    ))]
    pub async fn reset(&self, request: ResetRequest) -> Result<ResetResult, CoreError> {
        if !request.confirmed {
            return Err(CoreError::ConfirmationRequired);
        }
        let key = request.idempotency_key.trim();
        if !(8..=128).contains(&key.len())
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        {
            return Err(CoreError::InvalidInput {
                field: "Idempotency-Key",
                problem: "must be 8 to 128 letters, digits or - _ . : (a UUID is ideal)".into(),
            });
        }
        let verification = match self.store.get_verification(request.verification_id).await? {
            Some(v) if v.msp_id == request.msp.id => v,
            _ => return Err(CoreError::VerificationNotFound),
        };
        if verification.tenant_id != request.tenant_id
            || verification.user_object_id != request.user_object_id
        {
            self.audit_reset(
                &request,
                &verification,
                "refused",
                None,
                Some(ErrorCode::VerificationForOtherUser),
                None,
            )
            .await;
            return Err(CoreError::VerificationForOtherUser);
        }
        let tenant = self
            .store
            .get_tenant(verification.tenant_id)
            .await?
            .ok_or(CoreError::TenantNotFound)?;

        let result = self
            .reset_verified(&request, key, &verification, &tenant)
            .await;
        match &result {
            Ok(done) => {
                tracing::Span::current().record("reset_id", tracing::field::display(done.reset.id));
                tracing::info!(status = %done.reset.status, "password reset finished");
            }
            Err(err) => {
                tracing::info!(code = err.code().as_str(), "password reset refused");
                self.audit_reset(
                    &request,
                    &verification,
                    "refused",
                    err.upstream_request_id(),
                    Some(err.code()),
                    None,
                )
                .await;
            }
        }
        result
    }

    async fn reset_verified(
        &self,
        request: &ResetRequest,
        key: &str,
        verification: &Verification,
        tenant: &Tenant,
    ) -> Result<ResetResult, CoreError> {
        // A retry of a reset that already happened gets its outcome, whatever the state of
        // the verification now.
        if verification.consumed_at.is_some() {
            return self.existing_or_used(request, key, verification).await;
        }
        verified_now(verification, Utc::now()).map_err(|why| CoreError::NotVerified { why })?;

        // Refusals that do not depend on Microsoft accepting the change come first, so that
        // they leave the verification unspent.
        let graph = self.directory.graph_credentials(tenant).await?;
        let microsoft = self.directory.microsoft();
        let user = microsoft
            .check_resettable(
                &graph,
                &verification.user_object_id,
                request.msp.policy.allow_admin_reset,
            )
            .await?
            .ok_or_else(|| CoreError::UserNotFound {
                searched: verification.user_principal_name.clone(),
            })?;
        let directory_user = user.user().clone().into();
        // The link must reach the user themselves: only the mobile registered in Microsoft.
        let (phone, _) = self
            .verification_service
            .mobile_for(&request.msp, tenant, &directory_user, None)
            .await?;

        let reset = match self
            .store
            .claim_reset(NewReset {
                msp_id: request.msp.id,
                verification_id: verification.id,
                tenant_id: tenant.id,
                user_object_id: verification.user_object_id.clone(),
                technician_id: request.technician_id,
                idempotency_key: key.to_owned(),
            })
            .await?
        {
            ClaimOutcome::Claimed(reset) => reset,
            ClaimOutcome::Existing(existing) => {
                return self.wait_for(existing, verification.id).await;
            }
            ClaimOutcome::VerificationSpent => return Err(CoreError::VerificationUsed),
        };
        if !self.store.spend_verification(verification.id).await? {
            self.store
                .complete_reset(reset.id, failed(ErrorCode::VerificationUsed))
                .await?;
            return Err(CoreError::VerificationUsed);
        }

        let policy = &request.msp.policy;
        let password = generate(policy.password_style, policy.password_length);
        let upstream_request_id = match microsoft
            .reset_password_checked(
                &graph,
                &user,
                &password,
                policy.force_change_at_next_sign_in,
            )
            .await
        {
            Ok(id) => id,
            Err(err) => {
                self.store
                    .complete_reset(reset.id, failed(err.code()))
                    .await?;
                return Err(err.into());
            }
        };

        let share = self
            .shares
            .create(
                request.msp.id,
                password.clone(),
                ShareOptions::default(),
                request.technician_id,
                &request.actor,
            )
            .await;
        let (status, failure_code, share_id, share_expires_at) = match share {
            Ok(share) => {
                let body = SecretString::from(format!(
                    "{msp}: your password was reset, as you asked on the phone. Open this link to see the new one (it works once, for 24 hours): {url}",
                    msp = request.msp.name,
                    url = secrecy::ExposeSecret::expose_secret(&share.url),
                ));
                match self.messenger.send_sms(request.msp.id, &phone, body).await {
                    Ok(_) => (
                        ResetStatus::Completed,
                        None,
                        Some(share.id),
                        Some(share.expires_at),
                    ),
                    Err(err) => (
                        ResetStatus::CompletedSmsFailed,
                        Some(err.code()),
                        Some(share.id),
                        Some(share.expires_at),
                    ),
                }
            }
            Err(err) => (
                ResetStatus::CompletedSmsFailed,
                Some(err.code()),
                None,
                None,
            ),
        };
        let completed = self
            .store
            .complete_reset(
                reset.id,
                ResetCompletion {
                    status,
                    failure_code,
                    share_id,
                    sent_to_masked: Some(phone.masked()),
                    upstream_request_id: upstream_request_id.clone(),
                },
            )
            .await?;
        self.audit_reset(
            request,
            verification,
            status.as_str(),
            upstream_request_id,
            failure_code,
            Some(&completed),
        )
        .await;
        if let Some(observer) = self.observer.clone() {
            let (reset, verification) = (completed.clone(), verification.clone());
            tokio::spawn(
                async move { observer.reset_finished(&reset, &verification).await }
                    .in_current_span(),
            );
        }
        Ok(ResetResult {
            reset: completed,
            password: policy.show_password_to_technician.then_some(password),
            share_expires_at,
        })
    }

    async fn existing_or_used(
        &self,
        request: &ResetRequest,
        key: &str,
        verification: &Verification,
    ) -> Result<ResetResult, CoreError> {
        match self
            .store
            .claim_reset(NewReset {
                msp_id: request.msp.id,
                verification_id: verification.id,
                tenant_id: verification.tenant_id,
                user_object_id: verification.user_object_id.clone(),
                technician_id: request.technician_id,
                idempotency_key: key.to_owned(),
            })
            .await?
        {
            ClaimOutcome::Existing(existing) => self.wait_for(existing, verification.id).await,
            // Cannot be claimed: the verification's reset row exists under another key.
            ClaimOutcome::VerificationSpent | ClaimOutcome::Claimed(_) => {
                Err(CoreError::VerificationUsed)
            }
        }
    }

    /// The outcome of the reset that owns this idempotency key, once it is known.
    async fn wait_for(
        &self,
        existing: PasswordReset,
        verification_id: Uuid,
    ) -> Result<ResetResult, CoreError> {
        if existing.verification_id != verification_id {
            return Err(CoreError::IdempotencyKeyReused);
        }
        let deadline = tokio::time::Instant::now() + DUPLICATE_WAIT;
        let mut current = existing;
        while current.status == ResetStatus::InProgress {
            if tokio::time::Instant::now() >= deadline {
                return Err(CoreError::ResetInProgress);
            }
            tokio::time::sleep(StdDuration::from_millis(100)).await;
            current = self
                .store
                .get_reset(current.id)
                .await?
                .ok_or(CoreError::ResetNotFound)?;
        }
        Ok(ResetResult {
            reset: current,
            password: None,
            share_expires_at: None,
        })
    }

    #[tracing::instrument(skip_all, fields(msp_id = %msp_id, reset_id = %id))]
    pub async fn get(&self, msp_id: Uuid, id: Uuid) -> Result<PasswordReset, CoreError> {
        match self.store.get_reset(id).await? {
            Some(reset) if reset.msp_id == msp_id => Ok(reset),
            _ => Err(CoreError::ResetNotFound),
        }
    }

    async fn audit_reset(
        &self,
        request: &ResetRequest,
        verification: &Verification,
        outcome: &str,
        upstream_request_id: Option<String>,
        code: Option<ErrorCode>,
        reset: Option<&PasswordReset>,
    ) {
        let event = NewAuditEvent {
            msp_id: request.msp.id,
            actor: request.actor.clone(),
            action: "password.reset".into(),
            subject_kind: Some("user".into()),
            subject_id: Some(verification.user_object_id.clone()),
            subject_name: Some(verification.user_principal_name.clone()),
            psa_ticket_id: verification.psa_ticket_id.clone(),
            outcome: outcome.to_owned(),
            upstream_request_id,
            details: serde_json::json!({
                "code": code,
                "verification_id": verification.id,
                "reset_id": reset.map(|r| r.id),
                "sent_to": reset.and_then(|r| r.sent_to_masked.clone()),
            }),
        };
        if let Err(err) = self.store.append(event).await {
            tracing::error!(error = %err, "audit append failed");
        }
    }
}

fn failed(code: ErrorCode) -> ResetCompletion {
    ResetCompletion {
        status: ResetStatus::Failed,
        failure_code: Some(code),
        share_id: None,
        sent_to_masked: None,
        upstream_request_id: None,
    }
}
