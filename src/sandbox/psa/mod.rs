//! The PSA sandbox: one local HTTP server standing in for the three PSAs Vouch lives in
//! (see `shared/reference/psa-contracts.md`): their REST APIs as Vouch calls them, and "host
//! pages" that imitate each PSA's ticket screen and embed Vouch's pod the way the real PSA
//! does. Used by `vouch demo` and the tests, never by Vouch itself.
//!
//! | prefix       | stands for                                                   | module           |
//! |--------------|--------------------------------------------------------------|------------------|
//! | `/cw/`       | a ConnectWise PSA (Manage) site, e.g. `na.myconnectwise.net` | `connectwise.rs` |
//! | `/halo/`     | a HaloPSA instance (resource and authorisation server)       | `halopsa.rs`     |
//! | `/autotask/` | Autotask: zone lookup, the zone's REST API and web UI        | `autotask.rs`    |
//! | `/`          | an index page linking every ticket screen                    | `page.rs`        |
//!
//! The seed (companies, contacts, tickets, credentials) is in `seed.rs`, re-exported here as
//! `pub const`s: ticket `1000 + k` (ConnectWise), `2000 + k` (Halo) and `3000 + k` (Autotask)
//! belong to the k-th contact: Dana, Sam, Noel, Omar, Ada, Lee, Blake (Contoso Ltd), Kim
//! (Fabrikam). Tailspin Toys Inc. and Litware have no contacts; Fabrikam and Litware have a
//! website.
//!
//! Built on the sandboxes' one server skeleton (`server.rs`). Every request under a prefix is
//! recorded ([`PsaSandbox::count`]). Faults ([`PsaSandbox::inject_fault`]) apply to the REST
//! APIs only, never to the host pages.
//!
//! # REST
//!
//! - ConnectWise: `{base}/cw/v4_6_release/apis/3.0/...` with
//!   `Authorization: Basic base64("{companyId}+{publicKey}:{privateKey}")` and a `clientId`
//!   header; `GET /service/tickets/{id}`, `GET /company/contacts/{id}`,
//!   `POST /service/tickets/{id}/notes`, `GET /system/info` (the keys' test: 401 for wrong
//!   keys, a wrong company id in them included), `GET /service/tickets?pageSize=`,
//!   `GET /company/contacts?pageSize=`, `GET /service/tickets/{id}/notes`;
//!   `GET /company/companies` (`conditions=name like "%x%"`, `orderBy=name asc`, `page`,
//!   `pageSize`) and `GET /company/contacts` (`conditions=company/id=N`);
//!   `GET /system/myMembers/info` authenticated by the
//!   cookies `companyName`, `memberHash`, `memberId`, `memberContext=web` (plus `clientId`).
//!   Also `GET {base}/cw/login/companyinfo/{companyId}` (the code base lookup).
//! - HaloPSA: `POST {base}/halo/auth/token` (client credentials, `scope=all`), then Bearer
//!   calls to `{base}/halo/api/Tickets/{id}`, `Tickets?count=`, `Users/{id}`, `Agent/me`,
//!   `Agent/{id}`, `GET Actions?ticket_id=`, `POST Actions`,
//!   `Client?search=&order=name&pageinate=true&page_size=&page_no=` (`{record_count, clients}`)
//!   and `Users?client_id=N` (`{record_count, users}`). A wrong client id or secret gets
//!   Halo's OAuth refusal, 401 `{"error":"invalid_client"}`.
//! - Autotask: `GET {base}/autotask/atservicesrest/v1.0/zoneInformation?user=` (no
//!   authentication), then `{zone url}v1.0/Tickets/{id}`, `Contacts/{id}`, `Resources/{id}`,
//!   `Companies/{id}`, `Tickets/query?search=`, `Version`, `POST Tickets/{id}/Notes`,
//!   `POST Companies/query` and `POST Contacts/query` (`filter` of `eq`, `contains`, `gte`,
//!   `gt`, `exist`; `MaxRecords` up to 500; `pageDetails.nextPageUrl` a GET of
//!   `{Entity}/query/next?paging=..`) with the `ApiIntegrationCode`, `UserName` and `Secret`
//!   headers. A wrong user or secret (or a header missing) answers 401; the right user and
//!   secret with a wrong integration code answer 403 `{"errors":[..]}` (our choice:
//!   Autotask's answer is unconfirmed).
//!
//! # Permissions
//!
//! [`PsaSandbox::withhold_permission`] refuses a [`PsaPermission`] to the API account of one
//! PSA (every connection to this sandbox uses the same account), with 403 in each PSA's shape:
//! ConnectWise `{"code":"Forbidden","message":..}`, Halo `{"message":..}`, Autotask
//! `{"errors":[..]}` (the bodies are our choice; the reference only says 403).
//!
//! # Host pages
//!
//! `GET {base}/{cw|halo|autotask}/ticket/{id}` renders the ticket screen with the pod in an
//! `<iframe id="vouch-pod">` (a clear message instead when [`PsaSandbox::set_pod_urls`] has
//! not been called). The page shows the notes stored at the time it loads.
//!
//! - ConnectWise pod: the pod URL with `[cw_id]`/`[cw_screen]` replaced, or
//!   `id={ticket}&screen=service_ticket` appended, height 300px. The page runs the parent
//!   side of the Hosted API (`ready` -> `MessageFrameID`; `getMemberAuthentication`,
//!   `getScreenObject`, `refreshScreen`), posting JSON strings to the pod's origin only. It
//!   sends the events `onLoad` (after answering `getMemberAuthentication`) and `beforeSave`
//!   (its "Save ticket" button) and lists those the pod acknowledged
//!   (`{event, _id, result: "success"}`) in the log's `data-acknowledged`. Each
//!   page load issues a fresh member hash for `jtech`, valid until
//!   [`PsaSandbox::revoke_connectwise_member_hashes`].
//! - Halo tab: the pod URL plus `ticket_id`, `agent_id`, `ts` and `sig` (below), signed with
//!   the secret pasted into the tab ([`PsaSandbox::set_halo_tab_secret`]; the seeded
//!   [`HALO_TAB_SECRET`] until then).
//! - Autotask Insight: the pod URL plus `ticketId`, `resourceId`, `ts` and `sig`, signed with
//!   the secret pasted into the Insight ([`PsaSandbox::set_autotask_insight_secret`]; the
//!   seeded [`AUTOTASK_INSIGHT_SECRET`] until then), loaded with GET; with `?post=1` on the host page, the same parameters (the pod URL's own included)
//!   are sent as an auto-submitted `application/x-www-form-urlencoded` form POST to the pod
//!   URL without its query, targeting the iframe.
//!
//! # The signature of the Halo tab and the Autotask Insight (our choice)
//!
//! The reference leaves the exact format unconfirmed; this is the scheme the sandbox signs
//! with and Vouch verifies (parameter names in [`signing`]):
//!
//! 1. Take every query parameter of the final URL (for a POST: every form field), including
//!    the ones the configured pod URL already carries (e.g. `connection=<uuid>`), except
//!    `sig`. Names and values are decoded as `application/x-www-form-urlencoded` (`+` is a
//!    space, `%XX` escapes).
//! 2. Sort them by name, then by value, comparing bytes.
//! 3. Write each as `name=value` with the raw (decoded, not re-encoded) strings and join them
//!    with `&`. Example: `agent_id=5&connection=3f..&ticket_id=2001&ts=1764085200`.
//! 4. `sig` = lowercase hex of HMAC-SHA256 over that string, keyed with the UTF-8 bytes of
//!    the secret string (Halo: the tab secret; Autotask: the Insight secret), as given (not
//!    hex- or base64-decoded).
//!
//! `ts` is the Unix time (seconds, UTC) when the host page was rendered; the verifier bounds
//! its age. Parameters the PSA sets replace same-named ones already in the pod URL.
//!
//! # Other choices where the reference is silent or unconfirmed
//!
//! - ConnectWise: `memberContext` in the `getMemberAuthentication` data is an opaque value;
//!   `myMembers/info` requires the cookie `memberContext=web` as the reference says. Paths are
//!   matched case-sensitively. A note is internal when only `internalAnalysisFlag` is set.
//! - Halo: `POST /api/Actions` answers 201 with the created action (an array when more than
//!   one was posted); unknown ids answer 404 `{"message":..}`; a missing or unknown Bearer
//!   token answers 401 with an empty body. A note is internal when `hiddenfromuser` is true.
//!   Entity names are matched case-insensitively (Halo runs on ASP.NET).
//! - Autotask: `GET Tickets/{unknown id}` answers 200 `{"item":null}` (the way Autotask
//!   answers a missing id, as far as we know), not 404; business-rule failures (a note
//!   without title or description) answer 500 `{"errors":[..]}`; the meaning of `noteType`
//!   and `publish` is [`AUTOTASK_INTERNAL_NOTE`].

mod autotask;
mod connectwise;
mod halopsa;
mod page;
mod seed;
pub mod signing;

use std::collections::VecDeque;
use std::fmt::Display;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::http::StatusCode;
use poem::{Request, Response};

use crate::sandbox::server::{self, Incoming, pair};
use crate::sandbox::{
    ALPHANUMERIC, html_escape, html_response, json_response, plain, random_string,
};

pub use autotask::{AUTOTASK_INTERNAL_NOTE, AutotaskNoteKind};
pub use halopsa::HALO_PRIVATE_NOTE_OUTCOME;
pub use seed::*;

/// The largest request body the sandbox reads (all real bodies are tiny).
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Member hashes kept (oldest forgotten first): every ConnectWise host page load issues one.
const MAX_MEMBER_HASHES: usize = 10_000;

/// Which PSA a request, note or fault belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Psa {
    /// ConnectWise PSA (Manage), under `/cw/`.
    ConnectWise,
    /// HaloPSA, under `/halo/`.
    HaloPsa,
    /// Autotask PSA, under `/autotask/`.
    Autotask,
}

impl Psa {
    /// The path prefix, without slashes (`cw`, `halo`, `autotask`).
    pub fn prefix(self) -> &'static str {
        match self {
            Psa::ConnectWise => "cw",
            Psa::HaloPsa => "halo",
            Psa::Autotask => "autotask",
        }
    }

    fn from_prefix(prefix: &str) -> Option<Psa> {
        [Psa::ConnectWise, Psa::HaloPsa, Psa::Autotask]
            .into_iter()
            .find(|psa| psa.prefix() == prefix)
    }
}

/// Where Vouch's pods are served; the host pages embed these. Each is a full URL that may
/// already carry query parameters. An empty string means "not set" for that PSA.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodUrls {
    pub connectwise: String,
    pub halopsa: String,
    pub autotask: String,
}

/// How Vouch reaches the ConnectWise sandbox, and what the MSP would configure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectWiseInfo {
    /// `{base}/cw`: stands for `https://na.myconnectwise.net`; REST is under
    /// `{site_url}/v4_6_release/apis/3.0`.
    pub site_url: String,
    /// The MSP's company id (`northwind`).
    pub company_id: String,
    pub public_key: String,
    pub private_key: String,
    /// The integration's `clientId` (a GUID).
    pub client_id: String,
    /// The technician's member identifier (`jtech`).
    pub member_id: String,
}

impl ConnectWiseInfo {
    /// The imitation service ticket screen of `ticket_id`.
    pub fn ticket_screen_url(&self, ticket_id: impl Display) -> String {
        format!("{}/ticket/{ticket_id}", self.site_url)
    }
}

/// How Vouch reaches the Halo sandbox, and what the MSP would configure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaloInfo {
    /// `{base}/halo`: the resource server; the API is `{resource_url}/api/..`.
    pub resource_url: String,
    /// `{base}/halo/auth`: the authorisation server; tokens from `{auth_url}/token`.
    pub auth_url: String,
    pub client_id: String,
    pub client_secret: String,
    /// The custom tab's iframe secret the tab URL is signed with.
    pub tab_secret: String,
    /// The technician's agent id (5).
    pub agent_id: u64,
}

impl HaloInfo {
    /// The imitation ticket screen of `ticket_id`, with the Vouch tab open.
    pub fn ticket_screen_url(&self, ticket_id: impl Display) -> String {
        format!("{}/ticket/{ticket_id}", self.resource_url)
    }
}

/// How Vouch reaches the Autotask sandbox, and what the MSP would configure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutotaskInfo {
    /// `{base}/autotask/atservicesrest/`: stands for
    /// `https://webservices.autotask.net/atservicesrest/`; the lookup is
    /// `{zone_lookup_url}v1.0/zoneInformation?user=..`.
    pub zone_lookup_url: String,
    pub api_user: String,
    pub api_secret: String,
    /// The API tracking identifier (`ApiIntegrationCode`).
    pub integration_code: String,
    /// The shared secret the Insight load is signed with.
    pub insight_secret: String,
    /// The technician's resource id.
    pub resource_id: u64,
    /// `{base}/autotask/`: the zone's web UI (`webUrl` of the zone lookup).
    pub web_url: String,
}

impl AutotaskInfo {
    /// The imitation ticket screen of `ticket_id`, with the Vouch Insight (add `?post=1` for
    /// the form POST load).
    pub fn ticket_screen_url(&self, ticket_id: impl Display) -> String {
        format!("{}ticket/{ticket_id}", self.web_url)
    }
}

/// A note written to a ticket through the REST API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxNote {
    /// As posted: ConnectWise `text`, Halo `note_html` (or `note`), Autotask `description`.
    pub text: String,
    /// ConnectWise: only `internalAnalysisFlag` set; Halo: `hiddenfromuser`; Autotask:
    /// `publish` is [`AUTOTASK_INTERNAL_NOTE`]'s.
    pub internal: bool,
    pub created_at: DateTime<Utc>,
}

/// A failure to simulate on the next matching REST requests (the sandboxes' one fault type,
/// [`crate::sandbox::Fault`]).
pub use crate::sandbox::Fault as PsaFault;

/// One request as the sandbox received it; `service` is the PSA it was addressed to.
pub type PsaRequest = crate::sandbox::RecordedRequest<Psa>;

/// A running PSA sandbox. Cheap to clone: every clone drives the same server.
///
/// The server task lives as long as the tokio runtime that called [`PsaSandbox::start`].
#[derive(Clone)]
pub struct PsaSandbox {
    shared: Arc<Shared>,
}

/// What the server task and the handles share: the PSAs' data, the request log and the
/// faults.
type Shared = server::Shared<State, Psa>;

#[derive(Default)]
struct State {
    pod_urls: PodUrls,
    notes: Vec<StoredNote>,
    next_note_id: u64,
    /// ConnectWise member hashes, oldest first.
    member_hashes: VecDeque<MemberHash>,
    /// Halo access tokens and when they expire.
    halo_tokens: Vec<(String, DateTime<Utc>)>,
    /// The secret pasted into the Halo tab (`new_iframe_secret`); the seeded one when unset.
    halo_tab_secret: Option<String>,
    /// The secret pasted into the Autotask Insight; the seeded one when unset.
    autotask_insight_secret: Option<String>,
    /// Permissions withheld from the PSAs' API accounts ([`PsaSandbox::withhold_permission`]).
    withheld: Vec<(Psa, PsaPermission)>,
}

/// What the API account Vouch uses in a sandbox PSA may be refused (the ConnectWise API
/// member's security role, the Halo API application's permissions, the Autotask API user's
/// security level). A request needing a withheld permission answers 403 in that PSA's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PsaPermission {
    /// Reading tickets (ConnectWise `service/tickets`, Halo `Tickets`, Autotask `Tickets`,
    /// their notes excepted).
    ReadTickets,
    /// Reading contacts (ConnectWise `company/contacts`, Halo `Users`, Autotask `Contacts`).
    ReadContacts,
    /// Reading and adding ticket notes (ConnectWise `service/tickets/{id}/notes`, Halo
    /// `Actions`, Autotask `Tickets/{id}/Notes`).
    TicketNotes,
}

struct MemberHash {
    hash: String,
    member_id: String,
    company_id: String,
}

/// A note with what the host pages show besides [`SandboxNote`].
#[derive(Debug, Clone)]
struct StoredNote {
    psa: Psa,
    ticket_id: u64,
    id: u64,
    /// Autotask notes have a title.
    title: Option<String>,
    /// What the PSA calls this kind of note ("Internal Analysis", "Private Note", ...).
    kind: String,
    note: SandboxNote,
}

impl State {
    /// What the Halo tab signs its URL with.
    fn halo_tab_secret(&self) -> String {
        self.halo_tab_secret
            .clone()
            .unwrap_or_else(|| HALO_TAB_SECRET.to_owned())
    }

    /// What the Autotask Insight signs its load with.
    fn autotask_insight_secret(&self) -> String {
        self.autotask_insight_secret
            .clone()
            .unwrap_or_else(|| AUTOTASK_INSIGHT_SECRET.to_owned())
    }

    /// Whether `permission` is withheld from `psa`'s API account.
    fn denies(&self, psa: Psa, permission: PsaPermission) -> bool {
        self.withheld.contains(&(psa, permission))
    }

    fn add_note(
        &mut self,
        psa: Psa,
        ticket_id: u64,
        title: Option<String>,
        kind: &str,
        text: String,
        internal: bool,
    ) -> StoredNote {
        self.next_note_id += 1;
        let note = StoredNote {
            psa,
            ticket_id,
            id: self.next_note_id,
            title,
            kind: kind.to_owned(),
            note: SandboxNote {
                text,
                internal,
                created_at: Utc::now(),
            },
        };
        self.notes.push(note.clone());
        note
    }

    fn ticket_notes(&self, psa: Psa, ticket_id: u64) -> Vec<StoredNote> {
        self.notes
            .iter()
            .filter(|n| n.psa == psa && n.ticket_id == ticket_id)
            .cloned()
            .collect()
    }

    fn issue_member_hash(&mut self, member_id: &str) -> String {
        if self.member_hashes.len() >= MAX_MEMBER_HASHES {
            self.member_hashes.pop_front();
        }
        let hash = random_string(40, ALPHANUMERIC);
        self.member_hashes.push_back(MemberHash {
            hash: hash.clone(),
            member_id: member_id.to_owned(),
            company_id: CW_COMPANY_ID.to_owned(),
        });
        hash
    }
}

impl PsaSandbox {
    /// Binds `127.0.0.1:0` and serves the three PSAs on a tokio task.
    pub async fn start() -> std::io::Result<PsaSandbox> {
        let shared = server::start("PSA", State::default(), handle).await?;
        Ok(PsaSandbox { shared })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.shared.base_url().to_owned()
    }

    /// Sets where Vouch's pods live; host pages loaded afterwards embed them.
    pub fn set_pod_urls(&self, urls: PodUrls) {
        self.shared.state().pod_urls = urls;
    }

    /// The pod URLs set so far.
    pub fn pod_urls(&self) -> PodUrls {
        self.shared.state().pod_urls.clone()
    }

    /// The ConnectWise site, keys and technician.
    pub fn connectwise(&self) -> ConnectWiseInfo {
        ConnectWiseInfo {
            site_url: format!("{}/cw", self.shared.base_url()),
            company_id: CW_COMPANY_ID.to_owned(),
            public_key: CW_PUBLIC_KEY.to_owned(),
            private_key: CW_PRIVATE_KEY.to_owned(),
            client_id: CW_CLIENT_ID.to_owned(),
            member_id: CW_MEMBER_ID.to_owned(),
        }
    }

    /// The Halo instance, API application and tab secret.
    pub fn halopsa(&self) -> HaloInfo {
        HaloInfo {
            resource_url: format!("{}/halo", self.shared.base_url()),
            auth_url: format!("{}/halo/auth", self.shared.base_url()),
            client_id: HALO_API_CLIENT_ID.to_owned(),
            client_secret: HALO_API_CLIENT_SECRET.to_owned(),
            tab_secret: self.shared.state().halo_tab_secret(),
            agent_id: HALO_AGENT_ID,
        }
    }

    /// The Autotask zone lookup, API user and Insight secret.
    pub fn autotask(&self) -> AutotaskInfo {
        AutotaskInfo {
            zone_lookup_url: format!("{}/autotask/atservicesrest/", self.shared.base_url()),
            api_user: AUTOTASK_API_USER.to_owned(),
            api_secret: AUTOTASK_API_SECRET.to_owned(),
            integration_code: AUTOTASK_INTEGRATION_CODE.to_owned(),
            insight_secret: self.shared.state().autotask_insight_secret(),
            resource_id: AUTOTASK_RESOURCE_ID,
            web_url: format!("{}/autotask/", self.shared.base_url()),
        }
    }

    /// Pastes `secret` into the Halo custom tab's configuration (its `new_iframe_secret`):
    /// the ticket screens loaded afterwards sign the tab URL with it. Until called, the tab
    /// signs with [`HALO_TAB_SECRET`].
    pub fn set_halo_tab_secret(&self, secret: &str) {
        self.shared.state().halo_tab_secret = Some(secret.to_owned());
    }

    /// Pastes `secret` into the Autotask Insight's configuration: the ticket screens loaded
    /// afterwards sign the Insight load with it. Until called, the Insight signs with
    /// [`AUTOTASK_INSIGHT_SECRET`].
    pub fn set_autotask_insight_secret(&self, secret: &str) {
        self.shared.state().autotask_insight_secret = Some(secret.to_owned());
    }

    /// The notes written to one ticket through the REST API, oldest first.
    pub fn notes(&self, psa: Psa, ticket_id: impl Display) -> Vec<SandboxNote> {
        let ticket_id = ticket_id.to_string();
        self.shared
            .state()
            .notes
            .iter()
            .filter(|n| n.psa == psa && n.ticket_id.to_string() == ticket_id)
            .map(|n| n.note.clone())
            .collect()
    }

    /// Every request received under the PSA prefixes (host pages included), oldest first.
    pub fn requests(&self) -> Vec<PsaRequest> {
        self.shared.requests()
    }

    /// How many recorded requests went to `psa` with `method` (case-insensitive) and a
    /// decoded path containing `path_contains`.
    pub fn count(&self, psa: Psa, method: &str, path_contains: &str) -> usize {
        self.shared.count(psa, method, path_contains)
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.clear_requests();
    }

    /// Makes the next `times` REST requests to `psa` whose decoded path (with its prefix,
    /// e.g. `/halo/api/Tickets/2001`) contains `path_contains` fail with `fault`. Host pages
    /// are never faulted. Faulted requests are still recorded.
    pub fn inject_fault(&self, psa: Psa, path_contains: &str, fault: PsaFault, times: usize) {
        self.shared.inject_fault(psa, path_contains, fault, times);
    }

    /// A member hash for `member_id` at the sandbox's company, as Manage hands to a pod;
    /// `myMembers/info` accepts it until [`PsaSandbox::revoke_connectwise_member_hashes`].
    pub fn issue_connectwise_member_hash(&self, member_id: &str) -> String {
        self.shared.state().issue_member_hash(member_id)
    }

    /// Invalidates every member hash issued so far (as signing out of Manage would).
    pub fn revoke_connectwise_member_hashes(&self) {
        self.shared.state().member_hashes.clear();
    }

    /// Withholds `permission` from `psa`'s API account: the requests that need it answer 403
    /// (as the PSA does) until [`PsaSandbox::restore_permissions`].
    pub fn withhold_permission(&self, psa: Psa, permission: PsaPermission) {
        let mut state = self.shared.state();
        if !state.denies(psa, permission) {
            state.withheld.push((psa, permission));
        }
    }

    /// Gives every PSA's API account all its permissions back.
    pub fn restore_permissions(&self) {
        self.shared.state().withheld.clear();
    }

    /// Expires every Halo access token issued so far (the next Bearer call answers 401).
    pub fn expire_halo_tokens(&self) {
        self.shared.state().halo_tokens.clear();
    }
}

/// Every request: the index page at `/`, else routed by its PSA prefix. Every request under a
/// prefix is recorded; the REST APIs may be faulted, the host pages never.
async fn handle(shared: Arc<Shared>, mut req: Request) -> Response {
    let mut incoming = Incoming::head(&req);
    let Some(first) = incoming.segments.first() else {
        return page::index(&shared);
    };
    let Some(psa) = Psa::from_prefix(first) else {
        return plain(StatusCode::NOT_FOUND, "Not found");
    };
    let host_page = incoming.segments.get(1).is_some_and(|s| s == "ticket");
    match shared.record(&incoming, psa, !host_page) {
        Some(PsaFault::Delayed(wait)) => tokio::time::sleep(wait).await,
        Some(fault) => return fault.answer().await,
        None => {}
    }
    if incoming.read_body(&mut req, MAX_BODY_BYTES).await.is_err() {
        return plain(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large");
    }
    incoming.strip_prefix();
    match psa {
        Psa::ConnectWise => connectwise::handle(&shared, incoming),
        Psa::HaloPsa => halopsa::handle(&shared, incoming),
        Psa::Autotask => autotask::handle(&shared, incoming),
    }
}

/// The time format the PSAs use in JSON (`2026-11-25T15:04:05Z`).
fn iso(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}
