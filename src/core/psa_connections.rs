//! An MSP's PSA connections: create, read, change and delete them, and say what to paste into
//! the PSA so it embeds the pod.
//!
//! Each PSA keeps its non-secret settings in the connection's `settings` JSON and its
//! credentials in the sealed `credentials` JSON, in exactly the shapes its adapter reads
//! (`src/psa/connectwise.rs`, `halopsa.rs`, `autotask.rs`). This service is the one place that
//! writes those shapes. Besides what the adapters read, `settings` holds when each secret was
//! last changed (`secrets_changed_at`) and whether `allowed_origins` was given by the admin
//! (`allowed_origins_custom`) or derived from the PSA's URL.
//!
//! Secrets are write-only: a [`PsaConnectionView`] says whether each is set and when it last
//! changed, never its value. The two signing secrets (the HaloPSA tab secret, the Autotask
//! Insight secret) are generated here (256 bits) and handed out only by [`create`] and by
//! [`setup`], since the admin must paste them into the PSA.
//!
//! A signing secret can be rotated ([`rotate_secret`]): a new one is generated and handed out
//! once, and the one it replaces stays in the sealed credentials (`previous_tab_secret`,
//! `previous_insight_secret`, with its `expires_at`) for a grace period, during which the
//! adapters accept loads signed with either. Rotating again during a grace period replaces
//! the previous secret with the current one: only the last two secrets are ever kept.
//!
//! Every change is audited with the connection before and after (never a secret) in the same
//! transaction as the change. The pod service caches connections; a change or a deletion
//! drops this instance's copy at once ([`PodService::forget_connection`]); other instances
//! see it within `cache.connections.ttl_seconds`.
//!
//! [`create`]: PsaConnectionService::create
//! [`setup`]: PsaConnectionService::setup
//! [`rotate_secret`]: PsaConnectionService::rotate_secret

use std::collections::BTreeMap;
use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use minijinja::{Environment, UndefinedBehavior, context};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;
use uuid::Uuid;

use crate::core::error::CoreError;
use crate::core::pod::PodService;
use crate::domain::{AuditOutcome, CheckOutcome, ConnectionCheck, ErrorCode, PsaKind};
use crate::psa::PsaAdapters;
use crate::store::Store;
use crate::store::audit::{AuditActor, NewAuditEvent};
use crate::store::psa_connections::{NewPsaConnection, PsaConnection, PsaConnectionUpdate};

/// The longest connection name.
pub const MAX_NAME_CHARS: usize = 200;
/// The most origins one connection may allow to frame its pod.
pub const MAX_ALLOWED_ORIGINS: usize = 20;
/// How long a rotated signing secret keeps working when the admin names no grace period.
pub const DEFAULT_ROTATION_GRACE_SECONDS: i64 = 24 * 60 * 60;
/// The longest grace period a rotation may give the secret it replaces.
pub const MAX_ROTATION_GRACE_SECONDS: i64 = 7 * 24 * 60 * 60;
/// The recommended pod heights, in CSS pixels (the PSA sandbox uses the same).
pub const CONNECTWISE_POD_HEIGHT_PX: u32 = 300;
pub const HALOPSA_TAB_HEIGHT_PX: u32 = 520;
pub const AUTOTASK_INSIGHT_HEIGHT_PX: u32 = 360;

/// A change to one optional value: leave it, set it, or clear it (back to its default).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Patch<T> {
    #[default]
    Keep,
    Set(T),
    Clear,
}

/// A new ConnectWise PSA connection.
#[derive(Debug, Clone)]
pub struct ConnectWiseInput {
    pub name: Option<String>,
    /// The site's API address; `psa.connectwise.default_site_url` when `None`.
    pub site_url: Option<String>,
    pub company_id: String,
    pub public_key: String,
    pub private_key: SecretString,
    /// Overrides `psa.connectwise.client_id`.
    pub client_id: Option<String>,
    pub allowed_origins: Option<Vec<String>>,
}

/// A new HaloPSA connection.
#[derive(Debug, Clone)]
pub struct HaloPsaInput {
    pub name: Option<String>,
    pub resource_url: String,
    pub auth_url: String,
    /// Hosted Halo's tenant name.
    pub tenant: Option<String>,
    pub client_id: String,
    pub client_secret: SecretString,
    pub allowed_origins: Option<Vec<String>>,
}

/// A new Autotask connection.
#[derive(Debug, Clone)]
pub struct AutotaskInput {
    pub name: Option<String>,
    pub api_user: String,
    pub api_secret: SecretString,
    pub integration_code: String,
    /// Overrides `psa.autotask.zone_lookup_url`.
    pub zone_lookup_url: Option<String>,
    pub allowed_origins: Option<Vec<String>>,
}

/// A new connection, of one PSA.
#[derive(Debug, Clone)]
pub enum NewConnectionInput {
    ConnectWise(ConnectWiseInput),
    HaloPsa(HaloPsaInput),
    Autotask(AutotaskInput),
}

/// A change to a ConnectWise connection; `None` leaves a value as it is.
#[derive(Debug, Clone, Default)]
pub struct ConnectWisePatch {
    pub name: Option<String>,
    pub site_url: Option<String>,
    pub company_id: Option<String>,
    pub public_key: Option<String>,
    pub private_key: Option<SecretString>,
    pub client_id: Patch<String>,
    pub allowed_origins: Patch<Vec<String>>,
}

/// A change to a HaloPSA connection; `None` leaves a value as it is.
#[derive(Debug, Clone, Default)]
pub struct HaloPsaPatch {
    pub name: Option<String>,
    pub resource_url: Option<String>,
    pub auth_url: Option<String>,
    pub tenant: Patch<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub allowed_origins: Patch<Vec<String>>,
}

/// A change to an Autotask connection; `None` leaves a value as it is.
#[derive(Debug, Clone, Default)]
pub struct AutotaskPatch {
    pub name: Option<String>,
    pub api_user: Option<String>,
    pub api_secret: Option<SecretString>,
    pub integration_code: Option<String>,
    pub zone_lookup_url: Patch<String>,
    pub allowed_origins: Patch<Vec<String>>,
}

/// A change to a connection; its PSA must be the connection's.
#[derive(Debug, Clone)]
pub enum ConnectionPatch {
    ConnectWise(ConnectWisePatch),
    HaloPsa(HaloPsaPatch),
    Autotask(AutotaskPatch),
}

impl ConnectionPatch {
    fn kind(&self) -> PsaKind {
        match self {
            ConnectionPatch::ConnectWise(_) => PsaKind::ConnectWise,
            ConnectionPatch::HaloPsa(_) => PsaKind::HaloPsa,
            ConnectionPatch::Autotask(_) => PsaKind::Autotask,
        }
    }
}

/// Whether a secret is set, and since when; never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretStatus {
    pub set: bool,
    /// When it was last set through Vouch's API (`None` for one set before that was kept).
    pub changed_at: Option<DateTime<Utc>>,
    /// The secret a rotation replaced, while its grace period runs (signing secrets only).
    pub previous: Option<PreviousSecretStatus>,
}

/// A signing secret replaced by a rotation and still accepted: never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PreviousSecretStatus {
    /// When it had been set.
    pub changed_at: Option<DateTime<Utc>>,
    /// When loads signed with it stop being accepted.
    pub expires_at: DateTime<Utc>,
}

pub use crate::domain::ConnectionStatus;

/// The last test of a connection, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastTest {
    pub tested_at: DateTime<Utc>,
    /// Whether no check failed.
    pub passed: bool,
    /// The first failed check (its name), if one failed.
    pub failed_check: Option<String>,
    /// Its code.
    pub code: Option<ErrorCode>,
    pub checks: Vec<ConnectionCheck>,
}

impl LastTest {
    fn of(tested_at: DateTime<Utc>, checks: Vec<ConnectionCheck>) -> LastTest {
        let failed = checks.iter().find(|c| c.outcome == CheckOutcome::Failed);
        LastTest {
            tested_at,
            passed: failed.is_none(),
            failed_check: failed.map(|c| c.name.clone()),
            code: failed.and_then(|c| c.code),
            checks,
        }
    }

    fn status(&self) -> ConnectionStatus {
        if self.passed {
            ConnectionStatus::Passed
        } else {
            ConnectionStatus::Failed
        }
    }
}

/// What a test of a connection found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionTestResult {
    pub connection_id: Uuid,
    pub kind: PsaKind,
    pub test: LastTest,
    /// `false` when the connection changed while it was being tested: the result is
    /// answered, not kept as its status.
    pub recorded: bool,
}

/// What each PSA's connection shows (no secret values).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ConnectionDetails {
    #[serde(rename = "connectwise")]
    ConnectWise {
        site_url: String,
        company_id: String,
        public_key: String,
        private_key: SecretStatus,
        /// The per-connection override, if any.
        client_id: Option<String>,
        /// What Vouch sends: the override, else `psa.connectwise.client_id`.
        client_id_in_effect: Option<String>,
    },
    #[serde(rename = "halopsa")]
    HaloPsa {
        resource_url: String,
        auth_url: String,
        tenant: Option<String>,
        client_id: String,
        client_secret: SecretStatus,
        tab_secret: SecretStatus,
    },
    #[serde(rename = "autotask")]
    Autotask {
        api_user: String,
        integration_code: String,
        api_secret: SecretStatus,
        insight_secret: SecretStatus,
        /// The per-connection override, if any.
        zone_lookup_url: Option<String>,
        /// What Vouch asks: the override, else `psa.autotask.zone_lookup_url`.
        zone_lookup_url_in_effect: String,
    },
}

/// A connection as the admin sees it: never a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PsaConnectionView {
    pub id: Uuid,
    pub kind: PsaKind,
    pub name: String,
    /// What the last test said (`untested` when there was none since the credentials or
    /// addresses last changed).
    pub status: ConnectionStatus,
    /// That test.
    pub last_test: Option<LastTest>,
    /// Who may frame the pod.
    pub allowed_origins: Vec<String>,
    /// `true` when the admin set `allowed_origins`; `false` when derived from the PSA's URL.
    pub allowed_origins_custom: bool,
    pub details: ConnectionDetails,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A secret Vouch generated, handed out once.
#[derive(Debug, Clone)]
pub struct GeneratedSecret {
    /// The field it belongs to (`tab_secret`, `insight_secret`).
    pub field: &'static str,
    pub value: SecretString,
}

/// A connection just created, with the secret Vouch generated for it (if its PSA has one).
#[derive(Debug, Clone)]
pub struct CreatedConnection {
    pub view: PsaConnectionView,
    pub generated: Option<GeneratedSecret>,
}

/// A signing secret just rotated: the connection, with the new secret handed out once.
#[derive(Debug, Clone)]
pub struct RotatedSecret {
    pub view: PsaConnectionView,
    pub generated: GeneratedSecret,
    /// Until when the replaced secret is still accepted (`now` for a grace of 0).
    pub previous_expires_at: DateTime<Utc>,
}

/// What the admin pastes into the PSA.
#[derive(Debug, Clone)]
pub struct SetupView {
    pub connection_id: Uuid,
    pub kind: PsaKind,
    /// The address the PSA loads the pod from (no secret in it).
    pub pod_url: String,
    /// Vouch's own origin (ConnectWise's Manage Hosted API asks for it).
    pub vouch_origin: String,
    /// The signing secret to paste, where the PSA has one.
    pub secret: Option<SetupSecret>,
    pub height_px: u32,
    /// The PSA's step-by-step instructions.
    pub steps: Vec<String>,
}

/// The signing secret the admin pastes into the PSA.
#[derive(Debug, Clone)]
pub struct SetupSecret {
    /// The field it is (`tab_secret`, `insight_secret`).
    pub field: &'static str,
    /// What the PSA calls it.
    pub label: &'static str,
    pub value: SecretString,
}

/// What the service needs.
pub struct PsaConnectionDeps {
    pub store: Store,
    /// The PSA adapters, for the connection test.
    pub psa: PsaAdapters,
    /// Its connection cache is dropped for every changed connection.
    pub pods: PodService,
    /// `http.public_url`: where the PSAs load the pod from.
    pub public_url: Url,
    /// `psa.connectwise.client_id`.
    pub connectwise_client_id: Option<String>,
    /// `psa.connectwise.default_site_url`.
    pub connectwise_default_site_url: Url,
    /// `psa.autotask.zone_lookup_url`.
    pub autotask_zone_lookup_url: Url,
}

#[derive(Clone)]
pub struct PsaConnectionService {
    store: Store,
    psa: PsaAdapters,
    pods: PodService,
    public_url: Url,
    connectwise_client_id: Option<String>,
    connectwise_default_site_url: Url,
    autotask_zone_lookup_url: Url,
}

// ---------------------------------------------------------------------------------------------
// The stored shapes (as the adapters read them).
// ---------------------------------------------------------------------------------------------

/// What every PSA's `settings` holds besides its own fields.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Common {
    #[serde(default)]
    allowed_origins: Vec<String>,
    #[serde(default)]
    allowed_origins_custom: bool,
    #[serde(default)]
    secrets_changed_at: BTreeMap<String, DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CwSettings {
    company_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    codebase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(flatten)]
    common: Common,
}

#[derive(Serialize, Deserialize)]
struct CwCredentials {
    public_key: String,
    private_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct HaloSettings {
    auth_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tenant: Option<String>,
    #[serde(flatten)]
    common: Common,
}

/// A signing secret a rotation replaced, kept (sealed, with the credentials) until
/// `expires_at`; the adapters read `value` and `expires_at` (`psa::signing::PreviousSecret`).
#[derive(Clone, Serialize, Deserialize)]
struct PreviousSecret {
    value: String,
    expires_at: DateTime<Utc>,
    /// When it had been set (for the admin's view).
    #[serde(default)]
    changed_at: Option<DateTime<Utc>>,
}

impl PreviousSecret {
    /// Its status while its grace period runs at `now`; `None` once it is over.
    fn status(this: &Option<PreviousSecret>, now: DateTime<Utc>) -> Option<PreviousSecretStatus> {
        this.as_ref()
            .filter(|p| p.expires_at > now)
            .map(|p| PreviousSecretStatus {
                changed_at: p.changed_at,
                expires_at: p.expires_at,
            })
    }
}

#[derive(Serialize, Deserialize)]
struct HaloCredentials {
    client_id: String,
    client_secret: String,
    tab_secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous_tab_secret: Option<PreviousSecret>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct AutotaskSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    zone_lookup_url: Option<String>,
    #[serde(flatten)]
    common: Common,
}

#[derive(Serialize, Deserialize)]
struct AutotaskCredentials {
    api_user: String,
    api_secret: String,
    integration_code: String,
    insight_secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous_insight_secret: Option<PreviousSecret>,
}

/// A connection's whole state, opened.
enum Shape {
    ConnectWise(CwSettings, CwCredentials),
    HaloPsa(HaloSettings, HaloCredentials),
    Autotask(AutotaskSettings, AutotaskCredentials),
}

struct Draft {
    name: String,
    base_url: String,
    shape: Shape,
}

impl Shape {
    fn common(&self) -> &Common {
        match self {
            Shape::ConnectWise(s, _) => &s.common,
            Shape::HaloPsa(s, _) => &s.common,
            Shape::Autotask(s, _) => &s.common,
        }
    }

    fn common_mut(&mut self) -> &mut Common {
        match self {
            Shape::ConnectWise(s, _) => &mut s.common,
            Shape::HaloPsa(s, _) => &mut s.common,
            Shape::Autotask(s, _) => &mut s.common,
        }
    }

    fn kind(&self) -> PsaKind {
        match self {
            Shape::ConnectWise(..) => PsaKind::ConnectWise,
            Shape::HaloPsa(..) => PsaKind::HaloPsa,
            Shape::Autotask(..) => PsaKind::Autotask,
        }
    }

    fn settings_json(&self) -> serde_json::Value {
        match self {
            Shape::ConnectWise(s, _) => serde_json::to_value(s),
            Shape::HaloPsa(s, _) => serde_json::to_value(s),
            Shape::Autotask(s, _) => serde_json::to_value(s),
        }
        .expect("settings serialise")
    }

    fn credentials_json(&self) -> SecretString {
        let text = match self {
            Shape::ConnectWise(_, c) => serde_json::to_string(c),
            Shape::HaloPsa(_, c) => serde_json::to_string(c),
            Shape::Autotask(_, c) => serde_json::to_string(c),
        }
        .expect("credentials serialise");
        SecretString::from(text)
    }

    fn generated_secret(&self) -> Option<GeneratedSecret> {
        match self {
            Shape::ConnectWise(..) => None,
            Shape::HaloPsa(_, c) => Some(GeneratedSecret {
                field: "tab_secret",
                value: SecretString::from(c.tab_secret.clone()),
            }),
            Shape::Autotask(_, c) => Some(GeneratedSecret {
                field: "insight_secret",
                value: SecretString::from(c.insight_secret.clone()),
            }),
        }
    }
}

fn invalid(field: &'static str, problem: impl Into<String>) -> CoreError {
    CoreError::InvalidInput {
        field,
        problem: problem.into(),
    }
}

/// 256 random bits, base64url without padding (43 characters).
fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A required text: trimmed, not empty, at most `max` characters.
fn text(field: &'static str, value: &str, max: usize) -> Result<String, CoreError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if value.chars().nth(max).is_some() {
        return Err(invalid(
            field,
            format!("must be at most {max} characters long"),
        ));
    }
    Ok(value.to_owned())
}

/// A required secret: as `text`, the value never quoted.
fn secret(field: &'static str, value: &SecretString, max: usize) -> Result<String, CoreError> {
    text(field, value.expose_secret(), max)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// A PSA address: `https://` (plain `http://` only on this machine, for tests and proxies),
/// with a host, no user name or password, no query or fragment. Kept without its trailing
/// slash unless `keep_slash`.
fn psa_url(field: &'static str, value: &str, keep_slash: bool) -> Result<String, CoreError> {
    let value = text(field, value, 2048)?;
    let url = Url::parse(&value).map_err(|_| {
        invalid(
            field,
            "must be an absolute URL such as https://psa.example.com/",
        )
    })?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(invalid(
                field,
                "must start with https:// (plain http is accepted only for localhost)",
            ));
        }
        _ => return Err(invalid(field, "must be an https:// URL")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid(field, "must name a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            field,
            "must not carry a user name or password (credentials have their own fields)",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            field,
            "must not have a query (?...) or fragment (#...)",
        ));
    }
    let text = url.to_string();
    Ok(if keep_slash {
        if text.ends_with('/') {
            text
        } else {
            format!("{text}/")
        }
    } else {
        text.trim_end_matches('/').to_owned()
    })
}

/// `scheme://host[:port]` of an address already checked.
fn origin_of(url: &str) -> Option<String> {
    let url = Url::parse(url).ok()?;
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    })
}

/// The origins that may frame the pod, checked and written as origins (`https://host[:port]`).
fn allowed_origins(values: &[String]) -> Result<Vec<String>, CoreError> {
    const FIELD: &str = "allowed_origins";
    if values.is_empty() {
        return Err(invalid(
            FIELD,
            "must name at least one origin (leave it out to use the PSA's own)",
        ));
    }
    if values.len() > MAX_ALLOWED_ORIGINS {
        return Err(invalid(
            FIELD,
            format!("may name at most {MAX_ALLOWED_ORIGINS} origins"),
        ));
    }
    let mut origins: Vec<String> = Vec::new();
    for value in values {
        let value = value.trim();
        let problem =
            "must list origins such as https://psa.example.com (scheme, host and port only)";
        let url = Url::parse(value).map_err(|_| invalid(FIELD, problem))?;
        let plain = matches!(url.scheme(), "https" | "http")
            && url.host_str().is_some_and(|h| !h.is_empty())
            && url.username().is_empty()
            && url.password().is_none()
            && url.path() == "/"
            && url.query().is_none()
            && url.fragment().is_none();
        if !plain || value.chars().count() > 2048 {
            return Err(invalid(FIELD, problem));
        }
        let origin = origin_of(value).ok_or_else(|| invalid(FIELD, problem))?;
        if !origins.contains(&origin) {
            origins.push(origin);
        }
    }
    Ok(origins)
}

/// The origins that frame the pod when the admin names none, from the PSA's address:
/// - ConnectWise: the site's origin; for a cloud API host (`api-na.myconnectwise.net`) also
///   the host technicians sign in to (`na.myconnectwise.net`), first.
/// - HaloPSA: the resource server's origin (Halo serves its agent pages there).
/// - Autotask: Autotask's pages come from a zone host (`ww3.autotask.net`...) that the zone
///   lookup names, so for Autotask's own lookup `https://*.autotask.net`; for another lookup
///   address (a proxy, the sandbox) that address's origin.
fn default_origins(kind: PsaKind, url: &str) -> Vec<String> {
    let Some(origin) = origin_of(url) else {
        return Vec::new();
    };
    let host = Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    match kind {
        PsaKind::ConnectWise => match host.strip_prefix("api-") {
            Some(site) if host.ends_with(".myconnectwise.net") => {
                vec![origin.replacen(&host, site, 1), origin]
            }
            _ => vec![origin],
        },
        PsaKind::HaloPsa => vec![origin],
        PsaKind::Autotask => {
            if host == "autotask.net" || host.ends_with(".autotask.net") {
                vec!["https://*.autotask.net".to_owned()]
            } else {
                vec![origin]
            }
        }
    }
}

/// The address `allowed_origins` defaults from: the site (ConnectWise), the resource server
/// (HaloPSA), the zone lookup in effect (Autotask).
fn origin_source(draft: &Draft) -> String {
    draft.base_url.clone()
}

fn name_or_default(name: Option<&str>, kind: PsaKind) -> Result<String, CoreError> {
    match name {
        Some(name) => text("name", name, MAX_NAME_CHARS),
        None => Ok(kind.display_name().to_owned()),
    }
}

fn optional_text(
    field: &'static str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>, CoreError> {
    value.map(|v| text(field, v, max)).transpose()
}

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    for (name, source) in [
        (
            "connectwise",
            include_str!("templates/setup/connectwise.txt"),
        ),
        ("halopsa", include_str!("templates/setup/halopsa.txt")),
        ("autotask", include_str!("templates/setup/autotask.txt")),
    ] {
        env.add_template(name, source)
            .expect("the setup templates are valid");
    }
    env
});

/// The steps of `kind`'s template: one per non-empty line.
fn render_steps(kind: PsaKind, values: minijinja::Value) -> Vec<String> {
    let text = TEMPLATES
        .get_template(kind.as_str())
        .and_then(|t| t.render(values))
        .expect("the setup templates render with the values the service gives");
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

impl PsaConnectionService {
    pub fn new(deps: PsaConnectionDeps) -> PsaConnectionService {
        PsaConnectionService {
            store: deps.store,
            psa: deps.psa,
            pods: deps.pods,
            public_url: deps.public_url,
            connectwise_client_id: deps.connectwise_client_id,
            connectwise_default_site_url: deps.connectwise_default_site_url,
            autotask_zone_lookup_url: deps.autotask_zone_lookup_url,
        }
    }

    /// The MSP's connections, oldest first.
    pub async fn list(&self, msp_id: Uuid) -> Result<Vec<PsaConnectionView>, CoreError> {
        let connections = self.store.list_connections(msp_id).await?;
        connections.iter().map(|c| self.view(c)).collect()
    }

    /// One connection of the MSP.
    pub async fn get(&self, msp_id: Uuid, id: Uuid) -> Result<PsaConnectionView, CoreError> {
        let connection = self.owned(msp_id, id).await?;
        self.view(&connection)
    }

    /// Checks `input` field by field, generates the PSA's signing secret (if it has one),
    /// saves the connection and audits it. Nothing is sent to the PSA.
    pub async fn create(
        &self,
        msp_id: Uuid,
        actor: &AuditActor,
        input: NewConnectionInput,
    ) -> Result<CreatedConnection, CoreError> {
        let now = Utc::now();
        let (mut draft, custom_origins) = self.draft_of(input, now)?;
        match custom_origins {
            Some(origins) => {
                let common = draft.shape.common_mut();
                common.allowed_origins = allowed_origins(&origins)?;
                common.allowed_origins_custom = true;
            }
            None => {
                let origins = default_origins(draft.shape.kind(), &origin_source(&draft));
                draft.shape.common_mut().allowed_origins = origins;
            }
        }
        let id = Uuid::now_v7();
        let kind = draft.shape.kind();
        let new = NewPsaConnection {
            msp_id,
            kind,
            name: draft.name.clone(),
            base_url: draft.base_url.clone(),
            settings: draft.shape.settings_json(),
            credentials: draft.shape.credentials_json(),
        };
        let after = self.view_of(id, kind, &draft, now, now, None);
        let audit = self.audit(
            msp_id,
            actor,
            "psa_connection.create",
            &after,
            None,
            Some(&after),
        );
        let created = self.store.create_connection_audited(id, new, audit).await?;
        self.pods.forget_connection(id).await;
        Ok(CreatedConnection {
            view: self.view(&created)?,
            generated: draft.shape.generated_secret(),
        })
    }

    /// Applies `patch` (of the connection's own PSA), checked field by field, and audits the
    /// change. A secret is replaced only when the patch carries a new one.
    pub async fn update(
        &self,
        msp_id: Uuid,
        actor: &AuditActor,
        id: Uuid,
        patch: ConnectionPatch,
    ) -> Result<PsaConnectionView, CoreError> {
        let connection = self.owned(msp_id, id).await?;
        if patch.kind() != connection.kind {
            return Err(invalid(
                "kind",
                format!(
                    "must be {}: a connection's PSA cannot change (create a new connection instead)",
                    connection.kind.as_str()
                ),
            ));
        }
        let before = self.view(&connection)?;
        let mut draft = self.open(&connection)?;
        let tested = tested_parts(&draft);
        let now = Utc::now();
        let origins = self.apply(&mut draft, patch, now)?;
        // Credentials or addresses changed: the last test no longer says anything.
        let forget_test = !same_tested_parts(&tested_parts(&draft), &tested);
        match origins {
            Patch::Set(origins) => {
                let common = draft.shape.common_mut();
                common.allowed_origins = allowed_origins(&origins)?;
                common.allowed_origins_custom = true;
            }
            Patch::Clear => {
                let origins = default_origins(draft.shape.kind(), &origin_source(&draft));
                let common = draft.shape.common_mut();
                common.allowed_origins = origins;
                common.allowed_origins_custom = false;
            }
            Patch::Keep => {
                if !draft.shape.common().allowed_origins_custom {
                    // Derived from the PSA's address, they follow it.
                    let origins = default_origins(draft.shape.kind(), &origin_source(&draft));
                    draft.shape.common_mut().allowed_origins = origins;
                }
            }
        }
        let kept_test = connection.last_test.clone().filter(|_| !forget_test);
        let after = self.view_of(
            id,
            connection.kind,
            &draft,
            connection.created_at,
            now,
            kept_test.as_ref(),
        );
        let audit = self.audit(
            msp_id,
            actor,
            "psa_connection.update",
            &after,
            Some(&before),
            Some(&after),
        );
        let updated = self
            .store
            .update_connection(
                id,
                connection.updated_at,
                PsaConnectionUpdate {
                    name: draft.name.clone(),
                    base_url: draft.base_url.clone(),
                    settings: draft.shape.settings_json(),
                    credentials: draft.shape.credentials_json(),
                    forget_test,
                },
                audit,
            )
            .await?;
        self.pods.forget_connection(id).await;
        match updated {
            Some(updated) => self.view(&updated),
            None => Err(CoreError::PsaConnectionChanged),
        }
    }

    /// Deletes the connection, its sealed credentials, its company mappings and its
    /// technicians; the audit log keeps everything about it. Pods opened through it stop
    /// working (at once on this instance).
    pub async fn delete(
        &self,
        msp_id: Uuid,
        actor: &AuditActor,
        id: Uuid,
    ) -> Result<(), CoreError> {
        let connection = self.owned(msp_id, id).await?;
        let before = self.view(&connection)?;
        let mappings = self.store.count_company_mappings(id).await?;
        let mut audit = self.audit(
            msp_id,
            actor,
            "psa_connection.delete",
            &before,
            Some(&before),
            None,
        );
        audit.details["company_mappings_removed"] = serde_json::json!(mappings);
        let removed = self.store.delete_connection(id, audit).await?;
        self.pods.forget_connection(id).await;
        match removed {
            Some(_) => Ok(()),
            None => Err(CoreError::PsaConnectionNotFound),
        }
    }

    /// Rotates the connection's signing secret (the HaloPSA tab secret, the Autotask Insight
    /// secret): generates a new one (256 bits), keeps the current one as the previous secret
    /// until `now + grace_seconds` (default [`DEFAULT_ROTATION_GRACE_SECONDS`], at most
    /// [`MAX_ROTATION_GRACE_SECONDS`]; 0 ends it at once), and audits the rotation (never a
    /// secret). A secret already in its grace period is dropped: only the last two are kept.
    /// The new secret is handed out here once, and by [`Self::setup`].
    pub async fn rotate_secret(
        &self,
        msp_id: Uuid,
        actor: &AuditActor,
        id: Uuid,
        grace_seconds: Option<i64>,
    ) -> Result<RotatedSecret, CoreError> {
        let grace_seconds = grace_seconds.unwrap_or(DEFAULT_ROTATION_GRACE_SECONDS);
        if !(0..=MAX_ROTATION_GRACE_SECONDS).contains(&grace_seconds) {
            return Err(invalid(
                "grace_seconds",
                format!(
                    "must be between 0 and {MAX_ROTATION_GRACE_SECONDS} seconds (7 days); leave it out for 24 hours"
                ),
            ));
        }
        let connection = self.owned(msp_id, id).await?;
        let before = self.view(&connection)?;
        let mut draft = self.open(&connection)?;
        let now = Utc::now();
        let expires_at = now + chrono::Duration::seconds(grace_seconds);
        let fresh = generate_secret();
        let field = match &mut draft.shape {
            Shape::ConnectWise(..) => return Err(CoreError::NoSigningSecret),
            Shape::HaloPsa(s, c) => {
                let old = std::mem::replace(&mut c.tab_secret, fresh.clone());
                c.previous_tab_secret = Some(PreviousSecret {
                    value: old,
                    expires_at,
                    changed_at: s.common.secrets_changed_at.get("tab_secret").copied(),
                });
                "tab_secret"
            }
            Shape::Autotask(s, c) => {
                let old = std::mem::replace(&mut c.insight_secret, fresh.clone());
                c.previous_insight_secret = Some(PreviousSecret {
                    value: old,
                    expires_at,
                    changed_at: s.common.secrets_changed_at.get("insight_secret").copied(),
                });
                "insight_secret"
            }
        };
        draft
            .shape
            .common_mut()
            .secrets_changed_at
            .insert(field.to_owned(), now);
        // A new signing secret changes nothing the connection test used: its status stays.
        let after = self.view_of(
            id,
            connection.kind,
            &draft,
            connection.created_at,
            now,
            connection.last_test.as_ref(),
        );
        let mut audit = self.audit(
            msp_id,
            actor,
            "psa_connection.rotate_secret",
            &after,
            Some(&before),
            Some(&after),
        );
        audit.details["secret"] = serde_json::json!(field);
        audit.details["grace_seconds"] = serde_json::json!(grace_seconds);
        audit.details["previous_expires_at"] = serde_json::json!(expires_at);
        let updated = self
            .store
            .update_connection(
                id,
                connection.updated_at,
                PsaConnectionUpdate {
                    name: draft.name.clone(),
                    base_url: draft.base_url.clone(),
                    settings: draft.shape.settings_json(),
                    credentials: draft.shape.credentials_json(),
                    forget_test: false,
                },
                audit,
            )
            .await?;
        self.pods.forget_connection(id).await;
        let updated = updated.ok_or(CoreError::PsaConnectionChanged)?;
        Ok(RotatedSecret {
            view: self.view(&updated)?,
            generated: GeneratedSecret {
                field,
                value: SecretString::from(fresh),
            },
            previous_expires_at: expires_at,
        })
    }

    /// Tests the connection against its PSA (harmless reads only) and keeps the result as
    /// the connection's status, unless the connection changed meanwhile. Audited
    /// (`psa_connection.test`, with each check's name, outcome and code). A failed check is
    /// an answer, not an error: nothing about the connection is changed by it.
    pub async fn test(
        &self,
        msp_id: Uuid,
        actor: &AuditActor,
        id: Uuid,
    ) -> Result<ConnectionTestResult, CoreError> {
        let connection = self.owned(msp_id, id).await?;
        let subject = self.view(&connection)?;
        let checks = self
            .psa
            .adapter(connection.kind)
            .test_connection(&connection)
            .await;
        // Microseconds: what both databases keep, so the answer and a later read agree.
        let tested_at = chrono::SubsecRound::trunc_subsecs(Utc::now(), 6);
        let test = LastTest::of(tested_at, checks);
        let mut audit = self.audit(msp_id, actor, "psa_connection.test", &subject, None, None);
        audit.outcome = if test.passed {
            AuditOutcome::Success
        } else {
            AuditOutcome::Failed
        };
        audit.details = serde_json::json!({
            "kind": subject.kind.as_str(),
            "passed": test.passed,
            "failed_check": test.failed_check,
            "code": test.code,
            "checks": test.checks.iter().map(|c| serde_json::json!({
                "name": c.name, "outcome": c.outcome, "code": c.code,
            })).collect::<Vec<_>>(),
        });
        let recorded = self
            .store
            .record_connection_test(id, connection.updated_at, tested_at, &test.checks, audit)
            .await?;
        Ok(ConnectionTestResult {
            connection_id: id,
            kind: connection.kind,
            test,
            recorded,
        })
    }

    /// What to paste into the PSA: the pod URL, the signing secret where there is one, the
    /// height and the PSA's steps.
    pub async fn setup(&self, msp_id: Uuid, id: Uuid) -> Result<SetupView, CoreError> {
        let connection = self.owned(msp_id, id).await?;
        let draft = self.open(&connection)?;
        let kind = connection.kind;
        let mut pod_url = self
            .public_url
            .join(&format!("pods/{}", kind.as_str()))
            .expect("a relative path joins onto the public URL");
        pod_url
            .query_pairs_mut()
            // The pods' `connection` parameter (`web::pod::CONNECTION_PARAM`).
            .append_pair("connection", &id.to_string());
        let mut pod_url = pod_url.to_string();
        if kind == PsaKind::ConnectWise {
            // ConnectWise replaces these tokens itself; they must stay unescaped.
            pod_url.push_str("&id=[cw_id]&screen=[cw_screen]");
        }
        let vouch_origin = self.public_url.origin().ascii_serialization();
        let (secret, height_px, company_id) = match &draft.shape {
            Shape::ConnectWise(s, _) => (None, CONNECTWISE_POD_HEIGHT_PX, s.company_id.clone()),
            Shape::HaloPsa(_, c) => (
                Some(SetupSecret {
                    field: "tab_secret",
                    label: "tab secret",
                    value: SecretString::from(c.tab_secret.clone()),
                }),
                HALOPSA_TAB_HEIGHT_PX,
                String::new(),
            ),
            Shape::Autotask(_, c) => (
                Some(SetupSecret {
                    field: "insight_secret",
                    label: "Insight secret",
                    value: SecretString::from(c.insight_secret.clone()),
                }),
                AUTOTASK_INSIGHT_HEIGHT_PX,
                String::new(),
            ),
        };
        let steps = render_steps(
            kind,
            context! {
                name => connection.name.clone(),
                pod_url => pod_url.clone(),
                origin => vouch_origin.clone(),
                height_px,
                company_id,
                secret_label => secret.as_ref().map(|s| s.label).unwrap_or(""),
            },
        );
        Ok(SetupView {
            connection_id: id,
            kind,
            pod_url,
            vouch_origin,
            secret,
            height_px,
            steps,
        })
    }

    /// The connection `id` if it is the MSP's (another MSP's is as good as missing).
    async fn owned(&self, msp_id: Uuid, id: Uuid) -> Result<PsaConnection, CoreError> {
        match self.store.get_connection(id).await? {
            Some(connection) if connection.msp_id == msp_id => Ok(connection),
            _ => Err(CoreError::PsaConnectionNotFound),
        }
    }

    /// A checked draft of a new connection, and the origins the admin gave (if any).
    fn draft_of(
        &self,
        input: NewConnectionInput,
        now: DateTime<Utc>,
    ) -> Result<(Draft, Option<Vec<String>>), CoreError> {
        let mut changed = BTreeMap::new();
        Ok(match input {
            NewConnectionInput::ConnectWise(i) => {
                let name = name_or_default(i.name.as_deref(), PsaKind::ConnectWise)?;
                let site_url = match &i.site_url {
                    Some(url) => psa_url("site_url", url, false)?,
                    None => self
                        .connectwise_default_site_url
                        .as_str()
                        .trim_end_matches('/')
                        .to_owned(),
                };
                let company_id = text("company_id", &i.company_id, 256)?;
                let public_key = text("public_key", &i.public_key, 256)?;
                let private_key = secret("private_key", &i.private_key, 256)?;
                let client_id = optional_text("client_id", i.client_id.as_deref(), 256)?;
                if client_id.is_none() && self.connectwise_client_id.is_none() {
                    return Err(invalid(
                        "client_id",
                        "is required: this Vouch has no psa.connectwise.client_id configured (give the clientId of your ConnectWise developer integration)",
                    ));
                }
                changed.insert("private_key".to_owned(), now);
                (
                    Draft {
                        name,
                        base_url: site_url,
                        shape: Shape::ConnectWise(
                            CwSettings {
                                company_id,
                                codebase: None,
                                client_id,
                                common: Common {
                                    secrets_changed_at: changed,
                                    ..Common::default()
                                },
                            },
                            CwCredentials {
                                public_key,
                                private_key,
                            },
                        ),
                    },
                    i.allowed_origins,
                )
            }
            NewConnectionInput::HaloPsa(i) => {
                let name = name_or_default(i.name.as_deref(), PsaKind::HaloPsa)?;
                let resource_url = psa_url("resource_url", &i.resource_url, false)?;
                let auth_url = psa_url("auth_url", &i.auth_url, false)?;
                let tenant = optional_text("tenant", i.tenant.as_deref(), 256)?;
                let client_id = text("client_id", &i.client_id, 256)?;
                let client_secret = secret("client_secret", &i.client_secret, 1024)?;
                changed.insert("client_secret".to_owned(), now);
                changed.insert("tab_secret".to_owned(), now);
                (
                    Draft {
                        name,
                        base_url: resource_url,
                        shape: Shape::HaloPsa(
                            HaloSettings {
                                auth_url,
                                tenant,
                                common: Common {
                                    secrets_changed_at: changed,
                                    ..Common::default()
                                },
                            },
                            HaloCredentials {
                                client_id,
                                client_secret,
                                tab_secret: generate_secret(),
                                previous_tab_secret: None,
                            },
                        ),
                    },
                    i.allowed_origins,
                )
            }
            NewConnectionInput::Autotask(i) => {
                let name = name_or_default(i.name.as_deref(), PsaKind::Autotask)?;
                let api_user = text("api_user", &i.api_user, 320)?;
                let api_secret = secret("api_secret", &i.api_secret, 256)?;
                let integration_code = text("integration_code", &i.integration_code, 256)?;
                let zone_lookup_url = i
                    .zone_lookup_url
                    .as_deref()
                    .map(|url| psa_url("zone_lookup_url", url, true))
                    .transpose()?;
                changed.insert("api_secret".to_owned(), now);
                changed.insert("insight_secret".to_owned(), now);
                let base_url = zone_lookup_url
                    .clone()
                    .unwrap_or_else(|| self.autotask_zone_lookup_url.to_string());
                (
                    Draft {
                        name,
                        base_url,
                        shape: Shape::Autotask(
                            AutotaskSettings {
                                zone_lookup_url,
                                common: Common {
                                    secrets_changed_at: changed,
                                    ..Common::default()
                                },
                            },
                            AutotaskCredentials {
                                api_user,
                                api_secret,
                                integration_code,
                                insight_secret: generate_secret(),
                                previous_insight_secret: None,
                            },
                        ),
                    },
                    i.allowed_origins,
                )
            }
        })
    }

    /// Applies a patch of the draft's own PSA; returns what it says of `allowed_origins`.
    fn apply(
        &self,
        draft: &mut Draft,
        patch: ConnectionPatch,
        now: DateTime<Utc>,
    ) -> Result<Patch<Vec<String>>, CoreError> {
        let kind = draft.shape.kind();
        let name = patch_name(&patch);
        if let Some(name) = name {
            draft.name = name_or_default(Some(&name), kind)?;
        }
        Ok(match (&mut draft.shape, patch) {
            (Shape::ConnectWise(s, c), ConnectionPatch::ConnectWise(p)) => {
                if let Some(url) = &p.site_url {
                    draft.base_url = psa_url("site_url", url, false)?;
                }
                if let Some(company_id) = &p.company_id {
                    s.company_id = text("company_id", company_id, 256)?;
                }
                if let Some(public_key) = &p.public_key {
                    c.public_key = text("public_key", public_key, 256)?;
                }
                if let Some(private_key) = &p.private_key {
                    c.private_key = secret("private_key", private_key, 256)?;
                    s.common
                        .secrets_changed_at
                        .insert("private_key".to_owned(), now);
                }
                match &p.client_id {
                    Patch::Keep => {}
                    Patch::Set(id) => s.client_id = Some(text("client_id", id, 256)?),
                    Patch::Clear => {
                        if self.connectwise_client_id.is_none() {
                            return Err(invalid(
                                "client_id",
                                "cannot be cleared: this Vouch has no psa.connectwise.client_id configured to fall back to",
                            ));
                        }
                        s.client_id = None;
                    }
                }
                p.allowed_origins
            }
            (Shape::HaloPsa(s, c), ConnectionPatch::HaloPsa(p)) => {
                if let Some(url) = &p.resource_url {
                    draft.base_url = psa_url("resource_url", url, false)?;
                }
                if let Some(url) = &p.auth_url {
                    s.auth_url = psa_url("auth_url", url, false)?;
                }
                match &p.tenant {
                    Patch::Keep => {}
                    Patch::Set(tenant) => s.tenant = Some(text("tenant", tenant, 256)?),
                    Patch::Clear => s.tenant = None,
                }
                if let Some(client_id) = &p.client_id {
                    c.client_id = text("client_id", client_id, 256)?;
                }
                if let Some(client_secret) = &p.client_secret {
                    c.client_secret = secret("client_secret", client_secret, 1024)?;
                    s.common
                        .secrets_changed_at
                        .insert("client_secret".to_owned(), now);
                }
                p.allowed_origins
            }
            (Shape::Autotask(s, c), ConnectionPatch::Autotask(p)) => {
                if let Some(api_user) = &p.api_user {
                    c.api_user = text("api_user", api_user, 320)?;
                }
                if let Some(api_secret) = &p.api_secret {
                    c.api_secret = secret("api_secret", api_secret, 256)?;
                    s.common
                        .secrets_changed_at
                        .insert("api_secret".to_owned(), now);
                }
                if let Some(code) = &p.integration_code {
                    c.integration_code = text("integration_code", code, 256)?;
                }
                match &p.zone_lookup_url {
                    Patch::Keep => {}
                    Patch::Set(url) => {
                        s.zone_lookup_url = Some(psa_url("zone_lookup_url", url, true)?)
                    }
                    Patch::Clear => s.zone_lookup_url = None,
                }
                draft.base_url = s
                    .zone_lookup_url
                    .clone()
                    .unwrap_or_else(|| self.autotask_zone_lookup_url.to_string());
                p.allowed_origins
            }
            _ => unreachable!("the patch's PSA is checked against the connection's first"),
        })
    }

    /// Opens a stored connection into its PSA's shape.
    fn open(&self, connection: &PsaConnection) -> Result<Draft, CoreError> {
        let broken = |what: &str| {
            tracing::error!(
                connection = %connection.id,
                what,
                "a stored PSA connection does not have its PSA's shape"
            );
            CoreError::Store(format!("PSA connection {} is malformed", connection.id))
        };
        let settings = connection.settings.clone();
        let credentials = connection.credentials.expose_secret();
        let shape = match connection.kind {
            PsaKind::ConnectWise => Shape::ConnectWise(
                serde_json::from_value(settings).map_err(|_| broken("settings"))?,
                serde_json::from_str(credentials).map_err(|_| broken("credentials"))?,
            ),
            PsaKind::HaloPsa => Shape::HaloPsa(
                serde_json::from_value(settings).map_err(|_| broken("settings"))?,
                serde_json::from_str(credentials).map_err(|_| broken("credentials"))?,
            ),
            PsaKind::Autotask => Shape::Autotask(
                serde_json::from_value(settings).map_err(|_| broken("settings"))?,
                serde_json::from_str(credentials).map_err(|_| broken("credentials"))?,
            ),
        };
        Ok(Draft {
            name: connection.name.clone(),
            base_url: connection.base_url.clone(),
            shape,
        })
    }

    fn view(&self, connection: &PsaConnection) -> Result<PsaConnectionView, CoreError> {
        let draft = self.open(connection)?;
        Ok(self.view_of(
            connection.id,
            connection.kind,
            &draft,
            connection.created_at,
            connection.updated_at,
            connection.last_test.as_ref(),
        ))
    }

    fn view_of(
        &self,
        id: Uuid,
        kind: PsaKind,
        draft: &Draft,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
        last_test: Option<&(DateTime<Utc>, Vec<ConnectionCheck>)>,
    ) -> PsaConnectionView {
        let last_test = last_test.map(|(at, checks)| LastTest::of(*at, checks.clone()));
        let common = draft.shape.common();
        let now = Utc::now();
        let status = |field: &str, value: &str| SecretStatus {
            set: !value.is_empty(),
            changed_at: common.secrets_changed_at.get(field).copied(),
            previous: None,
        };
        let signing = |field: &str, value: &str, previous: &Option<PreviousSecret>| SecretStatus {
            previous: PreviousSecret::status(previous, now),
            ..status(field, value)
        };
        let details = match &draft.shape {
            Shape::ConnectWise(s, c) => ConnectionDetails::ConnectWise {
                site_url: draft.base_url.clone(),
                company_id: s.company_id.clone(),
                public_key: c.public_key.clone(),
                private_key: status("private_key", &c.private_key),
                client_id: s.client_id.clone(),
                client_id_in_effect: s
                    .client_id
                    .clone()
                    .or_else(|| self.connectwise_client_id.clone()),
            },
            Shape::HaloPsa(s, c) => ConnectionDetails::HaloPsa {
                resource_url: draft.base_url.clone(),
                auth_url: s.auth_url.clone(),
                tenant: s.tenant.clone(),
                client_id: c.client_id.clone(),
                client_secret: status("client_secret", &c.client_secret),
                tab_secret: signing("tab_secret", &c.tab_secret, &c.previous_tab_secret),
            },
            Shape::Autotask(s, c) => ConnectionDetails::Autotask {
                api_user: c.api_user.clone(),
                integration_code: c.integration_code.clone(),
                api_secret: status("api_secret", &c.api_secret),
                insight_secret: signing(
                    "insight_secret",
                    &c.insight_secret,
                    &c.previous_insight_secret,
                ),
                zone_lookup_url: s.zone_lookup_url.clone(),
                zone_lookup_url_in_effect: s
                    .zone_lookup_url
                    .clone()
                    .unwrap_or_else(|| self.autotask_zone_lookup_url.to_string()),
            },
        };
        PsaConnectionView {
            id,
            kind,
            name: draft.name.clone(),
            status: last_test
                .as_ref()
                .map_or(ConnectionStatus::Untested, LastTest::status),
            last_test,
            allowed_origins: common.allowed_origins.clone(),
            allowed_origins_custom: common.allowed_origins_custom,
            details,
            created_at,
            updated_at,
        }
    }

    /// The audit entry of a change: the connection before and after, as the API shows it
    /// (so never a secret).
    fn audit(
        &self,
        msp_id: Uuid,
        actor: &AuditActor,
        action: &str,
        subject: &PsaConnectionView,
        before: Option<&PsaConnectionView>,
        after: Option<&PsaConnectionView>,
    ) -> NewAuditEvent {
        NewAuditEvent {
            msp_id,
            actor: actor.clone(),
            action: action.to_owned(),
            subject_kind: Some("psa_connection".to_owned()),
            subject_id: Some(subject.id.to_string()),
            subject_name: Some(subject.name.clone()),
            psa_ticket_id: None,
            outcome: AuditOutcome::Success,
            upstream_request_id: None,
            details: serde_json::json!({
                "kind": subject.kind.as_str(),
                "before": before,
                "after": after,
            }),
        }
    }
}

/// What a test depends on: the PSA's address and every setting and credential of the
/// connection except its name, `allowed_origins` and the signing secrets Vouch generated
/// (the PSA signs pod loads with those; the test does not use them). When this changes, the
/// last test is forgotten. Compared in memory, never stored or shown.
fn tested_parts(draft: &Draft) -> (String, serde_json::Value, SecretString) {
    let mut settings = draft.shape.settings_json();
    if let Some(map) = settings.as_object_mut() {
        map.remove("allowed_origins");
        map.remove("allowed_origins_custom");
        map.remove("secrets_changed_at");
    }
    let mut credentials: serde_json::Value =
        serde_json::from_str(draft.shape.credentials_json().expose_secret())
            .expect("credentials are JSON");
    if let Some(map) = credentials.as_object_mut() {
        map.remove("tab_secret");
        map.remove("insight_secret");
    }
    (
        draft.base_url.clone(),
        settings,
        SecretString::from(credentials.to_string()),
    )
}

fn same_tested_parts(
    a: &(String, serde_json::Value, SecretString),
    b: &(String, serde_json::Value, SecretString),
) -> bool {
    a.0 == b.0 && a.1 == b.1 && a.2.expose_secret() == b.2.expose_secret()
}

fn patch_name(patch: &ConnectionPatch) -> Option<String> {
    match patch {
        ConnectionPatch::ConnectWise(p) => p.name.clone(),
        ConnectionPatch::HaloPsa(p) => p.name.clone(),
        ConnectionPatch::Autotask(p) => p.name.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_origins_follow_each_psa_address() {
        assert_eq!(
            default_origins(
                PsaKind::ConnectWise,
                "https://api-na.myconnectwise.net/v4_6_release"
            ),
            [
                "https://na.myconnectwise.net",
                "https://api-na.myconnectwise.net"
            ]
        );
        assert_eq!(
            default_origins(PsaKind::ConnectWise, "https://cw.msp.example:8443"),
            ["https://cw.msp.example:8443"]
        );
        assert_eq!(
            default_origins(PsaKind::HaloPsa, "https://msp.halopsa.com"),
            ["https://msp.halopsa.com"]
        );
        assert_eq!(
            default_origins(
                PsaKind::Autotask,
                "https://webservices.autotask.net/atservicesrest/"
            ),
            ["https://*.autotask.net"]
        );
        assert_eq!(
            default_origins(PsaKind::Autotask, "http://127.0.0.1:4000/autotask/"),
            ["http://127.0.0.1:4000"]
        );
        // What the pod's frame-ancestors reads from them must survive its parsing.
        let wildcard = Url::parse("https://*.autotask.net").unwrap();
        assert_eq!(
            wildcard.origin().ascii_serialization(),
            "https://*.autotask.net"
        );
    }

    #[test]
    fn psa_addresses_are_checked_without_quoting_them() {
        assert_eq!(
            psa_url("site_url", " https://na.myconnectwise.net/ ", false).unwrap(),
            "https://na.myconnectwise.net"
        );
        assert_eq!(
            psa_url("zone_lookup_url", "https://x.example/atservicesrest", true).unwrap(),
            "https://x.example/atservicesrest/"
        );
        assert!(psa_url("site_url", "http://127.0.0.1:9/cw", false).is_ok());
        for bad in [
            "na.myconnectwise.net",
            "http://na.myconnectwise.net",
            "ftp://x.example",
            "https://user:pw@x.example",
            "https://x.example/?a=1",
        ] {
            let err = psa_url("site_url", bad, false).unwrap_err();
            assert!(err.to_string().starts_with("`site_url` "), "{err}");
            assert!(!err.to_string().contains(bad), "{err}");
        }
        assert!(allowed_origins(&["https://psa.example/path".into()]).is_err());
        assert!(allowed_origins(&[]).is_err());
        assert_eq!(
            allowed_origins(&["https://psa.example/".into(), "https://psa.example".into()])
                .unwrap(),
            ["https://psa.example"]
        );
    }

    #[test]
    fn generated_secrets_carry_256_bits() {
        let a = generate_secret();
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
        assert_ne!(a, generate_secret());
    }

    #[test]
    fn every_template_renders_one_step_per_line() {
        for kind in PsaKind::ALL {
            let steps = render_steps(
                kind,
                context! {
                    name => "Vouch", pod_url => "https://v.example/pods/x?connection=1",
                    origin => "https://v.example", height_px => 300, company_id => "northwind",
                    secret_label => "tab secret",
                },
            );
            assert!(steps.len() >= 4, "{kind:?}: {steps:?}");
            assert!(
                steps
                    .iter()
                    .any(|s| s.contains("https://v.example/pods/x?connection=1"))
            );
        }
    }
}
