//! `GET /console/integrations` (admins): Security Integrations. Each customer tenant's
//! integrations with their status, last check and secret-expiry warning, re-check and
//! remove; "Add New Integration": Microsoft Authenticator (an admin-consent link to open or
//! to send to the customer's admin) and M365 Identity Management (a form beside the
//! app-registration steps and the Graph permissions it needs). A credential Microsoft
//! refuses is explained next to its field and nothing is saved.

use std::sync::Arc;

use chrono::{Duration, NaiveDate, Utc};
use minijinja::context;
use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{Response, handler};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::confirm::{self, Question};
use super::session::{AdminForm, failed};
use super::{ConsoleUser, redirect, respond};
use crate::api::error::status_of;
use crate::app::AppContext;
use crate::core::integrations::{
    DEFAULT_SECRET_LIFETIME_DAYS, EXPIRY_WARNING_DAYS, ExpiryState, IdentityManagementInput,
    IntegrationError, IntegrationView,
};
use crate::domain::{IntegrationKind, IntegrationStatus};

const PATH: &str = "/console/integrations";

/// The Graph application permissions the Identity Management app needs, and why: the ones
/// `microsoft::graph` asks for with that app's credentials.
const IDENTITY_PERMISSIONS: &[(&str, &str, bool)] = &[
    (
        "User.Read.All",
        "find the caller's Microsoft 365 user by e-mail address",
        true,
    ),
    (
        "UserAuthenticationMethod.Read.All",
        "read the user's registered mobile phone and Authenticator app (UserAuthenticationMethod.ReadWrite.All, below, includes it)",
        true,
    ),
    (
        "User-PasswordProfile.ReadWrite.All",
        "set the new password (the reset itself)",
        true,
    ),
    (
        "Directory.Read.All",
        "see whether the user holds an admin role, which Vouch refuses to reset unless your policy allows it",
        true,
    ),
    (
        "Organization.Read.All",
        "read the tenant's name and verified domains, for company suggestions (optional: without it the tenant is named by its id)",
        false,
    ),
    (
        "UserAuthenticationMethod.ReadWrite.All",
        "make Microsoft Authenticator a user's default sign-in method when a technician asks (optional)",
        false,
    ),
];

/// The re-check, remove and consent forms carry nothing of their own (their CSRF token and
/// confirmation are read by [`AdminForm`]).
#[derive(Debug, Default, Deserialize)]
pub struct ActionForm {}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct IdentityForm {
    tenant_id: String,
    client_id: String,
    client_secret: String,
    secret_expires_on: String,
}

/// A row of the list.
#[derive(Debug, Serialize)]
struct Row {
    id: Uuid,
    kind: &'static str,
    tenant_name: String,
    tenant_id: String,
    status: &'static str,
    failed: bool,
    last_checked: Option<String>,
    last_check_message: Option<String>,
    secret_expires: Option<String>,
    expiry: &'static str,
    warning: Option<String>,
}

impl Row {
    fn of(view: IntegrationView) -> Row {
        Row {
            id: view.id,
            kind: kind_name(view.kind),
            status: match view.status {
                IntegrationStatus::Active => "Working",
                IntegrationStatus::Failed => "Failing",
            },
            failed: view.status == IntegrationStatus::Failed,
            last_checked: view.last_checked_at.map(crate::domain::utc_minute),
            last_check_message: view.last_check_message,
            secret_expires: view.secret_expires_at.map(crate::domain::utc_minute),
            expiry: view.expiry.as_str(),
            warning: view.warning.or_else(|| {
                (view.expiry == ExpiryState::Unknown)
                    .then(|| "Vouch does not know when this secret expires.".to_owned())
            }),
            tenant_name: view.tenant_name,
            tenant_id: view.tenant_id,
        }
    }
}

fn kind_name(kind: IntegrationKind) -> &'static str {
    match kind {
        IntegrationKind::Authenticator => "Microsoft Authenticator",
        IntegrationKind::IdentityManagement => "M365 Identity Management",
    }
}

/// What the list page shows besides the list.
#[derive(Default)]
struct Extra {
    consent_url: Option<String>,
    consent_error: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

async fn list_page(
    ctx: &AppContext,
    user: &ConsoleUser,
    status: StatusCode,
    extra: Extra,
) -> Response {
    let views = match ctx.integrations.list(user.msp.id).await {
        Ok(views) => views,
        Err(_) => return failed(&user.brand),
    };
    let rows: Vec<Row> = views.into_iter().map(Row::of).collect();
    respond(
        status,
        "console/integrations.html",
        context! {
            brand => user.brand.view(),
            shell => user.shell(PATH),
            rows => rows,
            warning_days => EXPIRY_WARNING_DAYS,
            consent_url => extra.consent_url,
            consent_error => extra.consent_error,
            notice => extra.notice,
            error => extra.error,
        },
        &user.brand,
    )
}

#[handler]
pub async fn integrations_page(ctx: Data<&Arc<AppContext>>, user: ConsoleUser) -> Response {
    if let Err(refused) = user.require_admin(PATH) {
        return refused;
    }
    list_page(&ctx, &user, StatusCode::OK, Extra::default()).await
}

/// `POST /console/integrations/authenticator/consent`: a new admin-consent link (usable
/// once, for 30 minutes), to open or to send to the customer's admin.
#[handler]
pub async fn consent_link(
    ctx: Data<&Arc<AppContext>>,
    AdminForm { user, .. }: AdminForm<ActionForm>,
) -> Response {
    match ctx
        .integrations
        .start_authenticator_consent(user.msp.id)
        .await
    {
        Ok(url) => {
            let extra = Extra {
                consent_url: Some(url.to_string()),
                ..Extra::default()
            };
            list_page(&ctx, &user, StatusCode::OK, extra).await
        }
        Err(IntegrationError::Store(_)) => failed(&user.brand),
        Err(err) => {
            let extra = Extra {
                consent_error: Some(err.to_string()),
                ..Extra::default()
            };
            list_page(&ctx, &user, status_of(err.code()), extra).await
        }
    }
}

/// `POST /console/integrations/{id}/{action}`: `recheck` or `remove` (after its
/// confirmation page: the first post only asks).
#[handler]
pub async fn act(
    ctx: Data<&Arc<AppContext>>,
    Path((id, action)): Path<(String, String)>,
    AdminForm {
        user, confirmed, ..
    }: AdminForm<ActionForm>,
) -> Response {
    let outcome = match (id.parse::<Uuid>(), action.as_str()) {
        (Err(_), _) => Err(IntegrationError::NotFound),
        (Ok(id), "remove") if !confirmed => match ctx.integrations.list(user.msp.id).await {
            Ok(views) => match views.into_iter().find(|v| v.id == id) {
                Some(view) => return confirm::ask(&user, removal(&view)),
                None => Err(IntegrationError::NotFound),
            },
            Err(_) => return failed(&user.brand),
        },
        (Ok(id), "recheck") => ctx
            .integrations
            .recheck(user.msp.id, &user.actor(), id)
            .await
            .map(|view| {
                Some(match view.status {
                    IntegrationStatus::Active => format!(
                        "{} of {} checked: it works.",
                        kind_name(view.kind),
                        view.tenant_name
                    ),
                    IntegrationStatus::Failed => format!(
                        "{} of {} checked: it fails. {}",
                        kind_name(view.kind),
                        view.tenant_name,
                        view.last_check_message.unwrap_or_default()
                    ),
                })
            }),
        (Ok(id), "remove") => ctx
            .integrations
            .remove(user.msp.id, &user.actor(), id)
            .await
            .map(|()| None),
        _ => Err(IntegrationError::InvalidInput {
            field: "action",
            problem: "is not one Vouch knows; use the buttons of the list".into(),
        }),
    };
    match outcome {
        Ok(None) => redirect(PATH),
        Ok(Some(notice)) => {
            let extra = Extra {
                notice: Some(notice),
                ..Extra::default()
            };
            list_page(&ctx, &user, StatusCode::OK, extra).await
        }
        Err(IntegrationError::Store(_)) => failed(&user.brand),
        Err(err) => {
            let extra = Extra {
                error: Some(err.to_string()),
                ..Extra::default()
            };
            list_page(&ctx, &user, status_of(err.code()), extra).await
        }
    }
}

/// The question before removing `view`.
fn removal(view: &IntegrationView) -> Question<'static> {
    let kind = kind_name(view.kind);
    let follows = match view.kind {
        IntegrationKind::Authenticator => {
            "technicians can no longer send Microsoft Authenticator pushes to its users"
        }
        IntegrationKind::IdentityManagement => {
            "technicians can no longer look up, verify or reset its users, and its credentials are deleted from Vouch"
        }
    };
    Question {
        title: format!("Remove {kind} of {}?", view.tenant_name),
        text: format!(
            "Vouch stops using it at once: {follows}. To use it again, add it again under Add New Integration. The audit log keeps its history."
        ),
        action: format!("{PATH}/{}/remove", view.id),
        button: "Remove",
        back: PATH.to_owned(),
    }
}

/// What the Identity Management form shows again (never the secret).
#[derive(Debug, Default, Serialize)]
struct IdentityView {
    tenant_id: String,
    client_id: String,
    secret_expires_on: String,
    tenant_id_error: Option<String>,
    client_id_error: Option<String>,
    client_secret_error: Option<String>,
    secret_expires_on_error: Option<String>,
}

fn default_expiry() -> String {
    (Utc::now() + Duration::days(DEFAULT_SECRET_LIFETIME_DAYS))
        .date_naive()
        .format("%Y-%m-%d")
        .to_string()
}

fn identity_page(
    user: &ConsoleUser,
    status: StatusCode,
    form: IdentityView,
    error: Option<String>,
) -> Response {
    let permissions: Vec<_> = IDENTITY_PERMISSIONS
        .iter()
        .map(|&(name, why, required)| context! { name, why, required })
        .collect();
    respond(
        status,
        "console/integrations_identity.html",
        context! {
            brand => user.brand.view(),
            shell => user.shell(PATH),
            form => form,
            error => error,
            permissions => permissions,
            default_days => DEFAULT_SECRET_LIFETIME_DAYS,
        },
        &user.brand,
    )
}

#[handler]
pub async fn identity_form(user: ConsoleUser) -> Response {
    if let Err(refused) = user.require_admin(PATH) {
        return refused;
    }
    let form = IdentityView {
        secret_expires_on: default_expiry(),
        ..IdentityView::default()
    };
    identity_page(&user, StatusCode::OK, form, None)
}

/// `POST /console/integrations/identity-management`: proves the credentials with Microsoft,
/// then saves them; a refusal is shown next to its field and nothing is saved.
#[handler]
pub async fn identity_connect(
    ctx: Data<&Arc<AppContext>>,
    AdminForm { user, form, .. }: AdminForm<IdentityForm>,
) -> Response {
    let mut view = IdentityView {
        tenant_id: form.tenant_id.clone(),
        client_id: form.client_id.clone(),
        secret_expires_on: form.secret_expires_on.clone(),
        ..IdentityView::default()
    };
    let expires_on = form.secret_expires_on.trim();
    let secret_expires_at = if expires_on.is_empty() {
        None
    } else {
        match NaiveDate::parse_from_str(expires_on, "%Y-%m-%d") {
            // The end of that day, in UTC: Entra shows a secret's expiry as a date.
            Ok(date) => date.and_hms_opt(23, 59, 59).map(|at| at.and_utc()),
            Err(_) => {
                view.secret_expires_on_error = Some(
                    "Enter the date the secret expires, as shown under Certificates & secrets (for example 2028-12-31)."
                        .into(),
                );
                return identity_page(&user, StatusCode::BAD_REQUEST, view, None);
            }
        }
    };
    let input = IdentityManagementInput {
        tenant: form.tenant_id,
        client_id: form.client_id,
        client_secret: SecretString::from(form.client_secret),
        secret_expires_at,
    };
    match ctx
        .integrations
        .connect_identity_management(user.msp.id, &user.actor(), input)
        .await
    {
        Ok(_) => redirect(PATH),
        Err(IntegrationError::Store(_)) => failed(&user.brand),
        Err(err) => {
            let text = err.to_string();
            match err.field() {
                Some("tenant_id") => view.tenant_id_error = Some(text),
                Some("client_id") => view.client_id_error = Some(text),
                Some("client_secret") => view.client_secret_error = Some(text),
                Some("secret_expires_at") => view.secret_expires_on_error = Some(text),
                _ => return identity_page(&user, status_of(err.code()), view, Some(text)),
            }
            identity_page(&user, status_of(err.code()), view, None)
        }
    }
}
