//! The errors of verification and password reset: each a stable code and a sentence for the
//! technician saying what to do.

use chrono::Duration;

use crate::microsoft::MicrosoftError;
use crate::sms::SmsError;
use crate::store::StoreError;

/// How the API should answer an error (the core does not speak HTTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    BadRequest,
    NotFound,
    Conflict,
    Forbidden,
    RateLimited,
    Upstream,
    Unavailable,
    Timeout,
    Internal,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum CoreError {
    #[error("{}", .0.message())]
    Microsoft(MicrosoftError),
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
        "A push to this user is already waiting for an answer. Wait for it, or cancel it first."
    )]
    PushAlreadyPending { pending_id: uuid::Uuid },
    #[error("Too many pushes were sent to this user recently (push-bombing protection). Try again in {} minutes, or verify by SMS code.", (.retry_after.num_seconds() + 59) / 60)]
    PushRateLimited { retry_after: Duration },
    #[error(
        "Verifying someone other than the ticket's contact needs a reason (for example \"manager approval\")."
    )]
    ReasonRequired,
    #[error("No such verification.")]
    VerificationNotFound,
    #[error("This verification is {status}; it cannot be changed any more. Start a new one.")]
    VerificationFinished { status: String },
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
    #[error("Internal error.")]
    Store(String),
}

impl CoreError {
    pub fn code(&self) -> &'static str {
        match self {
            CoreError::Microsoft(err) => err.code(),
            CoreError::Sms(err) => err.code(),
            CoreError::InvalidInput { .. } => "invalid_request",
            CoreError::TenantNotConnected => "tenant_not_connected",
            CoreError::AuthenticatorNotConnected => "authenticator_not_connected",
            CoreError::TenantNotFound => "tenant_not_found",
            CoreError::UserNotFound { .. } => "user_not_found",
            CoreError::UserAmbiguous { .. } => "user_ambiguous",
            CoreError::NoMobilePhone => "no_mobile_phone",
            CoreError::PushAlreadyPending { .. } => "push_already_pending",
            CoreError::PushRateLimited { .. } => "push_rate_limited",
            CoreError::ReasonRequired => "reason_required",
            CoreError::VerificationNotFound => "verification_not_found",
            CoreError::VerificationFinished { .. } => "verification_finished",
            CoreError::CodeIncorrect { .. } => "code_incorrect",
            CoreError::TooManyAttempts => "too_many_attempts",
            CoreError::CodeExpired => "code_expired",
            CoreError::ConfirmationRequired => "confirmation_required",
            CoreError::NotVerified { .. } => "not_verified",
            CoreError::VerificationUsed => "verification_used",
            CoreError::VerificationForOtherUser => "verification_for_other_user",
            CoreError::IdempotencyKeyReused => "idempotency_key_reused",
            CoreError::ResetInProgress => "reset_in_progress",
            CoreError::ResetNotFound => "reset_not_found",
            CoreError::Store(_) => "internal_error",
        }
    }

    pub fn class(&self) -> ErrorClass {
        use crate::microsoft::MicrosoftErrorKind as K;
        match self {
            CoreError::Microsoft(err) => match err.kind {
                K::Throttled { .. } => ErrorClass::RateLimited,
                K::Unavailable { .. } => ErrorClass::Unavailable,
                K::TimedOut => ErrorClass::Timeout,
                K::Unexpected { .. } => ErrorClass::Upstream,
                K::UserNotFound => ErrorClass::NotFound,
                K::UserSyncedFromOnPremises
                | K::UserHoldsAdminRole { .. }
                | K::PreferredMethodMismatch { .. } => ErrorClass::Conflict,
                _ => ErrorClass::Upstream,
            },
            CoreError::Sms(err) => match err {
                SmsError::Throttled => ErrorClass::RateLimited,
                SmsError::Unavailable => ErrorClass::Unavailable,
                SmsError::TimedOut => ErrorClass::Timeout,
                SmsError::NotConfigured => ErrorClass::Unavailable,
                _ => ErrorClass::Upstream,
            },
            CoreError::InvalidInput { .. }
            | CoreError::ReasonRequired
            | CoreError::ConfirmationRequired
            | CoreError::CodeIncorrect { .. } => ErrorClass::BadRequest,
            CoreError::TenantNotFound
            | CoreError::UserNotFound { .. }
            | CoreError::VerificationNotFound
            | CoreError::ResetNotFound => ErrorClass::NotFound,
            CoreError::PushRateLimited { .. } => ErrorClass::RateLimited,
            CoreError::NotVerified { .. } | CoreError::VerificationForOtherUser => {
                ErrorClass::Forbidden
            }
            CoreError::Store(_) => ErrorClass::Internal,
            _ => ErrorClass::Conflict,
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

impl From<MicrosoftError> for CoreError {
    fn from(err: MicrosoftError) -> Self {
        CoreError::Microsoft(err)
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
