//! The composition root: the one place that builds the application from a `Config`.
//! `serve`, `demo`, the tests and the benchmarks all start here, and nothing else wires
//! services: the store (and its keyring), the Microsoft, PSA and SMS clients, the services,
//! the caches and the background jobs.
//!
//! ```text
//! App::build(config)  ->  App          (store open and migrated, services wired)
//! app.start()         ->  RunningApp   (listening, background jobs running)
//! running.stop()                       (graceful: in-flight requests finish, jobs end)
//! ```

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use sea_orm::DatabaseBackend;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::api;
use crate::config::Config;
use crate::core::companies::{CompaniesDeps, CompaniesService};
use crate::core::directory::Directory;
use crate::core::integrations::{IntegrationsDeps, IntegrationsService, VouchApp};
use crate::core::messaging::Messenger;
use crate::core::pod::{PodDeps, PodService};
use crate::core::psa_connections::{PsaConnectionDeps, PsaConnectionService};
use crate::core::reset::{ResetDeps, ResetService, ResetSettings};
use crate::core::setup::SetupService;
use crate::core::share::{ShareDelivery, ShareDeps, ShareService};
use crate::core::verification::VerificationService;
use crate::microsoft::Microsoft;
use crate::psa::PsaAdapters;
use crate::psa::notes::TicketNotes;
use crate::server;
use crate::sms::TwilioSms;
use crate::store::Store;
use crate::store::crypto::{Keyring, MasterKey};
use crate::telemetry::Metrics;

/// Connector credentials are renewed well before they end; hourly is plenty, and every
/// instance may do it (renewal of an already-renewed credential finds nothing due).
const CREDENTIAL_RENEWAL_INTERVAL: Duration = Duration::from_secs(3600);

/// What the application is built with beyond its configuration.
#[derive(Debug, Clone)]
pub struct AppOptions {
    /// Apply pending database migrations before wiring (`serve` and `demo` do; a test of
    /// readiness before migration does not).
    pub migrate: bool,
    /// Extra links shown on the landing page (the demo adds its sandbox pages).
    pub landing_links: Vec<(String, String)>,
}

impl Default for AppOptions {
    fn default() -> Self {
        AppOptions {
            migrate: true,
            landing_links: Vec::new(),
        }
    }
}

/// The whole application, wired and not yet serving.
pub struct App {
    ctx: Arc<AppContext>,
}

impl App {
    /// Opens the store with the configured keyring, applies pending migrations and wires
    /// every service.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        Self::build_with(config, AppOptions::default()).await
    }

    /// Like [`App::build`], with the given options.
    pub async fn build_with(config: Config, options: AppOptions) -> anyhow::Result<App> {
        let store = open_store(&config).await?;
        if options.migrate {
            store.migrate().await.context("migrating the database")?;
        }
        let ctx = AppContext::new(config, store, Metrics::new(), options.landing_links);
        Ok(App { ctx: Arc::new(ctx) })
    }

    /// What the handlers reach: for set-up done before serving (the demo's seeding).
    pub fn context(&self) -> &Arc<AppContext> {
        &self.ctx
    }

    /// Listens on `http.bind` (port 0 picks a free port) and starts the background jobs.
    pub async fn start(self) -> anyhow::Result<RunningApp> {
        let ctx = self.ctx;
        server::raise_open_file_limit();
        let bind = ctx.config.http.bind;
        let acceptor = server::bind(bind)
            .await
            .with_context(|| format!("listening on http.bind = {bind}"))?;
        let addr = server::local_addr(&acceptor)
            .ok_or_else(|| anyhow!("http.bind = {bind} gave no socket address"))?;
        tracing::info!(%addr, public_url = %ctx.config.http.public_url, "listening");
        let (shutdown, stopped) = oneshot::channel::<()>();
        let serving = tokio::spawn(server::serve(ctx.clone(), acceptor, async move {
            // A dropped sender stops the server as well.
            let _ = stopped.await;
        }));
        // This instance exists before it serves; pushes that a stopped instance left pending
        // are interrupted before anyone asks.
        // Best effort: a database that is down or not yet migrated must not stop Vouch from
        // serving (`/readyz` says it is not ready); the heartbeat job tries again.
        match ctx.verifications.beat().await {
            Ok(()) => {
                if let Err(err) = ctx
                    .verifications
                    .interrupt_orphaned(crate::store::instances::OrphanScope::All)
                    .await
                {
                    tracing::warn!(
                        code = err.code().as_str(),
                        "interrupting orphaned pushes failed"
                    );
                }
            }
            Err(err) => tracing::warn!(code = err.code().as_str(), "first heartbeat failed"),
        }
        let mut jobs = vec![
            tokio::spawn(beat_heartbeat_periodically(ctx.clone())),
            tokio::spawn(renew_credentials_periodically(ctx.clone())),
            tokio::spawn(sweep_abandoned_resets_periodically(ctx.clone())),
            tokio::spawn(sweep_console_sessions_periodically(ctx.clone())),
        ];
        // Other instances' changes (PostgreSQL); nothing to run on SQLite.
        jobs.extend(ctx.store.watch_changes());
        Ok(RunningApp {
            ctx,
            addr,
            shutdown: Some(shutdown),
            serving: Some(serving),
            jobs,
        })
    }
}

/// The application serving: its address, and the way to stop it.
pub struct RunningApp {
    ctx: Arc<AppContext>,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    serving: Option<JoinHandle<std::io::Result<()>>>,
    jobs: Vec<JoinHandle<()>>,
}

impl RunningApp {
    /// The bound address (the real port when `http.bind` asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://` and the bound address, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn context(&self) -> &Arc<AppContext> {
        &self.ctx
    }

    /// Serves until `signal` resolves (or the server fails), then stops.
    pub async fn run_until(mut self, signal: impl Future<Output = ()>) -> anyhow::Result<()> {
        let serving = self.serving.as_mut().expect("a running app is serving");
        tokio::select! {
            () = signal => {}
            ended = serving => {
                self.serving = None;
                self.stop().await?;
                ended.context("the server task")?.context("serving HTTP")?;
                return Err(anyhow!("the server stopped on its own"));
            }
        }
        self.stop().await
    }

    /// Stops accepting connections, lets in-flight requests finish (for at most
    /// `http.shutdown_grace_seconds`), ends the background jobs and closes the database.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let served = match self.serving.take() {
            Some(serving) => serving.await.context("the server task")?,
            None => Ok(()),
        };
        for job in std::mem::take(&mut self.jobs) {
            job.abort();
            let _ = job.await;
        }
        self.ctx.store.clone().close().await?;
        tracing::info!("stopped");
        served.context("serving HTTP")
    }
}

impl Drop for RunningApp {
    /// An app dropped without `stop` (a test that panicked) still stops serving and ends its
    /// jobs; only the graceful wait is skipped.
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        for job in &self.jobs {
            job.abort();
        }
    }
}

/// Renews MFA connector credentials that are due, now and then every hour.
async fn renew_credentials_periodically(ctx: Arc<AppContext>) {
    let mut interval = tokio::time::interval(CREDENTIAL_RENEWAL_INTERVAL);
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

/// Beats this instance's heartbeat, so that the pushes it waits on count as waited on.
async fn beat_heartbeat_periodically(ctx: Arc<AppContext>) {
    let mut interval = tokio::time::interval(crate::core::verification::HEARTBEAT_EVERY);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if let Err(err) = ctx.verifications.beat().await {
            tracing::warn!(code = err.code().as_str(), "heartbeat failed");
        }
    }
}

/// Finishes the resets a stopped instance left in progress: at start-up, then every
/// `resets.sweep_interval_seconds`. Every instance sweeps; each reset is taken by one.
async fn sweep_abandoned_resets_periodically(ctx: Arc<AppContext>) {
    let every = Duration::from_secs(ctx.config.resets.sweep_interval_seconds.max(1));
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        match ctx.resets.sweep_abandoned(chrono::Utc::now()).await {
            Ok(0) => {}
            Ok(swept) => tracing::info!(swept, "finished abandoned password resets"),
            Err(err) => tracing::warn!(
                code = err.code().as_str(),
                "sweeping abandoned password resets failed"
            ),
        }
    }
}

/// Deletes ended console sessions (past their absolute or idle timeout) now and then; an
/// ended session is refused on use anyway, this only keeps the table small.
async fn sweep_console_sessions_periodically(ctx: Arc<AppContext>) {
    let mut interval = tokio::time::interval(Duration::from_secs(600));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let idle_since = chrono::Utc::now() - ctx.accounts.settings().idle_timeout;
        if let Err(err) = ctx.store.delete_expired_console_sessions(idle_since).await {
            tracing::warn!(error = %err, "sweeping ended console sessions failed");
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

/// The store alone, with the configured keyring, not migrated: for the commands that need
/// the database but no services (`migrate`, `rotate-key`, `msp`, `api-key`).
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

/// What every handler may reach.
pub struct AppContext {
    pub config: Config,
    pub store: Store,
    pub metrics: Metrics,
    pub integrations: IntegrationsService,
    pub directory: Directory,
    pub verifications: VerificationService,
    pub resets: ResetService,
    /// Secure shares, for the API and the share pages.
    pub shares: ShareService,
    /// Sends SMS and keeps a (sealed) record of each.
    pub messenger: Messenger,
    pub psa: PsaAdapters,
    /// The pod's sessions, ticket lookups and shield.
    pub pods: PodService,
    /// The MSP's branding and policies.
    pub settings: crate::core::settings::SettingsService,
    /// The MSP's PSA connections (create, change, delete, set-up values).
    pub psa_connections: PsaConnectionService,
    /// Company mappings, tenants and API keys, as the MSP admin sets them up.
    pub setup: SetupService,
    /// The technicians the PSAs vouched for, and blocking them.
    pub technicians: crate::core::technicians::TechnicianService,
    /// The audit log as the console reads it (filters, names, ticket links, CSV).
    pub audit: crate::core::audit::AuditService,
    /// What the console's home shows at a glance.
    pub overview: crate::core::overview::OverviewService,
    /// The PSA's companies, and suggested company mappings.
    pub companies: CompaniesService,
    /// The MSP console's users, sign-in and sessions.
    pub accounts: crate::core::accounts::AccountsService,
    /// Extra links shown on the landing page (the demo adds its sandbox pages).
    pub landing_links: Vec<(String, String)>,
}

impl AppContext {
    /// A PSA connection, from the pod service's short cache or the database.
    pub async fn psa_connection(
        &self,
        id: uuid::Uuid,
    ) -> Result<Option<Arc<crate::store::psa_connections::PsaConnection>>, crate::store::StoreError>
    {
        self.pods.connection(id).await
    }

    /// Wires the services from configuration: the only place that knows the concrete types.
    fn new(
        config: Config,
        store: Store,
        metrics: Metrics,
        landing_links: Vec<(String, String)>,
    ) -> AppContext {
        let microsoft = Microsoft::new(&config.microsoft, config.cache.microsoft_tokens, &metrics);
        let vouch_app = match (
            &config.microsoft.app_client_id,
            &config.microsoft.app_client_secret,
        ) {
            (Some(client_id), Some(client_secret)) => Some(VouchApp {
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
            }),
            _ => None,
        };
        let integrations = IntegrationsService::new(IntegrationsDeps {
            store: store.clone(),
            microsoft: microsoft.clone(),
            metrics: metrics.clone(),
            vouch_app: vouch_app.clone(),
            login_url: config.microsoft.endpoints().login_url,
            graph_scope: config.microsoft.endpoints().graph_scope,
            consent_redirect_url: config
                .http
                .public_url
                .join(api::consent::CALLBACK_PATH)
                .expect("a relative path joins onto the public URL"),
        });
        let directory = Directory::new(
            store.clone(),
            microsoft.clone(),
            vouch_app,
            config.cache.microsoft_users,
        )
        .with_search_cache(config.cache.contact_searches);
        let messenger = Messenger::new(
            Arc::new(TwilioSms::new(&config.sms, &metrics)),
            store.clone(),
        );
        // The PSA adapters take their caches (`cache.tickets`, `cache.halopsa_*`,
        // `cache.autotask_*`) from the configuration, like the rest of their settings.
        let psa = PsaAdapters::new(&config, &metrics);
        let ticket_notes = TicketNotes::new(store.clone(), psa.clone());
        let verifications = VerificationService::new(
            store.clone(),
            directory.clone(),
            messenger.clone(),
            store.shared_keyring(),
            config.sms.default_region.clone(),
            config.http.public_url.clone(),
            std::time::Duration::from_secs(config.microsoft.connector_timeout_seconds),
        )
        .with_observer(ticket_notes.clone())
        .with_user_checks_cache(config.cache.user_checks);
        let shares = ShareService::new(ShareDeps {
            store: store.clone(),
            public_url: config.http.public_url.clone(),
        })
        .with_delivery(ShareDelivery {
            directory: directory.clone(),
            verifications: verifications.clone(),
            messenger: messenger.clone(),
        });
        let resets = ResetService::new(ResetDeps {
            store: store.clone(),
            directory: directory.clone(),
            verification_service: verifications.clone(),
            shares: shares.clone(),
            messenger: messenger.clone(),
            observer: Some(ticket_notes),
            settings: ResetSettings::from_config(&config.resets),
        });
        let pods = PodService::new(PodDeps {
            store: store.clone(),
            keyring: store.shared_keyring(),
            psa: psa.clone(),
            directory: directory.clone(),
            verifications: verifications.clone(),
            resets: resets.clone(),
            technician_cache: config.cache.technicians,
            connection_cache: config.cache.connections,
            session_state_cache: config.cache.session_state,
            console_idle_timeout: crate::core::accounts::AccountSettings::from_config(
                &config.console,
            )
            .idle_timeout,
        });
        let psa_connections = PsaConnectionService::new(PsaConnectionDeps {
            store: store.clone(),
            psa: psa.clone(),
            pods: pods.clone(),
            public_url: config.http.public_url.clone(),
            connectwise_client_id: config.psa.connectwise.client_id.clone(),
            connectwise_default_site_url: config.psa.connectwise.default_site_url.clone(),
            autotask_zone_lookup_url: config.psa.autotask.zone_lookup_url.clone(),
        });
        let setup = SetupService::new(store.clone());
        // The company list and suggestions take their caches (`cache.psa_companies`,
        // `cache.psa_company_contacts`, `cache.tenant_domains`) from the configuration.
        let companies = CompaniesService::new(CompaniesDeps {
            store: store.clone(),
            psa: psa.clone(),
            directory: directory.clone(),
            setup: setup.clone(),
            company_pages: config.cache.psa_companies,
            company_contacts: config.cache.psa_company_contacts,
            tenant_domains: config.cache.tenant_domains,
        });
        let accounts = crate::core::accounts::AccountsService::new(
            store.clone(),
            config.http.public_url.clone(),
            crate::core::accounts::AccountSettings::from_config(&config.console),
        );
        AppContext {
            accounts,
            settings: crate::core::settings::SettingsService::new(
                store.clone(),
                config.http.public_url.clone(),
            ),
            setup,
            technicians: crate::core::technicians::TechnicianService::new(store.clone()),
            audit: crate::core::audit::AuditService::new(store.clone(), psa.clone()),
            overview: crate::core::overview::OverviewService::new(store.clone()),
            companies,
            pods,
            psa_connections,
            config,
            store,
            metrics,
            integrations,
            directory,
            verifications,
            resets,
            shares,
            messenger,
            psa,
            landing_links,
        }
    }

    pub fn database_backend(&self) -> &'static str {
        match self.store.backend() {
            DatabaseBackend::Postgres => "postgres",
            DatabaseBackend::Sqlite => "sqlite",
            _ => "other",
        }
    }
}
