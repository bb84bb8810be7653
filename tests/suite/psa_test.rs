//! Testing a PSA connection (`POST /v1/psa-connections/{id}/test`), over real HTTP against the
//! PSA sandbox, on every backend: a correct connection passes every check; wrong keys, a wrong
//! secret, a wrong company, an unknown API user, a wrong integration code, a withheld
//! permission, a PSA throttling, unreachable or not speaking TLS each fail their own check with
//! their own code and sentence, the checks that needed it skipped; the connection stays as
//! saved with its status showing the last test, until its credentials change. And `vouch psa`.

use crate::{backends, common};

use backends::on_every_backend;
use common::world::{World, call};
use reqwest::Method;
use serde_json::{Value, json};
use vouch::domain::MspPolicy;
use vouch::sandbox::psa::{Psa, PsaFault, PsaPermission};

fn connectwise(world: &World) -> Value {
    let cw = world.psa.connectwise();
    json!({
        "kind": "connectwise",
        "site_url": cw.site_url,
        "company_id": cw.company_id,
        "public_key": cw.public_key,
        "private_key": cw.private_key,
        "client_id": cw.client_id,
    })
}

fn halopsa(world: &World) -> Value {
    let halo = world.psa.halopsa();
    json!({
        "kind": "halopsa",
        "resource_url": halo.resource_url,
        "auth_url": halo.auth_url,
        "client_id": halo.client_id,
        "client_secret": halo.client_secret,
    })
}

fn autotask(world: &World) -> Value {
    let at = world.psa.autotask();
    json!({
        "kind": "autotask",
        "api_user": at.api_user,
        "api_secret": at.api_secret,
        "integration_code": at.integration_code,
        "zone_lookup_url": at.zone_lookup_url,
    })
}

/// `body` with `changes` applied.
fn with(mut body: Value, changes: Value) -> Value {
    for (key, value) in changes.as_object().unwrap() {
        body[key] = value.clone();
    }
    body
}

async fn create(world: &World, body: Value) -> String {
    let (status, created) = call(world, Method::POST, "/api/v1/psa-connections", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "untested", "{created}");
    created["id"].as_str().unwrap().to_owned()
}

async fn get(world: &World, id: &str) -> Value {
    let (status, got) = call(
        world,
        Method::GET,
        &format!("/api/v1/psa-connections/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{got}");
    got
}

async fn test(world: &World, id: &str) -> Value {
    let (status, tested) = call(
        world,
        Method::POST,
        &format!("/api/v1/psa-connections/{id}/test"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{tested}");
    assert_eq!(tested["connection_id"], id);
    assert_eq!(tested["recorded"], true, "{tested}");
    tested
}

/// The outcome of each check, by name, in order.
fn outcomes(tested: &Value) -> Vec<(String, String)> {
    tested["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn check<'a>(tested: &'a Value, name: &str) -> &'a Value {
    tested["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {tested}"))
}

/// The test failed at `name` with `code`, its sentence containing `says`; every check before
/// passed, every one in `skipped` was skipped. The connection is otherwise as it was saved,
/// and its status shows the failure.
async fn assert_fails(
    world: &World,
    id: &str,
    name: &str,
    code: &str,
    says: &str,
    skipped: &[&str],
) -> Value {
    let before = get(world, id).await;
    let tested = test(world, id).await;
    assert_eq!(tested["passed"], false, "{tested}");
    assert_eq!(tested["status"], "failed", "{tested}");
    assert_eq!(tested["failed_check"], name, "{tested}");
    assert_eq!(tested["code"], code, "{tested}");
    let failed = check(&tested, name);
    assert_eq!(failed["outcome"], "failed", "{tested}");
    assert_eq!(failed["passed"], false);
    assert_eq!(failed["code"], code);
    let message = failed["message"].as_str().unwrap();
    assert!(message.contains(says), "{message}");
    assert!(
        message.ends_with('.') || message.ends_with(')'),
        "{message}"
    );
    for skip in skipped {
        let c = check(&tested, skip);
        assert_eq!(c["outcome"], "skipped", "{skip}: {tested}");
        assert_eq!(c["code"], Value::Null);
        assert!(c["message"].as_str().unwrap().contains(name), "{c}");
    }
    for c in tested["checks"].as_array().unwrap() {
        if c["name"] == name {
            break;
        }
        assert_eq!(c["outcome"], "passed", "{tested}");
    }

    // Saved as it was: only the status and the last test differ.
    let after = get(world, id).await;
    assert_eq!(after["status"], "failed", "{after}");
    assert_eq!(after["last_test"]["code"], code);
    assert_eq!(after["last_test"]["failed_check"], name);
    assert_eq!(after["last_test"]["tested_at"], tested["tested_at"]);
    let strip = |mut v: Value| {
        let map = v.as_object_mut().unwrap();
        map.remove("status");
        map.remove("last_test");
        v
    };
    assert_eq!(strip(after), strip(before));
    tested
}

async fn assert_passes(world: &World, id: &str, names: &[&str]) {
    let tested = test(world, id).await;
    assert_eq!(tested["passed"], true, "{tested}");
    assert_eq!(tested["status"], "passed");
    assert_eq!(tested["code"], Value::Null);
    let expected: Vec<(String, String)> = names
        .iter()
        .map(|n| (n.to_string(), "passed".to_owned()))
        .collect();
    assert_eq!(outcomes(&tested), expected, "{tested}");
    for c in tested["checks"].as_array().unwrap() {
        assert_eq!(c["passed"], true);
        assert!(!c["message"].as_str().unwrap().is_empty());
    }
    let got = get(world, id).await;
    assert_eq!(got["status"], "passed", "{got}");
    assert_eq!(got["last_test"]["passed"], true);
}

const CW_CHECKS: [&str; 5] = [
    "company",
    "api_keys",
    "read_tickets",
    "read_contacts",
    "ticket_notes",
];
const HALO_CHECKS: [&str; 3] = ["token", "read_tickets", "actions"];
const AUTOTASK_CHECKS: [&str; 3] = ["zone", "credentials", "read_tickets"];

#[tokio::test]
async fn a_correct_connection_passes_every_check_and_the_test_is_audited() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let cw = create(&world, connectwise(&world)).await;
        assert_passes(&world, &cw, &CW_CHECKS).await;
        // Harmless: nothing was written to the PSA.
        assert_eq!(world.psa.count(Psa::ConnectWise, "POST", "/"), 0);
        assert!(world.psa.count(Psa::ConnectWise, "GET", "/system/info") >= 1);
        let halo = create(&world, halopsa(&world)).await;
        assert_passes(&world, &halo, &HALO_CHECKS).await;
        assert_eq!(world.psa.count(Psa::HaloPsa, "POST", "/api/"), 0);
        let at = create(&world, autotask(&world)).await;
        assert_passes(&world, &at, &AUTOTASK_CHECKS).await;
        assert!(world.psa.count(Psa::Autotask, "GET", "/Version") >= 1);
        assert_eq!(world.psa.count(Psa::Autotask, "POST", "/"), 0);

        let (status, audit) = call(
            &world,
            Method::GET,
            "/api/v1/audit?action=psa_connection.test",
            None,
        )
        .await;
        assert_eq!(status, 200);
        let entries = audit.as_array().unwrap();
        assert_eq!(entries.len(), 3, "{audit}");
        assert!(
            entries.iter().all(|e| e["category"] == "general"),
            "{audit}"
        );
        let text = audit.to_string();
        for secret in [
            world.psa.connectwise().private_key,
            world.psa.halopsa().client_secret,
            world.psa.autotask().api_secret,
        ] {
            assert!(!text.contains(&secret));
        }
    })
    .await;
}

#[tokio::test]
async fn wrong_keys_secrets_and_companies_fail_their_own_check_and_the_connection_stays_as_saved() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;

        // ConnectWise: a wrong private key, then a company id the site does not know.
        let id = create(
            &world,
            with(connectwise(&world), json!({"private_key": "not-the-key"})),
        )
        .await;
        assert_fails(
            &world,
            &id,
            "api_keys",
            "psa_credentials_rejected",
            "refused the public and private key",
            &["read_tickets", "read_contacts", "ticket_notes"],
        )
        .await;
        // Fixing the key sets the status back to untested; the next test passes.
        let (status, patched) = call(
            &world,
            Method::PATCH,
            &format!("/api/v1/psa-connections/{id}"),
            Some(
                json!({"kind": "connectwise", "private_key": world.psa.connectwise().private_key}),
            ),
        )
        .await;
        assert_eq!(status, 200, "{patched}");
        assert_eq!(patched["status"], "untested");
        assert_eq!(patched["last_test"], Value::Null);
        assert_eq!(get(&world, &id).await["status"], "untested");
        assert_passes(&world, &id, &CW_CHECKS).await;
        // A change of name keeps the test.
        let (_, renamed) = call(
            &world,
            Method::PATCH,
            &format!("/api/v1/psa-connections/{id}"),
            Some(json!({"kind": "connectwise", "name": "Renamed"})),
        )
        .await;
        assert_eq!(renamed["status"], "passed", "{renamed}");

        let id = create(
            &world,
            with(connectwise(&world), json!({"company_id": "southwind"})),
        )
        .await;
        assert_fails(
            &world,
            &id,
            "company",
            "psa_wrong_company",
            "no company southwind",
            &["api_keys", "read_tickets", "read_contacts", "ticket_notes"],
        )
        .await;

        // HaloPSA: a wrong client secret (Halo's OAuth refusal, invalid_client).
        let id = create(
            &world,
            with(halopsa(&world), json!({"client_secret": "wrong"})),
        )
        .await;
        assert_fails(
            &world,
            &id,
            "token",
            "psa_credentials_rejected",
            "refused the client id and secret (invalid_client)",
            &["read_tickets", "actions"],
        )
        .await;

        // Autotask: an unknown API user, a wrong secret, a wrong integration code.
        let id = create(
            &world,
            with(autotask(&world), json!({"api_user": "nobody@x.example"})),
        )
        .await;
        assert_fails(
            &world,
            &id,
            "zone",
            "psa_api_user_unknown",
            "knows no API user",
            &["credentials", "read_tickets"],
        )
        .await;
        let id = create(
            &world,
            with(autotask(&world), json!({"api_secret": "wrong"})),
        )
        .await;
        assert_fails(
            &world,
            &id,
            "credentials",
            "psa_credentials_rejected",
            "refused the API user's secret",
            &["read_tickets"],
        )
        .await;
        let id = create(
            &world,
            with(autotask(&world), json!({"integration_code": "WRONGCODE"})),
        )
        .await;
        assert_fails(
            &world,
            &id,
            "credentials",
            "psa_integration_code_rejected",
            "Autotask says: \"The ApiIntegrationCode is not a valid integration code",
            &["read_tickets"],
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn a_withheld_permission_fails_its_check_with_what_to_grant() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let cw = create(&world, connectwise(&world)).await;
        let halo = create(&world, halopsa(&world)).await;
        let at = create(&world, autotask(&world)).await;

        world
            .psa
            .withhold_permission(Psa::ConnectWise, PsaPermission::ReadTickets);
        let tested = assert_fails(
            &world,
            &cw,
            "read_tickets",
            "psa_permission_missing",
            "Service Desk > Service Tickets",
            &["ticket_notes"],
        )
        .await;
        // Contacts do not depend on tickets: still checked.
        assert_eq!(check(&tested, "read_contacts")["outcome"], "passed");
        world.psa.restore_permissions();
        world
            .psa
            .withhold_permission(Psa::ConnectWise, PsaPermission::TicketNotes);
        assert_fails(
            &world,
            &cw,
            "ticket_notes",
            "psa_permission_missing",
            "Ticket - Internal Notes",
            &[],
        )
        .await;

        world
            .psa
            .withhold_permission(Psa::HaloPsa, PsaPermission::ReadTickets);
        assert_fails(
            &world,
            &halo,
            "read_tickets",
            "psa_permission_missing",
            "read:tickets",
            &["actions"],
        )
        .await;
        world.psa.restore_permissions();
        world
            .psa
            .withhold_permission(Psa::HaloPsa, PsaPermission::TicketNotes);
        assert_fails(
            &world,
            &halo,
            "actions",
            "psa_permission_missing",
            "edit:tickets",
            &[],
        )
        .await;

        world
            .psa
            .withhold_permission(Psa::Autotask, PsaPermission::ReadTickets);
        assert_fails(
            &world,
            &at,
            "read_tickets",
            "psa_permission_missing",
            "Security Level",
            &[],
        )
        .await;
        world.psa.restore_permissions();
        assert_passes(&world, &at, &AUTOTASK_CHECKS).await;
    })
    .await;
}

#[tokio::test]
async fn an_unreachable_throttling_or_non_tls_psa_is_told_apart() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let closed = format!("http://127.0.0.1:{}", common::free_port());
        // The sandbox's port speaks plain HTTP: an https:// address to it fails the handshake.
        let not_tls = world.psa.base_url().replace("http://", "https://");

        let id = create(
            &world,
            with(
                connectwise(&world),
                json!({"site_url": format!("{closed}/cw")}),
            ),
        )
        .await;
        assert_fails(
            &world,
            &id,
            "company",
            "psa_unreachable",
            "could not connect to ConnectWise",
            &["api_keys", "read_tickets", "read_contacts", "ticket_notes"],
        )
        .await;
        let id = create(
            &world,
            with(
                connectwise(&world),
                json!({"site_url": format!("{not_tls}/cw")}),
            ),
        )
        .await;
        assert_fails(
            &world,
            &id,
            "company",
            "psa_tls_failed",
            "TLS handshake with ConnectWise failed",
            &["api_keys"],
        )
        .await;
        // Throttled: a 429 whose Retry-After is longer than Vouch waits.
        let id = create(&world, connectwise(&world)).await;
        let throttled = || PsaFault::Status {
            status: 429,
            body: String::new(),
            retry_after: Some(3600),
        };
        world
            .psa
            .inject_fault(Psa::ConnectWise, "/system/info", throttled(), 1);
        assert_fails(
            &world,
            &id,
            "api_keys",
            "psa_throttled",
            "throttling",
            &["read_tickets"],
        )
        .await;

        let id = create(
            &world,
            with(
                halopsa(&world),
                json!({"auth_url": format!("{closed}/halo/auth")}),
            ),
        )
        .await;
        assert_fails(
            &world,
            &id,
            "token",
            "psa_unreachable",
            "could not connect to HaloPSA",
            &["read_tickets", "actions"],
        )
        .await;
        let id = create(&world, halopsa(&world)).await;
        world
            .psa
            .inject_fault(Psa::HaloPsa, "/halo/api/Tickets", throttled(), 1);
        assert_fails(
            &world,
            &id,
            "read_tickets",
            "psa_throttled",
            "HaloPSA is throttling",
            &["actions"],
        )
        .await;

        let id = create(
            &world,
            with(
                autotask(&world),
                json!({"zone_lookup_url": format!("{not_tls}/autotask/atservicesrest/")}),
            ),
        )
        .await;
        assert_fails(
            &world,
            &id,
            "zone",
            "psa_tls_failed",
            "TLS handshake with Autotask failed",
            &["credentials", "read_tickets"],
        )
        .await;
        let id = create(
            &world,
            with(
                autotask(&world),
                json!({"zone_lookup_url": format!("{closed}/autotask/atservicesrest/")}),
            ),
        )
        .await;
        assert_fails(
            &world,
            &id,
            "zone",
            "psa_unreachable",
            "could not connect to Autotask",
            &["credentials", "read_tickets"],
        )
        .await;
        let id = create(&world, autotask(&world)).await;
        world
            .psa
            .inject_fault(Psa::Autotask, "/Version", throttled(), 1);
        assert_fails(
            &world,
            &id,
            "credentials",
            "psa_throttled",
            "Autotask is throttling",
            &["read_tickets"],
        )
        .await;
    })
    .await;
}

/// `vouch psa add|list|test|setup|remove`, over the same service as the API, against the PSA
/// sandbox: the secret from the environment or standard input, the generated signing secret
/// printed once, a failed test exiting non-zero with its code and sentence.
#[tokio::test]
async fn the_command_line_adds_lists_tests_sets_up_and_removes_psa_connections() {
    use secrecy::ExposeSecret;
    use tokio::io::AsyncWriteExt;
    use tokio::process::Command;
    let sandbox = vouch::sandbox::psa::PsaSandbox::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = vouch::store::crypto::MasterKey::generate_encoded();
    let db = format!("sqlite://{}/v.db?mode=rwc", dir.path().display());
    let vouch = |args: &[&str], secret: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_vouch"));
        command
            .args(args)
            .current_dir(dir.path())
            .env_clear()
            .env("VOUCH__ENCRYPTION__MASTER_KEY", key.expose_secret())
            .env("VOUCH__DATABASE__URL", &db)
            .stdin(std::process::Stdio::null());
        if let Some(secret) = secret {
            command.env(vouch::cli::PSA_SECRET_ENV, secret);
        }
        command.output()
    };
    let ok = |output: &std::process::Output| {
        assert!(
            output.status.success(),
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout.clone()).unwrap()
    };
    ok(&vouch(&["msp", "create", "--name", "Acme IT"], None)
        .await
        .unwrap());

    let cw = sandbox.connectwise();
    let added = ok(&vouch(
        &[
            "psa",
            "add",
            "connectwise",
            "--msp",
            "Acme IT",
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
    .await
    .unwrap());
    let added: Value = serde_json::from_str(&added).unwrap();
    assert!(!added.to_string().contains(&cw.private_key), "{added}");
    let cw_id = added["id"].as_str().unwrap().to_owned();
    assert_eq!(added["status"], "untested");

    // Halo, its secret on standard input; the tab secret is printed once.
    let halo = sandbox.halopsa();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args([
            "psa",
            "add",
            "halopsa",
            "--msp",
            "Acme IT",
            "--resource-url",
            &halo.resource_url,
            "--auth-url",
            &halo.auth_url,
            "--client-id",
            &halo.client_id,
        ])
        .current_dir(dir.path())
        .env_clear()
        .env("VOUCH__ENCRYPTION__MASTER_KEY", key.expose_secret())
        .env("VOUCH__DATABASE__URL", &db)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{}\n", halo.client_secret).as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let added = ok(&child.wait_with_output().await.unwrap());
    let tab_secret = added
        .lines()
        .find_map(|l| l.strip_prefix("tab_secret: "))
        .expect("the tab secret printed once")
        .to_owned();
    let halo_id = added.split_whitespace().next().unwrap().to_owned();

    let tested = ok(&vouch(&["psa", "test", "--msp", "Acme IT", &cw_id], None)
        .await
        .unwrap());
    assert!(tested.contains("passed   api_keys:"), "{tested}");
    let listed = ok(&vouch(&["psa", "list", "--msp", "Acme IT"], None)
        .await
        .unwrap());
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&cw_id) && l.contains("passed")),
        "{listed}"
    );
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&halo_id) && l.contains("untested")),
        "{listed}"
    );

    // A withheld permission: the same code and sentence as the API, and a non-zero exit.
    sandbox.withhold_permission(Psa::HaloPsa, PsaPermission::ReadTickets);
    let failed = vouch(&["psa", "test", "--msp", "Acme IT", &halo_id], None)
        .await
        .unwrap();
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains(
            "psa_permission_missing: Halo refused to let the API application read tickets (403)."
        ),
        "{stderr}"
    );
    let listed: Value = serde_json::from_str(&ok(&vouch(
        &["psa", "list", "--msp", "Acme IT", "--json"],
        None,
    )
    .await
    .unwrap()))
    .unwrap();
    let halo_row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == halo_id.as_str())
        .unwrap();
    assert_eq!(halo_row["status"], "failed");
    assert_eq!(halo_row["last_test"]["code"], "psa_permission_missing");

    let setup = ok(&vouch(
        &["psa", "setup", "--msp", "Acme IT", &halo_id, "--json"],
        None,
    )
    .await
    .unwrap());
    let setup: Value = serde_json::from_str(&setup).unwrap();
    assert_eq!(setup["secret"]["value"], tab_secret.as_str());
    assert!(
        setup["pod_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("pods/halopsa?connection={halo_id}"))
    );

    let unknown = vouch(
        &[
            "psa",
            "remove",
            "--msp",
            "Acme IT",
            &uuid::Uuid::now_v7().to_string(),
        ],
        None,
    )
    .await
    .unwrap();
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("psa_connection_not_found: "));
    ok(&vouch(&["psa", "remove", "--msp", "Acme IT", &cw_id], None)
        .await
        .unwrap());
    let listed = ok(&vouch(&["psa", "list", "--msp", "Acme IT"], None)
        .await
        .unwrap());
    assert!(!listed.contains(&cw_id), "{listed}");
    // A refused field names it, as the API does.
    let refused = vouch(
        &[
            "psa",
            "add",
            "autotask",
            "--msp",
            "Acme IT",
            "--api-user",
            " ",
            "--integration-code",
            "X",
        ],
        Some("s"),
    )
    .await
    .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("invalid_request") && stderr.contains("`api_user`"),
        "{stderr}"
    );
}
