//! Graph's JSON batching: `POST /v1.0/$batch` (or `/beta/$batch`) carrying up to 20 requests,
//! written from Microsoft's "Combine multiple HTTP requests using JSON batching" page.
//!
//! - The body is `{"requests": [..]}`; each request has a string `id` (unique in the batch),
//!   a `method`, a `url` relative to the batch's version (`/users/x` or `users/x`, never
//!   `/v1.0/..` nor an absolute URL), and optionally `headers`, a JSON `body` (which needs a
//!   `Content-Type` header) and `dependsOn` (ids of requests that must succeed first).
//! - The answer is `200 {"responses": [..]}`, one `{id, status, headers, body}` per request,
//!   **in any order** (this sandbox shuffles them, so a client must match by id). Each inner
//!   answer has its own status: a 403 or a 429 (with its `Retry-After` header) inside an
//!   envelope that is itself 200. A request whose dependency failed answers 424.
//! - A malformed envelope (not JSON, no `requests`, more than 20, duplicate or missing ids,
//!   an unknown `dependsOn`) is a 400 of the whole batch; so is a missing or bad token (401).
//!
//! The inner requests are carried out exactly as single calls are (same routes, permissions
//! and error bodies). Only the `$batch` itself is recorded in the request log, but faults
//! injected for a path apply to the inner requests with that path too (as
//! `/graph/{version}/{url}`), so a test can refuse the roles read inside a batch.

use std::collections::{HashMap, HashSet};

use poem::Response;
use poem::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use rand::seq::SliceRandom;
use serde_json::{Map, Value, json};

use super::graph::{self, GraphError, Reply};
use super::{Incoming, Service, Shared, json_response, new_guid};
use crate::sandbox::Fault;
use crate::sandbox::server::{HANG_FOR, decode_segment, form_pairs};

/// The most requests one batch may carry.
pub const MAX_BATCH_REQUESTS: usize = 20;

/// One inner request as the batch names it.
struct InnerRequest {
    id: String,
    method: String,
    url: String,
    headers: Map<String, Value>,
    body: Option<Value>,
    depends_on: Vec<String>,
}

/// Answers `POST /{version}/$batch`; `incoming` has its `/graph` prefix stripped already.
pub(super) async fn handle(shared: &Shared, incoming: Incoming) -> Response {
    let request_id = new_guid();
    let client_request_id = graph::client_request_id(&incoming);
    let version = incoming.segments.first().cloned().unwrap_or_default();
    let refused = |err: GraphError| {
        json_response(
            err.status,
            &graph::error_body(&err, &request_id, &client_request_id),
        )
    };
    // The batch itself needs a valid token: its requests are carried out with it.
    if let Err(err) = graph::authorize(&shared.state(), &incoming) {
        return refused(err);
    }
    let requests = match parse(&incoming.body) {
        Ok(requests) => requests,
        Err(err) => return refused(err),
    };
    let mut answers: Vec<Value> = Vec::with_capacity(requests.len());
    let mut succeeded: HashMap<String, bool> = HashMap::new();
    // Dependencies first: `parse` checked that each names a request of this batch, and a
    // request runs once all it depends on have answered (a cycle answers 424).
    let mut remaining: Vec<InnerRequest> = requests;
    while !remaining.is_empty() {
        let ready = remaining
            .iter()
            .position(|r| r.depends_on.iter().all(|d| succeeded.contains_key(d)));
        let Some(index) = ready else {
            for request in remaining.drain(..) {
                answers.push(failed_dependency(&request.id));
            }
            break;
        };
        let request = remaining.remove(index);
        let answer = if request.depends_on.iter().all(|d| succeeded[d]) {
            match carry_out(shared, &incoming, &version, &request).await {
                Some(answer) => answer,
                // A hanging fault: the whole batch never answers.
                None => {
                    tokio::time::sleep(HANG_FOR).await;
                    return crate::sandbox::plain(StatusCode::GATEWAY_TIMEOUT, "");
                }
            }
        } else {
            failed_dependency(&request.id)
        };
        let ok = answer["status"]
            .as_u64()
            .is_some_and(|status| (200..300).contains(&status));
        succeeded.insert(request.id.clone(), ok);
        answers.push(answer);
    }
    // Microsoft: "responses to the batched requests might appear in a different order".
    answers.shuffle(&mut rand::thread_rng());
    let mut response = json_response(StatusCode::OK, &json!({ "responses": answers }));
    if let Ok(value) = request_id.parse() {
        response.headers_mut().insert("request-id", value);
    }
    response
}

/// The envelope's requests, or why the batch as a whole is refused.
fn parse(body: &[u8]) -> Result<Vec<InnerRequest>, GraphError> {
    let invalid = |why: &str| GraphError::bad_request(format!("Invalid batch payload: {why}"));
    let Ok(Value::Object(envelope)) = serde_json::from_slice::<Value>(body) else {
        return Err(GraphError::bad_request(
            "Unable to read JSON request payload. Please ensure Content-Type header is set and \
             payload is of valid JSON format.",
        ));
    };
    let Some(Value::Array(items)) = envelope.get("requests") else {
        return Err(invalid("the 'requests' array is missing"));
    };
    if items.is_empty() {
        return Err(invalid("the batch has no requests"));
    }
    if items.len() > MAX_BATCH_REQUESTS {
        return Err(invalid(&format!(
            "the number of batch requests exceeds the limit of {MAX_BATCH_REQUESTS}"
        )));
    }
    let mut requests = Vec::with_capacity(items.len());
    let mut ids = HashSet::new();
    for item in items {
        let text = |name: &str| item.get(name).and_then(Value::as_str).map(str::to_owned);
        let id = text("id")
            .filter(|id| !id.is_empty())
            .ok_or_else(|| invalid("each request needs a string 'id'"))?;
        if !ids.insert(id.clone()) {
            return Err(invalid(&format!("the id '{id}' is used twice")));
        }
        let method = text("method").ok_or_else(|| invalid("each request needs a 'method'"))?;
        let url = text("url").ok_or_else(|| invalid("each request needs a 'url'"))?;
        let headers = match item.get("headers") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(headers)) => headers.clone(),
            Some(_) => return Err(invalid("'headers' must be an object")),
        };
        let depends_on = match item.get("dependsOn") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(ids)) => ids
                .iter()
                .map(|id| id.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| invalid("'dependsOn' must list request ids"))?,
            Some(_) => return Err(invalid("'dependsOn' must be an array")),
        };
        requests.push(InnerRequest {
            id,
            method: method.to_ascii_uppercase(),
            url,
            headers,
            body: item.get("body").filter(|b| !b.is_null()).cloned(),
            depends_on,
        });
    }
    for request in &requests {
        if let Some(unknown) = request.depends_on.iter().find(|d| !ids.contains(*d)) {
            return Err(invalid(&format!(
                "request '{}' depends on '{unknown}', which is not in the batch",
                request.id
            )));
        }
    }
    Ok(requests)
}

/// One inner request carried out as a single call would be, with the batch's token.
/// `None` when an injected fault makes it hang.
async fn carry_out(
    shared: &Shared,
    outer: &Incoming,
    version: &str,
    request: &InnerRequest,
) -> Option<Value> {
    let inner = match inner_incoming(outer, version, request) {
        Ok(inner) => inner,
        Err(err) => return Some(error_answer(&request.id, &err)),
    };
    let mut fault = shared.take_fault(Service::Graph, inner.method.as_str(), &inner.path);
    if let Some(Fault::Delayed(wait)) = fault {
        tokio::time::sleep(wait).await;
        fault = None;
    }
    let mut carried_out = None;
    if let Some(Fault::AfterHandling(lost)) = fault {
        carried_out = Some(answer_of(&request.id, route(shared, &inner)));
        fault = Some(*lost);
    }
    match fault {
        None => Some(carried_out.unwrap_or_else(|| answer_of(&request.id, route(shared, &inner)))),
        Some(Fault::Status {
            status,
            body,
            retry_after,
        }) => {
            let mut headers = Map::new();
            let body = match serde_json::from_str::<Value>(&body) {
                Ok(json) => {
                    headers.insert("Content-Type".into(), "application/json".into());
                    json
                }
                Err(_) => {
                    headers.insert("Content-Type".into(), "text/plain".into());
                    Value::String(body)
                }
            };
            if let Some(seconds) = retry_after {
                headers.insert("Retry-After".into(), seconds.to_string().into());
            }
            Some(json!({
                "id": request.id,
                "status": status,
                "headers": headers,
                "body": body,
            }))
        }
        // Only as a lost answer (a delay up front was waited out above): a 504 after the wait.
        Some(Fault::Delayed(wait)) => {
            tokio::time::sleep(wait).await;
            Some(json!({ "id": request.id, "status": 504, "headers": {} }))
        }
        Some(Fault::Hang | Fault::AfterHandling(_)) => None,
    }
}

fn route(shared: &Shared, inner: &Incoming) -> graph::GraphResult {
    let mut state = shared.state();
    graph::route(&mut state, inner)
}

/// The inner request as the single-call routes read it: the batch's version before its URL,
/// the batch's headers (its token) under the request's own.
fn inner_incoming(
    outer: &Incoming,
    version: &str,
    request: &InnerRequest,
) -> Result<Incoming, GraphError> {
    let url = request.url.trim();
    if url.contains("://") {
        return Err(GraphError::bad_request(
            "The URL of a batch request must be relative to the batch's version.",
        ));
    }
    let (path, raw_query) = url.split_once('?').unwrap_or((url, ""));
    let mut segments = vec![version.to_owned()];
    segments.extend(
        path.split('/')
            .filter(|segment| !segment.is_empty())
            .map(decode_segment),
    );
    if matches!(segments.get(1).map(String::as_str), Some("v1.0" | "beta")) {
        return Err(GraphError::bad_request(
            "The URL of a batch request must not name a version: it is the batch's.",
        ));
    }
    let method = Method::from_bytes(request.method.as_bytes())
        .map_err(|_| GraphError::bad_request("Invalid HTTP method."))?;
    let mut headers = HeaderMap::new();
    for (name, value) in outer.headers.iter() {
        if !matches!(name.as_str(), "content-length" | "content-type") {
            headers.insert(name.clone(), value.clone());
        }
    }
    for (name, value) in &request.headers {
        let (Ok(name), Some(Ok(value))) = (
            HeaderName::from_bytes(name.as_bytes()),
            value.as_str().map(HeaderValue::from_str),
        ) else {
            return Err(GraphError::bad_request("Invalid request header."));
        };
        headers.insert(name, value);
    }
    let body = match &request.body {
        None => Vec::new(),
        Some(_) if !headers.contains_key("content-type") => {
            return Err(GraphError::bad_request(
                "A batch request with a body needs a Content-Type header.",
            ));
        }
        Some(body) => body.to_string().into_bytes(),
    };
    Ok(Incoming {
        method,
        // As a single call's path is recorded and matched by faults.
        path: format!("/graph/{}", segments.join("/")),
        segments,
        query: form_pairs(raw_query.as_bytes()),
        raw_query: raw_query.to_owned(),
        headers,
        body,
    })
}

/// A route's answer as an inner answer.
fn answer_of(id: &str, result: graph::GraphResult) -> Value {
    match result {
        Ok(Reply::Json(status, body)) => json!({
            "id": id,
            "status": status.as_u16(),
            "headers": {"Content-Type": "application/json"},
            "body": body,
        }),
        Ok(Reply::NoContent) => json!({ "id": id, "status": 204, "headers": {} }),
        Err(err) => error_answer(id, &err),
    }
}

fn error_answer(id: &str, err: &GraphError) -> Value {
    json!({
        "id": id,
        "status": err.status.as_u16(),
        "headers": {"Content-Type": "application/json"},
        "body": graph::error_body(err, &new_guid(), &new_guid()),
    })
}

fn failed_dependency(id: &str) -> Value {
    let err = GraphError::new(
        StatusCode::FAILED_DEPENDENCY,
        "BadRequest",
        "The dependent request failed.",
    );
    error_answer(id, &err)
}
