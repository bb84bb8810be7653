//! Pushes tell the truth: the push limit counts what bombing looks like, per user and per
//! technician, and a push left pending by a stopped instance is interrupted (audited) instead
//! of blocking the user, on every backend.

use crate::{backends, common};
use backends::on_every_backend;
use chrono::{Duration, Utc};
use common::world::{World, json_of};
use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;
use uuid::Uuid;
use vouch::domain::{MspPolicy, VerificationMethod, VerificationStatus};
use vouch::sandbox::microsoft::{DEMO_TENANT_ID, PushScript};
use vouch::store::audit::AuditQuery;
use vouch::store::verifications::{BeginPushError, NewVerification, PushLimits};

const DANA: &str = "dana@contoso.example";

async fn push(world: &World, user: &str) -> (u16, serde_json::Value) {
    json_of(
        world
            .api(Method::POST, "/api/v1/verifications")
            .json(&json!({ "tenant_id": DEMO_TENANT_ID, "user": user, "method": "push" }))
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn settled(world: &World, id: &str) -> serde_json::Value {
    json_of(
        world
            .api(
                Method::GET,
                &format!("/api/v1/verifications/{id}?wait_seconds=10"),
            )
            .send()
            .await
            .unwrap(),
    )
    .await
    .1
}

async fn audit_count(world: &World, action: &str) -> usize {
    world
        .app
        .store
        .query(AuditQuery {
            msp_id: world.msp.id,
            action: Some(action.to_owned()),
            limit: 1000,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .len()
}

/// A pending push to `user_object_id` waited on by `waiter`, as an instance records it.
fn pending_push(
    world: &World,
    tenant_id: Uuid,
    user_object_id: &str,
    upn: &str,
    waiter: Uuid,
) -> NewVerification {
    NewVerification {
        msp_id: world.msp.id,
        tenant_id,
        technician_id: None,
        psa_connection_id: None,
        psa_ticket_id: None,
        psa_contact_id: None,
        user_object_id: user_object_id.to_owned(),
        user_principal_name: upn.to_owned(),
        method: VerificationMethod::Push,
        code_hash: None,
        reason: None,
        used_contact_phone_fallback: false,
        expires_at: Utc::now() + Duration::minutes(2),
        waiter_instance_id: Some(waiter),
        console_user_id: None,
    }
}

#[tokio::test]
async fn approved_pushes_do_not_count_towards_the_limit_but_denied_ones_do() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        // Today's limit is 3 per 15 minutes: four approvals in a row are not bombing.
        for _ in 0..4 {
            world.verified(DANA).await;
        }
        // Three denials are.
        for _ in 0..3 {
            world.microsoft.script_push(DANA, PushScript::Deny);
            let (status, body) = push(&world, DANA).await;
            assert_eq!(status, 202, "{body}");
            let done = settled(&world, body["id"].as_str().unwrap()).await;
            assert_eq!(done["status"], "denied", "{done}");
        }
        let (status, body) = push(&world, DANA).await;
        assert_eq!(status, 429, "{body}");
        assert_eq!(body["code"], "push_rate_limited");
    })
    .await;
}

#[tokio::test]
async fn a_technician_is_limited_across_users() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let store = &world.app.store;
        let tenant = store
            .find_tenant_by_microsoft_id(world.msp.id, DEMO_TENANT_ID)
            .await
            .unwrap()
            .unwrap();
        let technician = Uuid::now_v7();
        let limits = PushLimits {
            max_per_window: 3,
            max_per_technician: 2,
            window: Duration::minutes(15),
            count_approved: false,
        };
        let by = |user: &str| NewVerification {
            technician_id: Some(technician),
            ..pending_push(&world, tenant.id, user, user, Uuid::now_v7())
        };
        for user in ["user-a", "user-b"] {
            store.begin_push(by(user), limits).await.unwrap();
        }
        let third = store.begin_push(by("user-c"), limits).await;
        assert!(
            matches!(third, Err(BeginPushError::TechnicianRateLimited { .. })),
            "{third:?}"
        );
        // Another technician is not held back by the first one's pushes.
        let other = NewVerification {
            technician_id: Some(Uuid::now_v7()),
            ..by("user-c")
        };
        assert!(store.begin_push(other, limits).await.is_ok());
    })
    .await;
}

#[tokio::test]
async fn pushes_left_by_a_stopped_instance_are_interrupted_and_never_block_a_new_one() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let store = &world.app.store;
        let tenant = store
            .find_tenant_by_microsoft_id(world.msp.id, DEMO_TENANT_ID)
            .await
            .unwrap()
            .unwrap();
        // Find Dana's object id the way Vouch does: from a verification of her.
        let approved = world.verified(DANA).await;
        let dana = store
            .get_verification(Uuid::parse_str(&approved).unwrap())
            .await
            .unwrap()
            .unwrap()
            .user_object_id;

        // An instance that was killed while 50 pushes to Dana waited (it never beats again).
        let killed = Uuid::now_v7();
        store.beat_heartbeat(killed).await.unwrap();
        let stale = Utc::now() - Duration::minutes(5);
        vouch::store::entities::instance::Entity::update_many()
            .col_expr(
                vouch::store::entities::instance::Column::HeartbeatAt,
                sea_orm::sea_query::Expr::value(stale),
            )
            .filter(vouch::store::entities::instance::Column::Id.eq(killed))
            .exec(store.connection())
            .await
            .unwrap();
        let mut left = Vec::new();
        for _ in 0..50 {
            left.push(
                store
                    .create_verification(pending_push(&world, tenant.id, &dana, DANA, killed))
                    .await
                    .unwrap()
                    .id,
            );
        }

        // Reading one interrupts it.
        let read = settled(&world, &left[0].to_string()).await;
        assert_eq!(read["status"], "interrupted", "{read}");
        assert_eq!(read["failure_code"], "verification_interrupted", "{read}");

        // A new push for Dana is not blocked by the others, nor limited by them.
        world.microsoft.script_push(DANA, PushScript::Approve);
        let (status, body) = push(&world, DANA).await;
        assert_eq!(status, 202, "{body}");
        let done = settled(&world, body["id"].as_str().unwrap()).await;
        assert_eq!(done["status"], "approved", "{done}");
        for id in &left {
            let v = store.get_verification(*id).await.unwrap().unwrap();
            assert_eq!(v.status, VerificationStatus::Interrupted, "{id}");
        }
        assert_eq!(
            audit_count(&world, "verification.push.interrupted").await,
            50
        );

        // An instance that starts interrupts, before anyone reads them, the pushes whose
        // instance stopped.
        let orphan = store
            .create_verification(pending_push(
                &world,
                tenant.id,
                "sam-object",
                "sam@contoso.example",
                killed,
            ))
            .await
            .unwrap()
            .id;
        let started = world.second_instance(db).await;
        let v = store.get_verification(orphan).await.unwrap().unwrap();
        assert_eq!(v.status, VerificationStatus::Interrupted);
        assert_eq!(
            audit_count(&world, "verification.push.interrupted").await,
            51
        );
        started.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_start_refused_in_the_user_lookup_is_audited() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let (status, body) = push(&world, "nobody@contoso.example").await;
        assert_eq!(status, 404, "{body}");
        // Microsoft cannot be asked: the refusal is audited with its own code.
        world.microsoft.inject_fault(
            vouch::sandbox::microsoft::Service::Graph,
            "/users",
            vouch::sandbox::Fault::Status {
                status: 500,
                body: String::new(),
                retry_after: None,
            },
            10,
        );
        let (status, body) = push(&world, "sam@contoso.example").await;
        assert!(status >= 500, "{status}: {body}");
        let entries = world
            .app
            .store
            .query(AuditQuery {
                msp_id: world.msp.id,
                action: Some("verification.push.start".into()),
                limit: 10,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        let refused: Vec<(String, String, String)> = entries
            .iter()
            .map(|e| {
                (
                    e.event.outcome.as_str().to_owned(),
                    e.event.details["code"].as_str().unwrap_or("").to_owned(),
                    e.event.subject_name.clone().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            refused,
            [
                (
                    "refused".to_owned(),
                    body["code"].as_str().unwrap().to_owned(),
                    "sam@contoso.example".to_owned()
                ),
                (
                    "refused".to_owned(),
                    "user_not_found".to_owned(),
                    "nobody@contoso.example".to_owned()
                ),
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn an_answer_after_a_cancel_changes_nothing_and_is_audited() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        world.microsoft.script_push(DANA, PushScript::NeverAnswer);
        let (status, body) = push(&world, DANA).await;
        assert_eq!(status, 202, "{body}");
        let id = body["id"].as_str().unwrap().to_owned();
        let waiting = async {
            loop {
                if let Some(push) = world.microsoft.pending_pushes().into_iter().next() {
                    return push;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        };
        let pending = tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
            .await
            .expect("the push reached the phone");
        let (status, cancelled) = json_of(
            world
                .api(Method::POST, &format!("/api/v1/verifications/{id}/cancel"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{cancelled}");
        assert!(
            world
                .microsoft
                .answer_push(&pending.id, vouch::sandbox::microsoft::PushAnswer::Approve)
        );
        let recorded = async {
            while audit_count(&world, "verification.push.late_answer").await == 0 {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), recorded)
            .await
            .expect("the late answer is audited");
        let after = settled(&world, &id).await;
        assert_eq!(
            after["status"], "cancelled",
            "the answer changes nothing: {after}"
        );
        assert_eq!(audit_count(&world, "verification.cancel").await, 1);
    })
    .await;
}
