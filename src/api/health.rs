//! Operational endpoints outside the OpenAPI document: liveness, readiness and metrics.

use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{IntoResponse, Response, handler};

use crate::app::AppContext;

#[handler]
pub fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

#[handler]
pub async fn readyz(ctx: Data<&Arc<AppContext>>) -> Response {
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
pub fn prometheus_metrics(ctx: Data<&Arc<AppContext>>) -> Response {
    Response::builder()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(ctx.metrics.render())
}
