//! The errors of verification and password reset: each a stable code and a sentence for the
//! technician saying what to do.

use chrono::{DateTime, Duration, Utc};

use crate::core::share::ShareError;
use crate::domain::{ErrorCode, VerificationStatus};
use crate::microsoft::MicrosoftError;
use crate::sms::SmsError;
use crate::store::StoreError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum CoreError {
    #[error("{}", .0.message())]
    Microsoft(MicrosoftError),
    #[error("{0}")]
    Share(Box<ShareError>),
    /// The reset's link cannot be sent again; `code` says why (expired, opened, withdrawn,
    /// or `resend_not_allowed`).
    #[error("{why}")]
    ResendNotAllowed { code: ErrorCode, why: String },
    #[error("{0}")]
    Sms(SmsError),
    #[error("`{field}` {problem}.")]
    InvalidInput {
        field: &'static str,
        problem: String,
    },
    #[error(
        "Vouch has no working connection to this customer's Microsoft 365 tenant. Connect it under Integrations (Identity Management or Microsoft Authenticator)."
    )]
    TenantNotConnected,
    #[error(
        "Microsoft Authenticator verification is not set up for this customer. Connect it under Integrations, or verify by SMS code."
    )]
    AuthenticatorNotConnected,
    #[error("No customer tenant with this id is connected to your MSP account.")]
    TenantNotFound,
    #[error(
        "No Microsoft 365 user matches {searched}. Check the contact's e-mail address; Vouch never guesses."
    )]
    UserNotFound { searched: String },
    #[error(
        "{count} Microsoft 365 users match {searched}, so Vouch cannot tell which one is the caller. Fix the contact's e-mail address in the PSA."
    )]
    UserAmbiguous { searched: String, count: usize },
    #[error(
        "This user has no mobile phone registered in Microsoft, so no SMS can reach them. Register one in the Entra admin center, or use another method."
    )]
    NoMobilePhone,
    #[error(
        "{upn} has no Microsoft Authenticator app registered, so a push cannot reach them. Verify them by SMS code or SMS link instead."
    )]
    AuthenticatorNotRegistered { upn: String },
    #[error(
        "{company} is not mapped to a Microsoft 365 tenant in Vouch. An MSP admin maps it to its tenant in Vouch (PUT /api/v1/company-mappings)."
    )]
    CompanyNotMapped { company: String },
    #[error(
        "{company} is already mapped to {tenant}. Remove that mapping first (DELETE /api/v1/company-mappings/{{id}}) if its users now live in another tenant."
    )]
    CompanyAlreadyMapped { company: String, tenant: String },
    #[error(
        "{resets} password reset(s) of {tenant} are in progress. Wait for them to finish (a minute or two), then remove the tenant."
    )]
    TenantBusy { tenant: String, resets: u64 },
    /// A set-up object (a PSA connection, a company mapping, an API key) that is not the
    /// caller's; the message names which and where to list them.
    #[error("{message}")]
    NotFoundHere { message: String },
    #[error(
        "This offer to change the default sign-in method has expired. Send the push again to get a new one."
    )]
    MethodFixInvalid,
    #[error(
        "A push to this user is already waiting for an answer. Wait for it, or cancel it first."
    )]
    PushAlreadyPending { pending_id: uuid::Uuid },
    #[error("Too many pushes were sent to this user recently (push-bombing protection). Try again in {}, or verify by SMS code.", crate::domain::wait_in_words(.retry_after.to_std().unwrap_or_default()))]
    PushRateLimited { retry_after: Duration },
    #[error("You sent too many pushes recently, across users (push-bombing protection). Try again in {} minutes, or verify by SMS code.", (.retry_after.num_seconds() + 59) / 60)]
    TechnicianPushRateLimited { retry_after: Duration },
    #[error(
        "Verifying someone other than the ticket's contact needs a reason (for example \"manager approval\")."
    )]
    ReasonRequired,
    #[error("No such verification.")]
    VerificationNotFound,
    #[error("This verification is {status}; it cannot be changed any more. Start a new one.")]
    VerificationFinished { status: VerificationStatus },
    #[error("The code is not correct. {attempts_left} attempts left.")]
    CodeIncorrect { attempts_left: i32 },
    #[error("Too many wrong codes: this verification is closed. Start a new one.")]
    TooManyAttempts,
    #[error("The code has expired. Start a new verification to send a new code.")]
    CodeExpired,
    #[error("Resetting a password needs an explicit confirmation (`confirm: true`).")]
    ConfirmationRequired,
    #[error("The user is not verified: {why}. Verify the caller first.")]
    NotVerified { why: String },
    #[error("This verification was already used for a password reset. Verify the caller again.")]
    VerificationUsed,
    #[error("This verification is of another user. Verify this user first.")]
    VerificationForOtherUser,
    #[error(
        "This idempotency key was already used for another verification. Use a new key for a new reset."
    )]
    IdempotencyKeyReused,
    #[error("The reset is still being carried out. Ask again in a moment.")]
    ResetInProgress,
    #[error("No such password reset.")]
    ResetNotFound,
    #[error(
        "Password resets of this user are held until {} because the user reported a verification as fraud (\"It's not me\"): treat the call as a possible social-engineering attempt. An MSP admin can lift the hold (POST /api/v1/reset-holds/{{id}}/lift) after checking with the user.",
        crate::domain::utc_minute(*.until)
    )]
    ResetHeld {
        until: DateTime<Utc>,
        hold_id: uuid::Uuid,
    },
    #[error(
        "No hold with this id belongs to your MSP. List the active holds with GET /api/v1/reset-holds."
    )]
    ResetHoldNotFound,
    #[error("{}", hold_not_active(*.lifted_at, *.held_until))]
    ResetHoldNotActive {
        lifted_at: Option<DateTime<Utc>>,
        held_until: DateTime<Utc>,
    },
    #[error(
        "No PSA connection with this id belongs to your MSP. List your connections with GET /api/v1/psa-connections."
    )]
    PsaConnectionNotFound,
    #[error(
        "This PSA connection was changed by someone else at the same time. Read it again and repeat your change."
    )]
    PsaConnectionChanged,
    #[error(
        "A ConnectWise PSA connection has no signing secret to rotate: its Hosted API vouches for each technician. To change its keys, PATCH the connection with a new private_key."
    )]
    NoSigningSecret,
    #[error("An administrator of your MSP has blocked your Vouch actions; ask them.")]
    TechnicianBlocked,
    #[error("Internal error.")]
    Store(String),
}

impl CoreError {
    /// The stable code of this error; the API derives the HTTP status from it.
    pub fn code(&self) -> ErrorCode {
        match self {
            CoreError::Microsoft(err) => err.code(),
            CoreError::Sms(err) => err.code(),
            CoreError::InvalidInput { .. } => ErrorCode::InvalidRequest,
            CoreError::TenantNotConnected => ErrorCode::TenantNotConnected,
            CoreError::AuthenticatorNotConnected => ErrorCode::AuthenticatorNotConnected,
            CoreError::TenantNotFound => ErrorCode::TenantNotFound,
            CoreError::UserNotFound { .. } => ErrorCode::UserNotFound,
            CoreError::UserAmbiguous { .. } => ErrorCode::UserAmbiguous,
            CoreError::NoMobilePhone => ErrorCode::NoMobilePhone,
            CoreError::AuthenticatorNotRegistered { .. } => ErrorCode::AuthenticatorNotRegistered,
            CoreError::CompanyNotMapped { .. } => ErrorCode::CompanyNotMapped,
            CoreError::CompanyAlreadyMapped { .. } => ErrorCode::CompanyAlreadyMapped,
            CoreError::TenantBusy { .. } => ErrorCode::TenantBusy,
            CoreError::NotFoundHere { .. } => ErrorCode::NotFound,
            CoreError::MethodFixInvalid => ErrorCode::MethodFixInvalid,
            CoreError::PushAlreadyPending { .. } => ErrorCode::PushAlreadyPending,
            CoreError::PushRateLimited { .. } | CoreError::TechnicianPushRateLimited { .. } => {
                ErrorCode::PushRateLimited
            }
            CoreError::ReasonRequired => ErrorCode::ReasonRequired,
            CoreError::VerificationNotFound => ErrorCode::VerificationNotFound,
            CoreError::VerificationFinished { .. } => ErrorCode::VerificationFinished,
            CoreError::CodeIncorrect { .. } => ErrorCode::CodeIncorrect,
            CoreError::TooManyAttempts => ErrorCode::TooManyAttempts,
            CoreError::CodeExpired => ErrorCode::CodeExpired,
            CoreError::ConfirmationRequired => ErrorCode::ConfirmationRequired,
            CoreError::NotVerified { .. } => ErrorCode::NotVerified,
            CoreError::VerificationUsed => ErrorCode::VerificationUsed,
            CoreError::VerificationForOtherUser => ErrorCode::VerificationForOtherUser,
            CoreError::IdempotencyKeyReused => ErrorCode::IdempotencyKeyReused,
            CoreError::ResetInProgress => ErrorCode::ResetInProgress,
            CoreError::ResetNotFound => ErrorCode::ResetNotFound,
            CoreError::ResetHeld { .. } => ErrorCode::ResetHeld,
            CoreError::ResetHoldNotFound => ErrorCode::ResetHoldNotFound,
            CoreError::ResetHoldNotActive { .. } => ErrorCode::ResetHoldNotActive,
            CoreError::Share(err) => err.code(),
            CoreError::ResendNotAllowed { code, .. } => *code,
            CoreError::PsaConnectionNotFound => ErrorCode::PsaConnectionNotFound,
            CoreError::PsaConnectionChanged => ErrorCode::PsaConnectionChanged,
            CoreError::NoSigningSecret => ErrorCode::PsaConnectionHasNoSigningSecret,
            CoreError::TechnicianBlocked => ErrorCode::TechnicianBlocked,
            CoreError::Store(_) => ErrorCode::InternalError,
        }
    }

    /// How long to wait before trying again, when that is known (for `Retry-After`).
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            CoreError::PushRateLimited { retry_after } => {
                Some(retry_after.to_std().unwrap_or_default())
            }
            CoreError::Microsoft(err) => err.retry_after(),
            _ => None,
        }
    }

    /// Worth asking again soon without changing anything (Vouch or an upstream was busy or
    /// unreachable)?
    pub fn is_transient(&self) -> bool {
        match self {
            CoreError::Microsoft(err) => err.is_transient(),
            CoreError::Store(_) => true,
            _ => false,
        }
    }

    /// Microsoft's request id, when Microsoft was involved (for the audit log).
    pub fn upstream_request_id(&self) -> Option<String> {
        match self {
            CoreError::Microsoft(err) => err.request_id.clone(),
            _ => None,
        }
    }
}

/// Why a hold cannot be lifted: when it was lifted, or when it ended.
fn hold_not_active(lifted_at: Option<DateTime<Utc>>, held_until: DateTime<Utc>) -> String {
    match lifted_at {
        Some(at) => format!(
            "This hold was already lifted at {}; nothing changed.",
            crate::domain::utc_minute(at)
        ),
        None => format!(
            "This hold already ended at {}; nothing changed.",
            crate::domain::utc_minute(held_until)
        ),
    }
}

impl From<MicrosoftError> for CoreError {
    fn from(err: MicrosoftError) -> Self {
        CoreError::Microsoft(err)
    }
}

impl CoreError {
    pub fn from_share(err: ShareError) -> CoreError {
        CoreError::Share(Box::new(err))
    }
}

impl From<SmsError> for CoreError {
    fn from(err: SmsError) -> Self {
        CoreError::Sms(err)
    }
}

impl From<StoreError> for CoreError {
    fn from(err: StoreError) -> Self {
        tracing::error!(error = %err, "storage failure");
        CoreError::Store(err.to_string())
    }
}
