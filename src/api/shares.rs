//! Secure shares through the API: create a one-time link for a secret, list and revoke them.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, Tags};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::auth::MspApiKey;
use super::{ApiError, ErrorCode};
use crate::app::AppContext;
use crate::core::share::{self as core_share, ShareOptions, ShareStatus, ShareSummary};

#[derive(Tags)]
enum ApiTags {
    /// One-time, branded links that deliver a secret (such as a new password) to a person.
    SecureShares,
}

/// A secret to deliver through a one-time link.
#[derive(Object)]
pub struct ShareRequest {
    /// The secret to deliver, 1 to 10,000 characters. Stored encrypted and shown only to
    /// whoever opens the link; never returned by the API.
    #[oai(write_only, validator(max_length = 10000))]
    pub content: String,
    /// How long the link works, in minutes: from 5 to 10080 (7 days). Default: the MSP's
    /// `share_lifetime_seconds` (24 hours unless it set another).
    #[oai(nullable)]
    pub expires_in_minutes: Option<i64>,
    /// How many times the message can be revealed: from 1 to 10. Default 1.
    #[oai(nullable)]
    pub max_views: Option<i64>,
    /// Send the link by SMS to this Microsoft 365 user's mobile phone (as registered in
    /// Microsoft); without it, the link is returned for you to deliver.
    #[oai(nullable)]
    pub send_to: Option<ShareRecipient>,
}

/// Who receives the link by SMS.
#[derive(Debug, Object)]
pub struct ShareRecipient {
    /// The customer's Microsoft tenant id.
    #[oai(validator(max_length = 256))]
    pub tenant_id: String,
    /// The user's sign-in name or e-mail address.
    #[oai(validator(max_length = 320))]
    pub user: String,
}

// Hand-written so the secret never reaches a log through `{:?}`.
impl std::fmt::Debug for ShareRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareRequest")
            .field("content", &"[redacted]")
            .field("expires_in_minutes", &self.expires_in_minutes)
            .field("max_views", &self.max_views)
            .field("send_to", &self.send_to)
            .finish()
    }
}

/// A new share and its link.
#[derive(Object)]
#[oai(rename = "CreatedShare")]
pub struct CreatedShareBody {
    /// Vouch's id of the share (to list or revoke it).
    pub id: Uuid,
    /// The link to send to the recipient. Anyone holding it can reveal the message, so send it
    /// only to them; Vouch cannot show it again.
    pub url: String,
    /// When the link stops working.
    pub expires_at: DateTime<Utc>,
    /// How many times the message can be revealed.
    pub max_views: u32,
    /// When the link was sent by SMS: the masked number it went to.
    #[oai(nullable)]
    pub sent_to: Option<String>,
}

/// Where a share stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename = "ShareStatus", rename_all = "snake_case")]
pub enum ShareStatusDto {
    /// The link works: the message can still be revealed.
    Active,
    /// Every allowed view was used.
    Exhausted,
    /// The link's time ran out.
    Expired,
    /// The MSP withdrew the link.
    Revoked,
}

impl From<ShareStatus> for ShareStatusDto {
    fn from(status: ShareStatus) -> Self {
        match status {
            ShareStatus::Active => ShareStatusDto::Active,
            ShareStatus::Exhausted => ShareStatusDto::Exhausted,
            ShareStatus::Expired => ShareStatusDto::Expired,
            ShareStatus::Revoked => ShareStatusDto::Revoked,
        }
    }
}

/// A share as listed: never its content or link.
#[derive(Debug, Object)]
pub struct Share {
    /// Vouch's id of the share.
    pub id: Uuid,
    /// Whether the link still works, and if not why.
    pub status: ShareStatusDto,
    /// When the share was created.
    pub created_at: DateTime<Utc>,
    /// When the link stops (or stopped) working.
    pub expires_at: DateTime<Utc>,
    /// How many times the message can be revealed in all.
    pub max_views: u32,
    /// How many times it has been revealed.
    pub views: u32,
    /// How many reveals are left (0 once exhausted; not reduced by expiry or revocation).
    pub views_left: u32,
    /// When the message was last revealed.
    #[oai(nullable)]
    pub last_viewed_at: Option<DateTime<Utc>>,
    /// When the share was revoked.
    #[oai(nullable)]
    pub revoked_at: Option<DateTime<Utc>>,
    /// The technician who created it, when created from the PSA.
    #[oai(nullable)]
    pub created_by_technician_id: Option<Uuid>,
}

impl From<ShareSummary> for Share {
    fn from(summary: ShareSummary) -> Self {
        Share {
            id: summary.id,
            status: summary.status.into(),
            created_at: summary.created_at,
            expires_at: summary.expires_at,
            max_views: summary.max_views,
            views: summary.views,
            views_left: summary.views_left,
            last_viewed_at: summary.last_viewed_at,
            revoked_at: summary.revoked_at,
            created_by_technician_id: summary.created_by_technician_id,
        }
    }
}

#[derive(ApiResponse)]
enum Created {
    /// The share exists; send its `url` to the recipient.
    #[oai(status = 201)]
    Created(Json<CreatedShareBody>),
}

#[derive(ApiResponse)]
enum Listed {
    /// The shares, newest first.
    #[oai(status = 200)]
    Shares(Json<Vec<Share>>),
}

#[derive(ApiResponse)]
enum Revoked {
    /// The share is revoked (or already was): its link no longer works.
    #[oai(status = 204)]
    Revoked,
}

fn invalid(field: &str, problem: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, format!("`{field}` {problem}."))
}

/// The API's integers, as the core's options; out-of-range values are refused here with
/// the same wording the core uses.
fn share_options(body: &ShareRequest) -> Result<ShareOptions, ApiError> {
    let expires_in = body
        .expires_in_minutes
        .map(|minutes| {
            Duration::try_minutes(minutes).ok_or_else(|| {
                invalid(
                    "expires_in_minutes",
                    format!(
                        "must be from 5 minutes to 7 days (10080 minutes); got {minutes} minute(s)"
                    ),
                )
            })
        })
        .transpose()?;
    let max_views = body
        .max_views
        .map(|views| {
            u32::try_from(views).map_err(|_| {
                invalid(
                    "max_views",
                    format!(
                        "must be from 1 to {} (how many times the link can be opened); got {views}",
                        crate::core::share::MAX_MAX_VIEWS
                    ),
                )
            })
        })
        .transpose()?;
    Ok(ShareOptions {
        expires_in,
        max_views,
    })
}

pub struct SharesApi;

#[OpenApi(prefix_path = "/v1/shares", tag = "ApiTags::SecureShares")]
impl SharesApi {
    /// Create a one-time link that delivers a secret.
    ///
    /// The response's `url` opens a page branded with the MSP's name, logo and colour; the
    /// recipient presses Reveal to see the message, which counts one view. Opening the link
    /// alone (as link-preview bots do) counts nothing. The link is shown only in this
    /// response.
    #[oai(path = "/", method = "post", operation_id = "shares_create")]
    async fn create(
        &self,
        auth: MspApiKey,
        ctx: Data<&Arc<AppContext>>,
        body: Json<ShareRequest>,
    ) -> Result<Created, ApiError> {
        let body = body.0;
        let options = share_options(&body)?;
        let recipient = body.send_to.map(|to| core_share::ShareRecipient {
            tenant: to.tenant_id,
            user: to.user,
        });
        let delivered = ctx
            .shares
            .create_and_send(
                auth.msp_id(),
                SecretString::from(body.content),
                options,
                recipient,
                &auth.actor(),
            )
            .await?;
        let created = delivered.share;
        Ok(Created::Created(Json(CreatedShareBody {
            id: created.id,
            // Once the link went by SMS, the caller does not need it (and should not hold it).
            url: if delivered.sent_to.is_some() {
                String::new()
            } else {
                created.url.expose_secret().to_owned()
            },
            expires_at: created.expires_at,
            max_views: created.max_views,
            sent_to: delivered.sent_to,
        })))
    }

    /// List the MSP's shares, newest first (at most the 1,000 most recent).
    ///
    /// Shows each share's status and views; never its content or link.
    #[oai(path = "/", method = "get", operation_id = "shares_list")]
    async fn list(&self, auth: MspApiKey, ctx: Data<&Arc<AppContext>>) -> Result<Listed, ApiError> {
        let shares = ctx.shares.list(auth.msp_id()).await?;
        Ok(Listed::Shares(Json(
            shares.into_iter().map(Share::from).collect(),
        )))
    }

    /// Revoke a share: its link stops working at once.
    ///
    /// Revoking an already revoked share succeeds again.
    #[oai(path = "/:id", method = "delete", operation_id = "shares_revoke")]
    async fn revoke(
        &self,
        auth: MspApiKey,
        ctx: Data<&Arc<AppContext>>,
        /// The share's id.
        id: Path<Uuid>,
    ) -> Result<Revoked, ApiError> {
        ctx.shares
            .revoke(auth.msp_id(), id.0, &auth.actor())
            .await?;
        Ok(Revoked::Revoked)
    }
}
