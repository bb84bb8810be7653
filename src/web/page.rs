//! The one page layout. Every HTML page Vouch serves renders here, from templates that extend
//! `templates/base.html`: the pod (`pods/pod.html`), the secure-share pages, the one-tap
//! verification page, the admin-consent result and the landing page. Values are
//! HTML-escaped, and a template that reads a variable nobody passed fails instead of printing
//! nothing. The templates are compiled into the binary and parsed once. Every page passes
//! its `brand` ([`Brand::view`]): the MSP's name, logo and colour, or Vouch's own.
//!
//! The brand colour reaches every page in one way: the layout links the brand stylesheet of
//! the page's (validated) colour, `/pods/assets/brand/{rrggbb}.css`, which sets the CSS
//! custom properties the page and pod stylesheets use. No page carries inline CSS, so every
//! CSP says `style-src 'self'`.

use std::sync::LazyLock;

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value, context};
use poem::http::StatusCode;
use poem::http::header::{self, HeaderName, HeaderValue};
use poem::web::Path;
use poem::{Response, handler};
use url::Url;

use crate::core::share::{DEFAULT_BRAND_COLOR, ShareBranding};

/// Where the pages' stylesheets and scripts are served (under the pod routes).
pub const ASSETS: &str = "/pods/assets";

const PAGE_CSS: &str = include_str!("assets/page.css");

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Set here rather than left to minijinja's default, so that every `.html` template is
    // escaped whatever that default becomes. The brand stylesheet holds only values built
    // here from a parsed colour.
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    // A constant every page links its files from.
    env.add_global("assets", Value::from_safe_string(ASSETS.to_owned()));
    // Where this build's pod files are (a digest in the address: see `web::pod`).
    env.add_global(
        "pod_assets",
        Value::from_safe_string(crate::web::pod::pod_assets()),
    );
    for (name, source) in [
        ("base.html", include_str!("templates/base.html")),
        ("pod.html", include_str!("../../pods/pod.html")),
        ("pod_panel.html", include_str!("../../pods/pod_panel.html")),
        (
            "pod_refused.html",
            include_str!("templates/pod_refused.html"),
        ),
        ("msp_base.html", include_str!("templates/msp_base.html")),
        ("share_base.html", include_str!("templates/share_base.html")),
        (
            "share_available.html",
            include_str!("templates/share_available.html"),
        ),
        (
            "share_revealed.html",
            include_str!("templates/share_revealed.html"),
        ),
        (
            "share_unavailable.html",
            include_str!("templates/share_unavailable.html"),
        ),
        ("verify.html", include_str!("templates/verify.html")),
        ("consent.html", include_str!("templates/consent.html")),
        ("landing.html", include_str!("templates/landing.html")),
        ("brand.css", include_str!("templates/brand.css")),
        (
            "console/base.html",
            include_str!("templates/console/base.html"),
        ),
        (
            "console/sign_in.html",
            include_str!("templates/console/sign_in.html"),
        ),
        (
            "console/code.html",
            include_str!("templates/console/code.html"),
        ),
        (
            "console/setup.html",
            include_str!("templates/console/setup.html"),
        ),
        (
            "console/enrol.html",
            include_str!("templates/console/enrol.html"),
        ),
        (
            "console/recovery.html",
            include_str!("templates/console/recovery.html"),
        ),
        (
            "console/message.html",
            include_str!("templates/console/message.html"),
        ),
        (
            "console/confirm.html",
            include_str!("templates/console/confirm.html"),
        ),
        (
            "console/home.html",
            include_str!("templates/console/home.html"),
        ),
        (
            "console/users.html",
            include_str!("templates/console/users.html"),
        ),
        (
            "console/tickets.html",
            include_str!("templates/console/tickets.html"),
        ),
        (
            "console/contacts.html",
            include_str!("templates/console/contacts.html"),
        ),
        (
            "console/contacts_user.html",
            include_str!("templates/console/contacts_user.html"),
        ),
        (
            "console/shares.html",
            include_str!("templates/console/shares.html"),
        ),
        // The admins' set-up pages (Security Integrations, PSA Connections, Companies).
        (
            "console/integrations.html",
            include_str!("templates/console/integrations.html"),
        ),
        (
            "console/integrations_identity.html",
            include_str!("templates/console/integrations_identity.html"),
        ),
        (
            "console/psa_list.html",
            include_str!("templates/console/psa_list.html"),
        ),
        (
            "console/psa_form.html",
            include_str!("templates/console/psa_form.html"),
        ),
        (
            "console/psa_setup.html",
            include_str!("templates/console/psa_setup.html"),
        ),
        (
            "console/companies.html",
            include_str!("templates/console/companies.html"),
        ),
        (
            "console/audit.html",
            include_str!("templates/console/audit.html"),
        ),
        (
            "console/settings.html",
            include_str!("templates/console/settings.html"),
        ),
        (
            "console/account.html",
            include_str!("templates/console/account.html"),
        ),
    ] {
        env.add_template(name, source)
            .expect("the page templates are valid");
    }
    // The verify and reset panel is static markup that pod.js fills in: rendered here once,
    // so a pod load (the hot page) does not evaluate the panel's macros every time.
    let panel = panel_markup(&env).expect("the verify and reset panel renders");
    env.add_global("pod_panel", panel);
    env
});

/// `pod_panel.ticket`, `pod_panel.contact` and `pod_panel.after`: the panel's parts (see
/// `pods/pod_panel.html`), rendered, for the pages that carry the panel.
fn panel_markup(env: &Environment<'static>) -> Result<Value, minijinja::Error> {
    let template = env.get_template("pod_panel.html")?;
    let captured = template.render_captured(())?;
    let part = |name: &str, args: &[Value]| -> Result<Value, minijinja::Error> {
        Ok(Value::from_safe_string(
            captured.state().call_macro(name, args)?,
        ))
    };
    Ok(context! {
        ticket => part("inside", &[])?,
        contact => part("inside", &[Value::from("contact")])?,
        after => part("after", &[])?,
    })
}

/// A colour as `#rrggbb`, parsed from `#rgb` or `#rrggbb`: nothing else reaches the CSS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Color([u8; 3]);

impl Color {
    pub fn parse(value: &str) -> Option<Color> {
        let hex = value.strip_prefix('#')?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let digit = |i: usize| u8::from_str_radix(&hex[i..i + 1], 16).ok();
        match hex.len() {
            3 => Some(Color([digit(0)? * 17, digit(1)? * 17, digit(2)? * 17])),
            6 => Some(Color([
                u8::from_str_radix(&hex[0..2], 16).ok()?,
                u8::from_str_radix(&hex[2..4], 16).ok()?,
                u8::from_str_radix(&hex[4..6], 16).ok()?,
            ])),
            _ => None,
        }
    }

    /// Vouch's own colour, for pages that know no MSP or whose MSP set none.
    pub fn vouch() -> Color {
        Color::parse(DEFAULT_BRAND_COLOR).expect("the default brand colour is a hex colour")
    }

    /// `rrggbb`, lower case, as in the brand stylesheet's file name.
    fn digits(self) -> String {
        hex::encode(self.0)
    }

    fn css(self) -> String {
        format!("#{}", self.digits())
    }

    /// This colour moved `share` of the way towards `other`.
    fn mix(self, other: [u8; 3], share: f64) -> Color {
        let channel = |i: usize| {
            (f64::from(self.0[i]) * (1.0 - share) + f64::from(other[i]) * share).round() as u8
        };
        Color([channel(0), channel(1), channel(2)])
    }

    /// Black or white, whichever reads better on this colour (WCAG contrast).
    fn text_on(self) -> Color {
        let channel = |i: usize| {
            let c = f64::from(self.0[i]) / 255.0;
            if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        let luminance = 0.2126 * channel(0) + 0.7152 * channel(1) + 0.0722 * channel(2);
        let with_white = 1.05 / (luminance + 0.05);
        let with_black = (luminance + 0.05) / 0.05;
        if with_white >= with_black {
            Color([0xff; 3])
        } else {
            Color([0x11; 3])
        }
    }
}

/// Whose page it is: the MSP's name, logo and colour, or Vouch's own look.
#[derive(Debug, Clone)]
pub struct Brand {
    /// An `https` URL, or Vouch's own (an uploaded logo).
    logo_url: Option<Url>,
    color: Color,
    /// What the templates see as `brand`, built once (the pod renders on every load).
    view: Value,
}

static VOUCH_BRAND: LazyLock<Brand> =
    LazyLock::new(|| Brand::new(None, None, Color::vouch(), None));

impl Brand {
    fn new(
        name: Option<&str>,
        logo_url: Option<Url>,
        color: Color,
        support_phone: Option<&str>,
    ) -> Brand {
        let view = context! {
            name,
            logo_url => logo_url.as_ref().map(Url::as_str),
            // Built from constants and hex digits only.
            stylesheet => Value::from_safe_string(format!("{ASSETS}/brand/{}.css", color.digits())),
            support_phone,
            // `+` and digits only, for a `tel:` link.
            support_phone_tel => support_phone.map(tel_digits),
        };
        Brand {
            logo_url,
            color,
            view,
        }
    }

    /// Pages that know no MSP.
    pub fn vouch() -> Brand {
        VOUCH_BRAND.clone()
    }

    /// An MSP whose record could not be read: a neutral name in Vouch's colours.
    pub fn unnamed_msp() -> Brand {
        Brand::new(Some("Your IT provider"), None, Color::vouch(), None)
    }

    pub fn of(branding: &ShareBranding) -> Brand {
        Brand::new(
            Some(&branding.msp_name),
            // `https`, or Vouch's own address (an uploaded logo): see `ShareBranding`.
            branding.logo_url.clone(),
            // Parsed again here because it goes into CSS.
            Color::parse(&branding.color).unwrap_or_else(Color::vouch),
            branding.support_phone.as_deref(),
        )
    }

    pub fn color(&self) -> Color {
        self.color
    }

    /// What the templates read as `brand`: `name`, `logo_url`, `stylesheet`, and
    /// `support_phone` with `support_phone_tel` (its `tel:` form), or none.
    pub fn view(&self) -> Value {
        self.view.clone()
    }

    /// The CSP `img-src` that lets the logo, and nothing else, load.
    pub fn img_src(&self) -> String {
        match &self.logo_url {
            Some(url) => url.origin().ascii_serialization(),
            None => "'none'".to_owned(),
        }
    }
}

/// `+1 (206) 555-0199` as a `tel:` link wants it: `+12065550199`.
fn tel_digits(phone: &str) -> String {
    phone
        .chars()
        .enumerate()
        .filter(|(i, c)| c.is_ascii_digit() || (*i == 0 && *c == '+'))
        .map(|(_, c)| c)
        .collect()
}

/// Renders `template` with `values`, which hold the page's `brand` (its [`Brand::view`]) and
/// the page's own values. One map, not a merge of two: the pod renders on every load.
/// Templates fail only through a bug (a variable the handler does not pass, such as a
/// missing `brand`); the tests render every page.
pub fn render(template: &str, values: Value) -> Result<String, minijinja::Error> {
    TEMPLATES.get_template(template)?.render(values)
}

/// The HTML response of a rendered page with its (security) headers, or a plain 500
/// (logged) when it did not render or a header is not a valid value: a page never goes out
/// without the headers it asked for.
pub fn respond(
    status: StatusCode,
    template: &str,
    values: Value,
    headers: &[(HeaderName, String)],
) -> Response {
    let rendered = render(template, values).map_err(|err| err.to_string());
    let checked = headers
        .iter()
        .map(|(name, value)| {
            HeaderValue::from_str(value)
                .map(|value| (name.clone(), value))
                .map_err(|_| format!("invalid value for header {name}"))
        })
        .collect::<Result<Vec<_>, _>>();
    let (body, headers) = match (rendered, checked) {
        (Ok(body), Ok(headers)) => (body, headers),
        (Err(err), _) | (_, Err(err)) => {
            tracing::error!(error = %err, template, "page failed to render");
            return Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .content_type("text/plain; charset=utf-8")
                .header(header::CACHE_CONTROL, "no-store")
                .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
                .body("Something went wrong. Try again in a few minutes.");
        }
    };
    let mut response = Response::builder()
        .status(status)
        .content_type("text/html; charset=utf-8")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .body(body);
    response.headers_mut().extend(headers);
    response
}

/// A static file of the pages: cached briefly, never sniffed.
pub fn asset(body: impl Into<poem::Body>, content_type: &str) -> Response {
    Response::builder()
        .content_type(content_type)
        .header("Cache-Control", "public, max-age=300")
        .header("X-Content-Type-Options", "nosniff")
        .body(body)
}

/// One of the pod's files, at an address holding its digest: kept for good.
pub fn immutable_asset(body: impl Into<poem::Body>, content_type: &str) -> Response {
    Response::builder()
        .content_type(content_type)
        .header("Cache-Control", "public, max-age=31536000, immutable")
        .header("X-Content-Type-Options", "nosniff")
        .body(body)
}

/// `GET /pods/assets/page.css`: the stylesheet of every page outside the pod.
#[handler]
pub fn page_css() -> Response {
    asset(PAGE_CSS, "text/css; charset=utf-8")
}

/// `GET /pods/assets/brand/{rrggbb}.css`: the brand colours for one colour. Its content
/// follows from its name, so browsers may keep it.
#[handler]
pub fn brand_css(Path(file): Path<String>) -> poem::Result<Response> {
    let color = file
        .strip_suffix(".css")
        .filter(|digits| digits.len() == 6)
        .and_then(|digits| Color::parse(&format!("#{digits}")))
        .ok_or(poem::error::NotFoundError)?;
    let css = TEMPLATES
        .get_template("brand.css")
        .and_then(|tmpl| tmpl.render(brand_colors(color)))
        .map_err(|err| {
            tracing::error!(error = %err, "brand stylesheet failed to render");
            poem::Error::from_status(StatusCode::INTERNAL_SERVER_ERROR)
        })?;
    Ok(asset(css, "text/css; charset=utf-8"))
}

fn brand_colors(color: Color) -> Value {
    context! {
        brand => color.css(),
        // Hover and pressed states, and a tint for notices and focus rings.
        strong => color.mix([0, 0, 0], 0.18).css(),
        line => color.mix([0xff; 3], 0.75).css(),
        soft => color.mix([0xff; 3], 0.9).css(),
        on_brand => color.text_on().css(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_parse_only_from_hex() {
        assert_eq!(Color::parse("#0B5CAD"), Some(Color([0x0b, 0x5c, 0xad])));
        assert_eq!(Color::parse("#fa0"), Some(Color([0xff, 0xaa, 0x00])));
        for bad in [
            "0b5cad", "#0b5ca", "#0b5cadd", "red", "#12345g", "#+12", "", "#",
        ] {
            assert_eq!(Color::parse(bad), None, "{bad}");
        }
        assert_eq!(Color::vouch().css(), DEFAULT_BRAND_COLOR);
    }

    #[test]
    fn text_on_the_brand_colour_has_the_better_contrast() {
        assert_eq!(Color::parse("#fff").unwrap().text_on().css(), "#111111");
        assert_eq!(Color::parse("#ffd400").unwrap().text_on().css(), "#111111");
        assert_eq!(Color::parse("#000").unwrap().text_on().css(), "#ffffff");
        assert_eq!(Color::vouch().text_on().css(), "#ffffff");
    }

    #[test]
    fn the_brand_stylesheet_sets_the_colours_of_its_name() {
        let css = TEMPLATES
            .get_template("brand.css")
            .unwrap()
            .render(brand_colors(Color::parse("#a1b2c3").unwrap()))
            .unwrap();
        assert!(css.contains("--brand: #a1b2c3;"), "{css}");
        assert!(css.contains("--on-brand: #111111;"), "{css}");
        assert!(css.contains("--brand-strong: #8492a0;"), "{css}");
        assert!(css.contains("--brand-soft: #f6f7f9;"), "{css}");
    }

    #[tokio::test]
    async fn the_brand_stylesheet_is_served_only_for_a_hex_colour() {
        use poem::Endpoint;
        let route = poem::Route::new().at("/brand/:file", poem::get(brand_css));
        let get = |path: String| {
            route.get_response(poem::Request::builder().uri(path.parse().unwrap()).finish())
        };
        let response = get("/brand/a1b2c3.css".into()).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"],
            "text/css; charset=utf-8"
        );
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        let css = response.into_body().into_string().await.unwrap();
        assert!(css.contains("--brand: #a1b2c3;"), "{css}");
        for bad in [
            "a1b2c3",
            "fff.css",
            "a1b2c3d.css",
            "red.css",
            "a1b2c%3B.css",
            "a1b2cg.css",
        ] {
            let response = get(format!("/brand/{bad}")).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{bad}");
        }
    }

    #[test]
    fn a_page_whose_header_is_invalid_is_not_sent() {
        let response = respond(
            StatusCode::OK,
            "landing.html",
            context! { brand => Brand::vouch().view(), links => Vec::<(String, String)>::new(), version => "1" },
            &[(
                header::CONTENT_SECURITY_POLICY,
                "frame-ancestors \n evil".to_owned(),
            )],
        );
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(response.headers().get("content-security-policy").is_none());
    }

    #[test]
    fn a_support_phone_becomes_a_tel_link_of_digits() {
        assert_eq!(tel_digits("+1 (206) 555-0199"), "+12065550199");
        assert_eq!(tel_digits("0800 123 456"), "0800123456");
        assert_eq!(tel_digits("1+2"), "12");
    }

    #[test]
    fn a_variable_nobody_passed_fails_the_render() {
        let err = render("landing.html", context! { brand => Brand::vouch().view() }).unwrap_err();
        assert_eq!(err.kind(), minijinja::ErrorKind::UndefinedError);
    }

    #[test]
    fn every_page_links_its_brand_stylesheet_and_no_inline_style() {
        let brand = Brand::of(&ShareBranding {
            msp_name: "Northwind <IT>".into(),
            logo_url: Some(Url::parse("https://cdn.example/logo.png").unwrap()),
            color: "#A1B2C3".into(),
            support_phone: None,
        });
        let html = render(
            "landing.html",
            context! { brand => brand.view(), links => Vec::<(String, String)>::new(), version => "1" },
        )
        .unwrap();
        assert!(
            html.contains("<link rel=\"stylesheet\" href=\"/pods/assets/brand/a1b2c3.css\">"),
            "{html}"
        );
        assert!(html.contains("alt=\"Northwind &lt;IT&gt;\""), "{html}");
        assert!(
            !html.contains("<style") && !html.contains("style="),
            "{html}"
        );
    }
}
