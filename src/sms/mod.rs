//! Sending SMS: phone numbers normalised to E.164, a provider trait, and a Twilio-compatible
//! implementation (`POST /2010-04-01/Accounts/{sid}/Messages.json`, Basic auth, form To, From,
//! Body). The message body may carry a one-time code or a secure link, so it is a secret: it
//! never reaches a log line or an error message.

use async_trait::async_trait;
use secrecy::SecretString;

use crate::domain::ErrorCode;

mod phone;
mod twilio;

pub use phone::{E164, PhoneError};
pub use twilio::TwilioSms;

/// One message to send.
#[derive(Debug, Clone)]
pub struct SmsMessage {
    pub to: E164,
    pub body: SecretString,
}

/// The provider accepted the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentSms {
    /// The provider's id of the message (Twilio: `SM...`).
    pub provider_message_id: String,
}

/// Why a message was not accepted, each with a stable code and an actionable sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmsError {
    /// SMS is not configured (no account, token or sender).
    #[error("SMS is not configured: set sms.account_sid, sms.auth_token and sms.from.")]
    NotConfigured,
    /// The provider refused the destination number.
    #[error(
        "The SMS provider refused the number {masked}: it is not a valid mobile number. Check the number registered for the user."
    )]
    InvalidNumber { masked: String },
    /// The number cannot receive SMS (landline, opted out, unreachable region).
    #[error("The number {masked} cannot receive SMS ({reason}). Use another verification method.")]
    Undeliverable { masked: String, reason: String },
    /// The provider rejected Vouch's credentials.
    #[error(
        "The SMS provider rejected Vouch's credentials. Check sms.account_sid and sms.auth_token."
    )]
    AuthFailed,
    /// Too many messages; wait.
    #[error("The SMS provider is throttling messages. Try again in a minute.")]
    Throttled,
    /// The provider is down or unreachable.
    #[error("The SMS provider is unavailable. Try again in a few minutes.")]
    Unavailable,
    #[error("The SMS provider did not answer in time. Try again.")]
    TimedOut,
    /// Vouch's own open-file limit, not the provider's state; nothing was sent.
    #[error("{}", crate::upstream::TOO_MANY_OPEN_FILES_MESSAGE)]
    TooManyOpenFiles,
    /// Any other refusal, with the provider's code.
    #[error(
        "The SMS provider refused the message (code {code}). Try again; if it persists, contact support."
    )]
    Rejected { code: String },
}

impl SmsError {
    pub fn code(&self) -> ErrorCode {
        match self {
            SmsError::NotConfigured => ErrorCode::SmsNotConfigured,
            SmsError::InvalidNumber { .. } => ErrorCode::SmsInvalidNumber,
            SmsError::Undeliverable { .. } => ErrorCode::SmsUndeliverable,
            SmsError::AuthFailed => ErrorCode::SmsAuthFailed,
            SmsError::Throttled => ErrorCode::SmsThrottled,
            SmsError::Unavailable => ErrorCode::SmsUnavailable,
            SmsError::TimedOut => ErrorCode::SmsTimedOut,
            SmsError::TooManyOpenFiles => ErrorCode::TooManyOpenFiles,
            SmsError::Rejected { .. } => ErrorCode::SmsRejected,
        }
    }
}

/// Anything that can send an SMS; the core depends on this, tests may hand in a fake.
#[async_trait]
pub trait SmsProvider: Send + Sync {
    async fn send(&self, message: &SmsMessage) -> Result<SentSms, SmsError>;
}
