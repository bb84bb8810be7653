//! `graph.microsoft.com`: the `v1.0` and `beta` calls Vouch makes, with Graph's permission
//! checks and error bodies.

use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use poem::Response;
use poem::http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::filter::Filter;
use super::state::{Audience, IssuedToken, ServicePrincipal, SpPassword, State, Tenant, User};
use super::{Incoming, Shared, json_response, new_guid, random_string};

/// The `code` Graph answers when a password fails the complexity policy.
///
/// UNCONFIRMED: the reference gives only the message; no primary source showed the code.
/// `Request_BadRequest` is our choice (it is what Graph uses for the other property
/// validation failures of `PATCH /users`). Change it here only.
pub const PASSWORD_COMPLEXITY_ERROR_CODE: &str = "Request_BadRequest";
/// The message Graph answers when a password fails the complexity policy.
pub const PASSWORD_COMPLEXITY_MESSAGE: &str = "The specified password does not comply with password complexity requirements. Please provide a different password.";
/// The message Graph answers when the new password is the user's current (or a recent) one.
///
/// UNCONFIRMED: no primary source showed how Graph answers an admin setting the password a
/// user already has. The sandbox's choice: refused with the complexity policy's 400 and code
/// (a password-history rule, worded as such), so Vouch's repeat of a password change whose
/// answer was lost sees this. Vouch reads the code only, and treats a 204 the same way.
pub const PASSWORD_RECENTLY_USED_MESSAGE: &str =
    "The specified password has been used recently. Please provide a different password.";
/// The message for any change to a user mastered on-premises.
pub const ON_PREMISES_MESSAGE: &str = "Unable to update the specified properties for on-premises mastered Directory Sync objects or objects currently undergoing migration.";
const INSUFFICIENT_PRIVILEGES: &str = "Insufficient privileges to complete the operation.";

const USER_READ: &[&str] = &[
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const AUTH_METHODS_READ: &[&str] = &[
    "UserAuthenticationMethod.Read.All",
    "UserAuthenticationMethod.ReadWrite.All",
];
const AUTH_METHODS_WRITE: &[&str] = &["UserAuthenticationMethod.ReadWrite.All"];
const ROLES_READ: &[&str] = &[
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "RoleManagement.Read.Directory",
    "RoleManagement.ReadWrite.Directory",
];
const PASSWORD_WRITE: &[&str] = &["User-PasswordProfile.ReadWrite.All", "User.ReadWrite.All"];
/// Needed on top of [`PASSWORD_WRITE`] to reset a user who holds a directory role.
const PRIVILEGED_PASSWORD_WRITE: &str = "RoleManagement.ReadWrite.Directory";
const APPLICATIONS_READ: &[&str] = &[
    "Application.Read.All",
    "Application.ReadWrite.All",
    "Directory.Read.All",
];
/// UNCONFIRMED least privilege (reference section 6): we require Application.ReadWrite.All.
const APPLICATIONS_WRITE: &[&str] = &["Application.ReadWrite.All"];
const ORGANIZATION_READ: &[&str] = &["Organization.Read.All", "Directory.Read.All"];
const ORGANIZATION_PROFILE_READ: &[&str] = &[
    "Organization.Read.All",
    "Directory.Read.All",
    "User.Read.All",
];

/// Properties a user has in this sandbox, in Graph's order.
const USER_PROPERTIES: &[&str] = &[
    "id",
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "accountEnabled",
    "onPremisesSyncEnabled",
    "proxyAddresses",
];
/// What Graph returns for a user without `$select`: notably NOT `accountEnabled`,
/// `onPremisesSyncEnabled` nor `proxyAddresses`, which a client must ask for.
const USER_DEFAULT_PROPERTIES: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];

/// The default MFA methods Graph accepts in `signInPreferences`.
const PREFERRED_METHODS: &[&str] = &[
    "push",
    "oath",
    "voiceMobile",
    "voiceAlternateMobile",
    "voiceOffice",
    "sms",
];

/// Graph's fixed ids of the three phone method slots.
fn phone_method_id(phone_type: &str) -> &'static str {
    match phone_type {
        "alternateMobile" => "b6332ec1-7057-4abe-9331-3d72feddfe41",
        "office" => "e37fc753-ff3b-4958-9484-eaa9425c82bc",
        _ => "3179e48a-750b-4051-897c-87b9720928f7",
    }
}

/// A Graph error: status, `code` and `message` of the body.
#[derive(Debug)]
pub(super) struct GraphError {
    pub(super) status: StatusCode,
    pub(super) code: &'static str,
    pub(super) message: String,
}

impl GraphError {
    pub(super) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        GraphError {
            status,
            code,
            message: message.into(),
        }
    }

    fn token(message: &str) -> Self {
        GraphError::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            message,
        )
    }

    fn denied() -> Self {
        GraphError::new(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            INSUFFICIENT_PRIVILEGES,
        )
    }

    fn not_found(id: &str) -> Self {
        GraphError::new(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            format!(
                "Resource '{id}' does not exist or one of its queried reference-property objects \
                 are not present."
            ),
        )
    }

    pub(super) fn bad_request(message: impl Into<String>) -> Self {
        GraphError::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    fn request_bad_request(message: impl Into<String>) -> Self {
        GraphError::new(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
    }

    fn unreadable_body() -> Self {
        GraphError::bad_request(
            "Unable to read JSON request payload. Please ensure Content-Type header is set and \
             payload is of valid JSON format.",
        )
    }
}

/// A successful answer.
pub(super) enum Reply {
    Json(StatusCode, Value),
    NoContent,
}

pub(super) type GraphResult = Result<Reply, GraphError>;

pub(super) fn handle(shared: &Shared, incoming: Incoming) -> Response {
    let request_id = new_guid();
    let client_request_id = client_request_id(&incoming);
    let result = {
        let mut state = shared.state();
        route(&mut state, &incoming)
    };
    let mut response = match result {
        Ok(Reply::Json(status, body)) => json_response(status, &body),
        Ok(Reply::NoContent) => Response::builder().status(StatusCode::NO_CONTENT).body(()),
        Err(err) => json_response(
            err.status,
            &error_body(&err, &request_id, &client_request_id),
        ),
    };
    let headers = response.headers_mut();
    if let Ok(value) = request_id.parse() {
        headers.insert("request-id", value);
    }
    if let Ok(value) = client_request_id.parse() {
        headers.insert("client-request-id", value);
    }
    response
}

/// Graph's error body: `code`, `message` and the ids support asks for.
pub(super) fn error_body(err: &GraphError, request_id: &str, client_request_id: &str) -> Value {
    json!({
        "error": {
            "code": err.code,
            "message": err.message,
            "innerError": {
                "date": Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
                "request-id": request_id,
                "client-request-id": client_request_id,
            }
        }
    })
}

/// The caller's `client-request-id` when it is a plain id, else a new one (Graph echoes it).
pub(super) fn client_request_id(incoming: &Incoming) -> String {
    incoming
        .header("client-request-id")
        .filter(|id| {
            (1..=64).contains(&id.len())
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .map(str::to_owned)
        .unwrap_or_else(new_guid)
}

/// What a token allows: its tenant and permissions.
pub(super) struct Caller {
    tenant_id: String,
    permissions: Vec<String>,
}

impl Caller {
    fn require(&self, any_of: &[&str]) -> Result<(), GraphError> {
        if self.has_any(any_of) {
            Ok(())
        } else {
            Err(GraphError::denied())
        }
    }

    fn has_any(&self, any_of: &[&str]) -> bool {
        any_of
            .iter()
            .any(|needed| self.permissions.iter().any(|p| p == needed))
    }
}

pub(super) fn authorize(state: &State, incoming: &Incoming) -> Result<Caller, GraphError> {
    let token = incoming
        .bearer()
        .ok_or_else(|| GraphError::token("Access token is empty."))?;
    let issued: &IssuedToken = state
        .token(token)
        .ok_or_else(|| GraphError::token("Access token validation failure."))?;
    if issued.audience != Audience::Graph {
        return Err(GraphError::token(
            "Access token validation failure. Invalid audience.",
        ));
    }
    if issued.expires_at <= Instant::now() {
        return Err(GraphError::token(
            "Lifetime validation failed, the token is expired.",
        ));
    }
    Ok(Caller {
        tenant_id: issued.tenant_id.clone(),
        permissions: issued.permissions.clone(),
    })
}

/// The resources the sandbox serves (method aside).
enum Resource<'a> {
    Users,
    User(&'a str),
    PhoneMethods(&'a str),
    AuthenticatorMethods(&'a str),
    SignInPreferences(&'a str),
    DirectoryRoles(&'a str),
    ServicePrincipals,
    AddPassword(&'a str),
    SubscribedSkus,
    Organization,
}

pub(super) fn route(state: &mut State, incoming: &Incoming) -> GraphResult {
    let caller = authorize(state, incoming)?;
    let segments: Vec<&str> = incoming.segments.iter().map(String::as_str).collect();
    let Some((version, path)) = segments.split_first() else {
        return Err(GraphError::bad_request("Invalid version."));
    };
    let beta = match *version {
        "v1.0" => false,
        "beta" => true,
        _ => return Err(GraphError::bad_request("Invalid version.")),
    };
    let resource = match path {
        ["users"] => Resource::Users,
        ["users", id] => Resource::User(id),
        ["users", id, "authentication", "phoneMethods"] => Resource::PhoneMethods(id),
        [
            "users",
            id,
            "authentication",
            "microsoftAuthenticatorMethods",
        ] => Resource::AuthenticatorMethods(id),
        // Only in beta, as the reference says.
        ["users", id, "authentication", "signInPreferences"] if beta => {
            Resource::SignInPreferences(id)
        }
        ["users", id, "memberOf", "microsoft.graph.directoryRole"] => Resource::DirectoryRoles(id),
        ["servicePrincipals"] => Resource::ServicePrincipals,
        ["servicePrincipals", id, "addPassword"] => Resource::AddPassword(id),
        ["subscribedSkus"] => Resource::SubscribedSkus,
        ["organization"] => Resource::Organization,
        ["me", ..] => {
            return Err(GraphError::bad_request(
                "/me request is only valid with delegated authentication flow.",
            ));
        }
        _ => {
            let segment = path.last().copied().unwrap_or("");
            return Err(GraphError::bad_request(format!(
                "Resource not found for the segment '{segment}'."
            )));
        }
    };
    let version = *version;
    let tenant_id = caller.tenant_id.clone();
    let tenant = state
        .tenant_mut(&tenant_id)
        .ok_or_else(|| GraphError::not_found(&tenant_id))?;
    let method = &incoming.method;
    match (method, resource) {
        (&Method::GET, Resource::Users) => list_users(&caller, tenant, incoming, version),
        (&Method::GET, Resource::User(id)) => get_user(&caller, tenant, incoming, id, version),
        (&Method::PATCH, Resource::User(id)) => patch_user(&caller, tenant, incoming, id),
        (&Method::GET, Resource::PhoneMethods(id)) => phone_methods(&caller, tenant, id, version),
        (&Method::GET, Resource::AuthenticatorMethods(id)) => {
            authenticator_methods(&caller, tenant, id, version)
        }
        (&Method::GET, Resource::SignInPreferences(id)) => {
            get_sign_in_preferences(&caller, tenant, id)
        }
        (&Method::PATCH, Resource::SignInPreferences(id)) => {
            patch_sign_in_preferences(&caller, tenant, incoming, id)
        }
        (&Method::GET, Resource::DirectoryRoles(id)) => {
            directory_roles(&caller, tenant, id, version)
        }
        (&Method::GET, Resource::ServicePrincipals) => {
            list_service_principals(&caller, tenant, incoming, version)
        }
        (&Method::POST, Resource::ServicePrincipals) => {
            let app_id = service_principal_app_id(incoming)?;
            create_service_principal(&caller, state, &tenant_id, app_id, version)
        }
        (&Method::POST, Resource::AddPassword(id)) => {
            let delay = state.propagation_delay;
            let tenant = state
                .tenant_mut(&tenant_id)
                .ok_or_else(|| GraphError::not_found(&tenant_id))?;
            add_password(&caller, tenant, incoming, id, delay, version)
        }
        (&Method::GET, Resource::SubscribedSkus) => subscribed_skus(&caller, tenant, version),
        (&Method::GET, Resource::Organization) => organization(&caller, tenant, version),
        _ => Err(GraphError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            "Specified HTTP method is not allowed for the request uri.",
        )),
    }
}

fn context(version: &str, fragment: &str) -> String {
    format!("https://graph.microsoft.com/{version}/$metadata#{fragment}")
}

/// Parses a JSON object body (an empty body counts as `{}` where `empty_ok`).
fn object_body(incoming: &Incoming, empty_ok: bool) -> Result<Map<String, Value>, GraphError> {
    if empty_ok && incoming.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(&incoming.body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(GraphError::unreadable_body()),
    }
}

/// Keeps the `$select`ed properties (case-insensitive names; unknown ones are a 400), or
/// `defaults` without `$select`. Returns the object and the select list for `@odata.context`.
fn project(
    full: &Map<String, Value>,
    select: Option<&str>,
    defaults: &[&str],
    type_name: &str,
) -> Result<Map<String, Value>, GraphError> {
    let wanted: Vec<String> = match select.map(str::trim).filter(|s| !s.is_empty()) {
        None => defaults.iter().map(|s| (*s).to_owned()).collect(),
        Some(list) => {
            let mut wanted = Vec::new();
            for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                let Some(canonical) = full.keys().find(|k| k.eq_ignore_ascii_case(name)) else {
                    return Err(GraphError::bad_request(format!(
                        "Parsing OData Select and Expand failed: Could not find a property named \
                         '{name}' on type '{type_name}'."
                    )));
                };
                wanted.push(canonical.clone());
            }
            wanted
        }
    };
    let mut out = Map::new();
    for name in wanted {
        if let Some(value) = full.get(&name) {
            out.insert(name, value.clone());
        }
    }
    Ok(out)
}

fn user_json(user: &User) -> Map<String, Value> {
    let mut names = user.display_name.splitn(2, ' ');
    let given = names.next().unwrap_or("");
    let surname = names.next().unwrap_or("");
    let object = json!({
        "id": user.id,
        "businessPhones": [],
        "displayName": user.display_name,
        "givenName": given,
        "jobTitle": null,
        "mail": user.mail,
        "mobilePhone": user.mobile_phone,
        "officeLocation": null,
        "preferredLanguage": "en-US",
        "surname": surname,
        "userPrincipalName": user.upn,
        "accountEnabled": user.account_enabled,
        // Graph gives null (not false) for cloud-only users.
        "onPremisesSyncEnabled": if user.on_premises_sync { Value::Bool(true) } else { Value::Null },
        "proxyAddresses": user.proxy_addresses,
    });
    debug_assert!(USER_PROPERTIES.iter().all(|p| object.get(p).is_some()));
    match object {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn find_user<'t>(tenant: &'t Tenant, id: &str) -> Result<&'t User, GraphError> {
    tenant.user(id).ok_or_else(|| GraphError::not_found(id))
}

fn list_users(caller: &Caller, tenant: &Tenant, incoming: &Incoming, version: &str) -> GraphResult {
    caller.require(USER_READ)?;
    let filter = match incoming.query_param("$filter") {
        Some(text) => Some(Filter::parse(text).map_err(|reason| {
            GraphError::bad_request(format!("Invalid filter clause: {reason}"))
        })?),
        None => None,
    };
    let count_requested = incoming
        .query_param("$count")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if let Some(filter) = &filter {
        for clause in filter.clauses() {
            let supported = match clause {
                super::filter::Clause::Eq { property, .. } => {
                    ["id", "userPrincipalName", "mail", "displayName"]
                        .iter()
                        .any(|p| p.eq_ignore_ascii_case(property))
                }
                super::filter::Clause::Any { property, .. } => {
                    property.eq_ignore_ascii_case("proxyAddresses")
                }
            };
            if !supported {
                return Err(GraphError::new(
                    StatusCode::BAD_REQUEST,
                    "Request_UnsupportedQuery",
                    format!(
                        "Unsupported or invalid query filter clause specified for property '{}' \
                         of resource 'User'.",
                        clause.property()
                    ),
                ));
            }
        }
        // proxyAddresses/any(...) is an "advanced query": it needs both of these.
        let eventual = incoming
            .header("ConsistencyLevel")
            .is_some_and(|v| v.eq_ignore_ascii_case("eventual"));
        if filter.uses_lambda() && !(eventual && count_requested) {
            return Err(GraphError::new(
                StatusCode::BAD_REQUEST,
                "Request_UnsupportedQuery",
                "Unsupported or invalid query filter clause specified for property \
                 'proxyAddresses' of resource 'User'.",
            ));
        }
    }
    // `$search="displayName:dan" OR "mail:dan"`: an advanced query too; a term matches a
    // property that, or one of whose words, starts with it (case-insensitive), as Graph
    // tokenises.
    let search = match incoming.query_param("$search") {
        Some(text) => {
            let eventual = incoming
                .header("ConsistencyLevel")
                .is_some_and(|v| v.eq_ignore_ascii_case("eventual"));
            if !eventual {
                return Err(GraphError::bad_request(
                    "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'",
                ));
            }
            Some(search_terms(text).map_err(GraphError::bad_request)?)
        }
        None => None,
    };
    let top = match incoming.query_param("$top") {
        None => 100,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=999).contains(&n) => n,
            _ => {
                return Err(GraphError::bad_request(format!(
                    "Invalid page size specified: '{text}'. Must be between 1 and 999 inclusive."
                )));
            }
        },
    };
    let select = incoming.query_param("$select");
    let matching: Vec<&User> = tenant
        .users
        .iter()
        .filter(|user| {
            search.as_ref().is_none_or(|terms| {
                terms.iter().any(|(property, term)| {
                    scalar_property(user, property).is_some_and(|value| {
                        let value = value.to_lowercase();
                        value.starts_with(term.as_str())
                            || value
                                .split(|c: char| !c.is_alphanumeric())
                                .any(|word| word.starts_with(term.as_str()))
                    })
                })
            })
        })
        .filter(|user| {
            filter.as_ref().is_none_or(|f| {
                f.matches(
                    |property| scalar_property(user, property),
                    |property| {
                        if property.eq_ignore_ascii_case("proxyAddresses") {
                            user.proxy_addresses.clone()
                        } else {
                            Vec::new()
                        }
                    },
                )
            })
        })
        .collect();
    let total = matching.len();
    let mut value = Vec::new();
    for user in matching.into_iter().take(top) {
        value.push(Value::Object(project(
            &user_json(user),
            select,
            USER_DEFAULT_PROPERTIES,
            "microsoft.graph.user",
        )?));
    }
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        Value::String(context(version, &entity_set("users", select))),
    );
    if count_requested {
        body.insert("@odata.count".into(), json!(total));
    }
    body.insert("value".into(), Value::Array(value));
    Ok(Reply::Json(StatusCode::OK, Value::Object(body)))
}

/// The `"property:term"` clauses of a `$search` joined by `OR`, terms lower-cased.
fn search_terms(text: &str) -> Result<Vec<(String, String)>, String> {
    text.split(" OR ")
        .map(|clause| {
            let inner = clause
                .trim()
                .strip_prefix('"')
                .and_then(|c| c.strip_suffix('"'))
                .ok_or_else(|| format!("Syntax error: '{clause}' is not a quoted clause"))?;
            let (property, term) = inner
                .split_once(':')
                .ok_or_else(|| format!("Syntax error: '{clause}' names no property"))?;
            Ok((property.to_owned(), term.trim().to_lowercase()))
        })
        .collect()
}

fn entity_set(name: &str, select: Option<&str>) -> String {
    match select {
        Some(list) if !list.trim().is_empty() => format!("{name}({list})"),
        _ => name.to_owned(),
    }
}

fn scalar_property(user: &User, property: &str) -> Option<String> {
    match property.to_ascii_lowercase().as_str() {
        "id" => Some(user.id.clone()),
        "userprincipalname" => Some(user.upn.clone()),
        "mail" => user.mail.clone(),
        "displayname" => Some(user.display_name.clone()),
        _ => None,
    }
}

fn get_user(
    caller: &Caller,
    tenant: &Tenant,
    incoming: &Incoming,
    id: &str,
    version: &str,
) -> GraphResult {
    caller.require(USER_READ)?;
    let user = find_user(tenant, id)?;
    let select = incoming.query_param("$select");
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        Value::String(context(
            version,
            &format!("{}/$entity", entity_set("users", select)),
        )),
    );
    body.extend(project(
        &user_json(user),
        select,
        USER_DEFAULT_PROPERTIES,
        "microsoft.graph.user",
    )?);
    Ok(Reply::Json(StatusCode::OK, Value::Object(body)))
}

/// Whether a password meets the (sandbox's model of the) Entra complexity policy: 8 to 256
/// characters, at least three of lower case / upper case / digit / symbol, and not
/// containing the user's UPN local part.
pub(super) fn password_is_complex(password: &str, upn: &str) -> bool {
    let length = password.chars().count();
    if !(8..=256).contains(&length) {
        return false;
    }
    let classes = [
        password.chars().any(|c| c.is_lowercase()),
        password.chars().any(|c| c.is_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_alphanumeric()),
    ];
    if classes.iter().filter(|present| **present).count() < 3 {
        return false;
    }
    let local_part = upn.split('@').next().unwrap_or("").to_lowercase();
    local_part.is_empty() || !password.to_lowercase().contains(&local_part)
}

fn patch_user(caller: &Caller, tenant: &mut Tenant, incoming: &Incoming, id: &str) -> GraphResult {
    let body = object_body(incoming, false)?;
    let wants_password = body.contains_key("passwordProfile");
    if wants_password {
        caller.require(PASSWORD_WRITE)?;
    } else {
        caller.require(&["User.ReadWrite.All", "Directory.ReadWrite.All"])?;
    }
    let user = tenant
        .user_mut(id)
        .ok_or_else(|| GraphError::not_found(id))?;
    if wants_password && !user.roles.is_empty() && !caller.has_any(&[PRIVILEGED_PASSWORD_WRITE]) {
        return Err(GraphError::denied());
    }
    if user.on_premises_sync {
        return Err(GraphError::request_bad_request(ON_PREMISES_MESSAGE));
    }
    let mut new_password = None;
    let mut account_enabled = None;
    for (name, value) in &body {
        match (name.as_str(), value) {
            ("passwordProfile", Value::Object(profile)) => {
                let Some(password) = profile.get("password").and_then(Value::as_str) else {
                    return Err(GraphError::request_bad_request(
                        "Invalid value specified for property 'passwordProfile' of resource \
                         'User'.",
                    ));
                };
                // Chosen default when the flag is left out: false.
                let force = match profile.get("forceChangePasswordNextSignIn") {
                    None | Some(Value::Null) => false,
                    Some(Value::Bool(force)) => *force,
                    Some(_) => return Err(GraphError::unreadable_body()),
                };
                if user
                    .password
                    .as_ref()
                    .is_some_and(|(current, _)| current == password)
                {
                    return Err(GraphError::new(
                        StatusCode::BAD_REQUEST,
                        PASSWORD_COMPLEXITY_ERROR_CODE,
                        PASSWORD_RECENTLY_USED_MESSAGE,
                    ));
                }
                if !password_is_complex(password, &user.upn) {
                    return Err(GraphError::new(
                        StatusCode::BAD_REQUEST,
                        PASSWORD_COMPLEXITY_ERROR_CODE,
                        PASSWORD_COMPLEXITY_MESSAGE,
                    ));
                }
                new_password = Some((password.to_owned(), force));
            }
            ("accountEnabled", Value::Bool(enabled)) => account_enabled = Some(*enabled),
            ("passwordProfile" | "accountEnabled", _) => {
                return Err(GraphError::unreadable_body());
            }
            (other, _) => {
                return Err(GraphError::bad_request(format!(
                    "Property '{other}' is not supported by the sandbox for update."
                )));
            }
        }
    }
    if let Some(password) = new_password {
        user.password = Some(password);
    }
    if let Some(enabled) = account_enabled {
        user.account_enabled = enabled;
    }
    Ok(Reply::NoContent)
}

fn phone_methods(caller: &Caller, tenant: &Tenant, id: &str, version: &str) -> GraphResult {
    caller.require(AUTH_METHODS_READ)?;
    let user = find_user(tenant, id)?;
    let value: Vec<Value> = user
        .phone_methods
        .iter()
        .map(|phone| {
            json!({
                "id": phone_method_id(phone.phone_type),
                "phoneNumber": phone.number,
                "phoneType": phone.phone_type,
                "smsSignInState": "notConfigured",
            })
        })
        .collect();
    Ok(Reply::Json(
        StatusCode::OK,
        json!({
            "@odata.context": context(version, &format!("users('{}')/authentication/phoneMethods", user.id)),
            "value": value,
        }),
    ))
}

fn authenticator_methods(caller: &Caller, tenant: &Tenant, id: &str, version: &str) -> GraphResult {
    caller.require(AUTH_METHODS_READ)?;
    let user = find_user(tenant, id)?;
    let value: Vec<Value> = user
        .authenticator
        .iter()
        .map(|device| {
            json!({
                "id": device.id,
                "displayName": device.display_name,
                "deviceTag": "SoftwareTokenActivated",
                "phoneAppVersion": "6.8.7",
                "createdDateTime": device.created.to_rfc3339_opts(SecondsFormat::Secs, true),
            })
        })
        .collect();
    Ok(Reply::Json(
        StatusCode::OK,
        json!({
            "@odata.context": context(version, &format!("users('{}')/authentication/microsoftAuthenticatorMethods", user.id)),
            "value": value,
        }),
    ))
}

fn get_sign_in_preferences(caller: &Caller, tenant: &Tenant, id: &str) -> GraphResult {
    caller.require(AUTH_METHODS_READ)?;
    let user = find_user(tenant, id)?;
    Ok(Reply::Json(
        StatusCode::OK,
        json!({
            "@odata.context": context("beta", &format!("users('{}')/authentication/signInPreferences", user.id)),
            "isSystemPreferredAuthenticationMethodEnabled": user.system_preferred_enabled,
            "userPreferredMethodForSecondaryAuthentication": user.preferred_method,
            "systemPreferredAuthenticationMethod": user.system_preferred_method(),
        }),
    ))
}

/// Changes the default method. Chosen model: any valid method name is accepted even when the
/// user has not registered it (the real service's check was not confirmed).
fn patch_sign_in_preferences(
    caller: &Caller,
    tenant: &mut Tenant,
    incoming: &Incoming,
    id: &str,
) -> GraphResult {
    caller.require(AUTH_METHODS_WRITE)?;
    let body = object_body(incoming, false)?;
    let user = tenant
        .user_mut(id)
        .ok_or_else(|| GraphError::not_found(id))?;
    let mut preferred = None;
    let mut system = None;
    for (name, value) in &body {
        match (name.as_str(), value) {
            ("userPreferredMethodForSecondaryAuthentication", Value::String(method)) => {
                if !PREFERRED_METHODS.contains(&method.as_str()) {
                    return Err(GraphError::bad_request(format!(
                        "Invalid value '{method}' for property \
                         'userPreferredMethodForSecondaryAuthentication'."
                    )));
                }
                preferred = Some(method.clone());
            }
            ("isSystemPreferredAuthenticationMethodEnabled", Value::Bool(enabled)) => {
                system = Some(*enabled);
            }
            ("@odata.type" | "@odata.context", _) => {}
            _ => return Err(GraphError::unreadable_body()),
        }
    }
    if let Some(method) = preferred {
        user.preferred_method = method;
    }
    if let Some(enabled) = system {
        user.system_preferred_enabled = enabled;
    }
    Ok(Reply::NoContent)
}

fn directory_roles(caller: &Caller, tenant: &Tenant, id: &str, version: &str) -> GraphResult {
    caller.require(ROLES_READ)?;
    let user = find_user(tenant, id)?;
    let value: Vec<Value> = user
        .roles
        .iter()
        .map(|role| {
            json!({
                "@odata.type": "#microsoft.graph.directoryRole",
                "id": role.id,
                "deletedDateTime": null,
                "description": format!("Members of the {} role.", role.display_name),
                "displayName": role.display_name,
                "roleTemplateId": role.template_id,
            })
        })
        .collect();
    Ok(Reply::Json(
        StatusCode::OK,
        json!({
            "@odata.context": context(version, "directoryRoles"),
            "value": value,
        }),
    ))
}

fn service_principal_json(sp: &ServicePrincipal) -> Map<String, Value> {
    let passwords: Vec<Value> = sp
        .passwords
        .iter()
        .map(|p| password_json(p, false))
        .collect();
    match json!({
        "id": sp.id,
        "accountEnabled": true,
        "appDisplayName": sp.display_name,
        "appId": sp.app_id,
        "appOwnerOrganizationId": sp.app_owner_tenant_id,
        "displayName": sp.display_name,
        "servicePrincipalType": "Application",
        "passwordCredentials": passwords,
    }) {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn password_json(password: &SpPassword, with_secret: bool) -> Value {
    json!({
        "customKeyIdentifier": null,
        "displayName": password.display_name,
        "endDateTime": password.end.to_rfc3339_opts(SecondsFormat::Secs, true),
        "hint": password.secret.chars().take(3).collect::<String>(),
        "keyId": password.key_id,
        "secretText": if with_secret { Value::String(password.secret.clone()) } else { Value::Null },
        "startDateTime": password.start.to_rfc3339_opts(SecondsFormat::Secs, true),
    })
}

const SERVICE_PRINCIPAL_PROPERTIES: &[&str] = &[
    "id",
    "accountEnabled",
    "appDisplayName",
    "appId",
    "appOwnerOrganizationId",
    "displayName",
    "servicePrincipalType",
    "passwordCredentials",
];

fn list_service_principals(
    caller: &Caller,
    tenant: &Tenant,
    incoming: &Incoming,
    version: &str,
) -> GraphResult {
    caller.require(APPLICATIONS_READ)?;
    let filter = match incoming.query_param("$filter") {
        Some(text) => {
            let filter = Filter::parse(text).map_err(|reason| {
                GraphError::bad_request(format!("Invalid filter clause: {reason}"))
            })?;
            for clause in filter.clauses() {
                let supported = matches!(clause, super::filter::Clause::Eq { property, .. }
                    if ["appId", "displayName", "id"].iter().any(|p| p.eq_ignore_ascii_case(property)));
                if !supported {
                    return Err(GraphError::new(
                        StatusCode::BAD_REQUEST,
                        "Request_UnsupportedQuery",
                        format!(
                            "Unsupported or invalid query filter clause specified for property \
                             '{}' of resource 'ServicePrincipal'.",
                            clause.property()
                        ),
                    ));
                }
            }
            Some(filter)
        }
        None => None,
    };
    let select = incoming.query_param("$select");
    let mut value = Vec::new();
    for sp in &tenant.service_principals {
        let keep = filter.as_ref().is_none_or(|f| {
            f.matches(
                |property| match property.to_ascii_lowercase().as_str() {
                    "appid" => Some(sp.app_id.clone()),
                    "displayname" => Some(sp.display_name.clone()),
                    "id" => Some(sp.id.clone()),
                    _ => None,
                },
                |_| Vec::new(),
            )
        });
        if keep {
            value.push(Value::Object(project(
                &service_principal_json(sp),
                select,
                SERVICE_PRINCIPAL_PROPERTIES,
                "microsoft.graph.servicePrincipal",
            )?));
        }
    }
    Ok(Reply::Json(
        StatusCode::OK,
        json!({
            "@odata.context": context(version, &entity_set("servicePrincipals", select)),
            "value": value,
        }),
    ))
}

/// Reads the `appId` of a `POST /servicePrincipals` body.
fn service_principal_app_id(incoming: &Incoming) -> Result<String, GraphError> {
    let body = object_body(incoming, false)?;
    match body.get("appId") {
        Some(Value::String(app_id)) if !app_id.is_empty() => Ok(app_id.clone()),
        Some(Value::String(_)) | None => Err(GraphError::request_bad_request(
            "A value is required for property 'appId' of resource 'ServicePrincipal'.",
        )),
        Some(_) => Err(GraphError::unreadable_body()),
    }
}

fn create_service_principal(
    caller: &Caller,
    state: &mut State,
    tenant_id: &str,
    app_id: String,
    version: &str,
) -> GraphResult {
    caller.require(APPLICATIONS_WRITE)?;
    if state.registration(&app_id).is_none() {
        return Err(GraphError::request_bad_request(format!(
            "The appId '{app_id}' of the service principal does not reference a valid \
             application object."
        )));
    }
    let exists = state
        .tenant(tenant_id)
        .is_some_and(|t| t.service_principal_by_app(&app_id).is_some());
    if exists {
        // UNCONFIRMED status: Graph's code for a duplicate is this one; we answer it with 409.
        return Err(GraphError::new(
            StatusCode::CONFLICT,
            "Request_MultipleObjectsWithSameKeyValue",
            "Another object with the same value for property servicePrincipalNames already \
             exists.",
        ));
    }
    state.ensure_service_principal(tenant_id, &app_id);
    let tenant = state
        .tenant(tenant_id)
        .ok_or_else(|| GraphError::not_found(tenant_id))?;
    let sp = tenant
        .service_principal_by_app(&app_id)
        .ok_or_else(|| GraphError::not_found(&app_id))?;
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        Value::String(context(version, "servicePrincipals/$entity")),
    );
    body.extend(service_principal_json(sp));
    Ok(Reply::Json(StatusCode::CREATED, Value::Object(body)))
}

/// Characters of a generated client secret (Microsoft's secrets use these, `~` included).
const SECRET_ALPHABET: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_~.-";

fn add_password(
    caller: &Caller,
    tenant: &mut Tenant,
    incoming: &Incoming,
    id: &str,
    propagation_delay: Duration,
    version: &str,
) -> GraphResult {
    caller.require(APPLICATIONS_WRITE)?;
    let body = object_body(incoming, true)?;
    let sp = tenant
        .service_principals
        .iter_mut()
        .find(|sp| sp.id.eq_ignore_ascii_case(id))
        .ok_or_else(|| GraphError::not_found(id))?;
    let credential = match body.get("passwordCredential") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(_) => return Err(GraphError::unreadable_body()),
    };
    let display_name = match credential.get("displayName") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(name.clone()),
        Some(_) => return Err(GraphError::unreadable_body()),
    };
    let start = Utc::now();
    let end = match credential.get("endDateTime") {
        None | Some(Value::Null) => start + chrono::Duration::days(730),
        Some(Value::String(text)) => DateTime::parse_from_rfc3339(text)
            .map(|d| d.with_timezone(&Utc))
            .map_err(|_| {
                GraphError::bad_request(format!(
                    "Cannot convert the literal '{text}' to the expected type 'Edm.DateTimeOffset'."
                ))
            })?,
        Some(_) => return Err(GraphError::unreadable_body()),
    };
    let secret = format!(
        "{}8Q~{}",
        random_string(3, super::ALPHANUMERIC),
        random_string(34, SECRET_ALPHABET)
    );
    let password = SpPassword {
        key_id: new_guid(),
        display_name,
        secret,
        start,
        end,
        usable_from: Instant::now() + propagation_delay,
    };
    let mut body = json!({
        "@odata.context": context(version, "microsoft.graph.passwordCredential"),
    });
    if let (Value::Object(out), Value::Object(fields)) = (&mut body, password_json(&password, true))
    {
        out.extend(fields);
    }
    sp.passwords.push(password);
    Ok(Reply::Json(StatusCode::OK, body))
}

fn subscribed_skus(caller: &Caller, tenant: &Tenant, version: &str) -> GraphResult {
    caller.require(ORGANIZATION_READ)?;
    let value: Vec<Value> = tenant
        .skus
        .iter()
        .map(|sku| {
            let plans: Vec<Value> = sku
                .plans
                .iter()
                .map(|(id, name)| {
                    json!({
                        "servicePlanId": id,
                        "servicePlanName": name,
                        "provisioningStatus": "Success",
                        "appliesTo": "User",
                    })
                })
                .collect();
            json!({
                "accountName": tenant.display_name,
                "accountId": tenant.id,
                "appliesTo": "User",
                "capabilityStatus": "Enabled",
                "consumedUnits": sku.consumed_units,
                "id": format!("{}_{}", tenant.id, sku.sku_id),
                "skuId": sku.sku_id,
                "skuPartNumber": sku.part_number,
                "subscriptionIds": [],
                "prepaidUnits": {
                    "enabled": sku.enabled_units,
                    "suspended": 0,
                    "warning": 0,
                    "lockedOut": 0,
                },
                "servicePlans": plans,
            })
        })
        .collect();
    Ok(Reply::Json(
        StatusCode::OK,
        json!({
            "@odata.context": context(version, "subscribedSkus"),
            "value": value,
        }),
    ))
}

fn organization(caller: &Caller, tenant: &Tenant, version: &str) -> GraphResult {
    caller.require(ORGANIZATION_PROFILE_READ)?;
    let domains: Vec<Value> = tenant
        .domains
        .iter()
        .map(|d| {
            json!({
                "capabilities": "Email, OfficeCommunicationsOnline",
                "isDefault": d.is_default,
                "isInitial": d.is_initial,
                "name": d.name,
                "type": "Managed",
            })
        })
        .collect();
    Ok(Reply::Json(
        StatusCode::OK,
        json!({
            "@odata.context": context(version, "organization"),
            "value": [{
                "id": tenant.id,
                "displayName": tenant.display_name,
                "countryLetterCode": "US",
                "tenantType": "AAD",
                "verifiedDomains": domains,
            }],
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::password_is_complex;

    #[test]
    fn password_complexity_model() {
        assert!(password_is_complex(
            "Correct-Horse-7",
            "dana@contoso.example"
        ));
        assert!(password_is_complex("lower1234!", "dana@contoso.example"));
        assert!(!password_is_complex("Sh0rt!", "dana@contoso.example"));
        assert!(!password_is_complex("alllowercase", "dana@contoso.example"));
        assert!(!password_is_complex("lowercase123", "dana@contoso.example"));
        assert!(!password_is_complex(
            "Dana-Secret-9",
            "dana@contoso.example"
        ));
        assert!(!password_is_complex(
            &"Aa1!".repeat(65),
            "dana@contoso.example"
        ));
    }
}
