//! Rotating the signing secret of a HaloPSA tab and of an Autotask Insight, over real HTTP, on
//! every backend: the PSA sandbox signs its loads with the secret pasted into it; a load
//! signed with the old secret opens the pod while the grace period runs and is refused
//! (`embed_bad_signature`) once it is over, and the new secret works throughout. "Over" is
//! reached without waiting: rotating with `grace_seconds: 0` ends the replaced secret at once
//! (the expiry comparison itself is unit-tested with a set clock in `psa::signing`).

use crate::{backends, common};

use backends::on_every_backend;
use common::world::{World, call};
use reqwest::Method;
use serde_json::{Value, json};
use vouch::domain::MspPolicy;
use vouch::sandbox::psa as sbx;

use crate::pods::{iframe_src, load_pod};

/// The id of the world's connection of `kind`.
async fn connection_id(world: &World, kind: &str) -> String {
    let (status, list) = call(world, Method::GET, "/api/v1/psa-connections", None).await;
    assert_eq!(status, 200, "{list}");
    list.as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} connection in {list}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[derive(Clone, Copy)]
enum Psa {
    Halo,
    Autotask,
}

impl Psa {
    fn kind(self) -> &'static str {
        match self {
            Psa::Halo => "halopsa",
            Psa::Autotask => "autotask",
        }
    }

    fn field(self) -> &'static str {
        match self {
            Psa::Halo => "tab_secret",
            Psa::Autotask => "insight_secret",
        }
    }

    /// The admin pastes `secret` into the PSA.
    fn paste(self, world: &World, secret: &str) {
        match self {
            Psa::Halo => world.psa.set_halo_tab_secret(secret),
            Psa::Autotask => world.psa.set_autotask_insight_secret(secret),
        }
    }

    /// The secret the world pasted into the PSA when it connected it (what `setup` gave).
    fn pasted(self, world: &World) -> String {
        match self {
            Psa::Halo => world.psa.halopsa().tab_secret,
            Psa::Autotask => world.psa.autotask().insight_secret,
        }
    }

    fn screen(self, world: &World) -> String {
        match self {
            Psa::Halo => world.psa.halopsa().ticket_screen_url(sbx::HALO_TICKET_DANA),
            Psa::Autotask => world
                .psa
                .autotask()
                .ticket_screen_url(sbx::AUTOTASK_TICKET_DANA),
        }
    }
}

/// The PSA's ticket screen, loaded with `secret` pasted into the PSA: the pod's status and
/// page.
async fn load_signed_with(world: &World, psa: Psa, secret: &str) -> (u16, String) {
    psa.paste(world, secret);
    let src = iframe_src(&psa.screen(world)).await;
    load_pod(world, &src).await
}

async fn rotate(world: &World, id: &str, body: Value) -> (u16, Value) {
    call(
        world,
        Method::POST,
        &format!("/api/v1/psa-connections/{id}/rotate-secret"),
        Some(body),
    )
    .await
}

async fn loads_survive_a_rotation_during_its_grace_and_not_after(world: &World, psa: Psa) {
    let id = connection_id(world, psa.kind()).await;
    let field = psa.field();
    let old = psa.pasted(world);
    let old = old.as_str();
    let (status, page) = load_signed_with(world, psa, old).await;
    assert_eq!(status, 200, "{page}");

    // Rotate with the default grace (24 hours): the new secret is in this answer only.
    let before = chrono::Utc::now();
    let (status, rotated) = rotate(world, &id, json!({})).await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated[field]["value"].as_str().unwrap().to_owned();
    assert_eq!(new.len(), 43, "256 bits, base64url");
    assert_ne!(new, old);
    let expires: chrono::DateTime<chrono::Utc> = rotated[field]["previous"]["expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let grace = expires - before;
    assert!(
        grace >= chrono::Duration::hours(24) - chrono::Duration::seconds(5)
            && grace <= chrono::Duration::hours(24) + chrono::Duration::seconds(5),
        "{rotated}"
    );

    // Reading it shows both secrets' status, never a value; the setup gives the new one.
    let (status, read) = call(
        world,
        Method::GET,
        &format!("/api/v1/psa-connections/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read[field]["set"], true);
    assert!(read[field]["changed_at"].is_string(), "{read}");
    assert_eq!(read[field]["previous"]["set"], true);
    assert_eq!(
        read[field]["previous"]["expires_at"],
        rotated[field]["previous"]["expires_at"]
    );
    assert!(read[field].get("value").is_none(), "{read}");
    assert!(!read.to_string().contains(&new) && !read.to_string().contains(old));
    let (_, setup) = call(
        world,
        Method::GET,
        &format!("/api/v1/psa-connections/{id}/setup"),
        None,
    )
    .await;
    assert_eq!(setup["secret"]["value"], new.as_str(), "{setup}");

    // During the grace: the old secret and the new one both open the pod.
    let (status, page) = load_signed_with(world, psa, old).await;
    assert_eq!(status, 200, "the old secret during the grace: {page}");
    let (status, page) = load_signed_with(world, psa, &new).await;
    assert_eq!(status, 200, "the new secret: {page}");

    // Rotate again, the grace ending at once: the secret just replaced is refused, the
    // newest works, and the one before (dropped by this rotation) is refused too.
    let (status, again) = rotate(world, &id, json!({ "grace_seconds": 0 })).await;
    assert_eq!(status, 200, "{again}");
    let newest = again[field]["value"].as_str().unwrap().to_owned();
    assert!(
        again[field].get("previous").is_none(),
        "no secret in grace: {again}"
    );
    let (status, page) = load_signed_with(world, psa, &new).await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("embed_bad_signature"), "{page}");
    let (status, page) = load_signed_with(world, psa, old).await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("embed_bad_signature"), "{page}");
    let (status, page) = load_signed_with(world, psa, &newest).await;
    assert_eq!(status, 200, "the newest secret: {page}");

    // Audited, each rotation, without any secret.
    let (status, audit) = call(
        world,
        Method::GET,
        "/api/v1/audit?action=psa_connection.rotate_secret",
        None,
    )
    .await;
    assert_eq!(status, 200, "{audit}");
    let text = audit.to_string();
    let mine: Vec<&Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["subject_id"] == id.as_str())
        .collect();
    assert_eq!(mine.len(), 2, "{audit}");
    for secret in [old, new.as_str(), newest.as_str()] {
        assert!(!text.contains(secret), "a secret in the audit: {text}");
    }
}

#[tokio::test]
async fn a_rotated_secret_works_during_its_grace_and_is_refused_after_it() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        loads_survive_a_rotation_during_its_grace_and_not_after(&world, Psa::Halo).await;
        loads_survive_a_rotation_during_its_grace_and_not_after(&world, Psa::Autotask).await;
    })
    .await;
}

#[tokio::test]
async fn a_rotation_names_its_bad_grace_and_connectwise_has_nothing_to_rotate() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let halo = connection_id(&world, "halopsa").await;
        for grace in [json!(-1), json!(604_801)] {
            let (status, body) = rotate(&world, &halo, json!({ "grace_seconds": grace })).await;
            assert_eq!(status, 400, "{body}");
            assert_eq!(body["code"], "invalid_request");
            assert!(
                body["message"].as_str().unwrap().contains("grace_seconds"),
                "{body}"
            );
        }
        // Nothing changed: the pasted secret still opens the pod, with no secret in grace.
        let pasted = Psa::Halo.pasted(&world);
        let (status, page) = load_signed_with(&world, Psa::Halo, &pasted).await;
        assert_eq!(status, 200, "{page}");
        let (status, max) = rotate(&world, &halo, json!({ "grace_seconds": 604_800 })).await;
        assert_eq!(status, 200, "{max}");

        let cw = connection_id(&world, "connectwise").await;
        let (status, body) = rotate(&world, &cw, json!({})).await;
        assert_eq!(status, 409, "{body}");
        assert_eq!(body["code"], "psa_connection_has_no_signing_secret");
        assert!(body["message"].as_str().unwrap().contains("ConnectWise"));

        let (status, body) = rotate(&world, &uuid::Uuid::nil().to_string(), json!({})).await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(body["code"], "psa_connection_not_found");
    })
    .await;
}
