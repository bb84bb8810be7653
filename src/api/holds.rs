//! Holds on password resets: a user who reported a verification as fraud ("It's not me") is
//! not reset until the hold ends (the MSP's `fraud_hold_seconds`) or an MSP admin lifts it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi, Tags};
use uuid::Uuid;

use super::ApiError;
use super::auth::AdminApiKey;
use crate::app::AppContext;
use crate::domain::ResetHold;

#[derive(Tags)]
enum ApiTags {
    /// Password resets held after a user reported a verification as fraud.
    ResetHolds,
}

/// A hold on a user's password resets, put when the user reported a verification as fraud
/// ("It's not me" in Microsoft Authenticator, or "No, it's not me" on the one-tap page).
#[derive(Debug, Object)]
pub struct ResetHoldDto {
    /// Vouch's id of the hold.
    pub id: Uuid,
    /// Vouch's id of the user's tenant.
    pub tenant_id: Uuid,
    /// The Microsoft user's object id.
    pub user_id: String,
    /// The user's sign-in name.
    pub user_principal_name: String,
    /// The verification the user reported as fraud.
    pub verification_id: Uuid,
    /// When the user reported it (the hold was put).
    pub reported_at: DateTime<Utc>,
    /// Resets of the user are refused (`reset_held`) until then, unless the hold is lifted.
    pub held_until: DateTime<Utc>,
    /// Whether the hold holds resets now.
    pub active: bool,
    /// When an admin lifted the hold.
    #[oai(nullable)]
    pub lifted_at: Option<DateTime<Utc>>,
    /// Who lifted it (the API key's prefix and name).
    #[oai(nullable)]
    pub lifted_by: Option<String>,
    /// Why it was lifted.
    #[oai(nullable)]
    pub lift_reason: Option<String>,
}

impl From<ResetHold> for ResetHoldDto {
    fn from(h: ResetHold) -> Self {
        ResetHoldDto {
            active: h.is_active(Utc::now()),
            id: h.id,
            tenant_id: h.tenant_id,
            user_id: h.user_object_id,
            user_principal_name: h.user_principal_name,
            verification_id: h.verification_id,
            reported_at: h.reported_at,
            held_until: h.held_until,
            lifted_at: h.lifted_at,
            lifted_by: h.lifted_by,
            lift_reason: h.lift_reason,
        }
    }
}

/// Lift a hold.
#[derive(Debug, Object)]
pub struct LiftHoldRequest {
    /// Why the user's resets may go ahead (e.g. "called the user back on their known number:
    /// they pressed it by mistake"). Kept with the hold and in the audit log.
    #[oai(validator(min_length = 1, max_length = 500))]
    pub reason: String,
}

pub struct HoldsApi;

#[OpenApi(prefix_path = "/v1/reset-holds", tag = "ApiTags::ResetHolds")]
impl HoldsApi {
    /// List the active holds on password resets, newest first.
    ///
    /// A hold is active until its `held_until` or until an admin lifts it. While one is
    /// active, a reset of that user answers 409 `reset_held`; verifying the user is still
    /// allowed.
    #[oai(path = "/", method = "get", operation_id = "reset_holds_list")]
    async fn list(
        &self,
        auth: AdminApiKey,
        ctx: Data<&Arc<AppContext>>,
        /// Only the holds of this user: their Microsoft object id or sign-in name.
        #[oai(validator(max_length = 320))]
        user: Query<Option<String>>,
    ) -> Result<Json<Vec<ResetHoldDto>>, ApiError> {
        let holds = ctx
            .resets
            .active_holds(auth.msp_id(), user.0.as_deref())
            .await?;
        Ok(Json(holds.into_iter().map(ResetHoldDto::from).collect()))
    }

    /// Lift a hold, so that the user's password may be reset again (after a fresh
    /// verification).
    ///
    /// Lift only after checking with the user, on a number you already know, that the fraud
    /// report was a mistake. Audited as a security event (`password.reset.hold.lift`). A hold
    /// already lifted, or already over, is left unchanged and answers 409
    /// `reset_hold_not_active` (so a repeated lift changes nothing); an unknown id answers
    /// 404 `reset_hold_not_found`. Other active holds of the same user stay.
    #[oai(path = "/:id/lift", method = "post", operation_id = "reset_holds_lift")]
    async fn lift(
        &self,
        auth: AdminApiKey,
        ctx: Data<&Arc<AppContext>>,
        /// The hold's id.
        id: Path<Uuid>,
        body: Json<LiftHoldRequest>,
    ) -> Result<Json<ResetHoldDto>, ApiError> {
        let hold = ctx
            .resets
            .lift_hold(auth.msp_id(), id.0, &body.0.reason, &auth.actor())
            .await?;
        Ok(Json(hold.into()))
    }
}
