//! The SMS provider sandbox: a local server speaking Twilio's Messages API, so that the
//! tests and `vouch demo` exercise the real [`crate::sms::TwilioSms`] client without the
//! internet, plus an "outbox" page that stands in for the user's phone.
//!
//! | route                                                      | what                         |
//! |------------------------------------------------------------|------------------------------|
//! | `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`     | send (Basic auth, form)      |
//! | `GET /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json`| fetch a sent message         |
//! | `GET /outbox[?to=+12065550101]`                             | the HTML outbox (not counted)|
//!
//! Every request under `/2010-04-01/` is an "API request": counted and subject to injected
//! faults before anything else. The outbox page is not, so a browser watching it cannot
//! use up a fault meant for Vouch.
//!
//! Built on the sandboxes' skeleton (`server.rs`): the messages are its state, the faults its
//! fault rules (one rule for every API path), the request count its request log.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use poem::http::{Method, StatusCode};
use poem::{Request, Response};
use serde_json::json;

use crate::sandbox::server::{self, HANG_FOR, Incoming, pair};
use crate::sandbox::{html_escape, html_response, json_response};

/// The sandbox account's SID (`AC` and 32 hex digits, as Twilio's).
pub const SANDBOX_ACCOUNT_SID: &str = "AC5a9d0c3e7b1f4a2c8e6d0b9f1a3c5e7d";
/// The sandbox account's auth token (32 hex digits, as Twilio's).
pub const SANDBOX_AUTH_TOKEN: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
/// The only sender the sandbox account owns: Twilio's documented magic test number.
pub const SANDBOX_FROM_NUMBER: &str = "+15005550006";

/// Request bodies larger than this are refused unread (a real Messages body is well under
/// 2 KiB).
const MAX_BODY_BYTES: usize = 64 * 1024;
/// Twilio's limit on a message body, in characters.
const MAX_BODY_CHARS: usize = 1600;
/// Messages kept (oldest dropped first), so a long demo does not grow without end.
const MAX_MESSAGES: usize = 10_000;
/// How often the outbox page reloads itself.
const REFRESH_SECONDS: u32 = 2;
/// Every API path starts with this.
const API_VERSION: &str = "2010-04-01";

/// One message accepted by the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SandboxSms {
    /// `SM` and 32 hex digits.
    pub sid: String,
    /// As the client sent it (E.164).
    pub to: String,
    pub from: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

/// A failure to answer the next API requests with, whatever they ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmsFault {
    /// A Twilio error object with this HTTP status, code and message, and a `Retry-After`
    /// header (seconds) when set.
    Status {
        status: u16,
        code: u32,
        message: String,
        retry_after: Option<u64>,
    },
    /// Never answer (the handler waits an hour): for client timeouts.
    Hang,
}

/// A running SMS sandbox. Cheap to clone: every clone drives the same server.
///
/// The server task lives as long as the tokio runtime that called [`SmsSandbox::start`].
#[derive(Clone)]
pub struct SmsSandbox {
    shared: Arc<Shared>,
}

/// What the server task and the handles share: the messages, and the faults to inject into
/// API requests (whatever their path: the service key is `()`).
type Shared = server::Shared<State, (), SmsFault>;

#[derive(Default)]
struct State {
    /// Oldest first.
    messages: VecDeque<SandboxSms>,
    /// E.164 -> the Twilio error code messages to it are refused with.
    unreachable: HashMap<String, u32>,
}

impl State {
    /// The latest accepted message to `e164`.
    fn last_message_to(&self, e164: &str) -> Option<SandboxSms> {
        self.messages.iter().rev().find(|m| m.to == e164).cloned()
    }
}

impl SmsFault {
    /// The Twilio error the faulted request is answered with (after an hour, for
    /// [`SmsFault::Hang`]).
    async fn answer(self) -> Response {
        match self {
            SmsFault::Hang => {
                tokio::time::sleep(HANG_FOR).await;
                twilio_error(StatusCode::GATEWAY_TIMEOUT, 20500, "Hung up".into())
            }
            SmsFault::Status {
                status,
                code,
                message,
                retry_after,
            } => {
                // Only final statuses: a 1xx cannot end an exchange.
                let status = StatusCode::from_u16(status)
                    .ok()
                    .filter(|s| s.as_u16() >= 200)
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let mut response = twilio_error(status, code, message);
                if let Some(seconds) = retry_after
                    && let Ok(value) = seconds.to_string().parse()
                {
                    response.headers_mut().insert("Retry-After", value);
                }
                response
            }
        }
    }
}

impl SmsSandbox {
    /// Binds `127.0.0.1:0` and serves on a tokio task.
    pub async fn start() -> std::io::Result<SmsSandbox> {
        let shared = server::start("SMS", State::default(), handle).await?;
        Ok(SmsSandbox { shared })
    }

    /// `http://127.0.0.1:PORT/`: stands for `https://api.twilio.com/` (`sms.api_url`).
    pub fn api_url(&self) -> String {
        format!("{}/", self.shared.base_url())
    }

    /// The account SID the sandbox accepts ([`SANDBOX_ACCOUNT_SID`]).
    pub fn account_sid(&self) -> String {
        SANDBOX_ACCOUNT_SID.to_owned()
    }

    /// The auth token the sandbox accepts ([`SANDBOX_AUTH_TOKEN`]).
    pub fn auth_token(&self) -> String {
        SANDBOX_AUTH_TOKEN.to_owned()
    }

    /// The only `From` the sandbox accepts ([`SANDBOX_FROM_NUMBER`]).
    pub fn from_number(&self) -> String {
        SANDBOX_FROM_NUMBER.to_owned()
    }

    /// The outbox page; add `?to=+12065550101` to show one number's messages only.
    pub fn outbox_url(&self) -> String {
        format!("{}/outbox", self.shared.base_url())
    }

    /// Every accepted message, oldest first.
    pub fn messages(&self) -> Vec<SandboxSms> {
        self.shared.state().messages.iter().cloned().collect()
    }

    /// The accepted messages whose `To` is exactly `e164`, oldest first.
    pub fn messages_to(&self, e164: &str) -> Vec<SandboxSms> {
        self.shared
            .state()
            .messages
            .iter()
            .filter(|m| m.to == e164)
            .cloned()
            .collect()
    }

    /// The latest accepted message to `e164`.
    pub fn last_message_to(&self, e164: &str) -> Option<SandboxSms> {
        self.shared.state().last_message_to(e164)
    }

    /// The latest message to `e164`, waiting up to `timeout` for one if none has arrived
    /// yet. A message that arrived before the call counts: callers that need a *new* one
    /// should compare with [`SmsSandbox::messages_to`] first.
    pub async fn wait_for_message_to(&self, e164: &str, timeout: Duration) -> Option<SandboxSms> {
        self.shared
            .wait_for(timeout, |state| state.last_message_to(e164))
            .await
    }

    /// Makes the next `times` API requests (whatever their path) fail with `fault`. Faults
    /// injected earlier are used up first. Faulted requests are still counted.
    pub fn inject_fault(&self, fault: SmsFault, times: usize) {
        self.shared.inject_fault((), "", fault, times);
    }

    /// Messages to `e164` are refused from now on with Twilio error `twilio_code` (HTTP 400),
    /// e.g. 21614 (not a mobile number), 21610 (opted out), 21612 (unreachable), 21408
    /// (region not enabled).
    pub fn set_unreachable(&self, e164: &str, twilio_code: u32) {
        self.shared
            .state()
            .unreachable
            .insert(e164.to_owned(), twilio_code);
    }

    /// How many API requests arrived (faulted and refused ones included; not the outbox).
    pub fn request_count(&self) -> usize {
        self.shared.received()
    }
}

/// Every request: the outbox page, else an API request (counted, faulted, authenticated).
async fn handle(shared: Arc<Shared>, mut req: Request) -> Response {
    // Twilio names the path as sent in its 404 message.
    let path = req.uri().path().to_owned();
    let mut incoming = Incoming::head(&req);
    if incoming.segments.first().map(String::as_str) != Some(API_VERSION) {
        return match (&incoming.method, incoming.segments().as_slice()) {
            (&Method::GET | &Method::HEAD, ["outbox"]) => outbox_page(&shared, &incoming),
            _ => not_found(&path),
        };
    }
    if let Some(fault) = shared.record(&incoming, (), true) {
        return fault.answer().await;
    }

    if !authorized(&incoming) {
        let mut response = twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate".into());
        if let Ok(value) = "Basic realm=\"Twilio API\"".parse() {
            response.headers_mut().insert("WWW-Authenticate", value);
        }
        return response;
    }

    incoming.strip_prefix();
    let method = incoming.method.clone();
    let segments = incoming.segments.clone();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (&method, segments.as_slice()) {
        (&Method::POST, ["Accounts", sid, "Messages.json"]) if *sid == SANDBOX_ACCOUNT_SID => {
            if incoming.read_body(&mut req, MAX_BODY_BYTES).await.is_err() {
                return json_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &json!({
                        "code": null,
                        "message": format!("The request body is larger than {MAX_BODY_BYTES} bytes."),
                        "more_info": null,
                        "status": 413,
                    }),
                );
            }
            create_message(&shared, &incoming)
        }
        (&Method::GET, ["Accounts", sid, "Messages", file]) if *sid == SANDBOX_ACCOUNT_SID => {
            let found = file.strip_suffix(".json").and_then(|message_sid| {
                shared
                    .state()
                    .messages
                    .iter()
                    .find(|m| m.sid == message_sid)
                    .cloned()
            });
            match found {
                Some(message) => json_response(StatusCode::OK, &resource(&message, "delivered")),
                None => not_found(&path),
            }
        }
        (_, ["Accounts", sid, "Messages.json"]) if *sid == SANDBOX_ACCOUNT_SID => twilio_error(
            StatusCode::METHOD_NOT_ALLOWED,
            20004,
            "Method not allowed".into(),
        ),
        _ => not_found(&path),
    }
}

/// Whether the `Authorization` header is Basic with the sandbox's SID and token.
fn authorized(incoming: &Incoming) -> bool {
    let expected = format!("{SANDBOX_ACCOUNT_SID}:{SANDBOX_AUTH_TOKEN}");
    incoming
        .basic()
        .is_some_and(|credentials| credentials == expected)
}

/// `POST Messages.json`: validates the form as Twilio does, then stores the message.
fn create_message(shared: &Shared, incoming: &Incoming) -> Response {
    let form = incoming.form();
    let field = |name: &str| pair(&form, name).filter(|value| !value.is_empty());
    let bad = |code: u32, message: String| twilio_error(StatusCode::BAD_REQUEST, code, message);

    let Some(to) = field("To") else {
        return bad(21604, "A 'To' phone number is required.".into());
    };
    let Some(from) = field("From") else {
        return bad(21603, "A 'From' phone number is required.".into());
    };
    let Some(text) = field("Body") else {
        return bad(21602, "Message body is required.".into());
    };
    if !is_e164(to) {
        return bad(
            21211,
            format!("The 'To' number {to} is not a valid phone number."),
        );
    }
    if from != SANDBOX_FROM_NUMBER {
        return bad(
            21660,
            format!(
                "Mismatch between the 'From' number {from} and the account {SANDBOX_ACCOUNT_SID}"
            ),
        );
    }
    if text.chars().count() > MAX_BODY_CHARS {
        return bad(
            21617,
            "The concatenated message body exceeds the 1600 character limit.".into(),
        );
    }

    let message = {
        let mut state = shared.state();
        if let Some(&code) = state.unreachable.get(to) {
            drop(state);
            return bad(code, unreachable_message(code, to));
        }
        let message = SandboxSms {
            sid: format!("SM{}", uuid::Uuid::new_v4().simple()),
            to: to.to_owned(),
            from: from.to_owned(),
            body: text.to_owned(),
            created_at: Utc::now(),
        };
        if state.messages.len() >= MAX_MESSAGES {
            state.messages.pop_front();
        }
        state.messages.push_back(message.clone());
        message
    };
    shared.notify_changed();
    json_response(StatusCode::CREATED, &resource(&message, "queued"))
}

/// Twilio's wording for the refusals [`SmsSandbox::set_unreachable`] can simulate.
fn unreachable_message(code: u32, to: &str) -> String {
    match code {
        21211 => format!("The 'To' number {to} is not a valid phone number."),
        21408 => format!(
            "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {to}."
        ),
        21610 => "Attempt to send to unsubscribed recipient".to_owned(),
        21612 => "The 'To' phone number is not currently reachable via SMS.".to_owned(),
        21614 => format!("'To' number {to} is not a valid mobile number"),
        _ => "The message cannot be sent to this number.".to_owned(),
    }
}

/// `+` then 8 to 15 digits, the first not zero: the shape Twilio requires of `To`.
fn is_e164(value: &str) -> bool {
    value.strip_prefix('+').is_some_and(|digits| {
        (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    })
}

/// The Message resource as Twilio returns it.
fn resource(message: &SandboxSms, status: &str) -> serde_json::Value {
    let date = message.created_at.to_rfc2822();
    let uri = format!(
        "/{API_VERSION}/Accounts/{SANDBOX_ACCOUNT_SID}/Messages/{}.json",
        message.sid
    );
    let delivered = status == "delivered";
    json!({
        "account_sid": SANDBOX_ACCOUNT_SID,
        "api_version": API_VERSION,
        "body": message.body,
        "date_created": date,
        "date_sent": if delivered { json!(date) } else { json!(null) },
        "date_updated": date,
        "direction": "outbound-api",
        "error_code": null,
        "error_message": null,
        "from": message.from,
        "messaging_service_sid": null,
        "num_media": "0",
        "num_segments": segments(&message.body).to_string(),
        "price": null,
        "price_unit": "USD",
        "sid": message.sid,
        "status": status,
        "subresource_uris": {
            "media": format!(
                "/{API_VERSION}/Accounts/{SANDBOX_ACCOUNT_SID}/Messages/{}/Media.json",
                message.sid
            ),
        },
        "to": message.to,
        "uri": uri,
    })
}

/// GSM 03.38 basic character set: one septet each.
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// GSM 03.38 extension table: two septets each (escape and character).
const GSM7_EXTENDED: &str = "^{}\\[~]|€\u{c}";

/// How many SMS segments a body takes: GSM-7 when every character allows it (160 septets in
/// one message, 153 per part), otherwise UCS-2 (70 characters, 67 per part).
fn segments(body: &str) -> usize {
    let septets: Option<usize> = body
        .chars()
        .map(|c| {
            if GSM7_BASIC.contains(c) {
                Some(1)
            } else if GSM7_EXTENDED.contains(c) {
                Some(2)
            } else {
                None
            }
        })
        .sum();
    let (units, single, part) = match septets {
        Some(septets) => (septets, 160, 153),
        // UTF-16 code units: characters outside the BMP take two.
        None => (body.encode_utf16().count(), 70, 67),
    };
    if units <= single {
        1
    } else {
        units.div_ceil(part)
    }
}

/// A Twilio error object.
fn twilio_error(status: StatusCode, code: u32, message: String) -> Response {
    json_response(
        status,
        &json!({
            "code": code,
            "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status.as_u16(),
        }),
    )
}

fn not_found(path: &str) -> Response {
    twilio_error(
        StatusCode::NOT_FOUND,
        20404,
        format!("The requested resource {path} was not found"),
    )
}

/// `GET /outbox`: every message, newest first, optionally only those to one number.
fn outbox_page(shared: &Shared, incoming: &Incoming) -> Response {
    let param = |name: &str| incoming.query_param(name);
    // `?to=+1206…` written by hand arrives with the `+` decoded as a space: compare digits.
    let only_digits: Option<String> = param("to")
        .map(|to| to.chars().filter(char::is_ascii_digit).collect::<String>())
        .filter(|digits| !digits.is_empty());
    // WCAG 2.2.1: people who need time to read can stop the reloading.
    let refresh = param("refresh") != Some("off");

    let messages: Vec<SandboxSms> = {
        let state = shared.state();
        state
            .messages
            .iter()
            .rev()
            .filter(|m| {
                only_digits.as_deref().is_none_or(|digits| {
                    m.to.chars().filter(char::is_ascii_digit).eq(digits.chars())
                })
            })
            .cloned()
            .collect()
    };

    let mut items = String::new();
    for m in &messages {
        items.push_str(&format!(
            r#"<li class="sms" data-to="{to}" data-sid="{sid}">
<p class="sms-meta">To <strong class="sms-to">{to}</strong> from {from}, <time datetime="{datetime}">{time} UTC</time></p>
<p class="sms-body">{body}</p>
</li>
"#,
            to = html_escape(&m.to),
            sid = html_escape(&m.sid),
            from = html_escape(&m.from),
            datetime = m.created_at.to_rfc3339(),
            time = m.created_at.format("%Y-%m-%d %H:%M:%S"),
            body = linkify(&html_escape(&m.body)),
        ));
    }
    let shown_filter = only_digits.as_ref().map(|digits| format!("+{digits}"));
    let list = if messages.is_empty() {
        "<p class=\"empty\">No messages yet.</p>".to_owned()
    } else {
        format!("<ol class=\"outbox\" aria-label=\"Messages, newest first\">\n{items}</ol>")
    };
    let count = match messages.len() {
        1 => "1 message".to_owned(),
        n => format!("{n} messages"),
    };
    let scope = match &shown_filter {
        Some(number) => format!(
            "{count} to {}. <a href=\"/outbox{}\">Show all numbers</a>",
            html_escape(number),
            if refresh { "" } else { "?refresh=off" }
        ),
        None => format!("{count} to all numbers."),
    };
    let mut self_query = url::form_urlencoded::Serializer::new(String::new());
    if let Some(number) = &shown_filter {
        self_query.append_pair("to", number);
    }
    let toggle = if refresh {
        self_query.append_pair("refresh", "off");
        format!(
            "This page reloads every {REFRESH_SECONDS} seconds. <a href=\"/outbox?{}\">Stop reloading</a>",
            html_escape(&self_query.finish())
        )
    } else {
        format!(
            "Reloading is off. <a href=\"/outbox?{}\">Reload every {REFRESH_SECONDS} seconds</a>",
            html_escape(&self_query.finish())
        )
    };
    let meta_refresh = if refresh {
        format!("<meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">\n")
    } else {
        String::new()
    };
    let filter_value = html_escape(shown_filter.as_deref().unwrap_or(""));
    let keep_refresh = if refresh {
        ""
    } else {
        "<input type=\"hidden\" name=\"refresh\" value=\"off\">"
    };
    let html = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{meta_refresh}<title>Sandbox phone: SMS outbox</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 0 auto; max-width: 44rem; padding: 1.5rem; color: #1b1b1f; }}
h1 {{ font-size: 1.4rem; }}
.note, .sms-meta {{ color: #4a4a55; font-size: .9rem; }}
form {{ margin: 1rem 0; }}
input, button {{ font-size: 1rem; padding: .4rem .6rem; }}
ol.outbox {{ list-style: none; padding: 0; }}
.sms {{ border: 1px solid #b8b8c4; border-radius: .75rem; padding: .25rem 1rem; margin: 0 0 1rem; background: #f4f6fb; }}
.sms-body {{ white-space: pre-wrap; overflow-wrap: anywhere; font-size: 1.05rem; }}
a {{ color: #0b57a3; }}
a:focus-visible, input:focus-visible, button:focus-visible {{ outline: 3px solid #1b1b1f; outline-offset: 2px; }}
</style>
</head>
<body>
<main>
<h1>Sandbox phone: SMS outbox</h1>
<p class="note">Messages Vouch sent through the SMS sandbox. Nothing here reached a real phone. {toggle}</p>
<form method="get" action="/outbox">
<label for="to">Show messages to</label>
<input id="to" name="to" type="tel" value="{filter_value}" placeholder="+12065550101">{keep_refresh}
<button type="submit">Filter</button>
</form>
<p class="note">{scope}</p>
{list}
</main>
</body>
</html>
"#
    );
    html_response(StatusCode::OK, html)
}

/// Turns the `http://` and `https://` URLs of already-escaped text into links.
///
/// Working on escaped text means no character of the body ever reaches the page unescaped;
/// the price is that a URL ends at any entity but `&amp;` (which is a URL's own `&`), since
/// `&lt;`, `&gt;`, `&quot;` and `&#39;` were characters that cannot be part of it. The
/// escaped URL is also a safe `href`: it holds no quote, and the browser decodes `&amp;`.
fn linkify(escaped: &str) -> String {
    let lower = escaped.to_ascii_lowercase();
    let mut out = String::with_capacity(escaped.len());
    let mut position = 0;
    while let Some(found) = ["http://", "https://"]
        .iter()
        .filter_map(|scheme| {
            lower[position..]
                .find(scheme)
                .map(|i| (position + i, scheme.len()))
        })
        .min()
    {
        let (start, scheme_len) = found;
        let end = start + url_len(&escaped[start..]);
        if end - start <= scheme_len {
            // "http://" alone: not a link; move past it.
            out.push_str(&escaped[position..start + scheme_len]);
            position = start + scheme_len;
            continue;
        }
        let url = &escaped[start..end];
        out.push_str(&escaped[position..start]);
        out.push_str(&format!("<a href=\"{url}\">{url}</a>"));
        position = end;
    }
    out.push_str(&escaped[position..]);
    out
}

/// The length in bytes of the URL at the start of `escaped`: up to whitespace, a non-ASCII
/// character or an entity other than `&amp;`, without trailing sentence punctuation.
fn url_len(escaped: &str) -> usize {
    let mut end = 0;
    for (i, c) in escaped.char_indices() {
        let ends = c.is_whitespace()
            || c.is_ascii_control()
            || !c.is_ascii()
            || (c == '&' && !escaped[i..].starts_with("&amp;"));
        if ends {
            break;
        }
        end = i + c.len_utf8();
    }
    let mut url = &escaped[..end];
    loop {
        let trimmed = url
            .strip_suffix(['.', ',', ';', ':', '!', '?'])
            .or_else(|| url.strip_suffix("&amp;"))
            // A closing bracket belongs to the URL only if the URL opened one.
            .or_else(|| url.strip_suffix(')').filter(|u| !u.contains('(')));
        match trimmed {
            Some(shorter) => url = shorter,
            None => break,
        }
    }
    url.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linkify_escaped_text() {
        let cases = [
            ("no links", "no links"),
            (
                "Open https://vouch.example/s/abc?x=1&y=2.",
                "Open <a href=\"https://vouch.example/s/abc?x=1&amp;y=2\">https://vouch.example/s/abc?x=1&amp;y=2</a>.",
            ),
            (
                "<http://a.example/b>",
                "&lt;<a href=\"http://a.example/b\">http://a.example/b</a>&gt;",
            ),
            (
                "(see HTTPS://A.example/x)",
                "(see <a href=\"HTTPS://A.example/x\">HTTPS://A.example/x</a>)",
            ),
            (
                "\"https://q.example/\"onmouseover=\"x\"",
                "&quot;<a href=\"https://q.example/\">https://q.example/</a>&quot;onmouseover=&quot;x&quot;",
            ),
            ("http:// alone", "http:// alone"),
            ("javascript:alert(1)", "javascript:alert(1)"),
            (
                "a https://x.example/é b",
                "a <a href=\"https://x.example/\">https://x.example/</a>é b",
            ),
        ];
        for (raw, expected) in cases {
            assert_eq!(linkify(&html_escape(raw)), expected, "{raw}");
        }
    }

    #[test]
    fn e164_shape() {
        assert!(is_e164("+12065550101"));
        assert!(is_e164("+4930123456"));
        assert!(!is_e164("12065550101"));
        assert!(!is_e164("+1206555"));
        assert!(!is_e164("+1234567890123456"));
        assert!(!is_e164("+1 206 555 0101"));
        assert!(!is_e164("+02065550101"));
    }

    #[test]
    fn segment_counts() {
        assert_eq!(segments("hello"), 1);
        assert_eq!(segments(&"a".repeat(160)), 1);
        assert_eq!(segments(&"a".repeat(161)), 2);
        assert_eq!(segments(&"€".repeat(80)), 1);
        assert_eq!(segments(&"€".repeat(81)), 2);
        assert_eq!(segments(&"ł".repeat(70)), 1);
        assert_eq!(segments(&"ł".repeat(71)), 2);
    }
}
