//! MSP accounts and their policy.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, EntityTrait, QueryOrder, TransactionTrait};
use uuid::Uuid;

use super::audit::{NewAuditEvent, append_on};
use super::entities::msp_account;
use super::{Store, StoreError};
use crate::domain::MspPolicy;

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
    /// The phone number end users are told to call, as the MSP writes it
    /// (`+1 206 555 0199`); `None` when the MSP set none.
    pub brand_support_phone: Option<String>,
    /// The name SMS texts are signed with; `None` signs them with `name`.
    pub brand_sms_sender_name: Option<String>,
    /// The version of the logo uploaded to Vouch, if one is (its address is
    /// `/brand/{msp id}/logo/{version}.png`).
    pub brand_logo_version: Option<String>,
    pub policy: MspPolicy,
    pub created_at: DateTime<Utc>,
}

/// What end users see of an MSP, as an admin sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MspBranding {
    pub name: String,
    pub color: Option<String>,
    pub logo_url: Option<String>,
    pub support_phone: Option<String>,
    pub sms_sender_name: Option<String>,
    /// The uploaded logo's version; set by [`Store::put_logo`], kept or cleared here.
    pub logo_version: Option<String>,
}

fn msp_from_model(m: msp_account::Model) -> MspAccount {
    MspAccount {
        id: m.id,
        name: m.name,
        brand_logo_url: m.brand_logo_url,
        brand_color: m.brand_color,
        brand_support_phone: m.brand_support_phone,
        brand_sms_sender_name: m.brand_sms_sender_name,
        brand_logo_version: m.brand_logo_version,
        policy: MspPolicy {
            verified_window_seconds: m.verified_window_seconds,
            push_limit_count: m.push_limit_count,
            push_limit_window_seconds: m.push_limit_window_seconds,
            technician_push_limit_count: m.technician_push_limit_count,
            allow_contact_phone_fallback: m.allow_contact_phone_fallback,
            allow_admin_reset: m.allow_admin_reset,
            show_password_to_technician: m.show_password_to_technician,
            password_length: m.password_length,
            password_style: m.password_style,
            force_change_at_next_sign_in: m.force_change_at_next_sign_in,
            fraud_hold_seconds: m.fraud_hold_seconds,
            count_approved_pushes: m.count_approved_pushes,
            share_lifetime_seconds: m.share_lifetime_seconds,
            one_tap_link_lifetime_seconds: m.one_tap_link_lifetime_seconds,
        },
        created_at: m.created_at,
    }
}

async fn insert_msp_on(
    conn: &impl sea_orm::ConnectionTrait,
    new: NewMspAccount,
) -> Result<MspAccount, StoreError> {
    let now = Utc::now();
    let model = msp_account::ActiveModel {
        id: Set(Uuid::now_v7()),
        name: Set(new.name),
        brand_logo_url: Set(new.brand_logo_url),
        brand_color: Set(new.brand_color),
        brand_support_phone: Set(None),
        verified_window_seconds: Set(new.policy.verified_window_seconds),
        push_limit_count: Set(new.policy.push_limit_count),
        push_limit_window_seconds: Set(new.policy.push_limit_window_seconds),
        technician_push_limit_count: Set(new.policy.technician_push_limit_count),
        allow_contact_phone_fallback: Set(new.policy.allow_contact_phone_fallback),
        allow_admin_reset: Set(new.policy.allow_admin_reset),
        show_password_to_technician: Set(new.policy.show_password_to_technician),
        password_length: Set(new.policy.password_length),
        password_style: Set(new.policy.password_style),
        force_change_at_next_sign_in: Set(new.policy.force_change_at_next_sign_in),
        fraud_hold_seconds: Set(new.policy.fraud_hold_seconds),
        count_approved_pushes: Set(new.policy.count_approved_pushes),
        share_lifetime_seconds: Set(new.policy.share_lifetime_seconds),
        one_tap_link_lifetime_seconds: Set(new.policy.one_tap_link_lifetime_seconds),
        brand_sms_sender_name: Set(None),
        brand_logo_version: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let model = msp_account::Entity::insert(model)
        .exec_with_returning(conn)
        .await?;
    Ok(msp_from_model(model))
}

impl Store {
    /// Creates an MSP account (unaudited: for fixtures; the set-up service uses
    /// [`Store::create_msp_audited`]).
    pub async fn create_msp(&self, new: NewMspAccount) -> Result<MspAccount, StoreError> {
        insert_msp_on(self.connection(), new).await
    }

    /// Creates an MSP account and appends the audit `audit` makes of it, in one transaction.
    pub async fn create_msp_audited(
        &self,
        new: NewMspAccount,
        audit: impl FnOnce(&MspAccount) -> NewAuditEvent,
    ) -> Result<MspAccount, StoreError> {
        let txn = self.connection().begin().await?;
        let msp = insert_msp_on(&txn, new).await?;
        append_on(&txn, audit(&msp)).await?;
        txn.commit().await?;
        Ok(msp)
    }

    /// Saves an MSP's branding and policy (all of them, as checked by the settings service)
    /// and appends `audit`, in one transaction: a change is never saved unaudited.
    pub async fn update_msp_settings(
        &self,
        id: Uuid,
        branding: MspBranding,
        policy: MspPolicy,
        audit: NewAuditEvent,
    ) -> Result<MspAccount, StoreError> {
        let model = msp_account::ActiveModel {
            id: Set(id),
            name: Set(branding.name),
            brand_color: Set(branding.color),
            brand_logo_url: Set(branding.logo_url),
            brand_support_phone: Set(branding.support_phone),
            verified_window_seconds: Set(policy.verified_window_seconds),
            push_limit_count: Set(policy.push_limit_count),
            push_limit_window_seconds: Set(policy.push_limit_window_seconds),
            technician_push_limit_count: Set(policy.technician_push_limit_count),
            allow_contact_phone_fallback: Set(policy.allow_contact_phone_fallback),
            allow_admin_reset: Set(policy.allow_admin_reset),
            show_password_to_technician: Set(policy.show_password_to_technician),
            password_length: Set(policy.password_length),
            password_style: Set(policy.password_style),
            force_change_at_next_sign_in: Set(policy.force_change_at_next_sign_in),
            fraud_hold_seconds: Set(policy.fraud_hold_seconds),
            count_approved_pushes: Set(policy.count_approved_pushes),
            share_lifetime_seconds: Set(policy.share_lifetime_seconds),
            one_tap_link_lifetime_seconds: Set(policy.one_tap_link_lifetime_seconds),
            brand_sms_sender_name: Set(branding.sms_sender_name),
            brand_logo_version: Set(branding.logo_version),
            updated_at: Set(Utc::now()),
            ..Default::default()
        };
        let txn = self.connection().begin().await?;
        let model = msp_account::Entity::update(model).exec(&txn).await?;
        append_on(&txn, audit).await?;
        self.commit_announced(txn).await?;
        Ok(msp_from_model(model))
    }

    pub async fn get_msp(&self, id: Uuid) -> Result<Option<MspAccount>, StoreError> {
        Ok(msp_account::Entity::find_by_id(id)
            .one(self.connection())
            .await?
            .map(msp_from_model))
    }

    pub async fn list_msps(&self) -> Result<Vec<MspAccount>, StoreError> {
        Ok(msp_account::Entity::find()
            .order_by_asc(msp_account::Column::Name)
            .all(self.connection())
            .await?
            .into_iter()
            .map(msp_from_model)
            .collect())
    }
}
