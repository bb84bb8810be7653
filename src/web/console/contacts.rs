//! `GET /console/contacts` (any signed-in user): search the users of the MSP's tenants by
//! name, UPN or e-mail (Microsoft Graph, through `core::directory`, with a short cache), and
//! `GET /console/contacts/{tenant}/{object_id}`: one user, the pod's verify and reset panel
//! for them, and their verification history.
//!
//! The panel is the pod's own (`pod_panel.html`, `pods/pod.js`), on a pod token core mints
//! for the console user and that user, with no ticket
//! (`PodService::open_console_contact_session`): it calls the same pod API under the same
//! rules (a reset needs a fresh verification of this user, made from a contact's page by
//! the same console user), writes no PSA note, and stops when the console session ends.
//!
//! The search is a plain GET form; its results page says how many tenants were searched
//! and which could not be.

use std::sync::Arc;

use minijinja::context;
use poem::http::StatusCode;
use poem::web::{Data, Path, Query};
use poem::{Response, handler};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::session::failed;
use super::{ConsoleUser, respond, respond_with_panel};
use crate::api::error::status_of;
use crate::app::AppContext;
use crate::core::error::CoreError;
use crate::core::pod::{PodError, outcome_label};
use crate::domain::VerificationMethod;

const PATH: &str = "/console/contacts";

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SearchQuery {
    q: Option<String>,
}

#[derive(Debug, Serialize)]
struct HitView {
    name: String,
    upn: String,
    mail: Option<String>,
    tenant: String,
    href: String,
}

#[derive(Debug, Serialize)]
struct FailureView {
    tenant: String,
    message: String,
}

#[derive(Debug, Serialize)]
struct ResultsView {
    hits: Vec<HitView>,
    failures: Vec<FailureView>,
    truncated: bool,
    tenants: usize,
}

#[handler]
pub async fn contacts_page(
    ctx: Data<&Arc<AppContext>>,
    user: ConsoleUser,
    Query(query): Query<SearchQuery>,
) -> Response {
    let asked = query.q.is_some();
    let q = query.q.unwrap_or_default();
    let mut error = None;
    let mut results = None;
    let mut status = StatusCode::OK;
    if asked {
        match ctx.directory.search_contacts(user.msp.id, &q).await {
            Ok(found) => {
                let tenants: std::collections::HashSet<Uuid> = found
                    .hits
                    .iter()
                    .map(|h| h.tenant.id)
                    .chain(found.failures.iter().map(|(t, _)| t.id))
                    .collect();
                results = Some(ResultsView {
                    hits: found
                        .hits
                        .iter()
                        .map(|h| HitView {
                            name: h
                                .user
                                .display_name
                                .clone()
                                .unwrap_or_else(|| h.user.upn.clone()),
                            upn: h.user.upn.clone(),
                            mail: h
                                .mail
                                .clone()
                                .filter(|m| !m.eq_ignore_ascii_case(&h.user.upn)),
                            tenant: h.tenant.display_name.clone(),
                            href: contact_href(h.tenant.id, &h.user.object_id),
                        })
                        .collect(),
                    failures: found
                        .failures
                        .iter()
                        .map(|(t, err)| FailureView {
                            tenant: t.display_name.clone(),
                            message: err.to_string(),
                        })
                        .collect(),
                    truncated: found.truncated,
                    tenants: tenants.len(),
                });
            }
            Err(CoreError::InvalidInput { problem, .. }) => {
                status = StatusCode::BAD_REQUEST;
                error = Some(format!("{}.", capitalised(&problem)));
            }
            Err(CoreError::Store(_)) => return failed(&user.brand),
            Err(err) => {
                status = status_of(err.code());
                error = Some(err.to_string());
            }
        }
    }
    respond(
        status,
        "console/contacts.html",
        context! {
            brand => user.brand.view(),
            shell => user.shell(PATH),
            q => q,
            error => error,
            results => results,
        },
        &user.brand,
    )
}

/// Where a contact's page is.
fn contact_href(tenant: Uuid, object_id: &str) -> String {
    let segment: String = url::form_urlencoded::byte_serialize(object_id.as_bytes()).collect();
    format!("{PATH}/{tenant}/{segment}")
}

#[derive(Debug, Serialize)]
struct HistoryView {
    when: String,
    method: &'static str,
    outcome: String,
    place: String,
}

#[handler]
pub async fn contact_page(
    ctx: Data<&Arc<AppContext>>,
    user: ConsoleUser,
    Path((tenant, object_id)): Path<(String, String)>,
) -> Response {
    let not_found = |user: &ConsoleUser| {
        super::message(
            StatusCode::NOT_FOUND,
            &user.brand,
            Some(user.shell(PATH)),
            "Contact not found",
            "Vouch finds no such user in your MSP's tenants. Search for them again.",
            (PATH, "Back to Contacts"),
        )
    };
    let Ok(tenant_id) = tenant.parse::<Uuid>() else {
        return not_found(&user);
    };
    let (token, tenant, contact) = match ctx
        .pods
        .open_console_contact_session(&user.account, user.session.id, tenant_id, &object_id)
        .await
    {
        Ok(found) => found,
        Err(PodError::Core(CoreError::TenantNotFound | CoreError::UserNotFound { .. })) => {
            return not_found(&user);
        }
        Err(PodError::Core(CoreError::Store(_)) | PodError::SessionUnavailable) => {
            return failed(&user.brand);
        }
        Err(err) => {
            return super::message(
                status_of(err.code()),
                &user.brand,
                Some(user.shell(PATH)),
                "Microsoft could not be asked",
                &err.to_string(),
                (PATH, "Back to Contacts"),
            );
        }
    };
    let history = match ctx.verifications.history(&tenant, &contact, 20).await {
        Ok(history) => history,
        Err(_) => return failed(&user.brand),
    };
    let rows: Vec<HistoryView> = history
        .iter()
        .map(|v| HistoryView {
            when: crate::domain::utc_minute(v.created_at),
            method: match v.method {
                VerificationMethod::Push => "Authenticator push",
                VerificationMethod::SmsCode => "Code by SMS",
                VerificationMethod::SmsLink => "One-tap link by SMS",
            },
            outcome: outcome_label(v),
            place: match (&v.psa_ticket_id, v.console_user_id) {
                (Some(ticket), _) => format!("Ticket {ticket}"),
                (None, Some(_)) => "Contacts (console)".to_owned(),
                (None, None) => "Vouch API".to_owned(),
            },
        })
        .collect();
    respond_with_panel(
        StatusCode::OK,
        "console/contacts_user.html",
        context! {
            brand => user.brand.view(),
            shell => user.shell(PATH),
            name => contact.display_name.clone().unwrap_or_else(|| contact.upn.clone()),
            upn => contact.upn,
            tenant => tenant.display_name,
            history => rows,
            panel => context! { token => token, api => "/api/v1/pod" },
        },
        &user.brand,
    )
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
