//! Console page benchmark: the time each page of the MSP console takes, p50 and p99 over
//! sequential requests with warm caches, against a demo world (the PSA sandbox connected, a
//! tenant, an admin signed in, 2,000 audit entries).
//!
//! ```sh
//! cargo run --release --example console_bench
//! ```
//!
//! Goal (issue 11): each page under 50 ms server time with warm caches. The time is measured
//! at the client over loopback, so it is an upper bound of the server's. It prints numbers;
//! it does not fail a build.

use std::time::{Duration, Instant};

use secrecy::SecretString;
use vouch::app::App;
use vouch::config::Config;
use vouch::core::accounts::NewUserInput;
use vouch::domain::{ActorKind, AuditOutcome, ConsoleRole, MspPolicy};
use vouch::sandbox::psa::PsaSandbox;
use vouch::store::audit::{AuditActor, NewAuditEvent};
use vouch::store::crypto::MasterKey;
use vouch::store::{msp::NewMspAccount, tenants::NewTenant};

const WARM_UP: usize = 20;
const RUNS: usize = 200;
const PASSWORD: &str = "a long bench passphrase 1";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = Config::default();
    config.database.url = format!("sqlite://{}", dir.path().join("bench.db").display());
    config.http.bind = "127.0.0.1:0".parse()?;
    config.encryption.master_key = Some(MasterKey::generate_encoded());
    let origin = config.http.public_url.origin().ascii_serialization();
    let running = App::build(config).await?.start().await?;
    let ctx = running.context();
    let store = &ctx.store;
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
    vouch::demo::connect_psa_sandbox(ctx, msp.id, tenant.id, &psa, &base).await?;
    ctx.accounts
        .seed_demo_user(
            msp.id,
            NewUserInput {
                email: "admin@bench.example".into(),
                name: "Bench Admin".into(),
                role: ConsoleRole::Admin,
            },
            &SecretString::from(PASSWORD.to_owned()),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    for n in 0..2000 {
        store
            .append(NewAuditEvent {
                msp_id: msp.id,
                actor: AuditActor {
                    kind: ActorKind::ApiKey,
                    id: Some("vk_bench".into()),
                    name: Some("bench".into()),
                },
                action: if n % 2 == 0 {
                    "verification.push.start"
                } else {
                    "password.reset"
                }
                .into(),
                subject_kind: Some("user".into()),
                subject_id: Some(format!("user-{n}")),
                subject_name: Some(format!("user{n}@contoso.example")),
                psa_ticket_id: Some(format!("{}", 1000 + n)),
                outcome: AuditOutcome::Success,
                upstream_request_id: None,
                details: serde_json::json!({}),
            })
            .await?;
    }

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let signed_in = client
        .post(format!("{base}/console/sign-in"))
        .header("origin", &origin)
        .form(&[("email", "admin@bench.example"), ("password", PASSWORD)])
        .send()
        .await?;
    let cookie = signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.split(';')
                .next()
                .filter(|c| c.starts_with("vouch_console="))
        })
        .ok_or_else(|| anyhow::anyhow!("no session cookie: {}", signed_in.status()))?
        .to_owned();

    println!(
        "{:<52} {:>10} {:>10}   (goal < 50 ms; debug builds are slower)",
        "console page", "p50", "p99"
    );
    let by_tenant = format!("/console/audit?tenant={}", tenant.id);
    let connection = ctx
        .psa_connections
        .list(msp.id)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("the sandbox PSA is connected"))?
        .id;
    let connection_page = format!("/console/psa-connections/{connection}");
    let setup_page = format!("/console/psa-connections/{connection}/setup");
    for (label, path) in [
        ("/console/integrations", "/console/integrations"),
        (
            "/console/integrations/identity-management",
            "/console/integrations/identity-management",
        ),
        ("/console/psa-connections", "/console/psa-connections"),
        ("/console/psa-connections/{id}", connection_page.as_str()),
        ("/console/psa-connections/{id}/setup", setup_page.as_str()),
        (
            "/console/companies (the PSA's companies)",
            "/console/companies",
        ),
        ("/console/contacts", "/console/contacts"),
        ("/console/tickets", "/console/tickets"),
        ("/console/shares", "/console/shares"),
        ("/console", "/console"),
        ("/console/audit", "/console/audit"),
        (
            "/console/audit?action=…&user=… (filtered)",
            "/console/audit?action=password.reset&user=user1",
        ),
        ("/console/audit?page=20", "/console/audit?page=20"),
        ("/console/audit?tenant=… (by tenant)", by_tenant.as_str()),
        (
            "/console/audit.csv (2,000 rows: an export)",
            "/console/audit.csv",
        ),
        ("/console/settings", "/console/settings"),
        ("/console/users", "/console/users"),
        ("/console/account", "/console/account"),
    ] {
        let mut times = Vec::with_capacity(RUNS);
        for run in 0..WARM_UP + RUNS {
            let started = Instant::now();
            let response = client
                .get(format!("{base}{path}"))
                .header("cookie", &cookie)
                .send()
                .await?;
            let status = response.status();
            response.bytes().await?;
            if !status.is_success() {
                anyhow::bail!("{path} answered {status}");
            }
            if run >= WARM_UP {
                times.push(started.elapsed());
            }
        }
        times.sort();
        let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{label:<52} {:>7.2} ms {:>7.2} ms",
            ms(at(0.5)),
            ms(at(0.99))
        );
    }
    running.stop().await?;
    Ok(())
}
