//! The page of a one-tap verification link: "Are you on the phone with {MSP}? Yes, it's me."
//! Opening the link (GET) changes nothing, so link-preview bots cannot approve it; only the
//! user's tap (POST) answers.
//!
//! It carries the MSP's branding as the secure-share pages do, through the same layout
//! (`msp_base.html`): logo or name, colour and support phone, whenever the link is one of
//! the MSP's (also once it has expired or been answered).

use std::sync::Arc;

use minijinja::context;
use poem::http::{Method, StatusCode, header};
use poem::web::{Data, Form, Path};
use poem::{Response, handler};
use serde::{Deserialize, Serialize};

use crate::app::AppContext;
use crate::core::error::CoreError;
use crate::core::share::ShareBranding;
use crate::core::verification::LinkState;

use crate::web::mount::{Mounted, endpoint};
use crate::web::page::{self, Brand};

pub fn routes() -> Mounted {
    Mounted::new().at(
        "/:token",
        vec![
            (Method::GET, endpoint(show)),
            (Method::POST, endpoint(answer)),
        ],
    )
}

#[derive(Deserialize)]
struct Answer {
    answer: String,
}

/// What the page says; `verify.html` words each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum View {
    /// The question, with the two answers.
    Ask,
    Confirmed,
    Denied,
    Expired,
    Answered,
    NotFound,
}

impl View {
    fn status(self) -> StatusCode {
        match self {
            View::Ask | View::Confirmed | View::Denied => StatusCode::OK,
            View::Expired | View::Answered => StatusCode::GONE,
            View::NotFound => StatusCode::NOT_FOUND,
        }
    }
}

#[handler]
async fn show(ctx: Data<&Arc<AppContext>>, Path(token): Path<String>) -> Response {
    let Ok((verification, state)) = ctx.verifications.link_status(&token).await else {
        return page(View::NotFound, &Brand::vouch());
    };
    let view = match state {
        LinkState::Open => View::Ask,
        LinkState::Expired => View::Expired,
        LinkState::Used => View::Answered,
    };
    page(view, &brand_of(&ctx, verification.msp_id).await)
}

#[handler]
async fn answer(
    ctx: Data<&Arc<AppContext>>,
    Path(token): Path<String>,
    Form(form): Form<Answer>,
) -> Response {
    let Ok((verification, _)) = ctx.verifications.link_status(&token).await else {
        return page(View::NotFound, &Brand::vouch());
    };
    let Ok(Some(msp)) = ctx.store.get_msp(verification.msp_id).await else {
        return page(View::NotFound, &Brand::vouch());
    };
    let brand = Brand::of(&ShareBranding::of(&msp, &ctx.config.http.public_url));
    let confirmed = form.answer == "yes";
    match ctx.verifications.answer_link(&msp, &token, confirmed).await {
        Ok(_) if confirmed => page(View::Confirmed, &brand),
        Ok(_) => page(View::Denied, &brand),
        Err(CoreError::CodeExpired) => page(View::Expired, &brand),
        Err(_) => page(View::Answered, &brand),
    }
}

/// The MSP's look, or a neutral name when its record cannot be read.
async fn brand_of(ctx: &AppContext, msp_id: uuid::Uuid) -> Brand {
    match ctx.store.get_msp(msp_id).await {
        Ok(Some(msp)) => Brand::of(&ShareBranding::of(&msp, &ctx.config.http.public_url)),
        _ => Brand::unnamed_msp(),
    }
}

fn page(view: View, brand: &Brand) -> Response {
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src {}; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
        brand.img_src()
    );
    page::respond(
        view.status(),
        "verify.html",
        context! { brand => brand.view(), view },
        &[
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (header::REFERRER_POLICY, "no-referrer".to_owned()),
            (
                header::HeaderName::from_static("x-robots-tag"),
                "noindex, nofollow".to_owned(),
            ),
            (header::CONTENT_SECURITY_POLICY, csp),
        ],
    )
}

#[cfg(test)]
mod tests {
    use url::Url;

    use super::*;

    fn northwind() -> Brand {
        Brand::of(&ShareBranding {
            msp_name: "Northwind <IT>".into(),
            logo_url: Some(Url::parse("https://cdn.example/logo.png").unwrap()),
            color: "#123456".into(),
            support_phone: Some("+1 206 555 0199".into()),
        })
    }

    fn body_of(response: Response) -> String {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(response.into_body().into_string())
            .unwrap()
    }

    #[test]
    fn every_answer_renders_with_its_status_and_the_msps_brand() {
        for (view, words) in [
            (View::Ask, "is asking whether you are on the phone"),
            (View::Confirmed, "now knows it is you"),
            (View::Denied, "has been told this was not you"),
            (View::Expired, "This link has expired."),
            (View::Answered, "already been answered"),
            (View::NotFound, "This link is not valid."),
        ] {
            let response = page(view, &northwind());
            assert_eq!(response.status(), view.status());
            let csp = response.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .to_owned();
            assert!(csp.contains("style-src 'self';"), "{csp}");
            assert!(!csp.contains("unsafe-inline"), "{csp}");
            assert!(csp.contains("img-src https://cdn.example;"), "{csp}");
            assert_eq!(response.headers()["cache-control"], "no-store");
            let body = body_of(response);
            assert!(body.contains(words), "{view:?}: {body}");
            assert!(body.contains("/pods/assets/brand/123456.css"), "{body}");
            assert!(
                body.contains("logo.png\" alt=\"Northwind &lt;IT&gt;\">"),
                "{view:?}: {body}"
            );
            assert!(
                body.contains(
                    "Call Northwind &lt;IT&gt; at <a href=\"tel:+12065550199\">+1 206 555 0199</a>"
                ),
                "{view:?}: {body}"
            );
            assert!(
                !body.contains("<style") && !body.contains("style="),
                "{body}"
            );
        }
        let body = body_of(page(View::Ask, &northwind()));
        assert!(
            body.contains("<strong>Northwind &lt;IT&gt;</strong> is asking"),
            "{body}"
        );
        assert!(body.contains("<title>Is it you?</title>"), "{body}");
        assert!(
            body.contains("<h1 id=\"heading\">Is it you?</h1>"),
            "{body}"
        );
        assert!(body.contains("name=\"answer\" value=\"yes\""), "{body}");
    }
}
