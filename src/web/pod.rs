//! Serving the pods: the page each PSA embeds, after the PSA vouched for the load (HaloPSA
//! and Autotask sign it; ConnectWise's pod performs the Hosted API handshake and then opens
//! its session through the API), plus the pod's static files from `pods/`.

use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::{Data, Form};
use poem::{IntoResponse, Request, Response, Route, get, handler};

use crate::api::pod::open_session;
use crate::app::AppContext;
use crate::psa::EmbedLoad;
use crate::store::repos::PsaKind;

const POD_HTML: &str = include_str!("../../pods/pod.html");
const POD_JS: &str = include_str!("../../pods/pod.js");
const POD_CSS: &str = include_str!("../../pods/pod.css");

/// The query parameter of every pod URL naming Vouch's PSA connection.
pub const CONNECTION_PARAM: &str = "connection";

pub fn routes() -> Route {
    Route::new()
        .at("/assets/pod.js", get(pod_js))
        .at("/assets/pod.css", get(pod_css))
        .at("/connectwise", get(connectwise))
        .at("/halopsa", get(halopsa_get).post(halopsa_post))
        .at("/autotask", get(autotask_get).post(autotask_post))
}

#[handler]
fn pod_js() -> Response {
    asset(POD_JS, "text/javascript; charset=utf-8")
}

#[handler]
fn pod_css() -> Response {
    asset(POD_CSS, "text/css; charset=utf-8")
}

fn asset(body: &'static str, content_type: &str) -> Response {
    Response::builder()
        .content_type(content_type)
        .header("Cache-Control", "public, max-age=300")
        .header("X-Content-Type-Options", "nosniff")
        .body(body)
}

#[handler]
async fn connectwise(ctx: Data<&Arc<AppContext>>, req: &Request) -> Response {
    let params = query_pairs(req);
    let connection_id = connection_of(&params);
    let ticket = params
        .iter()
        .find(|(k, _)| k == "id")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let ancestors = frame_ancestors(&ctx, connection_id, PsaKind::ConnectWise).await;
    let Some(connection_id) = connection_id else {
        return refusal(
            &ancestors,
            "This Vouch panel URL names no PSA connection. Copy the URL again from Vouch's settings.",
        );
    };
    // The token comes after the handshake, from POST /api/v1/pod/connectwise/session.
    render(
        &ancestors,
        "connectwise",
        "",
        &connection_id.to_string(),
        &ticket,
    )
}

#[handler]
async fn halopsa_get(ctx: Data<&Arc<AppContext>>, req: &Request) -> Response {
    signed_load(&ctx, PsaKind::HaloPsa, query_pairs(req)).await
}

#[handler]
async fn halopsa_post(
    ctx: Data<&Arc<AppContext>>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    signed_load(&ctx, PsaKind::HaloPsa, form).await
}

#[handler]
async fn autotask_get(ctx: Data<&Arc<AppContext>>, req: &Request) -> Response {
    signed_load(&ctx, PsaKind::Autotask, query_pairs(req)).await
}

#[handler]
async fn autotask_post(
    ctx: Data<&Arc<AppContext>>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    signed_load(&ctx, PsaKind::Autotask, form).await
}

async fn signed_load(ctx: &AppContext, kind: PsaKind, params: Vec<(String, String)>) -> Response {
    let connection_id = connection_of(&params);
    let ancestors = frame_ancestors(ctx, connection_id, kind).await;
    let Some(connection_id) = connection_id else {
        return refusal(
            &ancestors,
            "This Vouch panel URL names no PSA connection. Copy the URL again from Vouch's settings.",
        );
    };
    let ticket_param = match kind {
        PsaKind::HaloPsa => crate::psa::halopsa::TICKET_PARAM,
        _ => crate::psa::autotask::TICKET_PARAM,
    };
    let ticket = params
        .iter()
        .find(|(k, _)| k == ticket_param)
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    match open_session(ctx, connection_id, EmbedLoad::Signed(params)).await {
        Ok(token) => render(
            &ancestors,
            kind.as_str(),
            &token,
            &connection_id.to_string(),
            &ticket,
        ),
        Err(err) => {
            let (status, body) = err_parts(err);
            tracing::info!(status, "pod load refused");
            refusal(&ancestors, &body)
        }
    }
}

fn err_parts(err: crate::api::ApiError) -> (u16, String) {
    use crate::api::ApiError::*;
    let (status, body) = match err {
        BadRequest(b) => (400, b),
        Unauthorized(b) => (401, b),
        Forbidden(b) => (403, b),
        NotFound(b) => (404, b),
        Conflict(b) => (409, b),
        TooManyRequests(b) => (429, b),
        Internal(b) => (500, b),
        BadGateway(b) => (502, b),
        Unavailable(b) => (503, b),
        GatewayTimeout(b) => (504, b),
    };
    (status, format!("{} ({})", body.0.message, body.0.code))
}

fn query_pairs(req: &Request) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn connection_of(params: &[(String, String)]) -> Option<uuid::Uuid> {
    params
        .iter()
        .find(|(k, _)| k == CONNECTION_PARAM)
        .and_then(|(_, v)| uuid::Uuid::parse_str(v).ok())
}

/// The PSA origins the MSP configured for this connection may frame the pod; nobody else.
async fn frame_ancestors(
    ctx: &AppContext,
    connection_id: Option<uuid::Uuid>,
    kind: PsaKind,
) -> String {
    let Some(id) = connection_id else {
        return "'none'".into();
    };
    let Ok(Some(connection)) = ctx.psa_connection(id).await else {
        return "'none'".into();
    };
    if connection.kind != kind {
        return "'none'".into();
    }
    let origins: Vec<String> = connection.settings["allowed_origins"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|v| v.as_str())
                .filter_map(|v| url::Url::parse(v).ok())
                .filter(|u| matches!(u.scheme(), "https" | "http") && u.host_str().is_some())
                .map(|u| u.origin().ascii_serialization())
                .collect()
        })
        .unwrap_or_default();
    if origins.is_empty() {
        "'none'".into()
    } else {
        origins.join(" ")
    }
}

/// The pod page split at its placeholders once, so each load is one pass over the template.
fn template() -> &'static [TemplatePart] {
    static PARTS: std::sync::OnceLock<Vec<TemplatePart>> = std::sync::OnceLock::new();
    PARTS.get_or_init(|| {
        let mut parts = Vec::new();
        let mut rest = POD_HTML;
        while let Some(start) = rest.find("{{") {
            let Some(len) = rest[start..].find("}}") else {
                break;
            };
            parts.push(TemplatePart::Text(&rest[..start]));
            parts.push(TemplatePart::Slot(&rest[start + 2..start + len]));
            rest = &rest[start + len + 2..];
        }
        parts.push(TemplatePart::Text(rest));
        parts
    })
}

enum TemplatePart {
    Text(&'static str),
    Slot(&'static str),
}

fn render(ancestors: &str, psa: &str, token: &str, connection: &str, ticket: &str) -> Response {
    let mut html = String::with_capacity(POD_HTML.len() + token.len() + 64);
    for part in template() {
        match part {
            TemplatePart::Text(text) => html.push_str(text),
            TemplatePart::Slot(name) => html.push_str(&match name.trim() {
                "psa" => crate::web::escape_html(psa),
                "token" => crate::web::escape_html(token),
                "connection" => crate::web::escape_html(connection),
                "ticket" => crate::web::escape_html(ticket),
                "api" => "/api/v1/pod".to_owned(),
                "session" => "/api/v1/pod/connectwise/session".to_owned(),
                "assets" => "/pods/assets".to_owned(),
                "title" => "Vouch".to_owned(),
                // Unknown placeholders are left out rather than shown.
                _ => String::new(),
            }),
        }
    }
    page(StatusCode::OK, ancestors, html)
}

fn refusal(ancestors: &str, message: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Vouch</title>\
         <link rel=\"stylesheet\" href=\"/pods/assets/pod.css\"></head><body>\
         <main class=\"vouch-refused\"><p role=\"alert\" id=\"vouch-refused\">{}</p></main></body></html>",
        crate::web::escape_html(message)
    );
    page(StatusCode::FORBIDDEN, ancestors, html)
}

fn page(status: StatusCode, ancestors: &str, html: String) -> Response {
    poem::web::Html(html)
        .with_status(status)
        .with_header("Cache-Control", "no-store")
        .with_header("Referrer-Policy", "no-referrer")
        .with_header("X-Content-Type-Options", "nosniff")
        .with_header(
            "Content-Security-Policy",
            format!(
                "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; \
                 base-uri 'none'; form-action 'self'; frame-ancestors {ancestors}"
            ),
        )
        .into_response()
}
