//! The Azure MFA connector (the NPS-extension path): `BeginTwoWayAuthentication` sends a
//! Microsoft Authenticator push and, with `SyncCall`, holds the HTTP call until the user
//! answers or the push times out.
//!
//! XML is written and read with quick-xml's serde support, so a UPN can never inject markup.
//! A push counts as approved only when the result value is `Success`, `AuthenticationResult`
//! is true, AND the returned UPN is the one asked about: anything else is not an approval.

use quick_xml::DeError;
use serde::{Deserialize, Serialize};
use url::Url;

use super::error::{MicrosoftError, MicrosoftErrorKind};
use super::token::{Audience, TokenClient, transport_error};
use super::types::{ClientCredentials, Upn};
use crate::domain::ErrorCode;
use crate::upstream::{Idempotency, Upstream};

/// How a push ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    Approved,
    Denied,
    /// The user did not answer before the push timed out.
    NoResponse,
    /// The user pressed "It's not me" / reported fraud.
    FraudReported,
    UserBlocked,
    /// The user has no Authenticator (or no MFA method) registered.
    NoMethodRegistered,
    /// `Success` without approval: the connector did not prompt the user (typically because
    /// their default method is not the Authenticator push).
    NotPrompted,
    /// An approval for a different UPN than the one asked about: never trusted.
    UpnMismatch {
        returned: String,
    },
    /// Any other result value, kept as Microsoft sent it.
    Other {
        code: String,
    },
}

impl PushOutcome {
    /// Why the verification did not succeed, as stored, audited and sent on the API; `None`
    /// for an approval.
    pub fn failure_code(&self) -> Option<ErrorCode> {
        Some(match self {
            PushOutcome::Approved => return None,
            PushOutcome::Denied => ErrorCode::Denied,
            PushOutcome::NoResponse => ErrorCode::NoResponse,
            PushOutcome::FraudReported => ErrorCode::FraudReported,
            PushOutcome::UserBlocked => ErrorCode::UserBlocked,
            PushOutcome::NoMethodRegistered => ErrorCode::NoMethodRegistered,
            PushOutcome::NotPrompted => ErrorCode::NotPrompted,
            PushOutcome::UpnMismatch { .. } => ErrorCode::UpnMismatch,
            PushOutcome::Other { .. } => ErrorCode::MfaUnknownResult,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushResult {
    pub outcome: PushOutcome,
    pub session_id: Option<String>,
}

#[derive(Serialize)]
#[serde(rename = "BeginTwoWayAuthenticationRequest")]
struct BeginRequest<'a> {
    #[serde(rename = "Version")]
    version: &'a str,
    #[serde(rename = "UserPrincipalName")]
    user_principal_name: &'a str,
    #[serde(rename = "Lcid")]
    lcid: &'a str,
    #[serde(rename = "AuthenticationMethodProperties")]
    properties: MethodProperties<'a>,
    #[serde(rename = "ContextId")]
    context_id: String,
    #[serde(rename = "SyncCall")]
    sync_call: bool,
    #[serde(rename = "RequireUserMatch")]
    require_user_match: bool,
    #[serde(rename = "CallerName")]
    caller_name: &'a str,
    #[serde(rename = "CallerIP")]
    caller_ip: &'a str,
}

#[derive(Serialize)]
struct MethodProperties<'a> {
    #[serde(rename = "@xmlns:a")]
    namespace: &'a str,
    #[serde(rename = "a:KeyValueOfstringstring")]
    entries: Vec<KeyValue<'a>>,
}

#[derive(Serialize)]
struct KeyValue<'a> {
    #[serde(rename = "a:Key")]
    key: &'a str,
    #[serde(rename = "a:Value")]
    value: &'a str,
}

#[derive(Deserialize)]
struct BeginResponse {
    #[serde(rename = "Result")]
    result: ResultElement,
    #[serde(rename = "AuthenticationResult", default)]
    authentication_result: Option<String>,
    #[serde(rename = "UserPrincipalName", default)]
    user_principal_name: Option<String>,
    #[serde(rename = "SessionId", default)]
    session_id: Option<String>,
}

#[derive(Deserialize)]
struct ResultElement {
    #[serde(rename = "Value")]
    value: String,
}

/// The request body for a push to `upn`.
pub fn begin_request_xml(upn: &Upn, context_id: uuid::Uuid) -> String {
    let request = BeginRequest {
        version: "1.0",
        user_principal_name: upn.as_str(),
        lcid: "en-us",
        properties: MethodProperties {
            namespace: "http://schemas.microsoft.com/2003/10/Serialization/Arrays",
            entries: vec![KeyValue {
                key: "OverrideVoiceOtp",
                value: "false",
            }],
        },
        context_id: context_id.to_string(),
        sync_call: true,
        require_user_match: true,
        caller_name: "radius",
        caller_ip: "UNKNOWN:",
    };
    quick_xml::se::to_string(&request).expect("the request struct always serialises")
}

/// Reads the connector's answer and decides what it means for `asked`.
pub fn classify_response(asked: &Upn, xml: &str) -> Result<PushResult, DeError> {
    let response: BeginResponse = quick_xml::de::from_str(xml)?;
    let authenticated = response
        .authentication_result
        .as_deref()
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let outcome = match response.result.value.trim() {
        "Success" if authenticated => match response.user_principal_name.as_deref() {
            Some(returned) if asked.matches(returned) => PushOutcome::Approved,
            Some(returned) => PushOutcome::UpnMismatch {
                returned: returned.to_owned(),
            },
            None => PushOutcome::UpnMismatch {
                returned: String::new(),
            },
        },
        "Success" => PushOutcome::NotPrompted,
        "PhoneAppDenied" => PushOutcome::Denied,
        "PhoneAppNoResponse" => PushOutcome::NoResponse,
        "PhoneAppFraudReported" => PushOutcome::FraudReported,
        "UserIsBlocked" => PushOutcome::UserBlocked,
        "ProofDataNotFound" => PushOutcome::NoMethodRegistered,
        other => PushOutcome::Other {
            code: other.to_owned(),
        },
    };
    Ok(PushResult {
        outcome,
        session_id: response.session_id,
    })
}

#[derive(Clone)]
pub struct MfaConnectorClient {
    /// Its timeout outlasts the push timeout: the call is held open while the user decides.
    upstream: Upstream,
    connector_url: Url,
    tokens: TokenClient,
}

impl MfaConnectorClient {
    pub fn new(upstream: Upstream, connector_url: Url, tokens: TokenClient) -> MfaConnectorClient {
        MfaConnectorClient {
            upstream,
            connector_url,
            tokens,
        }
    }

    /// Sends one push and waits for its outcome. `credentials` are the MFA client app's
    /// credential in the customer tenant.
    pub async fn push(
        &self,
        credentials: &ClientCredentials,
        upn: &Upn,
    ) -> Result<PushResult, MicrosoftError> {
        let token = self
            .tokens
            .token(credentials, Audience::MfaConnector)
            .await?;
        let url = self
            .connector_url
            .join("BeginTwoWayAuthentication")
            .map_err(|_| unexpected(None, "bad_connector_url"))?;
        let body = begin_request_xml(upn, uuid::Uuid::new_v4());
        let bearer = token.bearer();
        // Not idempotent: a network retry could send a second push to the user's phone.
        let response = self
            .upstream
            .send(Idempotency::NotIdempotent, |client| {
                client
                    .post(url.clone())
                    .header(reqwest::header::AUTHORIZATION, &bearer)
                    .header(reqwest::header::CONTENT_TYPE, "application/xml")
                    .body(body.clone())
            })
            .await
            .map_err(transport_error)?;
        let status = response.status().as_u16();
        let retry_after = crate::upstream::retry_after(&response);
        let text = response.text().await.map_err(|_| {
            MicrosoftError::new(MicrosoftErrorKind::Unavailable {
                status: Some(status),
            })
        })?;
        match status {
            200 => classify_response(upn, &text).map_err(|err| {
                tracing::warn!(error = %err, "unreadable MFA connector answer");
                unexpected(Some(200), "unreadable_connector_answer")
            }),
            401 | 403 => {
                self.tokens
                    .forget(credentials, Audience::MfaConnector)
                    .await;
                Err(MicrosoftError::new(MicrosoftErrorKind::AppNotConsented))
            }
            429 => Err(MicrosoftError::new(MicrosoftErrorKind::Throttled {
                retry_after,
            })),
            500..=599 => Err(MicrosoftError::new(MicrosoftErrorKind::Unavailable {
                status: Some(status),
            })),
            other => Err(unexpected(Some(other), "connector_status")),
        }
    }
}

fn unexpected(status: Option<u16>, code: &str) -> MicrosoftError {
    MicrosoftError::new(MicrosoftErrorKind::Unexpected {
        status,
        code: Some(code.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(value: &str, authenticated: &str, upn: &str) -> String {
        format!(
            r#"<BeginTwoWayAuthenticationResponse xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><Version>1</Version><Result><Value>{value}</Value><Message i:nil="true"/><Retry>false</Retry><Error i:nil="true"/><Exception i:nil="true"/></Result><SessionId>s-1</SessionId><AuthenticationResult>{authenticated}</AuthenticationResult><UserPrincipalName>{upn}</UserPrincipalName></BeginTwoWayAuthenticationResponse>"#
        )
    }

    #[test]
    fn the_request_escapes_the_upn_and_carries_every_field() {
        let upn = Upn::parse("o<x>&'\"@contoso.com").unwrap();
        let xml = begin_request_xml(&upn, uuid::Uuid::nil());
        assert!(xml.starts_with("<BeginTwoWayAuthenticationRequest>"));
        assert!(xml.contains("<UserPrincipalName>o&lt;x&gt;&amp;"), "{xml}");
        assert!(!xml.contains("<x>"));
        assert!(xml.contains("<SyncCall>true</SyncCall>"));
        assert!(xml.contains("<RequireUserMatch>true</RequireUserMatch>"));
        assert!(xml.contains(r#"<AuthenticationMethodProperties xmlns:a="http://schemas.microsoft.com/2003/10/Serialization/Arrays"><a:KeyValueOfstringstring><a:Key>OverrideVoiceOtp</a:Key><a:Value>false</a:Value></a:KeyValueOfstringstring></AuthenticationMethodProperties>"#), "{xml}");
        assert!(xml.contains("<CallerIP>UNKNOWN:</CallerIP>"));
    }

    #[test]
    fn only_a_matching_authenticated_success_is_an_approval() {
        let dana = Upn::parse("dana@contoso.com").unwrap();
        let outcome = |xml: String| classify_response(&dana, &xml).unwrap().outcome;
        assert_eq!(
            outcome(response("Success", "true", "Dana@Contoso.com")),
            PushOutcome::Approved
        );
        assert_eq!(
            outcome(response("Success", "false", "dana@contoso.com")),
            PushOutcome::NotPrompted
        );
        assert_eq!(
            outcome(response("Success", "true", "eve@contoso.com")),
            PushOutcome::UpnMismatch {
                returned: "eve@contoso.com".into()
            }
        );
        assert_eq!(
            outcome(response("PhoneAppDenied", "false", "dana@contoso.com")),
            PushOutcome::Denied
        );
        assert_eq!(
            outcome(response("PhoneAppNoResponse", "false", "")),
            PushOutcome::NoResponse
        );
        assert_eq!(
            outcome(response("PhoneAppFraudReported", "false", "")),
            PushOutcome::FraudReported
        );
        assert_eq!(
            outcome(response("UserIsBlocked", "false", "")),
            PushOutcome::UserBlocked
        );
        assert_eq!(
            outcome(response("ProofDataNotFound", "false", "")),
            PushOutcome::NoMethodRegistered
        );
        assert_eq!(
            outcome(response("OathCodeIncorrect", "false", "")),
            PushOutcome::Other {
                code: "OathCodeIncorrect".into()
            }
        );
        assert!(classify_response(&dana, "not xml").is_err());
    }
}
