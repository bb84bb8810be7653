//! The set-up API over real HTTP: company mappings (and what the pod makes of them at once),
//! tenants (list, rename, removal) and API keys (list, revoke), on every backend.

use crate::{backends, common};

use backends::on_every_backend;
use common::world::{World, call, json_of};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{Value, json};
use uuid::Uuid;
use vouch::domain::{ActorKind, MspPolicy, PsaKind, ResetStatus};
use vouch::sandbox::microsoft::{
    DEMO_TENANT_ID, IDENTITY_APP_PERMISSIONS, NO_P1_TENANT_ID, NO_P1_TENANT_NAME, SandboxApp,
};
use vouch::sandbox::psa as sbx;
use vouch::store::access::sha256_hex;
use vouch::store::audit::AuditActor;
use vouch::store::resets::{ClaimOutcome, NewReset, ResetCompletion};

use super::pods::{halo_token, pod};

const FABRIKAM_APP_ID: &str = "c0ffee00-1d3a-4e2b-8f6a-0000000000fb";
const FABRIKAM_APP_SECRET: &str = "sandbox-fabrikam-identity-secret";

/// Connects Fabrikam (a second customer) through an Identity Management app of its own: the
/// test's set-up, as an admin would with `POST /v1/integrations/identity-management`.
async fn connect_fabrikam(world: &World) -> Uuid {
    world.microsoft.add_app(SandboxApp {
        client_id: FABRIKAM_APP_ID.into(),
        secret: FABRIKAM_APP_SECRET.into(),
        secret_expires_at: Some(chrono::Utc::now() + chrono::Duration::days(300)),
        tenant_id: NO_P1_TENANT_ID.into(),
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
                tenant: NO_P1_TENANT_ID.into(),
                client_id: FABRIKAM_APP_ID.into(),
                client_secret: SecretString::from(FABRIKAM_APP_SECRET.to_owned()),
                secret_expires_at: None,
            },
        )
        .await
        .expect("Fabrikam connects");
    tenant_by_microsoft_id(world, NO_P1_TENANT_ID).await["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn tenants(world: &World) -> Vec<Value> {
    let (status, body) = call(world, Method::GET, "/api/v1/tenants", None).await;
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap().clone()
}

async fn tenant_by_microsoft_id(world: &World, id: &str) -> Value {
    tenants(world)
        .await
        .into_iter()
        .find(|t| t["microsoft_tenant_id"] == id)
        .unwrap_or_else(|| panic!("tenant {id} is listed"))
}

async fn halo_connection(world: &World) -> Uuid {
    world
        .app
        .store
        .list_connections(world.msp.id)
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.kind == PsaKind::HaloPsa)
        .unwrap()
        .id
}

async fn context(world: &World, token: &str) -> Value {
    let (status, context) = json_of(
        pod(world, token, Method::GET, "/context")
            .await
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{context}");
    context
}

async fn audit(world: &World, action: &str) -> Vec<Value> {
    let (status, body) = call(
        world,
        Method::GET,
        &format!("/api/v1/audit?action={action}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap().clone()
}

#[tokio::test]
async fn a_mapping_made_by_the_api_is_seen_by_the_pod_at_once_and_a_remap_names_the_tenant() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let halo = halo_connection(&world).await;
        let contoso = tenant_by_microsoft_id(&world, DEMO_TENANT_ID).await;
        let contoso_id = contoso["id"].as_str().unwrap().to_owned();
        assert_eq!(
            contoso["mappings"].as_array().unwrap().len(),
            3,
            "the three sandbox PSAs' Contoso: {contoso}"
        );

        // Kim's company, Fabrikam, is not mapped yet.
        let token = halo_token(&world, sbx::HALO_TICKET_KIM).await;
        let before = context(&world, &token).await;
        assert_eq!(
            before["user_error"]["code"], "company_not_mapped",
            "{before}"
        );
        assert!(before["tenant"].is_null(), "{before}");

        let fabrikam = connect_fabrikam(&world).await;
        let mapping = json!({
            "psa_connection_id": halo,
            "psa_company_id": sbx::HALO_FABRIKAM_CLIENT_ID.to_string(),
            "psa_company_name": "Fabrikam",
            "tenant_id": fabrikam,
        });
        let (status, created) = call(
            &world,
            Method::PUT,
            "/api/v1/company-mappings",
            Some(mapping.clone()),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["tenant_name"], NO_P1_TENANT_NAME);
        let mapping_id = created["id"].as_str().unwrap().to_owned();

        // The same mapping again keeps it.
        let (status, kept) = call(
            &world,
            Method::PUT,
            "/api/v1/company-mappings",
            Some(mapping.clone()),
        )
        .await;
        assert_eq!(status, 200, "{kept}");
        assert_eq!(kept["id"], mapping_id.as_str());

        // The same pod, reloaded: its ticket now resolves to Fabrikam and Kim.
        let after = context(&world, &token).await;
        assert_eq!(after["tenant"]["name"], NO_P1_TENANT_NAME, "{after}");
        assert_eq!(after["user"]["upn"], "kim@fabrikam.example", "{after}");

        // Mapping it to another tenant is refused, naming the tenant it is mapped to.
        let mut to_contoso = mapping.clone();
        to_contoso["tenant_id"] = json!(contoso_id);
        let (status, refused) = call(
            &world,
            Method::PUT,
            "/api/v1/company-mappings",
            Some(to_contoso),
        )
        .await;
        assert_eq!(status, 409, "{refused}");
        assert_eq!(refused["code"], "company_already_mapped");
        assert!(
            refused["message"]
                .as_str()
                .unwrap()
                .contains(NO_P1_TENANT_NAME),
            "{refused}"
        );
        let still = context(&world, &token).await;
        assert_eq!(still["tenant"]["name"], NO_P1_TENANT_NAME, "{still}");

        // Listed, by connection too; the tenant lists its mapping.
        let (status, listed) = call(
            &world,
            Method::GET,
            &format!("/api/v1/company-mappings?psa_connection_id={halo}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{listed}");
        let listed = listed.as_array().unwrap();
        assert_eq!(listed.len(), 2, "{listed:?}");
        assert!(
            listed
                .iter()
                .all(|m| m["psa_connection_id"] == halo.to_string())
        );
        let (_, all) = call(&world, Method::GET, "/api/v1/company-mappings", None).await;
        assert_eq!(all.as_array().unwrap().len(), 4, "{all}");
        let fabrikam_view = tenant_by_microsoft_id(&world, NO_P1_TENANT_ID).await;
        assert_eq!(fabrikam_view["mappings"][0]["id"], mapping_id.as_str());
        assert_eq!(
            fabrikam_view["integrations"][0]["kind"],
            "identity_management"
        );
        assert_eq!(fabrikam_view["health"], "ok", "{fabrikam_view}");
        assert!(
            !fabrikam_view.to_string().contains(FABRIKAM_APP_SECRET),
            "no secret in the list"
        );

        // Another MSP's (or no) tenant or connection: 404.
        let mut unknown_tenant = mapping.clone();
        unknown_tenant["tenant_id"] = json!(Uuid::now_v7());
        let (status, body) = call(
            &world,
            Method::PUT,
            "/api/v1/company-mappings",
            Some(unknown_tenant),
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (404, Some("tenant_not_found"))
        );
        let mut unknown_connection = mapping.clone();
        unknown_connection["psa_connection_id"] = json!(Uuid::now_v7());
        let (status, body) = call(
            &world,
            Method::PUT,
            "/api/v1/company-mappings",
            Some(unknown_connection),
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (404, Some("not_found")),
            "{body}"
        );
        let mut blank = mapping.clone();
        blank["psa_company_id"] = json!("   ");
        let (status, body) =
            call(&world, Method::PUT, "/api/v1/company-mappings", Some(blank)).await;
        assert_eq!(status, 400, "{body}");

        // Unmapped: the pod says so again, at once.
        let (status, removed) = call(
            &world,
            Method::DELETE,
            &format!("/api/v1/company-mappings/{mapping_id}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{removed}");
        let unmapped = context(&world, &token).await;
        assert_eq!(
            unmapped["user_error"]["code"], "company_not_mapped",
            "{unmapped}"
        );
        let (status, _) = call(
            &world,
            Method::DELETE,
            &format!("/api/v1/company-mappings/{mapping_id}"),
            None,
        )
        .await;
        assert_eq!(status, 404);

        // Every change is audited, with who and the values before and after.
        let created = audit(&world, "company_mapping.create").await;
        let ok = created
            .iter()
            .find(|e| e["outcome"] == "success")
            .expect("the creation is audited");
        assert_eq!(ok["actor_kind"], "api_key");
        assert_eq!(ok["details"]["after"]["tenant_name"], NO_P1_TENANT_NAME);
        assert!(
            created
                .iter()
                .any(|e| e["outcome"] == "refused"
                    && e["details"]["code"] == "company_already_mapped")
        );
        let deleted = audit(&world, "company_mapping.delete").await;
        assert_eq!(deleted.len(), 1);
        assert_eq!(deleted[0]["details"]["before"]["id"], mapping_id.as_str());
        assert!(deleted[0]["details"]["after"].is_null());
    })
    .await;
}

#[tokio::test]
async fn a_renamed_tenant_shows_in_the_list_and_in_the_pod() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let contoso = tenant_by_microsoft_id(&world, DEMO_TENANT_ID).await;
        let id = contoso["id"].as_str().unwrap().to_owned();
        let old_name = contoso["display_name"].as_str().unwrap().to_owned();
        let kinds: Vec<&str> = contoso["integrations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["authenticator", "identity_management"], "{contoso}");
        assert!(contoso["integrations"][0]["secret_expires_at"].is_string());

        let (status, renamed) = call(
            &world,
            Method::PATCH,
            &format!("/api/v1/tenants/{id}"),
            Some(json!({ "display_name": "  Contoso Pharmaceuticals  " })),
        )
        .await;
        assert_eq!(status, 200, "{renamed}");
        assert_eq!(renamed["display_name"], "Contoso Pharmaceuticals");
        let listed = tenant_by_microsoft_id(&world, DEMO_TENANT_ID).await;
        assert_eq!(listed["display_name"], "Contoso Pharmaceuticals");
        assert_eq!(
            listed["mappings"][0]["tenant_name"],
            "Contoso Pharmaceuticals"
        );
        let token = halo_token(&world, sbx::HALO_TICKET_DANA).await;
        let context = context(&world, &token).await;
        assert_eq!(
            context["tenant"]["name"], "Contoso Pharmaceuticals",
            "{context}"
        );

        for bad in ["", "   ", "a\u{0}b", &"x".repeat(201)] {
            let (status, body) = call(
                &world,
                Method::PATCH,
                &format!("/api/v1/tenants/{id}"),
                Some(json!({ "display_name": bad })),
            )
            .await;
            assert_eq!(status, 400, "{bad:?}: {body}");
            assert_eq!(body["code"], "invalid_request");
        }
        let (status, _) = call(
            &world,
            Method::PATCH,
            &format!("/api/v1/tenants/{}", Uuid::now_v7()),
            Some(json!({ "display_name": "Nobody" })),
        )
        .await;
        assert_eq!(status, 404);

        let renames = audit(&world, "tenant.rename").await;
        assert_eq!(renames.len(), 1, "{renames:?}");
        assert_eq!(
            renames[0]["details"]["before"]["display_name"],
            old_name.as_str()
        );
        assert_eq!(
            renames[0]["details"]["after"]["display_name"],
            "Contoso Pharmaceuticals"
        );
    })
    .await;
}

#[tokio::test]
async fn removing_a_tenant_drops_its_integrations_and_mappings_and_keeps_the_history() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let verification = world.verified("dana@contoso.example").await;
        let contoso = tenant_by_microsoft_id(&world, DEMO_TENANT_ID).await;
        let id = contoso["id"].as_str().unwrap().to_owned();

        // While one of its resets is in progress, nothing is removed.
        let stored = world
            .app
            .store
            .get_verification(verification.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        let ClaimOutcome::Claimed(running) = world
            .app
            .store
            .claim_reset(NewReset {
                msp_id: world.msp.id,
                verification_id: stored.id,
                tenant_id: stored.tenant_id,
                user_object_id: stored.user_object_id.clone(),
                technician_id: None,
                idempotency_key: "running-while-removed".into(),
                lease: chrono::Duration::seconds(60),
            })
            .await
            .unwrap()
        else {
            panic!("the reset is claimed");
        };
        let (status, busy) = call(
            &world,
            Method::DELETE,
            &format!("/api/v1/tenants/{id}"),
            None,
        )
        .await;
        assert_eq!((status, busy["code"].as_str()), (409, Some("tenant_busy")), "{busy}");
        let kept = tenant_by_microsoft_id(&world, DEMO_TENANT_ID).await;
        assert_eq!(kept["mappings"].as_array().unwrap().len(), 3);
        assert_eq!(kept["integrations"].as_array().unwrap().len(), 2);
        world
            .app
            .store
            .complete_reset(
                running.id,
                ResetCompletion {
                    status: ResetStatus::Failed,
                    failure_code: None,
                    sent_to_masked: None,
                    upstream_request_id: None,
                },
            )
            .await
            .unwrap();

        let (status, removed) = call(
            &world,
            Method::DELETE,
            &format!("/api/v1/tenants/{id}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{removed}");
        assert_eq!(removed["mappings_removed"], 3);
        assert_eq!(
            removed["integrations_removed"],
            json!(["authenticator", "identity_management"])
        );
        let steps: Vec<&str> = removed["microsoft_cleanup"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert!(steps.iter().any(|s| s.contains("client secret")), "{steps:?}");
        assert!(steps.iter().any(|s| s.contains("admin consent")), "{steps:?}");
        assert!(steps.iter().all(|s| s.ends_with('.')), "{steps:?}");

        assert!(tenants(&world).await.is_empty());
        let (_, integrations) = call(&world, Method::GET, "/api/v1/integrations", None).await;
        assert_eq!(integrations, json!([]));
        let (_, mappings) = call(&world, Method::GET, "/api/v1/company-mappings", None).await;
        assert_eq!(mappings, json!([]));
        // Its sealed secrets are gone with its integrations.
        let tenant_id: Uuid = id.parse().unwrap();
        for kind in vouch::domain::IntegrationKind::ALL {
            assert!(
                world
                    .app
                    .store
                    .get_integration(tenant_id, kind)
                    .await
                    .unwrap()
                    .is_none()
            );
        }

        // The pod no longer reaches it; a verification by API neither.
        let token = halo_token(&world, sbx::HALO_TICKET_DANA).await;
        let context = context(&world, &token).await;
        assert_eq!(context["user_error"]["code"], "company_not_mapped", "{context}");
        let (status, body) = call(
            &world,
            Method::POST,
            "/api/v1/verifications",
            Some(json!({"tenant_id": DEMO_TENANT_ID, "user": "dana@contoso.example", "method": "push"})),
        )
        .await;
        assert_eq!((status, body["code"].as_str()), (404, Some("tenant_not_found")), "{body}");

        // The audit and the verification's history stay.
        let removal = audit(&world, "tenant.remove").await;
        assert_eq!(removal.len(), 1);
        assert_eq!(removal[0]["details"]["before"]["mappings"].as_array().unwrap().len(), 3);
        assert!(!audit(&world, "verification.push.start").await.is_empty());
        let history: Uuid = verification.parse().unwrap();
        assert!(world.app.store.get_verification(history).await.unwrap().is_some());

        let (status, _) = call(
            &world,
            Method::DELETE,
            &format!("/api/v1/tenants/{id}"),
            None,
        )
        .await;
        assert_eq!(status, 404, "removed already");

        // Connecting the same Microsoft tenant again brings it back, with its history.
        world
            .app
            .ctx
            .integrations
            .connect_identity_management(
                world.msp.id,
                &AuditActor { kind: ActorKind::System, id: None, name: None },
                vouch::core::integrations::IdentityManagementInput {
                    tenant: DEMO_TENANT_ID.into(),
                    client_id: vouch::sandbox::microsoft::IDENTITY_APP_CLIENT_ID.into(),
                    client_secret: SecretString::from(
                        vouch::sandbox::microsoft::IDENTITY_APP_SECRET.to_owned(),
                    ),
                    secret_expires_at: None,
                },
            )
            .await
            .expect("the tenant connects again");
        let back = tenant_by_microsoft_id(&world, DEMO_TENANT_ID).await;
        assert_eq!(back["id"], id.as_str(), "the same tenant, with its history");
        assert_eq!(back["mappings"], json!([]), "mappings are not brought back");
    })
    .await;
}

#[tokio::test]
async fn api_keys_are_listed_without_secrets_and_a_revoked_key_is_refused_at_once_everywhere() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let second = world.second_instance(db).await;
        // A key made by the API: shown once, audited by its prefix, never by itself.
        let (status, body) = call(
            &world,
            Method::POST,
            "/api/v1/api-keys",
            Some(json!({ "name": "  ", "scope": "admin" })),
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("invalid_request")),
            "{body}"
        );
        let (status, created) = call(
            &world,
            Method::POST,
            "/api/v1/api-keys",
            Some(json!({ "name": "PSA workflow", "scope": "admin" })),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        let other_secret = created["key"].as_str().unwrap().to_owned();
        let other_id = created["api_key"]["id"].as_str().unwrap().to_owned();
        assert!(other_secret.starts_with(created["api_key"]["prefix"].as_str().unwrap()));
        let creations = audit(&world, "api_key.create").await;
        assert_eq!(creations.len(), 1, "{creations:?}");
        assert_eq!(creations[0]["subject_name"], "PSA workflow");
        assert!(!creations[0].to_string().contains(&other_secret));

        let (status, keys) = call(&world, Method::GET, "/api/v1/api-keys", None).await;
        assert_eq!(status, 200, "{keys}");
        let text = keys.to_string();
        for secret in [&world.api_key, &other_secret] {
            assert!(!text.contains(secret.as_str()), "no key in the list");
            assert!(
                !text.contains(&sha256_hex(secret)),
                "no key hash in the list"
            );
        }
        let keys = keys.as_array().unwrap();
        assert_eq!(keys.len(), 2);
        let mine = keys.iter().find(|k| k["name"] == "tests").unwrap();
        assert!(world.api_key.starts_with(mine["prefix"].as_str().unwrap()));
        assert!(
            mine["last_used_at"].is_string(),
            "used by this very call: {mine}"
        );
        assert!(mine["created_at"].is_string());
        let listed_other = keys.iter().find(|k| k["name"] == "PSA workflow").unwrap();
        assert_eq!(listed_other["id"], other_id);
        assert!(listed_other["last_used_at"].is_null());

        // The other key works on both instances, until it is revoked.
        let audit_with = |app: &common::TestApp, key: &str| {
            app.client
                .get(app.url("/api/v1/audit?limit=1"))
                .bearer_auth(key)
                .send()
        };
        assert_eq!(
            audit_with(&world.app, &other_secret)
                .await
                .unwrap()
                .status(),
            200
        );
        assert_eq!(
            audit_with(&second, &other_secret).await.unwrap().status(),
            200
        );
        let (status, revoked) = call(
            &world,
            Method::DELETE,
            &format!("/api/v1/api-keys/{other_id}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{revoked}");
        assert!(revoked["revoked_at"].is_string());
        assert_eq!(
            audit_with(&world.app, &other_secret)
                .await
                .unwrap()
                .status(),
            401
        );
        assert_eq!(
            audit_with(&second, &other_secret).await.unwrap().status(),
            401
        );
        let revocations = audit(&world, "api_key.revoke").await;
        assert_eq!(revocations.len(), 1);
        assert_eq!(revocations[0]["subject_name"], "PSA workflow");
        assert!(!revocations[0].to_string().contains(&other_secret));

        let (status, _) = call(
            &world,
            Method::DELETE,
            &format!("/api/v1/api-keys/{}", Uuid::now_v7()),
            None,
        )
        .await;
        assert_eq!(status, 404);

        // A key may revoke itself: that call succeeds, the next one is refused.
        let mine = mine["id"].as_str().unwrap().to_owned();
        let (status, body) = call(
            &world,
            Method::DELETE,
            &format!("/api/v1/api-keys/{mine}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = call(&world, Method::GET, "/api/v1/api-keys", None).await;
        assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
    })
    .await;
}
