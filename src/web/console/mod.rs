//! The MSP console: the MSP's own web app under `/console`, server-rendered through the
//! page layout (`web::page`, templates under `templates/console/`).
//!
//! - [`session`]: the [`ConsoleUser`] extractor every signed-in page takes (it loads the
//!   session from the `vouch_console` cookie, refreshes its idle timeout, and redirects to
//!   the sign-in page without one), [`ConsoleUser::require_admin`] for the admins' pages,
//!   and the extractors every form post takes: [`session::CheckedForm`] and, for admins,
//!   [`session::AdminForm`] (signed in, admin, form parsed, CSRF token checked).
//! - [`confirm`]: the confirmation page of every destructive action (remove, delete,
//!   disable, revoke): the first post only asks, the second (`confirm=yes`) acts.
//! - [`sign_in`]: sign-in, the second factor, the set-up link (password, then TOTP
//!   enrolment with its QR code and recovery codes) and sign-out.
//! - [`home`], [`users`]: the home shell and the admins' user management.
//! - [`integrations`], [`psa_connections`], [`companies`]: the admins' set-up pages
//!   (Security Integrations, PSA Connections, Companies).
//!
//! Every console page is served with a strict CSP (`default-src 'none'`, styles from this
//! origin only, no script, `frame-ancestors 'none'`: the console is never framed, unlike
//! the pod), `no-store`, and no inline CSS or script. The one exception is a page carrying
//! the pod's verify and reset panel ([`tickets`]): it may load the pod's modules from this
//! origin and call the pod API on it ([`respond_with_panel`]).
//! - [`tickets`], [`contacts`], [`shares`]: the technician's pages (Tickets with the pod's
//!   panel, the Contacts search and a user's history, Secure Data Sharing).

pub mod account;
pub mod audit;
pub mod companies;
pub mod confirm;
pub mod contacts;
pub mod home;
pub mod integrations;
pub mod psa_connections;
pub mod session;
pub mod settings;
pub mod shares;
pub mod sign_in;
pub mod tickets;
pub mod users;

use minijinja::Value;
use poem::http::{Method, StatusCode, header};
use poem::{Request, Response, handler};
use serde::Serialize;

use crate::web::mount::{Handler, Mounted, endpoint};
use crate::web::page::{self, Brand};

pub use session::{ConsoleUser, PendingSession};

/// The session cookie's name.
pub const COOKIE: &str = "vouch_console";
/// Where the console lives (and the cookie's `Path`).
pub const BASE_PATH: &str = "/console";
/// The sign-in page, where unsigned requests are sent.
pub const SIGN_IN_PATH: &str = "/console/sign-in";

const CONSOLE_CSS: &str = include_str!("../assets/console.css");

/// The console's routes, mounted at [`BASE_PATH`].
pub fn routes() -> Mounted {
    let get = |ep: Handler| vec![(Method::GET, ep)];
    let post = |ep: Handler| vec![(Method::POST, ep)];
    let both = |page: Handler, form: Handler| vec![(Method::GET, page), (Method::POST, form)];
    Mounted::new()
        .at("/", get(endpoint(home::home)))
        .at(
            "/sign-in",
            both(endpoint(sign_in::sign_in_page), endpoint(sign_in::sign_in)),
        )
        .at(
            "/sign-in/code",
            both(endpoint(sign_in::code_page), endpoint(sign_in::code)),
        )
        .at(
            "/setup/:token",
            both(endpoint(sign_in::setup_page), endpoint(sign_in::setup)),
        )
        .at(
            "/two-factor",
            both(endpoint(sign_in::enrol_page), endpoint(sign_in::enrol)),
        )
        .at("/sign-out", post(endpoint(sign_in::sign_out)))
        .at("/users", get(endpoint(users::users_page)))
        .at("/users/invite", post(endpoint(users::invite)))
        .at("/users/:id/:action", post(endpoint(users::act)))
        .at("/tickets", get(endpoint(tickets::tickets_page)))
        .at("/contacts", get(endpoint(contacts::contacts_page)))
        .at(
            "/contacts/:tenant/:object_id",
            get(endpoint(contacts::contact_page)),
        )
        .at(
            "/shares",
            both(endpoint(shares::shares_page), endpoint(shares::send)),
        )
        .at("/shares/:id/revoke", post(endpoint(shares::revoke)))
        .at(
            "/integrations",
            get(endpoint(integrations::integrations_page)),
        )
        .at(
            "/integrations/authenticator/consent",
            post(endpoint(integrations::consent_link)),
        )
        .at(
            "/integrations/identity-management",
            both(
                endpoint(integrations::identity_form),
                endpoint(integrations::identity_connect),
            ),
        )
        .at(
            "/integrations/:id/:action",
            post(endpoint(integrations::act)),
        )
        .at(
            "/psa-connections",
            get(endpoint(psa_connections::list_page)),
        )
        .at(
            "/psa-connections/new/:kind",
            both(
                endpoint(psa_connections::new_form),
                endpoint(psa_connections::create),
            ),
        )
        .at(
            "/psa-connections/:id",
            both(
                endpoint(psa_connections::edit_form),
                endpoint(psa_connections::update),
            ),
        )
        .at(
            "/psa-connections/:id/setup",
            get(endpoint(psa_connections::setup_page)),
        )
        .at(
            "/psa-connections/:id/:action",
            post(endpoint(psa_connections::act)),
        )
        .at("/companies", get(endpoint(companies::companies_page)))
        .at("/companies/accept", post(endpoint(companies::accept)))
        .at(
            "/companies/accept-all",
            post(endpoint(companies::accept_all)),
        )
        .at("/users/api-keys", post(endpoint(users::create_key)))
        .at(
            "/users/api-keys/:id/revoke",
            post(endpoint(users::revoke_key)),
        )
        .at(
            "/account",
            both(
                endpoint(account::account_page),
                endpoint(account::change_password),
            ),
        )
        .at(
            "/settings",
            both(endpoint(settings::settings_page), endpoint(settings::save)),
        )
        .at("/settings/logo", post(endpoint(settings::upload_logo)))
        .at(
            "/settings/logo/remove",
            post(endpoint(settings::remove_logo)),
        )
        .at("/audit", get(endpoint(audit::audit_page)))
        .at("/audit.csv", get(endpoint(audit::audit_csv)))
        .at("/assets/console.css", get(endpoint(console_css)))
}

/// `GET /console/assets/console.css`: the console's own styles, on top of `page.css`.
#[handler]
fn console_css() -> Response {
    page::asset(CONSOLE_CSS, "text/css; charset=utf-8")
}

/// One entry of the console's navigation.
#[derive(Debug, Clone, Serialize)]
pub struct NavItem {
    pub title: &'static str,
    /// `None` for a section still to come.
    pub href: Option<&'static str>,
    pub current: bool,
}

/// The console's sections, in the order of the navigation; those with an address are built.
/// `admin_only` sections are left out of a technician's navigation.
const SECTIONS: &[(&str, Option<&str>, bool)] = &[
    ("Home", Some("/console"), false),
    ("Security Integrations", Some("/console/integrations"), true),
    ("PSA Connections", Some("/console/psa-connections"), true),
    ("Companies", Some("/console/companies"), true),
    ("Contacts", Some("/console/contacts"), false),
    ("Tickets", Some("/console/tickets"), false),
    ("Secure Data Sharing", Some("/console/shares"), false),
    ("Audit", Some("/console/audit"), false),
    ("Settings", Some("/console/settings"), true),
    ("Users and API keys", Some("/console/users"), true),
];

/// Whether the console address `path` (as the route table spells it, under [`BASE_PATH`])
/// belongs to an admin-only section: it is the section's address or under it. The
/// permission tests walk the route table with this, so a new admin page is checked as soon
/// as its section has an address.
pub fn admin_only(path: &str) -> bool {
    SECTIONS
        .iter()
        .filter(|(_, _, admin_only)| *admin_only)
        .filter_map(|(_, href, _)| *href)
        .any(|href| path == href || path.strip_prefix(href).is_some_and(|r| r.starts_with('/')))
}

/// The section the console address `path` belongs to (its address, as the navigation
/// marks it): the longest section address it is or is under, else the home.
pub fn section_of(path: &str) -> &'static str {
    SECTIONS
        .iter()
        .filter_map(|(_, href, _)| *href)
        .filter(|href| path == *href || path.strip_prefix(href).is_some_and(|r| r.starts_with('/')))
        .max_by_key(|href| href.len())
        .unwrap_or(BASE_PATH)
}

/// The navigation a user sees, `current` marking the page's section.
pub fn navigation(is_admin: bool, current: &str) -> Vec<NavItem> {
    SECTIONS
        .iter()
        .filter(|(_, _, admin_only)| is_admin || !admin_only)
        .map(|&(title, href, _)| NavItem {
            title,
            href,
            current: href == Some(current),
        })
        .collect()
}

/// The headers of every console page: no caching, never framed, strict CSP.
fn headers(brand: &Brand) -> Vec<(header::HeaderName, String)> {
    headers_with(brand, "")
}

/// The console's headers, with `extra` directives added to its CSP.
fn headers_with(brand: &Brand, extra: &str) -> Vec<(header::HeaderName, String)> {
    vec![
        (header::CACHE_CONTROL, "no-store".to_owned()),
        // Not `no-referrer`: under it browsers send `Origin: null` with a form post, and the
        // console checks the Origin of every post.
        (header::REFERRER_POLICY, "same-origin".to_owned()),
        (header::X_FRAME_OPTIONS, "DENY".to_owned()),
        (
            header::HeaderName::from_static("x-robots-tag"),
            "noindex, nofollow".to_owned(),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            format!(
                "default-src 'none'; {extra}style-src 'self'; img-src {}; form-action 'self'; \
                 frame-ancestors 'none'; base-uri 'none'",
                brand.img_src()
            ),
        ),
    ]
}

/// A console page with the console's headers.
pub fn respond(status: StatusCode, template: &str, values: Value, brand: &Brand) -> Response {
    page::respond(status, template, values, &headers(brand))
}

/// A console page that carries the pod's verify and reset panel (Tickets, Contacts): the
/// console's headers, and the pod's modules from this origin (`script-src 'self'`), which
/// call the pod API on this origin (`connect-src 'self'`). No other console page runs script.
pub fn respond_with_panel(
    status: StatusCode,
    template: &str,
    values: Value,
    brand: &Brand,
) -> Response {
    page::respond(
        status,
        template,
        values,
        &headers_with(brand, "script-src 'self'; connect-src 'self'; "),
    )
}

/// A page that only says something (refused, not found, failed), with a way on.
pub fn message(
    status: StatusCode,
    brand: &Brand,
    shell: Option<Value>,
    title: &str,
    text: &str,
    link: (&str, &str),
) -> Response {
    respond(
        status,
        "console/message.html",
        minijinja::context! {
            brand => brand.view(),
            shell => shell,
            title => title,
            text => text,
            link_href => link.0,
            link_text => link.1,
        },
        brand,
    )
}

/// `303 See Other` to `location` (after a form post, or to the sign-in page).
pub fn redirect(location: &str) -> Response {
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, location)
        .header(header::CACHE_CONTROL, "no-store")
        .finish()
}

/// The `Set-Cookie` value that hands the browser a session token: only sent back to
/// `/console`, never readable by script, `Secure` when Vouch is reached over https.
pub fn session_cookie(token: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={token}; Path={BASE_PATH}; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn cleared_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; Path={BASE_PATH}; Max-Age=0; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The session token the request's cookie carries, if any.
pub fn cookie_token(req: &Request) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// Whether a form post comes from a page of this Vouch: its `Origin` (or, when a browser
/// sends none, its `Referer`) must be the public URL's origin. A post with neither is
/// refused: every browser that runs the console sends one of them.
pub fn same_origin(req: &Request, public_url: &url::Url) -> bool {
    let expected = public_url.origin().ascii_serialization();
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        return origin.to_str().is_ok_and(|origin| origin == expected);
    }
    req.headers()
        .get(header::REFERER)
        .and_then(|referer| referer.to_str().ok())
        .and_then(|referer| url::Url::parse(referer).ok())
        .is_some_and(|referer| referer.origin().ascii_serialization() == expected)
}

/// Compares two tokens in constant time.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_http_only_lax_under_console_and_secure_on_https() {
        assert_eq!(
            session_cookie("abc", false),
            "vouch_console=abc; Path=/console; HttpOnly; SameSite=Lax"
        );
        assert!(session_cookie("abc", true).ends_with("; Secure"));
        assert!(cleared_cookie(false).contains("Max-Age=0"));
    }

    #[test]
    fn only_this_origin_may_post() {
        let public = url::Url::parse("https://vouch.example/").unwrap();
        let with = |name: &str, value: &str| {
            Request::builder()
                .method(poem::http::Method::POST)
                .header(name, value)
                .finish()
        };
        assert!(same_origin(
            &with("origin", "https://vouch.example"),
            &public
        ));
        assert!(!same_origin(
            &with("origin", "https://evil.example"),
            &public
        ));
        assert!(!same_origin(&with("origin", "null"), &public));
        assert!(same_origin(
            &with("referer", "https://vouch.example/console/users"),
            &public
        ));
        assert!(!same_origin(
            &with("referer", "https://vouch.example.evil/console"),
            &public
        ));
        assert!(!same_origin(&Request::builder().finish(), &public));
    }

    #[test]
    fn a_technician_sees_no_admin_sections() {
        let admin = navigation(true, "/console/users");
        assert_eq!(admin.len(), 10);
        assert!(
            admin
                .iter()
                .any(|i| i.current && i.title == "Users and API keys")
        );
        let technician = navigation(false, "/console");
        assert!(technician.iter().all(|i| i.title != "Users and API keys"));
        assert!(technician.iter().any(|i| i.title == "Contacts"));
    }

    #[test]
    fn an_address_belongs_to_the_longest_section_it_is_under() {
        assert_eq!(
            section_of("/console/users/api-keys/x/revoke"),
            "/console/users"
        );
        assert_eq!(section_of("/console/settings/logo"), "/console/settings");
        assert_eq!(section_of("/console/settingsx"), "/console");
        assert_eq!(section_of("/console/shares/1/revoke"), "/console/shares");
        assert_eq!(section_of("/console"), "/console");
    }
}
