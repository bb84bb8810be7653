//! How many calls Vouch makes to the PSAs and Microsoft per action, counted in the sandboxes'
//! request logs, and which of them run at the same time (see docs/PERFORMANCE.md, "Upstream
//! calls per action").

use crate::{backends, common};
use std::time::Duration;

use backends::on_every_backend;
use common::world::World;
use reqwest::Method;
use serde_json::Value;
use vouch::domain::MspPolicy;
use vouch::sandbox::Fault;
use vouch::sandbox::psa::{self as sbx, Psa, PsaRequest};

use crate::pods::{iframe_src, json_of, load_pod, pod, token_of};

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
