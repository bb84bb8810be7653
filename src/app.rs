//! The composition root: the one place that builds the application from a `Config`.
//! `serve`, `demo`, the tests and the benchmarks all start here.

use std::sync::Arc;

use sea_orm::DatabaseBackend;

use crate::api;
use crate::config::Config;
use crate::core::directory::Directory;
use crate::core::integrations::{IntegrationsDeps, IntegrationsService, VouchApp};
use crate::core::messaging::Messenger;
use crate::core::reset::{ResetDeps, ResetService};
use crate::core::share::{ShareDeps, ShareService};
use crate::core::verification::VerificationService;
use crate::microsoft::Microsoft;
use crate::psa::PsaAdapters;
use crate::psa::notes::TicketNotes;
use crate::sms::TwilioSms;
use crate::store::Store;
use crate::telemetry::Metrics;

/// What every handler may reach.
pub struct AppContext {
    pub config: Config,
    pub store: Store,
    pub metrics: Metrics,
    pub microsoft: Microsoft,
    pub integrations: IntegrationsService,
    pub directory: Directory,
    pub verifications: VerificationService,
    pub resets: ResetService,
    pub shares: ShareService,
    /// Sends SMS and keeps a (sealed) record of each.
    pub messenger: Messenger,
    pub psa: PsaAdapters,
    /// Technicians the PSA vouched for recently, so a pod load does not write to the
    /// database every time (their "last seen" is refreshed every five minutes).
    pub technicians: moka::future::Cache<(uuid::Uuid, String), crate::store::repos::Technician>,
    /// PSA connections read recently: every pod load and pod call needs its connection, and
    /// connections change rarely (a changed one is seen within a minute).
    connections: moka::future::Cache<uuid::Uuid, crate::store::repos::PsaConnection>,
    /// Extra links shown on the landing page (the demo adds its sandbox pages).
    pub landing_links: Vec<(String, String)>,
}

impl AppContext {
    /// A PSA connection, from the short cache or the database.
    pub async fn psa_connection(
        &self,
        id: uuid::Uuid,
    ) -> Result<Option<crate::store::repos::PsaConnection>, crate::store::StoreError> {
        use crate::store::repos::PsaConnectionRepository;
        if let Some(connection) = self.connections.get(&id).await {
            return Ok(Some(connection));
        }
        let connection = self.store.get_connection(id).await?;
        if let Some(connection) = &connection {
            self.connections.insert(id, connection.clone()).await;
        }
        Ok(connection)
    }

    /// Wires the services from configuration: the only place that knows the concrete types.
    pub fn new(
        config: Config,
        store: Store,
        metrics: Metrics,
        landing_links: Vec<(String, String)>,
    ) -> AppContext {
        let microsoft = Microsoft::new(&config.microsoft, &metrics);
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
        let shared = Arc::new(store.clone());
        let integrations = IntegrationsService::new(IntegrationsDeps {
            tenants: shared.clone(),
            consent_states: shared.clone(),
            audit: shared.clone(),
            microsoft: microsoft.clone(),
            metrics: metrics.clone(),
            vouch_app: vouch_app.clone(),
            login_url: config.microsoft.login_url.clone(),
            graph_url: config.microsoft.graph_url.clone(),
            consent_redirect_url: config
                .http
                .public_url
                .join(api::consent::CALLBACK_PATH)
                .expect("a relative path joins onto the public URL"),
        });
        let directory = Directory::new(shared.clone(), microsoft.clone(), vouch_app);
        let messenger = Messenger::new(
            Arc::new(TwilioSms::new(&config.sms, &metrics)),
            shared.clone(),
        );
        let psa = PsaAdapters::new(&config, &metrics);
        let ticket_notes = TicketNotes::new(store.clone(), psa.clone());
        let verifications = VerificationService::new(
            shared.clone(),
            shared.clone(),
            directory.clone(),
            messenger.clone(),
            store.shared_keyring(),
            config.sms.default_region.clone(),
            config.http.public_url.clone(),
            std::time::Duration::from_secs(config.microsoft.connector_timeout_seconds),
        )
        .with_observer(ticket_notes.clone());
        let shares = ShareService::new(ShareDeps {
            shares: shared.clone(),
            msps: shared.clone(),
            audit: shared.clone(),
            public_url: config.http.public_url.clone(),
        });
        let resets = ResetService::new(ResetDeps {
            verifications: shared.clone(),
            resets: shared.clone(),
            tenants: shared.clone(),
            audit: shared,
            directory: directory.clone(),
            verification_service: verifications.clone(),
            shares: shares.clone(),
            messenger: messenger.clone(),
            observer: Some(ticket_notes),
        });
        AppContext {
            config,
            store,
            metrics,
            microsoft,
            integrations,
            directory,
            verifications,
            resets,
            shares,
            messenger,
            psa,
            technicians: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(std::time::Duration::from_secs(300))
                .build(),
            connections: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(std::time::Duration::from_secs(60))
                .build(),
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
