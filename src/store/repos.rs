//! Repository traits (what services depend on) and their sea-orm implementation on [`Store`].
//!
//! Secrets cross this boundary as `SecretString` and are sealed here, bound to their row, so
//! no caller can store one in plaintext by mistake.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr,
};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::crypto::SealedPlace;
use super::entities::{
    audit_event, company_tenant_mapping, msp_account, outbound_message, psa_connection,
    secure_share, technician, tenant, tenant_integration,
};
use super::{Store, StoreError};

/// Where each sealed column lives; `vouch rotate-key` walks this list, so a new sealed
/// column must be added here.
pub const SEALED_COLUMNS: &[(&str, &str)] = &[
    ("psa_connections", "credentials_sealed"),
    ("tenant_integrations", "secret_sealed"),
    ("secure_shares", "content_sealed"),
    ("outbound_messages", "body_sealed"),
];

// ---------------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------------

/// The policies an MSP admin sets; the defaults are what a cautious MSP would choose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MspPolicy {
    /// How long a contact stays "verified" after an approved verification.
    pub verified_window_seconds: i32,
    /// At most this many pushes per user per window (push-bombing protection).
    pub push_limit_count: i32,
    pub push_limit_window_seconds: i32,
    /// May an SMS code go to the PSA contact's mobile when Microsoft has none registered?
    pub allow_contact_phone_fallback: bool,
    /// May users holding admin roles be reset?
    pub allow_admin_reset: bool,
    /// May the technician see a generated password (otherwise only the user, by link)?
    pub show_password_to_technician: bool,
    /// Length of generated passwords (random style) or minimum length (passphrase style).
    pub password_length: i32,
    /// `random` or `passphrase`.
    pub password_style: String,
    /// Make the user choose a new password at their next sign-in.
    pub force_change_at_next_sign_in: bool,
}

impl Default for MspPolicy {
    fn default() -> Self {
        MspPolicy {
            verified_window_seconds: 15 * 60,
            push_limit_count: 3,
            push_limit_window_seconds: 15 * 60,
            allow_contact_phone_fallback: false,
            allow_admin_reset: false,
            show_password_to_technician: false,
            password_length: 16,
            password_style: "random".to_owned(),
            force_change_at_next_sign_in: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMspAccount {
    pub name: String,
    pub brand_logo_url: Option<String>,
    pub brand_color: Option<String>,
    pub policy: MspPolicy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MspAccount {
    pub id: Uuid,
    pub name: String,
    pub brand_logo_url: Option<String>,
    pub brand_color: Option<String>,
    pub policy: MspPolicy,
    pub created_at: DateTime<Utc>,
}

/// The PSAs Vouch embeds in. Stored by these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PsaKind {
    ConnectWise,
    HaloPsa,
    Autotask,
}

impl PsaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PsaKind::ConnectWise => "connectwise",
            PsaKind::HaloPsa => "halopsa",
            PsaKind::Autotask => "autotask",
        }
    }

    pub fn parse(value: &str) -> Option<PsaKind> {
        [PsaKind::ConnectWise, PsaKind::HaloPsa, PsaKind::Autotask]
            .into_iter()
            .find(|kind| kind.as_str() == value)
    }
}

#[derive(Debug, Clone)]
pub struct NewPsaConnection {
    pub msp_id: Uuid,
    pub kind: PsaKind,
    pub name: String,
    pub base_url: String,
    /// Non-secret settings (company id, integration codes...).
    pub settings: serde_json::Value,
    /// The API credentials, typically a JSON document; sealed at rest.
    pub credentials: SecretString,
}

#[derive(Debug, Clone)]
pub struct PsaConnection {
    pub id: Uuid,
    pub msp_id: Uuid,
    pub kind: PsaKind,
    pub name: String,
    pub base_url: String,
    pub settings: serde_json::Value,
    pub credentials: SecretString,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TechnicianSighting {
    pub msp_id: Uuid,
    pub psa_connection_id: Uuid,
    pub psa_member_id: String,
    pub display_name: String,
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Technician {
    pub id: Uuid,
    pub msp_id: Uuid,
    pub psa_connection_id: Uuid,
    pub psa_member_id: String,
    pub display_name: String,
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTenant {
    pub msp_id: Uuid,
    pub microsoft_tenant_id: String,
    pub display_name: String,
    pub verified_domains: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: Uuid,
    pub msp_id: Uuid,
    pub microsoft_tenant_id: String,
    pub display_name: String,
    pub verified_domains: Vec<String>,
}

/// The two ways Vouch reaches a customer tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntegrationKind {
    /// Vouch's multi-tenant app, consented by the customer's admin, plus the MFA connector
    /// credential it creates.
    Authenticator,
    /// An app the MSP registered in the customer tenant and gave Vouch the secret of.
    IdentityManagement,
}

impl IntegrationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IntegrationKind::Authenticator => "authenticator",
            IntegrationKind::IdentityManagement => "identity_management",
        }
    }

    pub fn parse(value: &str) -> Option<IntegrationKind> {
        [
            IntegrationKind::Authenticator,
            IntegrationKind::IdentityManagement,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == value)
    }
}

#[derive(Debug, Clone)]
pub struct IntegrationUpdate {
    pub tenant_id: Uuid,
    pub kind: IntegrationKind,
    pub status: String,
    pub client_id: String,
    pub secret: Option<SecretString>,
    pub secret_expires_at: Option<DateTime<Utc>>,
    pub last_checked_at: Option<DateTime<Utc>>,
    pub last_check_code: Option<String>,
    pub last_check_message: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TenantIntegration {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub kind: IntegrationKind,
    pub status: String,
    pub client_id: String,
    pub secret: Option<SecretString>,
    pub secret_expires_at: Option<DateTime<Utc>>,
    pub last_checked_at: Option<DateTime<Utc>>,
    pub last_check_code: Option<String>,
    pub last_check_message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompanyMapping {
    pub msp_id: Uuid,
    pub psa_connection_id: Uuid,
    pub psa_company_id: String,
    pub psa_company_name: String,
    pub tenant_id: Uuid,
}

#[derive(Debug, Clone)]
pub struct NewSecureShare {
    pub msp_id: Uuid,
    /// SHA-256 of the link token; the token itself is never stored.
    pub token_hash: String,
    pub content: SecretString,
    pub expires_at: DateTime<Utc>,
    pub max_views: i32,
    pub created_by_technician_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecureShare {
    pub id: Uuid,
    pub msp_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub max_views: i32,
    pub views: i32,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A share as its MSP lists it: the record plus who made it and when it was last opened.
/// Never carries the content or the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecureShareListing {
    pub share: SecureShare,
    pub created_by_technician_id: Option<Uuid>,
    pub last_viewed_at: Option<DateTime<Utc>>,
}

/// What an attempt to count one view of a share found.
#[derive(Debug)]
pub enum ConsumeOutcome {
    /// The view was counted; `share` is the row as read just after, `views_left` how many
    /// more views it allows now.
    Revealed {
        share: SecureShare,
        content: SecretString,
        views_left: i32,
    },
    /// Every allowed view has been used.
    Exhausted(SecureShare),
    /// The share's end has passed.
    Expired(SecureShare),
    /// The MSP withdrew the share.
    Revoked(SecureShare),
    /// No share has this token hash.
    NotFound,
}

/// What revoking a share did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// Revoked now.
    Revoked(SecureShare),
    /// It had been revoked before; nothing changed.
    AlreadyRevoked(SecureShare),
    /// No share with this id belongs to this MSP.
    NotFound,
}

#[derive(Debug, Clone)]
pub struct NewOutboundMessage {
    pub msp_id: Uuid,
    pub channel: String,
    pub to_number: String,
    /// May carry a secure link, so it is sealed at rest.
    pub body: SecretString,
    pub status: String,
}

/// Who did something, as recorded in the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditActor {
    /// `technician`, `api_key`, `system`...
    pub kind: String,
    pub id: Option<String>,
    pub name: Option<String>,
}

/// An entry to append. Holds no secret by construction: there is no field for one, and
/// `details` must be built from non-secret values.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEvent {
    pub msp_id: Uuid,
    pub actor: AuditActor,
    pub action: String,
    pub subject_kind: Option<String>,
    pub subject_id: Option<String>,
    pub subject_name: Option<String>,
    pub psa_ticket_id: Option<String>,
    pub outcome: String,
    pub upstream_request_id: Option<String>,
    pub details: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub event: NewAuditEvent,
}

#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub msp_id: Uuid,
    pub action: Option<String>,
    pub subject_id: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub limit: u64,
}

// ---------------------------------------------------------------------------------------------
// Traits
// ---------------------------------------------------------------------------------------------

#[async_trait]
pub trait MspRepository: Send + Sync {
    async fn create_msp(&self, new: NewMspAccount) -> Result<MspAccount, StoreError>;
    async fn get_msp(&self, id: Uuid) -> Result<Option<MspAccount>, StoreError>;
    async fn list_msps(&self) -> Result<Vec<MspAccount>, StoreError>;
}

#[async_trait]
pub trait PsaConnectionRepository: Send + Sync {
    async fn create_connection(&self, new: NewPsaConnection) -> Result<PsaConnection, StoreError>;
    async fn get_connection(&self, id: Uuid) -> Result<Option<PsaConnection>, StoreError>;
    async fn list_connections(&self, msp_id: Uuid) -> Result<Vec<PsaConnection>, StoreError>;
    /// Records that the PSA vouched for this member; creates or refreshes the technician.
    async fn record_technician(&self, seen: TechnicianSighting) -> Result<Technician, StoreError>;
    async fn get_technician(&self, id: Uuid) -> Result<Option<Technician>, StoreError>;
}

#[async_trait]
pub trait TenantRepository: Send + Sync {
    async fn create_tenant(&self, new: NewTenant) -> Result<Tenant, StoreError>;
    async fn get_tenant(&self, id: Uuid) -> Result<Option<Tenant>, StoreError>;
    async fn list_tenants(&self, msp_id: Uuid) -> Result<Vec<Tenant>, StoreError>;
    /// Creates or replaces the tenant's integration of that kind.
    async fn save_integration(
        &self,
        update: IntegrationUpdate,
    ) -> Result<TenantIntegration, StoreError>;
    async fn get_integration(
        &self,
        tenant_id: Uuid,
        kind: IntegrationKind,
    ) -> Result<Option<TenantIntegration>, StoreError>;
    async fn find_tenant_by_microsoft_id(
        &self,
        msp_id: Uuid,
        microsoft_tenant_id: &str,
    ) -> Result<Option<Tenant>, StoreError>;
    /// Every integration of the MSP's tenants, with its tenant.
    async fn list_integrations(
        &self,
        msp_id: Uuid,
    ) -> Result<Vec<(Tenant, TenantIntegration)>, StoreError>;
    async fn get_integration_by_id(
        &self,
        id: Uuid,
    ) -> Result<Option<(Tenant, TenantIntegration)>, StoreError>;
    async fn delete_integration(&self, id: Uuid) -> Result<bool, StoreError>;
    /// Active integrations of `kind` whose secret ends before `before` (for renewal).
    async fn integrations_expiring_before(
        &self,
        kind: IntegrationKind,
        before: DateTime<Utc>,
    ) -> Result<Vec<(Tenant, TenantIntegration)>, StoreError>;
    async fn map_company(&self, mapping: CompanyMapping) -> Result<(), StoreError>;
    async fn tenant_for_company(
        &self,
        psa_connection_id: Uuid,
        psa_company_id: &str,
    ) -> Result<Option<Tenant>, StoreError>;
}

#[async_trait]
pub trait SecureShareRepository: Send + Sync {
    async fn create_share(&self, new: NewSecureShare) -> Result<SecureShare, StoreError>;
    async fn find_share_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<SecureShare>, StoreError>;
    async fn open_share_content(&self, id: Uuid) -> Result<SecretString, StoreError>;
    /// Counts one view of the share and opens its content, in one conditional statement:
    /// of several concurrent calls on a share with one view left, exactly one is
    /// `Revealed`. Otherwise says why not (the row is read only to tell which).
    async fn consume_share_view(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<ConsumeOutcome, StoreError>;
    /// Withdraws the MSP's share so its link stops working; another MSP's share is
    /// `NotFound`.
    async fn revoke_share(&self, msp_id: Uuid, id: Uuid) -> Result<RevokeOutcome, StoreError>;
    /// The MSP's most recent shares (at most [`SHARE_LIST_LIMIT`]), newest first, without
    /// their content.
    async fn list_shares(&self, msp_id: Uuid) -> Result<Vec<SecureShareListing>, StoreError>;
}

/// `list_shares` returns at most this many shares.
pub const SHARE_LIST_LIMIT: u64 = 1000;

#[async_trait]
pub trait OutboundMessageRepository: Send + Sync {
    async fn record_message(&self, new: NewOutboundMessage) -> Result<Uuid, StoreError>;
}

/// Append-only: there is deliberately no update or delete.
#[async_trait]
pub trait AuditLog: Send + Sync {
    async fn append(&self, event: NewAuditEvent) -> Result<AuditEvent, StoreError>;
    async fn query(&self, query: AuditQuery) -> Result<Vec<AuditEvent>, StoreError>;
}

// ---------------------------------------------------------------------------------------------
// sea-orm implementation
// ---------------------------------------------------------------------------------------------

fn conflict_or(err: sea_orm::DbErr, what: &'static str) -> StoreError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => StoreError::Conflict(what),
        _ => StoreError::Database(err),
    }
}

fn msp_from_model(m: msp_account::Model) -> MspAccount {
    MspAccount {
        id: m.id,
        name: m.name,
        brand_logo_url: m.brand_logo_url,
        brand_color: m.brand_color,
        policy: MspPolicy {
            verified_window_seconds: m.verified_window_seconds,
            push_limit_count: m.push_limit_count,
            push_limit_window_seconds: m.push_limit_window_seconds,
            allow_contact_phone_fallback: m.allow_contact_phone_fallback,
            allow_admin_reset: m.allow_admin_reset,
            show_password_to_technician: m.show_password_to_technician,
            password_length: m.password_length,
            password_style: m.password_style,
            force_change_at_next_sign_in: m.force_change_at_next_sign_in,
        },
        created_at: m.created_at,
    }
}

#[async_trait]
impl MspRepository for Store {
    async fn create_msp(&self, new: NewMspAccount) -> Result<MspAccount, StoreError> {
        let now = Utc::now();
        let model = msp_account::ActiveModel {
            id: Set(Uuid::now_v7()),
            name: Set(new.name),
            brand_logo_url: Set(new.brand_logo_url),
            brand_color: Set(new.brand_color),
            verified_window_seconds: Set(new.policy.verified_window_seconds),
            push_limit_count: Set(new.policy.push_limit_count),
            push_limit_window_seconds: Set(new.policy.push_limit_window_seconds),
            allow_contact_phone_fallback: Set(new.policy.allow_contact_phone_fallback),
            allow_admin_reset: Set(new.policy.allow_admin_reset),
            show_password_to_technician: Set(new.policy.show_password_to_technician),
            password_length: Set(new.policy.password_length),
            password_style: Set(new.policy.password_style),
            force_change_at_next_sign_in: Set(new.policy.force_change_at_next_sign_in),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let model = msp_account::Entity::insert(model)
            .exec_with_returning(self.connection())
            .await?;
        Ok(msp_from_model(model))
    }

    async fn get_msp(&self, id: Uuid) -> Result<Option<MspAccount>, StoreError> {
        Ok(msp_account::Entity::find_by_id(id)
            .one(self.connection())
            .await?
            .map(msp_from_model))
    }

    async fn list_msps(&self) -> Result<Vec<MspAccount>, StoreError> {
        Ok(msp_account::Entity::find()
            .order_by_asc(msp_account::Column::Name)
            .all(self.connection())
            .await?
            .into_iter()
            .map(msp_from_model)
            .collect())
    }
}

impl Store {
    fn connection_from_model(&self, m: psa_connection::Model) -> Result<PsaConnection, StoreError> {
        let place = SealedPlace::new("psa_connections", "credentials_sealed", m.id);
        Ok(PsaConnection {
            credentials: self.keyring().open(&place, &m.credentials_sealed)?,
            kind: PsaKind::parse(&m.kind).ok_or(StoreError::NotFound("PSA kind"))?,
            id: m.id,
            msp_id: m.msp_id,
            name: m.name,
            base_url: m.base_url,
            settings: m.settings,
            created_at: m.created_at,
        })
    }

    fn integration_from_model(
        &self,
        m: tenant_integration::Model,
    ) -> Result<TenantIntegration, StoreError> {
        let place = SealedPlace::new("tenant_integrations", "secret_sealed", m.id);
        let secret = m
            .secret_sealed
            .as_deref()
            .map(|sealed| self.keyring().open(&place, sealed))
            .transpose()?;
        Ok(TenantIntegration {
            kind: IntegrationKind::parse(&m.kind)
                .ok_or(StoreError::NotFound("integration kind"))?,
            id: m.id,
            tenant_id: m.tenant_id,
            status: m.status,
            client_id: m.client_id,
            secret,
            secret_expires_at: m.secret_expires_at,
            last_checked_at: m.last_checked_at,
            last_check_code: m.last_check_code,
            last_check_message: m.last_check_message,
        })
    }
}

#[async_trait]
impl PsaConnectionRepository for Store {
    async fn create_connection(&self, new: NewPsaConnection) -> Result<PsaConnection, StoreError> {
        let id = Uuid::now_v7();
        let now = Utc::now();
        let sealed = self.keyring().seal(
            &SealedPlace::new("psa_connections", "credentials_sealed", id),
            new.credentials.expose_secret(),
        );
        let model = psa_connection::ActiveModel {
            id: Set(id),
            msp_id: Set(new.msp_id),
            kind: Set(new.kind.as_str().to_owned()),
            name: Set(new.name),
            base_url: Set(new.base_url),
            settings: Set(new.settings),
            credentials_sealed: Set(sealed),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let model = psa_connection::Entity::insert(model)
            .exec_with_returning(self.connection())
            .await?;
        self.connection_from_model(model)
    }

    async fn get_connection(&self, id: Uuid) -> Result<Option<PsaConnection>, StoreError> {
        psa_connection::Entity::find_by_id(id)
            .one(self.connection())
            .await?
            .map(|m| self.connection_from_model(m))
            .transpose()
    }

    async fn list_connections(&self, msp_id: Uuid) -> Result<Vec<PsaConnection>, StoreError> {
        psa_connection::Entity::find()
            .filter(psa_connection::Column::MspId.eq(msp_id))
            .order_by_asc(psa_connection::Column::CreatedAt)
            .all(self.connection())
            .await?
            .into_iter()
            .map(|m| self.connection_from_model(m))
            .collect()
    }

    async fn record_technician(&self, seen: TechnicianSighting) -> Result<Technician, StoreError> {
        let now = Utc::now();
        let model = technician::ActiveModel {
            id: Set(Uuid::now_v7()),
            msp_id: Set(seen.msp_id),
            psa_connection_id: Set(seen.psa_connection_id),
            psa_member_id: Set(seen.psa_member_id.clone()),
            display_name: Set(seen.display_name),
            email: Set(seen.email),
            created_at: Set(now),
            last_seen_at: Set(Some(now)),
        };
        // One statement, so two instances seeing the same member at once cannot both insert.
        technician::Entity::insert(model)
            .on_conflict(
                OnConflict::columns([
                    technician::Column::PsaConnectionId,
                    technician::Column::PsaMemberId,
                ])
                .update_columns([
                    technician::Column::DisplayName,
                    technician::Column::Email,
                    technician::Column::LastSeenAt,
                ])
                .to_owned(),
            )
            .exec(self.connection())
            .await?;
        let stored = technician::Entity::find()
            .filter(technician::Column::PsaConnectionId.eq(seen.psa_connection_id))
            .filter(technician::Column::PsaMemberId.eq(seen.psa_member_id))
            .one(self.connection())
            .await?
            .ok_or(StoreError::NotFound("technician"))?;
        Ok(Technician {
            id: stored.id,
            msp_id: stored.msp_id,
            psa_connection_id: stored.psa_connection_id,
            psa_member_id: stored.psa_member_id,
            display_name: stored.display_name,
            email: stored.email,
        })
    }

    async fn get_technician(&self, id: Uuid) -> Result<Option<Technician>, StoreError> {
        Ok(technician::Entity::find_by_id(id)
            .one(self.connection())
            .await?
            .map(|t| Technician {
                id: t.id,
                msp_id: t.msp_id,
                psa_connection_id: t.psa_connection_id,
                psa_member_id: t.psa_member_id,
                display_name: t.display_name,
                email: t.email,
            }))
    }
}

fn tenant_from_model(m: tenant::Model) -> Tenant {
    Tenant {
        id: m.id,
        msp_id: m.msp_id,
        microsoft_tenant_id: m.microsoft_tenant_id,
        display_name: m.display_name,
        verified_domains: serde_json::from_value(m.verified_domains).unwrap_or_default(),
    }
}

#[async_trait]
impl TenantRepository for Store {
    async fn create_tenant(&self, new: NewTenant) -> Result<Tenant, StoreError> {
        let now = Utc::now();
        let model = tenant::ActiveModel {
            id: Set(Uuid::now_v7()),
            msp_id: Set(new.msp_id),
            microsoft_tenant_id: Set(new.microsoft_tenant_id.to_ascii_lowercase()),
            display_name: Set(new.display_name),
            verified_domains: Set(serde_json::json!(new.verified_domains)),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let model = tenant::Entity::insert(model)
            .exec_with_returning(self.connection())
            .await
            .map_err(|err| {
                conflict_or(err, "a tenant with this Microsoft tenant id for this MSP")
            })?;
        Ok(tenant_from_model(model))
    }

    async fn get_tenant(&self, id: Uuid) -> Result<Option<Tenant>, StoreError> {
        Ok(tenant::Entity::find_by_id(id)
            .one(self.connection())
            .await?
            .map(tenant_from_model))
    }

    async fn list_tenants(&self, msp_id: Uuid) -> Result<Vec<Tenant>, StoreError> {
        Ok(tenant::Entity::find()
            .filter(tenant::Column::MspId.eq(msp_id))
            .order_by_asc(tenant::Column::DisplayName)
            .all(self.connection())
            .await?
            .into_iter()
            .map(tenant_from_model)
            .collect())
    }

    async fn save_integration(
        &self,
        update: IntegrationUpdate,
    ) -> Result<TenantIntegration, StoreError> {
        let now = Utc::now();
        let existing = tenant_integration::Entity::find()
            .filter(tenant_integration::Column::TenantId.eq(update.tenant_id))
            .filter(tenant_integration::Column::Kind.eq(update.kind.as_str()))
            .one(self.connection())
            .await?;
        let id = existing.as_ref().map(|m| m.id).unwrap_or_else(Uuid::now_v7);
        let place = SealedPlace::new("tenant_integrations", "secret_sealed", id);
        let sealed = update
            .secret
            .as_ref()
            .map(|secret| self.keyring().seal(&place, secret.expose_secret()));
        let model = tenant_integration::ActiveModel {
            id: Set(id),
            tenant_id: Set(update.tenant_id),
            kind: Set(update.kind.as_str().to_owned()),
            status: Set(update.status),
            client_id: Set(update.client_id),
            secret_sealed: Set(sealed),
            secret_expires_at: Set(update.secret_expires_at),
            last_checked_at: Set(update.last_checked_at),
            last_check_code: Set(update.last_check_code),
            last_check_message: Set(update.last_check_message),
            created_at: Set(existing.as_ref().map(|m| m.created_at).unwrap_or(now)),
            updated_at: Set(now),
        };
        let saved = match existing {
            Some(_) => {
                tenant_integration::Entity::update(model)
                    .exec(self.connection())
                    .await?
            }
            None => tenant_integration::Entity::insert(model)
                .exec_with_returning(self.connection())
                .await
                .map_err(|err| conflict_or(err, "an integration of this kind for this tenant"))?,
        };
        self.integration_from_model(saved)
    }

    async fn get_integration(
        &self,
        tenant_id: Uuid,
        kind: IntegrationKind,
    ) -> Result<Option<TenantIntegration>, StoreError> {
        tenant_integration::Entity::find()
            .filter(tenant_integration::Column::TenantId.eq(tenant_id))
            .filter(tenant_integration::Column::Kind.eq(kind.as_str()))
            .one(self.connection())
            .await?
            .map(|m| self.integration_from_model(m))
            .transpose()
    }

    async fn find_tenant_by_microsoft_id(
        &self,
        msp_id: Uuid,
        microsoft_tenant_id: &str,
    ) -> Result<Option<Tenant>, StoreError> {
        Ok(tenant::Entity::find()
            .filter(tenant::Column::MspId.eq(msp_id))
            .filter(tenant::Column::MicrosoftTenantId.eq(microsoft_tenant_id.to_ascii_lowercase()))
            .one(self.connection())
            .await?
            .map(tenant_from_model))
    }

    async fn list_integrations(
        &self,
        msp_id: Uuid,
    ) -> Result<Vec<(Tenant, TenantIntegration)>, StoreError> {
        let mut result = Vec::new();
        for tenant in self.list_tenants(msp_id).await? {
            let integrations = tenant_integration::Entity::find()
                .filter(tenant_integration::Column::TenantId.eq(tenant.id))
                .order_by_asc(tenant_integration::Column::Kind)
                .all(self.connection())
                .await?;
            for model in integrations {
                result.push((tenant.clone(), self.integration_from_model(model)?));
            }
        }
        Ok(result)
    }

    async fn get_integration_by_id(
        &self,
        id: Uuid,
    ) -> Result<Option<(Tenant, TenantIntegration)>, StoreError> {
        let Some(model) = tenant_integration::Entity::find_by_id(id)
            .one(self.connection())
            .await?
        else {
            return Ok(None);
        };
        let tenant = self
            .get_tenant(model.tenant_id)
            .await?
            .ok_or(StoreError::NotFound("tenant"))?;
        Ok(Some((tenant, self.integration_from_model(model)?)))
    }

    async fn delete_integration(&self, id: Uuid) -> Result<bool, StoreError> {
        let result = tenant_integration::Entity::delete_by_id(id)
            .exec(self.connection())
            .await?;
        Ok(result.rows_affected == 1)
    }

    async fn integrations_expiring_before(
        &self,
        kind: IntegrationKind,
        before: DateTime<Utc>,
    ) -> Result<Vec<(Tenant, TenantIntegration)>, StoreError> {
        let models = tenant_integration::Entity::find()
            .filter(tenant_integration::Column::Kind.eq(kind.as_str()))
            .filter(tenant_integration::Column::SecretExpiresAt.lt(before))
            .all(self.connection())
            .await?;
        let mut result = Vec::new();
        for model in models {
            if let Some(tenant) = self.get_tenant(model.tenant_id).await? {
                result.push((tenant, self.integration_from_model(model)?));
            }
        }
        Ok(result)
    }

    async fn map_company(&self, mapping: CompanyMapping) -> Result<(), StoreError> {
        let model = company_tenant_mapping::ActiveModel {
            id: Set(Uuid::now_v7()),
            msp_id: Set(mapping.msp_id),
            psa_connection_id: Set(mapping.psa_connection_id),
            psa_company_id: Set(mapping.psa_company_id),
            psa_company_name: Set(mapping.psa_company_name),
            tenant_id: Set(mapping.tenant_id),
            created_at: Set(Utc::now()),
        };
        company_tenant_mapping::Entity::insert(model)
            .on_conflict(
                OnConflict::columns([
                    company_tenant_mapping::Column::PsaConnectionId,
                    company_tenant_mapping::Column::PsaCompanyId,
                ])
                .update_columns([
                    company_tenant_mapping::Column::TenantId,
                    company_tenant_mapping::Column::PsaCompanyName,
                ])
                .to_owned(),
            )
            .exec(self.connection())
            .await?;
        Ok(())
    }

    async fn tenant_for_company(
        &self,
        psa_connection_id: Uuid,
        psa_company_id: &str,
    ) -> Result<Option<Tenant>, StoreError> {
        let Some(mapping) = company_tenant_mapping::Entity::find()
            .filter(company_tenant_mapping::Column::PsaConnectionId.eq(psa_connection_id))
            .filter(company_tenant_mapping::Column::PsaCompanyId.eq(psa_company_id))
            .one(self.connection())
            .await?
        else {
            return Ok(None);
        };
        self.get_tenant(mapping.tenant_id).await
    }
}

fn share_from_model(m: secure_share::Model) -> SecureShare {
    SecureShare {
        id: m.id,
        msp_id: m.msp_id,
        expires_at: m.expires_at,
        max_views: m.max_views,
        views: m.views,
        created_at: m.created_at,
        revoked_at: m.revoked_at,
    }
}

#[async_trait]
impl SecureShareRepository for Store {
    async fn create_share(&self, new: NewSecureShare) -> Result<SecureShare, StoreError> {
        let id = Uuid::now_v7();
        let sealed = self.keyring().seal(
            &SealedPlace::new("secure_shares", "content_sealed", id),
            new.content.expose_secret(),
        );
        let model = secure_share::ActiveModel {
            id: Set(id),
            msp_id: Set(new.msp_id),
            token_hash: Set(new.token_hash),
            content_sealed: Set(sealed),
            expires_at: Set(new.expires_at),
            max_views: Set(new.max_views),
            views: Set(0),
            created_by_technician_id: Set(new.created_by_technician_id),
            created_at: Set(Utc::now()),
            last_viewed_at: Set(None),
            revoked_at: Set(None),
        };
        let model = secure_share::Entity::insert(model)
            .exec_with_returning(self.connection())
            .await
            .map_err(|err| conflict_or(err, "a share with this token"))?;
        Ok(share_from_model(model))
    }

    async fn find_share_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<SecureShare>, StoreError> {
        Ok(secure_share::Entity::find()
            .filter(secure_share::Column::TokenHash.eq(token_hash))
            .one(self.connection())
            .await?
            .map(share_from_model))
    }

    async fn open_share_content(&self, id: Uuid) -> Result<SecretString, StoreError> {
        let model = secure_share::Entity::find_by_id(id)
            .one(self.connection())
            .await?
            .ok_or(StoreError::NotFound("secure share"))?;
        Ok(self.keyring().open(
            &SealedPlace::new("secure_shares", "content_sealed", id),
            &model.content_sealed,
        )?)
    }

    async fn consume_share_view(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<ConsumeOutcome, StoreError> {
        use sea_orm::ExprTrait;
        use sea_orm::sea_query::Expr;
        // The conditions and the increment are one statement, so the database serialises
        // concurrent reveals: a view is only counted while one is left.
        let counted = secure_share::Entity::update_many()
            .col_expr(
                secure_share::Column::Views,
                Expr::col(secure_share::Column::Views).add(1),
            )
            .col_expr(secure_share::Column::LastViewedAt, Expr::value(now))
            .filter(secure_share::Column::TokenHash.eq(token_hash))
            .filter(
                Expr::col(secure_share::Column::Views)
                    .lt(Expr::col(secure_share::Column::MaxViews)),
            )
            .filter(secure_share::Column::ExpiresAt.gt(now))
            .filter(secure_share::Column::RevokedAt.is_null())
            .exec(self.connection())
            .await?;
        let Some(model) = secure_share::Entity::find()
            .filter(secure_share::Column::TokenHash.eq(token_hash))
            .one(self.connection())
            .await?
        else {
            return Ok(ConsumeOutcome::NotFound);
        };
        if counted.rows_affected == 1 {
            let content = self.keyring().open(
                &SealedPlace::new("secure_shares", "content_sealed", model.id),
                &model.content_sealed,
            )?;
            let share = share_from_model(model);
            return Ok(ConsumeOutcome::Revealed {
                views_left: Ord::max(share.max_views - share.views, 0),
                content,
                share,
            });
        }
        let share = share_from_model(model);
        Ok(if share.revoked_at.is_some() {
            ConsumeOutcome::Revoked(share)
        } else if share.views >= share.max_views {
            ConsumeOutcome::Exhausted(share)
        } else {
            // Not revoked and views left, so the statement can only have refused on time.
            ConsumeOutcome::Expired(share)
        })
    }

    async fn revoke_share(&self, msp_id: Uuid, id: Uuid) -> Result<RevokeOutcome, StoreError> {
        use sea_orm::sea_query::Expr;
        let revoked = secure_share::Entity::update_many()
            .col_expr(secure_share::Column::RevokedAt, Expr::value(Utc::now()))
            .filter(secure_share::Column::Id.eq(id))
            .filter(secure_share::Column::MspId.eq(msp_id))
            .filter(secure_share::Column::RevokedAt.is_null())
            .exec(self.connection())
            .await?;
        let Some(model) = secure_share::Entity::find_by_id(id)
            .filter(secure_share::Column::MspId.eq(msp_id))
            .one(self.connection())
            .await?
        else {
            return Ok(RevokeOutcome::NotFound);
        };
        let share = share_from_model(model);
        Ok(if revoked.rows_affected == 1 {
            RevokeOutcome::Revoked(share)
        } else {
            RevokeOutcome::AlreadyRevoked(share)
        })
    }

    async fn list_shares(&self, msp_id: Uuid) -> Result<Vec<SecureShareListing>, StoreError> {
        // Only the listed columns are read: the sealed content never leaves the database here.
        let rows: Vec<(
            Uuid,
            Uuid,
            DateTime<Utc>,
            i32,
            i32,
            DateTime<Utc>,
            Option<DateTime<Utc>>,
            Option<Uuid>,
            Option<DateTime<Utc>>,
        )> = secure_share::Entity::find()
            .select_only()
            .columns([
                secure_share::Column::Id,
                secure_share::Column::MspId,
                secure_share::Column::ExpiresAt,
                secure_share::Column::MaxViews,
                secure_share::Column::Views,
                secure_share::Column::CreatedAt,
                secure_share::Column::RevokedAt,
                secure_share::Column::CreatedByTechnicianId,
                secure_share::Column::LastViewedAt,
            ])
            .filter(secure_share::Column::MspId.eq(msp_id))
            .order_by_desc(secure_share::Column::CreatedAt)
            .order_by_desc(secure_share::Column::Id)
            .limit(SHARE_LIST_LIMIT)
            .into_tuple()
            .all(self.connection())
            .await?;
        Ok(rows
            .into_iter()
            .map(
                |(
                    id,
                    msp_id,
                    expires_at,
                    max_views,
                    views,
                    created_at,
                    revoked_at,
                    created_by_technician_id,
                    last_viewed_at,
                )| SecureShareListing {
                    share: SecureShare {
                        id,
                        msp_id,
                        expires_at,
                        max_views,
                        views,
                        created_at,
                        revoked_at,
                    },
                    created_by_technician_id,
                    last_viewed_at,
                },
            )
            .collect())
    }
}

#[async_trait]
impl OutboundMessageRepository for Store {
    async fn record_message(&self, new: NewOutboundMessage) -> Result<Uuid, StoreError> {
        let id = Uuid::now_v7();
        let sealed = self.keyring().seal(
            &SealedPlace::new("outbound_messages", "body_sealed", id),
            new.body.expose_secret(),
        );
        let model = outbound_message::ActiveModel {
            id: Set(id),
            msp_id: Set(new.msp_id),
            channel: Set(new.channel),
            to_number: Set(new.to_number),
            body_sealed: Set(sealed),
            status: Set(new.status),
            provider_message_id: Set(None),
            failure_code: Set(None),
            created_at: Set(Utc::now()),
            sent_at: Set(None),
        };
        outbound_message::Entity::insert(model)
            .exec(self.connection())
            .await?;
        Ok(id)
    }
}

fn audit_from_model(m: audit_event::Model) -> AuditEvent {
    AuditEvent {
        id: m.id,
        occurred_at: m.occurred_at,
        event: NewAuditEvent {
            msp_id: m.msp_id,
            actor: AuditActor {
                kind: m.actor_kind,
                id: m.actor_id,
                name: m.actor_name,
            },
            action: m.action,
            subject_kind: m.subject_kind,
            subject_id: m.subject_id,
            subject_name: m.subject_name,
            psa_ticket_id: m.psa_ticket_id,
            outcome: m.outcome,
            upstream_request_id: m.upstream_request_id,
            details: m.details,
        },
    }
}

#[async_trait]
impl AuditLog for Store {
    async fn append(&self, event: NewAuditEvent) -> Result<AuditEvent, StoreError> {
        let model = audit_event::ActiveModel {
            // v7 ids sort by time, so ties on `occurred_at` still list in append order.
            id: Set(Uuid::now_v7()),
            msp_id: Set(event.msp_id),
            occurred_at: Set(Utc::now()),
            actor_kind: Set(event.actor.kind),
            actor_id: Set(event.actor.id),
            actor_name: Set(event.actor.name),
            action: Set(event.action),
            subject_kind: Set(event.subject_kind),
            subject_id: Set(event.subject_id),
            subject_name: Set(event.subject_name),
            psa_ticket_id: Set(event.psa_ticket_id),
            outcome: Set(event.outcome),
            upstream_request_id: Set(event.upstream_request_id),
            details: Set(event.details),
        };
        let model = audit_event::Entity::insert(model)
            .exec_with_returning(self.connection())
            .await?;
        Ok(audit_from_model(model))
    }

    async fn query(&self, query: AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        let mut select =
            audit_event::Entity::find().filter(audit_event::Column::MspId.eq(query.msp_id));
        if let Some(action) = query.action {
            select = select.filter(audit_event::Column::Action.eq(action));
        }
        if let Some(subject_id) = query.subject_id {
            select = select.filter(audit_event::Column::SubjectId.eq(subject_id));
        }
        if let Some(since) = query.since {
            select = select.filter(audit_event::Column::OccurredAt.gte(since));
        }
        if let Some(until) = query.until {
            select = select.filter(audit_event::Column::OccurredAt.lt(until));
        }
        Ok(select
            .order_by_desc(audit_event::Column::OccurredAt)
            .order_by_desc(audit_event::Column::Id)
            .limit(query.limit.clamp(1, 10_000))
            .all(self.connection())
            .await?
            .into_iter()
            .map(audit_from_model)
            .collect())
    }
}
