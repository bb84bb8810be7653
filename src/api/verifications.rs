//! Verifying callers and resetting passwords.

use crate::core::activity::MethodChange;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use secrecy::ExposeSecret;
use uuid::Uuid;

use super::ApiError;
use super::auth::MspApiKey;
use crate::app::AppContext;
use crate::core::directory::DirectoryUser;
use crate::core::error::CoreError;
use crate::core::verification::{Requester, StartRequest, TicketContext};
use crate::domain::{ErrorCode, ResetStatus, VerificationMethod, VerificationStatus};
use crate::domain::{PasswordReset, Verification as VerificationRecord};
use crate::store::{msp::MspAccount, tenants::Tenant};

#[derive(Tags)]
enum ApiTags {
    /// Verifying that a caller is who they say they are.
    Verifications,
    /// Resetting Microsoft 365 passwords after a verification.
    PasswordResets,
}

/// The PSA ticket a verification belongs to.
#[derive(Debug, Clone, Default, Object)]
pub struct TicketRef {
    /// Vouch's id of the PSA connection.
    #[oai(nullable)]
    pub connection_id: Option<Uuid>,
    /// The PSA's ticket id.
    #[oai(validator(max_length = 256))]
    #[oai(nullable)]
    pub ticket_id: Option<String>,
    /// The PSA's contact id.
    #[oai(validator(max_length = 256))]
    #[oai(nullable)]
    pub contact_id: Option<String>,
}

/// Start a verification.
#[derive(Debug, Object)]
pub struct StartVerificationRequest {
    /// The customer's Microsoft tenant id (or its Vouch id).
    #[oai(validator(max_length = 256))]
    pub tenant_id: String,
    /// The user's sign-in name or e-mail address.
    #[oai(validator(max_length = 320))]
    pub user: String,
    /// How to verify.
    pub method: VerificationMethod,
    /// The ticket this verification is for.
    #[oai(nullable)]
    pub ticket: Option<TicketRef>,
    /// False when the person verified is not the ticket's own contact; then `reason` is required.
    #[oai(default = "default_true")]
    pub is_ticket_contact: bool,
    /// Why someone other than the ticket's contact is verified (e.g. "manager approval").
    #[oai(validator(max_length = 500))]
    #[oai(nullable)]
    pub reason: Option<String>,
    /// The PSA contact's mobile number; used for SMS only when the MSP's policy allows it and
    /// Microsoft has no mobile registered for the user.
    #[oai(validator(max_length = 64))]
    #[oai(nullable)]
    pub contact_mobile: Option<String>,
}

fn default_true() -> bool {
    true
}

/// A verification and its state.
#[derive(Debug, Object)]
pub struct Verification {
    /// Vouch's id of the verification.
    pub id: Uuid,
    /// The Microsoft user's object id.
    pub user_id: String,
    /// The Microsoft user's sign-in name.
    pub user_principal_name: String,
    /// How the caller is verified.
    pub method: VerificationMethod,
    /// Where it stands.
    pub status: VerificationStatus,
    /// Why it did not succeed (e.g. `denied`, `fraud_reported`, `no_response`, `too_many_attempts`).
    #[oai(nullable)]
    pub failure_code: Option<ErrorCode>,
    /// When it was started.
    pub created_at: DateTime<Utc>,
    /// When a pending verification lapses.
    pub expires_at: DateTime<Utc>,
    /// When it was decided.
    #[oai(nullable)]
    pub decided_at: Option<DateTime<Utc>>,
    /// Until when the user counts as verified (approved verifications only).
    #[oai(nullable)]
    pub verified_until: Option<DateTime<Utc>>,
    /// Wrong or right codes entered so far (SMS code).
    pub attempts: i32,
    /// The reason given for verifying someone other than the ticket's contact.
    #[oai(nullable)]
    pub reason: Option<String>,
    /// True when the SMS went to the PSA contact's number rather than Microsoft's.
    pub used_contact_phone_fallback: bool,
    /// True when this verification has been spent by a password reset.
    pub used_for_reset: bool,
    /// The PSA ticket id.
    #[oai(nullable)]
    pub ticket_id: Option<String>,
}

impl From<VerificationRecord> for Verification {
    fn from(v: VerificationRecord) -> Self {
        Verification {
            id: v.id,
            user_id: v.user_object_id,
            user_principal_name: v.user_principal_name,
            method: v.method,
            status: v.status,
            failure_code: v.failure_code,
            created_at: v.created_at,
            expires_at: v.expires_at,
            decided_at: v.decided_at,
            verified_until: v.verified_until,
            attempts: v.attempts,
            reason: v.reason,
            used_contact_phone_fallback: v.used_contact_phone_fallback,
            used_for_reset: v.consumed_at.is_some(),
            ticket_id: v.psa_ticket_id,
        }
    }
}

/// The code the caller read out.
#[derive(Debug, Object)]
pub struct CodeSubmission {
    /// The 6-digit code.
    #[oai(validator(max_length = 32))]
    pub code: String,
}

/// A method and whether it can reach this user.
#[derive(Debug, Object)]
pub struct MethodOption {
    /// The method.
    pub method: VerificationMethod,
    /// Whether it can be used now.
    pub available: bool,
    /// Why not, or where it would go (masked number).
    pub detail: String,
}

/// The Microsoft user a contact maps to and how they can be verified.
#[derive(Debug, Object)]
pub struct UserMethods {
    /// The Microsoft user's object id.
    pub user_id: String,
    /// The Microsoft user's sign-in name.
    pub user_principal_name: String,
    /// The user's display name.
    #[oai(nullable)]
    pub display_name: Option<String>,
    /// Each method, available or not, with why.
    pub methods: Vec<MethodOption>,
}

/// Make the Authenticator push the user's default sign-in method.
#[derive(Debug, Object)]
pub struct DefaultMethodRequest {
    /// The customer's Microsoft tenant id.
    #[oai(validator(max_length = 256))]
    pub tenant_id: String,
    /// The user's sign-in name or e-mail address.
    #[oai(validator(max_length = 320))]
    pub user: String,
    /// Must be true: this changes the user's sign-in experience.
    pub confirm: bool,
}

/// Reset a password.
#[derive(Debug, Object)]
pub struct ResetRequestBody {
    /// The customer's Microsoft tenant id.
    #[oai(validator(max_length = 256))]
    pub tenant_id: String,
    /// The user's sign-in name or e-mail address: the verification must be of this user.
    #[oai(validator(max_length = 320))]
    pub user: String,
    /// An approved, unexpired verification of the user, not yet used.
    pub verification_id: Uuid,
    /// Must be true.
    pub confirm: bool,
}

/// The outcome of a password reset.
#[derive(Debug, Object)]
pub struct PasswordResetDto {
    /// Vouch's id of the reset.
    pub id: Uuid,
    /// Where the reset stands.
    pub status: ResetStatus,
    /// Why it failed, or why the SMS did not go.
    #[oai(nullable)]
    pub failure_code: Option<ErrorCode>,
    /// The masked mobile number the secure link was sent to.
    #[oai(nullable)]
    pub sent_to: Option<String>,
    /// The new password, only when the MSP's policy allows technicians to see it.
    #[oai(nullable)]
    pub password: Option<String>,
    /// When the secure link stops working.
    #[oai(nullable)]
    pub link_expires_at: Option<DateTime<Utc>>,
    /// The verification this reset spent.
    pub verification_id: Uuid,
    /// Microsoft's request id of the change.
    #[oai(nullable)]
    pub microsoft_request_id: Option<String>,
    /// How many times the password change was sent to Microsoft (more than once when an
    /// answer was lost; the same password each time).
    pub change_attempts: i32,
    /// How many times the link was sent again.
    pub resends: i32,
    /// When it was requested.
    pub created_at: DateTime<Utc>,
}

fn reset_dto(
    reset: PasswordReset,
    password: Option<String>,
    link_expires_at: Option<DateTime<Utc>>,
) -> PasswordResetDto {
    PasswordResetDto {
        id: reset.id,
        status: reset.status,
        failure_code: reset.failure_code,
        sent_to: reset.sent_to_masked,
        password,
        link_expires_at,
        verification_id: reset.verification_id,
        microsoft_request_id: reset.upstream_request_id,
        change_attempts: reset.patch_attempts,
        resends: reset.resends,
        created_at: reset.created_at,
    }
}

#[derive(ApiResponse)]
enum Started {
    /// The verification has started; poll it (or wait on it) for the outcome.
    #[oai(status = 202)]
    Started(Json<Verification>),
}

#[derive(ApiResponse)]
enum ResetResponse {
    /// The reset was carried out (or had already been, for this idempotency key).
    #[oai(status = 201)]
    Done(Json<PasswordResetDto>),
}

#[derive(ApiResponse)]
enum NoContent {
    /// Done.
    #[oai(status = 204)]
    Done,
}

async fn msp(ctx: &AppContext, auth: &MspApiKey) -> Result<MspAccount, ApiError> {
    ctx.store
        .get_msp(auth.msp_id())
        .await?
        .ok_or_else(|| ApiError::internal(&"API key of a removed MSP"))
}

async fn tenant_and_user(
    ctx: &AppContext,
    msp_id: Uuid,
    tenant: &str,
    user: &str,
) -> Result<(Tenant, DirectoryUser), ApiError> {
    Ok(find_user(ctx, msp_id, tenant, user).await?)
}

async fn find_user(
    ctx: &AppContext,
    msp_id: Uuid,
    tenant: &str,
    user: &str,
) -> Result<(Tenant, DirectoryUser), crate::core::error::CoreError> {
    let tenant = ctx.directory.tenant(msp_id, tenant.trim()).await?;
    let user = ctx
        .directory
        .resolve_user(&tenant, &[user.to_owned()])
        .await?;
    Ok((tenant, user))
}

pub struct VerificationsApi;

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Verifications")]
impl VerificationsApi {
    /// Start verifying a caller.
    ///
    /// A push is refused at once, with `preferred_method_mismatch`, when the user's default
    /// sign-in method is not the Authenticator (the push would never reach them); at most one
    /// push per user may be pending and at most N per window (MSP policy).
    #[oai(
        path = "/verifications",
        method = "post",
        operation_id = "verifications_start"
    )]
    async fn start(
        &self,
        auth: MspApiKey,
        ctx: Data<&Arc<AppContext>>,
        body: Json<StartVerificationRequest>,
    ) -> Result<Started, ApiError> {
        let body = body.0;
        let msp = msp(&ctx, &auth).await?;
        let ticket = body.ticket.unwrap_or_default();
        let (tenant, user) = match find_user(&ctx, msp.id, &body.tenant_id, &body.user).await {
            Ok(found) => found,
            Err(err) => {
                ctx.verifications
                    .audit_refused_start(
                        msp.id,
                        &auth.actor(),
                        body.method,
                        ticket.ticket_id.clone(),
                        &body.user,
                        &err,
                    )
                    .await;
                return Err(err.into());
            }
        };
        let verification = ctx
            .verifications
            .start(StartRequest {
                msp,
                tenant,
                user,
                method: body.method,
                context: TicketContext {
                    psa_connection_id: ticket.connection_id,
                    ticket_id: ticket.ticket_id,
                    contact_id: ticket.contact_id,
                    contact_mobile: body.contact_mobile,
                },
                is_ticket_contact: body.is_ticket_contact,
                reason: body.reason,
                requester: Requester {
                    actor: auth.actor(),
                    technician_id: None,
                    console_user_id: None,
                },
            })
            .await?;
        Ok(Started::Started(Json(verification.into())))
    }

    /// Read a verification; with `wait_seconds`, wait (up to 30 s) until it is no longer pending.
    #[oai(
        path = "/verifications/:id",
        method = "get",
        operation_id = "verifications_get"
    )]
    async fn get(
        &self,
        auth: MspApiKey,
        ctx: Data<&Arc<AppContext>>,
        id: Path<Uuid>,
        /// Seconds to wait for a pending verification to be decided (0 to 30).
        wait_seconds: Query<Option<u64>>,
    ) -> Result<Json<Verification>, ApiError> {
        let wait = Duration::from_secs(wait_seconds.0.unwrap_or(0).min(30));
        let verification = ctx.verifications.get(auth.msp_id(), id.0, wait).await?;
        Ok(Json(verification.into()))
    }

    /// Check the code the caller read out (SMS code). At most 5 attempts; codes last 10 minutes.
    #[oai(
        path = "/verifications/:id/code",
        method = "post",
        operation_id = "verifications_submit_code"
    )]
    async fn submit_code(
        &self,
        auth: MspApiKey,
        ctx: Data<&Arc<AppContext>>,
        id: Path<Uuid>,
        body: Json<CodeSubmission>,
    ) -> Result<Json<Verification>, ApiError> {
        let msp = msp(&ctx, &auth).await?;
        let verification = ctx
            .verifications
            .submit_code(&msp, id.0, &body.0.code, &auth.actor())
            .await?;
        Ok(Json(verification.into()))
    }

    /// Cancel a pending verification.
    #[oai(
        path = "/verifications/:id/cancel",
        method = "post",
        operation_id = "verifications_cancel"
    )]
    async fn cancel(
        &self,
        auth: MspApiKey,
        ctx: Data<&Arc<AppContext>>,
        id: Path<Uuid>,
    ) -> Result<Json<Verification>, ApiError> {
        let msp = msp(&ctx, &auth).await?;
        let verification = ctx.verifications.cancel(&msp, id.0, &auth.actor()).await?;
        Ok(Json(verification.into()))
    }

    /// The Microsoft user an address maps to, and which verification methods can reach them.
    #[oai(
        path = "/users/methods",
        method = "get",
        operation_id = "users_methods"
    )]
    async fn methods(
        &self,
        auth: MspApiKey,
        ctx: Data<&Arc<AppContext>>,
        /// The customer's Microsoft tenant id.
        #[oai(validator(max_length = 256))]
        tenant_id: Query<String>,
        /// The user's sign-in name or e-mail address.
        #[oai(validator(max_length = 320))]
        user: Query<String>,
        /// The PSA contact's mobile number (used only where policy allows).
        #[oai(validator(max_length = 64))]
        contact_mobile: Query<Option<String>>,
    ) -> Result<Json<UserMethods>, ApiError> {
        let msp = msp(&ctx, &auth).await?;
        let (tenant, user) = tenant_and_user(&ctx, msp.id, &tenant_id.0, &user.0).await?;
        let methods = ctx
            .verifications
            .available_methods(&msp, &tenant, &user, contact_mobile.0.as_deref())
            .await?;
        Ok(Json(UserMethods {
            user_id: user.object_id,
            user_principal_name: user.upn,
            display_name: user.display_name,
            methods: methods
                .into_iter()
                .map(|m| MethodOption {
                    method: m.method,
                    available: m.available,
                    detail: m.detail,
                })
                .collect(),
        }))
    }

    /// A user's verification history, newest first.
    #[oai(
        path = "/users/verifications",
        method = "get",
        operation_id = "users_verification_history"
    )]
    async fn history(
        &self,
        auth: MspApiKey,
        ctx: Data<&Arc<AppContext>>,
        /// The customer's Microsoft tenant id.
        #[oai(validator(max_length = 256))]
        tenant_id: Query<String>,
        /// The user's sign-in name or e-mail address.
        #[oai(validator(max_length = 320))]
        user: Query<String>,
        /// At most this many (default 20, at most 200).
        limit: Query<Option<u64>>,
    ) -> Result<Json<Vec<Verification>>, ApiError> {
        let (tenant, user) = tenant_and_user(&ctx, auth.msp_id(), &tenant_id.0, &user.0).await?;
        let items = ctx
            .verifications
            .history(&tenant, &user, limit.0.unwrap_or(20).clamp(1, 200))
            .await?;
        Ok(Json(items.into_iter().map(Verification::from).collect()))
    }

    /// Make the Microsoft Authenticator push the user's default sign-in method.
    ///
    /// The fix offered for `preferred_method_mismatch`; needs the Microsoft Authenticator
    /// integration, and `confirm: true`.
    #[oai(
        path = "/users/default-method",
        method = "post",
        operation_id = "users_set_push_default"
    )]
    async fn set_push_default(
        &self,
        auth: MspApiKey,
        ctx: Data<&Arc<AppContext>>,
        body: Json<DefaultMethodRequest>,
    ) -> Result<NoContent, ApiError> {
        if !body.0.confirm {
            return Err(CoreError::ConfirmationRequired.into());
        }
        let (tenant, user) =
            tenant_and_user(&ctx, auth.msp_id(), &body.0.tenant_id, &body.0.user).await?;
        ctx.verifications
            .make_push_default(
                &auth.actor(),
                &tenant,
                MethodChange {
                    msp_id: auth.msp_id(),
                    tenant_id: tenant.id,
                    user_object_id: user.object_id.clone(),
                    upn: user.upn.clone(),
                    psa_connection_id: None,
                    psa_ticket_id: None,
                    requested_by: "the Vouch API".to_owned(),
                },
            )
            .await?;
        Ok(NoContent::Done)
    }
}

pub struct ResetsApi;

#[OpenApi(prefix_path = "/v1/password-resets", tag = "ApiTags::PasswordResets")]
impl ResetsApi {
    /// Reset a user's Microsoft 365 password.
    ///
    /// Needs an approved, unexpired verification of that user (each verification serves one
    /// reset) and `confirm: true`. The new password goes to the user by a one-time secure link
    /// sent by SMS to the mobile phone registered in Microsoft. The same `Idempotency-Key`
    /// makes retries return the first outcome instead of resetting again.
    #[oai(path = "/", method = "post", operation_id = "password_resets_create")]
    async fn create(
        &self,
        auth: MspApiKey,
        ctx: Data<&Arc<AppContext>>,
        /// A unique key per intended reset (a UUID is ideal).
        #[oai(name = "Idempotency-Key", validator(max_length = 256))]
        idempotency_key: Header<String>,
        body: Json<ResetRequestBody>,
    ) -> Result<ResetResponse, ApiError> {
        let msp = msp(&ctx, &auth).await?;
        let (tenant, user) = tenant_and_user(&ctx, msp.id, &body.0.tenant_id, &body.0.user).await?;
        let result = ctx
            .resets
            .reset(crate::core::reset::ResetRequest {
                msp,
                tenant_id: tenant.id,
                user_object_id: user.object_id,
                verification_id: body.0.verification_id,
                idempotency_key: idempotency_key.0,
                confirmed: body.0.confirm,
                actor: auth.actor(),
                technician_id: None,
            })
            .await?;
        let password = result.password.map(|p| p.expose_secret().to_owned());
        Ok(ResetResponse::Done(Json(reset_dto(
            result.reset,
            password,
            result.share_expires_at,
        ))))
    }

    /// Read a password reset (never the password).
    #[oai(path = "/:id", method = "get", operation_id = "password_resets_get")]
    async fn get(
        &self,
        auth: MspApiKey,
        ctx: Data<&Arc<AppContext>>,
        id: Path<Uuid>,
    ) -> Result<Json<PasswordResetDto>, ApiError> {
        let reset = ctx.resets.get(auth.msp_id(), id.0).await?;
        Ok(Json(reset_dto(reset, None, None)))
    }

    /// Send the reset's secure link again.
    ///
    /// To the mobile phone registered in Microsoft only, and only while the link still opens
    /// (not yet opened, expired or withdrawn), at most `resets.max_resends` times. Use it after
    /// `completed_sms_failed`, or after `outcome_unknown` to send the link anyway (the user's
    /// older links are then withdrawn). Audited, and noted on the ticket.
    #[oai(
        path = "/:id/resend",
        method = "post",
        operation_id = "password_resets_resend"
    )]
    async fn resend(
        &self,
        auth: MspApiKey,
        ctx: Data<&Arc<AppContext>>,
        id: Path<Uuid>,
    ) -> Result<Json<PasswordResetDto>, ApiError> {
        let msp = msp(&ctx, &auth).await?;
        let reset = ctx.resets.resend(&msp, id.0, &auth.actor()).await?;
        Ok(Json(reset_dto(reset, None, None)))
    }
}
