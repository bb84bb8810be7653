//! Facts about this Vouch instance.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi, Tags};

use super::ApiError;
use crate::app::AppContext;

#[derive(Tags)]
enum ApiTags {
    /// This Vouch instance.
    System,
}

/// Which Vouch answered and what it runs on.
#[derive(Debug, Object)]
pub struct SystemInfo {
    /// Always `vouch`.
    pub service: String,
    /// The Vouch version.
    pub version: String,
    /// The database backend: `sqlite` or `postgres`.
    pub database: String,
}

pub struct SystemApi;

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::System")]
impl SystemApi {
    /// Describe this Vouch instance.
    ///
    /// Needs no credentials; useful to check that a PSA or a script reaches the right server.
    #[oai(path = "/system/info", method = "get", operation_id = "system_info")]
    async fn info(&self, ctx: Data<&Arc<AppContext>>) -> Result<Json<SystemInfo>, ApiError> {
        Ok(Json(SystemInfo {
            service: "vouch".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            database: ctx.database_backend().to_owned(),
        }))
    }
}
