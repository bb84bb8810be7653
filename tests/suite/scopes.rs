//! API key scopes, checked against the published document: every operation whose security
//! is `AdminApiKey` refuses a technician-scoped key with `403 admin_scope_required`, and
//! every `MspApiKey` operation lets it through. Walking the document means a new set-up
//! operation cannot forget its scope unnoticed.

use reqwest::Method;
use serde_json::Value;
use vouch::domain::{ApiKeyScope, MspPolicy};

use crate::common::TestDb;
use crate::common::world::World;

#[tokio::test]
async fn a_technician_key_is_refused_on_every_admin_operation_and_only_there() {
    let db = TestDb::sqlite().await;
    let world = World::start(&db, MspPolicy::default()).await;
    let (_, technician) = world
        .app
        .store
        .create_scoped_api_key(world.msp.id, "helpdesk", ApiKeyScope::Technician)
        .await
        .unwrap();
    let technician = secrecy::ExposeSecret::expose_secret(&technician).to_owned();
    let spec: Value = serde_json::from_str(&vouch::api::service().spec()).unwrap();
    let nil = uuid::Uuid::nil().to_string();
    let (mut admin_ops, mut other_ops) = (0, 0);
    for (path, operations) in spec["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let schemes: Vec<&str> = operation["security"]
                .as_array()
                .map(|list| {
                    list.iter()
                        .flat_map(|s| s.as_object().unwrap().keys().map(String::as_str))
                        .collect()
                })
                .unwrap_or_default();
            let admin = schemes.contains(&"AdminApiKey");
            if !admin && !schemes.contains(&"MspApiKey") {
                continue;
            }
            // Path parameters get a well-formed value: the scope is checked before anything.
            let concrete: String = path
                .split('/')
                .map(|segment| {
                    if segment.starts_with('{') {
                        nil.as_str()
                    } else {
                        segment
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            let what = format!("{} {path}", method.to_uppercase());
            let response = world
                .app
                .client
                .request(
                    method.to_uppercase().parse::<Method>().unwrap(),
                    world.app.url(&format!("/api{concrete}")),
                )
                .bearer_auth(&technician)
                .header("content-type", "application/json")
                .header("Idempotency-Key", "scope-probe")
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if admin {
                admin_ops += 1;
                assert_eq!(
                    (status, body["code"].as_str()),
                    (403, Some("admin_scope_required")),
                    "{what}: {body}"
                );
                assert!(
                    body["message"].as_str().unwrap().contains("--scope admin"),
                    "{what}"
                );
            } else {
                other_ops += 1;
                assert_ne!(body["code"], "admin_scope_required", "{what}: {body}");
                assert_ne!(status, 401, "{what}: {body}");
            }
        }
    }
    // The set-up groups are all admin; verifying, resetting and the audit are not.
    assert!(admin_ops >= 20, "{admin_ops} admin operations");
    assert!(other_ops >= 8, "{other_ops} other operations");
    for admin_path in [
        "/v1/settings",
        "/v1/psa-connections",
        "/v1/tenants",
        "/v1/api-keys",
        "/v1/company-mappings",
        "/v1/reset-holds",
    ] {
        let operations = &spec["paths"][admin_path];
        assert!(operations.is_object(), "{admin_path} is published");
        for (_, operation) in operations.as_object().unwrap() {
            assert!(
                operation["security"].to_string().contains("AdminApiKey"),
                "{admin_path}"
            );
        }
    }
}
