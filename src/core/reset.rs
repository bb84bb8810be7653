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

use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use tracing::Instrument;
use uuid::Uuid;

use super::activity::ActivityObserver;
use super::directory::Directory;
use super::error::CoreError;
use super::messaging::Messenger;
use super::password::generate;
use super::share::{
    DEFAULT_MAX_VIEWS, ShareOptions, SharePurpose, ShareService, ShareStatus, default_lifetime,
};
use super::texts;
use super::verification::{VerificationService, verified_now};
use crate::config::ResetConfig;
use crate::domain::{AuditOutcome, ErrorCode, PasswordReset, ResetHold, ResetStatus, Verification};
use crate::microsoft::{
    ClientCredentials, MicrosoftError, MicrosoftErrorKind, PasswordChangeError, ResettableUser,
};
use crate::sms::E164;
use crate::store::Store;
use crate::store::holds::LiftOutcome;
use crate::store::resets::{ClaimOutcome, NewReset, ResetCompletion};
use crate::store::{
    audit::{AuditActor, NewAuditEvent},
    msp::MspAccount,
    tenants::Tenant,
};

/// The audit action of a reset, of a reset finished by the sweeper, and of a resent link.
pub const ACTION_RESET: &str = "password.reset";
pub const ACTION_SWEPT: &str = "password.reset.swept";
pub const ACTION_RESENT: &str = "password.reset.resend";
/// The audit action of an admin lifting a hold on a user's resets.
pub const ACTION_HOLD_LIFTED: &str = "password.reset.hold.lift";

/// The longest reason a lift may give.
pub const MAX_LIFT_REASON_CHARS: usize = 500;

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
    settings: ResetSettings,
}

pub struct ResetDeps {
    pub store: Store,
    pub directory: Directory,
    pub verification_service: VerificationService,
    pub shares: ShareService,
    pub messenger: Messenger,
    /// Told when a reset finishes (ticket notes).
    pub observer: Option<Arc<dyn ActivityObserver>>,
    pub settings: ResetSettings,
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
            settings: deps.settings,
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
        // A push answer the database could not take yet is written first.
        self.verification_service
            .flush_held(request.verification_id)
            .await;
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
                AuditOutcome::Refused,
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
                    AuditOutcome::Refused,
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
        // A user who reported fraud is not reset until the hold ends or is lifted, however
        // fresh the verification.
        if let Some(hold) = self
            .active_hold(
                request.msp.id,
                verification.tenant_id,
                &verification.user_object_id,
            )
            .await?
        {
            return Err(CoreError::ResetHeld {
                until: hold.held_until,
                hold_id: hold.id,
            });
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
        // The link must reach the user themselves: only the mobile registered in Microsoft
        // (read with the user, in the same Graph request).
        let phone = self
            .verification_service
            .mobile_among(user.phone_methods()?)
            .ok_or(CoreError::NoMobilePhone)?;

        let reset = match self
            .store
            .claim_reset(NewReset {
                msp_id: request.msp.id,
                verification_id: verification.id,
                tenant_id: tenant.id,
                user_object_id: verification.user_object_id.clone(),
                technician_id: request.technician_id,
                idempotency_key: key.to_owned(),
                lease: self.settings.lease,
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
        // The password and its link are sealed with the reset before Microsoft sees the
        // password: whatever happens next, Vouch can still deliver what it set.
        let link = match self
            .prepare(
                &reset,
                request,
                &verification.user_principal_name,
                &password,
            )
            .await
        {
            Ok(link) => link,
            Err(err) => {
                // Nothing was sent to Microsoft: give the verification back (the sweeper does it
                // if the database is what failed).
                if let Err(release) = self
                    .store
                    .release_reset(reset.id, verification.id, err.code())
                    .await
                {
                    tracing::warn!(error = %release, "releasing an unprepared reset failed");
                }
                return Err(err);
            }
        };
        let change = self
            .change_until_known(
                &reset,
                &graph,
                ChangeTarget::Checked(&user),
                &password,
                policy.force_change_at_next_sign_in,
            )
            .await;
        let finished = self
            .finish(
                &request.msp,
                &request.actor,
                verification,
                tenant,
                &reset,
                &link,
                change,
                Some(phone),
            )
            .await?;
        Ok(ResetResult {
            password: (policy.show_password_to_technician
                && finished.reset.status != ResetStatus::Failed)
                .then_some(password),
            reset: finished.reset,
            share_expires_at: Some(link.expires_at),
        })
    }

    /// Creates the (not yet sent) secure link holding `password` and seals both with the
    /// reset.
    async fn prepare(
        &self,
        reset: &PasswordReset,
        request: &ResetRequest,
        account: &str,
        password: &SecretString,
    ) -> Result<PreparedLink, CoreError> {
        let share = self
            .shares
            .create(
                request.msp.id,
                password.clone(),
                ShareOptions {
                    expires_in: Some(default_lifetime(&request.msp.policy)),
                    ..ShareOptions::default()
                },
                request.technician_id,
                SharePurpose::PasswordReset {
                    account: account.to_owned(),
                    change_at_next_sign_in: request.msp.policy.force_change_at_next_sign_in,
                },
                &request.actor,
            )
            .await
            .map_err(CoreError::from_share)?;
        let prepared = self
            .store
            .prepare_reset(
                reset.id,
                password,
                share.id,
                &share.url,
                Utc::now() + self.settings.lease,
            )
            .await?;
        if !prepared {
            return Err(CoreError::ResetInProgress);
        }
        Ok(PreparedLink {
            share_id: share.id,
            url: share.url,
            expires_at: share.expires_at,
        })
    }

    /// Sends the password change until Microsoft's answer is definite, at most
    /// `resets.patch_attempts` times. Repeating is safe: it is the same body, with the same
    /// password. `first_answer_lost` says an earlier sending (by a stopped instance) may have
    /// been applied already.
    async fn change_until_known(
        &self,
        reset: &PasswordReset,
        graph: &ClientCredentials,
        target: ChangeTarget<'_>,
        password: &SecretString,
        force_change: bool,
    ) -> ChangeOutcome {
        let microsoft = self.directory.microsoft();
        let mut lost: Option<MicrosoftError> = match target {
            ChangeTarget::Checked(_) => None,
            ChangeTarget::Abandoned => Some(MicrosoftError::new(MicrosoftErrorKind::TimedOut)),
        };
        for attempt in 1..=self.settings.patch_attempts {
            if attempt > 1 {
                tokio::time::sleep(self.settings.backoff(attempt - 1)).await;
            }
            // The lease is renewed before each sending, so no sweeper takes a reset that is
            // being carried out.
            if let Err(err) = self
                .store
                .record_patch_attempt(reset.id, Utc::now() + self.settings.lease)
                .await
            {
                tracing::warn!(error = %err, "recording a password change attempt failed");
            }
            let answer = match target {
                ChangeTarget::Checked(user) if lost.is_none() => {
                    microsoft
                        .reset_password_checked(graph, user, password, force_change)
                        .await
                }
                _ => {
                    microsoft
                        .repeat_password_change(
                            graph,
                            &reset.user_object_id,
                            password,
                            force_change,
                        )
                        .await
                }
            };
            match answer {
                Ok(request_id) => return ChangeOutcome::Applied { request_id },
                Err(err) if lost.is_some() && err.means_already_set_on_repeat() => {
                    tracing::info!(attempt, "the repeated password change is already in place");
                    return ChangeOutcome::Applied {
                        request_id: err.error().request_id.clone(),
                    };
                }
                Err(PasswordChangeError::NotApplied(err)) if lost.is_none() => {
                    return ChangeOutcome::NotApplied(err);
                }
                // After a lost answer, a refusal of the repeat says nothing of the first.
                Err(PasswordChangeError::NotApplied(err) | PasswordChangeError::Unknown(err)) => {
                    tracing::warn!(
                        attempt,
                        code = err.code().as_str(),
                        "password change answer lost or unclear"
                    );
                    lost = Some(err);
                }
            }
        }
        ChangeOutcome::Unknown(
            lost.unwrap_or_else(|| MicrosoftError::new(MicrosoftErrorKind::TimedOut)),
        )
    }

    /// Ends a reset once the change's outcome is known (or known to be unknown): a change
    /// that was not applied gives the verification back; an applied one revokes the user's
    /// older links and texts the new one to `phone` (looked up when `None`); an unknown one
    /// sends nothing and says so. Audited, and told to the observer (ticket notes).
    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        msp: &MspAccount,
        actor: &AuditActor,
        verification: &Verification,
        tenant: &Tenant,
        reset: &PasswordReset,
        link: &PreparedLink,
        change: ChangeOutcome,
        phone: Option<E164>,
    ) -> Result<Finished, CoreError> {
        let (completion, upstream_request_id) = match change {
            ChangeOutcome::NotApplied(err) => {
                self.store
                    .release_reset(reset.id, verification.id, err.code())
                    .await?;
                self.withdraw_link(msp.id, link.share_id, actor).await;
                return Err(err.into());
            }
            ChangeOutcome::Unknown(err) => (
                ResetCompletion {
                    status: ResetStatus::OutcomeUnknown,
                    failure_code: Some(err.code()),
                    sent_to_masked: None,
                    upstream_request_id: err.request_id.clone(),
                },
                err.request_id,
            ),
            ChangeOutcome::Applied { request_id } => {
                self.revoke_older_links(reset, actor).await;
                let sent = match phone {
                    Some(phone) => Ok(phone),
                    None => self
                        .verification_service
                        .registered_mobile(tenant, &reset.user_object_id)
                        .await
                        .and_then(|phone| phone.ok_or(CoreError::NoMobilePhone)),
                };
                let sent = match sent {
                    Ok(phone) => self
                        .send_link(
                            msp,
                            &phone,
                            &verification.user_principal_name,
                            &link.url,
                            link.expires_at,
                        )
                        .await
                        .map(|()| phone.masked()),
                    Err(err) => Err(err),
                };
                let completion = match sent {
                    Ok(masked) => ResetCompletion {
                        status: ResetStatus::Completed,
                        failure_code: None,
                        sent_to_masked: Some(masked),
                        upstream_request_id: request_id.clone(),
                    },
                    Err(err) => ResetCompletion {
                        status: ResetStatus::CompletedSmsFailed,
                        failure_code: Some(err.code()),
                        sent_to_masked: None,
                        upstream_request_id: request_id.clone(),
                    },
                };
                (completion, request_id)
            }
        };
        let failure_code = completion.failure_code;
        let completed = self.store.complete_reset(reset.id, completion).await?;
        self.audit(
            msp.id,
            actor,
            verification,
            ACTION_RESET,
            completed.status.into(),
            upstream_request_id,
            failure_code,
            Some(&completed),
        )
        .await;
        self.tell_observer(&completed, verification);
        Ok(Finished { reset: completed })
    }

    /// Texts the reset link of `account` to the user (a reset's link has the default views).
    async fn send_link(
        &self,
        msp: &MspAccount,
        phone: &E164,
        account: &str,
        url: &SecretString,
        expires_at: DateTime<Utc>,
    ) -> Result<(), CoreError> {
        let body = SecretString::from(texts::password_link(
            &texts::Sender::of(msp),
            account,
            url.expose_secret(),
            DEFAULT_MAX_VIEWS,
            expires_at - Utc::now(),
        ));
        self.messenger.send_sms(msp.id, phone, body).await?;
        Ok(())
    }

    /// A newer password makes the older links of the same user show a stale one: withdraw
    /// those nobody has opened yet.
    async fn revoke_older_links(&self, reset: &PasswordReset, actor: &AuditActor) {
        match self
            .store
            .open_links_of_earlier_resets(reset, Utc::now())
            .await
        {
            Ok(shares) => {
                for share_id in shares {
                    self.withdraw_link(reset.msp_id, share_id, actor).await;
                }
            }
            Err(err) => tracing::warn!(error = %err, "finding older reset links failed"),
        }
    }

    async fn withdraw_link(&self, msp_id: Uuid, share_id: Uuid, actor: &AuditActor) {
        if let Err(err) = self.shares.revoke(msp_id, share_id, actor).await {
            tracing::warn!(%share_id, error = %err, "withdrawing a reset link failed");
        }
    }

    fn tell_observer(&self, reset: &PasswordReset, verification: &Verification) {
        if let Some(observer) = self.observer.clone() {
            let (reset, verification) = (reset.clone(), verification.clone());
            tokio::spawn(
                async move { observer.reset_finished(&reset, &verification).await }
                    .in_current_span(),
            );
        }
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
                lease: self.settings.lease,
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

    /// Finishes or fails every reset left in progress whose lease ran out by `now`: its
    /// instance was killed, or lost the database, during the reset. Safe on several
    /// instances at once (each reset is taken by one). A reset whose password was never
    /// sealed never reached Microsoft: it fails and gives its verification back. Otherwise
    /// the same password change is sent again until the outcome is known, then the reset
    /// ends as any other would (link sent, or `outcome_unknown`). Each is audited.
    #[tracing::instrument(skip_all)]
    pub async fn sweep_abandoned(&self, now: DateTime<Utc>) -> Result<usize, CoreError> {
        let mut swept = 0;
        while let Some(reset) = self
            .store
            .take_abandoned_reset(now, self.settings.lease)
            .await?
        {
            swept += 1;
            let id = reset.id;
            if let Err(err) = self.finish_abandoned(reset).await {
                // Its lease runs out again, and a later sweep tries again.
                tracing::warn!(reset_id = %id, code = err.code().as_str(), "finishing an abandoned reset failed");
            }
        }
        Ok(swept)
    }

    #[tracing::instrument(skip_all, fields(reset_id = %reset.id))]
    async fn finish_abandoned(&self, reset: PasswordReset) -> Result<(), CoreError> {
        let verification = self
            .store
            .get_verification(reset.verification_id)
            .await?
            .ok_or(CoreError::VerificationNotFound)?;
        let msp = self
            .store
            .get_msp(reset.msp_id)
            .await?
            .ok_or(CoreError::ResetNotFound)?;
        let actor = AuditActor {
            kind: crate::domain::ActorKind::System,
            id: None,
            name: Some("reset sweeper".into()),
        };
        let secrets = self.store.reset_secrets(reset.id).await?;
        let (Some(password), Some(link_url), Some(share_id)) =
            (secrets.password, secrets.link, reset.share_id)
        else {
            // Nothing was sealed, so nothing was sent to Microsoft.
            let released = self
                .store
                .release_reset(reset.id, verification.id, ErrorCode::ResetInterrupted)
                .await?;
            tracing::info!("abandoned reset had not reached Microsoft; failed and released");
            self.audit(
                msp.id,
                &actor,
                &verification,
                ACTION_SWEPT,
                released.status.into(),
                None,
                Some(ErrorCode::ResetInterrupted),
                Some(&released),
            )
            .await;
            self.tell_observer(&released, &verification);
            return Ok(());
        };
        let share = self
            .store
            .get_share(msp.id, share_id)
            .await?
            .ok_or(CoreError::ResetNotFound)?;
        let link = PreparedLink {
            share_id,
            url: link_url,
            expires_at: share.expires_at,
        };
        let tenant = self
            .store
            .get_tenant(reset.tenant_id)
            .await?
            .ok_or(CoreError::TenantNotFound)?;
        let change = match self.directory.graph_credentials(&tenant).await {
            Ok(graph) => {
                self.change_until_known(
                    &reset,
                    &graph,
                    ChangeTarget::Abandoned,
                    &password,
                    msp.policy.force_change_at_next_sign_in,
                )
                .await
            }
            Err(CoreError::Microsoft(err)) => ChangeOutcome::Unknown(err),
            Err(err) => return Err(err),
        };
        let finished = self
            .finish(
                &msp,
                &actor,
                &verification,
                &tenant,
                &reset,
                &link,
                change,
                None,
            )
            .await?;
        tracing::info!(status = %finished.reset.status, "abandoned reset finished");
        self.audit(
            msp.id,
            &actor,
            &verification,
            ACTION_SWEPT,
            finished.reset.status.into(),
            finished.reset.upstream_request_id.clone(),
            finished.reset.failure_code,
            Some(&finished.reset),
        )
        .await;
        Ok(())
    }

    /// Sends the reset's link again, to the mobile registered in Microsoft only, while the
    /// link still opens: after an SMS that failed, or when the outcome of the change is
    /// unknown and the technician chooses to send it anyway (which also withdraws the user's
    /// older links). Audited, and noted on the ticket.
    #[tracing::instrument(skip_all, fields(msp_id = %msp.id, reset_id = %id))]
    pub async fn resend(
        &self,
        msp: &MspAccount,
        id: Uuid,
        actor: &AuditActor,
    ) -> Result<PasswordReset, CoreError> {
        let reset = self.get(msp.id, id).await?;
        let verification = self
            .store
            .get_verification(reset.verification_id)
            .await?
            .ok_or(CoreError::VerificationNotFound)?;
        let result = self
            .resend_checked(msp, &reset, &verification.user_principal_name, actor)
            .await;
        let (outcome, code, audited) = match &result {
            Ok(sent) => (AuditOutcome::Success, None, sent),
            Err(err) => (AuditOutcome::Refused, Some(err.code()), &reset),
        };
        self.audit(
            msp.id,
            actor,
            &verification,
            ACTION_RESENT,
            outcome,
            None,
            code,
            Some(audited),
        )
        .await;
        if let Ok(sent) = &result
            && let Some(observer) = self.observer.clone()
        {
            let (reset, verification) = (sent.clone(), verification.clone());
            tokio::spawn(
                async move { observer.reset_link_resent(&reset, &verification).await }
                    .in_current_span(),
            );
        }
        result
    }

    async fn resend_checked(
        &self,
        msp: &MspAccount,
        reset: &PasswordReset,
        account: &str,
        actor: &AuditActor,
    ) -> Result<PasswordReset, CoreError> {
        let not_allowed = |code: ErrorCode, why: &str| CoreError::ResendNotAllowed {
            code,
            why: why.to_owned(),
        };
        match reset.status {
            ResetStatus::Completed
            | ResetStatus::CompletedSmsFailed
            | ResetStatus::OutcomeUnknown => {}
            ResetStatus::InProgress => return Err(CoreError::ResetInProgress),
            ResetStatus::Failed => {
                return Err(not_allowed(
                    ErrorCode::ResendNotAllowed,
                    "This reset did not change the password, so there is no link to send. Start a new reset.",
                ));
            }
        }
        let link = self.store.reset_secrets(reset.id).await?.link;
        let (Some(link), Some(share_id)) = (link, reset.share_id) else {
            return Err(not_allowed(
                ErrorCode::ResendNotAllowed,
                "This reset has no secure link to send. Start a new reset.",
            ));
        };
        let share = self
            .store
            .get_share(msp.id, share_id)
            .await?
            .ok_or(CoreError::ResetNotFound)?;
        match ShareStatus::of(&share, Utc::now()) {
            ShareStatus::Active => {}
            ShareStatus::Exhausted => {
                return Err(not_allowed(
                    ErrorCode::ShareExhausted,
                    "The user has already opened this link, so it no longer works. If they still need the password, start a new reset.",
                ));
            }
            ShareStatus::Expired => {
                return Err(not_allowed(
                    ErrorCode::ShareExpired,
                    "This link has expired. Start a new reset (with a new verification).",
                ));
            }
            ShareStatus::Revoked => {
                return Err(not_allowed(
                    ErrorCode::ShareRevoked,
                    "This link was withdrawn (a newer reset of the user replaced it). Use the newer reset, or start a new one.",
                ));
            }
        }
        let tenant = self
            .store
            .get_tenant(reset.tenant_id)
            .await?
            .ok_or(CoreError::TenantNotFound)?;
        // Only the user themselves: the mobile registered in Microsoft, never a PSA number.
        let phone = self
            .verification_service
            .registered_mobile(&tenant, &reset.user_object_id)
            .await?
            .ok_or(CoreError::NoMobilePhone)?;
        if !self
            .store
            .count_resend(reset.id, self.settings.max_resends)
            .await?
        {
            return Err(not_allowed(
                ErrorCode::ResendNotAllowed,
                &format!(
                    "The link was already sent again {} times, the most allowed. Start a new reset if the user still has not received it.",
                    self.settings.max_resends
                ),
            ));
        }
        if reset.status == ResetStatus::OutcomeUnknown {
            self.revoke_older_links(reset, actor).await;
        }
        self.send_link(msp, &phone, account, &link, share.expires_at)
            .await?;
        let sent = self
            .store
            .record_link_sent(reset.id, &phone.masked())
            .await?;
        tracing::info!(status = %sent.status, "reset link sent again");
        Ok(sent)
    }

    /// The hold on this user's resets that lasts longest, if one is active now (a fraud
    /// report, not lifted, not over).
    pub async fn active_hold(
        &self,
        msp_id: Uuid,
        tenant_id: Uuid,
        user_object_id: &str,
    ) -> Result<Option<ResetHold>, CoreError> {
        Ok(self
            .store
            .active_hold(msp_id, tenant_id, user_object_id, Utc::now())
            .await?)
    }

    /// The MSP's active holds, newest first; with `user`, only those of the user with that
    /// Microsoft object id or sign-in name (case-insensitive).
    pub async fn active_holds(
        &self,
        msp_id: Uuid,
        user: Option<&str>,
    ) -> Result<Vec<ResetHold>, CoreError> {
        let holds = self.store.active_holds(msp_id, Utc::now()).await?;
        let user = user.map(str::trim).filter(|u| !u.is_empty());
        Ok(match user {
            None => holds,
            Some(user) => holds
                .into_iter()
                .filter(|h| {
                    h.user_object_id == user || h.user_principal_name.eq_ignore_ascii_case(user)
                })
                .collect(),
        })
    }

    /// Lifts an active hold (an MSP admin, after checking with the user), with a reason;
    /// audited as a security event. A hold already lifted or over is refused with
    /// `reset_hold_not_active` and left unchanged, so a repeated lift changes nothing.
    #[tracing::instrument(skip_all, fields(msp_id = %msp_id, hold_id = %id))]
    pub async fn lift_hold(
        &self,
        msp_id: Uuid,
        id: Uuid,
        reason: &str,
        actor: &AuditActor,
    ) -> Result<ResetHold, CoreError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(CoreError::InvalidInput {
                field: "reason",
                problem: "is required: say why the hold may be lifted (e.g. \"user confirmed by phone that they pressed it by mistake\")".into(),
            });
        }
        if reason.chars().count() > MAX_LIFT_REASON_CHARS {
            return Err(CoreError::InvalidInput {
                field: "reason",
                problem: format!("is longer than {MAX_LIFT_REASON_CHARS} characters"),
            });
        }
        let hold = self
            .store
            .get_hold(msp_id, id)
            .await?
            .ok_or(CoreError::ResetHoldNotFound)?;
        if !hold.is_active(Utc::now()) {
            return Err(CoreError::ResetHoldNotActive {
                lifted_at: hold.lifted_at,
                held_until: hold.held_until,
            });
        }
        let kind = sea_orm::ActiveEnum::to_value(&actor.kind);
        let lifted_by = match (&actor.id, &actor.name) {
            (Some(id), Some(name)) => format!("{kind} {id} ({name})"),
            (Some(id), None) => format!("{kind} {id}"),
            (None, Some(name)) => format!("{kind} ({name})"),
            (None, None) => kind,
        };
        match self
            .store
            .lift_hold(
                msp_id,
                id,
                lifted_by,
                reason.to_owned(),
                lift_event(msp_id, actor, &hold, reason),
            )
            .await?
        {
            LiftOutcome::Lifted(hold) => {
                tracing::info!("reset hold lifted");
                Ok(hold)
            }
            LiftOutcome::NotFound => Err(CoreError::ResetHoldNotFound),
            // Lifted (or over) between the read and the write.
            LiftOutcome::NotActive(hold) => Err(CoreError::ResetHoldNotActive {
                lifted_at: hold.lifted_at,
                held_until: hold.held_until,
            }),
        }
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
        outcome: AuditOutcome,
        upstream_request_id: Option<String>,
        code: Option<ErrorCode>,
        reset: Option<&PasswordReset>,
    ) {
        self.audit(
            request.msp.id,
            &request.actor,
            verification,
            ACTION_RESET,
            outcome,
            upstream_request_id,
            code,
            reset,
        )
        .await;
    }

    #[allow(clippy::too_many_arguments)]
    async fn audit(
        &self,
        msp_id: Uuid,
        actor: &AuditActor,
        verification: &Verification,
        action: &str,
        outcome: AuditOutcome,
        upstream_request_id: Option<String>,
        code: Option<ErrorCode>,
        reset: Option<&PasswordReset>,
    ) {
        let event = NewAuditEvent {
            msp_id,
            actor: actor.clone(),
            action: action.to_owned(),
            subject_kind: Some("user".into()),
            subject_id: Some(verification.user_object_id.clone()),
            subject_name: Some(verification.user_principal_name.clone()),
            psa_ticket_id: verification.psa_ticket_id.clone(),
            outcome,
            upstream_request_id,
            details: serde_json::json!({
                "code": code,
                "verification_id": verification.id,
                "reset_id": reset.map(|r| r.id),
                "sent_to": reset.and_then(|r| r.sent_to_masked.clone()),
                "attempts": reset.map(|r| r.patch_attempts),
            }),
        };
        if let Err(err) = self.store.append(event).await {
            tracing::error!(error = %err, "audit append failed");
        }
    }
}

/// The audit entry of lifting hold `id` (a security event).
fn lift_event(msp_id: Uuid, actor: &AuditActor, hold: &ResetHold, reason: &str) -> NewAuditEvent {
    NewAuditEvent {
        msp_id,
        actor: actor.clone(),
        action: ACTION_HOLD_LIFTED.to_owned(),
        subject_kind: Some("user".into()),
        subject_id: Some(hold.user_object_id.clone()),
        subject_name: Some(hold.user_principal_name.clone()),
        psa_ticket_id: None,
        outcome: AuditOutcome::Lifted,
        upstream_request_id: None,
        details: serde_json::json!({
            "hold_id": hold.id,
            "verification_id": hold.verification_id,
            "held_until": hold.held_until,
            "reason": reason,
        }),
    }
}

fn failed(code: ErrorCode) -> ResetCompletion {
    ResetCompletion {
        status: ResetStatus::Failed,
        failure_code: Some(code),
        sent_to_masked: None,
        upstream_request_id: None,
    }
}

/// What the reset service is configured with (`resets.*`).
#[derive(Debug, Clone, Copy)]
pub struct ResetSettings {
    pub patch_attempts: u32,
    pub patch_retry_base: StdDuration,
    pub lease: Duration,
    pub max_resends: u32,
}

impl ResetSettings {
    pub fn from_config(config: &ResetConfig) -> ResetSettings {
        ResetSettings {
            patch_attempts: config.patch_attempts.max(1),
            patch_retry_base: StdDuration::from_millis(config.patch_retry_base_ms),
            lease: Duration::seconds(config.lease_seconds as i64),
            max_resends: config.max_resends,
        }
    }

    /// The wait before repeat `n` (1-based): the base doubled each time, with up to a quarter
    /// of jitter, so instances repeating at once do not stay in step.
    fn backoff(&self, n: u32) -> StdDuration {
        let base = self.patch_retry_base * 2u32.saturating_pow(n.saturating_sub(1));
        let jitter = rand::thread_rng().gen_range(0..=base.as_millis() as u64 / 4);
        base + StdDuration::from_millis(jitter)
    }
}

/// Whom a password change is for.
#[derive(Clone, Copy)]
enum ChangeTarget<'a> {
    /// A user just checked as resettable: the first sending.
    Checked(&'a ResettableUser),
    /// A reset a stopped instance left: its change may have been sent already.
    Abandoned,
}

/// Where a password change stands once Vouch stops sending it.
enum ChangeOutcome {
    Applied {
        request_id: Option<String>,
    },
    /// Definitely not made.
    NotApplied(MicrosoftError),
    /// Every answer was lost or unclear.
    Unknown(MicrosoftError),
}

/// The secure link of a reset, created before the password change and sent after it.
struct PreparedLink {
    share_id: Uuid,
    url: SecretString,
    expires_at: DateTime<Utc>,
}

struct Finished {
    reset: PasswordReset,
}
