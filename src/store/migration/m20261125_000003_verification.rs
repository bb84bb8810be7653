//! Verification support: a per-user lock row (so push limits hold across several Vouch
//! instances without backend-specific locking SQL) and the MSP's password policy.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum VerificationLocks {
    Table,
    Id,
    TenantId,
    UserObjectId,
    TouchedAt,
}

#[derive(DeriveIden)]
enum MspAccounts {
    Table,
    PasswordLength,
    PasswordStyle,
    ForceChangeAtNextSignIn,
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
                    .table(VerificationLocks::Table)
                    .if_not_exists()
                    .col(pk_uuid(VerificationLocks::Id))
                    .col(uuid(VerificationLocks::TenantId))
                    .col(string(VerificationLocks::UserObjectId))
                    .col(timestamp_with_time_zone(VerificationLocks::TouchedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_verification_locks_user")
                    .table(VerificationLocks::Table)
                    .col(VerificationLocks::TenantId)
                    .col(VerificationLocks::UserObjectId)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        // SQLite adds one column per ALTER TABLE.
        manager
            .alter_table(
                Table::alter()
                    .table(MspAccounts::Table)
                    .add_column(integer(MspAccounts::PasswordLength).default(16))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(MspAccounts::Table)
                    .add_column(string(MspAccounts::PasswordStyle).default("random"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(MspAccounts::Table)
                    .add_column(boolean(MspAccounts::ForceChangeAtNextSignIn).default(true))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
