//! The PSAs Vouch embeds in, behind one adapter trait. Each PSA is one file implementing
//! [`PsaAdapter`]; [`PsaAdapters::new`] registers them (adding a PSA: one file, one line).
//!
//! The rule for every PSA: what the embedding page claims (ticket, technician) is only a claim
//! until the adapter has authenticated it, and contact data is always re-read server-side
//! through the PSA's REST API with the MSP's own credentials, never taken from the browser.

pub mod autotask;
pub mod connectwise;
pub mod halopsa;
pub mod notes;
pub mod pod_token;
pub mod signing;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use moka::future::Cache;
use reqwest::Response;
use uuid::Uuid;

use crate::config::Config;
use crate::domain::PsaKind;
use crate::domain::{ConnectionCheck, ErrorCode};
use crate::store::psa_connections::PsaConnection;
use crate::telemetry::Metrics;
use crate::upstream::TransportError;

/// What the PSA handed the pod when it loaded it.
#[derive(Debug, Clone)]
pub enum EmbedLoad {
    /// HaloPSA tab / Autotask Insight: the (signed) query or form parameters.
    Signed(Vec<(String, String)>),
    /// ConnectWise: what `getMemberAuthentication` returned to the pod.
    ConnectWiseMember(ConnectWiseMember),
}

/// The ConnectWise Hosted API's member authentication data (a claim until verified).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ConnectWiseMember {
    #[serde(default)]
    pub site: String,
    #[serde(default)]
    pub companyid: String,
    #[serde(default)]
    pub memberid: String,
    #[serde(default, rename = "memberHash")]
    pub member_hash: String,
    #[serde(default, rename = "memberContext")]
    pub member_context: String,
    #[serde(default, rename = "memberEmail")]
    pub member_email: String,
    #[serde(default, rename = "codeBase")]
    pub code_base: Option<String>,
    /// The ticket the pod shows (from the pod URL's `id`).
    #[serde(skip)]
    pub ticket_id: String,
}

/// A technician as the PSA vouched for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsaTechnician {
    pub member_id: String,
    pub name: String,
    pub email: Option<String>,
}

/// An embed load the PSA vouched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VouchedEmbed {
    pub technician: PsaTechnician,
    pub ticket_id: String,
}

/// A load whose signature the PSA's secret verified: the ticket and the technician's numeric
/// id it names (HaloPSA's agent, Autotask's resource). Made only by [`signing::verified_load`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedEmbed {
    pub ticket_id: String,
    pub member_id: u64,
}

/// A ticket and its contact, as the PSA's REST API reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketContact {
    pub ticket_id: String,
    pub summary: String,
    pub contact: Option<PsaContact>,
    pub company: Option<PsaCompany>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsaContact {
    pub id: String,
    pub name: String,
    /// Primary first.
    pub emails: Vec<String>,
    pub mobile: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsaCompany {
    pub id: String,
    pub name: String,
}

/// A company as the PSA's company list gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsaCompanyListing {
    pub id: String,
    pub name: String,
    /// Its website or domain field, as typed in the PSA (`https://www.contoso.com/`,
    /// `contoso.com`), when it has one.
    pub website: Option<String>,
}

/// One page of the PSA's companies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsaCompanyPage {
    pub items: Vec<PsaCompanyListing>,
    /// Whether the PSA has more companies after this page.
    pub has_more: bool,
}

/// The most companies one page asks the PSA for (every PSA takes at least this).
pub const MAX_COMPANY_PAGE_SIZE: u32 = 100;
/// The most contacts of one company whose e-mail addresses are read (one page).
pub const MAX_COMPANY_CONTACTS: u32 = 200;

/// A PSA failure, with a stable code and an actionable sentence. Never contains credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PsaError {
    #[error("The embed load carries no signature; open Vouch from the PSA ticket.")]
    Unsigned,
    #[error(
        "The embed load's signature is not valid. Check that the secret configured in Vouch matches the PSA's."
    )]
    BadSignature,
    #[error("The embed load is too old; reload the ticket in the PSA.")]
    Stale,
    #[error(
        "The PSA did not confirm this technician's session. Reload the ticket; if it persists, sign in to the PSA again."
    )]
    MemberRejected,
    #[error("This technician belongs to another PSA company than the one connected to Vouch.")]
    WrongCompany,
    #[error("The PSA rejected Vouch's API credentials. Check the PSA connection in Vouch.")]
    CredentialsRejected,
    #[error("The PSA has no {0} with this id.")]
    NotFound(&'static str),
    #[error("The PSA is throttling requests. Try again in a minute.")]
    Throttled,
    #[error("The PSA is unavailable right now. Try again in a few minutes.")]
    Unavailable,
    #[error("The PSA did not answer in time. Try again.")]
    TimedOut,
    #[error(
        "Vouch could not connect to the PSA (refused, no route or unknown host). Check the PSA's address in the connection, and that Vouch's network may reach it."
    )]
    Unreachable,
    #[error(
        "The TLS handshake with the PSA failed: its certificate is not trusted, has expired or is for another name, or the address does not speak HTTPS. Check the PSA's address in the connection."
    )]
    TlsFailed,
    /// Vouch's own open-file limit, not the PSA's state.
    #[error("{}", crate::upstream::TOO_MANY_OPEN_FILES_MESSAGE)]
    TooManyOpenFiles,
    #[error("The PSA connection is not set up completely: {0}")]
    Misconfigured(String),
    #[error("The PSA gave an answer Vouch did not expect ({0}).")]
    Unexpected(String),
}

impl PsaError {
    pub fn code(&self) -> ErrorCode {
        match self {
            PsaError::Unsigned => ErrorCode::EmbedUnsigned,
            PsaError::BadSignature => ErrorCode::EmbedBadSignature,
            PsaError::Stale => ErrorCode::EmbedStale,
            PsaError::MemberRejected => ErrorCode::EmbedMemberRejected,
            PsaError::WrongCompany => ErrorCode::EmbedWrongCompany,
            PsaError::CredentialsRejected => ErrorCode::PsaCredentialsRejected,
            PsaError::NotFound(_) => ErrorCode::PsaNotFound,
            PsaError::Throttled => ErrorCode::PsaThrottled,
            PsaError::Unavailable => ErrorCode::PsaUnavailable,
            PsaError::TimedOut => ErrorCode::PsaTimedOut,
            PsaError::Unreachable => ErrorCode::PsaUnreachable,
            PsaError::TlsFailed => ErrorCode::PsaTlsFailed,
            PsaError::TooManyOpenFiles => ErrorCode::TooManyOpenFiles,
            PsaError::Misconfigured(_) => ErrorCode::PsaMisconfigured,
            PsaError::Unexpected(_) => ErrorCode::PsaUnexpectedResponse,
        }
    }

    /// Refusals of the embed itself (the request is not vouched for).
    pub fn is_embed_refusal(&self) -> bool {
        matches!(
            self,
            PsaError::Unsigned
                | PsaError::BadSignature
                | PsaError::Stale
                | PsaError::MemberRejected
                | PsaError::WrongCompany
        )
    }
}

impl From<TransportError> for PsaError {
    fn from(err: TransportError) -> Self {
        match err {
            TransportError::TimedOut => PsaError::TimedOut,
            TransportError::TooManyOpenFiles => PsaError::TooManyOpenFiles,
            TransportError::Network(detail) => {
                tracing::warn!(%detail, "PSA unreachable");
                PsaError::Unreachable
            }
            TransportError::Tls(detail) => {
                tracing::warn!(%detail, "TLS handshake with the PSA failed");
                PsaError::TlsFailed
            }
        }
    }
}

/// Maps a PSA's HTTP error status to an error (each adapter handles its own bodies).
pub(crate) fn status_error(response: &Response, what: &'static str) -> PsaError {
    match response.status().as_u16() {
        401 | 403 => PsaError::CredentialsRejected,
        404 => PsaError::NotFound(what),
        429 => PsaError::Throttled,
        500..=599 => PsaError::Unavailable,
        other => PsaError::Unexpected(format!("HTTP {other}")),
    }
}

/// A failed check: the code and the sentence saying what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckFailure {
    pub code: ErrorCode,
    pub message: String,
}

impl CheckFailure {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> CheckFailure {
        CheckFailure {
            code,
            message: message.into(),
        }
    }

    /// What any PSA's request may come to before its own answer means anything: no
    /// connection, no TLS, no answer in time, throttled, down. `psa` is its name for people.
    pub fn of_transport(psa: &str, err: &PsaError) -> CheckFailure {
        let message = match err {
            PsaError::Unreachable => format!(
                "Vouch could not connect to {psa} (connection refused, no route or unknown host name). Check the address in the connection and that Vouch's network may reach it (firewall, DNS, proxy)."
            ),
            PsaError::TlsFailed => format!(
                "The TLS handshake with {psa} failed: its certificate is not trusted, has expired or is for another name, or the address does not speak HTTPS. Check the address in the connection (https://, the right host and port)."
            ),
            PsaError::TimedOut => {
                format!("{psa} did not answer in time. Check that it is up, then test again.")
            }
            PsaError::Throttled => format!(
                "{psa} is throttling Vouch's requests (429 Too Many Requests). Wait a minute, then test again; if it persists, other integrations may be using up the API limit."
            ),
            PsaError::Unavailable => format!(
                "{psa} answered with a server error (5xx): it is down or failing. Try again in a few minutes."
            ),
            other => other.to_string(),
        };
        CheckFailure::new(err.code(), message)
    }

    /// The failure of an HTTP status that no check-specific rule explained.
    pub fn of_status(psa: &str, status: u16) -> CheckFailure {
        match status {
            429 => CheckFailure::of_transport(psa, &PsaError::Throttled),
            500..=599 => CheckFailure::of_transport(psa, &PsaError::Unavailable),
            other => CheckFailure::new(
                ErrorCode::PsaUnexpectedResponse,
                format!(
                    "{psa} answered HTTP {other}, which Vouch did not expect. Check the address in the connection."
                ),
            ),
        }
    }
}

/// The checks of one test, in order; once a check fails, the ones that need it are skipped.
#[derive(Debug, Default)]
pub(crate) struct CheckList {
    checks: Vec<ConnectionCheck>,
    /// The first failed check that the remaining checks depend on.
    blocked_by: Option<&'static str>,
}

impl CheckList {
    /// Records the outcome of check `name`; `Ok` carries its "passed" sentence. Returns
    /// whether it passed.
    pub fn record(&mut self, name: &'static str, outcome: Result<String, CheckFailure>) -> bool {
        match outcome {
            Ok(message) => {
                self.checks.push(ConnectionCheck::passed(name, message));
                true
            }
            Err(failure) => {
                self.checks
                    .push(ConnectionCheck::failed(name, failure.code, failure.message));
                false
            }
        }
    }

    /// Records `name` as failed and blocking every later check (they are skipped).
    pub fn record_gate(
        &mut self,
        name: &'static str,
        outcome: Result<String, CheckFailure>,
    ) -> bool {
        let passed = self.record(name, outcome);
        if !passed && self.blocked_by.is_none() {
            self.blocked_by = Some(name);
        }
        passed
    }

    /// Records `name` as not run because of `because`.
    pub fn skip(&mut self, name: &'static str, because: &str) {
        self.checks.push(ConnectionCheck::skipped(name, because));
    }

    /// Skips each of `names` when a gate failed; returns `true` when it did.
    pub fn skip_all_if_blocked(&mut self, names: &[&'static str]) -> bool {
        match self.blocked_by {
            Some(because) => {
                for name in names {
                    self.skip(name, because);
                }
                true
            }
            None => false,
        }
    }

    pub fn finish(self) -> Vec<ConnectionCheck> {
        self.checks
    }
}

/// The JSON body of a PSA's answer (`Null` when it is not JSON), at most 64 KiB read.
pub(crate) async fn body_json(response: Response) -> serde_json::Value {
    match response.bytes().await {
        Ok(bytes) if bytes.len() <= 64 * 1024 => {
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null)
        }
        _ => serde_json::Value::Null,
    }
}

/// A PSA's own error text for a person: printable characters only, at most 300 of them.
pub(crate) fn psa_text(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let clean = clean.trim();
    match clean.char_indices().nth(300) {
        Some((at, _)) => format!("{}…", &clean[..at]),
        None => clean.to_owned(),
    }
}

/// One PSA's side of the embedding contract and REST API.
#[async_trait]
pub trait PsaAdapter: Send + Sync {
    fn kind(&self) -> PsaKind;

    /// Checks that the PSA really vouches for this load; returns the technician and ticket.
    async fn authenticate_embed(
        &self,
        connection: &PsaConnection,
        load: &EmbedLoad,
    ) -> Result<VouchedEmbed, PsaError>;

    /// Checks a load that proves by itself that the PSA sent it (its signature, checked here
    /// without calling the PSA), so its ticket can be read while the technician is looked up
    /// ([`PsaAdapter::signed_technician`]). `None` where only a call to the PSA vouches for
    /// the load (ConnectWise's member check): nothing is read for a load the PSA has not
    /// vouched for yet.
    fn check_signature(
        &self,
        _connection: &PsaConnection,
        _load: &EmbedLoad,
    ) -> Option<Result<SignedEmbed, PsaError>> {
        None
    }

    /// The technician a load [`PsaAdapter::check_signature`] accepted names, as the PSA
    /// knows them. Only the PSAs that sign their loads have it.
    async fn signed_technician(
        &self,
        _connection: &PsaConnection,
        _signed: &SignedEmbed,
    ) -> Result<PsaTechnician, PsaError> {
        Err(PsaError::Unsigned)
    }

    /// The ticket and its contact, read through the PSA's REST API.
    async fn ticket(
        &self,
        connection: &PsaConnection,
        ticket_id: &str,
    ) -> Result<TicketContact, PsaError>;

    /// Writes an internal (not customer-visible) note on the ticket.
    async fn add_internal_note(
        &self,
        connection: &PsaConnection,
        ticket_id: &str,
        text: &str,
    ) -> Result<(), PsaError>;

    /// Tests the connection against the PSA with harmless reads only (nothing is written):
    /// one check per thing the PSA must allow, in order; a check that depends on one that
    /// failed is reported skipped. Never fails as a whole: a PSA that cannot be reached is a
    /// failed first check.
    async fn test_connection(&self, connection: &PsaConnection) -> Vec<ConnectionCheck>;

    /// The address of ticket `ticket_id` in the PSA's own web app, built from the
    /// connection (the console's audit links each entry to its ticket); `None` when the
    /// connection does not say enough to build it. Never calls the PSA except through a
    /// cache the adapter already keeps (Autotask's zone).
    async fn ticket_url(&self, connection: &PsaConnection, ticket_id: &str) -> Option<url::Url>;

    // --- The PSA's companies (listing and suggested mappings) ---

    /// Page `page` (1-based) of the PSA's companies whose name contains `search` (all when
    /// `None`), at most `page_size` ([`MAX_COMPANY_PAGE_SIZE`]) a page.
    async fn companies(
        &self,
        connection: &PsaConnection,
        search: Option<&str>,
        page: u32,
        page_size: u32,
    ) -> Result<PsaCompanyPage, PsaError>;

    /// The e-mail addresses of the company's contacts (its first `limit` contacts, at most
    /// [`MAX_COMPANY_CONTACTS`]): one list per contact, cleaned like a ticket contact's.
    async fn company_contact_emails(
        &self,
        connection: &PsaConnection,
        company_id: &str,
        limit: u32,
    ) -> Result<Vec<Vec<String>>, PsaError>;
}

/// Every PSA adapter, with a short cache of ticket reads (`cache.tickets`: PSAs rate-limit;
/// Halo allows about 450 requests per 5 minutes).
#[derive(Clone)]
pub struct PsaAdapters {
    adapters: HashMap<PsaKind, Arc<dyn PsaAdapter>>,
    tickets: Cache<(Uuid, String), TicketContact>,
}

impl PsaAdapters {
    /// Every adapter, configured (caches included) from `config`.
    pub fn new(config: &Config, metrics: &Metrics) -> PsaAdapters {
        let adapters: Vec<Arc<dyn PsaAdapter>> = vec![
            Arc::new(connectwise::ConnectWise::new(config, metrics)),
            Arc::new(halopsa::HaloPsa::new(config, metrics)),
            Arc::new(autotask::Autotask::new(config, metrics)),
        ];
        PsaAdapters {
            adapters: adapters.into_iter().map(|a| (a.kind(), a)).collect(),
            tickets: config.cache.tickets.build(),
        }
    }

    pub fn adapter(&self, kind: PsaKind) -> &Arc<dyn PsaAdapter> {
        self.adapters
            .get(&kind)
            .expect("every PSA kind has an adapter")
    }

    /// Checks that the PSA vouches for `load` (see [`PsaAdapter::authenticate_embed`]). When
    /// the load's signature already proves it ([`PsaAdapter::check_signature`]), its ticket
    /// and contact are read at the same time as the technician, into the ticket cache, so the
    /// pod's first context read finds them there; a failure of that read is left to the
    /// context read to report.
    ///
    /// The PSA calls of a cold pod load (this, then the pod's context read), and how many of
    /// them follow one another (the critical path):
    ///
    /// | PSA | calls | in sequence | the sequence |
    /// |---|---|---|---|
    /// | ConnectWise | 3 | 3 | `myMembers/info` (vouches for the member), then ticket, then contact |
    /// | HaloPSA | 4 | 3 | token, then agent alongside (ticket, then user) |
    /// | Autotask | 5 | 3 | zone, then resource alongside (ticket, then company alongside contact) |
    pub async fn authenticate_embed(
        &self,
        connection: &PsaConnection,
        load: &EmbedLoad,
    ) -> Result<VouchedEmbed, PsaError> {
        let adapter = self.adapter(connection.kind);
        match adapter.check_signature(connection, load) {
            // The signature is checked once: what it vouches for is then read at the same
            // time.
            Some(signed) => {
                let signed = signed?;
                let (technician, _ticket) = tokio::join!(
                    adapter.signed_technician(connection, &signed),
                    self.ticket(connection, &signed.ticket_id)
                );
                Ok(VouchedEmbed {
                    technician: technician?,
                    ticket_id: signed.ticket_id,
                })
            }
            None => adapter.authenticate_embed(connection, load).await,
        }
    }

    /// The ticket and contact, from the cache when read within `cache.tickets.ttl_seconds`.
    pub async fn ticket(
        &self,
        connection: &PsaConnection,
        ticket_id: &str,
    ) -> Result<TicketContact, PsaError> {
        let key = (connection.id, ticket_id.to_owned());
        let adapter = self.adapter(connection.kind).clone();
        self.tickets
            .try_get_with(
                key,
                async move { adapter.ticket(connection, ticket_id).await },
            )
            .await
            .map_err(|err| (*err).clone())
    }
}

/// What an answer cached for a connection was made with: the connection's version, its
/// address and `parts` (the credentials the answer depends on), as a SHA-256 digest so that no
/// secret is held in a cache key. A cache keyed by it never hands a changed connection (a new
/// `updated_at`, or other credentials) an entry made for the old one.
pub(crate) fn connection_fingerprint(connection: &PsaConnection, parts: &[&str]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut digest = Sha256::new();
    let version = connection
        .updated_at
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    for part in [version.as_str(), connection.base_url.as_str()]
        .into_iter()
        .chain(parts.iter().copied())
    {
        // Length-prefixed, so no two lists of parts digest alike.
        digest.update((part.len() as u64).to_be_bytes());
        digest.update(part.as_bytes());
    }
    digest.finalize().into()
}

/// Reads a connection's settings or credentials JSON into `T`, naming what is missing.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    value: &serde_json::Value,
    what: &str,
) -> Result<T, PsaError> {
    serde_json::from_value(value.clone())
        .map_err(|err| PsaError::Misconfigured(format!("{what}: {err}")))
}

/// The e-mail addresses and phone fields of a contact, cleaned: trimmed, empty dropped,
/// duplicates removed, order kept.
pub(crate) fn clean_list(values: impl IntoIterator<Item = Option<String>>) -> Vec<String> {
    let mut seen = Vec::new();
    for value in values.into_iter().flatten() {
        let value = value.trim().to_owned();
        if !value.is_empty() && !seen.iter().any(|s: &String| s.eq_ignore_ascii_case(&value)) {
            seen.push(value);
        }
    }
    seen
}
