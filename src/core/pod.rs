//! The pod: the panel inside a PSA ticket. A pod session is what the PSA vouched for (this
//! technician, on this ticket, for this MSP); everything a pod does is derived from the
//! session's ticket, so a pod can never act on another ticket's contact or for another MSP.
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
use crate::psa::pod_token::{self, PodClaims, TokenError};
use crate::psa::{EmbedLoad, PsaAdapters, PsaError, TicketContact};
use crate::store::Store;
use crate::store::StoreError;
use crate::store::changes::Stamped;
use crate::store::console_users::ConsoleUser as ConsoleAccount;
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
            PodError::SessionExpired | PodError::SessionInvalid | PodError::SessionRevoked => {
                ErrorCode::Unauthorized
            }
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

/// The session of a pod: the PSA vouched for this technician on this ticket.
#[derive(Debug, Clone)]
pub struct PodSession {
    pub claims: PodClaims,
    pub connection: Arc<PsaConnection>,
    pub msp: MspAccount,
    pub technician: Technician,
}

impl PodSession {
    /// The technician, as the audit log and the verification service name them.
    pub fn requester(&self) -> Requester {
        // A pod opened from the console acts for the console user (`accounts::actor_of`).
        let actor = match &self.claims.console_user {
            Some(user) => AuditActor {
                kind: crate::domain::ActorKind::ConsoleUser,
                id: Some(user.id.to_string()),
                name: Some(user.name.clone()),
            },
            None => AuditActor {
                kind: crate::domain::ActorKind::Technician,
                id: Some(self.technician.psa_member_id.clone()),
                name: Some(self.technician.display_name.clone()),
            },
        };
        Requester {
            actor,
            technician_id: Some(self.technician.id),
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

/// Everything the pod shows about its ticket.
#[derive(Debug, Clone)]
pub struct PodOverview {
    pub technician_name: String,
    pub ticket: TicketContact,
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
    /// The technicians and MSP accounts pod sessions are checked against.
    pub session_state_cache: CacheLimits,
}

/// A place a verification was made: its PSA connection, ticket and technician.
/// What a pod page load needs: where it may be framed, and its token or why there is none.
pub struct PodPage {
    /// The origins (`scheme://host[:port]`) the MSP configured for the connection; empty
    /// when the connection is unknown or of another PSA (then nobody may frame the page).
    pub allowed_origins: Vec<String>,
    pub token: Result<String, PodError>,
}

/// The origins of a connection's `allowed_origins` setting that are http(s) URLs with a host.
pub fn allowed_origins(connection: &PsaConnection) -> Vec<String> {
    connection.settings["allowed_origins"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|v| v.as_str())
                .filter_map(|v| url::Url::parse(v).ok())
                .filter(|u| matches!(u.scheme(), "https" | "http") && u.host_str().is_some())
                .map(|u| u.origin().ascii_serialization())
                .collect()
        })
        .unwrap_or_default()
}

type PlaceKey = (Option<Uuid>, Option<String>, Option<Uuid>);

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
}

/// The ticket, its tenant and the Microsoft user of `email` (or of the contact).
struct Resolved {
    ticket: TicketContact,
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
            TokenError::Invalid => PodError::SessionInvalid,
        })?;
        let unavailable = |err: StoreError| {
            tracing::error!(error = %err, "pod session lookup failed");
            PodError::SessionUnavailable
        };
        let epoch = self.store.changes().epoch();
        let connection = self
            .connection_as_of(claims.connection, epoch)
            .await
            .map_err(unavailable)?;
        let msp = self.msp(claims.msp, epoch).await.map_err(unavailable)?;
        let technician = self
            .technician(claims.technician, epoch)
            .await
            .map_err(unavailable)?;
        match (connection, msp, technician) {
            (Some(connection), Some(msp), Some(technician))
                if connection.msp_id == msp.id && technician.msp_id == msp.id =>
            {
                if technician.blocked_at.is_some() {
                    return Err(PodError::Core(CoreError::TechnicianBlocked));
                }
                self.console_user_may_act(&claims).await?;
                Ok(PodSession {
                    claims,
                    connection,
                    msp: Arc::unwrap_or_clone(msp),
                    technician: Arc::unwrap_or_clone(technician),
                })
            }
            _ => Err(PodError::SessionRevoked),
        }
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

    /// A pod a console user opened acts only while that user may sign in: disabled,
    /// removed or moved to another MSP, their pod stops at its next call.
    async fn console_user_may_act(&self, claims: &PodClaims) -> Result<(), PodError> {
        let Some(actor) = &claims.console_user else {
            return Ok(());
        };
        match self.store.get_console_user(actor.id).await {
            Ok(Some(user)) if user.msp_id == claims.msp && user.disabled_at.is_none() => Ok(()),
            Ok(_) => Err(PodError::SessionRevoked),
            Err(err) => {
                tracing::error!(error = %err, "console user lookup failed");
                Err(PodError::SessionUnavailable)
            }
        }
    }

    /// Issues a pod token for a console user who opened ticket `ticket` of PSA connection
    /// `connection_id` from the MSP console: the same session a PSA load gets, on the console
    /// user's behalf. The connection must be the user's MSP's, and the ticket is read through
    /// the PSA's adapter (as the pod reads it), so a ticket the PSA does not know is refused
    /// here and the notes go to the ticket named. The console user acts through a technician
    /// record of their own on that connection (member `console:{id}`), so blocking it works
    /// as for any technician; the audit names the console user.
    #[tracing::instrument(skip(self, user), fields(user_id = %user.id))]
    pub async fn open_console_session(
        &self,
        user: &ConsoleAccount,
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
        let name = if user.name.trim().is_empty() {
            user.email.clone()
        } else {
            user.name.clone()
        };
        let sighting = TechnicianSighting {
            msp_id: connection.msp_id,
            psa_connection_id: connection.id,
            psa_member_id: format!("console:{}", user.id),
            display_name: name.clone(),
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
            connection.id,
            technician.id,
            ticket,
            pod_token::ConsoleActor { id: user.id, name },
        );
        Ok((token, connection))
    }

    async fn resolve(
        &self,
        session: &PodSession,
        email: Option<&str>,
    ) -> Result<Resolved, PodError> {
        let ticket = self
            .psa
            .ticket(&session.connection, &session.claims.ticket)
            .await?;
        let tenant = match &ticket.company {
            Some(company) => {
                self.store
                    .tenant_for_company(session.connection.id, &company.id)
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
            ticket,
            tenant,
            user,
        })
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

    /// Whether `verification` was made from this pod's ticket.
    fn is_this_ticket(&self, session: &PodSession, verification: &Verification) -> bool {
        verification.psa_connection_id == Some(session.connection.id)
            && verification.psa_ticket_id.as_deref() == Some(session.claims.ticket.as_str())
    }

    /// Where a verification was made, for the technician: "on HaloPSA ticket 2001, by
    /// Jordan Tech", or "through the Vouch API".
    async fn place_of(&self, verification: &Verification) -> String {
        let (Some(connection_id), Some(ticket)) = (
            verification.psa_connection_id,
            verification.psa_ticket_id.as_deref(),
        ) else {
            return "through the Vouch API".to_owned();
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

    /// A verification of this pod's ticket (another ticket's is "not found").
    async fn own_verification(
        &self,
        session: &PodSession,
        id: Uuid,
    ) -> Result<Verification, PodError> {
        match self.store.get_verification(id).await? {
            Some(v)
                if v.msp_id == session.msp.id
                    && v.psa_connection_id == Some(session.connection.id)
                    && v.psa_ticket_id.as_deref() == Some(session.claims.ticket.as_str()) =>
            {
                Ok(v)
            }
            _ => Err(CoreError::VerificationNotFound.into()),
        }
    }

    /// Everything the pod shows: the contact, the Microsoft user, the shield, the methods,
    /// whether a reset is possible, and the history.
    #[tracing::instrument(skip_all, fields(ticket = %session.claims.ticket))]
    pub async fn overview(&self, session: &PodSession) -> Result<PodOverview, PodError> {
        let resolved = self.resolve(session, None).await?;
        let now = Utc::now();
        let mut overview = PodOverview {
            technician_name: session.technician.display_name.clone(),
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
        let on_ticket = self
            .verifications
            .ticket_verifications(session.connection.id, &session.claims.ticket, 20)
            .await?;
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
            let elsewhere = if self.is_this_ticket(session, &verification) {
                None
            } else {
                let key = (
                    verification.psa_connection_id,
                    verification.psa_ticket_id.clone(),
                    verification.technician_id,
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
            overview.shield = Shield::not_verified(
                "Not verified on this ticket",
                format!(
                    "Verified {place}, {}. A reset from this ticket needs a verification made here.",
                    ago(newest.decided_at.unwrap_or(newest.created_at), now)
                ),
                format!("Not verified on this ticket (verified {place})"),
            );
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
            .contact
            .as_ref()
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
            let fix = MethodFix::offered_now(
                session.msp.id,
                tenant.id,
                &user.object_id,
                &user.upn,
                session.connection.id,
                &session.claims.ticket,
                session.technician.id,
            );
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

    /// Starts verifying the ticket's contact (or, with a reason, someone else).
    #[tracing::instrument(skip_all, fields(ticket = %session.claims.ticket))]
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
                        Some(session.claims.ticket.clone()),
                        searched.as_deref().unwrap_or("the ticket's contact"),
                        &err,
                    )
                    .await;
                return Err(PodError::Core(err));
            }
            Err(err) => return Err(err),
        };
        let contact = resolved.ticket.contact.as_ref();
        let fix = MethodFix::offered_now(
            session.msp.id,
            tenant.id,
            &user.object_id,
            &user.upn,
            session.connection.id,
            &session.claims.ticket,
            session.technician.id,
        );
        let started = self
            .verifications
            .start(StartRequest {
                msp: session.msp.clone(),
                tenant,
                user,
                method,
                context: TicketContext {
                    psa_connection_id: Some(session.connection.id),
                    ticket_id: Some(session.claims.ticket.clone()),
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
            || fix.connection != session.connection.id
            || fix.ticket != session.claims.ticket
            || fix.technician != session.technician.id
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
                    psa_connection_id: Some(session.connection.id),
                    psa_ticket_id: Some(session.claims.ticket.clone()),
                    requested_by: session.technician.display_name.clone(),
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
                technician_id: Some(session.technician.id),
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
