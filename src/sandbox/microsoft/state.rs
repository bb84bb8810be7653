//! The sandbox's directory: tenants, users, apps, issued tokens and waiting pushes. Plain data
//! behind the state mutex of [`super::Shared`] (the request log and the faults are the
//! skeleton's).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

use super::{PendingPush, PushAnswer, PushScript, SandboxApp};

pub(super) struct State {
    pub tenants: Vec<Tenant>,
    /// Apps the sandbox knows about wherever they live (for the consent page and
    /// `POST /servicePrincipals`).
    pub registrations: Vec<AppRegistration>,
    /// Credentials usable in one tenant each (registered or consented apps).
    pub apps: Vec<SandboxApp>,
    pub tokens: HashMap<String, IssuedToken>,
    pub pending: Vec<PendingEntry>,
    /// Push scripts by lower-case UPN.
    pub scripts: HashMap<String, VecDeque<PushScript>>,
    pub push_timeout: Duration,
    /// How an unscripted push is answered, and after how long (`None`: it waits for the
    /// phone page, `answer_push` or the timeout).
    pub push_hold: Option<super::PushHold>,
    pub propagation_delay: Duration,
    /// The identifiers of the services this login issues tokens for: the cloud the sandbox
    /// stands for.
    pub audiences: CloudAudiences,
}

/// The token audiences of one Microsoft cloud, as Entra knows them: a token is issued only
/// for a service principal of the cloud, named by its identifier (not by any address a
/// client may send its requests to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudAudiences {
    /// Graph's identifier, e.g. `https://graph.microsoft.com` (v2 scope `{it}/.default`).
    pub graph: String,
    /// The MFA connector's identifier (v1 `resource`).
    pub connector: String,
}

pub(super) struct Tenant {
    pub id: String,
    pub display_name: String,
    pub domains: Vec<Domain>,
    pub skus: Vec<Sku>,
    pub users: Vec<User>,
    pub service_principals: Vec<ServicePrincipal>,
}

pub(super) struct Domain {
    pub name: String,
    pub is_default: bool,
    pub is_initial: bool,
}

pub(super) struct Sku {
    pub sku_id: String,
    pub part_number: String,
    /// `(servicePlanId, servicePlanName)`.
    pub plans: Vec<(String, String)>,
    pub enabled_units: u32,
    pub consumed_units: u32,
}

pub(super) struct User {
    pub id: String,
    pub upn: String,
    pub display_name: String,
    pub mail: Option<String>,
    pub account_enabled: bool,
    pub on_premises_sync: bool,
    pub mobile_phone: Option<String>,
    pub proxy_addresses: Vec<String>,
    pub phone_methods: Vec<PhoneMethod>,
    pub authenticator: Option<AuthenticatorDevice>,
    /// `userPreferredMethodForSecondaryAuthentication`.
    pub preferred_method: String,
    pub system_preferred_enabled: bool,
    pub roles: Vec<DirectoryRole>,
    /// Blocked in the MFA service (the connector answers `UserIsBlocked`).
    pub mfa_blocked: bool,
    /// Last password set through Graph, with `forceChangePasswordNextSignIn`.
    pub password: Option<(String, bool)>,
}

pub(super) struct PhoneMethod {
    /// `mobile`, `alternateMobile` or `office`.
    pub phone_type: &'static str,
    pub number: String,
}

pub(super) struct AuthenticatorDevice {
    pub id: String,
    pub display_name: String,
    pub created: DateTime<Utc>,
}

pub(super) struct DirectoryRole {
    /// The role's object id in the tenant.
    pub id: String,
    pub display_name: String,
    pub template_id: String,
}

pub(super) struct ServicePrincipal {
    pub id: String,
    pub app_id: String,
    pub display_name: String,
    pub app_owner_tenant_id: String,
    pub passwords: Vec<SpPassword>,
}

pub(super) struct SpPassword {
    pub key_id: String,
    pub display_name: Option<String>,
    pub secret: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Before this the secret is refused, as while a new credential propagates.
    pub usable_from: Instant,
}

pub(super) struct AppRegistration {
    pub client_id: String,
    pub display_name: String,
    /// The tenant owning the registration.
    pub owner_tenant_id: String,
    /// The secret its consented copies use (multi-tenant apps).
    pub secret: String,
    pub permissions: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Audience {
    Graph,
    MfaConnector,
}

pub(super) struct IssuedToken {
    pub tenant_id: String,
    #[allow(dead_code)] // kept for debugging and future checks (who called)
    pub client_id: String,
    pub audience: Audience,
    pub permissions: Vec<String>,
    pub expires_at: Instant,
}

pub(super) struct PendingEntry {
    pub push: PendingPush,
    pub answer: oneshot::Sender<Outcome>,
}

/// How a push ended (besides timing out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Outcome {
    Approve,
    Deny,
    ReportFraud,
    ApproveAs(String),
}

impl From<PushAnswer> for Outcome {
    fn from(answer: PushAnswer) -> Outcome {
        match answer {
            PushAnswer::Approve => Outcome::Approve,
            PushAnswer::Deny => Outcome::Deny,
            PushAnswer::ReportFraud => Outcome::ReportFraud,
        }
    }
}

/// Why a client credential was refused (mapped to AADSTS codes by the login module).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum CredentialError {
    /// AADSTS700016.
    AppNotFound,
    /// AADSTS7000215.
    WrongSecret,
    /// AADSTS7000222.
    SecretExpired,
}

impl State {
    /// A tenant by GUID or verified domain (case-insensitive).
    pub fn tenant(&self, id_or_domain: &str) -> Option<&Tenant> {
        self.tenants.iter().find(|t| t.answers_to(id_or_domain))
    }

    pub fn tenant_mut(&mut self, id_or_domain: &str) -> Option<&mut Tenant> {
        self.tenants.iter_mut().find(|t| t.answers_to(id_or_domain))
    }

    pub fn registration(&self, client_id: &str) -> Option<&AppRegistration> {
        self.registrations
            .iter()
            .find(|r| r.client_id.eq_ignore_ascii_case(client_id))
    }

    /// Registers an app's credential in a tenant, making the app known and giving it a
    /// service principal there.
    pub fn add_app(&mut self, mut app: SandboxApp) {
        // Stored by GUID, whether the caller named the tenant by GUID or domain.
        if let Some(tenant) = self.tenant(&app.tenant_id) {
            app.tenant_id = tenant.id.clone();
        }
        if self.registration(&app.client_id).is_none() {
            self.registrations.push(AppRegistration {
                client_id: app.client_id.clone(),
                display_name: format!("App {}", app.client_id),
                owner_tenant_id: app.tenant_id.clone(),
                secret: app.secret.clone(),
                permissions: app.permissions.clone(),
            });
        }
        self.ensure_service_principal(&app.tenant_id, &app.client_id);
        self.apps.push(app);
    }

    /// Grants a known app its permissions in a tenant (admin consent): replaces an earlier
    /// grant of the same app there.
    pub fn consent(&mut self, tenant_id: &str, client_id: &str) {
        let Some(registration) = self.registration(client_id) else {
            return;
        };
        let app = SandboxApp {
            client_id: registration.client_id.clone(),
            secret: registration.secret.clone(),
            secret_expires_at: None,
            tenant_id: tenant_id.to_owned(),
            permissions: registration.permissions.clone(),
        };
        self.apps
            .retain(|a| !(a.client_id == app.client_id && a.tenant_id == tenant_id));
        self.ensure_service_principal(tenant_id, &app.client_id);
        self.apps.push(app);
    }

    /// Creates the service principal of a known app in a tenant unless it exists. Returns
    /// false when the tenant or the app is unknown.
    pub fn ensure_service_principal(&mut self, tenant_id: &str, app_id: &str) -> bool {
        let Some((display_name, owner)) = self
            .registration(app_id)
            .map(|r| (r.display_name.clone(), r.owner_tenant_id.clone()))
        else {
            return false;
        };
        let Some(tenant) = self.tenant_mut(tenant_id) else {
            return false;
        };
        if tenant.service_principal_by_app(app_id).is_none() {
            tenant.service_principals.push(ServicePrincipal {
                id: super::new_guid(),
                app_id: app_id.to_owned(),
                display_name,
                app_owner_tenant_id: owner,
                passwords: Vec::new(),
            });
        }
        true
    }

    /// Checks a client credential in a tenant; on success, the app's permissions there.
    ///
    /// Two kinds of credentials exist: registered/consented apps ([`SandboxApp`]) and
    /// secrets added to a service principal with `addPassword` (those carry no Graph
    /// permissions: they are for the MFA connector).
    pub fn authenticate(
        &self,
        tenant_id: &str,
        client_id: &str,
        secret: &str,
        now: DateTime<Utc>,
        instant: Instant,
    ) -> Result<Vec<String>, CredentialError> {
        let apps: Vec<&SandboxApp> = self
            .apps
            .iter()
            .filter(|a| {
                a.client_id.eq_ignore_ascii_case(client_id)
                    && a.tenant_id.eq_ignore_ascii_case(tenant_id)
            })
            .collect();
        let sp_passwords: Vec<&SpPassword> = self
            .tenant(tenant_id)
            .and_then(|t| t.service_principal_by_app(client_id))
            .map(|sp| sp.passwords.iter().collect())
            .unwrap_or_default();
        let sp_exists = self
            .tenant(tenant_id)
            .is_some_and(|t| t.service_principal_by_app(client_id).is_some());
        if apps.is_empty() && !sp_exists {
            return Err(CredentialError::AppNotFound);
        }
        if let Some(app) = apps.iter().find(|a| a.secret == secret) {
            if app.secret_expires_at.is_some_and(|end| end <= now) {
                return Err(CredentialError::SecretExpired);
            }
            return Ok(app.permissions.clone());
        }
        if let Some(password) = sp_passwords.iter().find(|p| p.secret == secret) {
            if password.end <= now {
                return Err(CredentialError::SecretExpired);
            }
            if password.usable_from > instant {
                return Err(CredentialError::WrongSecret);
            }
            return Ok(Vec::new());
        }
        Err(CredentialError::WrongSecret)
    }

    /// The token if it is known, else `None` (expired ones are reported by the caller).
    pub fn token(&self, token: &str) -> Option<&IssuedToken> {
        self.tokens.get(token)
    }

    /// Remembers a new token, forgetting expired ones.
    pub fn issue_token(&mut self, token: String, issued: IssuedToken) {
        let now = Instant::now();
        // Expired tokens are kept for an hour so Graph can still say "expired".
        self.tokens
            .retain(|_, t| t.expires_at + Duration::from_secs(3600) > now);
        self.tokens.insert(token, issued);
    }
}

impl Tenant {
    fn answers_to(&self, id_or_domain: &str) -> bool {
        self.id.eq_ignore_ascii_case(id_or_domain)
            || self
                .domains
                .iter()
                .any(|d| d.name.eq_ignore_ascii_case(id_or_domain))
    }

    /// A user by object id or UPN (case-insensitive).
    pub fn user(&self, id_or_upn: &str) -> Option<&User> {
        self.users.iter().find(|u| u.answers_to(id_or_upn))
    }

    pub fn user_mut(&mut self, id_or_upn: &str) -> Option<&mut User> {
        self.users.iter_mut().find(|u| u.answers_to(id_or_upn))
    }

    pub fn service_principal_by_app(&self, app_id: &str) -> Option<&ServicePrincipal> {
        self.service_principals
            .iter()
            .find(|sp| sp.app_id.eq_ignore_ascii_case(app_id))
    }
}

impl User {
    fn answers_to(&self, id_or_upn: &str) -> bool {
        self.id.eq_ignore_ascii_case(id_or_upn) || self.upn.eq_ignore_ascii_case(id_or_upn)
    }

    /// What "system-preferred" would pick: the strongest registered method.
    pub fn system_preferred_method(&self) -> Option<&'static str> {
        if self.authenticator.is_some() {
            Some("push")
        } else if self.phone_methods.iter().any(|p| p.phone_type == "mobile") {
            Some("sms")
        } else {
            None
        }
    }
}
