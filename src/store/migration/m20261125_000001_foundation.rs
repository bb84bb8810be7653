//! The foundation schema: MSP accounts and technicians, PSA connections, customer tenants and
//! their security integrations, company-to-tenant mappings, verifications, password resets,
//! secure shares, outbound messages and the audit log.
//!
//! Columns ending in `_sealed` hold values encrypted by `store::crypto` (never plaintext).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum MspAccounts {
    Table,
    Id,
    Name,
    BrandLogoUrl,
    BrandColor,
    VerifiedWindowSeconds,
    PushLimitCount,
    PushLimitWindowSeconds,
    AllowContactPhoneFallback,
    AllowAdminReset,
    ShowPasswordToTechnician,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PsaConnections {
    Table,
    Id,
    MspId,
    Kind,
    Name,
    BaseUrl,
    Settings,
    CredentialsSealed,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Technicians {
    Table,
    Id,
    MspId,
    PsaConnectionId,
    PsaMemberId,
    DisplayName,
    Email,
    CreatedAt,
    LastSeenAt,
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
    MspId,
    MicrosoftTenantId,
    DisplayName,
    VerifiedDomains,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum TenantIntegrations {
    Table,
    Id,
    TenantId,
    Kind,
    Status,
    ClientId,
    SecretSealed,
    SecretExpiresAt,
    LastCheckedAt,
    LastCheckCode,
    LastCheckMessage,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum CompanyTenantMappings {
    Table,
    Id,
    MspId,
    PsaConnectionId,
    PsaCompanyId,
    PsaCompanyName,
    TenantId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Verifications {
    Table,
    Id,
    MspId,
    TenantId,
    TechnicianId,
    PsaConnectionId,
    PsaTicketId,
    PsaContactId,
    UserObjectId,
    UserPrincipalName,
    Method,
    Status,
    FailureCode,
    CodeHash,
    Attempts,
    Reason,
    UsedContactPhoneFallback,
    CreatedAt,
    ExpiresAt,
    DecidedAt,
    VerifiedUntil,
    ConsumedAt,
}

#[derive(DeriveIden)]
enum PasswordResets {
    Table,
    Id,
    MspId,
    VerificationId,
    TenantId,
    UserObjectId,
    TechnicianId,
    IdempotencyKey,
    Status,
    FailureCode,
    ShareId,
    SentToMasked,
    UpstreamRequestId,
    CreatedAt,
    CompletedAt,
}

#[derive(DeriveIden)]
enum SecureShares {
    Table,
    Id,
    MspId,
    TokenHash,
    ContentSealed,
    ExpiresAt,
    MaxViews,
    Views,
    CreatedByTechnicianId,
    CreatedAt,
    LastViewedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum OutboundMessages {
    Table,
    Id,
    MspId,
    Channel,
    ToNumber,
    BodySealed,
    Status,
    ProviderMessageId,
    FailureCode,
    CreatedAt,
    SentAt,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    MspId,
    OccurredAt,
    ActorKind,
    ActorId,
    ActorName,
    Action,
    SubjectKind,
    SubjectId,
    SubjectName,
    PsaTicketId,
    Outcome,
    UpstreamRequestId,
    Details,
}

fn fk(
    name: &str,
    from: (impl IntoIden, impl IntoIden),
    to: (impl IntoIden, impl IntoIden),
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from.0, from.1)
        .to(to.0, to.1)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

fn index(
    name: &str,
    table: impl IntoIden,
    columns: &[&'static str],
    unique: bool,
) -> IndexCreateStatement {
    let mut stmt = Index::create();
    stmt.name(name).table(table).if_not_exists();
    for column in columns {
        stmt.col(Alias::new(*column));
    }
    if unique {
        stmt.unique();
    }
    stmt.to_owned()
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
                    .table(MspAccounts::Table)
                    .if_not_exists()
                    .col(pk_uuid(MspAccounts::Id))
                    .col(string(MspAccounts::Name))
                    .col(text_null(MspAccounts::BrandLogoUrl))
                    .col(string_null(MspAccounts::BrandColor))
                    .col(integer(MspAccounts::VerifiedWindowSeconds))
                    .col(integer(MspAccounts::PushLimitCount))
                    .col(integer(MspAccounts::PushLimitWindowSeconds))
                    .col(boolean(MspAccounts::AllowContactPhoneFallback))
                    .col(boolean(MspAccounts::AllowAdminReset))
                    .col(boolean(MspAccounts::ShowPasswordToTechnician))
                    .col(timestamp_with_time_zone(MspAccounts::CreatedAt))
                    .col(timestamp_with_time_zone(MspAccounts::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PsaConnections::Table)
                    .if_not_exists()
                    .col(pk_uuid(PsaConnections::Id))
                    .col(uuid(PsaConnections::MspId))
                    .col(string(PsaConnections::Kind))
                    .col(string(PsaConnections::Name))
                    .col(text(PsaConnections::BaseUrl))
                    .col(json(PsaConnections::Settings))
                    .col(text(PsaConnections::CredentialsSealed))
                    .col(timestamp_with_time_zone(PsaConnections::CreatedAt))
                    .col(timestamp_with_time_zone(PsaConnections::UpdatedAt))
                    .foreign_key(&mut fk(
                        "fk_psa_connections_msp",
                        (PsaConnections::Table, PsaConnections::MspId),
                        (MspAccounts::Table, MspAccounts::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_psa_connections_msp",
                PsaConnections::Table,
                &["msp_id"],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Technicians::Table)
                    .if_not_exists()
                    .col(pk_uuid(Technicians::Id))
                    .col(uuid(Technicians::MspId))
                    .col(uuid(Technicians::PsaConnectionId))
                    .col(string(Technicians::PsaMemberId))
                    .col(string(Technicians::DisplayName))
                    .col(string_null(Technicians::Email))
                    .col(timestamp_with_time_zone(Technicians::CreatedAt))
                    .col(timestamp_with_time_zone_null(Technicians::LastSeenAt))
                    .foreign_key(&mut fk(
                        "fk_technicians_msp",
                        (Technicians::Table, Technicians::MspId),
                        (MspAccounts::Table, MspAccounts::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_technicians_connection",
                        (Technicians::Table, Technicians::PsaConnectionId),
                        (PsaConnections::Table, PsaConnections::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "uq_technicians_member",
                Technicians::Table,
                &["psa_connection_id", "psa_member_id"],
                true,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Tenants::Table)
                    .if_not_exists()
                    .col(pk_uuid(Tenants::Id))
                    .col(uuid(Tenants::MspId))
                    .col(string(Tenants::MicrosoftTenantId))
                    .col(string(Tenants::DisplayName))
                    .col(json(Tenants::VerifiedDomains))
                    .col(timestamp_with_time_zone(Tenants::CreatedAt))
                    .col(timestamp_with_time_zone(Tenants::UpdatedAt))
                    .foreign_key(&mut fk(
                        "fk_tenants_msp",
                        (Tenants::Table, Tenants::MspId),
                        (MspAccounts::Table, MspAccounts::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "uq_tenants_msp_tenant",
                Tenants::Table,
                &["msp_id", "microsoft_tenant_id"],
                true,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(TenantIntegrations::Table)
                    .if_not_exists()
                    .col(pk_uuid(TenantIntegrations::Id))
                    .col(uuid(TenantIntegrations::TenantId))
                    .col(string(TenantIntegrations::Kind))
                    .col(string(TenantIntegrations::Status))
                    .col(string(TenantIntegrations::ClientId))
                    .col(text_null(TenantIntegrations::SecretSealed))
                    .col(timestamp_with_time_zone_null(
                        TenantIntegrations::SecretExpiresAt,
                    ))
                    .col(timestamp_with_time_zone_null(
                        TenantIntegrations::LastCheckedAt,
                    ))
                    .col(string_null(TenantIntegrations::LastCheckCode))
                    .col(text_null(TenantIntegrations::LastCheckMessage))
                    .col(timestamp_with_time_zone(TenantIntegrations::CreatedAt))
                    .col(timestamp_with_time_zone(TenantIntegrations::UpdatedAt))
                    .foreign_key(&mut fk(
                        "fk_tenant_integrations_tenant",
                        (TenantIntegrations::Table, TenantIntegrations::TenantId),
                        (Tenants::Table, Tenants::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "uq_tenant_integrations_kind",
                TenantIntegrations::Table,
                &["tenant_id", "kind"],
                true,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(CompanyTenantMappings::Table)
                    .if_not_exists()
                    .col(pk_uuid(CompanyTenantMappings::Id))
                    .col(uuid(CompanyTenantMappings::MspId))
                    .col(uuid(CompanyTenantMappings::PsaConnectionId))
                    .col(string(CompanyTenantMappings::PsaCompanyId))
                    .col(string(CompanyTenantMappings::PsaCompanyName))
                    .col(uuid(CompanyTenantMappings::TenantId))
                    .col(timestamp_with_time_zone(CompanyTenantMappings::CreatedAt))
                    .foreign_key(&mut fk(
                        "fk_company_mappings_msp",
                        (CompanyTenantMappings::Table, CompanyTenantMappings::MspId),
                        (MspAccounts::Table, MspAccounts::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_company_mappings_connection",
                        (
                            CompanyTenantMappings::Table,
                            CompanyTenantMappings::PsaConnectionId,
                        ),
                        (PsaConnections::Table, PsaConnections::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_company_mappings_tenant",
                        (
                            CompanyTenantMappings::Table,
                            CompanyTenantMappings::TenantId,
                        ),
                        (Tenants::Table, Tenants::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "uq_company_mappings_company",
                CompanyTenantMappings::Table,
                &["psa_connection_id", "psa_company_id"],
                true,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Verifications::Table)
                    .if_not_exists()
                    .col(pk_uuid(Verifications::Id))
                    .col(uuid(Verifications::MspId))
                    .col(uuid(Verifications::TenantId))
                    .col(uuid_null(Verifications::TechnicianId))
                    .col(uuid_null(Verifications::PsaConnectionId))
                    .col(string_null(Verifications::PsaTicketId))
                    .col(string_null(Verifications::PsaContactId))
                    .col(string(Verifications::UserObjectId))
                    .col(string(Verifications::UserPrincipalName))
                    .col(string(Verifications::Method))
                    .col(string(Verifications::Status))
                    .col(string_null(Verifications::FailureCode))
                    .col(string_null(Verifications::CodeHash))
                    .col(integer(Verifications::Attempts))
                    .col(text_null(Verifications::Reason))
                    .col(boolean(Verifications::UsedContactPhoneFallback))
                    .col(timestamp_with_time_zone(Verifications::CreatedAt))
                    .col(timestamp_with_time_zone(Verifications::ExpiresAt))
                    .col(timestamp_with_time_zone_null(Verifications::DecidedAt))
                    .col(timestamp_with_time_zone_null(Verifications::VerifiedUntil))
                    .col(timestamp_with_time_zone_null(Verifications::ConsumedAt))
                    .foreign_key(&mut fk(
                        "fk_verifications_msp",
                        (Verifications::Table, Verifications::MspId),
                        (MspAccounts::Table, MspAccounts::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_verifications_tenant",
                        (Verifications::Table, Verifications::TenantId),
                        (Tenants::Table, Tenants::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_verifications_user",
                Verifications::Table,
                &["tenant_id", "user_object_id", "created_at"],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PasswordResets::Table)
                    .if_not_exists()
                    .col(pk_uuid(PasswordResets::Id))
                    .col(uuid(PasswordResets::MspId))
                    .col(uuid(PasswordResets::VerificationId))
                    .col(uuid(PasswordResets::TenantId))
                    .col(string(PasswordResets::UserObjectId))
                    .col(uuid_null(PasswordResets::TechnicianId))
                    .col(string(PasswordResets::IdempotencyKey))
                    .col(string(PasswordResets::Status))
                    .col(string_null(PasswordResets::FailureCode))
                    .col(uuid_null(PasswordResets::ShareId))
                    .col(string_null(PasswordResets::SentToMasked))
                    .col(string_null(PasswordResets::UpstreamRequestId))
                    .col(timestamp_with_time_zone(PasswordResets::CreatedAt))
                    .col(timestamp_with_time_zone_null(PasswordResets::CompletedAt))
                    .foreign_key(&mut fk(
                        "fk_password_resets_msp",
                        (PasswordResets::Table, PasswordResets::MspId),
                        (MspAccounts::Table, MspAccounts::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_password_resets_verification",
                        (PasswordResets::Table, PasswordResets::VerificationId),
                        (Verifications::Table, Verifications::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        // A verification is spent by exactly one reset; the database enforces it so two
        // instances racing on the same verification cannot both reset.
        manager
            .create_index(index(
                "uq_password_resets_verification",
                PasswordResets::Table,
                &["verification_id"],
                true,
            ))
            .await?;
        manager
            .create_index(index(
                "uq_password_resets_idempotency",
                PasswordResets::Table,
                &["msp_id", "idempotency_key"],
                true,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SecureShares::Table)
                    .if_not_exists()
                    .col(pk_uuid(SecureShares::Id))
                    .col(uuid(SecureShares::MspId))
                    .col(string(SecureShares::TokenHash))
                    .col(text(SecureShares::ContentSealed))
                    .col(timestamp_with_time_zone(SecureShares::ExpiresAt))
                    .col(integer(SecureShares::MaxViews))
                    .col(integer(SecureShares::Views))
                    .col(uuid_null(SecureShares::CreatedByTechnicianId))
                    .col(timestamp_with_time_zone(SecureShares::CreatedAt))
                    .col(timestamp_with_time_zone_null(SecureShares::LastViewedAt))
                    .col(timestamp_with_time_zone_null(SecureShares::RevokedAt))
                    .foreign_key(&mut fk(
                        "fk_secure_shares_msp",
                        (SecureShares::Table, SecureShares::MspId),
                        (MspAccounts::Table, MspAccounts::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "uq_secure_shares_token",
                SecureShares::Table,
                &["token_hash"],
                true,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(OutboundMessages::Table)
                    .if_not_exists()
                    .col(pk_uuid(OutboundMessages::Id))
                    .col(uuid(OutboundMessages::MspId))
                    .col(string(OutboundMessages::Channel))
                    .col(string(OutboundMessages::ToNumber))
                    .col(text(OutboundMessages::BodySealed))
                    .col(string(OutboundMessages::Status))
                    .col(string_null(OutboundMessages::ProviderMessageId))
                    .col(string_null(OutboundMessages::FailureCode))
                    .col(timestamp_with_time_zone(OutboundMessages::CreatedAt))
                    .col(timestamp_with_time_zone_null(OutboundMessages::SentAt))
                    .foreign_key(&mut fk(
                        "fk_outbound_messages_msp",
                        (OutboundMessages::Table, OutboundMessages::MspId),
                        (MspAccounts::Table, MspAccounts::Id),
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .if_not_exists()
                    .col(pk_uuid(AuditEvents::Id))
                    .col(uuid(AuditEvents::MspId))
                    .col(timestamp_with_time_zone(AuditEvents::OccurredAt))
                    .col(string(AuditEvents::ActorKind))
                    .col(string_null(AuditEvents::ActorId))
                    .col(string_null(AuditEvents::ActorName))
                    .col(string(AuditEvents::Action))
                    .col(string_null(AuditEvents::SubjectKind))
                    .col(string_null(AuditEvents::SubjectId))
                    .col(string_null(AuditEvents::SubjectName))
                    .col(string_null(AuditEvents::PsaTicketId))
                    .col(string(AuditEvents::Outcome))
                    .col(string_null(AuditEvents::UpstreamRequestId))
                    .col(json(AuditEvents::Details))
                    // No cascade: the audit log outlives what it describes.
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_audit_events_msp_time",
                AuditEvents::Table,
                &["msp_id", "occurred_at"],
                false,
            ))
            .await?;
        Ok(())
    }
}
