//! Microsoft Graph: users, authentication methods, sign-in preferences, directory roles,
//! password reset, the MFA client's service principal, and licences.
//!
//! Errors branch on Graph's `error.code`, never on its message, and each call names the
//! application permission it needs so a 403 can say which one is missing.

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
}

/// What a failed call meant, before the generic mapping.
enum Failure {
    Status {
        status: StatusCode,
        code: String,
        request_id: Option<String>,
        retry_after: Option<std::time::Duration>,
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
        match self.execute(creds, call).await {
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
        match self.execute(creds, call).await {
            Ok(body) => Ok(parse::<Collection<T>>(body)?.value),
            Err(failure) => Err(self.user_scoped(failure, permission)),
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
        let idempotency = if call.method == Method::GET {
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
