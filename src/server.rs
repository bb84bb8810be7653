//! The HTTP server: routes, the request-id and metrics middleware, graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use poem::error::{MethodNotAllowedError, NotFoundError};
use poem::http::{HeaderValue, StatusCode};
use poem::listener::{Acceptor, Listener, TcpAcceptor, TcpListener};
use poem::web::{Data, Html, Json};
use poem::{
    Endpoint, EndpointExt, IntoEndpoint, IntoResponse, Request, Response, Route, Server, get,
    handler,
};
use poem_openapi::OperationId;
use poem_openapi::error::{
    AuthorizationError, ContentTypeError, ParseParamError, ParseRequestPayloadError,
};
use sea_orm::DatabaseBackend;
use tracing::Instrument;

use crate::api::{self, ErrorCode, error::error_response};
use crate::config::Config;
use crate::core::directory::Directory;
use crate::core::integrations::{IntegrationsDeps, IntegrationsService, VouchApp};
use crate::core::messaging::Messenger;
use crate::core::reset::{ResetDeps, ResetService};
use crate::core::share::{ShareDeps, ShareService};
use crate::core::verification::VerificationService;
use crate::microsoft::Microsoft;
use crate::psa::PsaAdapters;
use crate::psa::notes::TicketNotes;
use crate::sms::TwilioSms;
use crate::store::Store;
use crate::telemetry::Metrics;

/// The header carrying the request id, on every response and in every log line.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// What every handler may reach.
pub struct AppContext {
    pub config: Config,
    pub store: Store,
    pub metrics: Metrics,
    pub microsoft: Microsoft,
    pub integrations: IntegrationsService,
    pub directory: Directory,
    pub verifications: VerificationService,
    pub resets: ResetService,
    pub shares: ShareService,
    /// Sends SMS and keeps a (sealed) record of each.
    pub messenger: Messenger,
    pub psa: PsaAdapters,
    /// Technicians the PSA vouched for recently, so a pod load does not write to the
    /// database every time (their "last seen" is refreshed every five minutes).
    pub technicians: moka::future::Cache<(uuid::Uuid, String), crate::store::repos::Technician>,
    /// PSA connections read recently: every pod load and pod call needs its connection, and
    /// connections change rarely (a changed one is seen within a minute).
    connections: moka::future::Cache<uuid::Uuid, crate::store::repos::PsaConnection>,
    /// Extra links shown on the landing page (the demo adds its sandbox pages).
    pub landing_links: Vec<(String, String)>,
}

impl AppContext {
    /// A PSA connection, from the short cache or the database.
    pub async fn psa_connection(
        &self,
        id: uuid::Uuid,
    ) -> Result<Option<crate::store::repos::PsaConnection>, crate::store::StoreError> {
        use crate::store::repos::PsaConnectionRepository;
        if let Some(connection) = self.connections.get(&id).await {
            return Ok(Some(connection));
        }
        let connection = self.store.get_connection(id).await?;
        if let Some(connection) = &connection {
            self.connections.insert(id, connection.clone()).await;
        }
        Ok(connection)
    }

    /// Wires the services from configuration: the only place that knows the concrete types.
    pub fn new(
        config: Config,
        store: Store,
        metrics: Metrics,
        landing_links: Vec<(String, String)>,
    ) -> AppContext {
        let microsoft = Microsoft::new(&config.microsoft, &metrics);
        let vouch_app = match (
            &config.microsoft.app_client_id,
            &config.microsoft.app_client_secret,
        ) {
            (Some(client_id), Some(client_secret)) => Some(VouchApp {
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
            }),
            _ => None,
        };
        let shared = Arc::new(store.clone());
        let integrations = IntegrationsService::new(IntegrationsDeps {
            tenants: shared.clone(),
            consent_states: shared.clone(),
            audit: shared.clone(),
            microsoft: microsoft.clone(),
            metrics: metrics.clone(),
            vouch_app: vouch_app.clone(),
            login_url: config.microsoft.login_url.clone(),
            graph_url: config.microsoft.graph_url.clone(),
            consent_redirect_url: config
                .http
                .public_url
                .join(api::consent::CALLBACK_PATH)
                .expect("a relative path joins onto the public URL"),
        });
        let directory = Directory::new(shared.clone(), microsoft.clone(), vouch_app);
        let messenger = Messenger::new(
            Arc::new(TwilioSms::new(&config.sms, &metrics)),
            shared.clone(),
        );
        let psa = PsaAdapters::new(&config, &metrics);
        let ticket_notes = TicketNotes::new(store.clone(), psa.clone());
        let verifications = VerificationService::new(
            shared.clone(),
            shared.clone(),
            directory.clone(),
            messenger.clone(),
            store.shared_keyring(),
            config.sms.default_region.clone(),
            config.http.public_url.clone(),
            std::time::Duration::from_secs(config.microsoft.connector_timeout_seconds),
        )
        .with_observer(ticket_notes.clone());
        let shares = ShareService::new(ShareDeps {
            shares: shared.clone(),
            msps: shared.clone(),
            audit: shared.clone(),
            public_url: config.http.public_url.clone(),
        });
        let resets = ResetService::new(ResetDeps {
            verifications: shared.clone(),
            resets: shared.clone(),
            tenants: shared.clone(),
            audit: shared,
            directory: directory.clone(),
            verification_service: verifications.clone(),
            shares: shares.clone(),
            messenger: messenger.clone(),
            observer: Some(ticket_notes),
        });
        AppContext {
            config,
            store,
            metrics,
            microsoft,
            integrations,
            directory,
            verifications,
            resets,
            shares,
            messenger,
            psa,
            technicians: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(std::time::Duration::from_secs(300))
                .build(),
            connections: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(std::time::Duration::from_secs(60))
                .build(),
            landing_links,
        }
    }

    pub fn database_backend(&self) -> &'static str {
        match self.store.backend() {
            DatabaseBackend::Postgres => "postgres",
            DatabaseBackend::Sqlite => "sqlite",
            _ => "other",
        }
    }
}

/// The route label kept for metrics (never the raw path: paths can carry secret tokens).
#[derive(Clone, Copy)]
struct RouteLabel(&'static str);

fn labelled<E: IntoEndpoint>(label: &'static str, ep: E) -> impl Endpoint<Output = Response>
where
    E::Endpoint: 'static,
{
    ep.into_endpoint()
        .map_to_response()
        .after(move |result| async move {
            match result {
                Ok(mut response) => {
                    response.set_data(RouteLabel(label));
                    Ok(response)
                }
                // Left as an error so the app-wide handlers give it the JSON error shape.
                Err(mut err) => {
                    err.set_data(RouteLabel(label));
                    Err(err)
                }
            }
        })
}

/// Builds the whole application.
pub fn build_app(ctx: Arc<AppContext>) -> impl Endpoint<Output = Response> {
    let api_service = api::service();
    let swagger = api_service.swagger_ui();
    let spec_yaml = api_service.spec_endpoint_yaml();
    let spec_json = api_service.spec_endpoint();
    Route::new()
        .at("/", labelled("landing", get(landing)))
        .at("/healthz", labelled("healthz", get(healthz)))
        .at("/readyz", labelled("readyz", get(readyz)))
        .at("/metrics", labelled("metrics", get(prometheus_metrics)))
        .at(
            format!("/{}", api::consent::CALLBACK_PATH),
            labelled("consent_callback", get(api::consent::consent_callback)),
        )
        .nest("/s", labelled("secure_share", crate::web::share::routes()))
        .nest("/v", labelled("verify_link", crate::web::verify::routes()))
        .nest("/pods", labelled("pod", crate::web::pod::routes()))
        .nest("/api", api_service)
        .nest("/api/docs", labelled("api_docs", swagger))
        .at("/api/openapi.yaml", labelled("openapi", spec_yaml))
        .at("/api/openapi.json", labelled("openapi", spec_json))
        .catch_error(|_: NotFoundError| async {
            error_response(
                ErrorCode::NotFound,
                "There is nothing at this address. The API is described at /api/docs.",
            )
        })
        // poem-openapi's own parse errors, in the documented shape. The cause is not echoed:
        // it could quote a value that was sent, and values can be secrets.
        .catch_error(|_: ParseRequestPayloadError| async {
            error_response(
                ErrorCode::InvalidRequest,
                "The request body could not be read: check that it is JSON with the fields and types described at /api/docs.",
            )
        })
        .catch_error(|_: ContentTypeError| async {
            error_response(
                ErrorCode::InvalidRequest,
                "The request body has the wrong content type: send `Content-Type: application/json`.",
            )
        })
        .catch_error(|err: ParseParamError| async move {
            error_response(
                ErrorCode::InvalidRequest,
                &format!("The parameter `{}` is missing or not valid; see /api/docs.", err.name),
            )
        })
        .catch_error(|_: AuthorizationError| async {
            error_response(
                ErrorCode::Unauthorized,
                "This operation needs an API key: send `Authorization: Bearer <key>` (create one with `vouch api-key create`).",
            )
        })
        .catch_error(|_: MethodNotAllowedError| async {
            error_response(
                ErrorCode::MethodNotAllowed,
                "This address does not accept this method. See /api/docs.",
            )
        })
        .data(ctx.clone())
        .around(move |ep, req| observe(ctx.clone(), ep, req))
}

/// One span per request carrying its id, one log line when it completes, and the metrics.
async fn observe<E: Endpoint>(ctx: Arc<AppContext>, ep: E, req: Request) -> poem::Result<Response> {
    let request_id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| is_acceptable_request_id(id))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let method = req.method().clone();
    let span = tracing::info_span!("request", request_id = %request_id, method = %method);
    async move {
        let started = Instant::now();
        let mut response = ep.get_response(req).await;
        let elapsed = started.elapsed();
        let route = response
            .data::<OperationId>()
            .map(|id| id.0)
            .or_else(|| response.data::<RouteLabel>().map(|label| label.0))
            .unwrap_or("unmatched");
        let status = response.status().as_u16();
        ctx.metrics
            .observe_http(route, method.as_str(), status, elapsed.as_secs_f64());
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        tracing::info!(
            route,
            status,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "request completed"
        );
        Ok(response)
    }
    .instrument(span)
    .await
}

/// A caller-supplied id is kept (to follow a request across systems) only when it is short
/// and plain; anything else could forge log lines.
fn is_acceptable_request_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[handler]
fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

#[handler]
async fn readyz(ctx: Data<&Arc<AppContext>>) -> Response {
    let readiness = ctx.store.readiness().await;
    let body = serde_json::json!({
        "status": if readiness.is_ready() { "ready" } else { "not_ready" },
        "database": if readiness.database_reachable { "reachable" } else { "unreachable" },
        "pending_migrations": readiness.pending_migrations,
        "problem": readiness.problem,
    });
    let status = if readiness.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Json(body).with_status(status).into_response()
}

#[handler]
fn prometheus_metrics(ctx: Data<&Arc<AppContext>>) -> Response {
    Response::builder()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(ctx.metrics.render())
}

#[handler]
fn landing(ctx: Data<&Arc<AppContext>>) -> Html<String> {
    let mut links = String::new();
    for (title, href) in &ctx.landing_links {
        links.push_str(&format!(
            "<li><a href=\"{}\">{}</a></li>",
            crate::web::escape_html(href),
            crate::web::escape_html(title)
        ));
    }
    Html(format!(
        include_str!("landing.html"),
        version = env!("CARGO_PKG_VERSION"),
        links = links
    ))
}

/// Binds the configured address; `port 0` picks a free port (tests, benchmarks).
pub async fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpAcceptor> {
    TcpListener::bind(addr).into_acceptor().await
}

pub fn local_addr(acceptor: &TcpAcceptor) -> Option<std::net::SocketAddr> {
    acceptor
        .local_addr()
        .into_iter()
        .find_map(|addr| addr.as_socket_addr().copied())
}

/// Serves until `shutdown` resolves, then stops accepting connections and lets in-flight
/// requests finish (for at most `http.shutdown_grace_seconds`).
pub async fn serve(
    ctx: Arc<AppContext>,
    acceptor: TcpAcceptor,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let grace = Duration::from_secs(ctx.config.http.shutdown_grace_seconds);
    let app = build_app(ctx);
    Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(app, shutdown, Some(grace))
        .await
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown requested: no new connections; waiting for in-flight requests");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_short_request_ids_are_kept() {
        assert!(is_acceptable_request_id("abc-123_X.y"));
        assert!(!is_acceptable_request_id(""));
        assert!(!is_acceptable_request_id("a\nfake log line"));
        assert!(!is_acceptable_request_id(&"a".repeat(65)));
    }
}
