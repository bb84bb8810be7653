//! How many calls Vouch makes to the PSAs and Microsoft per action, counted in the sandboxes'
//! request logs, and which of them run at the same time (see docs/PERFORMANCE.md, "Upstream
//! calls per action").

use crate::{backends, common};
use std::time::Duration;

use backends::on_every_backend;
use common::world::World;
use reqwest::Method;
use serde_json::{Value, json};
use vouch::domain::{MspPolicy, PsaKind};
use vouch::sandbox::Fault;
use vouch::sandbox::psa::{self as sbx, Psa, PsaRequest};

use crate::common::world::json_of;
use crate::pods::{iframe_src, load_pod, pod, token_of};

/// How long a slowed PSA answer takes: far longer than a request sent right after another
/// one takes to arrive, so "arrived before that answer" means "sent at the same time".
const SLOW: Duration = Duration::from_millis(700);

/// The PSA calls recorded (REST only, not the host pages), oldest first.
fn psa_calls(world: &World, psa: Psa) -> Vec<PsaRequest> {
    world
        .psa
        .requests()
        .into_iter()
        .filter(|r| r.service == psa && !r.path.contains("/ticket/"))
        .collect()
}

fn paths(calls: &[PsaRequest]) -> Vec<String> {
    calls
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

fn call<'a>(calls: &'a [PsaRequest], path_contains: &str) -> &'a PsaRequest {
    calls
        .iter()
        .find(|r| r.path.contains(path_contains))
        .unwrap_or_else(|| panic!("no call to {path_contains}: {:?}", paths(calls)))
}

/// Whether `later` was sent while `slowed` (answered only after [`SLOW`]) was unanswered.
fn overlapped(slowed: &PsaRequest, later: &PsaRequest) -> bool {
    later.received_at >= slowed.received_at && later.received_at < slowed.received_at + SLOW
}

/// A pod load as the PSA's screen makes it, then the pod's context read: the context.
async fn load_and_read(world: &World, screen_url: &str) -> Value {
    let src = iframe_src(screen_url).await;
    let (status, html) = load_pod(world, &src).await;
    assert_eq!(status, 200, "{html}");
    let token = token_of(&html);
    let (status, context) = json_of(
        pod(world, &token, Method::GET, "/context")
            .await
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{context}");
    context
}

/// A cold HaloPSA pod load: token, then the agent alongside the ticket and its user; the
/// context read then finds the ticket read already.
#[tokio::test]
async fn a_cold_halo_load_reads_the_ticket_while_it_looks_up_the_agent() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        world.psa.clear_requests();
        world
            .psa
            .inject_fault(Psa::HaloPsa, "/api/Agent/", Fault::Delayed(SLOW), 1);
        let context = load_and_read(
            &world,
            &world.psa.halopsa().ticket_screen_url(sbx::HALO_TICKET_DANA),
        )
        .await;
        assert_eq!(context["contact"]["name"], "Dana Whitfield", "{context}");
        let calls = psa_calls(&world, Psa::HaloPsa);
        let agent = call(&calls, "/api/Agent/");
        let ticket = call(&calls, "/api/Tickets/");
        let user = call(&calls, "/api/Users/");
        assert_eq!(
            paths(&calls),
            [
                "POST /halo/auth/token",
                "GET /halo/api/Agent/5",
                "GET /halo/api/Tickets/2001",
                "GET /halo/api/Users/31",
            ],
            "4 calls"
        );
        // The agent answered after SLOW: the ticket and its user were read meanwhile, so
        // the calls in sequence are the token, the ticket and the user (3).
        assert!(overlapped(agent, ticket), "{:?}", paths(&calls));
        assert!(overlapped(agent, user), "{:?}", paths(&calls));
    })
    .await;
}

/// A cold Autotask pod load: the zone, then the resource alongside the ticket, whose company
/// and contact are read at the same time: 5 calls, 3 in sequence.
#[tokio::test]
async fn a_cold_autotask_load_reads_what_is_independent_at_the_same_time() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        world.psa.clear_requests();
        world
            .psa
            .inject_fault(Psa::Autotask, "/Resources/", Fault::Delayed(SLOW), 1);
        world
            .psa
            .inject_fault(Psa::Autotask, "/Companies/", Fault::Delayed(SLOW), 1);
        let context = load_and_read(
            &world,
            &world
                .psa
                .autotask()
                .ticket_screen_url(sbx::AUTOTASK_TICKET_DANA),
        )
        .await;
        assert_eq!(context["contact"]["name"], "Dana Whitfield", "{context}");
        let calls = psa_calls(&world, Psa::Autotask);
        assert_eq!(calls.len(), 5, "{:?}", paths(&calls));
        assert!(
            paths(&calls)[0].contains("zoneInformation"),
            "{:?}",
            paths(&calls)
        );
        let resource = call(&calls, "/Resources/");
        let ticket = call(&calls, "/Tickets/");
        let company = call(&calls, "/Companies/");
        let contact = call(&calls, "/Contacts/");
        assert!(overlapped(resource, ticket), "{:?}", paths(&calls));
        assert!(overlapped(company, contact), "{:?}", paths(&calls));
    })
    .await;
}

/// The world's connection of `kind`.
async fn connection_of(
    world: &World,
    kind: PsaKind,
) -> vouch::store::psa_connections::PsaConnection {
    world
        .app
        .store
        .list_connections(world.msp.id)
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.kind == kind)
        .unwrap()
}

/// Renames a connection through the API: a change (a new `updated_at`) of no consequence.
async fn rename(world: &World, kind: PsaKind, kind_name: &str, name: &str) {
    let id = connection_of(world, kind).await.id;
    let (status, body) = common::world::json_of(
        world
            .api(Method::PATCH, &format!("/api/v1/psa-connections/{id}"))
            .json(&json!({"kind": kind_name, "name": name}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// A ConnectWise pod session as the pod's script opens it: the token or the refusal.
async fn connectwise_session(world: &World, hash: &str) -> (u16, Value) {
    let connection = connection_of(world, PsaKind::ConnectWise).await;
    json_of(
        world
            .app
            .client
            .post(world.app.url("/api/v1/pod/connectwise/session"))
            .json(&json!({
                "connection_id": connection.id,
                "ticket_id": sbx::CW_TICKET_DANA.to_string(),
                "member": {
                    "site": "na.myconnectwise.net",
                    "companyid": sbx::CW_COMPANY_ID,
                    "memberid": sbx::CW_MEMBER_ID,
                    "memberHash": hash,
                    "memberContext": "web",
                    "memberEmail": sbx::CW_MEMBER_EMAIL,
                },
            }))
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// A cold ConnectWise load: the member check, then the ticket, then its contact (3 calls in
/// sequence: nothing is read for a member ConnectWise has not vouched for yet).
#[tokio::test]
async fn a_cold_connectwise_load_checks_the_member_then_reads() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let hash = world.psa.issue_connectwise_member_hash(sbx::CW_MEMBER_ID);
        world.psa.clear_requests();
        let (status, body) = connectwise_session(&world, &hash).await;
        assert_eq!(status, 200, "{body}");
        let token = body["token"].as_str().unwrap();
        let (status, context) = json_of(
            pod(&world, token, Method::GET, "/context")
                .await
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{context}");
        assert_eq!(context["contact"]["name"], "Dana Whitfield", "{context}");
        let calls = paths(&psa_calls(&world, Psa::ConnectWise));
        assert_eq!(calls.len(), 3, "{calls:?}");
        assert!(calls[0].ends_with("/system/myMembers/info"), "{calls:?}");
        assert!(calls[1].ends_with("/service/tickets/1001"), "{calls:?}");
        assert!(
            calls[2].ends_with(&format!("/company/contacts/{}", sbx::CW_CONTACT_DANA)),
            "{calls:?}"
        );
    })
    .await;
}

/// Reloads within the pod session make no member check again; a member hash ConnectWise
/// never vouched for is still checked and refused each time, and a changed connection checks
/// the member again.
#[tokio::test]
async fn a_reload_within_the_session_checks_no_connectwise_member_again() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let checks = || {
            world
                .psa
                .count(Psa::ConnectWise, "GET", "/system/myMembers/info")
        };
        let hash = world.psa.issue_connectwise_member_hash(sbx::CW_MEMBER_ID);
        world.psa.clear_requests();
        for _ in 0..3 {
            let (status, body) = connectwise_session(&world, &hash).await;
            assert_eq!(status, 200, "{body}");
        }
        assert_eq!(checks(), 1, "one check for the session's three loads");

        // A forged payload: the claimed member with a hash ConnectWise never issued.
        for _ in 0..2 {
            let (status, body) = connectwise_session(&world, "forged-hash-0123456789").await;
            assert_eq!(
                (status, body["code"].as_str()),
                (403, Some("embed_member_rejected")),
                "{body}"
            );
        }
        assert_eq!(checks(), 3, "a refusal is never kept: asked each time");

        // The connection changed: the member is checked again, and a hash ConnectWise no
        // longer vouches for is refused.
        world.psa.revoke_connectwise_member_hashes();
        rename(
            &world,
            PsaKind::ConnectWise,
            "connectwise",
            "ConnectWise (renamed)",
        )
        .await;
        let (status, body) = connectwise_session(&world, &hash).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("embed_member_rejected")),
            "{body}"
        );
        assert_eq!(checks(), 4);
    })
    .await;
}

/// The Autotask zone is looked up once for the loads of one connection (its lifetime is a
/// day), and again once the connection changed.
#[tokio::test]
async fn the_autotask_zone_is_looked_up_once_per_connection() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        assert_eq!(
            vouch::config::Config::default()
                .cache
                .autotask_zones
                .ttl_seconds,
            86_400
        );
        let lookups = || world.psa.count(Psa::Autotask, "GET", "zoneInformation");
        let autotask = world.psa.autotask();
        world.psa.clear_requests();
        for ticket in [sbx::AUTOTASK_TICKET_DANA, sbx::AUTOTASK_TICKET_SAM] {
            load_and_read(&world, &autotask.ticket_screen_url(ticket)).await;
        }
        assert_eq!(
            lookups(),
            1,
            "{:?}",
            paths(&psa_calls(&world, Psa::Autotask))
        );
        rename(&world, PsaKind::Autotask, "autotask", "Autotask (renamed)").await;
        load_and_read(
            &world,
            &autotask.ticket_screen_url(sbx::AUTOTASK_TICKET_NOEL),
        )
        .await;
        assert_eq!(lookups(), 2, "a changed connection looks its zone up again");
    })
    .await;
}

/// A changed HaloPSA connection never uses the token made for it before the change.
#[tokio::test]
async fn a_changed_connection_gets_a_new_halo_token() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let tokens = || world.psa.count(Psa::HaloPsa, "POST", "/auth/token");
        let halo = world.psa.halopsa();
        load_and_read(&world, &halo.ticket_screen_url(sbx::HALO_TICKET_DANA)).await;
        world.psa.clear_requests();
        load_and_read(&world, &halo.ticket_screen_url(sbx::HALO_TICKET_SAM)).await;
        assert_eq!(tokens(), 0, "the token is reused");
        rename(&world, PsaKind::HaloPsa, "halopsa", "HaloPSA (renamed)").await;
        load_and_read(&world, &halo.ticket_screen_url(sbx::HALO_TICKET_NOEL)).await;
        assert_eq!(tokens(), 1, "a new token for the changed connection");
    })
    .await;
}
