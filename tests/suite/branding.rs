//! The MSP's logo, uploaded to Vouch (a PNG as it is, an SVG rasterised) and served by it,
//! on every instance; and the policies that shape what end users get (the share lifetime,
//! the one-tap link lifetime, the SMS sender name, whether approved pushes count). Real
//! HTTP, every backend.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use vouch::domain::MspPolicy;
use vouch::sandbox::microsoft::{DEMO_TENANT_ID, PushScript};

use crate::backends::on_every_backend;
use crate::common::world::{World, json_of};

const DANA: &str = "dana@contoso.example";
const DANA_MOBILE: &str = "+12065550101";
const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

fn svg(color: &str) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40"><rect width="120" height="40" fill="{color}"/><script>alert(1)</script></svg>"#
    )
}

async fn upload(world: &World, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    json_of(
        world
            .api(Method::PUT, "/api/v1/settings/logo")
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// The path of an absolute URL of Vouch's.
fn path_of(url: &str) -> String {
    url::Url::parse(url).unwrap().path().to_owned()
}

#[tokio::test]
async fn an_uploaded_logo_is_checked_served_by_every_instance_and_shown_to_end_users() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let second = world.second_instance(db).await;

        // What is not a logo is refused, naming the field and saying what to do.
        for (content_type, body, says) in [
            (
                "image/png",
                b"GIF89a not a png".to_vec(),
                "not a readable PNG",
            ),
            ("image/svg+xml", b"<html></html>".to_vec(), "not an SVG"),
            (
                "image/svg+xml",
                vec![b' '; 256 * 1024 + 1],
                "at most 256 KB",
            ),
            ("image/png", Vec::new(), "empty"),
        ] {
            let (status, err) = upload(&world, content_type, body).await;
            assert_eq!(
                (status, err["code"].as_str()),
                (400, Some("invalid_request")),
                "{err}"
            );
            let message = err["message"].as_str().unwrap();
            assert!(
                message.contains("`logo`") && message.contains(says),
                "{message}"
            );
        }
        let (status, err) = upload(&world, "image/gif", b"GIF89a".to_vec()).await;
        assert_eq!(status, 415, "{err}");
        assert!(
            err["code"].is_string() && err["message"].is_string(),
            "{err}"
        );

        // An SVG becomes a PNG, at an address of Vouch's own.
        let (status, settings) = upload(&world, "image/svg+xml", svg("#0b5cad").into_bytes()).await;
        assert_eq!(status, 200, "{settings}");
        let logo_url = settings["branding"]["logo_url"]
            .as_str()
            .unwrap()
            .to_owned();
        let logo_path = path_of(&logo_url);
        let public_url = world.app.ctx.config.http.public_url.as_str().to_owned();
        assert!(
            logo_url.starts_with(&public_url)
                && logo_path.starts_with(&format!("/brand/{}/logo/", world.msp.id))
                && logo_path.ends_with(".png"),
            "{logo_url}"
        );
        // Served by the other instance too, as a PNG cached for good (the address changes
        // with the logo), with nothing of the SVG's script.
        let served = world
            .app
            .client
            .get(second.url(&logo_path))
            .send()
            .await
            .unwrap();
        assert_eq!(served.status(), 200);
        let header = |name: &str| {
            served
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        assert_eq!(header("content-type"), "image/png");
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert!(header("cache-control").contains("immutable"));
        let first_png = served.bytes().await.unwrap().to_vec();
        assert!(first_png.starts_with(PNG_SIGNATURE));
        assert!(!String::from_utf8_lossy(&first_png).contains("alert"));

        // End users see it: the share page, opened on the second instance.
        let (status, share) = json_of(
            world
                .api_on(&second, Method::POST, "/api/v1/shares")
                .json(&json!({"content": "wifi: correct horse"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 201, "{share}");
        let share_page = world
            .app
            .client
            .get(second.url(&path_of(share["url"].as_str().unwrap())))
            .send()
            .await
            .unwrap();
        let csp = share_page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        let html = share_page.text().await.unwrap();
        // (The template escapes the address's slashes.)
        let file = logo_path.rsplit('/').next().unwrap();
        assert!(
            html.contains(&format!("{file}\" alt=\"Northwind IT\">")),
            "{html}"
        );
        let origin = public_url.trim_end_matches('/');
        assert!(csp.contains(&format!("img-src {origin}")), "{csp}");

        // A PNG is kept as it is; the new logo has a new address and the old one is gone.
        let other_png = {
            let (_, settings) = upload(&world, "image/svg+xml", svg("#7a1f1f").into_bytes()).await;
            let path = path_of(settings["branding"]["logo_url"].as_str().unwrap());
            let bytes = reqwest::get(world.app.url(&path))
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            bytes.to_vec()
        };
        let (status, settings) = upload(&world, "image/png", other_png.clone()).await;
        assert_eq!(status, 200, "{settings}");
        let png_path = path_of(settings["branding"]["logo_url"].as_str().unwrap());
        assert_ne!(png_path, logo_path);
        let served = reqwest::get(second.url(&png_path)).await.unwrap();
        assert_eq!(served.bytes().await.unwrap().to_vec(), other_png);
        let (status, gone) = json_of(reqwest::get(second.url(&logo_path)).await.unwrap()).await;
        assert_eq!(
            (status, gone["code"].as_str()),
            (404, Some("not_found")),
            "{gone}"
        );

        // Audited, with what was uploaded and what is served, never the bytes.
        let (_, audit) = json_of(
            world
                .api(Method::GET, "/api/v1/audit?action=settings.logo_upload")
                .send()
                .await
                .unwrap(),
        )
        .await;
        let entries = audit
            .as_array()
            .or_else(|| audit["items"].as_array())
            .cloned()
            .unwrap();
        assert_eq!(entries.len(), 3, "{audit}");
        let svg_entry = entries
            .iter()
            .find(|e| e["details"]["rasterised"] == true)
            .expect("the SVG upload");
        assert_eq!(svg_entry["details"]["uploaded_as"], "image/svg+xml");
        assert_eq!(svg_entry["details"]["height"], 144);

        // Removed: the pages show the name again, and the address is gone.
        let (status, settings) = json_of(
            world
                .api(Method::DELETE, "/api/v1/settings/logo")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{settings}");
        assert!(settings["branding"]["logo_url"].is_null(), "{settings}");
        let (status, _) = json_of(reqwest::get(world.app.url(&png_path)).await.unwrap()).await;
        assert_eq!(status, 404);
        second.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_share_and_link_lifetimes_and_the_sender_name_reach_the_end_user() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let second = world.second_instance(db).await;
        let (status, settings) = json_of(
            world
                .api_on(&second, Method::PATCH, "/api/v1/settings")
                .json(&json!({
                    "branding": {"sms_sender_name": "Northwind"},
                    "policy": {"share_lifetime_seconds": 3600, "one_tap_link_lifetime_seconds": 600, "verified_window_seconds": 600},
                }))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{settings}");
        assert_eq!(settings["branding"]["sms_sender_name"], "Northwind");

        for (body, field) in [
            (json!({"branding": {"sms_sender_name": "Northwind IT Services Ltd"}}), "sms_sender_name"),
            (json!({"branding": {"sms_sender_name": "Nörthwind"}}), "sms_sender_name"),
            (json!({"policy": {"share_lifetime_seconds": 60}}), "share_lifetime_seconds"),
            (json!({"policy": {"one_tap_link_lifetime_seconds": 86400}}), "one_tap_link_lifetime_seconds"),
        ] {
            let (status, err) = json_of(
                world.api(Method::PATCH, "/api/v1/settings").json(&body).send().await.unwrap(),
            )
            .await;
            assert_eq!((status, err["code"].as_str()), (400, Some("invalid_request")), "{err}");
            assert!(err["message"].as_str().unwrap().contains(field), "{err}");
        }

        // A share with no lifetime of its own lives the MSP's share lifetime.
        let (status, share) = json_of(
            world
                .api(Method::POST, "/api/v1/shares")
                .json(&json!({"content": "licence: ABCD-EFGH"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 201, "{share}");
        let expires: DateTime<Utc> = share["expires_at"].as_str().unwrap().parse().unwrap();
        let lives = (expires - Utc::now()).num_seconds();
        assert!((3500..=3600).contains(&lives), "{share}");

        // The one-tap link: valid for the MSP's link lifetime, and signed with the sender name.
        let (status, started) = json_of(
            world
                .api(Method::POST, "/api/v1/verifications")
                .json(&json!({"tenant_id": DEMO_TENANT_ID, "user": DANA, "method": "sms_link"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 202, "{started}");
        let expires: DateTime<Utc> = started["expires_at"].as_str().unwrap().parse().unwrap();
        let created: DateTime<Utc> = started["created_at"].as_str().unwrap().parse().unwrap();
        let lifetime = (expires - created).num_milliseconds();
        assert!((599_000..=600_000).contains(&lifetime), "{started}");
        let sms = world.sms.last_message_to(DANA_MOBILE).expect("the link went by SMS").body;
        assert!(sms.starts_with("Northwind:"), "{sms}");

        // The pod's shield (on the first instance) stays green for the window set on the
        // second.
        let token = crate::pods::halo_token(&world, vouch::sandbox::psa::HALO_TICKET_DANA).await;
        world.microsoft.script_push(DANA, PushScript::Approve);
        let (status, started) = json_of(
            crate::pods::pod(&world, &token, Method::POST, "/verifications")
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
            crate::pods::pod(&world, &token, Method::GET, &format!("/verifications/{id}?wait_seconds=10"))
                .await
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(done["status"], "approved", "{done}");
        let (_, context) = json_of(
            crate::pods::pod(&world, &token, Method::GET, "/context")
                .await
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(context["shield"]["state"], "verified", "{context}");
        let until: DateTime<Utc> = context["shield"]["verified_until"].as_str().unwrap().parse().unwrap();
        let window = (until - Utc::now()).num_seconds();
        assert!((590..=600).contains(&window), "{context}");
        second.stop().await;
    })
    .await;
}

/// Approved pushes do not count towards the push limit unless the MSP says they do.
#[tokio::test]
async fn approved_pushes_count_towards_the_limit_only_when_the_policy_says_so() {
    on_every_backend(async |db| {
        let policy = MspPolicy {
            push_limit_count: 2,
            ..MspPolicy::default()
        };
        let world = World::start(db, policy).await;
        let push = async || {
            world.microsoft.script_push(DANA, PushScript::Approve);
            let (status, body) = json_of(
                world
                    .api(Method::POST, "/api/v1/verifications")
                    .json(&json!({"tenant_id": DEMO_TENANT_ID, "user": DANA, "method": "push"}))
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            if status == 202 {
                let id = body["id"].as_str().unwrap();
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
                assert_eq!(done["status"], "approved", "{done}");
            }
            (status, body)
        };
        for _ in 0..3 {
            let (status, body) = push().await;
            assert_eq!(status, 202, "approved pushes do not count: {body}");
        }
        let (status, _) = json_of(
            world
                .api(Method::PATCH, "/api/v1/settings")
                .json(&json!({"policy": {"count_approved_pushes": true}}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200);
        let (status, body) = push().await;
        assert_eq!(
            (status, body["code"].as_str()),
            (429, Some("push_rate_limited")),
            "{body}"
        );
    })
    .await;
}
