//! A PSA connection keeps its last test: when it ran and its checks (each passed, failed with
//! its code and sentence, or skipped). Kept in columns of its own, not in `settings`, so that
//! recording a test changes neither the connection's configuration nor its `updated_at` (the
//! version an edit is checked against), and an edit of the credentials clears it in the same
//! statement. Both are null until the first test.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{json_null, timestamp_with_time_zone_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PsaConnections {
    Table,
    LastTestedAt,
    LastTest,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column a statement: SQLite adds one column per ALTER TABLE.
        manager
            .alter_table(
                Table::alter()
                    .table(PsaConnections::Table)
                    .add_column(timestamp_with_time_zone_null(PsaConnections::LastTestedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(PsaConnections::Table)
                    .add_column(json_null(PsaConnections::LastTest))
                    .to_owned(),
            )
            .await
    }
}
