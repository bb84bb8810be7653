//! Secure shares: sealed one-time content behind a link token.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::crypto::SealedPlace;
use super::entities::secure_share;
use super::{Store, StoreError, conflict_or};
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

/// What a share holds, so that the page revealing it can say so. Only a password reset
/// names an account (a user principal name, not secret: stored as the verifications store
/// it); the content itself stays sealed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SharePurpose {
    /// A message the MSP wrote: the page says no more than "a secure message".
    #[default]
    Message,
    /// The new Microsoft 365 password of `account`.
    PasswordReset {
        account: String,
        /// Whether Microsoft asks for a new password at the next sign-in.
        change_at_next_sign_in: bool,
    },
}

impl SharePurpose {
    const MESSAGE: &'static str = "message";
    const PASSWORD_RESET: &'static str = "password_reset";

    fn of(model: &secure_share::Model) -> SharePurpose {
        match (model.purpose.as_str(), &model.account_name) {
            (SharePurpose::PASSWORD_RESET, Some(account)) => SharePurpose::PasswordReset {
                account: account.clone(),
                change_at_next_sign_in: model.change_password_at_sign_in,
            },
            _ => SharePurpose::Message,
        }
    }
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
        purpose: SharePurpose,
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

/// `list_shares` returns at most this many shares.
pub const SHARE_LIST_LIMIT: u64 = 1000;

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

/// The columns `list_shares` reads, in its `select_only` order.
type ListingRow = (
    Uuid,
    Uuid,
    DateTime<Utc>,
    i32,
    i32,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<Uuid>,
    Option<DateTime<Utc>>,
);

impl Store {
    /// Creates a share of a plain message.
    pub async fn create_share(&self, new: NewSecureShare) -> Result<SecureShare, StoreError> {
        self.create_share_for(new, SharePurpose::Message).await
    }

    /// Creates a share, recording what it is for.
    pub async fn create_share_for(
        &self,
        new: NewSecureShare,
        purpose: SharePurpose,
    ) -> Result<SecureShare, StoreError> {
        let (purpose, account_name, change_password_at_sign_in) = match purpose {
            SharePurpose::Message => (SharePurpose::MESSAGE, None, false),
            SharePurpose::PasswordReset {
                account,
                change_at_next_sign_in,
            } => (
                SharePurpose::PASSWORD_RESET,
                Some(account),
                change_at_next_sign_in,
            ),
        };
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
            purpose: Set(purpose.to_owned()),
            account_name: Set(account_name),
            change_password_at_sign_in: Set(change_password_at_sign_in),
        };
        let model = secure_share::Entity::insert(model)
            .exec_with_returning(self.connection())
            .await
            .map_err(|err| conflict_or(err, "a share with this token"))?;
        Ok(share_from_model(model))
    }

    pub async fn get_share(
        &self,
        msp_id: Uuid,
        id: Uuid,
    ) -> Result<Option<SecureShare>, StoreError> {
        Ok(secure_share::Entity::find_by_id(id)
            .filter(secure_share::Column::MspId.eq(msp_id))
            .one(self.connection())
            .await?
            .map(share_from_model))
    }

    pub async fn find_share_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<SecureShare>, StoreError> {
        Ok(secure_share::Entity::find()
            .filter(secure_share::Column::TokenHash.eq(token_hash))
            .one(self.connection())
            .await?
            .map(share_from_model))
    }

    pub async fn open_share_content(&self, id: Uuid) -> Result<SecretString, StoreError> {
        let model = secure_share::Entity::find_by_id(id)
            .one(self.connection())
            .await?
            .ok_or(StoreError::NotFound("secure share"))?;
        Ok(self.keyring().open(
            &SealedPlace::new("secure_shares", "content_sealed", id),
            &model.content_sealed,
        )?)
    }

    /// Counts one view of the share and opens its content, in one conditional statement:
    /// of several concurrent calls on a share with one view left, exactly one is
    /// `Revealed`. Otherwise says why not (the row is read only to tell which).
    pub async fn consume_share_view(
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
            let purpose = SharePurpose::of(&model);
            let share = share_from_model(model);
            return Ok(ConsumeOutcome::Revealed {
                views_left: Ord::max(share.max_views - share.views, 0),
                content,
                share,
                purpose,
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

    /// Withdraws the MSP's share so its link stops working; another MSP's share is
    /// `NotFound`.
    pub async fn revoke_share(&self, msp_id: Uuid, id: Uuid) -> Result<RevokeOutcome, StoreError> {
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

    /// The MSP's most recent shares (at most [`SHARE_LIST_LIMIT`]), newest first, without
    /// their content.
    pub async fn list_shares(&self, msp_id: Uuid) -> Result<Vec<SecureShareListing>, StoreError> {
        // Only the listed columns are read: the sealed content never leaves the database here.
        let rows: Vec<ListingRow> = secure_share::Entity::find()
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
