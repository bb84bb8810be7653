//! Operational endpoints outside the OpenAPI document: liveness, readiness and metrics.

use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{IntoResponse, Response, handler};

use crate::app::AppContext;
use crate::store::Readiness;

#[handler]
pub fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// `{"status": "ready"}` (200) or `{"status": "not_ready"}` (503), nothing more: the cause
/// is logged by the store, not shown to whoever probes.
#[handler]
pub async fn readyz(ctx: Data<&Arc<AppContext>>) -> Response {
    let (status, code) = match ctx.store.readiness().await {
        Readiness::Ready => ("ready", StatusCode::OK),
        Readiness::NotReady => ("not_ready", StatusCode::SERVICE_UNAVAILABLE),
    };
    Json(serde_json::json!({ "status": status }))
        .with_status(code)
        .into_response()
}

#[handler]
pub fn prometheus_metrics(ctx: Data<&Arc<AppContext>>) -> Response {
    Response::builder()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(ctx.metrics.render())
}
