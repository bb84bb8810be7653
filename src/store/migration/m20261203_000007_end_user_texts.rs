//! What the end user sees: the MSP's support phone (named in the SMS texts and on the pages
//! the user opens), and what a secure share is for, so the page of a password reset can say
//! "your new Microsoft 365 password for dana@contoso.com" and what to do next.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum MspAccounts {
    Table,
    BrandSupportPhone,
}

#[derive(DeriveIden)]
enum SecureShares {
    Table,
    Purpose,
    AccountName,
    ChangePasswordAtSignIn,
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
                    .table(MspAccounts::Table)
                    .add_column(string_null(MspAccounts::BrandSupportPhone))
                    .to_owned(),
            )
            .await?;
        // SQLite adds one column per ALTER TABLE. Every share so far is a plain message.
        let columns = [
            string(SecureShares::Purpose).default("message").to_owned(),
            string_null(SecureShares::AccountName),
            boolean(SecureShares::ChangePasswordAtSignIn)
                .default(false)
                .to_owned(),
        ];
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(SecureShares::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
