//! `GET /console/companies` (admins): a PSA connection's companies beside the tenants they
//! are mapped to, and the suggested tenant of each unmapped company with its evidence, to
//! accept one by one or all at once (each exactly like `PUT /v1/company-mappings`).

use std::sync::Arc;

use minijinja::context;
use poem::http::StatusCode;
use poem::web::{Data, Query};
use poem::{Response, handler};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::session::{AdminForm, failed};
use super::{ConsoleUser, respond};
use crate::app::AppContext;
use crate::core::companies::{AcceptItem, AcceptResult, CompanyError};
use crate::core::error::CoreError;
use crate::domain::AcceptOutcome;

const PATH: &str = "/console/companies";

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListQuery {
    connection: String,
    search: String,
    page: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AcceptForm {
    psa_connection_id: String,
    psa_company_id: String,
    psa_company_name: String,
    tenant_id: String,
    /// The connection the page showed, to show it again.
    connection: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AcceptAllForm {
    connection: String,
}

#[derive(Debug, Serialize)]
struct CompanyRow {
    id: String,
    name: String,
    website: Option<String>,
    tenant_name: Option<String>,
}

#[derive(Debug, Serialize)]
struct SuggestionRow {
    psa_connection_id: Uuid,
    psa_connection_name: String,
    psa_company_id: String,
    psa_company_name: String,
    tenant_id: Uuid,
    tenant_name: String,
    score: u8,
    confidence: &'static str,
    evidence: Vec<String>,
}

/// What a post did, said on the page.
#[derive(Default)]
struct Outcome {
    notices: Vec<String>,
    errors: Vec<String>,
}

impl Outcome {
    fn of(results: &[AcceptResult], names: &(dyn Fn(&AcceptResult) -> String + Sync)) -> Outcome {
        let mut outcome = Outcome::default();
        for r in results {
            let company = names(r);
            match (r.outcome, &r.mapping, &r.error) {
                (AcceptOutcome::Created, Some(m), _) => outcome
                    .notices
                    .push(format!("{company} is now mapped to {}.", m.tenant_name)),
                (AcceptOutcome::Kept, Some(m), _) => outcome.notices.push(format!(
                    "{company} was already mapped to {}.",
                    m.tenant_name
                )),
                (_, _, Some((_, why))) => outcome.errors.push(format!("{company}: {why}")),
                _ => outcome.errors.push(format!("{company}: not mapped.")),
            }
        }
        outcome
    }
}

async fn page(
    ctx: &AppContext,
    user: &ConsoleUser,
    status: StatusCode,
    query: ListQuery,
    outcome: Outcome,
) -> Response {
    let msp = user.msp.id;
    let connections = match ctx.psa_connections.list(msp).await {
        Ok(connections) => connections,
        Err(_) => return failed(&user.brand),
    };
    let selected = query
        .connection
        .parse::<Uuid>()
        .ok()
        .and_then(|id| connections.iter().find(|c| c.id == id))
        .or(connections.first());
    let search = query.search.trim().to_owned();
    let page_number = query.page.unwrap_or(1).max(1);
    // Listing asks the PSA (unless cached): the page says how long it took.
    let listed = match selected {
        None => None,
        Some(connection) => Some(
            super::psa_connections::timed(ctx.companies.list_companies(
                msp,
                connection.id,
                (!search.is_empty()).then_some(search.as_str()),
                Some(page_number),
                None,
            ))
            .await,
        ),
    };
    let loaded_in = listed
        .as_ref()
        .map(|(_, took)| super::psa_connections::seconds(*took));
    let (companies, has_more, companies_error) = match listed.map(|(listed, _)| listed) {
        None => (Vec::new(), false, None),
        Some(listed) => match listed {
            Ok(listed) => (
                listed
                    .items
                    .into_iter()
                    .map(|c| CompanyRow {
                        tenant_name: c.mapping.map(|m| m.tenant_name),
                        id: c.id,
                        name: c.name,
                        website: c.website,
                    })
                    .collect(),
                listed.has_more,
                None,
            ),
            Err(CompanyError::Core(CoreError::Store(_))) => return failed(&user.brand),
            Err(err) => (Vec::new(), false, Some(err.to_string())),
        },
    };
    let (suggestions, unmatched, shortfalls, suggestions_error) =
        match ctx.companies.suggestions(msp, None).await {
            Ok(found) => (
                found
                    .suggestions
                    .into_iter()
                    .map(|s| SuggestionRow {
                        psa_connection_id: s.psa_connection_id,
                        psa_connection_name: s.psa_connection_name,
                        psa_company_id: s.psa_company_id,
                        psa_company_name: s.psa_company_name,
                        tenant_id: s.tenant.tenant_id,
                        tenant_name: s.tenant.tenant_name,
                        score: s.tenant.score,
                        confidence: s.tenant.confidence.as_str(),
                        evidence: s.tenant.evidence.into_iter().map(|e| e.text).collect(),
                    })
                    .collect::<Vec<_>>(),
                found
                    .unmatched
                    .into_iter()
                    .map(|u| u.psa_company_name)
                    .collect::<Vec<_>>(),
                found
                    .shortfalls
                    .into_iter()
                    .map(|s| s.message)
                    .collect::<Vec<_>>(),
                None,
            ),
            Err(CompanyError::Core(CoreError::Store(_))) => return failed(&user.brand),
            Err(err) => (Vec::new(), Vec::new(), Vec::new(), Some(err.to_string())),
        };
    let connection_options: Vec<_> = connections
        .iter()
        .map(|c| {
            context! {
                id => c.id,
                name => format!("{} ({})", c.name, c.kind.display_name()),
                selected => selected.is_some_and(|s| s.id == c.id),
            }
        })
        .collect();
    respond(
        status,
        "console/companies.html",
        context! {
            brand => user.brand.view(),
            shell => user.shell(PATH),
            connections => connection_options,
            selected => selected.map(|c| context! { id => c.id, name => c.name }),
            search => search,
            page => page_number,
            has_more => has_more,
            companies => companies,
            companies_error => companies_error,
            loaded_in => loaded_in,
            suggestions => suggestions,
            unmatched => unmatched,
            shortfalls => shortfalls,
            suggestions_error => suggestions_error,
            notices => outcome.notices,
            errors => outcome.errors,
        },
        &user.brand,
    )
}

#[handler]
pub async fn companies_page(
    ctx: Data<&Arc<AppContext>>,
    user: ConsoleUser,
    Query(query): Query<ListQuery>,
) -> Response {
    if let Err(refused) = user.require_admin(PATH) {
        return refused;
    }
    page(&ctx, &user, StatusCode::OK, query, Outcome::default()).await
}

/// `POST /console/companies/accept`: maps one company to its suggested tenant.
#[handler]
pub async fn accept(
    ctx: Data<&Arc<AppContext>>,
    AdminForm { user, form, .. }: AdminForm<AcceptForm>,
) -> Response {
    let query = ListQuery {
        connection: form.connection.clone(),
        ..ListQuery::default()
    };
    let (Ok(psa_connection_id), Ok(tenant_id)) = (
        form.psa_connection_id.parse::<Uuid>(),
        form.tenant_id.parse::<Uuid>(),
    ) else {
        let outcome = Outcome {
            errors: vec![
                "This suggestion is not one Vouch made. Reload the page and accept it again."
                    .into(),
            ],
            ..Outcome::default()
        };
        return page(&ctx, &user, StatusCode::BAD_REQUEST, query, outcome).await;
    };
    let name = form.psa_company_name.clone();
    let item = AcceptItem {
        psa_connection_id,
        psa_company_id: form.psa_company_id,
        psa_company_name: form.psa_company_name,
        tenant_id,
    };
    accepted(&ctx, &user, query, vec![item], &|_| name.clone()).await
}

/// `POST /console/companies/accept-all`: maps every company to its suggested tenant, as the
/// suggestions stand now.
#[handler]
pub async fn accept_all(
    ctx: Data<&Arc<AppContext>>,
    AdminForm { user, form, .. }: AdminForm<AcceptAllForm>,
) -> Response {
    let query = ListQuery {
        connection: form.connection,
        ..ListQuery::default()
    };
    let found = match ctx.companies.suggestions(user.msp.id, None).await {
        Ok(found) => found,
        Err(CompanyError::Core(CoreError::Store(_))) => return failed(&user.brand),
        Err(err) => {
            let outcome = Outcome {
                errors: vec![err.to_string()],
                ..Outcome::default()
            };
            let status = crate::api::error::status_of(err.code());
            return page(&ctx, &user, status, query, outcome).await;
        }
    };
    if found.suggestions.is_empty() {
        let outcome = Outcome {
            notices: vec!["There is no suggestion to accept.".into()],
            ..Outcome::default()
        };
        return page(&ctx, &user, StatusCode::OK, query, outcome).await;
    }
    let names: Vec<((Uuid, String), String)> = found
        .suggestions
        .iter()
        .map(|s| {
            (
                (s.psa_connection_id, s.psa_company_id.clone()),
                s.psa_company_name.clone(),
            )
        })
        .collect();
    let items = found
        .suggestions
        .into_iter()
        .map(|s| AcceptItem {
            psa_connection_id: s.psa_connection_id,
            psa_company_id: s.psa_company_id,
            psa_company_name: s.psa_company_name,
            tenant_id: s.tenant.tenant_id,
        })
        .collect();
    let name_of = |r: &AcceptResult| {
        names
            .iter()
            .find(|((c, id), _)| *c == r.psa_connection_id && *id == r.psa_company_id)
            .map(|(_, name)| name.clone())
            .unwrap_or_else(|| r.psa_company_id.clone())
    };
    accepted(&ctx, &user, query, items, &name_of).await
}

async fn accepted(
    ctx: &AppContext,
    user: &ConsoleUser,
    query: ListQuery,
    items: Vec<AcceptItem>,
    names: &(dyn Fn(&AcceptResult) -> String + Sync),
) -> Response {
    match ctx
        .companies
        .accept(user.msp.id, &user.actor(), items)
        .await
    {
        Ok(results) => {
            let outcome = Outcome::of(&results, names);
            let status = if outcome.errors.is_empty() || !outcome.notices.is_empty() {
                StatusCode::OK
            } else {
                results
                    .iter()
                    .find_map(|r| r.error.as_ref())
                    .map(|(code, _)| crate::api::error::status_of(*code))
                    .unwrap_or(StatusCode::BAD_REQUEST)
            };
            page(ctx, user, status, query, outcome).await
        }
        Err(CompanyError::Core(CoreError::Store(_))) => failed(&user.brand),
        Err(err) => {
            let status = crate::api::error::status_of(err.code());
            let outcome = Outcome {
                errors: vec![err.to_string()],
                ..Outcome::default()
            };
            page(ctx, user, status, query, outcome).await
        }
    }
}
