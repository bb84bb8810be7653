//! Running a test on every database backend, and reading what a backend really stored.
//!
//! Kept apart from `common` so that `tests/limits.rs` and `tests/tracing.rs`, which do not need
//! it, need not compile it.
#![allow(dead_code)]

use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use sea_orm::{ConnectionTrait, Statement};
use vouch::store::Store;

use crate::common::{Backend, TestDb};

/// Runs `test` on every backend the run covers (SQLite, and PostgreSQL when configured), side
/// by side: each run has its own database, so PostgreSQL's slower setup overlaps SQLite's run
/// rather than adding to it. A failure names its backend.
pub async fn on_every_backend(test: impl AsyncFn(&TestDb)) {
    let dbs = TestDb::all().await;
    let runs = dbs
        .iter()
        .map(|db| AssertUnwindSafe(test(db)).catch_unwind());
    let outcomes = futures_util::future::join_all(runs).await;
    for (db, outcome) in dbs.iter().zip(outcomes) {
        if let Err(panic) = outcome {
            eprintln!("the test failed on {:?}", db.backend);
            std::panic::resume_unwind(panic);
        }
    }
}

/// Everything the database holds, as bytes: the raw SQLite files (checkpointed first), or
/// every row of every table on PostgreSQL.
pub async fn raw_database_contents(db: &TestDb, store: &Store) -> Vec<u8> {
    let conn = store.connection();
    match db.backend {
        Backend::Sqlite => {
            // Make sure everything reached the file rather than a cache.
            conn.execute_unprepared("PRAGMA wal_checkpoint(FULL)")
                .await
                .ok();
            let file = db.sqlite_file.clone().unwrap();
            let mut bytes = Vec::new();
            for suffix in ["", "-wal", "-journal", "-shm"] {
                if let Ok(content) = std::fs::read(format!("{}{suffix}", file.display())) {
                    bytes.extend(content);
                }
            }
            bytes
        }
        Backend::Postgres => {
            let backend = conn.get_database_backend();
            let tables = conn
                .query_all_raw(Statement::from_string(
                    backend,
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
                ))
                .await
                .unwrap();
            let mut text = String::new();
            for row in tables {
                let table: String = row.try_get("", "table_name").unwrap();
                for row in conn
                    .query_all_raw(Statement::from_string(
                        backend,
                        format!("SELECT row_to_json(t)::text AS row FROM \"{table}\" t"),
                    ))
                    .await
                    .unwrap()
                {
                    text.push_str(&row.try_get::<String>("", "row").unwrap());
                    text.push('\n');
                }
            }
            text.into_bytes()
        }
    }
}

/// Whether `needle` occurs anywhere in `haystack`.
pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}
