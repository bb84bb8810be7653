//! The page Microsoft's admin-consent flow returns to. It is a browser page, not JSON: the
//! customer's administrator lands here and reads what happened.

use std::sync::Arc;

use poem::handler;
use poem::web::{Data, Html, Query};
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
) -> Html<String> {
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
    let return_url = ctx.config.http.public_url.to_string();
    let (title, body) = match result {
        Ok(view) => (
            "Microsoft Authenticator is connected".to_owned(),
            format!(
                "<p><strong>{}</strong> is connected: Vouch can now verify its users with a Microsoft Authenticator push.</p>\
                 <p><a class=\"button\" href=\"{}\">Tap to finish onboarding</a></p>",
                crate::web::escape_html(&view.tenant_name),
                crate::web::escape_html(&return_url)
            ),
        ),
        Err(err) => (
            "The connection was not completed".to_owned(),
            format!(
                "<p>{}</p><p class=\"code\">Error code: {}</p><p><a class=\"button\" href=\"{}\">Back to Vouch</a></p>",
                crate::web::escape_html(&err.to_string()),
                crate::web::escape_html(err.code().as_str()),
                crate::web::escape_html(&return_url)
            ),
        ),
    };
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#1b2733}}\
         .button{{display:inline-block;padding:.8rem 1.4rem;background:#0b5cad;color:#fff;border-radius:.4rem;text-decoration:none;font-weight:600}}\
         .code{{color:#52606d;font-size:.9rem}}</style></head><body><h1>{title}</h1>{body}</body></html>"
    ))
}
