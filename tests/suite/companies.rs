//! The PSA's companies over real HTTP against the three PSA sandboxes: listing with search
//! and paging, suggested mappings with their evidence, accepting them (and the 409 of a
//! company mapped elsewhere), and `vouch company list --psa|suggest`, on every backend.

use crate::{backends, common};

use backends::on_every_backend;
use common::world::{World, call};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use vouch::domain::{ActorKind, MspPolicy};
use vouch::sandbox::microsoft::{
    DEMO_TENANT_ID, DEMO_TENANT_NAME, IDENTITY_APP_PERMISSIONS, NO_P1_TENANT_ID, NO_P1_TENANT_NAME,
    SandboxApp, Service, TAILSPIN_TENANT_ID, TAILSPIN_TENANT_NAME,
};
use vouch::sandbox::psa::{self as sbx, Psa};
use vouch::store::audit::AuditActor;

/// Connects another sandbox tenant through an Identity Management app of its own, as an
/// admin would; its Vouch id.
async fn connect_tenant(world: &World, tenant: &str, app_id: &str) -> String {
    let secret = format!("secret-of-{app_id}");
    world.microsoft.add_app(SandboxApp {
        client_id: app_id.into(),
        secret: secret.clone(),
        secret_expires_at: Some(chrono::Utc::now() + chrono::Duration::days(300)),
        tenant_id: tenant.into(),
        permissions: IDENTITY_APP_PERMISSIONS
            .iter()
            .map(|p| p.to_string())
            .collect(),
    });
    world
        .app
        .ctx
        .integrations
        .connect_identity_management(
            world.msp.id,
            &AuditActor {
                kind: ActorKind::System,
                id: None,
                name: None,
            },
            vouch::core::integrations::IdentityManagementInput {
                tenant: tenant.into(),
                client_id: app_id.into(),
                client_secret: SecretString::from(secret),
                secret_expires_at: None,
            },
        )
        .await
        .expect("the tenant connects");
    tenant_id(world, tenant).await
}

async fn tenant_id(world: &World, microsoft_id: &str) -> String {
    let (status, tenants) = call(world, Method::GET, "/api/v1/tenants", None).await;
    assert_eq!(status, 200, "{tenants}");
    tenants
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["microsoft_tenant_id"] == microsoft_id)
        .unwrap_or_else(|| panic!("no tenant {microsoft_id} in {tenants}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The id of the world's connection of each PSA.
async fn connections(world: &World) -> Vec<(Psa, String)> {
    let (status, list) = call(world, Method::GET, "/api/v1/psa-connections", None).await;
    assert_eq!(status, 200, "{list}");
    [
        (Psa::ConnectWise, "connectwise"),
        (Psa::HaloPsa, "halopsa"),
        (Psa::Autotask, "autotask"),
    ]
    .into_iter()
    .map(|(psa, kind)| {
        let id = list
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} connection in {list}"))["id"]
            .as_str()
            .unwrap()
            .to_owned();
        (psa, id)
    })
    .collect()
}

fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn each_psa_lists_its_companies_with_search_and_pages() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        for (psa, id) in connections(&world).await {
            let path = format!("/api/v1/psa-connections/{id}/companies");
            let (status, first) =
                call(&world, Method::GET, &format!("{path}?page_size=3"), None).await;
            assert_eq!(status, 200, "{psa:?}: {first}");
            assert_eq!(first["page"], 1);
            assert_eq!(
                first["items"].as_array().unwrap().len(),
                3,
                "{psa:?}: {first}"
            );
            assert_eq!(first["has_more"], true, "{psa:?}: {first}");
            let (status, second) = call(
                &world,
                Method::GET,
                &format!("{path}?page_size=3&page=2"),
                None,
            )
            .await;
            assert_eq!(status, 200, "{psa:?}: {second}");
            assert_eq!(second["has_more"], false, "{psa:?}: {second}");
            let mut all = names(&first);
            all.extend(names(&second));
            all.sort();
            assert_eq!(
                all,
                [
                    sbx::CONTOSO_NAME,
                    sbx::FABRIKAM_NAME,
                    sbx::LITWARE_NAME,
                    sbx::TAILSPIN_NAME
                ],
                "{psa:?}: every company once across the pages"
            );
            // Contoso is mapped (by the world's set-up); the others are not.
            let (_, everything) = call(&world, Method::GET, &path, None).await;
            for company in everything["items"].as_array().unwrap() {
                if company["name"] == sbx::CONTOSO_NAME {
                    assert_eq!(
                        company["mapping"]["tenant_name"], DEMO_TENANT_NAME,
                        "{psa:?}"
                    );
                } else {
                    assert!(company["mapping"].is_null(), "{psa:?}: {company}");
                }
            }

            let (status, found) =
                call(&world, Method::GET, &format!("{path}?search=fabri"), None).await;
            assert_eq!(status, 200, "{psa:?}: {found}");
            assert_eq!(names(&found), [sbx::FABRIKAM_NAME], "{psa:?}: {found}");
            assert_eq!(
                found["items"][0]["website"],
                sbx::FABRIKAM_WEBSITE,
                "{psa:?}"
            );
            assert_eq!(found["has_more"], false);
            let (_, none) = call(&world, Method::GET, &format!("{path}?search=nobody"), None).await;
            assert_eq!(none["items"], json!([]), "{psa:?}: {none}");

            // The same page again is served from the cache, not the PSA.
            let before = world.psa.requests().len();
            let (_, again) = call(&world, Method::GET, &format!("{path}?page_size=3"), None).await;
            assert_eq!(names(&again), names(&first));
            assert_eq!(
                world.psa.requests().len(),
                before,
                "{psa:?}: read from the cache"
            );

            let (status, refused) =
                call(&world, Method::GET, &format!("{path}?page_size=101"), None).await;
            assert_eq!(status, 400, "{refused}");
            assert_eq!(refused["code"], "invalid_request");
            assert!(
                refused["message"].as_str().unwrap().contains("page_size"),
                "{refused}"
            );
        }
        // Each PSA was read on its own wire.
        assert!(
            world
                .psa
                .count(Psa::ConnectWise, "GET", "/company/companies")
                >= 1
        );
        assert!(world.psa.count(Psa::HaloPsa, "GET", "/api/Client") >= 1);
        assert!(world.psa.count(Psa::Autotask, "POST", "/Companies/query") >= 1);
        assert!(
            world
                .psa
                .count(Psa::Autotask, "GET", "/Companies/query/next")
                >= 1
        );

        let (status, unknown) = call(
            &world,
            Method::GET,
            &format!("/api/v1/psa-connections/{}/companies", uuid::Uuid::new_v4()),
            None,
        )
        .await;
        assert_eq!(status, 404, "{unknown}");
        assert_eq!(unknown["code"], "psa_connection_not_found");
    })
    .await;
}

/// The evidence of a suggestion, by kind.
fn evidence(suggestion: &Value, kind: &str) -> Option<String> {
    suggestion["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == kind)
        .map(|e| e["text"].as_str().unwrap().to_owned())
}

fn suggestion_for<'a>(all: &'a Value, connection: &str, company: &str) -> &'a Value {
    all["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["psa_connection_id"] == connection && s["psa_company_name"] == company)
        .unwrap_or_else(|| panic!("no suggestion for {company} of {connection} in {all}"))
}

#[tokio::test]
async fn suggestions_carry_their_evidence_and_are_accepted_one_by_one() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let contoso = tenant_id(&world, DEMO_TENANT_ID).await;
        let fabrikam = connect_tenant(&world, NO_P1_TENANT_ID, "c0ffee00-0000-4000-8000-0000000000f1").await;
        let tailspin = connect_tenant(&world, TAILSPIN_TENANT_ID, "c0ffee00-0000-4000-8000-0000000000f2").await;
        // Start from no mappings at all.
        let (_, mappings) = call(&world, Method::GET, "/api/v1/company-mappings", None).await;
        for m in mappings.as_array().unwrap() {
            let (status, _) = call(
                &world,
                Method::DELETE,
                &format!("/api/v1/company-mappings/{}", m["id"].as_str().unwrap()),
                None,
            )
            .await;
            assert_eq!(status, 200);
        }
        let connections = connections(&world).await;
        world.microsoft.clear_requests();

        let (status, all) = call(&world, Method::GET, "/api/v1/company-mappings/suggestions", None).await;
        assert_eq!(status, 200, "{all}");
        assert_eq!(all["incomplete"], json!([]), "{all}");
        assert_eq!(all["suggestions"].as_array().unwrap().len(), 9, "{all}");
        for (psa, id) in &connections {
            let c = suggestion_for(&all, id, sbx::CONTOSO_NAME);
            assert_eq!(c["tenant_id"], contoso.as_str(), "{psa:?}: {c}");
            assert_eq!(
                evidence(c, "contact_domains").as_deref(),
                Some("7 contacts at contoso.example, a verified domain of Contoso (demo customer)"),
                "{psa:?}: {c}"
            );
            assert_eq!(c["evidence"][0]["kind"], "contact_domains", "strongest first: {c}");
            assert_eq!(c["score"], 100, "{c}");
            assert_eq!(c["confidence"], "high");

            let f = suggestion_for(&all, id, sbx::FABRIKAM_NAME);
            assert_eq!(f["tenant_id"], fabrikam.as_str(), "{psa:?}: {f}");
            assert_eq!(
                evidence(f, "website").as_deref(),
                Some("its website https://www.fabrikam.example/ is at fabrikam.example, a verified domain of Fabrikam (no P1)"),
                "{psa:?}: {f}"
            );
            assert_eq!(
                evidence(f, "contact_domains").as_deref(),
                Some("1 contact at fabrikam.example, a verified domain of Fabrikam (no P1)"),
            );
            assert_eq!(f["confidence"], "high");
            assert!(f["summary"].as_str().unwrap().contains("its website"), "{f}");

            let t = suggestion_for(&all, id, sbx::TAILSPIN_NAME);
            assert_eq!(t["tenant_id"], tailspin.as_str(), "{psa:?}: {t}");
            assert_eq!(t["tenant_name"], TAILSPIN_TENANT_NAME);
            assert_eq!(t["evidence"].as_array().unwrap().len(), 1, "name only: {t}");
            assert_eq!(
                evidence(t, "name").as_deref(),
                Some("its name \"Tailspin Toys Inc.\" is the tenant's \"Tailspin Toys\" (legal form and brackets aside)")
            );
            assert_eq!(t["score"], 70);
            assert_eq!(t["confidence"], "medium");

            assert!(
                all["unmatched"].as_array().unwrap().iter().any(|u| u["psa_connection_id"] == id.as_str()
                    && u["psa_company_name"] == sbx::LITWARE_NAME),
                "{psa:?}: Litware matches nothing: {all}"
            );
        }
        // Each tenant's verified domains were read from Graph once, then cached.
        let organization_reads = world.microsoft.count(Service::Graph, "GET", "organization");
        assert_eq!(organization_reads, 3, "one read per tenant");
        let (cw, cw_id) = connections[0].clone();
        assert_eq!(cw, Psa::ConnectWise);
        let (status, one) = call(
            &world,
            Method::GET,
            &format!("/api/v1/company-mappings/suggestions?psa_connection_id={cw_id}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{one}");
        assert_eq!(one["suggestions"].as_array().unwrap().len(), 3, "{one}");
        assert_eq!(world.microsoft.count(Service::Graph, "GET", "organization"), organization_reads);

        // Halo's Contoso is mapped to Contoso by hand; then accepting it for Fabrikam fails,
        // naming Contoso, while the other suggestions are mapped.
        let halo_id = connections[1].1.clone();
        let (status, _) = call(
            &world,
            Method::PUT,
            "/api/v1/company-mappings",
            Some(json!({
                "psa_connection_id": halo_id, "psa_company_id": sbx::HALO_CONTOSO_CLIENT_ID.to_string(),
                "psa_company_name": sbx::CONTOSO_NAME, "tenant_id": contoso,
            })),
        )
        .await;
        assert_eq!(status, 201);
        let accepted = |s: &Value| {
            json!({
                "psa_connection_id": s["psa_connection_id"], "psa_company_id": s["psa_company_id"],
                "psa_company_name": s["psa_company_name"], "tenant_id": s["tenant_id"],
            })
        };
        let (status, results) = call(
            &world,
            Method::POST,
            "/api/v1/company-mappings/suggestions/accept",
            Some(json!({ "suggestions": [
                accepted(suggestion_for(&all, &cw_id, sbx::CONTOSO_NAME)),
                accepted(suggestion_for(&all, &cw_id, sbx::FABRIKAM_NAME)),
                {
                    "psa_connection_id": halo_id, "psa_company_id": sbx::HALO_CONTOSO_CLIENT_ID.to_string(),
                    "psa_company_name": sbx::CONTOSO_NAME, "tenant_id": fabrikam,
                },
            ]})),
        )
        .await;
        assert_eq!(status, 200, "{results}");
        let results = results["results"].as_array().unwrap().clone();
        assert_eq!(results.len(), 3);
        assert_eq!(results[0]["outcome"], "created", "{results:?}");
        assert_eq!(results[0]["mapping"]["tenant_name"], DEMO_TENANT_NAME);
        assert_eq!(results[1]["outcome"], "created", "{results:?}");
        assert_eq!(results[1]["mapping"]["tenant_name"], NO_P1_TENANT_NAME);
        assert_eq!(results[2]["outcome"], "failed", "{results:?}");
        assert_eq!(results[2]["code"], "company_already_mapped");
        assert!(
            results[2]["message"].as_str().unwrap().contains(DEMO_TENANT_NAME),
            "names the tenant it is mapped to: {results:?}"
        );
        assert!(results[2]["mapping"].is_null());
        // Nothing half-done: Halo's Contoso is still Contoso's.
        let (_, halo_mappings) = call(
            &world,
            Method::GET,
            &format!("/api/v1/company-mappings?psa_connection_id={halo_id}"),
            None,
        )
        .await;
        assert_eq!(halo_mappings.as_array().unwrap().len(), 1, "{halo_mappings}");
        assert_eq!(halo_mappings[0]["tenant_id"], contoso.as_str());
        // Each accepted suggestion is audited like a PUT, and so is the refusal.
        let (_, audit) = call(&world, Method::GET, "/api/v1/audit?action=company_mapping.create", None).await;
        let entries = audit["entries"].as_array().or(audit.as_array()).unwrap().clone();
        // (The world's own set-up mapped Contoso in each PSA, as `vouch demo`.)
        let outcomes: Vec<&str> = entries
            .iter()
            .filter(|e| e["actor_name"] != "vouch demo")
            .map(|e| e["outcome"].as_str().unwrap())
            .collect();
        assert_eq!(outcomes.iter().filter(|o| **o == "success").count(), 3, "{audit}");
        assert_eq!(outcomes.iter().filter(|o| **o == "refused").count(), 1, "{audit}");

        // Accepting a mapping that is there keeps it.
        let (_, again) = call(
            &world,
            Method::POST,
            "/api/v1/company-mappings/suggestions/accept",
            Some(json!({ "suggestions": [accepted(suggestion_for(&all, &cw_id, sbx::CONTOSO_NAME))] })),
        )
        .await;
        assert_eq!(again["results"][0]["outcome"], "kept", "{again}");
        // Mapped companies are no longer suggested.
        let (_, after) = call(&world, Method::GET, "/api/v1/company-mappings/suggestions", None).await;
        let left: Vec<(String, String)> = after["suggestions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["psa_connection_id"].as_str().unwrap().to_owned(), s["psa_company_name"].as_str().unwrap().to_owned()))
            .collect();
        assert_eq!(left.len(), 6, "{after}");
        assert!(!left.contains(&(cw_id.clone(), sbx::CONTOSO_NAME.to_owned())));
        assert!(!left.contains(&(cw_id.clone(), sbx::FABRIKAM_NAME.to_owned())));
        assert!(!left.contains(&(halo_id.clone(), sbx::CONTOSO_NAME.to_owned())));

        let (status, empty) = call(
            &world,
            Method::POST,
            "/api/v1/company-mappings/suggestions/accept",
            Some(json!({ "suggestions": [] })),
        )
        .await;
        assert_eq!(status, 400, "{empty}");
        assert_eq!(empty["code"], "invalid_request");
    })
    .await;
}

#[tokio::test]
async fn a_psa_that_fails_is_named_and_the_rest_is_still_suggested() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        connect_tenant(
            &world,
            NO_P1_TENANT_ID,
            "c0ffee00-0000-4000-8000-0000000000f3",
        )
        .await;
        let connections = connections(&world).await;
        world.psa.inject_fault(
            Psa::HaloPsa,
            "/api/Client",
            sbx::PsaFault::Status {
                status: 503,
                body: String::new(),
                retry_after: None,
            },
            10,
        );
        let (status, all) = call(
            &world,
            Method::GET,
            "/api/v1/company-mappings/suggestions",
            None,
        )
        .await;
        assert_eq!(status, 200, "{all}");
        let incomplete = all["incomplete"].as_array().unwrap();
        assert_eq!(incomplete.len(), 1, "{all}");
        assert_eq!(
            incomplete[0]["psa_connection_id"],
            connections[1].1.as_str()
        );
        assert_eq!(incomplete[0]["code"], "psa_unavailable");
        // ConnectWise's and Autotask's Fabrikam are still suggested.
        assert_eq!(all["suggestions"].as_array().unwrap().len(), 2, "{all}");
        // Listing that PSA answers its error.
        let (status, failed) = call(
            &world,
            Method::GET,
            &format!("/api/v1/psa-connections/{}/companies", connections[1].1),
            None,
        )
        .await;
        assert_eq!(status, 503, "{failed}");
        assert_eq!(failed["code"], "psa_unavailable");
    })
    .await;
}

/// `vouch company list --psa` and `vouch company suggest --accept`, over the same services,
/// against the sandboxes; errors print the API's code and sentence and exit non-zero.
#[tokio::test]
async fn the_command_line_lists_psa_companies_and_accepts_suggestions() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        connect_tenant(
            &world,
            NO_P1_TENANT_ID,
            "c0ffee00-0000-4000-8000-0000000000f4",
        )
        .await;
        let connections = connections(&world).await;
        let key = world
            .app
            .ctx
            .config
            .encryption
            .master_key
            .as_ref()
            .unwrap()
            .expose_secret()
            .to_owned();
        // Async: the sandboxes answer the command on this test's runtime while it waits.
        let vouch = |args: &[&str]| {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_vouch"))
                .args(args)
                .env_clear()
                .env("VOUCH__ENCRYPTION__MASTER_KEY", &key)
                .env("VOUCH__DATABASE__URL", &db.url)
                .env("VOUCH__MICROSOFT__LOGIN_URL", world.microsoft.login_url())
                .env("VOUCH__MICROSOFT__GRAPH_URL", world.microsoft.graph_url())
                .env("VOUCH__LOG__FILTER", "error")
                .output()
        };
        let msp = world.msp.name.as_str();
        let autotask = &connections[2].1;
        let listed = vouch(&[
            "company",
            "list",
            "--msp",
            msp,
            "--psa",
            "--psa-connection",
            autotask,
            "--search",
            "toys",
            "--json",
        ])
        .await
        .unwrap();
        assert!(
            listed.status.success(),
            "{}",
            String::from_utf8_lossy(&listed.stderr)
        );
        let page: Value = serde_json::from_slice(&listed.stdout).unwrap();
        assert_eq!(page["items"][0]["name"], sbx::TAILSPIN_NAME, "{page}");
        assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");

        // Contoso is mapped already; Fabrikam (high) is accepted, Tailspin (its tenant is
        // not connected here) and Litware match nothing.
        let suggested = vouch(&["company", "suggest", "--msp", msp, "--accept", "--json"])
            .await
            .unwrap();
        assert!(
            suggested.status.success(),
            "{}",
            String::from_utf8_lossy(&suggested.stderr)
        );
        let out: Value = serde_json::from_slice(&suggested.stdout).unwrap();
        let results = out["results"].as_array().unwrap();
        assert_eq!(results.len(), 3, "{out}");
        assert!(results.iter().all(|r| r["outcome"] == "created"), "{out}");
        assert_eq!(out["unmatched"].as_array().unwrap().len(), 6, "{out}");
        let (_, mappings) = call(&world, Method::GET, "/api/v1/company-mappings", None).await;
        let fabrikams = mappings
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| {
                m["psa_company_name"] == sbx::FABRIKAM_NAME && m["tenant_name"] == NO_P1_TENANT_NAME
            })
            .count();
        assert_eq!(fabrikams, 3, "{mappings}");

        let lines = vouch(&["company", "suggest", "--msp", msp]).await.unwrap();
        assert!(lines.status.success());
        let text = String::from_utf8_lossy(&lines.stdout);
        assert!(text.contains("no likely tenant"), "{text}");

        let unknown = vouch(&[
            "company",
            "suggest",
            "--msp",
            msp,
            "--psa-connection",
            &uuid::Uuid::new_v4().to_string(),
        ])
        .await
        .unwrap();
        assert!(!unknown.status.success());
        let stderr = String::from_utf8_lossy(&unknown.stderr);
        assert!(
            stderr.contains(
                "psa_connection_not_found: No PSA connection with this id belongs to your MSP"
            ),
            "{stderr}"
        );
    })
    .await;
}
