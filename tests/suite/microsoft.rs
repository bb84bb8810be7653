//! Vouch's Microsoft clients and the two tenant integrations, through real HTTP against the
//! Microsoft sandbox: every success and error class, throttling, an upstream that never
//! answers, single-flight tokens, and the push with its preferred-method check.

use crate::{backends, common};
use std::time::{Duration, Instant};

use backends::on_every_backend;
use chrono::Utc;
use common::{TestApp, TestDb};
use secrecy::{ExposeSecret, SecretString};
use vouch::config::Config;
use vouch::domain::MspPolicy;
use vouch::microsoft::mfa::PushOutcome;
use vouch::microsoft::token::Audience;
use vouch::microsoft::{
    ClientCredentials, Microsoft, MicrosoftErrorKind, ResettableUser, TenantRef, Upn,
};
use vouch::sandbox::microsoft::{
    ConsentDecision, DEMO_TENANT_ID, Fault, IDENTITY_APP_CLIENT_ID, IDENTITY_APP_SECRET,
    MFA_CLIENT_APP_ID, MicrosoftSandbox, NO_P1_TENANT_ID, PushScript, SandboxApp, Service,
};
use vouch::store::msp::NewMspAccount;
use vouch::telemetry::Metrics;

fn point_at(sandbox: &MicrosoftSandbox, config: &mut Config) {
    config.microsoft.login_url = Some(sandbox.login_url().parse().unwrap());
    config.microsoft.graph_url = Some(sandbox.graph_url().parse().unwrap());
    config.microsoft.mfa_connector_url = Some(sandbox.mfa_connector_url().parse().unwrap());
    let (id, secret) = sandbox.vouch_app();
    config.microsoft.app_client_id = Some(id);
    config.microsoft.app_client_secret = Some(SecretString::from(secret));
    config.microsoft.request_timeout_seconds = 2;
    config.microsoft.connector_timeout_seconds = 10;
}

fn client(sandbox: &MicrosoftSandbox) -> (Microsoft, Metrics) {
    let mut config = Config::default();
    point_at(sandbox, &mut config);
    let metrics = Metrics::new();
    (
        Microsoft::new(&config.microsoft, config.cache.microsoft_tokens, &metrics),
        metrics,
    )
}

fn calls_to(sandbox: &MicrosoftSandbox, service: Service) -> usize {
    sandbox
        .requests()
        .iter()
        .filter(|r| r.service == service)
        .count()
}

fn identity_credentials() -> ClientCredentials {
    ClientCredentials {
        tenant: TenantRef::parse(DEMO_TENANT_ID).unwrap(),
        client_id: IDENTITY_APP_CLIENT_ID.into(),
        client_secret: SecretString::from(IDENTITY_APP_SECRET.to_owned()),
    }
}

fn credentials(tenant: &str, client_id: &str, secret: &str) -> ClientCredentials {
    ClientCredentials {
        tenant: TenantRef::parse(tenant).unwrap(),
        client_id: client_id.into(),
        client_secret: SecretString::from(secret.to_owned()),
    }
}

fn limited_app(
    sandbox: &MicrosoftSandbox,
    client_id: &str,
    permissions: &[&str],
) -> ClientCredentials {
    sandbox.add_app(SandboxApp {
        client_id: client_id.into(),
        secret: "limited-secret".into(),
        secret_expires_at: None,
        tenant_id: DEMO_TENANT_ID.into(),
        permissions: permissions.iter().map(|p| p.to_string()).collect(),
    });
    credentials(DEMO_TENANT_ID, client_id, "limited-secret")
}

#[tokio::test]
async fn a_thousand_concurrent_token_requests_make_one_token_call() {
    let sandbox = MicrosoftSandbox::start().await.unwrap();
    let (microsoft, _) = client(&sandbox);
    let creds = identity_credentials();
    let calls = (0..1000).map(|_| {
        let microsoft = microsoft.clone();
        let creds = creds.clone();
        tokio::spawn(async move { microsoft.tokens.token(&creds, Audience::Graph).await })
    });
    for result in futures_util::future::join_all(calls).await {
        result.unwrap().expect("every caller gets the token");
    }
    assert_eq!(
        sandbox.count(Service::Login, "POST", "/oauth2/v2.0/token"),
        1
    );
    // Still cached for the next caller.
    microsoft
        .tokens
        .token(&creds, Audience::Graph)
        .await
        .unwrap();
    assert_eq!(
        sandbox.count(Service::Login, "POST", "/oauth2/v2.0/token"),
        1
    );
}

#[tokio::test]
async fn token_errors_are_specific() {
    let sandbox = MicrosoftSandbox::start().await.unwrap();
    let (microsoft, _) = client(&sandbox);
    let kind = |result: Result<_, vouch::microsoft::MicrosoftError>| result.err().unwrap().kind;

    let wrong_secret = credentials(DEMO_TENANT_ID, IDENTITY_APP_CLIENT_ID, "not-the-secret");
    let err = microsoft
        .tokens
        .token(&wrong_secret, Audience::Graph)
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind, MicrosoftErrorKind::InvalidClientSecret);
    assert_eq!(err.code(), "microsoft_invalid_client_secret");
    assert!(
        err.request_id.is_some(),
        "Microsoft's trace id is kept for support"
    );
    assert!(!err.message().contains("not-the-secret"));

    sandbox.add_app(SandboxApp {
        client_id: "0e0e0e0e-0000-4000-8000-000000000001".into(),
        secret: "old-secret".into(),
        secret_expires_at: Some(Utc::now() - chrono::Duration::days(1)),
        tenant_id: DEMO_TENANT_ID.into(),
        permissions: vec!["User.Read.All".into()],
    });
    let expired = credentials(
        DEMO_TENANT_ID,
        "0e0e0e0e-0000-4000-8000-000000000001",
        "old-secret",
    );
    assert_eq!(
        kind(microsoft.tokens.token(&expired, Audience::Graph).await),
        MicrosoftErrorKind::ExpiredClientSecret
    );

    let not_in_tenant = credentials(NO_P1_TENANT_ID, IDENTITY_APP_CLIENT_ID, IDENTITY_APP_SECRET);
    assert_eq!(
        kind(
            microsoft
                .tokens
                .token(&not_in_tenant, Audience::Graph)
                .await
        ),
        MicrosoftErrorKind::AppNotConsented
    );

    let no_tenant = credentials(
        "00000000-0000-4000-8000-00000000dead",
        IDENTITY_APP_CLIENT_ID,
        IDENTITY_APP_SECRET,
    );
    assert_eq!(
        kind(microsoft.tokens.token(&no_tenant, Audience::Graph).await),
        MicrosoftErrorKind::TenantNotFound
    );

    // A failed attempt is not cached: the right secret works at once.
    microsoft
        .tokens
        .token(&identity_credentials(), Audience::Graph)
        .await
        .unwrap();
}

#[tokio::test]
async fn users_are_found_by_upn_mail_and_proxy_address() {
    let sandbox = MicrosoftSandbox::start().await.unwrap();
    let (microsoft, _) = client(&sandbox);
    let creds = identity_credentials();
    let dana = microsoft
        .graph
        .user(&creds, "dana@contoso.example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dana.display_name.as_deref(), Some("Dana Whitfield"));
    assert!(!dana.is_synced_from_on_premises());
    assert!(
        microsoft
            .graph
            .user(&creds, "nobody@contoso.example")
            .await
            .unwrap()
            .is_none()
    );

    let by_mail = microsoft
        .graph
        .users_by_mail(&creds, "lee.chen@contoso.example")
        .await
        .unwrap();
    assert_eq!(by_mail.len(), 1);
    assert_eq!(by_mail[0].user_principal_name, "lee@contoso.example");
    let by_proxy = microsoft
        .graph
        .users_by_proxy_address(&creds, "LEE.CHEN@contoso.example")
        .await
        .unwrap();
    assert_eq!(by_proxy.len(), 1);
    assert!(
        microsoft
            .graph
            .users_by_mail(&creds, "o'neil@contoso.example")
            .await
            .unwrap()
            .is_empty()
    );

    let phones = microsoft
        .graph
        .phone_methods(&creds, &dana.id)
        .await
        .unwrap();
    assert!(
        phones
            .iter()
            .any(|p| p.phone_type == "mobile" && p.phone_number == "+1 2065550101")
    );
    assert_eq!(
        microsoft
            .graph
            .authenticator_methods(&creds, &dana.id)
            .await
            .unwrap()
            .len(),
        1
    );
    let noel = microsoft
        .graph
        .user(&creds, "noel@contoso.example")
        .await
        .unwrap()
        .unwrap();
    assert!(
        microsoft
            .graph
            .phone_methods(&creds, &noel.id)
            .await
            .unwrap()
            .is_empty()
    );

    let ada = microsoft
        .graph
        .user(&creds, "ada@contoso.example")
        .await
        .unwrap()
        .unwrap();
    let roles = microsoft
        .graph
        .directory_roles(&creds, &ada.id)
        .await
        .unwrap();
    assert_eq!(
        roles[0].display_name.as_deref(),
        Some("Global Administrator")
    );
    assert!(microsoft.graph.has_entra_p1(&creds).await.unwrap());
    let org = microsoft.graph.organization(&creds).await.unwrap().unwrap();
    assert_eq!(org.id, DEMO_TENANT_ID);
}

#[tokio::test]
async fn a_missing_permission_is_named() {
    let sandbox = MicrosoftSandbox::start().await.unwrap();
    let (microsoft, _) = client(&sandbox);
    let creds = limited_app(
        &sandbox,
        "0e0e0e0e-0000-4000-8000-000000000002",
        &["User.Read.All"],
    );
    let dana = microsoft
        .graph
        .user(&creds, "dana@contoso.example")
        .await
        .unwrap()
        .unwrap();
    let err = microsoft
        .graph
        .phone_methods(&creds, &dana.id)
        .await
        .unwrap_err();
    assert_eq!(
        err.kind,
        MicrosoftErrorKind::MissingPermission {
            permission: "UserAuthenticationMethod.Read.All"
        }
    );
    assert!(err.message().contains("UserAuthenticationMethod.Read.All"));
    assert!(err.request_id.is_some());
    let err = microsoft
        .graph
        .reset_password(
            &creds,
            &dana.id,
            &SecretString::from("Xk3!vB9#qLm2".to_owned()),
            true,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, vouch::microsoft::PasswordChangeError::NotApplied(_)),
        "a 403 is a definite refusal: {err:?}"
    );
    assert_eq!(
        err.error().kind,
        MicrosoftErrorKind::MissingPermission {
            permission: "User-PasswordProfile.ReadWrite.All"
        }
    );
}

#[tokio::test]
async fn password_resets_and_each_refusal() {
    let sandbox = MicrosoftSandbox::start().await.unwrap();
    let (microsoft, _) = client(&sandbox);
    let creds = identity_credentials();
    let password = SecretString::from("Vq7#mT2!pLx9zR".to_owned());
    let dana = microsoft
        .check_resettable(&creds, "dana@contoso.example", false)
        .await
        .unwrap()
        .expect("Dana exists");
    microsoft
        .reset_password_checked(&creds, &dana, &password, true)
        .await
        .unwrap();
    assert_eq!(
        sandbox.user_password(DEMO_TENANT_ID, "dana@contoso.example"),
        Some((password.expose_secret().to_owned(), true))
    );

    let refusal =
        |r: Result<Option<ResettableUser>, vouch::microsoft::MicrosoftError>| r.unwrap_err().kind;
    assert_eq!(
        refusal(
            microsoft
                .check_resettable(&creds, "omar@contoso.example", false)
                .await
        ),
        MicrosoftErrorKind::UserSyncedFromOnPremises
    );
    assert!(matches!(
        refusal(
            microsoft
                .check_resettable(&creds, "ada@contoso.example", false)
                .await
        ),
        MicrosoftErrorKind::UserHoldsAdminRole { .. }
    ));
    assert!(
        microsoft
            .check_resettable(&creds, "ada@contoso.example", true)
            .await
            .unwrap()
            .is_some(),
        "an MSP may allow resetting admins"
    );
    assert!(
        microsoft
            .check_resettable(&creds, "ghost@contoso.example", false)
            .await
            .unwrap()
            .is_none()
    );
    let lee = microsoft
        .check_resettable(&creds, "lee@contoso.example", false)
        .await
        .unwrap()
        .expect("Lee exists");
    let weak = SecretString::from("password".to_owned());
    assert_eq!(
        microsoft
            .reset_password_checked(&creds, &lee, &weak, true)
            .await
            .unwrap_err()
            .error()
            .kind,
        MicrosoftErrorKind::PasswordRejectedByPolicy
    );
    assert_eq!(
        sandbox.user_password(DEMO_TENANT_ID, "omar@contoso.example"),
        None
    );
    assert_eq!(
        sandbox.user_password(DEMO_TENANT_ID, "ada@contoso.example"),
        None,
        "refused before any PATCH"
    );
}

#[tokio::test]
async fn throttling_honours_retry_after_and_stays_bounded() {
    let sandbox = MicrosoftSandbox::start().await.unwrap();
    let (microsoft, metrics) = client(&sandbox);
    let creds = identity_credentials();
    microsoft
        .tokens
        .token(&creds, Audience::Graph)
        .await
        .unwrap();
    let throttled = Fault::Status {
        status: 429,
        body: r#"{"error":{"code":"TooManyRequests","message":"Too many requests","innerError":{"request-id":"r-429"}}}"#.into(),
        retry_after: Some(1),
    };

    sandbox.inject_fault(Service::Graph, "/users/dana", throttled.clone(), 2);
    let started = Instant::now();
    let user = microsoft
        .graph
        .user(&creds, "dana@contoso.example")
        .await
        .unwrap();
    assert!(user.is_some());
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "waited as told: {:?}",
        started.elapsed()
    );
    assert_eq!(sandbox.count(Service::Graph, "GET", "/users/dana"), 3);

    sandbox.clear_requests();
    sandbox.inject_fault(Service::Graph, "/users/sam", throttled, 10);
    let err = microsoft
        .graph
        .user(&creds, "sam@contoso.example")
        .await
        .unwrap_err();
    assert_eq!(
        err.kind,
        MicrosoftErrorKind::Throttled {
            retry_after: Some(Duration::from_secs(1))
        }
    );
    assert_eq!(err.request_id.as_deref(), Some("r-429"));
    assert_eq!(
        sandbox.count(Service::Graph, "GET", "/users/sam"),
        4,
        "1 try + 3 bounded retries"
    );
    assert!(
        metrics.render().contains(
            r#"vouch_upstream_calls_total{outcome="throttled",service="microsoft_graph"}"#
        )
    );

    sandbox.inject_fault(
        Service::Graph,
        "/users/lee",
        Fault::Status {
            status: 503,
            body: "{}".into(),
            retry_after: None,
        },
        1,
    );
    assert!(
        microsoft
            .graph
            .user(&creds, "lee@contoso.example")
            .await
            .unwrap()
            .is_some()
    );
    sandbox.inject_fault(
        Service::Graph,
        "/users/lee",
        Fault::Status {
            status: 500,
            body: "{}".into(),
            retry_after: None,
        },
        1,
    );
    let err = microsoft
        .graph
        .user(&creds, "lee@contoso.example")
        .await
        .unwrap_err();
    assert_eq!(
        err.kind,
        MicrosoftErrorKind::Unavailable { status: Some(500) }
    );
}

#[tokio::test]
async fn an_upstream_that_never_answers_times_out() {
    let sandbox = MicrosoftSandbox::start().await.unwrap();
    let (microsoft, metrics) = client(&sandbox);
    let creds = identity_credentials();
    microsoft
        .tokens
        .token(&creds, Audience::Graph)
        .await
        .unwrap();
    sandbox.inject_fault(Service::Graph, "/users/", Fault::Hang, 1);
    let started = Instant::now();
    let err = microsoft
        .graph
        .user(&creds, "dana@contoso.example")
        .await
        .unwrap_err();
    assert_eq!(err.kind, MicrosoftErrorKind::TimedOut);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(err.code(), "microsoft_timed_out");
    assert!(
        metrics
            .render()
            .contains(r#"outcome="timeout",service="microsoft_graph""#)
    );

    let (dead, _) = {
        let mut config = Config::default();
        config.microsoft.login_url = Some("http://127.0.0.1:9/".parse().unwrap());
        let metrics = Metrics::new();
        (
            Microsoft::new(&config.microsoft, config.cache.microsoft_tokens, &metrics),
            metrics,
        )
    };
    let err = dead
        .tokens
        .token(&creds, Audience::Graph)
        .await
        .unwrap_err();
    assert_eq!(err.kind, MicrosoftErrorKind::Unavailable { status: None });
}

/// Gives the demo tenant a connector credential, as the Authenticator onboarding does.
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
        permissions: vouch::sandbox::microsoft::VOUCH_APP_PERMISSIONS
            .iter()
            .map(|p| p.to_string())
            .collect(),
    });
    let vouch = credentials(DEMO_TENANT_ID, &vouch_id, &vouch_secret);
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
            "test",
            Utc::now() + chrono::Duration::days(30),
        )
        .await
        .unwrap();
    credentials(
        DEMO_TENANT_ID,
        MFA_CLIENT_APP_ID,
        credential.secret_text.expose_secret(),
    )
}

#[tokio::test]
async fn pushes_classify_every_outcome_and_the_mismatch_sends_none() {
    let sandbox = MicrosoftSandbox::start().await.unwrap();
    let (microsoft, _) = client(&sandbox);
    let graph = identity_credentials();
    let connector = connector_credentials(&microsoft, &sandbox).await;
    let push = |upn: &'static str| {
        let microsoft = microsoft.clone();
        let graph = graph.clone();
        let connector = connector.clone();
        async move {
            let user = microsoft.graph.user(&graph, upn).await.unwrap().unwrap();
            let pushable = microsoft
                .check_push_is_default(&graph, &user.id, Upn::parse(upn).unwrap(), true)
                .await?;
            microsoft.push_checked(&connector, &pushable).await
        }
    };

    sandbox.script_push("dana@contoso.example", PushScript::Approve);
    assert_eq!(
        push("dana@contoso.example").await.unwrap().outcome,
        PushOutcome::Approved
    );

    // Warm caches: one Graph read (the preference) and one connector call per push.
    let dana = microsoft
        .graph
        .user(&graph, "dana@contoso.example")
        .await
        .unwrap()
        .unwrap();
    sandbox.clear_requests();
    sandbox.script_push("dana@contoso.example", PushScript::Deny);
    let pushable = microsoft
        .check_push_is_default(
            &graph,
            &dana.id,
            Upn::parse("dana@contoso.example").unwrap(),
            true,
        )
        .await
        .unwrap();
    let denied = microsoft.push_checked(&connector, &pushable).await.unwrap();
    assert_eq!(denied.outcome, PushOutcome::Denied);
    assert_eq!(
        sandbox.count(Service::Mfa, "POST", "BeginTwoWayAuthentication"),
        1
    );
    assert_eq!(calls_to(&sandbox, Service::Graph), 1);
    assert_eq!(
        sandbox.count(Service::Graph, "GET", "/signInPreferences"),
        1
    );
    assert_eq!(calls_to(&sandbox, Service::Login), 0);

    sandbox.clear_requests();
    let err = push("sam@contoso.example").await.unwrap_err();
    assert_eq!(
        err.kind,
        MicrosoftErrorKind::PreferredMethodMismatch {
            current_method: "sms".into(),
            can_fix: true
        }
    );
    assert!(err.message().contains("Default sign-in method"));
    assert_eq!(calls_to(&sandbox, Service::Mfa), 0, "no push at all");

    sandbox.script_push(
        "dana@contoso.example",
        PushScript::ApproveWithOtherUpn("eve@contoso.example".into()),
    );
    assert!(matches!(
        push("dana@contoso.example").await.unwrap().outcome,
        PushOutcome::UpnMismatch { .. }
    ));
    sandbox.script_push("dana@contoso.example", PushScript::ReportFraud);
    assert_eq!(
        push("dana@contoso.example").await.unwrap().outcome,
        PushOutcome::FraudReported
    );
    assert_eq!(
        push("noel@contoso.example").await.unwrap().outcome,
        PushOutcome::NoMethodRegistered
    );
    assert_eq!(
        push("blocked@contoso.example").await.unwrap().outcome,
        PushOutcome::UserBlocked
    );

    sandbox.set_push_timeout(Duration::from_millis(300));
    sandbox.script_push("dana@contoso.example", PushScript::NeverAnswer);
    assert_eq!(
        push("dana@contoso.example").await.unwrap().outcome,
        PushOutcome::NoResponse
    );

    // A push answered by a person on the phone page.
    sandbox.set_push_timeout(Duration::from_secs(5));
    let waiting = tokio::spawn(push("lee@contoso.example"));
    let deadline = Instant::now() + Duration::from_secs(3);
    let pending = loop {
        if let Some(p) = sandbox.pending_pushes().into_iter().next() {
            break p;
        }
        assert!(Instant::now() < deadline, "the push reached the phone");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(pending.upn, "lee@contoso.example");
    assert!(sandbox.answer_push(&pending.id, vouch::sandbox::microsoft::PushAnswer::Approve));
    assert_eq!(
        waiting.await.unwrap().unwrap().outcome,
        PushOutcome::Approved
    );
}

// --------------------------------------------------------------------------------------
// The integrations, through Vouch's HTTP API, on every database backend
// --------------------------------------------------------------------------------------

struct Integrated {
    sandbox: MicrosoftSandbox,
    app: TestApp,
    api_key: String,
}

/// Vouch on `db`, pointed at a fresh Microsoft sandbox, with one MSP and its API key.
async fn integrated(db: &TestDb) -> Integrated {
    let sandbox = MicrosoftSandbox::start().await.unwrap();
    let app = TestApp::spawn_with(db, true, |config| point_at(&sandbox, config)).await;
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
    let (_, key) = app.store.create_api_key(msp.id, "tests").await.unwrap();
    Integrated {
        sandbox,
        app,
        api_key: key.expose_secret().to_owned(),
    }
}

impl Integrated {
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.app
            .client
            .request(method, self.app.url(path))
            .bearer_auth(&self.api_key)
    }

    async fn list(&self) -> Vec<serde_json::Value> {
        let response = self
            .request(reqwest::Method::GET, "/api/v1/integrations")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Plays the customer's admin on the sandbox consent page; returns Vouch's callback page.
    async fn consent(&self, tenant: &str, role: &str, decision: ConsentDecision) -> String {
        let link: serde_json::Value = self
            .request(
                reqwest::Method::POST,
                "/api/v1/integrations/authenticator/consent",
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let url = url::Url::parse(link["url"].as_str().unwrap()).unwrap();
        let query: std::collections::HashMap<String, String> =
            url.query_pairs().into_owned().collect();
        assert_eq!(
            query["redirect_uri"],
            format!(
                "{}/microsoft/consent/callback",
                self.app
                    .ctx
                    .config
                    .http
                    .public_url
                    .as_str()
                    .trim_end_matches('/')
            )
        );
        let callback = self
            .sandbox
            .answer_admin_consent(&url, tenant, role, decision)
            .await
            .unwrap();
        // The test's Vouch listens on a port the public URL does not know; follow by path.
        let local = format!(
            "{}{}?{}",
            self.app.base_url,
            callback.path(),
            callback.query().unwrap_or("")
        );
        let response = reqwest::get(&local).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = response.text().await.unwrap();
        // Replaying the same callback must not work twice.
        let replay = reqwest::get(&local).await.unwrap().text().await.unwrap();
        assert!(replay.contains("consent_state_invalid"), "{replay}");
        body
    }
}

#[tokio::test]
async fn authenticator_onboarding_by_admin_consent() {
    on_every_backend(async |db| {
        let env = integrated(db).await;
        let page = env
            .consent(DEMO_TENANT_ID, "cloud_app_admin", ConsentDecision::Accept)
            .await;
        assert!(page.contains("Tap to finish onboarding"), "{page}");
        assert!(page.contains("Contoso"), "{page}");
        let list = env.list().await;
        assert_eq!(list.len(), 1);
        assert_eq!(list[0]["kind"], "authenticator");
        assert_eq!(list[0]["status"], "active");
        assert_eq!(list[0]["client_id"], MFA_CLIENT_APP_ID);
        assert_eq!(list[0]["expiry"], "ok");
        assert!(list[0]["days_left"].as_i64().unwrap() >= 729);
        assert!(list[0].get("secret").is_none());
        assert_eq!(env.sandbox.count(Service::Graph, "POST", "/addPassword"), 1);

        // The stored connector credential really works for a push.
        let id = list[0]["id"].as_str().unwrap();
        let recheck = env
            .request(
                reqwest::Method::POST,
                &format!("/api/v1/integrations/{id}/recheck"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(recheck.status(), 200);
        let body: serde_json::Value = recheck.json().await.unwrap();
        assert_eq!(body["last_check_code"], "ok");

        // Renewal before the end date replaces the credential.
        let renewed = env
            .app
            .ctx
            .integrations
            .renew_connector_credentials(Utc::now() + chrono::Duration::days(720))
            .await
            .unwrap();
        assert_eq!(renewed, 1);
        assert_eq!(env.sandbox.count(Service::Graph, "POST", "/addPassword"), 2);
        assert_eq!(env.list().await[0]["last_check_code"], "renewed");
        assert_eq!(
            env.app
                .ctx
                .integrations
                .renew_connector_credentials(Utc::now())
                .await
                .unwrap(),
            0
        );
    })
    .await;
}

#[tokio::test]
async fn authenticator_onboarding_failures_name_the_prerequisite() {
    on_every_backend(async |db| {
        let env = integrated(db).await;
        let page = env
            .consent(DEMO_TENANT_ID, "user", ConsentDecision::Accept)
            .await;
        assert!(page.contains("consent_admin_lacked_role"), "{page}");
        assert!(page.contains("Cloud Application Administrator"), "{page}");
        let page = env
            .consent(DEMO_TENANT_ID, "global_admin", ConsentDecision::Cancel)
            .await;
        assert!(page.contains("consent_refused"), "{page}");
        assert!(env.list().await.is_empty());

        let page = env
            .consent(NO_P1_TENANT_ID, "global_admin", ConsentDecision::Accept)
            .await;
        assert!(page.contains("microsoft_no_p1_licence"), "{page}");
        assert!(page.contains("P1"), "{page}");
        let list = env.list().await;
        assert_eq!(list[0]["status"], "failed");
        assert_eq!(list[0]["last_check_code"], "microsoft_no_p1_licence");
        assert_eq!(env.sandbox.count(Service::Graph, "POST", "/addPassword"), 0);

        // A forged or unknown state is refused outright.
        let forged = reqwest::get(format!(
            "{}/microsoft/consent/callback?admin_consent=True&tenant={DEMO_TENANT_ID}&state=forged",
            env.app.base_url
        ))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
        assert!(forged.contains("consent_state_invalid"));
    })
    .await;
}

#[tokio::test]
async fn identity_management_is_proven_before_it_is_saved() {
    on_every_backend(async |db| {
        let env = integrated(db).await;
        let connect = |secret: &'static str, expires: Option<chrono::DateTime<Utc>>| {
            env.request(
                reqwest::Method::POST,
                "/api/v1/integrations/identity-management",
            )
            .json(&serde_json::json!({
                "tenant_id": DEMO_TENANT_ID,
                "client_id": IDENTITY_APP_CLIENT_ID,
                "client_secret": secret,
                "secret_expires_at": expires,
            }))
            .send()
        };

        let refused = connect("wrong-secret", None).await.unwrap();
        assert_eq!(refused.status(), 400);
        let body: serde_json::Value = refused.json().await.unwrap();
        assert_eq!(body["code"], "microsoft_invalid_client_secret");
        assert!(!body["message"].as_str().unwrap().contains("wrong-secret"));
        assert!(env.list().await.is_empty(), "nothing saved that failed");

        let past = connect(
            IDENTITY_APP_SECRET,
            Some(Utc::now() - chrono::Duration::days(1)),
        )
        .await
        .unwrap();
        assert_eq!(past.status(), 400);
        assert_eq!(
            past.json::<serde_json::Value>().await.unwrap()["code"],
            "invalid_request"
        );

        let created = connect(
            IDENTITY_APP_SECRET,
            Some(Utc::now() + chrono::Duration::days(10)),
        )
        .await
        .unwrap();
        assert_eq!(created.status(), 201);
        let integration: serde_json::Value = created.json().await.unwrap();
        assert_eq!(integration["kind"], "identity_management");
        assert_eq!(integration["tenant_name"], "Contoso (demo customer)");
        assert_eq!(integration["expiry"], "expiring_soon");
        assert!(
            integration["warning"]
                .as_str()
                .unwrap()
                .contains("expires in")
        );
        let metrics = env
            .app
            .client
            .get(env.app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("vouch_integration_secret_days_left"),
            "{metrics}"
        );

        // The default expiry is 730 days.
        let replaced = connect(IDENTITY_APP_SECRET, None).await.unwrap();
        let integration: serde_json::Value = replaced.json().await.unwrap();
        assert!(integration["days_left"].as_i64().unwrap() >= 729);
        assert_eq!(
            env.list().await.len(),
            1,
            "one integration of a kind per tenant"
        );

        let id = integration["id"].as_str().unwrap().to_owned();
        let unauthenticated = env
            .app
            .client
            .delete(env.app.url(&format!("/api/v1/integrations/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(unauthenticated.status(), 401);
        assert_eq!(
            unauthenticated.json::<serde_json::Value>().await.unwrap()["code"],
            "unauthorized"
        );

        // Another MSP cannot see or remove it.
        let other = env
            .app
            .store
            .create_msp(NewMspAccount {
                name: "Other".into(),
                brand_logo_url: None,
                brand_color: None,
                policy: MspPolicy::default(),
            })
            .await
            .unwrap();
        let (_, other_key) = env
            .app
            .store
            .create_api_key(other.id, "other")
            .await
            .unwrap();
        let foreign = env
            .app
            .client
            .delete(env.app.url(&format!("/api/v1/integrations/{id}")))
            .bearer_auth(other_key.expose_secret())
            .send()
            .await
            .unwrap();
        assert_eq!(foreign.status(), 404);

        let removed = env
            .request(
                reqwest::Method::DELETE,
                &format!("/api/v1/integrations/{id}"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(removed.status(), 204);
        assert!(env.list().await.is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_recheck_reports_an_expired_secret() {
    on_every_backend(async |db| {
        let env = integrated(db).await;
        let client_id = "0e0e0e0e-0000-4000-8000-000000000003";
        env.sandbox.add_app(SandboxApp {
            client_id: client_id.into(),
            secret: "rotating-secret".into(),
            secret_expires_at: Some(Utc::now() + chrono::Duration::seconds(2)),
            tenant_id: DEMO_TENANT_ID.into(),
            permissions: vec!["User.Read.All".into()],
        });
        let created = env
            .request(
                reqwest::Method::POST,
                "/api/v1/integrations/identity-management",
            )
            .json(&serde_json::json!({
                "tenant_id": "contoso.example",
                "client_id": client_id,
                "client_secret": "rotating-secret",
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        let id = created.json::<serde_json::Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        tokio::time::sleep(Duration::from_millis(2100)).await;
        // A re-check asks Microsoft afresh rather than trusting a cached token.
        let checked: serde_json::Value = env
            .request(
                reqwest::Method::POST,
                &format!("/api/v1/integrations/{id}/recheck"),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(checked["status"], "failed");
        assert_eq!(
            checked["last_check_code"],
            "microsoft_client_secret_expired"
        );
        assert!(
            checked["last_check_message"]
                .as_str()
                .unwrap()
                .contains("expired")
        );
    })
    .await;
}

/// The reset's reads come in one `$batch`, and each part still fails as its own call would:
/// an app without `Directory.Read.All` is told so (not "no such user"), a missing user is
/// `None` whatever else was refused, a refused phone read is kept for the caller, and a failed
/// envelope is the error a single call would have had.
#[tokio::test]
async fn the_reset_reads_batch_keeps_each_answers_own_failure() {
    let sandbox = MicrosoftSandbox::start().await.unwrap();
    let (microsoft, _) = client(&sandbox);
    let no_roles = limited_app(
        &sandbox,
        "0e0e0e0e-0000-4000-8000-0000000000b1",
        &["User.Read.All", "UserAuthenticationMethod.Read.All"],
    );
    let err = microsoft
        .check_resettable(&no_roles, "dana@contoso.example", false)
        .await
        .unwrap_err();
    assert_eq!(
        err.kind,
        MicrosoftErrorKind::MissingPermission {
            permission: "Directory.Read.All"
        }
    );
    assert!(err.request_id.is_some(), "the inner answer's request id");
    assert!(
        microsoft
            .check_resettable(&no_roles, "ghost@contoso.example", false)
            .await
            .unwrap()
            .is_none(),
        "a missing user is told apart from a refused roles read"
    );
    assert!(
        microsoft
            .check_resettable(&no_roles, "dana@contoso.example", true)
            .await
            .unwrap()
            .is_some(),
        "roles are not read when admins may be reset"
    );

    let no_phones = limited_app(
        &sandbox,
        "0e0e0e0e-0000-4000-8000-0000000000b2",
        &["User.Read.All", "Directory.Read.All"],
    );
    let dana = microsoft
        .check_resettable(&no_phones, "dana@contoso.example", false)
        .await
        .unwrap()
        .expect("Dana exists");
    assert_eq!(
        dana.phone_methods().unwrap_err().kind,
        MicrosoftErrorKind::MissingPermission {
            permission: "UserAuthenticationMethod.Read.All"
        }
    );

    let creds = identity_credentials();
    let dana = microsoft
        .check_resettable(&creds, "dana@contoso.example", false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dana.phone_methods().unwrap()[0].phone_type, "mobile");

    sandbox.clear_requests();
    sandbox.inject_fault(
        Service::Graph,
        "/$batch",
        Fault::Status {
            status: 500,
            body: r#"{"error":{"code":"generalException","message":"boom"}}"#.into(),
            retry_after: None,
        },
        1,
    );
    let err = microsoft
        .check_resettable(&creds, "dana@contoso.example", false)
        .await
        .unwrap_err();
    assert_eq!(
        err.kind,
        MicrosoftErrorKind::Unavailable { status: Some(500) }
    );
    assert_eq!(sandbox.count(Service::Graph, "POST", "/$batch"), 1);
    assert_eq!(sandbox.count(Service::Graph, "GET", "/users/"), 0);
}
