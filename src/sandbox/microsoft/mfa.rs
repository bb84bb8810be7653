//! The MFA connector (`BeginTwoWayAuthentication`, as the NPS extension calls it): sends a
//! Microsoft Authenticator push and, with `SyncCall`, holds the HTTP call until the phone
//! answers or the push times out.
//!
//! Chosen models where the reference is silent or unconfirmed:
//! - A UPN that is not a user of the token's tenant answers `UserNotFound`.
//! - A user whose default method (`userPreferredMethodForSecondaryAuthentication`) is not
//!   `push` gets NO prompt: the call returns at once with `Value` `Success` and
//!   `AuthenticationResult` `false`. This is the "Preferred Auth Method" trap in which naive
//!   tools reported success. `<AuthenticationMethodId>PhoneAppNotification</...>` in the
//!   request is ignored: whether it overrides the default is unconfirmed, so the sandbox keeps
//!   the trap.
//! - The checks run in this order: unknown user, blocked user, no Authenticator registered
//!   (`ProofDataNotFound`), default method not push.
//! - `SyncCall` `false` is treated like `true` (Vouch only uses synchronous calls).
//! - The returned `UserPrincipalName` is the one the request sent (unless a script says
//!   otherwise).
//! - Malformed XML gets HTTP 400, a body that is not XML 415, a missing or wrong token 401
//!   (all with empty bodies); every well-formed request gets HTTP 200.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use poem::Response;
use poem::http::{Method, StatusCode};
use quick_xml::events::Event;
use serde::Deserialize;
use tokio::sync::oneshot;

use super::state::{Audience, Outcome, PendingEntry};
use super::{Incoming, PendingPush, PushScript, Shared, new_guid};

/// The request body (section 6 of the reference); unknown elements are ignored.
#[derive(Debug, Deserialize)]
struct BeginRequest {
    #[serde(rename = "UserPrincipalName", default)]
    user_principal_name: Option<String>,
}

/// What the connector answers.
struct Answer {
    value: &'static str,
    approved: bool,
    upn: String,
}

impl Answer {
    fn refused(value: &'static str, upn: &str) -> Answer {
        Answer {
            value,
            approved: false,
            upn: upn.to_owned(),
        }
    }

    fn from_outcome(outcome: Outcome, upn: &str) -> Answer {
        match outcome {
            Outcome::Approve => Answer {
                value: "Success",
                approved: true,
                upn: upn.to_owned(),
            },
            Outcome::ApproveAs(other) => Answer {
                value: "Success",
                approved: true,
                upn: other,
            },
            Outcome::Deny => Answer::refused("PhoneAppDenied", upn),
            Outcome::ReportFraud => Answer::refused("PhoneAppFraudReported", upn),
        }
    }
}

/// What to do once the state has been consulted (the lock is released before waiting).
enum Decision {
    Now(Answer),
    Wait {
        id: String,
        receiver: oneshot::Receiver<Outcome>,
        timeout: Duration,
        /// What the phone answers when `timeout` passes first (a held push); `None`:
        /// `PhoneAppNoResponse`.
        on_timeout: Option<Outcome>,
    },
}

pub(super) async fn handle(shared: Arc<Shared>, incoming: Incoming) -> Response {
    let segments: Vec<&str> = incoming.segments.iter().map(String::as_str).collect();
    if segments.as_slice() != ["BeginTwoWayAuthentication"] {
        return empty(StatusCode::NOT_FOUND);
    }
    if incoming.method != Method::POST {
        return empty(StatusCode::METHOD_NOT_ALLOWED);
    }
    let Some(tenant_id) = connector_tenant(&shared, &incoming) else {
        return Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header("WWW-Authenticate", "Bearer")
            .body(());
    };
    let is_xml = incoming
        .header("content-type")
        .is_some_and(|ct| ct.to_ascii_lowercase().contains("xml"));
    if !is_xml {
        return empty(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    let Some(request) = parse_request(&incoming.body) else {
        return empty(StatusCode::BAD_REQUEST);
    };
    let upn = request.user_principal_name.unwrap_or_default();
    let upn = upn.trim().to_owned();
    let session_id = new_guid();

    let answer = match decide(&shared, &tenant_id, &upn) {
        Decision::Now(answer) => answer,
        Decision::Wait {
            id,
            receiver,
            timeout,
            on_timeout,
        } => {
            // Forgets the push if the caller goes away or it times out.
            let _guard = PendingGuard {
                shared: shared.clone(),
                id,
            };
            match tokio::time::timeout(timeout, receiver).await {
                Ok(Ok(outcome)) => Answer::from_outcome(outcome, &upn),
                _ => match on_timeout {
                    Some(outcome) => Answer::from_outcome(outcome, &upn),
                    None => Answer::refused("PhoneAppNoResponse", &upn),
                },
            }
        }
    };
    Response::builder()
        .status(StatusCode::OK)
        .content_type("application/xml; charset=utf-8")
        .body(response_xml(&answer, &session_id))
}

fn empty(status: StatusCode) -> Response {
    Response::builder().status(status).body(())
}

/// The tenant of a valid connector token, if the request carries one.
fn connector_tenant(shared: &Shared, incoming: &Incoming) -> Option<String> {
    let token = incoming.bearer()?;
    let state = shared.state();
    let issued = state.token(token)?;
    (issued.audience == Audience::MfaConnector && issued.expires_at > std::time::Instant::now())
        .then(|| issued.tenant_id.clone())
}

/// Parses the body with an XML parser: the root must be `BeginTwoWayAuthenticationRequest`.
fn parse_request(body: &[u8]) -> Option<BeginRequest> {
    let text = std::str::from_utf8(body).ok()?;
    let mut reader = quick_xml::Reader::from_str(text);
    let root = loop {
        match reader.read_event() {
            Ok(Event::Start(start)) | Ok(Event::Empty(start)) => {
                break start.local_name().into_inner().to_owned();
            }
            Ok(Event::Eof) | Err(_) => return None,
            Ok(_) => continue,
        }
    };
    if root != "BeginTwoWayAuthenticationRequest" {
        return None;
    }
    quick_xml::de::from_str(text).ok()
}

fn decide(shared: &Arc<Shared>, tenant_id: &str, upn: &str) -> Decision {
    let mut state = shared.state();
    let Some(user) = state.tenant(tenant_id).and_then(|t| t.user(upn)) else {
        return Decision::Now(Answer::refused("UserNotFound", upn));
    };
    if user.mfa_blocked {
        return Decision::Now(Answer::refused("UserIsBlocked", upn));
    }
    if user.authenticator.is_none() {
        return Decision::Now(Answer::refused("ProofDataNotFound", upn));
    }
    if user.preferred_method != "push" {
        // The trap: the connector does not prompt, yet says "Success" (not approved).
        return Decision::Now(Answer::refused("Success", upn));
    }
    let script = state
        .scripts
        .get_mut(&upn.to_lowercase())
        .and_then(|queue| queue.pop_front());
    let script_was_none = script.is_none();
    let delayed = match script {
        Some(PushScript::Approve) => {
            return Decision::Now(Answer::from_outcome(Outcome::Approve, upn));
        }
        Some(PushScript::Deny) => return Decision::Now(Answer::from_outcome(Outcome::Deny, upn)),
        Some(PushScript::ReportFraud) => {
            return Decision::Now(Answer::from_outcome(Outcome::ReportFraud, upn));
        }
        Some(PushScript::ApproveWithOtherUpn(other)) => {
            return Decision::Now(Answer::from_outcome(Outcome::ApproveAs(other), upn));
        }
        Some(PushScript::ApproveAfter(after)) => Some((after, Outcome::Approve)),
        Some(PushScript::DenyAfter(after)) => Some((after, Outcome::Deny)),
        Some(PushScript::NeverAnswer) => None,
        None => None,
    };
    let mut timeout = state.push_timeout;
    let mut on_timeout = None;
    if script_was_none && let Some(hold) = state.push_hold {
        // Held on the same open call: no task per push, whatever the number held.
        if hold.hold_for < timeout {
            timeout = hold.hold_for;
            on_timeout = hold.answer.map(Outcome::from);
        }
    }
    let id = new_guid();
    let (answer, receiver) = oneshot::channel();
    state.pending.push(PendingEntry {
        push: PendingPush {
            id: id.clone(),
            upn: upn.to_owned(),
            tenant_id: tenant_id.to_owned(),
            created_at: Utc::now(),
        },
        answer,
    });
    drop(state);
    // Whoever waits for a push to arrive (`wait_for_push`) looks again.
    shared.notify_changed();
    if let Some((after, outcome)) = delayed {
        let shared = shared.clone();
        let id = id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            shared.answer(&id, outcome);
        });
    }
    Decision::Wait {
        id,
        receiver,
        timeout,
        on_timeout,
    }
}

struct PendingGuard {
    shared: Arc<Shared>,
    id: String,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        self.shared.remove_pending(&self.id);
    }
}

fn response_xml(answer: &Answer, session_id: &str) -> String {
    use quick_xml::escape::escape;
    format!(
        "<BeginTwoWayAuthenticationResponse xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\">\
         <Version>1</Version>\
         <Result><Value>{value}</Value><Message i:nil=\"true\"/><Retry>false</Retry>\
         <Error i:nil=\"true\"/><Exception i:nil=\"true\"/></Result>\
         <SessionId>{session}</SessionId>\
         <AuthenticationResult>{approved}</AuthenticationResult>\
         <UserPrincipalName>{upn}</UserPrincipalName>\
         </BeginTwoWayAuthenticationResponse>",
        value = escape(answer.value),
        session = escape(session_id),
        approved = answer.approved,
        upn = escape(answer.upn.as_str()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"<BeginTwoWayAuthenticationRequest>
  <Version>1.0</Version>
  <UserPrincipalName>dana@contoso.example</UserPrincipalName>
  <Lcid>en-us</Lcid>
  <AuthenticationMethodProperties xmlns:a="http://schemas.microsoft.com/2003/10/Serialization/Arrays">
    <a:KeyValueOfstringstring><a:Key>OverrideVoiceOtp</a:Key><a:Value>false</a:Value></a:KeyValueOfstringstring>
  </AuthenticationMethodProperties>
  <ContextId>3d1f0b1e-0000-4000-8000-000000000000</ContextId>
  <SyncCall>true</SyncCall>
  <RequireUserMatch>true</RequireUserMatch>
  <CallerName>radius</CallerName>
  <CallerIP>UNKNOWN:</CallerIP>
</BeginTwoWayAuthenticationRequest>"#;

    #[test]
    fn parses_the_reference_request() {
        let request = parse_request(SAMPLE.as_bytes()).expect("parses");
        assert_eq!(
            request.user_principal_name.as_deref(),
            Some("dana@contoso.example")
        );
    }

    #[test]
    fn refuses_other_documents() {
        assert!(
            parse_request(b"<Other><UserPrincipalName>x</UserPrincipalName></Other>").is_none()
        );
        assert!(parse_request(b"not xml at all").is_none());
        assert!(parse_request(b"<BeginTwoWayAuthenticationRequest><Version>").is_none());
        assert!(parse_request(&[0xff, 0xfe]).is_none());
    }

    #[test]
    fn escapes_the_response() {
        let xml = response_xml(
            &Answer {
                value: "Success",
                approved: true,
                upn: "a<b>@c".to_owned(),
            },
            "s",
        );
        assert!(xml.contains("<UserPrincipalName>a&lt;b&gt;@c</UserPrincipalName>"));
        assert!(xml.contains("<AuthenticationResult>true</AuthenticationResult>"));
    }
}
