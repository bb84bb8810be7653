//! The technicians the MSP's PSAs vouched for, and blocking them. The handlers parse, call
//! one method of `core::technicians::TechnicianService` and map its answer; blocking and
//! unblocking are audited there.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi, Tags};
use uuid::Uuid;

use super::ApiError;
use super::auth::AdminApiKey;
use crate::app::AppContext;
use crate::core::technicians::TechnicianView;
use crate::domain::PsaKind;
use crate::store::psa_connections::TechnicianAction;

#[derive(Tags)]
enum ApiTags {
    /// The technicians seen through the MSP's PSAs, and blocking their Vouch actions.
    Technicians,
}

/// What a technician last asked Vouch to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum TechnicianActionKind {
    /// Started a verification of a caller.
    Verification,
    /// Reset a password.
    PasswordReset,
}

/// A technician's last action through a pod.
#[derive(Debug, Object)]
pub struct TechnicianLastAction {
    /// What it was.
    pub kind: TechnicianActionKind,
    /// When.
    pub at: DateTime<Utc>,
}

/// A technician a PSA vouched for on a pod load.
#[derive(Debug, Object)]
pub struct TechnicianDto {
    /// Vouch's id of the technician (to block them).
    pub id: Uuid,
    /// The PSA connection they were seen through.
    pub psa_connection_id: Uuid,
    /// That connection's name.
    #[oai(nullable)]
    pub psa_connection_name: Option<String>,
    /// That connection's PSA.
    #[oai(nullable)]
    pub psa_kind: Option<PsaKind>,
    /// Who the PSA says they are: the ConnectWise member identifier, the HaloPSA agent id or
    /// the Autotask resource id.
    pub psa_member_id: String,
    /// Their name, as the PSA gives it.
    pub name: String,
    /// Their e-mail address, as the PSA gives it.
    #[oai(nullable)]
    pub email: Option<String>,
    /// When a PSA first vouched for them.
    pub first_seen_at: DateTime<Utc>,
    /// When a PSA last vouched for them (refreshed at most once per
    /// `cache.technicians.ttl_seconds`).
    #[oai(nullable)]
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Their newest verification or password reset through a pod; `null` when none.
    #[oai(nullable)]
    pub last_action: Option<TechnicianLastAction>,
    /// Whether an admin blocked their Vouch actions.
    pub blocked: bool,
    /// When they were blocked; `null` when they are not.
    #[oai(nullable)]
    pub blocked_at: Option<DateTime<Utc>>,
    /// Who blocked them (the API key's name); `null` when they are not blocked.
    #[oai(nullable)]
    pub blocked_by: Option<String>,
}

impl From<TechnicianView> for TechnicianDto {
    fn from(t: TechnicianView) -> Self {
        TechnicianDto {
            id: t.id,
            psa_connection_id: t.psa_connection_id,
            psa_connection_name: t.psa_connection_name,
            psa_kind: t.psa_kind,
            psa_member_id: t.psa_member_id,
            name: t.name,
            email: t.email,
            first_seen_at: t.first_seen_at,
            last_seen_at: t.last_seen_at,
            last_action: t.last_action.map(|(kind, at)| TechnicianLastAction {
                kind: match kind {
                    TechnicianAction::Verification => TechnicianActionKind::Verification,
                    TechnicianAction::PasswordReset => TechnicianActionKind::PasswordReset,
                },
                at,
            }),
            blocked: t.blocked_at.is_some(),
            blocked_at: t.blocked_at,
            blocked_by: t.blocked_by,
        }
    }
}

pub struct TechniciansApi;

#[OpenApi(prefix_path = "/v1/technicians", tag = "ApiTags::Technicians")]
impl TechniciansApi {
    /// List the technicians seen through the MSP's PSAs, most recently seen first.
    ///
    /// A technician is recorded the first time a PSA vouches for them on a pod load, once per
    /// PSA connection.
    #[oai(path = "/", method = "get", operation_id = "technicians_list")]
    async fn list(
        &self,
        auth: AdminApiKey,
        ctx: Data<&Arc<AppContext>>,
    ) -> Result<Json<Vec<TechnicianDto>>, ApiError> {
        let technicians = ctx.technicians.list(auth.msp_id()).await?;
        Ok(Json(technicians.into_iter().map(Into::into).collect()))
    }

    /// Block a technician's Vouch actions.
    ///
    /// From now on, on every instance, their pod loads and every pod call are refused with
    /// 403 `technician_blocked` ("An administrator of your MSP has blocked your Vouch
    /// actions; ask them."). Audited. Blocking a blocked technician changes nothing.
    #[oai(
        path = "/:id/block",
        method = "post",
        operation_id = "technicians_block"
    )]
    async fn block(
        &self,
        auth: AdminApiKey,
        ctx: Data<&Arc<AppContext>>,
        id: Path<Uuid>,
    ) -> Result<Json<TechnicianDto>, ApiError> {
        let technician = ctx
            .technicians
            .block(auth.msp_id(), &auth.actor(), id.0)
            .await?;
        Ok(Json(technician.into()))
    }

    /// Lift a technician's block: their pods work again at once, on every instance. Audited.
    /// Unblocking a technician who is not blocked changes nothing.
    #[oai(
        path = "/:id/unblock",
        method = "post",
        operation_id = "technicians_unblock"
    )]
    async fn unblock(
        &self,
        auth: AdminApiKey,
        ctx: Data<&Arc<AppContext>>,
        id: Path<Uuid>,
    ) -> Result<Json<TechnicianDto>, ApiError> {
        let technician = ctx
            .technicians
            .unblock(auth.msp_id(), &auth.actor(), id.0)
            .await?;
        Ok(Json(technician.into()))
    }
}
