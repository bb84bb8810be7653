//! The pod: the panel inside a PSA ticket. A pod session is what the PSA vouched for (this
//! technician, on this ticket, for this MSP); everything a pod does is derived from the
//! session's ticket, so a pod can never act on another ticket's contact or for another MSP.
//!
//! The MSP console shows the same panel, opened by a signed-in console user: on a ticket
//! (the Tickets page, [`PodService::open_console_session`]: as inside the PSA, through a
//! technician record of the console user's) or on a contact (the Contacts page,
//! [`PodService::open_console_contact_session`]: one user of one of the MSP's tenants, with
//! no PSA and no ticket). A contact's pod skips the ticket -> company -> tenant -> user
//! lookup and acts on the tenant and user its token names; it writes no notes (there is no
//! ticket), while the audit records every step in the console user's name. The rules are the
//! same: a reset spends only a fresh verification of that user made *there*, which for a
//! contact means from a contact's page, by the same console user, with no ticket (see
//! [`PodSession::made_here`]). A console user's pod lives only as long as their console
//! session: each call checks the session is still signed in (cached, like the rest, against
//! the change feed; signing out, a disabled user and an ended session all announce).
//!
//! This service holds the session rules, the ticket -> tenant -> Microsoft user lookup and
//! the wording of the verification shield. It reaches the PSA only through the adapters'
//! trait (`PsaAdapters`) and knows no HTTP.
//!
//! A technician an MSP admin blocked (`core::technicians`) gets nothing from a pod: the load
//! is refused and so is every pod call, with `technician_blocked`.
//!
//! What a pod load or call is checked against (its connection, its technician, its MSP) is
//! cached, and each cached read carries the change feed's epoch (`store::changes`): a
//! change made anywhere (a block, a rotated secret, new settings) is announced to every
//! instance, so it takes effect at once without a database read per pod request. While an
//! instance cannot hear announcements, each use reads the database instead.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::config::CacheLimits;
use crate::core::activity::MethodChange;
use crate::core::directory::{Directory, DirectoryUser};
use crate::core::error::CoreError;
use crate::core::method_fix::MethodFix;
use crate::core::reset::{ResetRequest, ResetResult, ResetService};
use crate::core::verification::{
    MethodAvailability, Requester, StartRequest, TicketContext, UserChecks, VerificationService,
    verified_now,
};
use crate::domain::ErrorCode;
use crate::domain::{PasswordReset, VerificationMethod, VerificationStatus};
use crate::microsoft::MicrosoftErrorKind;
use crate::psa::pod_token::{self, ConsoleActor, PodClaims, PodSubject, TokenError};
use crate::psa::{EmbedLoad, PsaAdapters, PsaError, TicketContact};
use crate::store::Store;
use crate::store::StoreError;
use crate::store::changes::Stamped;
use crate::store::console_users::{ConsoleUser as ConsoleAccount, SessionStage};
use crate::store::crypto::Keyring;
use crate::store::verifications::Verification;
use crate::store::{
    audit::AuditActor,
    msp::MspAccount,
    psa_connections::{PsaConnection, Technician, TechnicianSighting},
    tenants::Tenant,
};

/// Why a pod request failed. `code()` is stable; the message says what to do.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PodError {
    #[error("This panel's session has expired. Reload the ticket in the PSA.")]
    SessionExpired,
    #[error("This panel's session is not valid. Reload the ticket in the PSA.")]
    SessionInvalid,
    /// The token is genuine, but its connection, MSP or technician is gone or moved.
    #[error("This panel's session is no longer valid. Reload the ticket in the PSA.")]
    SessionRevoked,
    /// A pod opened from the console outlived its console session (signed out, ended, or
    /// the console user disabled or removed).
    #[error(
        "Your console session has ended. Sign in to the Vouch console again and reopen this page."
    )]
    ConsoleSessionEnded,
    /// A pod opened from the console outlived its token (an hour).
    #[error("This panel has expired. Reload this page of the Vouch console.")]
    ConsolePanelExpired,
    /// The session could not be read (the cause is logged).
    #[error("Vouch cannot load this session right now. Try again.")]
    SessionUnavailable,
    #[error(
        "This Vouch panel URL names no PSA connection. Copy the URL again from Vouch's settings."
    )]
    UnknownConnection,
    #[error("{0}")]
    Psa(PsaError),
    #[error("{0}")]
    Core(CoreError),
    /// The push was not sent because the user's default method is not the push; accepting
    /// `fix_token` (see [`crate::core::method_fix`]) changes that user's default, no one
    /// else's.
    #[error("{error}")]
    MethodMismatch { error: CoreError, fix_token: String },
}

impl PodError {
    pub fn code(&self) -> ErrorCode {
        match self {
            PodError::SessionExpired
            | PodError::SessionInvalid
            | PodError::SessionRevoked
            | PodError::ConsoleSessionEnded
            | PodError::ConsolePanelExpired => ErrorCode::Unauthorized,
            PodError::SessionUnavailable => ErrorCode::Unavailable,
            PodError::UnknownConnection => ErrorCode::Forbidden,
            PodError::Psa(err) => err.code(),
            PodError::Core(err) => err.code(),
            PodError::MethodMismatch { error, .. } => error.code(),
        }
    }
}

impl From<PsaError> for PodError {
    fn from(err: PsaError) -> Self {
        PodError::Psa(err)
    }
}

impl From<CoreError> for PodError {
    fn from(err: CoreError) -> Self {
        PodError::Core(err)
    }
}

impl From<StoreError> for PodError {
    fn from(err: StoreError) -> Self {
        PodError::Core(err.into())
    }
}

/// The session of a pod: the PSA vouched for this technician on this ticket, or a console
/// user opened it (on a ticket, or on a contact).
#[derive(Debug, Clone)]
pub struct PodSession {
    pub claims: PodClaims,
    pub msp: MspAccount,
    /// Where the pod acts, as loaded for this call.
    pub place: PodPlace,
}

/// What a pod session acts on (its token's [`PodSubject`], with what it names loaded).
#[derive(Debug, Clone)]
pub enum PodPlace {
    /// A PSA ticket, through `technician` on `connection`.
    Ticket {
        connection: Arc<PsaConnection>,
        technician: Technician,
        ticket: String,
    },
    /// A user of one of the MSP's tenants, from the console's Contacts page; the console
    /// user (`claims.console_user`, always set here) acts with no technician record.
    Contact { tenant: Uuid, object_id: String },
}

impl PodSession {
    /// The technician, as the audit log and the verification service name them.
    pub fn requester(&self) -> Requester {
        // A pod opened from the console acts for the console user (`accounts::actor_of`).
        let technician = match &self.place {
            PodPlace::Ticket { technician, .. } => Some(technician),
            PodPlace::Contact { .. } => None,
        };
        let actor = match (&self.claims.console_user, technician) {
            (Some(user), _) => AuditActor {
                kind: crate::domain::ActorKind::ConsoleUser,
                id: Some(user.id.to_string()),
                name: Some(user.name.clone()),
            },
            (None, Some(technician)) => AuditActor {
                kind: crate::domain::ActorKind::Technician,
                id: Some(technician.psa_member_id.clone()),
                name: Some(technician.display_name.clone()),
            },
            // A contact's pod always has its console user (`pod_token` refuses one without).
            (None, None) => AuditActor {
                kind: crate::domain::ActorKind::System,
                id: None,
                name: None,
            },
        };
        Requester {
            actor,
            // A console user on a contact acts outside any PSA, so through no technician
            // record (a record needs a PSA connection): as an API key's requests do, with
            // the console user named in the audit and kept on the verification.
            technician_id: technician.map(|t| t.id),
            console_user_id: self.claims.console_user.as_ref().map(|u| u.id),
        }
    }

    /// The ticket, on a ticket's pod.
    pub fn ticket(&self) -> Option<&str> {
        match &self.place {
            PodPlace::Ticket { ticket, .. } => Some(ticket),
            PodPlace::Contact { .. } => None,
        }
    }

    /// The PSA connection, on a ticket's pod.
    fn connection(&self) -> Option<&Arc<PsaConnection>> {
        match &self.place {
            PodPlace::Ticket { connection, .. } => Some(connection),
            PodPlace::Contact { .. } => None,
        }
    }

    /// Who is using the pod, by name.
    fn acting_name(&self) -> String {
        match (&self.place, &self.claims.console_user) {
            (PodPlace::Ticket { technician, .. }, _) => technician.display_name.clone(),
            (PodPlace::Contact { .. }, Some(user)) => user.name.clone(),
            (PodPlace::Contact { .. }, None) => String::new(),
        }
    }

    /// Whether `verification` was made here, so that this pod may act on it (read it, check
    /// its code, cancel it, spend it on a reset): on a ticket, from this very ticket; on a
    /// contact, of this user, from a contact's page (no ticket) by this same console user.
    /// So a verification made on a ticket, through the API or by someone else never unlocks
    /// a reset from a contact's page, and one made there unlocks no ticket's reset.
    pub fn made_here(&self, verification: &Verification) -> bool {
        if verification.msp_id != self.msp.id {
            return false;
        }
        match &self.place {
            PodPlace::Ticket {
                connection, ticket, ..
            } => {
                verification.psa_connection_id == Some(connection.id)
                    && verification.psa_ticket_id.as_deref() == Some(ticket.as_str())
            }
            PodPlace::Contact { tenant, object_id } => {
                verification.psa_connection_id.is_none()
                    && verification.psa_ticket_id.is_none()
                    && verification.tenant_id == *tenant
                    && verification.user_object_id == *object_id
                    && verification.console_user_id.is_some()
                    && verification.console_user_id
                        == self.claims.console_user.as_ref().map(|u| u.id)
            }
        }
    }
}

pub use crate::domain::ShieldState;

/// The verification shield, worded for the technician: the pod shows `label` and `detail`
/// as they are.
#[derive(Debug, Clone)]
pub struct Shield {
    pub state: ShieldState,
    pub verification_id: Option<Uuid>,
    pub method: Option<VerificationMethod>,
    pub verified_until: Option<DateTime<Utc>>,
    pub failure_code: Option<ErrorCode>,
    /// The headline ("Verified", "Failed: the user denied the request.").
    pub label: String,
    /// A second line, empty when the label says it all.
    pub detail: String,
    /// One sentence saying where the verification stands.
    pub message: String,
    /// What the shield says once `verified_until` passes (the pod's clock sees it first).
    pub expired_label: Option<String>,
    pub expired_detail: Option<String>,
}

impl Shield {
    /// A shield of no verification in particular.
    fn not_verified(label: &str, detail: String, message: String) -> Shield {
        Shield {
            state: ShieldState::NotVerified,
            verification_id: None,
            method: None,
            verified_until: None,
            failure_code: None,
            label: label.to_owned(),
            detail,
            message,
            expired_label: None,
            expired_detail: None,
        }
    }
}

/// A past verification, worded for the history list.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub verification: Verification,
    /// The outcome in a few words ("Approved", "Denied on the phone").
    pub label: String,
    /// Where it was made, when not on this ticket ("on HaloPSA ticket 2001, by Jordan").
    pub elsewhere: Option<String>,
}

/// Someone other than the ticket's contact, verified on this ticket and not yet reset.
#[derive(Debug, Clone)]
pub struct OtherVerified {
    pub verification: Verification,
    pub shield: Shield,
    pub reset: ResetReadiness,
}

/// Whether the password can be reset now.
#[derive(Debug, Clone)]
pub struct ResetReadiness {
    pub allowed: bool,
    pub reason: Option<String>,
    pub masked_phone: Option<String>,
    pub verification_id: Option<Uuid>,
}

/// Everything the pod shows about its ticket (or its contact).
#[derive(Debug, Clone)]
pub struct PodOverview {
    pub technician_name: String,
    /// The ticket and its contact; `None` on a contact's pod (no ticket).
    pub ticket: Option<TicketContact>,
    pub tenant: Option<Tenant>,
    pub user: Option<DirectoryUser>,
    /// Why there is no user (or why its methods could not be read).
    pub user_error: Option<CoreError>,
    pub shield: Shield,
    pub methods: Vec<MethodAvailability>,
    pub reset: ResetReadiness,
    pub history: Vec<HistoryEntry>,
    /// Others verified on this ticket (with a reason), each with their own reset.
    pub others: Vec<OtherVerified>,
    /// What to know before sending anything (the push is not the default, no mobile, a
    /// reset would be refused), each with its code.
    pub checks: Vec<PodCheck>,
    /// The strongest warning the pod gives: the user reported a request as fraud ("It's not
    /// me"), and whether their resets are held.
    pub fraud: Option<FraudWarning>,
}

/// The user said a verification request was not theirs.
#[derive(Debug, Clone)]
pub struct FraudWarning {
    pub message: String,
    /// Until when their password resets are held, if they are.
    pub resets_held_until: Option<DateTime<Utc>>,
}

/// Something the technician should know about the ticket's contact before anything is
/// sent.
#[derive(Debug, Clone)]
pub struct PodCheck {
    pub code: ErrorCode,
    pub message: String,
    /// With `preferred_method_mismatch`: the offer to make the push this user's default.
    pub fix_token: Option<String>,
}

/// Verify someone other than the ticket's contact.
#[derive(Debug, Clone)]
pub struct OtherUser {
    pub email: String,
    pub reason: String,
}

/// What the pod service needs.
pub struct PodDeps {
    pub store: Store,
    /// Signs and checks pod tokens.
    pub keyring: Arc<Keyring>,
    pub psa: PsaAdapters,
    pub directory: Directory,
    pub verifications: VerificationService,
    pub resets: ResetService,
    /// Technicians the PSA vouched for recently, so a pod load does not write to the
    /// database every time (their "last seen" is refreshed once per lifetime).
    pub technician_cache: CacheLimits,
    /// Every pod load and pod call needs its connection, and connections change rarely (a
    /// changed one is seen at once, through the change feed).
    pub connection_cache: CacheLimits,
    /// The technicians, MSP accounts and console sessions pod sessions are checked against.
    pub session_state_cache: CacheLimits,
    /// The console's idle timeout: a console user's pod stops with their console session,
    /// and using the pod keeps that session alive, as using the console does.
    pub console_idle_timeout: chrono::Duration,
}

/// What a pod page load needs: where it may be framed, and its token or why there is none.
pub struct PodPage {
    /// The origins (`scheme://host[:port]`) the MSP configured for the connection; empty
    /// when the connection is unknown or of another PSA (then nobody may frame the page).
    pub allowed_origins: Vec<String>,
    pub token: Result<String, PodError>,
}

/// The origins of a connection's `allowed_origins` setting that are http(s) URLs with a host.
/// They go into the page's CSP, so each is written as the URL parser serialises its origin.
pub fn allowed_origins(connection: &PsaConnection) -> Vec<String> {
    connection.settings["allowed_origins"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|v| v.as_str())
                .filter_map(origin_of)
                .collect()
        })
        .unwrap_or_default()
}

/// `value` as an origin (`scheme://host[:port]`), or `None` when it is not an http(s) URL with
/// a host. The set-up writes origins already serialised (`core::psa_connections`), and this
/// runs on every pod load: a value that is plainly such an origin (lower-case ASCII host, no
/// default port) is taken as it is; anything else goes through the URL parser.
fn origin_of(value: &str) -> Option<String> {
    let plain = |rest: &str, default_port: &str| {
        let (host, port) = rest.split_once(':').unwrap_or((rest, ""));
        !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && !host.starts_with(['.', '-'])
            && !host.ends_with(['.', '-'])
            && !host.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && !host.split('.').any(|label| label.starts_with("xn--"))
            && (port.is_empty()
                || (port != default_port
                    && !port.starts_with('0')
                    && port.len() <= 5
                    && port.bytes().all(|b| b.is_ascii_digit())
                    && port.parse::<u16>().is_ok()))
            && !(rest.ends_with(':'))
    };
    let fast = match (
        value.strip_prefix("https://"),
        value.strip_prefix("http://"),
    ) {
        (Some(rest), _) => plain(rest, "443"),
        (_, Some(rest)) => plain(rest, "80"),
        _ => false,
    };
    if fast {
        return Some(value.to_owned());
    }
    url::Url::parse(value)
        .ok()
        .filter(|u| matches!(u.scheme(), "https" | "http") && u.host_str().is_some())
        .map(|u| u.origin().ascii_serialization())
}

/// Where a verification was made: connection, ticket, technician and console user.
type PlaceKey = (Option<Uuid>, Option<String>, Option<Uuid>, Option<Uuid>);

#[derive(Clone)]
pub struct PodService {
    store: Store,
    keyring: Arc<Keyring>,
    psa: PsaAdapters,
    directory: Directory,
    verifications: VerificationService,
    resets: ResetService,
    technicians: moka::future::Cache<(Uuid, String), Technician>,
    /// Shared, not cloned, per request: a connection carries its settings as a JSON tree.
    connection_cache: moka::future::Cache<Uuid, Stamped<Arc<PsaConnection>>>,
    /// Technicians by id, as last read (blocked or not).
    technician_state: moka::future::Cache<Uuid, Stamped<Arc<Technician>>>,
    /// MSP accounts by id, as last read (their settings).
    msp_state: moka::future::Cache<Uuid, Stamped<Arc<MspAccount>>>,
    /// Console sessions by id, as last read: what a console user's pod is checked against.
    console_sessions: moka::future::Cache<Uuid, Stamped<LiveConsoleSession>>,
    console_idle_timeout: chrono::Duration,
}

/// What a console user's pod needs to know of their console session.
#[derive(Debug, Clone)]
struct LiveConsoleSession {
    user_id: Uuid,
    msp_id: Uuid,
    /// Past its second factor, and its user not disabled.
    signed_in: bool,
    expires_at: DateTime<Utc>,
    last_seen_at: DateTime<Utc>,
}

/// A console session is marked used by its pod at most this often (a write).
const CONSOLE_TOUCH_EVERY_SECONDS: i64 = 60;

/// The ticket, its tenant and the Microsoft user of `email` (or of the contact).
struct Resolved {
    /// `None` on a contact's pod.
    ticket: Option<TicketContact>,
    tenant: Option<Tenant>,
    user: Result<DirectoryUser, CoreError>,
}

impl PodService {
    pub fn new(deps: PodDeps) -> PodService {
        PodService {
            store: deps.store,
            keyring: deps.keyring,
            psa: deps.psa,
            directory: deps.directory,
            verifications: deps.verifications,
            resets: deps.resets,
            technicians: deps.technician_cache.build(),
            connection_cache: deps.connection_cache.build(),
            technician_state: deps.session_state_cache.build(),
            msp_state: deps.session_state_cache.build(),
            console_sessions: deps.session_state_cache.build(),
            console_idle_timeout: deps.console_idle_timeout,
        }
    }

    /// A PSA connection, from the cache while no change was announced since it was read
    /// (the cache saves opening the sealed credentials, and the read). While the change feed
    /// is not live, the cached copy is used only when its version is the database's (one
    /// column by primary key).
    pub async fn connection(&self, id: Uuid) -> Result<Option<Arc<PsaConnection>>, StoreError> {
        self.connection_as_of(id, self.store.changes().epoch())
            .await
    }

    /// [`PodService::connection`] against an epoch the caller read: one request reads the
    /// change feed once, whatever it looks up (on SQLite each read is a `stat`).
    async fn connection_as_of(
        &self,
        id: Uuid,
        epoch: Option<u64>,
    ) -> Result<Option<Arc<PsaConnection>>, StoreError> {
        if let Some(cached) = self.connection_cache.get(&id).await {
            if cached.is_current(epoch) {
                return Ok(Some(cached.value));
            }
            if epoch.is_none() {
                match self.store.connection_version(id).await? {
                    Some(version) if version == cached.value.updated_at => {
                        return Ok(Some(cached.value));
                    }
                    Some(_) => {}
                    None => {
                        self.connection_cache.invalidate(&id).await;
                        return Ok(None);
                    }
                }
            }
        }
        let connection = self.store.get_connection(id).await?.map(Arc::new);
        match &connection {
            Some(connection) => {
                let stamped = Stamped {
                    value: connection.clone(),
                    epoch,
                };
                self.connection_cache.insert(id, stamped).await;
            }
            None => self.connection_cache.invalidate(&id).await,
        }
        Ok(connection)
    }

    /// Technician `id` as the database holds it, from the cache while no change was
    /// announced since it was read.
    async fn technician(
        &self,
        id: Uuid,
        epoch: Option<u64>,
    ) -> Result<Option<Arc<Technician>>, StoreError> {
        if let Some(cached) = self.technician_state.get(&id).await
            && cached.is_current(epoch)
        {
            return Ok(Some(cached.value));
        }
        let technician = self.store.get_technician(id).await?.map(Arc::new);
        if let Some(technician) = &technician {
            let stamped = Stamped {
                value: technician.clone(),
                epoch,
            };
            self.technician_state.insert(id, stamped).await;
        }
        Ok(technician)
    }

    /// MSP account `id` as the database holds it, from the cache while no change was
    /// announced since it was read.
    async fn msp(
        &self,
        id: Uuid,
        epoch: Option<u64>,
    ) -> Result<Option<Arc<MspAccount>>, StoreError> {
        if let Some(cached) = self.msp_state.get(&id).await
            && cached.is_current(epoch)
        {
            return Ok(Some(cached.value));
        }
        let msp = self.store.get_msp(id).await?.map(Arc::new);
        if let Some(msp) = &msp {
            let stamped = Stamped {
                value: msp.clone(),
                epoch,
            };
            self.msp_state.insert(id, stamped).await;
        }
        Ok(msp)
    }

    /// Forgets the cached copy of connection `id`, so the next pod load or call on this
    /// instance reads it afresh: called when a connection is changed or deleted (every
    /// instance also checks the version on each use).
    pub async fn forget_connection(&self, id: Uuid) {
        self.connection_cache.invalidate(&id).await;
    }

    /// Checks a pod token and loads what it names; all of it must still belong together.
    #[tracing::instrument(skip_all)]
    pub async fn session(&self, token: &str) -> Result<PodSession, PodError> {
        let claims = pod_token::verify(&self.keyring, token.trim()).map_err(|err| match err {
            TokenError::Expired => PodError::SessionExpired,
            TokenError::ExpiredConsole => PodError::ConsolePanelExpired,
            TokenError::Invalid => PodError::SessionInvalid,
        })?;
        let unavailable = |err: StoreError| {
            tracing::error!(error = %err, "pod session lookup failed");
            PodError::SessionUnavailable
        };
        let epoch = self.store.changes().epoch();
        let msp = self.msp(claims.msp, epoch).await.map_err(unavailable)?;
        let Some(msp) = msp else {
            return Err(PodError::SessionRevoked);
        };
        let place = match &claims.subject {
            PodSubject::Ticket {
                connection,
                technician,
                ticket,
            } => {
                let connection = self
                    .connection_as_of(*connection, epoch)
                    .await
                    .map_err(unavailable)?;
                let technician = self
                    .technician(*technician, epoch)
                    .await
                    .map_err(unavailable)?;
                match (connection, technician) {
                    (Some(connection), Some(technician))
                        if connection.msp_id == msp.id && technician.msp_id == msp.id =>
                    {
                        if technician.blocked_at.is_some() {
                            return Err(PodError::Core(CoreError::TechnicianBlocked));
                        }
                        PodPlace::Ticket {
                            connection,
                            technician: Arc::unwrap_or_clone(technician),
                            ticket: ticket.clone(),
                        }
                    }
                    _ => return Err(PodError::SessionRevoked),
                }
            }
            // The tenant and user were checked when the pod was opened; whether they are
            // still there is asked where they are used.
            PodSubject::Contact { tenant, object_id } => PodPlace::Contact {
                tenant: *tenant,
                object_id: object_id.clone(),
            },
        };
        if let Some(actor) = &claims.console_user {
            self.console_session_alive(actor, msp.id, epoch).await?;
        }
        Ok(PodSession {
            claims,
            msp: Arc::unwrap_or_clone(msp),
            place,
        })
    }

    /// Issues a pod token once the PSA vouched for `load` on `connection_id`.
    #[tracing::instrument(skip(self, load))]
    pub async fn open_session(
        &self,
        connection_id: Uuid,
        load: EmbedLoad,
    ) -> Result<String, PodError> {
        let epoch = self.store.changes().epoch();
        let connection = self
            .connection_as_of(connection_id, epoch)
            .await?
            .ok_or(PodError::UnknownConnection)?;
        self.open_session_on(connection, load, epoch).await
    }

    /// A pod page load: the connection's framing origins, and the pod token once the PSA
    /// vouched for `load` (or why not). One read of the change feed and one connection lookup
    /// serve both; the page is framed by the connection's PSA even when it refuses.
    #[tracing::instrument(skip(self, load))]
    pub async fn open_page(
        &self,
        connection_id: Uuid,
        kind: crate::domain::PsaKind,
        load: EmbedLoad,
    ) -> PodPage {
        let epoch = self.store.changes().epoch();
        let connection = match self.connection_as_of(connection_id, epoch).await {
            Ok(Some(connection)) => connection,
            Ok(None) => {
                return PodPage {
                    allowed_origins: Vec::new(),
                    token: Err(PodError::UnknownConnection),
                };
            }
            Err(err) => {
                return PodPage {
                    allowed_origins: Vec::new(),
                    token: Err(err.into()),
                };
            }
        };
        if connection.kind != kind {
            return PodPage {
                allowed_origins: Vec::new(),
                token: Err(PodError::UnknownConnection),
            };
        }
        PodPage {
            allowed_origins: allowed_origins(&connection),
            token: self.open_session_on(connection, load, epoch).await,
        }
    }

    async fn open_session_on(
        &self,
        connection: Arc<PsaConnection>,
        load: EmbedLoad,
        epoch: Option<u64>,
    ) -> Result<String, PodError> {
        let vouched = self.psa.authenticate_embed(&connection, &load).await?;
        let sighting = TechnicianSighting {
            msp_id: connection.msp_id,
            psa_connection_id: connection.id,
            psa_member_id: vouched.technician.member_id.clone(),
            display_name: vouched.technician.name.clone(),
            email: vouched.technician.email.clone(),
        };
        let technician = self
            .technicians
            .try_get_with(
                (connection.id, sighting.psa_member_id.clone()),
                self.store.record_technician(sighting),
            )
            .await
            .map_err(|err| {
                tracing::error!(error = %err, "recording a technician failed");
                PodError::Core(CoreError::Store(err.to_string()))
            })?;
        // The cached sighting may predate a block: whether they are blocked is read as of
        // the last announced change.
        if let Some(current) = self.technician(technician.id, epoch).await?
            && current.blocked_at.is_some()
        {
            return Err(PodError::Core(CoreError::TechnicianBlocked));
        }
        Ok(pod_token::issue(
            &self.keyring,
            connection.msp_id,
            connection.id,
            technician.id,
            &vouched.ticket_id,
        ))
    }

    /// A pod a console user opened acts only while the console session that opened it is
    /// signed in: signed out, ended (its absolute or idle timeout) or its user disabled or
    /// removed, the pod stops at its next call. The session is cached by id against the
    /// change feed (ending a session and disabling or removing a user are announced), so a
    /// call costs no database read; its timeouts are checked against the clock each time.
    /// Using the pod is using the console: it keeps the session from going idle.
    async fn console_session_alive(
        &self,
        actor: &ConsoleActor,
        msp_id: Uuid,
        epoch: Option<u64>,
    ) -> Result<(), PodError> {
        let now = Utc::now();
        let idle = self.console_idle_timeout;
        let cached = self
            .console_sessions
            .get(&actor.session)
            .await
            .filter(|c| c.is_current(epoch))
            .map(|c| c.value);
        let live = match cached {
            // The console's pages may have used the session since it was cached: an idle
            // look is read again before it counts.
            Some(live) if live.last_seen_at + idle > now => Some(live),
            _ => self.read_console_session(actor.session, epoch).await?,
        };
        let alive = live.as_ref().is_some_and(|live| {
            live.user_id == actor.id
                && live.msp_id == msp_id
                && live.signed_in
                && live.expires_at > now
                && live.last_seen_at + idle > now
        });
        if !alive {
            return Err(PodError::ConsoleSessionEnded);
        }
        if let Some(mut live) = live
            && now - live.last_seen_at > chrono::Duration::seconds(CONSOLE_TOUCH_EVERY_SECONDS)
        {
            if let Err(err) = self.store.touch_console_session(actor.session).await {
                // The session is alive; it only ages sooner.
                tracing::warn!(error = %err, "marking a console session used failed");
            } else {
                live.last_seen_at = now;
                let stamped = Stamped { value: live, epoch };
                self.console_sessions.insert(actor.session, stamped).await;
            }
        }
        Ok(())
    }

    async fn read_console_session(
        &self,
        id: Uuid,
        epoch: Option<u64>,
    ) -> Result<Option<LiveConsoleSession>, PodError> {
        let found = self.store.console_session_by_id(id).await.map_err(|err| {
            tracing::error!(error = %err, "console session lookup failed");
            PodError::SessionUnavailable
        })?;
        let Some((session, user)) = found else {
            self.console_sessions.invalidate(&id).await;
            return Ok(None);
        };
        let live = LiveConsoleSession {
            user_id: user.id,
            msp_id: user.msp_id,
            signed_in: session.stage == SessionStage::SignedIn && user.disabled_at.is_none(),
            expires_at: session.expires_at,
            last_seen_at: session.last_seen_at,
        };
        let stamped = Stamped {
            value: live.clone(),
            epoch,
        };
        self.console_sessions.insert(id, stamped).await;
        Ok(Some(live))
    }

    /// The console user as a pod names them: their name, or their e-mail address.
    fn console_actor(user: &ConsoleAccount, session: Uuid) -> ConsoleActor {
        let name = if user.name.trim().is_empty() {
            user.email.clone()
        } else {
            user.name.clone()
        };
        ConsoleActor {
            id: user.id,
            name,
            session,
        }
    }

    /// Issues a pod token for a console user who opened ticket `ticket` of PSA connection
    /// `connection_id` from the MSP console: the same session a PSA load gets, on the console
    /// user's behalf. The connection must be the user's MSP's, and the ticket is read through
    /// the PSA's adapter (as the pod reads it), so a ticket the PSA does not know is refused
    /// here and the notes go to the ticket named. The console user acts through a technician
    /// record of their own on that connection (member `console:{id}`), so blocking it works
    /// as for any technician; the audit names the console user. The pod lives as long as
    /// `console_session` (the console session the user opened it in) is signed in.
    #[tracing::instrument(skip(self, user), fields(user_id = %user.id))]
    pub async fn open_console_session(
        &self,
        user: &ConsoleAccount,
        console_session: Uuid,
        connection_id: Uuid,
        ticket: &str,
    ) -> Result<(String, Arc<PsaConnection>), PodError> {
        let ticket = ticket.trim().trim_start_matches('#');
        if ticket.is_empty() {
            return Err(CoreError::InvalidInput {
                field: "ticket",
                problem: "enter the ticket number, as the PSA shows it".into(),
            }
            .into());
        }
        if ticket.len() > 32
            || !ticket
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(CoreError::InvalidInput {
                field: "ticket",
                problem: "a ticket number has only letters, digits and dashes (e.g. 2001)".into(),
            }
            .into());
        }
        let connection = match self.connection(connection_id).await? {
            Some(connection) if connection.msp_id == user.msp_id => connection,
            _ => return Err(PodError::UnknownConnection),
        };
        self.psa.ticket(&connection, ticket).await?;
        let actor = Self::console_actor(user, console_session);
        let sighting = TechnicianSighting {
            msp_id: connection.msp_id,
            psa_connection_id: connection.id,
            psa_member_id: format!("console:{}", user.id),
            display_name: actor.name.clone(),
            email: Some(user.email.clone()),
        };
        let technician = self
            .technicians
            .try_get_with(
                (connection.id, sighting.psa_member_id.clone()),
                self.store.record_technician(sighting),
            )
            .await
            .map_err(|err| {
                tracing::error!(error = %err, "recording a console technician failed");
                PodError::Core(CoreError::Store(err.to_string()))
            })?;
        if let Some(current) = self
            .technician(technician.id, self.store.changes().epoch())
            .await?
            && current.blocked_at.is_some()
        {
            return Err(PodError::Core(CoreError::TechnicianBlocked));
        }
        let token = pod_token::issue_for_console_user(
            &self.keyring,
            connection.msp_id,
            PodSubject::Ticket {
                connection: connection.id,
                technician: technician.id,
                ticket: ticket.to_owned(),
            },
            actor,
        );
        Ok((token, connection))
    }

    /// Issues a pod token for a console user who opened a contact from the console's
    /// Contacts page: user `object_id` of tenant `tenant_id`, with no ticket. The tenant must
    /// be the console user's MSP's and the user must exist in it (read from Microsoft, as the
    /// Contacts page reads it: [`Directory::contact`]); anything else is "not found". The
    /// pod then acts on that tenant and user only, in the console user's name, as long as
    /// `console_session` is signed in. Returns the token with the tenant and user, for the
    /// page to name them.
    #[tracing::instrument(skip(self, user), fields(user_id = %user.id))]
    pub async fn open_console_contact_session(
        &self,
        user: &ConsoleAccount,
        console_session: Uuid,
        tenant_id: Uuid,
        object_id: &str,
    ) -> Result<(String, Tenant, DirectoryUser), PodError> {
        let (tenant, contact) = self
            .directory
            .contact(user.msp_id, tenant_id, object_id)
            .await?;
        let token = pod_token::issue_for_console_user(
            &self.keyring,
            user.msp_id,
            PodSubject::Contact {
                tenant: tenant.id,
                object_id: contact.object_id.clone(),
            },
            Self::console_actor(user, console_session),
        );
        Ok((token, tenant, contact))
    }

    async fn resolve(
        &self,
        session: &PodSession,
        email: Option<&str>,
    ) -> Result<Resolved, PodError> {
        let (connection, ticket) = match &session.place {
            PodPlace::Ticket {
                connection, ticket, ..
            } => (connection, ticket),
            PodPlace::Contact { tenant, object_id } => {
                return self
                    .resolve_contact(session, *tenant, object_id, email)
                    .await;
            }
        };
        let ticket = self.psa.ticket(connection, ticket).await?;
        let tenant = match &ticket.company {
            Some(company) => {
                self.store
                    .tenant_for_company(connection.id, &company.id)
                    .await?
            }
            None => None,
        };
        let user = match (&tenant, email, &ticket.contact) {
            (None, _, _) => Err(CoreError::CompanyNotMapped {
                company: ticket
                    .company
                    .as_ref()
                    .map(|c| c.name.clone())
                    .unwrap_or_else(|| "This ticket's company".to_owned()),
            }),
            (Some(tenant), Some(email), _) => {
                self.directory
                    .resolve_user(tenant, &[email.to_owned()])
                    .await
            }
            (Some(tenant), None, Some(contact)) => {
                self.directory.resolve_user(tenant, &contact.emails).await
            }
            (Some(_), None, None) => Err(CoreError::InvalidInput {
                field: "contact",
                problem: "the ticket has no contact; set one in the PSA".into(),
            }),
        };
        Ok(Resolved {
            ticket: Some(ticket),
            tenant,
            user,
        })
    }

    /// A contact's pod: the tenant and user its token names, read as the Contacts page reads
    /// them (no ticket, no company mapping). It verifies that user only.
    async fn resolve_contact(
        &self,
        session: &PodSession,
        tenant_id: Uuid,
        object_id: &str,
        email: Option<&str>,
    ) -> Result<Resolved, PodError> {
        if email.is_some() {
            return Err(CoreError::InvalidInput {
                field: "other_user",
                problem: "this page verifies this user only; to verify someone else, open them from Contacts".into(),
            }
            .into());
        }
        match self
            .directory
            .contact(session.msp.id, tenant_id, object_id)
            .await
        {
            Ok((tenant, user)) => Ok(Resolved {
                ticket: None,
                tenant: Some(tenant),
                user: Ok(user),
            }),
            Err(CoreError::TenantNotFound) => Ok(Resolved {
                ticket: None,
                tenant: None,
                user: Err(CoreError::TenantNotFound),
            }),
            Err(CoreError::Store(err)) => Err(CoreError::Store(err).into()),
            Err(err) => {
                // The tenant is the MSP's (the directory checked); Microsoft did not give the
                // user. The panel says why, as for a ticket whose contact is not found.
                let tenant = self
                    .store
                    .get_tenant(tenant_id)
                    .await?
                    .filter(|t| t.msp_id == session.msp.id);
                Ok(Resolved {
                    ticket: None,
                    tenant,
                    user: Err(err),
                })
            }
        }
    }

    /// The tenant and user a verification or a change would act on.
    async fn target(
        &self,
        session: &PodSession,
        email: Option<&str>,
    ) -> Result<(Resolved, Tenant, DirectoryUser), PodError> {
        let mut resolved = self.resolve(session, email).await?;
        let tenant = resolved.tenant.clone().ok_or(CoreError::TenantNotFound)?;
        let user = std::mem::replace(&mut resolved.user, Err(CoreError::TenantNotFound))?;
        Ok((resolved, tenant, user))
    }

    /// Where a verification was made, for the technician: "on HaloPSA ticket 2001, by
    /// Jordan Tech", "from Contacts in the Vouch console, by Jo Tech", or "through the Vouch
    /// API".
    async fn place_of(&self, verification: &Verification) -> String {
        let (Some(connection_id), Some(ticket)) = (
            verification.psa_connection_id,
            verification.psa_ticket_id.as_deref(),
        ) else {
            return match verification.console_user_id {
                Some(id) => match self.store.get_console_user(id).await {
                    Ok(Some(user)) => format!(
                        "from Contacts in the Vouch console, by {}",
                        if user.name.trim().is_empty() {
                            &user.email
                        } else {
                            &user.name
                        }
                    ),
                    _ => "from Contacts in the Vouch console".to_owned(),
                },
                None => "through the Vouch API".to_owned(),
            };
        };
        let psa = match self.connection(connection_id).await {
            Ok(Some(connection)) => connection.kind.display_name(),
            _ => "PSA",
        };
        let by = match verification.technician_id {
            Some(id) => match self.store.get_technician(id).await {
                Ok(Some(technician)) => format!(", by {}", technician.display_name),
                _ => String::new(),
            },
            None => String::new(),
        };
        format!("on {psa} ticket {ticket}{by}")
    }

    /// People other than the ticket's contact who are verified on this ticket now, each
    /// with whether their password can be reset.
    async fn others_verified(
        &self,
        tenant: &Tenant,
        contact_user: Option<&DirectoryUser>,
        on_ticket: &[Verification],
        now: DateTime<Utc>,
    ) -> Vec<OtherVerified> {
        let mut seen = std::collections::HashSet::new();
        let mut others = Vec::new();
        for verification in on_ticket {
            let is_contact =
                contact_user.is_some_and(|u| u.object_id == verification.user_object_id);
            // Only each person's newest verification counts.
            if is_contact
                || verification.tenant_id != tenant.id
                || !seen.insert(verification.user_object_id.clone())
            {
                continue;
            }
            let shield = shield_of(std::slice::from_ref(verification), now);
            if shield.state != ShieldState::Verified {
                continue;
            }
            let reset = match self
                .verifications
                .registered_mobile(tenant, &verification.user_object_id)
                .await
            {
                Ok(Some(phone)) => ResetReadiness {
                    allowed: true,
                    reason: None,
                    masked_phone: Some(phone.masked()),
                    verification_id: Some(verification.id),
                },
                Ok(None) => ResetReadiness {
                    allowed: false,
                    reason: Some(CoreError::NoMobilePhone.to_string()),
                    masked_phone: None,
                    verification_id: Some(verification.id),
                },
                Err(err) => ResetReadiness {
                    allowed: false,
                    reason: Some(err.to_string()),
                    masked_phone: None,
                    verification_id: Some(verification.id),
                },
            };
            others.push(OtherVerified {
                verification: verification.clone(),
                shield,
                reset,
            });
        }
        others
    }

    /// A verification made here ([`PodSession::made_here`]); any other is "not found".
    async fn own_verification(
        &self,
        session: &PodSession,
        id: Uuid,
    ) -> Result<Verification, PodError> {
        match self.store.get_verification(id).await? {
            Some(v) if session.made_here(&v) => Ok(v),
            _ => Err(CoreError::VerificationNotFound.into()),
        }
    }

    /// Everything the pod shows: the contact, the Microsoft user, the shield, the methods,
    /// whether a reset is possible, and the history.
    #[tracing::instrument(skip_all, fields(ticket = ?session.ticket()))]
    pub async fn overview(&self, session: &PodSession) -> Result<PodOverview, PodError> {
        let resolved = self.resolve(session, None).await?;
        let now = Utc::now();
        let mut overview = PodOverview {
            technician_name: session.acting_name(),
            ticket: resolved.ticket,
            tenant: resolved.tenant,
            user: None,
            user_error: None,
            shield: shield_of(&[], now),
            methods: Vec::new(),
            reset: ResetReadiness {
                allowed: false,
                reason: Some("Verify the user's identity first".into()),
                masked_phone: None,
                verification_id: None,
            },
            history: Vec::new(),
            others: Vec::new(),
            checks: Vec::new(),
            fraud: None,
        };
        let Some(tenant) = overview.tenant.clone() else {
            if let Err(err) = resolved.user {
                overview.user_error = Some(err);
            }
            return Ok(overview);
        };
        // A contact's pod has no ticket, so no one else verified on it.
        let on_ticket = match &session.place {
            PodPlace::Ticket {
                connection, ticket, ..
            } => {
                self.verifications
                    .ticket_verifications(connection.id, ticket, 20)
                    .await?
            }
            PodPlace::Contact { .. } => Vec::new(),
        };
        let user = match resolved.user {
            Ok(user) => user,
            Err(err) => {
                overview.user_error = Some(err);
                overview.others = self.others_verified(&tenant, None, &on_ticket, now).await;
                return Ok(overview);
            }
        };
        overview.user = Some(user.clone());
        overview.others = self
            .others_verified(&tenant, Some(&user), &on_ticket, now)
            .await;
        let history = self.verifications.history(&tenant, &user, 10).await?;
        // Only what was verified on this ticket makes the shield (a reset spends only such a
        // verification); the rest is history, saying where it was made.
        // Where each one elsewhere was made, worked out once per place (a history of ten
        // from one other ticket asks for its technician once).
        let mut places: std::collections::HashMap<PlaceKey, String> =
            std::collections::HashMap::new();
        let mut entries = Vec::with_capacity(history.len());
        for verification in history {
            let elsewhere = if session.made_here(&verification) {
                None
            } else {
                let key = (
                    verification.psa_connection_id,
                    verification.psa_ticket_id.clone(),
                    verification.technician_id,
                    verification.console_user_id,
                );
                Some(match places.get(&key) {
                    Some(place) => place.clone(),
                    None => {
                        let place = self.place_of(&verification).await;
                        places.insert(key, place.clone());
                        place
                    }
                })
            };
            entries.push(HistoryEntry {
                label: outcome_label(&verification),
                elsewhere,
                verification,
            });
        }
        let here: Vec<Verification> = entries
            .iter()
            .filter(|e| e.elsewhere.is_none())
            .map(|e| e.verification.clone())
            .collect();
        overview.shield = shield_of(&here, now);
        if let Some(HistoryEntry {
            verification: newest,
            elsewhere: Some(place),
            ..
        }) = entries.first()
            && newest.status == VerificationStatus::Approved
            && verified_now(newest, now).is_ok()
            && newest.consumed_at.is_none()
            && overview.shield.state != ShieldState::Pending
            && overview.shield.state != ShieldState::Verified
        {
            let when = ago(newest.decided_at.unwrap_or(newest.created_at), now);
            overview.shield = match &session.place {
                PodPlace::Ticket { .. } => Shield::not_verified(
                    "Not verified on this ticket",
                    format!(
                        "Verified {place}, {when}. A reset from this ticket needs a verification made here."
                    ),
                    format!("Not verified on this ticket (verified {place})"),
                ),
                PodPlace::Contact { .. } => Shield::not_verified(
                    "Not verified here",
                    format!(
                        "Verified {place}, {when}. A reset from this page needs a verification you make here."
                    ),
                    format!("Not verified here (verified {place})"),
                ),
            };
        }
        let reported_at = entries
            .first()
            .map(|e| &e.verification)
            .filter(|v| v.failure_code == Some(ErrorCode::FraudReported))
            .map(|v| v.decided_at.unwrap_or(v.created_at));
        let hold = self
            .resets
            .active_hold(session.msp.id, tenant.id, &user.object_id)
            .await?;
        overview.fraud = fraud_warning(
            &user,
            reported_at.or(hold.as_ref().map(|h| h.reported_at)),
            hold.as_ref(),
            now,
        );
        overview.history = entries;
        let contact_mobile = overview
            .ticket
            .as_ref()
            .and_then(|t| t.contact.as_ref())
            .and_then(|c| c.mobile.clone());
        let checks = self
            .verifications
            .user_checks(&session.msp, &tenant, &user)
            .await;
        overview.methods =
            self.verifications
                .methods_from(&session.msp, &checks, contact_mobile.as_deref());
        overview.checks = self.pod_checks(session, &tenant, &user, &checks);
        if let Some(hold) = &hold {
            overview.reset.reason = Some(format!(
                "Password resets of {} are held until {} (reported as fraud). An MSP admin can lift the hold.",
                user.upn,
                crate::domain::utc_minute(hold.held_until)
            ));
        } else if let Some(refusal) = checks.reset_refusal() {
            // Said before the verification is spent, not after.
            overview.reset.reason = Some(format!("A reset will be refused: {refusal}"));
        } else if overview.shield.state == ShieldState::Verified {
            match &checks.mobile {
                Ok(Some(phone)) => {
                    overview.reset = ResetReadiness {
                        allowed: true,
                        reason: None,
                        masked_phone: Some(phone.masked()),
                        verification_id: overview.shield.verification_id,
                    }
                }
                Ok(None) => overview.reset.reason = Some(CoreError::NoMobilePhone.to_string()),
                Err(err) => overview.reset.reason = Some(err.to_string()),
            }
        }
        Ok(overview)
    }

    /// What the technician should know before sending anything, from `checks` of the
    /// ticket's contact.
    fn pod_checks(
        &self,
        session: &PodSession,
        tenant: &Tenant,
        user: &DirectoryUser,
        checks: &UserChecks,
    ) -> Vec<PodCheck> {
        let mut list = Vec::new();
        if checks.push_unavailable.is_none() && matches!(checks.authenticator_registered, Ok(false))
        {
            let err = CoreError::AuthenticatorNotRegistered {
                upn: user.upn.clone(),
            };
            list.push(PodCheck {
                code: err.code(),
                message: err.to_string(),
                fix_token: None,
            });
        }
        if let Some(current_method) = checks.default_method_mismatch() {
            let fix = Self::fix_for(session, tenant, user);
            list.push(PodCheck {
                code: ErrorCode::PreferredMethodMismatch,
                message: format!(
                    "The Authenticator push is not {}'s default sign-in method (it is \"{current_method}\"), so a push would not reach them. Vouch can make the push their default once you confirm.",
                    user.upn
                ),
                fix_token: Some(fix.seal(&self.keyring)),
            });
        }
        if let Some(refusal) = checks.reset_refusal() {
            list.push(PodCheck {
                code: refusal.code(),
                message: format!("A password reset will be refused: {refusal}"),
                fix_token: None,
            });
        }
        if matches!(checks.mobile, Ok(None)) {
            list.push(PodCheck {
                code: ErrorCode::NoMobilePhone,
                message: CoreError::NoMobilePhone.to_string(),
                fix_token: None,
            });
        }
        list
    }

    /// The offer to make the push `user`'s default, bound to this pod.
    fn fix_for(session: &PodSession, tenant: &Tenant, user: &DirectoryUser) -> MethodFix {
        MethodFix::offered_now(
            session.msp.id,
            tenant.id,
            &user.object_id,
            &user.upn,
            session.claims.subject.clone(),
            session.claims.console_user.as_ref().map(|u| u.id),
        )
    }

    /// Starts verifying the ticket's contact (or, with a reason, someone else); on a
    /// contact's pod, that user.
    #[tracing::instrument(skip_all, fields(ticket = ?session.ticket()))]
    pub async fn start(
        &self,
        session: &PodSession,
        method: VerificationMethod,
        other: Option<OtherUser>,
    ) -> Result<Verification, PodError> {
        let searched = other.as_ref().map(|o| o.email.clone());
        let (resolved, tenant, user) = match self.target(session, searched.as_deref()).await {
            Ok(target) => target,
            Err(PodError::Core(err)) => {
                self.verifications
                    .audit_refused_start(
                        session.msp.id,
                        &session.requester().actor,
                        method,
                        session.ticket().map(str::to_owned),
                        searched.as_deref().unwrap_or(match session.place {
                            PodPlace::Ticket { .. } => "the ticket's contact",
                            PodPlace::Contact { .. } => "the contact",
                        }),
                        &err,
                    )
                    .await;
                return Err(PodError::Core(err));
            }
            Err(err) => return Err(err),
        };
        let contact = resolved.ticket.as_ref().and_then(|t| t.contact.as_ref());
        let fix = Self::fix_for(session, &tenant, &user);
        let started = self
            .verifications
            .start(StartRequest {
                msp: session.msp.clone(),
                tenant,
                user,
                method,
                context: TicketContext {
                    psa_connection_id: session.connection().map(|c| c.id),
                    ticket_id: session.ticket().map(str::to_owned),
                    contact_id: contact.map(|c| c.id.clone()),
                    contact_mobile: if other.is_some() {
                        None
                    } else {
                        contact.and_then(|c| c.mobile.clone())
                    },
                },
                is_ticket_contact: other.is_none(),
                reason: other.map(|o| o.reason),
                requester: session.requester(),
            })
            .await;
        match started {
            Ok(verification) => Ok(verification),
            Err(CoreError::Microsoft(err))
                if matches!(
                    err.kind,
                    MicrosoftErrorKind::PreferredMethodMismatch { can_fix: true, .. }
                ) =>
            {
                Err(PodError::MethodMismatch {
                    error: CoreError::Microsoft(err),
                    fix_token: fix.seal(&self.keyring),
                })
            }
            Err(err) => Err(err.into()),
        }
    }

    /// A verification of this ticket; waits up to `wait` for a decision (long-poll).
    pub async fn verification(
        &self,
        session: &PodSession,
        id: Uuid,
        wait: Duration,
    ) -> Result<Verification, PodError> {
        self.own_verification(session, id).await?;
        Ok(self.verifications.get(session.msp.id, id, wait).await?)
    }

    /// Checks the code the caller read out.
    #[tracing::instrument(skip(self, session, code))]
    pub async fn submit_code(
        &self,
        session: &PodSession,
        id: Uuid,
        code: &str,
    ) -> Result<Verification, PodError> {
        self.own_verification(session, id).await?;
        Ok(self
            .verifications
            .submit_code(&session.msp, id, code, &session.requester().actor)
            .await?)
    }

    /// Cancels a pending verification of this ticket.
    #[tracing::instrument(skip(self, session))]
    pub async fn cancel(&self, session: &PodSession, id: Uuid) -> Result<Verification, PodError> {
        self.own_verification(session, id).await?;
        Ok(self
            .verifications
            .cancel(&session.msp, id, &session.requester().actor)
            .await?)
    }

    /// Makes the Authenticator push the default sign-in method of the user a refused push
    /// was for: the one `fix_token` names, offered on this ticket to this technician.
    #[tracing::instrument(skip_all)]
    pub async fn make_push_default(
        &self,
        session: &PodSession,
        confirmed: bool,
        fix_token: &str,
    ) -> Result<(), PodError> {
        if !confirmed {
            return Err(CoreError::ConfirmationRequired.into());
        }
        let fix = MethodFix::open(&self.keyring, fix_token)?;
        if fix.msp != session.msp.id
            || fix.offered_in != session.claims.subject
            || fix.console_user != session.claims.console_user.as_ref().map(|u| u.id)
        {
            return Err(CoreError::MethodFixInvalid.into());
        }
        let tenant = match self.store.get_tenant(fix.tenant).await? {
            Some(tenant) if tenant.msp_id == session.msp.id => tenant,
            _ => return Err(CoreError::TenantNotFound.into()),
        };
        self.verifications
            .make_push_default(
                &session.requester().actor,
                &tenant,
                MethodChange {
                    msp_id: session.msp.id,
                    tenant_id: tenant.id,
                    user_object_id: fix.user_object_id,
                    upn: fix.upn,
                    psa_connection_id: session.connection().map(|c| c.id),
                    psa_ticket_id: session.ticket().map(str::to_owned),
                    requested_by: session.acting_name(),
                },
            )
            .await?;
        Ok(())
    }

    /// Resets the password of the user verified from this ticket.
    #[tracing::instrument(skip(self, session, idempotency_key))]
    pub async fn reset(
        &self,
        session: &PodSession,
        verification_id: Uuid,
        idempotency_key: String,
        confirmed: bool,
    ) -> Result<ResetResult, PodError> {
        let verification = self.own_verification(session, verification_id).await?;
        Ok(self
            .resets
            .reset(ResetRequest {
                msp: session.msp.clone(),
                tenant_id: verification.tenant_id,
                user_object_id: verification.user_object_id.clone(),
                verification_id: verification.id,
                idempotency_key,
                confirmed,
                actor: session.requester().actor,
                technician_id: session.requester().technician_id,
            })
            .await?)
    }

    /// Sends the link of a reset made from this ticket again (see [`ResetService::resend`]).
    #[tracing::instrument(skip(self, session))]
    pub async fn resend(
        &self,
        session: &PodSession,
        reset_id: Uuid,
    ) -> Result<PasswordReset, PodError> {
        let reset = self.resets.get(session.msp.id, reset_id).await?;
        // Only resets of this ticket's verifications, like every other pod action.
        self.own_verification(session, reset.verification_id)
            .await
            .map_err(|_| PodError::from(CoreError::ResetNotFound))?;
        Ok(self
            .resets
            .resend(&session.msp, reset.id, &session.requester().actor)
            .await?)
    }
}

/// The shield for the newest verification of `history`.
pub fn shield_of(history: &[Verification], now: DateTime<Utc>) -> Shield {
    let Some(latest) = history.first() else {
        return Shield::not_verified("Not verified", String::new(), "Not verified".to_owned());
    };
    let (state, label, detail, message) = match latest.status {
        VerificationStatus::Pending => {
            // What the technician waits for depends on how the user was asked.
            let waiting = match latest.method {
                VerificationMethod::Push => {
                    "Waiting for the user to approve the push on their phone…"
                }
                VerificationMethod::SmsCode => {
                    "Waiting for the user to read out the code we texted…"
                }
                VerificationMethod::SmsLink => "Waiting for the user to tap the link we texted…",
            };
            (
                ShieldState::Pending,
                waiting.to_owned(),
                String::new(),
                waiting.to_owned(),
            )
        }
        VerificationStatus::Approved
            if verified_now(latest, now).is_ok() && latest.consumed_at.is_none() =>
        {
            (
                ShieldState::Verified,
                "Verified".to_owned(),
                String::new(),
                "Verified".to_owned(),
            )
        }
        VerificationStatus::Approved => {
            let why = "The last verification has been used or has expired.";
            (
                ShieldState::NotVerified,
                "Not verified".to_owned(),
                why.to_owned(),
                "Not verified (the last verification has been used or has expired)".to_owned(),
            )
        }
        VerificationStatus::Cancelled => (
            ShieldState::NotVerified,
            "Not verified".to_owned(),
            String::new(),
            "Not verified".to_owned(),
        ),
        _ => {
            let message = match latest.status {
                VerificationStatus::Denied
                    if latest.failure_code == Some(ErrorCode::FraudReported) =>
                {
                    "The user reported the request as fraud.".to_owned()
                }
                VerificationStatus::Denied => "The user denied the request.".to_owned(),
                VerificationStatus::Interrupted => {
                    "Vouch restarted while waiting for the answer. Start a new verification."
                        .to_owned()
                }
                VerificationStatus::Expired => "No answer in time.".to_owned(),
                _ => format!(
                    "The verification failed ({}).",
                    latest.failure_code.map_or("error", ErrorCode::as_str)
                ),
            };
            (
                ShieldState::Failed,
                format!("Failed: {message}"),
                String::new(),
                message,
            )
        }
    };
    let verified = state == ShieldState::Verified;
    Shield {
        expired_label: verified.then(|| "Not verified".to_owned()),
        expired_detail: verified.then(|| "The verification has expired.".to_owned()),
        state,
        verification_id: Some(latest.id),
        method: Some(latest.method),
        verified_until: latest.verified_until,
        failure_code: latest.failure_code,
        label,
        detail,
        message,
    }
}

/// How a past verification reads in the history list: a few words (the list is narrow).
pub fn outcome_label(verification: &Verification) -> String {
    match verification.status {
        VerificationStatus::Approved => return "Approved".to_owned(),
        VerificationStatus::Pending => return "Pending".to_owned(),
        VerificationStatus::Cancelled => return "Cancelled".to_owned(),
        _ => {}
    }
    let by_code = match verification.failure_code {
        Some(ErrorCode::Denied) => "Denied",
        Some(ErrorCode::DeniedByUser) => "Refused",
        Some(ErrorCode::TooManyAttempts) => "Wrong codes",
        Some(ErrorCode::FraudReported) => "Reported as fraud",
        Some(ErrorCode::NoResponse) => "No response",
        Some(ErrorCode::VerificationExpired) => "Expired",
        Some(ErrorCode::LinkExpired) => "Link expired",
        Some(ErrorCode::CodeExpired) => "Code expired",
        Some(ErrorCode::MfaUnknownResult) => "Failed",
        Some(ErrorCode::VerificationInterrupted) => "Interrupted",
        Some(code) => {
            let words = code.as_str().replace('_', " ");
            let mut chars = words.chars();
            return match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect(),
                None => "Failed".to_owned(),
            };
        }
        None => match verification.status {
            VerificationStatus::Denied => "Denied",
            VerificationStatus::Expired => "Expired",
            _ => "Failed",
        },
    };
    by_code.to_owned()
}

/// The warning for a user who reported a request as fraud at `reported_at` (their newest
/// verification, or the one that put `hold`), if they did.
fn fraud_warning(
    user: &DirectoryUser,
    reported_at: Option<DateTime<Utc>>,
    hold: Option<&crate::domain::ResetHold>,
    now: DateTime<Utc>,
) -> Option<FraudWarning> {
    let reported_at = reported_at?;
    let name = user.display_name.as_deref().unwrap_or(&user.upn);
    let mut message = format!(
        "{name} reported a verification request as fraud (\"It's not me\"), {}. Someone may be pretending to be them: do not reset anything on this call, and call {name} back on a number you already know.",
        ago(reported_at, now)
    );
    if let Some(hold) = hold {
        message.push_str(&format!(
            " Password resets of {} are held until {} unless an MSP admin lifts the hold.",
            user.upn,
            crate::domain::utc_minute(hold.held_until)
        ));
    }
    Some(FraudWarning {
        message,
        resets_held_until: hold.map(|h| h.held_until),
    })
}

/// How long ago `at` was, in a few words: "just now", "4 min ago", "2 h ago", "on 1 Dec".
pub fn ago(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let minutes = (now - at).num_minutes();
    match minutes {
        ..=0 => "just now".to_owned(),
        1..=59 => format!("{minutes} min ago"),
        60..=1439 => format!("{} h ago", minutes / 60),
        _ => format!("on {}", at.format("%-d %b")),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn an_origin_is_written_as_the_url_parser_would_whatever_path_it_takes() {
        for value in [
            "https://psa.example",
            "https://psa.example:8443",
            "http://localhost:3000",
            "https://a-b.c-d.example",
            "https://PSA.Example",
            "https://psa.example:443",
            "http://psa.example:80",
            "https://psa.example/",
            "https://psa.example:08443",
            "https://127.0.0.1:9000",
            "https://xn--bcher-kva.example",
            "https://b\u{fc}cher.example",
            "https://psa.example:",
            "https://psa..example",
            "https://-psa.example",
            "ftp://psa.example",
            "https://",
            "psa.example",
            "https://psa.example:99999",
            "https://psa.example; script-src *",
        ] {
            let parsed = url::Url::parse(value)
                .ok()
                .filter(|u| matches!(u.scheme(), "https" | "http") && u.host_str().is_some())
                .map(|u| u.origin().ascii_serialization());
            assert_eq!(origin_of(value), parsed, "{value}");
        }
    }

    use super::*;

    #[test]
    fn ago_reads_as_people_say_it() {
        let now = Utc::now();
        assert_eq!(ago(now, now), "just now");
        assert_eq!(ago(now - chrono::Duration::seconds(59), now), "just now");
        assert_eq!(ago(now - chrono::Duration::minutes(4), now), "4 min ago");
        assert_eq!(ago(now - chrono::Duration::minutes(130), now), "2 h ago");
        let long_ago = now - chrono::Duration::days(3);
        assert_eq!(
            ago(long_ago, now),
            format!("on {}", long_ago.format("%-d %b"))
        );
    }
}
