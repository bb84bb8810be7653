//! The secure-share pages the recipient opens from an SMS: `GET /s/{token}` shows a branded
//! page with a Reveal button and never counts a view (link-preview bots and mail scanners
//! fetch links); `POST /s/{token}` reveals the message and counts one view.
//!
//! Every page is `no-store`, `no-referrer`, `noindex` and under a strict CSP: styles come
//! from Vouch's stylesheets only, and the only inline scripts carry a per-response nonce.
//! Nothing here logs the path: it carries the token.

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use minijinja::context;
use poem::http::{Method, StatusCode, header};
use poem::web::{Data, Path};
use poem::{Response, handler};
use secrecy::ExposeSecret;

use crate::app::AppContext;
use crate::core::share::{
    PeekOutcome, Revealed, ShareBranding, ShareError, SharePurpose, ShareService,
};
use crate::store::access::random_token;
use crate::web::mount::{Mounted, endpoint};
use crate::web::page::{self, Brand};

/// Where the page of a password reset tells the user to sign in with their new password.
pub const MICROSOFT_365_SIGN_IN_URL: &str = "https://www.office.com";

/// The routes under `/s`.
pub fn routes() -> Mounted {
    Mounted::new().at(
        "/:token",
        vec![
            (Method::GET, endpoint(show)),
            (Method::POST, endpoint(reveal)),
        ],
    )
}

/// The application's share service. The pages read `ctx.shares` directly; this stays for
/// the API handlers that still call it.
pub fn share_service(ctx: &AppContext) -> ShareService {
    ctx.shares.clone()
}

#[handler]
async fn show(Path(token): Path<String>, ctx: Data<&Arc<AppContext>>) -> Response {
    match ctx.shares.peek(&token).await {
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
    match ctx.shares.reveal(&token).await {
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
    // A password reset says whose password it is and what to do next; a message says no
    // more than that it is one.
    let (account, change_at_next_sign_in) = match &revealed.purpose {
        SharePurpose::PasswordReset {
            account,
            change_at_next_sign_in,
        } => (Some(account.as_str()), *change_at_next_sign_in),
        SharePurpose::Message => (None, false),
    };
    Page::new(Some(&revealed.branding)).render(
        StatusCode::OK,
        "share_revealed.html",
        context! {
            content,
            rows,
            account,
            change_at_next_sign_in,
            sign_in_url => MICROSOFT_365_SIGN_IN_URL,
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
    brand: Brand,
}

impl Page {
    fn new(branding: Option<&ShareBranding>) -> Page {
        Page {
            // 128 random bits.
            nonce: random_token()[..32].to_owned(),
            // An unknown link names no MSP.
            brand: branding.map_or_else(Brand::vouch, Brand::of),
        }
    }

    fn render(&self, status: StatusCode, template: &str, extra: minijinja::Value) -> Response {
        let csp = format!(
            "default-src 'none'; style-src 'self'; script-src 'nonce-{nonce}'; \
             img-src {img_src}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            nonce = self.nonce,
            img_src = self.brand.img_src(),
        );
        page::respond(
            status,
            template,
            context! { brand => self.brand.view(), nonce => &self.nonce, ..extra },
            &[
                (header::CACHE_CONTROL, "no-store".to_owned()),
                (header::PRAGMA, "no-cache".to_owned()),
                (header::REFERRER_POLICY, "no-referrer".to_owned()),
                (
                    header::HeaderName::from_static("x-robots-tag"),
                    "noindex, nofollow".to_owned(),
                ),
                (header::X_FRAME_OPTIONS, "DENY".to_owned()),
                (
                    header::HeaderName::from_static("cross-origin-opener-policy"),
                    "same-origin".to_owned(),
                ),
                (header::CONTENT_SECURITY_POLICY, csp),
            ],
        )
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
    use url::Url;

    use super::*;

    fn branding(color: &str) -> ShareBranding {
        ShareBranding {
            msp_name: "Northwind <IT>".into(),
            logo_url: Some(Url::parse("https://cdn.example:8443/logo.png").unwrap()),
            color: color.into(),
            support_phone: None,
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
            purpose: SharePurpose::Message,
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
        assert!(body.contains("/pods/assets/brand/ffffff.css"), "{body}");
        assert!(
            !body.contains("<style") && !body.contains("style="),
            "{body}"
        );
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
            assert!(body.contains("/pods/assets/brand/000000.css"), "{body}");
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
    fn a_reset_says_whose_password_it_is_and_what_to_do_next() {
        let mut with_phone = branding("#fff");
        with_phone.support_phone = Some("+1 206 555 0199".into());
        let reset_share = |change_at_next_sign_in| Revealed {
            share_id: uuid::Uuid::now_v7(),
            content: SecretString::from("Tulip-Cobalt-42"),
            purpose: SharePurpose::PasswordReset {
                account: "dana@contoso.com".into(),
                change_at_next_sign_in,
            },
            branding: with_phone.clone(),
            expires_at: Utc::now() + Duration::hours(1),
            views_left: 0,
        };
        let body = body_of(revealed_page(&reset_share(true)));
        assert!(
            body.contains("Your new Microsoft 365 password for dana@contoso.com</h1>"),
            "{body}"
        );
        assert!(body.contains("Tulip-Cobalt-42"), "{body}");
        let sign_in = MICROSOFT_365_SIGN_IN_URL.replace('/', "&#x2f;");
        assert!(
            body.contains(&format!("Sign in at <a href=\"{sign_in}\">")),
            "{body}"
        );
        assert!(body.contains("ask you for a new password"), "{body}");
        assert!(body.contains("tel:+12065550199"), "{body}");
        assert!(body.contains("+1 206 555 0199"), "{body}");
        let body = body_of(revealed_page(&reset_share(false)));
        assert!(body.contains(&sign_in), "{body}");
        assert!(!body.contains("ask you for a new password"), "{body}");

        // A message keeps its wording, and names no account.
        let message = Revealed {
            purpose: SharePurpose::Message,
            ..reset_share(true)
        };
        let body = body_of(revealed_page(&message));
        assert!(
            body.contains("Your secure message from Northwind &lt;IT&gt;"),
            "{body}"
        );
        assert!(!body.contains("Microsoft 365"), "{body}");
        assert!(!body.contains("dana@contoso.com"), "{body}");
        assert!(body.contains("+1 206 555 0199"), "{body}");
    }

    #[test]
    fn a_colour_that_is_not_hex_never_reaches_the_css() {
        let page = Page::new(Some(&branding("red;}</style><script>")));
        assert_eq!(page.brand.color(), page::Color::vouch());
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
