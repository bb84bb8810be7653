//! The pod tells the truth: a fix of the default method acts on the person the refused push
//! was for; a user without Authenticator is told so; only this ticket's verifications make
//! the shield; others verified here get their own reset. Real HTTP, every backend.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use vouch::domain::MspPolicy;
use vouch::sandbox::microsoft::{DEMO_TENANT_ID, PushScript, Service};
use vouch::sandbox::psa::{self as sbx, Psa};

use crate::backends::on_every_backend;
use crate::common::world::{World, json_of};
use crate::pods::{halo_token, iframe_src, load_pod, pod, token_of};

const DANA: &str = "dana@contoso.example";
const SAM: &str = "sam@contoso.example";
const LEE: &str = "lee@contoso.example";

async fn call(
    world: &World,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = pod(world, token, method, path).await;
    if let Some(body) = body {
        request = request.json(&body);
    }
    json_of(request.send().await.unwrap()).await
}

async fn context(world: &World, token: &str) -> Value {
    let (status, body) = call(world, token, Method::GET, "/context", None).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Starts a verification from the pod and waits for its decision.
async fn verify(world: &World, token: &str, body: Value) -> Value {
    let (status, started) = call(world, token, Method::POST, "/verifications", Some(body)).await;
    assert_eq!(status, 202, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    let (status, done) = call(
        world,
        token,
        Method::GET,
        &format!("/verifications/{id}?wait_seconds=10"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{done}");
    done
}

async fn wait_for_note(world: &World, ticket: u64, contains: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let notes = world.psa.notes(Psa::HaloPsa, ticket);
        if notes
            .iter()
            .any(|n| n.internal && n.text.contains(contains))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no note with {contains:?}: {notes:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_default_method_fix_acts_on_the_person_the_push_was_for() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        // Dana is the ticket's contact; the technician verifies Sam (whose default is SMS).
        let token = halo_token(&world, sbx::HALO_TICKET_DANA).await;
        world
            .microsoft
            .set_user_sign_in_preference(DEMO_TENANT_ID, DANA, "sms");
        let (status, refused) = call(
            &world,
            &token,
            Method::POST,
            "/verifications",
            Some(json!({"method": "push", "other_user": {"email": SAM, "reason": "manager approval"}})),
        )
        .await;
        assert_eq!((status, refused["code"].as_str()), (409, Some("preferred_method_mismatch")), "{refused}");
        assert_eq!(refused["can_fix"], true);
        let fix_token = refused["fix_token"].as_str().expect("a fix token").to_owned();

        // Without the offer, nothing changes; a forged or altered offer is refused.
        let (status, body) = call(&world, &token, Method::POST, "/default-method", Some(json!({"confirm": true}))).await;
        assert_eq!((status, body["code"].as_str()), (400, Some("invalid_request")), "{body}");
        let (status, body) = call(
            &world,
            &token,
            Method::POST,
            "/default-method",
            Some(json!({"confirm": true, "fix_token": format!("{fix_token}0")})),
        )
        .await;
        assert_eq!((status, body["code"].as_str()), (409, Some("method_fix_invalid")), "{body}");
        // Another ticket's pod cannot use it either.
        let elsewhere = halo_token(&world, sbx::HALO_TICKET_LEE).await;
        let (status, body) = call(
            &world,
            &elsewhere,
            Method::POST,
            "/default-method",
            Some(json!({"confirm": true, "fix_token": fix_token})),
        )
        .await;
        assert_eq!((status, body["code"].as_str()), (409, Some("method_fix_invalid")), "{body}");

        let (status, body) = call(
            &world,
            &token,
            Method::POST,
            "/default-method",
            Some(json!({"confirm": true, "fix_token": fix_token})),
        )
        .await;
        assert_eq!(status, 204, "{body}");
        assert_eq!(
            world.microsoft.user_sign_in_preference(DEMO_TENANT_ID, SAM).as_deref(),
            Some("push"),
            "Sam, whom the push was for, now has the push as default"
        );
        assert_eq!(
            world.microsoft.user_sign_in_preference(DEMO_TENANT_ID, DANA).as_deref(),
            Some("sms"),
            "the ticket's contact is left alone"
        );
        wait_for_note(&world, sbx::HALO_TICKET_DANA, &format!("default sign-in method of {SAM} was changed")).await;
    })
    .await;
}

#[tokio::test]
async fn a_user_without_authenticator_is_told_so_and_offered_sms() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        world.microsoft.remove_authenticator(DEMO_TENANT_ID, DANA);
        world
            .microsoft
            .set_user_sign_in_preference(DEMO_TENANT_ID, DANA, "sms");
        let token = halo_token(&world, sbx::HALO_TICKET_DANA).await;
        let context = context(&world, &token).await;
        let methods = context["methods"].as_array().unwrap();
        let push = methods.iter().find(|m| m["method"] == "push").unwrap();
        assert_eq!(push["available"], false);
        let sms = methods.iter().find(|m| m["method"] == "sms_code").unwrap();
        assert_eq!(sms["available"], true, "SMS is the way: {context}");

        let (status, refused) = call(
            &world,
            &token,
            Method::POST,
            "/verifications",
            Some(json!({"method": "push"})),
        )
        .await;
        assert_eq!(
            (status, refused["code"].as_str()),
            (409, Some("authenticator_not_registered")),
            "{refused}"
        );
        let message = refused["message"].as_str().unwrap();
        assert!(
            message.contains(DANA) && message.contains("SMS"),
            "{message}"
        );
        assert!(
            refused.get("fix_token").is_none(),
            "no fix is offered that cannot work"
        );
    })
    .await;
}

#[tokio::test]
async fn a_verification_on_another_ticket_is_history_not_a_green_shield() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        world.microsoft.script_push(DANA, PushScript::Approve);
        let halo = halo_token(&world, sbx::HALO_TICKET_DANA).await;
        let done = verify(&world, &halo, json!({"method": "push"})).await;
        assert_eq!(done["status"], "approved");
        assert_eq!(context(&world, &halo).await["shield"]["state"], "verified");

        // The same person, on an Autotask ticket: history here, and no reset offered.
        let src = iframe_src(
            &world
                .psa
                .autotask()
                .ticket_screen_url(sbx::AUTOTASK_TICKET_DANA),
        )
        .await;
        let (status, html) = load_pod(&world, &src).await;
        assert_eq!(status, 200, "{html}");
        let autotask = token_of(&html);
        let there = context(&world, &autotask).await;
        assert_eq!(there["shield"]["state"], "not_verified", "{there}");
        let detail = there["shield"]["detail"].as_str().unwrap();
        assert!(
            detail.contains(&format!("on HaloPSA ticket {}", sbx::HALO_TICKET_DANA))
                && detail.contains("by Jordan")
                && detail.contains("just now"),
            "{detail}"
        );
        assert_eq!(there["reset"]["allowed"], false);
        assert!(there["reset"]["verification_id"].is_null());
        let entry = &there["history"][0];
        assert_eq!(entry["label"], "Approved");
        assert!(
            entry["elsewhere"]
                .as_str()
                .unwrap()
                .contains("HaloPSA ticket"),
            "{entry}"
        );
        // The HaloPSA ticket's own history says nothing of "elsewhere".
        assert!(context(&world, &halo).await["history"][0]["elsewhere"].is_null());
    })
    .await;
}

#[tokio::test]
async fn someone_else_verified_by_sms_shows_as_verified_with_their_own_reset() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let token = halo_token(&world, sbx::HALO_TICKET_DANA).await;
        let (status, started) = call(
            &world,
            &token,
            Method::POST,
            "/verifications",
            Some(json!({"method": "sms_code", "other_user": {"email": LEE, "reason": "manager approval"}})),
        )
        .await;
        assert_eq!(status, 202, "{started}");
        let id = started["id"].as_str().unwrap();
        let sms = world.sms.last_message_to("+12065550106").expect("Lee got a code");
        let code: String = sms
            .body
            .split(|c: char| !c.is_ascii_digit())
            .find(|w| w.len() == 6)
            .expect("a six-digit code")
            .to_owned();
        let (status, body) = call(
            &world,
            &token,
            Method::POST,
            &format!("/verifications/{id}/code"),
            Some(json!({"code": code})),
        )
        .await;
        assert_eq!((status, body["status"].as_str()), (200, Some("approved")), "{body}");

        let ctx = context(&world, &token).await;
        assert_eq!(ctx["shield"]["state"], "not_verified", "Dana, the contact, is not verified");
        let others = ctx["others"].as_array().unwrap();
        assert_eq!(others.len(), 1, "{ctx}");
        assert_eq!(others[0]["user"]["upn"], LEE);
        assert_eq!(others[0]["shield"]["state"], "verified");
        assert_eq!(others[0]["reason"], "manager approval");
        assert_eq!(others[0]["reset"]["allowed"], true);
        assert_eq!(others[0]["reset"]["verification_id"], id);

        let (status, outcome) = json_of(
            pod(&world, &token, Method::POST, "/reset")
                .await
                .header("Idempotency-Key", "reset-lee-0001")
                .json(&json!({"verification_id": id, "confirm": true}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!((status, outcome["status"].as_str()), (201, Some("completed")), "{outcome}");
        assert!(world.microsoft.user_password(DEMO_TENANT_ID, LEE).is_some());
        assert!(world.microsoft.user_password(DEMO_TENANT_ID, DANA).is_none());
        let ctx = context(&world, &token).await;
        assert!(ctx["others"].as_array().unwrap().is_empty(), "spent: {ctx}");
    })
    .await;
}

#[tokio::test]
async fn an_unmapped_company_is_said_plainly() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let token = halo_token(&world, sbx::HALO_TICKET_KIM).await;
        let ctx = context(&world, &token).await;
        assert_eq!(ctx["user_error"]["code"], "company_not_mapped", "{ctx}");
        let message = ctx["user_error"]["message"].as_str().unwrap();
        assert!(
            !message.starts_with('`') && !message.contains("`company`"),
            "{message}"
        );
        assert!(message.contains("Fabrikam"), "{message}");
    })
    .await;
}

#[tokio::test]
async fn the_pod_says_before_anything_is_sent_what_will_not_work() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let codes = |ctx: &Value| -> Vec<String> {
            ctx["checks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["code"].as_str().unwrap().to_owned())
                .collect()
        };

        // Dana: nothing to say.
        let dana = halo_token(&world, sbx::HALO_TICKET_DANA).await;
        assert!(codes(&context(&world, &dana).await).is_empty());

        // Omar is synced from on-premises, Ada is a Global Administrator: a reset would be
        // refused, and the pod says so before a verification is spent on it.
        for (ticket, code) in [
            (sbx::HALO_TICKET_OMAR, "user_synced_from_on_premises"),
            (sbx::HALO_TICKET_ADA, "user_holds_admin_role"),
        ] {
            let token = halo_token(&world, ticket).await;
            let ctx = context(&world, &token).await;
            assert_eq!(codes(&ctx), vec![code.to_owned()], "{ctx}");
            assert!(
                ctx["reset"]["reason"]
                    .as_str()
                    .unwrap()
                    .starts_with("A reset will be refused"),
                "{ctx}"
            );
        }

        // Noel has neither an Authenticator nor a mobile phone.
        let noel = halo_token(&world, sbx::HALO_TICKET_NOEL).await;
        let ctx = context(&world, &noel).await;
        assert_eq!(
            codes(&ctx),
            vec![
                "authenticator_not_registered".to_owned(),
                "no_mobile_phone".to_owned()
            ],
            "{ctx}"
        );

        // Sam's default is SMS: the mismatch is shown with its fix, which works at once.
        let sam = halo_token(&world, sbx::HALO_TICKET_SAM).await;
        let ctx = context(&world, &sam).await;
        assert_eq!(
            codes(&ctx),
            vec!["preferred_method_mismatch".to_owned()],
            "{ctx}"
        );
        let fix_token = ctx["checks"][0]["fix_token"].as_str().unwrap().to_owned();
        // Reloads within a minute read nothing from Microsoft again.
        world.microsoft.clear_requests();
        context(&world, &sam).await;
        for path in [
            "signInPreferences",
            "microsoftAuthenticatorMethods",
            "phoneMethods",
            "directoryRole",
        ] {
            assert_eq!(
                world.microsoft.count(Service::Graph, "GET", path),
                0,
                "{path} read again"
            );
        }
        let (status, body) = call(
            &world,
            &sam,
            Method::POST,
            "/default-method",
            Some(json!({"confirm": true, "fix_token": fix_token})),
        )
        .await;
        assert_eq!(status, 204, "{body}");
        assert_eq!(
            world
                .microsoft
                .user_sign_in_preference(DEMO_TENANT_ID, SAM)
                .as_deref(),
            Some("push")
        );
        assert!(
            codes(&context(&world, &sam).await).is_empty(),
            "the fixed mismatch is gone at once"
        );
        wait_for_note(
            &world,
            sbx::HALO_TICKET_SAM,
            &format!("default sign-in method of {SAM} was changed"),
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn its_not_me_is_the_pods_strongest_warning_and_says_the_hold() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let token = halo_token(&world, sbx::HALO_TICKET_DANA).await;
        assert!(context(&world, &token).await["fraud"].is_null());
        world.microsoft.script_push(DANA, PushScript::ReportFraud);
        let done = verify(&world, &token, json!({"method": "push"})).await;
        assert_eq!(done["failure_code"], "fraud_reported", "{done}");

        let ctx = context(&world, &token).await;
        let message = ctx["fraud"]["message"].as_str().expect("a fraud warning");
        assert!(
            message.contains("reported a verification request as fraud"),
            "{message}"
        );
        assert!(message.contains("do not reset anything"), "{message}");
        assert!(message.contains("held until"), "{message}");
        assert!(ctx["fraud"]["resets_held_until"].is_string());
        let reason = ctx["reset"]["reason"].as_str().unwrap();
        assert!(
            reason.contains("held until") && reason.contains("lift"),
            "{reason}"
        );

        // Another ticket of the same person warns too.
        let src = iframe_src(
            &world
                .psa
                .autotask()
                .ticket_screen_url(sbx::AUTOTASK_TICKET_DANA),
        )
        .await;
        let (_, html) = load_pod(&world, &src).await;
        let elsewhere = context(&world, &token_of(&html)).await;
        assert!(elsewhere["fraud"]["message"].is_string(), "{elsewhere}");
    })
    .await;
}
