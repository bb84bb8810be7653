//! Microsoft Graph: users, authentication methods, sign-in preferences, directory roles,
//! password reset, the MFA client's service principal, and licences.
//!
//! Errors branch on Graph's `error.code`, never on its message, and each call names the
//! application permission it needs so a 403 can say which one is missing.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use url::Url;

use super::error::{MicrosoftError, MicrosoftErrorKind};
use super::token::{Audience, TokenClient, transport_error};
use super::types::ClientCredentials;
use crate::upstream::{Idempotency, Upstream};

/// The first-party "Azure Multi-Factor Auth Client" app whose service principal holds the
/// credential for the MFA connector.
pub const MFA_CLIENT_APP_ID: &str = "981f26a1-7f43-403b-a875-f8b09b8cd720";

/// Service plans that include Microsoft Entra ID P1 (P2 includes P1).
pub const ENTRA_P1_SERVICE_PLANS: &[&str] = &["AAD_PREMIUM", "AAD_PREMIUM_P2"];

/// Graph error codes seen when a new password breaks the tenant's policy. Unconfirmed: the
/// reference only records the message, so Vouch treats a 400 on a password change with one of
/// these codes as a policy refusal (the on-premises case is caught before the call).
pub const PASSWORD_POLICY_ERROR_CODES: &[&str] = &["Request_BadRequest", "InvalidPassword"];

const USER_FIELDS: &str = "id,userPrincipalName,displayName,mail,accountEnabled,onPremisesSyncEnabled,mobilePhone,proxyAddresses";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphUser {
    pub id: String,
    pub user_principal_name: String,
    pub display_name: Option<String>,
    pub mail: Option<String>,
    pub account_enabled: Option<bool>,
    pub on_premises_sync_enabled: Option<bool>,
    pub mobile_phone: Option<String>,
    #[serde(default)]
    pub proxy_addresses: Vec<String>,
}

impl GraphUser {
    pub fn is_synced_from_on_premises(&self) -> bool {
        self.on_premises_sync_enabled == Some(true)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhoneMethod {
    pub id: String,
    pub phone_number: String,
    pub phone_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticatorMethod {
    pub id: String,
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInPreferences {
    #[serde(default)]
    pub is_system_preferred_authentication_method_enabled: Option<bool>,
    #[serde(default)]
    pub user_preferred_method_for_secondary_authentication: Option<String>,
}

/// The value of `userPreferredMethodForSecondaryAuthentication` for the Authenticator push.
pub const PUSH_METHOD: &str = "push";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryRole {
    pub id: String,
    pub display_name: Option<String>,
    pub role_template_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePrincipal {
    pub id: String,
    pub app_id: String,
}

/// A new password credential; `secret_text` is shown by Microsoft only once.
#[derive(Debug, Clone)]
pub struct NewCredential {
    pub key_id: String,
    pub secret_text: SecretString,
    pub end_date_time: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscribedSku {
    pub sku_part_number: String,
    #[serde(default)]
    pub capability_status: Option<String>,
    #[serde(default)]
    pub service_plans: Vec<ServicePlan>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePlan {
    pub service_plan_name: String,
    #[serde(default)]
    pub provisioning_status: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    pub id: String,
    pub display_name: Option<String>,
    #[serde(default)]
    pub verified_domains: Vec<VerifiedDomain>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedDomain {
    pub name: String,
    #[serde(default)]
    pub is_default: Option<bool>,
}

/// The most requests one `$batch` may carry (Graph's limit).
pub const MAX_BATCH_REQUESTS: usize = 20;

/// What a password reset reads of a user, from one `$batch` ([`GraphClient::reset_reads`]).
#[derive(Debug, Clone)]
pub struct ResetReads {
    /// `None` when the tenant has no such user.
    pub user: Option<GraphUser>,
    /// The user's directory roles, when they were asked for.
    pub roles: Option<Result<Vec<DirectoryRole>, MicrosoftError>>,
    pub phones: Result<Vec<PhoneMethod>, MicrosoftError>,
}

/// A `$batch` answer: one answer per request, in any order.
#[derive(Deserialize)]
struct BatchAnswers {
    #[serde(default)]
    responses: Vec<BatchAnswer>,
}

#[derive(Deserialize)]
struct BatchAnswer {
    id: String,
    status: u16,
    #[serde(default)]
    headers: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    body: Option<serde_json::Value>,
}

impl BatchAnswer {
    /// The answer as a single call's: its body, or why it failed.
    fn outcome(self) -> Result<bytes::Bytes, Failure> {
        let header = |name: &str| {
            self.headers
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .and_then(|(_, value)| match value {
                    serde_json::Value::String(text) => Some(text.clone()),
                    serde_json::Value::Number(number) => Some(number.to_string()),
                    _ => None,
                })
        };
        let Ok(status) = StatusCode::from_u16(self.status) else {
            return Err(Failure::Error(unexpected(None, "bad_batch_status")));
        };
        if status.is_success() {
            let body = self.body.unwrap_or(serde_json::Value::Null);
            return Ok(bytes::Bytes::from(body.to_string()));
        }
        let retry_after = header("retry-after")
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let header_request_id = header("request-id");
        let envelope: GraphErrorEnvelope = self
            .body
            .and_then(|body| serde_json::from_value(body).ok())
            .unwrap_or_default();
        let request_id = envelope
            .error
            .inner_error
            .and_then(|inner| inner.request_id)
            .or(header_request_id);
        tracing::info!(
            status = status.as_u16(),
            code = %envelope.error.code,
            request_id = request_id.as_deref().unwrap_or(""),
            "Graph call refused (inside a batch)"
        );
        Err(Failure::Status {
            status,
            code: envelope.error.code,
            request_id,
            retry_after,
        })
    }
}

/// One request of a `$batch`: its URL relative to the batch's version (`/users/..`, no
/// `/v1.0`), and the headers a single call would send.
fn batch_request(id: &str, call: &Call<'_>) -> Result<serde_json::Value, Failure> {
    let relative = call
        .path
        .strip_prefix("v1.0/")
        .ok_or_else(|| Failure::Error(unexpected(None, "batch_of_another_version")))?;
    let mut url = format!("/{relative}");
    if !call.query.is_empty() {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in &call.query {
            query.append_pair(name, value);
        }
        url.push('?');
        url.push_str(&query.finish());
    }
    let mut headers = serde_json::Map::new();
    if call.advanced_query {
        headers.insert("ConsistencyLevel".into(), "eventual".into());
    }
    let mut request = serde_json::json!({
        "id": id,
        "method": call.method.as_str(),
        "url": url,
    });
    if let Some(body) = &call.body {
        headers.insert("Content-Type".into(), "application/json".into());
        request["body"] = body.clone();
    }
    if !headers.is_empty() {
        request["headers"] = serde_json::Value::Object(headers);
    }
    Ok(request)
}

#[derive(Deserialize)]
struct Collection<T> {
    value: Vec<T>,
}

#[derive(Deserialize, Default)]
struct GraphErrorEnvelope {
    #[serde(default)]
    error: GraphErrorBody,
}

#[derive(Deserialize, Default)]
struct GraphErrorBody {
    #[serde(default)]
    code: String,
    #[serde(default, rename = "innerError")]
    inner_error: Option<GraphInnerError>,
}

#[derive(Deserialize, Default)]
struct GraphInnerError {
    #[serde(default, rename = "request-id")]
    request_id: Option<String>,
}

/// A Graph call: what it does and the least permission it needs.
struct Call<'a> {
    method: Method,
    path: String,
    query: Vec<(&'a str, String)>,
    body: Option<serde_json::Value>,
    permission: &'static str,
    advanced_query: bool,
    /// Whether sending it twice is harmless (every GET, and a `$batch` of GETs).
    idempotent: bool,
}

/// What a failed call meant, before the generic mapping.
enum Failure {
    Status {
        status: StatusCode,
        code: String,
        request_id: Option<String>,
        retry_after: Option<Duration>,
    },
    Error(MicrosoftError),
}

/// Why a password change did not come back done.
#[derive(Debug, Clone)]
pub enum PasswordChangeError {
    /// Microsoft refused it, or it was never sent: the password did not change.
    NotApplied(MicrosoftError),
    /// The answer was lost or unclear (a timeout, a dropped connection, a 5xx): the password
    /// may have changed. Sending the same change again is safe.
    Unknown(MicrosoftError),
}

impl PasswordChangeError {
    pub fn error(&self) -> &MicrosoftError {
        match self {
            PasswordChangeError::NotApplied(err) | PasswordChangeError::Unknown(err) => err,
        }
    }

    /// Whether this answer to a *repeat* of a change whose first answer was lost means that
    /// the first one was applied. Graph refuses a password that is the user's current (or a
    /// recent) one with the same 400 it uses for a password that fails the complexity policy
    /// (the code is unconfirmed, see `PASSWORD_POLICY_ERROR_CODES`). Vouch's generated
    /// passwords always meet that policy, so on a repeat this refusal says the password is
    /// already set: the choice is made here, and only here.
    pub fn means_already_set_on_repeat(&self) -> bool {
        matches!(
            self,
            PasswordChangeError::NotApplied(err)
                if err.kind == MicrosoftErrorKind::PasswordRejectedByPolicy
        )
    }
}

#[derive(Clone)]
pub struct GraphClient {
    upstream: Upstream,
    graph_url: Url,
    tokens: TokenClient,
}

impl GraphClient {
    pub fn new(upstream: Upstream, graph_url: Url, tokens: TokenClient) -> GraphClient {
        GraphClient {
            upstream,
            graph_url,
            tokens,
        }
    }

    pub async fn user(
        &self,
        creds: &ClientCredentials,
        upn_or_id: &str,
    ) -> Result<Option<GraphUser>, MicrosoftError> {
        let call = Call::get(
            format!("v1.0/users/{}", path_segment(upn_or_id)),
            "User.Read.All",
        )
        .query("$select", USER_FIELDS);
        self.user_answer(self.execute(creds, call).await)
    }

    /// A user read's answer: `None` for a 404 (the tenant has no such user).
    fn user_answer(
        &self,
        answer: Result<bytes::Bytes, Failure>,
    ) -> Result<Option<GraphUser>, MicrosoftError> {
        match answer {
            Ok(body) => Ok(Some(parse(body)?)),
            Err(Failure::Status {
                status: StatusCode::NOT_FOUND,
                ..
            }) => Ok(None),
            Err(failure) => Err(self.generic(failure, "User.Read.All")),
        }
    }

    /// Users whose `mail` is this address (when mail differs from the UPN).
    pub async fn users_by_mail(
        &self,
        creds: &ClientCredentials,
        email: &str,
    ) -> Result<Vec<GraphUser>, MicrosoftError> {
        let call = Call::get("v1.0/users".into(), "User.Read.All")
            .query("$filter", format!("mail eq '{}'", odata_string(email)))
            .query("$select", USER_FIELDS);
        self.list(creds, call).await
    }

    /// Users with this address among their `proxyAddresses` (an advanced query).
    pub async fn users_by_proxy_address(
        &self,
        creds: &ClientCredentials,
        email: &str,
    ) -> Result<Vec<GraphUser>, MicrosoftError> {
        let mut call = Call::get("v1.0/users".into(), "User.Read.All")
            .query(
                "$filter",
                format!("proxyAddresses/any(x:x eq 'smtp:{}')", odata_string(email)),
            )
            .query("$count", "true".to_owned())
            .query("$select", USER_FIELDS);
        call.advanced_query = true;
        self.list(creds, call).await
    }

    /// Up to `top` users whose display name, UPN or mail matches `text` (Graph's `$search`,
    /// an advanced query: a word of the property starting with the text).
    pub async fn search_users(
        &self,
        creds: &ClientCredentials,
        text: &str,
        top: u32,
    ) -> Result<Vec<GraphUser>, MicrosoftError> {
        // Inside a `$search` clause a double quote or backslash would end or escape it.
        let term: String = text.chars().filter(|c| *c != '"' && *c != '\\').collect();
        let search = ["displayName", "userPrincipalName", "mail"]
            .iter()
            .map(|property| format!("\"{property}:{term}\""))
            .collect::<Vec<_>>()
            .join(" OR ");
        let mut call = Call::get("v1.0/users".into(), "User.Read.All")
            .query("$search", search)
            .query("$count", "true".to_owned())
            .query("$top", top.to_string())
            .query("$select", USER_FIELDS);
        call.advanced_query = true;
        self.list(creds, call).await
    }

    /// A harmless read that proves a token and User.Read.All work.
    pub async fn probe_users(&self, creds: &ClientCredentials) -> Result<(), MicrosoftError> {
        let call = Call::get("v1.0/users".into(), "User.Read.All")
            .query("$top", "1".to_owned())
            .query("$select", "id".to_owned());
        self.list::<serde_json::Value>(creds, call)
            .await
            .map(|_| ())
    }

    pub async fn phone_methods(
        &self,
        creds: &ClientCredentials,
        user_id: &str,
    ) -> Result<Vec<PhoneMethod>, MicrosoftError> {
        let call = Call::get(
            format!(
                "v1.0/users/{}/authentication/phoneMethods",
                path_segment(user_id)
            ),
            "UserAuthenticationMethod.Read.All",
        );
        self.list(creds, call).await
    }

    pub async fn authenticator_methods(
        &self,
        creds: &ClientCredentials,
        user_id: &str,
    ) -> Result<Vec<AuthenticatorMethod>, MicrosoftError> {
        let call = Call::get(
            format!(
                "v1.0/users/{}/authentication/microsoftAuthenticatorMethods",
                path_segment(user_id)
            ),
            "UserAuthenticationMethod.Read.All",
        );
        self.list(creds, call).await
    }

    pub async fn sign_in_preferences(
        &self,
        creds: &ClientCredentials,
        user_id: &str,
    ) -> Result<SignInPreferences, MicrosoftError> {
        let call = Call::get(
            format!(
                "beta/users/{}/authentication/signInPreferences",
                path_segment(user_id)
            ),
            "UserAuthenticationMethod.Read.All",
        );
        match self.execute(creds, call).await {
            Ok(body) => parse(body),
            Err(failure) => Err(self.user_scoped(failure, "UserAuthenticationMethod.Read.All")),
        }
    }

    pub async fn set_preferred_method(
        &self,
        creds: &ClientCredentials,
        user_id: &str,
        method: &str,
    ) -> Result<(), MicrosoftError> {
        let call = Call {
            method: Method::PATCH,
            path: format!(
                "beta/users/{}/authentication/signInPreferences",
                path_segment(user_id)
            ),
            query: Vec::new(),
            body: Some(
                serde_json::json!({ "userPreferredMethodForSecondaryAuthentication": method }),
            ),
            permission: "UserAuthenticationMethod.ReadWrite.All",
            advanced_query: false,
            idempotent: false,
        };
        self.execute(creds, call)
            .await
            .map(|_| ())
            .map_err(|failure| self.user_scoped(failure, "UserAuthenticationMethod.ReadWrite.All"))
    }

    pub async fn directory_roles(
        &self,
        creds: &ClientCredentials,
        user_id: &str,
    ) -> Result<Vec<DirectoryRole>, MicrosoftError> {
        let call = Call::get(
            format!(
                "v1.0/users/{}/memberOf/microsoft.graph.directoryRole",
                path_segment(user_id)
            ),
            "Directory.Read.All",
        );
        self.list(creds, call).await
    }

    /// What a password reset reads of a user before changing anything, in one `$batch`
    /// request: the user, their phone methods and, with `with_roles`, their directory roles.
    /// Each part fails as its own call would (a 404 user is `None`, a 403 on the roles names
    /// `Directory.Read.All`); a refused or unreadable batch is the error of the whole.
    pub async fn reset_reads(
        &self,
        creds: &ClientCredentials,
        user_id: &str,
        with_roles: bool,
    ) -> Result<ResetReads, MicrosoftError> {
        const ROLES_PERMISSION: &str = "Directory.Read.All";
        const PHONES_PERMISSION: &str = "UserAuthenticationMethod.Read.All";
        let id = path_segment(user_id);
        let mut calls = vec![
            (
                "user",
                Call::get(format!("v1.0/users/{id}"), "User.Read.All")
                    .query("$select", USER_FIELDS),
            ),
            (
                "phones",
                Call::get(
                    format!("v1.0/users/{id}/authentication/phoneMethods"),
                    PHONES_PERMISSION,
                ),
            ),
        ];
        if with_roles {
            calls.push((
                "roles",
                Call::get(
                    format!("v1.0/users/{id}/memberOf/microsoft.graph.directoryRole"),
                    ROLES_PERMISSION,
                ),
            ));
        }
        let mut answers = self
            .batch(creds, calls)
            .await
            .map_err(|failure| self.generic(failure, "User.Read.All"))?;
        let mut take = |id: &str| {
            answers
                .remove(id)
                .unwrap_or_else(|| Err(Failure::Error(unexpected(None, "batch_answer_missing"))))
        };
        let user = self.user_answer(take("user"))?;
        let phones = self.list_answer(take("phones"), PHONES_PERMISSION);
        let roles = with_roles.then(|| self.list_answer(take("roles"), ROLES_PERMISSION));
        Ok(ResetReads {
            user,
            roles,
            phones,
        })
    }

    /// Sets a new password. Returns Microsoft's request id for the audit log.
    pub async fn reset_password(
        &self,
        creds: &ClientCredentials,
        user_id: &str,
        password: &SecretString,
        force_change_next_sign_in: bool,
    ) -> Result<Option<String>, PasswordChangeError> {
        const PERMISSION: &str = "User-PasswordProfile.ReadWrite.All";
        // Without a token the change is never sent: a failure here is definite.
        self.tokens
            .token(creds, Audience::Graph)
            .await
            .map_err(PasswordChangeError::NotApplied)?;
        let call = Call {
            method: Method::PATCH,
            path: format!("v1.0/users/{}", path_segment(user_id)),
            query: Vec::new(),
            body: Some(serde_json::json!({
                "passwordProfile": {
                    "password": password.expose_secret(),
                    "forceChangePasswordNextSignIn": force_change_next_sign_in,
                }
            })),
            permission: PERMISSION,
            advanced_query: false,
            idempotent: false,
        };
        match self.execute_with_request_id(creds, call).await {
            Ok((_, request_id)) => Ok(request_id),
            Err(Failure::Status {
                status: StatusCode::BAD_REQUEST,
                code,
                request_id,
                ..
            }) if PASSWORD_POLICY_ERROR_CODES.contains(&code.as_str()) => {
                Err(PasswordChangeError::NotApplied(
                    MicrosoftError::new(MicrosoftErrorKind::PasswordRejectedByPolicy)
                        .with_request_id(request_id),
                ))
            }
            // A 4xx (429 included) is Graph saying it did not make the change.
            Err(failure @ Failure::Status { status, .. }) if status.is_client_error() => Err(
                PasswordChangeError::NotApplied(self.user_scoped(failure, PERMISSION)),
            ),
            // A 5xx, a timeout or a dropped connection: the change may have been made.
            Err(failure) => Err(PasswordChangeError::Unknown(
                self.user_scoped(failure, PERMISSION),
            )),
        }
    }

    /// Finds the service principal of `app_id` in the tenant, creating it when missing.
    pub async fn ensure_service_principal(
        &self,
        creds: &ClientCredentials,
        app_id: &str,
    ) -> Result<ServicePrincipal, MicrosoftError> {
        let find = Call::get("v1.0/servicePrincipals".into(), "Application.ReadWrite.All")
            .query("$filter", format!("appId eq '{}'", odata_string(app_id)))
            .query("$select", "id,appId".to_owned());
        if let Some(existing) = self
            .list::<ServicePrincipal>(creds, find)
            .await?
            .into_iter()
            .next()
        {
            return Ok(existing);
        }
        let create = Call {
            method: Method::POST,
            path: "v1.0/servicePrincipals".into(),
            query: Vec::new(),
            body: Some(serde_json::json!({ "appId": app_id })),
            permission: "Application.ReadWrite.All",
            advanced_query: false,
            idempotent: false,
        };
        match self.execute(creds, create).await {
            Ok(body) => parse(body),
            Err(failure) => Err(self.generic(failure, "Application.ReadWrite.All")),
        }
    }

    pub async fn add_password(
        &self,
        creds: &ClientCredentials,
        service_principal_id: &str,
        display_name: &str,
        end: DateTime<Utc>,
    ) -> Result<NewCredential, MicrosoftError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Created {
            key_id: String,
            secret_text: String,
            end_date_time: DateTime<Utc>,
        }
        let call = Call {
            method: Method::POST,
            path: format!(
                "v1.0/servicePrincipals/{}/addPassword",
                path_segment(service_principal_id)
            ),
            query: Vec::new(),
            body: Some(serde_json::json!({
                "passwordCredential": { "displayName": display_name, "endDateTime": end }
            })),
            permission: "Application.ReadWrite.All",
            advanced_query: false,
            idempotent: false,
        };
        match self.execute(creds, call).await {
            Ok(body) => {
                let created: Created = parse(body)?;
                Ok(NewCredential {
                    key_id: created.key_id,
                    secret_text: SecretString::from(created.secret_text),
                    end_date_time: created.end_date_time,
                })
            }
            Err(failure) => Err(self.generic(failure, "Application.ReadWrite.All")),
        }
    }

    pub async fn subscribed_skus(
        &self,
        creds: &ClientCredentials,
    ) -> Result<Vec<SubscribedSku>, MicrosoftError> {
        self.list(
            creds,
            Call::get("v1.0/subscribedSkus".into(), "Organization.Read.All"),
        )
        .await
    }

    /// Whether an enabled subscription includes Entra ID P1 or higher.
    pub async fn has_entra_p1(&self, creds: &ClientCredentials) -> Result<bool, MicrosoftError> {
        Ok(self.subscribed_skus(creds).await?.iter().any(|sku| {
            sku.capability_status.as_deref().unwrap_or("Enabled") == "Enabled"
                && sku.service_plans.iter().any(|plan| {
                    ENTRA_P1_SERVICE_PLANS.contains(&plan.service_plan_name.as_str())
                        && plan.provisioning_status.as_deref() != Some("Disabled")
                })
        }))
    }

    pub async fn organization(
        &self,
        creds: &ClientCredentials,
    ) -> Result<Option<Organization>, MicrosoftError> {
        Ok(self
            .list(
                creds,
                Call::get("v1.0/organization".into(), "Organization.Read.All"),
            )
            .await?
            .into_iter()
            .next())
    }

    async fn list<T: DeserializeOwned>(
        &self,
        creds: &ClientCredentials,
        call: Call<'_>,
    ) -> Result<Vec<T>, MicrosoftError> {
        let permission = call.permission;
        self.list_answer(self.execute(creds, call).await, permission)
    }

    /// A collection read's answer (a 404 means the user does not exist).
    fn list_answer<T: DeserializeOwned>(
        &self,
        answer: Result<bytes::Bytes, Failure>,
        permission: &'static str,
    ) -> Result<Vec<T>, MicrosoftError> {
        match answer {
            Ok(body) => Ok(parse::<Collection<T>>(body)?.value),
            Err(failure) => Err(self.user_scoped(failure, permission)),
        }
    }

    /// Sends `calls` (reads of one API version, `v1.0`) as one JSON batch
    /// (`POST v1.0/$batch`) and returns each one's answer by its id, as if it had been sent
    /// alone: a refused one keeps its status, Graph `code`, request id and `Retry-After`.
    /// Answers throttled inside the batch (429, or 503) are asked again in a smaller batch
    /// after the wait Graph gave, under the same bounds as a single call's retries; a failed
    /// envelope is the error of the whole.
    async fn batch(
        &self,
        creds: &ClientCredentials,
        calls: Vec<(&'static str, Call<'_>)>,
    ) -> Result<HashMap<&'static str, Result<bytes::Bytes, Failure>>, Failure> {
        debug_assert!(calls.len() <= MAX_BATCH_REQUESTS);
        let policy = self.upstream.policy();
        let mut answers = HashMap::with_capacity(calls.len());
        let mut pending = calls;
        let mut waited = Duration::ZERO;
        let mut attempt: u32 = 0;
        loop {
            let requests = pending
                .iter()
                .map(|(id, call)| batch_request(id, call))
                .collect::<Result<Vec<_>, _>>()?;
            let envelope = Call {
                method: Method::POST,
                path: "v1.0/$batch".into(),
                query: Vec::new(),
                body: Some(serde_json::json!({ "requests": requests })),
                permission: "User.Read.All",
                advanced_query: false,
                // A batch of reads changes nothing.
                idempotent: true,
            };
            let (body, _) = self.execute_with_request_id(creds, envelope).await?;
            let BatchAnswers { responses } = serde_json::from_slice(&body)
                .map_err(|_| Failure::Error(unexpected(Some(200), "unreadable_batch")))?;
            // Answers may come in any order: matched by id.
            let mut by_id: HashMap<String, BatchAnswer> = responses
                .into_iter()
                .map(|answer| (answer.id.clone(), answer))
                .collect();
            let mut again = Vec::new();
            let mut wait = Duration::ZERO;
            for (id, call) in pending {
                let outcome = match by_id.remove(id) {
                    Some(answer) => answer.outcome(),
                    None => Err(Failure::Error(unexpected(
                        Some(200),
                        "batch_answer_missing",
                    ))),
                };
                if let Err(Failure::Status {
                    status,
                    retry_after,
                    ..
                }) = &outcome
                {
                    if *status == StatusCode::UNAUTHORIZED {
                        self.tokens.forget(creds, Audience::Graph).await;
                    }
                    if matches!(
                        *status,
                        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
                    ) && attempt < policy.max_retries
                    {
                        let this_wait =
                            retry_after.unwrap_or(policy.base_backoff * 2u32.pow(attempt));
                        if waited + this_wait <= policy.max_total_wait {
                            wait = wait.max(this_wait);
                            again.push((id, call));
                            continue;
                        }
                    }
                }
                answers.insert(id, outcome);
            }
            if again.is_empty() {
                return Ok(answers);
            }
            tracing::info!(
                requests = again.len(),
                wait_ms = wait.as_millis() as u64,
                "Graph throttled requests inside a batch; asking again"
            );
            tokio::time::sleep(wait).await;
            waited += wait;
            attempt += 1;
            pending = again;
        }
    }

    async fn execute(
        &self,
        creds: &ClientCredentials,
        call: Call<'_>,
    ) -> Result<bytes::Bytes, Failure> {
        self.execute_with_request_id(creds, call)
            .await
            .map(|(body, _)| body)
    }

    async fn execute_with_request_id(
        &self,
        creds: &ClientCredentials,
        call: Call<'_>,
    ) -> Result<(bytes::Bytes, Option<String>), Failure> {
        let token = self
            .tokens
            .token(creds, Audience::Graph)
            .await
            .map_err(Failure::Error)?;
        let mut url = self
            .graph_url
            .join(&call.path)
            .map_err(|_| Failure::Error(unexpected(None, "bad_graph_url")))?;
        if !call.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in &call.query {
                pairs.append_pair(name, value);
            }
        }
        let idempotency = if call.idempotent {
            Idempotency::Idempotent
        } else {
            Idempotency::NotIdempotent
        };
        let bearer = token.bearer();
        let response = self
            .upstream
            .send(idempotency, |client| {
                let mut request = client
                    .request(call.method.clone(), url.clone())
                    .header(reqwest::header::AUTHORIZATION, &bearer);
                if call.advanced_query {
                    request = request.header("ConsistencyLevel", "eventual");
                }
                if let Some(body) = &call.body {
                    request = request.json(body);
                }
                request
            })
            .await
            .map_err(|err| Failure::Error(transport_error(err)))?;
        let status = response.status();
        let header_request_id = response
            .headers()
            .get("request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let retry_after = crate::upstream::retry_after(&response);
        let body = response.bytes().await.map_err(|_| {
            Failure::Error(MicrosoftError::new(MicrosoftErrorKind::Unavailable {
                status: Some(status.as_u16()),
            }))
        })?;
        if status.is_success() {
            return Ok((body, header_request_id));
        }
        if status == StatusCode::UNAUTHORIZED {
            // The token was refused (consent revoked, secret rotated): do not keep using it.
            self.tokens.forget(creds, Audience::Graph).await;
        }
        let envelope: GraphErrorEnvelope = serde_json::from_slice(&body).unwrap_or_default();
        let request_id = envelope
            .error
            .inner_error
            .and_then(|inner| inner.request_id)
            .or(header_request_id);
        tracing::info!(
            status = status.as_u16(),
            code = %envelope.error.code,
            request_id = request_id.as_deref().unwrap_or(""),
            "Graph call refused"
        );
        Err(Failure::Status {
            status,
            code: envelope.error.code,
            request_id,
            retry_after,
        })
    }

    /// For calls about one user: a 404 means the user does not exist.
    fn user_scoped(&self, failure: Failure, permission: &'static str) -> MicrosoftError {
        match failure {
            Failure::Status {
                status: StatusCode::NOT_FOUND,
                request_id,
                ..
            } => MicrosoftError::new(MicrosoftErrorKind::UserNotFound).with_request_id(request_id),
            other => self.generic(other, permission),
        }
    }

    fn generic(&self, failure: Failure, permission: &'static str) -> MicrosoftError {
        use MicrosoftErrorKind::*;
        let (status, code, request_id, retry_after) = match failure {
            Failure::Error(err) => return err,
            Failure::Status {
                status,
                code,
                request_id,
                retry_after,
            } => (status, code, request_id, retry_after),
        };
        let kind = match (status.as_u16(), code.as_str()) {
            (403, _) => MissingPermission { permission },
            (401, _) => AppNotConsented,
            (429, _) => Throttled { retry_after },
            (500..=599, _) => Unavailable {
                status: Some(status.as_u16()),
            },
            (_, code) => Unexpected {
                status: Some(status.as_u16()),
                code: Some(code.to_owned()),
            },
        };
        MicrosoftError::new(kind).with_request_id(request_id)
    }
}

impl<'a> Call<'a> {
    fn get(path: String, permission: &'static str) -> Call<'a> {
        Call {
            method: Method::GET,
            path,
            query: Vec::new(),
            body: None,
            permission,
            advanced_query: false,
            idempotent: true,
        }
    }

    fn query(mut self, name: &'a str, value: impl Into<String>) -> Call<'a> {
        self.query.push((name, value.into()));
        self
    }
}

fn parse<T: DeserializeOwned>(body: bytes::Bytes) -> Result<T, MicrosoftError> {
    serde_json::from_slice(&body).map_err(|_| unexpected(Some(200), "unreadable_body"))
}

fn unexpected(status: Option<u16>, code: &str) -> MicrosoftError {
    MicrosoftError::new(MicrosoftErrorKind::Unexpected {
        status,
        code: Some(code.to_owned()),
    })
}

/// One path segment, percent-encoded (a UPN may hold characters such as `#` or `'`).
fn path_segment(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// An OData string literal's content: single quotes are doubled.
fn odata_string(value: &str) -> String {
    value.replace('\'', "''")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odata_and_path_values_are_escaped() {
        assert_eq!(odata_string("o'neil@x.com"), "o''neil@x.com");
        assert_eq!(path_segment("a#b@x.com"), "a%23b%40x.com");
        assert_eq!(path_segment("a b"), "a%20b");
    }
}
