//! Every reset ends known: the new password and its link are sealed with the reset before the
//! password is sent to Microsoft (so whatever happens next Vouch can still deliver what it
//! set), a lease says which instance is carrying a reset out (so a sweeper can finish what a
//! dead instance left), and the one-reset-per-verification rule moves to a column that a reset
//! which changed nothing can let go of.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PasswordResets {
    Table,
    VerificationId,
    SpendsVerificationId,
    PasswordSealed,
    LinkSealed,
    PatchAttempts,
    LeaseUntil,
    Resends,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        let columns = [
            uuid_null(PasswordResets::SpendsVerificationId),
            text_null(PasswordResets::PasswordSealed),
            text_null(PasswordResets::LinkSealed),
            integer(PasswordResets::PatchAttempts).default(0).to_owned(),
            timestamp_with_time_zone_null(PasswordResets::LeaseUntil),
            integer(PasswordResets::Resends).default(0).to_owned(),
        ];
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(PasswordResets::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        // Every reset so far spent its verification.
        manager
            .exec_stmt(
                Query::update()
                    .table(PasswordResets::Table)
                    .value(
                        PasswordResets::SpendsVerificationId,
                        Expr::col(PasswordResets::VerificationId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("uq_password_resets_verification")
                    .table(PasswordResets::Table)
                    .to_owned(),
            )
            .await?;
        // A verification is spent by at most one reset (NULLs, resets that changed nothing and
        // let their verification go, do not collide on either backend).
        manager
            .create_index(
                Index::create()
                    .name("uq_password_resets_spends_verification")
                    .table(PasswordResets::Table)
                    .col(PasswordResets::SpendsVerificationId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_password_resets_verification")
                    .table(PasswordResets::Table)
                    .col(PasswordResets::VerificationId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
