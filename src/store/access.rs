//! API keys and admin-consent `state` values. Both are bearer secrets, so only their SHA-256
//! is stored: a leaked database does not hand out working keys. They are 256-bit random
//! values, so a fast hash is enough (no password-hashing function needed).

use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait};
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::audit::{NewAuditEvent, append_on};
use super::entities::{api_key, consent_state};
use super::{Store, StoreError};
use crate::domain::ApiKeyScope;

/// Every Vouch API key starts with this, so leaked keys are easy to recognise and scan for.
pub const API_KEY_PREFIX: &str = "vouch_";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: Uuid,
    pub msp_id: Uuid,
    pub name: String,
    /// The first characters of the key, to tell keys apart in lists.
    pub key_prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// What the key may do.
    pub scope: ApiKeyScope,
}

/// A random 256-bit token, hex-encoded.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

pub fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

fn key_from_model(m: api_key::Model) -> ApiKey {
    ApiKey {
        id: m.id,
        msp_id: m.msp_id,
        name: m.name,
        key_prefix: m.key_prefix,
        created_at: m.created_at,
        last_used_at: m.last_used_at,
        revoked_at: m.revoked_at,
        scope: m.scope,
    }
}

impl Store {
    /// Creates an admin key; the returned secret is shown once and never stored.
    pub async fn create_api_key(
        &self,
        msp_id: Uuid,
        name: &str,
    ) -> Result<(ApiKey, SecretString), StoreError> {
        self.create_scoped_api_key(msp_id, name, ApiKeyScope::Admin)
            .await
    }

    /// Creates a key of `scope` (unaudited: for fixtures; the set-up service uses
    /// [`Store::create_api_key_audited`]). The returned secret is shown once and never stored.
    pub async fn create_scoped_api_key(
        &self,
        msp_id: Uuid,
        name: &str,
        scope: ApiKeyScope,
    ) -> Result<(ApiKey, SecretString), StoreError> {
        insert_api_key_on(self.connection(), msp_id, name, scope).await
    }

    /// Creates a key of `scope` and appends the audit `audit` makes of it, in one transaction.
    pub async fn create_api_key_audited(
        &self,
        msp_id: Uuid,
        name: &str,
        scope: ApiKeyScope,
        audit: impl FnOnce(&ApiKey) -> NewAuditEvent,
    ) -> Result<(ApiKey, SecretString), StoreError> {
        let txn = self.connection().begin().await?;
        let (key, secret) = insert_api_key_on(&txn, msp_id, name, scope).await?;
        append_on(&txn, audit(&key)).await?;
        txn.commit().await?;
        Ok((key, secret))
    }

    /// The key's record when `presented` is a valid, unrevoked key.
    pub async fn authenticate_api_key(
        &self,
        presented: &str,
    ) -> Result<Option<ApiKey>, StoreError> {
        if !presented.starts_with(API_KEY_PREFIX) {
            return Ok(None);
        }
        // Looking up by hash compares hashes, not keys: no timing oracle on the key itself.
        let Some(model) = api_key::Entity::find()
            .filter(api_key::Column::KeyHash.eq(sha256_hex(presented)))
            .filter(api_key::Column::RevokedAt.is_null())
            .one(self.connection())
            .await?
        else {
            return Ok(None);
        };
        let now = Utc::now();
        // Recorded at most once a minute: a busy integration should not write on every call.
        if model
            .last_used_at
            .is_none_or(|last| now - last > Duration::minutes(1))
        {
            api_key::Entity::update_many()
                .col_expr(api_key::Column::LastUsedAt, Expr::value(now))
                .filter(api_key::Column::Id.eq(model.id))
                .exec(self.connection())
                .await?;
        }
        Ok(Some(key_from_model(model)))
    }

    pub async fn list_api_keys(&self, msp_id: Uuid) -> Result<Vec<ApiKey>, StoreError> {
        Ok(api_key::Entity::find()
            .filter(api_key::Column::MspId.eq(msp_id))
            .order_by_asc(api_key::Column::CreatedAt)
            .all(self.connection())
            .await?
            .into_iter()
            .map(key_from_model)
            .collect())
    }

    /// Revokes the MSP's key `id` and appends `audit`, in one transaction: the key, as it is
    /// now, or `None` when the MSP has no such unrevoked key (nothing is audited then).
    /// Keys are checked against the database on every request, so this takes effect on
    /// every instance from the next request on.
    pub async fn revoke_api_key_audited(
        &self,
        msp_id: Uuid,
        id: Uuid,
        audit: NewAuditEvent,
    ) -> Result<Option<ApiKey>, StoreError> {
        let txn = self.connection().begin().await?;
        let result = api_key::Entity::update_many()
            .col_expr(api_key::Column::RevokedAt, Expr::value(Utc::now()))
            .filter(api_key::Column::Id.eq(id))
            .filter(api_key::Column::MspId.eq(msp_id))
            .filter(api_key::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?;
        if result.rows_affected != 1 {
            return Ok(None);
        }
        append_on(&txn, audit).await?;
        let key = api_key::Entity::find_by_id(id).one(&txn).await?;
        txn.commit().await?;
        Ok(key.map(key_from_model))
    }

    pub async fn revoke_api_key(&self, msp_id: Uuid, id: Uuid) -> Result<bool, StoreError> {
        let result = api_key::Entity::update_many()
            .col_expr(api_key::Column::RevokedAt, Expr::value(Utc::now()))
            .filter(api_key::Column::Id.eq(id))
            .filter(api_key::Column::MspId.eq(msp_id))
            .filter(api_key::Column::RevokedAt.is_null())
            .exec(self.connection())
            .await?;
        Ok(result.rows_affected == 1)
    }
}

impl Store {
    /// A fresh single-use state for `msp_id`, valid for `ttl`.
    pub async fn create_consent_state(
        &self,
        msp_id: Uuid,
        ttl: Duration,
    ) -> Result<SecretString, StoreError> {
        let state = random_token();
        let now = Utc::now();
        let model = consent_state::ActiveModel {
            id: Set(Uuid::now_v7()),
            msp_id: Set(msp_id),
            state_hash: Set(sha256_hex(&state)),
            created_at: Set(now),
            expires_at: Set(now + ttl),
            used_at: Set(None),
        };
        consent_state::Entity::insert(model)
            .exec(self.connection())
            .await?;
        Ok(SecretString::from(state))
    }

    /// Spends `state`: the MSP it was issued to, or `None` when unknown, used or expired.
    /// One statement, so two callbacks racing with the same state cannot both succeed.
    pub async fn consume_consent_state(&self, state: &str) -> Result<Option<Uuid>, StoreError> {
        let hash = sha256_hex(state);
        let now = Utc::now();
        let spent = consent_state::Entity::update_many()
            .col_expr(consent_state::Column::UsedAt, Expr::value(now))
            .filter(consent_state::Column::StateHash.eq(hash.clone()))
            .filter(consent_state::Column::UsedAt.is_null())
            .filter(consent_state::Column::ExpiresAt.gt(now))
            .exec(self.connection())
            .await?;
        if spent.rows_affected != 1 {
            return Ok(None);
        }
        Ok(consent_state::Entity::find()
            .filter(consent_state::Column::StateHash.eq(hash))
            .one(self.connection())
            .await?
            .map(|m| m.msp_id))
    }
}

async fn insert_api_key_on(
    conn: &impl sea_orm::ConnectionTrait,
    msp_id: Uuid,
    name: &str,
    scope: ApiKeyScope,
) -> Result<(ApiKey, SecretString), StoreError> {
    let key = format!("{API_KEY_PREFIX}{}", random_token());
    let model = api_key::ActiveModel {
        id: Set(Uuid::now_v7()),
        msp_id: Set(msp_id),
        name: Set(name.to_owned()),
        key_prefix: Set(key[..API_KEY_PREFIX.len() + 6].to_owned()),
        key_hash: Set(sha256_hex(&key)),
        created_at: Set(Utc::now()),
        last_used_at: Set(None),
        revoked_at: Set(None),
        scope: Set(scope),
    };
    let model = api_key::Entity::insert(model)
        .exec_with_returning(conn)
        .await?;
    Ok((key_from_model(model), SecretString::from(key)))
}
