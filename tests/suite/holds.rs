//! "It's not me" holds resets, and a push answer is never lost to a database outage, through
//! real HTTP on every backend:
//! - a fraud report (Authenticator "It's not me", or "No, it's not me" on the one-tap page)
//!   holds the user's resets (`reset_held`) for the MSP's `fraud_hold_seconds`, while a new
//!   verification is still allowed; an admin lifts the hold through the API (audited, a
//!   security event); the fraud report's audit entry is a security event; the ticket note
//!   names the hold; a policy of 0 holds nothing;
//! - an approval answered while the database is unreachable is held in memory, read back as
//!   approved (never expired, even past its deadline), and written with its audit entry as
//!   soon as the database is back.

use crate::{backends, common};
use std::time::Duration;

use backends::on_every_backend;
use chrono::{DateTime, Utc};
use common::world::{World, json_of};
use reqwest::Method;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;
use vouch::domain::{MspPolicy, VerificationStatus, utc_minute};
use vouch::sandbox::microsoft::{DEMO_TENANT_ID, PushAnswer, PushScript, Service};
use vouch::sandbox::psa::{self as sbx, Psa};
use vouch::store::entities::verification;

const DANA: &str = "dana@contoso.example";
const DANA_MOBILE: &str = "+12065550101";

/// Vouch's id of the HaloPSA connection the world seeded (from its pod URL).
fn halo_connection(world: &World) -> String {
    world
        .pod_urls
        .halopsa
        .split("connection=")
        .nth(1)
        .unwrap()
        .to_owned()
}

/// Starts verifying Dana by `method` from Halo ticket `HALO_TICKET_DANA`: status and answer.
async fn start(world: &World, method: &str) -> (u16, Value) {
    json_of(
        world
            .api(Method::POST, "/api/v1/verifications")
            .json(&json!({
                "tenant_id": DEMO_TENANT_ID,
                "user": DANA,
                "method": method,
                "ticket": {
                    "connection_id": halo_connection(world),
                    "ticket_id": sbx::HALO_TICKET_DANA.to_string(),
                },
            }))
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn get(world: &World, path: &str) -> (u16, Value) {
    json_of(world.api(Method::GET, path).send().await.unwrap()).await
}

async fn settled(world: &World, id: &str) -> Value {
    get(
        world,
        &format!("/api/v1/verifications/{id}?wait_seconds=10"),
    )
    .await
    .1
}

/// A push to Dana that she answers "It's not me": the verification's id.
async fn fraud_reported_push(world: &World) -> String {
    world.microsoft.script_push(DANA, PushScript::ReportFraud);
    let (status, started) = start(world, "push").await;
    assert_eq!(status, 202, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    let done = settled(world, &id).await;
    assert_eq!(done["status"], "denied", "{done}");
    assert_eq!(done["failure_code"], "fraud_reported", "{done}");
    id
}

async fn holds(world: &World, query: &str) -> Vec<Value> {
    let (status, body) = get(world, &format!("/api/v1/reset-holds{query}")).await;
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap().clone()
}

async fn lift(world: &World, id: &str, body: Value) -> (u16, Value) {
    json_of(
        world
            .api(Method::POST, &format!("/api/v1/reset-holds/{id}/lift"))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// The audit entries of `action`, newest first, as the API answers them.
async fn audit(world: &World, action: &str) -> Vec<Value> {
    let (status, body) = get(world, &format!("/api/v1/audit?action={action}")).await;
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap().clone()
}

fn time(value: &Value) -> DateTime<Utc> {
    value.as_str().unwrap().parse().unwrap()
}

fn patches(world: &World) -> usize {
    world
        .microsoft
        .count(Service::Graph, "PATCH", "/v1.0/users/")
}

#[tokio::test]
async fn a_fraud_report_holds_resets_until_an_admin_lifts_the_hold() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let before = Utc::now();
        let reported = fraud_reported_push(&world).await;

        // The hold: Dana's, from that verification, for the default 24 hours.
        let listed = holds(&world, "").await;
        assert_eq!(listed.len(), 1, "{listed:?}");
        let hold = &listed[0];
        assert_eq!(hold["user_principal_name"], DANA);
        assert_eq!(hold["verification_id"], reported.as_str());
        assert_eq!(hold["active"], true);
        let until = time(&hold["held_until"]);
        assert!(
            until >= before + chrono::Duration::hours(24) - chrono::Duration::seconds(1)
                && until <= Utc::now() + chrono::Duration::hours(24),
            "{hold}"
        );
        assert_eq!(
            holds(&world, &format!("?user={}", "DANA@contoso.example"))
                .await
                .len(),
            1
        );
        assert_eq!(holds(&world, "?user=sam@contoso.example").await.len(), 0);
        let hold_id = hold["id"].as_str().unwrap().to_owned();

        // The fraud report is a security event, and says until when resets are held.
        let result = audit(&world, "verification.push.result").await;
        assert_eq!(result.len(), 1, "{result:?}");
        assert_eq!(result[0]["category"], "security", "{}", result[0]);
        assert_eq!(result[0]["outcome"], "denied");
        assert_eq!(result[0]["details"]["code"], "fraud_reported");
        assert_eq!(time(&result[0]["details"]["resets_held_until"]), until);
        let (_, security) = get(&world, "/api/v1/audit?category=security").await;
        assert_eq!(security.as_array().unwrap().len(), 1, "{security}");
        let start_entry = &audit(&world, "verification.push.start").await[0];
        assert_eq!(start_entry["category"], "general", "{start_entry}");

        // The ticket note says the resets are held, and until when.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let notes = world.psa.notes(Psa::HaloPsa, sbx::HALO_TICKET_DANA);
            if notes.iter().any(|n| {
                n.internal
                    && n.text.contains("reported it as fraud")
                    && n.text.contains(&format!(
                        "Password resets of this user are held until {}",
                        utc_minute(until)
                    ))
                    && n.text.contains("unless an MSP admin lifts the hold")
            }) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "notes: {notes:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // A new verification is still allowed; the reset stays held, and Microsoft is not
        // asked.
        let verified = world.verified(DANA).await;
        let (status, refused) = world.reset(DANA, &verified, "held-reset-0001").await;
        assert_eq!(status, 409, "{refused}");
        assert_eq!(refused["code"], "reset_held");
        let message = refused["message"].as_str().unwrap();
        assert!(message.contains(&utc_minute(until)), "{message}");
        assert!(message.contains("MSP admin can lift"), "{message}");
        assert_eq!(patches(&world), 0);
        assert!(world.sms.messages_to(DANA_MOBILE).is_empty());
        let refusals = audit(&world, "password.reset").await;
        assert_eq!(refusals[0]["outcome"], "refused", "{refusals:?}");
        assert_eq!(refusals[0]["details"]["code"], "reset_held", "{refusals:?}");

        // A lift needs a reason, within bounds.
        let (status, body) = lift(&world, &hold_id, json!({})).await;
        assert_eq!(
            (status, &body["code"]),
            (400, &json!("invalid_request")),
            "{body}"
        );
        let (status, body) = lift(&world, &hold_id, json!({ "reason": "" })).await;
        assert_eq!(
            (status, &body["code"]),
            (400, &json!("invalid_request")),
            "{body}"
        );
        let (status, body) = lift(&world, &hold_id, json!({ "reason": "   " })).await;
        assert_eq!(
            (status, &body["code"]),
            (400, &json!("invalid_request")),
            "{body}"
        );
        let (status, body) = lift(&world, &hold_id, json!({ "reason": "x".repeat(501) })).await;
        assert_eq!(
            (status, &body["code"]),
            (400, &json!("invalid_request")),
            "{body}"
        );
        let (status, body) = lift(&world, &hold_id, json!({ "reason": "a\u{0}b" })).await;
        assert_eq!(
            (status, &body["code"]),
            (400, &json!("invalid_request")),
            "{body}"
        );
        let (status, body) = lift(
            &world,
            &Uuid::now_v7().to_string(),
            json!({ "reason": "checked" }),
        )
        .await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(body["code"], "reset_hold_not_found");
        assert_eq!(
            holds(&world, "").await.len(),
            1,
            "refused lifts change nothing"
        );

        // The admin lifts it.
        let reason = "Called Dana back on her known number: she pressed it by mistake";
        let (status, lifted) = lift(&world, &hold_id, json!({ "reason": reason })).await;
        assert_eq!(status, 200, "{lifted}");
        assert_eq!(lifted["active"], false);
        assert_eq!(lifted["lift_reason"], reason);
        assert!(lifted["lifted_at"].is_string(), "{lifted}");
        assert!(
            lifted["lifted_by"]
                .as_str()
                .unwrap()
                .starts_with("api_key "),
            "{lifted}"
        );
        assert!(holds(&world, "").await.is_empty());
        let lifts = audit(&world, "password.reset.hold.lift").await;
        assert_eq!(lifts.len(), 1, "{lifts:?}");
        assert_eq!(lifts[0]["category"], "security");
        assert_eq!(lifts[0]["actor_kind"], "api_key");
        assert_eq!(lifts[0]["subject_name"], DANA);
        assert_eq!(lifts[0]["details"]["reason"], reason);
        assert_eq!(lifts[0]["details"]["hold_id"], hold_id.as_str());

        // Lifting it again changes nothing, with a stable code.
        let (status, again) = lift(&world, &hold_id, json!({ "reason": reason })).await;
        assert_eq!(status, 409, "{again}");
        assert_eq!(again["code"], "reset_hold_not_active");
        assert_eq!(audit(&world, "password.reset.hold.lift").await.len(), 1);

        // After a fresh verification, the reset goes ahead.
        let fresh = world.verified(DANA).await;
        let (status, done) = world.reset(DANA, &fresh, "held-reset-0002").await;
        assert_eq!(status, 201, "{done}");
        assert_eq!(done["status"], "completed", "{done}");
    })
    .await;
}

#[tokio::test]
async fn a_policy_of_zero_holds_nothing_but_the_report_is_still_a_security_event() {
    on_every_backend(async |db| {
        let world = World::start(
            db,
            MspPolicy {
                fraud_hold_seconds: 0,
                ..MspPolicy::default()
            },
        )
        .await;
        fraud_reported_push(&world).await;
        assert!(holds(&world, "").await.is_empty());
        let result = audit(&world, "verification.push.result").await;
        assert_eq!(result[0]["category"], "security", "{}", result[0]);
        assert!(result[0]["details"]["resets_held_until"].is_null());
        let verified = world.verified(DANA).await;
        let (status, done) = world.reset(DANA, &verified, "no-hold-reset-1").await;
        assert_eq!(status, 201, "{done}");
        assert_eq!(done["status"], "completed", "{done}");
    })
    .await;
}

#[tokio::test]
async fn no_its_not_me_on_the_one_tap_page_holds_resets_too() {
    on_every_backend(async |db| {
        let world = World::start(
            db,
            MspPolicy {
                fraud_hold_seconds: 3600,
                ..MspPolicy::default()
            },
        )
        .await;
        let (status, started) = start(&world, "sms_link").await;
        assert_eq!(status, 202, "{started}");
        let id = started["id"].as_str().unwrap().to_owned();
        let sms = world.sms.last_message_to(DANA_MOBILE).unwrap();
        let link = sms
            .body
            .split_whitespace()
            .find(|w| w.starts_with("http"))
            .unwrap();
        let path = url::Url::parse(link).unwrap().path().to_owned();
        let answered = world
            .app
            .client
            .post(world.app.url(&path))
            .form(&[("answer", "no")])
            .send()
            .await
            .unwrap();
        assert_eq!(answered.status(), 200);

        let done = settled(&world, &id).await;
        assert_eq!(done["status"], "denied", "{done}");
        assert_eq!(done["failure_code"], "fraud_reported", "{done}");
        let listed = holds(&world, &format!("?user={DANA}")).await;
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0]["verification_id"], id.as_str());
        let until = time(&listed[0]["held_until"]);
        assert!(
            until > Utc::now() + chrono::Duration::minutes(59),
            "{until}"
        );
        assert!(until <= Utc::now() + chrono::Duration::hours(1), "{until}");
        let answer = &audit(&world, "verification.sms_link.answer").await[0];
        assert_eq!(answer["category"], "security", "{answer}");
        assert_eq!(answer["details"]["code"], "fraud_reported", "{answer}");

        let verified = world.verified(DANA).await;
        let (status, refused) = world.reset(DANA, &verified, "link-held-0001").await;
        assert_eq!(status, 409, "{refused}");
        assert_eq!(refused["code"], "reset_held");
    })
    .await;
}

/// The verification as the database holds it, read past Vouch.
async fn stored(world: &World, id: &str) -> verification::Model {
    verification::Entity::find_by_id(id.parse::<Uuid>().unwrap())
        .one(world.app.store.connection())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn an_approval_answered_while_the_database_is_unreachable_is_kept_and_written_later() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        world.microsoft.script_push(DANA, PushScript::NeverAnswer);
        let (status, started) = start(&world, "push").await;
        assert_eq!(status, 202, "{started}");
        let id = started["id"].as_str().unwrap().to_owned();

        // The database goes away; then Dana approves.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let pending = loop {
            let pending = world.microsoft.pending_pushes();
            if !pending.is_empty() {
                break pending;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the push never arrives"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        world.app.store.simulate_unreachable(true);
        assert!(
            world
                .microsoft
                .answer_push(&pending[0].id, PushAnswer::Approve)
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while world.app.ctx.verifications.held_decisions() == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the decision is never held"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        // Reads answer from the decision held in memory, though the database still says
        // pending (or cannot be read at all).
        let (status, read) = get(&world, &format!("/api/v1/verifications/{id}")).await;
        assert_eq!(status, 200, "{read}");
        assert_eq!(read["status"], "approved", "{read}");
        assert_eq!(
            stored(&world, &id).await.status,
            VerificationStatus::Pending
        );

        // Past the verification's deadline it is still approved, not expired: a decision is
        // held.
        verification::Entity::update_many()
            .col_expr(
                verification::Column::ExpiresAt,
                Expr::value(Utc::now() - chrono::Duration::minutes(1)),
            )
            .filter(verification::Column::Id.eq(id.parse::<Uuid>().unwrap()))
            .exec(world.app.store.connection())
            .await
            .unwrap();
        let (_, read) = get(&world, &format!("/api/v1/verifications/{id}")).await;
        assert_eq!(read["status"], "approved", "{read}");
        assert!(audit(&world, "verification.push.result").await.is_empty());

        // The database is back: the decision lands, with its audit entry, and nothing
        // expires it.
        world.app.store.simulate_unreachable(false);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while stored(&world, &id).await.status == VerificationStatus::Pending {
            assert!(
                std::time::Instant::now() < deadline,
                "the decision never lands"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let row = stored(&world, &id).await;
        assert_eq!(row.status, VerificationStatus::Approved);
        assert!(row.verified_until.unwrap() > Utc::now());
        assert_eq!(world.app.ctx.verifications.held_decisions(), 0);
        let result = audit(&world, "verification.push.result").await;
        assert_eq!(result.len(), 1, "{result:?}");
        assert_eq!(result[0]["outcome"], "approved");
        assert!(audit(&world, "verification.expired").await.is_empty());
        assert!(
            audit(&world, "verification.push.late_answer")
                .await
                .is_empty()
        );
        let (_, read) = get(&world, &format!("/api/v1/verifications/{id}")).await;
        assert_eq!(read["status"], "approved", "{read}");

        // And it serves a reset.
        let (status, done) = world.reset(DANA, &id, "held-decision-1").await;
        assert_eq!(status, 201, "{done}");
        assert_eq!(done["status"], "completed", "{done}");
    })
    .await;
}

#[tokio::test]
async fn without_a_held_decision_a_pending_verification_past_its_deadline_is_expired() {
    // The other half of the rule: only a held decision keeps it from expiring.
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        world.microsoft.script_push(DANA, PushScript::NeverAnswer);
        let (status, started) = start(&world, "push").await;
        assert_eq!(status, 202, "{started}");
        let id = started["id"].as_str().unwrap().to_owned();
        verification::Entity::update_many()
            .col_expr(
                verification::Column::ExpiresAt,
                Expr::value(Utc::now() - chrono::Duration::minutes(1)),
            )
            .filter(verification::Column::Id.eq(id.parse::<Uuid>().unwrap()))
            .exec(world.app.store.connection())
            .await
            .unwrap();
        let (_, read) = get(&world, &format!("/api/v1/verifications/{id}")).await;
        assert_eq!(read["status"], "expired", "{read}");
    })
    .await;
}

#[tokio::test]
async fn it_is_not_me_after_a_cancel_still_holds_resets() {
    // The technician cancelled first; the user's report that someone else asked still
    // counts: a security event, and a hold.
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        world.microsoft.script_push(DANA, PushScript::NeverAnswer);
        let (status, started) = start(&world, "push").await;
        assert_eq!(status, 202, "{started}");
        let id = started["id"].as_str().unwrap().to_owned();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let pending = loop {
            if let Some(push) = world.microsoft.pending_pushes().into_iter().next() {
                break push;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the push never arrives"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
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
                .answer_push(&pending.id, PushAnswer::ReportFraud)
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let late = loop {
            if let Some(entry) = audit(&world, "verification.push.late_answer")
                .await
                .into_iter()
                .next()
            {
                break entry;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the late answer is never audited"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(late["category"], "security", "{late}");
        assert_eq!(late["details"]["code"], "fraud_reported", "{late}");
        let listed = holds(&world, "").await;
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0]["verification_id"], id.as_str());
        assert_eq!(settled(&world, &id).await["status"], "cancelled");
    })
    .await;
}
