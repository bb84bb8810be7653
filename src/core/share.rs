//! Secure Data Sharing: a secret (typically a new password) reaches its recipient through a
//! one-time, branded link instead of the SMS or the ticket itself.
//!
//! - The link carries a 256-bit random token; only its SHA-256 is stored, and the content is
//!   sealed by the repository, so neither a database dump nor a log line opens a share.
//! - Opening the link ([`ShareService::peek`]) never counts a view: link-preview bots and mail
//!   scanners fetch links. Only an explicit [`ShareService::reveal`] does, atomically.
//! - Every create, reveal, refused reveal and revoke is audited with the share id as subject;
//!   never the content, never the token.
//!
//! Nothing here knows about PSAs or HTTP.

use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret, SecretString};
use url::Url;
use uuid::Uuid;

use crate::core::directory::Directory;
use crate::core::error::CoreError;
use crate::core::messaging::Messenger;
use crate::core::texts;
use crate::core::verification::VerificationService;
use crate::domain::{AuditOutcome, ErrorCode};
use crate::store::Store;
use crate::store::StoreError;
use crate::store::access::{random_token, sha256_hex};
use crate::store::{
    audit::{AuditActor, NewAuditEvent},
    msp::MspAccount,
    shares::{ConsumeOutcome, NewSecureShare, RevokeOutcome, SecureShare, SecureShareListing},
};

pub use crate::store::shares::SharePurpose;

/// A share lives this long unless asked otherwise.
pub const DEFAULT_EXPIRES_IN: Duration = Duration::hours(24);
/// The shortest lifetime: less would expire before an SMS is read.
pub const MIN_EXPIRES_IN: Duration = Duration::minutes(5);
/// The longest lifetime.
pub const MAX_EXPIRES_IN: Duration = Duration::days(7);
/// A share may be opened once unless asked otherwise.
pub const DEFAULT_MAX_VIEWS: u32 = 1;
pub const MAX_MAX_VIEWS: u32 = 10;
/// The longest content, in characters.
pub const MAX_CONTENT_CHARS: usize = 10_000;
/// The colour of pages whose MSP set none (or an unusable one).
pub const DEFAULT_BRAND_COLOR: &str = "#0b5cad";
/// The name shown when the MSP's record cannot be read.
const FALLBACK_MSP_NAME: &str = "Your IT provider";

pub const ACTION_CREATED: &str = "share.created";
pub const ACTION_REVEALED: &str = "share.revealed";
pub const ACTION_REVEAL_REFUSED: &str = "share.reveal_refused";
pub const ACTION_REVOKED: &str = "share.revoked";

/// Why a share operation failed. `code()` is stable; the message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShareError {
    #[error("`{field}` {problem}")]
    InvalidRequest {
        field: &'static str,
        problem: String,
    },
    #[error(
        "No such share: the link or id is wrong, or the share belongs to another MSP. Check it, or create a new share."
    )]
    NotFound,
    #[error("This link has expired. Ask {} to send a new one.", .0.msp_name)]
    Expired(ShareBranding),
    #[error(
        "This message has already been viewed, so the link no longer works. Ask {} to send a new one.",
        .0.msp_name
    )]
    Exhausted(ShareBranding),
    #[error("{} has withdrawn this link. Ask them to send a new one.", .0.msp_name)]
    Revoked(ShareBranding),
    #[error("Storage failure")]
    Store(String),
}

impl ShareError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ShareError::InvalidRequest { .. } => ErrorCode::InvalidRequest,
            ShareError::NotFound => ErrorCode::ShareNotFound,
            ShareError::Expired(_) => ErrorCode::ShareExpired,
            ShareError::Exhausted(_) => ErrorCode::ShareExhausted,
            ShareError::Revoked(_) => ErrorCode::ShareRevoked,
            ShareError::Store(_) => ErrorCode::InternalError,
        }
    }

    fn invalid(field: &'static str, problem: impl Into<String>) -> ShareError {
        ShareError::InvalidRequest {
            field,
            problem: problem.into(),
        }
    }
}

impl From<StoreError> for ShareError {
    fn from(err: StoreError) -> Self {
        tracing::error!(error = %err, "storage failure in secure shares");
        ShareError::Store(err.to_string())
    }
}

/// Why creating a share and sending its link by SMS failed: the share itself, or finding
/// and texting its recipient.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ShareSendError {
    #[error("{0}")]
    Share(ShareError),
    #[error("{0}")]
    Recipient(CoreError),
}

impl From<ShareError> for ShareSendError {
    fn from(err: ShareError) -> Self {
        ShareSendError::Share(err)
    }
}

impl From<CoreError> for ShareSendError {
    fn from(err: CoreError) -> Self {
        ShareSendError::Recipient(err)
    }
}

/// How the MSP's pages look; every value is safe to place in a page as it is (the colour
/// is a validated hex colour, the logo an `https` URL), though still to be HTML-escaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareBranding {
    pub msp_name: String,
    /// The logo uploaded to Vouch (at Vouch's own address), else an `https` URL the MSP
    /// set; `None` when it has neither, or an unusable address.
    pub logo_url: Option<Url>,
    /// `#rgb` or `#rrggbb`.
    pub color: String,
    /// The number the user is told to call, as the MSP writes it; only digits, spaces and
    /// `+ - ( ) .` ([`usable_support_phone`]). `None` when the MSP set none.
    pub support_phone: Option<String>,
}

impl ShareBranding {
    /// `public_url` is where Vouch serves uploaded logos.
    pub fn of(msp: &MspAccount, public_url: &Url) -> ShareBranding {
        ShareBranding {
            msp_name: msp.name.trim().to_owned(),
            logo_url: match &msp.brand_logo_version {
                Some(version) => Some(crate::core::logo::uploaded_logo_url(
                    public_url, msp.id, version,
                )),
                None => msp.brand_logo_url.as_deref().and_then(safe_logo_url),
            },
            color: msp
                .brand_color
                .as_deref()
                .map(str::trim)
                .filter(|color| is_hex_color(color))
                .unwrap_or(DEFAULT_BRAND_COLOR)
                .to_ascii_lowercase(),
            support_phone: msp
                .brand_support_phone
                .as_deref()
                .and_then(usable_support_phone),
        }
    }

    fn fallback() -> ShareBranding {
        ShareBranding {
            msp_name: FALLBACK_MSP_NAME.to_owned(),
            logo_url: None,
            color: DEFAULT_BRAND_COLOR.to_owned(),
            support_phone: None,
        }
    }
}

/// A support phone fit for an SMS (GSM-7) and a page: digits, spaces and `+ - ( ) .`, at
/// most 32 characters, with 3 to 20 digits; trimmed. Anything else is not shown.
pub fn usable_support_phone(value: &str) -> Option<String> {
    let phone = value.trim();
    let digits = phone.bytes().filter(u8::is_ascii_digit).count();
    (phone.len() <= 32
        && (3..=20).contains(&digits)
        && phone
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b' ' | b'+' | b'-' | b'(' | b')' | b'.')))
    .then(|| phone.to_owned())
}

/// `#rgb` or `#rrggbb`, nothing else (the colour goes into CSS).
pub fn is_hex_color(value: &str) -> bool {
    let Some(hex) = value.strip_prefix('#') else {
        return false;
    };
    matches!(hex.len(), 3 | 6) && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// An absolute `https` URL without credentials; anything else is not shown.
pub fn safe_logo_url(value: &str) -> Option<Url> {
    let url = Url::parse(value.trim()).ok()?;
    (url.scheme() == "https"
        && url.host_str().is_some()
        && url.username().is_empty()
        && url.password().is_none())
    .then_some(url)
}

/// How long a share lives when its creator does not say: the MSP's
/// `share_lifetime_seconds`.
pub fn default_lifetime(policy: &crate::domain::MspPolicy) -> Duration {
    Duration::seconds(policy.share_lifetime_seconds.into())
}

/// What the creator asks for; `None` means the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShareOptions {
    /// Default: the MSP's share lifetime (24 hours unless it set another); from 5 minutes to
    /// 7 days.
    pub expires_in: Option<Duration>,
    /// Default 1; from 1 to 10.
    pub max_views: Option<u32>,
}

/// A new share. The URL carries the token: give it to the recipient, never log it.
#[derive(Debug, Clone)]
pub struct CreatedShare {
    pub id: Uuid,
    /// `{public_url}s/{token}`.
    pub url: SecretString,
    pub expires_at: DateTime<Utc>,
    pub max_views: u32,
}

/// Who receives a share's link by SMS: a Microsoft 365 user of one of the MSP's tenants, at
/// the mobile phone Microsoft has for them.
#[derive(Debug, Clone)]
pub struct ShareRecipient {
    /// The customer's Microsoft tenant id (or Vouch's id of the tenant).
    pub tenant: String,
    /// The user's sign-in name or e-mail address.
    pub user: String,
}

/// A new share, and where its link went when it went by SMS.
#[derive(Debug, Clone)]
pub struct DeliveredShare {
    pub share: CreatedShare,
    /// The masked number the link was texted to; `None` when it is the caller's to deliver.
    pub sent_to: Option<String>,
}

/// What sending links by SMS needs: the user's mobile phone from Microsoft, and the SMS.
#[derive(Clone)]
pub struct ShareDelivery {
    pub directory: Directory,
    pub verifications: VerificationService,
    pub messenger: Messenger,
}

/// What opening a link (without revealing) finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeekOutcome {
    Available {
        branding: ShareBranding,
        expires_at: DateTime<Utc>,
        views_left: u32,
    },
    Exhausted(ShareBranding),
    Expired(ShareBranding),
    Revoked(ShareBranding),
    NotFound,
}

/// A revealed share.
#[derive(Debug, Clone)]
pub struct Revealed {
    pub share_id: Uuid,
    pub content: SecretString,
    /// What the content is: a message, or the new password of an account.
    pub purpose: SharePurpose,
    pub branding: ShareBranding,
    pub expires_at: DateTime<Utc>,
    /// How many more times the link can be opened; 0 when this was the last view.
    pub views_left: u32,
}

/// Where a share stands, as its MSP sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareStatus {
    /// Can still be revealed.
    Active,
    /// Every allowed view was used.
    Exhausted,
    Expired,
    Revoked,
}

impl ShareStatus {
    pub fn of(share: &SecureShare, now: DateTime<Utc>) -> ShareStatus {
        if share.revoked_at.is_some() {
            ShareStatus::Revoked
        } else if share.views >= share.max_views {
            ShareStatus::Exhausted
        } else if share.expires_at <= now {
            ShareStatus::Expired
        } else {
            ShareStatus::Active
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ShareStatus::Active => "active",
            ShareStatus::Exhausted => "exhausted",
            ShareStatus::Expired => "expired",
            ShareStatus::Revoked => "revoked",
        }
    }
}

/// A share as its MSP lists it (never the content or the link).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareSummary {
    pub id: Uuid,
    pub status: ShareStatus,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub max_views: u32,
    pub views: u32,
    pub views_left: u32,
    pub last_viewed_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_by_technician_id: Option<Uuid>,
}

impl ShareSummary {
    fn of(listing: SecureShareListing, now: DateTime<Utc>) -> ShareSummary {
        let share = listing.share;
        ShareSummary {
            id: share.id,
            status: ShareStatus::of(&share, now),
            created_at: share.created_at,
            expires_at: share.expires_at,
            max_views: to_u32(share.max_views),
            views: to_u32(share.views),
            views_left: views_left(&share),
            last_viewed_at: listing.last_viewed_at,
            revoked_at: share.revoked_at,
            created_by_technician_id: listing.created_by_technician_id,
        }
    }
}

fn to_u32(value: i32) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

fn views_left(share: &SecureShare) -> u32 {
    to_u32(share.max_views - share.views)
}

/// A token as it appears in a link: 64 hex digits (256 bits). Anything else is not looked
/// up at all.
pub fn is_well_formed_token(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The link of a share: `{public_url}s/{token}`.
pub fn link_for(public_url: &Url, token: &str) -> String {
    let mut base = public_url.to_string();
    if !base.ends_with('/') {
        base.push('/');
    }
    format!("{base}s/{token}")
}

/// What the share service needs.
pub struct ShareDeps {
    pub store: Store,
    /// Where users reach Vouch; links are `{public_url}s/{token}`.
    pub public_url: Url,
}

#[derive(Clone)]
pub struct ShareService {
    store: Store,
    public_url: Url,
    delivery: Option<ShareDelivery>,
}

impl ShareService {
    pub fn new(deps: ShareDeps) -> ShareService {
        ShareService {
            store: deps.store,
            public_url: deps.public_url,
            delivery: None,
        }
    }

    /// Lets [`ShareService::create_and_send`] text links to Microsoft 365 users.
    pub fn with_delivery(mut self, delivery: ShareDelivery) -> ShareService {
        self.delivery = Some(delivery);
        self
    }

    /// Creates a share of `content` and, with a `recipient`, texts its link to them; a link
    /// that could not be sent is revoked at once, so an undelivered link stays usable
    /// nowhere. The recipient and their phone are found first, so nothing is created for
    /// nobody.
    #[tracing::instrument(skip(self, content, actor))]
    pub async fn create_and_send(
        &self,
        msp_id: Uuid,
        content: SecretString,
        options: ShareOptions,
        recipient: Option<ShareRecipient>,
        actor: &AuditActor,
    ) -> Result<DeliveredShare, ShareSendError> {
        let msp = self
            .store
            .get_msp(msp_id)
            .await
            .map_err(ShareError::from)?
            .ok_or_else(|| {
                tracing::error!(%msp_id, "API key of a removed MSP");
                ShareError::Store("API key of a removed MSP".into())
            })?;
        let options = ShareOptions {
            expires_in: options.expires_in.or(Some(default_lifetime(&msp.policy))),
            ..options
        };
        let Some(recipient) = recipient else {
            let share = self
                .create(msp_id, content, options, None, SharePurpose::Message, actor)
                .await?;
            return Ok(DeliveredShare {
                share,
                sent_to: None,
            });
        };
        let delivery = self.delivery.as_ref().ok_or_else(|| {
            tracing::error!("share delivery by SMS is not wired");
            ShareError::Store("share delivery by SMS is not wired".into())
        })?;
        let tenant = delivery
            .directory
            .tenant(msp.id, recipient.tenant.trim())
            .await?;
        let user = delivery
            .directory
            .resolve_user(&tenant, std::slice::from_ref(&recipient.user))
            .await?;
        let (phone, _) = delivery
            .verifications
            .mobile_for(&msp, &tenant, &user, None)
            .await?;
        let share = self
            .create(msp.id, content, options, None, SharePurpose::Message, actor)
            .await?;
        let text = SecretString::from(texts::message_link(
            &texts::Sender::of(&msp),
            &user.upn,
            share.url.expose_secret(),
            share.max_views,
            share.expires_at - Utc::now(),
        ));
        if let Err(err) = delivery.messenger.send_sms(msp.id, &phone, text).await {
            // An undelivered link must not stay usable somewhere.
            if let Err(revoke) = self.revoke(msp.id, share.id, actor).await {
                tracing::error!(share_id = %share.id, error = %revoke, "revoking an undelivered share failed");
            }
            return Err(CoreError::from(err).into());
        }
        Ok(DeliveredShare {
            share,
            sent_to: Some(phone.masked()),
        })
    }

    /// Creates a share of `content` for the MSP and returns its link. `purpose` says what
    /// the page revealing it calls it.
    #[tracing::instrument(skip_all, fields(msp_id = %msp_id))]
    pub async fn create(
        &self,
        msp_id: Uuid,
        content: SecretString,
        options: ShareOptions,
        created_by_technician_id: Option<Uuid>,
        purpose: SharePurpose,
        actor: &AuditActor,
    ) -> Result<CreatedShare, ShareError> {
        let text = content.expose_secret();
        if text.trim().is_empty() {
            return Err(ShareError::invalid(
                "content",
                "is empty: give the text to share (for example the new password)",
            ));
        }
        let chars = text.chars().count();
        if chars > MAX_CONTENT_CHARS {
            return Err(ShareError::invalid(
                "content",
                format!(
                    "is {chars} characters long; a share holds at most {MAX_CONTENT_CHARS}. Shorten it or split it into several shares"
                ),
            ));
        }
        let expires_in = options.expires_in.unwrap_or(DEFAULT_EXPIRES_IN);
        if expires_in < MIN_EXPIRES_IN || expires_in > MAX_EXPIRES_IN {
            return Err(ShareError::invalid(
                "expires_in",
                format!(
                    "must be from {} minutes to {} days (10080 minutes); got {} minute(s)",
                    MIN_EXPIRES_IN.num_minutes(),
                    MAX_EXPIRES_IN.num_days(),
                    expires_in.num_minutes()
                ),
            ));
        }
        let max_views = options.max_views.unwrap_or(DEFAULT_MAX_VIEWS);
        if !(1..=MAX_MAX_VIEWS).contains(&max_views) {
            return Err(ShareError::invalid(
                "max_views",
                format!(
                    "must be from 1 to {MAX_MAX_VIEWS} (how many times the link can be opened); got {max_views}"
                ),
            ));
        }
        let token = random_token();
        let share = self
            .store
            .create_share_for(
                NewSecureShare {
                    msp_id,
                    token_hash: sha256_hex(&token),
                    content,
                    expires_at: Utc::now() + expires_in,
                    max_views: max_views as i32,
                    created_by_technician_id,
                },
                purpose,
            )
            .await?;
        let url = SecretString::from(link_for(&self.public_url, &token));
        self.audit_share(
            share.msp_id,
            actor.clone(),
            ACTION_CREATED,
            share.id,
            AuditOutcome::Success,
            serde_json::json!({
                "expires_at": share.expires_at,
                "max_views": share.max_views,
                "created_by_technician_id": created_by_technician_id,
            }),
        )
        .await;
        Ok(CreatedShare {
            id: share.id,
            url,
            expires_at: share.expires_at,
            max_views,
        })
    }

    /// What the link leads to, without counting a view (safe for link previews).
    #[tracing::instrument(skip_all)]
    pub async fn peek(&self, token: &str) -> Result<PeekOutcome, ShareError> {
        if !is_well_formed_token(token) {
            return Ok(PeekOutcome::NotFound);
        }
        let Some(share) = self
            .store
            .find_share_by_token_hash(&sha256_hex(&token.to_ascii_lowercase()))
            .await?
        else {
            return Ok(PeekOutcome::NotFound);
        };
        let branding = self.branding(share.msp_id).await;
        Ok(match ShareStatus::of(&share, Utc::now()) {
            ShareStatus::Active => PeekOutcome::Available {
                branding,
                expires_at: share.expires_at,
                views_left: views_left(&share),
            },
            ShareStatus::Exhausted => PeekOutcome::Exhausted(branding),
            ShareStatus::Expired => PeekOutcome::Expired(branding),
            ShareStatus::Revoked => PeekOutcome::Revoked(branding),
        })
    }

    /// Counts one view and returns the content, or says why the link no longer works.
    #[tracing::instrument(skip_all)]
    pub async fn reveal(&self, token: &str) -> Result<Revealed, ShareError> {
        if !is_well_formed_token(token) {
            return Err(ShareError::NotFound);
        }
        let outcome = self
            .store
            .consume_share_view(&sha256_hex(&token.to_ascii_lowercase()), Utc::now())
            .await?;
        let (share, error): (SecureShare, fn(ShareBranding) -> ShareError) = match outcome {
            ConsumeOutcome::Revealed {
                share,
                content,
                views_left,
                purpose,
            } => {
                self.audit_share(
                    share.msp_id,
                    recipient(),
                    ACTION_REVEALED,
                    share.id,
                    AuditOutcome::Success,
                    serde_json::json!({
                        "views": share.views,
                        "max_views": share.max_views,
                        "views_left": views_left,
                    }),
                )
                .await;
                return Ok(Revealed {
                    share_id: share.id,
                    content,
                    purpose,
                    branding: self.branding(share.msp_id).await,
                    expires_at: share.expires_at,
                    views_left: to_u32(views_left),
                });
            }
            ConsumeOutcome::NotFound => return Err(ShareError::NotFound),
            ConsumeOutcome::Exhausted(share) => (share, ShareError::Exhausted),
            ConsumeOutcome::Expired(share) => (share, ShareError::Expired),
            ConsumeOutcome::Revoked(share) => (share, ShareError::Revoked),
        };
        let error = error(self.branding(share.msp_id).await);
        self.audit_share(
            share.msp_id,
            recipient(),
            ACTION_REVEAL_REFUSED,
            share.id,
            AuditOutcome::Failure,
            serde_json::json!({
                "code": error.code(),
                "views": share.views,
                "max_views": share.max_views,
            }),
        )
        .await;
        Err(error)
    }

    /// Withdraws the MSP's share so its link stops working. Revoking twice is not an error
    /// (and is audited once).
    #[tracing::instrument(skip_all, fields(msp_id = %msp_id, share_id = %id))]
    pub async fn revoke(
        &self,
        msp_id: Uuid,
        id: Uuid,
        actor: &AuditActor,
    ) -> Result<(), ShareError> {
        match self.store.revoke_share(msp_id, id).await? {
            RevokeOutcome::Revoked(share) => {
                self.audit_share(
                    msp_id,
                    actor.clone(),
                    ACTION_REVOKED,
                    share.id,
                    AuditOutcome::Success,
                    serde_json::json!({
                        "views": share.views,
                        "max_views": share.max_views,
                    }),
                )
                .await;
                Ok(())
            }
            RevokeOutcome::AlreadyRevoked(_) => Ok(()),
            RevokeOutcome::NotFound => Err(ShareError::NotFound),
        }
    }

    /// The MSP's recent shares, newest first, without content or links.
    #[tracing::instrument(skip_all, fields(msp_id = %msp_id))]
    pub async fn list(&self, msp_id: Uuid) -> Result<Vec<ShareSummary>, ShareError> {
        let now = Utc::now();
        Ok(self
            .store
            .list_shares(msp_id)
            .await?
            .into_iter()
            .map(|listing| ShareSummary::of(listing, now))
            .collect())
    }

    async fn branding(&self, msp_id: Uuid) -> ShareBranding {
        match self.store.get_msp(msp_id).await {
            Ok(Some(msp)) => ShareBranding::of(&msp, &self.public_url),
            Ok(None) => ShareBranding::fallback(),
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the MSP's branding; using the default");
                ShareBranding::fallback()
            }
        }
    }

    async fn audit_share(
        &self,
        msp_id: Uuid,
        actor: AuditActor,
        action: &str,
        share_id: Uuid,
        outcome: AuditOutcome,
        details: serde_json::Value,
    ) {
        let event = NewAuditEvent {
            msp_id,
            actor,
            action: action.to_owned(),
            subject_kind: Some("secure_share".into()),
            subject_id: Some(share_id.to_string()),
            subject_name: None,
            psa_ticket_id: None,
            outcome,
            upstream_request_id: None,
            details,
        };
        if let Err(err) = self.store.append(event).await {
            tracing::error!(error = %err, action, "audit append failed");
        }
    }
}

/// The person who opened the link; anonymous by nature.
fn recipient() -> AuditActor {
    AuditActor {
        kind: crate::domain::ActorKind::ShareRecipient,
        id: None,
        name: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vouch_url() -> Url {
        Url::parse("http://vouch.test:8080/").unwrap()
    }

    fn msp(color: Option<&str>, logo: Option<&str>) -> MspAccount {
        MspAccount {
            id: Uuid::now_v7(),
            name: " Northwind IT ".into(),
            brand_logo_url: logo.map(str::to_owned),
            brand_color: color.map(str::to_owned),
            brand_support_phone: None,
            brand_sms_sender_name: None,
            brand_logo_version: None,
            policy: Default::default(),
            created_at: Utc::now(),
        }
    }

    #[test]
    fn only_hex_colours_reach_the_page() {
        for good in ["#abc", "#A1B2C3", "#000000"] {
            assert!(is_hex_color(good), "{good}");
        }
        for bad in [
            "",
            "red",
            "#abcd",
            "#ggg",
            "abc",
            "#abc;}",
            "red;}</style><script>",
            "#12345",
            "#1234567",
        ] {
            assert!(!is_hex_color(bad), "{bad}");
        }
        assert_eq!(
            ShareBranding::of(&msp(Some("#A1B2C3"), None), &vouch_url()).color,
            "#a1b2c3"
        );
        assert_eq!(
            ShareBranding::of(&msp(Some("red;}</style><script>"), None), &vouch_url()).color,
            DEFAULT_BRAND_COLOR
        );
        assert_eq!(
            ShareBranding::of(&msp(None, None), &vouch_url()).msp_name,
            "Northwind IT"
        );
    }

    #[test]
    fn only_plain_phone_numbers_are_shown() {
        for (given, shown) in [
            ("+1 206 555 0199", "+1 206 555 0199"),
            ("  (206) 555-0199 ", "(206) 555-0199"),
            ("0800.123.456", "0800.123.456"),
        ] {
            assert_eq!(
                usable_support_phone(given).as_deref(),
                Some(shown),
                "{given}"
            );
        }
        for bad in [
            "",
            "  ",
            "call us",
            "+1 206 555 0199 ext. 4",
            "<script>",
            "12",
            "+1 206 555 0199\u{2014}",
            &"1".repeat(33),
        ] {
            assert_eq!(usable_support_phone(bad), None, "{bad}");
        }
        let mut northwind = msp(None, None);
        northwind.brand_support_phone = Some(" +1 206 555 0199 ".into());
        assert_eq!(
            ShareBranding::of(&northwind, &vouch_url())
                .support_phone
                .as_deref(),
            Some("+1 206 555 0199")
        );
        assert_eq!(
            ShareBranding::of(&msp(None, None), &vouch_url()).support_phone,
            None
        );
    }

    #[test]
    fn only_https_logos_are_shown() {
        let logo = |value| ShareBranding::of(&msp(None, Some(value)), &vouch_url()).logo_url;
        assert!(logo("https://cdn.example/logo.png").is_some());
        assert!(logo("http://cdn.example/logo.png").is_none());
        assert!(logo("javascript:alert(1)").is_none());
        assert!(logo("data:image/png;base64,AAAA").is_none());
        assert!(logo("https://user:pw@cdn.example/logo.png").is_none());
        assert!(logo("/logo.png").is_none());
    }

    #[test]
    fn an_uploaded_logo_is_served_by_vouch_whatever_its_scheme() {
        let mut northwind = msp(None, Some("https://cdn.example/logo.png"));
        northwind.brand_logo_version = Some("0123456789abcdef".into());
        let url = ShareBranding::of(&northwind, &vouch_url())
            .logo_url
            .unwrap();
        assert_eq!(
            url.as_str(),
            format!(
                "http://vouch.test:8080/brand/{}/logo/0123456789abcdef.png",
                northwind.id
            )
        );
    }

    #[test]
    fn tokens_are_checked_before_any_lookup() {
        assert!(is_well_formed_token(&random_token()));
        assert!(is_well_formed_token(&random_token().to_ascii_uppercase()));
        assert!(!is_well_formed_token(""));
        assert!(!is_well_formed_token(&"a".repeat(63)));
        assert!(!is_well_formed_token(&"a".repeat(65)));
        assert!(!is_well_formed_token(&"g".repeat(64)));
        assert!(!is_well_formed_token(&format!("{}é", "a".repeat(62))));
    }

    #[test]
    fn status_prefers_the_most_specific_reason() {
        let now = Utc::now();
        let share = SecureShare {
            id: Uuid::now_v7(),
            msp_id: Uuid::now_v7(),
            expires_at: now + Duration::hours(1),
            max_views: 2,
            views: 1,
            created_at: now,
            revoked_at: None,
        };
        assert_eq!(ShareStatus::of(&share, now), ShareStatus::Active);
        let expired = SecureShare {
            expires_at: now - Duration::seconds(1),
            ..share.clone()
        };
        assert_eq!(ShareStatus::of(&expired, now), ShareStatus::Expired);
        let exhausted = SecureShare {
            views: 2,
            ..expired.clone()
        };
        assert_eq!(ShareStatus::of(&exhausted, now), ShareStatus::Exhausted);
        let revoked = SecureShare {
            revoked_at: Some(now),
            ..exhausted
        };
        assert_eq!(ShareStatus::of(&revoked, now), ShareStatus::Revoked);
    }
}
