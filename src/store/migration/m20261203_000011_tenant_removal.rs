//! A removed tenant is kept as a row marked `removed_at`: its verifications and password
//! resets reference it (with cascading foreign keys), and they are the history the audit
//! log's entries point at. Its integrations (and their sealed secrets) and its company
//! mappings are deleted when it is removed; a removed tenant is never listed or resolved.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::timestamp_with_time_zone_null;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tenants {
    Table,
    RemovedAt,
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
                    .table(Tenants::Table)
                    .add_column(timestamp_with_time_zone_null(Tenants::RemovedAt))
                    .to_owned(),
            )
            .await
    }
}
