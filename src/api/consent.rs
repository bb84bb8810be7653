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
    // Anyone can open this address with any query: nothing longer than Microsoft ever sends
    // reaches the core (a cut state or tenant simply fails its check).
    let result = ctx
        .integrations
        .complete_authenticator_consent_report(ConsentCallback {
            state: capped(query.state, 512),
            tenant: capped(query.tenant, 256),
            admin_consent: capped(query.admin_consent, 16),
            error: capped(query.error, 128),
            error_description: capped(query.error_description, 1024),
        })
        .await;
    crate::web::consent::result_page(&result, &ctx.config.http.public_url)
}

/// `value` cut to its first `max` characters.
fn capped(value: Option<String>, max: usize) -> Option<String> {
    value.map(|v| {
        if v.chars().count() > max {
            v.chars().take(max).collect()
        } else {
            v
        }
    })
}

#[cfg(test)]
mod tests {
    use super::capped;

    #[test]
    fn callback_values_are_cut_to_what_microsoft_sends() {
        assert_eq!(capped(Some("abc".into()), 2).as_deref(), Some("ab"));
        assert_eq!(capped(Some("ééé".into()), 2).as_deref(), Some("éé"));
        assert_eq!(capped(Some("ok".into()), 2).as_deref(), Some("ok"));
        assert_eq!(capped(None, 2), None);
    }
}
