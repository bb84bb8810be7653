//! Pushes tell the truth: which instance waits on each pending push (so one left by a stopped
//! instance is seen as interrupted, not pending), the instances' heartbeats, and a push limit
//! per technician across users.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Instances {
    Table,
    Id,
    StartedAt,
    HeartbeatAt,
}

#[derive(DeriveIden)]
enum Verifications {
    Table,
    WaiterInstanceId,
}

#[derive(DeriveIden)]
enum MspAccounts {
    Table,
    TechnicianPushLimitCount,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Instances::Table)
                    .if_not_exists()
                    .col(pk_uuid(Instances::Id))
                    .col(timestamp_with_time_zone(Instances::StartedAt))
                    .col(timestamp_with_time_zone(Instances::HeartbeatAt))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Verifications::Table)
                    .add_column(uuid_null(Verifications::WaiterInstanceId))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(MspAccounts::Table)
                    .add_column(integer(MspAccounts::TechnicianPushLimitCount).default(10))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
