//! The pod's JSON API: what the panel inside the PSA ticket calls, authenticated by the pod
//! token the PSA's vouched embed load earned (see `psa::pod_token`). Everything is derived
//! from the token's ticket: a pod can never act on another ticket's contact or for another
//! MSP.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::auth::Bearer;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, SecurityScheme, Tags};
use secrecy::ExposeSecret;
use uuid::Uuid;

use super::ApiError;
use super::error::{ErrorCode, error_response};
use super::verifications::MethodDto;
use crate::app::AppContext;
use crate::core::directory::DirectoryUser;
use crate::core::error::CoreError;
use crate::core::verification::{Requester, StartRequest, TicketContext, verified_now};
use crate::psa::pod_token::{self, PodClaims, TokenError};
use crate::psa::{ConnectWiseMember, EmbedLoad, TicketContact};
use crate::store::repos::{
    AuditActor, MspAccount, MspRepository, PsaConnection, PsaConnectionRepository, Technician,
    TechnicianSighting, Tenant, TenantRepository,
};
use crate::store::verifications::{Verification as VerificationRecord, status};

#[derive(Tags)]
enum ApiTags {
    /// What the panel inside the PSA ticket uses.
    Pod,
}

/// The session of a pod: the PSA vouched for this technician on this ticket.
pub struct PodSession {
    pub claims: PodClaims,
    pub connection: PsaConnection,
    pub msp: MspAccount,
    pub technician: Technician,
}

/// A pod token (`Authorization: Bearer ...`), issued when the PSA vouched for the embed load.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check_pod_token")]
pub struct PodToken(PodSession);

async fn check_pod_token(req: &Request, bearer: Bearer) -> poem::Result<PodSession> {
    let ctx = req
        .data::<Arc<AppContext>>()
        .expect("the application context is attached to every request");
    let refuse = |message: &str| {
        poem::Error::from_response(error_response(ErrorCode::Unauthorized, message))
    };
    let claims = match pod_token::verify(ctx.store.keyring(), bearer.token.trim()) {
        Ok(claims) => claims,
        Err(TokenError::Expired) => {
            return Err(refuse(
                "This panel's session has expired. Reload the ticket in the PSA.",
            ));
        }
        Err(TokenError::Invalid) => {
            return Err(refuse(
                "This panel's session is not valid. Reload the ticket in the PSA.",
            ));
        }
    };
    let internal = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "pod session lookup failed");
        poem::Error::from_response(error_response(
            ErrorCode::Unavailable,
            "Vouch cannot load this session right now. Try again.",
        ))
    };
    let connection = ctx
        .psa_connection(claims.connection)
        .await
        .map_err(|e| internal(&e))?;
    let msp = ctx
        .store
        .get_msp(claims.msp)
        .await
        .map_err(|e| internal(&e))?;
    let technician = ctx
        .store
        .get_technician(claims.technician)
        .await
        .map_err(|e| internal(&e))?;
    match (connection, msp, technician) {
        (Some(connection), Some(msp), Some(technician))
            if connection.msp_id == msp.id && technician.msp_id == msp.id =>
        {
            Ok(PodSession {
                claims,
                connection,
                msp,
                technician,
            })
        }
        _ => Err(refuse(
            "This panel's session is no longer valid. Reload the ticket in the PSA.",
        )),
    }
}

impl PodToken {
    fn requester(&self) -> Requester {
        Requester {
            actor: AuditActor {
                kind: "technician".into(),
                id: Some(self.0.technician.psa_member_id.clone()),
                name: Some(self.0.technician.display_name.clone()),
            },
            technician_id: Some(self.0.technician.id),
        }
    }
}

/// Issues a pod token once the PSA vouched for `load` on `connection_id`.
pub async fn open_session(
    ctx: &AppContext,
    connection_id: Uuid,
    load: EmbedLoad,
) -> Result<String, ApiError> {
    let connection = ctx
        .psa_connection(connection_id)
        .await
        .map_err(|e| ApiError::internal(&e))?
        .ok_or_else(|| ApiError::new(ErrorCode::Forbidden, "This Vouch panel URL names no PSA connection. Copy the URL again from Vouch's settings."))?;
    let vouched = ctx
        .psa
        .adapter(connection.kind)
        .authenticate_embed(&connection, &load)
        .await?;
    let sighting = TechnicianSighting {
        msp_id: connection.msp_id,
        psa_connection_id: connection.id,
        psa_member_id: vouched.technician.member_id.clone(),
        display_name: vouched.technician.name.clone(),
        email: vouched.technician.email.clone(),
    };
    let technician = ctx
        .technicians
        .try_get_with(
            (connection.id, sighting.psa_member_id.clone()),
            ctx.store.record_technician(sighting),
        )
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(pod_token::issue(
        ctx.store.keyring(),
        connection.msp_id,
        connection.id,
        technician.id,
        &vouched.ticket_id,
    ))
}

/// The ConnectWise Hosted API member data, as the pod received it.
#[derive(Debug, Object)]
pub struct ConnectWiseSessionRequest {
    /// Vouch's id of the PSA connection (from the pod URL).
    pub connection_id: Uuid,
    /// The ticket the pod is on (from the pod URL's `id`).
    pub ticket_id: String,
    /// What `getMemberAuthentication` returned: site, companyid, memberid, memberHash, ...
    pub member: serde_json::Value,
}

/// A pod session.
#[derive(Debug, Object)]
pub struct PodSessionToken {
    /// The pod token; keep it in memory and send it as `Authorization: Bearer <token>`.
    pub token: String,
}

#[derive(Debug, Object)]
pub struct NamedThing {
    /// A name.
    pub name: String,
}

#[derive(Debug, Object)]
pub struct TicketInfo {
    /// The PSA's ticket id.
    pub id: String,
    /// The ticket's summary.
    pub summary: String,
}

#[derive(Debug, Object)]
pub struct ContactInfo {
    /// The PSA's contact id.
    pub id: String,
    /// The contact's name.
    pub name: String,
    /// The contact's company.
    pub company: Option<String>,
    /// The contact's e-mail addresses, primary first.
    pub emails: Vec<String>,
}

#[derive(Debug, Object)]
pub struct UserInfo {
    /// The Microsoft user's sign-in name.
    pub upn: String,
    /// The Microsoft user's display name.
    pub display_name: Option<String>,
}

#[derive(Debug, Object)]
pub struct Problem {
    /// Stable code.
    pub code: ErrorCode,
    /// What to do.
    pub message: String,
}

/// The verification shield.
#[derive(Debug, Object)]
pub struct Shield {
    /// `not_verified`, `pending`, `verified` or `failed`.
    pub state: String,
    /// The verification behind the state.
    pub verification_id: Option<Uuid>,
    /// Its method.
    pub method: Option<String>,
    /// Until when the user counts as verified.
    pub verified_until: Option<DateTime<Utc>>,
    /// Why it failed.
    pub failure_code: Option<String>,
    /// A sentence for the technician.
    pub message: String,
}

#[derive(Debug, Object)]
pub struct MethodState {
    /// The method.
    pub method: MethodDto,
    /// Whether it can be used now.
    pub available: bool,
    /// Why not, or where it goes.
    pub detail: String,
}

/// Whether the password can be reset now.
#[derive(Debug, Object)]
pub struct ResetState {
    /// True once the user is verified (and has a mobile for the link).
    pub allowed: bool,
    /// Why not ("Verify the user's identity first").
    pub reason: Option<String>,
    /// Where the secure link would go.
    pub masked_phone: Option<String>,
    /// The verification a reset would use.
    pub verification_id: Option<Uuid>,
}

#[derive(Debug, Object)]
pub struct HistoryItem {
    /// Verification id.
    pub id: Uuid,
    /// Method.
    pub method: String,
    /// Outcome.
    pub status: String,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// Why it failed.
    pub failure_code: Option<String>,
}

/// Everything the pod shows.
#[derive(Debug, Object)]
pub struct PodContext {
    /// Who is using the pod.
    pub technician: NamedThing,
    /// The ticket.
    pub ticket: TicketInfo,
    /// The ticket's contact, as the PSA reports it.
    pub contact: Option<ContactInfo>,
    /// The customer's Microsoft tenant.
    pub tenant: Option<NamedThing>,
    /// The Microsoft user the contact maps to.
    pub user: Option<UserInfo>,
    /// Why there is no user.
    pub user_error: Option<Problem>,
    /// The verification shield.
    pub shield: Shield,
    /// The methods and why not.
    pub methods: Vec<MethodState>,
    /// Whether a reset can be made.
    pub reset: ResetState,
    /// Recent verifications of this user, newest first.
    pub history: Vec<HistoryItem>,
}

/// Start a verification from the pod.
#[derive(Debug, Object)]
pub struct PodStartRequest {
    /// How to verify.
    pub method: MethodDto,
    /// Verify someone other than the ticket's contact (needs a reason).
    pub other_user: Option<OtherUser>,
}

#[derive(Debug, Object)]
pub struct OtherUser {
    /// Their e-mail address.
    pub email: String,
    /// Why (e.g. "manager approval"); kept in the audit log.
    pub reason: String,
}

/// Make the Authenticator push the default method.
#[derive(Debug, Object)]
pub struct PodConfirm {
    /// Must be true.
    pub confirm: bool,
}

/// Reset from the pod.
#[derive(Debug, Object)]
pub struct PodResetRequest {
    /// The approved verification (from this ticket) to spend.
    pub verification_id: Uuid,
    /// Must be true.
    pub confirm: bool,
}

/// The outcome of a reset.
#[derive(Debug, Object)]
pub struct PodResetOutcome {
    /// `completed`, `completed_sms_failed` or `failed`.
    pub status: String,
    /// Where the link went (masked).
    pub sent_to: Option<String>,
    /// Only when the MSP allows technicians to see passwords.
    pub password: Option<String>,
    /// Why it failed or the SMS did not go.
    pub failure_code: Option<String>,
    /// When the link stops working.
    pub link_expires_at: Option<DateTime<Utc>>,
}

/// A verification seen from the pod.
#[derive(Debug, Object)]
pub struct PodVerification {
    /// Id.
    pub id: Uuid,
    /// Method.
    pub method: String,
    /// `pending`, `approved`, `denied`, `expired`, `failed`, `cancelled`.
    pub status: String,
    /// Why it did not succeed.
    pub failure_code: Option<String>,
    /// Until when the user counts as verified.
    pub verified_until: Option<DateTime<Utc>>,
    /// Codes entered so far.
    pub attempts: i32,
    /// Started.
    pub created_at: DateTime<Utc>,
    /// Lapses.
    pub expires_at: DateTime<Utc>,
}

impl From<VerificationRecord> for PodVerification {
    fn from(v: VerificationRecord) -> Self {
        PodVerification {
            id: v.id,
            method: v.method,
            status: v.status,
            failure_code: v.failure_code,
            verified_until: v.verified_until,
            attempts: v.attempts,
            created_at: v.created_at,
            expires_at: v.expires_at,
        }
    }
}

#[derive(ApiResponse)]
enum PodStarted {
    /// Started; wait on it with `GET /v1/pod/verifications/{id}?wait_seconds=25`.
    #[oai(status = 202)]
    Started(Json<PodVerification>),
}

#[derive(ApiResponse)]
enum PodNoContent {
    /// Done.
    #[oai(status = 204)]
    Done,
}

#[derive(ApiResponse)]
enum PodResetResponse {
    /// The reset was carried out.
    #[oai(status = 201)]
    Done(Json<PodResetOutcome>),
}

/// The ticket, its tenant and the Microsoft user of `email` (or of the contact).
struct Resolved {
    ticket: TicketContact,
    tenant: Option<Tenant>,
    user: Result<DirectoryUser, CoreError>,
}

async fn resolve(
    ctx: &AppContext,
    session: &PodSession,
    email: Option<&str>,
) -> Result<Resolved, ApiError> {
    let ticket = ctx
        .psa
        .ticket(&session.connection, &session.claims.ticket)
        .await?;
    let tenant = match &ticket.company {
        Some(company) => ctx
            .store
            .tenant_for_company(session.connection.id, &company.id)
            .await
            .map_err(|e| ApiError::internal(&e))?,
        None => None,
    };
    let user = match (&tenant, email, &ticket.contact) {
        (None, _, _) => Err(CoreError::InvalidInput {
            field: "company",
            problem: format!(
                "{} is not mapped to a Microsoft 365 tenant in Vouch; map it under Companies",
                ticket
                    .company
                    .as_ref()
                    .map(|c| c.name.as_str())
                    .unwrap_or("This ticket's company")
            ),
        }),
        (Some(tenant), Some(email), _) => {
            ctx.directory
                .resolve_user(tenant, &[email.to_owned()])
                .await
        }
        (Some(tenant), None, Some(contact)) => {
            ctx.directory.resolve_user(tenant, &contact.emails).await
        }
        (Some(_), None, None) => Err(CoreError::InvalidInput {
            field: "contact",
            problem: "the ticket has no contact; set one in the PSA".into(),
        }),
    };
    Ok(Resolved {
        ticket,
        tenant,
        user,
    })
}

/// A verification of this pod's ticket (another ticket's is "not found").
async fn own_verification(
    ctx: &AppContext,
    session: &PodSession,
    id: Uuid,
) -> Result<(), ApiError> {
    use crate::store::verifications::VerificationRepository;
    let verification = ctx
        .store
        .get_verification(id)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    match verification {
        Some(v)
            if v.msp_id == session.msp.id
                && v.psa_connection_id == Some(session.connection.id)
                && v.psa_ticket_id.as_deref() == Some(session.claims.ticket.as_str()) =>
        {
            Ok(())
        }
        _ => Err(CoreError::VerificationNotFound.into()),
    }
}

fn shield_of(history: &[VerificationRecord], now: DateTime<Utc>) -> Shield {
    let Some(latest) = history.first() else {
        return Shield {
            state: "not_verified".into(),
            verification_id: None,
            method: None,
            verified_until: None,
            failure_code: None,
            message: "Not verified".into(),
        };
    };
    let (state, message) = match latest.status.as_str() {
        status::PENDING => ("pending", "Waiting for the user to answer…".to_owned()),
        status::APPROVED if verified_now(latest, now).is_ok() && latest.consumed_at.is_none() => {
            ("verified", "Verified".to_owned())
        }
        status::APPROVED => (
            "not_verified",
            "Not verified (the last verification has been used or has expired)".to_owned(),
        ),
        status::CANCELLED => ("not_verified", "Not verified".to_owned()),
        status::DENIED if latest.failure_code.as_deref() == Some("fraud_reported") => (
            "failed",
            "The user reported the request as fraud.".to_owned(),
        ),
        status::DENIED => ("failed", "The user denied the request.".to_owned()),
        status::EXPIRED => ("failed", "No answer in time.".to_owned()),
        _ => (
            "failed",
            format!(
                "The verification failed ({}).",
                latest.failure_code.as_deref().unwrap_or("error")
            ),
        ),
    };
    Shield {
        state: state.into(),
        verification_id: Some(latest.id),
        method: Some(latest.method.clone()),
        verified_until: latest.verified_until,
        failure_code: latest.failure_code.clone(),
        message,
    }
}

pub struct PodApi;

#[OpenApi(prefix_path = "/v1/pod", tag = "ApiTags::Pod")]
impl PodApi {
    /// Open a ConnectWise pod session from the Hosted API member data.
    ///
    /// Vouch checks the member with ConnectWise (`myMembers/info`, on the site configured for
    /// the connection) and refuses members of another company.
    #[oai(
        path = "/connectwise/session",
        method = "post",
        operation_id = "pod_connectwise_session"
    )]
    async fn connectwise_session(
        &self,
        ctx: Data<&Arc<AppContext>>,
        body: Json<ConnectWiseSessionRequest>,
    ) -> Result<Json<PodSessionToken>, ApiError> {
        let mut member: ConnectWiseMember =
            serde_json::from_value(body.0.member).map_err(|_| {
                ApiError::new(
                    ErrorCode::InvalidRequest,
                    "`member` is not ConnectWise member data.",
                )
            })?;
        member.ticket_id = body.0.ticket_id.trim().to_owned();
        if member.ticket_id.is_empty() || !member.ticket_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "`ticket_id` must be the ticket's number.",
            ));
        }
        let token = open_session(
            &ctx,
            body.0.connection_id,
            EmbedLoad::ConnectWiseMember(member),
        )
        .await?;
        Ok(Json(PodSessionToken { token }))
    }

    /// Everything the pod shows: the contact, the Microsoft user, the shield, the methods,
    /// whether a reset is possible, and the history.
    #[oai(path = "/context", method = "get", operation_id = "pod_context")]
    async fn context(
        &self,
        auth: PodToken,
        ctx: Data<&Arc<AppContext>>,
    ) -> Result<Json<PodContext>, ApiError> {
        let session = &auth.0;
        let resolved = resolve(&ctx, session, None).await?;
        let now = Utc::now();
        let contact = resolved.ticket.contact.as_ref();
        let mut context = PodContext {
            technician: NamedThing {
                name: session.technician.display_name.clone(),
            },
            ticket: TicketInfo {
                id: resolved.ticket.ticket_id.clone(),
                summary: resolved.ticket.summary.clone(),
            },
            contact: contact.map(|c| ContactInfo {
                id: c.id.clone(),
                name: c.name.clone(),
                company: resolved.ticket.company.as_ref().map(|co| co.name.clone()),
                emails: c.emails.clone(),
            }),
            tenant: resolved.tenant.as_ref().map(|t| NamedThing {
                name: t.display_name.clone(),
            }),
            user: None,
            user_error: None,
            shield: shield_of(&[], now),
            methods: Vec::new(),
            reset: ResetState {
                allowed: false,
                reason: Some("Verify the user's identity first".into()),
                masked_phone: None,
                verification_id: None,
            },
            history: Vec::new(),
        };
        let (tenant, user) = match (resolved.tenant, resolved.user) {
            (Some(tenant), Ok(user)) => (tenant, user),
            (_, Err(err)) => {
                context.user_error = Some(Problem {
                    code: err.code(),
                    message: err.to_string(),
                });
                return Ok(Json(context));
            }
            (None, Ok(_)) => return Ok(Json(context)),
        };
        context.user = Some(UserInfo {
            upn: user.upn.clone(),
            display_name: user.display_name.clone(),
        });
        let history = ctx.verifications.history(&tenant, &user, 10).await?;
        context.shield = shield_of(&history, now);
        context.history = history
            .iter()
            .map(|v| HistoryItem {
                id: v.id,
                method: v.method.clone(),
                status: v.status.clone(),
                created_at: v.created_at,
                failure_code: v.failure_code.clone(),
            })
            .collect();
        let contact_mobile = contact.and_then(|c| c.mobile.clone());
        match ctx
            .verifications
            .available_methods(&session.msp, &tenant, &user, contact_mobile.as_deref())
            .await
        {
            Ok(methods) => {
                context.methods = methods
                    .into_iter()
                    .map(|m| MethodState {
                        method: match m.method {
                            crate::core::verification::Method::Push => MethodDto::Push,
                            crate::core::verification::Method::SmsCode => MethodDto::SmsCode,
                            crate::core::verification::Method::SmsLink => MethodDto::SmsLink,
                        },
                        available: m.available,
                        detail: m.detail,
                    })
                    .collect()
            }
            Err(err) => {
                context.user_error = Some(Problem {
                    code: err.code(),
                    message: err.to_string(),
                })
            }
        }
        if context.shield.state == "verified" {
            match ctx
                .verifications
                .mobile_for(&session.msp, &tenant, &user, None)
                .await
            {
                Ok((phone, _)) => {
                    context.reset = ResetState {
                        allowed: true,
                        reason: None,
                        masked_phone: Some(phone.masked()),
                        verification_id: context.shield.verification_id,
                    }
                }
                Err(err) => context.reset.reason = Some(err.to_string()),
            }
        }
        Ok(Json(context))
    }

    /// Start verifying the ticket's contact (or, with a reason, someone else).
    #[oai(
        path = "/verifications",
        method = "post",
        operation_id = "pod_verifications_start"
    )]
    async fn start(
        &self,
        auth: PodToken,
        ctx: Data<&Arc<AppContext>>,
        body: Json<PodStartRequest>,
    ) -> Result<PodStarted, ApiError> {
        let session = &auth.0;
        let other = body.0.other_user.as_ref();
        let resolved = resolve(&ctx, session, other.map(|o| o.email.as_str())).await?;
        let tenant = resolved
            .tenant
            .ok_or_else(|| ApiError::from(CoreError::TenantNotFound))?;
        let user = resolved.user?;
        let contact = resolved.ticket.contact.as_ref();
        let verification = ctx
            .verifications
            .start(StartRequest {
                msp: session.msp.clone(),
                tenant,
                user,
                method: body.0.method.into(),
                context: TicketContext {
                    psa_connection_id: Some(session.connection.id),
                    ticket_id: Some(session.claims.ticket.clone()),
                    contact_id: contact.map(|c| c.id.clone()),
                    contact_mobile: if other.is_some() {
                        None
                    } else {
                        contact.and_then(|c| c.mobile.clone())
                    },
                },
                is_ticket_contact: other.is_none(),
                reason: other.map(|o| o.reason.clone()),
                requester: auth.requester(),
            })
            .await?;
        Ok(PodStarted::Started(Json(verification.into())))
    }

    /// Read a verification of this ticket; `wait_seconds` waits for a decision (long-poll).
    #[oai(
        path = "/verifications/:id",
        method = "get",
        operation_id = "pod_verifications_get"
    )]
    async fn get(
        &self,
        auth: PodToken,
        ctx: Data<&Arc<AppContext>>,
        id: Path<Uuid>,
        wait_seconds: Query<Option<u64>>,
    ) -> Result<Json<PodVerification>, ApiError> {
        own_verification(&ctx, &auth.0, id.0).await?;
        let wait = Duration::from_secs(wait_seconds.0.unwrap_or(0).min(30));
        let verification = ctx.verifications.get(auth.0.msp.id, id.0, wait).await?;
        Ok(Json(verification.into()))
    }

    /// Check the code the caller read out.
    #[oai(
        path = "/verifications/:id/code",
        method = "post",
        operation_id = "pod_verifications_code"
    )]
    async fn code(
        &self,
        auth: PodToken,
        ctx: Data<&Arc<AppContext>>,
        id: Path<Uuid>,
        body: Json<super::verifications::CodeSubmission>,
    ) -> Result<Json<PodVerification>, ApiError> {
        own_verification(&ctx, &auth.0, id.0).await?;
        let verification = ctx
            .verifications
            .submit_code(&auth.0.msp, id.0, &body.0.code)
            .await?;
        Ok(Json(verification.into()))
    }

    /// Cancel a pending verification of this ticket.
    #[oai(
        path = "/verifications/:id/cancel",
        method = "post",
        operation_id = "pod_verifications_cancel"
    )]
    async fn cancel(
        &self,
        auth: PodToken,
        ctx: Data<&Arc<AppContext>>,
        id: Path<Uuid>,
    ) -> Result<Json<PodVerification>, ApiError> {
        own_verification(&ctx, &auth.0, id.0).await?;
        let verification = ctx.verifications.cancel(&auth.0.msp, id.0).await?;
        Ok(Json(verification.into()))
    }

    /// Make the Authenticator push the contact's default sign-in method (after confirmation).
    #[oai(
        path = "/default-method",
        method = "post",
        operation_id = "pod_set_push_default"
    )]
    async fn default_method(
        &self,
        auth: PodToken,
        ctx: Data<&Arc<AppContext>>,
        body: Json<PodConfirm>,
    ) -> Result<PodNoContent, ApiError> {
        if !body.0.confirm {
            return Err(CoreError::ConfirmationRequired.into());
        }
        let resolved = resolve(&ctx, &auth.0, None).await?;
        let tenant = resolved
            .tenant
            .ok_or_else(|| ApiError::from(CoreError::TenantNotFound))?;
        let user = resolved.user?;
        ctx.verifications
            .make_push_default(auth.0.msp.id, &auth.requester().actor, &tenant, &user)
            .await?;
        Ok(PodNoContent::Done)
    }

    /// Reset the password of the user verified from this ticket.
    #[oai(path = "/reset", method = "post", operation_id = "pod_reset")]
    async fn reset(
        &self,
        auth: PodToken,
        ctx: Data<&Arc<AppContext>>,
        /// One key per confirmation, so a double click is one reset.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<String>,
        body: Json<PodResetRequest>,
    ) -> Result<PodResetResponse, ApiError> {
        use crate::store::verifications::VerificationRepository;
        own_verification(&ctx, &auth.0, body.0.verification_id).await?;
        let verification = ctx
            .store
            .get_verification(body.0.verification_id)
            .await
            .map_err(|e| ApiError::internal(&e))?
            .ok_or_else(|| ApiError::from(CoreError::VerificationNotFound))?;
        let result = ctx
            .resets
            .reset(crate::core::reset::ResetRequest {
                msp: auth.0.msp.clone(),
                tenant_id: verification.tenant_id,
                user_object_id: verification.user_object_id.clone(),
                verification_id: verification.id,
                idempotency_key: idempotency_key.0,
                confirmed: body.0.confirm,
                actor: auth.requester().actor,
                technician_id: Some(auth.0.technician.id),
            })
            .await?;
        Ok(PodResetResponse::Done(Json(PodResetOutcome {
            status: result.reset.status,
            sent_to: result.reset.sent_to_masked,
            password: result.password.map(|p| p.expose_secret().to_owned()),
            failure_code: result.reset.failure_code,
            link_expires_at: result.share_expires_at,
        })))
    }
}
