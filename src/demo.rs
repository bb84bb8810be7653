//! `vouch demo`: Vouch on SQLite under `./vouch-data/`, with a demo key, a seeded demo MSP and
//! the sandbox upstreams, so a newcomer can click through without any real service.
//!
//! Only the configuration differs from `serve`: the upstream URLs point at the sandbox, and the
//! application is built by the same composition root (`crate::app`). Vouch's own code paths
//! are the same. Built only with the `sandbox` feature (a default).

use crate::core::settings::{SettingsChange, SettingsService};
use std::path::Path;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};

use crate::app::{App, AppContext, AppOptions};
use crate::config::{Config, LogFormat};
use crate::core::integrations::IdentityManagementInput;
use crate::domain::{ActorKind, AuditOutcome, IntegrationKind, MspPolicy};
use crate::sandbox::microsoft::{self, ConsentDecision, MicrosoftSandbox};
use crate::sandbox::psa::PsaSandbox;
use crate::sandbox::sms::SmsSandbox;
use crate::server;
use crate::store::Store;
use crate::store::crypto::MasterKey;
use crate::store::{
    audit::{AuditActor, NewAuditEvent},
    msp::{MspAccount, NewMspAccount},
    tenants::NewTenant,
};
use crate::telemetry;

pub const DEMO_DATA_DIR: &str = "vouch-data";
pub const DEMO_MSP_NAME: &str = "Northwind IT (demo)";
/// The demo MSP's support phone, named in its SMS texts and on its pages (a fictional 555
/// number).
pub const DEMO_SUPPORT_PHONE: &str = "+1 206 555 0199";
/// The demo customer's tenant id (the Microsoft sandbox knows the same one).
pub const DEMO_TENANT_ID: &str = microsoft::DEMO_TENANT_ID;

pub async fn run(mut config: Config) -> anyhow::Result<()> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    prefer_pretty_logs(&mut config, &env);
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

    let sandbox = MicrosoftSandbox::start()
        .await
        .context("starting the Microsoft sandbox")?;
    config.microsoft.login_url = Some(sandbox.login_url().parse()?);
    config.microsoft.graph_url = Some(sandbox.graph_url().parse()?);
    config.microsoft.mfa_connector_url = Some(sandbox.mfa_connector_url().parse()?);
    let (app_id, app_secret) = sandbox.vouch_app();
    config.microsoft.app_client_id = Some(app_id);
    config.microsoft.app_client_secret = Some(SecretString::from(app_secret));
    let sms = SmsSandbox::start()
        .await
        .context("starting the SMS sandbox")?;
    config.sms.api_url = sms.api_url().parse()?;
    config.sms.account_sid = Some(sms.account_sid());
    config.sms.auth_token = Some(SecretString::from(sms.auth_token()));
    config.sms.from = Some(sms.from_number());
    let psa = PsaSandbox::start()
        .await
        .context("starting the PSA sandbox")?;

    let key_path = Path::new(DEMO_DATA_DIR).join("demo-master.key");
    let mut created_key = false;
    if config.encryption.master_key.is_none() {
        let (key, created) = demo_master_key(&key_path)?;
        config.encryption.master_key = Some(key);
        created_key = created;
    }
    let base = config
        .http
        .public_url
        .as_str()
        .trim_end_matches('/')
        .to_owned();
    let links = vec![
        (
            "ConnectWise PSA ticket (sandbox): Dana Whitfield, locked out".to_owned(),
            psa.connectwise()
                .ticket_screen_url(crate::sandbox::psa::CW_TICKET_DANA),
        ),
        (
            "HaloPSA ticket (sandbox): Dana Whitfield".to_owned(),
            psa.halopsa()
                .ticket_screen_url(crate::sandbox::psa::HALO_TICKET_DANA),
        ),
        (
            "Autotask ticket (sandbox): Dana Whitfield".to_owned(),
            psa.autotask()
                .ticket_screen_url(crate::sandbox::psa::AUTOTASK_TICKET_DANA),
        ),
        (
            "HaloPSA ticket (sandbox): Sam Ortega (default method is SMS: the mismatch case)"
                .to_owned(),
            psa.halopsa()
                .ticket_screen_url(crate::sandbox::psa::HALO_TICKET_SAM),
        ),
        (
            "Authenticator phone (sandbox): approve or deny pushes".to_owned(),
            sandbox.phone_url(),
        ),
        (
            "SMS outbox (sandbox): codes and secure links sent".to_owned(),
            sms.outbox_url(),
        ),
    ];

    let app = App::build_with(
        config,
        AppOptions {
            landing_links: links,
            ..AppOptions::default()
        },
    )
    .await
    .context("building the demo")?;
    let ctx = app.context().clone();
    let store = &ctx.store;
    let msp = seed(store, &ctx.settings)
        .await
        .context("seeding the demo MSP")?;
    let (_, api_key) = store.create_api_key(msp.id, "vouch demo").await?;
    let tenant = store
        .find_tenant_by_microsoft_id(msp.id, DEMO_TENANT_ID)
        .await?
        .context("the demo tenant")?;
    connect_psa_sandbox(&ctx, msp.id, tenant.id, &psa, &base).await?;
    connect_demo_identity_management(&ctx, store, msp.id)
        .await
        .context("connecting the demo tenant")?;
    connect_demo_authenticator(&ctx, &sandbox, msp.id)
        .await
        .context("connecting Microsoft Authenticator for the demo tenant")?;
    let running = app.start().await?;

    let rule = "=".repeat(76);
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
    println!("  Open:  {base}/              start here: the three PSA ticket screens,");
    println!("                              the Authenticator phone and the SMS outbox");
    println!("         {base}/api/docs      the JSON API (click Authorize, paste the key below)");
    println!();
    println!("  Demo API key for {DEMO_MSP_NAME} (new each run, shown once):");
    println!("         {}", api_key.expose_secret());
    println!();
    println!("  Try: open a ticket, \"Send Authenticator push\", approve it on the phone page,");
    println!("       then \"Reset password\" and open the secure link from the SMS outbox.");
    println!("{rule}");

    running.run_until(server::shutdown_signal()).await
}

/// `demo` reads people-friendly logs unless told otherwise.
fn prefer_pretty_logs(config: &mut Config, env: &[(String, String)]) {
    let explicit = env.iter().any(|(name, _)| name == "VOUCH__LOG__FORMAT");
    if !explicit {
        config.log.format = LogFormat::Pretty;
    }
}

/// Reads or creates the demo master key file.
fn demo_master_key(path: &Path) -> anyhow::Result<(SecretString, bool)> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        return Ok((SecretString::from(existing.trim().to_owned()), false));
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let key = MasterKey::generate_encoded();
    write_private_file(path, key.expose_secret())?;
    Ok((key, true))
}

/// Creates `path` readable by its owner only: it holds the demo's master key.
fn write_private_file(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(content.as_bytes())?;
    file.write_all(b"\n")
}

/// Sets the demo MSP's support phone through the settings service, as an admin would.
async fn give_support_phone(
    store: &Store,
    settings: &SettingsService,
    msp_id: uuid::Uuid,
) -> anyhow::Result<MspAccount> {
    settings
        .update(
            msp_id,
            &AuditActor {
                kind: ActorKind::System,
                id: None,
                name: Some("vouch demo".into()),
            },
            SettingsChange {
                support_phone: Some(Some(DEMO_SUPPORT_PHONE.to_owned())),
                ..SettingsChange::default()
            },
        )
        .await
        .map_err(|err| anyhow::anyhow!("{}: {err}", err.code()))?;
    store
        .get_msp(msp_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the demo MSP is gone"))
}

/// Creates the demo MSP and its customer tenant once; later runs find them and change nothing
/// (but give a demo made before MSPs had a support phone the demo one).
pub async fn seed(store: &Store, settings: &SettingsService) -> anyhow::Result<MspAccount> {
    if let Some(existing) = store
        .list_msps()
        .await?
        .into_iter()
        .find(|msp| msp.name == DEMO_MSP_NAME)
    {
        // A demo made before MSPs had a support phone gets one.
        if existing.brand_support_phone.is_none() {
            return give_support_phone(store, settings, existing.id).await;
        }
        return Ok(existing);
    }
    let msp = store
        .create_msp(NewMspAccount {
            name: DEMO_MSP_NAME.to_owned(),
            brand_logo_url: None,
            brand_color: Some("#0b5cad".to_owned()),
            policy: MspPolicy::default(),
        })
        .await?;
    let msp = give_support_phone(store, settings, msp.id).await?;
    store
        .create_tenant(NewTenant {
            msp_id: msp.id,
            microsoft_tenant_id: DEMO_TENANT_ID.to_owned(),
            display_name: microsoft::DEMO_TENANT_NAME.to_owned(),
            verified_domains: vec![
                microsoft::DEMO_TENANT_DOMAIN.to_owned(),
                "contoso.onmicrosoft.com".to_owned(),
            ],
        })
        .await?;
    store
        .append(NewAuditEvent {
            msp_id: msp.id,
            actor: AuditActor {
                kind: ActorKind::System,
                id: None,
                name: Some("vouch demo".to_owned()),
            },
            action: "demo.seeded".to_owned(),
            subject_kind: Some("msp".to_owned()),
            subject_id: Some(msp.id.to_string()),
            subject_name: Some(msp.name.clone()),
            psa_ticket_id: None,
            outcome: AuditOutcome::Success,
            upstream_request_id: None,
            details: serde_json::json!({}),
        })
        .await?;
    Ok(msp)
}

/// Grants the admin consent in the Microsoft sandbox and completes it through Vouch's own
/// callback, as the customer's administrator would by clicking Accept.
async fn connect_demo_authenticator(
    ctx: &AppContext,
    sandbox: &MicrosoftSandbox,
    msp_id: uuid::Uuid,
) -> anyhow::Result<()> {
    let url = ctx
        .integrations
        .start_authenticator_consent(msp_id)
        .await
        .map_err(|err| anyhow::anyhow!("{}: {err}", err.code()))?;
    let callback = sandbox
        .answer_admin_consent(
            &url,
            DEMO_TENANT_ID,
            "global_admin",
            ConsentDecision::Accept,
        )
        .await
        .context("answering the sandbox's admin consent page")?;
    let pairs: std::collections::HashMap<String, String> =
        callback.query_pairs().into_owned().collect();
    ctx.integrations
        .complete_authenticator_consent(crate::core::integrations::ConsentCallback {
            state: pairs.get("state").cloned(),
            tenant: pairs.get("tenant").cloned(),
            admin_consent: pairs.get("admin_consent").cloned(),
            error: pairs.get("error").cloned(),
            error_description: pairs.get("error_description").cloned(),
        })
        .await
        .map_err(|err| anyhow::anyhow!("{}: {err}", err.code()))?;
    Ok(())
}

/// Connects the demo tenant through the same path an MSP admin uses (credentials proven
/// against the sandbox before they are saved).
async fn connect_demo_identity_management(
    ctx: &AppContext,
    store: &Store,
    msp_id: uuid::Uuid,
) -> anyhow::Result<()> {
    if let Some(tenant) = store
        .find_tenant_by_microsoft_id(msp_id, DEMO_TENANT_ID)
        .await?
    {
        // The sandbox starts empty each run, so a connector credential from an earlier run
        // means nothing to it: forget it, and let the newcomer consent again (one click).
        if let Some(stale) = store
            .get_integration(tenant.id, IntegrationKind::Authenticator)
            .await?
        {
            store.delete_integration(stale.id).await?;
            tracing::info!("the sandbox starts fresh: connect Microsoft Authenticator again");
        }
    }
    if let Some(tenant) = store
        .find_tenant_by_microsoft_id(msp_id, DEMO_TENANT_ID)
        .await?
        && store
            .get_integration(tenant.id, IntegrationKind::IdentityManagement)
            .await?
            .is_some()
    {
        return Ok(());
    }
    ctx.integrations
        .connect_identity_management(
            msp_id,
            &AuditActor {
                kind: ActorKind::System,
                id: None,
                name: Some("vouch demo".into()),
            },
            IdentityManagementInput {
                tenant: DEMO_TENANT_ID.to_owned(),
                client_id: microsoft::IDENTITY_APP_CLIENT_ID.to_owned(),
                client_secret: SecretString::from(microsoft::IDENTITY_APP_SECRET.to_owned()),
                secret_expires_at: None,
            },
        )
        .await
        .map_err(|err| anyhow::anyhow!("{}: {err}", err.code()))?;
    Ok(())
}

/// The PSA connections of the demo MSP, pointed at the PSA sandbox, with the customer
/// company of each PSA mapped to the demo tenant, all through the services an admin's API
/// calls use (checked and audited alike); then what `setup` says to paste into each PSA is
/// pasted into the sandbox (the pod URLs, the signing secrets). Returns the pod URLs the
/// sandbox's ticket screens embed, at `vouch_base_url` (where this Vouch listens, which in
/// tests is not its public URL). Used by `vouch demo` and by the tests.
pub async fn connect_psa_sandbox(
    ctx: &AppContext,
    msp_id: uuid::Uuid,
    tenant_id: uuid::Uuid,
    psa: &crate::sandbox::psa::PsaSandbox,
    vouch_base_url: &str,
) -> anyhow::Result<crate::sandbox::psa::PodUrls> {
    use crate::core::psa_connections::{
        AutotaskInput, AutotaskPatch, ConnectWiseInput, ConnectWisePatch, ConnectionDetails,
        ConnectionPatch, HaloPsaInput, HaloPsaPatch, NewConnectionInput, Patch,
    };
    use crate::core::setup::MappingInput;
    use crate::domain::PsaKind;
    use crate::sandbox::psa as sbx;

    let coded = |err: crate::core::error::CoreError| anyhow::anyhow!("{}: {err}", err.code());
    let actor = AuditActor {
        kind: ActorKind::System,
        id: None,
        name: Some("vouch demo".into()),
    };
    let cw = psa.connectwise();
    let halo = psa.halopsa();
    let autotask = psa.autotask();
    let secret = |value: &str| SecretString::from(value.to_owned());
    let existing = ctx.psa_connections.list(msp_id).await.map_err(coded)?;
    let mut urls = sbx::PodUrls::default();
    for kind in [PsaKind::ConnectWise, PsaKind::HaloPsa, PsaKind::Autotask] {
        // The sandbox listens on a new port each run: last run's connection is updated in
        // place (connections do not pile up), audited like any change.
        let id = match existing.iter().find(|c| c.kind == kind) {
            Some(old) => {
                let moved = match &old.details {
                    ConnectionDetails::ConnectWise { site_url, .. } => *site_url != cw.site_url,
                    ConnectionDetails::HaloPsa { resource_url, .. } => {
                        *resource_url != halo.resource_url
                    }
                    ConnectionDetails::Autotask {
                        zone_lookup_url, ..
                    } => zone_lookup_url.as_deref() != Some(autotask.zone_lookup_url.as_str()),
                };
                if moved {
                    let patch = match kind {
                        PsaKind::ConnectWise => ConnectionPatch::ConnectWise(ConnectWisePatch {
                            site_url: Some(cw.site_url.clone()),
                            ..ConnectWisePatch::default()
                        }),
                        PsaKind::HaloPsa => ConnectionPatch::HaloPsa(HaloPsaPatch {
                            resource_url: Some(halo.resource_url.clone()),
                            auth_url: Some(halo.auth_url.clone()),
                            ..HaloPsaPatch::default()
                        }),
                        PsaKind::Autotask => ConnectionPatch::Autotask(AutotaskPatch {
                            zone_lookup_url: Patch::Set(autotask.zone_lookup_url.clone()),
                            ..AutotaskPatch::default()
                        }),
                    };
                    ctx.psa_connections
                        .update(msp_id, &actor, old.id, patch)
                        .await
                        .map_err(coded)?;
                }
                old.id
            }
            None => {
                let input = match kind {
                    PsaKind::ConnectWise => NewConnectionInput::ConnectWise(ConnectWiseInput {
                        name: Some("ConnectWise (sandbox)".into()),
                        site_url: Some(cw.site_url.clone()),
                        company_id: cw.company_id.clone(),
                        public_key: cw.public_key.clone(),
                        private_key: secret(&cw.private_key),
                        client_id: Some(cw.client_id.clone()),
                        allowed_origins: None,
                    }),
                    PsaKind::HaloPsa => NewConnectionInput::HaloPsa(HaloPsaInput {
                        name: Some("HaloPSA (sandbox)".into()),
                        resource_url: halo.resource_url.clone(),
                        auth_url: halo.auth_url.clone(),
                        tenant: None,
                        client_id: halo.client_id.clone(),
                        client_secret: secret(&halo.client_secret),
                        allowed_origins: None,
                    }),
                    PsaKind::Autotask => NewConnectionInput::Autotask(AutotaskInput {
                        name: Some("Autotask (sandbox)".into()),
                        api_user: autotask.api_user.clone(),
                        api_secret: secret(&autotask.api_secret),
                        integration_code: autotask.integration_code.clone(),
                        zone_lookup_url: Some(autotask.zone_lookup_url.clone()),
                        allowed_origins: None,
                    }),
                };
                ctx.psa_connections
                    .create(msp_id, &actor, input)
                    .await
                    .map_err(coded)?
                    .view
                    .id
            }
        };
        let company = match kind {
            PsaKind::ConnectWise => sbx::CW_CONTOSO_COMPANY_ID.to_string(),
            PsaKind::HaloPsa => sbx::HALO_CONTOSO_CLIENT_ID.to_string(),
            PsaKind::Autotask => sbx::AUTOTASK_CONTOSO_COMPANY_ID.to_string(),
        };
        ctx.setup
            .put_mapping(
                msp_id,
                &actor,
                MappingInput {
                    psa_connection_id: id,
                    psa_company_id: company,
                    psa_company_name: "Contoso Ltd".to_owned(),
                    tenant_id,
                },
            )
            .await
            .map_err(coded)?;
        // What the admin pastes into the PSA; the pod URL at the address Vouch listens on.
        let setup = ctx.psa_connections.setup(msp_id, id).await.map_err(coded)?;
        let pod_url = url::Url::parse(&setup.pod_url)?;
        let pod_url = format!(
            "{}{}?{}",
            vouch_base_url.trim_end_matches('/'),
            pod_url.path(),
            // `[cw_id]` and `[cw_screen]` stay as the PSA expects them.
            percent_decoded(pod_url.query().unwrap_or_default())
        );
        match (kind, &setup.secret) {
            (PsaKind::ConnectWise, _) => urls.connectwise = pod_url,
            (PsaKind::HaloPsa, Some(secret)) => {
                psa.set_halo_tab_secret(secret.value.expose_secret());
                urls.halopsa = pod_url;
            }
            (PsaKind::Autotask, Some(secret)) => {
                psa.set_autotask_insight_secret(secret.value.expose_secret());
                urls.autotask = pod_url;
            }
            (kind, None) => anyhow::bail!("the {} connection has no signing secret", kind.as_str()),
        }
    }
    psa.set_pod_urls(urls.clone());
    Ok(urls)
}

/// `[cw_id]` as the PSA's placeholder, not `%5Bcw_id%5D`.
fn percent_decoded(query: &str) -> String {
    query.replace("%5B", "[").replace("%5D", "]")
}
