//! Storage: sea-orm over SQLite (the embedded default) or PostgreSQL (production, several
//! instances behind a load balancer). One file per aggregate, each adding methods to
//! [`Store`] that take and return domain records, never sea-orm models. There are no
//! repository traits: the rules that matter (push limits, one reset per verification and per
//! key, single-use shares) are enforced by SQL, so the tests run them on both real databases
//! instead of on in-memory fakes that could disagree with SQL.

pub mod access;
pub mod audit;
pub mod changes;
pub mod console_users;
pub mod crypto;
pub mod entities;
pub mod holds;
pub mod instances;
pub mod logos;
pub mod mappings;
pub mod migration;
pub mod msp;
pub mod outbound;
pub mod psa_connections;
pub mod resets;
pub mod rotation;
pub mod shares;
pub mod tenants;
pub mod verifications;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, DbErr,
};
use sea_orm_migration::MigratorTrait;

use crate::config::DatabaseConfig;
use crypto::Keyring;
use migration::Migrator;

/// Where each sealed column lives; `vouch rotate-key` walks this list, so a new sealed
/// column must be added here.
pub const SEALED_COLUMNS: &[(&str, &str)] = &[
    ("psa_connections", "credentials_sealed"),
    ("tenant_integrations", "secret_sealed"),
    ("secure_shares", "content_sealed"),
    ("outbound_messages", "body_sealed"),
    ("password_resets", "password_sealed"),
    ("password_resets", "link_sealed"),
    ("console_users", "totp_secret_sealed"),
];

/// A unique-index violation is a conflict on `what`; anything else is a database error.
pub(crate) fn conflict_or(err: sea_orm::DbErr, what: &'static str) -> StoreError {
    match err.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => StoreError::Conflict(what),
        _ => StoreError::Database(err),
    }
}

/// A storage failure. Messages never carry secret values: sealed columns hold ciphertext only.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] DbErr),
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("a stored secret cannot be opened: {0}")]
    Sealed(#[from] crypto::OpenError),
    #[error("cannot prepare the database location {path}: {reason}")]
    Location { path: String, reason: String },
}

/// The database and the keyring that seals secrets stored in it.
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    keyring: Arc<Keyring>,
    readiness: Arc<ReadinessMemory>,
    /// Test-only: see [`Store::simulate_unreachable`].
    unreachable: Arc<std::sync::atomic::AtomicBool>,
    /// How this instance learns of changes pod sessions cache (see [`changes`]).
    changes: Arc<changes::ChangeFeed>,
}

/// What the connection pool was built with (see [`Store::pool_settings`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

/// Whether the database can serve requests. Only the answer leaves the process: the cause
/// (driver text, the database's name) goes to the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    NotReady,
}

impl Readiness {
    pub fn is_ready(self) -> bool {
        self == Readiness::Ready
    }
}

/// What readiness checks remember between calls: the cause last logged, so a lasting
/// problem is logged once, not on every probe.
#[derive(Default)]
struct ReadinessMemory {
    last_problem: Mutex<Option<String>>,
}

impl Store {
    pub async fn connect(
        config: &DatabaseConfig,
        keyring: Arc<Keyring>,
    ) -> Result<Store, StoreError> {
        prepare_sqlite_location(&config.url)?;
        let mut options = ConnectOptions::new(sqlite_create_if_missing(&config.url));
        options
            .max_connections(config.max_connections)
            .min_connections(1)
            .connect_timeout(Duration::from_secs(config.connect_timeout_seconds))
            .acquire_timeout(Duration::from_secs(config.acquire_timeout_seconds))
            // Statements are logged by our own spans; sqlx's per-statement logging would
            // include bound values.
            .sqlx_logging(false);
        let db = Database::connect(options).await?;
        let changes = match (db.get_database_backend(), sqlite_path(&config.url)) {
            (DatabaseBackend::Postgres, _) => changes::ChangeFeed::notify(),
            (_, Some(path)) => changes::ChangeFeed::stamp_file(path),
            (_, None) => changes::ChangeFeed::local(),
        };
        Ok(Store {
            db,
            keyring,
            readiness: Arc::default(),
            unreachable: Arc::default(),
            changes: Arc::new(changes),
        })
    }

    /// How this instance learns of changes that pod sessions cache.
    pub fn changes(&self) -> &changes::ChangeFeed {
        &self.changes
    }

    /// Starts hearing other instances' changes, where they travel by PostgreSQL notifications
    /// (nothing to start on SQLite). Until it is connected, pod sessions check the database.
    pub fn watch_changes(&self) -> Option<tokio::task::JoinHandle<()>> {
        if !self.changes.needs_listener() {
            return None;
        }
        let pool = self.db.get_postgres_connection_pool().clone();
        Some(tokio::spawn(changes::listen(pool, self.changes.clone())))
    }

    /// Commits `txn`, a change to something pod sessions cache, and announces it to every
    /// instance (on PostgreSQL the notification is part of the transaction, so it is sent
    /// exactly when the change is committed).
    pub(crate) async fn commit_announced(
        &self,
        txn: sea_orm::DatabaseTransaction,
    ) -> Result<(), StoreError> {
        use sea_orm::ConnectionTrait;
        if txn.get_database_backend() == DatabaseBackend::Postgres {
            txn.execute_unprepared(&format!("NOTIFY {}", changes::CHANNEL))
                .await?;
        }
        txn.commit().await?;
        self.changes.announced_here();
        Ok(())
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    pub fn shared_keyring(&self) -> Arc<Keyring> {
        self.keyring.clone()
    }

    /// The pool's size and acquire timeout, as the pool was built (`database.*`).
    pub fn pool_settings(&self) -> PoolSettings {
        let (max_connections, acquire_timeout) = match self.db.get_database_backend() {
            DatabaseBackend::Postgres => {
                let options = self.db.get_postgres_connection_pool().options();
                (options.get_max_connections(), options.get_acquire_timeout())
            }
            _ => {
                let options = self.db.get_sqlite_connection_pool().options();
                (options.get_max_connections(), options.get_acquire_timeout())
            }
        };
        PoolSettings {
            max_connections,
            acquire_timeout,
        }
    }

    pub fn backend(&self) -> DatabaseBackend {
        self.db.get_database_backend()
    }

    /// Applies pending migrations. Several instances may start together against one
    /// PostgreSQL database: when another instance wins the race, our attempt fails, so we look
    /// again and succeed once nothing is pending.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut attempt = 0;
        loop {
            match Migrator::up(&self.db, None).await {
                Ok(()) => return Ok(()),
                Err(err) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                    if Migrator::get_pending_migrations(&self.db)
                        .await
                        .map(|pending| pending.is_empty())
                        .unwrap_or(false)
                    {
                        return Ok(());
                    }
                    if attempt >= 3 {
                        return Err(err.into());
                    }
                }
            }
        }
    }

    /// Whether the database is reachable and migrated. The migration table is only read:
    /// `Migrator::get_pending_migrations` issues `CREATE TABLE IF NOT EXISTS` three times per
    /// call, and on PostgreSQL each logs an INFO notice ("relation already exists"), three
    /// lines per probe.
    pub async fn readiness(&self) -> Readiness {
        let problem = match self.readiness_problem().await {
            None => {
                if self.remember_problem(None) {
                    tracing::info!("the database is ready");
                }
                return Readiness::Ready;
            }
            Some(problem) => problem,
        };
        if self.remember_problem(Some(&problem)) {
            tracing::warn!(problem = %problem, "not ready");
        }
        Readiness::NotReady
    }

    async fn readiness_problem(&self) -> Option<String> {
        if let Err(err) = self.db.execute_unprepared("SELECT 1").await {
            return Some(format!("database unreachable: {err}"));
        }
        match Migrator::get_pending_migrations_read_only(&self.db).await {
            Ok(pending) if pending.is_empty() => None,
            Ok(pending) => {
                let names: Vec<&str> = pending.iter().map(|m| m.name()).collect();
                Some(format!(
                    "migrations pending ({}): run `vouch migrate`",
                    names.join(", ")
                ))
            }
            Err(err) => Some(format!("cannot read the migration table: {err}")),
        }
    }

    /// Records the current problem; true when it differs from the last one recorded (the
    /// first success after start-up counts only after a problem).
    fn remember_problem(&self, problem: Option<&str>) -> bool {
        let mut last = self
            .readiness
            .last_problem
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if last.as_deref() == problem {
            return false;
        }
        *last = problem.map(str::to_owned);
        true
    }

    /// Test-only fault switch (the sandbox feature, which the tests build with): while on,
    /// reading a verification and writing a verification's decision fail as they do when the
    /// database cannot be reached (a connection error), on every clone of this store. The
    /// rest of the store works, so a test can still look at the database underneath.
    #[cfg(feature = "sandbox")]
    pub fn simulate_unreachable(&self, unreachable: bool) {
        self.unreachable
            .store(unreachable, std::sync::atomic::Ordering::SeqCst);
    }

    /// Fails when the fault switch says the database is unreachable.
    pub(crate) fn reachable(&self) -> Result<(), StoreError> {
        if self.unreachable.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Database(DbErr::Conn(
                sea_orm::RuntimeErr::Internal("the database is unreachable (simulated)".into()),
            )));
        }
        Ok(())
    }

    pub async fn close(self) -> Result<(), StoreError> {
        self.db.close().await?;
        Ok(())
    }
}

/// SQLite creates the database file on first use, but not its directory.
fn prepare_sqlite_location(url: &str) -> Result<(), StoreError> {
    let Some(path) = sqlite_path(url) else {
        return Ok(());
    };
    if let Some(parent) = Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(|err| StoreError::Location {
            path: parent.display().to_string(),
            reason: err.to_string(),
        })?;
    }
    Ok(())
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// `sqlite://file.db` alone refuses to create a missing file; Vouch's default is to create it.
fn sqlite_create_if_missing(url: &str) -> String {
    if url.starts_with("sqlite:") && !url.contains("mode=") {
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}mode=rwc")
    } else {
        url.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_get_create_mode_and_paths() {
        assert_eq!(
            sqlite_create_if_missing("sqlite://a/b.db"),
            "sqlite://a/b.db?mode=rwc"
        );
        assert_eq!(
            sqlite_create_if_missing("sqlite://a.db?mode=ro"),
            "sqlite://a.db?mode=ro"
        );
        assert_eq!(sqlite_create_if_missing("postgres://x/y"), "postgres://x/y");
        assert_eq!(
            sqlite_path("sqlite://vouch-data/vouch.db?mode=rwc"),
            Some("vouch-data/vouch.db")
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
    }
}
