//! Shared test harness: fresh databases on every backend, and Vouch started on port 0.
//!
//! SQLite always; PostgreSQL too when `VOUCH_TEST_DATABASE_URL` is set (`.ci/run` sets it).
//! Each PostgreSQL test gets a database of its own, so tests run in parallel.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use sea_orm::{ConnectionTrait, Database};
use vouch::app::AppContext;
use vouch::config::Config;
use vouch::server;
use vouch::store::Store;
use vouch::store::crypto::{Keyring, MasterKey};
use vouch::telemetry::Metrics;

pub mod world;

pub const POSTGRES_ENV: &str = "VOUCH_TEST_DATABASE_URL";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty database; dropped (PostgreSQL) or deleted (SQLite) at the end.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    /// For SQLite: the database file (to scan its raw bytes).
    pub sqlite_file: Option<PathBuf>,
    _dir: Option<tempfile::TempDir>,
    pg_admin_url: Option<String>,
    pg_name: Option<String>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("vouch.db");
        TestDb {
            backend: Backend::Sqlite,
            url: format!("sqlite://{}", file.display()),
            sqlite_file: Some(file),
            _dir: Some(dir),
            pg_admin_url: None,
            pg_name: None,
        }
    }

    /// `None` when PostgreSQL tests are not requested; a panic when they are but PostgreSQL
    /// cannot be reached (CI must fail, not skip).
    pub async fn postgres() -> Option<TestDb> {
        let admin_url = std::env::var(POSTGRES_ENV).ok()?;
        let admin = Database::connect(&admin_url).await.unwrap_or_else(|err| {
            panic!("{POSTGRES_ENV} is set but PostgreSQL is unreachable at {admin_url}: {err}")
        });
        let name = format!("vouch_test_{}", uuid::Uuid::new_v4().simple());
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create a test database");
        admin.close().await.ok();
        let mut url = url::Url::parse(&admin_url).expect("VOUCH_TEST_DATABASE_URL is a URL");
        url.set_path(&format!("/{name}"));
        Some(TestDb {
            backend: Backend::Postgres,
            url: url.to_string(),
            sqlite_file: None,
            _dir: None,
            pg_admin_url: Some(admin_url),
            pg_name: Some(name),
        })
    }

    /// Every backend the run covers.
    pub async fn all() -> Vec<TestDb> {
        let mut dbs = vec![TestDb::sqlite().await];
        dbs.extend(TestDb::postgres().await);
        dbs
    }

    pub fn config(&self, keyring_key: &str) -> Config {
        let mut config = Config::default();
        config.database.url = self.url.clone();
        config.database.max_connections = 5;
        config.encryption.master_key = Some(keyring_key.to_owned().into());
        config.http.bind = "127.0.0.1:0".parse().unwrap();
        config
    }

    pub async fn store(&self, keyring: Keyring) -> Store {
        let config = self.config("unused");
        Store::connect(&config.database, Arc::new(keyring))
            .await
            .expect("connect to the test database")
    }

    pub async fn migrated_store(&self, keyring: Keyring) -> Store {
        let store = self.store(keyring).await;
        store.migrate().await.expect("migrations apply");
        store
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let (Some(admin_url), Some(name)) = (self.pg_admin_url.take(), self.pg_name.take()) {
            // Best effort, on a thread of its own: Drop cannot await.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    if let Ok(admin) = Database::connect(&admin_url).await {
                        let _ = admin
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            ))
                            .await;
                    }
                });
            })
            .join();
        }
    }
}

pub fn new_key() -> (String, MasterKey) {
    use secrecy::ExposeSecret;
    let encoded = MasterKey::generate_encoded();
    let key = MasterKey::parse(&encoded).unwrap();
    (encoded.expose_secret().to_owned(), key)
}

pub fn keyring() -> Keyring {
    Keyring::new(new_key().1, [])
}

/// Vouch running in this process on a free port.
pub struct TestApp {
    pub base_url: String,
    pub store: Store,
    pub ctx: Arc<AppContext>,
    pub client: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    /// Starts Vouch over `db`, migrating first unless `migrate` is false.
    pub async fn spawn(db: &TestDb, migrate: bool) -> TestApp {
        Self::spawn_with(db, migrate, |_| {}).await
    }

    /// Like `spawn`, with the configuration adjusted first (upstream URLs, timeouts...).
    pub async fn spawn_with(
        db: &TestDb,
        migrate: bool,
        adjust: impl FnOnce(&mut Config),
    ) -> TestApp {
        let (encoded, _) = new_key();
        let mut config = db.config(&encoded);
        adjust(&mut config);
        let key = MasterKey::parse(config.encryption.master_key.as_ref().unwrap()).unwrap();
        // VOUCH_TEST_LOG=debug (say) shows Vouch's logs while a test runs.
        if let Ok(filter) = std::env::var("VOUCH_TEST_LOG") {
            vouch::telemetry::init_logging(&vouch::config::LogConfig {
                format: vouch::config::LogFormat::Pretty,
                filter,
            });
        }
        let store = db.store(Keyring::new(key, [])).await;
        if migrate {
            store.migrate().await.expect("migrations apply");
        }
        let acceptor = server::bind(config.http.bind).await.expect("bind port 0");
        let addr = server::local_addr(&acceptor).expect("a socket address");
        let ctx = Arc::new(AppContext::new(
            config,
            store.clone(),
            Metrics::new(),
            Vec::new(),
        ));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server::serve(ctx.clone(), acceptor, async move {
            let _ = rx.await;
        }));
        TestApp {
            base_url: format!("http://{addr}"),
            store,
            ctx,
            client: reqwest::Client::new(),
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// A port that was free a moment ago (for spawning the binary, which cannot report port 0).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
