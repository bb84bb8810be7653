//! Layered configuration: built-in defaults, then `vouch.toml` (or `--config`), then
//! `VOUCH__SECTION__KEY` environment variables. Any key may also be given as
//! `VOUCH__SECTION__KEY_FILE`, whose value is the path of a file holding the value (the usual
//! way to hand secrets to a container).
//!
//! Every struct denies unknown fields so that a typo stops start-up with the key named, rather
//! than being silently ignored.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use secrecy::SecretString;
use serde::{Deserialize, Serialize, Serializer};
use url::Url;

/// The prefix of every environment variable Vouch reads.
pub const ENV_PREFIX: &str = "VOUCH__";
/// The suffix that turns an environment variable into "read the value from this file".
const FILE_SUFFIX: &str = "_FILE";
/// What `vouch config` prints instead of a secret.
pub const REDACTED: &str = "[redacted]";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub encryption: EncryptionConfig,
    pub log: LogConfig,
    pub microsoft: MicrosoftConfig,
    pub sms: SmsConfig,
    pub psa: PsaConfig,
    pub cache: CacheConfig,
    pub resets: ResetConfig,
    pub console: ConsoleConfig,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address and port to listen on.
    pub bind: SocketAddr,
    /// The URL users and PSAs reach Vouch at (used in links sent by SMS and in pod URLs).
    pub public_url: Url,
    /// How long in-flight requests may run on after SIGTERM / Ctrl-C before being cut.
    pub shutdown_grace_seconds: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://path/to/file.db` or `postgres://user:password@host/db`.
    #[serde(serialize_with = "serialize_database_url")]
    pub url: String,
    /// The pool size: the most connections this instance opens to the database. A request
    /// holds one only while a statement or a short transaction runs (never across an
    /// upstream call), so bursts queue here for milliseconds, not for the upstream's time.
    pub max_connections: u32,
    /// How long opening one new connection may take.
    pub connect_timeout_seconds: u64,
    /// How long a request waits for a free connection of the pool before it fails with a
    /// database error (a pool too small for the load shows here first).
    pub acquire_timeout_seconds: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionConfig {
    /// Base64 of 32 random bytes; new secrets are sealed under this key.
    #[serde(
        serialize_with = "serialize_optional_secret",
        skip_serializing_if = "Option::is_none"
    )]
    pub master_key: Option<SecretString>,
    /// Keys that may still have sealed some stored values; kept only until
    /// `vouch rotate-key` has re-sealed everything under `master_key`.
    #[serde(serialize_with = "serialize_secret_list")]
    pub previous_keys: Vec<SecretString>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `json` (for `serve`, machine-read) or `pretty` (for people).
    pub format: LogFormat,
    /// A tracing filter such as `info` or `vouch=debug,info`.
    pub filter: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MicrosoftConfig {
    /// Which Microsoft cloud the customers' tenants live in. It sets the three base URLs below
    /// and, apart from them, the token audiences (see [`MicrosoftCloud`]).
    pub cloud: MicrosoftCloud,
    /// Microsoft identity platform; unset: the cloud's. Overriding it (an egress proxy, a
    /// test double) leaves the token audiences as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_url: Option<Url>,
    /// Microsoft Graph; unset: the cloud's. Overriding it leaves the Graph token audience as
    /// it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph_url: Option<Url>,
    /// The Azure MFA connector used by the NPS extension; unset: the cloud's. Overriding it
    /// leaves the connector token resource as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_connector_url: Option<Url>,
    /// Timeout of one call to the login endpoint or Graph.
    pub request_timeout_seconds: u64,
    /// Timeout of one push: it must outlast Microsoft's own push timeout (about a minute),
    /// since the connector holds the call open while the user decides.
    pub connector_timeout_seconds: u64,
    /// Vouch's own multi-tenant application (the "Microsoft Authenticator" integration).
    pub app_client_id: Option<String>,
    #[serde(
        serialize_with = "serialize_optional_secret",
        skip_serializing_if = "Option::is_none"
    )]
    pub app_client_secret: Option<SecretString>,
}

/// A Microsoft cloud (`microsoft.cloud`). GCC (not High) tenants use `global`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MicrosoftCloud {
    /// The commercial cloud (and GCC).
    #[default]
    Global,
    /// US Government, GCC High.
    Usgov,
    /// US Government, DoD.
    UsgovDod,
    /// China, operated by 21Vianet.
    China,
}

/// One row of [`MicrosoftCloud::table`]: the addresses and audiences of one cloud.
struct CloudRow {
    login: &'static str,
    /// The Graph address, which is also its token audience (its application ID URI).
    graph: &'static str,
    /// The host of the MFA connector; its token resource is
    /// `https://{host}/StrongAuthenticationService.svc/Connector`.
    connector_host: &'static str,
}

impl MicrosoftCloud {
    /// The one table of addresses and audiences (microsoft-wire.md, section 8).
    ///
    /// Unconfirmed, chosen here only: the connector host of `usgov-dod` (no primary source;
    /// taken to be GCC High's `adnotifications.windowsazure.us`, which Microsoft's NPS
    /// extension set-up for Azure Government uses) and of `china` (`adnotifications.
    /// windowsazure.cn`, by analogy with the other clouds). If either proves wrong, change
    /// its row; `microsoft.mfa_connector_url` can point elsewhere meanwhile, but the token
    /// resource follows this row.
    fn table(self) -> CloudRow {
        match self {
            MicrosoftCloud::Global => CloudRow {
                login: "https://login.microsoftonline.com/",
                graph: "https://graph.microsoft.com",
                connector_host: "adnotifications.windowsazure.com",
            },
            MicrosoftCloud::Usgov => CloudRow {
                login: "https://login.microsoftonline.us/",
                graph: "https://graph.microsoft.us",
                connector_host: "adnotifications.windowsazure.us",
            },
            MicrosoftCloud::UsgovDod => CloudRow {
                login: "https://login.microsoftonline.us/",
                graph: "https://dod-graph.microsoft.us",
                connector_host: "adnotifications.windowsazure.us",
            },
            MicrosoftCloud::China => CloudRow {
                login: "https://login.chinacloudapi.cn/",
                graph: "https://microsoftgraph.chinacloudapi.cn",
                connector_host: "adnotifications.windowsazure.cn",
            },
        }
    }
}

/// Where Vouch sends its Microsoft requests, and which audience each token is asked for:
/// [`MicrosoftConfig::endpoints`]. The audiences come from the cloud alone, never from an
/// address, because an address may be a proxy or a test double while the token must still
/// name the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MicrosoftEndpoints {
    pub login_url: Url,
    pub graph_url: Url,
    pub mfa_connector_url: Url,
    /// The v2 `scope` of Graph tokens (and of the admin consent link):
    /// `https://graph.microsoft.com/.default` in the global cloud.
    pub graph_scope: String,
    /// The v1 `resource` of connector tokens.
    pub mfa_connector_resource: String,
}

impl MicrosoftConfig {
    /// The cloud's addresses, each replaced by its override when one is set, and the cloud's
    /// audiences.
    pub fn endpoints(&self) -> MicrosoftEndpoints {
        let row = self.cloud.table();
        let parse = |url: String| Url::parse(&url).expect("the cloud table holds valid URLs");
        let connector_resource = format!(
            "https://{}/StrongAuthenticationService.svc/Connector",
            row.connector_host
        );
        MicrosoftEndpoints {
            login_url: self
                .login_url
                .clone()
                .unwrap_or_else(|| parse(row.login.to_owned())),
            graph_url: self
                .graph_url
                .clone()
                .unwrap_or_else(|| parse(format!("{}/", row.graph))),
            mfa_connector_url: self
                .mfa_connector_url
                .clone()
                .unwrap_or_else(|| parse(format!("{connector_resource}/"))),
            graph_scope: format!("{}/.default", row.graph),
            mfa_connector_resource: connector_resource,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    /// Base URL of a Twilio-compatible messaging API.
    pub api_url: Url,
    pub account_sid: Option<String>,
    #[serde(
        serialize_with = "serialize_optional_secret",
        skip_serializing_if = "Option::is_none"
    )]
    pub auth_token: Option<SecretString>,
    /// The sender number or alphanumeric sender id.
    pub from: Option<String>,
    /// Region for phone numbers written without a country code (ISO 3166, e.g. "US", "GB").
    pub default_region: String,
    /// Timeout of one call to the SMS provider.
    pub request_timeout_seconds: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PsaConfig {
    pub connectwise: ConnectWiseConfig,
    pub autotask: AutotaskConfig,
    pub halopsa: HaloPsaConfig,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectWiseConfig {
    /// The ConnectWise site used when a connection does not name its own
    /// (api-na.myconnectwise.net, api-eu..., or an on-premises host).
    pub default_site_url: Url,
    /// Vouch's ConnectWise developer client id (sent as the `clientId` header).
    pub client_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AutotaskConfig {
    /// Where the zone lookup is made; it answers with the REST base of the MSP's zone.
    pub zone_lookup_url: Url,
    /// How old a signed Autotask Insight load may be before it is refused.
    pub max_signature_age_seconds: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HaloPsaConfig {
    /// How old a signed HaloPSA tab load may be before it is refused.
    pub max_signature_age_seconds: u64,
}

/// The in-memory caches each instance keeps in front of the database and the upstream APIs.
/// Several instances behind a load balancer each keep their own, so a lifetime is also how
/// long a change made elsewhere (through another instance, or in the PSA or Microsoft 365)
/// may go unseen here. Each is built by [`CacheLimits::build`] (see [`crate::cache`]).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Technicians the PSA vouched for recently: a pod load within the lifetime does not write
    /// the technician's "last seen" to the database again.
    pub technicians: CacheLimits,
    /// PSA connections read recently, kept opened (their sealed credentials decrypted): every
    /// pod load and pod call needs its connection. A change anywhere is seen at once through
    /// the change feed (`store::changes`), without a database read per use.
    pub connections: CacheLimits,
    /// What a pod session is checked against on every pod call: its technician (blocked or
    /// not) and its MSP account (settings). Like connections, a change anywhere is seen at
    /// once through the change feed; the lifetime bounds how long an instance whose change
    /// listener died silently could miss one.
    pub session_state: CacheLimits,
    /// Tickets and their contact, read through the PSA's API: a pod load and the
    /// verification started from it read the ticket once (PSAs rate-limit; HaloPSA allows
    /// about 450 requests per 5 minutes). Short, so a contact corrected in the PSA is seen
    /// within a minute.
    pub tickets: CacheLimits,
    /// ConnectWise members the Hosted API vouched for (`myMembers/info`), by connection
    /// version, member and member hash: a reload of the pod within the lifetime (by default
    /// one hour, the pod session's) is not checked with ConnectWise again. A payload that
    /// was never vouched for (a forged or revoked hash) is checked, and refused, every time.
    pub connectwise_members: CacheLimits,
    /// HaloPSA API tokens per connection. A token leaves 5 minutes before the expiry Halo
    /// states; the lifetime is a ceiling, and its default (50 minutes, under the hour Halo's
    /// tokens usually last) keeps even a token whose expiry Halo does not state from being
    /// used stale.
    pub halopsa_tokens: CacheLimits,
    /// HaloPSA agents (the technician's name) per connection: every tab load names one, and
    /// names rarely change.
    pub halopsa_agents: CacheLimits,
    /// The REST base URL of each Autotask connection's zone, from the zone lookup: it changes
    /// only when Autotask moves a tenant, so it is looked up once a day (by default). Kept by
    /// connection version and API user: a changed connection looks its zone up again.
    pub autotask_zones: CacheLimits,
    /// Autotask resources (the technician's name) per connection: every Insight load names
    /// one, and names rarely change.
    pub autotask_resources: CacheLimits,
    /// Microsoft app-only tokens per tenant, app and API. A token always leaves 5 minutes
    /// before its own expiry (Microsoft's last 60 to 90 minutes); the lifetime is a ceiling.
    pub microsoft_tokens: CacheLimits,
    /// The Microsoft user an e-mail address resolved to, per tenant: a verification with warm
    /// caches needs no Graph lookup. A user renamed or deleted in Microsoft 365 is seen within
    /// the lifetime; a password reset reads the user again regardless.
    pub microsoft_users: CacheLimits,
    /// What a pod shows of a user before anything is sent (Authenticator registered, default
    /// method, admin roles, registered mobile), read from Microsoft at once: reloads of the
    /// ticket within the lifetime read nothing again. A change the technician makes through
    /// Vouch is seen at once; one made in Microsoft 365 within the lifetime. A verification
    /// or a reset reads what it needs afresh regardless.
    pub user_checks: CacheLimits,
    /// Pages of a PSA's company list (`GET /v1/psa-connections/{id}/companies` and the
    /// suggested mappings): an admin paging back and forth, or asking for suggestions again,
    /// reads the PSA once. A company added in the PSA is listed within the lifetime.
    pub psa_companies: CacheLimits,
    /// The e-mail addresses of a PSA company's contacts, read for the suggested mappings.
    pub psa_company_contacts: CacheLimits,
    /// A tenant's verified domains, read from Microsoft Graph for the suggested mappings.
    pub tenant_domains: CacheLimits,
    /// The console's Contacts search (per MSP and search text): the results page reloaded,
    /// or a contact opened and the search gone back to, reads Microsoft once. Short: a user
    /// added in Microsoft 365 is found within the lifetime.
    pub contact_searches: CacheLimits,
}

impl CacheConfig {
    /// Every cache with the name of its `cache.<name>` section.
    pub fn named(&self) -> [(&'static str, CacheLimits); 16] {
        [
            ("technicians", self.technicians),
            ("connections", self.connections),
            ("session_state", self.session_state),
            ("tickets", self.tickets),
            ("connectwise_members", self.connectwise_members),
            ("halopsa_tokens", self.halopsa_tokens),
            ("halopsa_agents", self.halopsa_agents),
            ("autotask_zones", self.autotask_zones),
            ("autotask_resources", self.autotask_resources),
            ("microsoft_tokens", self.microsoft_tokens),
            ("microsoft_users", self.microsoft_users),
            ("user_checks", self.user_checks),
            ("psa_companies", self.psa_companies),
            ("psa_company_contacts", self.psa_company_contacts),
            ("tenant_domains", self.tenant_domains),
            ("contact_searches", self.contact_searches),
        ]
    }
}

/// How a password reset makes sure it ends known (`resets.*`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ResetConfig {
    /// How many times Vouch sends the same password change when Microsoft's answer is lost
    /// or unclear (timeout, dropped connection, 5xx), before it calls the outcome unknown.
    /// Setting the same password again changes nothing, so repeating is safe.
    pub patch_attempts: u32,
    /// The wait before the first repeat, doubled for each one after (with jitter).
    pub patch_retry_base_ms: u64,
    /// How long the instance carrying a reset out owns it without news. A reset left in
    /// progress past this (its instance was killed, or lost the database) is finished or
    /// failed by the sweeper of any instance.
    pub lease_seconds: u64,
    /// How often each instance looks for such resets.
    pub sweep_interval_seconds: u64,
    /// How many times the technician may send a reset's link again.
    pub max_resends: u32,
}

/// The MSP console's sign-in (`console.*`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// A console session unused for this long ends.
    pub idle_timeout_seconds: u64,
    /// A console session ends this long after its sign-in, however busy.
    pub absolute_timeout_seconds: u64,
    /// Whether admins must use an authenticator app (TOTP) as a second factor.
    pub require_totp_for_admins: bool,
    /// Whether technicians must use one too.
    pub require_totp_for_technicians: bool,
    /// After this many failed sign-ins in a row, each further attempt must wait.
    pub backoff_after_failures: u32,
    /// The first wait; doubled for each further failure (at most 5 minutes).
    pub backoff_base_seconds: u64,
    /// After this many failed sign-ins in a row, the account is locked.
    pub lockout_after_failures: u32,
    /// How long a locked account stays locked (an admin can unlock it sooner).
    pub lockout_seconds: u64,
    /// How long a set-up or invitation link works.
    pub link_lifetime_seconds: u64,
}

/// The size and lifetime of one cache (`cache.<name>.max_entries` and `.ttl_seconds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CacheLimits {
    /// How many entries the cache holds at most; the least useful are dropped first.
    pub max_entries: u64,
    /// How long an entry is kept after it was read from (or written to) its source.
    pub ttl_seconds: u64,
}

/// The longest a cache entry may live: a day-old connection, ticket, name or user is as stale
/// as any operator would accept.
pub const MAX_CACHE_TTL_SECONDS: u64 = 86_400;

impl Default for Config {
    fn default() -> Self {
        Config {
            http: HttpConfig {
                bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
                public_url: Url::parse("http://localhost:8080/").expect("static url"),
                shutdown_grace_seconds: 30,
            },
            database: DatabaseConfig {
                url: "sqlite://vouch-data/vouch.db".to_owned(),
                max_connections: 10,
                connect_timeout_seconds: 10,
                acquire_timeout_seconds: 10,
            },
            encryption: EncryptionConfig {
                master_key: None,
                previous_keys: Vec::new(),
            },
            log: LogConfig {
                format: LogFormat::Json,
                filter: "info".to_owned(),
            },
            microsoft: MicrosoftConfig {
                cloud: MicrosoftCloud::Global,
                login_url: None,
                graph_url: None,
                mfa_connector_url: None,
                request_timeout_seconds: 20,
                connector_timeout_seconds: 120,
                app_client_id: None,
                app_client_secret: None,
            },
            sms: SmsConfig {
                api_url: Url::parse("https://api.twilio.com/").expect("static url"),
                account_sid: None,
                auth_token: None,
                from: None,
                default_region: "US".to_owned(),
                request_timeout_seconds: 15,
            },
            psa: PsaConfig {
                connectwise: ConnectWiseConfig {
                    default_site_url: Url::parse("https://api-na.myconnectwise.net/")
                        .expect("static url"),
                    client_id: None,
                },
                autotask: AutotaskConfig {
                    zone_lookup_url: Url::parse("https://webservices.autotask.net/atservicesrest/")
                        .expect("static url"),
                    max_signature_age_seconds: 300,
                },
                halopsa: HaloPsaConfig {
                    max_signature_age_seconds: 300,
                },
            },
            cache: CacheConfig {
                technicians: CacheLimits {
                    max_entries: 10_000,
                    ttl_seconds: 300,
                },
                connections: CacheLimits {
                    max_entries: 10_000,
                    ttl_seconds: 60,
                },
                session_state: CacheLimits {
                    max_entries: 10_000,
                    ttl_seconds: 60,
                },
                tickets: CacheLimits {
                    max_entries: 10_000,
                    ttl_seconds: 60,
                },
                connectwise_members: CacheLimits {
                    max_entries: 10_000,
                    ttl_seconds: crate::psa::pod_token::LIFETIME_SECONDS as u64,
                },
                halopsa_tokens: CacheLimits {
                    max_entries: 10_000,
                    ttl_seconds: 50 * 60,
                },
                halopsa_agents: CacheLimits {
                    max_entries: 10_000,
                    ttl_seconds: 300,
                },
                autotask_zones: CacheLimits {
                    max_entries: 10_000,
                    ttl_seconds: 24 * 3600,
                },
                autotask_resources: CacheLimits {
                    max_entries: 10_000,
                    ttl_seconds: 300,
                },
                microsoft_tokens: CacheLimits {
                    max_entries: 10_000,
                    ttl_seconds: 3600,
                },
                microsoft_users: CacheLimits {
                    max_entries: 50_000,
                    ttl_seconds: 300,
                },
                user_checks: CacheLimits {
                    max_entries: 50_000,
                    ttl_seconds: 60,
                },
                psa_companies: CacheLimits {
                    max_entries: 1_000,
                    ttl_seconds: 60,
                },
                psa_company_contacts: CacheLimits {
                    max_entries: 10_000,
                    ttl_seconds: 300,
                },
                tenant_domains: CacheLimits {
                    max_entries: 10_000,
                    ttl_seconds: 3600,
                },
                contact_searches: CacheLimits {
                    max_entries: 1_000,
                    ttl_seconds: 60,
                },
            },
            resets: ResetConfig {
                patch_attempts: 4,
                patch_retry_base_ms: 1000,
                lease_seconds: 180,
                sweep_interval_seconds: 60,
                max_resends: 3,
            },
            console: ConsoleConfig {
                idle_timeout_seconds: 30 * 60,
                absolute_timeout_seconds: 12 * 3600,
                require_totp_for_admins: true,
                require_totp_for_technicians: false,
                backoff_after_failures: 5,
                backoff_base_seconds: 1,
                lockout_after_failures: 10,
                lockout_seconds: 15 * 60,
                link_lifetime_seconds: 72 * 3600,
            },
        }
    }
}

/// A configuration problem, worded for the person starting Vouch.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration error: {0}")]
    Invalid(String),
    #[error(
        "configuration error: {key} is read from the file {path}, which cannot be read: {reason}"
    )]
    UnreadableFile {
        key: String,
        path: PathBuf,
        reason: String,
    },
}

/// Where configuration comes from; tests pass their own environment.
pub struct ConfigSources<'a> {
    /// An explicit `--config` file, which must exist.
    pub file: Option<&'a Path>,
    /// The environment variables to consider (normally `std::env::vars()`).
    pub env: Vec<(String, String)>,
}

impl Config {
    /// Loads from `--config` (or `./vouch.toml` when present) and the process environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_from(ConfigSources {
            file,
            env: std::env::vars().collect(),
        })
    }

    pub fn load_from(sources: ConfigSources<'_>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(DefaultsForFigment));
        match sources.file {
            Some(path) => {
                if !path.exists() {
                    return Err(ConfigError::Invalid(format!(
                        "the configuration file {} does not exist",
                        path.display()
                    )));
                }
                figment = figment.merge(Toml::file_exact(path));
            }
            None => figment = figment.merge(Toml::file("vouch.toml")),
        }
        let (plain, from_files) = split_env(&sources.env)?;
        figment = figment.merge(env_provider(plain)).merge(from_files);
        // Lossy: a value the environment (or a file) gives as text, such as "20", still fills
        // a number or boolean key; every value from the environment is text (see
        // `env_provider`), so string keys keep what the operator wrote.
        let config: Config = figment
            .extract_lossy()
            .map_err(|err| ConfigError::Invalid(describe_figment_error(err, &sources.env)))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let url = &self.database.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid(
                "database.url must start with sqlite:// or postgres:// (got another scheme)".into(),
            ));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "database.max_connections must be at least 1".into(),
            ));
        }
        if self.database.acquire_timeout_seconds == 0 {
            return Err(ConfigError::Invalid(
                "database.acquire_timeout_seconds must be at least 1".into(),
            ));
        }
        if self
            .log
            .filter
            .parse::<tracing_subscriber::EnvFilter>()
            .is_err()
        {
            return Err(ConfigError::Invalid(format!(
                "log.filter is not a valid filter: {:?} (try \"info\" or \"vouch=debug,info\")",
                self.log.filter
            )));
        }
        if self.resets.patch_attempts == 0 || self.resets.patch_attempts > 10 {
            return Err(ConfigError::Invalid(
                "resets.patch_attempts must be from 1 to 10".into(),
            ));
        }
        if self.resets.lease_seconds < 30 {
            return Err(ConfigError::Invalid(
                "resets.lease_seconds must be at least 30 (a reset in progress must not be swept from under its instance)".into(),
            ));
        }
        if self.resets.sweep_interval_seconds == 0 {
            return Err(ConfigError::Invalid(
                "resets.sweep_interval_seconds must be at least 1".into(),
            ));
        }
        let console = &self.console;
        if console.idle_timeout_seconds < 60 || console.absolute_timeout_seconds < 60 {
            return Err(ConfigError::Invalid(
                "console.idle_timeout_seconds and console.absolute_timeout_seconds must be at least 60".into(),
            ));
        }
        if console.lockout_after_failures == 0 || console.backoff_after_failures == 0 {
            return Err(ConfigError::Invalid(
                "console.backoff_after_failures and console.lockout_after_failures must be at least 1".into(),
            ));
        }
        if console.link_lifetime_seconds < 60 {
            return Err(ConfigError::Invalid(
                "console.link_lifetime_seconds must be at least 60".into(),
            ));
        }
        for (name, limits) in self.cache.named() {
            if limits.ttl_seconds > MAX_CACHE_TTL_SECONDS {
                return Err(ConfigError::Invalid(format!(
                    "cache.{name}.ttl_seconds must be at most {MAX_CACHE_TTL_SECONDS} (one day)"
                )));
            }
        }
        if let Some(key) = &self.encryption.master_key {
            crate::store::crypto::MasterKey::parse(key)
                .map_err(|err| ConfigError::Invalid(format!("encryption.master_key {err}")))?;
        }
        for (index, key) in self.encryption.previous_keys.iter().enumerate() {
            crate::store::crypto::MasterKey::parse(key).map_err(|err| {
                ConfigError::Invalid(format!("encryption.previous_keys[{index}] {err}"))
            })?;
        }
        Ok(())
    }

    /// The effective configuration as TOML with every secret replaced by `[redacted]`.
    pub fn redacted_toml(&self) -> String {
        toml::to_string_pretty(self).expect("configuration always serialises")
    }
}

/// Figment wants a `Serialize` source of defaults; secrets are `None` in the defaults, so the
/// redacting serialisers never see one here.
struct DefaultsForFigment;

impl Serialize for DefaultsForFigment {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let defaults = Config::default();
        let mut value = serde_json::to_value(&defaults).map_err(serde::ser::Error::custom)?;
        strip_nulls(&mut value);
        value.serialize(serializer)
    }
}

/// `None` defaults must be absent, not null, or figment reports them as explicit values.
fn strip_nulls(value: &mut serde_json::Value) {
    if let serde_json::Value::Object(map) = value {
        map.retain(|_, v| !v.is_null());
        for v in map.values_mut() {
            strip_nulls(v);
        }
    }
}

type EnvVars = Vec<(String, String)>;

/// Separates `VOUCH__X__Y=value` from `VOUCH__X__Y_FILE=path`, reading each file now so that a
/// missing file is reported with the key it was meant for.
fn split_env(env: &[(String, String)]) -> Result<(EnvVars, Serialized<Dict>), ConfigError> {
    let mut plain = Vec::new();
    let mut from_files = Dict::new();
    for (name, value) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        match rest.strip_suffix(FILE_SUFFIX) {
            Some(key_part) => {
                let key = env_key_to_path(key_part);
                let path = PathBuf::from(value);
                let content =
                    std::fs::read_to_string(&path).map_err(|err| ConfigError::UnreadableFile {
                        key: key.join("."),
                        path: path.clone(),
                        reason: err.to_string(),
                    })?;
                // Files written by editors and `echo` end in a newline that is not part of
                // the secret.
                let content = content.trim_end_matches(['\n', '\r']).to_owned();
                insert_path(&mut from_files, &key, Value::from(content));
            }
            None => plain.push((name.clone(), value.clone())),
        }
    }
    Ok((plain, Serialized::defaults(from_files)))
}

fn env_key_to_path(key_part: &str) -> Vec<String> {
    key_part
        .split("__")
        .map(|segment| segment.to_ascii_lowercase())
        .collect()
}

fn insert_path(dict: &mut Dict, path: &[String], value: Value) {
    match path {
        [] => {}
        [last] => {
            dict.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = dict
                .entry(first.clone())
                .or_insert_with(|| Value::from(Map::<String, Value>::new()));
            if let Value::Dict(_, inner) = entry {
                insert_path(inner, rest, value);
            }
        }
    }
}

/// Figment's own `Env` provider reads the process environment; tests need to hand in their
/// own, so the given variables become the same nested dictionary.
///
/// Unlike `Env`, a value is never turned into a number or boolean here: `+14155550100`
/// (`sms.from`), `12345` (an id) or `true` must reach a string key as the text written, and
/// `extract_lossy` still reads such text into a number or boolean key. Only the brackets of
/// an array or dictionary (`[a, b]`, `{k = v}`) are parsed, their scalar items kept as text.
fn env_provider(vars: Vec<(String, String)>) -> Serialized<Dict> {
    let mut dict = Dict::new();
    for (name, value) in vars {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        insert_path(&mut dict, &env_key_to_path(rest), env_value(&value));
    }
    Serialized::defaults(dict)
}

/// One environment value: text, unless it is an array or dictionary.
fn env_value(raw: &str) -> Value {
    let trimmed = raw.trim();
    if trimmed.starts_with('[') || trimmed.starts_with('{') {
        let parsed: Value = match raw.parse() {
            Ok(parsed) => parsed,
            Err(never) => match never {},
        };
        if matches!(parsed, Value::Array(..) | Value::Dict(..)) {
            return scalars_as_text(parsed);
        }
    }
    Value::from(raw.to_owned())
}

/// Inside an array or dictionary from the environment, numbers and booleans go back to text,
/// for the same reason as a whole value (see [`env_provider`]).
fn scalars_as_text(value: Value) -> Value {
    match value {
        Value::Num(tag, num) => Value::String(tag, num_text(num)),
        Value::Bool(tag, b) => Value::String(tag, b.to_string()),
        Value::Char(tag, c) => Value::String(tag, c.to_string()),
        Value::Array(tag, items) => {
            Value::Array(tag, items.into_iter().map(scalars_as_text).collect())
        }
        Value::Dict(tag, map) => Value::Dict(
            tag,
            map.into_iter()
                .map(|(k, v)| (k, scalars_as_text(v)))
                .collect(),
        ),
        other => other,
    }
}

fn num_text(num: figment::value::Num) -> String {
    use figment::value::Num;
    match num {
        Num::U8(n) => n.to_string(),
        Num::U16(n) => n.to_string(),
        Num::U32(n) => n.to_string(),
        Num::U64(n) => n.to_string(),
        Num::U128(n) => n.to_string(),
        Num::USize(n) => n.to_string(),
        Num::I8(n) => n.to_string(),
        Num::I16(n) => n.to_string(),
        Num::I32(n) => n.to_string(),
        Num::I64(n) => n.to_string(),
        Num::I128(n) => n.to_string(),
        Num::ISize(n) => n.to_string(),
        Num::F32(n) => n.to_string(),
        Num::F64(n) => n.to_string(),
    }
}

/// One sentence per problem, naming the key and where its value came from.
fn describe_figment_error(err: figment::Error, env: &[(String, String)]) -> String {
    err.into_iter()
        .map(|e| {
            // For an unknown field, figment's path already ends with the field's name.
            let path = e.path.clone();
            let key = path.join(".");
            let env_name = format!(
                "{ENV_PREFIX}{}",
                path.iter()
                    .map(|p| p.to_ascii_uppercase())
                    .collect::<Vec<_>>()
                    .join("__")
            );
            let source = if env.iter().any(|(name, _)| name == &env_name) {
                format!(" (set by the environment variable {env_name})")
            } else if env
                .iter()
                .any(|(name, _)| name == &format!("{env_name}{FILE_SUFFIX}"))
            {
                format!(" (read from the file named by {env_name}{FILE_SUFFIX})")
            } else {
                match e.metadata.as_ref().and_then(|m| m.source.as_ref()) {
                    Some(figment::Source::File(file)) => format!(" (set in {})", file.display()),
                    _ => String::new(),
                }
            };
            if key.is_empty() {
                format!("{}{source}", e.kind)
            } else {
                format!("`{key}`: {}{source}", e.kind)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn serialize_optional_secret<S: Serializer>(
    value: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    // Only called for `Some`: `None` is skipped, so "not set" shows as an absent key.
    debug_assert!(value.is_some());
    serializer.serialize_str(REDACTED)
}

fn serialize_secret_list<S: Serializer>(
    value: &[SecretString],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = serializer.serialize_seq(Some(value.len()))?;
    for _ in value {
        seq.serialize_element(REDACTED)?;
    }
    seq.end()
}

/// Database URLs may carry a password (`postgres://user:password@host/db`).
fn serialize_database_url<S: Serializer>(value: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&redact_url_password(value))
}

pub fn redact_url_password(value: &str) -> String {
    match Url::parse(value) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("redacted"));
            url.to_string()
        }
        _ => value.to_owned(),
    }
}
