//! `GET /console/shares` (any signed-in user): Secure Data Sharing. Send any secret (a
//! Wi-Fi key, a recovery code, a licence key) to a Microsoft 365 user as a one-time link,
//! texted to the mobile phone Microsoft has for them, with a lifetime and a view limit
//! (`ShareService::create_and_send`, the share the password reset uses too); list the MSP's
//! shares with their state, and revoke one. The secret is never shown again, not even on a
//! refused form, and neither is the link.

use std::sync::Arc;

use chrono::Duration;
use minijinja::context;
use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{Response, handler};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::confirm::{self, Question};
use super::session::{CheckedForm, failed};
use super::{ConsoleUser, redirect, respond};
use crate::api::error::status_of;
use crate::app::AppContext;
use crate::core::error::CoreError;
use crate::core::share::{
    ShareError, ShareOptions, ShareRecipient, ShareSendError, ShareStatus, ShareSummary,
};

const PATH: &str = "/console/shares";

/// The lifetimes offered, in minutes, with their words.
const LIFETIMES: &[(i64, &str)] = &[
    (60, "1 hour"),
    (240, "4 hours"),
    (1440, "24 hours"),
    (4320, "3 days"),
    (10080, "7 days"),
];

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ShareForm {
    tenant: String,
    user: String,
    secret: String,
    lifetime: String,
    views: String,
}

/// The revoke form carries nothing of its own (its CSRF token and confirmation are read by
/// [`CheckedForm`]).
#[derive(Debug, Default, Deserialize)]
pub struct RevokeForm {}

/// What the form shows again (never the secret), with each field's error.
#[derive(Debug, Default, Serialize)]
struct FormView {
    tenant: String,
    user: String,
    lifetime: i64,
    views: u32,
    tenant_error: Option<String>,
    user_error: Option<String>,
    secret_error: Option<String>,
    lifetime_error: Option<String>,
    views_error: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct SentView {
    to: String,
    phone: String,
    expires: String,
    views: u32,
}

#[derive(Debug, Serialize)]
struct ShareRow {
    id: Uuid,
    state: &'static str,
    state_key: &'static str,
    detail: String,
    created: String,
    expires: String,
    revocable: bool,
}

impl ShareRow {
    fn of(share: &ShareSummary) -> ShareRow {
        let (state, state_key) = match share.status {
            ShareStatus::Active if share.views == 0 => ("Sent", "sent"),
            ShareStatus::Active | ShareStatus::Exhausted => ("Viewed", "viewed"),
            ShareStatus::Expired => ("Expired", "expired"),
            ShareStatus::Revoked => ("Revoked", "revoked"),
        };
        let detail = match share.status {
            ShareStatus::Revoked => share
                .revoked_at
                .map(|at| format!("revoked {}", crate::domain::utc_minute(at)))
                .unwrap_or_default(),
            _ => format!("{} of {} views", share.views, share.max_views),
        };
        ShareRow {
            id: share.id,
            state,
            state_key,
            detail,
            created: crate::domain::utc_minute(share.created_at),
            expires: crate::domain::utc_minute(share.expires_at),
            revocable: share.status == ShareStatus::Active,
        }
    }
}

#[derive(Debug, Serialize)]
struct TenantOption {
    id: Uuid,
    name: String,
    selected: bool,
}

#[derive(Debug, Serialize)]
struct LifetimeOption {
    minutes: i64,
    label: &'static str,
    selected: bool,
}

async fn page(
    ctx: &AppContext,
    user: &ConsoleUser,
    status: StatusCode,
    form: FormView,
    sent: Option<SentView>,
) -> Response {
    let (tenants, shares) = match (
        ctx.setup.list_tenants(user.msp.id).await,
        ctx.shares.list(user.msp.id).await,
    ) {
        (Ok(tenants), Ok(shares)) => (tenants, shares),
        _ => return failed(&user.brand),
    };
    let tenants: Vec<TenantOption> = tenants
        .into_iter()
        .map(|t| TenantOption {
            selected: t.tenant.id.to_string() == form.tenant,
            id: t.tenant.id,
            name: t.tenant.display_name,
        })
        .collect();
    let lifetimes: Vec<LifetimeOption> = LIFETIMES
        .iter()
        .map(|&(minutes, label)| LifetimeOption {
            minutes,
            label,
            selected: minutes == form.lifetime,
        })
        .collect();
    let rows: Vec<ShareRow> = shares.iter().map(ShareRow::of).collect();
    respond(
        status,
        "console/shares.html",
        context! {
            brand => user.brand.view(),
            shell => user.shell(PATH),
            tenants => tenants,
            lifetimes => lifetimes,
            form => form,
            sent => sent,
            shares => rows,
        },
        &user.brand,
    )
}

fn fresh_form() -> FormView {
    FormView {
        lifetime: 1440,
        views: 1,
        ..FormView::default()
    }
}

#[handler]
pub async fn shares_page(ctx: Data<&Arc<AppContext>>, user: ConsoleUser) -> Response {
    page(&ctx, &user, StatusCode::OK, fresh_form(), None).await
}

/// `POST /console/shares`: create a share and text its link to the user.
#[handler]
pub async fn send(
    ctx: Data<&Arc<AppContext>>,
    CheckedForm { user, form, .. }: CheckedForm<ShareForm>,
) -> Response {
    let mut view = FormView {
        tenant: form.tenant.clone(),
        user: form.user.trim().to_owned(),
        lifetime: form.lifetime.trim().parse().unwrap_or(0),
        views: form.views.trim().parse().unwrap_or(0),
        ..FormView::default()
    };
    if !LIFETIMES
        .iter()
        .any(|(minutes, _)| *minutes == view.lifetime)
    {
        view.lifetime_error = Some("Pick how long the link works.".into());
    }
    if !(1..=10).contains(&view.views) {
        view.views_error = Some("Give how many times the link can be opened, from 1 to 10.".into());
    }
    if view.user.is_empty() {
        view.user_error = Some("Give the user's sign-in name or e-mail address.".into());
    }
    if form.tenant.trim().parse::<Uuid>().is_err() {
        view.tenant_error = Some("Pick the user's tenant.".into());
    }
    if form.secret.trim().is_empty() {
        view.secret_error = Some("Type the secret to send.".into());
    }
    if has_error(&view) {
        return refused(&ctx, &user, StatusCode::BAD_REQUEST, view).await;
    }
    let options = ShareOptions {
        expires_in: Some(Duration::minutes(view.lifetime)),
        max_views: Some(view.views),
    };
    let recipient = ShareRecipient {
        tenant: form.tenant.trim().to_owned(),
        user: view.user.clone(),
    };
    match ctx
        .shares
        .create_and_send(
            user.msp.id,
            SecretString::from(form.secret),
            options,
            Some(recipient),
            &user.actor(),
        )
        .await
    {
        Ok(delivered) => {
            let sent = SentView {
                to: view.user.clone(),
                phone: delivered.sent_to.unwrap_or_default(),
                expires: crate::domain::utc_minute(delivered.share.expires_at),
                views: delivered.share.max_views,
            };
            page(&ctx, &user, StatusCode::OK, fresh_form(), Some(sent)).await
        }
        Err(err) => {
            let (status, message) = match &err {
                ShareSendError::Share(e) => (status_of(e.code()), e.to_string()),
                ShareSendError::Recipient(e) => (status_of(e.code()), e.to_string()),
            };
            match err {
                ShareSendError::Share(ShareError::Store(_))
                | ShareSendError::Recipient(CoreError::Store(_)) => return failed(&user.brand),
                ShareSendError::Share(ShareError::InvalidRequest { field, .. }) => match field {
                    "content" => view.secret_error = Some(message),
                    "expires_in" => view.lifetime_error = Some(message),
                    "max_views" => view.views_error = Some(message),
                    _ => view.error = Some(message),
                },
                ShareSendError::Recipient(CoreError::TenantNotFound) => {
                    view.tenant_error = Some(message)
                }
                ShareSendError::Recipient(
                    CoreError::UserNotFound { .. }
                    | CoreError::UserAmbiguous { .. }
                    | CoreError::NoMobilePhone,
                ) => view.user_error = Some(message),
                _ => view.error = Some(message),
            }
            refused(&ctx, &user, status, view).await
        }
    }
}

fn has_error(view: &FormView) -> bool {
    view.tenant_error.is_some()
        || view.user_error.is_some()
        || view.secret_error.is_some()
        || view.lifetime_error.is_some()
        || view.views_error.is_some()
}

/// The form again after a refusal; the secret is not put back in the page.
async fn refused(
    ctx: &AppContext,
    user: &ConsoleUser,
    status: StatusCode,
    mut view: FormView,
) -> Response {
    if view.secret_error.is_none() {
        view.secret_error =
            Some("Nothing was sent. For safety the secret is not kept: type it again.".into());
    }
    if view.lifetime == 0 {
        view.lifetime = 1440;
    }
    page(ctx, user, status, view, None).await
}

/// `POST /console/shares/{id}/revoke`: the link stops working at once (after its
/// confirmation page: the first post only asks).
#[handler]
pub async fn revoke(
    ctx: Data<&Arc<AppContext>>,
    Path(id): Path<String>,
    CheckedForm {
        user, confirmed, ..
    }: CheckedForm<RevokeForm>,
) -> Response {
    let outcome = match id.parse::<Uuid>() {
        // The question names the share from the list (the page's own, so a share the page
        // cannot show has no button to ask about it either: it is not found).
        Ok(id) if !confirmed => match ctx.shares.list(user.msp.id).await {
            Ok(shares) => match shares.iter().find(|s| s.id == id) {
                Some(share) => {
                    return confirm::ask(
                        &user,
                        Question {
                            title: format!(
                                "Revoke the share sent {}?",
                                crate::domain::utc_minute(share.created_at)
                            ),
                            text: format!(
                                "Its link stops working at once, and whoever has not seen the secret yet never will (it has been opened {} of {} times). This cannot be undone: send a new share if one is needed.",
                                share.views, share.max_views
                            ),
                            action: format!("{PATH}/{id}/revoke"),
                            button: "Revoke",
                            back: PATH.to_owned(),
                        },
                    );
                }
                None => Err(ShareError::NotFound),
            },
            Err(_) => return failed(&user.brand),
        },
        Ok(id) => ctx.shares.revoke(user.msp.id, id, &user.actor()).await,
        Err(_) => Err(ShareError::NotFound),
    };
    match outcome {
        Ok(()) => redirect(PATH),
        Err(ShareError::Store(_)) => failed(&user.brand),
        Err(err) => {
            let view = FormView {
                error: Some(err.to_string()),
                ..fresh_form()
            };
            page(&ctx, &user, status_of(err.code()), view, None).await
        }
    }
}
