//! The MSP console's accounts and sign-in: users (admins and technicians), their one-time
//! set-up links, passwords (argon2id), the TOTP second factor with recovery codes, sessions,
//! and the protection around them (backoff, lockout, audit). It knows no HTTP: the console
//! pages (`web::console`) and the command line call it.
//!
//! Sign-in moves a session through stages ([`SessionStage`]): the password opens a session
//! that only reaches the second-factor page (or the enrolment page when a second factor is
//! required but not set up); the code turns it into a signed-in session under a new token,
//! so a token seen before the second factor never becomes a signed-in one.

use std::sync::LazyLock;
use std::time::Duration as StdDuration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use totp_rs::{Algorithm, Secret, TOTP};
use url::Url;
use uuid::Uuid;

use crate::config::ConsoleConfig;
use crate::domain::{ActorKind, AuditOutcome, ConsoleRole, ErrorCode};
use crate::store::access::{random_token, sha256_hex};
use crate::store::audit::{AuditActor, NewAuditEvent};
use crate::store::console_users::{
    ConsoleSession, ConsoleUser, FailureState, NewConsoleLink, NewConsoleSession, NewConsoleUser,
    SessionStage,
};
use crate::store::{Store, StoreError};

/// The shortest password the console accepts.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The longest: argon2 reads every byte, and nobody types more.
pub const MAX_PASSWORD_CHARS: usize = 256;
/// How many recovery codes an enrolment gives.
pub const RECOVERY_CODES: usize = 10;
/// A session between the password and the second factor lasts at most this long.
const PENDING_SESSION_MINUTES: i64 = 15;
/// The session's last use is written again only after this long (fewer writes; the idle
/// timeout is minutes).
const TOUCH_EVERY_SECONDS: i64 = 15;
/// The longest backoff wait between two sign-in attempts.
const MAX_BACKOFF_SECONDS: u64 = 300;
/// What the authenticator app shows above the code.
const TOTP_ISSUER: &str = "Vouch";
const TOTP_STEP_SECONDS: u64 = 30;

/// Common passwords, refused whatever their length. The list is Django's
/// `CommonPasswordValidator` list (`django/contrib/auth/common-passwords.txt.gz`, Django
/// 5.2, BSD licence; compiled by Royce Williams from leaked-password corpora), keeping the
/// entries of 8 or more characters, lower-cased and de-duplicated. Compared lower-cased.
static COMMON_PASSWORDS: LazyLock<std::collections::HashSet<&'static str>> =
    LazyLock::new(|| include_str!("common_passwords.txt").lines().collect());

/// A hash of a password nobody knows, checked when the e-mail address is unknown (or has no
/// password yet), so that such an attempt costs the same time as a wrong password.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_password(&random_token()).expect("argon2 hashes a random password"));

/// Why an account operation or a sign-in was refused. Each sentence says what to do.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AccountError {
    #[error("{problem}")]
    InvalidInput {
        field: &'static str,
        problem: String,
    },
    #[error(
        "Another console user already signs in with this e-mail address. Use another address, or remove that user first."
    )]
    EmailTaken,
    #[error("The e-mail address or the password is not correct. Check both and try again.")]
    SignInFailed,
    #[error("Too many failed sign-ins in a row. Wait {}, then try again.", crate::domain::wait_in_words(*.retry_after))]
    Throttled { retry_after: StdDuration },
    #[error(
        "This account is locked after too many failed sign-ins. Try again after {}, or ask an admin of your MSP to unlock it.",
        crate::domain::utc_minute(*.until)
    )]
    Locked { until: DateTime<Utc> },
    #[error(
        "The code is not correct, or was already used. Enter the current 6-digit code from your authenticator app, or one of your recovery codes."
    )]
    CodeIncorrect,
    #[error("{why}")]
    PasswordRejected { field: &'static str, why: String },
    #[error(
        "This link does not work any more: it expired or was already used. Ask an admin of your MSP for a new one."
    )]
    LinkInvalid,
    #[error("Sign in to continue.")]
    SignInRequired,
    #[error("This page is for your MSP's admins. Ask an admin if something needs changing.")]
    AdminRequired,
    #[error("No console user with this id belongs to your MSP. Reload the list of users.")]
    UserNotFound,
    #[error(
        "This would leave your MSP without an admin who can sign in. Invite another admin first."
    )]
    LastAdmin,
    #[error("Something went wrong inside Vouch. Try again in a moment.")]
    Store(String),
}

impl AccountError {
    pub fn code(&self) -> ErrorCode {
        match self {
            AccountError::InvalidInput { .. } => ErrorCode::InvalidRequest,
            AccountError::EmailTaken => ErrorCode::ConsoleEmailTaken,
            AccountError::SignInFailed => ErrorCode::ConsoleSignInFailed,
            AccountError::Throttled { .. } => ErrorCode::ConsoleSignInThrottled,
            AccountError::Locked { .. } => ErrorCode::ConsoleAccountLocked,
            AccountError::CodeIncorrect => ErrorCode::ConsoleCodeIncorrect,
            AccountError::PasswordRejected { .. } => ErrorCode::ConsolePasswordRejected,
            AccountError::LinkInvalid => ErrorCode::ConsoleLinkInvalid,
            AccountError::SignInRequired => ErrorCode::ConsoleSignInRequired,
            AccountError::AdminRequired => ErrorCode::ConsoleAdminRequired,
            AccountError::UserNotFound => ErrorCode::ConsoleUserNotFound,
            AccountError::LastAdmin => ErrorCode::ConsoleLastAdmin,
            AccountError::Store(_) => ErrorCode::InternalError,
        }
    }

    /// The form field the refusal is about, for showing it next to that field.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            AccountError::InvalidInput { field, .. }
            | AccountError::PasswordRejected { field, .. } => Some(field),
            AccountError::EmailTaken => Some("email"),
            AccountError::CodeIncorrect => Some("code"),
            _ => None,
        }
    }
}

impl From<StoreError> for AccountError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(_) => AccountError::EmailTaken,
            other => {
                tracing::error!(error = %other, "console account storage failure");
                AccountError::Store(other.to_string())
            }
        }
    }
}

/// The sign-in rules, from `console.*`.
#[derive(Debug, Clone)]
pub struct AccountSettings {
    pub idle_timeout: Duration,
    pub absolute_timeout: Duration,
    pub require_totp_for_admins: bool,
    pub require_totp_for_technicians: bool,
    pub backoff_after_failures: i32,
    pub backoff_base_seconds: u64,
    pub lockout_after_failures: i32,
    pub lockout: Duration,
    pub link_lifetime: Duration,
}

impl AccountSettings {
    pub fn from_config(config: &ConsoleConfig) -> AccountSettings {
        let seconds = |s: u64| Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1000));
        AccountSettings {
            idle_timeout: seconds(config.idle_timeout_seconds),
            absolute_timeout: seconds(config.absolute_timeout_seconds),
            require_totp_for_admins: config.require_totp_for_admins,
            require_totp_for_technicians: config.require_totp_for_technicians,
            backoff_after_failures: i32::try_from(config.backoff_after_failures)
                .unwrap_or(i32::MAX),
            backoff_base_seconds: config.backoff_base_seconds,
            lockout_after_failures: i32::try_from(config.lockout_after_failures)
                .unwrap_or(i32::MAX),
            lockout: seconds(config.lockout_seconds),
            link_lifetime: seconds(config.link_lifetime_seconds),
        }
    }

    /// What the `failures`-th failure in a row leaves on the account.
    fn after_failure(&self, failures: i32, now: DateTime<Utc>) -> FailureState {
        if failures >= self.lockout_after_failures {
            // Locked; the count starts again once the lock ends.
            return FailureState {
                failed_attempts: 0,
                next_attempt_at: None,
                locked_until: Some(now + self.lockout),
            };
        }
        let next_attempt_at =
            (failures >= self.backoff_after_failures && self.backoff_base_seconds > 0).then(|| {
                let doublings = u32::try_from(failures - self.backoff_after_failures)
                    .unwrap_or(0)
                    .min(16);
                let wait = self
                    .backoff_base_seconds
                    .saturating_mul(1 << doublings)
                    .min(MAX_BACKOFF_SECONDS);
                now + Duration::seconds(wait as i64)
            });
        FailureState {
            failed_attempts: failures,
            next_attempt_at,
            locked_until: None,
        }
    }

    fn totp_required(&self, user: &ConsoleUser) -> bool {
        if user.totp_exempt {
            return false;
        }
        match user.role {
            ConsoleRole::Admin => self.require_totp_for_admins,
            ConsoleRole::Technician => self.require_totp_for_technicians,
        }
    }
}

/// A set-up or invitation link, shown once (only its token's hash is kept).
pub struct SetupLink {
    pub user: ConsoleUser,
    pub url: SecretString,
    pub expires_at: DateTime<Utc>,
}

/// A session just opened: its cookie token (shown to the browser once) and how far it got.
pub struct OpenedSession {
    pub token: SecretString,
    pub stage: SessionStage,
    pub user: ConsoleUser,
}

/// What the enrolment page shows: the secret as the QR code's `otpauth://` URL and as text.
pub struct TotpEnrolment {
    pub secret_base32: SecretString,
    pub otpauth_url: SecretString,
}

/// What an admin (or the command line) asks for when adding a user.
#[derive(Debug, Clone)]
pub struct NewUserInput {
    pub email: String,
    pub name: String,
    pub role: ConsoleRole,
}

#[derive(Clone)]
pub struct AccountsService {
    store: Store,
    public_url: Url,
    settings: AccountSettings,
}

impl AccountsService {
    pub fn new(store: Store, public_url: Url, settings: AccountSettings) -> AccountsService {
        AccountsService {
            store,
            public_url,
            settings,
        }
    }

    pub fn settings(&self) -> &AccountSettings {
        &self.settings
    }

    /// Adds a console user to the MSP and returns their one-time set-up link.
    pub async fn create_user(
        &self,
        msp_id: Uuid,
        actor: &AuditActor,
        input: NewUserInput,
    ) -> Result<SetupLink, AccountError> {
        self.create(msp_id, actor, input, false).await
    }

    async fn create(
        &self,
        msp_id: Uuid,
        actor: &AuditActor,
        input: NewUserInput,
        totp_exempt: bool,
    ) -> Result<SetupLink, AccountError> {
        let email = checked_email(&input.email)?;
        let name = input.name.trim().to_owned();
        let name = if name.is_empty() {
            email.split('@').next().unwrap_or(&email).to_owned()
        } else {
            name
        };
        if name.chars().count() > 200 {
            return Err(AccountError::InvalidInput {
                field: "name",
                problem: "The name is longer than 200 characters. Shorten it.".to_owned(),
            });
        }
        let (token, link) = self.new_link();
        let actor = actor.clone();
        let user = self
            .store
            .create_console_user(
                NewConsoleUser {
                    msp_id,
                    email,
                    name,
                    role: input.role,
                    totp_exempt,
                },
                link.clone(),
                |user| {
                    audit(
                        msp_id,
                        &actor,
                        "console_user.create",
                        user,
                        serde_json::json!({
                            "role": user.role.as_str(),
                            "link_expires_at": link.expires_at,
                        }),
                    )
                },
            )
            .await?;
        Ok(SetupLink {
            url: self.link_url(&token),
            expires_at: link.expires_at,
            user,
        })
    }

    /// A new set-up link for a user of the MSP (an invitation sent again, a forgotten
    /// password); the user's earlier links stop working. Their password stays until the new
    /// link is used.
    pub async fn new_setup_link(
        &self,
        msp_id: Uuid,
        actor: &AuditActor,
        user_id: Uuid,
    ) -> Result<SetupLink, AccountError> {
        let user = self.user_of(msp_id, user_id).await?;
        let (token, link) = self.new_link();
        let expires_at = link.expires_at;
        self.store
            .replace_console_link(
                user.id,
                link,
                audit(
                    msp_id,
                    actor,
                    "console_user.new_link",
                    &user,
                    serde_json::json!({ "link_expires_at": expires_at }),
                ),
            )
            .await?;
        Ok(SetupLink {
            url: self.link_url(&token),
            expires_at,
            user,
        })
    }

    fn new_link(&self) -> (String, NewConsoleLink) {
        let token = random_token();
        let link = NewConsoleLink {
            token_hash: sha256_hex(&token),
            expires_at: Utc::now() + self.settings.link_lifetime,
        };
        (token, link)
    }

    fn link_url(&self, token: &str) -> SecretString {
        let url = self
            .public_url
            .join(&format!("console/setup/{token}"))
            .expect("a relative path joins onto the public URL");
        SecretString::from(url.to_string())
    }

    /// The MSP's console users.
    pub async fn list(&self, msp_id: Uuid) -> Result<Vec<ConsoleUser>, AccountError> {
        Ok(self.store.list_console_users(msp_id).await?)
    }

    /// The MSP's user with this e-mail address (any case).
    pub async fn find_by_email(
        &self,
        msp_id: Uuid,
        email: &str,
    ) -> Result<ConsoleUser, AccountError> {
        match self
            .store
            .console_user_by_email(&email.trim().to_lowercase())
            .await?
        {
            Some((user, _)) if user.msp_id == msp_id => Ok(user),
            _ => Err(AccountError::UserNotFound),
        }
    }

    async fn user_of(&self, msp_id: Uuid, user_id: Uuid) -> Result<ConsoleUser, AccountError> {
        match self.store.get_console_user(user_id).await? {
            Some(user) if user.msp_id == msp_id => Ok(user),
            _ => Err(AccountError::UserNotFound),
        }
    }

    /// Disables a user: they cannot sign in, and their sessions end at once everywhere.
    pub async fn disable(
        &self,
        msp_id: Uuid,
        actor: &AuditActor,
        user_id: Uuid,
    ) -> Result<ConsoleUser, AccountError> {
        let user = self.user_of(msp_id, user_id).await?;
        self.keep_an_admin(&user).await?;
        if user.disabled_at.is_none() {
            self.store
                .set_console_user_disabled(
                    user.id,
                    Some(Utc::now()),
                    audit(
                        msp_id,
                        actor,
                        "console_user.disable",
                        &user,
                        serde_json::json!({}),
                    ),
                )
                .await?;
        }
        self.user_of(msp_id, user_id).await
    }

    /// Lets a disabled user sign in again.
    pub async fn enable(
        &self,
        msp_id: Uuid,
        actor: &AuditActor,
        user_id: Uuid,
    ) -> Result<ConsoleUser, AccountError> {
        let user = self.user_of(msp_id, user_id).await?;
        if user.disabled_at.is_some() {
            self.store
                .set_console_user_disabled(
                    user.id,
                    None,
                    audit(
                        msp_id,
                        actor,
                        "console_user.enable",
                        &user,
                        serde_json::json!({}),
                    ),
                )
                .await?;
        }
        self.user_of(msp_id, user_id).await
    }

    /// Removes a user and ends their sessions.
    pub async fn remove(
        &self,
        msp_id: Uuid,
        actor: &AuditActor,
        user_id: Uuid,
    ) -> Result<ConsoleUser, AccountError> {
        let user = self.user_of(msp_id, user_id).await?;
        self.keep_an_admin(&user).await?;
        self.store
            .delete_console_user(
                user.id,
                audit(
                    msp_id,
                    actor,
                    "console_user.remove",
                    &user,
                    serde_json::json!({}),
                ),
            )
            .await?;
        Ok(user)
    }

    /// Lifts a lockout (and any backoff) at once.
    pub async fn unlock(
        &self,
        msp_id: Uuid,
        actor: &AuditActor,
        user_id: Uuid,
    ) -> Result<ConsoleUser, AccountError> {
        let user = self.user_of(msp_id, user_id).await?;
        self.store
            .clear_console_failures(
                user.id,
                false,
                Some(audit(
                    msp_id,
                    actor,
                    "console_user.unlock",
                    &user,
                    serde_json::json!({ "failed_attempts": user.failed_attempts, "locked_until": user.locked_until }),
                )),
            )
            .await?;
        self.user_of(msp_id, user_id).await
    }

    /// Gives a user another role. Making the MSP's last enabled admin a technician is
    /// refused. The new role holds from the user's next request on.
    pub async fn set_role(
        &self,
        msp_id: Uuid,
        actor: &AuditActor,
        user_id: Uuid,
        role: ConsoleRole,
    ) -> Result<ConsoleUser, AccountError> {
        let user = self.user_of(msp_id, user_id).await?;
        if user.role == role {
            return Ok(user);
        }
        self.keep_an_admin(&user).await?;
        self.store
            .set_console_user_role(
                user.id,
                role,
                audit(
                    msp_id,
                    actor,
                    "console_user.role",
                    &user,
                    serde_json::json!({
                        "before": { "role": user.role.as_str() },
                        "after": { "role": role.as_str() },
                    }),
                ),
            )
            .await?;
        self.user_of(msp_id, user_id).await
    }

    /// The signed-in user changes their own password: the current one must be right, the
    /// new one passes the same rules as at set-up. Their other sessions end; this one stays.
    pub async fn change_password(
        &self,
        user: &ConsoleUser,
        session_id: Uuid,
        current: &SecretString,
        password: &SecretString,
        confirmation: &SecretString,
    ) -> Result<(), AccountError> {
        let hash = self
            .store
            .console_credentials(user.id)
            .await?
            .and_then(|c| c.password_hash)
            .unwrap_or_else(|| DUMMY_HASH.clone());
        if !verify_password_blocking(current.clone(), hash).await {
            return Err(AccountError::PasswordRejected {
                field: "current",
                why: "This is not your current password. Enter the one you sign in with."
                    .to_owned(),
            });
        }
        check_new_password(password, confirmation, &user.email)?;
        let hash = hash_password_blocking(password.clone()).await?;
        self.store
            .change_console_password(
                user.id,
                hash,
                session_id,
                audit(
                    user.msp_id,
                    &actor_of(user),
                    "console_user.password_change",
                    user,
                    serde_json::json!({}),
                ),
            )
            .await?;
        Ok(())
    }

    /// Refuses to disable or remove the MSP's last enabled admin.
    async fn keep_an_admin(&self, user: &ConsoleUser) -> Result<(), AccountError> {
        if user.role != ConsoleRole::Admin || user.disabled_at.is_some() {
            return Ok(());
        }
        let others = self
            .store
            .list_console_users(user.msp_id)
            .await?
            .into_iter()
            .filter(|u| u.id != user.id && u.role == ConsoleRole::Admin && u.disabled_at.is_none())
            .count();
        if others == 0 {
            return Err(AccountError::LastAdmin);
        }
        Ok(())
    }

    /// The user a set-up link is for, while it works.
    pub async fn link_user(&self, token: &str) -> Result<ConsoleUser, AccountError> {
        match self.store.console_link(&sha256_hex(token)).await? {
            Some((link, user))
                if link.used_at.is_none()
                    && link.expires_at > Utc::now()
                    && user.disabled_at.is_none() =>
            {
                Ok(user)
            }
            _ => Err(AccountError::LinkInvalid),
        }
    }

    /// Uses a set-up link: sets the chosen password and opens a session (at the TOTP
    /// enrolment when a second factor is required).
    pub async fn complete_setup(
        &self,
        token: &str,
        password: &SecretString,
        confirmation: &SecretString,
    ) -> Result<OpenedSession, AccountError> {
        let Some((link, user)) = self.store.console_link(&sha256_hex(token)).await? else {
            return Err(AccountError::LinkInvalid);
        };
        if link.used_at.is_some() || link.expires_at <= Utc::now() || user.disabled_at.is_some() {
            return Err(AccountError::LinkInvalid);
        }
        check_new_password(password, confirmation, &user.email)?;
        let hash = hash_password_blocking(password.clone()).await?;
        let used = self
            .store
            .use_console_link(
                link.id,
                user.id,
                hash,
                audit(
                    user.msp_id,
                    &actor_of(&user),
                    "console_user.setup",
                    &user,
                    serde_json::json!({}),
                ),
            )
            .await?;
        if !used {
            return Err(AccountError::LinkInvalid);
        }
        let user = self
            .store
            .get_console_user(user.id)
            .await?
            .ok_or(AccountError::LinkInvalid)?;
        if self.settings.totp_required(&user) {
            self.open_session(&user, SessionStage::EnrolTotp).await
        } else {
            self.signed_in(&user).await
        }
    }

    /// Checks an e-mail address and password. An unknown address takes the same time and
    /// gets the same answer as a wrong password. Failures count towards the backoff and the
    /// lock, and each is audited as a security event (never with the password).
    pub async fn sign_in(
        &self,
        email: &str,
        password: &SecretString,
    ) -> Result<OpenedSession, AccountError> {
        let email = email.trim().to_lowercase();
        let now = Utc::now();
        let found = if email.is_empty() || email.chars().count() > 320 {
            None
        } else {
            self.store.console_user_by_email(&email).await?
        };
        let Some((user, credentials)) = found else {
            let _ = verify_password_blocking(password.clone(), DUMMY_HASH.clone()).await;
            // No MSP to file it under: the log keeps it (the address, never the password).
            tracing::warn!(
                email = %email,
                "console sign-in refused: no console user has this e-mail address"
            );
            return Err(AccountError::SignInFailed);
        };
        if let Some(until) = user.locked_until.filter(|until| *until > now) {
            self.refused(
                &user,
                "locked",
                serde_json::json!({ "locked_until": until }),
            )
            .await?;
            return Err(AccountError::Locked { until });
        }
        if let Some(next) = user.next_attempt_at.filter(|next| *next > now) {
            let retry_after = (next - now).to_std().unwrap_or_default();
            self.refused(
                &user,
                "throttled",
                serde_json::json!({ "next_attempt_at": next }),
            )
            .await?;
            return Err(AccountError::Throttled { retry_after });
        }
        let hash = credentials
            .password_hash
            .clone()
            .unwrap_or_else(|| DUMMY_HASH.clone());
        let matches = verify_password_blocking(password.clone(), hash).await
            && credentials.password_hash.is_some();
        if !matches {
            self.count_failure(&user, "wrong_password").await?;
            return Err(AccountError::SignInFailed);
        }
        if user.disabled_at.is_some() {
            self.refused(&user, "disabled", serde_json::json!({}))
                .await?;
            return Err(AccountError::SignInFailed);
        }
        if user.totp_enabled {
            self.open_session(&user, SessionStage::SecondFactor).await
        } else if self.settings.totp_required(&user) {
            self.open_session(&user, SessionStage::EnrolTotp).await
        } else {
            self.signed_in(&user).await
        }
    }

    /// The second factor of a session that passed the password: a TOTP code (once: a code
    /// already used is refused) or an unused recovery code. On success the session is
    /// replaced by a signed-in one under a new token.
    pub async fn second_factor(
        &self,
        session: &ConsoleSession,
        user: &ConsoleUser,
        code: &str,
    ) -> Result<OpenedSession, AccountError> {
        if session.stage != SessionStage::SecondFactor {
            return Err(AccountError::SignInRequired);
        }
        let now = Utc::now();
        if let Some(until) = user.locked_until.filter(|until| *until > now) {
            self.store.delete_console_session(session.id).await?;
            return Err(AccountError::Locked { until });
        }
        if let Some(next) = user.next_attempt_at.filter(|next| *next > now) {
            return Err(AccountError::Throttled {
                retry_after: (next - now).to_std().unwrap_or_default(),
            });
        }
        let credentials = self
            .store
            .console_credentials(user.id)
            .await?
            .ok_or(AccountError::SignInRequired)?;
        let code = code.trim();
        let accepted = if is_totp_code(code) {
            match &credentials.totp_secret {
                Some(secret) if user.totp_enabled => self.accept_totp(user, secret, code).await?,
                _ => false,
            }
        } else {
            let normalized = normalize_recovery_code(code);
            !normalized.is_empty()
                && self
                    .store
                    .use_console_recovery_code(user.id, &sha256_hex(&normalized))
                    .await?
        };
        if !accepted {
            let state = self.count_failure(user, "wrong_code").await?;
            if let Some(until) = state.locked_until {
                self.store.delete_console_session(session.id).await?;
                return Err(AccountError::Locked { until });
            }
            return Err(AccountError::CodeIncorrect);
        }
        self.store.delete_console_session(session.id).await?;
        if !is_totp_code(code) {
            self.store
                .append(audit(
                    user.msp_id,
                    &actor_of(user),
                    "console.recovery_code_used",
                    user,
                    serde_json::json!({
                        "left": self.store.console_recovery_codes_left(user.id).await?,
                    }),
                ))
                .await?;
        }
        self.signed_in(user).await
    }

    /// The secret to enrol, for a session at the enrolment stage: a new one, or the one
    /// being enrolled (a reload shows the same QR code).
    pub async fn enrolment(
        &self,
        session: &ConsoleSession,
        user: &ConsoleUser,
    ) -> Result<TotpEnrolment, AccountError> {
        if session.stage != SessionStage::EnrolTotp {
            return Err(AccountError::SignInRequired);
        }
        let credentials = self
            .store
            .console_credentials(user.id)
            .await?
            .ok_or(AccountError::SignInRequired)?;
        let secret = match credentials.totp_secret {
            Some(secret) if !user.totp_enabled => secret,
            _ => {
                let mut bytes = [0u8; 20];
                rand::rngs::OsRng.fill_bytes(&mut bytes);
                let Secret::Encoded(encoded) = Secret::Raw(bytes.to_vec()).to_encoded() else {
                    unreachable!("to_encoded gives an encoded secret")
                };
                self.store
                    .set_console_totp_secret(user.id, &encoded)
                    .await?;
                SecretString::from(encoded)
            }
        };
        let totp = totp_of(&secret, &user.email)?;
        Ok(TotpEnrolment {
            otpauth_url: SecretString::from(totp.get_url()),
            secret_base32: secret,
        })
    }

    /// Finishes the enrolment with a code from the new secret: the second factor is on, the
    /// recovery codes (returned once; only their hashes are kept) replace any earlier ones,
    /// and the session becomes a signed-in one under a new token.
    pub async fn finish_enrolment(
        &self,
        session: &ConsoleSession,
        user: &ConsoleUser,
        code: &str,
    ) -> Result<(OpenedSession, Vec<String>), AccountError> {
        if session.stage != SessionStage::EnrolTotp {
            return Err(AccountError::SignInRequired);
        }
        let credentials = self
            .store
            .console_credentials(user.id)
            .await?
            .ok_or(AccountError::SignInRequired)?;
        let code = code.trim();
        let accepted = match &credentials.totp_secret {
            Some(secret) if is_totp_code(code) => self.accept_totp(user, secret, code).await?,
            _ => false,
        };
        if !accepted {
            self.store
                .append_security_event(audit(
                    user.msp_id,
                    &actor_of(user),
                    "console.totp_enrolment",
                    user,
                    serde_json::json!({ "reason": "wrong_code" }),
                ))
                .await?;
            return Err(AccountError::CodeIncorrect);
        }
        let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| recovery_code()).collect();
        let hashes = codes
            .iter()
            .map(|c| sha256_hex(&normalize_recovery_code(c)))
            .collect();
        self.store
            .enable_console_totp(
                user.id,
                hashes,
                audit(
                    user.msp_id,
                    &actor_of(user),
                    "console_user.totp_enabled",
                    user,
                    serde_json::json!({ "recovery_codes": RECOVERY_CODES }),
                ),
            )
            .await?;
        self.store.delete_console_session(session.id).await?;
        let opened = self.signed_in(user).await?;
        Ok((opened, codes))
    }

    /// The session of a cookie token, while it lasts (idle and absolute timeouts) and its
    /// user may sign in; its last use is recorded. An ended session is deleted.
    pub async fn session(
        &self,
        token: &str,
    ) -> Result<Option<(ConsoleSession, ConsoleUser)>, AccountError> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        let Some((session, user)) = self.store.console_session(&sha256_hex(token)).await? else {
            return Ok(None);
        };
        let now = Utc::now();
        if session.expires_at <= now
            || session.last_seen_at + self.settings.idle_timeout <= now
            || user.disabled_at.is_some()
        {
            self.store.delete_console_session(session.id).await?;
            return Ok(None);
        }
        if now - session.last_seen_at > Duration::seconds(TOUCH_EVERY_SECONDS) {
            self.store.touch_console_session(session.id).await?;
        }
        Ok(Some((session, user)))
    }

    /// Ends the session on every instance.
    pub async fn sign_out(
        &self,
        session: &ConsoleSession,
        user: &ConsoleUser,
    ) -> Result<(), AccountError> {
        self.store.delete_console_session(session.id).await?;
        self.store
            .append(audit(
                user.msp_id,
                &actor_of(user),
                "console.sign_out",
                user,
                serde_json::json!({}),
            ))
            .await?;
        Ok(())
    }

    /// Seeds a user of the demo with a password and no second factor (`totp_exempt`), for
    /// `vouch demo` only. An existing user of that address keeps their account; their
    /// password is set again.
    pub async fn seed_demo_user(
        &self,
        msp_id: Uuid,
        input: NewUserInput,
        password: &SecretString,
    ) -> Result<ConsoleUser, AccountError> {
        let actor = AuditActor {
            kind: ActorKind::System,
            id: None,
            name: Some("vouch demo".to_owned()),
        };
        let user = match self.find_by_email(msp_id, &input.email).await {
            Ok(user) => user,
            Err(AccountError::UserNotFound) => self.create(msp_id, &actor, input, true).await?.user,
            Err(err) => return Err(err),
        };
        let hash = hash_password_blocking(password.clone()).await?;
        self.store.set_console_password_hash(user.id, hash).await?;
        Ok(user)
    }

    async fn accept_totp(
        &self,
        user: &ConsoleUser,
        secret: &SecretString,
        code: &str,
    ) -> Result<bool, AccountError> {
        let totp = totp_of(secret, &user.email)?;
        let now = Utc::now().timestamp().max(0) as u64;
        let Some(step) = matching_step(&totp, code, now) else {
            return Ok(false);
        };
        Ok(self
            .store
            .accept_console_totp_step(user.id, step as i64)
            .await?)
    }

    async fn open_session(
        &self,
        user: &ConsoleUser,
        stage: SessionStage,
    ) -> Result<OpenedSession, AccountError> {
        let token = random_token();
        let lifetime = match stage {
            SessionStage::SignedIn => self.settings.absolute_timeout,
            SessionStage::SecondFactor | SessionStage::EnrolTotp => {
                Duration::minutes(PENDING_SESSION_MINUTES).min(self.settings.absolute_timeout)
            }
        };
        self.store
            .create_console_session(NewConsoleSession {
                user_id: user.id,
                token_hash: sha256_hex(&token),
                csrf_token: random_token(),
                stage,
                expires_at: Utc::now() + lifetime,
            })
            .await?;
        Ok(OpenedSession {
            token: SecretString::from(token),
            stage,
            user: user.clone(),
        })
    }

    async fn signed_in(&self, user: &ConsoleUser) -> Result<OpenedSession, AccountError> {
        self.store
            .clear_console_failures(
                user.id,
                true,
                Some(audit(
                    user.msp_id,
                    &actor_of(user),
                    "console.sign_in",
                    user,
                    serde_json::json!({ "second_factor": user.totp_enabled }),
                )),
            )
            .await?;
        self.open_session(user, SessionStage::SignedIn).await
    }

    /// Counts a failure (backoff, lock) with its security audit entry.
    async fn count_failure(
        &self,
        user: &ConsoleUser,
        reason: &'static str,
    ) -> Result<FailureState, AccountError> {
        let now = Utc::now();
        let settings = self.settings.clone();
        let state = self
            .store
            .record_console_failure(
                user.id,
                |failures| settings.after_failure(failures, now),
                |state| {
                    let mut event = audit(
                        user.msp_id,
                        &actor_of(user),
                        "console.sign_in",
                        user,
                        serde_json::json!({
                            "reason": reason,
                            "failed_attempts": state.failed_attempts,
                            "next_attempt_at": state.next_attempt_at,
                            "locked_until": state.locked_until,
                        }),
                    );
                    event.outcome = AuditOutcome::Failure;
                    event
                },
            )
            .await?;
        if state.locked_until.is_some() {
            tracing::warn!(user_id = %user.id, "console account locked after repeated failed sign-ins");
        }
        Ok(state)
    }

    /// Audits a refused attempt that counts no failure (locked, waiting, disabled).
    async fn refused(
        &self,
        user: &ConsoleUser,
        reason: &'static str,
        details: serde_json::Value,
    ) -> Result<(), AccountError> {
        let mut details = details;
        details["reason"] = serde_json::Value::from(reason);
        let mut event = audit(
            user.msp_id,
            &actor_of(user),
            "console.sign_in",
            user,
            details,
        );
        event.outcome = AuditOutcome::Failure;
        self.store.append_security_event(event).await?;
        Ok(())
    }
}

/// How a console user appears in the audit log when they act.
pub fn actor_of(user: &ConsoleUser) -> AuditActor {
    AuditActor {
        kind: ActorKind::ConsoleUser,
        id: Some(user.id.to_string()),
        name: Some(user.name.clone()),
    }
}

fn audit(
    msp_id: Uuid,
    actor: &AuditActor,
    action: &str,
    user: &ConsoleUser,
    details: serde_json::Value,
) -> NewAuditEvent {
    NewAuditEvent {
        msp_id,
        actor: actor.clone(),
        action: action.to_owned(),
        subject_kind: Some("console_user".to_owned()),
        subject_id: Some(user.id.to_string()),
        subject_name: Some(user.email.clone()),
        psa_ticket_id: None,
        outcome: AuditOutcome::Success,
        upstream_request_id: None,
        details,
    }
}

/// A plausible e-mail address, lower-cased.
fn checked_email(email: &str) -> Result<String, AccountError> {
    let email = email.trim().to_lowercase();
    let invalid = |problem: &str| AccountError::InvalidInput {
        field: "email",
        problem: problem.to_owned(),
    };
    if email.is_empty() {
        return Err(invalid("Enter the person's e-mail address."));
    }
    if email.chars().count() > 320 {
        return Err(invalid(
            "The e-mail address is longer than 320 characters. Check it.",
        ));
    }
    match email.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !email
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == ':')
                && !domain.contains('@') =>
        {
            Ok(email)
        }
        _ => Err(invalid(
            "This is not an e-mail address. Write it as name@example.com.",
        )),
    }
}

/// The rules a new password must meet, each refusal saying what to change.
pub fn check_new_password(
    password: &SecretString,
    confirmation: &SecretString,
    email: &str,
) -> Result<(), AccountError> {
    let text = password.expose_secret();
    let chars = text.chars().count();
    let reject = |why: String| AccountError::PasswordRejected {
        field: "password",
        why,
    };
    if chars < MIN_PASSWORD_CHARS {
        return Err(reject(format!(
            "Use at least {MIN_PASSWORD_CHARS} characters (this one has {chars}). A few unrelated words make a good password."
        )));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(reject(format!(
            "Use at most {MAX_PASSWORD_CHARS} characters."
        )));
    }
    let lowered = text.to_lowercase();
    if COMMON_PASSWORDS.contains(lowered.as_str()) {
        return Err(reject(
            "This password is on the list of common passwords that attackers try first. Choose another one."
                .to_owned(),
        ));
    }
    if lowered == email.to_lowercase() {
        return Err(reject(
            "Do not use your e-mail address as your password. Choose another one.".to_owned(),
        ));
    }
    if text != confirmation.expose_secret() {
        return Err(AccountError::PasswordRejected {
            field: "confirm",
            why: "The two passwords are not the same. Type the same password in both fields."
                .to_owned(),
        });
    }
    Ok(())
}

/// The PHC string of the argon2id hash of `password` (argon2's default parameters).
fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt)?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Hashing takes tens of milliseconds of CPU: off the async workers.
async fn hash_password_blocking(password: SecretString) -> Result<String, AccountError> {
    tokio::task::spawn_blocking(move || hash_password(password.expose_secret()))
        .await
        .map_err(|err| AccountError::Store(err.to_string()))?
        .map_err(|err| AccountError::Store(err.to_string()))
}

async fn verify_password_blocking(password: SecretString, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.expose_secret().as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

/// Six digits: a TOTP code; anything else may be a recovery code.
fn is_totp_code(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
}

/// The TOTP of a stored secret: SHA-1, 6 digits, 30-second steps, one step of skew.
fn totp_of(secret: &SecretString, email: &str) -> Result<TOTP, AccountError> {
    let bytes = Secret::Encoded(secret.expose_secret().to_owned())
        .to_bytes()
        .map_err(|_| AccountError::Store("a stored TOTP secret is not base32".to_owned()))?;
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        TOTP_STEP_SECONDS,
        bytes,
        Some(TOTP_ISSUER.to_owned()),
        email.replace(':', ""),
    )
    .map_err(|err| AccountError::Store(format!("a stored TOTP secret is unusable: {err}")))
}

/// The time step (of the previous, current or next 30 seconds) whose code is `code`.
fn matching_step(totp: &TOTP, code: &str, now: u64) -> Option<u64> {
    let mut found = None;
    for time in [
        now.saturating_sub(TOTP_STEP_SECONDS),
        now,
        now + TOTP_STEP_SECONDS,
    ] {
        let expected = totp.generate(time);
        // Every candidate is compared, in constant time, whatever matched before.
        let same = expected.len() == code.len()
            && expected
                .bytes()
                .zip(code.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if same && found.is_none() {
            found = Some(time / TOTP_STEP_SECONDS);
        }
    }
    found
}

/// The alphabet of recovery codes: no 0/o, 1/l/i, so they read back without mistakes.
const RECOVERY_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// A recovery code: 16 characters in four groups (about 79 bits), as `abcd-efgh-jkmn-pqrs`.
fn recovery_code() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let chars: Vec<char> = bytes
        .iter()
        // 256 is not a multiple of 31; the bias of a few percent per character is harmless
        // for a 79-bit, single-use, rate-limited code.
        .map(|b| RECOVERY_ALPHABET[usize::from(*b) % RECOVERY_ALPHABET.len()] as char)
        .collect();
    chars
        .chunks(4)
        .map(|group| group.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// A recovery code as typed (any case, with or without dashes and spaces), as it is hashed.
fn normalize_recovery_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AccountSettings {
        AccountSettings::from_config(&crate::config::Config::default().console)
    }

    #[test]
    fn failures_back_off_then_lock() {
        let s = settings();
        let now = Utc::now();
        for n in 1..5 {
            let state = s.after_failure(n, now);
            assert_eq!(state.next_attempt_at, None, "{n}");
            assert_eq!(state.locked_until, None, "{n}");
        }
        assert_eq!(
            s.after_failure(5, now).next_attempt_at,
            Some(now + Duration::seconds(1))
        );
        assert_eq!(
            s.after_failure(6, now).next_attempt_at,
            Some(now + Duration::seconds(2))
        );
        assert_eq!(
            s.after_failure(9, now).next_attempt_at,
            Some(now + Duration::seconds(16))
        );
        let locked = s.after_failure(10, now);
        assert_eq!(locked.locked_until, Some(now + Duration::minutes(15)));
        assert_eq!(locked.failed_attempts, 0);
    }

    #[test]
    fn passwords_are_long_uncommon_and_confirmed() {
        let pw = |s: &str| SecretString::from(s.to_owned());
        let email = "dana@example.com";
        let check = |p: &str, c: &str| check_new_password(&pw(p), &pw(c), email);
        assert!(check("correct horse battery", "correct horse battery").is_ok());
        assert!(matches!(
            check("short", "short"),
            Err(AccountError::PasswordRejected {
                field: "password",
                ..
            })
        ));
        assert!(matches!(
            check("PASSWORD1234", "PASSWORD1234"),
            Err(AccountError::PasswordRejected {
                field: "password",
                ..
            })
        ));
        assert!(matches!(
            check("Dana@Example.com", "Dana@Example.com"),
            Err(AccountError::PasswordRejected {
                field: "password",
                ..
            })
        ));
        assert!(matches!(
            check("correct horse battery", "correct horse batter"),
            Err(AccountError::PasswordRejected {
                field: "confirm",
                ..
            })
        ));
        assert!(COMMON_PASSWORDS.len() > 5000);
    }

    #[test]
    fn hashes_are_argon2id_phc_strings_that_verify() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        let parsed = PasswordHash::new(&hash).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse battery", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"correct horse batterY", &parsed)
                .is_err()
        );
    }

    #[test]
    fn a_code_matches_its_step_and_its_neighbours_only() {
        let secret = SecretString::from("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP".to_owned());
        let totp = totp_of(&secret, "a@b.example").unwrap();
        let now = 1_800_000_000u64;
        let code = totp.generate(now);
        assert_eq!(matching_step(&totp, &code, now), Some(now / 30));
        assert_eq!(matching_step(&totp, &code, now + 30), Some(now / 30));
        assert_eq!(matching_step(&totp, &code, now + 90), None);
        assert!(
            totp.get_url()
                .starts_with("otpauth://totp/Vouch:a%40b.example?secret=")
        );
    }

    #[test]
    fn recovery_codes_read_back_in_any_case() {
        let code = recovery_code();
        assert_eq!(code.len(), 19, "{code}");
        assert_eq!(
            normalize_recovery_code(&code.to_uppercase().replace('-', " ")),
            code.replace('-', "")
        );
    }

    #[test]
    fn emails_are_checked_and_lowered() {
        assert_eq!(
            checked_email(" Dana@Example.COM ").unwrap(),
            "dana@example.com"
        );
        for bad in [
            "",
            "dana",
            "dana@example",
            "@example.com",
            "a b@example.com",
            "a@b@c.com",
        ] {
            assert!(checked_email(bad).is_err(), "{bad}");
        }
    }
}
