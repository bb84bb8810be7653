//! What the end user sees, through the real HTTP API against the sandboxes: the SMS texts
//! name the account and the MSP's support phone and fit one GSM-7 segment, the code text asks
//! for the code only from a caller, the reveal page of a password reset says whose password
//! it is and what to do next, and the one-tap page carries the MSP's branding.

use crate::{backends, common};
use std::time::Duration;

use backends::on_every_backend;
use common::world::{World, json_of};
use reqwest::Method;
use serde_json::json;
use vouch::core::texts::{GSM7_SEGMENT, is_gsm7_basic, segments};
use vouch::domain::MspPolicy;
use vouch::sandbox::microsoft::DEMO_TENANT_ID;
use vouch::web::share::MICROSOFT_365_SIGN_IN_URL;

const DANA: &str = "dana@contoso.example";
const DANA_MOBILE: &str = "+12065550101";
const SUPPORT_PHONE: &str = "+1 206 555 0199";

/// A world whose MSP has a support phone.
async fn world_with_support_phone(db: &common::TestDb, policy: MspPolicy) -> World {
    let world = World::start(db, policy).await;
    let (status, body) = json_of(
        world
            .api(reqwest::Method::PATCH, "/api/v1/settings")
            .json(&serde_json::json!({"branding": {"support_phone": SUPPORT_PHONE}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    world
}

async fn start(world: &World, method: &str) -> serde_json::Value {
    let (status, body) = json_of(
        world
            .api(Method::POST, "/api/v1/verifications")
            .json(&json!({ "tenant_id": DEMO_TENANT_ID, "user": DANA, "method": method }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    body
}

/// The latest SMS to Dana, once it arrived.
async fn latest_sms(world: &World) -> String {
    world
        .sms
        .wait_for_message_to(DANA_MOBILE, Duration::from_secs(5))
        .await
        .expect("an SMS reached Dana");
    world.sms.last_message_to(DANA_MOBILE).unwrap().body
}

fn assert_one_gsm7_segment(text: &str) {
    assert!(
        text.chars().count() <= GSM7_SEGMENT,
        "{} characters: {text}",
        text.chars().count()
    );
    assert!(text.chars().all(is_gsm7_basic), "not GSM-7 only: {text}");
    assert_eq!(segments(text), 1, "{text}");
}

/// The path of the link in an SMS.
fn link_path(text: &str) -> String {
    let link = text
        .split_whitespace()
        .find(|w| w.starts_with("http"))
        .unwrap_or_else(|| panic!("no link in {text}"));
    url::Url::parse(link).unwrap().path().to_owned()
}

#[tokio::test]
async fn the_code_text_names_the_account_and_asks_for_the_code_only_from_a_caller() {
    on_every_backend(async |db| {
        let world = world_with_support_phone(db, MspPolicy::default()).await;
        start(&world, "sms_code").await;
        let text = latest_sms(&world).await;
        assert_one_gsm7_segment(&text);
        assert!(text.starts_with("Northwind IT: your code is "), "{text}");
        assert!(text.contains(&format!("for {DANA}.")), "{text}");
        assert!(text.contains("only if you called Northwind IT"), "{text}");
        assert!(text.contains(&format!("Help: {SUPPORT_PHONE}")), "{text}");
        assert!(!text.contains("Read it to the technician"), "{text}");
    })
    .await;
}

#[tokio::test]
async fn the_password_text_names_the_account_and_fits_one_segment() {
    on_every_backend(async |db| {
        let world = world_with_support_phone(db, MspPolicy::default()).await;
        let verification = world.verified(DANA).await;
        let (status, body) = world.reset(DANA, &verification, "enduser-text-1").await;
        assert_eq!(status, 201, "{body}");
        let text = latest_sms(&world).await;
        assert_one_gsm7_segment(&text);
        assert!(text.starts_with("Northwind IT: "), "{text}");
        assert!(text.contains(DANA), "{text}");
        assert!(text.contains("password"), "{text}");
        assert!(link_path(&text).starts_with("/s/"), "{text}");
    })
    .await;
}

#[tokio::test]
async fn the_reveal_page_of_a_reset_says_whose_password_it_is_and_what_to_do_next() {
    on_every_backend(async |db| {
        let world = world_with_support_phone(db, MspPolicy::default()).await;
        let verification = world.verified(DANA).await;
        let (status, body) = world.reset(DANA, &verification, "enduser-page-1").await;
        assert_eq!(status, 201, "{body}");
        let path = link_path(&latest_sms(&world).await);
        let page = world
            .app
            .client
            .post(world.app.url(&path))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(
            html.contains(&format!("Your new Microsoft 365 password for {DANA}")),
            "{html}"
        );
        let sign_in = MICROSOFT_365_SIGN_IN_URL.replace('/', "&#x2f;");
        assert!(
            html.contains(&format!("Sign in at <a href=\"{sign_in}\">")),
            "{html}"
        );
        // The default policy has Microsoft ask for a new password at the next sign-in.
        assert!(html.contains("ask you for a new password"), "{html}");
        assert!(html.contains(SUPPORT_PHONE), "{html}");
        assert!(html.contains("tel:+12065550199"), "{html}");
    })
    .await;
}

#[tokio::test]
async fn without_a_forced_change_the_reveal_page_does_not_announce_one() {
    let db = common::TestDb::sqlite().await;
    let policy = MspPolicy {
        force_change_at_next_sign_in: false,
        ..MspPolicy::default()
    };
    let world = World::start(&db, policy).await;
    let verification = world.verified(DANA).await;
    let (status, body) = world.reset(DANA, &verification, "enduser-page-2").await;
    assert_eq!(status, 201, "{body}");
    let path = link_path(&latest_sms(&world).await);
    let html = world
        .app
        .client
        .post(world.app.url(&path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(&format!("Your new Microsoft 365 password for {DANA}")),
        "{html}"
    );
    assert!(!html.contains("ask you for a new password"), "{html}");
    // No support phone set: none shown.
    assert!(!html.contains("Questions? Call"), "{html}");
}

#[tokio::test]
async fn a_shared_message_keeps_its_wording() {
    let db = common::TestDb::sqlite().await;
    let world = world_with_support_phone(&db, MspPolicy::default()).await;
    let (status, created) = json_of(
        world
            .api(Method::POST, "/api/v1/shares")
            .json(&json!({
                "content": "The door code is 4711",
                "send_to": { "tenant_id": DEMO_TENANT_ID, "user": DANA },
            }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let text = latest_sms(&world).await;
    assert_one_gsm7_segment(&text);
    assert!(text.contains(DANA), "{text}");
    let html = world
        .app
        .client
        .post(world.app.url(&link_path(&text)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Your secure message from Northwind IT"),
        "{html}"
    );
    assert!(!html.contains("Microsoft 365 password"), "{html}");
    assert!(html.contains(SUPPORT_PHONE), "{html}");
}

#[tokio::test]
async fn the_one_tap_text_and_page_carry_the_msps_brand() {
    on_every_backend(async |db| {
        let world = world_with_support_phone(db, MspPolicy::default()).await;
        start(&world, "sms_link").await;
        let text = latest_sms(&world).await;
        assert_one_gsm7_segment(&text);
        assert!(text.starts_with("Northwind IT: "), "{text}");
        assert!(text.contains(DANA), "{text}");
        let path = link_path(&text);
        assert!(path.starts_with("/v/"), "{text}");
        let page = world
            .app
            .client
            .get(world.app.url(&path))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        // The share pages' layout: the MSP's colour, name and support phone.
        assert!(html.contains("/pods/assets/brand/0b5cad.css"), "{html}");
        assert!(
            html.contains("<p class=\"name\">Northwind IT</p>"),
            "{html}"
        );
        assert!(
            html.contains(&format!(
                "Call Northwind IT at <a href=\"tel:+12065550199\">{SUPPORT_PHONE}</a>"
            )),
            "{html}"
        );
        assert!(html.contains("<meta name=\"robots\" content=\"noindex, nofollow\">"));

        // Once answered, the page still carries the MSP's brand.
        let answered = world
            .app
            .client
            .post(world.app.url(&path))
            .form(&[("answer", "yes")])
            .send()
            .await
            .unwrap();
        assert_eq!(answered.status(), 200);
        let again = world
            .app
            .client
            .get(world.app.url(&path))
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 410);
        let html = again.text().await.unwrap();
        assert!(html.contains("already been answered"), "{html}");
        assert!(
            html.contains("<p class=\"name\">Northwind IT</p>"),
            "{html}"
        );
        assert!(html.contains(SUPPORT_PHONE), "{html}");
    })
    .await;
}

#[tokio::test]
async fn the_support_phone_is_stored_and_the_demo_msp_has_one() {
    on_every_backend(async |db| {
        let store = db.migrated_store(common::keyring()).await;
        let settings = vouch::core::settings::SettingsService::new(
            store.clone(),
            "http://127.0.0.1/".parse().unwrap(),
        );
        let msp = vouch::demo::seed(
            &vouch::core::setup::SetupService::new(store.clone()),
            &settings,
        )
        .await
        .unwrap();
        assert_eq!(
            msp.brand_support_phone.as_deref(),
            Some(vouch::demo::DEMO_SUPPORT_PHONE)
        );
        // A demo seeded before support phones existed gets one on its next start.
        settings
            .update(
                msp.id,
                &vouch::store::audit::AuditActor {
                    kind: vouch::domain::ActorKind::System,
                    id: None,
                    name: None,
                },
                vouch::core::settings::SettingsChange {
                    support_phone: Some(None),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(
            store
                .get_msp(msp.id)
                .await
                .unwrap()
                .unwrap()
                .brand_support_phone,
            None
        );
        let again = vouch::demo::seed(
            &vouch::core::setup::SetupService::new(store.clone()),
            &settings,
        )
        .await
        .unwrap();
        assert_eq!(again.id, msp.id, "the same demo MSP");
        assert_eq!(
            store
                .get_msp(msp.id)
                .await
                .unwrap()
                .unwrap()
                .brand_support_phone
                .as_deref(),
            Some(vouch::demo::DEMO_SUPPORT_PHONE)
        );
    })
    .await;
}
