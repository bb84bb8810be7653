//! Verification and password reset through the real HTTP API, against the Microsoft and SMS
//! sandboxes: the rules the core enforces whatever the caller.

use crate::{backends, common};
use std::time::{Duration, Instant};

use backends::{contains, on_every_backend, raw_database_contents};
use common::world::{World, json_of};
use common::{Backend, TestDb};
use reqwest::Method;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Statement};
use serde_json::json;
use vouch::domain::MspPolicy;
use vouch::domain::ResetStatus;
use vouch::sandbox::microsoft::{DEMO_TENANT_ID, PushScript, Service};
use vouch::store::entities::{password_reset, verification};

const DANA: &str = "dana@contoso.example";
const DANA_MOBILE: &str = "+12065550101";

async fn start(world: &World, user: &str, method: &str) -> reqwest::Response {
    world
        .api(Method::POST, "/api/v1/verifications")
        .json(&json!({ "tenant_id": DEMO_TENANT_ID, "user": user, "method": method }))
        .send()
        .await
        .unwrap()
}

/// Moves a timestamp of a verification into the past (as if time had passed).
async fn backdate(world: &World, id: &str, column: verification::Column) {
    let past = chrono::Utc::now() - chrono::Duration::hours(1);
    let updated = verification::Entity::update_many()
        .col_expr(column, Expr::value(past))
        .filter(verification::Column::Id.eq(uuid::Uuid::parse_str(id).unwrap()))
        .exec(world.app.store.connection())
        .await
        .unwrap();
    assert_eq!(updated.rows_affected, 1);
}

#[tokio::test]
async fn a_push_is_approved_and_watchers_see_it() {
    let db = TestDb::sqlite().await;
    let world = World::start(&db, MspPolicy::default()).await;
    world
        .microsoft
        .script_push(DANA, PushScript::ApproveAfter(Duration::from_millis(400)));
    let (status, started) = json_of(start(&world, DANA, "push").await).await;
    assert_eq!(status, 202, "{started}");
    assert_eq!(started["status"], "pending", "readable at once");
    let id = started["id"].as_str().unwrap();
    let before = Instant::now();
    let (_, done) = json_of(
        world
            .api(
                Method::GET,
                &format!("/api/v1/verifications/{id}?wait_seconds=10"),
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(done["status"], "approved");
    assert!(
        before.elapsed() < Duration::from_secs(3),
        "woken by the decision: {:?}",
        before.elapsed()
    );
    let until =
        chrono::DateTime::parse_from_rfc3339(done["verified_until"].as_str().unwrap()).unwrap();
    let window = until.signed_duration_since(chrono::Utc::now());
    assert!(window > chrono::Duration::minutes(14) && window <= chrono::Duration::minutes(15));

    // Denied and fraud are recorded as such.
    world.microsoft.script_push(DANA, PushScript::Deny);
    let (_, started) = json_of(start(&world, DANA, "push").await).await;
    let id = started["id"].as_str().unwrap();
    let (_, done) = json_of(
        world
            .api(
                Method::GET,
                &format!("/api/v1/verifications/{id}?wait_seconds=10"),
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(done["status"], "denied");

    // The history lists both, newest first.
    let (_, history) = json_of(
        world
            .api(
                Method::GET,
                &format!("/api/v1/users/verifications?tenant_id={DEMO_TENANT_ID}&user={DANA}"),
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    let statuses: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["denied", "approved"]);
}

#[tokio::test]
async fn the_preferred_method_mismatch_sends_no_push_and_offers_the_fix() {
    let db = TestDb::sqlite().await;
    let world = World::start(&db, MspPolicy::default()).await;
    world.microsoft.clear_requests();
    let (status, body) = json_of(start(&world, "sam@contoso.example", "push").await).await;
    assert_eq!(status, 409);
    assert_eq!(body["code"], "preferred_method_mismatch");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("Default sign-in method")
    );
    assert_eq!(
        world
            .microsoft
            .count(Service::Mfa, "POST", "BeginTwoWayAuthentication"),
        0
    );

    let unconfirmed = world
        .api(Method::POST, "/api/v1/users/default-method")
        .json(&json!({ "tenant_id": DEMO_TENANT_ID, "user": "sam@contoso.example", "confirm": false }))
        .send()
        .await
        .unwrap();
    assert_eq!(unconfirmed.status(), 400);
    let fixed = world
        .api(Method::POST, "/api/v1/users/default-method")
        .json(
            &json!({ "tenant_id": DEMO_TENANT_ID, "user": "sam@contoso.example", "confirm": true }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(fixed.status(), 204);
    world
        .microsoft
        .script_push("sam@contoso.example", PushScript::Approve);
    let (status, _) = json_of(start(&world, "sam@contoso.example", "push").await).await;
    assert_eq!(status, 202);
}

#[tokio::test]
async fn verifying_someone_else_needs_a_reason_kept_in_the_audit() {
    let db = TestDb::sqlite().await;
    let world = World::start(&db, MspPolicy::default()).await;
    let body = |reason: Option<&str>| {
        json!({
            "tenant_id": DEMO_TENANT_ID, "user": DANA, "method": "push",
            "is_ticket_contact": false, "reason": reason,
            "ticket": { "ticket_id": "1001" },
        })
    };
    let (status, err) = json_of(
        world
            .api(Method::POST, "/api/v1/verifications")
            .json(&body(None))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (400, Some("reason_required"))
    );
    world.microsoft.script_push(DANA, PushScript::Approve);
    let (status, _) = json_of(
        world
            .api(Method::POST, "/api/v1/verifications")
            .json(&body(Some("manager approval")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 202);
    let (_, audit) = json_of(
        world
            .api(Method::GET, "/api/v1/audit?action=verification.push.start")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let entry = &audit.as_array().unwrap()[0];
    assert_eq!(entry["details"]["reason"], "manager approval");
    assert_eq!(entry["ticket_id"], "1001");
    assert_eq!(entry["subject_name"], DANA);
}

#[tokio::test]
async fn the_sms_code_path_counts_attempts_and_expires() {
    let db = TestDb::sqlite().await;
    let world = World::start(&db, MspPolicy::default()).await;
    let (status, started) = json_of(start(&world, DANA, "sms_code").await).await;
    assert_eq!(status, 202, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    let sms = world
        .sms
        .wait_for_message_to(DANA_MOBILE, Duration::from_secs(5))
        .await
        .expect("the code went to the mobile registered in Microsoft");
    assert!(sms.body.contains("Northwind IT"), "{}", sms.body);
    let code: String = sms
        .body
        .chars()
        .filter(|c| c.is_ascii_digit())
        .take(6)
        .collect();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let submit = |code: String| {
        let request = world
            .api(Method::POST, &format!("/api/v1/verifications/{id}/code"))
            .json(&json!({ "code": code }));
        async move { json_of(request.send().await.unwrap()).await }
    };
    for attempt in 1..=5 {
        let (status, body) = submit(wrong.to_owned()).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["code"], "code_incorrect");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains(&format!("{} attempts left", 5 - attempt))
        );
    }
    let (status, body) = submit(code.clone()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("too_many_attempts")),
        "the 6th attempt is refused, even right"
    );

    // A fresh code, entered right, approves.
    let (_, started) = json_of(start(&world, DANA, "sms_code").await).await;
    let id2 = started["id"].as_str().unwrap().to_owned();
    let sms = world.sms.last_message_to(DANA_MOBILE).unwrap();
    let code: String = sms
        .body
        .chars()
        .filter(|c| c.is_ascii_digit())
        .take(6)
        .collect();
    let (status, body) = json_of(
        world
            .api(Method::POST, &format!("/api/v1/verifications/{id2}/code"))
            .json(&json!({ "code": code }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "approved");

    // An expired code is refused.
    let (_, started) = json_of(start(&world, DANA, "sms_code").await).await;
    let id3 = started["id"].as_str().unwrap().to_owned();
    let code: String = world
        .sms
        .last_message_to(DANA_MOBILE)
        .unwrap()
        .body
        .chars()
        .filter(|c| c.is_ascii_digit())
        .take(6)
        .collect();
    backdate(&world, &id3, verification::Column::ExpiresAt).await;
    let (status, body) = json_of(
        world
            .api(Method::POST, &format!("/api/v1/verifications/{id3}/code"))
            .json(&json!({ "code": code }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("code_expired")),
        "{body}"
    );

    // No code appears in the audit log or its export.
    let csv = world
        .api(Method::GET, "/api/v1/audit/export")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with("occurred_at,action,outcome"));
    assert!(!csv.contains(&code), "the code never reaches the audit log");
}

#[tokio::test]
async fn resets_are_refused_without_a_fresh_verification_of_that_user() {
    let db = TestDb::sqlite().await;
    let world = World::start(&db, MspPolicy::default()).await;

    let (status, body) = world
        .reset(DANA, &uuid::Uuid::new_v4().to_string(), "key-none-0001")
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("verification_not_found"))
    );

    // Pending, not approved.
    world.microsoft.script_push(DANA, PushScript::NeverAnswer);
    let (_, pending) = json_of(start(&world, DANA, "push").await).await;
    let (status, body) = world
        .reset(DANA, pending["id"].as_str().unwrap(), "key-pending-01")
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("not_verified")),
        "{body}"
    );
    world
        .api(
            Method::POST,
            &format!(
                "/api/v1/verifications/{}/cancel",
                pending["id"].as_str().unwrap()
            ),
        )
        .send()
        .await
        .unwrap();

    // Another user's verification.
    let lee = world.verified("lee@contoso.example").await;
    let (status, body) = world.reset(DANA, &lee, "key-other-0001").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("verification_for_other_user"))
    );

    // Expired.
    let old = world.verified(DANA).await;
    backdate(&world, &old, verification::Column::VerifiedUntil).await;
    let (status, body) = world.reset(DANA, &old, "key-expired-01").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("not_verified")),
        "{body}"
    );

    // Fresh: works once; reuse under another key is refused.
    let fresh = world.verified(DANA).await;
    let (status, body) = world.reset(DANA, &fresh, "key-fresh-0001").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"], "completed");
    let (status, body) = world.reset(DANA, &fresh, "key-fresh-0002").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("verification_used")),
        "{body}"
    );

    // Admin-role and synced users, each with its code, before anything changes.
    let ada = world.verified("ada@contoso.example").await;
    let (status, body) = world
        .reset("ada@contoso.example", &ada, "key-admin-0001")
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("user_holds_admin_role")),
        "{body}"
    );
    let omar = world.verified("omar@contoso.example").await;
    let (status, body) = world
        .reset("omar@contoso.example", &omar, "key-synced-001")
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("user_synced_from_on_premises")),
        "{body}"
    );
    assert_eq!(
        world
            .microsoft
            .user_password(DEMO_TENANT_ID, "ada@contoso.example"),
        None
    );
    assert_eq!(
        world
            .microsoft
            .user_password(DEMO_TENANT_ID, "omar@contoso.example"),
        None
    );

    // Confirmation is required.
    let another = world.verified("lee@contoso.example").await;
    let (status, body) = json_of(
        world
            .api(Method::POST, "/api/v1/password-resets")
            .header("Idempotency-Key", "key-confirm-01")
            .json(&json!({ "tenant_id": DEMO_TENANT_ID, "user": "lee@contoso.example", "verification_id": another, "confirm": false }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("confirmation_required"))
    );
}

#[tokio::test]
async fn ten_concurrent_resets_with_one_key_reach_microsoft_once_and_deliver_the_password() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let verification = world.verified(DANA).await;
        world.microsoft.clear_requests();
        let attempts = (0..10).map(|_| world.reset(DANA, &verification, "same-key-for-all-10"));
        let results = futures_util::future::join_all(attempts).await;
        let ids: std::collections::HashSet<String> = results
            .iter()
            .map(|(status, body)| {
                assert_eq!(*status, 201, "{body}");
                assert_eq!(body["status"], "completed", "{body}");
                assert!(
                    body["password"].is_null(),
                    "technicians do not see passwords by default"
                );
                body["id"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(ids.len(), 1, "one reset");
        assert_eq!(
            world
                .microsoft
                .count(Service::Graph, "PATCH", "/v1.0/users/"),
            1,
            "exactly one PATCH"
        );
        assert_eq!(results[0].1["sent_to"], "+1 ••• ••• ••01");

        // The link reached Dana's phone and reveals exactly the password Microsoft received.
        let messages = world.sms.messages_to(DANA_MOBILE);
        assert_eq!(messages.len(), 1, "one SMS");
        let link = messages[0]
            .body
            .split_whitespace()
            .find(|w| w.starts_with("http"))
            .unwrap()
            .to_owned();
        let path = url::Url::parse(&link).unwrap().path().to_owned();
        let page = world
            .app
            .client
            .post(world.app.url(&path))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        let (password, force) = world.microsoft.user_password(DEMO_TENANT_ID, DANA).unwrap();
        assert!(force, "change at next sign-in by default");
        let escaped = password
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#x27;");
        assert!(
            html.contains(&password) || html.contains(&escaped),
            "the revealed password is the one Microsoft got"
        );

        // The password is nowhere in the database, the audit log or its export.
        let raw = raw_database_contents(db, &world.app.store).await;
        assert!(
            contains(&raw, "password.reset"),
            "the scan must see the audit log, or it proves nothing"
        );
        assert!(!contains(&raw, &password), "the password is stored");
        let csv = world
            .api(Method::GET, "/api/v1/audit/export")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(csv.contains("password.reset"));
        assert!(!csv.contains(&password));
    })
    .await;
}

/// Counts every insert into `password_resets` that PostgreSQL attempts, failed ones too: a
/// trigger bumps a sequence, and sequences ignore rollbacks. A failed insert is not harmless
/// there: it leaves a dead row in the table until vacuum.
async fn count_reset_insert_attempts(world: &World) {
    for statement in [
        "CREATE SEQUENCE reset_insert_attempts",
        "CREATE FUNCTION count_reset_insert_attempt() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN PERFORM nextval('reset_insert_attempts'); RETURN NEW; END $$",
        "CREATE TRIGGER count_reset_insert_attempts BEFORE INSERT ON password_resets \
         FOR EACH ROW EXECUTE FUNCTION count_reset_insert_attempt()",
    ] {
        world
            .app
            .store
            .connection()
            .execute_unprepared(statement)
            .await
            .unwrap();
    }
}

async fn reset_insert_attempts(world: &World) -> i64 {
    let conn = world.app.store.connection();
    let row = conn
        .query_one_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS attempts \
             FROM reset_insert_attempts",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "attempts").unwrap()
}

#[tokio::test]
async fn a_replayed_or_refused_reset_writes_no_row_and_tries_no_insert() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        if db.backend == Backend::Postgres {
            count_reset_insert_attempts(&world).await;
        }
        let verification = world.verified(DANA).await;
        let (status, first) = world.reset(DANA, &verification, "key-replayed-01").await;
        assert_eq!(status, 201, "{first}");

        // Retries with the key get the reset's outcome.
        for _ in 0..3 {
            let (status, again) = world.reset(DANA, &verification, "key-replayed-01").await;
            assert_eq!(status, 201, "{again}");
            assert_eq!(again["id"], first["id"]);
        }
        // The spent verification under another key, and the key for another verification,
        // are refused.
        let (status, body) = world.reset(DANA, &verification, "key-replayed-02").await;
        assert_eq!(
            (status, body["code"].as_str()),
            (409, Some("verification_used")),
            "{body}"
        );
        let other = world.verified(DANA).await;
        let (status, body) = world.reset(DANA, &other, "key-replayed-01").await;
        assert!((400..500).contains(&status), "{status} {body}");
        assert_eq!(body["code"], "idempotency_key_reused", "{body}");

        let resets = password_reset::Entity::find()
            .all(world.app.store.connection())
            .await
            .unwrap();
        assert_eq!(resets.len(), 1, "one reset row: {resets:?}");
        assert_eq!(resets[0].id.to_string(), first["id"].as_str().unwrap());
        assert_eq!(resets[0].status, ResetStatus::Completed);
        let other = verification::Entity::find_by_id(uuid::Uuid::parse_str(&other).unwrap())
            .one(world.app.store.connection())
            .await
            .unwrap()
            .unwrap();
        assert!(
            other.consumed_at.is_none(),
            "the refused verification is unspent"
        );
        if db.backend == Backend::Postgres {
            assert_eq!(
                reset_insert_attempts(&world).await,
                1,
                "only the reset that happened tried an insert"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn technicians_see_the_password_only_when_policy_allows() {
    on_every_backend(async |db| {
        let world = World::start(
            db,
            MspPolicy {
                show_password_to_technician: true,
                password_style: vouch::domain::PasswordStyle::Passphrase,
                ..MspPolicy::default()
            },
        )
        .await;
        let verification = world.verified(DANA).await;
        let (status, body) = world.reset(DANA, &verification, "key-shown-0001").await;
        assert_eq!(status, 201, "{body}");
        let (password, _) = world.microsoft.user_password(DEMO_TENANT_ID, DANA).unwrap();
        assert_eq!(body["password"], password.as_str());
        // A retry returns the outcome, but never the password again.
        let (status, again) = world.reset(DANA, &verification, "key-shown-0001").await;
        assert_eq!(status, 201);
        assert_eq!(again["id"], body["id"]);
        assert!(again["password"].is_null());
    })
    .await;
}

#[tokio::test]
async fn the_push_limit_holds_across_two_instances_on_one_database() {
    for db in TestDb::all().await {
        let world = World::start(
            &db,
            MspPolicy {
                push_limit_count: 3,
                push_limit_window_seconds: 900,
                ..MspPolicy::default()
            },
        )
        .await;
        let second = world.second_instance(&db).await;
        let instances = [&world.app, &second];

        // Two simultaneous starts on two instances: one push, one refusal.
        world.microsoft.script_push(DANA, PushScript::NeverAnswer);
        world.microsoft.script_push(DANA, PushScript::NeverAnswer);
        let body = json!({ "tenant_id": DEMO_TENANT_ID, "user": DANA, "method": "push" });
        let (a, b) = tokio::join!(
            world
                .api_on(instances[0], Method::POST, "/api/v1/verifications")
                .json(&body)
                .send(),
            world
                .api_on(instances[1], Method::POST, "/api/v1/verifications")
                .json(&body)
                .send(),
        );
        let mut statuses = vec![a.unwrap().status().as_u16(), b.unwrap().status().as_u16()];
        statuses.sort();
        assert_eq!(
            statuses,
            [202, 409],
            "{:?}: at most one pending push",
            db.backend
        );

        // Cancel and push again, alternating instances: 3 per window, then refused.
        let mut started = 1;
        loop {
            let (_, list) = json_of(
                world
                    .api(
                        Method::GET,
                        &format!(
                            "/api/v1/users/verifications?tenant_id={DEMO_TENANT_ID}&user={DANA}"
                        ),
                    )
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            for v in list
                .as_array()
                .unwrap()
                .iter()
                .filter(|v| v["status"] == "pending")
            {
                world
                    .api(
                        Method::POST,
                        &format!("/api/v1/verifications/{}/cancel", v["id"].as_str().unwrap()),
                    )
                    .send()
                    .await
                    .unwrap();
            }
            world.microsoft.script_push(DANA, PushScript::NeverAnswer);
            let response = world
                .api_on(
                    instances[started % 2],
                    Method::POST,
                    "/api/v1/verifications",
                )
                .json(&body)
                .send()
                .await
                .unwrap();
            if started < 3 {
                assert_eq!(
                    response.status(),
                    202,
                    "{:?}: push {}",
                    db.backend,
                    started + 1
                );
                started += 1;
            } else {
                let (status, err) = json_of(response).await;
                assert_eq!(
                    (status, err["code"].as_str()),
                    (429, Some("push_rate_limited")),
                    "{:?}",
                    db.backend
                );
                assert!(err["message"].as_str().unwrap().contains("push-bombing"));
                break;
            }
        }
        second.stop().await;
    }
}

#[tokio::test]
async fn a_share_goes_by_sms_to_the_mobile_registered_in_microsoft() {
    let db = TestDb::sqlite().await;
    let world = World::start(&db, MspPolicy::default()).await;
    let (status, created) = json_of(
        world
            .api(Method::POST, "/api/v1/shares")
            .json(&json!({
                "content": "VPN pre-shared key: 7Hq-2x9-Lp4",
                "send_to": { "tenant_id": DEMO_TENANT_ID, "user": DANA },
            }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["sent_to"], "+1 ••• ••• ••01");
    assert_eq!(
        created["url"], "",
        "the link went to the user, not back to the caller"
    );
    let sms = world
        .sms
        .last_message_to(DANA_MOBILE)
        .expect("the link went by SMS");
    assert!(sms.body.starts_with("Northwind IT:"), "{}", sms.body);
    let link = sms
        .body
        .split_whitespace()
        .find(|w| w.starts_with("http"))
        .unwrap();
    let path = url::Url::parse(link).unwrap().path().to_owned();
    let page = world
        .app
        .client
        .post(world.app.url(&path))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("7Hq-2x9-Lp4"));

    // A user without a registered mobile: refused before anything is created.
    let (status, body) = json_of(
        world
            .api(Method::POST, "/api/v1/shares")
            .json(&json!({
                "content": "secret",
                "send_to": { "tenant_id": DEMO_TENANT_ID, "user": "noel@contoso.example" },
            }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("no_mobile_phone")),
        "{body}"
    );
    let (_, list) = json_of(
        world
            .api(Method::GET, "/api/v1/shares")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_one_tap_link_approves_only_when_tapped() {
    let db = TestDb::sqlite().await;
    let world = World::start(&db, MspPolicy::default()).await;
    let (status, started) = json_of(start(&world, DANA, "sms_link").await).await;
    assert_eq!(status, 202, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    let sms = world
        .sms
        .last_message_to(DANA_MOBILE)
        .expect("the link went by SMS");
    let link = sms
        .body
        .split_whitespace()
        .find(|w| w.starts_with("http"))
        .unwrap();
    let path = url::Url::parse(link).unwrap().path().to_owned();

    // Opening the link (a preview bot, say) changes nothing.
    let page = world
        .app
        .client
        .get(world.app.url(&path))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Yes, it's me"));
    let (_, still) = json_of(
        world
            .api(Method::GET, &format!("/api/v1/verifications/{id}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(still["status"], "pending");

    let tapped = world
        .app
        .client
        .post(world.app.url(&path))
        .form(&[("answer", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(tapped.status(), 200);
    let (_, done) = json_of(
        world
            .api(Method::GET, &format!("/api/v1/verifications/{id}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(done["status"], "approved");
    let again = world
        .app
        .client
        .post(world.app.url(&path))
        .form(&[("answer", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 410, "a link answers once");
}
