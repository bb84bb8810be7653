//! Technicians through the JSON API, over real HTTP, on every backend: the list shows who a
//! PSA vouched for and their last action; a blocked technician's pod is refused (its load
//! and every call, 403 `technician_blocked`, on every instance at once) until unblocked;
//! blocking is audited and needs an admin key.

use crate::{backends, common};

use backends::on_every_backend;
use common::world::{World, call, json_of};
use reqwest::Method;
use serde_json::{Value, json};
use vouch::domain::{ApiKeyScope, MspPolicy};
use vouch::sandbox::microsoft::PushScript;
use vouch::sandbox::psa as sbx;

use crate::pods::{halo_token, iframe_src, load_pod};

const BLOCKED: &str = "An administrator of your MSP has blocked your Vouch actions; ask them.";

async fn technicians(world: &World) -> Vec<Value> {
    let (status, list) = call(world, Method::GET, "/api/v1/technicians", None).await;
    assert_eq!(status, 200, "{list}");
    list.as_array().unwrap().clone()
}

fn pod_call(
    app: &common::TestApp,
    token: &str,
    method: Method,
    path: &str,
) -> reqwest::RequestBuilder {
    app.client
        .request(method, app.url(&format!("/api/v1/pod{path}")))
        .bearer_auth(token)
}

#[tokio::test]
async fn a_blocked_technician_is_refused_in_the_pod_until_unblocked() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let second = world.second_instance(db).await;
        assert!(technicians(&world).await.is_empty());

        // A Halo tab load: the PSA vouches for agent 5, who is now listed.
        let token = halo_token(&world, sbx::HALO_TICKET_DANA).await;
        let list = technicians(&world).await;
        assert_eq!(list.len(), 1, "{list:?}");
        let tech = &list[0];
        assert_eq!(tech["psa_member_id"], sbx::HALO_AGENT_ID.to_string());
        assert_eq!(tech["psa_kind"], "halopsa");
        assert_eq!(tech["psa_connection_name"], "HaloPSA (sandbox)");
        assert!(
            tech["name"].as_str().is_some_and(|n| !n.is_empty()),
            "{tech}"
        );
        assert!(tech["last_seen_at"].is_string(), "{tech}");
        assert_eq!(tech["last_action"], Value::Null);
        assert_eq!(tech["blocked"], false);
        let id = tech["id"].as_str().unwrap().to_owned();

        // They verify the caller: the list shows it as their last action.
        world
            .microsoft
            .script_push("dana@contoso.example", PushScript::Approve);
        let (status, started) = json_of(
            pod_call(&world.app, &token, Method::POST, "/verifications")
                .json(&json!({"method": "push"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 202, "{started}");
        let verification = started["id"].as_str().unwrap().to_owned();
        let (_, done) = json_of(
            pod_call(
                &world.app,
                &token,
                Method::GET,
                &format!("/verifications/{verification}?wait_seconds=10"),
            )
            .send()
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(done["status"], "approved", "{done}");
        let tech = technicians(&world).await.remove(0);
        assert_eq!(tech["last_action"]["kind"], "verification", "{tech}");
        assert!(tech["last_action"]["at"].is_string());

        // A technician key cannot block anyone.
        let (_, helpdesk) = world
            .app
            .store
            .create_scoped_api_key(world.msp.id, "helpdesk", ApiKeyScope::Technician)
            .await
            .unwrap();
        let (status, body) = json_of(
            world
                .app
                .client
                .post(world.app.url(&format!("/api/v1/technicians/{id}/block")))
                .bearer_auth(secrecy::ExposeSecret::expose_secret(&helpdesk))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("admin_scope_required"))
        );
        assert_eq!(technicians(&world).await[0]["blocked"], false);

        // An admin blocks them: every pod call and the pod load are refused, on both
        // instances, with the same code and sentence.
        let (status, blocked) = call(
            &world,
            Method::POST,
            &format!("/api/v1/technicians/{id}/block"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{blocked}");
        assert_eq!(blocked["blocked"], true);
        assert!(blocked["blocked_at"].is_string(), "{blocked}");
        assert_eq!(blocked["blocked_by"], "tests");
        for app in [&world.app, &second] {
            let attempts = [
                pod_call(app, &token, Method::POST, "/reset")
                    .header("Idempotency-Key", "blocked-reset-0001")
                    .json(&json!({ "verification_id": verification, "confirm": true })),
                pod_call(app, &token, Method::POST, "/verifications")
                    .json(&json!({"method": "push"})),
                pod_call(app, &token, Method::GET, "/context"),
            ];
            for attempt in attempts {
                let (status, body) = json_of(attempt.send().await.unwrap()).await;
                assert_eq!(status, 403, "{body}");
                assert_eq!(body["code"], "technician_blocked", "{body}");
                assert_eq!(body["message"], BLOCKED);
            }
        }
        let src = iframe_src(&world.psa.halopsa().ticket_screen_url(sbx::HALO_TICKET_DANA)).await;
        let (status, page) = load_pod(&world, &src).await;
        assert_eq!(status, 403, "{page}");
        assert!(page.contains("technician_blocked"), "{page}");
        assert!(page.contains("blocked your Vouch actions"), "{page}");
        assert_eq!(technicians(&world).await[0]["blocked"], true);
        // Blocking again changes nothing.
        let (status, again) = call(
            &world,
            Method::POST,
            &format!("/api/v1/technicians/{id}/block"),
            None,
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(again["blocked_at"], blocked["blocked_at"]);

        // Unblocked: the same pod works again at once (the reset, then a fresh load).
        let (status, unblocked) = call(
            &world,
            Method::POST,
            &format!("/api/v1/technicians/{id}/unblock"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{unblocked}");
        assert_eq!(unblocked["blocked"], false);
        assert_eq!(unblocked["blocked_at"], Value::Null);
        let (status, outcome) = json_of(
            pod_call(&second, &token, Method::POST, "/reset")
                .header("Idempotency-Key", "unblocked-reset-0001")
                .json(&json!({ "verification_id": verification, "confirm": true }))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 201, "{outcome}");
        let (status, page) = load_pod(&world, &src).await;
        assert_eq!(status, 200, "{page}");
        let tech = technicians(&world).await.remove(0);
        assert_eq!(tech["last_action"]["kind"], "password_reset", "{tech}");

        // Both changes are audited; the repeated block is not.
        for (action, count) in [("technician.block", 1), ("technician.unblock", 1)] {
            let (status, audit) = call(
                &world,
                Method::GET,
                &format!("/api/v1/audit?action={action}"),
                None,
            )
            .await;
            assert_eq!(status, 200, "{audit}");
            let entries = audit.as_array().unwrap();
            assert_eq!(entries.len(), count, "{audit}");
            assert_eq!(entries[0]["subject_id"], id.as_str());
            assert_eq!(entries[0]["actor_kind"], "api_key");
        }

        // Someone else's (or nobody's) technician.
        let (status, body) = call(
            &world,
            Method::POST,
            &format!("/api/v1/technicians/{}/block", uuid::Uuid::nil()),
            None,
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (404, Some("not_found")),
            "{body}"
        );
    })
    .await;
}

/// An instance whose change listener is cut (PostgreSQL) still refuses a technician blocked
/// on another instance meanwhile: a lost listener reads the database until it listens again,
/// and a reconnected one forgets what it cached, since notifications sent meanwhile are lost.
#[tokio::test]
async fn a_block_reaches_an_instance_whose_change_listener_was_cut() {
    on_every_backend(async |db| {
        if db.backend != common::Backend::Postgres {
            return; // SQLite has no listener: the stamp file is read on each use.
        }
        let world = World::start(db, MspPolicy::default()).await;
        let second = world.second_instance(db).await;
        let token = halo_token(&world, sbx::HALO_TICKET_DANA).await;
        let (status, _) = json_of(
            pod_call(&second, &token, Method::GET, "/context")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "the session is cached on the second instance");
        use sea_orm::ConnectionTrait;
        let cut = world
            .app
            .store
            .connection()
            .execute_unprepared(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
            )
            .await
            .unwrap();
        assert!(cut.rows_affected() >= 1, "the listeners were found and cut");
        let id = technicians(&world).await[0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (status, _) = call(
            &world,
            Method::POST,
            &format!("/api/v1/technicians/{id}/block"),
            None,
        )
        .await;
        assert_eq!(status, 200);
        common::eventually("the block seen by the second instance", || async {
            let (status, body) = json_of(
                pod_call(&second, &token, Method::GET, "/context")
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            (status == 403 && body["code"] == "technician_blocked").then_some(())
        })
        .await;
        second.stop().await;
    })
    .await;
}
