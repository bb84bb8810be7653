//! `GET /console`: the console's home. For now it says who is signed in; the sections to
//! come are in the navigation.

use minijinja::context;
use poem::http::StatusCode;
use poem::{Response, handler};

use super::{ConsoleUser, respond};

#[handler]
pub fn home(user: ConsoleUser) -> Response {
    respond(
        StatusCode::OK,
        "console/home.html",
        context! {
            brand => user.brand.view(),
            shell => user.shell("/console"),
            email => user.account.email,
            name => user.account.name,
            role => user.account.role.display_name(),
            msp => user.msp.name,
            is_admin => user.is_admin(),
            second_factor => user.account.totp_enabled,
        },
        &user.brand,
    )
}
