//! The pod's JSON API: what the panel inside the PSA ticket calls, authenticated by the pod
//! token the PSA's vouched embed load earned (see `psa::pod_token`). Everything is derived
//! from the token's ticket: a pod can never act on another ticket's contact or for another
//! MSP.
//!
//! The MSP console's Tickets and Contacts pages show the same panel and call the same API,
//! with a token minted for the signed-in console user. A contact's token names one user of
//! one of the MSP's tenants instead of a ticket (`subject` is `contact`, there is no
//! `ticket` nor `contact`): everything then acts on that user, and no note is written.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem::{IntoResponse, Request};
use poem_openapi::auth::Bearer;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, SecurityScheme, Tags};
use secrecy::ExposeSecret;
use uuid::Uuid;

use super::ApiError;
use super::error::ErrorCode;
use crate::app::AppContext;
use crate::core::error::CoreError;
use crate::core::pod::{self, PodOverview, PodSession};
use crate::domain::ShieldState;
use crate::domain::{PasswordReset, ResetStatus, VerificationMethod, VerificationStatus};
use crate::psa::{ConnectWiseMember, EmbedLoad};
use crate::store::verifications::Verification as VerificationRecord;

#[derive(Tags)]
enum ApiTags {
    /// What the panel inside the PSA ticket uses.
    Pod,
}

/// A pod token (`Authorization: Bearer ...`), issued when the PSA vouched for the embed load.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check_pod_token")]
pub struct PodToken(PodSession);

async fn check_pod_token(req: &Request, bearer: Bearer) -> poem::Result<PodSession> {
    let ctx = req
        .data::<Arc<AppContext>>()
        .expect("the application context is attached to every request");
    ctx.pods
        .session(&bearer.token)
        .await
        .map_err(|err| poem::Error::from_response(ApiError::from(err).into_response()))
}

/// Issues a pod token once the PSA vouched for `load` on `connection_id`.
pub async fn open_session(
    ctx: &AppContext,
    connection_id: Uuid,
    load: EmbedLoad,
) -> Result<String, ApiError> {
    Ok(ctx.pods.open_session(connection_id, load).await?)
}

/// The ConnectWise Hosted API member data, as the pod received it.
#[derive(Debug, Object)]
pub struct ConnectWiseSessionRequest {
    /// Vouch's id of the PSA connection (from the pod URL).
    pub connection_id: Uuid,
    /// The ticket the pod is on (from the pod URL's `id`).
    #[oai(validator(max_length = 256))]
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
    #[oai(nullable)]
    pub company: Option<String>,
    /// The contact's e-mail addresses, primary first.
    pub emails: Vec<String>,
}

#[derive(Debug, Object)]
pub struct UserInfo {
    /// The Microsoft user's sign-in name.
    pub upn: String,
    /// The Microsoft user's display name.
    #[oai(nullable)]
    pub display_name: Option<String>,
}

#[derive(Debug, Object)]
pub struct Problem {
    /// Stable code.
    pub code: ErrorCode,
    /// What to do.
    pub message: String,
}

/// The verification shield. The pod shows `label` and `detail` as they are.
#[derive(Debug, Object)]
pub struct Shield {
    /// Where the shield stands.
    pub state: ShieldState,
    /// The verification behind the state.
    #[oai(nullable)]
    pub verification_id: Option<Uuid>,
    /// Its method.
    #[oai(nullable)]
    pub method: Option<VerificationMethod>,
    /// Until when the user counts as verified.
    #[oai(nullable)]
    pub verified_until: Option<DateTime<Utc>>,
    /// Why it failed.
    #[oai(nullable)]
    pub failure_code: Option<ErrorCode>,
    /// The shield's headline for the technician.
    pub label: String,
    /// A second line for the technician; empty when the label says it all.
    pub detail: String,
    /// A sentence for the technician.
    pub message: String,
    /// The headline once `verified_until` passes (only while verified).
    #[oai(nullable)]
    pub expired_label: Option<String>,
    /// The second line once `verified_until` passes (only while verified).
    #[oai(nullable)]
    pub expired_detail: Option<String>,
}

impl From<pod::Shield> for Shield {
    fn from(shield: pod::Shield) -> Self {
        Shield {
            state: shield.state,
            verification_id: shield.verification_id,
            method: shield.method,
            verified_until: shield.verified_until,
            failure_code: shield.failure_code,
            label: shield.label,
            detail: shield.detail,
            message: shield.message,
            expired_label: shield.expired_label,
            expired_detail: shield.expired_detail,
        }
    }
}

#[derive(Debug, Object)]
pub struct MethodState {
    /// The method.
    pub method: VerificationMethod,
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
    #[oai(nullable)]
    pub reason: Option<String>,
    /// Where the secure link would go.
    #[oai(nullable)]
    pub masked_phone: Option<String>,
    /// The verification a reset would use.
    #[oai(nullable)]
    pub verification_id: Option<Uuid>,
}

#[derive(Debug, Object)]
pub struct HistoryItem {
    /// Verification id.
    pub id: Uuid,
    /// Method.
    pub method: VerificationMethod,
    /// Outcome.
    pub status: VerificationStatus,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// Why it failed.
    #[oai(nullable)]
    pub failure_code: Option<ErrorCode>,
    /// The outcome in a few words, for the technician.
    pub label: String,
    /// Where it was made, when not on this ticket ("on HaloPSA ticket 2001, by Jordan"):
    /// such a verification is history here, and a reset from this ticket cannot use it.
    #[oai(nullable)]
    pub elsewhere: Option<String>,
}

/// Something to know about the ticket's contact before anything is sent.
#[derive(Debug, Object)]
pub struct PodCheck {
    /// What it is: `preferred_method_mismatch`, `authenticator_not_registered`,
    /// `user_synced_from_on_premises`, `user_holds_admin_role` or `no_mobile_phone`.
    pub code: ErrorCode,
    /// What it means and what to do, for the technician.
    pub message: String,
    /// With `preferred_method_mismatch`: hand it to `POST /v1/pod/default-method` to make
    /// the push this user's default.
    #[oai(nullable)]
    pub fix_token: Option<String>,
}

/// Someone other than the ticket's contact, verified on this ticket (with a reason).
#[derive(Debug, Object)]
pub struct OtherPerson {
    /// The Microsoft user verified.
    pub user: UserInfo,
    /// Why the technician verified them.
    #[oai(nullable)]
    pub reason: Option<String>,
    /// Their verification shield.
    pub shield: Shield,
    /// Whether their password can be reset now.
    pub reset: ResetState,
}

/// What a pod acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum PodSubject {
    /// A PSA ticket (inside the PSA, or the console's Tickets page): the user is the
    /// ticket's contact, and every step is noted on the ticket.
    Ticket,
    /// One user, opened from the console's Contacts page: no ticket, no notes.
    Contact,
}

/// Everything the pod shows.
#[derive(Debug, Object)]
pub struct PodContext {
    /// What the pod acts on: a ticket, or (from the console's Contacts page) a contact.
    pub subject: PodSubject,
    /// Who is using the pod.
    pub technician: NamedThing,
    /// The ticket; `null` when `subject` is `contact`.
    #[oai(nullable)]
    pub ticket: Option<TicketInfo>,
    /// The ticket's contact, as the PSA reports it; `null` when `subject` is `contact`.
    #[oai(nullable)]
    pub contact: Option<ContactInfo>,
    /// The customer's Microsoft tenant.
    #[oai(nullable)]
    pub tenant: Option<NamedThing>,
    /// The Microsoft user the contact maps to.
    #[oai(nullable)]
    pub user: Option<UserInfo>,
    /// Why there is no user.
    #[oai(nullable)]
    pub user_error: Option<Problem>,
    /// The verification shield.
    pub shield: Shield,
    /// The methods and why not.
    pub methods: Vec<MethodState>,
    /// Whether a reset can be made.
    pub reset: ResetState,
    /// Recent verifications of this user, newest first, on any ticket.
    pub history: Vec<HistoryItem>,
    /// Others verified on this ticket, each with their own reset.
    pub others: Vec<OtherPerson>,
    /// What to know before sending anything, read when the pod loads (kept a minute).
    pub checks: Vec<PodCheck>,
    /// Set when the user reported a verification request as fraud ("It's not me"): the pod
    /// shows it as its strongest warning.
    #[oai(nullable)]
    pub fraud: Option<FraudWarning>,
}

/// The user said a verification request was not theirs.
#[derive(Debug, Object)]
pub struct FraudWarning {
    /// What happened and what to do, for the technician.
    pub message: String,
    /// Until when the user's password resets are held, if they are.
    #[oai(nullable)]
    pub resets_held_until: Option<DateTime<Utc>>,
}

/// Start a verification from the pod.
#[derive(Debug, Object)]
pub struct PodStartRequest {
    /// How to verify.
    pub method: VerificationMethod,
    /// Verify someone other than the ticket's contact (needs a reason). Not on a contact's
    /// pod, which verifies its user only (`invalid_request`).
    #[oai(nullable)]
    pub other_user: Option<OtherUser>,
}

#[derive(Debug, Object)]
pub struct OtherUser {
    /// Their e-mail address.
    #[oai(validator(max_length = 320))]
    pub email: String,
    /// Why (e.g. "manager approval"); kept in the audit log.
    #[oai(validator(max_length = 500))]
    pub reason: String,
}

/// Make the Authenticator push the default method of the user a refused push was for.
#[derive(Debug, Object)]
pub struct PodConfirm {
    /// Must be true.
    pub confirm: bool,
    /// The `fix_token` of the `preferred_method_mismatch` answer: it names the user.
    #[oai(validator(max_length = 2048))]
    pub fix_token: String,
}

/// Reset from the pod.
#[derive(Debug, Object)]
pub struct PodResetRequest {
    /// The approved verification (from this ticket; on a contact's pod, made from a
    /// contact's page by the same console user) to spend.
    pub verification_id: Uuid,
    /// Must be true.
    pub confirm: bool,
}

/// The outcome of a reset.
#[derive(Debug, Object)]
pub struct PodResetOutcome {
    /// Vouch's id of the reset (to send its link again).
    pub id: Uuid,
    /// Where the reset ended (a reset still running is never answered here).
    pub status: ResetStatus,
    /// Where the link went (masked).
    #[oai(nullable)]
    pub sent_to: Option<String>,
    /// Only when the MSP allows technicians to see passwords.
    #[oai(nullable)]
    pub password: Option<String>,
    /// Why it failed or the SMS did not go.
    #[oai(nullable)]
    pub failure_code: Option<ErrorCode>,
    /// When the link stops working.
    #[oai(nullable)]
    pub link_expires_at: Option<DateTime<Utc>>,
    /// How many times the password change was sent to Microsoft.
    pub change_attempts: i32,
    /// How many times the link was sent again.
    pub resends: i32,
}

impl PodResetOutcome {
    fn of(
        reset: PasswordReset,
        password: Option<String>,
        link_expires_at: Option<DateTime<Utc>>,
    ) -> PodResetOutcome {
        PodResetOutcome {
            id: reset.id,
            status: reset.status,
            sent_to: reset.sent_to_masked,
            password,
            failure_code: reset.failure_code,
            link_expires_at,
            change_attempts: reset.patch_attempts,
            resends: reset.resends,
        }
    }
}

/// A verification seen from the pod.
#[derive(Debug, Object)]
pub struct PodVerification {
    /// Id.
    pub id: Uuid,
    /// Method.
    pub method: VerificationMethod,
    /// Where it stands.
    pub status: VerificationStatus,
    /// Why it did not succeed.
    #[oai(nullable)]
    pub failure_code: Option<ErrorCode>,
    /// Until when the user counts as verified.
    #[oai(nullable)]
    pub verified_until: Option<DateTime<Utc>>,
    /// Codes entered so far.
    pub attempts: i32,
    /// Started.
    pub created_at: DateTime<Utc>,
    /// Lapses.
    pub expires_at: DateTime<Utc>,
    /// The shield this verification shows on its own, worded for the technician.
    pub shield: Shield,
}

impl From<VerificationRecord> for PodVerification {
    fn from(v: VerificationRecord) -> Self {
        let shield = pod::shield_of(std::slice::from_ref(&v), Utc::now()).into();
        PodVerification {
            shield,
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

impl From<pod::ResetReadiness> for ResetState {
    fn from(reset: pod::ResetReadiness) -> Self {
        ResetState {
            allowed: reset.allowed,
            reason: reset.reason,
            masked_phone: reset.masked_phone,
            verification_id: reset.verification_id,
        }
    }
}

fn problem(err: &CoreError) -> Problem {
    Problem {
        code: err.code(),
        message: err.to_string(),
    }
}

impl From<PodOverview> for PodContext {
    fn from(overview: PodOverview) -> Self {
        let subject = if overview.ticket.is_some() {
            PodSubject::Ticket
        } else {
            PodSubject::Contact
        };
        let (ticket, contact) = match overview.ticket {
            Some(ticket) => {
                let company = ticket.company.as_ref().map(|co| co.name.clone());
                (
                    Some(TicketInfo {
                        id: ticket.ticket_id,
                        summary: ticket.summary,
                    }),
                    ticket.contact.map(|c| ContactInfo {
                        id: c.id,
                        name: c.name,
                        company,
                        emails: c.emails,
                    }),
                )
            }
            None => (None, None),
        };
        PodContext {
            subject,
            technician: NamedThing {
                name: overview.technician_name,
            },
            ticket,
            contact,
            tenant: overview.tenant.map(|t| NamedThing {
                name: t.display_name,
            }),
            user: overview.user.map(|user| UserInfo {
                upn: user.upn,
                display_name: user.display_name,
            }),
            user_error: overview.user_error.as_ref().map(problem),
            shield: overview.shield.into(),
            methods: overview
                .methods
                .into_iter()
                .map(|m| MethodState {
                    method: m.method,
                    available: m.available,
                    detail: m.detail,
                })
                .collect(),
            reset: overview.reset.into(),
            history: overview
                .history
                .into_iter()
                .map(|entry| HistoryItem {
                    id: entry.verification.id,
                    method: entry.verification.method,
                    status: entry.verification.status,
                    created_at: entry.verification.created_at,
                    failure_code: entry.verification.failure_code,
                    label: entry.label,
                    elsewhere: entry.elsewhere,
                })
                .collect(),
            fraud: overview.fraud.map(|f| FraudWarning {
                message: f.message,
                resets_held_until: f.resets_held_until,
            }),
            checks: overview
                .checks
                .into_iter()
                .map(|check| PodCheck {
                    code: check.code,
                    message: check.message,
                    fix_token: check.fix_token,
                })
                .collect(),
            others: overview
                .others
                .into_iter()
                .map(|other| OtherPerson {
                    user: UserInfo {
                        upn: other.verification.user_principal_name,
                        display_name: None,
                    },
                    reason: other.verification.reason,
                    shield: other.shield.into(),
                    reset: other.reset.into(),
                })
                .collect(),
        }
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
        Ok(Json(ctx.pods.overview(&auth.0).await?.into()))
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
        let body = body.0;
        let other = body.other_user.map(|o| pod::OtherUser {
            email: o.email,
            reason: o.reason,
        });
        let verification = ctx.pods.start(&auth.0, body.method, other).await?;
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
        let wait = Duration::from_secs(wait_seconds.0.unwrap_or(0).min(30));
        let verification = ctx.pods.verification(&auth.0, id.0, wait).await?;
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
        let verification = ctx.pods.submit_code(&auth.0, id.0, &body.0.code).await?;
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
        let verification = ctx.pods.cancel(&auth.0, id.0).await?;
        Ok(Json(verification.into()))
    }

    /// Make the Authenticator push the default sign-in method of the user a refused push was
    /// for (after confirmation): the one the answer's `fix_token` names. Noted on the ticket.
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
        ctx.pods
            .make_push_default(&auth.0, body.0.confirm, &body.0.fix_token)
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
        #[oai(name = "Idempotency-Key", validator(max_length = 256))]
        idempotency_key: Header<String>,
        body: Json<PodResetRequest>,
    ) -> Result<PodResetResponse, ApiError> {
        let result = ctx
            .pods
            .reset(
                &auth.0,
                body.0.verification_id,
                idempotency_key.0,
                body.0.confirm,
            )
            .await?;
        Ok(PodResetResponse::Done(Json(PodResetOutcome::of(
            result.reset,
            result.password.map(|p| p.expose_secret().to_owned()),
            result.share_expires_at,
        ))))
    }

    /// Send the secure link of a reset made from this ticket again: to the mobile registered
    /// in Microsoft only, while the link still opens, a few times at most. After a failed SMS,
    /// or to send it anyway when the reset's outcome is unknown.
    #[oai(
        path = "/resets/:id/resend",
        method = "post",
        operation_id = "pod_reset_resend"
    )]
    async fn resend(
        &self,
        auth: PodToken,
        ctx: Data<&Arc<AppContext>>,
        id: Path<Uuid>,
    ) -> Result<Json<PodResetOutcome>, ApiError> {
        let reset = ctx.pods.resend(&auth.0, id.0).await?;
        Ok(Json(PodResetOutcome::of(reset, None, None)))
    }
}
