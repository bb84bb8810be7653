//! The landing page at `/`.

use std::sync::Arc;

use poem::handler;
use poem::web::{Data, Html};

use crate::app::AppContext;

#[handler]
pub fn landing(ctx: Data<&Arc<AppContext>>) -> Html<String> {
    let mut links = String::new();
    for (title, href) in &ctx.landing_links {
        links.push_str(&format!(
            "<li><a href=\"{}\">{}</a></li>",
            crate::web::escape_html(href),
            crate::web::escape_html(title)
        ));
    }
    Html(format!(
        include_str!("../landing.html"),
        version = env!("CARGO_PKG_VERSION"),
        links = links
    ))
}
