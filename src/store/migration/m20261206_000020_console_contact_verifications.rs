//! A verification records the console user who started it (`verifications.console_user_id`,
//! `NULL` for PSA technicians and API keys). A verification started from the console's
//! Contacts page has no PSA connection, ticket or technician record, so this column is what
//! binds it to where it was made: a reset from a contact's page spends only a verification
//! of that user made there by the same console user (see `core::pod`). Like the technician
//! link (migration 000019), it is looked up, never a foreign key: a verification outlives
//! the console user. Indexed with `created_at` for the per-person push limit.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::uuid_null;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Verifications {
    Table,
    ConsoleUserId,
    CreatedAt,
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
                    .table(Verifications::Table)
                    .add_column(uuid_null(Verifications::ConsoleUserId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_verifications_console_user")
                    .table(Verifications::Table)
                    .col(Verifications::ConsoleUserId)
                    .col(Verifications::CreatedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }
}
