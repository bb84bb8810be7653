//! Verifying a caller: a Microsoft Authenticator push, or a 6-digit code by SMS to the mobile
//! phone the user registered in Microsoft.
//!
//! A verification is a persisted state machine: `pending` -> `approved` | `denied` |
//! `expired` | `failed` (with a code) | `cancelled`. A push runs in the background; its state
//! is readable at once, and watchers are woken when it changes (long-poll). An approved
//! verification keeps the user "verified" for the MSP's window.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use secrecy::SecretString;
use tokio::sync::watch;
use tracing::Instrument;
use uuid::Uuid;

use super::activity::{ActivityObserver, MethodChange};
use super::directory::{Directory, DirectoryUser};
use super::error::CoreError;
use super::messaging::Messenger;
use super::texts;
use crate::domain::{
    ActorKind, AuditCategory, AuditOutcome, ErrorCode, VerificationMethod, VerificationStatus,
};
use crate::microsoft::graph::{PUSH_METHOD, PhoneMethod};
use crate::microsoft::mfa::PushOutcome;
use crate::microsoft::{MicrosoftError, MicrosoftErrorKind, Upn};
use crate::sms::E164;
use crate::store::Store;
use crate::store::crypto::{Keyring, MacPurpose};
use crate::store::holds::NewHold;
use crate::store::instances::OrphanScope;
use crate::store::verifications::{
    BeginPushError, Decision, NewVerification, PushLimits, Verification,
};
use crate::store::{
    audit::{AuditActor, NewAuditEvent},
    msp::MspAccount,
    tenants::Tenant,
};

/// SMS codes: 6 digits, 10 minutes, 5 attempts.
pub const CODE_LIFETIME_MINUTES: i64 = 10;
pub const MAX_CODE_ATTEMPTS: i32 = 5;

/// Which PSA ticket and contact a verification was started from (opaque to the core).
#[derive(Debug, Clone, Default)]
pub struct TicketContext {
    pub psa_connection_id: Option<Uuid>,
    pub ticket_id: Option<String>,
    pub contact_id: Option<String>,
    /// The contact's mobile number from the PSA, used only where the MSP's policy allows.
    pub contact_mobile: Option<String>,
}

/// Who asked.
#[derive(Debug, Clone)]
pub struct Requester {
    pub actor: AuditActor,
    /// The technician record acting: a PSA's technician, or a console user's record on the
    /// ticket's connection (Tickets). `None` for API keys and for a console user on Contacts,
    /// who acts outside any PSA.
    pub technician_id: Option<Uuid>,
    /// The console user acting, from the console's Tickets or Contacts page. Kept on the
    /// verification: on Contacts it is what binds a reset to where the verification was
    /// made, and it is whose push limit counts.
    pub console_user_id: Option<Uuid>,
}

/// The one-tap link of `token`: `{public_url}v/{token}`.
pub fn one_tap_url(public_url: &url::Url, token: &str) -> Result<url::Url, url::ParseError> {
    public_url.join(&format!("v/{token}"))
}

/// A request to verify `user` in `tenant`.
#[derive(Debug, Clone)]
pub struct StartRequest {
    pub msp: MspAccount,
    pub tenant: Tenant,
    pub user: DirectoryUser,
    pub method: VerificationMethod,
    pub context: TicketContext,
    /// False when the person verified is not the ticket's own contact.
    pub is_ticket_contact: bool,
    pub reason: Option<String>,
    pub requester: Requester,
}

/// What a technician may use for a user, and why not the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodAvailability {
    pub method: VerificationMethod,
    pub available: bool,
    /// Why not, or a note (e.g. the masked number a code would go to).
    pub detail: String,
}

/// Whether a one-tap link can still be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Open,
    Expired,
    Used,
}

#[derive(Clone)]
pub struct VerificationService {
    store: Store,
    directory: Directory,
    messenger: Messenger,
    keyring: Arc<Keyring>,
    sms_region: String,
    public_url: url::Url,
    /// How long a push may stay pending (the connector call's own timeout).
    push_lifetime: Duration,
    changes: watch::Sender<u64>,
    observer: Option<Arc<dyn ActivityObserver>>,
    /// This instance, as pending pushes name their waiter.
    instance_id: Uuid,
    /// The instances seen beating lately, and when that was read.
    live: Arc<std::sync::Mutex<Option<LiveList>>>,
    /// What was read of each user for [`VerificationService::user_checks`], by tenant and
    /// object id.
    user_checks: moka::future::Cache<(Uuid, String), Arc<UserChecks>>,
    /// Push answers the database could not take yet, by verification id (see
    /// [`HeldDecision`]).
    held: Arc<Mutex<HashMap<Uuid, HeldDecision>>>,
}

/// What Vouch can tell of a user before anything is sent, read from Microsoft at once. Each
/// read that failed holds why, so one missing permission leaves the others standing.
#[derive(Debug, Clone)]
pub struct UserChecks {
    /// Why pushes cannot be sent to this tenant at all (no Authenticator integration).
    pub push_unavailable: Option<CoreError>,
    /// Whether the user registered a Microsoft Authenticator app.
    pub authenticator_registered: Result<bool, CoreError>,
    /// The user's default sign-in method (`userPreferredMethodForSecondaryAuthentication`);
    /// `None` when not set. Read only when pushes can be sent.
    pub default_method: Result<Option<String>, CoreError>,
    /// The mobile phone the user registered in Microsoft.
    pub mobile: Result<Option<E164>, CoreError>,
    /// The user's admin roles; not read (empty) when the MSP allows resets of admins.
    pub admin_roles: Result<Vec<String>, CoreError>,
    pub synced_from_on_premises: bool,
}

impl UserChecks {
    /// Why a password reset of this user would be refused before anything changed, if it
    /// would be.
    pub fn reset_refusal(&self) -> Option<CoreError> {
        if self.synced_from_on_premises {
            return Some(CoreError::Microsoft(MicrosoftError::new(
                MicrosoftErrorKind::UserSyncedFromOnPremises,
            )));
        }
        match &self.admin_roles {
            Ok(roles) if !roles.is_empty() => Some(CoreError::Microsoft(MicrosoftError::new(
                MicrosoftErrorKind::UserHoldsAdminRole {
                    roles: roles.clone(),
                },
            ))),
            _ => None,
        }
    }

    /// Whether the push is not the user's default (so no push would prompt them), and what
    /// the default is instead; only for a user with an Authenticator registered.
    pub fn default_method_mismatch(&self) -> Option<String> {
        match (
            &self.push_unavailable,
            &self.authenticator_registered,
            &self.default_method,
        ) {
            (None, Ok(true), Ok(method)) if method.as_deref() != Some(PUSH_METHOD) => {
                Some(method.clone().unwrap_or_else(|| "not set".to_owned()))
            }
            _ => None,
        }
    }
}

/// A push's decision that the database could not take when the answer came (unreachable):
/// kept in memory and written as soon as the database is back, by a background task with
/// backoff and by the next read of the verification. Until then reads answer from it, and
/// the verification is not expired (expired means: past its deadline *and* no decision
/// held). Held only by the instance that waited on the push, so it is lost if that instance
/// stops before the database is back.
struct HeldDecision {
    decision: Decision,
    /// The verification as it reads with the decision applied.
    view: Verification,
    /// The entry to append instead, should the verification have ended otherwise meanwhile.
    late_answer: Option<NewAuditEvent>,
    /// A write of it is under way (one at a time).
    writing: bool,
}

/// At most this many decisions are held at once; one more is logged as lost.
const MAX_HELD_DECISIONS: usize = 10_000;
/// The first wait before writing a held decision again, doubled after each failure.
const HELD_RETRY_FIRST: StdDuration = StdDuration::from_millis(100);
/// The longest wait between two writes of a held decision.
const HELD_RETRY_MAX: StdDuration = StdDuration::from_secs(10);

/// The instances seen alive, and when they were read.
type LiveList = (tokio::time::Instant, Vec<Uuid>);

/// How often each instance beats its heartbeat.
pub const HEARTBEAT_EVERY: StdDuration = StdDuration::from_secs(10);
/// An instance silent this long has stopped: the pushes it waited on are interrupted.
const STOPPED_AFTER: Duration = Duration::seconds(35);
/// How long the list of live instances is reused (status reads poll every second).
const LIVE_LIST_REUSED_FOR: StdDuration = StdDuration::from_secs(2);

impl VerificationService {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        directory: Directory,
        messenger: Messenger,
        keyring: Arc<Keyring>,
        sms_region: String,
        public_url: url::Url,
        push_lifetime: StdDuration,
    ) -> VerificationService {
        VerificationService {
            store,
            directory,
            messenger,
            keyring,
            sms_region,
            public_url,
            push_lifetime: Duration::from_std(push_lifetime).unwrap_or(Duration::minutes(2)),
            changes: watch::channel(0).0,
            observer: None,
            instance_id: Uuid::now_v7(),
            live: Arc::default(),
            user_checks: crate::config::Config::default().cache.user_checks.build(),
            held: Arc::default(),
        }
    }

    /// Keeps [`UserChecks`] within `limits` (`cache.user_checks`).
    pub fn with_user_checks_cache(
        mut self,
        limits: crate::config::CacheLimits,
    ) -> VerificationService {
        self.user_checks = limits.build();
        self
    }

    /// What Vouch can tell of `user` before anything is sent (see [`UserChecks`]): the reads
    /// run at the same time, and their answers are kept for `cache.user_checks`.
    #[tracing::instrument(skip_all, fields(tenant_id = %tenant.id))]
    pub async fn user_checks(
        &self,
        msp: &MspAccount,
        tenant: &Tenant,
        user: &DirectoryUser,
    ) -> Arc<UserChecks> {
        let key = (tenant.id, user.object_id.clone());
        if let Some(checks) = self.user_checks.get(&key).await {
            return checks;
        }
        let checks = Arc::new(self.read_user_checks(msp, tenant, user).await);
        // A read that failed for a passing reason is asked again on the next load.
        let transient = |r: Option<&CoreError>| r.is_some_and(CoreError::is_transient);
        if !transient(checks.authenticator_registered.as_ref().err())
            && !transient(checks.default_method.as_ref().err())
            && !transient(checks.mobile.as_ref().err())
            && !transient(checks.admin_roles.as_ref().err())
        {
            self.user_checks.insert(key, checks.clone()).await;
        }
        checks
    }

    async fn read_user_checks(
        &self,
        msp: &MspAccount,
        tenant: &Tenant,
        user: &DirectoryUser,
    ) -> UserChecks {
        let synced_from_on_premises = user.synced_from_on_premises;
        let graph = match self.directory.graph_credentials(tenant).await {
            Ok(graph) => graph,
            Err(err) => {
                return UserChecks {
                    push_unavailable: Some(err.clone()),
                    authenticator_registered: Err(err.clone()),
                    default_method: Err(err.clone()),
                    mobile: Err(err.clone()),
                    admin_roles: Err(err),
                    synced_from_on_premises,
                };
            }
        };
        let push = self.directory.push_credentials(tenant).await;
        let microsoft = self.directory.microsoft();
        let id = user.object_id.as_str();
        let authenticators = async {
            microsoft
                .graph
                .authenticator_methods(&graph, id)
                .await
                .map(|methods| !methods.is_empty())
                .map_err(CoreError::from)
        };
        let default_method = async {
            match &push {
                Ok(push) => microsoft
                    .graph
                    .sign_in_preferences(&push.graph, id)
                    .await
                    .map(|p| p.user_preferred_method_for_secondary_authentication)
                    .map_err(CoreError::from),
                Err(err) => Err(err.clone()),
            }
        };
        let mobile = async {
            microsoft
                .graph
                .phone_methods(&graph, id)
                .await
                .map(|phones| {
                    phones
                        .iter()
                        .filter(|p| p.phone_type == "mobile")
                        .find_map(|p| E164::parse(&p.phone_number, &self.sms_region).ok())
                })
                .map_err(CoreError::from)
        };
        let roles = async {
            if msp.policy.allow_admin_reset {
                return Ok(Vec::new());
            }
            microsoft
                .graph
                .directory_roles(&graph, id)
                .await
                .map(|roles| {
                    roles
                        .into_iter()
                        .map(|r| r.display_name.unwrap_or(r.id))
                        .collect()
                })
                .map_err(CoreError::from)
        };
        let (authenticator_registered, default_method, mobile, admin_roles) =
            futures_util::future::join4(authenticators, default_method, mobile, roles).await;
        UserChecks {
            push_unavailable: push.err(),
            authenticator_registered,
            default_method,
            mobile,
            admin_roles,
            synced_from_on_premises,
        }
    }

    /// Forgets what [`VerificationService::user_checks`] read of a user (it just changed).
    async fn forget_user_checks(&self, tenant_id: Uuid, user_object_id: &str) {
        self.user_checks
            .invalidate(&(tenant_id, user_object_id.to_owned()))
            .await;
    }

    /// This instance's id, as its heartbeat and its pending pushes carry it.
    pub fn instance_id(&self) -> Uuid {
        self.instance_id
    }

    /// Beats this instance's heartbeat.
    pub async fn beat(&self) -> Result<(), CoreError> {
        Ok(self.store.beat_heartbeat(self.instance_id).await?)
    }

    /// The instances alive now: this one, and those that beat lately. `fresh` reads them
    /// from the database; otherwise a list read in the last seconds may do (an instance
    /// started since may be missing from it, so it never decides that one is gone).
    async fn live_instances(&self, fresh: bool) -> Result<Vec<Uuid>, CoreError> {
        let now = tokio::time::Instant::now();
        if !fresh
            && let Some((read_at, live)) =
                self.live.lock().unwrap_or_else(|p| p.into_inner()).as_ref()
            && now.duration_since(*read_at) < LIVE_LIST_REUSED_FOR
        {
            return Ok(live.clone());
        }
        let mut live = self
            .store
            .live_instances(Utc::now() - STOPPED_AFTER)
            .await?;
        if !live.contains(&self.instance_id) {
            live.push(self.instance_id);
        }
        *self.live.lock().unwrap_or_else(|p| p.into_inner()) = Some((now, live.clone()));
        Ok(live)
    }

    /// Interrupts the pending pushes in `scope` that no live instance waits on (a crash or a
    /// restart ended their wait), each with its audit entry in the same transaction.
    #[tracing::instrument(skip_all)]
    pub async fn interrupt_orphaned(&self, scope: OrphanScope<'_>) -> Result<usize, CoreError> {
        let live = self.live_instances(true).await?;
        let interrupted = self
            .store
            .interrupt_orphaned_pushes(&live, scope, |verification| {
                plain_audit_event(
                    verification,
                    system_actor(),
                    "verification.push.interrupted",
                    VerificationStatus::Interrupted.into(),
                )
            })
            .await?;
        if !interrupted.is_empty() {
            tracing::info!(
                count = interrupted.len(),
                "pending pushes interrupted: their instance stopped"
            );
            self.changes.send_modify(|n| *n += 1);
        }
        let count = interrupted.len();
        if let Some(observer) = &self.observer {
            for verification in interrupted {
                let observer = observer.clone();
                tokio::spawn(
                    async move { observer.verification_decided(&verification).await }
                        .in_current_span(),
                );
            }
        }
        Ok(count)
    }

    /// Tells `observer` about every decision (ticket notes, say).
    pub fn with_observer(mut self, observer: Arc<dyn ActivityObserver>) -> VerificationService {
        self.observer = Some(observer);
        self
    }

    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// Which methods can reach this user, and why the others cannot.
    #[tracing::instrument(skip_all, fields(msp_id = %msp.id, tenant_id = %tenant.id))]
    pub async fn available_methods(
        &self,
        msp: &MspAccount,
        tenant: &Tenant,
        user: &DirectoryUser,
        contact_mobile: Option<&str>,
    ) -> Result<Vec<MethodAvailability>, CoreError> {
        let checks = self.user_checks(msp, tenant, user).await;
        Ok(self.methods_from(msp, &checks, contact_mobile))
    }

    /// Which methods can reach a user of whom `checks` were read, and why the others cannot.
    pub fn methods_from(
        &self,
        msp: &MspAccount,
        checks: &UserChecks,
        contact_mobile: Option<&str>,
    ) -> Vec<MethodAvailability> {
        let push = match (&checks.push_unavailable, &checks.authenticator_registered) {
            (Some(err), _) | (None, Err(err)) => MethodAvailability {
                method: VerificationMethod::Push,
                available: false,
                detail: err.to_string(),
            },
            (None, Ok(false)) => MethodAvailability {
                method: VerificationMethod::Push,
                available: false,
                detail: "The user has no Microsoft Authenticator app registered.".into(),
            },
            (None, Ok(true)) => MethodAvailability {
                method: VerificationMethod::Push,
                available: true,
                detail: "A push to the user's Microsoft Authenticator app.".into(),
            },
        };
        let mobile = match &checks.mobile {
            Ok(Some(phone)) => Ok((phone.clone(), false)),
            Ok(None) => match contact_mobile
                .filter(|_| msp.policy.allow_contact_phone_fallback)
                .and_then(|raw| E164::parse(raw, &self.sms_region).ok())
            {
                Some(phone) => Ok((phone, true)),
                None => Err(CoreError::NoMobilePhone),
            },
            Err(err) => Err(err.clone()),
        };
        let sms = match mobile {
            Ok((phone, fallback)) => MethodAvailability {
                method: VerificationMethod::SmsCode,
                available: true,
                detail: if fallback {
                    format!(
                        "A code by SMS to {} (the PSA contact's mobile, allowed by your policy).",
                        phone.masked()
                    )
                } else {
                    format!("A code by SMS to {}.", phone.masked())
                },
            },
            Err(err) => MethodAvailability {
                method: VerificationMethod::SmsCode,
                available: false,
                detail: err.to_string(),
            },
        };
        let link = MethodAvailability {
            method: VerificationMethod::SmsLink,
            available: sms.available,
            detail: if sms.available {
                sms.detail
                    .replace("A code by SMS", "A one-tap \"Yes, it's me\" link by SMS")
            } else {
                sms.detail.clone()
            },
        };
        vec![push, sms, link]
    }

    /// Audits a start refused before a verification could be made: the tenant or the user
    /// could not be found (or Microsoft could not be asked). `searched` is what the
    /// technician gave; it is not a secret.
    pub async fn audit_refused_start(
        &self,
        msp_id: Uuid,
        actor: &AuditActor,
        method: VerificationMethod,
        psa_ticket_id: Option<String>,
        searched: &str,
        err: &CoreError,
    ) {
        let event = NewAuditEvent {
            msp_id,
            actor: actor.clone(),
            action: start_action(method).to_owned(),
            subject_kind: Some("user".into()),
            subject_id: None,
            subject_name: Some(searched.chars().take(320).collect()),
            psa_ticket_id,
            outcome: AuditOutcome::Refused,
            upstream_request_id: err.upstream_request_id(),
            details: serde_json::json!({ "code": err.code(), "stage": "user_lookup" }),
        };
        if let Err(err) = self.store.append(event).await {
            tracing::error!(error = %err, "audit append failed");
        }
    }

    /// The mobile phone the user registered in Microsoft (their authentication methods),
    /// if any: the only number a password link may go to.
    pub async fn registered_mobile(
        &self,
        tenant: &Tenant,
        user_object_id: &str,
    ) -> Result<Option<E164>, CoreError> {
        let graph = self.directory.graph_credentials(tenant).await?;
        let phones = self
            .directory
            .microsoft()
            .graph
            .phone_methods(&graph, user_object_id)
            .await?;
        Ok(self.mobile_among(&phones))
    }

    /// The mobile phone among a user's phone methods (as Graph lists them), if one is a
    /// number SMS can reach.
    pub fn mobile_among(&self, phones: &[PhoneMethod]) -> Option<E164> {
        phones
            .iter()
            .filter(|p| p.phone_type == "mobile")
            .find_map(|p| E164::parse(&p.phone_number, &self.sms_region).ok())
    }

    /// The user's mobile phone as registered in Microsoft, or (only where the MSP allows it)
    /// the PSA contact's. The flag says the fallback was used.
    pub async fn mobile_for(
        &self,
        msp: &MspAccount,
        tenant: &Tenant,
        user: &DirectoryUser,
        contact_mobile: Option<&str>,
    ) -> Result<(E164, bool), CoreError> {
        if let Some(phone) = self.registered_mobile(tenant, &user.object_id).await? {
            return Ok((phone, false));
        }
        if msp.policy.allow_contact_phone_fallback
            && let Some(phone) =
                contact_mobile.and_then(|raw| E164::parse(raw, &self.sms_region).ok())
        {
            return Ok((phone, true));
        }
        Err(CoreError::NoMobilePhone)
    }

    #[tracing::instrument(skip_all, fields(
        msp_id = %request.msp.id,
        tenant_id = %request.tenant.id,
        method = ?request.method,
        verification_id = tracing::field::Empty,
    ))]
    pub async fn start(&self, request: StartRequest) -> Result<Verification, CoreError> {
        let reason = request
            .reason
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(|r| r.chars().take(500).collect::<String>());
        if !request.is_ticket_contact && reason.is_none() {
            return Err(CoreError::ReasonRequired);
        }
        let result = match request.method {
            VerificationMethod::Push => self.start_push(&request, reason.clone()).await,
            VerificationMethod::SmsCode => self.start_sms_code(&request, reason.clone()).await,
            VerificationMethod::SmsLink => self.start_sms_link(&request, reason.clone()).await,
        };
        if let Ok(verification) = &result {
            tracing::Span::current()
                .record("verification_id", tracing::field::display(verification.id));
        }
        let (outcome, code, upstream) = match &result {
            Ok(_) => (AuditOutcome::Started, None, None),
            Err(err) => (
                AuditOutcome::Refused,
                Some(err.code()),
                err.upstream_request_id(),
            ),
        };
        self.audit_event(
            &request,
            start_action(request.method),
            outcome,
            upstream,
            serde_json::json!({
                "code": code,
                "verification_id": result.as_ref().ok().map(|v| v.id),
                "reason": reason,
                "is_ticket_contact": request.is_ticket_contact,
                "used_contact_phone_fallback": result.as_ref().ok().map(|v| v.used_contact_phone_fallback),
            }),
        )
        .await;
        result
    }

    async fn start_push(
        &self,
        request: &StartRequest,
        reason: Option<String>,
    ) -> Result<Verification, CoreError> {
        let credentials = self.directory.push_credentials(&request.tenant).await?;
        let microsoft = self.directory.microsoft().clone();
        let upn = Upn::parse(&request.user.upn).map_err(|err| CoreError::InvalidInput {
            field: "user",
            problem: err.to_string(),
        })?;
        // Read the default method first: when it is not the push, the connector would not
        // prompt the user, so no push is sent at all. Whether an Authenticator is registered
        // is read alongside: without one, no default method would help, and the technician
        // is told so (and to use SMS) rather than offered a fix that cannot work.
        let (pushable, authenticators) = futures_util::future::join(
            microsoft.check_push_is_default(&credentials.graph, &request.user.object_id, upn, true),
            microsoft
                .graph
                .authenticator_methods(&credentials.graph, &request.user.object_id),
        )
        .await;
        if authenticators?.is_empty() {
            return Err(CoreError::AuthenticatorNotRegistered {
                upn: request.user.upn.clone(),
            });
        }
        let pushable = pushable?;
        let policy = &request.msp.policy;
        // A push left pending by a stopped instance never blocks a new one.
        self.interrupt_orphaned(OrphanScope::User {
            tenant_id: request.tenant.id,
            user_object_id: &request.user.object_id,
        })
        .await?;
        let verification = self
            .store
            .begin_push(
                self.new_verification(
                    request,
                    VerificationMethod::Push,
                    None,
                    reason,
                    false,
                    self.push_lifetime,
                ),
                PushLimits {
                    max_per_window: policy.push_limit_count.max(1) as u64,
                    max_per_technician: policy.technician_push_limit_count.max(1) as u64,
                    window: Duration::seconds(policy.push_limit_window_seconds.max(1) as i64),
                    count_approved: policy.count_approved_pushes,
                },
            )
            .await
            .map_err(|err| match err {
                BeginPushError::AlreadyPending { pending_id } => {
                    CoreError::PushAlreadyPending { pending_id }
                }
                BeginPushError::RateLimited { retry_after } => {
                    CoreError::PushRateLimited { retry_after }
                }
                BeginPushError::TechnicianRateLimited { retry_after } => {
                    CoreError::TechnicianPushRateLimited { retry_after }
                }
                BeginPushError::Store(cause) => CoreError::Store(cause),
            })?;

        let service = self.clone();
        let id = verification.id;
        let window = Duration::seconds(policy.verified_window_seconds.max(60) as i64);
        let hold_seconds = policy.fraud_hold_seconds;
        let audit_request = request.clone();
        let pending = verification.clone();
        // The task keeps the request's span, so that the outcome is logged with its id.
        tokio::spawn(
            async move {
                let result = microsoft
                    .push_checked(&credentials.connector, &pushable)
                    .await;
                let (mut decision, upstream) = match &result {
                    Ok(push) => (decision_for(&push.outcome, window), None),
                    Err(err) => (
                        Decision {
                            status: VerificationStatus::Failed,
                            failure_code: Some(err.code()),
                            verified_until: None,
                            audit: None,
                            audit_category: AuditCategory::General,
                            hold: None,
                        },
                        err.request_id.clone(),
                    ),
                };
                if decision.failure_code == Some(ErrorCode::FraudReported) {
                    mark_fraud(&mut decision, &pending, hold_seconds);
                }
                let status_text = decision.status.as_str();
                let failure = decision.failure_code.map(ErrorCode::as_str);
                // Logged before the decision is stored, so that whoever sees the decision can
                // also find this line.
                tracing::info!(
                    verification_id = %id,
                    status = status_text,
                    failure_code = failure,
                    microsoft_request_id = upstream.as_deref(),
                    "push answered"
                );
                // The decision and its audit entry are written together, or not at all.
                decision.audit = Some(request_audit_event(
                    &audit_request,
                    "verification.push.result",
                    decision.status.into(),
                    upstream,
                    serde_json::json!({
                        "verification_id": id,
                        "code": failure,
                        "resets_held_until": decision.hold.as_ref().map(|h| h.held_until),
                    }),
                ));
                let late_answer = decision.audit.clone().map(|mut event| {
                    event.action = "verification.push.late_answer".into();
                    event
                });
                service
                    .record_push_decision(&pending, decision, late_answer)
                    .await;
            }
            .in_current_span(),
        );
        Ok(verification)
    }

    async fn start_sms_code(
        &self,
        request: &StartRequest,
        reason: Option<String>,
    ) -> Result<Verification, CoreError> {
        let (phone, fallback) = self
            .mobile_for(
                &request.msp,
                &request.tenant,
                &request.user,
                request.context.contact_mobile.as_deref(),
            )
            .await?;
        let code = format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000u32));
        let salt = crate::store::access::random_token();
        let code_hash = format!(
            "{salt}:{}",
            self.keyring
                .mac_hex(MacPurpose::SmsCode, &format!("{salt}:{code}"))
        );
        let verification = self
            .store
            .create_verification(self.new_verification(
                request,
                VerificationMethod::SmsCode,
                Some(code_hash),
                reason,
                fallback,
                Duration::minutes(CODE_LIFETIME_MINUTES),
            ))
            .await?;
        let body = SecretString::from(texts::sms_code(
            &texts::Sender::of(&request.msp),
            &request.user.upn,
            &code,
            Duration::minutes(CODE_LIFETIME_MINUTES),
        ));
        if let Err(err) = self.messenger.send_sms(request.msp.id, &phone, body).await {
            self.decide(
                verification.id,
                VerificationStatus::Failed,
                Some(err.code()),
                None,
                None,
            )
            .await?;
            return Err(err.into());
        }
        Ok(verification)
    }

    async fn start_sms_link(
        &self,
        request: &StartRequest,
        reason: Option<String>,
    ) -> Result<Verification, CoreError> {
        let (phone, fallback) = self
            .mobile_for(
                &request.msp,
                &request.tenant,
                &request.user,
                request.context.contact_mobile.as_deref(),
            )
            .await?;
        let token = crate::store::access::random_token();
        let link_lifetime =
            Duration::seconds(request.msp.policy.one_tap_link_lifetime_seconds.into());
        let verification = self
            .store
            .create_verification(self.new_verification(
                request,
                VerificationMethod::SmsLink,
                Some(crate::store::access::sha256_hex(&token)),
                reason,
                fallback,
                link_lifetime,
            ))
            .await?;
        let link = one_tap_url(&self.public_url, &token)
            .map_err(|_| CoreError::Store("bad public URL".into()))?;
        let body = SecretString::from(texts::one_tap_link(
            &texts::Sender::of(&request.msp),
            &request.user.upn,
            link.as_str(),
            link_lifetime,
        ));
        if let Err(err) = self.messenger.send_sms(request.msp.id, &phone, body).await {
            self.decide(
                verification.id,
                VerificationStatus::Failed,
                Some(err.code()),
                None,
                None,
            )
            .await?;
            return Err(err.into());
        }
        Ok(verification)
    }

    /// What the user's one-tap link shows: the MSP's name while the link is usable.
    #[tracing::instrument(skip_all)]
    pub async fn link_status(&self, token: &str) -> Result<(Verification, LinkState), CoreError> {
        let verification = self.link_verification(token).await?;
        let state = if verification.status != VerificationStatus::Pending {
            LinkState::Used
        } else if Utc::now() >= verification.expires_at {
            LinkState::Expired
        } else {
            LinkState::Open
        };
        Ok((verification, state))
    }

    /// The user tapped "Yes, it's me" (`confirmed`) or "No" on their link.
    #[tracing::instrument(skip_all, fields(
        msp_id = %msp.id,
        confirmed = confirmed,
        verification_id = tracing::field::Empty,
    ))]
    pub async fn answer_link(
        &self,
        msp: &MspAccount,
        token: &str,
        confirmed: bool,
    ) -> Result<Verification, CoreError> {
        let verification = self.link_verification(token).await?;
        tracing::Span::current()
            .record("verification_id", tracing::field::display(verification.id));
        if verification.status != VerificationStatus::Pending {
            return Err(CoreError::VerificationFinished {
                status: verification.status,
            });
        }
        if Utc::now() >= verification.expires_at {
            let audit = plain_audit_event(
                &verification,
                system_actor(),
                "verification.expired",
                AuditOutcome::expired_by(ErrorCode::LinkExpired),
            );
            self.decide(
                verification.id,
                VerificationStatus::Expired,
                Some(ErrorCode::LinkExpired),
                None,
                Some(audit),
            )
            .await?;
            return Err(CoreError::CodeExpired);
        }
        // "No, it's not me" is the same claim as the Authenticator's "It's not me": someone
        // else is asking for this user. It is recorded as a fraud report and holds resets.
        let (status, code, until) = if confirmed {
            let until =
                Utc::now() + Duration::seconds(msp.policy.verified_window_seconds.max(60) as i64);
            (VerificationStatus::Approved, None, Some(until))
        } else {
            (
                VerificationStatus::Denied,
                Some(ErrorCode::FraudReported),
                None,
            )
        };
        let mut audit = plain_audit_event(
            &verification,
            technician_of(&verification),
            "verification.sms_link.answer",
            status.into(),
        );
        let mut decision = Decision {
            status,
            failure_code: code,
            verified_until: until,
            audit: None,
            audit_category: AuditCategory::General,
            hold: None,
        };
        if !confirmed {
            mark_fraud(&mut decision, &verification, msp.policy.fraud_hold_seconds);
            audit.details = serde_json::json!({
                "verification_id": verification.id,
                "code": ErrorCode::FraudReported,
                "resets_held_until": decision.hold.as_ref().map(|h| h.held_until),
            });
        }
        decision.audit = Some(audit);
        if !self.record_decision(verification.id, decision).await? {
            return Err(self.finished_meanwhile(msp.id, verification.id).await);
        }
        self.owned(msp.id, verification.id).await
    }

    async fn link_verification(&self, token: &str) -> Result<Verification, CoreError> {
        if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(CoreError::VerificationNotFound);
        }
        self.store
            .find_by_code_hash(
                VerificationMethod::SmsLink,
                &crate::store::access::sha256_hex(token),
            )
            .await?
            .ok_or(CoreError::VerificationNotFound)
    }

    /// Checks a code the caller read out. Wrong codes are counted; after
    /// [`MAX_CODE_ATTEMPTS`] the verification fails, and later attempts are refused.
    #[tracing::instrument(skip_all, fields(msp_id = %msp.id, verification_id = %id))]
    pub async fn submit_code(
        &self,
        msp: &MspAccount,
        id: Uuid,
        code: &str,
        actor: &AuditActor,
    ) -> Result<Verification, CoreError> {
        let verification = self.owned(msp.id, id).await?;
        if verification.method != VerificationMethod::SmsCode {
            return Err(CoreError::InvalidInput {
                field: "code",
                problem: "applies only to SMS-code verifications".into(),
            });
        }
        if verification.status != VerificationStatus::Pending {
            return Err(match (verification.status, verification.failure_code) {
                (VerificationStatus::Failed, Some(ErrorCode::TooManyAttempts)) => {
                    CoreError::TooManyAttempts
                }
                (VerificationStatus::Expired, _) => CoreError::CodeExpired,
                (other, _) => CoreError::VerificationFinished { status: other },
            });
        }
        if Utc::now() >= verification.expires_at {
            let audit = plain_audit_event(
                &verification,
                system_actor(),
                "verification.expired",
                AuditOutcome::expired_by(ErrorCode::CodeExpired),
            );
            self.decide(
                id,
                VerificationStatus::Expired,
                Some(ErrorCode::CodeExpired),
                None,
                Some(audit),
            )
            .await?;
            return Err(CoreError::CodeExpired);
        }
        let Some(attempts) = self.store.count_code_attempt(id, MAX_CODE_ATTEMPTS).await? else {
            return Err(CoreError::TooManyAttempts);
        };
        let code = code.trim();
        let matches = verification
            .code_hash
            .as_deref()
            .and_then(|stored| stored.split_once(':'))
            .is_some_and(|(salt, mac)| {
                code.len() == 6
                    && self
                        .keyring
                        .verify_mac(MacPurpose::SmsCode, &format!("{salt}:{code}"), mac)
            });
        let outcome = if matches {
            AuditOutcome::Approved
        } else {
            AuditOutcome::CodeIncorrect
        };
        tracing::info!(outcome = outcome.as_str(), attempts, "SMS code checked");
        // A check that decides the verification is audited with the decision, in one
        // transaction; a wrong code that leaves attempts is audited alone.
        let audit = plain_audit_event(
            &verification,
            actor.clone(),
            "verification.sms_code.submit",
            outcome,
        );
        let decided = if matches {
            let until =
                Utc::now() + Duration::seconds(msp.policy.verified_window_seconds.max(60) as i64);
            self.decide(
                id,
                VerificationStatus::Approved,
                None,
                Some(until),
                Some(audit),
            )
            .await?;
            Ok(())
        } else if attempts >= MAX_CODE_ATTEMPTS {
            self.decide(
                id,
                VerificationStatus::Failed,
                Some(ErrorCode::TooManyAttempts),
                None,
                Some(audit),
            )
            .await?;
            Err(CoreError::CodeIncorrect { attempts_left: 0 })
        } else {
            if let Err(err) = self.store.append(audit).await {
                tracing::error!(error = %err, "audit append failed");
            }
            Err(CoreError::CodeIncorrect {
                attempts_left: MAX_CODE_ATTEMPTS - attempts,
            })
        };
        decided?;
        self.owned(msp.id, id).await
    }

    #[tracing::instrument(skip_all, fields(msp_id = %msp.id, verification_id = %id))]
    pub async fn cancel(
        &self,
        msp: &MspAccount,
        id: Uuid,
        actor: &AuditActor,
    ) -> Result<Verification, CoreError> {
        let verification = self.owned(msp.id, id).await?;
        let audit = plain_audit_event(
            &verification,
            actor.clone(),
            "verification.cancel",
            VerificationStatus::Cancelled.into(),
        );
        if !self
            .decide(id, VerificationStatus::Cancelled, None, None, Some(audit))
            .await?
        {
            return Err(self.finished_meanwhile(msp.id, verification.id).await);
        }
        self.owned(msp.id, id).await
    }

    /// The verification now, or when it stops being pending (at most `wait`).
    #[tracing::instrument(skip_all, fields(msp_id = %msp_id, verification_id = %id))]
    pub async fn get(
        &self,
        msp_id: Uuid,
        id: Uuid,
        wait: StdDuration,
    ) -> Result<Verification, CoreError> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut changes = self.changes.subscribe();
        loop {
            let verification = self.current(msp_id, id).await?;
            if verification.status != VerificationStatus::Pending
                || tokio::time::Instant::now() >= deadline
            {
                return Ok(verification);
            }
            // Woken by a decision in this instance; the timeout also catches decisions made
            // by another instance.
            let remaining = deadline - tokio::time::Instant::now();
            let _ =
                tokio::time::timeout(remaining.min(StdDuration::from_secs(1)), changes.changed())
                    .await;
        }
    }

    /// Sets the user's default sign-in method to the Authenticator push (after the
    /// technician confirmed), so that the next push reaches them. `change` names the user
    /// and the ticket it was asked from; the change is audited and, once made, told to the
    /// observer (a note on that ticket).
    #[tracing::instrument(skip_all, fields(msp_id = %change.msp_id, tenant_id = %tenant.id))]
    pub async fn make_push_default(
        &self,
        actor: &AuditActor,
        tenant: &Tenant,
        change: MethodChange,
    ) -> Result<(), CoreError> {
        debug_assert_eq!(change.tenant_id, tenant.id);
        let credentials = self.directory.push_credentials(tenant).await?;
        let result = self
            .directory
            .microsoft()
            .graph
            .set_preferred_method(&credentials.graph, &change.user_object_id, PUSH_METHOD)
            .await;
        let event = NewAuditEvent {
            msp_id: change.msp_id,
            actor: actor.clone(),
            action: "user.default_method.set_push".into(),
            subject_kind: Some("user".into()),
            subject_id: Some(change.user_object_id.clone()),
            subject_name: Some(change.upn.clone()),
            psa_ticket_id: change.psa_ticket_id.clone(),
            outcome: if result.is_ok() {
                AuditOutcome::Success
            } else {
                AuditOutcome::Failure
            },
            upstream_request_id: result.as_ref().err().and_then(|e| e.request_id.clone()),
            details: serde_json::json!({ "code": result.as_ref().err().map(|e| e.code()) }),
        };
        if let Err(err) = self.store.append(event).await {
            tracing::error!(error = %err, "audit append failed");
        }
        result?;
        self.forget_user_checks(change.tenant_id, &change.user_object_id)
            .await;
        if let Some(observer) = self.observer.clone() {
            tokio::spawn(
                async move { observer.default_method_changed(&change).await }.in_current_span(),
            );
        }
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(tenant_id = %tenant.id))]
    pub async fn history(
        &self,
        tenant: &Tenant,
        user: &DirectoryUser,
        limit: u64,
    ) -> Result<Vec<Verification>, CoreError> {
        let items = self
            .store
            .verification_history(tenant.id, &user.object_id, limit)
            .await?;
        Ok(self.as_read_now(items))
    }

    /// `items` as they read now: a pending one whose decision is held in memory (the
    /// database was unreachable) reads as decided; a pending one past its end, with no
    /// decision held, reads as expired (it is recorded so when it is read one by one).
    fn as_read_now(&self, mut items: Vec<Verification>) -> Vec<Verification> {
        let now = Utc::now();
        for item in items.iter_mut() {
            if item.status == VerificationStatus::Pending
                && let Some(held) = self.held_view(item.id)
            {
                *item = held;
            }
            if item.status == VerificationStatus::Pending && now >= item.expires_at {
                item.status = VerificationStatus::Expired;
            }
        }
        items
    }

    /// The newest verifications made from one PSA ticket, of anyone, newest first (a
    /// pending one past its end reads as expired, as in [`VerificationService::history`]).
    pub async fn ticket_verifications(
        &self,
        psa_connection_id: Uuid,
        psa_ticket_id: &str,
        limit: u64,
    ) -> Result<Vec<Verification>, CoreError> {
        let items = self
            .store
            .ticket_verifications(psa_connection_id, psa_ticket_id, limit)
            .await?;
        Ok(self.as_read_now(items))
    }

    /// The error for a verification that another request ended first, naming how it ended.
    async fn finished_meanwhile(&self, msp_id: Uuid, id: Uuid) -> CoreError {
        match self.owned(msp_id, id).await {
            Ok(verification) => CoreError::VerificationFinished {
                status: verification.status,
            },
            Err(err) => err,
        }
    }

    /// The verification as it stands: a decision held in memory is written first if the
    /// database takes it now, and answers when it does not (the database unreachable); a
    /// stale pending one is ended (interrupted, expired) as it is read.
    async fn current(&self, msp_id: Uuid, id: Uuid) -> Result<Verification, CoreError> {
        self.flush_held(id).await;
        match self.owned(msp_id, id).await {
            Ok(verification) if verification.status == VerificationStatus::Pending => {
                match self.held_view(id) {
                    Some(held) => Ok(held),
                    None => self.expire_if_stale(verification).await,
                }
            }
            Ok(verification) => Ok(verification),
            Err(err) => match self.held_view(id) {
                Some(held) if held.msp_id == msp_id => Ok(held),
                _ => Err(err),
            },
        }
    }

    /// Writes the decision of `id` held in memory, if there is one and no other write of it
    /// is under way; true when one was written (or found written).
    pub async fn flush_held(&self, id: Uuid) -> bool {
        let (decision, late_answer) = {
            let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            match held.get_mut(&id) {
                Some(entry) if !entry.writing => {
                    entry.writing = true;
                    (entry.decision.clone(), entry.late_answer.clone())
                }
                _ => return false,
            }
        };
        let expected = (decision.status, decision.failure_code);
        let fraud = (decision.audit_category, decision.hold.clone());
        match self.land(id, decision).await {
            Ok(changed) => {
                self.held
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
                tracing::info!(verification_id = %id, "a held push decision was written");
                if !changed {
                    // Either an earlier write did land (its answer was lost), or the
                    // verification ended otherwise meanwhile (cancelled): then the answer is
                    // kept as a late one.
                    let landed = matches!(
                        self.store.get_verification(id).await,
                        Ok(Some(v)) if (v.status, v.failure_code) == expected
                    );
                    if !landed {
                        self.late_answer(late_answer, fraud.0, fraud.1).await;
                    }
                }
                true
            }
            Err(err) => {
                if let Some(entry) = self
                    .held
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_mut(&id)
                {
                    entry.writing = false;
                }
                tracing::debug!(error = %err, verification_id = %id, "a held push decision is still not written");
                false
            }
        }
    }

    /// The verification `id` as it reads with the decision held in memory for it, if any.
    fn held_view(&self, id: Uuid) -> Option<Verification> {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .map(|entry| entry.view.clone())
    }

    /// How many push decisions wait in memory for the database.
    pub fn held_decisions(&self) -> usize {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Writes a push's decision. When the database does not take it, the decision is held in
    /// memory (see [`HeldDecision`]) and written again with backoff until it lands.
    async fn record_push_decision(
        &self,
        pending: &Verification,
        decision: Decision,
        late_answer: Option<NewAuditEvent>,
    ) {
        let id = pending.id;
        let fraud = (decision.audit_category, decision.hold.clone());
        match self.land(id, decision.clone()).await {
            Ok(true) => {}
            // Cancelled (or ended) meanwhile: the answer changes nothing, but what the user
            // answered is kept.
            Ok(false) => self.late_answer(late_answer, fraud.0, fraud.1).await,
            Err(err) => {
                let mut view = pending.clone();
                view.status = decision.status;
                view.failure_code = decision.failure_code;
                view.verified_until = decision.verified_until;
                view.decided_at = Some(Utc::now());
                {
                    let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
                    if held.len() >= MAX_HELD_DECISIONS {
                        tracing::error!(
                            error = %err,
                            verification_id = %id,
                            "could not record a push outcome, and too many are held in memory already: this one is lost"
                        );
                        return;
                    }
                    held.insert(
                        id,
                        HeldDecision {
                            decision,
                            view,
                            late_answer,
                            writing: false,
                        },
                    );
                }
                tracing::warn!(
                    error = %err,
                    verification_id = %id,
                    "could not record a push outcome: held in memory, written when the database is back"
                );
                self.changes.send_modify(|n| *n += 1);
                let service = self.clone();
                tokio::spawn(
                    async move {
                        let mut wait = HELD_RETRY_FIRST;
                        loop {
                            tokio::time::sleep(wait).await;
                            if service.flush_held(id).await || service.held_view(id).is_none() {
                                return;
                            }
                            wait = (wait * 2).min(HELD_RETRY_MAX);
                        }
                    }
                    .in_current_span(),
                );
            }
        }
    }

    /// Keeps a push answer that came after its verification ended: a fraud report is a
    /// security event and still holds the user's resets.
    async fn late_answer(
        &self,
        event: Option<NewAuditEvent>,
        category: AuditCategory,
        hold: Option<NewHold>,
    ) {
        let Some(event) = event else { return };
        let result = if category == AuditCategory::Security {
            self.store.record_late_fraud(event, hold).await
        } else {
            self.store.append(event).await.map(|_| ())
        };
        if let Err(err) = result {
            tracing::error!(error = %err, "audit append failed");
        }
    }

    async fn owned(&self, msp_id: Uuid, id: Uuid) -> Result<Verification, CoreError> {
        match self.store.get_verification(id).await? {
            Some(v) if v.msp_id == msp_id => Ok(v),
            _ => Err(CoreError::VerificationNotFound),
        }
    }

    /// A pending verification past its end (its push task died with an instance, say) is
    /// recorded as expired when next read.
    async fn expire_if_stale(&self, verification: Verification) -> Result<Verification, CoreError> {
        // A push whose waiting instance stopped is interrupted the first time it is read.
        if verification.status == VerificationStatus::Pending
            && verification.method == VerificationMethod::Push
            && verification.waiter_instance_id != Some(self.instance_id)
        {
            let live = self.live_instances(false).await?;
            if !verification
                .waiter_instance_id
                .is_some_and(|waiter| live.contains(&waiter))
                && self
                    .interrupt_orphaned(OrphanScope::One(verification.id))
                    .await?
                    > 0
            {
                return self.owned(verification.msp_id, verification.id).await;
            }
        }
        if verification.status == VerificationStatus::Pending
            && Utc::now() >= verification.expires_at
            && self.held_view(verification.id).is_none()
        {
            // Noticed on read: audited like any other ending.
            let audit = plain_audit_event(
                &verification,
                system_actor(),
                "verification.expired",
                AuditOutcome::expired_by(ErrorCode::VerificationExpired),
            );
            self.decide(
                verification.id,
                VerificationStatus::Expired,
                Some(ErrorCode::VerificationExpired),
                None,
                Some(audit),
            )
            .await?;
            return self.owned(verification.msp_id, verification.id).await;
        }
        Ok(verification)
    }

    async fn decide(
        &self,
        id: Uuid,
        status_value: VerificationStatus,
        failure_code: Option<ErrorCode>,
        verified_until: Option<DateTime<Utc>>,
        audit: Option<NewAuditEvent>,
    ) -> Result<bool, CoreError> {
        self.record_decision(
            id,
            Decision {
                status: status_value,
                failure_code,
                verified_until,
                audit,
                audit_category: AuditCategory::General,
                hold: None,
            },
        )
        .await
    }

    /// Ends a pending verification, wakes its watchers and tells the observer.
    async fn record_decision(&self, id: Uuid, decision: Decision) -> Result<bool, CoreError> {
        Ok(self.land(id, decision).await?)
    }

    /// Writes a decision (with its audit entry and hold), wakes the watchers and, when it
    /// ended the verification, tells the observer.
    async fn land(&self, id: Uuid, decision: Decision) -> Result<bool, crate::store::StoreError> {
        let changed = self.store.decide_verification(id, decision).await?;
        self.changes.send_modify(|n| *n += 1);
        if changed && let Some(observer) = self.observer.clone() {
            match self.store.get_verification(id).await {
                Ok(Some(verification)) => {
                    // Off the request path: a slow PSA must not slow the technician down.
                    tokio::spawn(
                        async move { observer.verification_decided(&verification).await }
                            .in_current_span(),
                    );
                }
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "a decision was not passed on (ticket note)")
                }
            }
        }
        Ok(changed)
    }

    fn new_verification(
        &self,
        request: &StartRequest,
        method: VerificationMethod,
        code_hash: Option<String>,
        reason: Option<String>,
        used_contact_phone_fallback: bool,
        lifetime: Duration,
    ) -> NewVerification {
        NewVerification {
            msp_id: request.msp.id,
            tenant_id: request.tenant.id,
            technician_id: request.requester.technician_id,
            psa_connection_id: request.context.psa_connection_id,
            psa_ticket_id: request.context.ticket_id.clone(),
            psa_contact_id: request.context.contact_id.clone(),
            user_object_id: request.user.object_id.clone(),
            user_principal_name: request.user.upn.clone(),
            method,
            code_hash,
            reason,
            used_contact_phone_fallback,
            expires_at: Utc::now() + lifetime,
            waiter_instance_id: (method == VerificationMethod::Push).then_some(self.instance_id),
            console_user_id: request.requester.console_user_id,
        }
    }

    async fn audit_event(
        &self,
        request: &StartRequest,
        action: &str,
        outcome: AuditOutcome,
        upstream_request_id: Option<String>,
        details: serde_json::Value,
    ) {
        let event = request_audit_event(request, action, outcome, upstream_request_id, details);
        if let Err(err) = self.store.append(event).await {
            tracing::error!(error = %err, "audit append failed");
        }
    }
}

/// The audit action of a start by `method`.
fn start_action(method: VerificationMethod) -> &'static str {
    match method {
        VerificationMethod::Push => "verification.push.start",
        VerificationMethod::SmsCode => "verification.sms_code.start",
        VerificationMethod::SmsLink => "verification.sms_link.start",
    }
}

/// The audit entry of a step of a verification that `request` started.
fn request_audit_event(
    request: &StartRequest,
    action: &str,
    outcome: AuditOutcome,
    upstream_request_id: Option<String>,
    details: serde_json::Value,
) -> NewAuditEvent {
    NewAuditEvent {
        msp_id: request.msp.id,
        actor: request.requester.actor.clone(),
        action: action.to_owned(),
        subject_kind: Some("user".into()),
        subject_id: Some(request.user.object_id.clone()),
        subject_name: Some(request.user.upn.clone()),
        psa_ticket_id: request.context.ticket_id.clone(),
        outcome,
        upstream_request_id,
        details,
    }
}

/// Who acted when Vouch itself did (an expiry, an interrupted wait).
fn system_actor() -> AuditActor {
    AuditActor {
        kind: ActorKind::System,
        id: None,
        name: None,
    }
}

/// The technician who started `verification` (for steps that come from its start): the
/// console user when one did.
fn technician_of(verification: &Verification) -> AuditActor {
    if let Some(console_user) = verification.console_user_id {
        return AuditActor {
            kind: ActorKind::ConsoleUser,
            id: Some(console_user.to_string()),
            name: None,
        };
    }
    AuditActor {
        kind: ActorKind::Technician,
        id: verification.technician_id.map(|id| id.to_string()),
        name: None,
    }
}

/// The audit entry of a step of `verification` by `actor`.
fn plain_audit_event(
    verification: &Verification,
    actor: AuditActor,
    action: &str,
    outcome: AuditOutcome,
) -> NewAuditEvent {
    NewAuditEvent {
        msp_id: verification.msp_id,
        actor,
        action: action.to_owned(),
        subject_kind: Some("user".into()),
        subject_id: Some(verification.user_object_id.clone()),
        subject_name: Some(verification.user_principal_name.clone()),
        psa_ticket_id: verification.psa_ticket_id.clone(),
        outcome,
        upstream_request_id: None,
        details: serde_json::json!({ "verification_id": verification.id }),
    }
}

/// What a push outcome means for the verification.
fn decision_for(outcome: &PushOutcome, window: Duration) -> Decision {
    let status = match outcome {
        PushOutcome::Approved => VerificationStatus::Approved,
        PushOutcome::Denied | PushOutcome::FraudReported => VerificationStatus::Denied,
        PushOutcome::NoResponse => VerificationStatus::Expired,
        _ => VerificationStatus::Failed,
    };
    if let PushOutcome::Other { code } = outcome {
        // The raw result is kept for whoever investigates; the stored code is the stable one.
        tracing::warn!(result = %code.chars().take(60).collect::<String>(), "unknown MFA result");
    }
    Decision {
        status,
        failure_code: outcome.failure_code(),
        verified_until: (status == VerificationStatus::Approved).then(|| Utc::now() + window),
        audit: None,
        audit_category: AuditCategory::General,
        hold: None,
    }
}

/// Makes `decision` a fraud report on `verification`: its audit entry a security event and,
/// when the MSP's policy holds resets (`hold_seconds` > 0), a hold on the user's resets put
/// with it.
fn mark_fraud(decision: &mut Decision, verification: &Verification, hold_seconds: i32) {
    decision.audit_category = AuditCategory::Security;
    decision.hold = (hold_seconds > 0).then(|| NewHold {
        msp_id: verification.msp_id,
        tenant_id: verification.tenant_id,
        user_object_id: verification.user_object_id.clone(),
        user_principal_name: verification.user_principal_name.clone(),
        verification_id: verification.id,
        // Whole seconds: what the audit entry says is exactly what either backend stores.
        held_until: chrono::SubsecRound::trunc_subsecs(
            Utc::now() + Duration::seconds(hold_seconds as i64),
            0,
        ),
    });
    tracing::warn!(
        verification_id = %verification.id,
        resets_held_until = ?decision.hold.as_ref().map(|h| h.held_until),
        "the user reported the verification as fraud"
    );
}

/// Whether `verification` currently proves the user's identity, and if not, why not.
pub fn verified_now(verification: &Verification, now: DateTime<Utc>) -> Result<(), String> {
    if verification.status != VerificationStatus::Approved {
        return Err(format!("the verification is {}", verification.status));
    }
    match verification.verified_until {
        Some(until) if until > now => Ok(()),
        _ => Err("the verification has expired".into()),
    }
}
