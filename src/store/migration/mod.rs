//! One set of migrations, written with the schema manager only, so the same steps run on
//! SQLite and PostgreSQL. Each migration runs in a transaction on both backends, so a failed
//! step leaves no half-made schema behind.

use sea_orm_migration::prelude::*;

mod m20261125_000001_foundation;
mod m20261125_000002_access;
mod m20261125_000003_verification;
mod m20261202_000004_failure_codes;
mod m20261202_000005_reset_outcome;
mod m20261202_000006_push_truth;
mod m20261203_000007_end_user_texts;
mod m20261203_000008_reset_holds;
mod m20261203_000009_ticket_verifications;
mod m20261203_000011_tenant_removal;
mod m20261203_000012_api_key_scopes;
mod m20261203_000013_connection_tests;
mod m20261203_000015_technician_blocks;
mod m20261203_000016_branding_and_policy;
mod m20261203_000017_console_users;
mod m20261204_000019_console_technician_links;
mod m20261206_000020_console_contact_verifications;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_foundation::Migration),
            Box::new(m20261125_000002_access::Migration),
            Box::new(m20261125_000003_verification::Migration),
            Box::new(m20261202_000004_failure_codes::Migration),
            Box::new(m20261202_000005_reset_outcome::Migration),
            Box::new(m20261202_000006_push_truth::Migration),
            Box::new(m20261203_000007_end_user_texts::Migration),
            Box::new(m20261203_000008_reset_holds::Migration),
            Box::new(m20261203_000009_ticket_verifications::Migration),
            Box::new(m20261203_000011_tenant_removal::Migration),
            Box::new(m20261203_000012_api_key_scopes::Migration),
            Box::new(m20261203_000013_connection_tests::Migration),
            Box::new(m20261203_000015_technician_blocks::Migration),
            Box::new(m20261203_000016_branding_and_policy::Migration),
            Box::new(m20261203_000017_console_users::Migration),
            Box::new(m20261204_000019_console_technician_links::Migration),
            Box::new(m20261206_000020_console_contact_verifications::Migration),
        ]
    }
}
