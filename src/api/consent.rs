//! The page Microsoft's admin-consent flow returns to. It is a browser page, not JSON: the
//! customer's administrator lands here and reads what happened (`web::consent` renders it).

use std::sync::Arc;

use poem::web::{Data, Query};
use poem::{Response, handler};
use serde::Deserialize;

use crate::app::AppContext;
use crate::core::integrations::ConsentCallback;

/// The path registered as the app's redirect URI.
pub const CALLBACK_PATH: &str = "microsoft/consent/callback";

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    state: Option<String>,
    tenant: Option<String>,
    admin_consent: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

#[handler]
pub async fn consent_callback(
    ctx: Data<&Arc<AppContext>>,
    query: Query<CallbackQuery>,
) -> Response {
    let query = query.0;
    let result = ctx
        .integrations
        .complete_authenticator_consent(ConsentCallback {
            state: query.state,
            tenant: query.tenant,
            admin_consent: query.admin_consent,
            error: query.error,
            error_description: query.error_description,
        })
        .await;
    crate::web::consent::result_page(&result, &ctx.config.http.public_url)
}
