//! `GET /console/tickets` (any signed-in user): pick one of the MSP's PSA connections and a
//! ticket number, and get the pod's verify and reset panel for that ticket, as inside the
//! PSA. Core mints a pod token for the connection and ticket on the console user's behalf
//! (`PodService::open_console_session`): the panel then talks to the same pod API with it,
//! under the same rules (a reset needs a fresh verification of the same user, made from this
//! ticket), notes go to that ticket, and the audit names the console user.
//!
//! The form is a plain GET, so the page works without script up to the panel; only the page
//! with the panel loads the pod's modules (its CSP allows `script-src 'self'`).

use std::sync::Arc;

use minijinja::context;
use poem::http::StatusCode;
use poem::web::{Data, Query};
use poem::{Response, handler};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::session::failed;
use super::{ConsoleUser, respond, respond_with_panel};
use crate::api::error::status_of;
use crate::app::AppContext;
use crate::core::error::CoreError;
use crate::core::pod::PodError;
use crate::psa::PsaError;

const PATH: &str = "/console/tickets";

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TicketQuery {
    connection: Option<String>,
    ticket: Option<String>,
}

/// A PSA connection to pick.
#[derive(Debug, Serialize)]
struct ConnectionOption {
    id: Uuid,
    label: String,
    selected: bool,
}

/// What the form shows again, with each field's error.
#[derive(Debug, Default, Serialize)]
struct FormView {
    connection: String,
    ticket: String,
    connection_error: Option<String>,
    ticket_error: Option<String>,
    error: Option<String>,
}

/// The values the pod's script reads from the page's `<body>`.
#[derive(Debug, Serialize)]
struct PanelView {
    psa: &'static str,
    psa_name: &'static str,
    connection_name: String,
    token: String,
    connection: String,
    ticket: String,
    api: &'static str,
}

#[handler]
pub async fn tickets_page(
    ctx: Data<&Arc<AppContext>>,
    user: ConsoleUser,
    Query(query): Query<TicketQuery>,
) -> Response {
    let connections = match ctx.psa_connections.list(user.msp.id).await {
        Ok(list) => list,
        Err(_) => return failed(&user.brand),
    };
    let mut form = FormView {
        connection: query.connection.clone().unwrap_or_default(),
        ticket: query.ticket.clone().unwrap_or_default(),
        ..FormView::default()
    };
    let options = |selected: &str| -> Vec<ConnectionOption> {
        connections
            .iter()
            .map(|c| ConnectionOption {
                id: c.id,
                label: if c.name.contains(c.kind.display_name()) {
                    c.name.clone()
                } else {
                    format!("{} ({})", c.name, c.kind.display_name())
                },
                selected: c.id.to_string() == selected,
            })
            .collect()
    };
    // Nothing asked yet: the form alone.
    if query.connection.is_none() && query.ticket.is_none() {
        return page(&user, StatusCode::OK, options(""), form, None);
    }
    let Some(connection_id) = form
        .connection
        .trim()
        .parse::<Uuid>()
        .ok()
        .filter(|id| connections.iter().any(|c| c.id == *id))
    else {
        form.connection_error = Some(if connections.is_empty() {
            "Your MSP has no PSA connection yet. An admin adds one under PSA Connections.".into()
        } else {
            "Pick one of your MSP's PSA connections.".into()
        });
        let selected = form.connection.clone();
        return page(&user, StatusCode::NOT_FOUND, options(&selected), form, None);
    };
    match ctx
        .pods
        .open_console_session(&user.account, user.session.id, connection_id, &form.ticket)
        .await
    {
        Ok((token, connection)) => {
            let ticket = form.ticket.trim().trim_start_matches('#').to_owned();
            let panel = PanelView {
                psa: connection.kind.as_str(),
                psa_name: connection.kind.display_name(),
                connection_name: connection.name.clone(),
                token,
                connection: connection.id.to_string(),
                ticket,
                api: "/api/v1/pod",
            };
            let selected = form.connection.clone();
            page(&user, StatusCode::OK, options(&selected), form, Some(panel))
        }
        Err(err) => {
            let status = status_of(err.code());
            match &err {
                PodError::UnknownConnection => {
                    form.connection_error = Some("Pick one of your MSP's PSA connections.".into());
                }
                PodError::Core(CoreError::InvalidInput { problem, .. }) => {
                    form.ticket_error = Some(format!("{}.", capitalised(problem)));
                }
                PodError::Psa(PsaError::NotFound(_)) => {
                    form.ticket_error = Some(format!(
                        "The PSA has no ticket {} on this connection. Check the number in the PSA.",
                        form.ticket.trim()
                    ));
                }
                PodError::Core(CoreError::Store(_)) | PodError::SessionUnavailable => {
                    return failed(&user.brand);
                }
                other => form.error = Some(other.to_string()),
            }
            let selected = form.connection.clone();
            page(&user, status, options(&selected), form, None)
        }
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn page(
    user: &ConsoleUser,
    status: StatusCode,
    connections: Vec<ConnectionOption>,
    form: FormView,
    panel: Option<PanelView>,
) -> Response {
    let with_panel = panel.is_some();
    let values = context! {
        brand => user.brand.view(),
        shell => user.shell(PATH),
        connections => connections,
        form => form,
        panel => panel,
    };
    if with_panel {
        respond_with_panel(status, "console/tickets.html", values, &user.brand)
    } else {
        respond(status, "console/tickets.html", values, &user.brand)
    }
}
