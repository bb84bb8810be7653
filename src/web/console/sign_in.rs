//! Signing in to the console: e-mail and password, then the second factor; the one-time
//! set-up link (choose a password, then enrol TOTP: QR code, the secret as text, and the
//! recovery codes shown once); and signing out.
//!
//! The sign-in and set-up forms come before any session, so they carry no synchronizer
//! token: their posts are held to this Vouch's Origin (or Referer) instead, and a set-up post
//! needs the link's own secret token. Every later form carries the session's CSRF token.

use std::sync::Arc;

use minijinja::{Value, context};
use poem::http::{StatusCode, header};
use poem::web::{Data, Form, Path};
use poem::{Request, Response, handler};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::session::{ConsoleUser, PendingSession, failed, pending_path};
use super::{
    SIGN_IN_PATH, cleared_cookie, message, redirect, respond, same_origin, session_cookie,
};
use crate::api::error::status_of;
use crate::app::AppContext;
use crate::core::accounts::{AccountError, MIN_PASSWORD_CHARS, OpenedSession};
use crate::store::console_users::SessionStage;
use crate::web::page::Brand;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SignInForm {
    email: String,
    password: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CodeForm {
    csrf: String,
    code: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SetupForm {
    password: String,
    confirm: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CsrfForm {
    csrf: String,
}

fn secure(ctx: &AppContext) -> bool {
    ctx.config.http.public_url.scheme() == "https"
}

/// `response` handing the browser the session's cookie.
fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = header::HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// On to the session's next step, with its cookie.
fn opened(ctx: &AppContext, session: &OpenedSession) -> Response {
    with_cookie(
        redirect(pending_path(session.stage)),
        &session_cookie(session.token.expose_secret(), secure(ctx)),
    )
}

fn foreign_origin() -> Response {
    message(
        StatusCode::FORBIDDEN,
        &Brand::vouch(),
        None,
        "This form has expired",
        "This form was not sent from a page of this Vouch, so nothing was changed. Open the sign-in page again and send it from there.",
        (SIGN_IN_PATH, "Open the sign-in page"),
    )
}

/// The sign-in form, with the refusal next to the field it concerns.
fn sign_in_form(status: StatusCode, email: &str, refusal: Option<&AccountError>) -> Response {
    let (password_error, error) = match refusal {
        Some(err @ AccountError::SignInFailed) => (Some(err.to_string()), None),
        Some(err) => (None, Some(err.to_string())),
        None => (None, None),
    };
    let brand = Brand::vouch();
    let mut response = respond(
        status,
        "console/sign_in.html",
        context! {
            brand => brand.view(),
            shell => Value::from(()),
            email => email,
            password_error => password_error,
            error => error,
        },
        &brand,
    );
    if let Some(AccountError::Throttled { retry_after }) = refusal
        && let Ok(value) = header::HeaderValue::from_str(
            &crate::domain::retry_after_seconds(*retry_after).to_string(),
        )
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// `GET /console/sign-in`.
#[handler]
pub fn sign_in_page() -> Response {
    sign_in_form(StatusCode::OK, "", None)
}

/// `POST /console/sign-in`: e-mail and password.
#[handler]
pub async fn sign_in(
    ctx: Data<&Arc<AppContext>>,
    req: &Request,
    Form(form): Form<SignInForm>,
) -> Response {
    if !same_origin(req, &ctx.config.http.public_url) {
        return foreign_origin();
    }
    let password = SecretString::from(form.password);
    match ctx.accounts.sign_in(&form.email, &password).await {
        Ok(session) => opened(&ctx, &session),
        Err(AccountError::Store(_)) => failed(&Brand::vouch()),
        Err(err) => sign_in_form(status_of(err.code()), form.email.trim(), Some(&err)),
    }
}

fn code_form(
    status: StatusCode,
    pending: &PendingSession,
    refusal: Option<&AccountError>,
) -> Response {
    let (code_error, error) = match refusal {
        Some(err @ AccountError::CodeIncorrect) => (Some(err.to_string()), None),
        Some(err) => (None, Some(err.to_string())),
        None => (None, None),
    };
    let brand = Brand::vouch();
    respond(
        status,
        "console/code.html",
        context! {
            brand => brand.view(),
            shell => Value::from(()),
            email => pending.account.email,
            csrf => pending.session.csrf_token,
            code_error => code_error,
            error => error,
        },
        &brand,
    )
}

/// `GET /console/sign-in/code`: the second factor.
#[handler]
pub fn code_page(pending: PendingSession) -> Response {
    if pending.session.stage != SessionStage::SecondFactor {
        return redirect(pending_path(pending.session.stage));
    }
    code_form(StatusCode::OK, &pending, None)
}

/// `POST /console/sign-in/code`: a TOTP or recovery code.
#[handler]
pub async fn code(
    ctx: Data<&Arc<AppContext>>,
    req: &Request,
    pending: PendingSession,
    Form(form): Form<CodeForm>,
) -> Response {
    if let Err(refused) = pending.check_form(&ctx, req, &form.csrf) {
        return refused;
    }
    match ctx
        .accounts
        .second_factor(&pending.session, &pending.account, &form.code)
        .await
    {
        Ok(session) => opened(&ctx, &session),
        Err(err @ AccountError::Locked { .. }) => with_cookie(
            sign_in_form(status_of(err.code()), &pending.account.email, Some(&err)),
            &cleared_cookie(secure(&ctx)),
        ),
        Err(AccountError::SignInRequired) => redirect(pending_path(pending.session.stage)),
        Err(AccountError::Store(_)) => failed(&Brand::vouch()),
        Err(err) => code_form(status_of(err.code()), &pending, Some(&err)),
    }
}

fn link_invalid() -> Response {
    message(
        StatusCode::NOT_FOUND,
        &Brand::vouch(),
        None,
        "This link does not work any more",
        &AccountError::LinkInvalid.to_string(),
        (SIGN_IN_PATH, "Go to the sign-in page"),
    )
}

fn setup_form(status: StatusCode, email: &str, refusal: Option<&AccountError>) -> Response {
    let field = refusal.and_then(AccountError::field);
    let text = refusal.map(ToString::to_string);
    let brand = Brand::vouch();
    respond(
        status,
        "console/setup.html",
        context! {
            brand => brand.view(),
            shell => Value::from(()),
            email => email,
            min_chars => MIN_PASSWORD_CHARS,
            password_error => text.clone().filter(|_| field == Some("password")),
            confirm_error => text.clone().filter(|_| field == Some("confirm")),
            error => text.filter(|_| field.is_none()),
        },
        &brand,
    )
}

/// `GET /console/setup/{token}`: choose a password.
#[handler]
pub async fn setup_page(ctx: Data<&Arc<AppContext>>, Path(token): Path<String>) -> Response {
    match ctx.accounts.link_user(&token).await {
        Ok(user) => setup_form(StatusCode::OK, &user.email, None),
        Err(AccountError::Store(_)) => failed(&Brand::vouch()),
        Err(_) => link_invalid(),
    }
}

/// `POST /console/setup/{token}`: the chosen password, twice.
#[handler]
pub async fn setup(
    ctx: Data<&Arc<AppContext>>,
    req: &Request,
    Path(token): Path<String>,
    Form(form): Form<SetupForm>,
) -> Response {
    if !same_origin(req, &ctx.config.http.public_url) {
        return foreign_origin();
    }
    let password = SecretString::from(form.password);
    let confirm = SecretString::from(form.confirm);
    match ctx
        .accounts
        .complete_setup(&token, &password, &confirm)
        .await
    {
        Ok(session) => opened(&ctx, &session),
        Err(err @ AccountError::PasswordRejected { .. }) => {
            let email = match ctx.accounts.link_user(&token).await {
                Ok(user) => user.email,
                Err(_) => return link_invalid(),
            };
            setup_form(status_of(err.code()), &email, Some(&err))
        }
        Err(AccountError::Store(_)) => failed(&Brand::vouch()),
        Err(_) => link_invalid(),
    }
}

/// The otpauth URL as an SVG QR code, to put in the page as it is (no image request, no
/// outside service). It is built here from the URL alone, so it holds no markup of anyone
/// else's.
fn qr_svg(otpauth_url: &str) -> Option<String> {
    let qr = qrcode::QrCode::new(otpauth_url.as_bytes()).ok()?;
    let svg = qr
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(232, 232)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build();
    let start = svg.find("<svg")?;
    Some(svg[start..].replacen(
        "<svg",
        "<svg role=\"img\" aria-label=\"QR code to scan with your authenticator app\"",
        1,
    ))
}

/// A base32 secret in groups of four, as people type it.
fn grouped(secret: &str) -> String {
    secret
        .as_bytes()
        .chunks(4)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

async fn enrol_form(
    ctx: &AppContext,
    status: StatusCode,
    pending: &PendingSession,
    refusal: Option<&AccountError>,
) -> Response {
    let brand = Brand::vouch();
    let enrolment = match ctx
        .accounts
        .enrolment(&pending.session, &pending.account)
        .await
    {
        Ok(enrolment) => enrolment,
        Err(_) => return failed(&brand),
    };
    let Some(svg) = qr_svg(enrolment.otpauth_url.expose_secret()) else {
        return failed(&brand);
    };
    respond(
        status,
        "console/enrol.html",
        context! {
            brand => brand.view(),
            shell => Value::from(()),
            email => pending.account.email,
            csrf => pending.session.csrf_token,
            qr_svg => Value::from_safe_string(svg),
            secret => grouped(enrolment.secret_base32.expose_secret()),
            code_error => refusal.map(ToString::to_string),
        },
        &brand,
    )
}

/// `GET /console/two-factor`: set up the authenticator app.
#[handler]
pub async fn enrol_page(ctx: Data<&Arc<AppContext>>, pending: PendingSession) -> Response {
    if pending.session.stage != SessionStage::EnrolTotp {
        return redirect(pending_path(pending.session.stage));
    }
    enrol_form(&ctx, StatusCode::OK, &pending, None).await
}

/// `POST /console/two-factor`: the first code from the app; on success the recovery codes,
/// shown this once.
#[handler]
pub async fn enrol(
    ctx: Data<&Arc<AppContext>>,
    req: &Request,
    pending: PendingSession,
    Form(form): Form<CodeForm>,
) -> Response {
    if let Err(refused) = pending.check_form(&ctx, req, &form.csrf) {
        return refused;
    }
    match ctx
        .accounts
        .finish_enrolment(&pending.session, &pending.account, &form.code)
        .await
    {
        Ok((session, codes)) => {
            let brand = Brand::vouch();
            let page = respond(
                StatusCode::OK,
                "console/recovery.html",
                context! {
                    brand => brand.view(),
                    shell => Value::from(()),
                    codes => codes,
                },
                &brand,
            );
            with_cookie(
                page,
                &session_cookie(session.token.expose_secret(), secure(&ctx)),
            )
        }
        Err(err @ AccountError::CodeIncorrect) => {
            enrol_form(&ctx, status_of(err.code()), &pending, Some(&err)).await
        }
        Err(AccountError::SignInRequired) => redirect(pending_path(pending.session.stage)),
        Err(_) => failed(&Brand::vouch()),
    }
}

/// `POST /console/sign-out`: ends the session on every instance.
#[handler]
pub async fn sign_out(
    ctx: Data<&Arc<AppContext>>,
    req: &Request,
    user: ConsoleUser,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(refused) = user.check_form(&ctx, req, &form.csrf) {
        return refused;
    }
    if ctx
        .accounts
        .sign_out(&user.session, &user.account)
        .await
        .is_err()
    {
        return failed(&user.brand);
    }
    with_cookie(redirect(SIGN_IN_PATH), &cleared_cookie(secure(&ctx)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_qr_code_is_plain_svg_with_a_label_and_no_style() {
        let svg = qr_svg("otpauth://totp/Vouch:a%40b.example?secret=JBSWY3DPEHPK3PXP&issuer=Vouch")
            .unwrap();
        assert!(svg.starts_with("<svg role=\"img\" aria-label="), "{svg}");
        assert!(!svg.contains("<?xml") && !svg.contains("style"), "{svg}");
        assert!(svg.ends_with("</svg>"));
    }

    #[test]
    fn secrets_read_in_groups_of_four() {
        assert_eq!(grouped("ABCDEFGHIJ"), "ABCD EFGH IJ");
    }
}
