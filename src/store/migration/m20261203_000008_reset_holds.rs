//! "It's not me" holds resets: a fraud report holds the password resets of that user for the
//! MSP's `fraud_hold_seconds` (its own table, `reset_holds`, lifted by an MSP admin), and an
//! audit entry carries a category, so that security events (a fraud report, a lifted hold)
//! can be found among the rest.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ResetHolds {
    Table,
    Id,
    MspId,
    TenantId,
    UserObjectId,
    UserPrincipalName,
    VerificationId,
    HeldUntil,
    LiftedAt,
    LiftedBy,
    LiftReason,
    CreatedAt,
}

#[derive(DeriveIden)]
enum MspAccounts {
    Table,
    FraudHoldSeconds,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Category,
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
                    .table(ResetHolds::Table)
                    .if_not_exists()
                    .col(pk_uuid(ResetHolds::Id))
                    .col(uuid(ResetHolds::MspId))
                    .col(uuid(ResetHolds::TenantId))
                    .col(string(ResetHolds::UserObjectId))
                    .col(string(ResetHolds::UserPrincipalName))
                    .col(uuid(ResetHolds::VerificationId))
                    .col(timestamp_with_time_zone(ResetHolds::HeldUntil))
                    .col(timestamp_with_time_zone_null(ResetHolds::LiftedAt))
                    .col(string_null(ResetHolds::LiftedBy))
                    .col(string_null(ResetHolds::LiftReason))
                    .col(timestamp_with_time_zone(ResetHolds::CreatedAt))
                    // No cascade: a hold is security history, like the audit log.
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_reset_holds_user")
                    .table(ResetHolds::Table)
                    .col(ResetHolds::MspId)
                    .col(ResetHolds::TenantId)
                    .col(ResetHolds::UserObjectId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(MspAccounts::Table)
                    .add_column(integer(MspAccounts::FraudHoldSeconds).default(86_400))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(AuditEvents::Table)
                    .add_column(string(AuditEvents::Category).default("general"))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
