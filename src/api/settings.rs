//! The MSP's own settings: the branding end users see and the policies verifications and
//! resets follow. A change takes effect at once, on every instance, and is audited.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::{Binary, Json};
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiRequest, Object, OpenApi, Tags};

use super::ApiError;
use super::auth::AdminApiKey;
use crate::app::AppContext;
use crate::core::logo::LogoFormat;
use crate::core::settings::{MspSettings, SettingsChange};
use crate::domain::PasswordStyle;

#[derive(Tags)]
enum ApiTags {
    /// The MSP's branding and policies.
    Settings,
}

/// What end users see of the MSP: on the secure-link and one-tap pages and in every SMS.
#[derive(Debug, Object)]
pub struct Branding {
    /// The MSP's name as end users read it ("Northwind IT").
    pub name: String,
    /// The brand colour (`#rrggbb`), used for buttons with white text on them.
    #[oai(nullable)]
    pub color: Option<String>,
    /// The address of the MSP's logo: one uploaded with `PUT /v1/settings/logo` (served by
    /// Vouch), or an `https` address set here.
    #[oai(nullable)]
    pub logo_url: Option<String>,
    /// The phone number end users are told to call ("+1 206 555 0199").
    #[oai(nullable)]
    pub support_phone: Option<String>,
    /// The name every SMS is signed with ("Northwind IT: your code is ..."); `null` signs
    /// them with `name`.
    #[oai(nullable)]
    pub sms_sender_name: Option<String>,
}

/// What every verification and reset of the MSP follows.
#[derive(Debug, Object)]
pub struct Policy {
    /// How long a user stays verified after an approval, in seconds (60 to 86400).
    pub verified_window_seconds: i32,
    /// At most this many pushes to one user per window (1 to 20): push-bombing protection.
    pub push_limit_count: i32,
    /// The window of both push limits, in seconds (60 to 86400).
    pub push_limit_window_seconds: i32,
    /// At most this many pushes by one technician per window, across users (1 to 500).
    pub technician_push_limit_count: i32,
    /// Whether an SMS code may go to the PSA contact's mobile when Microsoft has none.
    pub allow_contact_phone_fallback: bool,
    /// Whether users holding admin roles may be reset.
    pub allow_admin_reset: bool,
    /// Whether the technician sees the new password (otherwise only the user, by link).
    pub show_password_to_technician: bool,
    /// Length of generated passwords (12 to 64).
    pub password_length: i32,
    /// How generated passwords look.
    pub password_style: PasswordStyle,
    /// Whether the user must choose a new password at their next sign-in.
    pub force_change_at_next_sign_in: bool,
    /// How long a user's resets are held after they report a verification as fraud, in
    /// seconds (0 to 2592000; 0 holds nothing).
    pub fraud_hold_seconds: i32,
    /// Whether approved pushes count towards the push limits too (by default only denied,
    /// unanswered, cancelled and waiting pushes do: what push-bombing looks like).
    pub count_approved_pushes: bool,
    /// How long a secure share's link stays open when its creator does not say (the new
    /// password's link, for one), in seconds (300 to 604800).
    pub share_lifetime_seconds: i32,
    /// How long a one-tap verification link sent by SMS stays valid, in seconds (60 to
    /// 3600).
    pub one_tap_link_lifetime_seconds: i32,
}

/// The MSP's settings.
#[derive(Debug, Object)]
pub struct Settings {
    /// What end users see.
    pub branding: Branding,
    /// What verifications and resets follow.
    pub policy: Policy,
}

/// A change of branding: a field left out stays as it is; `null` clears an optional one.
#[derive(Debug, Object)]
pub struct BrandingChange {
    /// 1 to 80 characters.
    #[oai(validator(max_length = 200))]
    #[oai(nullable)]
    pub name: Option<String>,
    /// `#rrggbb` or `#rgb`, dark enough for white text (contrast at least 4.5:1).
    #[oai(validator(max_length = 16))]
    pub color: MaybeUndefined<String>,
    /// An `https` address.
    #[oai(validator(max_length = 2048))]
    pub logo_url: MaybeUndefined<String>,
    /// 3 to 20 digits, with only spaces and `+ - ( ) .` besides.
    #[oai(validator(max_length = 64))]
    pub support_phone: MaybeUndefined<String>,
    /// 1 to 20 letters, digits, spaces or `. & ' -`.
    #[oai(validator(max_length = 64))]
    pub sms_sender_name: MaybeUndefined<String>,
}

/// A change of policy: a field left out stays as it is. Ranges as in `Policy`.
#[derive(Debug, Object)]
pub struct PolicyChange {
    #[oai(nullable)]
    pub verified_window_seconds: Option<i32>,
    #[oai(nullable)]
    pub push_limit_count: Option<i32>,
    #[oai(nullable)]
    pub push_limit_window_seconds: Option<i32>,
    #[oai(nullable)]
    pub technician_push_limit_count: Option<i32>,
    #[oai(nullable)]
    pub allow_contact_phone_fallback: Option<bool>,
    #[oai(nullable)]
    pub allow_admin_reset: Option<bool>,
    #[oai(nullable)]
    pub show_password_to_technician: Option<bool>,
    #[oai(nullable)]
    pub password_length: Option<i32>,
    #[oai(nullable)]
    pub password_style: Option<PasswordStyle>,
    #[oai(nullable)]
    pub force_change_at_next_sign_in: Option<bool>,
    #[oai(nullable)]
    pub fraud_hold_seconds: Option<i32>,
    #[oai(nullable)]
    pub count_approved_pushes: Option<bool>,
    #[oai(nullable)]
    pub share_lifetime_seconds: Option<i32>,
    #[oai(nullable)]
    pub one_tap_link_lifetime_seconds: Option<i32>,
}

/// A change of settings; either part may be left out.
#[derive(Debug, Object)]
pub struct SettingsPatch {
    /// Branding fields to change.
    #[oai(nullable)]
    pub branding: Option<BrandingChange>,
    /// Policy fields to change.
    #[oai(nullable)]
    pub policy: Option<PolicyChange>,
}

fn clearable(value: MaybeUndefined<String>) -> Option<Option<String>> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(v)),
    }
}

impl From<MspSettings> for Settings {
    fn from(s: MspSettings) -> Self {
        let p = s.policy;
        let logo_url = s.branding.logo_in_effect().map(str::to_owned);
        Settings {
            branding: Branding {
                name: s.branding.name,
                color: s.branding.color,
                logo_url,
                support_phone: s.branding.support_phone,
                sms_sender_name: s.branding.sms_sender_name,
            },
            policy: Policy {
                verified_window_seconds: p.verified_window_seconds,
                push_limit_count: p.push_limit_count,
                push_limit_window_seconds: p.push_limit_window_seconds,
                technician_push_limit_count: p.technician_push_limit_count,
                allow_contact_phone_fallback: p.allow_contact_phone_fallback,
                allow_admin_reset: p.allow_admin_reset,
                show_password_to_technician: p.show_password_to_technician,
                password_length: p.password_length,
                password_style: p.password_style,
                force_change_at_next_sign_in: p.force_change_at_next_sign_in,
                fraud_hold_seconds: p.fraud_hold_seconds,
                count_approved_pushes: p.count_approved_pushes,
                share_lifetime_seconds: p.share_lifetime_seconds,
                one_tap_link_lifetime_seconds: p.one_tap_link_lifetime_seconds,
            },
        }
    }
}

impl From<SettingsPatch> for SettingsChange {
    fn from(patch: SettingsPatch) -> Self {
        let mut change = SettingsChange::default();
        if let Some(b) = patch.branding {
            change.name = b.name;
            change.color = clearable(b.color);
            change.logo_url = clearable(b.logo_url);
            change.support_phone = clearable(b.support_phone);
            change.sms_sender_name = clearable(b.sms_sender_name);
        }
        if let Some(p) = patch.policy {
            change.verified_window_seconds = p.verified_window_seconds;
            change.push_limit_count = p.push_limit_count;
            change.push_limit_window_seconds = p.push_limit_window_seconds;
            change.technician_push_limit_count = p.technician_push_limit_count;
            change.allow_contact_phone_fallback = p.allow_contact_phone_fallback;
            change.allow_admin_reset = p.allow_admin_reset;
            change.show_password_to_technician = p.show_password_to_technician;
            change.password_length = p.password_length;
            change.password_style = p.password_style;
            change.force_change_at_next_sign_in = p.force_change_at_next_sign_in;
            change.fraud_hold_seconds = p.fraud_hold_seconds;
            change.count_approved_pushes = p.count_approved_pushes;
            change.share_lifetime_seconds = p.share_lifetime_seconds;
            change.one_tap_link_lifetime_seconds = p.one_tap_link_lifetime_seconds;
        }
        change
    }
}

/// A logo file: a PNG, or an SVG (rasterised to a PNG; its text must be paths).
#[derive(Debug, ApiRequest)]
pub enum LogoUpload {
    /// A PNG image, at most 256 KB and 4096 pixels on each side.
    #[oai(content_type = "image/png")]
    Png(Binary<Vec<u8>>),
    /// An SVG image, at most 256 KB.
    #[oai(content_type = "image/svg+xml")]
    Svg(Binary<Vec<u8>>),
}

pub struct SettingsApi;

#[OpenApi(prefix_path = "/v1/settings", tag = "ApiTags::Settings")]
impl SettingsApi {
    /// The MSP's branding and policies.
    #[oai(path = "/", method = "get", operation_id = "settings_get")]
    async fn get(
        &self,
        auth: AdminApiKey,
        ctx: Data<&Arc<AppContext>>,
    ) -> Result<Json<Settings>, ApiError> {
        Ok(Json(ctx.settings.get(auth.msp_id()).await?.into()))
    }

    /// Change the MSP's branding or policies.
    ///
    /// Every field is checked first (a `400 invalid_request` names the first one that is
    /// wrong, and nothing is saved). A change takes effect at once, on every instance, and
    /// is audited (`settings.update`) with the old and new value of each field changed.
    #[oai(path = "/", method = "patch", operation_id = "settings_update")]
    async fn update(
        &self,
        auth: AdminApiKey,
        ctx: Data<&Arc<AppContext>>,
        body: Json<SettingsPatch>,
    ) -> Result<Json<Settings>, ApiError> {
        Ok(Json(
            ctx.settings
                .update(auth.msp_id(), &auth.actor(), body.0.into())
                .await?
                .into(),
        ))
    }

    /// Upload the MSP's logo, shown on every end-user page.
    ///
    /// The body is the file itself, with `Content-Type: image/png` or `image/svg+xml`, at
    /// most 256 KB. An SVG is rasterised to a PNG (never served as SVG, so no script in it
    /// can run); its text must be converted to paths, and it may embed images only as data
    /// URLs. Vouch serves the logo at the `logo_url` of the answer; a new upload gets a new
    /// address. It replaces a `logo_url` set before, and is audited
    /// (`settings.logo_upload`).
    #[oai(path = "/logo", method = "put", operation_id = "settings_logo_upload")]
    async fn upload_logo(
        &self,
        auth: AdminApiKey,
        ctx: Data<&Arc<AppContext>>,
        body: LogoUpload,
    ) -> Result<Json<Settings>, ApiError> {
        let (format, bytes) = match body {
            LogoUpload::Png(bytes) => (LogoFormat::Png, bytes.0),
            LogoUpload::Svg(bytes) => (LogoFormat::Svg, bytes.0),
        };
        Ok(Json(
            ctx.settings
                .upload_logo(auth.msp_id(), &auth.actor(), format, &bytes)
                .await?
                .into(),
        ))
    }

    /// Remove the uploaded logo: end-user pages show the MSP's name instead.
    ///
    /// Audited (`settings.logo_remove`); removing when none is uploaded changes nothing.
    #[oai(
        path = "/logo",
        method = "delete",
        operation_id = "settings_logo_remove"
    )]
    async fn remove_logo(
        &self,
        auth: AdminApiKey,
        ctx: Data<&Arc<AppContext>>,
    ) -> Result<Json<Settings>, ApiError> {
        Ok(Json(
            ctx.settings
                .remove_logo(auth.msp_id(), &auth.actor())
                .await?
                .into(),
        ))
    }
}
