//! The `vouch` command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use clap::{Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};

use crate::app::AppContext;
use crate::config::{Config, LogFormat};
use crate::server;
use crate::store::Store;
use crate::store::access::ApiKeyRepository;
use crate::store::crypto::{Keyring, MasterKey};
use crate::store::repos::{MspPolicy, MspRepository, NewMspAccount};
use crate::telemetry::{self, Metrics};

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
    /// Run Vouch with the sandbox upstreams and a seeded demo MSP, on SQLite under ./vouch-data/.
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
            let store = open_store(&config).await?;
            store.migrate().await.context("migrating the database")?;
            run_server(config, store, Vec::new()).await
        }
        Command::Demo => crate::demo::run(config).await,
        Command::Msp(command) => {
            let store = open_store(&config).await?;
            store.migrate().await?;
            match command {
                MspCommand::Create { name } => {
                    let name = name.trim();
                    if name.is_empty() {
                        return Err(anyhow!("--name must not be empty"));
                    }
                    let msp = store
                        .create_msp(NewMspAccount {
                            name: name.to_owned(),
                            brand_logo_url: None,
                            brand_color: None,
                            policy: MspPolicy::default(),
                        })
                        .await?;
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
        Command::ApiKey(ApiKeyCommand::Create { msp, name }) => {
            let store = open_store(&config).await?;
            store.migrate().await?;
            let msps = store.list_msps().await?;
            let found = msps
                .iter()
                .find(|m| m.id.to_string() == msp || m.name == msp)
                .ok_or_else(|| anyhow!("no MSP with id or name {msp:?}; see `vouch msp list`"))?;
            let (_, key) = store.create_api_key(found.id, &name).await?;
            println!("{}", key.expose_secret());
            eprintln!(
                "This key is shown only once: store it now. It acts for {}.",
                found.name
            );
            Ok(())
        }
    }
}

/// The keyring from configuration; `serve` refuses to start without a master key.
pub fn keyring_from(config: &Config) -> anyhow::Result<Keyring> {
    let encoded = config.encryption.master_key.as_ref().ok_or_else(|| {
        anyhow!(
            "encryption.master_key is not set. Generate one with `vouch rotate-key --generate` \
             and set it as VOUCH__ENCRYPTION__MASTER_KEY (or VOUCH__ENCRYPTION__MASTER_KEY_FILE)."
        )
    })?;
    let active = MasterKey::parse(encoded).map_err(|err| anyhow!("encryption.master_key {err}"))?;
    let previous = config
        .encryption
        .previous_keys
        .iter()
        .map(MasterKey::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| anyhow!("encryption.previous_keys {err}"))?;
    Ok(Keyring::new(active, previous))
}

pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let keyring = Arc::new(keyring_from(config)?);
    Store::connect(&config.database, keyring)
        .await
        .with_context(|| {
            format!(
                "connecting to the database {}",
                crate::config::redact_url_password(&config.database.url)
            )
        })
}

pub async fn run_server(
    config: Config,
    store: Store,
    landing_links: Vec<(String, String)>,
) -> anyhow::Result<()> {
    let ctx = Arc::new(AppContext::new(
        config,
        store,
        Metrics::new(),
        landing_links,
    ));
    serve_context(ctx).await
}

/// Serves `ctx` until SIGTERM / Ctrl-C, renewing connector credentials in the background.
pub async fn serve_context(ctx: Arc<AppContext>) -> anyhow::Result<()> {
    let acceptor = server::bind(ctx.config.http.bind)
        .await
        .with_context(|| format!("listening on http.bind = {}", ctx.config.http.bind))?;
    let addr = server::local_addr(&acceptor);
    tracing::info!(addr = ?addr, public_url = %ctx.config.http.public_url, "listening");
    let renewal = tokio::spawn(renew_credentials_periodically(ctx.clone()));
    server::serve(ctx.clone(), acceptor, server::shutdown_signal()).await?;
    renewal.abort();
    ctx.store.clone().close().await?;
    tracing::info!("stopped");
    Ok(())
}

/// Connector credentials are renewed well before they end; hourly is plenty, and every
/// instance may do it (renewal of an already-renewed credential finds nothing due).
async fn renew_credentials_periodically(ctx: Arc<AppContext>) {
    let mut interval = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        interval.tick().await;
        match ctx
            .integrations
            .renew_connector_credentials(chrono::Utc::now())
            .await
        {
            Ok(0) => {}
            Ok(renewed) => tracing::info!(renewed, "renewed MFA connector credentials"),
            Err(err) => tracing::warn!(
                code = err.code().as_str(),
                "connector credential renewal failed"
            ),
        }
    }
}

/// `demo` reads people-friendly logs unless told otherwise.
pub fn prefer_pretty_logs(config: &mut Config, env: &[(String, String)]) {
    let explicit = env.iter().any(|(name, _)| name == "VOUCH__LOG__FORMAT");
    if !explicit {
        config.log.format = LogFormat::Pretty;
    }
}

/// Reads or creates the demo master key file.
pub fn demo_master_key(path: &std::path::Path) -> anyhow::Result<(SecretString, bool)> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        return Ok((SecretString::from(existing.trim().to_owned()), false));
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let key = MasterKey::generate_encoded();
    write_private_file(path, key.expose_secret())?;
    Ok((key, true))
}

fn write_private_file(path: &std::path::Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(content.as_bytes())?;
    file.write_all(b"\n")
}
