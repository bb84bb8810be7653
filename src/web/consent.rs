//! The page Microsoft's admin-consent flow returns to (`api::consent` handles the callback):
//! the customer's administrator lands here and reads what happened.

use minijinja::context;
use poem::Response;
use poem::http::{StatusCode, header};
use url::Url;

use crate::core::integrations::ConsentReport;
use crate::web::page::{self, Brand};

/// The result page of an admin-consent callback, naming each prerequisite that passed or
/// failed; `return_url` leads back to Vouch.
pub fn result_page(report: &ConsentReport, return_url: &Url) -> Response {
    let values = match &report.result {
        Ok(view) => context! {
            brand => Brand::vouch().view(),
            connected => true,
            heading => "Microsoft Authenticator is connected",
            tenant_name => &view.tenant_name,
            prerequisites => &report.prerequisites,
            return_url => return_url.as_str(),
        },
        Err(err) => context! {
            brand => Brand::vouch().view(),
            connected => false,
            heading => "The connection was not completed",
            message => err.to_string(),
            code => err.code(),
            prerequisites => &report.prerequisites,
            return_url => return_url.as_str(),
        },
    };
    page::respond(
        StatusCode::OK,
        "consent.html",
        values,
        &[
            // The callback's URL carries the consent state.
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (header::REFERRER_POLICY, "no-referrer".to_owned()),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'none'; \
                 frame-ancestors 'none'"
                    .to_owned(),
            ),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::integrations::IntegrationError;

    fn body_of(response: Response) -> String {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(response.into_body().into_string())
            .unwrap()
    }

    #[test]
    fn a_missing_licence_names_the_prerequisites_that_passed_and_the_one_that_failed() {
        let back = Url::parse("https://vouch.example/").unwrap();
        let err = IntegrationError::Microsoft(crate::microsoft::MicrosoftError::new(
            crate::microsoft::MicrosoftErrorKind::NoP1Licence,
        ));
        let report = ConsentReport::new(Err(err.clone()), Some(2));
        let body = body_of(result_page(&report, &back));
        assert_eq!(body.matches("Passed:").count(), 2, "{body}");
        assert_eq!(body.matches("Failed:").count(), 1, "{body}");
        assert_eq!(body.matches("Not checked:").count(), 1, "{body}");
        assert!(body.contains("Entra ID P1"), "{body}");
        assert_eq!(body.matches("<span class=\"detail\">").count(), 1, "{body}");
    }

    #[test]
    fn a_failed_consent_says_what_happened_and_leads_back() {
        let back = Url::parse("https://vouch.example/?a=1&b=2").unwrap();
        let report = ConsentReport::new(Err(IntegrationError::ConsentStateInvalid), None);
        let response = result_page(&report, &back);
        assert_eq!(response.status(), StatusCode::OK);
        let csp = response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            csp.contains("default-src 'none'; style-src 'self';"),
            "{csp}"
        );
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body = body_of(response);
        assert!(body.contains("<h1 id=\"heading\">The connection was not completed</h1>"));
        assert!(body.contains("Error code: consent_state_invalid"), "{body}");
        assert!(body.contains("?a=1&amp;b=2"), "{body}");
        // Nothing was checked: each prerequisite says so.
        assert_eq!(body.matches("Not checked").count(), 4, "{body}");
        assert!(
            !body.contains("<style") && !body.contains("style="),
            "{body}"
        );
    }
}
