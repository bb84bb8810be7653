//! One typed error per way a call to Microsoft can fail, each with a stable code and a
//! sentence that tells the technician or the MSP admin what to do. Microsoft's own request id
//! is kept for support.

use std::fmt;
use std::time::Duration;

use crate::domain::ErrorCode;

/// What went wrong, precisely enough to tell someone how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MicrosoftErrorKind {
    /// AADSTS7000215: the client secret is wrong.
    InvalidClientSecret,
    /// AADSTS7000222: the client secret has expired.
    ExpiredClientSecret,
    /// AADSTS700016: the app is not in the tenant (never consented, or the wrong tenant).
    AppNotConsented,
    /// AADSTS90002: the tenant does not exist.
    TenantNotFound,
    /// AADSTS7000112 / AADSTS500014: the app or its service principal is disabled.
    AppDisabled,
    /// Graph answered 403 for a call that needs this application permission.
    MissingPermission {
        permission: &'static str,
    },
    /// The tenant has no Entra ID P1 (or higher) licence.
    NoP1Licence,
    UserNotFound,
    /// The user is synchronised from on-premises Active Directory.
    UserSyncedFromOnPremises,
    /// The user holds a directory (admin) role.
    UserHoldsAdminRole {
        roles: Vec<String>,
    },
    /// Microsoft refused the new password (complexity or history rules).
    PasswordRejectedByPolicy,
    /// The user's default sign-in method is not the Authenticator push, so a push would
    /// never reach them.
    PreferredMethodMismatch {
        current_method: String,
        /// True when the integration holds the permission to change the default method.
        can_fix: bool,
    },
    /// 429 (or 503) after the bounded retries.
    Throttled {
        retry_after: Option<Duration>,
    },
    /// 5xx after the bounded retries, or the service could not be reached.
    Unavailable {
        status: Option<u16>,
    },
    TimedOut,
    /// Vouch's own open-file limit ran out before anything was sent (not Microsoft's state).
    TooManyOpenFiles,
    /// An answer Vouch does not understand (kept for the log; the technician gets a retry hint).
    Unexpected {
        status: Option<u16>,
        code: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MicrosoftError {
    pub kind: MicrosoftErrorKind,
    /// Microsoft's `request-id` (Graph) or `trace_id` (login), for support tickets.
    pub request_id: Option<String>,
}

/// Where to fix the default sign-in method (shown to the technician for the mismatch case).
pub const DEFAULT_METHOD_FIX_PATH: &str = "Microsoft Entra admin center > Protection > Authentication methods > User registration details > the user > Manage MFA authentication methods > Default sign-in method: Microsoft Authenticator > Save";

impl MicrosoftError {
    pub fn new(kind: MicrosoftErrorKind) -> MicrosoftError {
        MicrosoftError {
            kind,
            request_id: None,
        }
    }

    pub fn with_request_id(mut self, request_id: Option<String>) -> MicrosoftError {
        if request_id.is_some() {
            self.request_id = request_id;
        }
        self
    }

    /// The stable machine code used in API errors, audit entries and metrics.
    pub fn code(&self) -> ErrorCode {
        use MicrosoftErrorKind::*;
        match &self.kind {
            InvalidClientSecret => ErrorCode::MicrosoftInvalidClientSecret,
            ExpiredClientSecret => ErrorCode::MicrosoftClientSecretExpired,
            AppNotConsented => ErrorCode::MicrosoftAppNotConsented,
            TenantNotFound => ErrorCode::MicrosoftTenantNotFound,
            AppDisabled => ErrorCode::MicrosoftAppDisabled,
            MissingPermission { .. } => ErrorCode::MicrosoftMissingPermission,
            NoP1Licence => ErrorCode::MicrosoftNoP1Licence,
            UserNotFound => ErrorCode::MicrosoftUserNotFound,
            UserSyncedFromOnPremises => ErrorCode::UserSyncedFromOnPremises,
            UserHoldsAdminRole { .. } => ErrorCode::UserHoldsAdminRole,
            PasswordRejectedByPolicy => ErrorCode::PasswordRejectedByPolicy,
            PreferredMethodMismatch { .. } => ErrorCode::PreferredMethodMismatch,
            Throttled { .. } => ErrorCode::MicrosoftThrottled,
            Unavailable { .. } => ErrorCode::MicrosoftUnavailable,
            TimedOut => ErrorCode::MicrosoftTimedOut,
            TooManyOpenFiles => ErrorCode::TooManyOpenFiles,
            Unexpected { .. } => ErrorCode::MicrosoftUnexpectedResponse,
        }
    }

    /// A sentence for a person: what happened and what to do.
    pub fn message(&self) -> String {
        use MicrosoftErrorKind::*;
        let mut text = match &self.kind {
            InvalidClientSecret => "Microsoft rejected the client secret. Copy the secret's Value (not its ID) from the app registration in the customer's Entra admin center and enter it again.".to_owned(),
            ExpiredClientSecret => "The client secret has expired. Create a new secret on the app registration in the customer's Entra admin center and enter it here.".to_owned(),
            AppNotConsented => "The app is not present in this tenant: admin consent has not been granted, or the tenant id is wrong. Grant admin consent in the customer's tenant, then re-check.".to_owned(),
            TenantNotFound => "Microsoft knows no tenant with this id or domain. Check the tenant id (Entra admin center > Overview > Tenant ID).".to_owned(),
            AppDisabled => "The app or its service principal is disabled in the customer's tenant. Enable it under Enterprise applications, then re-check.".to_owned(),
            MissingPermission { permission } => format!("The app lacks the Microsoft Graph application permission {permission}. Add it under API permissions, grant admin consent, then re-check."),
            NoP1Licence => "The customer's tenant has no Microsoft Entra ID P1 (or higher) licence, which the Microsoft Authenticator verification requires. Use SMS verification, or license the tenant.".to_owned(),
            UserNotFound => "Microsoft has no such user in this tenant. Check the contact's e-mail address against the user's sign-in name.".to_owned(),
            UserSyncedFromOnPremises => "This user is synchronised from on-premises Active Directory, so the password cannot be reset in Microsoft 365. Reset it in the customer's Active Directory instead.".to_owned(),
            UserHoldsAdminRole { roles } => format!("This user holds an admin role ({}); Vouch does not reset admin passwords unless the MSP's policy allows it. Reset it in the Entra admin center after checking with the customer.", roles.join(", ")),
            PasswordRejectedByPolicy => "Microsoft refused the generated password under the tenant's password policy. Try again; if it keeps failing, raise the password length in Vouch's settings.".to_owned(),
            PreferredMethodMismatch { current_method, can_fix } => {
                let mut text = format!("No push was sent: the user's default sign-in method is \"{current_method}\", not the Microsoft Authenticator, so the user would not receive the request. Fix: {DEFAULT_METHOD_FIX_PATH}.");
                if *can_fix {
                    text.push_str(" Vouch can set the default method to the Authenticator for you, once you confirm.");
                } else {
                    text.push_str(" Or verify by SMS code instead.");
                }
                text
            }
            Throttled { retry_after } => match retry_after {
                Some(wait) => format!("Microsoft is throttling requests for this tenant. Try again in {}.", crate::domain::wait_in_words(*wait)),
                None => "Microsoft is throttling requests for this tenant. Try again in a minute.".to_owned(),
            },
            Unavailable { .. } => "Microsoft's service is unavailable right now. Try again in a few minutes; check status.cloud.microsoft if it persists.".to_owned(),
            TooManyOpenFiles => crate::upstream::TOO_MANY_OPEN_FILES_MESSAGE.to_owned(),
            TimedOut => "Microsoft did not answer in time. Try again; if it keeps happening, check status.cloud.microsoft.".to_owned(),
            Unexpected { .. } => "Microsoft gave an answer Vouch did not expect. Try again; if it persists, contact Vouch support with the request id.".to_owned(),
        };
        if let Some(id) = &self.request_id {
            text.push_str(&format!(" (Microsoft request id: {id})"));
        }
        text
    }

    /// How long Microsoft asked Vouch to wait, when it said so.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self.kind {
            MicrosoftErrorKind::Throttled { retry_after } => retry_after,
            _ => None,
        }
    }

    /// Worth trying again later without changing anything?
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            MicrosoftErrorKind::Throttled { .. }
                | MicrosoftErrorKind::Unavailable { .. }
                | MicrosoftErrorKind::TimedOut
                | MicrosoftErrorKind::TooManyOpenFiles
        )
    }
}

impl fmt::Display for MicrosoftError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.message())
    }
}

impl std::error::Error for MicrosoftError {}

impl From<MicrosoftErrorKind> for MicrosoftError {
    fn from(kind: MicrosoftErrorKind) -> Self {
        MicrosoftError::new(kind)
    }
}
