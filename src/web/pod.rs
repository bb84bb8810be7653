//! Serving the pods: the page each PSA embeds, after the PSA vouched for the load (HaloPSA
//! and Autotask sign it; ConnectWise's pod performs the Hosted API handshake and then opens
//! its session through the API), plus the pod's static files from `pods/` and the pages'
//! stylesheets (every page's assets live under `/pods/assets`).
//!
//! The pod's script is three ES modules, served as they are in `pods/` (no build step):
//! `pod.js`, the controller the page loads, imports `pod/api.js` (the API client) and
//! `pod/view.js` (the view) by relative URL, so their routes mirror the files' paths.
//!
//! The pod's own files (the three modules and `pod.css`) are served under
//! `/pods/v/{version}/`, the version a digest of all four, and cached for good
//! (`immutable`): a deploy that changes any of them changes every address, so a browser never
//! mixes modules of two versions, and the modules' relative imports stay inside one version.
//! The pod page links the current version; another version's address answers 404 (in the
//! JSON error shape, as every 404): the page that linked it is older than this instance, and
//! reloading it links the current one.

use std::sync::{Arc, LazyLock};

use minijinja::context;
use poem::http::{Method, StatusCode, header};
use poem::web::{Data, Form, Path};
use poem::{Request, Response, handler};

use crate::app::AppContext;
use crate::domain::PsaKind;
use crate::psa::EmbedLoad;
use crate::web::mount::{Mounted, endpoint};
use crate::web::page::{self, Brand};

const POD_JS: &str = include_str!("../../pods/pod.js");
const POD_API_JS: &str = include_str!("../../pods/pod/api.js");
const POD_VIEW_JS: &str = include_str!("../../pods/pod/view.js");
const POD_CSS: &str = include_str!("../../pods/pod.css");

/// The digest of the pod's files: the version segment of their addresses.
static POD_VERSION: LazyLock<String> = LazyLock::new(|| {
    use sha2::{Digest, Sha256};
    let mut digest = Sha256::new();
    for file in [POD_JS, POD_API_JS, POD_VIEW_JS, POD_CSS] {
        // Each length first, so that moving text from one file to the next changes it too.
        digest.update((file.len() as u64).to_be_bytes());
        digest.update(file.as_bytes());
    }
    hex::encode(&digest.finalize()[..8])
});

/// Where this build's pod files are served: `/pods/v/{version}`.
pub fn pod_assets() -> String {
    format!("/pods/v/{}", *POD_VERSION)
}

/// The query parameter of every pod URL naming Vouch's PSA connection.
pub const CONNECTION_PARAM: &str = "connection";

/// The routes under `/pods`.
pub fn routes() -> Mounted {
    Mounted::new()
        .at("/v/:version/pod.js", vec![(Method::GET, endpoint(pod_js))])
        .at(
            "/v/:version/pod/api.js",
            vec![(Method::GET, endpoint(pod_api_js))],
        )
        .at(
            "/v/:version/pod/view.js",
            vec![(Method::GET, endpoint(pod_view_js))],
        )
        .at(
            "/v/:version/pod.css",
            vec![(Method::GET, endpoint(pod_css))],
        )
        .at(
            "/assets/page.css",
            vec![(Method::GET, endpoint(page::page_css))],
        )
        .at(
            "/assets/brand/:file",
            vec![(Method::GET, endpoint(page::brand_css))],
        )
        .at("/connectwise", vec![(Method::GET, endpoint(connectwise))])
        .at(
            "/halopsa",
            vec![
                (Method::GET, endpoint(halopsa_get)),
                (Method::POST, endpoint(halopsa_post)),
            ],
        )
        .at(
            "/autotask",
            vec![
                (Method::GET, endpoint(autotask_get)),
                (Method::POST, endpoint(autotask_post)),
            ],
        )
}

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

/// One of the pod's files, if `version` is this build's; else 404.
fn versioned(version: &str, body: &'static str, content_type: &str) -> poem::Result<Response> {
    if version != POD_VERSION.as_str() {
        return Err(poem::error::NotFoundError.into());
    }
    Ok(page::immutable_asset(body, content_type))
}

#[handler]
fn pod_js(Path(version): Path<String>) -> poem::Result<Response> {
    versioned(&version, POD_JS, JAVASCRIPT)
}

#[handler]
fn pod_api_js(Path(version): Path<String>) -> poem::Result<Response> {
    versioned(&version, POD_API_JS, JAVASCRIPT)
}

#[handler]
fn pod_view_js(Path(version): Path<String>) -> poem::Result<Response> {
    versioned(&version, POD_VIEW_JS, JAVASCRIPT)
}

#[handler]
fn pod_css(Path(version): Path<String>) -> poem::Result<Response> {
    versioned(&version, POD_CSS, "text/css; charset=utf-8")
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
        PsaKind::ConnectWise,
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
    let Some(connection_id) = connection_of(&params) else {
        return refusal(
            "'none'",
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
    let opened = ctx
        .pods
        .open_page(connection_id, kind, EmbedLoad::Signed(params))
        .await;
    let ancestors = ancestors_of(&opened.allowed_origins);
    match opened.token {
        Ok(token) => render(
            &ancestors,
            kind,
            &token,
            &connection_id.to_string(),
            &ticket,
        ),
        Err(err) => {
            let (status, body) = err_parts(err.into());
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
        PayloadTooLarge(b) => (413, b),
        UnsupportedMediaType(b) => (415, b),
        TooManyRequests(b, _) => (429, b),
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
    match ctx.psa_connection(id).await {
        Ok(Some(connection)) if connection.kind == kind => {
            ancestors_of(&crate::core::pod::allowed_origins(&connection))
        }
        _ => "'none'".into(),
    }
}

/// The CSP `frame-ancestors` source list of `origins` (`'none'` for none).
fn ancestors_of(origins: &[String]) -> String {
    if origins.is_empty() {
        "'none'".into()
    } else {
        origins.join(" ")
    }
}

fn render(ancestors: &str, psa: PsaKind, token: &str, connection: &str, ticket: &str) -> Response {
    // The pod is the MSP's own tool inside its PSA: it wears Vouch's colours.
    let values = context! {
        brand => Brand::vouch().view(),
        psa => psa.as_str(),
        token,
        connection,
        ticket,
        api => "/api/v1/pod",
        session => "/api/v1/pod/connectwise/session",
        title => "Vouch",
    };
    page(StatusCode::OK, ancestors, "pod.html", values)
}

fn refusal(ancestors: &str, message: &str) -> Response {
    page(
        StatusCode::FORBIDDEN,
        ancestors,
        "pod_refused.html",
        context! { brand => Brand::vouch().view(), message },
    )
}

fn page(status: StatusCode, ancestors: &str, template: &str, values: minijinja::Value) -> Response {
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; \
         base-uri 'none'; form-action 'self'; frame-ancestors {ancestors}"
    );
    page::respond(
        status,
        template,
        values,
        &[
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (header::REFERRER_POLICY, "no-referrer".to_owned()),
            (header::CONTENT_SECURITY_POLICY, csp),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(response: Response) -> String {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(response.into_body().into_string())
            .unwrap()
    }

    #[test]
    fn the_pod_page_carries_its_values_escaped_under_the_layout() {
        let response = render(
            "https://psa.example",
            PsaKind::HaloPsa,
            "payload.mac",
            "0f0e0d0c-0000-4000-8000-000000000001",
            "42\"><script>",
        );
        assert_eq!(response.status(), StatusCode::OK);
        let csp = response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            csp.ends_with("frame-ancestors https://psa.example"),
            "{csp}"
        );
        assert!(csp.contains("style-src 'self';"), "{csp}");
        let body = body_of(response);
        assert!(body.starts_with("<!doctype html>"), "{body}");
        assert!(body.contains("data-token=\"payload.mac\""), "{body}");
        assert!(
            body.contains("data-ticket=\"42&quot;&gt;&lt;script&gt;\""),
            "{body}"
        );
        assert!(!body.contains("<script>"), "{body}");
        assert!(body.contains("<link rel=\"stylesheet\" href=\"/pods/assets/brand/0b5cad.css\">"));
        let assets = pod_assets();
        assert!(
            body.contains(&format!(
                "<script type=\"module\" src=\"{assets}/pod.js\"></script>"
            )),
            "{body}"
        );
        for module in ["api", "view"] {
            assert!(
                body.contains(&format!(
                    "<link rel=\"modulepreload\" href=\"{assets}/pod/{module}.js\">"
                )),
                "{body}"
            );
        }
        assert!(body.contains("<main id=\"vouch\" class=\"pod\" aria-busy=\"true\">"));
        assert!(
            !body.contains("<style") && !body.contains("style="),
            "{body}"
        );
    }

    /// The pod's modules, by the path under `/pods` each is served at.
    fn modules() -> [(String, &'static str); 3] {
        let version = format!("/v/{}", *POD_VERSION);
        [
            (format!("{version}/pod.js"), POD_JS),
            (format!("{version}/pod/api.js"), POD_API_JS),
            (format!("{version}/pod/view.js"), POD_VIEW_JS),
        ]
    }

    #[test]
    fn every_module_is_served_as_javascript_and_every_import_names_one() {
        use poem::Endpoint;

        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let app = routes().into_route();
        let modules = modules();
        for (path, source) in &modules {
            let response =
                runtime.block_on(app.get_response(poem::Request::builder().uri_str(path).finish()));
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(
                response.headers()[header::CONTENT_TYPE],
                "text/javascript; charset=utf-8",
                "{path}"
            );
            assert_eq!(
                response.headers()[header::CACHE_CONTROL],
                "public, max-age=31536000, immutable",
                "{path}"
            );
            // A browser refuses a module whose import it cannot load: each one must resolve,
            // relative to the importing module, to a module served here.
            let base = &path[..=path.rfind('/').unwrap()];
            for import in source
                .split(" from \"./")
                .skip(1)
                .map(|rest| &rest[..rest.find('"').unwrap()])
            {
                let target = format!("{base}{import}");
                assert!(
                    modules.iter().any(|(served, _)| *served == target),
                    "{path} imports {target}, which is not served"
                );
            }
        }
        assert!(POD_JS.contains(" from \"./pod/api.js\""));
        // Another version's address is not served: its page is older than this build.
        let old = runtime.block_on(
            app.get_response(
                poem::Request::builder()
                    .uri_str("/v/0123456789abcdef/pod.js")
                    .finish(),
            ),
        );
        assert_eq!(old.status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn a_refusal_says_why_escaped() {
        let response = refusal("'none'", "No <b>connection</b>.");
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body = body_of(response);
        assert!(
            body.contains(
                "<p role=\"alert\" id=\"vouch-refused\">No &lt;b&gt;connection&lt;&#x2f;b&gt;.</p>"
            ),
            "{body}"
        );
        assert!(
            body.contains(&format!("{}/pod.css", pod_assets())),
            "{body}"
        );
    }
}
