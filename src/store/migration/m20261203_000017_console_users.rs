//! The MSP console's accounts and sign-in: console users (e-mail unique across Vouch,
//! argon2id password hash, sealed TOTP secret, failure counters), their one-time set-up and
//! invitation links and recovery codes (hashes only), and server-side sessions (the cookie's
//! hash), so that a session works on every instance and ends on all of them at once.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ConsoleUsers {
    Table,
    Id,
    MspId,
    Email,
    Name,
    Role,
    PasswordHash,
    TotpSecretSealed,
    TotpEnabled,
    TotpExempt,
    TotpLastStep,
    FailedAttempts,
    NextAttemptAt,
    LockedUntil,
    DisabledAt,
    LastSignInAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ConsoleLinks {
    Table,
    Id,
    UserId,
    TokenHash,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum ConsoleSessions {
    Table,
    Id,
    UserId,
    TokenHash,
    CsrfToken,
    Stage,
    CreatedAt,
    LastSeenAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum ConsoleRecoveryCodes {
    Table,
    Id,
    UserId,
    CodeHash,
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
                    .table(ConsoleUsers::Table)
                    .if_not_exists()
                    .col(pk_uuid(ConsoleUsers::Id))
                    .col(uuid(ConsoleUsers::MspId))
                    // Stored lower-cased: sign-in is by e-mail alone, across every MSP.
                    .col(string_uniq(ConsoleUsers::Email))
                    .col(string(ConsoleUsers::Name))
                    .col(string(ConsoleUsers::Role))
                    .col(string_null(ConsoleUsers::PasswordHash))
                    .col(string_null(ConsoleUsers::TotpSecretSealed))
                    .col(boolean(ConsoleUsers::TotpEnabled).default(false))
                    .col(boolean(ConsoleUsers::TotpExempt).default(false))
                    .col(big_integer_null(ConsoleUsers::TotpLastStep))
                    .col(integer(ConsoleUsers::FailedAttempts).default(0))
                    .col(timestamp_with_time_zone_null(ConsoleUsers::NextAttemptAt))
                    .col(timestamp_with_time_zone_null(ConsoleUsers::LockedUntil))
                    .col(timestamp_with_time_zone_null(ConsoleUsers::DisabledAt))
                    .col(timestamp_with_time_zone_null(ConsoleUsers::LastSignInAt))
                    .col(timestamp_with_time_zone(ConsoleUsers::CreatedAt))
                    .col(timestamp_with_time_zone(ConsoleUsers::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_console_users_msp")
                            .from(ConsoleUsers::Table, ConsoleUsers::MspId)
                            .to(MspAccounts::Table, MspAccounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_console_users_msp")
                    .table(ConsoleUsers::Table)
                    .col(ConsoleUsers::MspId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ConsoleLinks::Table)
                    .if_not_exists()
                    .col(pk_uuid(ConsoleLinks::Id))
                    .col(uuid(ConsoleLinks::UserId))
                    .col(string_uniq(ConsoleLinks::TokenHash))
                    .col(timestamp_with_time_zone(ConsoleLinks::CreatedAt))
                    .col(timestamp_with_time_zone(ConsoleLinks::ExpiresAt))
                    .col(timestamp_with_time_zone_null(ConsoleLinks::UsedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_console_links_user")
                            .from(ConsoleLinks::Table, ConsoleLinks::UserId)
                            .to(ConsoleUsers::Table, ConsoleUsers::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ConsoleSessions::Table)
                    .if_not_exists()
                    .col(pk_uuid(ConsoleSessions::Id))
                    .col(uuid(ConsoleSessions::UserId))
                    .col(string_uniq(ConsoleSessions::TokenHash))
                    .col(string(ConsoleSessions::CsrfToken))
                    .col(string(ConsoleSessions::Stage))
                    .col(timestamp_with_time_zone(ConsoleSessions::CreatedAt))
                    .col(timestamp_with_time_zone(ConsoleSessions::LastSeenAt))
                    .col(timestamp_with_time_zone(ConsoleSessions::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_console_sessions_user")
                            .from(ConsoleSessions::Table, ConsoleSessions::UserId)
                            .to(ConsoleUsers::Table, ConsoleUsers::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_console_sessions_user")
                    .table(ConsoleSessions::Table)
                    .col(ConsoleSessions::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ConsoleRecoveryCodes::Table)
                    .if_not_exists()
                    .col(pk_uuid(ConsoleRecoveryCodes::Id))
                    .col(uuid(ConsoleRecoveryCodes::UserId))
                    .col(string(ConsoleRecoveryCodes::CodeHash))
                    .col(timestamp_with_time_zone_null(ConsoleRecoveryCodes::UsedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_console_recovery_codes_user")
                            .from(ConsoleRecoveryCodes::Table, ConsoleRecoveryCodes::UserId)
                            .to(ConsoleUsers::Table, ConsoleUsers::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_console_recovery_codes_user")
                    .table(ConsoleRecoveryCodes::Table)
                    .col(ConsoleRecoveryCodes::UserId)
                    .to_owned(),
            )
            .await
    }
}
