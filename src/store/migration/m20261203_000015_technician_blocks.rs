//! An MSP admin can block a technician's Vouch actions: when (`blocked_at`, `NULL` when not
//! blocked) and by whom (`blocked_by`, the admin's name as the audit log gives it).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{string_null, timestamp_with_time_zone_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Technicians {
    Table,
    BlockedAt,
    BlockedBy,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one column per ALTER TABLE.
        manager
            .alter_table(
                Table::alter()
                    .table(Technicians::Table)
                    .add_column(timestamp_with_time_zone_null(Technicians::BlockedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Technicians::Table)
                    .add_column(string_null(Technicians::BlockedBy))
                    .to_owned(),
            )
            .await
    }
}
