//! The Microsoft sandbox: one local HTTP server speaking the wire protocols of the Microsoft
//! services Vouch uses (see `shared/reference/microsoft-wire.md`), so that the tests and
//! `vouch demo` exercise the real client code without the internet.
//!
//! Everything is served by one server under path prefixes:
//!
//! | prefix     | stands for                                   | module    |
//! |------------|----------------------------------------------|-----------|
//! | `/login/`  | `login.microsoftonline.com` (tokens, consent) | [`login`] |
//! | `/graph/`  | `graph.microsoft.com` (`v1.0` and `beta`)     | [`graph`] |
//! | `/mfa/`    | the MFA (NPS extension) connector             | [`mfa`]   |
//! | `/phone`   | a demo "Authenticator phone" page             | [`phone`] |
//!
//! State lives in one [`std::sync::Mutex`] that is never held across an `.await`; a held
//! push waits on a tokio oneshot channel instead.
//!
//! Choices made where the reference says "unconfirmed" are named constants or doc comments
//! next to the code that makes them, so they can be changed in one place.

mod filter;
mod graph;
mod login;
mod mfa;
mod phone;
mod seed;
mod state;

pub(super) use crate::sandbox::{fault_response, html_escape, html_response, json_response, plain};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use poem::http::{HeaderMap, Method, StatusCode};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{Endpoint, Request, Response, Server};

use state::{Outcome, State};

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
/// The real connector resource (v1 `resource` form field). The sandbox also accepts any value
/// ending in `StrongAuthenticationService.svc/Connector`, and its own `{base}/mfa`.
pub const MFA_CONNECTOR_RESOURCE: &str =
    "https://adnotifications.windowsazure.com/StrongAuthenticationService.svc/Connector";

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
/// Recorded requests kept (oldest dropped first), so a long demo does not grow without end.
const MAX_RECORDED_REQUESTS: usize = 10_000;

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

/// A failure to simulate on the next matching requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and body (sent as given), with a `Retry-After` header (seconds)
    /// when set.
    Status {
        status: u16,
        body: String,
        retry_after: Option<u64>,
    },
    /// Never answer (the handler sleeps for an hour): for client timeouts.
    Hang,
}

/// One request as the sandbox received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub service: Service,
    /// Upper case, e.g. `GET`.
    pub method: String,
    /// The full path, percent-decoded, without the query (e.g.
    /// `/graph/v1.0/users/dana@contoso.example`).
    pub path: String,
    /// The raw query string (empty when there is none).
    pub query: String,
    /// Whether an `Authorization` header was sent (never its value: it is a secret).
    pub authorization_present: bool,
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

/// What the server task and the handles share.
pub(crate) struct Shared {
    base_url: String,
    state: Mutex<State>,
}

impl Shared {
    /// Locks the state. A panic while locked cannot leave it half-written in a way that
    /// matters to a test double, so a poisoned lock is simply taken over.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl MicrosoftSandbox {
    /// Binds `127.0.0.1:0`, seeds the demo tenants, users and apps, and serves on a tokio
    /// task.
    pub async fn start() -> std::io::Result<MicrosoftSandbox> {
        let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await?;
        let port = acceptor
            .local_addr()
            .into_iter()
            .find_map(|addr| addr.as_socket_addr().map(|a| a.port()))
            .ok_or_else(|| std::io::Error::other("the sandbox listener has no socket address"))?;
        let shared = Arc::new(Shared {
            base_url: format!("http://127.0.0.1:{port}"),
            state: Mutex::new(seed::demo_state()),
        });
        let endpoint = SandboxEndpoint {
            shared: shared.clone(),
        };
        tokio::spawn(async move {
            if let Err(err) = Server::new_with_acceptor(acceptor).run(endpoint).await {
                tracing::warn!(error = %err, "the Microsoft sandbox stopped");
            }
        });
        Ok(MicrosoftSandbox { shared })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// Stands for `https://login.microsoftonline.com/`.
    pub fn login_url(&self) -> String {
        format!("{}/login/", self.shared.base_url)
    }

    /// Stands for `https://graph.microsoft.com/`.
    pub fn graph_url(&self) -> String {
        format!("{}/graph/", self.shared.base_url)
    }

    /// Stands for
    /// `https://adnotifications.windowsazure.com/StrongAuthenticationService.svc/Connector/`.
    pub fn mfa_connector_url(&self) -> String {
        format!("{}/mfa/", self.shared.base_url)
    }

    /// The demo "Authenticator phone" page (add `?upn=` to show one user's pushes only).
    pub fn phone_url(&self) -> String {
        format!("{}/phone", self.shared.base_url)
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
        if times == 0 {
            return;
        }
        self.shared.state().faults.push(state::FaultRule {
            service,
            path_contains: path_contains.to_owned(),
            fault,
            remaining: times,
        });
    }

    /// Every request received (to Login, Graph and Mfa; not the phone page), oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.state().requests.iter().cloned().collect()
    }

    /// How many recorded requests went to `service` with `method` (case-insensitive) and a
    /// path containing `path_contains`.
    pub fn count(&self, service: Service, method: &str, path_contains: &str) -> usize {
        self.shared
            .state()
            .requests
            .iter()
            .filter(|r| {
                r.service == service
                    && r.method.eq_ignore_ascii_case(method)
                    && r.path.contains(path_contains)
            })
            .count()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.state().requests.clear();
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

/// A request with its body read, its path split and decoded: what every handler gets.
pub(crate) struct Incoming {
    method: Method,
    /// Decoded path segments after the service prefix (`/graph/v1.0/users` -> `v1.0`, `users`).
    segments: Vec<String>,
    /// Decoded query pairs, in order.
    query: Vec<(String, String)>,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Incoming {
    fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The bearer token, if the `Authorization` header carries a non-empty one.
    fn bearer(&self) -> Option<&str> {
        let value = self.header("authorization")?.trim();
        let (scheme, token) = value.split_once(' ')?;
        let token = token.trim();
        (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
    }

    /// The body as `application/x-www-form-urlencoded` pairs (later duplicates ignored).
    fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }
}

/// The first value of `name` in decoded form or query pairs.
fn pair<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// The single endpoint: records, applies faults, then hands the request to its service.
struct SandboxEndpoint {
    shared: Arc<Shared>,
}

impl Endpoint for SandboxEndpoint {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        Ok(handle(self.shared.clone(), req).await)
    }
}

async fn handle(shared: Arc<Shared>, mut req: Request) -> Response {
    let raw_path = req.uri().path().to_owned();
    let raw_segments: Vec<&str> = raw_path.split('/').filter(|s| !s.is_empty()).collect();
    let decoded: Vec<String> = raw_segments.iter().map(|s| percent_decode(s)).collect();
    let service = match decoded.first().map(String::as_str) {
        Some("login") => Some(Service::Login),
        Some("graph") => Some(Service::Graph),
        Some("mfa") => Some(Service::Mfa),
        Some("phone") => None,
        _ => return plain(StatusCode::NOT_FOUND, "Not found"),
    };
    let raw_query = req.uri().query().unwrap_or("").to_owned();
    let method = req.method().clone();
    let headers = req.headers().clone();

    if let Some(service) = service {
        let path = format!("/{}", decoded.join("/"));
        let fault = {
            let mut state = shared.state();
            state.record(RecordedRequest {
                service,
                method: method.as_str().to_owned(),
                path: path.clone(),
                query: raw_query.clone(),
                authorization_present: headers.contains_key("authorization"),
            });
            state.take_fault(service, &path)
        };
        match fault {
            Some(Fault::Hang) => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return plain(StatusCode::GATEWAY_TIMEOUT, "");
            }
            Some(Fault::Status {
                status,
                body,
                retry_after,
            }) => return fault_response(status, body, retry_after),
            None => {}
        }
    }

    let body = match req.take_body().into_bytes_limit(MAX_BODY_BYTES).await {
        Ok(bytes) => bytes.to_vec(),
        Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large"),
    };
    let incoming = Incoming {
        method,
        segments: decoded.into_iter().skip(1).collect(),
        query: url::form_urlencoded::parse(raw_query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
        headers,
        body,
    };
    match service {
        Some(Service::Login) => login::handle(&shared, incoming),
        Some(Service::Graph) => graph::handle(&shared, incoming),
        Some(Service::Mfa) => mfa::handle(shared, incoming).await,
        None => phone::handle(&shared, incoming),
    }
}

fn redirect(status: StatusCode, location: &str) -> Response {
    Response::builder()
        .status(status)
        .header("Location", location)
        .body(())
}

/// Decodes `%XX` escapes in one path segment (invalid escapes are kept as they are; invalid
/// UTF-8 is replaced), so `dana%40contoso.example` and `dana@contoso.example` are the same.
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex_value(bytes[i + 1]), hex_value(bytes[i + 2]))
        {
            out.push(hi * 16 + lo);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A fresh GUID, as Microsoft uses for ids, request ids and trace ids.
fn new_guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A random string of `len` characters from `alphabet`.
fn random_string(len: usize, alphabet: &[u8]) -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
        .collect()
}

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

impl State {
    fn record(&mut self, request: RecordedRequest) {
        if self.requests.len() >= MAX_RECORDED_REQUESTS {
            self.requests.pop_front();
        }
        self.requests.push_back(request);
    }

    /// The fault for this request, if a rule matches (using up one of its `times`).
    fn take_fault(&mut self, service: Service, path: &str) -> Option<Fault> {
        let index = self
            .faults
            .iter()
            .position(|rule| rule.service == service && path.contains(&rule.path_contains))?;
        let rule = &mut self.faults[index];
        rule.remaining -= 1;
        let fault = rule.fault.clone();
        if rule.remaining == 0 {
            self.faults.remove(index);
        }
        Some(fault)
    }
}
