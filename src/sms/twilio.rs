//! The Twilio-compatible provider: `POST {api_url}2010-04-01/Accounts/{AccountSid}/Messages.json`
//! with HTTP Basic auth (account SID and auth token) and a form of `To`, `From` and `Body`.
//!
//! Twilio answers 201 with the Message resource, or an error object
//! `{"code":21211,"message":"…","more_info":"…","status":400}`. The `message` of an error can
//! quote the destination number, so it is never logged or passed on: only the numeric code
//! and the HTTP status are.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use super::{SentSms, SmsError, SmsMessage, SmsProvider};
use crate::config::SmsConfig;
use crate::telemetry::Metrics;
use crate::upstream::{Idempotency, RetryPolicy, TransportError, Upstream};

/// The `service` label of the SMS provider in logs and metrics.
const SERVICE: &str = "sms";

/// Twilio error codes, as documented at `https://www.twilio.com/docs/errors/{code}`.
mod codes {
    /// Authentication failed (wrong account SID or auth token).
    pub const AUTHENTICATE: u32 = 20003;
    /// Too many requests.
    pub const TOO_MANY_REQUESTS: u32 = 20429;
    /// The 'To' number is not a valid phone number.
    pub const INVALID_TO: u32 = 21211;
    /// Phone number has not been verified (trial accounts send only to verified numbers).
    pub const UNVERIFIED_TO: u32 = 21217;
    /// Invalid phone number.
    pub const INVALID_PHONE_NUMBER: u32 = 21401;
    /// Permission to send an SMS has not been enabled for the region of the 'To' number.
    pub const REGION_NOT_ENABLED: u32 = 21408;
    /// The recipient replied STOP: unsubscribed.
    pub const UNSUBSCRIBED: u32 = 21610;
    /// The 'To' number is not currently reachable via SMS.
    pub const NOT_REACHABLE: u32 = 21612;
    /// The 'To' number is not a mobile number.
    pub const NOT_MOBILE: u32 = 21614;
}

/// Sends through a Twilio-compatible API.
///
/// Each message is sent at most once from Vouch's side: requests are never retried after a
/// network error (the provider may have sent the SMS already), only when the provider said it
/// did not process them (429 / 503, honouring `Retry-After`).
#[derive(Clone)]
pub struct TwilioSms {
    upstream: Upstream,
    /// `None` when SMS is not configured: `send` then answers `NotConfigured`.
    account: Option<Account>,
}

/// What is needed to send, present only when all of it is configured.
#[derive(Clone)]
struct Account {
    /// `{api_url}2010-04-01/Accounts/{sid}/Messages.json`, built once.
    messages_url: Url,
    sid: String,
    auth_token: SecretString,
    from: String,
}

/// The parts of a Twilio answer Vouch reads; every field is optional so that an unexpected
/// shape becomes a typed error rather than a parse failure.
#[derive(Debug, Default, Deserialize)]
struct TwilioAnswer {
    sid: Option<String>,
    /// An integer in Twilio's answers; tolerated as a string too.
    code: Option<serde_json::Value>,
}

impl TwilioSms {
    /// Never fails: missing settings (account SID, auth token, sender) are reported by
    /// [`SmsProvider::send`] as [`SmsError::NotConfigured`], so Vouch can start without SMS.
    pub fn new(config: &SmsConfig, metrics: &Metrics) -> TwilioSms {
        // A zero timeout would fail every request without trying; one second is the least
        // that can succeed.
        let timeout = Duration::from_secs(config.request_timeout_seconds.max(1));
        let upstream = Upstream::new(SERVICE, timeout, metrics.clone(), RetryPolicy::default());
        TwilioSms {
            upstream,
            account: Account::from_config(config),
        }
    }
}

impl Account {
    fn from_config(config: &SmsConfig) -> Option<Account> {
        let sid = non_empty(config.account_sid.as_deref())?;
        let from = non_empty(config.from.as_deref())?;
        let auth_token = config
            .auth_token
            .as_ref()
            .filter(|token| !token.expose_secret().trim().is_empty())?
            .clone();
        let messages_url = messages_url(&config.api_url, &sid)?;
        Some(Account {
            messages_url,
            sid,
            auth_token,
            from,
        })
    }
}

fn non_empty(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// `{api_url}2010-04-01/Accounts/{sid}/Messages.json`, with the SID percent-encoded as a path
/// segment; `api_url` may or may not end in `/` and may carry a path of its own (a proxy).
/// `None` for a URL that cannot have a path (such as `mailto:`).
fn messages_url(api_url: &Url, sid: &str) -> Option<Url> {
    let mut url = api_url.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut().ok()?.pop_if_empty().extend([
        "2010-04-01",
        "Accounts",
        sid,
        "Messages.json",
    ]);
    Some(url)
}

#[async_trait]
impl SmsProvider for TwilioSms {
    async fn send(&self, message: &SmsMessage) -> Result<SentSms, SmsError> {
        let Some(account) = &self.account else {
            return Err(SmsError::NotConfigured);
        };
        let masked = message.to.masked();
        let result = self
            .upstream
            .send(Idempotency::NotIdempotent, |client| {
                client
                    .post(account.messages_url.clone())
                    .basic_auth(&account.sid, Some(account.auth_token.expose_secret()))
                    .header(reqwest::header::ACCEPT, "application/json")
                    .form(&[
                        ("To", message.to.as_str()),
                        ("From", account.from.as_str()),
                        ("Body", message.body.expose_secret()),
                    ])
            })
            .await;
        let response = match result {
            Ok(response) => response,
            Err(TransportError::TimedOut) => {
                tracing::warn!(service = SERVICE, to = %masked, "SMS provider timed out");
                return Err(SmsError::TimedOut);
            }
            Err(TransportError::TooManyOpenFiles) => return Err(SmsError::TooManyOpenFiles),
            Err(TransportError::Network(detail) | TransportError::Tls(detail)) => {
                // reqwest's text without the URL: no account SID, no token, no body.
                tracing::warn!(service = SERVICE, to = %masked, error = %detail, "SMS provider unreachable");
                return Err(SmsError::Unavailable);
            }
        };
        let status = response.status();
        // An unreadable body is treated like an empty one: the status still says enough.
        let bytes = response.bytes().await.unwrap_or_default();
        let answer: TwilioAnswer = serde_json::from_slice(&bytes).unwrap_or_default();
        let code = answer.code.as_ref().and_then(twilio_code);

        if status.is_success() {
            return match answer.sid.filter(|sid| !sid.is_empty()) {
                Some(sid) => {
                    tracing::info!(service = SERVICE, to = %masked, message_sid = %sid, "SMS accepted");
                    Ok(SentSms {
                        provider_message_id: sid,
                    })
                }
                None => {
                    // Most likely `api_url` points at something that is not a Twilio API.
                    tracing::warn!(
                        service = SERVICE,
                        status = status.as_u16(),
                        "SMS provider answered success without a message sid"
                    );
                    Err(SmsError::Rejected {
                        code: "invalid_response".to_owned(),
                    })
                }
            };
        }
        let error = classify(status, code, &masked);
        tracing::warn!(
            service = SERVICE,
            status = status.as_u16(),
            twilio_code = code,
            to = %masked,
            error_code = error.code().as_str(),
            "SMS refused"
        );
        Err(error)
    }
}

impl std::fmt::Debug for TwilioSms {
    /// Without the auth token, and without the URL (it carries the account SID).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioSms")
            .field("configured", &self.account.is_some())
            .finish_non_exhaustive()
    }
}

/// Twilio's numeric error code, whether sent as a number or a string.
fn twilio_code(value: &serde_json::Value) -> Option<u32> {
    match value {
        serde_json::Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Maps a refusal to the contract's error. Specific Twilio codes win over the HTTP status,
/// except 401 which always means the credentials are wrong.
fn classify(status: StatusCode, code: Option<u32>, masked: &str) -> SmsError {
    let undeliverable = |reason: &str| SmsError::Undeliverable {
        masked: masked.to_owned(),
        reason: reason.to_owned(),
    };
    if status == StatusCode::UNAUTHORIZED || code == Some(codes::AUTHENTICATE) {
        return SmsError::AuthFailed;
    }
    match code {
        Some(codes::INVALID_TO | codes::UNVERIFIED_TO | codes::INVALID_PHONE_NUMBER) => {
            return SmsError::InvalidNumber {
                masked: masked.to_owned(),
            };
        }
        Some(codes::UNSUBSCRIBED) => {
            return undeliverable("the recipient has opted out of SMS by replying STOP");
        }
        Some(codes::NOT_REACHABLE) => {
            return undeliverable("the number is not reachable by SMS");
        }
        Some(codes::NOT_MOBILE) => return undeliverable("not a mobile number"),
        Some(codes::REGION_NOT_ENABLED) => {
            return undeliverable("SMS to this country is not enabled on the SMS account");
        }
        Some(codes::TOO_MANY_REQUESTS) => return SmsError::Throttled,
        _ => {}
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        SmsError::Throttled
    } else if status.is_server_error() {
        SmsError::Unavailable
    } else {
        SmsError::Rejected {
            code: match code {
                Some(code) => code.to_string(),
                None => format!("http_{}", status.as_u16()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_url_appends_the_twilio_path() {
        let sid = "AC0123456789abcdef0123456789abcdef";
        for (base, expected) in [
            (
                "https://api.twilio.com/",
                "https://api.twilio.com/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json",
            ),
            (
                "http://127.0.0.1:9/proxy",
                "http://127.0.0.1:9/proxy/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json",
            ),
            (
                "http://127.0.0.1:9/proxy/?x=1",
                "http://127.0.0.1:9/proxy/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json",
            ),
        ] {
            let url = messages_url(&Url::parse(base).unwrap(), sid).unwrap();
            assert_eq!(url.as_str(), expected);
        }
        let odd = messages_url(&Url::parse("https://x.example/").unwrap(), "a/b?c").unwrap();
        assert_eq!(
            odd.path(),
            "/2010-04-01/Accounts/a%2Fb%3Fc/Messages.json",
            "the SID stays one path segment"
        );
        assert!(messages_url(&Url::parse("mailto:a@b.example").unwrap(), sid).is_none());
    }

    #[test]
    fn classify_maps_twilio_codes() {
        let m = "+1 ••• ••• ••01";
        let bad = StatusCode::BAD_REQUEST;
        for code in [21211, 21217, 21401] {
            assert_eq!(
                classify(bad, Some(code), m),
                SmsError::InvalidNumber { masked: m.into() }
            );
        }
        for code in [21408, 21610, 21612, 21614] {
            match classify(bad, Some(code), m) {
                SmsError::Undeliverable { masked, reason } => {
                    assert_eq!(masked, m);
                    assert!(!reason.is_empty());
                }
                other => panic!("{code}: {other:?}"),
            }
        }
        assert_eq!(
            classify(StatusCode::UNAUTHORIZED, None, m),
            SmsError::AuthFailed
        );
        assert_eq!(classify(bad, Some(20003), m), SmsError::AuthFailed);
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, None, m),
            SmsError::Throttled
        );
        assert_eq!(classify(bad, Some(20429), m), SmsError::Throttled);
        assert_eq!(
            classify(StatusCode::BAD_GATEWAY, None, m),
            SmsError::Unavailable
        );
        assert_eq!(
            classify(bad, Some(21617), m),
            SmsError::Rejected {
                code: "21617".into()
            }
        );
        assert_eq!(
            classify(StatusCode::NOT_FOUND, None, m),
            SmsError::Rejected {
                code: "http_404".into()
            }
        );
    }

    #[test]
    fn twilio_code_accepts_numbers_and_strings() {
        assert_eq!(twilio_code(&serde_json::json!(21211)), Some(21211));
        assert_eq!(twilio_code(&serde_json::json!("21211")), Some(21211));
        assert_eq!(twilio_code(&serde_json::json!(null)), None);
        assert_eq!(twilio_code(&serde_json::json!(-1)), None);
    }

    #[test]
    fn missing_settings_mean_not_configured() {
        let complete = SmsConfig {
            api_url: Url::parse("https://api.twilio.com/").unwrap(),
            account_sid: Some("AC1".into()),
            auth_token: Some(SecretString::from("token")),
            from: Some("+15005550006".into()),
            default_region: "US".into(),
            request_timeout_seconds: 5,
        };
        assert!(Account::from_config(&complete).is_some());
        let mut c = complete.clone();
        c.account_sid = None;
        assert!(Account::from_config(&c).is_none());
        let mut c = complete.clone();
        c.auth_token = Some(SecretString::from("  "));
        assert!(Account::from_config(&c).is_none());
        let mut c = complete.clone();
        c.from = Some(String::new());
        assert!(Account::from_config(&c).is_none());
        let debug = format!("{:?}", TwilioSms::new(&complete, &Metrics::new()));
        assert!(
            !debug.contains("token") && !debug.contains("AC1"),
            "{debug}"
        );
    }
}
