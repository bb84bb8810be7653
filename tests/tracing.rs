//! Logs follow a request into the background, in the JSON format `serve` writes: a push's
//! outcome, logged when Microsoft answers long after the request that started it returned,
//! carries that request's id. And no log line carries a secret: not the API key, an app or
//! connector secret, an SMS code, a new password or a share link.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::TestDb;
use common::world::World;
use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tracing_subscriber::layer::SubscriberExt;
use vouch::domain::IntegrationKind;
use vouch::domain::MspPolicy;
use vouch::sandbox::microsoft::{DEMO_TENANT_ID, IDENTITY_APP_SECRET, PushScript};

const DANA: &str = "dana@contoso.example";
const DANA_MOBILE: &str = "+12065550101";

/// Everything logged in this test binary, at debug level and above.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Installs the capture as the process's subscriber (once), with Vouch's JSON layer.
    fn capture() -> Logs {
        static LOGS: OnceLock<Logs> = OnceLock::new();
        LOGS.get_or_init(|| {
            let logs = Logs::default();
            let writer = logs.clone();
            let subscriber = tracing_subscriber::registry()
                .with(tracing_subscriber::EnvFilter::new("debug"))
                .with(vouch::telemetry::json_layer(move || writer.clone()));
            tracing::subscriber::set_global_default(subscriber)
                .expect("no other subscriber in this test binary");
            logs
        })
        .clone()
    }

    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).expect("log lines are UTF-8")
    }

    fn lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|line| serde_json::from_str(line).expect("every log line is JSON"))
            .collect()
    }
}

/// Every string in `value` except the timestamps (whose digits could match a code by chance).
fn strings_of<'v>(value: &'v Value, out: &mut Vec<&'v str>) {
    match value {
        Value::String(text) => out.push(text),
        Value::Array(items) => items.iter().for_each(|item| strings_of(item, out)),
        Value::Object(map) => map
            .iter()
            .filter(|(key, _)| key.as_str() != "timestamp")
            .for_each(|(_, item)| strings_of(item, out)),
        _ => {}
    }
}

async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Starts a verification of Dana by `method`, under the request id `request_id`.
async fn start(world: &World, method: &str, request_id: &str) -> String {
    let response = world
        .api(Method::POST, "/api/v1/verifications")
        .header("x-request-id", request_id)
        .json(&json!({ "tenant_id": DEMO_TENANT_ID, "user": DANA, "method": method }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], request_id);
    let (status, body) = json_of(response).await;
    assert_eq!(status, 202, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_push_outcome_is_logged_with_its_request_id_and_no_log_line_holds_a_secret() {
    let logs = Logs::capture();
    let db = TestDb::sqlite().await;
    let world = World::start(&db, MspPolicy::default()).await;

    // A push, answered in the background after its request has returned.
    world.microsoft.script_push(DANA, PushScript::Approve);
    let push_request = "trace-push-0001";
    let verification_id = start(&world, "push", push_request).await;
    let (_, decided) = json_of(
        world
            .api(
                Method::GET,
                &format!("/api/v1/verifications/{verification_id}?wait_seconds=10"),
            )
            .header("x-request-id", "trace-wait-0001")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(decided["status"], "approved", "{decided}");

    // The approved push resets Dana's password; the link goes out by SMS.
    let (status, reset) = json_of(
        world
            .api(Method::POST, "/api/v1/password-resets")
            .header("Idempotency-Key", "trace-reset-0001")
            .json(&json!({
                "tenant_id": DEMO_TENANT_ID,
                "user": DANA,
                "verification_id": verification_id,
                "confirm": true,
            }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{reset}");
    let (password, _) = world.microsoft.user_password(DEMO_TENANT_ID, DANA).unwrap();
    let share_link = world
        .sms
        .last_message_to(DANA_MOBILE)
        .unwrap()
        .body
        .split_whitespace()
        .find(|word| word.starts_with("http"))
        .unwrap()
        .to_owned();
    let share_token = share_link.rsplit('/').next().unwrap().to_owned();

    // An SMS code, read out and checked.
    let code_verification = start(&world, "sms_code", "trace-code-0001").await;
    let sms = world
        .sms
        .wait_for_message_to(DANA_MOBILE, Duration::from_secs(5))
        .await
        .unwrap();
    let code: String = sms
        .body
        .split("code is ")
        .nth(1)
        .expect("the SMS carries the code")
        .chars()
        .take(6)
        .collect();
    assert!(code.chars().all(|c| c.is_ascii_digit()), "{}", sms.body);
    let (status, body) = json_of(
        world
            .api(
                Method::POST,
                &format!("/api/v1/verifications/{code_verification}/code"),
            )
            .header("x-request-id", "trace-code-0002")
            .json(&json!({ "code": code }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "approved");

    // The push's outcome line carries the id of the request that started the push.
    let lines = logs.lines();
    let answered: Vec<&Value> = lines
        .iter()
        .filter(|line| {
            line["fields"]["message"] == "push answered"
                && line["fields"]["verification_id"] == verification_id.as_str()
        })
        .collect();
    assert_eq!(answered.len(), 1, "one outcome line for the push");
    let answered = answered[0];
    assert_eq!(answered["fields"]["status"], "approved", "{answered}");
    let spans = answered["spans"]
        .as_array()
        .expect("the line lists its spans");
    assert!(
        spans
            .iter()
            .any(|span| span["name"] == "request" && span["request_id"] == push_request),
        "the outcome carries the request id: {answered}"
    );
    assert!(
        spans.iter().any(|span| span["name"] == "start"
            && span["msp_id"] == world.msp.id.to_string().as_str()
            && span["verification_id"] == verification_id.as_str()),
        "and the service's span: {answered}"
    );
    assert!(
        lines
            .iter()
            .any(|line| line["fields"]["message"] == "request completed"
                && line["span"]["request_id"] == push_request),
        "the request itself was logged as completed, before its push was answered"
    );

    // No secret in any line.
    let text = logs.text();
    let tenant = world
        .app
        .store
        .find_tenant_by_microsoft_id(world.msp.id, DEMO_TENANT_ID)
        .await
        .unwrap()
        .unwrap();
    let connector_secret = world
        .app
        .store
        .get_integration(tenant.id, IntegrationKind::Authenticator)
        .await
        .unwrap()
        .and_then(|integration| integration.secret)
        .expect("the authenticator integration holds the connector secret");
    let (_, vouch_app_secret) = world.microsoft.vouch_app();
    let master_key = world.app.ctx.config.encryption.master_key.clone().unwrap();
    for (name, secret) in [
        ("the API key", world.api_key.as_str()),
        ("the identity app secret", IDENTITY_APP_SECRET),
        ("Vouch's app secret", vouch_app_secret.as_str()),
        ("the connector secret", connector_secret.expose_secret()),
        ("the master key", master_key.expose_secret()),
        ("the new password", password.as_str()),
        ("the share token", share_token.as_str()),
    ] {
        assert!(secret.len() >= 12, "{name} is long enough to search for");
        assert!(!text.contains(secret), "{name} is in the logs");
    }
    let mut strings = Vec::new();
    lines.iter().for_each(|line| strings_of(line, &mut strings));
    assert!(
        !strings.iter().any(|text| text.contains(&code)),
        "the SMS code is in the logs"
    );
    let checked = lines
        .iter()
        .find(|line| line["fields"]["message"] == "SMS code checked")
        .expect("the code check is logged, or the search proves nothing");
    assert_eq!(checked["fields"]["outcome"], "approved", "{checked}");
    assert!(
        checked["spans"].as_array().unwrap().iter().any(|span| {
            span["name"] == "submit_code" && span["verification_id"] == code_verification.as_str()
        }),
        "{checked}"
    );
    assert!(
        checked["spans"]
            .as_array()
            .unwrap()
            .iter()
            .any(|span| span["request_id"] == "trace-code-0002"),
        "{checked}"
    );
}

/// A console sign-in never logs the password: not a chosen one, not a wrong one, not one
/// tried for an address Vouch does not know (which is logged, having no MSP to audit under).
#[tokio::test]
async fn no_log_line_holds_a_console_password() {
    let logs = Logs::capture();
    let db = TestDb::sqlite().await;
    let port = common::free_port();
    let app = common::TestApp::spawn_with(&db, true, |c| {
        c.http.bind = format!("127.0.0.1:{port}").parse().unwrap();
        c.http.public_url = format!("http://127.0.0.1:{port}/").parse().unwrap();
    })
    .await;
    let msp = app
        .store
        .create_msp(vouch::store::msp::NewMspAccount {
            name: "Northwind IT".into(),
            brand_logo_url: None,
            brand_color: None,
            policy: MspPolicy::default(),
        })
        .await
        .unwrap();
    let link = app
        .ctx
        .accounts
        .create_user(
            msp.id,
            &vouch::store::audit::AuditActor {
                kind: vouch::domain::ActorKind::System,
                id: None,
                name: None,
            },
            vouch::core::accounts::NewUserInput {
                email: "jordan@northwind.example".into(),
                name: "Jordan".into(),
                role: vouch::domain::ConsoleRole::Technician,
            },
        )
        .await
        .unwrap();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let origin = format!("http://127.0.0.1:{port}");
    let chosen = "the chosen console passphrase";
    let setup = client
        .post(link.url.expose_secret())
        .header("origin", &origin)
        .form(&[("password", chosen), ("confirm", chosen)])
        .send()
        .await
        .unwrap();
    assert_eq!(setup.status(), 303);
    for (email, password) in [
        ("jordan@northwind.example", "a wrong console passphrase"),
        ("nobody@northwind.example", "a guessed console passphrase"),
    ] {
        let refused = client
            .post(app.url("/console/sign-in"))
            .header("origin", &origin)
            .form(&[("email", email), ("password", password)])
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 401);
    }
    let text = logs.text();
    assert!(
        text.contains("console sign-in refused"),
        "the unknown address is logged"
    );
    for secret in [
        chosen,
        "a wrong console passphrase",
        "a guessed console passphrase",
    ] {
        assert!(!text.contains(secret), "a password reached the log");
    }
    app.stop().await;
}
