//! The secure-share pages the recipient opens from an SMS: `GET /s/{token}` shows a branded
//! page with a Reveal button and never counts a view (link-preview bots and mail scanners
//! fetch links); `POST /s/{token}` reveals the message and counts one view.
//!
//! Every page is `no-store`, `no-referrer`, `noindex` and under a strict CSP whose only
//! inline style and script carry a per-response nonce. Nothing here logs the path: it
//! carries the token.

use std::sync::{Arc, LazyLock};

use chrono::{DateTime, SecondsFormat, Utc};
use minijinja::{Environment, context};
use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{Response, Route, get, handler};
use secrecy::ExposeSecret;
use url::Url;

use crate::app::AppContext;
use crate::core::share::{
    PeekOutcome, Revealed, ShareBranding, ShareDeps, ShareError, ShareService,
};
use crate::store::access::random_token;

/// The routes under `/s`.
pub fn routes() -> Route {
    Route::new().at("/:token", get(show).post(reveal))
}

/// The share service over the application's store, for the pages and the API. Cheap to
/// build: it only clones handles.
pub fn share_service(ctx: &AppContext) -> ShareService {
    let store = Arc::new(ctx.store.clone());
    ShareService::new(ShareDeps {
        shares: store.clone(),
        msps: store.clone(),
        audit: store,
        public_url: ctx.config.http.public_url.clone(),
    })
}

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    // `.html` names switch on HTML auto-escaping for every value.
    for (name, source) in [
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
    ] {
        env.add_template(name, source)
            .expect("the share templates are valid");
    }
    env
});

#[handler]
async fn show(Path(token): Path<String>, ctx: Data<&Arc<AppContext>>) -> Response {
    match share_service(&ctx).peek(&token).await {
        Ok(PeekOutcome::Available {
            branding,
            expires_at,
            views_left,
        }) => {
            let page = Page::new(Some(&branding));
            let now = Utc::now();
            page.render(
                StatusCode::OK,
                "share_available.html",
                context! {
                    views_left,
                    expires_iso => iso(expires_at),
                    expires_text => format_moment(expires_at),
                    expires_relative => format_relative(expires_at, now),
                },
            )
        }
        Ok(PeekOutcome::Expired(branding)) => unavailable(&ShareError::Expired(branding)),
        Ok(PeekOutcome::Exhausted(branding)) => unavailable(&ShareError::Exhausted(branding)),
        Ok(PeekOutcome::Revoked(branding)) => unavailable(&ShareError::Revoked(branding)),
        Ok(PeekOutcome::NotFound) => unavailable(&ShareError::NotFound),
        Err(err) => unavailable(&err),
    }
}

#[handler]
async fn reveal(Path(token): Path<String>, ctx: Data<&Arc<AppContext>>) -> Response {
    match share_service(&ctx).reveal(&token).await {
        Ok(revealed) => revealed_page(&revealed),
        Err(err) => unavailable(&err),
    }
}

fn revealed_page(revealed: &Revealed) -> Response {
    let content = revealed.content.expose_secret();
    // Room for every line, wrapped as on a phone, within reason.
    let rows = content
        .lines()
        .map(|line| line.chars().count().div_ceil(32).max(1))
        .sum::<usize>()
        .clamp(1, 12);
    Page::new(Some(&revealed.branding)).render(
        StatusCode::OK,
        "share_revealed.html",
        context! {
            content,
            rows,
            views_left => revealed.views_left,
            expires_iso => iso(revealed.expires_at),
            expires_text => format_moment(revealed.expires_at),
        },
    )
}

/// The page for a link that does not (or no longer) work: plain words, the right status.
fn unavailable(err: &ShareError) -> Response {
    let (status, branding, heading, paragraphs): (_, _, _, Vec<String>) = match err {
        ShareError::Expired(branding) => (
            StatusCode::GONE,
            Some(branding),
            "This link has expired",
            vec![format!(
                "This link has expired. Ask {} to send a new one.",
                branding.msp_name
            )],
        ),
        ShareError::Exhausted(branding) => (
            StatusCode::GONE,
            Some(branding),
            "This message has already been viewed",
            vec![
                format!(
                    "This message has already been viewed, so the link no longer works. Ask {} to send a new one if you still need it.",
                    branding.msp_name
                ),
                format!(
                    "If you did not open it yourself, tell {} straight away.",
                    branding.msp_name
                ),
            ],
        ),
        ShareError::Revoked(branding) => (
            StatusCode::GONE,
            Some(branding),
            "This link has been withdrawn",
            vec![format!(
                "{} has withdrawn this link, so it no longer works. Ask them to send a new one.",
                branding.msp_name
            )],
        ),
        // A malformed token lands here too; which MSP it might belong to is not said.
        ShareError::NotFound | ShareError::InvalidRequest { .. } => (
            StatusCode::NOT_FOUND,
            None,
            "This link does not work",
            vec![
                "This link is not valid. Check that you opened the whole link from your message, or ask whoever sent it to send a new one.".to_owned(),
            ],
        ),
        ShareError::Store(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
            "Something went wrong",
            vec![
                "We could not open this message just now. Try the link again in a few minutes; if it still fails, ask whoever sent it to send a new one.".to_owned(),
            ],
        ),
    };
    Page::new(branding).render(
        status,
        "share_unavailable.html",
        context! { heading, paragraphs },
    )
}

/// One response's branding and CSP nonce.
struct Page {
    nonce: String,
    msp_name: Option<String>,
    logo_url: Option<Url>,
    color: String,
}

impl Page {
    fn new(branding: Option<&ShareBranding>) -> Page {
        let fallback = crate::core::share::DEFAULT_BRAND_COLOR;
        let color = branding
            .map(|b| b.color.as_str())
            // Checked again here because it goes into CSS.
            .filter(|color| crate::core::share::is_hex_color(color))
            .unwrap_or(fallback)
            .to_owned();
        Page {
            // 128 random bits.
            nonce: random_token()[..32].to_owned(),
            msp_name: branding.map(|b| b.msp_name.clone()),
            logo_url: branding
                .and_then(|b| b.logo_url.clone())
                .filter(|url| url.scheme() == "https"),
            color,
        }
    }

    fn render(&self, status: StatusCode, template: &str, extra: minijinja::Value) -> Response {
        let base = context! {
            nonce => &self.nonce,
            msp_name => &self.msp_name,
            logo_url => self.logo_url.as_ref().map(Url::as_str),
            color => &self.color,
            on_color => text_color_on(&self.color),
        };
        let rendered = TEMPLATES
            .get_template(template)
            .and_then(|tmpl| tmpl.render(context! { ..base, ..extra }));
        let (status, body) = match rendered {
            Ok(body) => (status, body),
            Err(err) => {
                tracing::error!(error = %err, template, "share page failed to render");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "<!doctype html><title>Error</title><p>Something went wrong. Try the link again in a few minutes.</p>".to_owned(),
                )
            }
        };
        self.respond(status, body)
    }

    fn respond(&self, status: StatusCode, body: String) -> Response {
        let img_src = match &self.logo_url {
            Some(url) => url.origin().ascii_serialization(),
            None => "'none'".to_owned(),
        };
        let csp = format!(
            "default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; \
             img-src {img_src}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            nonce = self.nonce
        );
        Response::builder()
            .status(status)
            .content_type("text/html; charset=utf-8")
            .header("Cache-Control", "no-store")
            .header("Pragma", "no-cache")
            .header("Referrer-Policy", "no-referrer")
            .header("X-Robots-Tag", "noindex, nofollow")
            .header("X-Content-Type-Options", "nosniff")
            .header("X-Frame-Options", "DENY")
            .header("Cross-Origin-Opener-Policy", "same-origin")
            .header("Content-Security-Policy", csp)
            .body(body)
    }
}

/// Black or white, whichever reads better on the brand colour (WCAG contrast).
fn text_color_on(hex: &str) -> &'static str {
    let digits = hex.trim_start_matches('#');
    let expanded: String = if digits.len() == 3 {
        digits.chars().flat_map(|c| [c, c]).collect()
    } else {
        digits.to_owned()
    };
    let channel = |i: usize| {
        let value = u8::from_str_radix(expanded.get(i..i + 2).unwrap_or("00"), 16).unwrap_or(0);
        let c = f64::from(value) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let luminance = 0.2126 * channel(0) + 0.7152 * channel(2) + 0.0722 * channel(4);
    let with_white = 1.05 / (luminance + 0.05);
    let with_black = (luminance + 0.05) / 0.05;
    if with_white >= with_black {
        "#ffffff"
    } else {
        "#111111"
    }
}

/// `2026-03-14T09:30:00Z`: what every browser's `Date` reads.
fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `14 March 2026 at 09:30 UTC`.
fn format_moment(at: DateTime<Utc>) -> String {
    at.format("%-d %B %Y at %H:%M UTC").to_string()
}

/// `in 23 hours`, `in 5 minutes`...
fn format_relative(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let minutes = (at - now).num_minutes();
    let plural = |n: i64, unit: &str| format!("in {n} {unit}{}", if n == 1 { "" } else { "s" });
    match minutes {
        ..=0 => "in less than a minute".to_owned(),
        1..=89 => plural(minutes, "minute"),
        90..=2159 => plural((minutes + 30) / 60, "hour"),
        _ => plural((minutes + 720) / 1440, "day"),
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use secrecy::SecretString;

    use super::*;

    fn branding(color: &str) -> ShareBranding {
        ShareBranding {
            msp_name: "Northwind <IT>".into(),
            logo_url: Some(Url::parse("https://cdn.example:8443/logo.png").unwrap()),
            color: color.into(),
        }
    }

    fn body_of(response: Response) -> String {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime
            .block_on(response.into_body().into_string())
            .unwrap()
    }

    #[test]
    fn every_page_renders_escaped_with_the_security_headers() {
        let revealed = Revealed {
            share_id: uuid::Uuid::now_v7(),
            content: SecretString::from("<b>pw</b>\nsecond line"),
            branding: branding("#fff"),
            expires_at: Utc::now() + Duration::hours(1),
            views_left: 0,
        };
        let response = revealed_page(&revealed);
        assert_eq!(response.status(), StatusCode::OK);
        let csp = response
            .headers()
            .get("content-security-policy")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("img-src https://cdn.example:8443;"), "{csp}");
        assert!(csp.contains("default-src 'none'"));
        let body = body_of(response);
        assert!(body.contains("&lt;b&gt;pw&lt;&#x2f;b&gt;"), "{body}");
        assert!(!body.contains("<b>pw"));
        assert!(body.contains("Northwind &lt;IT&gt;"));
        assert!(body.contains("--on-brand: #111111"), "dark text on white");
        assert!(body.contains("no longer works"));

        for err in [
            ShareError::Expired(branding("#000")),
            ShareError::Exhausted(branding("#000")),
            ShareError::Revoked(branding("#000")),
        ] {
            let response = unavailable(&err);
            assert_eq!(response.status(), StatusCode::GONE);
            assert_eq!(response.headers().get("cache-control").unwrap(), "no-store");
            let body = body_of(response);
            assert!(body.contains("Northwind &lt;IT&gt;"));
            assert!(body.contains("--on-brand: #ffffff"));
        }
        let response = unavailable(&ShareError::NotFound);
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let csp = response
            .headers()
            .get("content-security-policy")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("img-src 'none'"));
        assert!(!body_of(response).contains("Northwind"));
    }

    #[test]
    fn a_colour_that_is_not_hex_never_reaches_the_css() {
        let page = Page::new(Some(&branding("red;}</style><script>")));
        assert_eq!(page.color, crate::core::share::DEFAULT_BRAND_COLOR);
    }

    #[test]
    fn relative_times_read_naturally() {
        let now = Utc::now();
        assert_eq!(
            format_relative(now + Duration::minutes(5), now),
            "in 5 minutes"
        );
        assert_eq!(
            format_relative(now + Duration::hours(24), now),
            "in 24 hours"
        );
        assert_eq!(format_relative(now + Duration::days(7), now), "in 7 days");
        assert_eq!(
            format_relative(now + Duration::minutes(61), now),
            "in 61 minutes"
        );
        assert_eq!(format_relative(now, now), "in less than a minute");
    }
}
