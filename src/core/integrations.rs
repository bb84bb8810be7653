//! The two security integrations of a customer tenant, per MSP:
//!
//! - **Microsoft Authenticator**: Vouch's own multi-tenant app, granted through admin
//!   consent. After consent Vouch checks the prerequisites (Entra ID P1; the MFA client's
//!   service principal can be ensured and given a credential), then keeps that connector
//!   credential sealed, with its end date, and renews it before it ends.
//! - **M365 Identity Management**: an app the MSP registered in the customer tenant. Vouch
//!   proves the credentials with a token and a harmless read before saving anything.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret, SecretString};
use url::Url;
use uuid::Uuid;

use crate::domain::{ActorKind, AuditOutcome, ErrorCode, IntegrationKind, IntegrationStatus};
use crate::microsoft::graph::MFA_CLIENT_APP_ID;
use crate::microsoft::token::Audience;
use crate::microsoft::{
    ClientCredentials, Microsoft, MicrosoftError, MicrosoftErrorKind, TenantRef,
};
use crate::store::Store;
use crate::store::StoreError;
use crate::store::{
    audit::{AuditActor, NewAuditEvent},
    tenants::{IntegrationUpdate, NewTenant, Tenant, TenantIntegration},
};
use crate::telemetry::Metrics;

/// Warn this long before a secret expires.
pub const EXPIRY_WARNING_DAYS: i64 = 30;
/// Default lifetime of an Identity Management secret when the MSP does not give one.
pub const DEFAULT_SECRET_LIFETIME_DAYS: i64 = 730;
/// Lifetime of the MFA connector credential Vouch creates.
const CONNECTOR_CREDENTIAL_LIFETIME_DAYS: i64 = 730;
/// How long an admin-consent `state` stays valid.
const CONSENT_STATE_TTL_MINUTES: i64 = 30;
/// How long to keep retrying a brand-new connector secret that Microsoft does not know yet.
const CREDENTIAL_PROPAGATION_BUDGET: StdDuration = StdDuration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntegrationError {
    #[error("{}", .0.message())]
    Microsoft(MicrosoftError),
    #[error("`{field}` {problem}.")]
    InvalidInput {
        field: &'static str,
        problem: String,
    },
    #[error(
        "Vouch's Microsoft app is not configured: set microsoft.app_client_id and microsoft.app_client_secret"
    )]
    AppNotConfigured,
    #[error("No such integration.")]
    NotFound,
    #[error(
        "This consent link was already used, has expired, or was not issued by Vouch. Start the onboarding again from Vouch."
    )]
    ConsentStateInvalid,
    #[error(
        "The customer's administrator declined the consent, so Vouch cannot reach the tenant. Start the onboarding again and choose Accept."
    )]
    ConsentRefused,
    #[error(
        "The person who consented is not an administrator who may grant this consent. Sign in as a Global Administrator or Cloud Application Administrator of the customer's tenant and start again."
    )]
    ConsentAdminLackedRole,
    #[error("Microsoft refused the consent: {0}")]
    ConsentFailed(String),
    #[error("Storage failure")]
    Store(String),
}

impl IntegrationError {
    pub fn code(&self) -> ErrorCode {
        match self {
            IntegrationError::Microsoft(err) => err.code(),
            IntegrationError::InvalidInput { .. } => ErrorCode::InvalidRequest,
            IntegrationError::AppNotConfigured => ErrorCode::MicrosoftAppNotConfigured,
            IntegrationError::NotFound => ErrorCode::NotFound,
            IntegrationError::ConsentStateInvalid => ErrorCode::ConsentStateInvalid,
            IntegrationError::ConsentRefused => ErrorCode::ConsentRefused,
            IntegrationError::ConsentAdminLackedRole => ErrorCode::ConsentAdminLackedRole,
            IntegrationError::ConsentFailed(_) => ErrorCode::ConsentFailed,
            IntegrationError::Store(_) => ErrorCode::InternalError,
        }
    }
}

impl IntegrationError {
    /// The input field a refusal of the Identity Management form concerns, so a form can
    /// show it next to that field (`None`: the whole form).
    pub fn field(&self) -> Option<&'static str> {
        match self {
            IntegrationError::InvalidInput { field, .. } => Some(field),
            IntegrationError::Microsoft(err) => match err.kind {
                MicrosoftErrorKind::InvalidClientSecret
                | MicrosoftErrorKind::ExpiredClientSecret => Some("client_secret"),
                MicrosoftErrorKind::AppNotConsented | MicrosoftErrorKind::AppDisabled => {
                    Some("client_id")
                }
                MicrosoftErrorKind::TenantNotFound => Some("tenant_id"),
                _ => None,
            },
            _ => None,
        }
    }
}

/// One prerequisite of the Microsoft Authenticator onboarding, as the consent result page
/// names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PrerequisiteState {
    Passed,
    Failed,
    /// Not reached: an earlier prerequisite failed.
    NotChecked,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Prerequisite {
    pub name: &'static str,
    pub state: PrerequisiteState,
    /// What to do, for the one that failed.
    pub detail: Option<String>,
}

/// The prerequisites of the onboarding, in the order they are checked.
pub const CONSENT_PREREQUISITES: [&str; 4] = [
    "Consent granted by a Global Administrator or Cloud Application Administrator of the customer's tenant",
    "Vouch's app can sign in to the customer's tenant",
    "The tenant has Microsoft Entra ID P1 (or higher)",
    "Microsoft's MFA service accepts a credential Vouch creates for it",
];

/// What an admin consent came to: the integration, or the error, with each prerequisite.
#[derive(Debug, Clone)]
pub struct ConsentReport {
    pub result: Result<IntegrationView, IntegrationError>,
    pub prerequisites: Vec<Prerequisite>,
}

impl ConsentReport {
    /// `failed_at`: the index in [`CONSENT_PREREQUISITES`] of the one that failed (`None`
    /// when the result is `Ok`, or when nothing could be checked).
    pub fn new(
        result: Result<IntegrationView, IntegrationError>,
        failed_at: Option<usize>,
    ) -> ConsentReport {
        let prerequisites = CONSENT_PREREQUISITES
            .iter()
            .enumerate()
            .map(|(i, &name)| {
                let (state, detail) = match (&result, failed_at) {
                    (Ok(_), _) => (PrerequisiteState::Passed, None),
                    (Err(err), Some(at)) if i == at => {
                        (PrerequisiteState::Failed, Some(err.to_string()))
                    }
                    (Err(_), Some(at)) if i < at => (PrerequisiteState::Passed, None),
                    _ => (PrerequisiteState::NotChecked, None),
                };
                Prerequisite {
                    name,
                    state,
                    detail,
                }
            })
            .collect();
        ConsentReport {
            result,
            prerequisites,
        }
    }
}

/// Index in [`CONSENT_PREREQUISITES`].
const PREREQ_CONSENT: usize = 0;
const PREREQ_SIGN_IN: usize = 1;
const PREREQ_P1: usize = 2;
const PREREQ_CONNECTOR: usize = 3;

impl From<MicrosoftError> for IntegrationError {
    fn from(err: MicrosoftError) -> Self {
        IntegrationError::Microsoft(err)
    }
}

impl From<StoreError> for IntegrationError {
    fn from(err: StoreError) -> Self {
        tracing::error!(error = %err, "storage failure in integrations");
        IntegrationError::Store(err.to_string())
    }
}

/// How close a secret is to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryState {
    Ok,
    /// Within [`EXPIRY_WARNING_DAYS`].
    ExpiringSoon,
    Expired,
    Unknown,
}

impl ExpiryState {
    pub fn of(expires_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> ExpiryState {
        match expires_at {
            None => ExpiryState::Unknown,
            Some(end) if end <= now => ExpiryState::Expired,
            Some(end) if end - now <= Duration::days(EXPIRY_WARNING_DAYS) => {
                ExpiryState::ExpiringSoon
            }
            Some(_) => ExpiryState::Ok,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExpiryState::Ok => "ok",
            ExpiryState::ExpiringSoon => "expiring_soon",
            ExpiryState::Expired => "expired",
            ExpiryState::Unknown => "unknown",
        }
    }
}

/// What the API shows of an integration (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationView {
    pub id: Uuid,
    pub kind: IntegrationKind,
    pub tenant_id: String,
    pub tenant_name: String,
    pub status: IntegrationStatus,
    pub client_id: String,
    pub secret_expires_at: Option<DateTime<Utc>>,
    pub expiry: ExpiryState,
    pub days_left: Option<i64>,
    pub warning: Option<String>,
    pub last_checked_at: Option<DateTime<Utc>>,
    pub last_check_code: Option<String>,
    pub last_check_message: Option<String>,
}

/// What the MSP enters for the Identity Management integration.
#[derive(Debug, Clone)]
pub struct IdentityManagementInput {
    pub tenant: String,
    pub client_id: String,
    pub client_secret: SecretString,
    pub secret_expires_at: Option<DateTime<Utc>>,
}

/// The query Microsoft's admin-consent redirect carries back.
#[derive(Debug, Clone, Default)]
pub struct ConsentCallback {
    pub state: Option<String>,
    pub tenant: Option<String>,
    pub admin_consent: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// The Microsoft side of Vouch's own multi-tenant app.
#[derive(Clone)]
pub struct VouchApp {
    pub client_id: String,
    pub client_secret: SecretString,
}

#[derive(Clone)]
pub struct IntegrationsService {
    store: Store,
    microsoft: Microsoft,
    metrics: Metrics,
    vouch_app: Option<VouchApp>,
    login_url: Url,
    graph_scope: String,
    consent_redirect_url: Url,
}

pub struct IntegrationsDeps {
    pub store: Store,
    pub microsoft: Microsoft,
    pub metrics: Metrics,
    pub vouch_app: Option<VouchApp>,
    pub login_url: Url,
    /// The Graph `scope` the admin consent link asks for: the cloud's Graph audience, never
    /// derived from the (overridable) Graph address.
    pub graph_scope: String,
    /// Where Microsoft sends the admin back after consent (Vouch's callback).
    pub consent_redirect_url: Url,
}

impl IntegrationsService {
    pub fn new(deps: IntegrationsDeps) -> IntegrationsService {
        IntegrationsService {
            store: deps.store,
            microsoft: deps.microsoft,
            metrics: deps.metrics,
            vouch_app: deps.vouch_app,
            login_url: deps.login_url,
            graph_scope: deps.graph_scope,
            consent_redirect_url: deps.consent_redirect_url,
        }
    }

    pub fn view(
        &self,
        tenant: &Tenant,
        integration: &TenantIntegration,
        now: DateTime<Utc>,
    ) -> IntegrationView {
        let expiry = ExpiryState::of(integration.secret_expires_at, now);
        let days_left = integration
            .secret_expires_at
            .map(|end| (end - now).num_days());
        let warning = match expiry {
            ExpiryState::Expired => Some(
                "The secret has expired: Vouch cannot reach this tenant. Enter a new secret."
                    .to_owned(),
            ),
            ExpiryState::ExpiringSoon => Some(format!(
                "The secret expires in {} days. Create a new one and enter it before then.",
                days_left.unwrap_or(0).max(0)
            )),
            _ => None,
        };
        if let Some(days) = days_left {
            self.metrics
                .integration_secret_days_left
                .with_label_values(&[&tenant.microsoft_tenant_id, integration.kind.as_str()])
                .set(days);
        }
        IntegrationView {
            id: integration.id,
            kind: integration.kind,
            tenant_id: tenant.microsoft_tenant_id.clone(),
            tenant_name: tenant.display_name.clone(),
            status: integration.status,
            client_id: integration.client_id.clone(),
            secret_expires_at: integration.secret_expires_at,
            expiry,
            days_left,
            warning,
            last_checked_at: integration.last_checked_at,
            last_check_code: integration.last_check_code.clone(),
            last_check_message: integration.last_check_message.clone(),
        }
    }

    #[tracing::instrument(skip_all, fields(msp_id = %msp_id))]
    pub async fn list(&self, msp_id: Uuid) -> Result<Vec<IntegrationView>, IntegrationError> {
        let now = Utc::now();
        Ok(self
            .store
            .list_integrations(msp_id)
            .await?
            .iter()
            .map(|(tenant, integration)| self.view(tenant, integration, now))
            .collect())
    }

    /// Proves the MSP's app credentials, then saves them. Nothing is saved when the check fails.
    #[tracing::instrument(skip_all, fields(msp_id = %msp_id, tenant = %input.tenant))]
    pub async fn connect_identity_management(
        &self,
        msp_id: Uuid,
        actor: &AuditActor,
        input: IdentityManagementInput,
    ) -> Result<IntegrationView, IntegrationError> {
        let tenant_ref =
            TenantRef::parse(&input.tenant).map_err(|err| IntegrationError::InvalidInput {
                field: "tenant_id",
                problem: err.to_string(),
            })?;
        let client_id = input.client_id.trim().to_ascii_lowercase();
        if Uuid::parse_str(&client_id).is_err() {
            return Err(IntegrationError::InvalidInput {
                field: "client_id",
                problem: "must be the app's Application (client) ID, a GUID".into(),
            });
        }
        if input.client_secret.expose_secret().trim().is_empty() {
            return Err(IntegrationError::InvalidInput {
                field: "client_secret",
                problem: "is empty; paste the secret's Value".into(),
            });
        }
        let now = Utc::now();
        let expires_at = input
            .secret_expires_at
            .unwrap_or(now + Duration::days(DEFAULT_SECRET_LIFETIME_DAYS));
        if expires_at <= now {
            return Err(IntegrationError::InvalidInput {
                field: "secret_expires_at",
                problem: "is in the past: that secret has expired; create a new one".into(),
            });
        }
        let credentials = ClientCredentials {
            tenant: tenant_ref.clone(),
            client_id: client_id.clone(),
            client_secret: SecretString::from(
                input.client_secret.expose_secret().trim().to_owned(),
            ),
        };
        let result = self.microsoft.graph.probe_users(&credentials).await;
        if let Err(err) = result {
            self.audit_integration(
                msp_id,
                actor,
                "integration.identity_management.connect",
                &tenant_ref.to_string(),
                AuditOutcome::Failure,
                err.request_id.clone(),
                Some(err.code().as_str()),
            )
            .await;
            return Err(err.into());
        }
        let tenant = self.tenant_for(msp_id, &credentials).await?;
        let integration = self
            .store
            .save_integration(IntegrationUpdate {
                tenant_id: tenant.id,
                kind: IntegrationKind::IdentityManagement,
                status: IntegrationStatus::Active,
                client_id,
                secret: Some(credentials.client_secret.clone()),
                secret_expires_at: Some(expires_at),
                last_checked_at: Some(now),
                last_check_code: Some("ok".into()),
                last_check_message: None,
            })
            .await?;
        self.audit_integration(
            msp_id,
            actor,
            "integration.identity_management.connect",
            &tenant.microsoft_tenant_id,
            AuditOutcome::Success,
            None,
            None,
        )
        .await;
        Ok(self.view(&tenant, &integration, now))
    }

    /// The admin-consent URL to send the customer's administrator to.
    #[tracing::instrument(skip_all, fields(msp_id = %msp_id))]
    pub async fn start_authenticator_consent(&self, msp_id: Uuid) -> Result<Url, IntegrationError> {
        let app = self
            .vouch_app
            .as_ref()
            .ok_or(IntegrationError::AppNotConfigured)?;
        let state = self
            .store
            .create_consent_state(msp_id, Duration::minutes(CONSENT_STATE_TTL_MINUTES))
            .await?;
        let mut url = self
            .login_url
            .join("organizations/v2.0/adminconsent")
            .map_err(|_| IntegrationError::AppNotConfigured)?;
        url.query_pairs_mut()
            .append_pair("client_id", &app.client_id)
            .append_pair("scope", &self.graph_scope)
            .append_pair("redirect_uri", self.consent_redirect_url.as_str())
            .append_pair("state", state.expose_secret());
        Ok(url)
    }

    /// Handles Microsoft's redirect after admin consent: checks `state`, the prerequisites,
    /// and creates the connector credential. Returns the tenant's integration.
    pub async fn complete_authenticator_consent(
        &self,
        callback: ConsentCallback,
    ) -> Result<IntegrationView, IntegrationError> {
        self.complete_authenticator_consent_report(callback)
            .await
            .result
    }

    /// Like [`Self::complete_authenticator_consent`], with each prerequisite's outcome for
    /// the result page.
    #[tracing::instrument(skip_all, fields(tenant = callback.tenant.as_deref()))]
    pub async fn complete_authenticator_consent_report(
        &self,
        callback: ConsentCallback,
    ) -> ConsentReport {
        let state = callback.state.as_deref().unwrap_or_default();
        let msp_id = match self.store.consume_consent_state(state).await {
            Ok(Some(msp_id)) => msp_id,
            Ok(None) => {
                return ConsentReport::new(Err(IntegrationError::ConsentStateInvalid), None);
            }
            Err(err) => return ConsentReport::new(Err(err.into()), None),
        };
        let actor = AuditActor {
            kind: ActorKind::CustomerAdmin,
            id: None,
            name: None,
        };
        if let Some(error) = callback.error.as_deref() {
            let description = callback.error_description.clone().unwrap_or_default();
            let err = classify_consent_error(error, &description);
            self.audit_integration(
                msp_id,
                &actor,
                "integration.authenticator.consent",
                callback.tenant.as_deref().unwrap_or("unknown"),
                AuditOutcome::Failure,
                None,
                Some(err.code().as_str()),
            )
            .await;
            return ConsentReport::new(Err(err), Some(PREREQ_CONSENT));
        }
        let Some(tenant_ref) = callback
            .tenant
            .as_deref()
            .and_then(|t| TenantRef::parse(t).ok())
        else {
            return ConsentReport::new(
                Err(IntegrationError::ConsentFailed(
                    "the redirect carried no tenant".into(),
                )),
                Some(PREREQ_CONSENT),
            );
        };
        if !callback
            .admin_consent
            .as_deref()
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return ConsentReport::new(Err(IntegrationError::ConsentRefused), Some(PREREQ_CONSENT));
        }
        let result = self.onboard_authenticator(msp_id, &tenant_ref).await;
        let (outcome, code) = match &result {
            Ok(_) => (AuditOutcome::Success, None),
            Err((_, err)) => (AuditOutcome::Failure, Some(err.code().as_str())),
        };
        self.audit_integration(
            msp_id,
            &actor,
            "integration.authenticator.consent",
            tenant_ref.as_str(),
            outcome,
            None,
            code,
        )
        .await;
        match result {
            Ok(view) => ConsentReport::new(Ok(view), None),
            Err((at, err)) => ConsentReport::new(Err(err), Some(at)),
        }
    }

    /// The onboarding after consent; a failure names the prerequisite it failed (its index
    /// in [`CONSENT_PREREQUISITES`]).
    async fn onboard_authenticator(
        &self,
        msp_id: Uuid,
        tenant_ref: &TenantRef,
    ) -> Result<IntegrationView, (usize, IntegrationError)> {
        let app = self
            .vouch_app
            .as_ref()
            .ok_or((PREREQ_SIGN_IN, IntegrationError::AppNotConfigured))?;
        let graph_credentials = ClientCredentials {
            tenant: tenant_ref.clone(),
            client_id: app.client_id.clone(),
            client_secret: app.client_secret.clone(),
        };
        let tenant = self
            .tenant_for(msp_id, &graph_credentials)
            .await
            .map_err(|err| (PREREQ_SIGN_IN, err))?;
        let now = Utc::now();
        match self.microsoft.graph.has_entra_p1(&graph_credentials).await {
            Ok(true) => {}
            Ok(false) => {
                let err = MicrosoftError::new(MicrosoftErrorKind::NoP1Licence);
                self.record_failed_check(
                    &tenant,
                    IntegrationKind::Authenticator,
                    &app.client_id,
                    &err,
                )
                .await
                .map_err(|err| (PREREQ_P1, err))?;
                return Err((PREREQ_P1, err.into()));
            }
            Err(err) => return Err((PREREQ_P1, err.into())),
        }
        let credential = self
            .create_connector_credential(&graph_credentials)
            .await
            .map_err(|err| (PREREQ_CONNECTOR, err))?;
        let integration = self
            .store
            .save_integration(IntegrationUpdate {
                tenant_id: tenant.id,
                kind: IntegrationKind::Authenticator,
                status: IntegrationStatus::Active,
                client_id: MFA_CLIENT_APP_ID.into(),
                secret: Some(credential.0),
                secret_expires_at: Some(credential.1),
                last_checked_at: Some(now),
                last_check_code: Some("ok".into()),
                last_check_message: None,
            })
            .await
            .map_err(|err| (PREREQ_CONNECTOR, err.into()))?;
        Ok(self.view(&tenant, &integration, now))
    }

    /// Ensures the MFA client's service principal, adds a credential to it, and waits until
    /// Microsoft accepts it (a new secret can take seconds to propagate).
    async fn create_connector_credential(
        &self,
        graph_credentials: &ClientCredentials,
    ) -> Result<(SecretString, DateTime<Utc>), IntegrationError> {
        let graph = &self.microsoft.graph;
        let principal = graph
            .ensure_service_principal(graph_credentials, MFA_CLIENT_APP_ID)
            .await?;
        let end = Utc::now() + Duration::days(CONNECTOR_CREDENTIAL_LIFETIME_DAYS);
        let credential = graph
            .add_password(graph_credentials, &principal.id, "Vouch MFA connector", end)
            .await?;
        let connector_credentials = ClientCredentials {
            tenant: graph_credentials.tenant.clone(),
            client_id: MFA_CLIENT_APP_ID.into(),
            client_secret: credential.secret_text.clone(),
        };
        let started = std::time::Instant::now();
        let mut wait = StdDuration::from_millis(250);
        loop {
            match self
                .microsoft
                .tokens
                .token(&connector_credentials, Audience::MfaConnector)
                .await
            {
                Ok(_) => break,
                Err(err)
                    if err.kind == MicrosoftErrorKind::InvalidClientSecret
                        && started.elapsed() + wait < CREDENTIAL_PROPAGATION_BUDGET =>
                {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(StdDuration::from_secs(8));
                }
                Err(err) => return Err(err.into()),
            }
        }
        Ok((credential.secret_text, credential.end_date_time))
    }

    /// Checks an integration again, records the outcome and audits it
    /// (`integration.{kind}.recheck`, its outcome and code).
    #[tracing::instrument(skip_all, fields(msp_id = %msp_id, integration_id = %id))]
    pub async fn recheck(
        &self,
        msp_id: Uuid,
        actor: &AuditActor,
        id: Uuid,
    ) -> Result<IntegrationView, IntegrationError> {
        let (tenant, integration) = self.owned(msp_id, id).await?;
        let outcome = match integration.kind {
            IntegrationKind::IdentityManagement => {
                let credentials = self.identity_credentials(&tenant, &integration)?;
                // A cached token would outlive a revoked or expired secret: ask afresh.
                self.microsoft
                    .tokens
                    .forget(&credentials, Audience::Graph)
                    .await;
                self.microsoft.graph.probe_users(&credentials).await
            }
            IntegrationKind::Authenticator => self.check_authenticator(&tenant, &integration).await,
        };
        let now = Utc::now();
        let (status, code, message) = match &outcome {
            Ok(()) => (IntegrationStatus::Active, "ok".to_owned(), None),
            Err(err) => (
                IntegrationStatus::Failed,
                err.code().as_str().to_owned(),
                Some(err.message()),
            ),
        };
        let saved = self
            .store
            .save_integration(IntegrationUpdate {
                tenant_id: tenant.id,
                kind: integration.kind,
                status,
                client_id: integration.client_id.clone(),
                secret: integration.secret.clone(),
                secret_expires_at: integration.secret_expires_at,
                last_checked_at: Some(now),
                last_check_code: Some(code),
                last_check_message: message,
            })
            .await?;
        let (outcome, request_id, code) = match &outcome {
            Ok(()) => (AuditOutcome::Success, None, None),
            Err(err) => (
                AuditOutcome::Failure,
                err.request_id.clone(),
                Some(err.code().as_str()),
            ),
        };
        self.audit_integration(
            msp_id,
            actor,
            &format!("integration.{}.recheck", integration.kind.as_str()),
            &tenant.microsoft_tenant_id,
            outcome,
            request_id,
            code,
        )
        .await;
        Ok(self.view(&tenant, &saved, now))
    }

    async fn check_authenticator(
        &self,
        tenant: &Tenant,
        integration: &TenantIntegration,
    ) -> Result<(), MicrosoftError> {
        let Some(app) = self.vouch_app.as_ref() else {
            return Err(MicrosoftError::new(MicrosoftErrorKind::AppNotConsented));
        };
        let tenant_ref = TenantRef::parse(&tenant.microsoft_tenant_id)
            .map_err(|_| MicrosoftError::new(MicrosoftErrorKind::TenantNotFound))?;
        let graph_credentials = ClientCredentials {
            tenant: tenant_ref.clone(),
            client_id: app.client_id.clone(),
            client_secret: app.client_secret.clone(),
        };
        if !self
            .microsoft
            .graph
            .has_entra_p1(&graph_credentials)
            .await?
        {
            return Err(MicrosoftError::new(MicrosoftErrorKind::NoP1Licence));
        }
        let secret = integration
            .secret
            .clone()
            .ok_or_else(|| MicrosoftError::new(MicrosoftErrorKind::InvalidClientSecret))?;
        let connector_credentials = ClientCredentials {
            tenant: tenant_ref,
            client_id: integration.client_id.clone(),
            client_secret: secret,
        };
        self.microsoft
            .tokens
            .forget(&connector_credentials, Audience::MfaConnector)
            .await;
        self.microsoft
            .tokens
            .token(&connector_credentials, Audience::MfaConnector)
            .await
            .map(|_| ())
    }

    #[tracing::instrument(skip_all, fields(msp_id = %msp_id, integration_id = %id))]
    pub async fn remove(
        &self,
        msp_id: Uuid,
        actor: &AuditActor,
        id: Uuid,
    ) -> Result<(), IntegrationError> {
        let (tenant, integration) = self.owned(msp_id, id).await?;
        self.store.delete_integration(integration.id).await?;
        self.audit_integration(
            msp_id,
            actor,
            &format!("integration.{}.remove", integration.kind.as_str()),
            &tenant.microsoft_tenant_id,
            AuditOutcome::Success,
            None,
            None,
        )
        .await;
        Ok(())
    }

    /// Replaces every connector credential that ends within [`EXPIRY_WARNING_DAYS`] of `now`.
    /// Returns how many were renewed; failures are recorded on the integration and logged.
    #[tracing::instrument(skip_all)]
    pub async fn renew_connector_credentials(
        &self,
        now: DateTime<Utc>,
    ) -> Result<usize, IntegrationError> {
        let Some(app) = self.vouch_app.clone() else {
            return Ok(0);
        };
        let due = self
            .store
            .integrations_expiring_before(
                IntegrationKind::Authenticator,
                now + Duration::days(EXPIRY_WARNING_DAYS),
            )
            .await?;
        let mut renewed = 0;
        for (tenant, integration) in due {
            let Ok(tenant_ref) = TenantRef::parse(&tenant.microsoft_tenant_id) else {
                continue;
            };
            let graph_credentials = ClientCredentials {
                tenant: tenant_ref,
                client_id: app.client_id.clone(),
                client_secret: app.client_secret.clone(),
            };
            match self.create_connector_credential(&graph_credentials).await {
                Ok((secret, end)) => {
                    self.store
                        .save_integration(IntegrationUpdate {
                            tenant_id: tenant.id,
                            kind: IntegrationKind::Authenticator,
                            status: IntegrationStatus::Active,
                            client_id: integration.client_id.clone(),
                            secret: Some(secret),
                            secret_expires_at: Some(end),
                            last_checked_at: Some(Utc::now()),
                            last_check_code: Some("renewed".into()),
                            last_check_message: None,
                        })
                        .await?;
                    renewed += 1;
                }
                Err(err) => {
                    tracing::warn!(tenant = %tenant.microsoft_tenant_id, code = err.code().as_str(), "connector credential renewal failed");
                    if let IntegrationError::Microsoft(ms) = &err {
                        self.record_failed_check(
                            &tenant,
                            IntegrationKind::Authenticator,
                            &integration.client_id,
                            ms,
                        )
                        .await?;
                    }
                }
            }
        }
        Ok(renewed)
    }

    fn identity_credentials(
        &self,
        tenant: &Tenant,
        integration: &TenantIntegration,
    ) -> Result<ClientCredentials, IntegrationError> {
        Ok(ClientCredentials {
            tenant: TenantRef::parse(&tenant.microsoft_tenant_id).map_err(|err| {
                IntegrationError::InvalidInput {
                    field: "tenant_id",
                    problem: err.to_string(),
                }
            })?,
            client_id: integration.client_id.clone(),
            client_secret: integration
                .secret
                .clone()
                .ok_or(IntegrationError::Microsoft(MicrosoftError::new(
                    MicrosoftErrorKind::InvalidClientSecret,
                )))?,
        })
    }

    async fn owned(
        &self,
        msp_id: Uuid,
        id: Uuid,
    ) -> Result<(Tenant, TenantIntegration), IntegrationError> {
        match self.store.get_integration_by_id(id).await? {
            // Another MSP's integration is "not found", not "forbidden": no existence oracle.
            Some((tenant, integration)) if tenant.msp_id == msp_id => Ok((tenant, integration)),
            _ => Err(IntegrationError::NotFound),
        }
    }

    /// The MSP's tenant row for these credentials' tenant, created on first contact with the
    /// tenant's name and verified domains when Graph tells them.
    async fn tenant_for(
        &self,
        msp_id: Uuid,
        credentials: &ClientCredentials,
    ) -> Result<Tenant, IntegrationError> {
        let organization = match self.microsoft.graph.organization(credentials).await {
            Ok(org) => org,
            // The name and domains are a convenience; a missing read permission is not fatal.
            Err(err) if matches!(err.kind, MicrosoftErrorKind::MissingPermission { .. }) => None,
            Err(err) => return Err(err.into()),
        };
        let tenant_id = organization
            .as_ref()
            .map(|org| org.id.to_ascii_lowercase())
            .unwrap_or_else(|| credentials.tenant.as_str().to_owned());
        let read_name = organization
            .as_ref()
            .and_then(|org| org.display_name.clone())
            .filter(|name| !name.trim().is_empty());
        let read_domains: Option<Vec<String>> = organization.map(|org| {
            org.verified_domains
                .into_iter()
                .map(|d| d.name.to_ascii_lowercase())
                .collect()
        });
        if let Some(existing) = self
            .store
            .find_tenant_by_microsoft_id(msp_id, &tenant_id)
            .await?
        {
            // The first integration may not have been allowed to read the organization (the
            // tenant then carries its GUID as its name): whatever a later one reads wins.
            return match (read_name, read_domains) {
                (Some(name), Some(domains))
                    if name != existing.display_name || domains != existing.verified_domains =>
                {
                    Ok(self
                        .store
                        .update_tenant_details(existing.id, name, domains)
                        .await?)
                }
                _ => Ok(existing),
            };
        }
        let display_name = read_name.unwrap_or_else(|| tenant_id.clone());
        let verified_domains = read_domains.unwrap_or_default();
        Ok(self
            .store
            .create_tenant(NewTenant {
                msp_id,
                microsoft_tenant_id: tenant_id,
                display_name,
                verified_domains,
            })
            .await?)
    }

    async fn record_failed_check(
        &self,
        tenant: &Tenant,
        kind: IntegrationKind,
        client_id: &str,
        err: &MicrosoftError,
    ) -> Result<(), IntegrationError> {
        let existing = self.store.get_integration(tenant.id, kind).await?;
        self.store
            .save_integration(IntegrationUpdate {
                tenant_id: tenant.id,
                kind,
                status: IntegrationStatus::Failed,
                client_id: client_id.to_owned(),
                secret: existing.as_ref().and_then(|i| i.secret.clone()),
                secret_expires_at: existing.as_ref().and_then(|i| i.secret_expires_at),
                last_checked_at: Some(Utc::now()),
                last_check_code: Some(err.code().as_str().to_owned()),
                last_check_message: Some(err.message()),
            })
            .await?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn audit_integration(
        &self,
        msp_id: Uuid,
        actor: &AuditActor,
        action: &str,
        tenant: &str,
        outcome: AuditOutcome,
        upstream_request_id: Option<String>,
        code: Option<&str>,
    ) {
        let event = NewAuditEvent {
            msp_id,
            actor: actor.clone(),
            action: action.to_owned(),
            subject_kind: Some("tenant".into()),
            subject_id: Some(tenant.to_owned()),
            subject_name: None,
            psa_ticket_id: None,
            outcome,
            upstream_request_id,
            details: serde_json::json!({ "code": code }),
        };
        if let Err(err) = self.store.append(event).await {
            tracing::error!(error = %err, "audit append failed");
        }
    }
}

/// Microsoft's consent errors, by AADSTS code (never by message wording).
fn classify_consent_error(error: &str, description: &str) -> IntegrationError {
    let code = description
        .split(|c: char| !c.is_ascii_alphanumeric())
        .find(|word| word.starts_with("AADSTS"))
        .unwrap_or("");
    match code {
        "AADSTS65004" => IntegrationError::ConsentRefused,
        "AADSTS90094" | "AADSTS90008" => IntegrationError::ConsentAdminLackedRole,
        _ if error == "access_denied" => IntegrationError::ConsentRefused,
        _ => IntegrationError::ConsentFailed(format!("{error} {code}").trim().to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_states() {
        let now = Utc::now();
        assert_eq!(ExpiryState::of(None, now), ExpiryState::Unknown);
        assert_eq!(
            ExpiryState::of(Some(now - Duration::days(1)), now),
            ExpiryState::Expired
        );
        assert_eq!(
            ExpiryState::of(Some(now + Duration::days(29)), now),
            ExpiryState::ExpiringSoon
        );
        assert_eq!(
            ExpiryState::of(Some(now + Duration::days(31)), now),
            ExpiryState::Ok
        );
    }

    #[test]
    fn consent_errors_by_aadsts_code() {
        assert_eq!(
            classify_consent_error(
                "access_denied",
                "AADSTS65004: User declined to consent to access the app."
            ),
            IntegrationError::ConsentRefused
        );
        assert_eq!(
            classify_consent_error(
                "access_denied",
                "AADSTS90094: The grant requires admin permission."
            ),
            IntegrationError::ConsentAdminLackedRole
        );
        assert!(matches!(
            classify_consent_error("invalid_request", "AADSTS50011: redirect mismatch"),
            IntegrationError::ConsentFailed(_)
        ));
    }
}
