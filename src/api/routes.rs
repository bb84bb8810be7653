//! What the error boundary knows of the addresses Vouch serves: which methods each accepts
//! (for the `Allow` header of a 405), the names of an operation's path parameters (poem-openapi
//! reports them as `param0`, `param1`, ...) and the schema its body must fit, so a refusal can
//! name the field at fault. The API's part is read from the OpenAPI metadata itself, so it
//! cannot drift from the operations.

use std::sync::OnceLock;

use poem::http::Method;
use poem_openapi::OpenApi;
use poem_openapi::registry::{MetaSchema, MetaSchemaRef, Registry};
use serde_json::Value;

/// Where the JSON API is mounted (`server.rs`).
pub const API_PREFIX: &str = "/api";

/// The addresses outside the OpenAPI document that accept only some methods, as `server.rs`
/// and `web/` mount them (the spec and its documentation answer every method). A `*` segment
/// matches the rest of the path. `server.rs`'s tests check that the table is exactly what it
/// mounts (every address is mounted through `web::mount::Mounted`, which records it), and
/// `tests/suite/errors.rs` checks every entry against the running application, both the
/// methods listed and one that is not.
pub const OTHER_ROUTES: &[(&str, &[Method])] = &[
    ("/", &[Method::GET]),
    ("/healthz", &[Method::GET]),
    ("/readyz", &[Method::GET]),
    ("/metrics", &[Method::GET]),
    ("/microsoft/consent/callback", &[Method::GET]),
    ("/s/{token}", &[Method::GET, Method::POST]),
    ("/v/{token}", &[Method::GET, Method::POST]),
    ("/pods/v/{version}/pod.js", &[Method::GET]),
    ("/pods/v/{version}/pod/api.js", &[Method::GET]),
    ("/pods/v/{version}/pod/view.js", &[Method::GET]),
    ("/pods/v/{version}/pod.css", &[Method::GET]),
    ("/pods/assets/page.css", &[Method::GET]),
    ("/pods/assets/brand/{file}", &[Method::GET]),
    ("/pods/connectwise", &[Method::GET]),
    ("/pods/halopsa", &[Method::GET, Method::POST]),
    ("/pods/autotask", &[Method::GET, Method::POST]),
    ("/console", &[Method::GET]),
    ("/console/sign-in", &[Method::GET, Method::POST]),
    ("/console/sign-in/code", &[Method::GET, Method::POST]),
    ("/console/setup/{token}", &[Method::GET, Method::POST]),
    ("/console/two-factor", &[Method::GET, Method::POST]),
    ("/console/sign-out", &[Method::POST]),
    ("/console/users", &[Method::GET]),
    ("/console/users/invite", &[Method::POST]),
    ("/console/users/{id}/{action}", &[Method::POST]),
    ("/console/integrations", &[Method::GET]),
    (
        "/console/integrations/authenticator/consent",
        &[Method::POST],
    ),
    (
        "/console/integrations/identity-management",
        &[Method::GET, Method::POST],
    ),
    ("/console/integrations/{id}/{action}", &[Method::POST]),
    ("/console/psa-connections", &[Method::GET]),
    (
        "/console/psa-connections/new/{kind}",
        &[Method::GET, Method::POST],
    ),
    (
        "/console/psa-connections/{id}",
        &[Method::GET, Method::POST],
    ),
    ("/console/psa-connections/{id}/setup", &[Method::GET]),
    ("/console/psa-connections/{id}/{action}", &[Method::POST]),
    ("/console/companies", &[Method::GET]),
    ("/console/companies/accept", &[Method::POST]),
    ("/console/companies/accept-all", &[Method::POST]),
    ("/console/users/api-keys", &[Method::POST]),
    ("/console/users/api-keys/{id}/revoke", &[Method::POST]),
    ("/console/account", &[Method::GET, Method::POST]),
    ("/console/settings", &[Method::GET, Method::POST]),
    ("/console/settings/logo", &[Method::POST]),
    ("/console/settings/logo/remove", &[Method::POST]),
    ("/console/audit", &[Method::GET]),
    ("/console/audit.csv", &[Method::GET]),
    ("/console/tickets", &[Method::GET]),
    ("/console/contacts", &[Method::GET]),
    ("/console/contacts/{tenant}/{object_id}", &[Method::GET]),
    ("/console/shares", &[Method::GET, Method::POST]),
    ("/console/shares/{id}/revoke", &[Method::POST]),
    ("/console/assets/console.css", &[Method::GET]),
    ("/brand/{msp_id}/logo/{file}", &[Method::GET]),
];

/// One operation of the JSON API.
pub struct Operation {
    pub method: Method,
    /// The path under [`API_PREFIX`], as the document spells it (`/v1/verifications/{id}`).
    pub path: String,
    /// The schema of its JSON body, if it takes one.
    pub body: Option<MetaSchemaRef>,
    /// The content types its body may have (none when it takes no body).
    pub media_types: Vec<&'static str>,
}

struct ApiIndex {
    operations: Vec<Operation>,
    registry: Registry,
}

// The metadata holds only static data; it is built on the first refusal that needs it, so
// start-up does not pay for it.
fn index() -> &'static ApiIndex {
    static INDEX: OnceLock<ApiIndex> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut registry = Registry::new();
        super::Apis::register(&mut registry);
        let operations = super::Apis::meta()
            .into_iter()
            .flat_map(|api| api.paths)
            .flat_map(|path| {
                path.operations.into_iter().map(move |operation| {
                    let content = operation
                        .request
                        .map(|request| request.content)
                        .unwrap_or_default();
                    Operation {
                        method: operation.method,
                        path: path.path.clone(),
                        media_types: content.iter().map(|media| media.content_type).collect(),
                        body: content
                            .into_iter()
                            .find(|media| media.content_type.starts_with("application/json"))
                            .map(|media| media.schema),
                    }
                })
            })
            .collect();
        ApiIndex {
            operations,
            registry,
        }
    })
}

/// Every operation of the API (for tests that walk them all).
pub fn operations() -> &'static [Operation] {
    &index().operations
}

/// `/v1/x/{id}` matches `/v1/x/42`; a final `*` matches any rest.
fn matches(template: &str, path: &str) -> bool {
    let mut wanted = template.split('/');
    let mut given = path.split('/');
    loop {
        match (wanted.next(), given.next()) {
            (None, None) => return true,
            (Some("*"), Some(_)) => return true,
            (Some(w), Some(g)) if w.starts_with('{') && w.ends_with('}') && !g.is_empty() => {}
            (Some(w), Some(g)) if w == g => {}
            _ => return false,
        }
    }
}

fn api_path(path: &str) -> Option<&str> {
    path.strip_prefix(API_PREFIX)
        .filter(|rest| rest.starts_with('/'))
}

/// How closely a matching template fits, as poem's router ranks them: at the first segment
/// where two differ, a literal beats a parameter, which beats `*`.
fn specificity(template: &str) -> Vec<u8> {
    template
        .split('/')
        .map(|segment| match segment {
            "*" => 0,
            s if s.starts_with('{') => 1,
            _ => 2,
        })
        .collect()
}

/// The API path template poem routes `path` to.
fn api_template(path: &str) -> Option<&'static str> {
    let rest = api_path(path)?;
    operations()
        .iter()
        .map(|op| op.path.as_str())
        .filter(|template| matches(template, rest))
        .max_by_key(|template| specificity(template))
}

/// The API operation `method` on `path` names, if any.
pub fn operation(method: &Method, path: &str) -> Option<&'static Operation> {
    let template = api_template(path)?;
    operations()
        .iter()
        .find(|op| op.method == method && op.path == template)
}

/// For an operation whose body is a file rather than JSON (the logo), the content types it
/// takes, as a refusal names them (`` `image/png` or `image/svg+xml` ``).
pub fn file_upload_types(method: &Method, path: &str) -> Option<String> {
    let op = operation(method, path)?;
    if op.media_types.is_empty() || op.body.is_some() {
        return None;
    }
    let quoted: Vec<String> = op.media_types.iter().map(|t| format!("`{t}`")).collect();
    Some(quoted.join(" or "))
}

/// The methods `path` accepts, for the `Allow` header (`HEAD` wherever `GET` is: poem answers
/// it from the `GET` handler). `None` when Vouch knows no such address.
pub fn allowed_methods(path: &str) -> Option<Vec<Method>> {
    let mut methods: Vec<Method> = match api_template(path) {
        Some(template) => operations()
            .iter()
            .filter(|op| op.path == template)
            .map(|op| op.method.clone())
            .collect(),
        None => Vec::new(),
    };
    if methods.is_empty() {
        methods = OTHER_ROUTES
            .iter()
            .find(|(template, _)| matches(template, path))
            .map(|(_, methods)| methods.to_vec())?;
    }
    if methods.contains(&Method::GET) && !methods.contains(&Method::HEAD) {
        methods.push(Method::HEAD);
    }
    methods.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    methods.dedup();
    Some(methods)
}

/// The name of the `index`-th path parameter of the operation at `path` (any method: they
/// share the template), for `ParsePathError`'s `param0`.
pub fn path_parameter_name(path: &str, index: usize) -> Option<&'static str> {
    api_template(path)?
        .split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .nth(index)
}

/// The name of the path parameter at `path.split('/').nth(segment)`, if that segment is one.
pub fn path_parameter_at(path: &str, segment: usize) -> Option<&'static str> {
    // The template has no "api" segment: its segments are the path's, one place earlier.
    let at = segment.checked_sub(1)?;
    api_template(path)?
        .split('/')
        .nth(at)
        .and_then(|s| s.strip_prefix('{')?.strip_suffix('}'))
}

/// Why `body` does not fit `op`'s schema: the field (as a path such as `send_to.user`; `None`
/// for the body itself) and what it must be. Never quotes a value: values can be secrets.
pub fn body_problem(op: &Operation, body: &Value) -> Option<(Option<String>, String)> {
    let schema = op.body.as_ref()?;
    problem_in(&index().registry, schema, body, &mut String::new())
}

fn resolve<'a>(registry: &'a Registry, schema: &'a MetaSchemaRef) -> Option<&'a MetaSchema> {
    match schema {
        MetaSchemaRef::Inline(schema) => Some(schema),
        MetaSchemaRef::Reference(name) => registry.schemas.get(name),
    }
}

fn problem_in(
    registry: &Registry,
    schema: &MetaSchemaRef,
    value: &Value,
    at: &mut String,
) -> Option<(Option<String>, String)> {
    let schema = resolve(registry, schema)?;
    for part in &schema.all_of {
        if let Some(problem) = problem_in(registry, part, value, at) {
            return Some(problem);
        }
    }
    // A union told apart by a property (`kind`): the variant it names is the schema.
    if let (Some(discriminator), Value::Object(object)) = (&schema.discriminator, value)
        && !schema.one_of.is_empty()
    {
        let name = discriminator.property_name;
        let Some(given) = object.get(name).filter(|v| !v.is_null()) else {
            return Some((Some(join(at, name)), "is required".to_owned()));
        };
        let Some((_, reference)) = discriminator
            .mapping
            .iter()
            .find(|(mapping, _)| given.as_str() == Some(mapping.as_str()))
        else {
            let allowed: Vec<&str> = discriminator
                .mapping
                .iter()
                .map(|(mapping, _)| mapping.as_str())
                .collect();
            return Some((
                Some(join(at, name)),
                format!("must be one of: {}", allowed.join(", ")),
            ));
        };
        let variant = reference.trim_start_matches("#/components/schemas/");
        return problem_in(
            registry,
            &MetaSchemaRef::Reference(variant.to_owned()),
            value,
            at,
        );
    }
    let field = || (!at.is_empty()).then(|| at.clone());
    if !schema.enum_items.is_empty() {
        if schema.enum_items.contains(value) {
            return None;
        }
        let allowed: Vec<String> = schema
            .enum_items
            .iter()
            .filter_map(|item| item.as_str().map(str::to_owned))
            .collect();
        return Some((field(), format!("must be one of: {}", allowed.join(", "))));
    }
    let fits = match schema.ty {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        // Any JSON (a `serde_json::Value` field), or a type this check does not know.
        _ => true,
    };
    if !fits {
        let article = if schema.ty == "object" || schema.ty == "array" || schema.ty == "integer" {
            "an"
        } else {
            "a"
        };
        return Some((field(), format!("must be {article} {}", schema.ty)));
    }
    let text = value.as_str().unwrap_or_default();
    let format_problem = match (schema.ty, schema.format) {
        ("string", Some("uuid")) => uuid::Uuid::parse_str(text)
            .is_err()
            .then_some("must be a UUID"),
        ("string", Some("date-time")) => chrono::DateTime::parse_from_rfc3339(text)
            .is_err()
            .then_some("must be an RFC 3339 date-time such as 2030-01-31T12:00:00Z"),
        ("integer", Some(format)) => (format.starts_with("uint")
            && value.as_i64().is_some_and(|n| n < 0))
        .then_some("must not be negative"),
        _ => None,
    };
    if let Some(problem) = format_problem {
        return Some((field(), problem.to_owned()));
    }
    // Counted in characters, as poem-openapi's `max_length` validator counts them.
    if let (Some(max), Value::String(text)) = (schema.max_length, value)
        && text.chars().nth(max).is_some()
    {
        return Some((field(), format!("must be at most {max} characters long")));
    }
    if let Value::Object(object) = value {
        for required in &schema.required {
            if object.get(*required).is_none_or(Value::is_null) {
                return Some((Some(join(at, required)), "is required".to_owned()));
            }
        }
        for (name, property) in &schema.properties {
            let Some(value) = object.get(*name).filter(|v| !v.is_null()) else {
                continue;
            };
            let mark = at.len();
            push_field(at, name);
            let problem = problem_in(registry, property, value, at);
            at.truncate(mark);
            if problem.is_some() {
                return problem;
            }
        }
    }
    if let (Value::Array(items), Some(item_schema)) = (value, &schema.items) {
        for (i, item) in items.iter().enumerate() {
            let mark = at.len();
            at.push_str(&format!("[{i}]"));
            let problem = problem_in(registry, item_schema, item, at);
            at.truncate(mark);
            if problem.is_some() {
                return problem;
            }
        }
    }
    None
}

fn push_field(at: &mut String, name: &str) {
    if !at.is_empty() {
        at.push('.');
    }
    at.push_str(name);
}

fn join(at: &str, name: &str) -> String {
    let mut path = at.to_owned();
    push_field(&mut path, name);
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_whole_segments() {
        assert!(matches("/v1/verifications/{id}", "/v1/verifications/42"));
        assert!(!matches("/v1/verifications/{id}", "/v1/verifications/"));
        assert!(!matches(
            "/v1/verifications/{id}",
            "/v1/verifications/42/code"
        ));
        assert!(matches("/pods/*", "/pods/assets/pod.js"));
        assert!(!matches("/healthz", "/healthzz"));
    }

    #[test]
    fn the_api_part_comes_from_the_operations() {
        let allow = allowed_methods("/api/v1/shares").unwrap();
        assert_eq!(allow, [Method::GET, Method::HEAD, Method::POST]);
        assert_eq!(
            allowed_methods("/api/v1/shares/8d1c").unwrap(),
            [Method::DELETE]
        );
        assert_eq!(
            allowed_methods("/pods/halopsa").unwrap(),
            [Method::GET, Method::HEAD, Method::POST]
        );
        assert_eq!(allowed_methods("/nothing/here"), None);
        // The literal route wins over `/v1/integrations/{id}`, as in poem's router.
        assert_eq!(
            allowed_methods("/api/v1/integrations/identity-management").unwrap(),
            [Method::POST]
        );
        assert_eq!(
            path_parameter_name("/api/v1/verifications/x/code", 0),
            Some("id")
        );
        assert_eq!(
            path_parameter_at("/api/v1/verifications/x/code", 4),
            Some("id")
        );
        assert_eq!(path_parameter_at("/api/v1/verifications/x/code", 3), None);
    }

    #[test]
    fn a_union_body_is_checked_against_the_variant_its_kind_names() {
        let create = operation(&Method::POST, "/api/v1/psa-connections").unwrap();
        let problem = |body: Value| body_problem(create, &body);
        assert_eq!(
            problem(serde_json::json!({ "company_id": "x" })),
            Some((Some("kind".into()), "is required".into()))
        );
        let (field, what) = problem(serde_json::json!({ "kind": "servicenow" })).unwrap();
        assert_eq!(field.as_deref(), Some("kind"));
        assert_eq!(what, "must be one of: connectwise, halopsa, autotask");
        assert_eq!(
            problem(
                serde_json::json!({ "kind": "autotask", "api_user": "u", "api_secret": "hunter2" })
            ),
            Some((Some("integration_code".into()), "is required".into()))
        );
        assert_eq!(
            problem(serde_json::json!({
                "kind": "halopsa", "resource_url": ["x"], "auth_url": "a",
                "client_id": "c", "client_secret": "s",
            })),
            Some((Some("resource_url".into()), "must be a string".into()))
        );
    }

    #[test]
    fn a_body_problem_names_the_field_and_never_the_value() {
        let create = operation(&Method::POST, "/api/v1/shares").unwrap();
        let problem = |body: Value| body_problem(create, &body);
        assert_eq!(
            problem(serde_json::json!({ "max_views": 1 })),
            Some((Some("content".into()), "is required".into()))
        );
        assert_eq!(
            problem(serde_json::json!({ "content": ["hunter2"] })),
            Some((Some("content".into()), "must be a string".into()))
        );
        assert_eq!(
            problem(serde_json::json!({ "content": "x", "send_to": { "tenant_id": "t" } })),
            Some((Some("send_to.user".into()), "is required".into()))
        );
        assert_eq!(problem(serde_json::json!({ "content": "x" })), None);
        assert_eq!(
            problem(serde_json::json!({ "content": "é".repeat(10_001) })),
            Some((
                Some("content".into()),
                "must be at most 10000 characters long".into()
            ))
        );
        assert_eq!(
            problem(serde_json::json!({ "content": "é".repeat(10_000) })),
            None,
            "characters are counted, not bytes"
        );
        let start = operation(&Method::POST, "/api/v1/verifications").unwrap();
        let (field, what) = body_problem(
            start,
            &serde_json::json!({ "tenant_id": "t", "user": "u", "method": "fax" }),
        )
        .unwrap();
        assert_eq!(field.as_deref(), Some("method"));
        assert!(what.contains("sms_code"), "{what}");
        assert_eq!(
            problem(serde_json::json!(["x"])),
            Some((None, "must be an object".into()))
        );
    }
}
