//! The MSP console's users, their one-time links and recovery codes, and their sessions.
//!
//! Nothing here can be used to sign in if the database leaks: passwords are argon2id hashes
//! (made by `core::accounts`), link tokens, session tokens and recovery codes are SHA-256
//! hashes of 256-bit (or, for recovery codes, 50-bit, single-use) random values, and the
//! TOTP secret is sealed, bound to its user's row. Sessions live here rather than in memory
//! so that any instance can serve them and a sign-out or a disabled user ends them on all.

use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, TransactionTrait};
use secrecy::SecretString;
use uuid::Uuid;

use super::audit::{NewAuditEvent, append_categorised_on, append_on};
use super::crypto::SealedPlace;
use super::entities::{console_link, console_recovery_code, console_session, console_user};
use super::{Store, StoreError, conflict_or};
use crate::domain::{AuditCategory, ConsoleRole};

/// A console user, without their credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleUser {
    pub id: Uuid,
    pub msp_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: ConsoleRole,
    /// Whether a password was chosen (the set-up link was used).
    pub has_password: bool,
    pub totp_enabled: bool,
    pub totp_exempt: bool,
    pub failed_attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub locked_until: Option<DateTime<Utc>>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub last_sign_in_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// What signing in checks, besides the user.
pub struct ConsoleCredentials {
    pub password_hash: Option<String>,
    /// The opened TOTP secret (base32), when one was set.
    pub totp_secret: Option<SecretString>,
    pub totp_last_step: Option<i64>,
}

/// A user to create, with the hash of their first set-up link.
#[derive(Debug, Clone)]
pub struct NewConsoleUser {
    pub msp_id: Uuid,
    /// Lower-cased by the caller.
    pub email: String,
    pub name: String,
    pub role: ConsoleRole,
    pub totp_exempt: bool,
}

/// A one-time link to create: the hash of its token, and when it stops working.
#[derive(Debug, Clone)]
pub struct NewConsoleLink {
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleLink {
    pub id: Uuid,
    pub user_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

/// How far a session got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStage {
    /// The password was right; the TOTP (or a recovery) code is still to come.
    SecondFactor,
    /// The password was right (or just chosen) and a second factor is required but not set
    /// up yet: only the enrolment page opens.
    EnrolTotp,
    /// Signed in.
    SignedIn,
}

impl SessionStage {
    pub const fn as_str(self) -> &'static str {
        match self {
            SessionStage::SecondFactor => "second_factor",
            SessionStage::EnrolTotp => "enrol_totp",
            SessionStage::SignedIn => "signed_in",
        }
    }

    fn parse(stored: &str) -> Option<SessionStage> {
        match stored {
            "second_factor" => Some(SessionStage::SecondFactor),
            "enrol_totp" => Some(SessionStage::EnrolTotp),
            "signed_in" => Some(SessionStage::SignedIn),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    pub id: Uuid,
    pub user_id: Uuid,
    pub csrf_token: String,
    pub stage: SessionStage,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A session to create: the hash of its cookie token and its CSRF token.
#[derive(Debug, Clone)]
pub struct NewConsoleSession {
    pub user_id: Uuid,
    pub token_hash: String,
    pub csrf_token: String,
    pub stage: SessionStage,
    pub expires_at: DateTime<Utc>,
}

/// What a failed sign-in leaves on the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureState {
    pub failed_attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub locked_until: Option<DateTime<Utc>>,
}

const TOTP_TABLE: &str = "console_users";
const TOTP_COLUMN: &str = "totp_secret_sealed";

fn totp_place(user_id: Uuid) -> SealedPlace {
    SealedPlace::new(TOTP_TABLE, TOTP_COLUMN, user_id)
}

fn user_from_model(m: console_user::Model) -> ConsoleUser {
    ConsoleUser {
        id: m.id,
        msp_id: m.msp_id,
        email: m.email,
        name: m.name,
        role: m.role,
        has_password: m.password_hash.is_some(),
        totp_enabled: m.totp_enabled,
        totp_exempt: m.totp_exempt,
        failed_attempts: m.failed_attempts,
        next_attempt_at: m.next_attempt_at,
        locked_until: m.locked_until,
        disabled_at: m.disabled_at,
        last_sign_in_at: m.last_sign_in_at,
        created_at: m.created_at,
    }
}

fn session_from_model(m: console_session::Model) -> Option<ConsoleSession> {
    Some(ConsoleSession {
        id: m.id,
        user_id: m.user_id,
        csrf_token: m.csrf_token,
        stage: SessionStage::parse(&m.stage)?,
        created_at: m.created_at,
        last_seen_at: m.last_seen_at,
        expires_at: m.expires_at,
    })
}

fn link_model(
    user_id: Uuid,
    link: NewConsoleLink,
    now: DateTime<Utc>,
) -> console_link::ActiveModel {
    console_link::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user_id),
        token_hash: Set(link.token_hash),
        created_at: Set(now),
        expires_at: Set(link.expires_at),
        used_at: Set(None),
    }
}

impl Store {
    /// Creates a user and their first set-up link, audited. An e-mail address already used
    /// by any console user is a conflict.
    pub async fn create_console_user(
        &self,
        new: NewConsoleUser,
        link: NewConsoleLink,
        audit: impl FnOnce(&ConsoleUser) -> NewAuditEvent,
    ) -> Result<ConsoleUser, StoreError> {
        let now = Utc::now();
        let txn = self.connection().begin().await?;
        let model = console_user::ActiveModel {
            id: Set(Uuid::now_v7()),
            msp_id: Set(new.msp_id),
            email: Set(new.email),
            name: Set(new.name),
            role: Set(new.role),
            password_hash: Set(None),
            totp_secret_sealed: Set(None),
            totp_enabled: Set(false),
            totp_exempt: Set(new.totp_exempt),
            totp_last_step: Set(None),
            failed_attempts: Set(0),
            next_attempt_at: Set(None),
            locked_until: Set(None),
            disabled_at: Set(None),
            last_sign_in_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let model = console_user::Entity::insert(model)
            .exec_with_returning(&txn)
            .await
            .map_err(|err| conflict_or(err, "console user"))?;
        console_link::Entity::insert(link_model(model.id, link, now))
            .exec(&txn)
            .await?;
        let user = user_from_model(model);
        append_on(&txn, audit(&user)).await?;
        txn.commit().await?;
        Ok(user)
    }

    /// A new one-time link for `user_id`; the user's earlier unused links stop working.
    pub async fn replace_console_link(
        &self,
        user_id: Uuid,
        link: NewConsoleLink,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        let txn = self.connection().begin().await?;
        console_link::Entity::update_many()
            .col_expr(console_link::Column::UsedAt, Expr::value(Some(now)))
            .filter(console_link::Column::UserId.eq(user_id))
            .filter(console_link::Column::UsedAt.is_null())
            .exec(&txn)
            .await?;
        console_link::Entity::insert(link_model(user_id, link, now))
            .exec(&txn)
            .await?;
        append_on(&txn, audit).await?;
        txn.commit().await?;
        Ok(())
    }

    /// The link whose token hashes to `token_hash`, with its user.
    pub async fn console_link(
        &self,
        token_hash: &str,
    ) -> Result<Option<(ConsoleLink, ConsoleUser)>, StoreError> {
        let Some(link) = console_link::Entity::find()
            .filter(console_link::Column::TokenHash.eq(token_hash))
            .one(self.connection())
            .await?
        else {
            return Ok(None);
        };
        let Some(user) = console_user::Entity::find_by_id(link.user_id)
            .one(self.connection())
            .await?
        else {
            return Ok(None);
        };
        Ok(Some((
            ConsoleLink {
                id: link.id,
                user_id: link.user_id,
                expires_at: link.expires_at,
                used_at: link.used_at,
            },
            user_from_model(user),
        )))
    }

    /// Uses the link (once: false when it was used or expired meanwhile) and sets the user's
    /// password hash; their TOTP enrolment starts afresh, their failures are forgotten and
    /// their sessions end.
    pub async fn use_console_link(
        &self,
        link_id: Uuid,
        user_id: Uuid,
        password_hash: String,
        audit: NewAuditEvent,
    ) -> Result<bool, StoreError> {
        let now = Utc::now();
        let txn = self.connection().begin().await?;
        let used = console_link::Entity::update_many()
            .col_expr(console_link::Column::UsedAt, Expr::value(Some(now)))
            .filter(console_link::Column::Id.eq(link_id))
            .filter(console_link::Column::UserId.eq(user_id))
            .filter(console_link::Column::UsedAt.is_null())
            .filter(console_link::Column::ExpiresAt.gt(now))
            .exec(&txn)
            .await?;
        if used.rows_affected != 1 {
            return Ok(false);
        }
        console_user::Entity::update_many()
            .col_expr(
                console_user::Column::PasswordHash,
                Expr::value(Some(password_hash)),
            )
            .col_expr(console_user::Column::TotpEnabled, Expr::value(false))
            .col_expr(
                console_user::Column::TotpSecretSealed,
                Expr::value(Option::<String>::None),
            )
            .col_expr(console_user::Column::FailedAttempts, Expr::value(0))
            .col_expr(
                console_user::Column::NextAttemptAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(
                console_user::Column::LockedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(console_user::Column::UpdatedAt, Expr::value(now))
            .filter(console_user::Column::Id.eq(user_id))
            .exec(&txn)
            .await?;
        console_recovery_code::Entity::delete_many()
            .filter(console_recovery_code::Column::UserId.eq(user_id))
            .exec(&txn)
            .await?;
        console_session::Entity::delete_many()
            .filter(console_session::Column::UserId.eq(user_id))
            .exec(&txn)
            .await?;
        append_on(&txn, audit).await?;
        self.commit_announced(txn).await?;
        Ok(true)
    }

    /// Sets a user's password hash directly (the demo's seeded accounts).
    pub async fn set_console_password_hash(
        &self,
        user_id: Uuid,
        password_hash: String,
    ) -> Result<(), StoreError> {
        console_user::Entity::update_many()
            .col_expr(
                console_user::Column::PasswordHash,
                Expr::value(Some(password_hash)),
            )
            .col_expr(console_user::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(console_user::Column::Id.eq(user_id))
            .exec(self.connection())
            .await?;
        Ok(())
    }

    pub async fn get_console_user(&self, id: Uuid) -> Result<Option<ConsoleUser>, StoreError> {
        Ok(console_user::Entity::find_by_id(id)
            .one(self.connection())
            .await?
            .map(user_from_model))
    }

    /// The MSP's console users, by name.
    pub async fn list_console_users(&self, msp_id: Uuid) -> Result<Vec<ConsoleUser>, StoreError> {
        Ok(console_user::Entity::find()
            .filter(console_user::Column::MspId.eq(msp_id))
            .order_by_asc(console_user::Column::Name)
            .order_by_asc(console_user::Column::Email)
            .all(self.connection())
            .await?
            .into_iter()
            .map(user_from_model)
            .collect())
    }

    /// The user who signs in with `email` (lower-cased), with what signing in checks.
    pub async fn console_user_by_email(
        &self,
        email: &str,
    ) -> Result<Option<(ConsoleUser, ConsoleCredentials)>, StoreError> {
        let Some(model) = console_user::Entity::find()
            .filter(console_user::Column::Email.eq(email))
            .one(self.connection())
            .await?
        else {
            return Ok(None);
        };
        let credentials = self.credentials_of(&model)?;
        Ok(Some((user_from_model(model), credentials)))
    }

    /// What signing in checks, for a user already found.
    pub async fn console_credentials(
        &self,
        user_id: Uuid,
    ) -> Result<Option<ConsoleCredentials>, StoreError> {
        match console_user::Entity::find_by_id(user_id)
            .one(self.connection())
            .await?
        {
            Some(model) => Ok(Some(self.credentials_of(&model)?)),
            None => Ok(None),
        }
    }

    fn credentials_of(
        &self,
        model: &console_user::Model,
    ) -> Result<ConsoleCredentials, StoreError> {
        let totp_secret = match &model.totp_secret_sealed {
            Some(sealed) => Some(self.keyring().open(&totp_place(model.id), sealed)?),
            None => None,
        };
        Ok(ConsoleCredentials {
            password_hash: model.password_hash.clone(),
            totp_secret,
            totp_last_step: model.totp_last_step,
        })
    }

    /// Counts one more failed sign-in of `user_id` and applies what `decide` makes of the
    /// new count (a wait, a lock), with its audit entry (a security event). The count is
    /// raised in SQL, so failures on several instances at once all count.
    pub async fn record_console_failure(
        &self,
        user_id: Uuid,
        decide: impl FnOnce(i32) -> FailureState,
        audit: impl FnOnce(&FailureState) -> NewAuditEvent,
    ) -> Result<FailureState, StoreError> {
        let txn = self.connection().begin().await?;
        console_user::Entity::update_many()
            .col_expr(
                console_user::Column::FailedAttempts,
                Expr::col(console_user::Column::FailedAttempts).add(1),
            )
            .filter(console_user::Column::Id.eq(user_id))
            .exec(&txn)
            .await?;
        let model = console_user::Entity::find_by_id(user_id)
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound("console user"))?;
        let state = decide(model.failed_attempts);
        console_user::Entity::update_many()
            .col_expr(
                console_user::Column::FailedAttempts,
                Expr::value(state.failed_attempts),
            )
            .col_expr(
                console_user::Column::NextAttemptAt,
                Expr::value(state.next_attempt_at),
            )
            .col_expr(
                console_user::Column::LockedUntil,
                Expr::value(state.locked_until),
            )
            .filter(console_user::Column::Id.eq(user_id))
            .exec(&txn)
            .await?;
        append_categorised_on(&txn, audit(&state), AuditCategory::Security).await?;
        txn.commit().await?;
        Ok(state)
    }

    /// Appends a security event (a refused sign-in that counted no failure, say).
    pub async fn append_security_event(&self, audit: NewAuditEvent) -> Result<(), StoreError> {
        append_categorised_on(self.connection(), audit, AuditCategory::Security).await?;
        Ok(())
    }

    /// Forgets the user's failures (a sign-in passed, or an admin unlocked them); with
    /// `signed_in`, records the sign-in too.
    pub async fn clear_console_failures(
        &self,
        user_id: Uuid,
        signed_in: bool,
        audit: Option<NewAuditEvent>,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        let txn = self.connection().begin().await?;
        let mut update = console_user::Entity::update_many()
            .col_expr(console_user::Column::FailedAttempts, Expr::value(0))
            .col_expr(
                console_user::Column::NextAttemptAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(
                console_user::Column::LockedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            );
        if signed_in {
            update = update.col_expr(console_user::Column::LastSignInAt, Expr::value(Some(now)));
        }
        update
            .filter(console_user::Column::Id.eq(user_id))
            .exec(&txn)
            .await?;
        if let Some(audit) = audit {
            append_on(&txn, audit).await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// Stores a new TOTP secret (sealed to the user's row), not yet enabled: enrolment ends
    /// when a code made from it is confirmed.
    pub async fn set_console_totp_secret(
        &self,
        user_id: Uuid,
        secret_base32: &str,
    ) -> Result<(), StoreError> {
        let sealed = self.keyring().seal(&totp_place(user_id), secret_base32);
        console_user::Entity::update_many()
            .col_expr(
                console_user::Column::TotpSecretSealed,
                Expr::value(Some(sealed)),
            )
            .col_expr(console_user::Column::TotpEnabled, Expr::value(false))
            .col_expr(
                console_user::Column::TotpLastStep,
                Expr::value(Option::<i64>::None),
            )
            .col_expr(console_user::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(console_user::Column::Id.eq(user_id))
            .exec(self.connection())
            .await?;
        Ok(())
    }

    /// Accepts the TOTP code of time step `step` once: false when a code of that step or a
    /// later one was already accepted (on any instance).
    pub async fn accept_console_totp_step(
        &self,
        user_id: Uuid,
        step: i64,
    ) -> Result<bool, StoreError> {
        let accepted = console_user::Entity::update_many()
            .col_expr(console_user::Column::TotpLastStep, Expr::value(Some(step)))
            .filter(console_user::Column::Id.eq(user_id))
            .filter(
                Condition::any()
                    .add(console_user::Column::TotpLastStep.is_null())
                    .add(console_user::Column::TotpLastStep.lt(step)),
            )
            .exec(self.connection())
            .await?;
        Ok(accepted.rows_affected == 1)
    }

    /// Finishes TOTP enrolment: the secret is enabled and the user's recovery codes are
    /// replaced by `recovery_hashes`.
    pub async fn enable_console_totp(
        &self,
        user_id: Uuid,
        recovery_hashes: Vec<String>,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let txn = self.connection().begin().await?;
        console_user::Entity::update_many()
            .col_expr(console_user::Column::TotpEnabled, Expr::value(true))
            .col_expr(console_user::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(console_user::Column::Id.eq(user_id))
            .exec(&txn)
            .await?;
        console_recovery_code::Entity::delete_many()
            .filter(console_recovery_code::Column::UserId.eq(user_id))
            .exec(&txn)
            .await?;
        for hash in recovery_hashes {
            console_recovery_code::Entity::insert(console_recovery_code::ActiveModel {
                id: Set(Uuid::now_v7()),
                user_id: Set(user_id),
                code_hash: Set(hash),
                used_at: Set(None),
            })
            .exec(&txn)
            .await?;
        }
        append_on(&txn, audit).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Uses one of the user's recovery codes (by its hash): false when none matches or it
    /// was used.
    pub async fn use_console_recovery_code(
        &self,
        user_id: Uuid,
        code_hash: &str,
    ) -> Result<bool, StoreError> {
        let used = console_recovery_code::Entity::update_many()
            .col_expr(
                console_recovery_code::Column::UsedAt,
                Expr::value(Some(Utc::now())),
            )
            .filter(console_recovery_code::Column::UserId.eq(user_id))
            .filter(console_recovery_code::Column::CodeHash.eq(code_hash))
            .filter(console_recovery_code::Column::UsedAt.is_null())
            .exec(self.connection())
            .await?;
        Ok(used.rows_affected >= 1)
    }

    /// How many unused recovery codes the user has left.
    pub async fn console_recovery_codes_left(&self, user_id: Uuid) -> Result<u64, StoreError> {
        use sea_orm::PaginatorTrait;
        Ok(console_recovery_code::Entity::find()
            .filter(console_recovery_code::Column::UserId.eq(user_id))
            .filter(console_recovery_code::Column::UsedAt.is_null())
            .count(self.connection())
            .await?)
    }

    /// Gives a user `role`, with its audit entry, in one transaction.
    pub async fn set_console_user_role(
        &self,
        user_id: Uuid,
        role: ConsoleRole,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let txn = self.connection().begin().await?;
        console_user::Entity::update_many()
            .col_expr(console_user::Column::Role, Expr::value(role))
            .col_expr(console_user::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(console_user::Column::Id.eq(user_id))
            .exec(&txn)
            .await?;
        append_on(&txn, audit).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Replaces a user's password hash, with its audit entry, in one transaction; the
    /// user's other sessions (all but `keep_session`) end.
    pub async fn change_console_password(
        &self,
        user_id: Uuid,
        password_hash: String,
        keep_session: Uuid,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let txn = self.connection().begin().await?;
        console_user::Entity::update_many()
            .col_expr(
                console_user::Column::PasswordHash,
                Expr::value(Some(password_hash)),
            )
            .col_expr(console_user::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(console_user::Column::Id.eq(user_id))
            .exec(&txn)
            .await?;
        console_session::Entity::delete_many()
            .filter(console_session::Column::UserId.eq(user_id))
            .filter(console_session::Column::Id.ne(keep_session))
            .exec(&txn)
            .await?;
        append_on(&txn, audit).await?;
        self.commit_announced(txn).await?;
        Ok(())
    }

    /// Disables (`Some`) or enables (`None`) a user; disabling ends their sessions at once.
    pub async fn set_console_user_disabled(
        &self,
        user_id: Uuid,
        disabled_at: Option<DateTime<Utc>>,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let txn = self.connection().begin().await?;
        console_user::Entity::update_many()
            .col_expr(console_user::Column::DisabledAt, Expr::value(disabled_at))
            .col_expr(console_user::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(console_user::Column::Id.eq(user_id))
            .exec(&txn)
            .await?;
        if disabled_at.is_some() {
            console_session::Entity::delete_many()
                .filter(console_session::Column::UserId.eq(user_id))
                .exec(&txn)
                .await?;
        }
        append_on(&txn, audit).await?;
        self.commit_announced(txn).await?;
        Ok(())
    }

    /// Removes a user, their links, codes and sessions.
    pub async fn delete_console_user(
        &self,
        user_id: Uuid,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let txn = self.connection().begin().await?;
        // Children first: SQLite enforces the cascades only with foreign keys switched on.
        console_session::Entity::delete_many()
            .filter(console_session::Column::UserId.eq(user_id))
            .exec(&txn)
            .await?;
        console_link::Entity::delete_many()
            .filter(console_link::Column::UserId.eq(user_id))
            .exec(&txn)
            .await?;
        console_recovery_code::Entity::delete_many()
            .filter(console_recovery_code::Column::UserId.eq(user_id))
            .exec(&txn)
            .await?;
        console_user::Entity::delete_many()
            .filter(console_user::Column::Id.eq(user_id))
            .exec(&txn)
            .await?;
        append_on(&txn, audit).await?;
        self.commit_announced(txn).await?;
        Ok(())
    }

    pub async fn create_console_session(
        &self,
        new: NewConsoleSession,
    ) -> Result<ConsoleSession, StoreError> {
        let now = Utc::now();
        let model = console_session::ActiveModel {
            id: Set(Uuid::now_v7()),
            user_id: Set(new.user_id),
            token_hash: Set(new.token_hash),
            csrf_token: Set(new.csrf_token),
            stage: Set(new.stage.as_str().to_owned()),
            created_at: Set(now),
            last_seen_at: Set(now),
            expires_at: Set(new.expires_at),
        };
        let model = console_session::Entity::insert(model)
            .exec_with_returning(self.connection())
            .await?;
        session_from_model(model).ok_or(StoreError::NotFound("console session"))
    }

    /// The session whose cookie token hashes to `token_hash`, with its user.
    pub async fn console_session(
        &self,
        token_hash: &str,
    ) -> Result<Option<(ConsoleSession, ConsoleUser)>, StoreError> {
        let Some(session) = console_session::Entity::find()
            .filter(console_session::Column::TokenHash.eq(token_hash))
            .one(self.connection())
            .await?
            .and_then(session_from_model)
        else {
            return Ok(None);
        };
        let Some(user) = self.get_console_user(session.user_id).await? else {
            return Ok(None);
        };
        Ok(Some((session, user)))
    }

    /// Records that the session was used now (the idle timeout counts from here).
    pub async fn touch_console_session(&self, id: Uuid) -> Result<(), StoreError> {
        console_session::Entity::update_many()
            .col_expr(console_session::Column::LastSeenAt, Expr::value(Utc::now()))
            .filter(console_session::Column::Id.eq(id))
            .exec(self.connection())
            .await?;
        Ok(())
    }

    /// Moves the session on to `to`, only from `from` (false when it was not there).
    pub async fn advance_console_session(
        &self,
        id: Uuid,
        from: SessionStage,
        to: SessionStage,
    ) -> Result<bool, StoreError> {
        let moved = console_session::Entity::update_many()
            .col_expr(console_session::Column::Stage, Expr::value(to.as_str()))
            .col_expr(console_session::Column::LastSeenAt, Expr::value(Utc::now()))
            .filter(console_session::Column::Id.eq(id))
            .filter(console_session::Column::Stage.eq(from.as_str()))
            .exec(self.connection())
            .await?;
        Ok(moved.rows_affected == 1)
    }

    /// Ends one session, on every instance (announced: a pod opened in it stops at once).
    pub async fn delete_console_session(&self, id: Uuid) -> Result<(), StoreError> {
        let txn = self.connection().begin().await?;
        console_session::Entity::delete_many()
            .filter(console_session::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        self.commit_announced(txn).await
    }

    /// The session `id` with its user, whatever its stage: what a pod a console user opened
    /// is checked against (see `core::pod`).
    pub async fn console_session_by_id(
        &self,
        id: Uuid,
    ) -> Result<Option<(ConsoleSession, ConsoleUser)>, StoreError> {
        let Some(session) = console_session::Entity::find_by_id(id)
            .one(self.connection())
            .await?
            .and_then(session_from_model)
        else {
            return Ok(None);
        };
        let Some(user) = self.get_console_user(session.user_id).await? else {
            return Ok(None);
        };
        Ok(Some((session, user)))
    }

    /// Removes sessions past their absolute end or idle for longer than `idle_since` allows.
    pub async fn delete_expired_console_sessions(
        &self,
        idle_since: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let now = Utc::now();
        let deleted = console_session::Entity::delete_many()
            .filter(
                Condition::any()
                    .add(console_session::Column::ExpiresAt.lte(now))
                    .add(console_session::Column::LastSeenAt.lt(idle_since)),
            )
            .exec(self.connection())
            .await?;
        Ok(deleted.rows_affected)
    }
}
