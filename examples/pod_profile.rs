//! TEMP profile: requests per second and latency of a HaloPSA pod load (signature
//! check, technician, pod token, page) with warm caches, at 64 concurrent connections, next to
//! a bare poem endpoint served by the same process in the same run.
//!
//! ```sh
//! cargo run --release --example pod_bench
//! ```
//!
//! Goals (issue "PSA pods"): pod render throughput at least 40% of the bare endpoint's, and
//! p99 under 20 ms. It prints numbers; it does not fail a build.

use std::time::{Duration, Instant};

use poem::listener::TcpListener;
use poem::{Route, Server, get, handler};
use vouch::app::App;
use vouch::config::Config;
use vouch::psa::signing;
use vouch::sandbox::psa::{self as sbx, PsaSandbox};
use vouch::store::crypto::MasterKey;
use vouch::store::{
    msp::{MspPolicy, NewMspAccount},
    tenants::NewTenant,
};

const CONNECTIONS: usize = 64;
const WARM_UP: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(5);

#[handler]
fn bare() -> &'static str {
    "ok"
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = Config::default();
    config.database.url = format!("sqlite://{}", dir.path().join("bench.db").display());
    config.http.bind = "127.0.0.1:0".parse()?;
    config.encryption.master_key = Some(MasterKey::generate_encoded());
    let running = App::build(config).await?.start().await?;
    let store = &running.context().store;
    let msp = store
        .create_msp(NewMspAccount {
            name: "Bench MSP".into(),
            brand_logo_url: None,
            brand_color: None,
            policy: MspPolicy::default(),
        })
        .await?;
    let tenant = store
        .create_tenant(NewTenant {
            msp_id: msp.id,
            microsoft_tenant_id: vouch::sandbox::microsoft::DEMO_TENANT_ID.into(),
            display_name: "Contoso".into(),
            verified_domains: vec![],
        })
        .await?;
    let psa = PsaSandbox::start().await?;
    let base = running.base_url();
    let urls = vouch::demo::connect_psa_sandbox(store, msp.id, tenant.id, &psa, &base).await?;

    let bare_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let bare_addr = bare_listener.local_addr()?;
    drop(bare_listener);
    tokio::spawn(
        Server::new(TcpListener::bind(bare_addr)).run(Route::new().at("/bare", get(bare))),
    );

    // A signed tab load, as HaloPSA sends it (valid for the 5-minute signature window).
    let mut pod = url::Url::parse(&urls.halopsa)?;
    let mut params: Vec<(String, String)> = pod.query_pairs().into_owned().collect();
    params.push(("ticket_id".into(), sbx::HALO_TICKET_DANA.to_string()));
    params.push(("agent_id".into(), sbx::HALO_AGENT_ID.to_string()));
    params.push(("ts".into(), chrono::Utc::now().timestamp().to_string()));
    let sig = signing::sign(&params, sbx::HALO_TAB_SECRET);
    params.push(("sig".into(), sig));
    pod.query_pairs_mut().clear().extend_pairs(&params);
    let pod_url = pod.to_string();
    let bare_url = format!("http://{bare_addr}/bare");

    let ep = vouch::server::routes(running.context().clone());
    let path = pod_url.split_once(&base.to_string().trim_end_matches('/').to_string()).map(|(_, p)| p.to_owned()).unwrap();
    let mut layers = std::collections::BTreeMap::new();
    for (name, p) in [("pod", path.clone()), ("healthz", "/healthz".to_string())] {
        let n = 200_000u32;
        let start = Instant::now();
        for _ in 0..n {
            let req = poem::Request::builder().uri(p.parse().unwrap()).finish();
            let resp = poem::Endpoint::get_response(&ep, req).await;
            assert!(resp.status().is_success());
            let _ = resp.into_body().into_bytes().await;
        }
        layers.insert(name, start.elapsed().as_secs_f64() * 1e6 / n as f64);
    }
    println!("{layers:?} us per request");
    running.stop().await
}
