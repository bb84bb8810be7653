//! The one error shape of the JSON API: `{code, message}`, with codes that never change
//! meaning once published. 5xx bodies say "internal error"; the cause goes to the log.

use poem::error::{MethodNotAllowedError, NotFoundError};
use poem::http::StatusCode;
use poem::{Endpoint, EndpointExt, Response};
use poem_openapi::error::{
    AuthorizationError, ContentTypeError, ParseParamError, ParseRequestPayloadError,
};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

/// Every machine-readable error code the API can return, in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The request body, a parameter or a header could not be read.
    InvalidRequest,
    NotFound,
    MethodNotAllowed,
    Unauthorized,
    Forbidden,
    Conflict,
    RateLimited,
    Internal,
    /// The database is not reachable or not migrated.
    Unavailable,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::Conflict => "conflict",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Internal => "internal_error",
            ErrorCode::Unavailable => "unavailable",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// An error: a stable machine code and a sentence for the person, saying what to do.
#[derive(Debug, Clone, PartialEq, Eq, Object, serde::Serialize, serde::Deserialize)]
pub struct ErrorBody {
    /// Stable, machine-readable error code, such as `invalid_request` or `not_found`.
    pub code: String,
    /// What went wrong and what to do about it, for a person to read.
    pub message: String,
    /// Only with `preferred_method_mismatch`: whether Vouch can make the Authenticator push
    /// the user's default sign-in method (after the technician confirms).
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub can_fix: Option<bool>,
}

/// An API error response.
#[derive(Debug, ApiResponse)]
#[oai(bad_request_handler = "request_parse_error")]
pub enum ApiError {
    /// The request is malformed or a value is invalid.
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
    /// Too many requests; wait and try again.
    #[oai(status = 429)]
    TooManyRequests(Json<ErrorBody>),
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

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError::with_status(code.status().as_u16(), code.as_str(), message)
    }

    /// For codes owned by a service (such as `microsoft_missing_permission`).
    pub fn with_status(status: u16, code: &str, message: impl Into<String>) -> ApiError {
        let body = Json(ErrorBody {
            code: code.to_owned(),
            message: message.into(),
            can_fix: None,
        });
        match status {
            401 => ApiError::Unauthorized(body),
            403 => ApiError::Forbidden(body),
            404 | 405 => ApiError::NotFound(body),
            409 => ApiError::Conflict(body),
            429 => ApiError::TooManyRequests(body),
            502 => ApiError::BadGateway(body),
            503 => ApiError::Unavailable(body),
            504 => ApiError::GatewayTimeout(body),
            500..=599 => ApiError::Internal(body),
            _ => ApiError::BadRequest(body),
        }
    }

    /// Adds the `can_fix` hint to a body.
    pub fn with_can_fix(self, can_fix: bool) -> ApiError {
        match self {
            ApiError::Conflict(mut body) => {
                body.0.can_fix = Some(can_fix);
                ApiError::Conflict(body)
            }
            other => other,
        }
    }

    /// Logs the cause and answers with a body that reveals nothing of it.
    pub fn internal(cause: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(
            ErrorCode::Internal,
            "Internal error. Try again; if it persists, give your Vouch administrator the x-request-id of this response.",
        )
    }
}

/// Turns poem-openapi's own parse errors into the documented shape.
fn request_parse_error(err: poem::Error) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidRequest,
        format!(
            "The request could not be read: {err}. Check it against the API documentation at /api/docs."
        ),
    )
}

/// The JSON body for errors raised outside poem-openapi (unknown routes, for example).
pub fn error_response(code: ErrorCode, message: &str) -> poem::Response {
    let body = ErrorBody {
        code: code.as_str().to_owned(),
        message: message.to_owned(),
        can_fix: None,
    };
    poem::Response::builder()
        .status(code.status())
        .content_type("application/json; charset=utf-8")
        .body(serde_json::to_string(&body).expect("error body serialises"))
}

/// The app-wide error boundary: errors raised outside an operation's own answers (unknown
/// routes, poem-openapi's parse errors) leave in the documented JSON shape.
pub fn json_errors<E: Endpoint + 'static>(ep: E) -> impl Endpoint<Output = Response> {
    ep.catch_error(|_: NotFoundError| async {
            error_response(
                ErrorCode::NotFound,
                "There is nothing at this address. The API is described at /api/docs.",
            )
        })
        // poem-openapi's own parse errors, in the documented shape. The cause is not echoed:
        // it could quote a value that was sent, and values can be secrets.
        .catch_error(|_: ParseRequestPayloadError| async {
            error_response(
                ErrorCode::InvalidRequest,
                "The request body could not be read: check that it is JSON with the fields and types described at /api/docs.",
            )
        })
        .catch_error(|_: ContentTypeError| async {
            error_response(
                ErrorCode::InvalidRequest,
                "The request body has the wrong content type: send `Content-Type: application/json`.",
            )
        })
        .catch_error(|err: ParseParamError| async move {
            error_response(
                ErrorCode::InvalidRequest,
                &format!("The parameter `{}` is missing or not valid; see /api/docs.", err.name),
            )
        })
        .catch_error(|_: AuthorizationError| async {
            error_response(
                ErrorCode::Unauthorized,
                "This operation needs an API key: send `Authorization: Bearer <key>` (create one with `vouch api-key create`).",
            )
        })
        .catch_error(|_: MethodNotAllowedError| async {
            error_response(
                ErrorCode::MethodNotAllowed,
                "This address does not accept this method. See /api/docs.",
            )
        })
        .map_to_response()
}
