//! The pods through real HTTP: embed loads as each PSA sends them (signed, unsigned, wrongly
//! signed, stale; ConnectWise member checks), the pod token's bounds, and the whole
//! verify-then-reset flow with ticket notes. Each runs on every database backend.

use crate::{backends, common};
use std::time::Duration;

use backends::on_every_backend;
use common::world::{World, json_of};
use reqwest::Method;
use serde_json::{Value, json};
use vouch::domain::MspPolicy;
use vouch::psa::signing;
use vouch::sandbox::microsoft::PushScript;
use vouch::sandbox::psa::{self as sbx, Psa};

/// The iframe `src` of a sandbox ticket screen (HTML-unescaped).
pub(crate) async fn iframe_src(screen_url: &str) -> String {
    let html = reqwest::get(screen_url)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let start = html
        .find("id=\"vouch-pod\"")
        .expect("the screen embeds the pod");
    let tag_start = html[..start].rfind('<').unwrap();
    let tag = &html[tag_start..html[tag_start..].find('>').unwrap() + tag_start];
    let src_at = tag.find("src=\"").expect("iframe src") + 5;
    let src = &tag[src_at..src_at + tag[src_at..].find('"').unwrap()];
    src.replace("&amp;", "&")
}

pub(crate) fn token_of(html: &str) -> String {
    let at = html.find("data-token=\"").expect("a data-token attribute") + 12;
    html[at..at + html[at..].find('"').unwrap()].to_owned()
}

pub(crate) async fn load_pod(world: &World, url: &str) -> (u16, String) {
    let local = url.replace("http://localhost:8080", &world.app.base_url);
    let response = world.app.client.get(&local).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

pub(crate) async fn pod(
    world: &World,
    token: &str,
    method: Method,
    path: &str,
) -> reqwest::RequestBuilder {
    world
        .app
        .client
        .request(method, world.app.url(&format!("/api/v1/pod{path}")))
        .bearer_auth(token)
}

pub(crate) async fn halo_token(world: &World, ticket: u64) -> String {
    let src = iframe_src(&world.psa.halopsa().ticket_screen_url(ticket)).await;
    let (status, html) = load_pod(world, &src).await;
    assert_eq!(status, 200, "{html}");
    token_of(&html)
}

#[tokio::test]
async fn signed_loads_open_a_pod_and_bad_ones_are_refused() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;

        // HaloPSA, as the tab loads it.
        let src = iframe_src(&world.psa.halopsa().ticket_screen_url(sbx::HALO_TICKET_DANA)).await;
        let response = world.app.client.get(&src).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let csp = response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            csp.contains(&format!("frame-ancestors {}", world.psa.base_url())),
            "{csp}"
        );
        let html = response.text().await.unwrap();
        let token = token_of(&html);
        assert!(!token.is_empty());

        let (status, context) = json_of(
            pod(&world, &token, Method::GET, "/context")
                .await
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{context}");
        assert_eq!(context["contact"]["name"], "Dana Whitfield");
        assert_eq!(context["user"]["upn"], "dana@contoso.example");
        assert_eq!(context["shield"]["state"], "not_verified");
        assert_eq!(context["reset"]["allowed"], false);
        assert_eq!(
            context["reset"]["reason"],
            "Verify the user's identity first"
        );
        assert_eq!(context["technician"]["name"], "Jordan Tech");

        // Unsigned, wrongly signed, stale.
        let url = url::Url::parse(&src).unwrap();
        let params: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let rebuild = |params: &[(String, String)]| {
            let mut url = url.clone();
            url.query_pairs_mut().clear().extend_pairs(params);
            url.to_string()
        };
        let unsigned: Vec<_> = params.iter().filter(|(k, _)| k != "sig").cloned().collect();
        let (status, body) = load_pod(&world, &rebuild(&unsigned)).await;
        assert_eq!(status, 403);
        assert!(body.contains("embed_unsigned"), "{body}");
        assert!(!body.contains("data-token"));
        let tampered: Vec<_> = params
            .iter()
            .map(|(k, v)| {
                if k == "ticket_id" {
                    (k.clone(), sbx::HALO_TICKET_SAM.to_string())
                } else {
                    (k.clone(), v.clone())
                }
            })
            .collect();
        let (status, body) = load_pod(&world, &rebuild(&tampered)).await;
        assert_eq!(status, 403);
        assert!(body.contains("embed_bad_signature"), "{body}");
        let mut stale: Vec<_> = unsigned
            .iter()
            .map(|(k, v)| {
                if k == "ts" {
                    (
                        k.clone(),
                        (chrono::Utc::now().timestamp() - 3600).to_string(),
                    )
                } else {
                    (k.clone(), v.clone())
                }
            })
            .collect();
        let sig = signing::sign(&stale, &world.psa.halopsa().tab_secret);
        stale.push(("sig".into(), sig));
        let (status, body) = load_pod(&world, &rebuild(&stale)).await;
        assert_eq!(status, 403);
        assert!(body.contains("embed_stale"), "{body}");

        // Autotask, by GET and by form POST.
        let src = iframe_src(
            &world
                .psa
                .autotask()
                .ticket_screen_url(sbx::AUTOTASK_TICKET_DANA),
        )
        .await;
        let (status, html) = load_pod(&world, &src).await;
        assert_eq!(status, 200, "{html}");
        let url = url::Url::parse(&src).unwrap();
        let form: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let posted = world
            .app
            .client
            .post(format!("{}{}", world.app.base_url, url.path()))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(posted.status(), 200);
        assert!(!token_of(&posted.text().await.unwrap()).is_empty());

        // A forged token is refused with the JSON error shape.
        let (status, body) = json_of(
            pod(&world, "forged.token", Method::GET, "/context")
                .await
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
    })
    .await;
}

#[tokio::test]
async fn connectwise_members_are_checked_with_connectwise() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let connection = world
            .app
            .store
            .list_connections(world.msp.id)
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.kind == vouch::domain::PsaKind::ConnectWise)
            .unwrap();
        let session = |member: Value| {
            world
                .app
                .client
                .post(world.app.url("/api/v1/pod/connectwise/session"))
                .json(&json!({ "connection_id": connection.id, "ticket_id": sbx::CW_TICKET_DANA.to_string(), "member": member }))
                .send()
        };
        let hash = world.psa.issue_connectwise_member_hash(sbx::CW_MEMBER_ID);
        let member = |memberid: &str, company: &str, hash: &str| json!({ "site": "evil.example", "companyid": company, "memberid": memberid, "memberHash": hash, "memberContext": "x", "memberEmail": "a@b" });
        let (status, body) = json_of(
            session(member(sbx::CW_MEMBER_ID, sbx::CW_COMPANY_ID, &hash))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let token = body["token"].as_str().unwrap().to_owned();
        let (_, context) = json_of(
            pod(&world, &token, Method::GET, "/context")
                .await
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(context["contact"]["name"], "Dana Whitfield");
        assert_eq!(
            world
                .psa
                .count(Psa::ConnectWise, "GET", "/system/myMembers/info"),
            1,
            "checked on the configured site, not the browser's"
        );

        let (status, body) = json_of(
            session(member(sbx::CW_OTHER_MEMBER_ID, sbx::CW_COMPANY_ID, &hash))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("embed_member_rejected"))
        );
        let (status, body) = json_of(
            session(member(sbx::CW_MEMBER_ID, "othercompany", &hash))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("embed_wrong_company"))
        );
        // Signing out of Manage revokes the member's hashes: one ConnectWise has not vouched
        // for yet is refused. (One it vouched for stays good for the pod session, as the pod
        // token it got does: see upstream_calls::a_reload_within_the_session_…)
        let unused = world.psa.issue_connectwise_member_hash(sbx::CW_MEMBER_ID);
        world.psa.revoke_connectwise_member_hashes();
        let (status, body) = json_of(
            session(member(sbx::CW_MEMBER_ID, sbx::CW_COMPANY_ID, &unused))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("embed_member_rejected"))
        );
    })
    .await;
}

#[tokio::test]
async fn a_pod_token_is_bound_to_its_ticket_and_its_msp() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let dana = halo_token(&world, sbx::HALO_TICKET_DANA).await;
        let lee = halo_token(&world, sbx::HALO_TICKET_LEE).await;

        world
            .microsoft
            .script_push("lee@contoso.example", PushScript::Approve);
        let (status, started) = json_of(
            pod(&world, &lee, Method::POST, "/verifications")
                .await
                .json(&json!({"method": "push"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 202, "{started}");
        let lee_verification = started["id"].as_str().unwrap().to_owned();
        // Lee's own pod sees it approved (waiting on the decision, not on a clock).
        let (_, decided) = json_of(
            pod(
                &world,
                &lee,
                Method::GET,
                &format!("/verifications/{lee_verification}?wait_seconds=10"),
            )
            .await
            .send()
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(decided["status"], "approved", "{decided}");

        // Dana's pod cannot read, cancel or spend Lee's verification.
        let (status, _) = json_of(
            pod(
                &world,
                &dana,
                Method::GET,
                &format!("/verifications/{lee_verification}"),
            )
            .await
            .send()
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(status, 404);
        let (status, _) = json_of(
            pod(&world, &dana, Method::POST, "/reset")
                .await
                .header("Idempotency-Key", "cross-ticket-01")
                .json(&json!({ "verification_id": lee_verification, "confirm": true }))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 404);

        // Another MSP (its own connection to the same PSA) cannot see this MSP's verification.
        let other_msp = world
            .app
            .store
            .create_msp(vouch::store::msp::NewMspAccount {
                name: "Other MSP".into(),
                brand_logo_url: None,
                brand_color: None,
                policy: MspPolicy::default(),
            })
            .await
            .unwrap();
        let halo = world.psa.halopsa();
        let other_connection = world
            .app
            .store
            .create_connection(vouch::store::psa_connections::NewPsaConnection {
                msp_id: other_msp.id,
                kind: vouch::domain::PsaKind::HaloPsa,
                name: "Other".into(),
                base_url: halo.resource_url.clone(),
                settings: json!({ "auth_url": halo.auth_url }),
                credentials: secrecy::SecretString::from(
                    json!({ "client_id": halo.client_id, "client_secret": halo.client_secret, "tab_secret": "other-secret" }).to_string(),
                ),
            })
            .await
            .unwrap();
        let mut params = vec![
            ("connection".to_owned(), other_connection.id.to_string()),
            ("ticket_id".to_owned(), sbx::HALO_TICKET_LEE.to_string()),
            ("agent_id".to_owned(), sbx::HALO_AGENT_ID.to_string()),
            ("ts".to_owned(), chrono::Utc::now().timestamp().to_string()),
        ];
        // Signed with the other connection's secret: the main connection's would be refused.
        let sig = signing::sign(&params, "other-secret");
        params.push(("sig".into(), sig));
        let mut url = url::Url::parse(&world.app.url("/pods/halopsa")).unwrap();
        url.query_pairs_mut().extend_pairs(&params);
        let (status, html) = load_pod(&world, url.as_str()).await;
        assert_eq!(status, 200, "{html}");
        let other_token = token_of(&html);
        let (status, _) = json_of(
            pod(
                &world,
                &other_token,
                Method::GET,
                &format!("/verifications/{lee_verification}"),
            )
            .await
            .send()
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(status, 404);
        let (_, context) = json_of(
            pod(&world, &other_token, Method::GET, "/context")
                .await
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert!(context["user"].is_null());
        assert_eq!(
            context["user_error"]["code"], "company_not_mapped",
            "{context}"
        );
        assert!(
            context["history"].as_array().unwrap().is_empty(),
            "no history of another MSP"
        );
    })
    .await;
}

#[tokio::test]
async fn verify_then_reset_from_the_pod_writes_ticket_notes() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let token = halo_token(&world, sbx::HALO_TICKET_DANA).await;

        world
            .microsoft
            .script_push("dana@contoso.example", PushScript::Approve);
        let (status, started) = json_of(
            pod(&world, &token, Method::POST, "/verifications")
                .await
                .json(&json!({"method": "push"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 202, "{started}");
        let id = started["id"].as_str().unwrap();
        let (_, done) = json_of(
            pod(
                &world,
                &token,
                Method::GET,
                &format!("/verifications/{id}?wait_seconds=10"),
            )
            .await
            .send()
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(done["status"], "approved");
        let (_, context) = json_of(
            pod(&world, &token, Method::GET, "/context")
                .await
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(context["shield"]["state"], "verified");
        assert_eq!(context["shield"]["label"], "Verified");
        assert_eq!(context["history"][0]["label"], "Approved");
        assert_eq!(context["reset"]["allowed"], true);
        assert_eq!(context["reset"]["masked_phone"], "+1 ••• ••• ••01");

        let (status, outcome) = json_of(
            pod(&world, &token, Method::POST, "/reset")
                .await
                .header("Idempotency-Key", "pod-reset-0001")
                .json(&json!({ "verification_id": id, "confirm": true }))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 201, "{outcome}");
        assert_eq!(outcome["status"], "completed");

        // Both the verification and the reset are on the ticket, as internal notes.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let notes = world.psa.notes(Psa::HaloPsa, sbx::HALO_TICKET_DANA);
            let verified = notes
                .iter()
                .any(|n| n.internal && n.text.contains("VERIFIED"));
            let reset = notes.iter().any(|n| {
                n.internal
                    && n.text
                        .contains("password of dana@contoso.example was reset")
            });
            if verified && reset {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "notes: {notes:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (_, context) = json_of(
            pod(&world, &token, Method::GET, "/context")
                .await
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            context["reset"]["allowed"], false,
            "the verification was spent"
        );
    })
    .await;
}

#[tokio::test]
async fn the_mismatch_and_a_denied_push_show_in_the_pod() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let sam = halo_token(&world, sbx::HALO_TICKET_SAM).await;
        let (status, body) = json_of(
            pod(&world, &sam, Method::POST, "/verifications")
                .await
                .json(&json!({"method": "push"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (409, Some("preferred_method_mismatch"))
        );
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("Entra admin center")
        );

        let dana = halo_token(&world, sbx::HALO_TICKET_DANA).await;
        world
            .microsoft
            .script_push("dana@contoso.example", PushScript::Deny);
        let (_, started) = json_of(
            pod(&world, &dana, Method::POST, "/verifications")
                .await
                .json(&json!({"method": "push"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        let id = started["id"].as_str().unwrap();
        let (_, done) = json_of(
            pod(
                &world,
                &dana,
                Method::GET,
                &format!("/verifications/{id}?wait_seconds=10"),
            )
            .await
            .send()
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(done["status"], "denied");
        let (_, context) = json_of(
            pod(&world, &dana, Method::GET, "/context")
                .await
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(context["shield"]["state"], "failed");
        assert_eq!(context["shield"]["message"], "The user denied the request.");
        // The pod shows the server's wording as it is.
        assert_eq!(
            context["shield"]["label"],
            "Failed: The user denied the request."
        );
        assert_eq!(context["shield"]["detail"], "");
        assert_eq!(context["history"][0]["label"], "Denied");
    })
    .await;
}
