//! Shared test harness: fresh databases on every backend, and Vouch started on port 0.
//!
//! SQLite always; PostgreSQL too when `VOUCH_TEST_DATABASE_URL` is set (`.ci/run` sets it).
//! Each PostgreSQL test gets a database of its own, so tests run in parallel.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use sea_orm::{ConnectionTrait, Database};
use vouch::app::{App, AppContext, AppOptions, RunningApp};
use vouch::config::Config;
use vouch::store::Store;
use vouch::store::crypto::{Keyring, MasterKey};

pub mod console;
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

/// Vouch running in this process on a free port, built by the composition root.
pub struct TestApp {
    pub base_url: String,
    pub store: Store,
    pub ctx: Arc<AppContext>,
    pub client: reqwest::Client,
    running: RunningApp,
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
        // VOUCH_TEST_LOG=debug (say) shows Vouch's logs while a test runs.
        if let Ok(filter) = std::env::var("VOUCH_TEST_LOG") {
            vouch::telemetry::init_logging(&vouch::config::LogConfig {
                format: vouch::config::LogFormat::Pretty,
                filter,
            });
        }
        let options = AppOptions {
            migrate,
            ..AppOptions::default()
        };
        let running = App::build_with(config, options)
            .await
            .expect("Vouch builds over the test database")
            .start()
            .await
            .expect("Vouch listens on a free port");
        let ctx = running.context().clone();
        TestApp {
            base_url: running.base_url(),
            store: ctx.store.clone(),
            ctx,
            client: reqwest::Client::new(),
            running,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// Stops gracefully: in-flight requests finish, background jobs end, the pool closes.
    pub async fn stop(self) {
        self.running.stop().await.expect("Vouch stops cleanly");
    }
}

/// A port that was free a moment ago (for spawning the binary, which cannot report port 0).
pub fn free_port() -> u16 {
    // Taken below the kernel's ephemeral range (32768 and up), where every `bind(0)` (the
    // sandboxes, the clients) lands: a port found free here is not handed to anyone else
    // before its test binds it (asking the kernel for one raced: "Address already in use").
    // Each call of this process tries the next port, so two tests never get the same one.
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    loop {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + (std::process::id().wrapping_mul(97).wrapping_add(offset) % 12_000);
        let port = u16::try_from(port).expect("below 32000");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Retries `attempt` until it gives `Some`, for what another process learns of a change by a
/// PostgreSQL notification: milliseconds after the commit, which may be after the test's next
/// request (on SQLite the stamp file makes it strictly at once). Fails after 5 seconds.
pub async fn eventually<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        if let Some(done) = attempt().await {
            return done;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not seen within 5 seconds"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
