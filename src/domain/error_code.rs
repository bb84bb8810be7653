//! Every machine-readable error code Vouch returns, in one enum. A code never changes meaning
//! once published: clients (`pods/pod.js`, PSA integrations, scripts) branch on it.

/// Declares the codes once: the enum, its wire values and the list of all of them.
macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident = $wire:literal,)+) => {
        /// A stable, machine-readable error code: the `code` of every error body.
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            Hash,
            sea_orm::EnumIter,
            sea_orm::DeriveActiveEnum,
            poem_openapi::Enum,
            serde::Serialize,
            serde::Deserialize,
        )]
        // Stored as its wire value (a verification's or a reset's `failure_code`).
        #[sea_orm(rs_type = "String", db_type = "Text")]
        #[oai(rename_all = "snake_case")]
        #[serde(rename_all = "snake_case")]
        pub enum ErrorCode {
            $($(#[$doc])* #[sea_orm(string_value = $wire)] $variant,)+
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)+];

            /// The wire value, as the API, the audit log and the metrics spell it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $wire,)+
                }
            }
        }
    };
}

error_codes! {
    // The request itself.
    /// The request body, a parameter or a header could not be read, or a value is invalid.
    InvalidRequest = "invalid_request",
    /// The request body is not `application/json` (or the operation's declared type).
    UnsupportedMediaType = "unsupported_media_type",
    /// The request body is larger than Vouch reads.
    PayloadTooLarge = "payload_too_large",
    /// Nothing is at this address.
    NotFound = "not_found",
    /// The address exists but does not accept this method (see the `Allow` header).
    MethodNotAllowed = "method_not_allowed",
    /// No valid API key or pod session was presented.
    Unauthorized = "unauthorized",
    /// The credentials are valid but do not allow this.
    Forbidden = "forbidden",
    /// The API key has the `technician` scope; the operation needs an `admin` key.
    AdminScopeRequired = "admin_scope_required",
    /// Something failed inside Vouch; the cause is in Vouch's log.
    InternalError = "internal_error",
    /// A dependency of Vouch (its database) is unavailable.
    Unavailable = "unavailable",
    /// Vouch has used up its open-file limit, so it could not open a connection (to
    /// Microsoft, a PSA or the SMS provider): the operator must raise the limit. Nothing was
    /// sent.
    TooManyOpenFiles = "too_many_open_files",

    // Tenants, users and verifications.
    TenantNotConnected = "tenant_not_connected",
    AuthenticatorNotConnected = "authenticator_not_connected",
    TenantNotFound = "tenant_not_found",
    UserNotFound = "user_not_found",
    UserAmbiguous = "user_ambiguous",
    NoMobilePhone = "no_mobile_phone",
    /// The user has no Microsoft Authenticator app registered, so no push can reach them:
    /// verify by SMS instead.
    AuthenticatorNotRegistered = "authenticator_not_registered",
    /// The ticket's company is not mapped to a Microsoft 365 tenant in Vouch.
    CompanyNotMapped = "company_not_mapped",
    /// The PSA company is already mapped to another tenant (the message names it): remove
    /// that mapping first.
    CompanyAlreadyMapped = "company_already_mapped",
    /// The tenant cannot be removed while one of its password resets is in progress.
    TenantBusy = "tenant_busy",
    /// The offer to change a user's default sign-in method has expired or belongs to another
    /// ticket: start the push again to get a new one.
    MethodFixInvalid = "method_fix_invalid",
    PushAlreadyPending = "push_already_pending",
    PushRateLimited = "push_rate_limited",
    ReasonRequired = "reason_required",
    VerificationNotFound = "verification_not_found",
    VerificationFinished = "verification_finished",
    CodeIncorrect = "code_incorrect",
    TooManyAttempts = "too_many_attempts",
    CodeExpired = "code_expired",
    ConfirmationRequired = "confirmation_required",
    NotVerified = "not_verified",
    VerificationUsed = "verification_used",
    VerificationForOtherUser = "verification_for_other_user",
    IdempotencyKeyReused = "idempotency_key_reused",
    ResetInProgress = "reset_in_progress",
    ResetNotFound = "reset_not_found",
    /// Vouch stopped (or lost its database) before it sent the new password to Microsoft:
    /// nothing changed, and the verification may be used again.
    ResetInterrupted = "reset_interrupted",
    /// This reset's link cannot be sent again (the password did not change, or it was sent
    /// as often as allowed); the message says which.
    ResendNotAllowed = "resend_not_allowed",
    /// The user reported a verification as fraud ("It's not me"), so their password resets
    /// are held until the time the message names, unless an MSP admin lifts the hold
    /// (`POST /v1/reset-holds/{id}/lift`).
    ResetHeld = "reset_held",
    /// No hold with this id belongs to your MSP.
    ResetHoldNotFound = "reset_hold_not_found",
    /// The hold was already lifted, or is already over: nothing changed.
    ResetHoldNotActive = "reset_hold_not_active",

    // How a push ended, when it did not end approved (a verification's `failure_code`).
    /// The user pressed "Deny" in Microsoft Authenticator.
    Denied = "denied",
    /// The user pressed "It's not me" (Microsoft Authenticator, or the one-tap page): treat
    /// the call as a social-engineering attempt. The user's resets are held (MSP policy).
    FraudReported = "fraud_reported",
    /// The user did not answer the push in time.
    NoResponse = "no_response",
    /// Microsoft has blocked the user from MFA.
    UserBlocked = "user_blocked",
    /// The user has no Microsoft Authenticator (or no MFA method) registered.
    NoMethodRegistered = "no_method_registered",
    /// Microsoft did not prompt the user, typically because their default method is not
    /// the Authenticator push.
    NotPrompted = "not_prompted",
    /// Microsoft answered for a different account than the one asked about; never trusted.
    UpnMismatch = "upn_mismatch",
    /// The MFA connector answered with a result Vouch does not know (it is in Vouch's log).
    MfaUnknownResult = "mfa_unknown_result",
    /// The verification's time ran out before anyone answered (its wait ended with an
    /// instance, say).
    VerificationExpired = "verification_expired",
    /// The instance waiting for the push's answer stopped (a crash or a restart) first.
    VerificationInterrupted = "verification_interrupted",
    /// The one-tap link was opened after its 5 minutes.
    LinkExpired = "link_expired",
    /// The user answered "No" on the one-tap page (older verifications; that answer is now
    /// recorded as `fraud_reported`, since the page asks "No, it's not me").
    DeniedByUser = "denied_by_user",

    // Microsoft.
    MicrosoftInvalidClientSecret = "microsoft_invalid_client_secret",
    MicrosoftClientSecretExpired = "microsoft_client_secret_expired",
    MicrosoftAppNotConsented = "microsoft_app_not_consented",
    MicrosoftTenantNotFound = "microsoft_tenant_not_found",
    MicrosoftAppDisabled = "microsoft_app_disabled",
    MicrosoftMissingPermission = "microsoft_missing_permission",
    MicrosoftNoP1Licence = "microsoft_no_p1_licence",
    MicrosoftUserNotFound = "microsoft_user_not_found",
    UserSyncedFromOnPremises = "user_synced_from_on_premises",
    UserHoldsAdminRole = "user_holds_admin_role",
    PasswordRejectedByPolicy = "password_rejected_by_policy",
    PreferredMethodMismatch = "preferred_method_mismatch",
    MicrosoftThrottled = "microsoft_throttled",
    MicrosoftUnavailable = "microsoft_unavailable",
    MicrosoftTimedOut = "microsoft_timed_out",
    MicrosoftUnexpectedResponse = "microsoft_unexpected_response",
    /// Vouch's own multi-tenant Microsoft app is not configured on this instance.
    MicrosoftAppNotConfigured = "microsoft_app_not_configured",

    // Admin consent (Microsoft Authenticator onboarding).
    ConsentStateInvalid = "consent_state_invalid",
    ConsentRefused = "consent_refused",
    ConsentAdminLackedRole = "consent_admin_lacked_role",
    ConsentFailed = "consent_failed",

    // SMS.
    SmsNotConfigured = "sms_not_configured",
    SmsInvalidNumber = "sms_invalid_number",
    SmsUndeliverable = "sms_undeliverable",
    SmsAuthFailed = "sms_auth_failed",
    SmsThrottled = "sms_throttled",
    SmsUnavailable = "sms_unavailable",
    SmsTimedOut = "sms_timed_out",
    SmsRejected = "sms_rejected",

    // The PSA and its embed.
    EmbedUnsigned = "embed_unsigned",
    EmbedBadSignature = "embed_bad_signature",
    EmbedStale = "embed_stale",
    EmbedMemberRejected = "embed_member_rejected",
    EmbedWrongCompany = "embed_wrong_company",
    PsaCredentialsRejected = "psa_credentials_rejected",
    PsaNotFound = "psa_not_found",
    PsaThrottled = "psa_throttled",
    PsaUnavailable = "psa_unavailable",
    PsaTimedOut = "psa_timed_out",
    PsaMisconfigured = "psa_misconfigured",
    PsaUnexpectedResponse = "psa_unexpected_response",
    /// The PSA does not know the company id configured for the connection (ConnectWise: it
    /// is not a company of that site).
    PsaWrongCompany = "psa_wrong_company",
    /// Autotask's zone lookup knows no API user with the connection's user name.
    PsaApiUserUnknown = "psa_api_user_unknown",
    /// Autotask refused the connection's integration code (API tracking identifier).
    PsaIntegrationCodeRejected = "psa_integration_code_rejected",
    /// The PSA account Vouch uses lacks a permission it needs (the PSA answered 403).
    PsaPermissionMissing = "psa_permission_missing",
    /// Vouch could not connect to the PSA at all (refused, no route, unknown host name).
    PsaUnreachable = "psa_unreachable",
    /// The TLS handshake with the PSA failed (a certificate not trusted, expired or for
    /// another name, or an address that does not speak HTTPS).
    PsaTlsFailed = "psa_tls_failed",
    /// No PSA connection with this id belongs to the MSP (list them with
    /// `GET /v1/psa-connections`).
    PsaConnectionNotFound = "psa_connection_not_found",
    /// The PSA connection was changed by another request while this one was being applied:
    /// read it again and repeat the change.
    PsaConnectionChanged = "psa_connection_changed",
    /// The connection's PSA (ConnectWise) signs no pod loads, so it has no secret to rotate.
    PsaConnectionHasNoSigningSecret = "psa_connection_has_no_signing_secret",
    /// An MSP admin blocked this technician's Vouch actions (`POST
    /// /v1/technicians/{id}/unblock` lifts it).
    TechnicianBlocked = "technician_blocked",

    // The MSP console: accounts and sign-in.
    /// The e-mail address or the password is wrong (the same answer for an address Vouch
    /// does not know).
    ConsoleSignInFailed = "console_sign_in_failed",
    /// Too many failed sign-ins in a row: the next attempt must wait (the message says how
    /// long).
    ConsoleSignInThrottled = "console_sign_in_throttled",
    /// Too many failed sign-ins: the account is locked for a while, or until an admin
    /// unlocks it.
    ConsoleAccountLocked = "console_account_locked",
    /// The authenticator code (or recovery code) is wrong, expired or already used.
    ConsoleCodeIncorrect = "console_code_incorrect",
    /// The chosen password is too short, too common or not repeated the same.
    ConsolePasswordRejected = "console_password_rejected",
    /// The set-up or invitation link is unknown, expired or already used: ask an admin for
    /// a new one.
    ConsoleLinkInvalid = "console_link_invalid",
    /// Another console user already signs in with this e-mail address.
    ConsoleEmailTaken = "console_email_taken",
    /// The form was not sent from a console page of this Vouch (missing or wrong CSRF token,
    /// or a foreign Origin): reload the page and send it again.
    ConsoleCsrfRejected = "console_csrf_rejected",
    /// The console page needs a signed-in user.
    ConsoleSignInRequired = "console_sign_in_required",
    /// The console page or action is for the MSP's admins.
    ConsoleAdminRequired = "console_admin_required",
    /// No console user with this id belongs to the MSP.
    ConsoleUserNotFound = "console_user_not_found",
    /// The change would leave the MSP with no admin who can sign in.
    ConsoleLastAdmin = "console_last_admin",

    // Secure shares.
    ShareNotFound = "share_not_found",
    ShareExpired = "share_expired",
    ShareExhausted = "share_exhausted",
    ShareRevoked = "share_revoked",
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Comparing with a wire value reads as what it checks: that the published spelling holds.
impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem_openapi::types::{ParseFromJSON, ToJSON};

    #[test]
    fn every_wire_value_is_what_serde_and_the_spec_write_and_read() {
        let mut seen = std::collections::HashSet::new();
        for &code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "{code} is declared twice");
            let wire = serde_json::Value::String(code.as_str().to_owned());
            assert_eq!(serde_json::to_value(code).unwrap(), wire);
            assert_eq!(
                serde_json::from_value::<ErrorCode>(wire.clone()).unwrap(),
                code
            );
            assert_eq!(code.to_json(), Some(wire.clone()));
            assert_eq!(ErrorCode::parse_from_json(Some(wire)).ok(), Some(code));
        }
    }
}
