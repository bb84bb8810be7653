//! A console user may be linked to their PSA technician records (`technicians.console_user_id`,
//! `NULL` when not linked), so that the audit shows one person for both. Removing the console
//! user leaves the technician unlinked (the link is looked up, never enforced by a foreign
//! key: a technician row outlives the console user).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::uuid_null;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Technicians {
    Table,
    ConsoleUserId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Technicians::Table)
                    .add_column(uuid_null(Technicians::ConsoleUserId))
                    .to_owned(),
            )
            .await
    }
}
