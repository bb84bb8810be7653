//! `login.microsoftonline.com`: client-credential tokens (v2 and v1 endpoints) and the
//! multi-tenant admin consent page.

use std::time::{Duration, Instant};

use chrono::Utc;
use poem::Response;
use poem::http::{Method, StatusCode};
use serde_json::json;

use super::state::{Audience, CredentialError, IssuedToken, State};
use super::{
    ALPHANUMERIC, GRAPH_APP_ID, Incoming, MFA_CLIENT_APP_ID, Shared, html_escape, html_response,
    json_response, new_guid, pair, random_string, redirect,
};

/// Lifetime of every token, as Microsoft reports it.
const TOKEN_LIFETIME_SECONDS: u64 = 3599;

/// The roles offered on the consent page: `(form value, label, is an admin role)`.
const CONSENT_ROLES: &[(&str, &str, bool)] = &[
    ("global_admin", "Global Administrator", true),
    ("cloud_app_admin", "Cloud Application Administrator", true),
    ("user", "User (no admin role)", false),
];

pub(super) fn handle(shared: &Shared, incoming: Incoming) -> Response {
    let segments: Vec<&str> = incoming.segments.iter().map(String::as_str).collect();
    match (&incoming.method, segments.as_slice()) {
        (&Method::POST, [tenant, "oauth2", "v2.0", "token"]) => {
            token(shared, &incoming, tenant, TokenEndpoint::V2)
        }
        (&Method::POST, [tenant, "oauth2", "token"]) => {
            token(shared, &incoming, tenant, TokenEndpoint::V1)
        }
        (&Method::GET, [tenant, "v2.0", "adminconsent"]) => consent_page(shared, &incoming, tenant),
        (&Method::POST, [tenant, "v2.0", "adminconsent", "decision"]) => {
            consent_decision(shared, &incoming, tenant)
        }
        _ => super::plain(StatusCode::NOT_FOUND, "Not found"),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TokenEndpoint {
    /// `/oauth2/v2.0/token` with `scope`: Graph tokens.
    V2,
    /// `/oauth2/token` with `resource`: MFA connector tokens.
    V1,
}

/// A login error in Microsoft's shape.
struct LoginError {
    status: StatusCode,
    error: &'static str,
    code: u32,
    description: String,
}

impl LoginError {
    fn new(status: StatusCode, error: &'static str, code: u32, description: String) -> Self {
        LoginError {
            status,
            error,
            code,
            description,
        }
    }

    fn missing(parameter: &str) -> Self {
        LoginError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{parameter}'."),
        )
    }

    fn unknown_tenant(tenant: &str) -> Self {
        LoginError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID \
                 and are signing into the correct cloud. Check with your subscription \
                 administrator, this may happen if there are no active subscriptions for the \
                 tenant."
            ),
        )
    }

    fn app_not_found(client_id: &str, tenant: &str) -> Self {
        LoginError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory \
                 '{tenant}'. This can happen if the application has not been installed by the \
                 administrator of the tenant or consented to by any user in the tenant. You may \
                 have sent your authentication request to the wrong tenant."
            ),
        )
    }

    /// AADSTS500011: the scope or resource names no service principal Entra knows. The v2
    /// endpoint says `invalid_scope`, the v1 endpoint `invalid_resource`.
    fn resource_not_found(
        error: &'static str,
        resource: &str,
        state: &State,
        tenant_id: &str,
    ) -> Self {
        let tenant_name = state
            .tenant(tenant_id)
            .map(|t| t.display_name.clone())
            .unwrap_or_default();
        LoginError::new(
            StatusCode::BAD_REQUEST,
            error,
            500011,
            format!(
                "The resource principal named {resource} was not found in the tenant named \
                 {tenant_name}. This can happen if the application has not been installed by \
                 the administrator of the tenant or consented to by any user in the tenant. You \
                 might have sent your authentication request to the wrong tenant."
            ),
        )
    }

    fn from_credential(err: CredentialError, client_id: &str, tenant: &str) -> Self {
        match err {
            CredentialError::AppNotFound => LoginError::app_not_found(client_id, tenant),
            CredentialError::WrongSecret => LoginError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000215,
                format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request \
                     is the client secret value, not the client secret ID, for a secret added to \
                     app '{client_id}'."
                ),
            ),
            CredentialError::SecretExpired => LoginError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000222,
                format!(
                    "The provided client secret keys for app '{client_id}' are expired. Visit \
                     the Azure portal to create new keys for your app: \
                     https://aka.ms/NewClientSecret, or consider using certificate credentials \
                     for added security: https://aka.ms/certCreds."
                ),
            ),
        }
    }

    /// The JSON body, with the trace lines Microsoft appends to `error_description`.
    fn into_response(self) -> Response {
        let timestamp = Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
        let trace_id = new_guid();
        let correlation_id = new_guid();
        let body = json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}",
                self.code, self.description
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.code),
        });
        json_response(self.status, &body)
    }
}

fn token(shared: &Shared, incoming: &Incoming, tenant: &str, endpoint: TokenEndpoint) -> Response {
    match issue_token(shared, incoming, tenant, endpoint) {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

fn issue_token(
    shared: &Shared,
    incoming: &Incoming,
    tenant: &str,
    endpoint: TokenEndpoint,
) -> Result<Response, LoginError> {
    let mut state = shared.state();
    let tenant_id = resolve_token_tenant(&state, tenant)?;
    let form = incoming.form();
    let grant_type = pair(&form, "grant_type").ok_or_else(|| LoginError::missing("grant_type"))?;
    if grant_type != "client_credentials" {
        return Err(LoginError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{grant_type}'."),
        ));
    }
    let client_id = pair(&form, "client_id").ok_or_else(|| LoginError::missing("client_id"))?;
    let audience_value = match endpoint {
        TokenEndpoint::V2 => {
            let scope = pair(&form, "scope").ok_or_else(|| LoginError::missing("scope"))?;
            if !scope.ends_with("/.default") || scope.contains(' ') || scope == "/.default" {
                return Err(LoginError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    70011,
                    format!(
                        "The provided request must include a 'scope' input parameter. The \
                         provided value for the input parameter 'scope' is not valid. The scope \
                         {scope} is not valid. The .default scope is required for the client \
                         credentials flow."
                    ),
                ));
            }
            let resource = scope.trim_end_matches("/.default");
            // Entra knows Graph by its identifier (or its app id), never by an address such as
            // this sandbox's: a scope built from a configured base URL is refused.
            if !(resource.eq_ignore_ascii_case(&state.audiences.graph)
                || resource.eq_ignore_ascii_case(GRAPH_APP_ID))
            {
                return Err(LoginError::resource_not_found(
                    "invalid_scope",
                    resource,
                    &state,
                    &tenant_id,
                ));
            }
            scope.to_owned()
        }
        TokenEndpoint::V1 => {
            let resource =
                pair(&form, "resource").ok_or_else(|| LoginError::missing("resource"))?;
            if !resource
                .trim_end_matches('/')
                .eq_ignore_ascii_case(&state.audiences.connector)
            {
                return Err(LoginError::resource_not_found(
                    "invalid_resource",
                    resource,
                    &state,
                    &tenant_id,
                ));
            }
            resource.to_owned()
        }
    };
    let Some(secret) = pair(&form, "client_secret").filter(|s| !s.is_empty()) else {
        return Err(LoginError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000216,
            "'client_assertion', 'client_secret' or 'request' is required for the \
             'client_credentials' grant type."
                .to_owned(),
        ));
    };
    let permissions = state
        .authenticate(&tenant_id, client_id, secret, Utc::now(), Instant::now())
        .map_err(|err| LoginError::from_credential(err, client_id, &tenant_id))?;
    let audience = match endpoint {
        TokenEndpoint::V2 => Audience::Graph,
        TokenEndpoint::V1 => {
            // The connector only trusts the MFA client app. Chosen model: other apps with valid
            // credentials get AADSTS501051 (app not assigned to a role of the resource).
            if !client_id.eq_ignore_ascii_case(MFA_CLIENT_APP_ID) {
                return Err(LoginError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    501051,
                    format!(
                        "Application '{client_id}' is not assigned to a role for the application \
                         '{audience_value}'."
                    ),
                ));
            }
            Audience::MfaConnector
        }
    };
    let access_token = random_string(64, ALPHANUMERIC);
    state.issue_token(
        access_token.clone(),
        IssuedToken {
            tenant_id,
            client_id: client_id.to_owned(),
            audience,
            permissions,
            expires_at: Instant::now() + Duration::from_secs(TOKEN_LIFETIME_SECONDS),
        },
    );
    drop(state);
    let body = match endpoint {
        TokenEndpoint::V2 => json!({
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME_SECONDS,
            "ext_expires_in": TOKEN_LIFETIME_SECONDS,
            "access_token": access_token,
        }),
        // The v1 endpoint really sends its numbers as strings.
        TokenEndpoint::V1 => {
            let now = Utc::now().timestamp();
            json!({
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME_SECONDS.to_string(),
                "ext_expires_in": TOKEN_LIFETIME_SECONDS.to_string(),
                "expires_on": (now + TOKEN_LIFETIME_SECONDS as i64).to_string(),
                "not_before": now.to_string(),
                "resource": audience_value,
                "access_token": access_token,
            })
        }
    };
    Ok(json_response(StatusCode::OK, &body))
}

/// The tenant GUID for a token request. `common` and `organizations` cannot name the tenant
/// of an app-only token; chosen answer: AADSTS90002 like any unknown tenant (Microsoft's exact
/// code for this case was not checked).
fn resolve_token_tenant(state: &State, tenant: &str) -> Result<String, LoginError> {
    state
        .tenant(tenant)
        .map(|t| t.id.clone())
        .ok_or_else(|| LoginError::unknown_tenant(tenant))
}

// ---------------------------------------------------------------------------------------
// Admin consent
// ---------------------------------------------------------------------------------------

/// The parameters of a consent request, checked.
struct ConsentRequest {
    client_id: String,
    app_name: String,
    permissions: Vec<String>,
    scope: String,
    redirect_uri: url::Url,
    state: Option<String>,
    /// The tenants the admin may pick: one when the URL names a tenant, all for `common`.
    tenants: Vec<(String, String)>,
}

fn is_any_tenant(tenant: &str) -> bool {
    tenant.eq_ignore_ascii_case("common") || tenant.eq_ignore_ascii_case("organizations")
}

/// Validates what the consent page and its decision both need; errors are AADSTS pages.
fn consent_request(
    state: &State,
    tenant: &str,
    params: &[(String, String)],
) -> Result<ConsentRequest, LoginError> {
    let tenants: Vec<(String, String)> = if is_any_tenant(tenant) {
        state
            .tenants
            .iter()
            .map(|t| (t.id.clone(), t.display_name.clone()))
            .collect()
    } else {
        match state.tenant(tenant) {
            Some(t) => vec![(t.id.clone(), t.display_name.clone())],
            None => return Err(LoginError::unknown_tenant(tenant)),
        }
    };
    let client_id = pair(params, "client_id")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| LoginError::missing("client_id"))?;
    let Some(registration) = state.registration(client_id) else {
        let where_ = tenants
            .first()
            .map(|t| t.0.clone())
            .unwrap_or_else(|| tenant.to_owned());
        return Err(LoginError::app_not_found(client_id, &where_));
    };
    let raw_redirect = pair(params, "redirect_uri").unwrap_or("");
    let redirect_uri = url::Url::parse(raw_redirect)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| {
            LoginError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                50011,
                format!(
                    "The redirect URI '{raw_redirect}' specified in the request does not match \
                     the redirect URIs configured for the application '{client_id}'."
                ),
            )
        })?;
    let default_scope = format!("{}/.default", state.audiences.graph);
    let scope = pair(params, "scope").unwrap_or(&default_scope).to_owned();
    // Consent is granted for a service principal too, so a scope naming an address instead of
    // Graph's identifier is refused here as at the token endpoint.
    let resource = scope.strip_suffix("/.default").unwrap_or(&scope);
    if !(resource.eq_ignore_ascii_case(&state.audiences.graph)
        || resource.eq_ignore_ascii_case(GRAPH_APP_ID))
    {
        let where_ = tenants.first().map(|t| t.0.clone()).unwrap_or_default();
        return Err(LoginError::resource_not_found(
            "invalid_scope",
            resource,
            state,
            &where_,
        ));
    }
    Ok(ConsentRequest {
        client_id: registration.client_id.clone(),
        app_name: registration.display_name.clone(),
        permissions: registration.permissions.clone(),
        scope,
        redirect_uri,
        state: pair(params, "state").map(str::to_owned),
        tenants,
    })
}

fn consent_page(shared: &Shared, incoming: &Incoming, tenant: &str) -> Response {
    let state = shared.state();
    let request = match consent_request(&state, tenant, &incoming.query) {
        Ok(request) => request,
        Err(err) => return error_page(&err),
    };
    drop(state);
    let permissions: String = request
        .permissions
        .iter()
        .map(|p| {
            format!(
                "<li><strong>{}</strong><br><span class=\"hint\">{}</span></li>",
                html_escape(permission_description(p)),
                html_escape(p)
            )
        })
        .collect();
    let tenants: String = request
        .tenants
        .iter()
        .map(|(id, name)| {
            format!(
                "<option value=\"{}\">{} ({})</option>",
                html_escape(id),
                html_escape(name),
                html_escape(id)
            )
        })
        .collect();
    let roles: String = CONSENT_ROLES
        .iter()
        .map(|(value, label, _)| {
            format!(
                "<option value=\"{}\">{}</option>",
                html_escape(value),
                html_escape(label)
            )
        })
        .collect();
    let hidden = |name: &str, value: &str| {
        format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            html_escape(name),
            html_escape(value)
        )
    };
    let mut hidden_fields = hidden("client_id", &request.client_id);
    hidden_fields.push_str(&hidden("scope", &request.scope));
    hidden_fields.push_str(&hidden("redirect_uri", request.redirect_uri.as_str()));
    if let Some(state) = &request.state {
        hidden_fields.push_str(&hidden("state", state));
    }
    let action = format!(
        "/login/{}/v2.0/adminconsent/decision",
        url::form_urlencoded::byte_serialize(tenant.as_bytes()).collect::<String>()
    );
    let html = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Permissions requested - Microsoft (sandbox)</title>
<style>
body {{ font-family: "Segoe UI", system-ui, sans-serif; background: #f2f2f2; margin: 0; }}
main {{ max-width: 440px; margin: 40px auto; background: #fff; padding: 32px 40px;
        box-shadow: 0 2px 6px rgba(0,0,0,.2); }}
h1 {{ font-size: 1.5rem; font-weight: 600; margin: 0 0 8px; }}
.app {{ font-weight: 600; }}
.hint {{ color: #555; font-size: .85rem; }}
ul {{ padding-left: 20px; }} li {{ margin-bottom: 8px; }}
label {{ display: block; margin-top: 12px; font-weight: 600; }}
select {{ width: 100%; padding: 6px; margin-top: 4px; }}
.buttons {{ display: flex; gap: 8px; justify-content: flex-end; margin-top: 24px; }}
button {{ padding: 8px 20px; font-size: 1rem; border: 1px solid #8a8a8a; background: #fff; }}
button.primary {{ background: #0067b8; color: #fff; border-color: #0067b8; }}
.sandbox {{ color: #a4262c; font-size: .8rem; }}
</style>
</head>
<body>
<main>
<p class="sandbox">Sandbox: this page stands in for the Microsoft sign-in page.</p>
<h1>Permissions requested</h1>
<p><span class="app">{app_name}</span> (app id {client_id}) wants to:</p>
<ul>{permissions}</ul>
<p class="hint">Accepting grants these permissions for your whole organization.</p>
<form method="post" action="{action}">
{hidden_fields}
<label for="tenant">Organization (signed-in admin's tenant)</label>
<select id="tenant" name="tenant">{tenants}</select>
<label for="role">Your admin role</label>
<select id="role" name="role">{roles}</select>
<div class="buttons">
<button type="submit" name="decision" value="cancel">Cancel</button>
<button type="submit" name="decision" value="accept" class="primary">Accept</button>
</div>
</form>
</main>
</body>
</html>
"#,
        app_name = html_escape(&request.app_name),
        client_id = html_escape(&request.client_id),
        action = html_escape(&action),
    );
    html_response(StatusCode::OK, html)
}

fn consent_decision(shared: &Shared, incoming: &Incoming, tenant: &str) -> Response {
    let form = incoming.form();
    let mut state = shared.state();
    let request = match consent_request(&state, tenant, &form) {
        Ok(request) => request,
        Err(err) => return error_page(&err),
    };
    let mut target = request.redirect_uri.clone();
    if pair(&form, "decision") != Some("accept") {
        append_error(
            &mut target,
            "AADSTS65004: User declined to consent to access the app.",
            &request.state,
        );
        return redirect(StatusCode::FOUND, target.as_str());
    }
    let role = pair(&form, "role").unwrap_or("");
    let is_admin = CONSENT_ROLES
        .iter()
        .any(|(value, _, admin)| *value == role && *admin);
    if !is_admin {
        append_error(
            &mut target,
            "AADSTS90094: The grant requires admin permission.",
            &request.state,
        );
        return redirect(StatusCode::FOUND, target.as_str());
    }
    let chosen = pair(&form, "tenant").unwrap_or("");
    let Some(tenant_id) = request
        .tenants
        .iter()
        .find(|(id, _)| id.eq_ignore_ascii_case(chosen))
        .map(|(id, _)| id.clone())
    else {
        return error_page(&LoginError::unknown_tenant(chosen));
    };
    state.consent(&tenant_id, &request.client_id);
    drop(state);
    // Microsoft lists the granted permissions, each prefixed with the requested resource.
    let resource = request
        .scope
        .strip_suffix(".default")
        .unwrap_or("https://graph.microsoft.com/");
    let granted: Vec<String> = request
        .permissions
        .iter()
        .map(|p| format!("{resource}{p}"))
        .collect();
    {
        let mut query = target.query_pairs_mut();
        query.append_pair("admin_consent", "True");
        query.append_pair("tenant", &tenant_id);
        if let Some(state) = &request.state {
            query.append_pair("state", state);
        }
        query.append_pair("scope", &granted.join(" "));
    }
    redirect(StatusCode::FOUND, target.as_str())
}

fn append_error(target: &mut url::Url, description: &str, state: &Option<String>) {
    let mut query = target.query_pairs_mut();
    query.append_pair("error", "access_denied");
    query.append_pair("error_description", description);
    if let Some(state) = state {
        query.append_pair("state", state);
    }
}

/// Microsoft's sign-in error page, reduced: the AADSTS line is what admins search for.
fn error_page(err: &LoginError) -> Response {
    let html = format!(
        r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Sign in to your account - error</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 560px; margin: 40px auto;">
<h1>Sorry, but we're having trouble signing you in.</h1>
<p role="alert">AADSTS{code}: {description}</p>
</body>
</html>
"#,
        code = err.code,
        description = html_escape(&err.description),
    );
    html_response(err.status, html)
}

/// What the consent page says each permission allows (the wording of the real page).
fn permission_description(permission: &str) -> &'static str {
    match permission {
        "User.Read.All" => "Read all users' full profiles",
        "User.ReadWrite.All" => "Read and write all users' full profiles",
        "UserAuthenticationMethod.Read.All" => "Read all users' authentication methods",
        "UserAuthenticationMethod.ReadWrite.All" => {
            "Read and write all users' authentication methods"
        }
        "User-PasswordProfile.ReadWrite.All" => "Read and write all password profiles",
        "Directory.Read.All" => "Read directory data",
        "Organization.Read.All" => "Read organization information",
        "Application.ReadWrite.All" => "Read and write all applications",
        "RoleManagement.Read.Directory" => "Read all directory RBAC settings",
        "RoleManagement.ReadWrite.Directory" => "Read and write all directory RBAC settings",
        _ => "Application permission",
    }
}
