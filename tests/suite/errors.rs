//! The one error boundary, from outside. Every operation the OpenAPI document lists is sent
//! an invalid path parameter, a malformed body, a wrong and a missing Content-Type, and a NUL
//! character in a string field, on every database; so are unknown addresses and wrong
//! methods. Every answer must be a 4xx `application/json` `{code, message}` whose code the
//! document publishes in `ErrorCode`, and must not repeat what was sent.
//!
//! The requests carry valid credentials (an API key, a pod token the PSA sandbox vouched
//! for), so they reach the parsing rather than stopping at authentication.

use crate::common;
use std::collections::BTreeSet;

use common::TestDb;
use common::world::World;
use reqwest::Method;
use serde_json::{Value, json};
use vouch::domain::MspPolicy;
use vouch::sandbox::psa as sbx;

/// Sent in every probe; no answer may repeat it (values can be secrets).
const MARKER: &str = "SECRETPROBE";

/// What the spec says of one operation.
struct Operation {
    method: Method,
    /// As the document spells it: `/v1/verifications/{id}`.
    path: String,
    id: String,
    /// `MspApiKey`, `PodToken` or none.
    security: Option<String>,
    parameters: Vec<Value>,
    /// The JSON body's schema, if the operation takes a body.
    body: Option<Value>,
}

fn operations(spec: &Value) -> Vec<Operation> {
    let mut found = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            found.push(Operation {
                method: method.to_uppercase().parse().unwrap(),
                path: path.clone(),
                id: op["operationId"].as_str().unwrap().to_owned(),
                security: op["security"][0]
                    .as_object()
                    .and_then(|s| s.keys().next().cloned()),
                parameters: op["parameters"].as_array().cloned().unwrap_or_default(),
                // JSON bodies; a file upload (the logo) has its own test.
                body: op["requestBody"]["content"]
                    .as_object()
                    .and_then(|content| {
                        content
                            .iter()
                            .find(|(media_type, _)| media_type.starts_with("application/json"))
                    })
                    .map(|(_, media)| media["schema"].clone()),
            });
        }
    }
    found
}

/// Follows a `$ref` (and the `allOf: [$ref, {description}]` poem-openapi writes for fields).
fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap();
        return resolve(spec, &spec["components"]["schemas"][name]);
    }
    if let Some(first) = schema["allOf"].get(0) {
        return resolve(spec, first);
    }
    schema
}

/// A valid value for a parameter or field of `schema`.
fn valid_value(spec: &Value, schema: &Value) -> Value {
    let schema = resolve(spec, schema);
    if let Some(first) = schema["enum"].get(0) {
        return first.clone();
    }
    match (schema["type"].as_str(), schema["format"].as_str()) {
        (Some("string"), Some("uuid")) => json!(uuid::Uuid::new_v4()),
        (Some("string"), Some("date-time")) => json!("2030-01-01T00:00:00Z"),
        (Some("string"), _) => json!("probe"),
        (Some("integer"), _) | (Some("number"), _) => json!(1),
        (Some("boolean"), _) => json!(true),
        (Some("array"), _) => json!([]),
        _ => json!({}),
    }
}

fn as_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The first string property of a body schema, found depth-first: the field a NUL goes in.
fn string_field(spec: &Value, schema: &Value) -> Option<Vec<String>> {
    let schema = resolve(spec, schema);
    for (name, property) in schema["properties"].as_object()? {
        let property_schema = resolve(spec, property);
        if property_schema["type"] == "string" && property_schema["enum"].is_null() {
            return Some(vec![name.clone()]);
        }
        if property_schema["type"] == "object"
            && let Some(mut path) = string_field(spec, property)
        {
            path.insert(0, name.clone());
            return Some(path);
        }
    }
    None
}

/// A body that fits `schema`, with `nul_at` (a field path) holding a NUL.
fn body_with_nul(spec: &Value, schema: &Value, nul_at: &[String]) -> Value {
    let schema = resolve(spec, schema);
    let mut body = serde_json::Map::new();
    let required: BTreeSet<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (name, property) in schema["properties"].as_object().unwrap() {
        let value = if nul_at.first() == Some(name) {
            if nul_at.len() == 1 {
                json!(format!("{MARKER}\u{0}"))
            } else {
                body_with_nul(spec, property, &nul_at[1..])
            }
        } else if required.contains(name.as_str()) {
            valid_value(spec, property)
        } else {
            continue;
        };
        body.insert(name.clone(), value);
    }
    Value::Object(body)
}

struct Probes<'a> {
    world: &'a World,
    spec: &'a Value,
    codes: &'a BTreeSet<String>,
    pod_token: String,
    checked: usize,
}

/// How a probe's request varies from a valid one.
#[derive(Default)]
struct Variation {
    /// Replaces every path parameter (raw, already percent-encoded).
    path_value: Option<String>,
    /// Extra query text, appended raw.
    extra_query: Option<String>,
    /// Replaces the string query parameter named with this raw value.
    query_value: Option<(String, String)>,
    /// The body and its content type (`None`: no Content-Type header).
    body: Option<(Option<&'static str>, String)>,
}

impl Probes<'_> {
    fn request(&self, op: &Operation, variation: &Variation) -> reqwest::RequestBuilder {
        let mut path = op.path.clone();
        let mut query = Vec::new();
        let mut headers = Vec::new();
        for parameter in &op.parameters {
            let name = parameter["name"].as_str().unwrap();
            let value = as_text(&valid_value(self.spec, &parameter["schema"]));
            match parameter["in"].as_str().unwrap() {
                "path" => {
                    let value = variation.path_value.clone().unwrap_or(value);
                    path = path.replace(&format!("{{{name}}}"), &value);
                }
                "query" => {
                    if let Some((wanted, raw)) = &variation.query_value
                        && wanted == name
                    {
                        query.push(format!("{name}={raw}"));
                    } else if parameter["required"] == true {
                        query.push(format!("{name}={value}"));
                    }
                }
                "header" => headers.push((name.to_owned(), value)),
                other => panic!("a parameter in {other}"),
            }
        }
        query.extend(variation.extra_query.clone());
        let mut url = self.world.app.url(&format!("/api{path}"));
        if !query.is_empty() {
            url = format!("{url}?{}", query.join("&"));
        }
        let mut request = self.world.app.client.request(op.method.clone(), url);
        match op.security.as_deref() {
            Some("MspApiKey" | "AdminApiKey") => request = request.bearer_auth(&self.world.api_key),
            Some("PodToken") => request = request.bearer_auth(&self.pod_token),
            Some(other) => panic!("unknown security scheme {other}"),
            None => {}
        }
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if let Some((content_type, body)) = &variation.body {
            if let Some(content_type) = content_type {
                request = request.header("content-type", *content_type);
            }
            request = request.body(body.clone());
        }
        request
    }

    /// Sends the probe and checks the answer; returns the body for more specific checks.
    async fn check(&mut self, what: &str, request: reqwest::RequestBuilder) -> (u16, Value) {
        let (status, body, _) = self.check_with_headers(what, request).await;
        (status, body)
    }

    async fn check_with_headers(
        &mut self,
        what: &str,
        request: reqwest::RequestBuilder,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let text = response.text().await.unwrap();
        assert!((400..500).contains(&status), "{what}: {status} {text}");
        assert!(
            content_type.starts_with("application/json"),
            "{what}: {content_type} {text}"
        );
        let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what}: {text}"));
        let code = body["code"].as_str().unwrap_or_default();
        assert!(
            self.codes.contains(code),
            "{what}: unpublished code in {text}"
        );
        let message = body["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{what}: {text}");
        assert!(
            !text.contains(MARKER),
            "{what} repeats what was sent: {text}"
        );
        self.checked += 1;
        (status, body, headers)
    }

    async fn every_operation(&mut self) {
        let operations = operations(self.spec);
        assert!(operations.len() > 20, "the document lists the operations");
        for op in &operations {
            let name = format!("{} {} ({})", op.method, op.path, op.id);
            let has_path_parameter = op.path.contains('{');

            if has_path_parameter {
                let (status, body) = self
                    .check(
                        &format!("{name}, invalid path parameter"),
                        self.request(
                            op,
                            &Variation {
                                path_value: Some(format!("{MARKER}-not-a-uuid")),
                                ..Variation::default()
                            },
                        ),
                    )
                    .await;
                assert_eq!(
                    (status, body["code"].as_str()),
                    (400, Some("invalid_request"))
                );
                assert!(
                    body["message"].as_str().unwrap().contains("`id`"),
                    "{name}: the parameter is named: {body}"
                );

                let (status, body) = self
                    .check(
                        &format!("{name}, NUL in a path parameter"),
                        self.request(
                            op,
                            &Variation {
                                path_value: Some(format!("{MARKER}%00")),
                                ..Variation::default()
                            },
                        ),
                    )
                    .await;
                assert_eq!(status, 400, "{name}: {body}");
                let message = body["message"].as_str().unwrap();
                assert!(
                    message.contains("NUL") && message.contains("`id`"),
                    "{message}"
                );
            }

            if let Some(schema) = &op.body {
                for (label, content_type, text, expected) in [
                    (
                        "malformed body",
                        Some("application/json"),
                        format!("{{\"{MARKER}\": "),
                        (400, "invalid_request"),
                    ),
                    (
                        "body that is not an object",
                        Some("application/json"),
                        format!("[\"{MARKER}\"]"),
                        (400, "invalid_request"),
                    ),
                    (
                        "wrong Content-Type",
                        Some("text/plain"),
                        format!("{{\"x\": \"{MARKER}\"}}"),
                        (415, "unsupported_media_type"),
                    ),
                    (
                        "no Content-Type",
                        None,
                        format!("{{\"x\": \"{MARKER}\"}}"),
                        (415, "unsupported_media_type"),
                    ),
                ] {
                    let (status, body) = self
                        .check(
                            &format!("{name}, {label}"),
                            self.request(
                                op,
                                &Variation {
                                    body: Some((content_type, text)),
                                    ..Variation::default()
                                },
                            ),
                        )
                        .await;
                    assert_eq!(
                        (status, body["code"].as_str().unwrap()),
                        expected,
                        "{name}, {label}: {body}"
                    );
                }

                // A body missing a required field names it.
                let required = resolve(self.spec, schema)["required"][0].as_str();
                if let Some(required) = required {
                    let (status, body) = self
                        .check(
                            &format!("{name}, missing `{required}`"),
                            self.request(
                                op,
                                &Variation {
                                    body: Some((Some("application/json"), "{}".into())),
                                    ..Variation::default()
                                },
                            ),
                        )
                        .await;
                    assert_eq!(status, 400);
                    let message = body["message"].as_str().unwrap();
                    assert!(
                        message.contains(&format!("`{required}` is required")),
                        "{name}: {message}"
                    );
                }
            }

            // A NUL in a string field: of the body when it has one, else of a string query
            // parameter, else of a query parameter the operation does not even read.
            let body_field = op.body.as_ref().and_then(|s| string_field(self.spec, s));
            let query_field = op
                .parameters
                .iter()
                .find(|p| {
                    p["in"] == "query" && resolve(self.spec, &p["schema"])["type"] == "string"
                })
                .map(|p| p["name"].as_str().unwrap().to_owned());
            let (variation, field) = match (&op.body, body_field, query_field) {
                (Some(schema), Some(path), _) => (
                    Variation {
                        body: Some((
                            Some("application/json"),
                            body_with_nul(self.spec, schema, &path).to_string(),
                        )),
                        ..Variation::default()
                    },
                    path.join("."),
                ),
                (_, _, Some(name)) => (
                    Variation {
                        query_value: Some((name.clone(), format!("{MARKER}%00"))),
                        ..Variation::default()
                    },
                    name,
                ),
                _ => (
                    Variation {
                        extra_query: Some(format!("probe={MARKER}%00")),
                        ..Variation::default()
                    },
                    "probe".to_owned(),
                ),
            };
            let (status, body) = self
                .check(
                    &format!("{name}, NUL in `{field}`"),
                    self.request(op, &variation),
                )
                .await;
            assert_eq!(
                (status, body["code"].as_str()),
                (400, Some("invalid_request"))
            );
            let message = body["message"].as_str().unwrap();
            assert!(
                message.contains("NUL") && message.contains(&format!("`{field}`")),
                "{name}: the field is named: {message}"
            );
        }
    }

    async fn wrong_methods_and_unknown_addresses(&mut self) {
        let client = &self.world.app.client;
        // The last: a pod file of another version than this build's.
        for path in [
            "/api/v1/nothing",
            "/nothing",
            "/api/v1/verifications/a/b/c",
            "/pods/v/0123456789abcdef/pod.js",
        ] {
            let (status, body) = self.check(path, client.get(self.world.app.url(path))).await;
            assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
        }

        // Every address of the document, with the methods its operations have...
        let mut expectations: Vec<(String, BTreeSet<String>)> = Vec::new();
        for op in operations(self.spec) {
            match expectations.iter_mut().find(|(path, _)| *path == op.path) {
                Some((_, methods)) => {
                    methods.insert(op.method.to_string());
                }
                None => expectations.push((op.path, BTreeSet::from([op.method.to_string()]))),
            }
        }
        for (path, _) in &mut expectations {
            *path = format!(
                "/api{}",
                path.replace("{id}", &uuid::Uuid::new_v4().to_string())
            );
        }
        // ...and every address outside it.
        for (template, methods) in vouch::api::routes::OTHER_ROUTES {
            let path = template
                .replace("{token}", "probe")
                .replace("{file}", "probe.css")
                .replace("{version}", "probe")
                .replace("{msp_id}", &uuid::Uuid::new_v4().to_string())
                .replace('*', "probe");
            expectations.push((path, methods.iter().map(|m| m.to_string()).collect()));
        }
        for (path, mut methods) in expectations {
            // Each method listed is routed (whatever it then answers)...
            for method in &methods {
                let response = client
                    .request(method.parse().unwrap(), self.world.app.url(&path))
                    .send()
                    .await
                    .unwrap();
                assert_ne!(response.status(), 405, "{method} {path}");
            }
            // ...and another is refused, with the list.
            if methods.contains("GET") {
                methods.insert("HEAD".into());
            }
            // PATCH, unless the address takes it (a tenant, say): then a method it does not.
            let probe = ["PATCH", "PUT", "POST", "DELETE", "TRACE"]
                .into_iter()
                .find(|m| !methods.contains(*m))
                .expect("an address that takes every method");
            let what = format!("{probe} {path}");
            let (status, body, headers) = self
                .check_with_headers(
                    &what,
                    client.request(probe.parse().unwrap(), self.world.app.url(&path)),
                )
                .await;
            assert_eq!(
                (status, body["code"].as_str()),
                (405, Some("method_not_allowed"))
            );
            let allow: BTreeSet<String> = headers
                .get("allow")
                .unwrap_or_else(|| panic!("{what}: no Allow header"))
                .to_str()
                .unwrap()
                .split(", ")
                .map(str::to_owned)
                .collect();
            assert_eq!(allow, methods, "{what}");
        }
    }
}

/// The published codes: the `ErrorCode` schema's values.
fn published_codes(spec: &Value) -> BTreeSet<String> {
    let codes: BTreeSet<String> = spec["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .expect("the spec publishes ErrorCode")
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert!(codes.contains("invalid_request") && codes.contains("not_found"));
    assert_eq!(
        spec["components"]["schemas"]["ErrorBody"]["properties"]["code"]["allOf"][0]["$ref"],
        "#/components/schemas/ErrorCode",
        "ErrorBody.code is the enum"
    );
    codes
}

/// A pod token, from a HaloPSA ticket screen of the sandbox (as the PSA loads the pod).
async fn pod_token(world: &World) -> String {
    let screen = reqwest::get(world.psa.halopsa().ticket_screen_url(sbx::HALO_TICKET_DANA))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let tag_at = screen
        .find("id=\"vouch-pod\"")
        .expect("the screen embeds the pod");
    let tag = &screen[screen[..tag_at].rfind('<').unwrap()..];
    let src_at = tag.find("src=\"").unwrap() + 5;
    let src = tag[src_at..src_at + tag[src_at..].find('"').unwrap()]
        .replace("&amp;", "&")
        .replace("http://localhost:8080", &world.app.base_url);
    let page = world.app.client.get(&src).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    let at = page.find("data-token=\"").expect("a pod token") + 12;
    page[at..at + page[at..].find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn every_operation_refuses_bad_input_with_a_published_code() {
    for db in TestDb::all().await {
        let world = World::start(&db, MspPolicy::default()).await;
        let spec: Value = world
            .app
            .client
            .get(world.app.url("/api/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let codes = published_codes(&spec);
        let mut probes = Probes {
            world: &world,
            spec: &spec,
            codes: &codes,
            pod_token: pod_token(&world).await,
            checked: 0,
        };
        probes.every_operation().await;
        probes.wrong_methods_and_unknown_addresses().await;
        assert!(probes.checked > 100, "{} probes", probes.checked);
    }
}

#[tokio::test]
async fn nul_is_refused_in_pod_loads_and_nothing_is_stored() {
    for db in TestDb::all().await {
        let world = World::start(&db, MspPolicy::default()).await;
        let client = &world.app.client;
        for (method, path) in [
            (Method::GET, "/pods/halopsa"),
            (Method::POST, "/pods/autotask"),
        ] {
            let request = client.request(method.clone(), world.app.url(path));
            let request = if method == Method::GET {
                request.query(&[("connection", "x"), ("ticketid", "1\u{0}")])
            } else {
                request.form(&[("connection", "x"), ("ticketid", "1\u{0}")])
            };
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 400, "{method} {path}");
            assert!(
                response.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("application/json")
            );
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["code"], "invalid_request");
            assert!(
                body["message"].as_str().unwrap().contains("`ticketid`"),
                "{body}"
            );
        }

        // A NUL that reached the store would be kept on SQLite and fail on PostgreSQL; the
        // same refusal on both means it never gets there.
        let response = world
            .api(Method::POST, "/api/v1/shares")
            .json(&json!({ "content": format!("{MARKER}\u{0}") }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{:?}", db.backend);

        assert!(
            world
                .app
                .store
                .list_shares(world.msp.id)
                .await
                .unwrap()
                .is_empty(),
            "{:?}: nothing stored",
            db.backend
        );
    }
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_unread() {
    let db = TestDb::sqlite().await;
    let world = World::start(&db, MspPolicy::default()).await;
    let big = format!(
        "{{\"content\": \"{}\"}}",
        "x".repeat(vouch::api::error::MAX_BODY_BYTES)
    );
    let response = world
        .app
        .client
        .post(world.app.url("/api/v1/shares"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "payload_too_large");
}

/// A missing Microsoft permission used to be a 400 when connecting an integration and a 502
/// when verifying (which `pods/pod.js` retries, in vain). Now it is one answer everywhere.
#[tokio::test]
async fn a_missing_permission_answers_the_same_on_every_route() {
    use vouch::sandbox::microsoft::{DEMO_TENANT_ID, SandboxApp};
    let db = TestDb::sqlite().await;
    let world = World::start(&db, MspPolicy::default()).await;
    let app_with = |client_id: &str, permissions: &[&str]| {
        world.microsoft.add_app(SandboxApp {
            client_id: client_id.into(),
            secret: "limited-secret".into(),
            secret_expires_at: None,
            tenant_id: DEMO_TENANT_ID.into(),
            permissions: permissions.iter().map(|p| p.to_string()).collect(),
        });
    };
    let connect = |client_id: &'static str| {
        world
            .api(Method::POST, "/api/v1/integrations/identity-management")
            .json(&json!({
                "tenant_id": DEMO_TENANT_ID,
                "client_id": client_id,
                "client_secret": "limited-secret",
            }))
            .send()
    };
    let answer = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.unwrap())
    };

    // Connecting an app that cannot read users.
    let no_users = "0e0e0e0e-0000-4000-8000-0000000000a1";
    app_with(no_users, &["Organization.Read.All"]);
    let (connect_status, body) = answer(connect(no_users).await.unwrap()).await;
    assert_eq!(body["code"], "microsoft_missing_permission", "{body}");

    // Verifying by SMS with an app that can read users but not their phone numbers.
    let no_phones = "0e0e0e0e-0000-4000-8000-0000000000a2";
    app_with(no_phones, &["User.Read.All", "Organization.Read.All"]);
    let (status, body) = answer(connect(no_phones).await.unwrap()).await;
    assert_eq!(status, 201, "{body}");
    let (verify_status, body) = answer(
        world
            .api(Method::POST, "/api/v1/verifications")
            .json(&json!({
                "tenant_id": DEMO_TENANT_ID,
                "user": "dana@contoso.example",
                "method": "sms_code",
            }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(body["code"], "microsoft_missing_permission", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("UserAuthenticationMethod.Read.All"),
        "{body}"
    );

    assert_eq!(
        connect_status, verify_status,
        "one status whatever the route"
    );
    assert_eq!(
        verify_status, 400,
        "a person must fix the setup; retrying cannot help"
    );
}
