//! Failure codes became one typed vocabulary (`ErrorCode`): the two spellings that were not
//! error codes are rewritten to the codes that replace them, so every stored value reads back.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Verifications {
    Table,
    FailureCode,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let rewrites = [
            (
                Expr::col(Verifications::FailureCode).eq("expired"),
                "verification_expired",
            ),
            (
                Expr::col(Verifications::FailureCode).like("other:%"),
                "mfa_unknown_result",
            ),
        ];
        for (condition, code) in rewrites {
            manager
                .exec_stmt(
                    Query::update()
                        .table(Verifications::Table)
                        .value(Verifications::FailureCode, code)
                        .and_where(condition)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        // The old spellings carried nothing the new codes lose; there is nothing to restore.
        Ok(())
    }
}
