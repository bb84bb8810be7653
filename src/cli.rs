//! The `vouch` command line: it parses the arguments and the configuration, then hands over
//! to the composition root (`crate::app`) or, for `demo`, to `crate::demo`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::anyhow;
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;

use crate::app::{App, open_store};
use crate::config::Config;
use crate::core::companies::{AcceptItem, CompaniesService, CompanyError, Suggestion};
use crate::core::error::CoreError;
use crate::core::logo::LogoFormat;
use crate::core::settings::{SettingsChange, SettingsService};
use crate::core::setup::SetupService;
use crate::domain::{ActorKind, ApiKeyScope, ErrorCode};
use crate::server;
use crate::store::Store;
use crate::store::audit::AuditActor;
use crate::store::crypto::MasterKey;
use crate::store::msp::MspAccount;
use crate::telemetry;

#[derive(Debug, Parser)]
#[command(
    name = "vouch",
    version,
    about = "Verify callers and reset Microsoft 365 passwords from the PSA ticket."
)]
pub struct Cli {
    /// Configuration file (default: ./vouch.toml when it exists).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run Vouch (production): migrate the database, then serve.
    Serve,
    /// Run Vouch with the sandbox upstreams and a seeded demo MSP, on SQLite under ./vouch-data/
    /// (needs the default `sandbox` feature).
    Demo,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the OpenAPI document (YAML).
    Openapi,
    /// Print the effective configuration, with every secret redacted.
    Config,
    /// Re-seal every stored secret under encryption.master_key (or, with --generate, print a
    /// new random key).
    RotateKey {
        /// Print a fresh random master key and exit, touching nothing.
        #[arg(long)]
        generate: bool,
    },
    /// Manage MSP accounts.
    #[command(subcommand)]
    Msp(MspCommand),
    /// Manage an MSP's API keys.
    #[command(subcommand, name = "api-key")]
    ApiKey(ApiKeyCommand),
    /// Show or change an MSP's branding and policies (as `GET/PATCH /v1/settings`).
    #[command(subcommand)]
    Settings(SettingsCommand),
    /// List, rename or remove an MSP's customer tenants (as `/v1/tenants`).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Map PSA companies to customer tenants (as `/v1/company-mappings`).
    #[command(subcommand)]
    Company(CompanyCommand),
    /// Connect, list, test, set up and remove an MSP's PSA connections (as
    /// `/v1/psa-connections`).
    #[command(subcommand)]
    Psa(PsaCommand),
    /// List the technicians the PSAs vouched for, and block or unblock their Vouch actions
    /// (as `/v1/technicians`).
    #[command(subcommand)]
    Technician(TechnicianCommand),
    /// Manage an MSP's console users (the first admin comes from here).
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a console user and print their one-time set-up link (it expires after
    /// `console.link_lifetime_seconds`, 72 hours by default, and works once).
    Create {
        /// The MSP's id or exact name.
        #[arg(long)]
        msp: String,
        /// The address they sign in with (unique across Vouch).
        #[arg(long)]
        email: String,
        /// Their name, as the console and the audit log show it (default: from the address).
        #[arg(long, default_value = "")]
        name: String,
        /// Make them an admin (default: technician).
        #[arg(long)]
        admin: bool,
    },
    /// The MSP's console users.
    List {
        /// The MSP's id or exact name.
        #[arg(long)]
        msp: String,
        /// Print JSON instead of one line per user.
        #[arg(long)]
        json: bool,
    },
    /// Stop a user signing in; their sessions end at once.
    Disable {
        #[arg(long)]
        msp: String,
        /// The user's e-mail address or id.
        user: String,
    },
    /// Let a disabled user sign in again.
    Enable {
        #[arg(long)]
        msp: String,
        /// The user's e-mail address or id.
        user: String,
    },
    /// Lift a user's lockout after failed sign-ins.
    Unlock {
        #[arg(long)]
        msp: String,
        /// The user's e-mail address or id.
        user: String,
    },
    /// A new one-time set-up link for a user (a forgotten password or a lost phone); their
    /// earlier links stop working.
    Link {
        #[arg(long)]
        msp: String,
        /// The user's e-mail address or id.
        user: String,
    },
    /// Remove a user; their sessions end at once.
    Remove {
        #[arg(long)]
        msp: String,
        /// The user's e-mail address or id.
        user: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TechnicianCommand {
    /// The MSP's technicians, most recently seen first, with their last action.
    List {
        /// The MSP's id or exact name.
        #[arg(long)]
        msp: String,
        /// Print JSON instead of one line per technician.
        #[arg(long)]
        json: bool,
    },
    /// Refuse the technician's pod loads and actions, on every instance at once. Audited.
    Block {
        /// The MSP's id or exact name.
        #[arg(long)]
        msp: String,
        /// The technician's id (see `vouch technician list`).
        id: uuid::Uuid,
        /// Print the technician as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Lift a block. Audited.
    Unblock {
        /// The MSP's id or exact name.
        #[arg(long)]
        msp: String,
        /// The technician's id.
        id: uuid::Uuid,
        /// Print the technician as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// The environment variable `vouch psa add` reads the PSA's secret from (else the first line
/// of standard input): never a flag, which would show in `ps` and in shell history.
pub const PSA_SECRET_ENV: &str = "VOUCH_PSA_SECRET";

#[derive(Debug, Subcommand)]
pub enum PsaCommand {
    /// Connect a PSA. Its secret (ConnectWise private key, HaloPSA client secret, Autotask
    /// API secret) is read from the environment variable VOUCH_PSA_SECRET, or else from the
    /// first line of standard input. Prints the connection, and the signing secret Vouch
    /// generated (HaloPSA, Autotask) once.
    #[command(subcommand)]
    Add(PsaAddCommand),
    /// List the MSP's PSA connections with their status.
    List {
        /// The MSP's id or exact name.
        #[arg(long)]
        msp: String,
        /// Print JSON instead of one line per connection.
        #[arg(long)]
        json: bool,
    },
    /// Test a connection against its PSA (harmless reads only) and keep the result as its
    /// status. Exits non-zero, with the failed check's code and sentence, when a check fails.
    Test {
        /// The MSP's id or exact name.
        #[arg(long)]
        msp: String,
        /// The connection's id (see `vouch psa list`).
        id: uuid::Uuid,
        /// Print JSON instead of one line per check.
        #[arg(long)]
        json: bool,
    },
    /// Print what to paste into the PSA: the pod URL, the signing secret, the height, the
    /// steps.
    Setup {
        /// The MSP's id or exact name.
        #[arg(long)]
        msp: String,
        /// The connection's id (see `vouch psa list`).
        id: uuid::Uuid,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Rotate the secret a HaloPSA tab or an Autotask Insight signs pod loads with: prints the
    /// new one once, to paste into the PSA; the old one keeps working for the grace period.
    RotateSecret {
        /// The MSP's id or exact name.
        #[arg(long)]
        msp: String,
        /// The connection's id (see `vouch psa list`).
        id: uuid::Uuid,
        /// How long the old secret keeps working, in seconds (0 to 604800; default 86400).
        #[arg(long)]
        grace_seconds: Option<i64>,
    },
    /// Remove a connection, its secrets and its company mappings (the audit log keeps its
    /// history).
    Remove {
        /// The MSP's id or exact name.
        #[arg(long)]
        msp: String,
        /// The connection's id (see `vouch psa list`).
        id: uuid::Uuid,
    },
}

/// What every `vouch psa add` takes, whatever the PSA.
#[derive(Debug, clap::Args)]
pub struct PsaAddCommon {
    /// The MSP's id or exact name.
    #[arg(long)]
    msp: String,
    /// A name for people (defaults to the PSA's).
    #[arg(long)]
    name: Option<String>,
    /// An origin that may frame the pod (repeat it for several); defaults to the PSA's.
    #[arg(long = "allowed-origin")]
    allowed_origins: Vec<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
pub enum PsaAddCommand {
    /// ConnectWise PSA; the private key comes from VOUCH_PSA_SECRET or standard input.
    Connectwise {
        #[command(flatten)]
        common: PsaAddCommon,
        /// The site's API address (default `psa.connectwise.default_site_url`).
        #[arg(long)]
        site_url: Option<String>,
        /// The MSP's ConnectWise company id.
        #[arg(long)]
        company_id: String,
        /// The API member's public key.
        #[arg(long)]
        public_key: String,
        /// The integration's clientId (required unless `psa.connectwise.client_id` is set).
        #[arg(long)]
        client_id: Option<String>,
    },
    /// HaloPSA; the client secret comes from VOUCH_PSA_SECRET or standard input.
    Halopsa {
        #[command(flatten)]
        common: PsaAddCommon,
        /// Halo's resource server, e.g. https://msp.halopsa.com.
        #[arg(long)]
        resource_url: String,
        /// Halo's authorisation server, e.g. https://msp.halopsa.com/auth.
        #[arg(long)]
        auth_url: String,
        /// Hosted Halo's tenant name.
        #[arg(long)]
        tenant: Option<String>,
        /// The API application's client id.
        #[arg(long)]
        client_id: String,
    },
    /// Autotask; the API user's secret comes from VOUCH_PSA_SECRET or standard input.
    Autotask {
        #[command(flatten)]
        common: PsaAddCommon,
        /// The API user's user name.
        #[arg(long)]
        api_user: String,
        /// The API tracking identifier (integration code).
        #[arg(long)]
        integration_code: String,
        /// Overrides `psa.autotask.zone_lookup_url`.
        #[arg(long)]
        zone_lookup_url: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CompanyCommand {
    /// List the company mappings, optionally of one PSA connection; with --psa, the PSA's
    /// own companies (read through its API, as `/v1/psa-connections/{id}/companies`).
    List {
        /// The MSP's id or exact name.
        #[arg(long)]
        msp: String,
        /// Only this PSA connection's mappings (needed with --psa).
        #[arg(long)]
        psa_connection: Option<uuid::Uuid>,
        /// List the PSA's companies, each with its mapping, instead of the mappings.
        #[arg(long, requires = "psa_connection")]
        psa: bool,
        /// With --psa: only companies whose name contains this.
        #[arg(long, requires = "psa")]
        search: Option<String>,
        /// With --psa: the page (from 1).
        #[arg(long, requires = "psa")]
        page: Option<u32>,
        /// Print JSON instead of one line per mapping.
        #[arg(long)]
        json: bool,
    },
    /// Suggest a tenant for each unmapped PSA company, with the evidence (as
    /// `/v1/company-mappings/suggestions`); with --accept, map those scoring --min-score or
    /// more (as `/v1/company-mappings/suggestions/accept`).
    Suggest {
        /// The MSP's id or exact name.
        #[arg(long)]
        msp: String,
        /// Only this PSA connection's companies.
        #[arg(long)]
        psa_connection: Option<uuid::Uuid>,
        /// Map the suggestions scoring --min-score or more.
        #[arg(long)]
        accept: bool,
        /// With --accept: the least score accepted (0 to 100; 80 is `high` confidence).
        #[arg(long, default_value_t = 80, requires = "accept", value_parser = clap::value_parser!(u8).range(0..=100))]
        min_score: u8,
        /// Print JSON (as the API answers) instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Map a PSA company to a tenant (a company maps to at most one tenant).
    Map {
        /// The MSP's id or exact name.
        #[arg(long)]
        msp: String,
        /// The PSA connection's id.
        #[arg(long)]
        psa_connection: uuid::Uuid,
        /// The company's id in the PSA.
        #[arg(long)]
        company_id: String,
        /// The company's name, as the PSA shows it.
        #[arg(long)]
        company_name: String,
        /// The tenant's id (see `vouch tenant list`).
        #[arg(long)]
        tenant: uuid::Uuid,
    },
    /// Remove a mapping (by its id, see `vouch company list`).
    Unmap {
        /// The MSP's id or exact name.
        #[arg(long)]
        msp: String,
        /// The mapping's id.
        id: uuid::Uuid,
    },
}

#[derive(Debug, Subcommand)]
pub enum SettingsCommand {
    /// Print every setting with its value.
    Show {
        /// The MSP's id or exact name.
        #[arg(long)]
        msp: String,
        /// Print JSON (as the API answers) instead of `key = value` lines.
        #[arg(long)]
        json: bool,
    },
    /// Change one setting, e.g. `vouch settings set --msp "Northwind IT" support_phone "+1 206 555 0199"`
    /// (an empty VALUE clears an optional branding field). Audited as the command line.
    Set {
        /// The MSP's id or exact name.
        #[arg(long)]
        msp: String,
        /// The setting, as `vouch settings show` names it.
        key: String,
        /// Its new value.
        value: String,
        /// Print the settings as JSON afterwards.
        #[arg(long)]
        json: bool,
    },
    /// Upload the logo end users see (a PNG, or an SVG, which is rasterised; at most
    /// 256 KB), or remove it with `--remove`. Audited as the command line.
    Logo {
        /// The MSP's id or exact name.
        #[arg(long)]
        msp: String,
        /// The PNG or SVG file (told apart by its content, not its name).
        #[arg(required_unless_present = "remove", conflicts_with = "remove")]
        file: Option<std::path::PathBuf>,
        /// Remove the uploaded logo instead.
        #[arg(long)]
        remove: bool,
        /// Print the settings as JSON afterwards.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum MspCommand {
    /// Create an MSP account and print its id.
    Create {
        /// The MSP's name, as shown to end users in SMS and on secure-link pages.
        #[arg(long)]
        name: String,
    },
    /// List MSP accounts.
    List,
}

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create an API key for an MSP and print it (it is shown only this once).
    Create {
        /// The MSP's id or exact name.
        #[arg(long)]
        msp: String,
        /// What the key is for, e.g. "PSA automation".
        #[arg(long, default_value = "API key")]
        name: String,
        /// `admin` (everything, set-up included) or `technician` (verify, reset, secure
        /// shares, read the audit).
        #[arg(long, default_value = "admin", value_parser = parse_scope)]
        scope: ApiKeyScope,
    },
    /// List an MSP's API keys (never the keys themselves).
    List {
        /// The MSP's id or exact name.
        #[arg(long)]
        msp: String,
        /// Print JSON instead of one line per key.
        #[arg(long)]
        json: bool,
    },
    /// Revoke an API key, on every instance from the next request on.
    Revoke {
        /// The MSP's id or exact name.
        #[arg(long)]
        msp: String,
        /// The key's id (see `vouch api-key list`).
        id: uuid::Uuid,
    },
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// List an MSP's customer tenants, with their integrations and health.
    List {
        /// The MSP's id or exact name.
        #[arg(long)]
        msp: String,
        /// Print JSON instead of one line per tenant.
        #[arg(long)]
        json: bool,
    },
    /// Change a tenant's display name.
    Rename {
        /// The MSP's id or exact name.
        #[arg(long)]
        msp: String,
        /// The tenant's id (see `vouch tenant list`).
        id: uuid::Uuid,
        /// The new display name.
        name: String,
    },
    /// Remove a tenant: its integrations, secrets and mappings (its history stays), and
    /// print what to clean up in the customer's Microsoft 365.
    Remove {
        /// The MSP's id or exact name.
        #[arg(long)]
        msp: String,
        /// The tenant's id (see `vouch tenant list`).
        id: uuid::Uuid,
    },
}

/// Configuration problems exit with 2, everything else with 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("vouch: {err}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("vouch: {err:#}");
            ExitCode::from(1)
        }
    }
}

pub async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Openapi => {
            print!("{}", crate::api::spec_yaml());
            Ok(())
        }
        Command::Config => {
            print!("{}", config.redacted_toml());
            Ok(())
        }
        Command::RotateKey { generate: true } => {
            println!("{}", MasterKey::generate_encoded().expose_secret());
            eprintln!(
                "Put this key in encryption.master_key, move the current one to \
                 encryption.previous_keys, then run `vouch rotate-key`."
            );
            Ok(())
        }
        Command::RotateKey { generate: false } => {
            telemetry::init_logging(&config.log);
            let store = open_store(&config).await?;
            store.migrate().await?;
            let report = store.rotate_keys().await?;
            for column in &report.columns {
                println!(
                    "{}.{}: {} re-sealed, {} already under {}",
                    column.table,
                    column.column,
                    column.resealed,
                    column.already_current,
                    report.active_key_id
                );
            }
            println!(
                "Every stored secret is sealed under key {}; encryption.previous_keys can now be emptied.",
                report.active_key_id
            );
            Ok(())
        }
        Command::Migrate => {
            telemetry::init_logging(&config.log);
            let store = open_store(&config).await?;
            store.migrate().await?;
            println!("The database is up to date.");
            Ok(())
        }
        Command::Serve => {
            telemetry::init_logging(&config.log);
            App::build(config)
                .await?
                .start()
                .await?
                .run_until(server::shutdown_signal())
                .await
        }
        Command::Demo => demo(config).await,
        Command::Msp(command) => {
            let store = open_store(&config).await?;
            store.migrate().await?;
            match command {
                MspCommand::Create { name } => {
                    let msp = SetupService::new(store.clone())
                        .create_msp(&command_line_actor(), &name, None)
                        .await
                        .map_err(coded)?;
                    println!("{}", msp.id);
                }
                MspCommand::List => {
                    for msp in store.list_msps().await? {
                        println!("{}  {}", msp.id, msp.name);
                    }
                }
            }
            Ok(())
        }
        Command::Settings(command) => {
            let store = open_store(&config).await?;
            store.migrate().await?;
            let settings = SettingsService::new(store.clone(), config.http.public_url.clone());
            let (msp, json, change) = match command {
                SettingsCommand::Logo {
                    msp,
                    file,
                    remove: _,
                    json,
                } => {
                    let msp = find_msp(&store, &msp).await?;
                    let actor = command_line_actor();
                    let shown = match file {
                        None => settings.remove_logo(msp.id, &actor).await,
                        Some(path) => {
                            let bytes = std::fs::read(&path).map_err(|err| {
                                anyhow::anyhow!("cannot read {}: {err}", path.display())
                            })?;
                            settings
                                .upload_logo(msp.id, &actor, LogoFormat::sniff(&bytes), &bytes)
                                .await
                        }
                    }
                    .map_err(coded)?;
                    print_settings(&shown, json);
                    return Ok(());
                }
                SettingsCommand::Show { msp, json } => (msp, json, None),
                SettingsCommand::Set {
                    msp,
                    key,
                    value,
                    json,
                } => (msp, json, Some((key, value))),
            };
            let msp = find_msp(&store, &msp).await?;
            let shown = match change {
                None => settings.get(msp.id).await,
                Some((key, value)) => match SettingsChange::of_text(&key, &value) {
                    Ok(change) => settings.update(msp.id, &command_line_actor(), change).await,
                    Err(err) => Err(err),
                },
            }
            .map_err(coded)?;
            print_settings(&shown, json);
            Ok(())
        }
        Command::ApiKey(ApiKeyCommand::List { msp, json }) => {
            let store = open_store(&config).await?;
            store.migrate().await?;
            let msp = find_msp(&store, &msp).await?;
            let keys = SetupService::new(store)
                .list_api_keys(msp.id)
                .await
                .map_err(coded)?;
            let rows: Vec<serde_json::Value> = keys
                .iter()
                .map(|k| {
                    serde_json::json!({
                        "id": k.id, "name": k.name, "prefix": k.key_prefix, "scope": k.scope,
                        "created_at": k.created_at, "last_used_at": k.last_used_at,
                        "revoked_at": k.revoked_at,
                    })
                })
                .collect();
            if json {
                println!("{:#}", serde_json::Value::Array(rows));
            } else {
                for k in keys {
                    println!(
                        "{}  {}…  {}  {}{}",
                        k.id,
                        k.key_prefix,
                        k.name,
                        serde_json::to_value(k.scope)
                            .unwrap_or_default()
                            .as_str()
                            .unwrap_or(""),
                        k.revoked_at
                            .map(|at| format!("  revoked {at}"))
                            .unwrap_or_default()
                    );
                }
            }
            Ok(())
        }
        Command::ApiKey(ApiKeyCommand::Revoke { msp, id }) => {
            let store = open_store(&config).await?;
            store.migrate().await?;
            let msp = find_msp(&store, &msp).await?;
            let key = SetupService::new(store)
                .revoke_api_key(msp.id, &command_line_actor(), id)
                .await
                .map_err(coded)?;
            println!("Revoked {} ({}).", key.name, key.key_prefix);
            Ok(())
        }
        Command::Tenant(command) => {
            let store = open_store(&config).await?;
            store.migrate().await?;
            let setup = SetupService::new(store.clone());
            match command {
                TenantCommand::List { msp, json } => {
                    let msp = find_msp(&store, &msp).await?;
                    let tenants = setup.list_tenants(msp.id).await.map_err(coded)?;
                    if json {
                        let rows: Vec<serde_json::Value> = tenants
                            .iter()
                            .map(|t| {
                                serde_json::json!({
                                    "id": t.tenant.id,
                                    "display_name": t.tenant.display_name,
                                    "microsoft_tenant_id": t.tenant.microsoft_tenant_id,
                                    "health": t.health_message,
                                    "integrations": t.integrations.iter().map(|i| serde_json::to_value(i.kind).unwrap_or_default()).collect::<Vec<_>>(),
                                    "mappings": t.mappings.len(),
                                })
                            })
                            .collect();
                        println!("{:#}", serde_json::Value::Array(rows));
                    } else {
                        for t in tenants {
                            println!(
                                "{}  {}  ({})  {}",
                                t.tenant.id,
                                t.tenant.display_name,
                                t.tenant.microsoft_tenant_id,
                                t.health_message
                            );
                        }
                    }
                }
                TenantCommand::Rename { msp, id, name } => {
                    let msp = find_msp(&store, &msp).await?;
                    let tenant = setup
                        .rename_tenant(msp.id, &command_line_actor(), id, &name)
                        .await
                        .map_err(coded)?;
                    println!("{}  {}", tenant.id, tenant.display_name);
                }
                TenantCommand::Remove { msp, id } => {
                    let msp = find_msp(&store, &msp).await?;
                    let removed = setup
                        .remove_tenant(msp.id, &command_line_actor(), id)
                        .await
                        .map_err(coded)?;
                    println!(
                        "Removed {} ({} integration(s), {} mapping(s)). In the customer's Microsoft 365:",
                        removed.tenant.display_name,
                        removed.integrations_removed.len(),
                        removed.mappings_removed
                    );
                    for step in removed.microsoft_cleanup {
                        println!("- {step}");
                    }
                }
            }
            Ok(())
        }
        Command::Company(command) => {
            let store = open_store(&config).await?;
            store.migrate().await?;
            let setup = SetupService::new(store.clone());
            let print = |m: &crate::core::setup::MappingView| {
                println!(
                    "{}  {} ({}) -> {}  [connection {}]",
                    m.id, m.psa_company_name, m.psa_company_id, m.tenant_name, m.psa_connection_id
                )
            };
            match command {
                CompanyCommand::List {
                    msp,
                    psa_connection: Some(connection),
                    psa: true,
                    search,
                    page,
                    json,
                } => {
                    let msp = find_msp(&store, &msp).await?;
                    let app = App::build(config).await?;
                    let listed = app
                        .context()
                        .companies
                        .list_companies(msp.id, connection, search.as_deref(), page, None)
                        .await
                        .map_err(coded_company)?;
                    if json {
                        let rows: Vec<serde_json::Value> = listed
                            .items
                            .iter()
                            .map(|c| {
                                serde_json::json!({
                                    "id": c.id, "name": c.name, "website": c.website,
                                    "mapping": c.mapping.as_ref().map(|m| serde_json::json!({
                                        "mapping_id": m.mapping_id, "tenant_id": m.tenant_id,
                                        "tenant_name": m.tenant_name,
                                    })),
                                })
                            })
                            .collect();
                        println!(
                            "{:#}",
                            serde_json::json!({
                                "page": listed.page, "page_size": listed.page_size,
                                "items": rows, "has_more": listed.has_more,
                            })
                        );
                    } else {
                        for c in &listed.items {
                            println!(
                                "{}  {}{}  {}",
                                c.id,
                                c.name,
                                c.website
                                    .as_deref()
                                    .map(|w| format!(" ({w})"))
                                    .unwrap_or_default(),
                                c.mapping
                                    .as_ref()
                                    .map(|m| format!("-> {}", m.tenant_name))
                                    .unwrap_or_else(|| "not mapped".to_owned())
                            );
                        }
                        if listed.has_more {
                            println!("More companies: --page {}", listed.page.saturating_add(1));
                        }
                    }
                }
                CompanyCommand::Suggest {
                    msp,
                    psa_connection,
                    accept,
                    min_score,
                    json,
                } => {
                    let msp = find_msp(&store, &msp).await?;
                    let app = App::build(config).await?;
                    return suggest(
                        &app.context().companies,
                        msp.id,
                        psa_connection,
                        accept.then_some(min_score),
                        json,
                    )
                    .await;
                }
                CompanyCommand::List {
                    msp,
                    psa_connection,
                    json,
                    ..
                } => {
                    let msp = find_msp(&store, &msp).await?;
                    let mappings = setup
                        .list_mappings(msp.id, psa_connection)
                        .await
                        .map_err(coded)?;
                    if json {
                        let rows: Vec<serde_json::Value> = mappings
                            .iter()
                            .map(|m| {
                                serde_json::json!({
                                    "id": m.id, "psa_connection_id": m.psa_connection_id,
                                    "psa_company_id": m.psa_company_id,
                                    "psa_company_name": m.psa_company_name,
                                    "tenant_id": m.tenant_id, "tenant_name": m.tenant_name,
                                })
                            })
                            .collect();
                        println!("{:#}", serde_json::Value::Array(rows));
                    } else {
                        mappings.iter().for_each(print);
                    }
                }
                CompanyCommand::Map {
                    msp,
                    psa_connection,
                    company_id,
                    company_name,
                    tenant,
                } => {
                    let msp = find_msp(&store, &msp).await?;
                    let (mapping, _) = setup
                        .put_mapping(
                            msp.id,
                            &command_line_actor(),
                            crate::core::setup::MappingInput {
                                psa_connection_id: psa_connection,
                                psa_company_id: company_id,
                                psa_company_name: company_name,
                                tenant_id: tenant,
                            },
                        )
                        .await
                        .map_err(coded)?;
                    print(&mapping);
                }
                CompanyCommand::Unmap { msp, id } => {
                    let msp = find_msp(&store, &msp).await?;
                    let mapping = setup
                        .delete_mapping(msp.id, &command_line_actor(), id)
                        .await
                        .map_err(coded)?;
                    println!(
                        "Unmapped {} ({}).",
                        mapping.psa_company_name, mapping.psa_company_id
                    );
                }
            }
            Ok(())
        }
        Command::Psa(command) => psa(command, config).await,
        Command::Technician(command) => technician(command, config).await,
        Command::User(command) => user(command, config).await,
        Command::ApiKey(ApiKeyCommand::Create { msp, name, scope }) => {
            let store = open_store(&config).await?;
            store.migrate().await?;
            let found = &find_msp(&store, &msp).await?;
            let (_, key) = SetupService::new(store.clone())
                .create_api_key(found.id, &command_line_actor(), &name, scope)
                .await
                .map_err(coded)?;
            println!("{}", key.expose_secret());
            eprintln!(
                "This key is shown only once: store it now. It acts for {}, with the {} scope.",
                found.name,
                match scope {
                    ApiKeyScope::Admin => "admin",
                    ApiKeyScope::Technician => "technician",
                }
            );
            Ok(())
        }
    }
}

/// `vouch psa …`, over the PSA connection service of the composition root (not over HTTP).
async fn psa(command: PsaCommand, config: Config) -> anyhow::Result<()> {
    use crate::core::psa_connections as core;
    let app = App::build(config).await?;
    let ctx = app.context().clone();
    let service = &ctx.psa_connections;
    let actor = command_line_actor();
    let print_view = |view: &core::PsaConnectionView| {
        println!(
            "{}  {}  {}  {}",
            view.id,
            view.kind.as_str(),
            view.name,
            status_text(view)
        );
    };
    match command {
        PsaCommand::Add(add) => {
            let secret = secrecy::SecretString::from(read_psa_secret()?);
            let origins = |o: Vec<String>| (!o.is_empty()).then_some(o);
            let (common, input) = match add {
                PsaAddCommand::Connectwise {
                    common,
                    site_url,
                    company_id,
                    public_key,
                    client_id,
                } => {
                    let input = core::NewConnectionInput::ConnectWise(core::ConnectWiseInput {
                        name: common.name.clone(),
                        site_url,
                        company_id,
                        public_key,
                        private_key: secret,
                        client_id,
                        allowed_origins: origins(common.allowed_origins.clone()),
                    });
                    (common, input)
                }
                PsaAddCommand::Halopsa {
                    common,
                    resource_url,
                    auth_url,
                    tenant,
                    client_id,
                } => {
                    let input = core::NewConnectionInput::HaloPsa(core::HaloPsaInput {
                        name: common.name.clone(),
                        resource_url,
                        auth_url,
                        tenant,
                        client_id,
                        client_secret: secret,
                        allowed_origins: origins(common.allowed_origins.clone()),
                    });
                    (common, input)
                }
                PsaAddCommand::Autotask {
                    common,
                    api_user,
                    integration_code,
                    zone_lookup_url,
                } => {
                    let input = core::NewConnectionInput::Autotask(core::AutotaskInput {
                        name: common.name.clone(),
                        api_user,
                        api_secret: secret,
                        integration_code,
                        zone_lookup_url,
                        allowed_origins: origins(common.allowed_origins.clone()),
                    });
                    (common, input)
                }
            };
            let msp = find_msp(&ctx.store, &common.msp).await?;
            let created = service.create(msp.id, &actor, input).await.map_err(coded)?;
            if common.json {
                let mut json = serde_json::to_value(&created.view)?;
                if let Some(generated) = &created.generated {
                    json["generated_secret"] = serde_json::json!({
                        "field": generated.field,
                        "value": generated.value.expose_secret(),
                    });
                }
                println!("{json:#}");
            } else {
                print_view(&created.view);
                if let Some(generated) = &created.generated {
                    println!("{}: {}", generated.field, generated.value.expose_secret());
                }
            }
            if created.generated.is_some() {
                eprintln!(
                    "The {} is shown here once (and again by `vouch psa setup`): paste it into the PSA. Then run `vouch psa test`.",
                    created.generated.as_ref().map_or("", |g| g.field)
                );
            }
            Ok(())
        }
        PsaCommand::List { msp, json } => {
            let msp = find_msp(&ctx.store, &msp).await?;
            let views = service.list(msp.id).await.map_err(coded)?;
            if json {
                println!("{:#}", serde_json::to_value(&views)?);
            } else {
                views.iter().for_each(print_view);
            }
            Ok(())
        }
        PsaCommand::Test { msp, id, json } => {
            let msp = find_msp(&ctx.store, &msp).await?;
            let result = service.test(msp.id, &actor, id).await.map_err(coded)?;
            if json {
                println!("{:#}", serde_json::to_value(&result)?);
            } else {
                for check in &result.test.checks {
                    let mark = match check.outcome {
                        crate::domain::CheckOutcome::Passed => "passed ".to_owned(),
                        crate::domain::CheckOutcome::Failed => format!(
                            "FAILED {}",
                            check.code.map(|c| c.as_str()).unwrap_or_default()
                        ),
                        crate::domain::CheckOutcome::Skipped => "skipped".to_owned(),
                    };
                    println!("{mark}  {}: {}", check.name, check.message);
                }
                if !result.recorded {
                    println!(
                        "The connection changed while it was tested: this result is not kept; test again."
                    );
                }
            }
            match result
                .test
                .checks
                .iter()
                .find(|c| c.outcome == crate::domain::CheckOutcome::Failed)
            {
                Some(failed) => Err(anyhow!(
                    "{}: {}",
                    failed
                        .code
                        .unwrap_or(crate::domain::ErrorCode::PsaUnexpectedResponse),
                    failed.message
                )),
                None => Ok(()),
            }
        }
        PsaCommand::Setup { msp, id, json } => {
            let msp = find_msp(&ctx.store, &msp).await?;
            let setup = service.setup(msp.id, id).await.map_err(coded)?;
            if json {
                println!(
                    "{:#}",
                    serde_json::json!({
                        "connection_id": setup.connection_id,
                        "kind": setup.kind,
                        "pod_url": setup.pod_url,
                        "vouch_origin": setup.vouch_origin,
                        "secret": setup.secret.as_ref().map(|s| serde_json::json!({
                            "field": s.field, "label": s.label, "value": s.value.expose_secret(),
                        })),
                        "height_px": setup.height_px,
                        "steps": setup.steps,
                    })
                );
            } else {
                println!("pod URL: {}", setup.pod_url);
                println!("Vouch origin: {}", setup.vouch_origin);
                if let Some(secret) = &setup.secret {
                    println!("{}: {}", secret.label, secret.value.expose_secret());
                }
                println!("height: {} px", setup.height_px);
                for (n, step) in setup.steps.iter().enumerate() {
                    println!("{}. {step}", n + 1);
                }
            }
            Ok(())
        }
        PsaCommand::RotateSecret {
            msp,
            id,
            grace_seconds,
        } => {
            let msp = find_msp(&ctx.store, &msp).await?;
            let rotated = service
                .rotate_secret(msp.id, &actor, id, grace_seconds)
                .await
                .map_err(coded)?;
            println!(
                "New {} (shown once; paste it into the PSA):",
                rotated.generated.field
            );
            println!("{}", rotated.generated.value.expose_secret());
            eprintln!(
                "The old one keeps working until {}.",
                rotated.previous_expires_at.to_rfc3339()
            );
            Ok(())
        }
        PsaCommand::Remove { msp, id } => {
            let msp = find_msp(&ctx.store, &msp).await?;
            let view = service.get(msp.id, id).await.map_err(coded)?;
            service.delete(msp.id, &actor, id).await.map_err(coded)?;
            println!("Removed {} ({}).", view.name, view.id);
            Ok(())
        }
    }
}

async fn technician(command: TechnicianCommand, config: Config) -> anyhow::Result<()> {
    let app = App::build(config).await?;
    let ctx = app.context().clone();
    let service = &ctx.technicians;
    let actor = command_line_actor();
    let line = |t: &crate::core::technicians::TechnicianView| {
        format!(
            "{}  {}  {}  {}  {}",
            t.id,
            t.psa_connection_name
                .as_deref()
                .unwrap_or("(removed connection)"),
            t.name,
            t.last_seen_at.map(|at| at.to_rfc3339()).unwrap_or_default(),
            if t.blocked_at.is_some() {
                "blocked"
            } else {
                "active"
            }
        )
    };
    let block = matches!(command, TechnicianCommand::Block { .. });
    match command {
        TechnicianCommand::List { msp, json } => {
            let msp = find_msp(&ctx.store, &msp).await?;
            let technicians = service.list(msp.id).await.map_err(coded)?;
            if json {
                let rows: Vec<serde_json::Value> =
                    technicians.iter().map(technician_json).collect();
                println!("{:#}", serde_json::Value::Array(rows));
            } else {
                for t in &technicians {
                    println!("{}", line(t));
                }
            }
        }
        TechnicianCommand::Block { msp, id, json }
        | TechnicianCommand::Unblock { msp, id, json } => {
            let msp = find_msp(&ctx.store, &msp).await?;
            let changed = if block {
                service.block(msp.id, &actor, id).await
            } else {
                service.unblock(msp.id, &actor, id).await
            }
            .map_err(coded)?;
            if json {
                println!("{:#}", technician_json(&changed));
            } else {
                println!("{}", line(&changed));
            }
        }
    }
    Ok(())
}

async fn user(command: UserCommand, config: Config) -> anyhow::Result<()> {
    use crate::core::accounts::{AccountError, NewUserInput};
    use crate::domain::ConsoleRole;
    let app = App::build(config).await?;
    let ctx = app.context().clone();
    let accounts = &ctx.accounts;
    let actor = command_line_actor();
    let coded_account = |err: AccountError| anyhow!("{}: {err}", err.code());
    let line = |u: &crate::store::console_users::ConsoleUser| {
        format!(
            "{}  {}  {}  {}  {}",
            u.id,
            u.email,
            u.name,
            u.role.as_str(),
            if u.disabled_at.is_some() {
                "disabled"
            } else if u
                .locked_until
                .is_some_and(|until| until > chrono::Utc::now())
            {
                "locked"
            } else if !u.has_password {
                "invited"
            } else {
                "active"
            }
        )
    };
    let print_link = |link: &crate::core::accounts::SetupLink| {
        println!(
            "Set-up link for {} (works once, until {}):",
            link.user.email,
            crate::domain::utc_minute(link.expires_at)
        );
        println!("{}", link.url.expose_secret());
    };
    // A user named by e-mail address or id, of this MSP.
    async fn named(
        accounts: &crate::core::accounts::AccountsService,
        msp_id: uuid::Uuid,
        user: &str,
    ) -> Result<uuid::Uuid, AccountError> {
        if let Ok(id) = user.parse::<uuid::Uuid>() {
            return Ok(id);
        }
        accounts.find_by_email(msp_id, user).await.map(|u| u.id)
    }
    match command {
        UserCommand::Create {
            msp,
            email,
            name,
            admin,
        } => {
            let msp = find_msp(&ctx.store, &msp).await?;
            let role = if admin {
                ConsoleRole::Admin
            } else {
                ConsoleRole::Technician
            };
            let link = accounts
                .create_user(msp.id, &actor, NewUserInput { email, name, role })
                .await
                .map_err(coded_account)?;
            println!("{}", line(&link.user));
            print_link(&link);
        }
        UserCommand::List { msp, json } => {
            let msp = find_msp(&ctx.store, &msp).await?;
            let users = accounts.list(msp.id).await.map_err(coded_account)?;
            if json {
                let rows: Vec<serde_json::Value> = users
                    .iter()
                    .map(|u| {
                        serde_json::json!({
                            "id": u.id, "email": u.email, "name": u.name,
                            "role": u.role.as_str(), "disabled": u.disabled_at.is_some(),
                            "locked_until": u.locked_until, "totp_enabled": u.totp_enabled,
                            "last_sign_in_at": u.last_sign_in_at, "created_at": u.created_at,
                        })
                    })
                    .collect();
                println!("{:#}", serde_json::Value::Array(rows));
            } else {
                users.iter().for_each(|u| println!("{}", line(u)));
            }
        }
        UserCommand::Disable { ref msp, ref user }
        | UserCommand::Enable { ref msp, ref user }
        | UserCommand::Unlock { ref msp, ref user }
        | UserCommand::Remove { ref msp, ref user }
        | UserCommand::Link { ref msp, ref user } => {
            let msp_id = find_msp(&ctx.store, msp).await?.id;
            let id = named(accounts, msp_id, user).await.map_err(coded_account)?;
            let changed = match command {
                UserCommand::Disable { .. } => accounts.disable(msp_id, &actor, id).await,
                UserCommand::Enable { .. } => accounts.enable(msp_id, &actor, id).await,
                UserCommand::Unlock { .. } => accounts.unlock(msp_id, &actor, id).await,
                UserCommand::Remove { .. } => {
                    let removed = accounts
                        .remove(msp_id, &actor, id)
                        .await
                        .map_err(coded_account)?;
                    println!("removed {}", removed.email);
                    return Ok(());
                }
                _ => {
                    let link = accounts
                        .new_setup_link(msp_id, &actor, id)
                        .await
                        .map_err(coded_account)?;
                    print_link(&link);
                    return Ok(());
                }
            }
            .map_err(coded_account)?;
            println!("{}", line(&changed));
        }
    }
    Ok(())
}

/// A technician as `vouch technician … --json` prints it (the API's fields).
fn technician_json(t: &crate::core::technicians::TechnicianView) -> serde_json::Value {
    serde_json::json!({
        "id": t.id,
        "psa_connection_id": t.psa_connection_id,
        "psa_connection_name": t.psa_connection_name,
        "psa_member_id": t.psa_member_id,
        "name": t.name,
        "email": t.email,
        "last_seen_at": t.last_seen_at,
        "blocked": t.blocked_at.is_some(),
        "blocked_at": t.blocked_at,
        "blocked_by": t.blocked_by,
    })
}

/// A connection's status as one word, with the failed check's code and when.
fn status_text(view: &crate::core::psa_connections::PsaConnectionView) -> String {
    match &view.last_test {
        None => "untested".to_owned(),
        Some(test) if test.passed => format!("passed {}", test.tested_at.to_rfc3339()),
        Some(test) => format!(
            "failed {} ({})",
            test.tested_at.to_rfc3339(),
            test.code.map(|c| c.as_str()).unwrap_or_default()
        ),
    }
}

/// The PSA's secret for `vouch psa add`: [`PSA_SECRET_ENV`], else the first line of
/// standard input.
fn read_psa_secret() -> anyhow::Result<String> {
    if let Ok(secret) = std::env::var(PSA_SECRET_ENV)
        && !secret.trim().is_empty()
    {
        return Ok(secret.trim().to_owned());
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let line = line.trim();
    if line.is_empty() {
        return Err(anyhow!(
            "invalid_request: the PSA's secret is missing. Set {PSA_SECRET_ENV}, or write it on standard input."
        ));
    }
    Ok(line.to_owned())
}

/// A refusal as the API words it: its code, then its sentence.
fn coded(err: CoreError) -> anyhow::Error {
    anyhow!("{}: {err}", err.code())
}

/// Like [`coded`], for the company services (whose refusals may be the PSA's).
fn coded_company(err: CompanyError) -> anyhow::Error {
    anyhow!("{}: {err}", err.code())
}

/// `vouch company suggest`: the suggestions, and with `accept` (the least score) those
/// mapped. Fails (exit code 1) when any accepted suggestion failed.
async fn suggest(
    companies: &CompaniesService,
    msp_id: uuid::Uuid,
    psa_connection: Option<uuid::Uuid>,
    accept: Option<u8>,
    json: bool,
) -> anyhow::Result<()> {
    let found = companies
        .suggestions(msp_id, psa_connection)
        .await
        .map_err(coded_company)?;
    let evidence = |s: &Suggestion| {
        s.tenant
            .evidence
            .iter()
            .map(|e| e.text.clone())
            .collect::<Vec<_>>()
            .join("; ")
    };
    let chosen: Vec<&Suggestion> = match accept {
        Some(min) => found
            .suggestions
            .iter()
            .filter(|s| s.tenant.score >= min)
            .collect(),
        None => Vec::new(),
    };
    let results = if chosen.is_empty() {
        Vec::new()
    } else {
        companies
            .accept(
                msp_id,
                &command_line_actor(),
                chosen
                    .iter()
                    .map(|s| AcceptItem {
                        psa_connection_id: s.psa_connection_id,
                        psa_company_id: s.psa_company_id.clone(),
                        psa_company_name: s.psa_company_name.clone(),
                        tenant_id: s.tenant.tenant_id,
                    })
                    .collect(),
            )
            .await
            .map_err(coded_company)?
    };
    if json {
        let suggestions: Vec<serde_json::Value> = found
            .suggestions
            .iter()
            .map(|s| {
                serde_json::json!({
                    "psa_connection_id": s.psa_connection_id,
                    "psa_connection_name": s.psa_connection_name,
                    "psa_company_id": s.psa_company_id,
                    "psa_company_name": s.psa_company_name,
                    "tenant_id": s.tenant.tenant_id,
                    "tenant_name": s.tenant.tenant_name,
                    "score": s.tenant.score,
                    "confidence": s.tenant.confidence.as_str(),
                    "evidence": s.tenant.evidence.iter().map(|e| serde_json::json!({
                        "kind": e.kind.as_str(), "score": e.score, "text": e.text,
                    })).collect::<Vec<_>>(),
                    "summary": evidence(s),
                })
            })
            .collect();
        let mut out = serde_json::json!({
            "suggestions": suggestions,
            "unmatched": found.unmatched.iter().map(|u| serde_json::json!({
                "psa_connection_id": u.psa_connection_id,
                "psa_company_id": u.psa_company_id,
                "psa_company_name": u.psa_company_name,
            })).collect::<Vec<_>>(),
            "incomplete": found.shortfalls.iter().map(|f| serde_json::json!({
                "psa_connection_id": f.psa_connection_id, "tenant_id": f.tenant_id,
                "code": f.code.as_str(), "message": f.message,
            })).collect::<Vec<_>>(),
        });
        if accept.is_some() {
            out["results"] = results
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "psa_connection_id": r.psa_connection_id,
                        "psa_company_id": r.psa_company_id,
                        "outcome": r.outcome.as_str(),
                        "mapping_id": r.mapping.as_ref().map(|m| m.id),
                        "code": r.error.as_ref().map(|(code, _)| code.as_str()),
                        "message": r.error.as_ref().map(|(_, message)| message),
                    })
                })
                .collect();
        }
        println!("{out:#}");
    } else {
        for s in &found.suggestions {
            println!(
                "{} ({})  ->  {}  [score {}, {}]  connection {}\n    {}",
                s.psa_company_name,
                s.psa_company_id,
                s.tenant.tenant_name,
                s.tenant.score,
                s.tenant.confidence.as_str(),
                s.psa_connection_id,
                evidence(s)
            );
        }
        for u in &found.unmatched {
            println!(
                "{} ({})  ->  no likely tenant: map it with `vouch company map`  connection {}",
                u.psa_company_name, u.psa_company_id, u.psa_connection_id
            );
        }
        for f in &found.shortfalls {
            eprintln!("incomplete: {}: {}", f.code, f.message);
        }
        if let Some(min) = accept {
            if chosen.is_empty() {
                println!("No suggestion scores {min} or more: nothing was mapped.");
            }
            for r in &results {
                match &r.error {
                    None => println!(
                        "{} {} -> {}",
                        r.outcome.as_str(),
                        r.psa_company_id,
                        r.mapping
                            .as_ref()
                            .map(|m| m.tenant_name.as_str())
                            .unwrap_or("")
                    ),
                    Some((code, message)) => {
                        eprintln!("failed {}: {code}: {message}", r.psa_company_id)
                    }
                }
            }
        }
    }
    let failures: Vec<&(ErrorCode, String)> =
        results.iter().filter_map(|r| r.error.as_ref()).collect();
    match failures.first() {
        None => Ok(()),
        Some((code, message)) => Err(anyhow!(
            "{code}: {message} ({} of {} suggestions not accepted)",
            failures.len(),
            results.len()
        )),
    }
}

fn parse_scope(value: &str) -> Result<ApiKeyScope, String> {
    match value {
        "admin" => Ok(ApiKeyScope::Admin),
        "technician" => Ok(ApiKeyScope::Technician),
        _ => Err("the scope is `admin` or `technician`".to_owned()),
    }
}

/// The MSP named by `id_or_name` (its id, or its exact name).
async fn find_msp(store: &Store, id_or_name: &str) -> anyhow::Result<MspAccount> {
    store
        .list_msps()
        .await?
        .into_iter()
        .find(|m| m.id.to_string() == id_or_name || m.name == id_or_name)
        .ok_or_else(|| anyhow!("no MSP with id or name {id_or_name:?}; see `vouch msp list`"))
}

/// How a change made with the command line appears in the audit log.
fn command_line_actor() -> AuditActor {
    AuditActor {
        kind: ActorKind::System,
        id: None,
        name: Some("vouch command line".to_owned()),
    }
}

/// `vouch demo` without the sandbox compiled in.
#[cfg(not(feature = "sandbox"))]
async fn demo(_config: Config) -> anyhow::Result<()> {
    Err(anyhow!(
        "the sandbox is not built in: this binary was built without the `sandbox` feature \
         (cargo build --no-default-features). Rebuild with the default features to run \
         `vouch demo`."
    ))
}

#[cfg(feature = "sandbox")]
async fn demo(config: Config) -> anyhow::Result<()> {
    crate::demo::run(config).await
}

/// The settings as `vouch settings` prints them: `key = value` lines, or the API's JSON.
fn print_settings(shown: &crate::core::settings::MspSettings, json: bool) {
    if json {
        println!("{:#}", shown.to_json());
        return;
    }
    for (_, name, value) in shown.fields() {
        let text = match value {
            serde_json::Value::Null => String::new(),
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        println!("{name} = {text}");
    }
}
