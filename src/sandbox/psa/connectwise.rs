//! ConnectWise PSA (Manage) under `/cw/`: the REST API (`/cw/v4_6_release/apis/3.0/...`),
//! member verification (`system/myMembers/info` by cookies), the company info lookup, and
//! the service ticket screen with a Hosted API pod.

use poem::Response;
use poem::http::{Method, StatusCode};
use serde_json::{Value, json};

use super::page::{self, Placement, Screen, Theme};
use super::seed::*;
use super::signing;
use super::{
    ALPHANUMERIC, Incoming, Psa, PsaPermission, Shared, StoredNote, html_escape, iso,
    json_response, pair, random_string,
};

const PRODUCT: &str = "ConnectWise PSA";
/// The pod height configured under Manage Hosted API.
const POD_HEIGHT_PX: u32 = 300;
/// The cookie value the reference says `myMembers/info` takes.
const MEMBER_CONTEXT_COOKIE: &str = "web";
/// A member seeded in the sandbox's company.
struct Member {
    rec_id: u64,
    identifier: &'static str,
    first_name: &'static str,
    last_name: &'static str,
    email: &'static str,
}

const MEMBERS: [Member; 2] = [
    Member {
        rec_id: CW_MEMBER_REC_ID,
        identifier: CW_MEMBER_ID,
        first_name: "Jordan",
        last_name: "Tech",
        email: CW_MEMBER_EMAIL,
    },
    Member {
        rec_id: CW_OTHER_MEMBER_REC_ID,
        identifier: CW_OTHER_MEMBER_ID,
        first_name: "Avery",
        last_name: "Smith",
        email: "avery@northwind.example",
    },
];

/// The API member the integration's keys belong to (author of notes posted through REST).
const API_MEMBER: (u64, &str, &str) = (190, "VouchAPI", "Vouch API");

pub(super) fn handle(shared: &Shared, incoming: Incoming) -> Response {
    let segments = incoming.segments();
    match segments.as_slice() {
        ["ticket", id] if incoming.method == Method::GET => ticket_screen(shared, id),
        ["login", "companyinfo", company] if incoming.method == Method::GET => {
            company_info(shared, company)
        }
        [code_base, "apis", "3.0", rest @ ..] if *code_base == CW_CODE_BASE => {
            api(shared, &incoming, rest)
        }
        _ => not_found("The requested resource was not found."),
    }
}

fn api(shared: &Shared, incoming: &Incoming, rest: &[&str]) -> Response {
    if !client_id_ok(incoming) {
        return unauthorized("A valid clientId header is required.");
    }
    if let ["system", "myMembers", "info"] = rest {
        return if incoming.method == Method::GET {
            my_member_info(shared, incoming)
        } else {
            method_not_allowed()
        };
    }
    if !basic_auth_ok(incoming) {
        return unauthorized(
            "Authentication failed: check the company id, public key and private key.",
        );
    }
    let needs = match rest {
        ["service", "tickets", _, "notes", ..] => Some(PsaPermission::TicketNotes),
        ["service", "tickets", ..] => Some(PsaPermission::ReadTickets),
        ["company", "contacts", ..] => Some(PsaPermission::ReadContacts),
        _ => None,
    };
    if needs.is_some_and(|p| shared.state().denies(Psa::ConnectWise, p)) {
        return json_response(
            StatusCode::FORBIDDEN,
            &json!({
                "code": "Forbidden",
                "message": "You do not have permission to access this resource.",
            }),
        );
    }
    match (&incoming.method, rest) {
        (&Method::GET, ["system", "info"]) => json_response(
            StatusCode::OK,
            &json!({
                "version": "v2025.1.12345",
                "isCloud": true,
                "serverTimeZone": "Pacific Standard Time",
                "cloudRegion": "NA",
            }),
        ),
        (&Method::GET, ["service", "tickets"]) => {
            let tickets: Vec<Value> = page(incoming).map(ticket_json).collect();
            json_response(StatusCode::OK, &Value::Array(tickets))
        }
        // Every contact (the connection test's read); with `conditions`, one company's.
        (&Method::GET, ["company", "contacts"]) if incoming.query_param("conditions").is_none() => {
            let contacts: Vec<Value> = page(incoming).map(contact_json).collect();
            json_response(StatusCode::OK, &Value::Array(contacts))
        }
        (&Method::GET, ["service", "tickets", id]) => match ticket(id) {
            Some(contact) => json_response(StatusCode::OK, &ticket_json(contact)),
            None => not_found(&format!("Ticket Id {id} not found")),
        },
        (&Method::GET, ["company", "contacts", id]) => {
            match parse_id(id).and_then(|id| contact_by(|c| c.cw_contact_id == id)) {
                Some(contact) => json_response(StatusCode::OK, &contact_json(contact)),
                None => not_found(&format!("Contact Id {id} not found")),
            }
        }
        (&Method::GET, ["company", "companies"]) => list_companies(incoming),
        (&Method::GET, ["company", "contacts"]) => list_contacts(incoming),
        (&Method::POST, ["service", "tickets", id, "notes"]) => post_note(shared, incoming, id),
        (&Method::GET, ["service", "tickets", id, "notes"]) => match ticket(id) {
            Some(contact) => {
                let notes = shared
                    .state()
                    .ticket_notes(Psa::ConnectWise, contact.cw_ticket_id);
                let notes: Vec<Value> = notes.iter().map(note_json).collect();
                json_response(StatusCode::OK, &Value::Array(notes))
            }
            None => not_found(&format!("Ticket Id {id} not found")),
        },
        (
            _,
            ["service", "tickets", ..] | ["company", "contacts", ..] | ["company", "companies", ..],
        ) => method_not_allowed(),
        _ => not_found("The requested resource was not found."),
    }
}

fn ticket(id: &str) -> Option<&'static Contact> {
    parse_id(id).and_then(|id| contact_by(|c| c.cw_ticket_id == id))
}

/// The contacts (and so the tickets, one each) of the page `page`/`pageSize` asks (25 a page
/// by default, as ConnectWise; at most 1000).
fn page(incoming: &Incoming) -> impl Iterator<Item = &'static Contact> {
    let size = incoming
        .query_param("pageSize")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(25)
        .clamp(1, 1000);
    let page = incoming
        .query_param("page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    CONTACTS.iter().skip((page - 1) * size).take(size)
}

fn client_id_ok(incoming: &Incoming) -> bool {
    incoming
        .header("clientid")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(CW_CLIENT_ID))
}

/// `Basic base64("{companyId}+{publicKey}:{privateKey}")`; the company id is compared
/// without regard to case, the keys exactly.
fn basic_auth_ok(incoming: &Incoming) -> bool {
    let Some(decoded) = incoming.basic() else {
        return false;
    };
    let Some((user, private_key)) = decoded.split_once(':') else {
        return false;
    };
    let Some((company, public_key)) = user.split_once('+') else {
        return false;
    };
    company.eq_ignore_ascii_case(CW_COMPANY_ID)
        && public_key == CW_PUBLIC_KEY
        && private_key == CW_PRIVATE_KEY
}

/// Member verification: cookies `companyName`, `memberHash`, `memberId`, `memberContext=web`.
fn my_member_info(shared: &Shared, incoming: &Incoming) -> Response {
    let cookies = incoming.cookies();
    let company = pair(&cookies, "companyName").unwrap_or("");
    let member_id = pair(&cookies, "memberId").unwrap_or("");
    let hash = pair(&cookies, "memberHash").unwrap_or("");
    let context = pair(&cookies, "memberContext").unwrap_or("");
    if hash.is_empty() || member_id.is_empty() || context != MEMBER_CONTEXT_COOKIE {
        return unauthorized("Member authentication failed.");
    }
    let valid = shared.state().member_hashes.iter().any(|issued| {
        issued.hash == hash
            && issued.member_id.eq_ignore_ascii_case(member_id)
            && issued.company_id.eq_ignore_ascii_case(company)
    });
    let member = MEMBERS
        .iter()
        .find(|m| m.identifier.eq_ignore_ascii_case(member_id));
    match member {
        Some(member) if valid => json_response(
            StatusCode::OK,
            &json!({
                "id": member.rec_id,
                "identifier": member.identifier,
                "firstName": member.first_name,
                "lastName": member.last_name,
                "fullName": format!("{} {}", member.first_name, member.last_name),
                // MemberInfo's one address field (it has no `officeEmail`).
                "defaultEmail": member.email,
                "inactiveFlag": false,
                "licenseClass": "F",
                "timeZone": { "id": 1, "name": "GMT-8/Pacific Time: US & Canada" },
                "_info": { "image_href": "" },
            }),
        ),
        _ => unauthorized("Member authentication failed."),
    }
}

/// `GET /login/companyinfo/{companyId}`: which code base the company runs on (no
/// authentication).
fn company_info(shared: &Shared, company: &str) -> Response {
    if !company.eq_ignore_ascii_case(CW_COMPANY_ID) {
        return json_response(StatusCode::OK, &Value::Null);
    }
    json_response(
        StatusCode::OK,
        &json!({
            "CompanyName": "Northwind IT",
            "Codebase": format!("{CW_CODE_BASE}/"),
            "VersionCode": "v2025.1",
            "VersionNumber": "v4.6.0",
            "CompanyID": CW_COMPANY_ID,
            "IsCloud": true,
            "SiteUrl": format!("{}/cw", shared.host()),
        }),
    )
}

fn post_note(shared: &Shared, incoming: &Incoming, id: &str) -> Response {
    let Some(contact) = ticket(id) else {
        return not_found(&format!("Ticket Id {id} not found"));
    };
    if !incoming.is_json() {
        return bad_request("Content-Type must be application/json.", None);
    }
    let Ok(body) = serde_json::from_slice::<Value>(&incoming.body) else {
        return bad_request("The request body is not valid JSON.", None);
    };
    let Some(body) = body.as_object() else {
        return bad_request("The request body must be a ticketNote object.", None);
    };
    let text = body.get("text").and_then(Value::as_str).unwrap_or("");
    if text.trim().is_empty() {
        return bad_request("ticketNote object is invalid", Some("text"));
    }
    let flag = |name: &str| body.get(name).and_then(Value::as_bool).unwrap_or(false);
    let internal_analysis = flag("internalAnalysisFlag");
    let detail = flag("detailDescriptionFlag");
    let resolution = flag("resolutionFlag");
    if !(internal_analysis || detail || resolution) {
        return bad_request("ticketNote object is invalid", Some("internalAnalysisFlag"));
    }
    let kind = match (detail, internal_analysis, resolution) {
        (true, _, _) => "Discussion",
        (false, true, _) => "Internal Analysis",
        _ => "Resolution",
    };
    let internal = internal_analysis && !detail && !resolution;
    let note = shared.state().add_note(
        Psa::ConnectWise,
        contact.cw_ticket_id,
        None,
        kind,
        text.to_owned(),
        internal,
    );
    json_response(StatusCode::CREATED, &note_json(&note))
}

fn note_json(note: &StoredNote) -> Value {
    let (member_id, member_identifier, member_name) = API_MEMBER;
    json!({
        "id": note.id,
        "ticketId": note.ticket_id,
        "text": note.note.text,
        "detailDescriptionFlag": note.kind == "Discussion",
        "internalAnalysisFlag": note.kind == "Internal Analysis",
        "resolutionFlag": note.kind == "Resolution",
        "internalFlag": note.note.internal,
        "externalFlag": !note.note.internal,
        "member": { "id": member_id, "identifier": member_identifier, "name": member_name },
        "dateCreated": iso(note.note.created_at),
        "createdBy": member_identifier,
        "_info": { "lastUpdated": iso(note.note.created_at), "updatedBy": member_identifier },
    })
}

fn company_json(company: &Company) -> Value {
    json!({ "id": company.cw_id, "identifier": company.cw_identifier, "name": company.name })
}

/// ConnectWise's default and largest page sizes.
const DEFAULT_PAGE_SIZE: usize = 25;
const MAX_PAGE_SIZE: usize = 1000;

/// `page` (1-based) and `pageSize` of a list request, or a 400.
fn paging(incoming: &Incoming) -> Result<(usize, usize), Box<Response>> {
    let number = |name: &str, default: usize| match incoming.query_param(name) {
        None => Ok(default),
        Some(value) => value
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                Box::new(bad_request(
                    &format!("{name} must be a positive number."),
                    None,
                ))
            }),
    };
    Ok((
        number("page", 1)?,
        number("pageSize", DEFAULT_PAGE_SIZE)?.min(MAX_PAGE_SIZE),
    ))
}

/// One page of `items`.
fn page_of<T: Clone>(items: &[T], page: usize, page_size: usize) -> Vec<T> {
    items
        .iter()
        .skip((page - 1).saturating_mul(page_size))
        .take(page_size)
        .cloned()
        .collect()
}

/// A `conditions` string literal (`"..."`, with `\\` and `\"` escapes) at the start of
/// `text`: its value and what follows it.
fn string_literal(text: &str) -> Option<(String, &str)> {
    let rest = text.strip_prefix('"')?;
    let mut value = String::new();
    let mut chars = rest.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '\\' => value.push(chars.next()?.1),
            '"' => return Some((value, &rest[at + 1..])),
            other => value.push(other),
        }
    }
    None
}

/// Whether `value` matches a `like` pattern (`%` any run of characters), ignoring case.
fn like(value: &str, pattern: &str) -> bool {
    let value = value.to_lowercase();
    let pattern = pattern.to_lowercase();
    let parts: Vec<&str> = pattern.split('%').collect();
    let mut at = 0;
    for (index, part) in parts.iter().enumerate() {
        if part.is_empty() {
            continue;
        }
        if index == 0 {
            if !value.starts_with(part) {
                return false;
            }
            at = part.len();
        } else if index == parts.len() - 1 {
            return value.len() >= at + part.len() && value[at..].ends_with(part);
        } else {
            match value[at..].find(part) {
                Some(found) => at += found + part.len(),
                None => return false,
            }
        }
    }
    parts.len() > 1 || value == pattern
}

/// `GET /company/companies[?conditions=name like "%x%"][&orderBy=name asc][&page=][&pageSize=]`:
/// a JSON array of companies (the `fields` parameter is accepted; every field is sent).
fn list_companies(incoming: &Incoming) -> Response {
    let (page, page_size) = match paging(incoming) {
        Ok(paging) => paging,
        Err(response) => return *response,
    };
    let mut companies: Vec<&Company> = COMPANIES.to_vec();
    if let Some(conditions) = incoming.query_param("conditions") {
        let parsed = conditions
            .trim()
            .strip_prefix("name like ")
            .and_then(|rest| string_literal(rest.trim_start()))
            .filter(|(_, after)| after.trim().is_empty());
        let Some((pattern, _)) = parsed else {
            return bad_request(
                "The conditions are not valid (the sandbox knows `name like \"...\"`).",
                None,
            );
        };
        companies.retain(|c| like(c.name, &pattern));
    }
    match incoming.query_param("orderBy").map(str::trim) {
        None => {}
        Some(order) if order.eq_ignore_ascii_case("name asc") || order == "name" => {
            companies.sort_by_key(|c| c.name.to_lowercase());
        }
        Some(order) if order.eq_ignore_ascii_case("id asc") || order == "id" => {}
        Some(_) => return bad_request("orderBy is not valid.", None),
    }
    let rows: Vec<Value> = page_of(&companies, page, page_size)
        .into_iter()
        .map(|c| {
            let mut row = company_json(c);
            row["status"] = json!({ "id": 1, "name": "Active" });
            row["deletedFlag"] = json!(false);
            if let Some(website) = c.website {
                row["website"] = json!(website);
            }
            row
        })
        .collect();
    json_response(StatusCode::OK, &Value::Array(rows))
}

/// `GET /company/contacts?conditions=company/id=N[&page=][&pageSize=]`: the company's
/// contacts, with their `communicationItems`.
fn list_contacts(incoming: &Incoming) -> Response {
    let (page, page_size) = match paging(incoming) {
        Ok(paging) => paging,
        Err(response) => return *response,
    };
    let company_id = incoming.query_param("conditions").and_then(|conditions| {
        let (field, value) = conditions.split_once('=')?;
        (field.trim() == "company/id").then(|| parse_id(value.trim()))?
    });
    let Some(company_id) = company_id else {
        return bad_request(
            "The conditions are not valid (the sandbox knows `company/id=N`).",
            None,
        );
    };
    let contacts = contacts_of(|c| c.cw_id == company_id);
    let rows: Vec<Value> = page_of(&contacts, page, page_size)
        .into_iter()
        .map(contact_json)
        .collect();
    json_response(StatusCode::OK, &Value::Array(rows))
}

fn ticket_json(contact: &Contact) -> Value {
    let mut ticket = json!({
        "id": contact.cw_ticket_id,
        "summary": contact.summary,
        "recordType": "ServiceTicket",
        "board": { "id": 1, "name": "Help Desk" },
        "status": { "id": 16, "name": "New" },
        "priority": { "id": 8, "name": "Priority 3 - Normal Response" },
        "company": company_json(contact.company),
        "contact": { "id": contact.cw_contact_id, "name": contact.name() },
        "contactName": contact.name(),
        "contactEmailAddress": contact.email(),
        "owner": { "id": CW_MEMBER_REC_ID, "identifier": CW_MEMBER_ID, "name": TECHNICIAN_NAME },
        "initialDescription": contact.description,
        "_info": { "lastUpdated": "2026-11-25T09:12:00Z", "updatedBy": CW_MEMBER_ID },
    });
    // ConnectWise leaves empty fields out of its JSON.
    if let (Some(phone), Some(map)) = (contact.mobile, ticket.as_object_mut()) {
        map.insert("contactPhoneNumber".to_owned(), json!(phone));
    }
    ticket
}

fn contact_json(contact: &Contact) -> Value {
    let mut items = Vec::new();
    for (index, email) in contact.emails.iter().enumerate() {
        items.push(json!({
            "id": items.len() + 1,
            "type": { "id": 1, "name": "Email" },
            "value": email,
            "defaultFlag": index == 0,
            "communicationType": "Email",
        }));
    }
    if let Some(mobile) = contact.mobile {
        items.push(json!({
            "id": items.len() + 1,
            "type": { "id": 4, "name": "Mobile" },
            "value": mobile,
            "defaultFlag": true,
            "communicationType": "Phone",
        }));
    }
    json!({
        "id": contact.cw_contact_id,
        "firstName": contact.first_name,
        "lastName": contact.last_name,
        "company": company_json(contact.company),
        "inactiveFlag": false,
        "communicationItems": items,
        "_info": { "lastUpdated": "2026-03-12T09:30:00Z", "updatedBy": CW_MEMBER_ID },
    })
}

fn error(status: StatusCode, code: &str, message: &str, errors: Value) -> Response {
    json_response(
        status,
        &json!({ "code": code, "message": message, "errors": errors }),
    )
}

fn not_found(message: &str) -> Response {
    error(StatusCode::NOT_FOUND, "NotFound", message, Value::Null)
}

fn unauthorized(message: &str) -> Response {
    json_response(
        StatusCode::UNAUTHORIZED,
        &json!({ "code": "Unauthorized", "message": message }),
    )
}

fn method_not_allowed() -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        "The requested method is not allowed for this resource.",
        Value::Null,
    )
}

fn bad_request(message: &str, field: Option<&str>) -> Response {
    let errors = match field {
        Some(field) => json!([{
            "code": "InvalidObject",
            "message": format!("The {field} field is required or invalid."),
            "resource": "ticketNote",
            "field": field,
        }]),
        None => Value::Null,
    };
    error(StatusCode::BAD_REQUEST, "InvalidObject", message, errors)
}

/// `GET /cw/ticket/{id}`: the service ticket screen with the Vouch pod.
fn ticket_screen(shared: &Shared, id: &str) -> Response {
    let Some(contact) = ticket(id) else {
        return page::unknown_ticket(PRODUCT, id);
    };
    let (pod_url, notes, hash) = {
        let mut state = shared.state();
        let hash = state.issue_member_hash(CW_MEMBER_ID);
        (
            state.pod_urls.connectwise.clone(),
            state.ticket_notes(Psa::ConnectWise, contact.cw_ticket_id),
            hash,
        )
    };
    let (panel_html, script) = if pod_url.trim().is_empty() {
        (
            page::missing_pod(PRODUCT, "no pod URL is set"),
            String::new(),
        )
    } else {
        match signing::connectwise_pod(pod_url.trim(), contact.cw_ticket_id) {
            Err(reason) => (
                page::missing_pod(PRODUCT, &format!("the pod URL is {reason}")),
                String::new(),
            ),
            Ok(load) => {
                let config = json!({
                    "podOrigin": load.origin,
                    "frameId": format!("pod_{}", random_string(12, ALPHANUMERIC)),
                    "memberAuthentication": {
                        "site": format!("{}/cw", shared.host()),
                        "companyid": CW_COMPANY_ID,
                        "memberid": CW_MEMBER_ID,
                        "memberHash": hash,
                        "memberContext": format!("ctx-{}", random_string(24, ALPHANUMERIC)),
                        "memberEmail": CW_MEMBER_EMAIL,
                        "codeBase": CW_CODE_BASE,
                    },
                    "screenObject": {
                        "screen": "ticket",
                        "id": contact.cw_ticket_id,
                        "hostedAs": "pod",
                    },
                });
                let panel = format!(
                    "<iframe id=\"vouch-pod\" name=\"vouch-pod\" title=\"Vouch\" src=\"{src}\" style=\"height: {POD_HEIGHT_PX}px\"></iframe>\n\
                     <p><button type=\"button\" id=\"hosted-api-save\">Save ticket</button></p><details class=\"log\"><summary>Hosted API messages</summary><ol id=\"hosted-api-log\"></ol></details>",
                    src = html_escape(&load.url),
                );
                let script = format!(
                    "<script type=\"application/json\" id=\"hosted-api-config\">{}</script>\n<script>{HOSTED_API_JS}</script>",
                    page::script_json(&config),
                );
                (panel, script)
            }
        }
    };
    page::render(Screen {
        product: PRODUCT,
        theme: Theme {
            bar: "#026cb6",
            accent: "#026cb6",
        },
        heading: format!("Service Ticket #{}", contact.cw_ticket_id),
        contact,
        company: format!(
            "{} ({})",
            contact.company.name, contact.company.cw_identifier
        ),
        status: "New",
        notes,
        note_text: |note| note.note.text.clone(),
        placement: Placement::Side,
        panel_title: "Vouch",
        panel_html,
        script,
    })
}

/// The parent side of the Manage Hosted API, as the reference describes it: only JSON
/// strings from the pod's window and origin are read; answers go to the pod's origin only.
const HOSTED_API_JS: &str = r#"
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("hosted-api-config").textContent);
  var frame = document.getElementById("vouch-pod");
  var log = document.getElementById("hosted-api-log");
  function note(text) {
    if (!log) { return; }
    var item = document.createElement("li");
    item.textContent = text;
    log.appendChild(item);
  }
  function send(message) {
    frame.contentWindow.postMessage(JSON.stringify(message), config.podOrigin);
  }
  // Events Manage sends the pod (`onLoad`, `beforeSave`), each waiting for the pod's
  // acknowledgement `{event, _id, result: "success"}`. Those acknowledged are listed, in
  // order, in the log's `data-acknowledged` (visible to tests while the log is closed).
  var nextEventId = 1;
  var awaiting = {};
  function sendEvent(name) {
    var id = nextEventId++;
    awaiting[id] = name;
    note(name + " (_id " + id + ") -> sent");
    send({ event: name, _id: id, data: config.screenObject });
  }
  window.vouchSandboxSave = function () { sendEvent("beforeSave"); };
  var save = document.getElementById("hosted-api-save");
  if (save) { save.addEventListener("click", window.vouchSandboxSave); }
  window.addEventListener("message", function (event) {
    if (event.source !== frame.contentWindow || event.origin !== config.podOrigin) { return; }
    if (typeof event.data !== "string") { note("ignored a message that is not a JSON string"); return; }
    var message;
    try { message = JSON.parse(event.data); } catch (e) { note("ignored a message that is not JSON"); return; }
    if (!message || typeof message !== "object") { return; }
    if (typeof message.event === "string") {
      var id = message._id;
      if (awaiting[id] === message.event && message.result === "success") {
        delete awaiting[id];
        var done = log ? (log.dataset.acknowledged || "") : "";
        if (log) { log.dataset.acknowledged = done ? done + "," + message.event : message.event; }
        note(message.event + " (_id " + id + ") -> acknowledged");
      } else {
        note("ignored an acknowledgement of no event waiting for one");
      }
      return;
    }
    if (message.message === "ready") {
      note("ready -> MessageFrameID");
      send({ MessageFrameID: config.frameId });
      return;
    }
    if (typeof message.hosted_request !== "string") {
      note("ignored a message without hosted_request");
      return;
    }
    if (message.frameID !== config.frameId) {
      note("ignored " + message.hosted_request + ": wrong frameID");
      return;
    }
    switch (message.hosted_request) {
      case "getMemberAuthentication":
        note("getMemberAuthentication -> answered");
        send({ response: "getmemberauthentication", data: config.memberAuthentication });
        // The screen has loaded for this pod: Manage says so after the handshake.
        sendEvent("onLoad");
        break;
      case "getScreenObject":
        note("getScreenObject -> answered");
        send({ response: "getscreenobject", data: config.screenObject });
        break;
      case "refreshScreen":
        note("refreshScreen -> reloading");
        window.location.reload();
        break;
      default:
        note(message.hosted_request + " -> not implemented by the sandbox");
    }
  });
})();
"#;
