//! The landing page at `/`.

use std::sync::Arc;

use minijinja::context;
use poem::http::{StatusCode, header};
use poem::web::Data;
use poem::{Response, handler};

use crate::app::AppContext;
use crate::web::page::{self, Brand};

#[handler]
pub fn landing(ctx: Data<&Arc<AppContext>>) -> Response {
    page::respond(
        StatusCode::OK,
        "landing.html",
        context! {
            brand => Brand::vouch().view(),
            links => &ctx.landing_links,
            version => env!("CARGO_PKG_VERSION"),
        },
        &[(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'none'; \
             frame-ancestors 'none'"
                .to_owned(),
        )],
    )
}
