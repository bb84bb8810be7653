//! PSA connections through the JSON API, over real HTTP, on every backend: each PSA connected
//! to its sandbox with the API alone, its pod opened with the setup values; field-level
//! refusals; no answer carrying a secret; deletion; a change seen by the pods at once.

use crate::{backends, common};

use backends::on_every_backend;
use common::world::{World, call, json_of};
use reqwest::Method;
use serde_json::{Value, json};
use vouch::domain::MspPolicy;
use vouch::psa::signing;
use vouch::sandbox::psa as sbx;
use vouch::store::tenants::CompanyMapping;

/// The answer of an API call with `body`: status and JSON (`Null` for an empty body).
fn connectwise_body(world: &World) -> Value {
    let cw = world.psa.connectwise();
    json!({
        "kind": "connectwise",
        "name": "ConnectWise (API)",
        "site_url": cw.site_url,
        "company_id": cw.company_id,
        "public_key": cw.public_key,
        "private_key": cw.private_key,
        "client_id": cw.client_id,
    })
}

fn halopsa_body(world: &World) -> Value {
    let halo = world.psa.halopsa();
    json!({
        "kind": "halopsa",
        "resource_url": halo.resource_url,
        "auth_url": halo.auth_url,
        "client_id": halo.client_id,
        "client_secret": halo.client_secret,
    })
}

fn autotask_body(world: &World) -> Value {
    let at = world.psa.autotask();
    json!({
        "kind": "autotask",
        "api_user": at.api_user,
        "api_secret": at.api_secret,
        "integration_code": at.integration_code,
        "zone_lookup_url": at.zone_lookup_url,
    })
}

async fn create(world: &World, body: Value) -> Value {
    let (status, created) = call(world, Method::POST, "/api/v1/psa-connections", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    created
}

/// `pod_url` (as the setup gives it, on the public URL) on this test's Vouch.
fn local(world: &World, pod_url: &str) -> String {
    pod_url.replace("http://localhost:8080", &world.app.base_url)
}

/// A signed load of `pod_url` as the PSA sends it: its own parameters, then `ts` and `sig`.
fn signed(pod_url: &str, extra: &[(&str, String)], secret: &str) -> String {
    let mut url = url::Url::parse(pod_url).unwrap();
    let mut params: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    params.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    params.push(("ts".into(), chrono::Utc::now().timestamp().to_string()));
    let sig = signing::sign(&params, secret);
    params.push(("sig".into(), sig));
    url.query_pairs_mut().clear().extend_pairs(&params);
    url.to_string()
}

async fn get_page(world: &World, url: &str) -> (u16, String, String) {
    let response = world.app.client.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    let csp = response
        .headers()
        .get("content-security-policy")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, csp, response.text().await.unwrap())
}

async fn setup_of(world: &World, id: &str) -> Value {
    let (status, setup) = call(
        world,
        Method::GET,
        &format!("/api/v1/psa-connections/{id}/setup"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{setup}");
    setup
}

#[tokio::test]
async fn each_psa_connects_through_the_api_and_its_pod_opens_with_the_setup_values() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let origin = world.psa.base_url();

        // ConnectWise: the Hosted API vouches for the member; no secret to paste.
        let cw = create(&world, connectwise_body(&world)).await;
        assert_eq!(cw["kind"], "connectwise");
        assert_eq!(cw["status"], "untested");
        assert_eq!(cw["last_test"], Value::Null);
        assert_eq!(cw["private_key"]["set"], true);
        assert!(cw["private_key"]["changed_at"].is_string(), "{cw}");
        assert!(cw["private_key"].get("value").is_none(), "{cw}");
        assert_eq!(cw["allowed_origins"], json!([origin]));
        assert_eq!(cw["allowed_origins_custom"], false);
        assert_eq!(cw["client_id_in_effect"], sbx::CW_CLIENT_ID);
        let id = cw["id"].as_str().unwrap();
        let setup = setup_of(&world, id).await;
        let pod_url = setup["pod_url"].as_str().unwrap();
        assert_eq!(
            pod_url,
            format!(
                "http://localhost:8080/pods/connectwise?connection={id}&id=[cw_id]&screen=[cw_screen]"
            )
        );
        assert_eq!(setup["secret"], Value::Null);
        assert_eq!(setup["vouch_origin"], "http://localhost:8080");
        assert!(setup["height_px"].as_u64().unwrap() > 0);
        let steps: Vec<&str> = setup["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        for needle in ["Manage Hosted API", "Service Ticket", "Pod", "Origin", pod_url] {
            assert!(steps.iter().any(|s| s.contains(needle)), "{needle}: {steps:?}");
        }
        let load = local(&world, pod_url)
            .replace("[cw_id]", &sbx::CW_TICKET_DANA.to_string())
            .replace("[cw_screen]", "service_ticket");
        let (status, csp, html) = get_page(&world, &load).await;
        assert_eq!(status, 200, "{html}");
        assert!(csp.contains(&format!("frame-ancestors {origin}")), "{csp}");
        let hash = world.psa.issue_connectwise_member_hash(sbx::CW_MEMBER_ID);
        let (status, session) = json_of(
            world
                .app
                .client
                .post(world.app.url("/api/v1/pod/connectwise/session"))
                .json(&json!({
                    "connection_id": id,
                    "ticket_id": sbx::CW_TICKET_DANA.to_string(),
                    "member": {
                        "site": "ignored", "companyid": sbx::CW_COMPANY_ID,
                        "memberid": sbx::CW_MEMBER_ID, "memberHash": hash,
                        "memberContext": "x", "memberEmail": sbx::CW_MEMBER_EMAIL,
                    },
                }))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{session}");
        assert!(session["token"].is_string());

        // HaloPSA: the tab secret is Vouch's, returned once and in the setup values.
        let halo = create(&world, halopsa_body(&world)).await;
        assert_eq!(halo["name"], "HaloPSA");
        let tab_secret = halo["tab_secret"]["value"].as_str().unwrap().to_owned();
        assert_eq!(tab_secret.len(), 43, "256 bits, base64url");
        assert_ne!(tab_secret, sbx::HALO_TAB_SECRET);
        assert!(halo["client_secret"].get("value").is_none(), "{halo}");
        let id = halo["id"].as_str().unwrap();
        let (_, read) = call(
            &world,
            Method::GET,
            &format!("/api/v1/psa-connections/{id}"),
            None,
        )
        .await;
        assert_eq!(read["tab_secret"], json!({"set": true, "changed_at": halo["tab_secret"]["changed_at"]}));
        let setup = setup_of(&world, id).await;
        assert_eq!(setup["secret"]["field"], "tab_secret");
        assert_eq!(setup["secret"]["value"], tab_secret.as_str());
        let pod_url = setup["pod_url"].as_str().unwrap();
        assert!(!pod_url.contains(&tab_secret));
        assert_eq!(
            pod_url,
            format!("http://localhost:8080/pods/halopsa?connection={id}")
        );
        let extra = [
            ("ticket_id", sbx::HALO_TICKET_DANA.to_string()),
            ("agent_id", sbx::HALO_AGENT_ID.to_string()),
        ];
        let (status, csp, html) =
            get_page(&world, &signed(&local(&world, pod_url), &extra, &tab_secret)).await;
        assert_eq!(status, 200, "{html}");
        assert!(html.contains("data-token=\""), "{html}");
        assert!(csp.contains(&format!("frame-ancestors {origin}")), "{csp}");
        // The sandbox's own secret is not this connection's.
        let (status, _, html) = get_page(
            &world,
            &signed(&local(&world, pod_url), &extra, sbx::HALO_TAB_SECRET),
        )
        .await;
        assert_eq!(status, 403);
        assert!(html.contains("embed_bad_signature"), "{html}");

        // Autotask: the Insight secret likewise.
        let at = create(&world, autotask_body(&world)).await;
        let insight_secret = at["insight_secret"]["value"].as_str().unwrap().to_owned();
        assert_eq!(insight_secret.len(), 43);
        assert_eq!(
            at["zone_lookup_url_in_effect"],
            world.psa.autotask().zone_lookup_url
        );
        assert_eq!(at["allowed_origins"], json!([origin]));
        let id = at["id"].as_str().unwrap();
        let setup = setup_of(&world, id).await;
        assert_eq!(setup["secret"]["field"], "insight_secret");
        assert_eq!(setup["secret"]["value"], insight_secret.as_str());
        let steps = setup["steps"].to_string();
        assert!(steps.contains("Integration Center"), "{steps}");
        assert!(steps.contains("LiveLink"), "{steps}");
        let pod_url = setup["pod_url"].as_str().unwrap();
        let extra = [
            ("ticketId", sbx::AUTOTASK_TICKET_DANA.to_string()),
            ("resourceId", sbx::AUTOTASK_RESOURCE_ID.to_string()),
        ];
        let (status, _, html) =
            get_page(&world, &signed(&local(&world, pod_url), &extra, &insight_secret)).await;
        assert_eq!(status, 200, "{html}");
        assert!(html.contains("data-token=\""), "{html}");

        // The list has the demo's three and these three, oldest first.
        let (status, list) = call(&world, Method::GET, "/api/v1/psa-connections", None).await;
        assert_eq!(status, 200);
        assert_eq!(list.as_array().unwrap().len(), 6, "{list}");
        let unauthenticated = world
            .app
            .client
            .get(world.app.url("/api/v1/psa-connections"))
            .send()
            .await
            .unwrap();
        assert_eq!(unauthenticated.status(), 401);
    })
    .await;
}

/// The refusal of `body` on `method path`: 400 `invalid_request`, its message.
async fn refusal(world: &World, method: Method, path: &str, body: Value) -> String {
    let (status, answer) = call(world, method, path, Some(body)).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["code"], "invalid_request", "{answer}");
    answer["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_field_is_checked_and_a_refusal_names_it() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let path = "/api/v1/psa-connections";
        let with = |mut body: Value, field: &str, value: Value| {
            if value.is_null() {
                body.as_object_mut().unwrap().remove(field);
            } else {
                body[field] = value;
            }
            body
        };
        let cw = connectwise_body(&world);
        let cases: Vec<(Value, &str)> = vec![
            (with(cw.clone(), "kind", Value::Null), "`kind` is required"),
            (
                with(cw.clone(), "kind", json!("servicenow")),
                "`kind` must be one of: connectwise, halopsa, autotask",
            ),
            (
                with(cw.clone(), "company_id", Value::Null),
                "`company_id` is required",
            ),
            (
                with(cw.clone(), "company_id", json!(["northwind"])),
                "`company_id` must be a string",
            ),
            (
                with(cw.clone(), "company_id", json!("  ")),
                "`company_id` must not be empty",
            ),
            (
                with(cw.clone(), "name", json!("n".repeat(201))),
                "`name` must be at most 200 characters long",
            ),
            (
                with(cw.clone(), "site_url", json!("na.myconnectwise.net")),
                "`site_url` must be an absolute URL",
            ),
            (
                with(cw.clone(), "site_url", json!("http://na.myconnectwise.net")),
                "`site_url` must start with https://",
            ),
            (
                with(cw.clone(), "client_id", Value::Null),
                "`client_id` is required: this Vouch has no psa.connectwise.client_id",
            ),
            (
                with(
                    cw.clone(),
                    "allowed_origins",
                    json!(["https://psa.example/ticket"]),
                ),
                "`allowed_origins` must list origins",
            ),
            (
                with(cw.clone(), "allowed_origins", json!([])),
                "`allowed_origins` must name at least one origin",
            ),
            (
                with(halopsa_body(&world), "auth_url", Value::Null),
                "`auth_url` is required",
            ),
            (
                with(halopsa_body(&world), "client_secret", json!("   ")),
                "`client_secret` must not be empty",
            ),
            (
                with(
                    halopsa_body(&world),
                    "resource_url",
                    json!("https://user:pw@halo.example"),
                ),
                "`resource_url` must not carry a user name or password",
            ),
            (
                with(autotask_body(&world), "api_secret", Value::Null),
                "`api_secret` is required",
            ),
            (
                with(
                    autotask_body(&world),
                    "zone_lookup_url",
                    json!("ftp://zones.example/"),
                ),
                "`zone_lookup_url` must be an https:// URL",
            ),
        ];
        for (body, expected) in cases {
            let message = refusal(&world, Method::POST, path, body.clone()).await;
            assert!(message.contains(expected), "{expected}: {message}");
            for secret in [
                sbx::CW_PRIVATE_KEY,
                sbx::HALO_API_CLIENT_SECRET,
                sbx::AUTOTASK_API_SECRET,
            ] {
                assert!(!message.contains(secret), "{message}");
            }
        }
        let (_, list) = call(&world, Method::GET, path, None).await;
        assert_eq!(
            list.as_array().unwrap().len(),
            3,
            "nothing refused was saved"
        );

        // A change is checked the same way, and keeps the connection's PSA.
        let halo = create(&world, halopsa_body(&world)).await;
        let at = format!("{path}/{}", halo["id"].as_str().unwrap());
        let message = refusal(&world, Method::PATCH, &at, json!({"kind": "connectwise"})).await;
        assert!(message.contains("`kind` must be halopsa"), "{message}");
        let message = refusal(
            &world,
            Method::PATCH,
            &at,
            json!({"kind": "halopsa", "auth_url": "halo.example/auth"}),
        )
        .await;
        assert!(
            message.contains("`auth_url` must be an absolute URL"),
            "{message}"
        );
        let message = refusal(
            &world,
            Method::PATCH,
            &at,
            json!({"kind": "halopsa", "tenant": ["x"]}),
        )
        .await;
        assert!(message.contains("`tenant` must be a string"), "{message}");

        // Unknown and malformed ids.
        let missing = format!("{path}/{}", uuid::Uuid::now_v7());
        for method in [Method::GET, Method::DELETE] {
            let (status, body) = call(&world, method, &missing, None).await;
            assert_eq!(
                (status, body["code"].as_str()),
                (404, Some("psa_connection_not_found"))
            );
        }
        let (status, body) = call(&world, Method::GET, &format!("{missing}/setup"), None).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (404, Some("psa_connection_not_found"))
        );
        let (status, body) = call(&world, Method::GET, &format!("{path}/not-an-id"), None).await;
        assert_eq!(status, 400);
        assert!(body["message"].as_str().unwrap().contains("`id`"), "{body}");
    })
    .await;
}

#[tokio::test]
async fn no_answer_of_any_connections_operation_carries_a_secret() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let path = "/api/v1/psa-connections";
        // What the admin gives: never in any answer.
        let mut given: Vec<String> = vec![
            sbx::CW_PRIVATE_KEY.into(),
            sbx::HALO_API_CLIENT_SECRET.into(),
            sbx::AUTOTASK_API_SECRET.into(),
        ];
        // What Vouch generates: only in the create answer and the setup values.
        let mut generated: Vec<String> = Vec::new();
        let mut answers: Vec<(String, Value)> = Vec::new();

        let mut ids = Vec::new();
        for body in [connectwise_body(&world), halopsa_body(&world), autotask_body(&world)] {
            let created = create(&world, body).await;
            for field in ["tab_secret", "insight_secret"] {
                if let Some(value) = created[field]["value"].as_str() {
                    generated.push(value.to_owned());
                }
            }
            let scanned = created.to_string();
            for secret in &given {
                assert!(!scanned.contains(secret.as_str()), "create: {scanned}");
            }
            ids.push((created["id"].as_str().unwrap().to_owned(), created["kind"].as_str().unwrap().to_owned()));
        }
        assert_eq!(generated.len(), 2);

        for (id, kind) in &ids {
            let one = format!("{path}/{id}");
            answers.push(("get".into(), call(&world, Method::GET, &one, None).await.1));
            let setup = setup_of(&world, id).await;
            let mut shown = setup.clone();
            if let Some(secret) = shown.get_mut("secret").filter(|s| s.is_object()) {
                secret["value"] = json!("(the one place it is shown)");
            }
            answers.push(("setup".into(), shown));
            // A change of every secret, then one leaving them as they are.
            let new_secret = format!("new-{kind}-secret-{}", uuid::Uuid::now_v7().simple());
            let field = match kind.as_str() {
                "connectwise" => "private_key",
                "halopsa" => "client_secret",
                _ => "api_secret",
            };
            given.push(new_secret.clone());
            let (status, changed) = call(
                &world,
                Method::PATCH,
                &one,
                Some(json!({"kind": kind, field: new_secret, "name": "renamed"})),
            )
            .await;
            assert_eq!(status, 200, "{changed}");
            assert_eq!(changed[field]["set"], true);
            answers.push(("patch".into(), changed));
            answers.push((
                "patch (no secret)".into(),
                call(&world, Method::PATCH, &one, Some(json!({"kind": kind}))).await.1,
            ));
            // A refused change quoting nothing.
            answers.push((
                "refused patch".into(),
                call(
                    &world,
                    Method::PATCH,
                    &one,
                    Some(json!({"kind": kind, field: "another-secret-value-1234", "allowed_origins": ["nope"]})),
                )
                .await
                .1,
            ));
            given.push("another-secret-value-1234".into());
        }
        answers.push(("list".into(), call(&world, Method::GET, path, None).await.1));
        answers.push((
            "audit".into(),
            call(&world, Method::GET, "/api/v1/audit?limit=1000", None).await.1,
        ));
        for (id, _) in &ids {
            let (status, body) = call(&world, Method::DELETE, &format!("{path}/{id}"), None).await;
            assert_eq!(status, 204);
            answers.push(("delete".into(), body));
        }
        answers.push((
            "audit after delete".into(),
            call(&world, Method::GET, "/api/v1/audit?limit=1000", None).await.1,
        ));
        let audit = answers.last().unwrap().1.to_string();
        assert!(audit.contains("psa_connection.create"), "{audit}");
        assert!(audit.contains("psa_connection.update"), "{audit}");
        assert!(audit.contains("psa_connection.delete"), "{audit}");

        for (what, answer) in &answers {
            let text = answer.to_string();
            for secret in given.iter().chain(&generated) {
                assert!(!text.contains(secret.as_str()), "{what} shows a secret: {text}");
            }
            if what != "setup" {
                assert!(!text.contains("\"value\""), "{what}: {text}");
            }
        }
    })
    .await;
}

#[tokio::test]
async fn deleting_a_connection_removes_its_secrets_and_mappings_and_keeps_the_audit() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let halo = create(&world, halopsa_body(&world)).await;
        let id = halo["id"].as_str().unwrap().to_owned();
        let uuid: uuid::Uuid = id.parse().unwrap();
        let tenant = world
            .app
            .store
            .find_tenant_by_microsoft_id(world.msp.id, vouch::sandbox::microsoft::DEMO_TENANT_ID)
            .await
            .unwrap()
            .unwrap();
        world
            .app
            .store
            .map_company(CompanyMapping {
                msp_id: world.msp.id,
                psa_connection_id: uuid,
                psa_company_id: sbx::HALO_CONTOSO_CLIENT_ID.to_string(),
                psa_company_name: "Contoso Ltd".into(),
                tenant_id: tenant.id,
            })
            .await
            .unwrap();
        // A pod open through it (so the pod service has cached the connection).
        let tab_secret = halo["tab_secret"]["value"].as_str().unwrap().to_owned();
        let pod_url = setup_of(&world, &id).await["pod_url"]
            .as_str()
            .unwrap()
            .to_owned();
        let extra = [
            ("ticket_id", sbx::HALO_TICKET_DANA.to_string()),
            ("agent_id", sbx::HALO_AGENT_ID.to_string()),
        ];
        let load = || signed(&local(&world, &pod_url), &extra, &tab_secret);
        let (status, _, _) = get_page(&world, &load()).await;
        assert_eq!(status, 200);
        assert_eq!(
            world.app.store.count_company_mappings(uuid).await.unwrap(),
            1
        );

        let (status, _) = call(
            &world,
            Method::DELETE,
            &format!("/api/v1/psa-connections/{id}"),
            None,
        )
        .await;
        assert_eq!(status, 204);
        assert!(
            world
                .app
                .store
                .get_connection(uuid)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            world.app.store.count_company_mappings(uuid).await.unwrap(),
            0
        );
        assert!(
            world
                .app
                .store
                .tenant_for_company(uuid, &sbx::HALO_CONTOSO_CLIENT_ID.to_string())
                .await
                .unwrap()
                .is_none()
        );
        // The other connections' mappings stay.
        let (_, list) = call(&world, Method::GET, "/api/v1/psa-connections", None).await;
        assert_eq!(list.as_array().unwrap().len(), 3);
        // At once on this instance: the pod no longer opens.
        let (status, _, html) = get_page(&world, &load()).await;
        assert_eq!(status, 403, "{html}");
        // Gone, and deleting again finds nothing.
        let (status, body) = call(
            &world,
            Method::DELETE,
            &format!("/api/v1/psa-connections/{id}"),
            None,
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (404, Some("psa_connection_not_found"))
        );

        let (_, audit) = call(
            &world,
            Method::GET,
            &format!("/api/v1/audit?subject_id={id}"),
            None,
        )
        .await;
        let actions: Vec<&str> = audit
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(
            actions,
            ["psa_connection.delete", "psa_connection.create"],
            "{audit}"
        );
        let deleted = &audit[0];
        assert_eq!(deleted["actor_kind"], "api_key");
        assert_eq!(deleted["details"]["company_mappings_removed"], 1);
        assert_eq!(deleted["details"]["before"]["id"], id.as_str());
        assert_eq!(deleted["details"]["after"], Value::Null);
        assert_eq!(audit[1]["details"]["before"], Value::Null);
        assert_eq!(
            audit[1]["details"]["after"]["details"]["tab_secret"]["set"],
            true
        );
    })
    .await;
}

#[tokio::test]
async fn a_change_is_seen_by_the_pods_at_once_and_audited_before_and_after() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let halo = create(&world, halopsa_body(&world)).await;
        let id = halo["id"].as_str().unwrap().to_owned();
        let one = format!("/api/v1/psa-connections/{id}");
        let tab_secret = halo["tab_secret"]["value"].as_str().unwrap().to_owned();
        let pod_url = setup_of(&world, &id).await["pod_url"]
            .as_str()
            .unwrap()
            .to_owned();
        let extra = [
            ("ticket_id", sbx::HALO_TICKET_DANA.to_string()),
            ("agent_id", sbx::HALO_AGENT_ID.to_string()),
        ];
        let load = || signed(&local(&world, &pod_url), &extra, &tab_secret);
        let (status, csp, _) = get_page(&world, &load()).await;
        assert_eq!(status, 200);
        assert!(
            csp.contains(&format!("frame-ancestors {}", world.psa.base_url())),
            "{csp}"
        );

        let (status, changed) = call(
            &world,
            Method::PATCH,
            &one,
            Some(json!({
                "kind": "halopsa",
                "allowed_origins": ["https://msp.halopsa.example/", "https://msp.halopsa.example"],
                "tenant": "northwind",
            })),
        )
        .await;
        assert_eq!(status, 200, "{changed}");
        assert_eq!(
            changed["allowed_origins"],
            json!(["https://msp.halopsa.example"])
        );
        assert_eq!(changed["allowed_origins_custom"], true);
        assert_eq!(changed["tenant"], "northwind");
        assert_eq!(
            changed["client_secret"], halo["client_secret"],
            "a secret left out stays"
        );
        let (status, csp, _) = get_page(&world, &load()).await;
        assert_eq!(status, 200);
        assert!(
            csp.contains("frame-ancestors https://msp.halopsa.example"),
            "seen at once: {csp}"
        );

        // `null` goes back to the default.
        let (_, changed) = call(
            &world,
            Method::PATCH,
            &one,
            Some(json!({"kind": "halopsa", "allowed_origins": null, "tenant": null})),
        )
        .await;
        assert_eq!(changed["allowed_origins"], json!([world.psa.base_url()]));
        assert_eq!(changed["allowed_origins_custom"], false);
        assert_eq!(changed["tenant"], Value::Null);

        // A new client secret changes its date, and the tab secret stays.
        let (_, changed) = call(
            &world,
            Method::PATCH,
            &one,
            Some(json!({"kind": "halopsa", "client_secret": sbx::HALO_API_CLIENT_SECRET})),
        )
        .await;
        assert!(
            changed["client_secret"]["changed_at"].as_str()
                > halo["client_secret"]["changed_at"].as_str(),
            "{changed}"
        );
        assert_eq!(
            changed["tab_secret"],
            json!({"set": true, "changed_at": halo["tab_secret"]["changed_at"]})
        );
        let (status, _, html) = get_page(&world, &load()).await;
        assert_eq!(
            status, 200,
            "the pod still opens with the same tab secret: {html}"
        );

        let (_, audit) = call(
            &world,
            Method::GET,
            &format!("/api/v1/audit?subject_id={id}&action=psa_connection.update"),
            None,
        )
        .await;
        let entries = audit.as_array().unwrap();
        assert_eq!(entries.len(), 3, "{audit}");
        let first = &entries[2];
        assert_eq!(
            first["details"]["before"]["allowed_origins"],
            json!([world.psa.base_url()])
        );
        assert_eq!(
            first["details"]["after"]["allowed_origins"],
            json!(["https://msp.halopsa.example"])
        );
        assert_eq!(first["actor_kind"], "api_key");
    })
    .await;
}
