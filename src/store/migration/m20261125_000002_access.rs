//! Access: per-MSP API keys (only their hash is stored) and the single-use `state` values of
//! Microsoft admin-consent flows (bound to the MSP that started them).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    MspId,
    Name,
    KeyPrefix,
    KeyHash,
    CreatedAt,
    LastUsedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum ConsentStates {
    Table,
    Id,
    MspId,
    StateHash,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum MspAccounts {
    Table,
    Id,
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
                    .table(ApiKeys::Table)
                    .if_not_exists()
                    .col(pk_uuid(ApiKeys::Id))
                    .col(uuid(ApiKeys::MspId))
                    .col(string(ApiKeys::Name))
                    .col(string(ApiKeys::KeyPrefix))
                    .col(string_uniq(ApiKeys::KeyHash))
                    .col(timestamp_with_time_zone(ApiKeys::CreatedAt))
                    .col(timestamp_with_time_zone_null(ApiKeys::LastUsedAt))
                    .col(timestamp_with_time_zone_null(ApiKeys::RevokedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_api_keys_msp")
                            .from(ApiKeys::Table, ApiKeys::MspId)
                            .to(MspAccounts::Table, MspAccounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ConsentStates::Table)
                    .if_not_exists()
                    .col(pk_uuid(ConsentStates::Id))
                    .col(uuid(ConsentStates::MspId))
                    .col(string_uniq(ConsentStates::StateHash))
                    .col(timestamp_with_time_zone(ConsentStates::CreatedAt))
                    .col(timestamp_with_time_zone(ConsentStates::ExpiresAt))
                    .col(timestamp_with_time_zone_null(ConsentStates::UsedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_consent_states_msp")
                            .from(ConsentStates::Table, ConsentStates::MspId)
                            .to(MspAccounts::Table, MspAccounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
