//! HaloPSA under `/halo/`: the authorisation server (`/halo/auth/token`), the API
//! (`/halo/api/...`, Bearer) and the ticket screen with the Vouch custom tab.

use chrono::Utc;
use poem::Response;
use poem::http::{Method, StatusCode};
use serde_json::{Value, json};

use super::page::{self, Placement, Screen, Theme};
use super::seed::*;
use super::signing::{self, HALO_AGENT_PARAM, HALO_TICKET_PARAM, TIMESTAMP_PARAM};
use super::{
    ALPHANUMERIC, Incoming, Psa, PsaPermission, Shared, StoredNote, html_escape, iso,
    json_response, pair, random_string,
};

const PRODUCT: &str = "HaloPSA";
/// How long an access token lives.
const TOKEN_LIFETIME_SECONDS: i64 = 3600;
/// Tokens kept at most (expired ones are dropped first), so a long demo does not grow.
const MAX_TOKENS: usize = 1_000;
/// The tab's iframe height.
const TAB_HEIGHT_PX: u32 = 520;
/// The action outcome Vouch writes its notes with.
pub const HALO_PRIVATE_NOTE_OUTCOME: &str = "Private Note";

pub(super) fn handle(shared: &Shared, incoming: Incoming) -> Response {
    let segments = incoming.segments();
    let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    match lower.as_slice() {
        ["ticket", _] if incoming.method == Method::GET => ticket_screen(shared, segments[1]),
        ["auth", "token"] => {
            if incoming.method == Method::POST {
                token(shared, &incoming)
            } else {
                message(StatusCode::METHOD_NOT_ALLOWED, "Use POST.")
            }
        }
        ["api", rest @ ..] => {
            if !bearer_ok(shared, &incoming) {
                return Response::builder()
                    .status(StatusCode::UNAUTHORIZED)
                    .header("WWW-Authenticate", "Bearer")
                    .body(());
            }
            api(shared, &incoming, rest, &segments[1..])
        }
        _ => message(StatusCode::NOT_FOUND, "Not found."),
    }
}

/// `rest`: lower-cased segments after `api`; `original`: the same as sent.
fn api(shared: &Shared, incoming: &Incoming, rest: &[&str], original: &[&str]) -> Response {
    let id = original.get(1).copied().unwrap_or("");
    let needs = match rest {
        ["tickets", ..] => Some(PsaPermission::ReadTickets),
        ["users", ..] => Some(PsaPermission::ReadContacts),
        ["actions", ..] => Some(PsaPermission::TicketNotes),
        _ => None,
    };
    if needs.is_some_and(|p| shared.state().denies(Psa::HaloPsa, p)) {
        return message(
            StatusCode::FORBIDDEN,
            "The API application does not have permission to access this resource.",
        );
    }
    match (&incoming.method, rest) {
        (&Method::GET, ["tickets"]) => {
            let count = incoming
                .query_param("count")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(50);
            let tickets: Vec<Value> = CONTACTS.iter().take(count).map(ticket_json).collect();
            json_response(
                StatusCode::OK,
                &json!({ "record_count": CONTACTS.len(), "tickets": tickets }),
            )
        }
        (&Method::GET, ["tickets", _]) => match ticket(id) {
            Some(contact) => json_response(StatusCode::OK, &ticket_json(contact)),
            None => message(StatusCode::NOT_FOUND, &format!("Ticket {id} not found.")),
        },
        (&Method::GET, ["users", _]) => {
            match parse_id(id).and_then(|id| contact_by(|c| c.halo_user_id == id)) {
                Some(contact) => json_response(StatusCode::OK, &user_json(contact)),
                None => message(StatusCode::NOT_FOUND, &format!("User {id} not found.")),
            }
        }
        (&Method::GET, ["client"]) => list_clients(incoming),
        (&Method::GET, ["users"]) => list_users(incoming),
        (&Method::GET, ["agent", "me"]) => json_response(StatusCode::OK, &agent_json()),
        (&Method::GET, ["agent", _]) => {
            if parse_id(id) == Some(HALO_AGENT_ID) {
                json_response(StatusCode::OK, &agent_json())
            } else {
                message(StatusCode::NOT_FOUND, &format!("Agent {id} not found."))
            }
        }
        (&Method::POST, ["actions"]) => post_actions(shared, incoming),
        (&Method::GET, ["actions"]) => {
            let Some(contact) = incoming.query_param("ticket_id").and_then(ticket) else {
                return message(StatusCode::BAD_REQUEST, "ticket_id is required.");
            };
            let notes = shared
                .state()
                .ticket_notes(Psa::HaloPsa, contact.halo_ticket_id);
            let actions: Vec<Value> = notes.iter().map(action_json).collect();
            json_response(
                StatusCode::OK,
                &json!({ "record_count": actions.len(), "actions": actions }),
            )
        }
        (_, ["tickets", ..] | ["users", ..] | ["agent", ..] | ["actions", ..] | ["client", ..]) => {
            message(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.")
        }
        _ => message(StatusCode::NOT_FOUND, "Not found."),
    }
}

fn ticket(id: &str) -> Option<&'static Contact> {
    parse_id(id).and_then(|id| contact_by(|c| c.halo_ticket_id == id))
}

/// `POST /auth/token` (form): `grant_type=client_credentials`, `client_id`,
/// `client_secret`, `scope=all`. A `tenant` query parameter (hosted Halo) is accepted and
/// ignored.
fn token(shared: &Shared, incoming: &Incoming) -> Response {
    let form = incoming.form();
    if pair(&form, "grant_type") != Some("client_credentials") {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({ "error": "unsupported_grant_type" }),
        );
    }
    let client_ok = pair(&form, "client_id") == Some(HALO_API_CLIENT_ID)
        && pair(&form, "client_secret") == Some(HALO_API_CLIENT_SECRET);
    if !client_ok {
        return json_response(
            StatusCode::UNAUTHORIZED,
            &json!({ "error": "invalid_client" }),
        );
    }
    let scope_ok = pair(&form, "scope").is_some_and(|s| s.split_whitespace().any(|s| s == "all"));
    if !scope_ok {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({ "error": "invalid_scope" }),
        );
    }
    let token = random_string(48, ALPHANUMERIC);
    let now = Utc::now();
    {
        let mut state = shared.state();
        state.halo_tokens.retain(|(_, expires)| *expires > now);
        if state.halo_tokens.len() >= MAX_TOKENS {
            state.halo_tokens.remove(0);
        }
        state.halo_tokens.push((
            token.clone(),
            now + chrono::Duration::seconds(TOKEN_LIFETIME_SECONDS),
        ));
    }
    json_response(
        StatusCode::OK,
        &json!({
            "scope": "all",
            "token_type": "Bearer",
            "access_token": token,
            "expires_in": TOKEN_LIFETIME_SECONDS,
        }),
    )
}

fn bearer_ok(shared: &Shared, incoming: &Incoming) -> bool {
    let Some(token) = incoming.bearer() else {
        return false;
    };
    let now = Utc::now();
    shared
        .state()
        .halo_tokens
        .iter()
        .any(|(known, expires)| known == token && *expires > now)
}

/// `POST /api/Actions`: a JSON array of actions. Answers 201 with the created action, or an
/// array of them when more than one was posted.
fn post_actions(shared: &Shared, incoming: &Incoming) -> Response {
    if !incoming.is_json() {
        return message(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json.",
        );
    }
    let Ok(Value::Array(actions)) = serde_json::from_slice::<Value>(&incoming.body) else {
        return message(
            StatusCode::BAD_REQUEST,
            "The body must be a JSON array of actions.",
        );
    };
    if actions.is_empty() {
        return message(StatusCode::BAD_REQUEST, "No actions were posted.");
    }
    let mut parsed = Vec::new();
    for action in &actions {
        let ticket_id = match action.get("ticket_id") {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => parse_id(s),
            _ => None,
        };
        let Some(contact) = ticket_id.and_then(|id| contact_by(|c| c.halo_ticket_id == id)) else {
            return message(
                StatusCode::NOT_FOUND,
                &format!(
                    "Ticket {} not found.",
                    action.get("ticket_id").unwrap_or(&Value::Null)
                ),
            );
        };
        let note = action
            .get("note_html")
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .or_else(|| action.get("note").and_then(Value::as_str))
            .unwrap_or("");
        if note.trim().is_empty() {
            return message(StatusCode::BAD_REQUEST, "note_html (or note) is required.");
        }
        let outcome = action
            .get("outcome")
            .and_then(Value::as_str)
            .unwrap_or("Note")
            .to_owned();
        let hidden = action
            .get("hiddenfromuser")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        parsed.push((contact.halo_ticket_id, outcome, note.to_owned(), hidden));
    }
    let created: Vec<Value> = {
        let mut state = shared.state();
        parsed
            .into_iter()
            .map(|(ticket_id, outcome, note, hidden)| {
                let stored = state.add_note(Psa::HaloPsa, ticket_id, None, &outcome, note, hidden);
                action_json(&stored)
            })
            .collect()
    };
    let body = match <[Value; 1]>::try_from(created) {
        Ok([single]) => single,
        Err(many) => Value::Array(many),
    };
    json_response(StatusCode::CREATED, &body)
}

fn action_json(note: &StoredNote) -> Value {
    json!({
        "id": note.id,
        "ticket_id": note.ticket_id,
        "outcome": note.kind,
        "note": html_to_text(&note.note.text),
        "note_html": note.note.text,
        "hiddenfromuser": note.note.internal,
        "sendemail": false,
        "who": TECHNICIAN_NAME,
        "who_agentid": HALO_AGENT_ID,
        "datetime": iso(note.note.created_at),
    })
}

fn ticket_json(contact: &Contact) -> Value {
    json!({
        "id": contact.halo_ticket_id,
        "summary": contact.summary,
        "details": contact.description,
        "status_id": 1,
        "tickettype_id": 1,
        "user_id": contact.halo_user_id,
        "user_name": contact.name(),
        "client_id": contact.company.halo_client_id,
        "client_name": contact.company.name,
        "site_id": contact.company.halo_site_id,
        "site_name": "Main",
        "agent_id": HALO_AGENT_ID,
        "team": "1st Line Support",
    })
}

fn user_json(contact: &Contact) -> Value {
    let email = |index: usize| contact.emails.get(index).copied().unwrap_or("");
    let mobile = contact.mobile.unwrap_or("");
    json!({
        "id": contact.halo_user_id,
        "name": contact.name(),
        "firstname": contact.first_name,
        "surname": contact.last_name,
        "emailaddress": email(0),
        "email2": email(1),
        "email3": email(2),
        "phonenumber_preferred": mobile,
        "phonenumber": "",
        "mobilenumber": mobile,
        "mobilenumber2": "",
        "client_id": contact.company.halo_client_id,
        "client_name": contact.company.name,
        "site_id": contact.company.halo_site_id,
        "site_name": "Main",
        "inactive": false,
    })
}

/// Halo's `pageinate=true` paging: `page_size` (default 50) and `page_no` (1-based); without
/// `pageinate`, every record.
fn paging(incoming: &Incoming, total: usize) -> Result<(usize, usize), Box<Response>> {
    let paginate = incoming
        .query_param("pageinate")
        .is_some_and(|p| p.eq_ignore_ascii_case("true"));
    if !paginate {
        return Ok((0, total));
    }
    let number = |name: &str, default: usize| match incoming.query_param(name) {
        None => Ok(default),
        Some(value) => value
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                Box::new(message(
                    StatusCode::BAD_REQUEST,
                    &format!("{name} must be a positive number."),
                ))
            }),
    };
    let size = number("page_size", 50)?;
    let page = number("page_no", 1)?;
    Ok(((page - 1).saturating_mul(size), size))
}

/// `GET /api/Client[?search=][&order=name][&pageinate=true&page_size=&page_no=]` ->
/// `{record_count, clients}`; `search` matches part of the name, ignoring case.
fn list_clients(incoming: &Incoming) -> Response {
    let mut clients = companies_named(incoming.query_param("search").unwrap_or(""));
    if incoming
        .query_param("order")
        .is_some_and(|o| o.eq_ignore_ascii_case("name"))
    {
        clients.sort_by_key(|c| c.name.to_lowercase());
    }
    let (skip, take) = match paging(incoming, clients.len()) {
        Ok(paging) => paging,
        Err(response) => return *response,
    };
    let rows: Vec<Value> = clients
        .iter()
        .skip(skip)
        .take(take)
        .map(|c| {
            json!({
                "id": c.halo_client_id,
                "name": c.name,
                "website": c.website.unwrap_or(""),
                "inactive": false,
                "toplevel_id": 1,
                "toplevel_name": "Customers",
            })
        })
        .collect();
    json_response(
        StatusCode::OK,
        &json!({ "record_count": clients.len(), "clients": rows }),
    )
}

/// `GET /api/Users?client_id=N[&pageinate=true&page_size=&page_no=]` ->
/// `{record_count, users}`.
fn list_users(incoming: &Incoming) -> Response {
    let Some(client_id) = incoming.query_param("client_id").and_then(parse_id) else {
        return message(StatusCode::BAD_REQUEST, "client_id is required.");
    };
    let users = contacts_of(|c| c.halo_client_id == client_id);
    let (skip, take) = match paging(incoming, users.len()) {
        Ok(paging) => paging,
        Err(response) => return *response,
    };
    let rows: Vec<Value> = users
        .iter()
        .skip(skip)
        .take(take)
        .map(|c| user_json(c))
        .collect();
    json_response(
        StatusCode::OK,
        &json!({ "record_count": users.len(), "users": rows }),
    )
}

fn agent_json() -> Value {
    json!({
        "id": HALO_AGENT_ID,
        "name": TECHNICIAN_NAME,
        "firstname": "Jordan",
        "surname": "Tech",
        "email": TECHNICIAN_EMAIL,
        "isdisabled": false,
        "team": "1st Line Support",
    })
}

fn message(status: StatusCode, text: &str) -> Response {
    json_response(status, &json!({ "message": text }))
}

/// `GET /halo/ticket/{id}`: the ticket screen with the Vouch tab open.
fn ticket_screen(shared: &Shared, id: &str) -> Response {
    let Some(contact) = ticket(id) else {
        return page::unknown_ticket(PRODUCT, id);
    };
    let (pod_url, notes, secret) = {
        let state = shared.state();
        (
            state.pod_urls.halopsa.clone(),
            state.ticket_notes(Psa::HaloPsa, contact.halo_ticket_id),
            state.halo_tab_secret(),
        )
    };
    let panel_html = if pod_url.trim().is_empty() {
        page::missing_pod(PRODUCT, "no pod URL is set")
    } else {
        let params = [
            (HALO_TICKET_PARAM, contact.halo_ticket_id.to_string()),
            (HALO_AGENT_PARAM, HALO_AGENT_ID.to_string()),
            (TIMESTAMP_PARAM, Utc::now().timestamp().to_string()),
        ];
        match signing::signed_pod(pod_url.trim(), &params, &secret) {
            Ok(load) => format!(
                "<iframe id=\"vouch-pod\" name=\"vouch-pod\" title=\"Vouch\" src=\"{src}\" style=\"height: {TAB_HEIGHT_PX}px\"></iframe>",
                src = html_escape(&load.url),
            ),
            Err(reason) => page::missing_pod(PRODUCT, &format!("the pod URL is {reason}")),
        }
    };
    page::render(Screen {
        product: PRODUCT,
        theme: Theme {
            bar: "#3d2c8d",
            accent: "#5b3fc4",
        },
        heading: format!("Ticket {}", contact.halo_ticket_id),
        contact,
        company: format!("{} / Main", contact.company.name),
        status: "New",
        notes,
        note_text: |note| html_to_text(&note.note.text),
        placement: Placement::Tab,
        panel_title: "Vouch",
        panel_html,
        script: String::new(),
    })
}

/// Halo renders `note_html`; the sandbox shows its text instead (line breaks kept, tags
/// dropped, common entities decoded), which the page then escapes.
fn html_to_text(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        text.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('>') else {
            text.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let tag = rest[start + 1..start + end]
            .trim_start_matches('/')
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        if matches!(tag.as_str(), "br" | "p" | "div" | "li" | "tr")
            && !text.ends_with('\n')
            && !text.is_empty()
        {
            text.push('\n');
        }
        rest = &rest[start + end + 1..];
    }
    text.push_str(rest);
    text.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::html_to_text;

    #[test]
    fn note_html_is_shown_as_text() {
        assert_eq!(
            html_to_text("<p>Verified &amp; reset</p><p>By <b>Jordan</b></p>"),
            "Verified & reset\nBy Jordan"
        );
        assert_eq!(html_to_text("a &lt;script&gt; b"), "a <script> b");
        assert_eq!(html_to_text("x <unclosed"), "x <unclosed");
    }
}
