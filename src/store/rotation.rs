//! `vouch rotate-key`: re-seal every stored secret under the active master key, in the
//! current format.
//!
//! The operator puts the new key in `encryption.master_key`, moves the old one to
//! `encryption.previous_keys`, runs this, and may then drop the old key. Run with the same
//! key, it re-seals only values in an older format (`v1`, see `store::crypto`). Each value is
//! re-sealed by its own update, guarded by its old ciphertext, so the command can
//! run while Vouch serves and can be interrupted and run again.

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use secrecy::ExposeSecret;
use uuid::Uuid;

use super::SEALED_COLUMNS;
use super::crypto::SealedPlace;
use super::{Store, StoreError};

/// What a rotation did, per sealed column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationReport {
    pub active_key_id: String,
    pub columns: Vec<ColumnRotation>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnRotation {
    pub table: &'static str,
    pub column: &'static str,
    pub resealed: u64,
    pub already_current: u64,
}

impl Store {
    pub async fn rotate_keys(&self) -> Result<RotationReport, StoreError> {
        let mut columns = Vec::new();
        for &(table, column) in SEALED_COLUMNS {
            columns.push(self.rotate_column(table, column).await?);
        }
        Ok(RotationReport {
            active_key_id: self.keyring().active_key_id().to_owned(),
            columns,
        })
    }

    async fn rotate_column(
        &self,
        table: &'static str,
        column: &'static str,
    ) -> Result<ColumnRotation, StoreError> {
        let select = Query::select()
            .columns(["id", column])
            .from(table)
            .and_where(Expr::col(column).is_not_null())
            .to_owned();
        let rows = self.connection().query_all(&select).await?;
        let mut report = ColumnRotation {
            table,
            column,
            resealed: 0,
            already_current: 0,
        };
        for row in rows {
            let id: Uuid = row.try_get("", "id")?;
            let sealed: String = row.try_get("", column)?;
            if !self.keyring().needs_reseal(&sealed)? {
                report.already_current += 1;
                continue;
            }
            let place = SealedPlace::new(table, column, id);
            let plaintext = self.keyring().open(&place, &sealed)?;
            let resealed = self.keyring().seal(&place, plaintext.expose_secret());
            let update = Query::update()
                .table(table)
                .value(column, resealed)
                .and_where(Expr::col("id").eq(id))
                // Only if nobody replaced the value meanwhile.
                .and_where(Expr::col(column).eq(sealed))
                .to_owned();
            if self.connection().execute(&update).await?.rows_affected() == 1 {
                report.resealed += 1;
            }
        }
        Ok(report)
    }
}
