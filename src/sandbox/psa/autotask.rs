//! Autotask PSA under `/autotask/`: the zone lookup, the zone's REST API
//! (`/autotask/atservicesrest/v1.0/...`, header authentication) and the ticket screen with
//! the Vouch Insight.

use chrono::Utc;
use poem::Response;
use poem::http::{Method, StatusCode};
use serde_json::{Value, json};

use super::page::{self, Placement, Screen, Theme};
use super::seed::*;
use super::signing::{self, AUTOTASK_RESOURCE_PARAM, AUTOTASK_TICKET_PARAM, TIMESTAMP_PARAM};
use super::{Incoming, Psa, PsaPermission, Shared, html_escape, json_response};

const PRODUCT: &str = "Autotask PSA";
/// The Insight iframe's height.
const INSIGHT_HEIGHT_PX: u32 = 360;
/// The first id given to a ticket note.
const FIRST_NOTE_ID: u64 = 30690000;

/// What a ticket note's `noteType` and `publish` numbers mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutotaskNoteKind {
    /// `noteType` of the notes Vouch writes.
    pub note_type: i64,
    /// `publish` of an internal note: notes with any other value count as not internal.
    pub publish: i64,
    /// How the host page labels such a note.
    pub label: &'static str,
}

/// The note Vouch writes: `noteType` 1, `publish` 1, shown as "Internal Only".
///
/// Unconfirmed: the reference leaves the meaning of the numbers open (the real picklists are
/// under `/TicketNotes/entityInformation/fields` of each Autotask instance). This is our
/// choice, kept here so it can change in one place.
pub const AUTOTASK_INTERNAL_NOTE: AutotaskNoteKind = AutotaskNoteKind {
    note_type: 1,
    publish: 1,
    label: "Internal Only",
};

pub(super) fn handle(shared: &Shared, incoming: Incoming) -> Response {
    let segments = incoming.segments();
    let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    match lower.as_slice() {
        ["ticket", _] if incoming.method == Method::GET => {
            ticket_screen(shared, &incoming, segments[1])
        }
        ["atservicesrest", "v1.0", "zoneinformation"] => {
            if incoming.method == Method::GET {
                zone_information(shared, &incoming)
            } else {
                errors(StatusCode::METHOD_NOT_ALLOWED, "Use GET.")
            }
        }
        ["atservicesrest", "v1.0", rest @ ..] => {
            match credentials(&incoming) {
                Credentials::Wrong => {
                    return errors(
                        StatusCode::UNAUTHORIZED,
                        "Authentication failed: the ApiIntegrationCode, UserName or Secret header is missing or wrong.",
                    );
                }
                Credentials::WrongIntegrationCode => {
                    return errors(
                        StatusCode::FORBIDDEN,
                        "The ApiIntegrationCode is not a valid integration code (API tracking identifier) for this API user.",
                    );
                }
                Credentials::Right => {}
            }
            let needs = match rest {
                ["tickets", _, "notes", ..] => Some(PsaPermission::TicketNotes),
                ["tickets", ..] => Some(PsaPermission::ReadTickets),
                ["contacts", ..] => Some(PsaPermission::ReadContacts),
                _ => None,
            };
            if needs.is_some_and(|p| shared.state().denies(Psa::Autotask, p)) {
                return errors(
                    StatusCode::FORBIDDEN,
                    "The logged in Resource does not have the adequate permissions to access this entity.",
                );
            }
            api(shared, &incoming, rest, &segments[2..])
        }
        _ => errors(
            StatusCode::NOT_FOUND,
            "The requested resource was not found.",
        ),
    }
}

fn zone_information(shared: &Shared, incoming: &Incoming) -> Response {
    let known = incoming
        .query_param("user")
        .is_some_and(|user| user.trim().eq_ignore_ascii_case(AUTOTASK_API_USER));
    if !known {
        return errors(
            StatusCode::NOT_FOUND,
            "Zone information could not be determined",
        );
    }
    json_response(
        StatusCode::OK,
        &json!({
            "zoneName": "Sandbox",
            "url": format!("{}/autotask/atservicesrest/", shared.base_url()),
            "webUrl": format!("{}/autotask/", shared.base_url()),
            "ci": 0,
        }),
    )
}

/// What the three headers come to.
enum Credentials {
    Right,
    /// The user or secret is wrong, or a header is missing: 401.
    Wrong,
    /// The right user and secret with an integration code that is not theirs: 403.
    WrongIntegrationCode,
}

fn credentials(incoming: &Incoming) -> Credentials {
    let user_ok = incoming
        .header("username")
        .is_some_and(|u| u.trim().eq_ignore_ascii_case(AUTOTASK_API_USER))
        && incoming.header("secret") == Some(AUTOTASK_API_SECRET);
    match incoming.header("apiintegrationcode").map(str::trim) {
        Some(_) if !user_ok => Credentials::Wrong,
        None => Credentials::Wrong,
        Some(code) if code == AUTOTASK_INTEGRATION_CODE => Credentials::Right,
        Some(_) => Credentials::WrongIntegrationCode,
    }
}

/// `rest`: lower-cased segments after `v1.0`; `original`: the same as sent.
fn api(shared: &Shared, incoming: &Incoming, rest: &[&str], original: &[&str]) -> Response {
    let id = original.get(1).copied().unwrap_or("");
    // Autotask answers a missing id with 200 and a null item.
    let item = |value: Option<Value>| {
        json_response(
            StatusCode::OK,
            &json!({ "item": value.unwrap_or(Value::Null) }),
        )
    };
    match (&incoming.method, rest) {
        (&Method::GET, ["version"]) => {
            json_response(StatusCode::OK, &json!({ "apiVersions": ["1.0"] }))
        }
        (&Method::GET, ["tickets", "query"]) => {
            // The sandbox reads `MaxRecords` of the search and ignores its filter.
            let max = incoming
                .query_param("search")
                .and_then(|s| serde_json::from_str::<Value>(s).ok())
                .and_then(|s| s["MaxRecords"].as_u64())
                .unwrap_or(500) as usize;
            let items: Vec<Value> = CONTACTS.iter().take(max).map(ticket_json).collect();
            json_response(
                StatusCode::OK,
                &json!({ "items": items, "pageDetails": { "count": items.len(), "requestCount": max, "prevPageUrl": null, "nextPageUrl": null } }),
            )
        }
        (&Method::GET, ["tickets", _]) => item(ticket(id).map(ticket_json)),
        (&Method::GET, ["contacts", _]) => item(
            parse_id(id)
                .and_then(|id| contact_by(|c| c.autotask_contact_id == id))
                .map(contact_json),
        ),
        (&Method::GET, ["resources", _]) => item(parse_id(id).and_then(resource_json)),
        (&Method::GET, ["companies", _]) => item(parse_id(id).and_then(company_json)),
        (&Method::POST, ["companies", "query"]) => match query_body(incoming) {
            Ok(query) => query_page(shared, Entity::Companies, query),
            Err(response) => *response,
        },
        (&Method::POST, ["contacts", "query"]) => match query_body(incoming) {
            Ok(query) => query_page(shared, Entity::Contacts, query),
            Err(response) => *response,
        },
        (&Method::GET, [entity @ ("companies" | "contacts"), "query", "next"]) => {
            let entity = if *entity == "companies" {
                Entity::Companies
            } else {
                Entity::Contacts
            };
            let paging = incoming
                .query_param("paging")
                .and_then(|p| serde_json::from_str::<Value>(p).ok());
            match paging.map(|p| parse_query(&p)) {
                Some(Ok(query)) => query_page(shared, entity, query),
                _ => errors(
                    StatusCode::BAD_REQUEST,
                    "The paging parameter is not valid.",
                ),
            }
        }
        (&Method::POST, ["tickets", _, "notes"]) => post_note(shared, incoming, id),
        (&Method::GET, ["tickets", _, "notes"]) => {
            let Some(contact) = ticket(id) else {
                return errors(
                    StatusCode::NOT_FOUND,
                    &format!("Ticket {id} does not exist."),
                );
            };
            let notes = shared
                .state()
                .ticket_notes(Psa::Autotask, contact.autotask_ticket_id);
            let items: Vec<Value> = notes
                .iter()
                .map(|n| {
                    json!({
                        "id": FIRST_NOTE_ID + n.id,
                        "ticketID": n.ticket_id,
                        "title": n.title,
                        "description": n.note.text,
                        "publish": if n.note.internal { AUTOTASK_INTERNAL_NOTE.publish } else { 0 },
                        "createDateTime": super::iso(n.note.created_at),
                    })
                })
                .collect();
            json_response(
                StatusCode::OK,
                &json!({ "items": items, "pageDetails": { "count": items.len(), "requestCount": 500, "prevPageUrl": null, "nextPageUrl": null } }),
            )
        }
        (_, ["tickets", ..] | ["contacts", ..] | ["resources", ..] | ["companies", ..]) => errors(
            StatusCode::METHOD_NOT_ALLOWED,
            "The requested resource does not support this http method.",
        ),
        _ => errors(
            StatusCode::NOT_FOUND,
            "The requested resource was not found.",
        ),
    }
}

fn ticket(id: &str) -> Option<&'static Contact> {
    parse_id(id).and_then(|id| contact_by(|c| c.autotask_ticket_id == id))
}

/// `POST Tickets/{id}/Notes` `{"title","description","noteType","publish"}` -> 200
/// `{"itemId":..}`.
fn post_note(shared: &Shared, incoming: &Incoming, id: &str) -> Response {
    let Some(contact) = ticket(id) else {
        return errors(
            StatusCode::NOT_FOUND,
            &format!("Ticket {id} does not exist."),
        );
    };
    if !incoming.is_json() {
        return errors(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json.",
        );
    }
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&incoming.body) else {
        return errors(
            StatusCode::BAD_REQUEST,
            "The request body is not a JSON object.",
        );
    };
    let text = |name: &str| {
        body.get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
    };
    let number = |name: &str| body.get(name).and_then(Value::as_i64);
    // Autotask reports business-rule failures as 500 with an errors list.
    let (Some(title), Some(description)) = (text("title"), text("description")) else {
        return errors(
            StatusCode::INTERNAL_SERVER_ERROR,
            "A ticket note requires a title and a description.",
        );
    };
    let (Some(note_type), Some(publish)) = (number("noteType"), number("publish")) else {
        return errors(
            StatusCode::INTERNAL_SERVER_ERROR,
            "A ticket note requires noteType and publish.",
        );
    };
    let internal = publish == AUTOTASK_INTERNAL_NOTE.publish;
    let kind = if internal {
        AUTOTASK_INTERNAL_NOTE.label.to_owned()
    } else {
        format!("Note type {note_type}, publish {publish}")
    };
    let note = shared.state().add_note(
        Psa::Autotask,
        contact.autotask_ticket_id,
        Some(title.to_owned()),
        &kind,
        description.to_owned(),
        internal,
    );
    json_response(
        StatusCode::OK,
        &json!({ "itemId": FIRST_NOTE_ID + note.id }),
    )
}

fn ticket_json(contact: &Contact) -> Value {
    json!({
        "id": contact.autotask_ticket_id,
        "ticketNumber": format!("T20261125.{:04}", contact.ordinal()),
        "title": contact.summary,
        "description": contact.description,
        "contactID": contact.autotask_contact_id,
        "companyID": contact.company.autotask_id,
        "assignedResourceID": AUTOTASK_RESOURCE_ID,
        "assignedResourceRoleID": 29682833,
        "queueID": 29682833,
        "status": 1,
        "priority": 2,
        "createDate": "2026-11-25T09:12:00Z",
    })
}

fn contact_json(contact: &Contact) -> Value {
    let email = |index: usize| contact.emails.get(index).copied();
    json!({
        "id": contact.autotask_contact_id,
        "firstName": contact.first_name,
        "lastName": contact.last_name,
        "emailAddress": email(0),
        "emailAddress2": email(1),
        "emailAddress3": email(2),
        "phone": null,
        "alternatePhone": null,
        "mobilePhone": contact.mobile,
        "companyID": contact.company.autotask_id,
        "isActive": 1,
    })
}

fn resource_json(id: u64) -> Option<Value> {
    let (first, last, email, user_name) = match id {
        AUTOTASK_RESOURCE_ID => ("Jordan", "Tech", TECHNICIAN_EMAIL, "jtech"),
        AUTOTASK_API_RESOURCE_ID => ("Vouch", "API", AUTOTASK_API_USER, AUTOTASK_API_USER),
        _ => return None,
    };
    Some(json!({
        "id": id,
        "firstName": first,
        "lastName": last,
        "email": email,
        "userName": user_name,
        "isActive": true,
    }))
}

fn company_json(id: u64) -> Option<Value> {
    let company = COMPANIES.iter().find(|c| c.autotask_id == id)?;
    Some(json!({
        "id": id,
        "companyName": company.name,
        "companyType": 1,
        "isActive": true,
        "webAddress": company.website,
    }))
}

/// The largest (and default) `MaxRecords` of a query.
const MAX_RECORDS: u64 = 500;

#[derive(Clone, Copy)]
enum Entity {
    Companies,
    Contacts,
}

/// One condition of a query's `filter`.
struct Condition {
    op: String,
    field: String,
    value: Value,
}

/// A query: its conditions (all must hold), page size, and how many items earlier pages had.
struct Query {
    filter: Vec<Condition>,
    max_records: u64,
    skip: u64,
    /// The body as received, carried in the next page's URL.
    raw: Value,
}

fn query_body(incoming: &Incoming) -> Result<Query, Box<Response>> {
    if !incoming.is_json() {
        return Err(Box::new(errors(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json.",
        )));
    }
    let body: Value = serde_json::from_slice(&incoming.body).map_err(|_| {
        Box::new(errors(
            StatusCode::BAD_REQUEST,
            "The request body is not a JSON object.",
        ))
    })?;
    parse_query(&body)
}

/// `{"filter": [{"op", "field", "value"}..], "MaxRecords": n}` (plus the sandbox's own
/// `skip` in a next page's `paging`). `IncludeFields` is accepted; every field is sent.
fn parse_query(body: &Value) -> Result<Query, Box<Response>> {
    let bad = |why: &str| Box::new(errors(StatusCode::INTERNAL_SERVER_ERROR, why));
    let filter = body["filter"]
        .as_array()
        .filter(|f| !f.is_empty())
        .ok_or_else(|| bad("A query needs a filter."))?
        .iter()
        .map(|c| {
            Ok(Condition {
                op: c["op"]
                    .as_str()
                    .ok_or_else(|| bad("A filter condition needs an op."))?
                    .to_ascii_lowercase(),
                field: c["field"]
                    .as_str()
                    .ok_or_else(|| bad("A filter condition needs a field."))?
                    .to_owned(),
                value: c["value"].clone(),
            })
        })
        .collect::<Result<Vec<_>, Box<Response>>>()?;
    let max_records = match &body["MaxRecords"] {
        Value::Null => MAX_RECORDS,
        value => value
            .as_u64()
            .filter(|n| (1..=MAX_RECORDS).contains(n))
            .ok_or_else(|| bad("MaxRecords must be between 1 and 500."))?,
    };
    let mut raw = body.clone();
    let skip = raw["skip"].as_u64().unwrap_or(0);
    if let Some(object) = raw.as_object_mut() {
        object.remove("skip");
    }
    Ok(Query {
        filter,
        max_records,
        skip,
        raw,
    })
}

/// Whether `item` meets every condition (`eq`, `contains`, `gte`, `gt`, `exist`; text
/// compared ignoring case).
fn meets(item: &Value, filter: &[Condition]) -> Result<bool, Box<Response>> {
    for condition in filter {
        // Autotask's field names are not case-sensitive.
        let field = item.as_object().and_then(|o| {
            o.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&condition.field))
                .map(|(_, v)| v)
        });
        let Some(field) = field else {
            return Err(Box::new(errors(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("Unknown field {}.", condition.field),
            )));
        };
        let text = |v: &Value| match v {
            Value::String(s) => s.to_lowercase(),
            other => other.to_string(),
        };
        let holds = match condition.op.as_str() {
            "eq" => text(field) == text(&condition.value),
            "contains" => text(field).contains(&text(&condition.value)),
            "gte" | "gt" => match (field.as_f64(), condition.value.as_f64()) {
                (Some(a), Some(b)) if condition.op == "gte" => a >= b,
                (Some(a), Some(b)) => a > b,
                _ => false,
            },
            "exist" => !field.is_null(),
            other => {
                return Err(Box::new(errors(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("The sandbox does not know the op {other}."),
                )));
            }
        };
        if !holds {
            return Ok(false);
        }
    }
    Ok(true)
}

/// One page of a query, in id order, with `pageDetails` (its `nextPageUrl` a GET of
/// `{Entity}/query/next?paging=..`, null on the last page).
fn query_page(shared: &Shared, entity: Entity, query: Query) -> Response {
    let all: Vec<Value> = match entity {
        Entity::Companies => COMPANIES
            .iter()
            .filter_map(|c| company_json(c.autotask_id))
            .collect(),
        Entity::Contacts => CONTACTS.iter().map(contact_json).collect(),
    };
    let mut matching = Vec::new();
    for item in all {
        match meets(&item, &query.filter) {
            Ok(true) => matching.push(item),
            Ok(false) => {}
            Err(response) => return *response,
        }
    }
    let items: Vec<Value> = matching
        .iter()
        .skip(query.skip as usize)
        .take(query.max_records as usize)
        .cloned()
        .collect();
    let shown = query.skip + items.len() as u64;
    let next = (shown < matching.len() as u64).then(|| {
        let mut paging = query.raw.clone();
        paging["skip"] = json!(shown);
        let name = match entity {
            Entity::Companies => "Companies",
            Entity::Contacts => "Contacts",
        };
        format!(
            "{}/autotask/atservicesrest/v1.0/{name}/query/next?{}",
            shared.base_url(),
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("paging", &paging.to_string())
                .finish()
        )
    });
    json_response(
        StatusCode::OK,
        &json!({
            "items": items,
            "pageDetails": {
                "count": items.len(),
                "requestCount": query.max_records,
                "prevPageUrl": null,
                "nextPageUrl": next,
            },
        }),
    )
}

fn errors(status: StatusCode, message: &str) -> Response {
    json_response(status, &json!({ "errors": [message] }))
}

/// `GET /autotask/ticket/{id}[?post=1]`: the ticket screen with the Vouch Insight, loaded
/// with GET, or with a form POST when `post=1`.
fn ticket_screen(shared: &Shared, incoming: &Incoming, id: &str) -> Response {
    let Some(contact) = ticket(id) else {
        return page::unknown_ticket(PRODUCT, id);
    };
    let by_post = incoming.query_param("post") == Some("1");
    let (pod_url, notes, secret) = {
        let state = shared.state();
        (
            state.pod_urls.autotask.clone(),
            state.ticket_notes(Psa::Autotask, contact.autotask_ticket_id),
            state.autotask_insight_secret(),
        )
    };
    let (panel_html, script) = if pod_url.trim().is_empty() {
        (
            page::missing_pod(PRODUCT, "no pod URL is set"),
            String::new(),
        )
    } else {
        let params = [
            (
                AUTOTASK_TICKET_PARAM,
                contact.autotask_ticket_id.to_string(),
            ),
            (AUTOTASK_RESOURCE_PARAM, AUTOTASK_RESOURCE_ID.to_string()),
            (TIMESTAMP_PARAM, Utc::now().timestamp().to_string()),
        ];
        match signing::signed_pod(pod_url.trim(), &params, &secret) {
            Err(reason) => (
                page::missing_pod(PRODUCT, &format!("the pod URL is {reason}")),
                String::new(),
            ),
            Ok(load) if by_post => {
                let fields: String = load
                    .params
                    .iter()
                    .map(|(name, value)| {
                        format!(
                            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                            html_escape(name),
                            html_escape(value)
                        )
                    })
                    .collect();
                (
                    format!(
                        "<form id=\"vouch-insight-form\" method=\"post\" action=\"{action}\" target=\"vouch-pod\" enctype=\"application/x-www-form-urlencoded\">{fields}</form>\n\
                         <iframe id=\"vouch-pod\" name=\"vouch-pod\" title=\"Vouch\" src=\"about:blank\" style=\"height: {INSIGHT_HEIGHT_PX}px\"></iframe>",
                        action = html_escape(&load.action),
                    ),
                    "<script>document.getElementById(\"vouch-insight-form\").submit();</script>"
                        .to_owned(),
                )
            }
            Ok(load) => (
                format!(
                    "<iframe id=\"vouch-pod\" name=\"vouch-pod\" title=\"Vouch\" src=\"{src}\" style=\"height: {INSIGHT_HEIGHT_PX}px\"></iframe>",
                    src = html_escape(&load.url),
                ),
                String::new(),
            ),
        }
    };
    page::render(Screen {
        product: PRODUCT,
        theme: Theme {
            bar: "#1b3a5c",
            accent: "#e0701b",
        },
        heading: format!("T20261125.{:04}", contact.ordinal()),
        contact,
        company: contact.company.name.to_owned(),
        status: "New",
        notes,
        note_text: |note| note.note.text.clone(),
        placement: Placement::Side,
        panel_title: "Insights: Vouch",
        panel_html,
        script,
    })
}
