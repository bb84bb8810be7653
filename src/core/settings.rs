//! An MSP's own settings: the branding its end users see (pages and SMS) and the policies
//! every verification and reset follows. Each change is validated field by field, takes
//! effect at once on every instance (the MSP is read from the database on every request), and
//! is audited with the old and new value of each field that changed.

use url::Url;
use uuid::Uuid;

use crate::core::error::CoreError;
use crate::core::logo::{self, LogoFormat};
use crate::core::share::{
    MAX_EXPIRES_IN, MIN_EXPIRES_IN, is_hex_color, safe_logo_url, usable_support_phone,
};
use crate::domain::{AuditOutcome, MspPolicy, PasswordStyle};
use crate::store::Store;
use crate::store::audit::{AuditActor, NewAuditEvent};
use crate::store::logos::StoredLogo;
use crate::store::msp::{MspAccount, MspBranding};

/// What end users see of the MSP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branding {
    pub name: String,
    pub color: Option<String>,
    /// A logo address the admin set (`https`), when no logo is uploaded.
    pub logo_url: Option<String>,
    /// The logo uploaded to Vouch, if any (it replaces `logo_url`).
    pub uploaded_logo: Option<UploadedLogo>,
    pub support_phone: Option<String>,
    /// The name SMS texts are signed with (`None`: the MSP's name).
    pub sms_sender_name: Option<String>,
}

/// A logo uploaded to Vouch: its version and where Vouch serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedLogo {
    pub version: String,
    pub url: String,
}

impl Branding {
    /// The logo end users see: the uploaded one, else the address set.
    pub fn logo_in_effect(&self) -> Option<&str> {
        self.uploaded_logo
            .as_ref()
            .map(|logo| logo.url.as_str())
            .or(self.logo_url.as_deref())
    }
}

/// An MSP's settings as an admin reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MspSettings {
    pub branding: Branding,
    pub policy: MspPolicy,
}

/// A change of settings: `None` leaves a field as it is. For the optional branding fields,
/// `Some(None)` clears the value.
#[derive(Debug, Clone, Default)]
pub struct SettingsChange {
    pub name: Option<String>,
    pub color: Option<Option<String>>,
    pub logo_url: Option<Option<String>>,
    pub support_phone: Option<Option<String>>,
    pub sms_sender_name: Option<Option<String>>,
    pub verified_window_seconds: Option<i32>,
    pub push_limit_count: Option<i32>,
    pub push_limit_window_seconds: Option<i32>,
    pub technician_push_limit_count: Option<i32>,
    pub allow_contact_phone_fallback: Option<bool>,
    pub allow_admin_reset: Option<bool>,
    pub show_password_to_technician: Option<bool>,
    pub password_length: Option<i32>,
    pub password_style: Option<PasswordStyle>,
    pub force_change_at_next_sign_in: Option<bool>,
    pub fraud_hold_seconds: Option<i32>,
    pub count_approved_pushes: Option<bool>,
    pub share_lifetime_seconds: Option<i32>,
    pub one_tap_link_lifetime_seconds: Option<i32>,
}

/// The longest SMS sender name: SMS texts are signed with it, and every character counts.
pub const MAX_SMS_SENDER_NAME_CHARS: usize = 20;
/// Letters, digits, spaces and `. & ' -`: all in the GSM 7-bit alphabet, so a sender name
/// never turns an SMS into UCS-2 (which halves what one SMS holds).
fn is_sms_sender_name(value: &str) -> bool {
    let count = value.chars().count();
    (1..=MAX_SMS_SENDER_NAME_CHARS).contains(&count)
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " .&'-".contains(c))
        && value.chars().any(|c| c.is_ascii_alphanumeric())
}

/// The contrast a brand colour must have against white: it carries white button text
/// (WCAG AA for normal text).
pub const MIN_CONTRAST_WITH_WHITE: f64 = 4.5;

#[derive(Clone)]
pub struct SettingsService {
    store: Store,
    /// Where uploaded logos are served from (`http.public_url`).
    public_url: Url,
}

impl SettingsService {
    pub fn new(store: Store, public_url: Url) -> SettingsService {
        SettingsService { store, public_url }
    }

    pub async fn get(&self, msp_id: Uuid) -> Result<MspSettings, CoreError> {
        Ok(self.settings_of(&self.msp(msp_id).await?))
    }

    fn settings_of(&self, msp: &MspAccount) -> MspSettings {
        settings_of(msp, &self.public_url)
    }

    /// Makes `bytes` the MSP's logo (a PNG as it is, an SVG rasterised), in place of any
    /// logo uploaded or set before; audited (`settings.logo_upload`).
    #[tracing::instrument(skip_all, fields(msp_id = %msp_id, bytes = bytes.len()))]
    pub async fn upload_logo(
        &self,
        msp_id: Uuid,
        actor: &AuditActor,
        format: LogoFormat,
        bytes: &[u8],
    ) -> Result<MspSettings, CoreError> {
        let before = self.settings_of(&self.msp(msp_id).await?);
        let logo = logo::prepare(format, bytes)?;
        let stored = StoredLogo {
            msp_id,
            content_type: LogoFormat::Png.media_type().to_owned(),
            bytes: logo.png,
            sha256: logo.sha256,
            width: logo.width,
            height: logo.height,
            updated_at: chrono::Utc::now(),
        };
        let version = stored.version().to_owned();
        let mut after = before.clone();
        after.branding.logo_url = None;
        after.branding.uploaded_logo = Some(UploadedLogo {
            url: logo::uploaded_logo_url(&self.public_url, msp_id, &version).to_string(),
            version,
        });
        let audit = self.audit_event(
            msp_id,
            actor,
            "settings.logo_upload",
            &after,
            serde_json::json!({
                "changed": changes(&before, &after),
                "uploaded_as": format.media_type(),
                "uploaded_bytes": bytes.len(),
                "rasterised": logo.rasterised,
                "width": stored.width,
                "height": stored.height,
                "sha256": stored.sha256,
            }),
        );
        self.store.put_logo(stored, audit).await?;
        self.get(msp_id).await
    }

    /// Removes the MSP's uploaded logo (its pages show its name instead); audited
    /// (`settings.logo_remove`). Removing when none is uploaded changes nothing.
    pub async fn remove_logo(
        &self,
        msp_id: Uuid,
        actor: &AuditActor,
    ) -> Result<MspSettings, CoreError> {
        let before = self.settings_of(&self.msp(msp_id).await?);
        let mut after = before.clone();
        after.branding.uploaded_logo = None;
        let audit = self.audit_event(
            msp_id,
            actor,
            "settings.logo_remove",
            &after,
            serde_json::json!({ "changed": changes(&before, &after) }),
        );
        self.store.delete_logo(msp_id, audit).await?;
        self.get(msp_id).await
    }

    /// The uploaded logo at `version`, for the page that serves it; `None` when the MSP has
    /// none, or another one now.
    pub async fn logo(&self, msp_id: Uuid, version: &str) -> Result<Option<StoredLogo>, CoreError> {
        let Some(msp) = self.store.get_msp(msp_id).await? else {
            return Ok(None);
        };
        if msp.brand_logo_version.as_deref() != Some(version) {
            return Ok(None);
        }
        Ok(self
            .store
            .get_logo(msp_id)
            .await?
            .filter(|logo| logo.version() == version))
    }

    fn audit_event(
        &self,
        msp_id: Uuid,
        actor: &AuditActor,
        action: &str,
        after: &MspSettings,
        details: serde_json::Value,
    ) -> NewAuditEvent {
        NewAuditEvent {
            msp_id,
            actor: actor.clone(),
            action: action.into(),
            subject_kind: Some("msp".into()),
            subject_id: Some(msp_id.to_string()),
            subject_name: Some(after.branding.name.clone()),
            psa_ticket_id: None,
            outcome: AuditOutcome::Success,
            upstream_request_id: None,
            details,
        }
    }

    /// Applies `change` after checking every field; nothing is saved when one is invalid.
    #[tracing::instrument(skip_all, fields(msp_id = %msp_id))]
    /// What the settings would be after `change`, validated as [`SettingsService::update`]
    /// validates it, without saving anything (the console's preview).
    pub async fn preview(
        &self,
        msp_id: Uuid,
        change: SettingsChange,
    ) -> Result<MspSettings, CoreError> {
        let before = self.settings_of(&self.msp(msp_id).await?);
        apply(&before, change)
    }

    pub async fn update(
        &self,
        msp_id: Uuid,
        actor: &AuditActor,
        change: SettingsChange,
    ) -> Result<MspSettings, CoreError> {
        let before = self.settings_of(&self.msp(msp_id).await?);
        let after = apply(&before, change)?;
        if after == before {
            return Ok(before);
        }
        let audit = self.audit_event(
            msp_id,
            actor,
            "settings.update",
            &after,
            serde_json::json!({ "changed": changes(&before, &after) }),
        );
        let msp = self
            .store
            .update_msp_settings(
                msp_id,
                MspBranding {
                    name: after.branding.name.clone(),
                    color: after.branding.color.clone(),
                    logo_url: after.branding.logo_url.clone(),
                    logo_version: after
                        .branding
                        .uploaded_logo
                        .as_ref()
                        .map(|logo| logo.version.clone()),
                    support_phone: after.branding.support_phone.clone(),
                    sms_sender_name: after.branding.sms_sender_name.clone(),
                },
                after.policy.clone(),
                audit,
            )
            .await?;
        let saved = self.settings_of(&msp);
        Ok(saved)
    }

    async fn msp(&self, msp_id: Uuid) -> Result<MspAccount, CoreError> {
        self.store
            .get_msp(msp_id)
            .await?
            .ok_or(CoreError::InvalidInput {
                field: "msp",
                problem: "names no MSP account".into(),
            })
    }
}

fn settings_of(msp: &MspAccount, public_url: &Url) -> MspSettings {
    MspSettings {
        branding: Branding {
            name: msp.name.clone(),
            color: msp.brand_color.clone(),
            logo_url: msp.brand_logo_url.clone(),
            uploaded_logo: msp.brand_logo_version.as_ref().map(|version| UploadedLogo {
                url: logo::uploaded_logo_url(public_url, msp.id, version).to_string(),
                version: version.clone(),
            }),
            support_phone: msp.brand_support_phone.clone(),
            sms_sender_name: msp.brand_sms_sender_name.clone(),
        },
        policy: msp.policy.clone(),
    }
}

fn invalid(field: &'static str, problem: impl Into<String>) -> CoreError {
    CoreError::InvalidInput {
        field,
        problem: problem.into(),
    }
}

fn in_range(
    field: &'static str,
    value: i32,
    range: std::ops::RangeInclusive<i32>,
    unit: &str,
) -> Result<i32, CoreError> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(invalid(
            field,
            format!("must be from {} to {} {unit}", range.start(), range.end()),
        ))
    }
}

/// `before` with `change` applied, every field checked.
fn apply(before: &MspSettings, change: SettingsChange) -> Result<MspSettings, CoreError> {
    let mut after = before.clone();
    if let Some(name) = change.name {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 80 {
            return Err(invalid("name", "must be 1 to 80 characters"));
        }
        after.branding.name = name.to_owned();
    }
    if let Some(color) = change.color {
        after.branding.color = match color
            .map(|c| c.trim().to_ascii_lowercase())
            .filter(|c| !c.is_empty())
        {
            None => None,
            Some(color) if !is_hex_color(&color) => {
                return Err(invalid("color", "must be a colour as #rrggbb or #rgb"));
            }
            Some(color) => {
                let contrast = contrast_with_white(&color);
                if contrast < MIN_CONTRAST_WITH_WHITE {
                    return Err(invalid(
                        "color",
                        format!(
                            "is too light for white text on it (contrast {contrast:.1}:1; at least {MIN_CONTRAST_WITH_WHITE}:1 is needed). Choose a darker shade"
                        ),
                    ));
                }
                Some(color)
            }
        };
    }
    if let Some(logo) = change.logo_url {
        // An address set, or the logo cleared, replaces an uploaded logo.
        after.branding.uploaded_logo = None;
        after.branding.logo_url = match logo.map(|l| l.trim().to_owned()).filter(|l| !l.is_empty())
        {
            None => None,
            Some(logo) if logo.len() > 2048 || safe_logo_url(&logo).is_none() => {
                return Err(invalid(
                    "logo_url",
                    "must be an https address of at most 2048 characters",
                ));
            }
            Some(logo) => Some(logo),
        };
    }
    if let Some(phone) = change.support_phone {
        after.branding.support_phone = match phone.map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()) {
            None => None,
            Some(phone) => Some(usable_support_phone(&phone).ok_or_else(|| {
                invalid(
                    "support_phone",
                    "must be a phone number of 3 to 20 digits, with only spaces and + - ( ) . besides (at most 32 characters)",
                )
            })?),
        };
    }
    if let Some(sender) = change.sms_sender_name {
        after.branding.sms_sender_name = match sender
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
        {
            None => None,
            Some(sender) if !is_sms_sender_name(&sender) => {
                return Err(invalid(
                    "sms_sender_name",
                    format!(
                        "must be 1 to {MAX_SMS_SENDER_NAME_CHARS} letters, digits, spaces or . & ' - (it signs every SMS, in the SMS alphabet)"
                    ),
                ));
            }
            Some(sender) => Some(sender),
        };
    }
    let p = &mut after.policy;
    if let Some(v) = change.verified_window_seconds {
        p.verified_window_seconds = in_range("verified_window_seconds", v, 60..=86_400, "seconds")?;
    }
    if let Some(v) = change.push_limit_count {
        p.push_limit_count = in_range("push_limit_count", v, 1..=20, "pushes")?;
    }
    if let Some(v) = change.push_limit_window_seconds {
        p.push_limit_window_seconds =
            in_range("push_limit_window_seconds", v, 60..=86_400, "seconds")?;
    }
    if let Some(v) = change.technician_push_limit_count {
        p.technician_push_limit_count =
            in_range("technician_push_limit_count", v, 1..=500, "pushes")?;
    }
    if let Some(v) = change.password_length {
        p.password_length = in_range("password_length", v, 12..=64, "characters")?;
    }
    if let Some(v) = change.fraud_hold_seconds {
        p.fraud_hold_seconds = in_range("fraud_hold_seconds", v, 0..=30 * 86_400, "seconds")?;
    }
    if let Some(v) = change.share_lifetime_seconds {
        p.share_lifetime_seconds = in_range(
            "share_lifetime_seconds",
            v,
            // The same bounds as a share's own lifetime.
            MIN_EXPIRES_IN.num_seconds() as i32..=MAX_EXPIRES_IN.num_seconds() as i32,
            "seconds",
        )?;
    }
    if let Some(v) = change.one_tap_link_lifetime_seconds {
        p.one_tap_link_lifetime_seconds =
            in_range("one_tap_link_lifetime_seconds", v, 60..=60 * 60, "seconds")?;
    }
    if let Some(v) = change.count_approved_pushes {
        p.count_approved_pushes = v;
    }
    if let Some(v) = change.allow_contact_phone_fallback {
        p.allow_contact_phone_fallback = v;
    }
    if let Some(v) = change.allow_admin_reset {
        p.allow_admin_reset = v;
    }
    if let Some(v) = change.show_password_to_technician {
        p.show_password_to_technician = v;
    }
    if let Some(v) = change.password_style {
        p.password_style = v;
    }
    if let Some(v) = change.force_change_at_next_sign_in {
        p.force_change_at_next_sign_in = v;
    }
    Ok(after)
}

/// The SMS texts end users get under `settings`, with sample values (the console's preview):
/// `(what, text, segments)`.
pub fn sample_texts(settings: &MspSettings) -> Vec<(&'static str, String, usize)> {
    use crate::core::texts;
    let b = &settings.branding;
    let from = texts::Sender {
        brand: b
            .sms_sender_name
            .as_deref()
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .unwrap_or(b.name.trim())
            .to_owned(),
        support_phone: b.support_phone.as_deref().and_then(usable_support_phone),
    };
    let account = "dana@contoso.example";
    let share = chrono::Duration::seconds(i64::from(settings.policy.share_lifetime_seconds));
    let tap = chrono::Duration::seconds(i64::from(settings.policy.one_tap_link_lifetime_seconds));
    let link = "https://vouch.example/s/Xk3…";
    [
        (
            "Verification code",
            texts::sms_code(&from, account, "482913", chrono::Duration::minutes(10)),
        ),
        (
            "One-tap link",
            texts::one_tap_link(&from, account, link, tap),
        ),
        (
            "New password link",
            texts::password_link(&from, account, link, 1, share),
        ),
    ]
    .into_iter()
    .map(|(what, text)| {
        let segments = texts::segments(&text);
        (what, text, segments)
    })
    .collect()
}

/// The part of the settings a field belongs to, as the API groups them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Branding,
    Policy,
}

impl MspSettings {
    /// Every field: its part, its name (as the API, the CLI and the audit spell it) and its
    /// value. None of them is a secret.
    pub fn fields(&self) -> Vec<(Part, &'static str, serde_json::Value)> {
        use serde_json::json;
        let (b, p) = (&self.branding, &self.policy);
        vec![
            (Part::Branding, "name", json!(b.name)),
            (Part::Branding, "color", json!(b.color)),
            (Part::Branding, "logo_url", json!(b.logo_in_effect())),
            (Part::Branding, "support_phone", json!(b.support_phone)),
            (Part::Branding, "sms_sender_name", json!(b.sms_sender_name)),
            (
                Part::Policy,
                "verified_window_seconds",
                json!(p.verified_window_seconds),
            ),
            (Part::Policy, "push_limit_count", json!(p.push_limit_count)),
            (
                Part::Policy,
                "push_limit_window_seconds",
                json!(p.push_limit_window_seconds),
            ),
            (
                Part::Policy,
                "technician_push_limit_count",
                json!(p.technician_push_limit_count),
            ),
            (
                Part::Policy,
                "count_approved_pushes",
                json!(p.count_approved_pushes),
            ),
            (
                Part::Policy,
                "allow_contact_phone_fallback",
                json!(p.allow_contact_phone_fallback),
            ),
            (
                Part::Policy,
                "allow_admin_reset",
                json!(p.allow_admin_reset),
            ),
            (
                Part::Policy,
                "show_password_to_technician",
                json!(p.show_password_to_technician),
            ),
            (Part::Policy, "password_length", json!(p.password_length)),
            (Part::Policy, "password_style", json!(p.password_style)),
            (
                Part::Policy,
                "force_change_at_next_sign_in",
                json!(p.force_change_at_next_sign_in),
            ),
            (
                Part::Policy,
                "fraud_hold_seconds",
                json!(p.fraud_hold_seconds),
            ),
            (
                Part::Policy,
                "share_lifetime_seconds",
                json!(p.share_lifetime_seconds),
            ),
            (
                Part::Policy,
                "one_tap_link_lifetime_seconds",
                json!(p.one_tap_link_lifetime_seconds),
            ),
        ]
    }

    /// The settings as the API's JSON answer has them: `{branding: {...}, policy: {...}}`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut branding = serde_json::Map::new();
        let mut policy = serde_json::Map::new();
        for (part, name, value) in self.fields() {
            match part {
                Part::Branding => branding.insert(name.to_owned(), value),
                Part::Policy => policy.insert(name.to_owned(), value),
            };
        }
        serde_json::json!({ "branding": branding, "policy": policy })
    }
}

impl SettingsChange {
    /// This change with `other`'s fields added (a field both set takes `other`'s value).
    pub fn merge(self, other: SettingsChange) -> SettingsChange {
        SettingsChange {
            name: other.name.or(self.name),
            color: other.color.or(self.color),
            logo_url: other.logo_url.or(self.logo_url),
            support_phone: other.support_phone.or(self.support_phone),
            sms_sender_name: other.sms_sender_name.or(self.sms_sender_name),
            verified_window_seconds: other
                .verified_window_seconds
                .or(self.verified_window_seconds),
            push_limit_count: other.push_limit_count.or(self.push_limit_count),
            push_limit_window_seconds: other
                .push_limit_window_seconds
                .or(self.push_limit_window_seconds),
            technician_push_limit_count: other
                .technician_push_limit_count
                .or(self.technician_push_limit_count),
            allow_contact_phone_fallback: other
                .allow_contact_phone_fallback
                .or(self.allow_contact_phone_fallback),
            allow_admin_reset: other.allow_admin_reset.or(self.allow_admin_reset),
            show_password_to_technician: other
                .show_password_to_technician
                .or(self.show_password_to_technician),
            password_length: other.password_length.or(self.password_length),
            password_style: other.password_style.or(self.password_style),
            force_change_at_next_sign_in: other
                .force_change_at_next_sign_in
                .or(self.force_change_at_next_sign_in),
            fraud_hold_seconds: other.fraud_hold_seconds.or(self.fraud_hold_seconds),
            count_approved_pushes: other.count_approved_pushes.or(self.count_approved_pushes),
            share_lifetime_seconds: other.share_lifetime_seconds.or(self.share_lifetime_seconds),
            one_tap_link_lifetime_seconds: other
                .one_tap_link_lifetime_seconds
                .or(self.one_tap_link_lifetime_seconds),
        }
    }

    /// The change of one field from text, as `vouch settings set KEY VALUE` takes it: a
    /// number, `true`/`false`, a password style, or for the optional branding fields an
    /// empty value (or `none`) to clear it.
    pub fn of_text(key: &str, value: &str) -> Result<SettingsChange, CoreError> {
        let number = |field: &'static str| {
            value
                .trim()
                .parse::<i32>()
                .map_err(|_| invalid(field, "must be a whole number"))
        };
        let flag = |field: &'static str| match value.trim() {
            "true" | "yes" | "on" => Ok(true),
            "false" | "no" | "off" => Ok(false),
            _ => Err(invalid(field, "must be true or false")),
        };
        let clearable = || {
            let v = value.trim();
            (!v.is_empty() && !v.eq_ignore_ascii_case("none")).then(|| v.to_owned())
        };
        let mut change = SettingsChange::default();
        match key
            .trim_start_matches("branding.")
            .trim_start_matches("policy.")
        {
            "name" => change.name = Some(value.to_owned()),
            "color" => change.color = Some(clearable()),
            "logo_url" => change.logo_url = Some(clearable()),
            "support_phone" => change.support_phone = Some(clearable()),
            "sms_sender_name" => change.sms_sender_name = Some(clearable()),
            "share_lifetime_seconds" => {
                change.share_lifetime_seconds = Some(number("share_lifetime_seconds")?)
            }
            "one_tap_link_lifetime_seconds" => {
                change.one_tap_link_lifetime_seconds =
                    Some(number("one_tap_link_lifetime_seconds")?)
            }
            "count_approved_pushes" => {
                change.count_approved_pushes = Some(flag("count_approved_pushes")?)
            }
            "verified_window_seconds" => {
                change.verified_window_seconds = Some(number("verified_window_seconds")?)
            }
            "push_limit_count" => change.push_limit_count = Some(number("push_limit_count")?),
            "push_limit_window_seconds" => {
                change.push_limit_window_seconds = Some(number("push_limit_window_seconds")?)
            }
            "technician_push_limit_count" => {
                change.technician_push_limit_count = Some(number("technician_push_limit_count")?)
            }
            "password_length" => change.password_length = Some(number("password_length")?),
            "fraud_hold_seconds" => change.fraud_hold_seconds = Some(number("fraud_hold_seconds")?),
            "allow_contact_phone_fallback" => {
                change.allow_contact_phone_fallback = Some(flag("allow_contact_phone_fallback")?)
            }
            "allow_admin_reset" => change.allow_admin_reset = Some(flag("allow_admin_reset")?),
            "show_password_to_technician" => {
                change.show_password_to_technician = Some(flag("show_password_to_technician")?)
            }
            "force_change_at_next_sign_in" => {
                change.force_change_at_next_sign_in = Some(flag("force_change_at_next_sign_in")?)
            }
            "password_style" => {
                change.password_style = Some(match value.trim() {
                    "random" => PasswordStyle::Random,
                    "passphrase" => PasswordStyle::Passphrase,
                    _ => return Err(invalid("password_style", "must be random or passphrase")),
                })
            }
            _ => {
                return Err(invalid(
                    "key",
                    format!("{key:?} names no setting; `vouch settings show` lists them"),
                ));
            }
        }
        Ok(change)
    }
}

/// Each field that differs, with its old and new value (none of them is a secret).
fn changes(before: &MspSettings, after: &MspSettings) -> serde_json::Value {
    let mut changed = serde_json::Map::new();
    for ((_, field, old), (_, _, new)) in before.fields().into_iter().zip(after.fields()) {
        if old != new {
            changed.insert(
                field.to_owned(),
                serde_json::json!({ "old": old, "new": new }),
            );
        }
    }
    serde_json::Value::Object(changed)
}

/// WCAG contrast ratio of `#rgb`/`#rrggbb` against white.
pub fn contrast_with_white(color: &str) -> f64 {
    let hex = color.trim_start_matches('#');
    let full: String = if hex.len() == 3 {
        hex.chars().flat_map(|c| [c, c]).collect()
    } else {
        hex.to_owned()
    };
    let channel = |i: usize| {
        let v = u8::from_str_radix(&full[i..i + 2], 16).unwrap_or(0) as f64 / 255.0;
        if v <= 0.03928 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    let luminance = 0.2126 * channel(0) + 0.7152 * channel(2) + 0.0722 * channel(4);
    1.05 / (luminance + 0.05)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> MspSettings {
        MspSettings {
            branding: Branding {
                name: "Northwind IT".into(),
                color: None,
                logo_url: None,
                uploaded_logo: None,
                support_phone: None,
                sms_sender_name: None,
            },
            policy: MspPolicy::default(),
        }
    }

    #[test]
    fn contrast_is_the_wcag_ratio() {
        assert!((contrast_with_white("#000000") - 21.0).abs() < 0.01);
        assert!((contrast_with_white("#fff") - 1.0).abs() < 0.01);
        assert!(contrast_with_white("#0b5cad") >= MIN_CONTRAST_WITH_WHITE);
        assert!(contrast_with_white("#ffcc00") < MIN_CONTRAST_WITH_WHITE);
    }

    #[test]
    fn each_field_is_checked_and_names_itself() {
        let field_of = |change: SettingsChange| match apply(&defaults(), change) {
            Err(CoreError::InvalidInput { field, .. }) => field,
            other => panic!("expected a field error, got {other:?}"),
        };
        assert_eq!(
            field_of(SettingsChange {
                name: Some("  ".into()),
                ..Default::default()
            }),
            "name"
        );
        assert_eq!(
            field_of(SettingsChange {
                color: Some(Some("#ffcc00".into())),
                ..Default::default()
            }),
            "color"
        );
        assert_eq!(
            field_of(SettingsChange {
                color: Some(Some("red".into())),
                ..Default::default()
            }),
            "color"
        );
        assert_eq!(
            field_of(SettingsChange {
                logo_url: Some(Some("http://x.example/l.png".into())),
                ..Default::default()
            }),
            "logo_url"
        );
        assert_eq!(
            field_of(SettingsChange {
                support_phone: Some(Some("call us".into())),
                ..Default::default()
            }),
            "support_phone"
        );
        assert_eq!(
            field_of(SettingsChange {
                verified_window_seconds: Some(10),
                ..Default::default()
            }),
            "verified_window_seconds"
        );
        assert_eq!(
            field_of(SettingsChange {
                password_length: Some(8),
                ..Default::default()
            }),
            "password_length"
        );
        assert_eq!(
            field_of(SettingsChange {
                fraud_hold_seconds: Some(-1),
                ..Default::default()
            }),
            "fraud_hold_seconds"
        );
    }

    #[test]
    fn only_what_changed_is_audited_with_old_and_new() {
        let before = defaults();
        let after = apply(
            &before,
            SettingsChange {
                support_phone: Some(Some(" +1 206 555 0199 ".into())),
                verified_window_seconds: Some(600),
                color: Some(None),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            after.branding.support_phone.as_deref(),
            Some("+1 206 555 0199")
        );
        let changed = changes(&before, &after);
        let fields: Vec<&String> = changed.as_object().unwrap().keys().collect();
        assert_eq!(fields, ["support_phone", "verified_window_seconds"]);
        assert_eq!(changed["verified_window_seconds"]["old"], 900);
        assert_eq!(changed["verified_window_seconds"]["new"], 600);
    }
}
