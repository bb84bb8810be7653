//! A whole Vouch world for end-to-end tests: the Microsoft and SMS sandboxes, Vouch on a
//! test database pointed at them, a demo MSP with an API key, and its tenant connected.

use secrecy::{ExposeSecret, SecretString};
use vouch::config::Config;
use vouch::domain::MspPolicy;
use vouch::sandbox::microsoft::{
    ConsentDecision, DEMO_TENANT_ID, IDENTITY_APP_CLIENT_ID, IDENTITY_APP_SECRET, MicrosoftSandbox,
};
use vouch::sandbox::psa::{PodUrls, PsaSandbox};
use vouch::sandbox::sms::SmsSandbox;
use vouch::store::{
    audit::AuditActor,
    msp::{MspAccount, NewMspAccount},
};

use super::{TestApp, TestDb};

pub struct World {
    pub microsoft: MicrosoftSandbox,
    pub sms: SmsSandbox,
    pub psa: PsaSandbox,
    pub pod_urls: PodUrls,
    pub app: TestApp,
    pub msp: MspAccount,
    pub api_key: String,
}

pub fn configure(config: &mut Config, microsoft: &MicrosoftSandbox, sms: &SmsSandbox) {
    config.microsoft.login_url = Some(microsoft.login_url().parse().unwrap());
    config.microsoft.graph_url = Some(microsoft.graph_url().parse().unwrap());
    config.microsoft.mfa_connector_url = Some(microsoft.mfa_connector_url().parse().unwrap());
    let (id, secret) = microsoft.vouch_app();
    config.microsoft.app_client_id = Some(id);
    config.microsoft.app_client_secret = Some(SecretString::from(secret));
    config.microsoft.request_timeout_seconds = 5;
    config.microsoft.connector_timeout_seconds = 60;
    config.sms.api_url = sms.api_url().parse().unwrap();
    config.sms.account_sid = Some(sms.account_sid());
    config.sms.auth_token = Some(SecretString::from(sms.auth_token()));
    config.sms.from = Some(sms.from_number());
}

impl World {
    /// A fresh world on `db`, with the MSP's `policy`, both integrations connected.
    pub async fn start(db: &TestDb, policy: MspPolicy) -> World {
        Self::start_with(db, policy, |_| {}).await
    }

    /// Like `start`, with Vouch's configuration adjusted after it is pointed at the
    /// sandboxes (timeouts, retry waits...).
    pub async fn start_with(
        db: &TestDb,
        policy: MspPolicy,
        adjust: impl FnOnce(&mut Config),
    ) -> World {
        let microsoft = MicrosoftSandbox::start().await.unwrap();
        let sms = SmsSandbox::start().await.unwrap();
        let app = TestApp::spawn_with(db, true, |c| {
            configure(c, &microsoft, &sms);
            adjust(c);
        })
        .await;
        let msp = app
            .store
            .create_msp(NewMspAccount {
                name: "Northwind IT".into(),
                brand_logo_url: None,
                brand_color: Some("#0b5cad".into()),
                policy,
            })
            .await
            .unwrap();
        let (_, key) = app.store.create_api_key(msp.id, "tests").await.unwrap();
        let psa = PsaSandbox::start().await.unwrap();
        let world = World {
            microsoft,
            sms,
            psa,
            pod_urls: PodUrls::default(),
            app,
            msp,
            api_key: key.expose_secret().to_owned(),
        };
        world.connect_identity_management().await;
        world.connect_authenticator().await;
        let mut world = world;
        let tenant = world
            .app
            .store
            .find_tenant_by_microsoft_id(world.msp.id, DEMO_TENANT_ID)
            .await
            .unwrap()
            .unwrap();
        world.pod_urls = vouch::demo::connect_psa_sandbox(
            &world.app.ctx,
            world.msp.id,
            tenant.id,
            &world.psa,
            &world.app.base_url,
        )
        .await
        .unwrap();
        world
    }

    /// A second Vouch instance on the same database and sandboxes (several instances behind
    /// a load balancer).
    pub async fn second_instance(&self, db: &TestDb) -> TestApp {
        self.second_instance_with(db, |_| {}).await
    }

    /// Like `second_instance`, with its configuration adjusted.
    pub async fn second_instance_with(
        &self,
        db: &TestDb,
        adjust: impl FnOnce(&mut Config),
    ) -> TestApp {
        let key = self.app.ctx.config.encryption.master_key.clone();
        TestApp::spawn_with(db, true, |c| {
            configure(c, &self.microsoft, &self.sms);
            // Instances of one deployment share the master key.
            c.encryption.master_key = key;
            adjust(c);
        })
        .await
    }

    pub fn api(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.api_on(&self.app, method, path)
    }

    pub fn api_on(
        &self,
        app: &TestApp,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        app.client
            .request(method, app.url(path))
            .bearer_auth(&self.api_key)
    }

    /// An approved push verification of `user` (the sandbox phone approves), by its id.
    pub async fn verified(&self, user: &str) -> String {
        self.microsoft
            .script_push(user, vouch::sandbox::microsoft::PushScript::Approve);
        let (status, body) = json_of(
            self.api(reqwest::Method::POST, "/api/v1/verifications")
                .json(&serde_json::json!({
                    "tenant_id": vouch::sandbox::microsoft::DEMO_TENANT_ID,
                    "user": user,
                    "method": "push",
                }))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 202, "{body}");
        let id = body["id"].as_str().unwrap().to_owned();
        let (_, done) = json_of(
            self.api(
                reqwest::Method::GET,
                &format!("/api/v1/verifications/{id}?wait_seconds=10"),
            )
            .send()
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(done["status"], "approved", "{done}");
        id
    }

    /// Resets `user`'s password with `verification_id` under idempotency `key`: the status
    /// and the JSON answer.
    pub async fn reset(
        &self,
        user: &str,
        verification_id: &str,
        key: &str,
    ) -> (u16, serde_json::Value) {
        json_of(
            self.api(reqwest::Method::POST, "/api/v1/password-resets")
                .header("Idempotency-Key", key)
                .json(&serde_json::json!({
                    "tenant_id": vouch::sandbox::microsoft::DEMO_TENANT_ID,
                    "user": user,
                    "verification_id": verification_id,
                    "confirm": true,
                }))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    async fn connect_identity_management(&self) {
        self.app
            .ctx
            .integrations
            .connect_identity_management(
                self.msp.id,
                &AuditActor {
                    kind: vouch::domain::ActorKind::System,
                    id: None,
                    name: None,
                },
                vouch::core::integrations::IdentityManagementInput {
                    tenant: DEMO_TENANT_ID.into(),
                    client_id: IDENTITY_APP_CLIENT_ID.into(),
                    client_secret: SecretString::from(IDENTITY_APP_SECRET.to_owned()),
                    secret_expires_at: None,
                },
            )
            .await
            .expect("identity management connects");
    }

    /// Plays the customer's admin through the real admin-consent redirect.
    async fn connect_authenticator(&self) {
        let url = self
            .app
            .ctx
            .integrations
            .start_authenticator_consent(self.msp.id)
            .await
            .unwrap();
        let callback = self
            .microsoft
            .answer_admin_consent(
                &url,
                DEMO_TENANT_ID,
                "global_admin",
                ConsentDecision::Accept,
            )
            .await
            .unwrap();
        let local = format!(
            "{}{}?{}",
            self.app.base_url,
            callback.path(),
            callback.query().unwrap_or("")
        );
        let page = reqwest::get(&local).await.unwrap().text().await.unwrap();
        assert!(page.contains("Tap to finish onboarding"), "{page}");
    }
}

/// `method path` with the world's API key and `body` (if any) as JSON: the status and the
/// JSON body (`null` when the answer is not JSON).
pub async fn call(
    world: &World,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut request = world.api(method, path);
    if let Some(body) = body {
        request = request.json(&body);
    }
    json_of(request.send().await.unwrap()).await
}

/// The status and JSON body of an answer (`null` when the body is not JSON).
pub async fn json_of(response: reqwest::Response) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}
