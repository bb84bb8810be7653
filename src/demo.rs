//! `vouch demo`: Vouch on SQLite under `./vouch-data/`, with a demo key, a seeded demo MSP and
//! the sandbox upstreams, so a newcomer can click through without any real service.

use std::path::Path;

use anyhow::Context;

use crate::cli;
use crate::config::Config;
use crate::store::Store;
use crate::store::repos::{
    AuditActor, AuditLog, MspPolicy, MspRepository, NewAuditEvent, NewMspAccount, NewTenant,
    TenantRepository,
};
use crate::telemetry;

pub const DEMO_DATA_DIR: &str = "vouch-data";
pub const DEMO_MSP_NAME: &str = "Northwind IT (demo)";
/// The demo customer's tenant id (the Microsoft sandbox knows the same one).
pub const DEMO_TENANT_ID: &str = "7f3c1a52-5b1e-4c8e-9a47-2f6d1e0b9c11";

pub async fn run(mut config: Config) -> anyhow::Result<()> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    cli::prefer_pretty_logs(&mut config, &env);
    if !env
        .iter()
        .any(|(name, _)| name == "VOUCH__HTTP__PUBLIC_URL")
    {
        let bind = config.http.bind;
        let host = if bind.ip().is_loopback() || bind.ip().is_unspecified() {
            "localhost".to_owned()
        } else {
            bind.ip().to_string()
        };
        config.http.public_url = format!("http://{host}:{}/", bind.port())
            .parse()
            .context("building the demo's public URL")?;
    }
    telemetry::init_logging(&config.log);

    let key_path = Path::new(DEMO_DATA_DIR).join("demo-master.key");
    let mut created_key = false;
    if config.encryption.master_key.is_none() {
        let (key, created) = cli::demo_master_key(&key_path)?;
        config.encryption.master_key = Some(key);
        created_key = created;
    }

    let store = cli::open_store(&config).await?;
    store
        .migrate()
        .await
        .context("migrating the demo database")?;
    seed(&store).await.context("seeding the demo MSP")?;

    let base = config
        .http
        .public_url
        .as_str()
        .trim_end_matches('/')
        .to_owned();
    let rule = "=".repeat(72);
    println!("{rule}");
    println!("  VOUCH DEMO: sandbox upstreams, SQLite database in ./{DEMO_DATA_DIR}/");
    println!();
    println!(
        "  WARNING: stored secrets are sealed with the DEMO KEY {}{}.",
        key_path.display(),
        if created_key { " (just created)" } else { "" }
    );
    println!("  It is a demo key. Never use it, or this data, in production.");
    println!();
    println!("  Open:  {base}/           start here");
    println!("         {base}/api/docs   the JSON API");
    println!("{rule}");

    let links = vec![(
        "Demo MSP: ".to_owned() + DEMO_MSP_NAME,
        "/api/docs".to_owned(),
    )];
    cli::run_server(config, store, links).await
}

/// Creates the demo MSP and its customer tenant once; later runs find them and change nothing.
pub async fn seed(store: &Store) -> anyhow::Result<()> {
    if store
        .list_msps()
        .await?
        .iter()
        .any(|msp| msp.name == DEMO_MSP_NAME)
    {
        return Ok(());
    }
    let msp = store
        .create_msp(NewMspAccount {
            name: DEMO_MSP_NAME.to_owned(),
            brand_logo_url: None,
            brand_color: Some("#0b5cad".to_owned()),
            policy: MspPolicy::default(),
        })
        .await?;
    store
        .create_tenant(NewTenant {
            msp_id: msp.id,
            microsoft_tenant_id: DEMO_TENANT_ID.to_owned(),
            display_name: "Contoso (demo customer)".to_owned(),
            verified_domains: vec!["contoso.example".to_owned()],
        })
        .await?;
    store
        .append(NewAuditEvent {
            msp_id: msp.id,
            actor: AuditActor {
                kind: "system".to_owned(),
                id: None,
                name: Some("vouch demo".to_owned()),
            },
            action: "demo.seeded".to_owned(),
            subject_kind: Some("msp".to_owned()),
            subject_id: Some(msp.id.to_string()),
            subject_name: Some(msp.name.clone()),
            psa_ticket_id: None,
            outcome: "success".to_owned(),
            upstream_request_id: None,
            details: serde_json::json!({}),
        })
        .await?;
    Ok(())
}
