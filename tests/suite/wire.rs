//! Wire fidelity: what Vouch sends and reads matches the services' own wire (see
//! shared/reference/), checked through real HTTP against sandboxes that behave as the
//! services do.

use crate::{backends, common};
use backends::on_every_backend;
use chrono::Utc;
use common::TestApp;
use common::world::{self, World};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use vouch::config::{Config, ConfigSources, MicrosoftCloud};
use vouch::domain::{MspPolicy, PsaKind};
use vouch::microsoft::token::Audience;
use vouch::microsoft::{ClientCredentials, Microsoft, MicrosoftErrorKind, TenantRef};
use vouch::sandbox::microsoft::{
    DEMO_TENANT_ID, Fault, IDENTITY_APP_CLIENT_ID, IDENTITY_APP_SECRET, MFA_CLIENT_APP_ID,
    MicrosoftSandbox, PushScript, SandboxApp, Service, VOUCH_APP_PERMISSIONS,
};
use vouch::sandbox::psa::{self as sbx, Psa};
use vouch::sandbox::sms::SmsSandbox;
use vouch::store::entities::technician;
use vouch::store::msp::NewMspAccount;
use vouch::store::psa_connections::PsaConnection;
use vouch::telemetry::Metrics;

// ---------------------------------------------------------------------------------------
// Token audiences and `microsoft.cloud`
// ---------------------------------------------------------------------------------------

/// Vouch's Microsoft clients for `cloud`, with every address pointed at the sandbox.
fn microsoft_for(sandbox: &MicrosoftSandbox, cloud: MicrosoftCloud) -> Microsoft {
    let mut config = Config::default();
    config.microsoft.cloud = cloud;
    config.microsoft.login_url = Some(sandbox.login_url().parse().unwrap());
    config.microsoft.graph_url = Some(sandbox.graph_url().parse().unwrap());
    config.microsoft.mfa_connector_url = Some(sandbox.mfa_connector_url().parse().unwrap());
    config.microsoft.request_timeout_seconds = 5;
    Microsoft::new(
        &config.microsoft,
        config.cache.microsoft_tokens,
        &Metrics::new(),
    )
}

fn credentials(client_id: &str, secret: &str) -> ClientCredentials {
    ClientCredentials {
        tenant: TenantRef::parse(DEMO_TENANT_ID).unwrap(),
        client_id: client_id.into(),
        client_secret: SecretString::from(secret.to_owned()),
    }
}

/// A connector credential in the demo tenant, made as the Authenticator onboarding makes it.
async fn connector_credentials(
    microsoft: &Microsoft,
    sandbox: &MicrosoftSandbox,
) -> ClientCredentials {
    let (vouch_id, vouch_secret) = sandbox.vouch_app();
    sandbox.add_app(SandboxApp {
        client_id: vouch_id.clone(),
        secret: vouch_secret.clone(),
        secret_expires_at: None,
        tenant_id: DEMO_TENANT_ID.into(),
        permissions: VOUCH_APP_PERMISSIONS
            .iter()
            .map(|p| p.to_string())
            .collect(),
    });
    let vouch = credentials(&vouch_id, &vouch_secret);
    let sp = microsoft
        .graph
        .ensure_service_principal(&vouch, MFA_CLIENT_APP_ID)
        .await
        .unwrap();
    let credential = microsoft
        .graph
        .add_password(
            &vouch,
            &sp.id,
            "wire",
            Utc::now() + chrono::Duration::days(30),
        )
        .await
        .unwrap();
    credentials(MFA_CLIENT_APP_ID, credential.secret_text.expose_secret())
}

fn assert_resource_not_found(err: vouch::microsoft::MicrosoftError) {
    match &err.kind {
        MicrosoftErrorKind::Unexpected {
            status: Some(400),
            code: Some(code),
        } => assert!(code.contains("AADSTS500011"), "{code}"),
        other => panic!("expected Entra's AADSTS500011, got {other:?}"),
    }
}

#[tokio::test]
async fn tokens_name_the_clouds_services_not_the_addresses_they_are_sent_to() {
    let sandbox = MicrosoftSandbox::start().await.unwrap();
    let identity = credentials(IDENTITY_APP_CLIENT_ID, IDENTITY_APP_SECRET);

    // Every address is the sandbox's, yet the tokens are for Graph and for the connector of
    // the global cloud: the sandbox, like Entra, issues no token for an address.
    let global = microsoft_for(&sandbox, MicrosoftCloud::Global);
    global
        .tokens
        .token(&identity, Audience::Graph)
        .await
        .expect("a Graph token for https://graph.microsoft.com/.default");
    let connector = connector_credentials(&global, &sandbox).await;
    global
        .tokens
        .token(&connector, Audience::MfaConnector)
        .await
        .expect("a connector token for the global connector resource");

    // The same addresses in GCC High: the audiences follow the cloud, so the sandbox (still
    // the global cloud) refuses them as Entra refuses an unknown resource.
    let gcc_high = microsoft_for(&sandbox, MicrosoftCloud::Usgov);
    assert_resource_not_found(
        gcc_high
            .tokens
            .token(&identity, Audience::Graph)
            .await
            .unwrap_err(),
    );
    assert_resource_not_found(
        gcc_high
            .tokens
            .token(&connector, Audience::MfaConnector)
            .await
            .unwrap_err(),
    );

    // Once the sandbox stands for GCC High, GCC High's audiences are the ones it knows.
    sandbox.set_cloud_audiences(
        "https://graph.microsoft.us",
        "https://adnotifications.windowsazure.us/StrongAuthenticationService.svc/Connector",
    );
    gcc_high
        .tokens
        .token(&identity, Audience::Graph)
        .await
        .expect("a Graph token for https://graph.microsoft.us/.default");
    gcc_high
        .tokens
        .token(&connector, Audience::MfaConnector)
        .await
        .expect("a connector token for GCC High's connector resource");
}

fn server_error(status: u16) -> Fault {
    Fault::Status {
        status,
        body: r#"{"error":"temporarily_unavailable","error_description":"AADSTS50053: try again","error_codes":[50053]}"#.into(),
        retry_after: None,
    }
}

#[tokio::test]
async fn the_token_endpoint_is_retried_after_a_500_or_503_within_bounds() {
    let sandbox = MicrosoftSandbox::start().await.unwrap();
    let microsoft = microsoft_for(&sandbox, MicrosoftCloud::Global);
    let identity = credentials(IDENTITY_APP_CLIENT_ID, IDENTITY_APP_SECRET);
    let calls = || sandbox.count(Service::Login, "POST", "/oauth2/v2.0/token");

    sandbox.inject_fault(Service::Login, "/oauth2/v2.0/token", server_error(500), 1);
    sandbox.inject_fault(Service::Login, "/oauth2/v2.0/token", server_error(503), 1);
    microsoft
        .tokens
        .token(&identity, Audience::Graph)
        .await
        .expect("a 500 then a 503 are passing: the third attempt gets the token");
    assert_eq!(calls(), 3);

    // Entra down for longer than the bound: four attempts, then Vouch says so.
    sandbox.clear_requests();
    let connector = connector_credentials(&microsoft, &sandbox).await;
    sandbox.clear_requests();
    sandbox.inject_fault(Service::Login, "/oauth2/token", server_error(500), 100);
    let err = microsoft
        .tokens
        .token(&connector, Audience::MfaConnector)
        .await
        .unwrap_err();
    assert_eq!(
        err.kind,
        MicrosoftErrorKind::Unavailable { status: Some(500) }
    );
    assert_eq!(sandbox.count(Service::Login, "POST", "/oauth2/token"), 4);
}

fn load(pairs: &[(&str, &str)]) -> Config {
    Config::load_from(ConfigSources {
        file: None,
        env: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    })
    .unwrap()
}

#[test]
fn the_cloud_sets_addresses_and_audiences_from_one_table() {
    let cases = [
        (
            "global",
            "https://login.microsoftonline.com/",
            "https://graph.microsoft.com/",
            "https://graph.microsoft.com/.default",
            "adnotifications.windowsazure.com",
        ),
        (
            "usgov",
            "https://login.microsoftonline.us/",
            "https://graph.microsoft.us/",
            "https://graph.microsoft.us/.default",
            "adnotifications.windowsazure.us",
        ),
        (
            "usgov-dod",
            "https://login.microsoftonline.us/",
            "https://dod-graph.microsoft.us/",
            "https://dod-graph.microsoft.us/.default",
            "adnotifications.windowsazure.us",
        ),
        (
            "china",
            "https://login.chinacloudapi.cn/",
            "https://microsoftgraph.chinacloudapi.cn/",
            "https://microsoftgraph.chinacloudapi.cn/.default",
            "adnotifications.windowsazure.cn",
        ),
    ];
    for (cloud, login, graph, scope, connector_host) in cases {
        let endpoints = load(&[("VOUCH__MICROSOFT__CLOUD", cloud)])
            .microsoft
            .endpoints();
        assert_eq!(endpoints.login_url.as_str(), login, "{cloud}");
        assert_eq!(endpoints.graph_url.as_str(), graph, "{cloud}");
        assert_eq!(endpoints.graph_scope, scope, "{cloud}");
        let resource =
            format!("https://{connector_host}/StrongAuthenticationService.svc/Connector");
        assert_eq!(endpoints.mfa_connector_resource, resource, "{cloud}");
        assert_eq!(
            endpoints.mfa_connector_url.as_str(),
            format!("{resource}/"),
            "{cloud}"
        );
    }
    assert_eq!(Config::default().microsoft.cloud, MicrosoftCloud::Global);

    // An address overridden (a proxy) leaves the audience as the cloud says.
    let endpoints = load(&[
        ("VOUCH__MICROSOFT__CLOUD", "usgov"),
        (
            "VOUCH__MICROSOFT__GRAPH_URL",
            "https://egress.internal/graph/",
        ),
        (
            "VOUCH__MICROSOFT__MFA_CONNECTOR_URL",
            "https://egress.internal/mfa/",
        ),
    ])
    .microsoft
    .endpoints();
    assert_eq!(
        endpoints.graph_url.as_str(),
        "https://egress.internal/graph/"
    );
    assert_eq!(endpoints.graph_scope, "https://graph.microsoft.us/.default");
    assert_eq!(
        endpoints.mfa_connector_resource,
        "https://adnotifications.windowsazure.us/StrongAuthenticationService.svc/Connector"
    );
    assert_eq!(
        endpoints.login_url.as_str(),
        "https://login.microsoftonline.us/"
    );

    let err = Config::load_from(ConfigSources {
        file: None,
        env: vec![("VOUCH__MICROSOFT__CLOUD".into(), "mars".into())],
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("microsoft.cloud"), "{err}");
}

// ---------------------------------------------------------------------------------------
// PSAs
// ---------------------------------------------------------------------------------------

async fn connection_of(world: &World, kind: PsaKind) -> PsaConnection {
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

#[tokio::test]
async fn a_connectwise_technicians_email_is_memberinfos_default_email() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let connection = connection_of(&world, PsaKind::ConnectWise).await;
        let hash = world.psa.issue_connectwise_member_hash(sbx::CW_MEMBER_ID);
        let response = world
            .app
            .client
            .post(world.app.url("/api/v1/pod/connectwise/session"))
            .json(&json!({
                "connection_id": connection.id,
                "ticket_id": sbx::CW_TICKET_DANA.to_string(),
                // The browser's claim of the e-mail is not what is recorded.
                "member": {
                    "site": "na.myconnectwise.net", "companyid": sbx::CW_COMPANY_ID,
                    "memberid": sbx::CW_MEMBER_ID, "memberHash": hash,
                    "memberContext": "x", "memberEmail": "claimed@elsewhere.example",
                },
            }))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "{body}");
        let technician = technician::Entity::find()
            .filter(technician::Column::PsaConnectionId.eq(connection.id))
            .filter(technician::Column::PsaMemberId.eq(sbx::CW_MEMBER_ID))
            .one(world.app.store.connection())
            .await
            .unwrap()
            .expect("the technician is recorded");
        assert_eq!(technician.email.as_deref(), Some(sbx::CW_MEMBER_EMAIL));
    })
    .await;
}

#[tokio::test]
async fn a_halo_token_revoked_early_is_replaced_and_the_request_sent_again_once() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let connection = connection_of(&world, PsaKind::HaloPsa).await;
        let halo = world.app.ctx.psa.adapter(PsaKind::HaloPsa).clone();
        let tokens = || world.psa.count(Psa::HaloPsa, "POST", "/auth/token");
        let tickets = || world.psa.count(Psa::HaloPsa, "GET", "/api/Tickets/");

        halo.ticket(&connection, &sbx::HALO_TICKET_DANA.to_string())
            .await
            .expect("a first read, with a new token");
        let (tokens_before, tickets_before) = (tokens(), tickets());

        // Halo forgets the token the adapter holds in its cache.
        world.psa.expire_halo_tokens();
        let ticket = halo
            .ticket(&connection, &sbx::HALO_TICKET_SAM.to_string())
            .await
            .expect("the refused read is sent again with a new token");
        assert_eq!(ticket.ticket_id, sbx::HALO_TICKET_SAM.to_string());
        assert_eq!(tokens(), tokens_before + 1, "one new token");
        assert_eq!(
            tickets(),
            tickets_before + 2,
            "the refused read, then once more"
        );

        // A note (a POST) is sent again the same way, and lands once.
        let notes_before = world.psa.notes(Psa::HaloPsa, sbx::HALO_TICKET_DANA).len();
        world.psa.expire_halo_tokens();
        halo.add_internal_note(&connection, &sbx::HALO_TICKET_DANA.to_string(), "wire test")
            .await
            .expect("the note is written with a new token");
        assert_eq!(tokens(), tokens_before + 2);
        assert_eq!(
            world.psa.notes(Psa::HaloPsa, sbx::HALO_TICKET_DANA).len(),
            notes_before + 1
        );
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// Vouch's own answers
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn vouchs_own_429_says_when_to_try_again_in_a_header_and_in_words() {
    on_every_backend(async |db| {
        let policy = MspPolicy {
            push_limit_count: 1,
            push_limit_window_seconds: 30,
            ..MspPolicy::default()
        };
        let world = World::start(db, policy).await;
        let dana = "dana@contoso.example";
        let start = || {
            world
                .api(reqwest::Method::POST, "/api/v1/verifications")
                .json(&json!({ "tenant_id": DEMO_TENANT_ID, "user": dana, "method": "push" }))
                .send()
        };
        // One push, denied (what push-bombing looks like), and over.
        world.microsoft.script_push(dana, PushScript::Deny);
        let first: Value = start().await.unwrap().json().await.unwrap();
        let id = first["id"].as_str().expect("a verification").to_owned();
        let done: Value = world
            .api(
                reqwest::Method::GET,
                &format!("/api/v1/verifications/{id}?wait_seconds=10"),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(done["status"], "denied", "{done}");

        let refused = start().await.unwrap();
        assert_eq!(refused.status(), 429);
        let seconds: u64 = refused
            .headers()
            .get("retry-after")
            .expect("a Retry-After header")
            .to_str()
            .unwrap()
            .parse()
            .expect("Retry-After in seconds");
        assert!((1..=30).contains(&seconds), "{seconds}");
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["code"], "push_rate_limited");
        let message = body["message"].as_str().unwrap();
        let said = if seconds == 1 {
            "1 second".to_owned()
        } else {
            format!("{seconds} seconds")
        };
        assert!(
            message.contains(&format!("Try again in {said},")),
            "the message and the header agree: {message}"
        );
    })
    .await;
}

#[tokio::test]
async fn the_tenant_name_is_refreshed_when_a_later_integration_can_read_it() {
    on_every_backend(async |db| {
        let microsoft = MicrosoftSandbox::start().await.unwrap();
        let sms = SmsSandbox::start().await.unwrap();
        let app =
            TestApp::spawn_with(db, true, |c| world::configure(c, &microsoft, &sms)).await;
        let msp = app
            .store
            .create_msp(NewMspAccount {
                name: "Northwind IT".into(),
                brand_logo_url: None,
                brand_color: None,
                policy: MspPolicy::default(),
            })
            .await
            .unwrap();
        let (_, key) = app.store.create_api_key(msp.id, "wire").await.unwrap();
        // The first read of the organization (its name and domains) is refused, as for an
        // app without the permission; the users can be read.
        microsoft.inject_fault(
            Service::Graph,
            "/organization",
            Fault::Status {
                status: 403,
                body: r#"{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges to complete the operation.","innerError":{"request-id":"r-403"}}}"#.into(),
                retry_after: None,
            },
            1,
        );
        let connect = |client_id: &str, secret: &str| {
            app.client
                .post(app.url("/api/v1/integrations/identity-management"))
                .bearer_auth(key.expose_secret())
                .json(&json!({
                    "tenant_id": DEMO_TENANT_ID,
                    "client_id": client_id,
                    "client_secret": secret,
                }))
                .send()
        };
        let first: Value = connect(IDENTITY_APP_CLIENT_ID, IDENTITY_APP_SECRET)
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(first["tenant_name"], DEMO_TENANT_ID, "{first}");

        let later: Value = connect(IDENTITY_APP_CLIENT_ID, IDENTITY_APP_SECRET)
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(later["tenant_name"], "Contoso (demo customer)", "{later}");
        let tenants = app.store.list_tenants(msp.id).await.unwrap();
        assert_eq!(tenants.len(), 1, "the same tenant, renamed");
        assert_eq!(tenants[0].display_name, "Contoso (demo customer)");
        assert!(
            tenants[0]
                .verified_domains
                .iter()
                .any(|d| d == "contoso.example"),
            "{:?}",
            tenants[0].verified_domains
        );
    })
    .await;
}
