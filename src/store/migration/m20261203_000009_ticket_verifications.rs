//! The verifications of a ticket are read on every pod load (the shield counts only what
//! was verified on that ticket; the rest is history), so they are indexed by ticket.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Verifications {
    Table,
    PsaConnectionId,
    PsaTicketId,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("ix_verifications_ticket")
                    .table(Verifications::Table)
                    .col(Verifications::PsaConnectionId)
                    .col(Verifications::PsaTicketId)
                    .col(Verifications::CreatedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }
}
