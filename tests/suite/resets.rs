//! Every reset ends known: a lost answer from Microsoft, an instance that stops during the
//! password change, a failed SMS, or a refusal before anything changed each end in a state
//! Vouch can deliver from, through the real HTTP API against the sandboxes, on every backend.

use crate::{backends, common};
use std::time::Duration;

use backends::on_every_backend;
use chrono::Utc;
use common::world::{World, json_of};
use reqwest::Method;
use serde_json::Value;
use vouch::domain::{ErrorCode, MspPolicy, ResetStatus};
use vouch::sandbox::Fault;
use vouch::sandbox::microsoft::{DEMO_TENANT_ID, Service};
use vouch::sandbox::sms::SmsFault;
use vouch::store::audit::AuditQuery;
use vouch::store::resets::{ClaimOutcome, NewReset};

const DANA: &str = "dana@contoso.example";
const DANA_MOBILE: &str = "+12065550101";

/// Repeats come quickly, so a test of four attempts takes milliseconds.
fn quick_repeats(config: &mut vouch::config::Config) {
    config.resets.patch_retry_base_ms = 5;
}

fn gateway_timeout() -> Fault {
    Fault::AfterHandling(Box::new(Fault::Status {
        status: 504,
        body: String::new(),
        retry_after: None,
    }))
}

/// The password change (not the user's reads, which share its path) loses its answer.
fn lose_change_answers(world: &World, fault: Fault, times: usize) {
    world
        .microsoft
        .inject_fault_for_method(Service::Graph, "PATCH", "/v1.0/users/", fault, times);
}

fn patches(world: &World) -> usize {
    world
        .microsoft
        .count(Service::Graph, "PATCH", "/v1.0/users/")
}

/// The link in the latest SMS to Dana, and what it reveals.
async fn reveal_latest_link(world: &World) -> (u16, String) {
    let messages = world.sms.messages_to(DANA_MOBILE);
    let sms = messages.last().expect("an SMS reached Dana");
    reveal_link_in(world, &sms.body).await
}

/// What the link in an SMS `body` reveals.
async fn reveal_link_in(world: &World, body: &str) -> (u16, String) {
    let link = body
        .split_whitespace()
        .find(|w| w.starts_with("http"))
        .unwrap()
        .to_owned();
    let path = url::Url::parse(&link).unwrap().path().to_owned();
    let page = world
        .app
        .client
        .post(world.app.url(&path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
        .send()
        .await
        .unwrap();
    (page.status().as_u16(), page.text().await.unwrap())
}

fn shows_password(html: &str, password: &str) -> bool {
    let escaped = password
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;");
    html.contains(password) || html.contains(&escaped)
}

fn microsoft_password(world: &World) -> String {
    world
        .microsoft
        .user_password(DEMO_TENANT_ID, DANA)
        .expect("Microsoft has a new password for Dana")
        .0
}

async fn audit_outcomes(world: &World, action: &str) -> Vec<String> {
    world
        .app
        .store
        .query(AuditQuery {
            msp_id: world.msp.id,
            action: Some(action.to_owned()),
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event.outcome.as_str().to_owned())
        .collect()
}

async fn resend(world: &World, reset_id: &str) -> (u16, Value) {
    json_of(
        world
            .api(
                Method::POST,
                &format!("/api/v1/password-resets/{reset_id}/resend"),
            )
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn a_lost_answer_is_repeated_with_the_same_password_and_the_link_delivered() {
    on_every_backend(async |db| {
        let world = World::start_with(db, MspPolicy::default(), |c| {
            quick_repeats(c);
            c.microsoft.request_timeout_seconds = 1;
        })
        .await;
        let verification = world.verified(DANA).await;
        // The first answer never comes (Vouch times out), the second is a gateway's 504:
        // both changes were made. The third is refused as the password Dana already has.
        lose_change_answers(&world, Fault::AfterHandling(Box::new(Fault::Hang)), 1);
        lose_change_answers(&world, gateway_timeout(), 1);
        let (status, body) = world.reset(DANA, &verification, "lost-answer-1").await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["status"], "completed", "{body}");
        assert_eq!(body["change_attempts"], 3, "{body}");
        assert_eq!(patches(&world), 3, "the same change, three times");
        assert_eq!(body["sent_to"], "+1 ••• ••• ••01");

        // What Dana's link reveals is what Microsoft holds.
        let (status, html) = reveal_latest_link(&world).await;
        assert_eq!(status, 200);
        assert!(shows_password(&html, &microsoft_password(&world)));
        assert_eq!(
            audit_outcomes(&world, "password.reset").await,
            ["completed"]
        );
    })
    .await;
}

#[tokio::test]
async fn answers_lost_every_time_end_outcome_unknown_and_the_link_can_be_sent_anyway() {
    on_every_backend(async |db| {
        let world = World::start_with(db, MspPolicy::default(), quick_repeats).await;
        let verification = world.verified(DANA).await;
        lose_change_answers(&world, gateway_timeout(), 4);
        let (status, body) = world.reset(DANA, &verification, "lost-every-time").await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["status"], "outcome_unknown", "{body}");
        assert_eq!(body["failure_code"], "microsoft_unavailable", "{body}");
        assert_eq!(body["change_attempts"], 4, "{body}");
        assert!(body["link_expires_at"].is_string(), "{body}");
        assert!(
            world.sms.messages_to(DANA_MOBILE).is_empty(),
            "nothing is sent while the outcome is unknown"
        );
        assert_eq!(
            audit_outcomes(&world, "password.reset").await,
            ["outcome_unknown"]
        );
        // The verification stays spent: the password may have changed.
        let (status, again) = world.reset(DANA, &verification, "lost-every-time-2").await;
        assert_eq!(status, 409, "{again}");
        assert_eq!(again["code"], "verification_used");

        // The technician sends the link anyway: it holds what Microsoft was sent.
        let id = body["id"].as_str().unwrap();
        let (status, sent) = resend(&world, id).await;
        assert_eq!(status, 200, "{sent}");
        assert_eq!(sent["status"], "outcome_unknown", "{sent}");
        assert_eq!(sent["sent_to"], "+1 ••• ••• ••01");
        assert_eq!(sent["resends"], 1);
        let (status, html) = reveal_latest_link(&world).await;
        assert_eq!(status, 200);
        assert!(shows_password(&html, &microsoft_password(&world)));
        assert_eq!(
            audit_outcomes(&world, "password.reset.resend").await,
            ["success"]
        );

        // Opened, the link cannot be sent again.
        let (status, refused) = resend(&world, id).await;
        assert_eq!(status, 409, "{refused}");
        assert_eq!(refused["code"], "share_exhausted", "{refused}");
    })
    .await;
}

#[tokio::test]
async fn a_change_refused_before_anything_changed_gives_the_verification_back() {
    on_every_backend(async |db| {
        let world = World::start_with(db, MspPolicy::default(), quick_repeats).await;
        let verification = world.verified(DANA).await;
        // Throttled on every attempt Vouch's client makes (one, and three honouring
        // Retry-After): Graph said it did not make the change.
        let throttled = Fault::Status {
            status: 429,
            body: r#"{"error":{"code":"TooManyRequests","message":"Too many requests"}}"#.into(),
            retry_after: Some(0),
        };
        lose_change_answers(&world, throttled, 4);
        let (status, body) = world.reset(DANA, &verification, "throttled-1").await;
        assert_eq!(status, 429, "{body}");
        assert_eq!(body["code"], "microsoft_throttled", "{body}");
        assert!(
            world
                .microsoft
                .user_password(DEMO_TENANT_ID, DANA)
                .is_none()
        );

        // The same verification serves the next try, under a new key.
        let (status, body) = world.reset(DANA, &verification, "throttled-2").await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["status"], "completed", "{body}");
        // The refused reset's unsent link was withdrawn; the new one works.
        let (status, html) = reveal_latest_link(&world).await;
        assert_eq!(status, 200);
        assert!(shows_password(&html, &microsoft_password(&world)));
        assert_eq!(
            audit_outcomes(&world, "password.reset").await,
            ["completed", "refused"]
        );
    })
    .await;
}

#[tokio::test]
async fn the_sweeper_finishes_a_reset_its_instance_left_during_the_change() {
    on_every_backend(async |db| {
        let world = World::start_with(db, MspPolicy::default(), quick_repeats).await;
        let verification = world.verified(DANA).await;
        // Another instance sends the change, which Microsoft makes, and then never hears
        // back: it stalls there, as if killed.
        let stalled = world
            .second_instance_with(db, |c| c.microsoft.request_timeout_seconds = 600)
            .await;
        lose_change_answers(&world, Fault::AfterHandling(Box::new(Fault::Hang)), 1);
        let request = world
            .api_on(&stalled, Method::POST, "/api/v1/password-resets")
            .header("Idempotency-Key", "stalled-instance")
            .json(&serde_json::json!({
                "tenant_id": DEMO_TENANT_ID,
                "user": DANA,
                "verification_id": verification,
                "confirm": true,
            }))
            .send();
        let stalled_request = tokio::spawn(request);
        let changed = async {
            while world
                .microsoft
                .user_password(DEMO_TENANT_ID, DANA)
                .is_none()
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(20), changed)
            .await
            .expect("the stalled instance sent the change");

        // While its lease runs, nobody takes the reset over.
        let resets = &world.app.ctx.resets;
        assert_eq!(resets.sweep_abandoned(Utc::now()).await.unwrap(), 0);
        // Once it has run out, this instance finishes the reset: the repeat of the same
        // password is refused as Dana's current one, which proves it was set.
        let later = Utc::now()
            + chrono::Duration::seconds(world.app.ctx.config.resets.lease_seconds as i64 + 1);
        assert_eq!(resets.sweep_abandoned(later).await.unwrap(), 1);
        stalled_request.abort();

        let (status, html) = reveal_latest_link(&world).await;
        assert_eq!(status, 200);
        assert!(shows_password(&html, &microsoft_password(&world)));
        assert_eq!(
            audit_outcomes(&world, "password.reset.swept").await,
            ["completed"]
        );
        let (status, body) = world.reset(DANA, &verification, "stalled-instance").await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(
            body["status"], "completed",
            "the key's reset is done: {body}"
        );
        assert_eq!(body["sent_to"], "+1 ••• ••• ••01");
    })
    .await;
}

#[tokio::test]
async fn a_reset_left_before_the_change_fails_and_gives_the_verification_back() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let verification = world.verified(DANA).await;
        let verification_id = uuid::Uuid::parse_str(&verification).unwrap();
        let stored = world
            .app
            .store
            .get_verification(verification_id)
            .await
            .unwrap()
            .unwrap();
        // An instance claimed the reset and spent the verification, then stopped before it
        // sealed a password: nothing reached Microsoft.
        let ClaimOutcome::Claimed(left) = world
            .app
            .store
            .claim_reset(NewReset {
                msp_id: world.msp.id,
                verification_id,
                tenant_id: stored.tenant_id,
                user_object_id: stored.user_object_id.clone(),
                technician_id: None,
                idempotency_key: "left-before-change".into(),
                lease: chrono::Duration::seconds(60),
            })
            .await
            .unwrap()
        else {
            panic!("the reset is claimed");
        };
        assert!(
            world
                .app
                .store
                .spend_verification(verification_id)
                .await
                .unwrap()
        );
        let (status, body) = world.reset(DANA, &verification, "another-key").await;
        assert_eq!(status, 409, "spent while the reset runs: {body}");

        let later = Utc::now() + chrono::Duration::minutes(2);
        assert_eq!(
            world.app.ctx.resets.sweep_abandoned(later).await.unwrap(),
            1
        );
        let swept = world.app.store.get_reset(left.id).await.unwrap().unwrap();
        assert_eq!(swept.status, ResetStatus::Failed);
        assert_eq!(swept.failure_code, Some(ErrorCode::ResetInterrupted));
        assert_eq!(
            audit_outcomes(&world, "password.reset.swept").await,
            ["failed"]
        );
        assert!(
            world
                .microsoft
                .user_password(DEMO_TENANT_ID, DANA)
                .is_none()
        );

        let (status, body) = world.reset(DANA, &verification, "another-key").await;
        assert_eq!(status, 201, "the verification was given back: {body}");
        assert_eq!(body["status"], "completed", "{body}");
    })
    .await;
}

#[tokio::test]
async fn a_failed_sms_is_resent_and_a_newer_reset_withdraws_the_older_link() {
    on_every_backend(async |db| {
        let world = World::start_with(db, MspPolicy::default(), |c| {
            c.resets.max_resends = 2;
        })
        .await;
        let first = world.verified(DANA).await;
        world.sms.inject_fault(
            SmsFault::Status {
                status: 503,
                code: 20503,
                message: "Service unavailable".into(),
                retry_after: None,
            },
            4,
        );
        let (status, body) = world.reset(DANA, &first, "sms-fails").await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["status"], "completed_sms_failed", "{body}");
        let first_reset = body["id"].as_str().unwrap().to_owned();

        let (status, sent) = resend(&world, &first_reset).await;
        assert_eq!(status, 200, "{sent}");
        assert_eq!(sent["status"], "completed", "{sent}");
        assert!(sent["failure_code"].is_null(), "{sent}");
        assert_eq!(world.sms.messages_to(DANA_MOBILE).len(), 1);
        let (status, _) = resend(&world, &first_reset).await;
        assert_eq!(status, 200);
        let (status, limited) = resend(&world, &first_reset).await;
        assert_eq!(status, 409, "{limited}");
        assert_eq!(limited["code"], "resend_not_allowed", "{limited}");

        // A newer reset makes the first link's password stale: that link is withdrawn.
        let first_link = world.sms.messages_to(DANA_MOBILE)[0].body.clone();
        let second = world.verified(DANA).await;
        let (status, body) = world.reset(DANA, &second, "newer-reset").await;
        assert_eq!(status, 201, "{body}");
        let (old, _) = reveal_link_in(&world, &first_link).await;
        assert_eq!(old, 410, "the older link no longer opens");
        let (status, refused) = resend(&world, &first_reset).await;
        assert_eq!(status, 409);
        assert_eq!(refused["code"], "share_revoked", "{refused}");

        // Nothing sealed with a reset is in the clear.
        let raw = backends::raw_database_contents(db, &world.app.store).await;
        let password = microsoft_password(&world);
        assert!(!backends::contains(&raw, &password));
    })
    .await;
}

/// Every Graph call the world's sandbox recorded, as `METHOD path`.
fn graph_calls(world: &World) -> Vec<String> {
    world
        .microsoft
        .requests()
        .into_iter()
        .filter(|r| r.service == Service::Graph)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

/// A warm reset asks Graph twice: one `$batch` reading the user, their directory roles and
/// their phone methods, then the password change (it was 3 reads + the PATCH).
#[tokio::test]
async fn a_warm_reset_reads_graph_once_then_changes_the_password() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let verification = world.verified(DANA).await;
        world.microsoft.clear_requests();
        let (status, body) = world.reset(DANA, &verification, "one-batch-1").await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["status"], "completed", "{body}");
        assert_eq!(body["sent_to"], "+1 ••• ••• ••01", "{body}");
        let calls = graph_calls(&world);
        assert_eq!(
            calls,
            [
                "POST /graph/v1.0/$batch".to_owned(),
                format!("PATCH /graph/v1.0/users/{}", dana_object_id(&world)),
            ],
            "one read, then the change"
        );
    })
    .await;
}

/// Dana's Microsoft object id, as the sandbox's Graph gives it.
fn dana_object_id(world: &World) -> String {
    world
        .microsoft
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH")
        .and_then(|r| r.path.rsplit('/').next().map(str::to_owned))
        .expect("a password change was sent")
}

/// A 403 on the directory roles inside the batch is the missing `Directory.Read.All`, with
/// the code it had as a call of its own; nothing was changed and the verification is kept.
#[tokio::test]
async fn a_refused_roles_read_inside_the_batch_names_the_missing_permission() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let verification = world.verified(DANA).await;
        world.microsoft.inject_fault(
            Service::Graph,
            "/memberOf/microsoft.graph.directoryRole",
            Fault::Status {
                status: 403,
                body: r#"{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges to complete the operation.","innerError":{"request-id":"roles-403"}}}"#.into(),
                retry_after: None,
            },
            1,
        );
        world.microsoft.clear_requests();
        let (status, body) = world.reset(DANA, &verification, "roles-403-1").await;
        assert_eq!(body["code"], "microsoft_missing_permission", "{body}");
        assert_eq!(status, 400, "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains("Directory.Read.All"), "{body}");
        assert!(message.contains("roles-403"), "the inner request id: {body}");
        assert_eq!(patches(&world), 0);
        assert_eq!(graph_calls(&world), ["POST /graph/v1.0/$batch"]);
        // The verification was not spent: the next try (no fault) resets.
        let (status, body) = world.reset(DANA, &verification, "roles-403-2").await;
        assert_eq!(status, 201, "{body}");
    })
    .await;
}

/// A 429 inside the batch is asked again after the Retry-After it carried (only the throttled
/// request), and a throttle that lasts ends as `microsoft_throttled`, bounded like a single
/// call's retries.
#[tokio::test]
async fn a_throttled_read_inside_the_batch_waits_as_told_and_stays_bounded() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let throttled = |seconds| Fault::Status {
            status: 429,
            body: r#"{"error":{"code":"TooManyRequests","message":"Too many requests"}}"#.into(),
            retry_after: Some(seconds),
        };
        let verification = world.verified(DANA).await;
        world.microsoft.inject_fault(
            Service::Graph,
            "/authentication/phoneMethods",
            throttled(1),
            1,
        );
        world.microsoft.clear_requests();
        let started = std::time::Instant::now();
        let (status, body) = world.reset(DANA, &verification, "batch-429-1").await;
        assert_eq!(status, 201, "{body}");
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "waited as told: {:?}",
            started.elapsed()
        );
        let batches = world.microsoft.count(Service::Graph, "POST", "/$batch");
        assert_eq!(batches, 2, "{:?}", graph_calls(&world));

        let verification = world.verified(DANA).await;
        world.microsoft.inject_fault(
            Service::Graph,
            "/authentication/phoneMethods",
            throttled(0),
            10,
        );
        world.microsoft.clear_requests();
        let (status, body) = world.reset(DANA, &verification, "batch-429-2").await;
        assert_eq!(status, 429, "{body}");
        assert_eq!(body["code"], "microsoft_throttled", "{body}");
        assert_eq!(
            world.microsoft.count(Service::Graph, "POST", "/$batch"),
            4,
            "1 try + 3 bounded retries"
        );
        assert_eq!(patches(&world), 0);
    })
    .await;
}
