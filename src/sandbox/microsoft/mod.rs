//! The Microsoft sandbox: one local HTTP server speaking the wire protocols of the Microsoft
//! services Vouch uses (see `shared/reference/microsoft-wire.md`), so that the tests and
//! `vouch demo` exercise the real client code without the internet.
//!
//! Everything is served by one server under path prefixes:
//!
//! | prefix     | stands for                                   | module    |
//! |------------|----------------------------------------------|-----------|
//! | `/login/`  | `login.microsoftonline.com` (tokens, consent) | [`login`] |
//! | `/graph/`  | `graph.microsoft.com` (`v1.0` and `beta`, and their `$batch`) | [`graph`], [`batch`] |
//! | `/mfa/`    | the MFA (NPS extension) connector             | [`mfa`]   |
//! | `/phone`   | a demo "Authenticator phone" page             | [`phone`] |
//!
//! Built on the sandboxes' one server skeleton (`server.rs`), which binds, records the
//! requests and injects the faults. The directory lives in its state mutex, never held across
//! an `.await`; a held push waits on a tokio oneshot channel instead.
//!
//! Choices made where the reference says "unconfirmed" are named constants or doc comments
//! next to the code that makes them, so they can be changed in one place.

mod batch;
mod filter;
mod graph;
mod login;
mod mfa;
mod phone;
mod seed;
mod state;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use poem::http::StatusCode;
use poem::{Request, Response};

use crate::sandbox::server::{self, Incoming, pair};
use crate::sandbox::{
    ALPHANUMERIC, html_escape, html_response, json_response, plain, random_string,
};
use state::{Outcome, State};

pub use crate::sandbox::Fault;

pub use graph::{ON_PREMISES_MESSAGE, PASSWORD_COMPLEXITY_ERROR_CODE, PASSWORD_COMPLEXITY_MESSAGE};

/// The demo customer: "Contoso (demo customer)", with Entra ID P1 (through Business Premium).
pub const DEMO_TENANT_ID: &str = "7f3c1a52-5b1e-4c8e-9a47-2f6d1e0b9c11";
/// The demo customer's display name.
pub const DEMO_TENANT_NAME: &str = "Contoso (demo customer)";
/// The demo customer's default verified domain.
pub const DEMO_TENANT_DOMAIN: &str = "contoso.example";
/// A second customer, "Fabrikam (no P1)", whose licences do not include Entra ID P1.
pub const NO_P1_TENANT_ID: &str = "2b8e6d40-3c7a-4f19-b5d2-9e0a1c4f7b63";
/// The second customer's display name.
pub const NO_P1_TENANT_NAME: &str = "Fabrikam (no P1)";
/// The second customer's verified domain.
pub const NO_P1_TENANT_DOMAIN: &str = "fabrikam.example";
/// A third customer, "Tailspin Toys", with no users: its name is all the PSA sandboxes'
/// "Tailspin Toys Inc." has in common with it (for suggested company mappings).
pub const TAILSPIN_TENANT_ID: &str = "9c4d2e1f-7a6b-4c3d-8e2f-1a0b9c8d7e65";
/// The third customer's display name.
pub const TAILSPIN_TENANT_NAME: &str = "Tailspin Toys";
/// The third customer's verified domain.
pub const TAILSPIN_TENANT_DOMAIN: &str = "tailspintoys.example";

/// Vouch's own multi-tenant app registration (consented nowhere until an admin accepts the
/// consent page).
pub const VOUCH_APP_CLIENT_ID: &str = "5d3c0f6e-8a51-4c47-9b1e-0a9e3f1c2b7d";
/// The secret of Vouch's own app registration.
pub const VOUCH_APP_SECRET: &str = "sandbox-vouch-app-secret";
/// The application permissions Vouch's app asks for, granted by admin consent.
pub const VOUCH_APP_PERMISSIONS: &[&str] = &[
    "User.Read.All",
    "UserAuthenticationMethod.ReadWrite.All",
    "User-PasswordProfile.ReadWrite.All",
    "Directory.Read.All",
    "Organization.Read.All",
    "Application.ReadWrite.All",
];

/// A single-tenant "Identity Management" app registered by the customer in the demo tenant
/// (the set-up where the MSP pastes a client id and secret instead of using consent).
pub const IDENTITY_APP_CLIENT_ID: &str = "c0ffee00-1d3a-4e2b-8f6a-000000000001";
/// The secret of the Identity Management app (expires 700 days after the sandbox started).
pub const IDENTITY_APP_SECRET: &str = "sandbox-identity-secret";
/// The permissions of the Identity Management app: note there is no
/// `Application.ReadWrite.All`, so it cannot create the MFA connector credential.
pub const IDENTITY_APP_PERMISSIONS: &[&str] = &[
    "User.Read.All",
    "UserAuthenticationMethod.ReadWrite.All",
    "User-PasswordProfile.ReadWrite.All",
    "Directory.Read.All",
    "Organization.Read.All",
];

/// The first-party "Azure Multi-Factor Auth Client" app whose service principal carries the
/// connector credential.
pub const MFA_CLIENT_APP_ID: &str = "981f26a1-7f43-403b-a875-f8b09b8cd720";
/// The connector resource of the global cloud (v1 `resource` form field): the only one the
/// sandbox issues connector tokens for, unless [`MicrosoftSandbox::set_cloud_audiences`]
/// says otherwise. Any other resource is refused as Entra refuses it (AADSTS500011).
pub const MFA_CONNECTOR_RESOURCE: &str =
    "https://adnotifications.windowsazure.com/StrongAuthenticationService.svc/Connector";
/// Graph's identifier in the global cloud: the v2 scope of a Graph token is
/// `https://graph.microsoft.com/.default`, whatever address Graph is reached at.
pub const GRAPH_AUDIENCE: &str = "https://graph.microsoft.com";
/// Graph's application id, which Entra also accepts in a scope (`{it}/.default`).
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

/// Service plan id of Entra ID P1 (`AAD_PREMIUM`).
pub const AAD_PREMIUM_PLAN_ID: &str = "41781fb2-bc02-4b7c-bd55-b576c07bb09d";
/// Service plan id of Entra ID P2 (`AAD_PREMIUM_P2`).
pub const AAD_PREMIUM_P2_PLAN_ID: &str = "eec0eb4f-6444-4f95-aba0-50c24d67f998";
/// Role template id of the Global Administrator directory role.
pub const GLOBAL_ADMIN_ROLE_TEMPLATE_ID: &str = "62e90394-69f5-4237-9190-012177145e10";

/// How long a `SyncCall` push waits for an answer before `PhoneAppNoResponse`, by default.
pub const DEFAULT_PUSH_TIMEOUT: Duration = Duration::from_secs(60);

/// The largest request body the sandbox reads (all real bodies are tiny).
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Which Microsoft service a request was addressed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// `login.microsoftonline.com`: tokens and the admin consent page (`/login/`).
    Login,
    /// `graph.microsoft.com` (`/graph/`).
    Graph,
    /// The MFA connector (`/mfa/`).
    Mfa,
}

/// How the next push to a user is answered, without anyone touching the phone page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushScript {
    /// Approved at once.
    Approve,
    /// Denied at once (`PhoneAppDenied`).
    Deny,
    /// "It's not me" at once (`PhoneAppFraudReported`).
    ReportFraud,
    /// No automatic answer: the push waits for `answer_push`, the phone page or the timeout.
    NeverAnswer,
    /// Approved after this long (if the push timeout has not passed first).
    ApproveAfter(Duration),
    /// Denied after this long (if the push timeout has not passed first).
    DenyAfter(Duration),
    /// Answers `Success` / `true` but names this other UPN in the response, to prove that
    /// Vouch checks the returned UPN.
    ApproveWithOtherUpn(String),
}

/// How every push without a script is answered, after how long: the user who looks at the
/// phone only after a while (the load harness holds thousands of pushes this way). The
/// connector holds a `SyncCall` until the user answers or the push times out (reference,
/// section 6), so a held push is an open HTTP call for `hold_for`, then an answer: `Some` as
/// if the phone answered, `None` for `PhoneAppNoResponse` (the user never looked). A hold
/// longer than the push timeout ends at the timeout, unanswered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushHold {
    pub hold_for: Duration,
    pub answer: Option<PushAnswer>,
}

/// A user added to a sandbox tenant with [`MicrosoftSandbox::add_users`]: enabled,
/// cloud-only, Microsoft Authenticator registered and the default method, no admin role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSandboxUser {
    /// The part before `@`; the UPN is in the tenant's default domain.
    pub local_part: String,
    pub display_name: String,
    /// The registered mobile phone (as Microsoft shows it, e.g. `+44 7700900123`), if any.
    pub mobile: Option<String>,
}

/// An answer given on the phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushAnswer {
    /// "Approve".
    Approve,
    /// "Deny".
    Deny,
    /// "It's not me".
    ReportFraud,
}

/// A push waiting for an answer (shown on the phone page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingPush {
    /// Opaque id, to pass to [`MicrosoftSandbox::answer_push`].
    pub id: String,
    /// The user the push was sent to, as Vouch sent it.
    pub upn: String,
    /// The tenant (GUID) of the connector token that sent it.
    pub tenant_id: String,
    /// When the push arrived.
    pub created_at: DateTime<Utc>,
}

/// One request as the sandbox received it (to Login, Graph or Mfa).
pub type RecordedRequest = crate::sandbox::RecordedRequest<Service>;

/// What the customer's administrator does on the admin consent page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentDecision {
    /// "Accept": grant the app its permissions (if the role allows it).
    Accept,
    /// "Cancel": refuse.
    Cancel,
}

impl ConsentDecision {
    /// The value of the page's `decision` button.
    fn form_value(self) -> &'static str {
        match self {
            ConsentDecision::Accept => "accept",
            ConsentDecision::Cancel => "cancel",
        }
    }
}

/// An app that can get tokens in one tenant: either registered there or consented there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxApp {
    pub client_id: String,
    pub secret: String,
    /// After this, the secret is refused with AADSTS7000222.
    pub secret_expires_at: Option<DateTime<Utc>>,
    /// The tenant GUID.
    pub tenant_id: String,
    /// Application permissions (app roles) granted, e.g. `User.Read.All`.
    pub permissions: Vec<String>,
}

/// A running Microsoft sandbox. Cheap to clone: every clone drives the same server.
///
/// The server task lives as long as the tokio runtime that called [`MicrosoftSandbox::start`]
/// (dropping the handles does not stop it, so a demo can keep only the URLs).
#[derive(Clone)]
pub struct MicrosoftSandbox {
    shared: Arc<Shared>,
}

/// What the server task and the handles share: the directory, the request log and the faults.
type Shared = server::Shared<State, Service>;

impl MicrosoftSandbox {
    /// Binds `127.0.0.1:0`, seeds the demo tenants, users and apps, and serves on a tokio
    /// task.
    pub async fn start() -> std::io::Result<MicrosoftSandbox> {
        let shared = server::start("Microsoft", seed::demo_state(), handle).await?;
        Ok(MicrosoftSandbox { shared })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.shared.base_url().to_owned()
    }

    /// Stands for `https://login.microsoftonline.com/`.
    pub fn login_url(&self) -> String {
        format!("{}/login/", self.shared.base_url())
    }

    /// Stands for `https://graph.microsoft.com/`.
    pub fn graph_url(&self) -> String {
        format!("{}/graph/", self.shared.base_url())
    }

    /// Stands for
    /// `https://adnotifications.windowsazure.com/StrongAuthenticationService.svc/Connector/`.
    pub fn mfa_connector_url(&self) -> String {
        format!("{}/mfa/", self.shared.base_url())
    }

    /// The demo "Authenticator phone" page (add `?upn=` to show one user's pushes only).
    pub fn phone_url(&self) -> String {
        format!("{}/phone", self.shared.base_url())
    }

    /// `(client_id, client_secret)` of Vouch's own multi-tenant app registration.
    pub fn vouch_app(&self) -> (String, String) {
        (VOUCH_APP_CLIENT_ID.to_owned(), VOUCH_APP_SECRET.to_owned())
    }

    /// Queues how the next push to `upn` (case-insensitive) is answered; scripts for one user
    /// are used in order, one per push that actually prompts the phone.
    pub fn script_push(&self, upn: &str, script: PushScript) {
        self.shared
            .state()
            .scripts
            .entry(upn.to_lowercase())
            .or_default()
            .push_back(script);
    }

    /// The pushes waiting for an answer, oldest first.
    pub fn pending_pushes(&self) -> Vec<PendingPush> {
        self.shared
            .state()
            .pending
            .iter()
            .map(|entry| entry.push.clone())
            .collect()
    }

    /// Answers a waiting push as the phone would. False when no push with that id is waiting
    /// (already answered, timed out, or the caller went away).
    pub fn answer_push(&self, id: &str, answer: PushAnswer) -> bool {
        self.shared.answer(id, Outcome::from(answer))
    }

    /// Makes the next `times` requests to `service` whose decoded path contains
    /// `path_contains` fail with `fault`. Faulted requests are still recorded.
    pub fn inject_fault(&self, service: Service, path_contains: &str, fault: Fault, times: usize) {
        self.shared
            .inject_fault(service, path_contains, fault, times);
    }

    /// Like [`MicrosoftSandbox::inject_fault`], for requests of `method` only (`PATCH`, say:
    /// a user's reads and its password change share a path).
    pub fn inject_fault_for_method(
        &self,
        service: Service,
        method: &str,
        path_contains: &str,
        fault: Fault,
        times: usize,
    ) {
        self.shared
            .inject_fault_for(service, Some(method), path_contains, fault, times);
    }

    /// Every request received (to Login, Graph and Mfa; not the phone page), oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests()
    }

    /// How many recorded requests went to `service` with `method` (case-insensitive) and a
    /// path containing `path_contains`.
    pub fn count(&self, service: Service, method: &str, path_contains: &str) -> usize {
        self.shared.count(service, method, path_contains)
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.clear_requests();
    }

    /// The last password set through Graph for that user, and its
    /// `forceChangePasswordNextSignIn`. `tenant_id` may also be a verified domain.
    pub fn user_password(&self, tenant_id: &str, upn: &str) -> Option<(String, bool)> {
        let state = self.shared.state();
        let tenant = state.tenant(tenant_id)?;
        tenant.user(upn)?.password.clone()
    }

    /// How long a `SyncCall` push waits for an answer before `PhoneAppNoResponse`
    /// (default [`DEFAULT_PUSH_TIMEOUT`]). Applies to pushes that arrive afterwards.
    pub fn set_push_timeout(&self, d: Duration) {
        self.shared.state().push_timeout = d;
    }

    /// Holds every push that has no script (see [`PushHold`]) from now on; `None` goes back
    /// to waiting for the phone. Pushes already waiting keep what they had.
    pub fn set_push_hold(&self, hold: Option<PushHold>) {
        self.shared.state().push_hold = hold;
    }

    /// How many pushes are waiting for an answer.
    pub fn pending_count(&self) -> usize {
        self.shared.state().pending.len()
    }

    /// The first waiting push to `upn` (case-insensitive), waiting up to `timeout` for one to
    /// arrive.
    pub async fn wait_for_push(&self, upn: &str, timeout: Duration) -> Option<PendingPush> {
        self.shared
            .wait_for(timeout, |state| {
                state
                    .pending
                    .iter()
                    .find(|entry| entry.push.upn.eq_ignore_ascii_case(upn))
                    .map(|entry| entry.push.clone())
            })
            .await
    }

    /// Adds users to a tenant (by GUID or domain), each with a fresh object id. Returns their
    /// UPNs; nothing when the tenant is unknown.
    pub fn add_users(&self, tenant_id: &str, users: &[NewSandboxUser]) -> Vec<String> {
        let mut state = self.shared.state();
        let Some(tenant) = state.tenant_mut(tenant_id) else {
            return Vec::new();
        };
        let domain = tenant
            .domains
            .iter()
            .find(|d| d.is_default)
            .or(tenant.domains.first())
            .map(|d| d.name.clone())
            .unwrap_or_default();
        users
            .iter()
            .map(|new| {
                let mut user = seed::user(
                    &new_guid(),
                    &new.local_part,
                    &new.display_name,
                    new.mobile.as_deref().unwrap_or(""),
                );
                seed::qualify(&mut user, &domain);
                let upn = user.upn.clone();
                tenant.users.push(user);
                upn
            })
            .collect()
    }

    /// Makes the sandbox's login stand for another cloud: from now on it issues Graph tokens
    /// only for the scope `{graph}/.default` and connector tokens only for the resource
    /// `connector` (defaults: [`GRAPH_AUDIENCE`], [`MFA_CONNECTOR_RESOURCE`]).
    pub fn set_cloud_audiences(&self, graph: &str, connector: &str) {
        self.shared.state().audiences = state::CloudAudiences {
            graph: graph.trim_end_matches('/').to_owned(),
            connector: connector.trim_end_matches('/').to_owned(),
        };
    }

    /// Secrets created by `addPassword` from now on are refused (AADSTS7000215, as Microsoft
    /// does while a new credential propagates) until `d` has passed (default zero).
    pub fn set_credential_propagation_delay(&self, d: Duration) {
        self.shared.state().propagation_delay = d;
    }

    /// Registers (or consents) an app in one tenant. An app id the sandbox did not know also
    /// becomes known to the consent page and to `POST /servicePrincipals`.
    pub fn add_app(&self, app: SandboxApp) {
        self.shared.state().add_app(app);
    }

    /// Sets a user's default MFA method (`userPreferredMethodForSecondaryAuthentication`:
    /// `push`, `sms`, `oath`, `voiceMobile`, ...), as the Entra admin center would.
    /// Unknown tenants or users are ignored.
    pub fn set_user_sign_in_preference(&self, tenant_id: &str, upn: &str, method: &str) {
        let mut state = self.shared.state();
        if let Some(user) = state.tenant_mut(tenant_id).and_then(|t| t.user_mut(upn)) {
            user.preferred_method = method.to_owned();
        }
    }

    /// A user's default MFA method, as `signInPreferences` reports it.
    pub fn user_sign_in_preference(&self, tenant_id: &str, upn: &str) -> Option<String> {
        let state = self.shared.state();
        Some(state.tenant(tenant_id)?.user(upn)?.preferred_method.clone())
    }

    /// Removes a user's Microsoft Authenticator registration, as the user or an admin would
    /// in My Sign-ins or the Entra admin center. The default method is left as it was.
    pub fn remove_authenticator(&self, tenant_id: &str, upn: &str) {
        let mut state = self.shared.state();
        if let Some(user) = state.tenant_mut(tenant_id).and_then(|t| t.user_mut(upn)) {
            user.authenticator = None;
        }
    }

    /// The tenants (GUIDs) where `client_id` can get tokens (registered or consented).
    pub fn consented_tenants(&self, client_id: &str) -> Vec<String> {
        let state = self.shared.state();
        let mut tenants: Vec<String> = state
            .apps
            .iter()
            .filter(|app| app.client_id.eq_ignore_ascii_case(client_id))
            .map(|app| app.tenant_id.clone())
            .collect();
        let mut seen = std::collections::HashSet::new();
        tenants.retain(|t| seen.insert(t.to_lowercase()));
        tenants
    }

    /// Plays the customer's administrator on this sandbox's admin consent page, the way a
    /// browser would: opens `consent_url` (the link Vouch hands out), chooses the
    /// organization `tenant` and the admin `role` (the page's choices: `global_admin`,
    /// `cloud_app_admin`, or `user` for no admin role), and presses Accept or Cancel.
    ///
    /// Returns where the page sends the browser back, without going there: the request's
    /// `redirect_uri` with the answer in its query (`admin_consent`, `tenant`, `state` and
    /// `scope`; or `error`, `error_description` and `state`). An error when the link is not
    /// this sandbox's, or the page does not open or does not redirect (it shows an error page
    /// instead, e.g. for an unknown app or tenant).
    pub async fn answer_admin_consent(
        &self,
        consent_url: &url::Url,
        tenant: &str,
        role: &str,
        decision: ConsentDecision,
    ) -> anyhow::Result<url::Url> {
        let own = url::Url::parse(self.shared.base_url())?;
        // Named without its query: the `state` there is Vouch's anti-forgery secret.
        anyhow::ensure!(
            consent_url.origin() == own.origin() && consent_url.path().ends_with("/adminconsent"),
            "{}{} is not the admin consent page of this sandbox ({own})",
            consent_url.origin().ascii_serialization(),
            consent_url.path()
        );
        let browser = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let page = browser.get(consent_url.clone()).send().await?;
        anyhow::ensure!(
            page.status() == reqwest::StatusCode::OK,
            "the consent page answered {}",
            page.status()
        );
        // The page's form: the request's own parameters as hidden fields, then the choices.
        let query: Vec<(String, String)> = consent_url.query_pairs().into_owned().collect();
        let mut form: Vec<(&str, &str)> = ["client_id", "scope", "redirect_uri", "state"]
            .into_iter()
            .filter_map(|name| pair(&query, name).map(|value| (name, value)))
            .collect();
        form.extend([
            ("tenant", tenant),
            ("role", role),
            ("decision", decision.form_value()),
        ]);
        let mut action = consent_url.clone();
        action.set_query(None);
        action.set_path(&format!("{}/decision", consent_url.path()));
        let answer = browser.post(action).form(&form).send().await?;
        anyhow::ensure!(
            answer.status() == reqwest::StatusCode::FOUND,
            "the consent decision answered {} instead of a redirect",
            answer.status()
        );
        let location = answer
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .context("the consent decision redirected without a Location")?;
        Ok(url::Url::parse(location)?)
    }
}

impl Shared {
    /// Delivers an answer to a waiting push. False when it is no longer waiting.
    fn answer(&self, id: &str, outcome: Outcome) -> bool {
        let entry = {
            let mut state = self.state();
            let Some(index) = state.pending.iter().position(|e| e.push.id == id) else {
                return false;
            };
            state.pending.remove(index)
        };
        entry.answer.send(outcome).is_ok()
    }

    /// Forgets a waiting push (timed out, or its caller went away).
    fn remove_pending(&self, id: &str) {
        self.state().pending.retain(|e| e.push.id != id);
    }
}

/// Every request: routed by its prefix; those to a service are recorded and may be faulted
/// (not the phone page).
async fn handle(shared: Arc<Shared>, mut req: Request) -> Response {
    let mut incoming = Incoming::head(&req);
    let service = match incoming.segments.first().map(String::as_str) {
        Some("login") => Some(Service::Login),
        Some("graph") => Some(Service::Graph),
        Some("mfa") => Some(Service::Mfa),
        Some("phone") => None,
        _ => return plain(StatusCode::NOT_FOUND, "Not found"),
    };
    let mut lost_answer = None;
    if let Some(service) = service
        && let Some(fault) = shared.record(&incoming, service, true)
    {
        match fault {
            Fault::AfterHandling(lost) => lost_answer = Some(*lost),
            Fault::Delayed(wait) => tokio::time::sleep(wait).await,
            fault => return fault.answer().await,
        }
    }
    if incoming.read_body(&mut req, MAX_BODY_BYTES).await.is_err() {
        return plain(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large");
    }
    incoming.strip_prefix();
    let answer = match service {
        Some(Service::Login) => login::handle(&shared, incoming),
        Some(Service::Graph)
            if incoming.method == poem::http::Method::POST
                && matches!(incoming.segments().as_slice(), ["v1.0" | "beta", "$batch"]) =>
        {
            batch::handle(&shared, incoming).await
        }
        Some(Service::Graph) => graph::handle(&shared, incoming),
        Some(Service::Mfa) => mfa::handle(shared, incoming).await,
        None => phone::handle(&shared, incoming),
    };
    match lost_answer {
        // Carried out, and the real answer never reaches the caller.
        Some(lost) => lost.answer().await,
        None => answer,
    }
}

fn redirect(status: StatusCode, location: &str) -> Response {
    Response::builder()
        .status(status)
        .header("Location", location)
        .body(())
}

/// A fresh GUID, as Microsoft uses for ids, request ids and trace ids.
fn new_guid() -> String {
    uuid::Uuid::new_v4().to_string()
}
