//! More of what an MSP admin sets: whether approved pushes count towards the push limits, the
//! lifetime of a secure share and of a one-tap link, the name SMS texts are signed with, and
//! an uploaded logo (its own table: a logo is up to 256 KB, read only by the logo route, and
//! the MSP row is read on every request).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum MspAccounts {
    Table,
    CountApprovedPushes,
    ShareLifetimeSeconds,
    OneTapLinkLifetimeSeconds,
    BrandSmsSenderName,
    BrandLogoVersion,
}

#[derive(DeriveIden)]
enum MspLogos {
    Table,
    MspId,
    ContentType,
    Bytes,
    Sha256,
    Width,
    Height,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one column at a time.
        let columns = [
            boolean(MspAccounts::CountApprovedPushes)
                .default(false)
                .to_owned(),
            integer(MspAccounts::ShareLifetimeSeconds)
                .default(24 * 60 * 60)
                .to_owned(),
            integer(MspAccounts::OneTapLinkLifetimeSeconds)
                .default(5 * 60)
                .to_owned(),
            string_null(MspAccounts::BrandSmsSenderName).to_owned(),
            // The uploaded logo's version (part of its address, so a new one is never a
            // cached old one); `None` when none is uploaded.
            string_null(MspAccounts::BrandLogoVersion).to_owned(),
        ];
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(MspAccounts::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(MspLogos::Table)
                    .if_not_exists()
                    .col(pk_uuid(MspLogos::MspId))
                    .col(string(MspLogos::ContentType))
                    .col(blob(MspLogos::Bytes))
                    .col(string(MspLogos::Sha256))
                    .col(integer(MspLogos::Width))
                    .col(integer(MspLogos::Height))
                    .col(timestamp_with_time_zone(MspLogos::UpdatedAt))
                    .to_owned(),
            )
            .await
    }
}
