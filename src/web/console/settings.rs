//! `GET /console/settings` (admins): the MSP's branding (name, colour, logo address, support
//! phone, the name SMS texts are signed with) and policies, every field that
//! `SettingsService` exposes, with a preview of the SMS texts and of the share page at phone
//! size. `POST /console/settings` with `intent=preview` renders the page with the values
//! entered, validated but not saved (the whole page takes the previewed colour and logo);
//! with `intent=save` it saves them (audited in core). Errors show next to their fields.
//! `POST /console/settings/logo` uploads a logo (a `multipart/form-data` form with the
//! file and the CSRF token, checked as `PUT /v1/settings/logo` checks it and audited alike,
//! `settings.logo_upload`); `POST /console/settings/logo/remove` removes it.

use std::collections::HashMap;
use std::sync::Arc;

use minijinja::context;
use poem::http::StatusCode;
use poem::web::{Data, Multipart};
use poem::{Request, Response, handler};
use serde::Serialize;
use tokio::io::AsyncReadExt;

use super::session::{AdminForm, AdminUser, failed};
use super::{ConsoleUser, redirect, respond};
use crate::app::AppContext;
use crate::core::error::CoreError;
use crate::core::logo::{LogoFormat, MAX_LOGO_BYTES};
use crate::core::settings::{MspSettings, Part, SettingsChange, sample_texts};
use crate::core::share::ShareBranding;
use crate::web::page::Brand;

const PATH: &str = "/console/settings";

/// How a field is labelled and entered.
fn label_of(name: &str) -> (&'static str, &'static str) {
    match name {
        "name" => ("Name end users see", ""),
        "color" => (
            "Brand colour (#rrggbb)",
            "It carries white button text, so it must be dark enough.",
        ),
        "logo_url" => ("Logo address (https)", "Empty for no logo."),
        "support_phone" => ("Support phone", "Named in SMS texts and on the pages."),
        "sms_sender_name" => (
            "SMS sender name",
            "Texts are signed with it (at most 20 characters); empty for the name.",
        ),
        "verified_window_seconds" => ("How long a verification proves the user (seconds)", ""),
        "push_limit_count" => ("Pushes per user in the window", "Push-bombing protection."),
        "push_limit_window_seconds" => ("Push window (seconds)", ""),
        "technician_push_limit_count" => ("Pushes per technician in the window", ""),
        "count_approved_pushes" => ("Approved pushes count towards the limits", ""),
        "allow_contact_phone_fallback" => {
            ("Allow the PSA contact's phone when Microsoft has none", "")
        }
        "allow_admin_reset" => ("Allow resetting admins' passwords", ""),
        "show_password_to_technician" => ("Show the new password to the technician", ""),
        "password_length" => ("New password length", ""),
        "password_style" => ("New password style", ""),
        "force_change_at_next_sign_in" => ("User must change the password at next sign-in", ""),
        "fraud_hold_seconds" => ("Hold resets after a fraud report (seconds, 0: no hold)", ""),
        "share_lifetime_seconds" => ("Secure link lifetime (seconds)", ""),
        "one_tap_link_lifetime_seconds" => ("One-tap link lifetime (seconds)", ""),
        _ => ("", ""),
    }
}

#[derive(Debug, Serialize)]
struct FieldView {
    name: &'static str,
    label: &'static str,
    hint: &'static str,
    /// `text`, `number`, `checkbox` or `style`.
    kind: &'static str,
    value: String,
    checked: bool,
    error: Option<String>,
}

fn field_views(
    settings: &MspSettings,
    entered: Option<&HashMap<String, String>>,
    errors: &HashMap<&'static str, String>,
) -> (Vec<FieldView>, Vec<FieldView>) {
    let (mut branding, mut policy) = (Vec::new(), Vec::new());
    for (part, name, value) in settings.fields() {
        let kind = match (&value, name) {
            (_, "password_style") => "style",
            (serde_json::Value::Bool(_), _) => "checkbox",
            (serde_json::Value::Number(_), _) => "number",
            _ => "text",
        };
        let saved = match &value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        };
        // After a refused post, the values as entered; an uploaded logo is not an address.
        let shown = match entered {
            Some(form) if kind == "checkbox" => {
                if form.contains_key(name) {
                    "true".to_owned()
                } else {
                    "false".to_owned()
                }
            }
            Some(form) => form.get(name).cloned().unwrap_or(saved),
            None if name == "logo_url" && settings.branding.uploaded_logo.is_some() => {
                settings.branding.logo_url.clone().unwrap_or_default()
            }
            None => saved,
        };
        let (label, hint) = label_of(name);
        let view = FieldView {
            name,
            label,
            hint,
            kind,
            checked: shown == "true",
            value: shown,
            error: errors.get(name).cloned(),
        };
        match part {
            Part::Branding => branding.push(view),
            Part::Policy => policy.push(view),
        }
    }
    (branding, policy)
}

/// The change the form asks for: every field whose value differs from the saved one, or the
/// errors of those that do not parse.
fn change_of(
    settings: &MspSettings,
    form: &HashMap<String, String>,
) -> Result<SettingsChange, HashMap<&'static str, String>> {
    let mut change = SettingsChange::default();
    let mut errors = HashMap::new();
    for (_, name, value) in settings.fields() {
        let entered = match &value {
            serde_json::Value::Bool(_) => if form.contains_key(name) {
                "true"
            } else {
                "false"
            }
            .to_owned(),
            _ => match form.get(name) {
                Some(v) => v.trim().to_owned(),
                None => continue,
            },
        };
        let saved = match &value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        };
        // The uploaded logo shows as its address; leaving it as shown keeps it.
        if entered == saved
            || (name == "logo_url"
                && settings.branding.uploaded_logo.is_some()
                && entered == settings.branding.logo_url.clone().unwrap_or_default())
        {
            continue;
        }
        match SettingsChange::of_text(name, &entered) {
            Ok(one) => change = change.merge(one),
            Err(err) => {
                errors.insert(name, problem_of(&err));
            }
        }
    }
    if errors.is_empty() {
        Ok(change)
    } else {
        Err(errors)
    }
}

fn problem_of(err: &CoreError) -> String {
    match err {
        CoreError::InvalidInput { problem, .. } => {
            let mut text = format!("This {problem}");
            if !text.ends_with('.') {
                text.push('.');
            }
            text
        }
        other => other.to_string(),
    }
}

#[derive(Debug, Serialize)]
struct TextView {
    what: &'static str,
    text: String,
    segments: usize,
}

fn render(
    user: &ConsoleUser,
    status: StatusCode,
    settings: &MspSettings,
    entered: Option<&HashMap<String, String>>,
    errors: &HashMap<&'static str, String>,
    notice: Option<&str>,
    logo_error: Option<&str>,
) -> Response {
    // The page takes the (previewed) brand: its colour, logo and name.
    let branding = ShareBranding {
        msp_name: settings.branding.name.clone(),
        logo_url: match &settings.branding.uploaded_logo {
            Some(logo) => url::Url::parse(&logo.url).ok(),
            None => settings
                .branding
                .logo_url
                .as_deref()
                .and_then(crate::core::share::safe_logo_url),
        },
        color: settings
            .branding
            .color
            .clone()
            .unwrap_or_else(|| crate::core::share::DEFAULT_BRAND_COLOR.to_owned()),
        support_phone: settings
            .branding
            .support_phone
            .as_deref()
            .and_then(crate::core::share::usable_support_phone),
    };
    let brand = Brand::of(&branding);
    let (branding_fields, policy_fields) = field_views(settings, entered, errors);
    let texts: Vec<TextView> = sample_texts(settings)
        .into_iter()
        .map(|(what, text, segments)| TextView {
            what,
            text,
            segments,
        })
        .collect();
    respond(
        status,
        "console/settings.html",
        context! {
            brand => brand.view(),
            shell => user.shell(PATH),
            branding_fields => branding_fields,
            policy_fields => policy_fields,
            texts => texts,
            uploaded_logo => settings.branding.uploaded_logo.is_some(),
            logo_error => logo_error,
            max_logo_kb => MAX_LOGO_BYTES / 1024,
            notice => notice,
            has_errors => !errors.is_empty(),
            share_lifetime => crate::core::texts::lifetime(chrono::Duration::seconds(i64::from(settings.policy.share_lifetime_seconds))),
        },
        &brand,
    )
}

#[handler]
pub async fn settings_page(ctx: Data<&Arc<AppContext>>, user: ConsoleUser) -> Response {
    if let Err(refused) = user.require_admin(PATH) {
        return refused;
    }
    match ctx.settings.get(user.msp.id).await {
        Ok(settings) => render(
            &user,
            StatusCode::OK,
            &settings,
            None,
            &HashMap::new(),
            None,
            None,
        ),
        Err(_) => failed(&user.brand),
    }
}

/// `POST /console/settings`: preview or save.
#[handler]
pub async fn save(
    ctx: Data<&Arc<AppContext>>,
    AdminForm { user, form, .. }: AdminForm<HashMap<String, String>>,
) -> Response {
    let saved = match ctx.settings.get(user.msp.id).await {
        Ok(settings) => settings,
        Err(_) => return failed(&user.brand),
    };
    let change = match change_of(&saved, &form) {
        Ok(change) => change,
        Err(errors) => {
            return render(
                &user,
                StatusCode::BAD_REQUEST,
                &saved,
                Some(&form),
                &errors,
                None,
                None,
            );
        }
    };
    let previewing = form.get("intent").map(String::as_str) == Some("preview");
    let outcome = if previewing {
        ctx.settings.preview(user.msp.id, change).await
    } else {
        ctx.settings
            .update(user.msp.id, &user.actor(), change)
            .await
    };
    match outcome {
        Ok(settings) if previewing => render(
            &user,
            StatusCode::OK,
            &settings,
            Some(&form),
            &HashMap::new(),
            Some("A preview: nothing is saved until you save."),
            None,
        ),
        Ok(settings) => render(
            &user,
            StatusCode::OK,
            &settings,
            None,
            &HashMap::new(),
            Some("Saved. Every page and text uses these settings from now on."),
            None,
        ),
        Err(CoreError::InvalidInput { field, problem }) => {
            let mut errors = HashMap::new();
            errors.insert(
                field,
                problem_of(&CoreError::InvalidInput { field, problem }),
            );
            render(
                &user,
                StatusCode::BAD_REQUEST,
                &saved,
                Some(&form),
                &errors,
                None,
                None,
            )
        }
        Err(_) => failed(&user.brand),
    }
}

/// `POST /console/settings/logo/remove`: the uploaded logo goes (audited in core).
#[handler]
pub async fn remove_logo(
    ctx: Data<&Arc<AppContext>>,
    AdminForm { user, .. }: AdminForm<HashMap<String, String>>,
) -> Response {
    match ctx.settings.remove_logo(user.msp.id, &user.actor()).await {
        Ok(_) => redirect(PATH),
        Err(_) => failed(&user.brand),
    }
}

/// How much of an upload Vouch reads. A file over [`MAX_LOGO_BYTES`] is read on (and thrown
/// away, keeping only its first bytes) so that the admin gets the page with the error next to
/// the field rather than a dropped connection; every request body is capped anyway by the
/// server ([`crate::api::error::MAX_BODY_BYTES`], 1 MiB, answered 413 above it).
const MAX_UPLOAD_READ_BYTES: usize = crate::api::error::MAX_BODY_BYTES;

/// A form field's first `keep` bytes and its whole size (counted up to
/// [`MAX_UPLOAD_READ_BYTES`], then reading stops).
async fn read_field(
    field: poem::web::Field,
    keep: usize,
) -> Result<(Vec<u8>, usize), std::io::Error> {
    let reader = field.into_async_read();
    tokio::pin!(reader);
    let (mut kept, mut total) = (Vec::new(), 0usize);
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            return Ok((kept, total));
        }
        total += n;
        if kept.len() < keep {
            kept.extend_from_slice(&buf[..n.min(keep - kept.len())]);
        }
        if total > MAX_UPLOAD_READ_BYTES {
            return Ok((kept, total));
        }
    }
}

/// Whether `bytes` can be a logo at all: a PNG, or text that is SVG markup. Anything else
/// (a JPEG, a PDF, a document) is refused in words that say so, before core's checks.
fn looks_like_logo(bytes: &[u8]) -> bool {
    if LogoFormat::sniff(bytes) == LogoFormat::Png {
        return true;
    }
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_start_matches('\u{feff}').trim_start();
    text.starts_with('<') && text.contains("<svg")
}

/// The field error of an upload core refused: its words, without the API's advice about
/// request headers (which a form does not set).
fn logo_problem(problem: &str) -> String {
    let problem = problem
        .split(" (or send an SVG")
        .next()
        .unwrap_or(problem)
        .trim_end_matches('.');
    format!("This file {problem}.")
}

/// `POST /console/settings/logo` (`multipart/form-data`: `csrf` and the file as `logo`):
/// the logo every end-user page shows, checked and stored by core exactly as the API's
/// upload (PNG, or SVG rasterised; at most 256 KB) and audited (`settings.logo_upload`).
/// A technician is refused before the body is read; the CSRF token is checked before the
/// file is looked at; a refused file is explained next to the field and nothing changes.
#[handler]
pub async fn upload_logo(
    ctx: Data<&Arc<AppContext>>,
    req: &Request,
    AdminUser(user): AdminUser,
    multipart: poem::Result<Multipart>,
) -> Response {
    let unreadable = || {
        super::message(
            StatusCode::BAD_REQUEST,
            &user.brand,
            Some(user.shell(PATH)),
            "The upload could not be read",
            "Vouch could not read the file sent, so nothing was changed. Go back to Settings, choose the file again and upload it.",
            (PATH, "Back to Settings"),
        )
    };
    // Not a multipart form: no form of the console's, so no CSRF token to check either.
    let Ok(mut multipart) = multipart else {
        return match user.check_form(&ctx, req, "") {
            Err(refused) => refused,
            Ok(()) => unreadable(),
        };
    };
    let (mut csrf, mut file) = (String::new(), None);
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(_) => return unreadable(),
        };
        let name = field.name().map(str::to_owned);
        let read = match name.as_deref() {
            // A token is 43 characters or so; a longer one is wrong anyway.
            Some("csrf") => read_field(field, 256).await.map(|(bytes, _)| {
                csrf = String::from_utf8(bytes).unwrap_or_default();
            }),
            Some("logo") => read_field(field, MAX_LOGO_BYTES + 1)
                .await
                .map(|read| file = Some(read)),
            _ => read_field(field, 0).await.map(|_| ()),
        };
        if read.is_err() {
            return unreadable();
        }
    }
    if let Err(refused) = user.check_form(&ctx, req, &csrf) {
        return refused;
    }
    let saved = match ctx.settings.get(user.msp.id).await {
        Ok(settings) => settings,
        Err(_) => return failed(&user.brand),
    };
    let refuse = |error: String| {
        render(
            &user,
            StatusCode::BAD_REQUEST,
            &saved,
            None,
            &HashMap::new(),
            None,
            Some(&error),
        )
    };
    let bytes = match file {
        None | Some((_, 0)) => {
            return refuse("Choose your logo's file (PNG or SVG) first, then upload it.".into());
        }
        Some((_, total)) if total > MAX_LOGO_BYTES => {
            let size = if total > MAX_UPLOAD_READ_BYTES {
                format!("more than {} KB", MAX_UPLOAD_READ_BYTES / 1024)
            } else {
                format!("{} KB", total.div_ceil(1024))
            };
            return refuse(format!(
                "This file is {size}; a logo may be at most {} KB. Export it smaller (pages show it about 48 pixels high) and upload it again.",
                MAX_LOGO_BYTES / 1024
            ));
        }
        Some((bytes, _)) if !looks_like_logo(&bytes) => {
            return refuse(
                "This file is not a PNG or SVG image. Save your logo as PNG or SVG and upload that file."
                    .into(),
            );
        }
        Some((bytes, _)) => bytes,
    };
    match ctx
        .settings
        .upload_logo(
            user.msp.id,
            &user.actor(),
            LogoFormat::sniff(&bytes),
            &bytes,
        )
        .await
    {
        Ok(settings) => render(
            &user,
            StatusCode::OK,
            &settings,
            None,
            &HashMap::new(),
            Some("Logo uploaded. Every end-user page shows it from now on."),
            None,
        ),
        Err(CoreError::InvalidInput { problem, .. }) => refuse(logo_problem(&problem)),
        Err(_) => failed(&user.brand),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_png_or_svg_markup_can_be_a_logo() {
        assert!(looks_like_logo(b"\x89PNG\r\n\x1a\nrest"));
        assert!(looks_like_logo(
            b"<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"/>"
        ));
        assert!(looks_like_logo("\u{feff} <svg/>".as_bytes()));
        assert!(!looks_like_logo(b"\xff\xd8\xff\xe0JFIF"));
        assert!(!looks_like_logo(b"%PDF-1.7"));
        assert!(!looks_like_logo(b"<html><body>svg</body></html>"));
    }

    #[test]
    fn core_refusals_lose_the_api_advice() {
        assert_eq!(
            logo_problem(
                "is not a readable PNG image: export it again as PNG (or send an SVG with Content-Type image/svg+xml)"
            ),
            "This file is not a readable PNG image: export it again as PNG."
        );
        assert_eq!(
            logo_problem("has no size: give the SVG a width and height or a viewBox"),
            "This file has no size: give the SVG a width and height or a viewBox."
        );
    }
}
