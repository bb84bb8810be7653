//! The MSPs' uploaded logos, at `/brand/{msp id}/logo/{version}.png`: what end-user pages
//! show in their header. The version is in the address, so a logo is cached for good and a
//! new upload is a new address; an old or unknown address is a 404.

use std::sync::Arc;

use poem::http::{Method, StatusCode, header};
use poem::web::{Data, Path};
use poem::{Response, handler};
use uuid::Uuid;

use crate::app::AppContext;
use crate::web::mount::{Mounted, endpoint};

/// The routes under `/brand`.
pub fn routes() -> Mounted {
    Mounted::new().at("/:msp_id/logo/:file", vec![(Method::GET, endpoint(logo))])
}

#[handler]
async fn logo(
    Path((msp_id, file)): Path<(String, String)>,
    ctx: Data<&Arc<AppContext>>,
) -> poem::Result<Response> {
    let not_found = || poem::Error::from_status(StatusCode::NOT_FOUND);
    let msp_id = Uuid::parse_str(&msp_id).map_err(|_| not_found())?;
    let version = file.strip_suffix(".png").ok_or_else(not_found)?;
    let logo = ctx
        .settings
        .logo(msp_id, version)
        .await
        .map_err(|err| {
            tracing::warn!(error = %err, "cannot read an uploaded logo");
            poem::Error::from_status(StatusCode::SERVICE_UNAVAILABLE)
        })?
        .ok_or_else(not_found)?;
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, logo.content_type.as_str())
        .header(header::CACHE_CONTROL, "public, max-age=31536000, immutable")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        // An image needs none of this; should anything open it as a document, it runs
        // nothing.
        .header(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'; sandbox",
        )
        .header(header::ETAG, format!("\"{}\"", logo.sha256))
        .body(logo.bytes))
}
