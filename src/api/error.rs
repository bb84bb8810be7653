//! The one error boundary: every error Vouch answers is `{code, message}` JSON with a code
//! from [`ErrorCode`], and each code has one HTTP status ([`status_of`]), whatever the route
//! and whichever layer failed. The `From` impls below are the only place domain errors
//! become HTTP answers. 5xx bodies say "internal error"; the cause goes to the log.
//!
//! [`json_errors`] wraps the whole application: it refuses NUL characters in any input,
//! limits request bodies, and gives the errors raised outside an operation's own answers
//! (unknown routes, wrong methods, poem-openapi's parse errors) the same shape. It is the
//! only parse-error policy: operations declare no `bad_request_handler`.

use std::sync::Arc;

use bytes::Bytes;
use poem::error::{MethodNotAllowedError, NotFoundError, ParseJsonError, ReadBodyError};
use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Endpoint, EndpointExt, Request, Response};
use poem_openapi::error::{
    AuthorizationError, ContentTypeError, ParseMultipartError, ParseParamError, ParsePathError,
    ParseRequestPayloadError,
};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

use super::nul::{self, NulAt};
use super::routes;
use crate::core::error::CoreError;
use crate::core::integrations::IntegrationError;
use crate::core::pod::PodError;
use crate::core::share::{ShareError, ShareSendError};
pub use crate::domain::ErrorCode;
use crate::microsoft::{MicrosoftError, MicrosoftErrorKind};
use crate::psa::PsaError;
use crate::sms::SmsError;
use crate::store::StoreError;

/// The largest request body Vouch reads. Its bodies are small (a share holds at most 10,000
/// characters); the limit keeps an unauthenticated sender from filling memory.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The HTTP status of each code: one per code, so a failure answers the same everywhere.
pub fn status_of(code: ErrorCode) -> StatusCode {
    use ErrorCode::*;
    match code {
        // Something in the request, or in the customer's Microsoft 365 setup that a person
        // must fix first (the message says where): retrying the same request cannot help.
        InvalidRequest
        | ReasonRequired
        | ConfirmationRequired
        | CodeIncorrect
        | ConsentStateInvalid
        | ConsentRefused
        | ConsentAdminLackedRole
        | ConsentFailed
        | MicrosoftInvalidClientSecret
        | MicrosoftClientSecretExpired
        | MicrosoftAppNotConsented
        | MicrosoftTenantNotFound
        | MicrosoftAppDisabled
        | MicrosoftMissingPermission
        | MicrosoftNoP1Licence
        | ConsoleCodeIncorrect
        | ConsolePasswordRejected => StatusCode::BAD_REQUEST,
        Unauthorized | ConsoleSignInFailed | ConsoleSignInRequired => StatusCode::UNAUTHORIZED,
        Forbidden
        | AdminScopeRequired
        | NotVerified
        | VerificationForOtherUser
        | EmbedUnsigned
        | EmbedBadSignature
        | EmbedStale
        | EmbedMemberRejected
        | EmbedWrongCompany
        | TechnicianBlocked
        | ConsoleCsrfRejected
        | ConsoleAdminRequired => StatusCode::FORBIDDEN,
        NotFound
        | TenantNotFound
        | UserNotFound
        | VerificationNotFound
        | ResetNotFound
        | ResetHoldNotFound
        | MicrosoftUserNotFound
        | PsaNotFound
        | ShareNotFound
        | PsaConnectionNotFound
        | ConsoleUserNotFound
        | ConsoleLinkInvalid => StatusCode::NOT_FOUND,
        MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        TenantNotConnected
        | AuthenticatorNotConnected
        | UserAmbiguous
        | NoMobilePhone
        | AuthenticatorNotRegistered
        | CompanyNotMapped
        | CompanyAlreadyMapped
        | TenantBusy
        | MethodFixInvalid
        | PushAlreadyPending
        | VerificationFinished
        | TooManyAttempts
        | CodeExpired
        | VerificationUsed
        | IdempotencyKeyReused
        | ResetInProgress
        | ResetInterrupted
        | ResendNotAllowed
        | ResetHeld
        | ResetHoldNotActive
        | UserSyncedFromOnPremises
        | UserHoldsAdminRole
        | PreferredMethodMismatch
        | ShareExpired
        | ShareExhausted
        | ShareRevoked
        // How a verification ended: answered as a conflict if ever returned as an error.
        | Denied
        | FraudReported
        | NoResponse
        | UserBlocked
        | NoMethodRegistered
        | NotPrompted
        | UpnMismatch
        | MfaUnknownResult
        | VerificationExpired
        | VerificationInterrupted
        | LinkExpired
        | DeniedByUser
        | PsaConnectionChanged
        | PsaConnectionHasNoSigningSecret
        | ConsoleEmailTaken
        | ConsoleLastAdmin
        | ConsoleAccountLocked => StatusCode::CONFLICT,
        PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        PushRateLimited
        | MicrosoftThrottled
        | SmsThrottled
        | PsaThrottled
        | ConsoleSignInThrottled => {
            StatusCode::TOO_MANY_REQUESTS
        }
        InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        // The upstream answered, but not usefully (or refused Vouch's own credentials).
        MicrosoftUnexpectedResponse
        | PasswordRejectedByPolicy
        | SmsInvalidNumber
        | SmsUndeliverable
        | SmsAuthFailed
        | SmsRejected
        | PsaCredentialsRejected
        | PsaMisconfigured
        | PsaUnexpectedResponse
        | PsaWrongCompany
        | PsaApiUserUnknown
        | PsaIntegrationCodeRejected
        | PsaPermissionMissing
        | PsaTlsFailed => StatusCode::BAD_GATEWAY,
        Unavailable
        | TooManyOpenFiles
        | MicrosoftUnavailable
        | MicrosoftAppNotConfigured
        | SmsNotConfigured
        | SmsUnavailable
        | PsaUnavailable
        | PsaUnreachable => StatusCode::SERVICE_UNAVAILABLE,
        MicrosoftTimedOut | SmsTimedOut | PsaTimedOut => StatusCode::GATEWAY_TIMEOUT,
    }
}

/// An error: a stable machine code and a sentence for the person, saying what to do.
#[derive(Debug, Clone, PartialEq, Eq, Object, serde::Serialize, serde::Deserialize)]
pub struct ErrorBody {
    /// Stable, machine-readable error code.
    pub code: ErrorCode,
    /// What went wrong and what to do about it, for a person to read.
    pub message: String,
    /// Only with `preferred_method_mismatch`: whether Vouch can make the Authenticator push
    /// the user's default sign-in method (after the technician confirms).
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[oai(nullable)]
    pub can_fix: Option<bool>,
    /// Only with `preferred_method_mismatch` in a pod, when `can_fix`: hand it to
    /// `POST /v1/pod/default-method` to change the default method of the user that push was
    /// for (and no one else). It expires after 10 minutes.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[oai(nullable)]
    pub fix_token: Option<String>,
}

/// An API error response.
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// The request is malformed, a value is invalid, or the customer's Microsoft 365 setup must be fixed first.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// No valid credentials were presented.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// The credentials are valid but do not allow this.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// The thing asked for does not exist (or is not yours).
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The request conflicts with the current state.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// The body is larger than Vouch accepts (1 MiB, or less where the operation says so).
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// The body's `Content-Type` is not one this operation takes (the message names them).
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// Too many requests; wait and try again.
    #[oai(status = 429)]
    TooManyRequests(
        Json<ErrorBody>,
        /// How many seconds to wait before trying again (the message says the same in words).
        #[oai(header = "Retry-After")]
        Option<u64>,
    ),
    /// Something failed inside Vouch; the details are in Vouch's log under the request id.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// An upstream service (Microsoft, a PSA, the SMS provider) gave an unusable answer.
    #[oai(status = 502)]
    BadGateway(Json<ErrorBody>),
    /// A dependency (the database, an upstream service) is unavailable.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
    /// An upstream service did not answer in time.
    #[oai(status = 504)]
    GatewayTimeout(Json<ErrorBody>),
}

/// `Retry-After` of a 429 whose wait nobody stated: the minute its message speaks of ("Try
/// again in a minute").
const DEFAULT_RETRY_AFTER_SECONDS: u64 = 60;

const INTERNAL_MESSAGE: &str = "Internal error. Try again; if it persists, give your Vouch administrator the x-request-id of this response.";

impl ApiError {
    /// The answer for `code`, with the status [`status_of`] gives it.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        let body = Json(ErrorBody {
            code,
            message: message.into(),
            can_fix: None,
            fix_token: None,
        });
        match status_of(code).as_u16() {
            401 => ApiError::Unauthorized(body),
            403 => ApiError::Forbidden(body),
            404 => ApiError::NotFound(body),
            409 => ApiError::Conflict(body),
            413 => ApiError::PayloadTooLarge(body),
            415 => ApiError::UnsupportedMediaType(body),
            429 => ApiError::TooManyRequests(body, Some(DEFAULT_RETRY_AFTER_SECONDS)),
            500 => ApiError::Internal(body),
            502 => ApiError::BadGateway(body),
            503 => ApiError::Unavailable(body),
            504 => ApiError::GatewayTimeout(body),
            status => {
                // 405 comes from the boundary alone ([`error_response`]); no operation
                // answers it.
                debug_assert_eq!(status, 400, "{code} has no operation response");
                ApiError::BadRequest(body)
            }
        }
    }

    /// Logs the cause and answers with a body that reveals nothing of it.
    pub fn internal(cause: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(ErrorCode::InternalError, INTERNAL_MESSAGE)
    }

    /// Sets the `Retry-After` of a 429 to `wait` (rounded up to whole seconds), when known.
    fn with_retry_after(mut self, wait: Option<std::time::Duration>) -> ApiError {
        if let (ApiError::TooManyRequests(_, header), Some(wait)) = (&mut self, wait) {
            *header = Some(crate::domain::retry_after_seconds(wait));
        }
        self
    }

    fn with_can_fix(mut self, can_fix: bool) -> ApiError {
        if let ApiError::Conflict(body) = &mut self {
            body.0.can_fix = Some(can_fix);
        }
        self
    }
}

impl From<MicrosoftError> for ApiError {
    fn from(err: MicrosoftError) -> Self {
        let answer = ApiError::new(err.code(), err.message()).with_retry_after(err.retry_after());
        match err.kind {
            MicrosoftErrorKind::PreferredMethodMismatch { can_fix, .. } => {
                answer.with_can_fix(can_fix)
            }
            _ => answer,
        }
    }
}

impl From<SmsError> for ApiError {
    fn from(err: SmsError) -> Self {
        ApiError::new(err.code(), err.to_string())
    }
}

impl From<CoreError> for ApiError {
    fn from(err: CoreError) -> Self {
        match err {
            CoreError::Microsoft(err) => err.into(),
            CoreError::Sms(err) => err.into(),
            CoreError::Store(cause) => ApiError::internal(&cause),
            other => {
                ApiError::new(other.code(), other.to_string()).with_retry_after(other.retry_after())
            }
        }
    }
}

impl From<crate::core::companies::CompanyError> for ApiError {
    fn from(err: crate::core::companies::CompanyError) -> Self {
        match err {
            crate::core::companies::CompanyError::Core(err) => err.into(),
            crate::core::companies::CompanyError::Psa(err) => err.into(),
        }
    }
}

impl From<PsaError> for ApiError {
    fn from(err: PsaError) -> Self {
        ApiError::new(err.code(), err.to_string())
    }
}

impl From<PodError> for ApiError {
    fn from(err: PodError) -> Self {
        match err {
            PodError::Psa(err) => err.into(),
            PodError::Core(err) => err.into(),
            PodError::MethodMismatch { error, fix_token } => {
                let mut answer = ApiError::from(error);
                if let ApiError::Conflict(body) = &mut answer {
                    body.0.fix_token = Some(fix_token);
                }
                answer
            }
            other => ApiError::new(other.code(), other.to_string()),
        }
    }
}

impl From<ShareError> for ApiError {
    fn from(err: ShareError) -> Self {
        match err {
            ShareError::InvalidRequest { field, problem } => {
                // The core speaks of a duration; the API's field counts minutes.
                let field = if field == "expires_in" {
                    "expires_in_minutes"
                } else {
                    field
                };
                ApiError::new(ErrorCode::InvalidRequest, format!("`{field}` {problem}."))
            }
            ShareError::NotFound => ApiError::new(
                ErrorCode::ShareNotFound,
                "No share with this id belongs to your MSP. List your shares with GET /api/v1/shares.",
            ),
            ShareError::Store(cause) => ApiError::internal(&cause),
            // Only reveals meet these, and the API does not reveal.
            other => ApiError::new(other.code(), other.to_string()),
        }
    }
}

impl From<ShareSendError> for ApiError {
    fn from(err: ShareSendError) -> Self {
        match err {
            ShareSendError::Share(err) => err.into(),
            ShareSendError::Recipient(err) => err.into(),
        }
    }
}

impl From<IntegrationError> for ApiError {
    fn from(err: IntegrationError) -> Self {
        match err {
            IntegrationError::Microsoft(err) => err.into(),
            IntegrationError::Store(cause) => ApiError::internal(&cause),
            other => ApiError::new(other.code(), other.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        ApiError::internal(&err)
    }
}

/// The JSON answer for `code`, for errors raised outside poem-openapi's operations (the
/// boundary, the security checkers).
pub fn error_response(code: ErrorCode, message: &str) -> Response {
    let body = ErrorBody {
        code,
        message: message.to_owned(),
        can_fix: None,
        fix_token: None,
    };
    Response::builder()
        .status(status_of(code))
        .content_type("application/json; charset=utf-8")
        .body(serde_json::to_string(&body).expect("error body serialises"))
}

/// The app-wide error boundary (see the module documentation).
pub fn json_errors<E: Endpoint + 'static>(ep: E) -> impl Endpoint<Output = Response> {
    ep.map_to_response().around(guard)
}

async fn guard<E: Endpoint<Output = Response>>(
    ep: Arc<E>,
    mut req: Request,
) -> poem::Result<Response> {
    // Kept for the refusal after the request has gone in (a `Uri` clone shares its bytes).
    let method = req.method().clone();
    let uri = req.uri().clone();
    let path = uri.path();
    if let Some(NulAt::PathSegment(segment)) = nul::in_path(path) {
        let what = match routes::path_parameter_at(path, segment) {
            Some(name) => format!("The path parameter `{name}`"),
            None => "The address".to_owned(),
        };
        return Ok(nul_refusal(&what));
    }
    if let Some(NulAt::Field(name)) = nul::in_form(uri.query().unwrap_or("").as_bytes()) {
        return Ok(nul_refusal(&match name {
            Some(name) => format!("The query parameter `{name}`"),
            None => "A query parameter".to_owned(),
        }));
    }
    let body = match checked_body(&mut req).await {
        Ok(body) => body,
        Err(refusal) => return Ok(refusal),
    };
    match ep.call(req).await {
        Ok(response) => Ok(response),
        Err(err) => Ok(shape(err, &method, path, body.as_ref())),
    }
}

fn nul_refusal(what: &str) -> Response {
    error_response(
        ErrorCode::InvalidRequest,
        &format!(
            "{what} contains a NUL character (U+0000), which Vouch does not accept. Remove it and send the request again."
        ),
    )
}

enum BodyKind {
    Json,
    Form,
}

fn body_kind(req: &Request) -> Option<BodyKind> {
    let content_type = req.content_type()?;
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") {
        Some(BodyKind::Json)
    } else if essence == "application/x-www-form-urlencoded" {
        Some(BodyKind::Form)
    } else {
        // Other bodies are refused by the operations (415), unread.
        None
    }
}

/// Reads a JSON or form body (within [`MAX_BODY_BYTES`]) and refuses a NUL in it; the body
/// is put back for the operation. The JSON bytes are kept to explain a parse error.
async fn checked_body(req: &mut Request) -> Result<Option<Bytes>, Response> {
    let Some(kind) = body_kind(req) else {
        return Ok(None);
    };
    let bytes = match req.take_body().into_bytes_limit(MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(ReadBodyError::PayloadTooLarge) => {
            return Err(error_response(
                ErrorCode::PayloadTooLarge,
                &format!(
                    "The request body is larger than Vouch accepts ({} KiB). Send less.",
                    MAX_BODY_BYTES / 1024
                ),
            ));
        }
        Err(_) => {
            return Err(error_response(
                ErrorCode::InvalidRequest,
                "The request body could not be read completely. Send it again.",
            ));
        }
    };
    let refusal = match kind {
        BodyKind::Json => nul::in_json(&bytes).map(|at| match at {
            NulAt::JsonField(Some(field)) => format!("The field `{field}`"),
            _ => "The request body".to_owned(),
        }),
        BodyKind::Form => nul::in_form(&bytes).map(|at| match at {
            NulAt::Field(Some(field)) => format!("The form field `{field}`"),
            _ => "A form field".to_owned(),
        }),
    };
    if let Some(what) = refusal {
        return Err(nul_refusal(&what));
    }
    req.set_body(bytes.clone());
    Ok(matches!(kind, BodyKind::Json).then_some(bytes))
}

/// The documented shape for an error raised outside an operation's own answers. Answers a
/// handler built itself (`ApiError`, the security checkers, the pages) pass unchanged.
fn shape(err: poem::Error, method: &Method, path: &str, body: Option<&Bytes>) -> Response {
    if err.is_from_response() {
        return err.into_response();
    }
    let (code, message) = classify(&err, method, path, body);
    let allow = (code == ErrorCode::MethodNotAllowed)
        .then(|| routes::allowed_methods(path))
        .flatten();
    // The original response carries the data the layers attached (the route label for the
    // metrics), which the new one keeps.
    let mut original = err.into_response();
    let mut response = error_response(code, &message);
    *response.extensions_mut() = std::mem::take(original.extensions_mut());
    if let Some(methods) = allow {
        let list: Vec<&str> = methods.iter().map(Method::as_str).collect();
        if let Ok(value) = HeaderValue::from_str(&list.join(", ")) {
            response.headers_mut().insert(header::ALLOW, value);
        }
    } else if code == ErrorCode::MethodNotAllowed {
        tracing::warn!(
            path,
            "405 without an Allow header: add this address to api::routes::OTHER_ROUTES"
        );
    }
    response
}

/// The code and sentence for one of poem's or poem-openapi's errors. The errors' own texts
/// are not repeated: they can quote a value that was sent, and values can be secrets.
fn classify(
    err: &poem::Error,
    method: &Method,
    path: &str,
    body: Option<&Bytes>,
) -> (ErrorCode, String) {
    if let Some(param) = err.downcast_ref::<ParsePathError>() {
        let name = param
            .name
            .strip_prefix("param")
            .and_then(|index| index.parse().ok())
            .and_then(|index| routes::path_parameter_name(path, index))
            .unwrap_or(param.name);
        return (
            ErrorCode::InvalidRequest,
            format!("The path parameter `{name}` is not valid; see /api/docs for its format."),
        );
    }
    if let Some(param) = err.downcast_ref::<ParseParamError>() {
        return (
            ErrorCode::InvalidRequest,
            format!(
                "The parameter `{}` is missing or not valid; see /api/docs.",
                param.name
            ),
        );
    }
    if err.is::<ParseRequestPayloadError>()
        || err.is::<ParseJsonError>()
        || err.is::<ParseMultipartError>()
    {
        return (ErrorCode::InvalidRequest, body_message(method, path, body));
    }
    if err.is::<ContentTypeError>() {
        let message = if let Some(accepted) = routes::file_upload_types(method, path) {
            return (
                ErrorCode::UnsupportedMediaType,
                format!(
                    "Send the file itself as the request body, with `Content-Type` {accepted}."
                ),
            );
        } else if path.starts_with(routes::API_PREFIX) {
            "The request body must be JSON: send it with `Content-Type: application/json`."
        } else {
            "The request body has a content type this address does not accept."
        };
        return (ErrorCode::UnsupportedMediaType, message.to_owned());
    }
    if err.is::<AuthorizationError>() {
        let message = if path.starts_with("/api/v1/pod/") {
            "This panel has no session. Reload the ticket in the PSA."
        } else {
            "This operation needs an API key: send `Authorization: Bearer <key>` (create one with `vouch api-key create`)."
        };
        return (ErrorCode::Unauthorized, message.to_owned());
    }
    if err.is::<NotFoundError>() {
        return not_found();
    }
    if err.is::<MethodNotAllowedError>() {
        return method_not_allowed();
    }
    match err.status() {
        StatusCode::NOT_FOUND => not_found(),
        StatusCode::METHOD_NOT_ALLOWED => method_not_allowed(),
        StatusCode::UNAUTHORIZED => (
            ErrorCode::Unauthorized,
            "Valid credentials are needed here.".to_owned(),
        ),
        StatusCode::FORBIDDEN => (
            ErrorCode::Forbidden,
            "These credentials do not allow this.".to_owned(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            ErrorCode::PayloadTooLarge,
            "The request body is larger than Vouch accepts. Send less.".to_owned(),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            ErrorCode::UnsupportedMediaType,
            "The request body has a content type this address does not accept.".to_owned(),
        ),
        status if status.is_client_error() => (
            ErrorCode::InvalidRequest,
            "The request could not be read. Check it against the API documentation at /api/docs."
                .to_owned(),
        ),
        _ => {
            tracing::error!(error = %err, status = err.status().as_u16(), "internal error");
            (ErrorCode::InternalError, INTERNAL_MESSAGE.to_owned())
        }
    }
}

fn not_found() -> (ErrorCode, String) {
    (
        ErrorCode::NotFound,
        "There is nothing at this address. The API is described at /api/docs.".to_owned(),
    )
}

fn method_not_allowed() -> (ErrorCode, String) {
    (
        ErrorCode::MethodNotAllowed,
        "This address does not accept this method; the `Allow` header lists those it does. See /api/docs."
            .to_owned(),
    )
}

/// Why a JSON body was refused, as precisely as can be said without quoting it.
fn body_message(method: &Method, path: &str, body: Option<&Bytes>) -> String {
    const GENERIC: &str = "The request body could not be read: check that it is JSON with the fields and types described at /api/docs.";
    let Some(body) = body else {
        return GENERIC.to_owned();
    };
    let value: serde_json::Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(err) => {
            return format!(
                "The request body could not be read: it is not valid JSON (line {}, column {}). See /api/docs.",
                err.line(),
                err.column()
            );
        }
    };
    match routes::operation(method, path).and_then(|op| routes::body_problem(op, &value)) {
        Some((Some(field), problem)) => {
            format!("The request body could not be read: `{field}` {problem}. See /api/docs.")
        }
        Some((None, problem)) => {
            format!("The request body could not be read: it {problem}. See /api/docs.")
        }
        None => GENERIC.to_owned(),
    }
}
