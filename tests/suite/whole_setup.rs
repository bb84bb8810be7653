//! The whole set-up as an MSP admin does it, with no store call: `vouch serve` on a fresh
//! database beside the sandboxes, and then the command line and the API alone. The admin
//! creates the MSP and an admin key, connects the customer's tenant, connects and tests all
//! three PSAs, pastes what `setup` gives into each, accepts the suggested mapping for Contoso,
//! opens each pod by the pod URL it was given, and verifies and resets from it. On every
//! backend.

use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use vouch::sandbox::microsoft::{
    ConsentDecision, DEMO_TENANT_ID, IDENTITY_APP_CLIENT_ID, IDENTITY_APP_SECRET, MicrosoftSandbox,
    PushScript,
};
use vouch::sandbox::psa::{self as sbx, PodUrls, Psa, PsaSandbox};
use vouch::sandbox::sms::SmsSandbox;

use crate::backends::on_every_backend;
use crate::common::world::json_of;
use crate::common::{Backend, TestDb, free_port};
use crate::pods::{iframe_src, token_of};

const MSP: &str = "Northwind IT";
const DANA: &str = "dana@contoso.example";
const DANA_MOBILE: &str = "+12065550101";

/// One Vouch deployment as an admin configures it: environment variables only.
struct Deployment {
    env: Vec<(String, String)>,
    base: String,
    _dir: tempfile::TempDir,
}

impl Deployment {
    fn new(db: &TestDb, microsoft: &MicrosoftSandbox, sms: &SmsSandbox) -> Deployment {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let database_url = match db.backend {
            Backend::Sqlite => format!("{}?mode=rwc", db.url),
            Backend::Postgres => db.url.clone(),
        };
        let (app_id, app_secret) = microsoft.vouch_app();
        let key = vouch::store::crypto::MasterKey::generate_encoded();
        let env = [
            ("VOUCH__DATABASE__URL", database_url),
            (
                "VOUCH__ENCRYPTION__MASTER_KEY",
                key.expose_secret().to_owned(),
            ),
            ("VOUCH__HTTP__BIND", format!("127.0.0.1:{port}")),
            ("VOUCH__HTTP__PUBLIC_URL", format!("{base}/")),
            ("VOUCH__MICROSOFT__LOGIN_URL", microsoft.login_url()),
            ("VOUCH__MICROSOFT__GRAPH_URL", microsoft.graph_url()),
            (
                "VOUCH__MICROSOFT__MFA_CONNECTOR_URL",
                microsoft.mfa_connector_url(),
            ),
            ("VOUCH__MICROSOFT__APP_CLIENT_ID", app_id),
            ("VOUCH__MICROSOFT__APP_CLIENT_SECRET", app_secret),
            ("VOUCH__SMS__API_URL", sms.api_url()),
            ("VOUCH__SMS__ACCOUNT_SID", sms.account_sid()),
            ("VOUCH__SMS__AUTH_TOKEN", sms.auth_token()),
            ("VOUCH__SMS__FROM", sms.from_number()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        Deployment {
            env,
            base,
            _dir: dir,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_vouch"));
        command
            .args(args)
            .current_dir(self._dir.path())
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// Runs a command to its end; its standard output, or a panic with its error output.
    async fn run(&self, args: &[&str], secret: Option<&str>) -> String {
        let mut command = self.command(args);
        if let Some(secret) = secret {
            command.env("VOUCH_PSA_SECRET", secret);
        }
        let output = command.output().await.unwrap();
        assert!(
            output.status.success(),
            "vouch {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// `vouch serve`, ready.
    async fn serve(&self) -> Child {
        let mut child = self.command(&["serve"]).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(answer) = reqwest::get(format!("{}/readyz", self.base)).await
                && answer.status() == 200
            {
                return child;
            }
            if let Some(status) = child.try_wait().unwrap() {
                let mut stderr = String::new();
                use tokio::io::AsyncReadExt;
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut stderr)
                    .await
                    .ok();
                panic!("vouch serve stopped ({status}): {stderr}");
            }
            assert!(Instant::now() < deadline, "vouch serve is not ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

struct Admin {
    base: String,
    key: String,
    client: reqwest::Client,
}

impl Admin {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .client
            .request(method.clone(), format!("{}/api{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let (status, answer) = json_of(request.send().await.unwrap()).await;
        assert!(status < 300, "{method} {path}: {status} {answer}");
        (status, answer)
    }

    /// The pod API with a pod token.
    async fn pod(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .client
            .request(method.clone(), format!("{}/api/v1/pod{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.header("Idempotency-Key", format!("setup-{}", uuid::Uuid::new_v4()));
            request = request.json(&body);
        }
        let (status, answer) = json_of(request.send().await.unwrap()).await;
        assert!(status < 300, "pod {method} {path}: {status} {answer}");
        answer
    }
}

/// A pod page loaded from the iframe address a PSA screen gives it.
async fn pod_page(src: &str) -> String {
    let answer = reqwest::get(src).await.unwrap();
    assert_eq!(answer.status(), 200, "{src}");
    answer.text().await.unwrap()
}

#[tokio::test]
async fn an_admin_sets_vouch_up_by_the_command_line_and_the_api_alone() {
    on_every_backend(async |db| {
        let microsoft = MicrosoftSandbox::start().await.unwrap();
        let sms = SmsSandbox::start().await.unwrap();
        let psa = PsaSandbox::start().await.unwrap();
        let vouch = Deployment::new(db, &microsoft, &sms);

        // 1. The MSP and an admin key, by the command line.
        vouch.run(&["msp", "create", "--name", MSP], None).await;
        let key = vouch
            .run(
                &["api-key", "create", "--msp", MSP, "--scope", "admin"],
                None,
            )
            .await
            .lines()
            .next()
            .unwrap()
            .trim()
            .to_owned();
        let _serve = vouch.serve().await;
        let admin = Admin {
            base: vouch.base.clone(),
            key,
            client: reqwest::Client::new(),
        };

        // The customer's tenant: password resets, then pushes (the admin-consent link).
        admin
            .call(
                Method::POST,
                "/v1/integrations/identity-management",
                Some(json!({
                    "tenant_id": DEMO_TENANT_ID,
                    "client_id": IDENTITY_APP_CLIENT_ID,
                    "client_secret": IDENTITY_APP_SECRET,
                })),
            )
            .await;
        let (_, consent) = admin
            .call(
                Method::POST,
                "/v1/integrations/authenticator/consent",
                Some(json!({})),
            )
            .await;
        let url = url::Url::parse(consent["url"].as_str().unwrap()).unwrap();
        let callback = microsoft
            .answer_admin_consent(
                &url,
                DEMO_TENANT_ID,
                "global_admin",
                ConsentDecision::Accept,
            )
            .await
            .unwrap();
        let page = reqwest::get(callback.as_str())
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("Tap to finish onboarding"), "{page}");

        // 2. The three PSAs: ConnectWise by the command line, HaloPSA and Autotask by the API.
        let cw = psa.connectwise();
        let added = vouch
            .run(
                &[
                    "psa",
                    "add",
                    "connectwise",
                    "--msp",
                    MSP,
                    "--site-url",
                    &cw.site_url,
                    "--company-id",
                    &cw.company_id,
                    "--public-key",
                    &cw.public_key,
                    "--client-id",
                    &cw.client_id,
                    "--json",
                ],
                Some(&cw.private_key),
            )
            .await;
        let added: Value = serde_json::from_str(&added).unwrap();
        let cw_id = added["id"].as_str().unwrap().to_owned();
        let halo = psa.halopsa();
        let (_, created) = admin
            .call(
                Method::POST,
                "/v1/psa-connections",
                Some(json!({
                    "kind": "halopsa",
                    "resource_url": halo.resource_url,
                    "auth_url": halo.auth_url,
                    "client_id": halo.client_id,
                    "client_secret": halo.client_secret,
                })),
            )
            .await;
        let halo_id = created["id"].as_str().unwrap().to_owned();
        let autotask = psa.autotask();
        let (_, created) = admin
            .call(
                Method::POST,
                "/v1/psa-connections",
                Some(json!({
                    "kind": "autotask",
                    "api_user": autotask.api_user,
                    "api_secret": autotask.api_secret,
                    "integration_code": autotask.integration_code,
                    "zone_lookup_url": autotask.zone_lookup_url,
                })),
            )
            .await;
        let autotask_id = created["id"].as_str().unwrap().to_owned();

        // 3. Each is tested (ConnectWise by the command line) and passes every check.
        let tested = vouch
            .run(&["psa", "test", "--msp", MSP, &cw_id, "--json"], None)
            .await;
        let tested: Value = serde_json::from_str(&tested).unwrap();
        assert_eq!(tested["test"]["passed"], true, "{tested}");
        for id in [&halo_id, &autotask_id] {
            let (_, tested) = admin
                .call(
                    Method::POST,
                    &format!("/v1/psa-connections/{id}/test"),
                    None,
                )
                .await;
            assert_eq!(tested["passed"], true, "{tested}");
            assert_eq!(tested["status"], "passed", "{tested}");
        }

        // 4. What to paste into each PSA, pasted.
        let mut urls = PodUrls::default();
        for id in [&cw_id, &halo_id, &autotask_id] {
            let (_, setup) = admin
                .call(
                    Method::GET,
                    &format!("/v1/psa-connections/{id}/setup"),
                    None,
                )
                .await;
            let pod_url = setup["pod_url"].as_str().unwrap().to_owned();
            assert!(pod_url.starts_with(&vouch.base), "{setup}");
            assert!(!setup["steps"].as_array().unwrap().is_empty(), "{setup}");
            match setup["kind"].as_str().unwrap() {
                "connectwise" => {
                    assert!(pod_url.contains("[cw_id]"), "{pod_url}");
                    urls.connectwise = pod_url;
                }
                "halopsa" => {
                    psa.set_halo_tab_secret(setup["secret"]["value"].as_str().unwrap());
                    urls.halopsa = pod_url;
                }
                "autotask" => {
                    psa.set_autotask_insight_secret(setup["secret"]["value"].as_str().unwrap());
                    urls.autotask = pod_url;
                }
                other => panic!("{other}"),
            }
        }
        psa.set_pod_urls(urls);

        // 5. The suggested mapping for Contoso, accepted, in each PSA.
        let (_, suggested) = admin
            .call(Method::GET, "/v1/company-mappings/suggestions", None)
            .await;
        let contoso: Vec<Value> = suggested["suggestions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| {
                s["psa_company_name"]
                    .as_str()
                    .unwrap()
                    .starts_with("Contoso")
            })
            .cloned()
            .collect();
        assert_eq!(contoso.len(), 3, "{suggested}");
        let accept: Vec<Value> = contoso
            .iter()
            .map(|s| {
                assert_eq!(s["confidence"], "high", "{s}");
                json!({
                    "psa_connection_id": s["psa_connection_id"],
                    "psa_company_id": s["psa_company_id"],
                    "psa_company_name": s["psa_company_name"],
                    "tenant_id": s["tenant_id"],
                })
            })
            .collect();
        let (_, accepted) = admin
            .call(
                Method::POST,
                "/v1/company-mappings/suggestions/accept",
                Some(json!({ "suggestions": accept })),
            )
            .await;
        for result in accepted["results"].as_array().unwrap() {
            assert_eq!(result["outcome"], "created", "{accepted}");
        }

        // 6. Each pod, opened from its PSA's ticket screen by the pod URL it was given.
        let halo_src = iframe_src(&halo.ticket_screen_url(sbx::HALO_TICKET_DANA)).await;
        let autotask_src = iframe_src(&autotask.ticket_screen_url(sbx::AUTOTASK_TICKET_DANA)).await;
        let cw_src = iframe_src(&cw.ticket_screen_url(sbx::CW_TICKET_DANA)).await;
        assert!(cw_src.starts_with(&vouch.base), "{cw_src}");
        let mut tokens = vec![
            (Psa::HaloPsa, token_of(&pod_page(&halo_src).await)),
            (Psa::Autotask, token_of(&pod_page(&autotask_src).await)),
        ];
        // ConnectWise: the page, then the member Manage vouches for (`getMemberAuthentication`).
        pod_page(&cw_src).await;
        let connection = url::Url::parse(&cw_src)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "connection")
            .map(|(_, v)| v.into_owned())
            .unwrap();
        assert_eq!(connection, cw_id);
        let hash = psa.issue_connectwise_member_hash(sbx::CW_MEMBER_ID);
        let (status, session) = json_of(
            admin
                .client
                .post(format!("{}/api/v1/pod/connectwise/session", vouch.base))
                .json(&json!({
                    "connection_id": cw_id,
                    "ticket_id": sbx::CW_TICKET_DANA.to_string(),
                    "member": {
                        "site": "na.myconnectwise.net", "companyid": sbx::CW_COMPANY_ID,
                        "memberid": sbx::CW_MEMBER_ID, "memberHash": hash,
                        "memberContext": "web", "memberEmail": "jordan@northwind.example",
                    },
                }))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{session}");
        tokens.push((
            Psa::ConnectWise,
            session["token"].as_str().unwrap().to_owned(),
        ));

        // 7. In each: the caller verified by push, then their password reset.
        for (which, token) in &tokens {
            let context = admin.pod(token, Method::GET, "/context", None).await;
            assert_eq!(
                context["contact"]["name"], "Dana Whitfield",
                "{which:?}: {context}"
            );
            microsoft.script_push(DANA, PushScript::Approve);
            let started = admin
                .pod(
                    token,
                    Method::POST,
                    "/verifications",
                    Some(json!({"method": "push"})),
                )
                .await;
            let id = started["id"].as_str().unwrap();
            let done = admin
                .pod(
                    token,
                    Method::GET,
                    &format!("/verifications/{id}?wait_seconds=10"),
                    None,
                )
                .await;
            assert_eq!(done["status"], "approved", "{which:?}: {done}");
            let reset = admin
                .pod(
                    token,
                    Method::POST,
                    "/reset",
                    Some(json!({ "verification_id": id, "confirm": true })),
                )
                .await;
            assert_eq!(reset["status"], "completed", "{which:?}: {reset}");
            let sms = sms
                .last_message_to(DANA_MOBILE)
                .expect("the link went by SMS")
                .body;
            assert!(sms.contains(&vouch.base), "{which:?}: {sms}");
        }

        // Later: the Halo tab secret rotated by the command line (no grace), pasted, and the
        // tab loads again; the old one no longer does.
        let old_src = iframe_src(&halo.ticket_screen_url(sbx::HALO_TICKET_DANA)).await;
        let rotated = vouch
            .run(
                &[
                    "psa",
                    "rotate-secret",
                    "--msp",
                    MSP,
                    &halo_id,
                    "--grace-seconds",
                    "0",
                ],
                None,
            )
            .await;
        let secret = rotated.lines().nth(1).unwrap().trim().to_owned();
        crate::common::eventually("a load signed with the old secret refused", || async {
            let refused = reqwest::get(&old_src).await.unwrap();
            (refused.status() == 403).then_some(())
        })
        .await;
        psa.set_halo_tab_secret(&secret);
        let halo_src = iframe_src(&halo.ticket_screen_url(sbx::HALO_TICKET_DANA)).await;
        let token = token_of(&pod_page(&halo_src).await);

        // A technician blocked by the command line is refused, on their open pod too.
        let listed = vouch
            .run(&["technician", "list", "--msp", MSP, "--json"], None)
            .await;
        let listed: Value = serde_json::from_str(&listed).unwrap();
        assert_eq!(listed.as_array().unwrap().len(), 3, "one per PSA: {listed}");
        let halo_technician = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["psa_connection_id"] == halo_id.as_str())
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let blocked = vouch
            .run(
                &[
                    "technician",
                    "block",
                    "--msp",
                    MSP,
                    &halo_technician,
                    "--json",
                ],
                None,
            )
            .await;
        let blocked: Value = serde_json::from_str(&blocked).unwrap();
        assert_eq!(blocked["blocked"], true, "{blocked}");
        let (status, refused) =
            crate::common::eventually("the block seen by vouch serve", || async {
                let (status, body) = json_of(
                    admin
                        .client
                        .get(format!("{}/api/v1/pod/context", vouch.base))
                        .bearer_auth(&token)
                        .send()
                        .await
                        .unwrap(),
                )
                .await;
                (status != 200).then_some((status, body))
            })
            .await;
        assert_eq!(
            (status, refused["code"].as_str()),
            (403, Some("technician_blocked"))
        );
    })
    .await;
}
