//! `GET /console/audit` (every signed-in user, their MSP's entries only): the audit log with
//! filters (person, tenant, user, action, outcome, dates), paging, each entry's ticket linked
//! in the PSA, and `GET /console/audit.csv`, the same filters as CSV. Both only read, so
//! they take no CSRF token: the filters are a GET form.

use std::sync::Arc;

use minijinja::context;
use poem::http::{StatusCode, header};
use poem::web::{Data, Query};
use poem::{Response, handler};
use serde::{Deserialize, Serialize};

use super::session::failed;
use super::{ConsoleUser, respond};
use crate::app::AppContext;
use crate::core::audit::{AuditFields, AuditFilter, AuditRow, outcomes};
use crate::core::error::CoreError;

const PATH: &str = "/console/audit";

/// The query string: the filters and the page number.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AuditParams {
    person: String,
    tenant: String,
    user: String,
    action: String,
    outcome: String,
    from: String,
    to: String,
    page: String,
}

impl AuditParams {
    fn fields(&self) -> AuditFields {
        AuditFields {
            person: self.person.clone(),
            tenant: self.tenant.clone(),
            user: self.user.clone(),
            action: self.action.clone(),
            outcome: self.outcome.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
        }
    }

    fn page(&self) -> u32 {
        self.page
            .trim()
            .parse::<u32>()
            .unwrap_or(1)
            .clamp(1, 100_000)
    }
}

/// The filters as a query string (for the paging and CSV links), empty ones left out.
fn query_of(fields: &AuditFields, page: Option<u32>) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in [
        ("person", &fields.person),
        ("tenant", &fields.tenant),
        ("user", &fields.user),
        ("action", &fields.action),
        ("outcome", &fields.outcome),
        ("from", &fields.from),
        ("to", &fields.to),
    ] {
        if !value.trim().is_empty() {
            query.append_pair(name, value.trim());
        }
    }
    if let Some(page) = page {
        query.append_pair("page", &page.to_string());
    }
    query.finish()
}

#[derive(Debug, Serialize)]
struct RowView {
    when: String,
    actor: String,
    action: String,
    outcome: String,
    outcome_class: &'static str,
    subject: Option<String>,
    tenant: Option<String>,
    ticket: Option<String>,
    ticket_url: Option<String>,
    security: bool,
}

impl RowView {
    fn of(row: AuditRow) -> RowView {
        let ev = &row.event.event;
        use crate::domain::AuditOutcome::*;
        RowView {
            when: row
                .event
                .occurred_at
                .format("%Y-%m-%d %H:%M:%S")
                .to_string(),
            actor: row.actor,
            action: ev.action.clone(),
            outcome: ev.outcome.as_str().replace('_', " "),
            outcome_class: match ev.outcome {
                Success | Approved | Completed => "good",
                Failure | Refused | Denied | Failed => "bad",
                _ => "",
            },
            subject: ev.subject_name.clone().or_else(|| ev.subject_id.clone()),
            tenant: row.tenant_name,
            ticket: ev.psa_ticket_id.clone(),
            // Only web addresses are ever linked.
            ticket_url: row
                .ticket_url
                .filter(|u| matches!(u.scheme(), "https" | "http"))
                .map(String::from),
            security: row.event.category == crate::domain::AuditCategory::Security,
        }
    }
}

#[handler]
pub async fn audit_page(
    ctx: Data<&Arc<AppContext>>,
    user: ConsoleUser,
    Query(params): Query<AuditParams>,
) -> Response {
    let fields = params.fields();
    let page = params.page();
    let choices = match ctx.audit.choices(user.msp.id).await {
        Ok(choices) => choices,
        Err(_) => return failed(&user.brand),
    };
    let (status, rows, has_more, field_error) = match AuditFilter::parse(&fields) {
        Ok(filter) => match ctx.audit.page(user.msp.id, &filter, page).await {
            Ok(found) => (
                StatusCode::OK,
                found.rows.into_iter().map(RowView::of).collect(),
                found.has_more,
                None,
            ),
            Err(_) => return failed(&user.brand),
        },
        Err(CoreError::InvalidInput { field, problem }) => (
            StatusCode::BAD_REQUEST,
            Vec::new(),
            false,
            Some((field, format!("This {problem}."))),
        ),
        Err(_) => return failed(&user.brand),
    };
    let error_of = |name: &str| {
        field_error
            .as_ref()
            .filter(|(field, _)| *field == name)
            .map(|(_, text)| text.clone())
    };
    let filtered = !query_of(&fields, None).is_empty();
    respond(
        status,
        "console/audit.html",
        context! {
            brand => user.brand.view(),
            shell => user.shell(PATH),
            fields => &fields,
            errors => context! {
                person => error_of("person"),
                tenant => error_of("tenant"),
                user => error_of("user"),
                action => error_of("action"),
                outcome => error_of("outcome"),
                from => error_of("from"),
                to => error_of("to"),
            },
            people => choices.people,
            tenants => choices.tenants.into_iter().map(|(id, name)| (id.to_string(), name)).collect::<Vec<_>>(),
            actions => choices.actions,
            outcomes => outcomes(),
            rows => rows,
            page => page,
            filtered => filtered,
            previous_href => (page > 1).then(|| format!("{PATH}?{}", query_of(&fields, Some(page - 1)))),
            next_href => has_more.then(|| format!("{PATH}?{}", query_of(&fields, Some(page + 1)))),
            csv_href => format!("{PATH}.csv?{}", query_of(&fields, None)),
        },
        &user.brand,
    )
}

/// `GET /console/audit.csv`: the entries the same filters match, at most 10,000, as CSV.
#[handler]
pub async fn audit_csv(
    ctx: Data<&Arc<AppContext>>,
    user: ConsoleUser,
    Query(params): Query<AuditParams>,
) -> Response {
    let filter = match AuditFilter::parse(&params.fields()) {
        Ok(filter) => filter,
        Err(err @ CoreError::InvalidInput { .. }) => {
            return super::message(
                StatusCode::BAD_REQUEST,
                &user.brand,
                Some(user.shell(PATH)),
                "These filters cannot be exported",
                &err.to_string(),
                (PATH, "Back to the audit"),
            );
        }
        Err(_) => return failed(&user.brand),
    };
    match ctx.audit.export_csv(user.msp.id, &filter).await {
        Ok(csv) => Response::builder()
            .status(StatusCode::OK)
            .content_type("text/csv; charset=utf-8")
            .header(
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"vouch-audit.csv\"",
            )
            .header(header::CACHE_CONTROL, "no-store")
            .header("X-Content-Type-Options", "nosniff")
            .body(csv),
        Err(_) => failed(&user.brand),
    }
}
