//! `GET /console/settings` (admins): the MSP's branding (name, colour, logo address, support
//! phone, the name SMS texts are signed with) and policies, every field that
//! `SettingsService` exposes, with a preview of the SMS texts and of the share page at phone
//! size. `POST /console/settings` with `intent=preview` renders the page with the values
//! entered, validated but not saved (the whole page takes the previewed colour and logo);
//! with `intent=save` it saves them (audited in core). Errors show next to their fields.
//! `POST /console/settings/logo/remove` removes an uploaded logo.

use std::collections::HashMap;
use std::sync::Arc;

use minijinja::context;
use poem::http::StatusCode;
use poem::web::{Data, Form};
use poem::{Request, Response, handler};
use serde::Serialize;

use super::session::failed;
use super::{ConsoleUser, redirect, respond};
use crate::app::AppContext;
use crate::core::error::CoreError;
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
    _ctx: &AppContext,
    user: &ConsoleUser,
    status: StatusCode,
    settings: &MspSettings,
    entered: Option<&HashMap<String, String>>,
    errors: &HashMap<&'static str, String>,
    notice: Option<&str>,
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
            &ctx,
            &user,
            StatusCode::OK,
            &settings,
            None,
            &HashMap::new(),
            None,
        ),
        Err(_) => failed(&user.brand),
    }
}

/// `POST /console/settings`: preview or save.
#[handler]
pub async fn save(
    ctx: Data<&Arc<AppContext>>,
    req: &Request,
    user: ConsoleUser,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(refused) = user.require_admin(PATH) {
        return refused;
    }
    let csrf = form.get("csrf").map(String::as_str).unwrap_or("");
    if let Err(refused) = user.check_form(&ctx, req, csrf) {
        return refused;
    }
    let saved = match ctx.settings.get(user.msp.id).await {
        Ok(settings) => settings,
        Err(_) => return failed(&user.brand),
    };
    let change = match change_of(&saved, &form) {
        Ok(change) => change,
        Err(errors) => {
            return render(
                &ctx,
                &user,
                StatusCode::BAD_REQUEST,
                &saved,
                Some(&form),
                &errors,
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
            &ctx,
            &user,
            StatusCode::OK,
            &settings,
            Some(&form),
            &HashMap::new(),
            Some("A preview: nothing is saved until you save."),
        ),
        Ok(settings) => render(
            &ctx,
            &user,
            StatusCode::OK,
            &settings,
            None,
            &HashMap::new(),
            Some("Saved. Every page and text uses these settings from now on."),
        ),
        Err(CoreError::InvalidInput { field, problem }) => {
            let mut errors = HashMap::new();
            errors.insert(
                field,
                problem_of(&CoreError::InvalidInput { field, problem }),
            );
            render(
                &ctx,
                &user,
                StatusCode::BAD_REQUEST,
                &saved,
                Some(&form),
                &errors,
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
    req: &Request,
    user: ConsoleUser,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(refused) = user.require_admin(PATH) {
        return refused;
    }
    let csrf = form.get("csrf").map(String::as_str).unwrap_or("");
    if let Err(refused) = user.check_form(&ctx, req, csrf) {
        return refused;
    }
    match ctx.settings.remove_logo(user.msp.id, &user.actor()).await {
        Ok(_) => redirect(PATH),
        Err(_) => failed(&user.brand),
    }
}
