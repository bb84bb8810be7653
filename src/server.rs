//! The HTTP server: routes, the request-id and metrics middleware, graceful shutdown. It
//! wires nothing: the context it serves comes built from the composition root (`crate::app`).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use poem::http::Method;
use poem::http::{HeaderValue, header};
use poem::listener::{Acceptor, Listener, TcpAcceptor, TcpListener};
use poem::{Body, Endpoint, EndpointExt, IntoEndpoint, Request, Response, Server};
use poem_openapi::OperationId;
use tracing::Instrument;

use crate::api;
use crate::app::AppContext;
use crate::web::mount::{Handler, Mounted, endpoint};

/// The header carrying the request id, on every response and in every log line.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

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

/// Every address outside the OpenAPI document that takes only some methods, mounted with
/// the table of them (which `api::routes::OTHER_ROUTES` must match: see the tests).
fn pages() -> Mounted {
    let label = |label: &'static str| move |ep: Handler| endpoint(labelled(label, ep));
    let get = |ep: Handler| vec![(Method::GET, ep)];
    Mounted::new()
        .at_wrapped(
            "/",
            get(endpoint(crate::web::landing::landing)),
            label("landing"),
        )
        .at_wrapped(
            "/healthz",
            get(endpoint(api::health::healthz)),
            label("healthz"),
        )
        .at_wrapped(
            "/readyz",
            get(endpoint(api::health::readyz)),
            label("readyz"),
        )
        .at_wrapped(
            "/metrics",
            get(endpoint(api::health::prometheus_metrics)),
            label("metrics"),
        )
        .at_wrapped(
            &format!("/{}", api::consent::CALLBACK_PATH),
            get(endpoint(api::consent::consent_callback)),
            label("consent_callback"),
        )
        .nest("/s", crate::web::share::routes(), label("secure_share"))
        .nest("/v", crate::web::verify::routes(), label("verify_link"))
        .nest("/pods", crate::web::pod::routes(), label("pod"))
        .nest("/brand", crate::web::brand::routes(), label("brand_logo"))
        .nest(
            crate::web::console::BASE_PATH,
            crate::web::console::routes(),
            label("console"),
        )
}

/// Mounts every route and the middleware over `ctx`.
pub fn routes(ctx: Arc<AppContext>) -> impl Endpoint<Output = Response> {
    let api_service = api::service();
    let swagger = api_service.swagger_ui();
    let spec_yaml = api_service.spec_endpoint_yaml();
    let spec_json = api_service.spec_endpoint();
    let routes = pages()
        .nest_any("/api", api_service.map_to_response())
        .nest_any("/api/docs", labelled("api_docs", swagger))
        .any("/api/openapi.yaml", labelled("openapi", spec_yaml))
        .any("/api/openapi.json", labelled("openapi", spec_json))
        .into_route();
    api::error::json_errors(routes)
        .around(bounded_body)
        .data(ctx.clone())
        .around(move |ep, req| observe(ctx.clone(), ep, req))
}

/// Bounds every request body, whatever its route or content type, to
/// [`api::error::MAX_BODY_BYTES`], before any of it is read: a declared `Content-Length` over
/// the limit is refused at once, and a body of undeclared length (chunked) is read through a
/// cap, so no reader (the error boundary, poem's `Form`, a page) ever holds more than the limit.
/// Either way the answer is the documented 413 `payload_too_large`.
async fn bounded_body<E: Endpoint<Output = Response>>(
    ep: Arc<E>,
    mut req: Request,
) -> poem::Result<Response> {
    let limit = api::error::MAX_BODY_BYTES;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Ok(payload_too_large());
    }
    // hyper delivers no more than a declared length, so only an undeclared one needs the cap.
    let overflowed = Arc::new(AtomicBool::new(false));
    if declared.is_none() {
        let body = req.take_body();
        req.set_body(capped(body, limit, overflowed.clone()));
    }
    let result = ep.call(req).await;
    if !overflowed.load(Ordering::Acquire) {
        return result;
    }
    // Whatever the reader made of the cut (an unreadable form, an I/O error), the cause was
    // the size. The original answer's data (the route label for the metrics) is kept.
    let mut original = match result {
        Ok(response) => response,
        Err(err) => err.into_response(),
    };
    let mut response = payload_too_large();
    *response.extensions_mut() = std::mem::take(original.extensions_mut());
    Ok(response)
}

fn payload_too_large() -> Response {
    api::error::error_response(
        api::ErrorCode::PayloadTooLarge,
        &format!(
            "The request body is larger than Vouch accepts ({} KiB). Send less.",
            api::error::MAX_BODY_BYTES / 1024
        ),
    )
}

/// `body`, ending in an error (and setting `overflowed`) once more than `limit` bytes came.
fn capped(body: Body, limit: usize, overflowed: Arc<AtomicBool>) -> Body {
    let stream = body
        .into_bytes_stream()
        .scan((0usize, false), move |(seen, done), chunk| {
            let item = if *done {
                None
            } else {
                match chunk {
                    Ok(bytes) => {
                        *seen = seen.saturating_add(bytes.len());
                        if *seen > limit {
                            *done = true;
                            overflowed.store(true, Ordering::Release);
                            Some(Err(std::io::Error::other(
                                "the request body is larger than Vouch accepts",
                            )))
                        } else {
                            Some(Ok(bytes))
                        }
                    }
                    Err(err) => Some(Err(err)),
                }
            };
            std::future::ready(item)
        });
    Body::from_bytes_stream(stream)
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

/// The soft and hard open-file limits (RLIMIT_NOFILE); `None` where there is none to read.
// `rlim_t` is `u64` on Linux and macOS, not on every unix.
#[allow(clippy::unnecessary_cast)]
pub fn open_file_limit() -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use nix::sys::resource::{Resource, getrlimit};
        getrlimit(Resource::RLIMIT_NOFILE)
            .ok()
            .map(|(soft, hard)| (soft as u64, hard as u64))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Raises the soft open-file limit to the hard limit, once per process, and logs the figure.
/// Every connection in and out is a file descriptor; the usual soft default (1024) is used up
/// by a few hundred pods waiting on pushes, and then Vouch can open no socket at all.
#[allow(clippy::unnecessary_cast)] // as for `open_file_limit`
pub fn raise_open_file_limit() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(unix)]
        {
            use nix::sys::resource::{Resource, getrlimit, setrlimit};
            match getrlimit(Resource::RLIMIT_NOFILE) {
                Ok((soft, hard)) if soft < hard => {
                    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                        Ok(()) => tracing::info!(
                            open_file_limit = hard as u64,
                            was = soft as u64,
                            "raised the open-file limit to the hard limit"
                        ),
                        Err(err) => tracing::warn!(
                            open_file_limit = soft as u64,
                            hard_limit = hard as u64,
                            error = %err,
                            "could not raise the open-file limit to the hard limit; raise it with `ulimit -n` or LimitNOFILE="
                        ),
                    }
                }
                Ok((soft, _)) => tracing::info!(
                    open_file_limit = soft as u64,
                    "the open-file limit is already the hard limit"
                ),
                Err(err) => tracing::warn!(error = %err, "could not read the open-file limit"),
            }
        }
    });
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
    let app = routes(ctx);
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

    /// Every address mounted outside the OpenAPI document is in the table the error
    /// boundary answers a wrong method from (its `Allow` header), with the same methods, and
    /// the table names nothing that is not mounted.
    #[test]
    fn the_table_of_other_routes_is_what_is_mounted() {
        use std::collections::BTreeSet;

        let spelled = |methods: &[Method]| -> BTreeSet<String> {
            methods.iter().map(|m| m.to_string()).collect()
        };
        let mounted: BTreeSet<(String, BTreeSet<String>)> = pages()
            .table()
            .iter()
            .map(|(path, methods)| (path.clone(), spelled(methods)))
            .collect();
        let table: BTreeSet<(String, BTreeSet<String>)> = api::routes::OTHER_ROUTES
            .iter()
            .map(|(path, methods)| ((*path).to_owned(), spelled(methods)))
            .collect();
        let missing: Vec<_> = mounted.difference(&table).collect();
        assert!(
            missing.is_empty(),
            "mounted but not in api::routes::OTHER_ROUTES: {missing:?}"
        );
        let extra: Vec<_> = table.difference(&mounted).collect();
        assert!(
            extra.is_empty(),
            "in api::routes::OTHER_ROUTES but not mounted: {extra:?}"
        );
    }
}
