//! The MSP's settings through the API: checked field by field, audited with old and new, and
//! seen at once by end users (SMS, the secure-link page) and by the verified window, on a
//! second instance too. Every backend.

use chrono::DateTime;
use reqwest::Method;
use serde_json::{Value, json};
use vouch::domain::MspPolicy;

use crate::backends::on_every_backend;
use crate::common::world::{World, json_of};

const DANA: &str = "dana@contoso.example";
const DANA_MOBILE: &str = "+12065550101";

async fn patch(world: &World, body: Value) -> (u16, Value) {
    json_of(
        world
            .api(Method::PATCH, "/api/v1/settings")
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn settings_are_checked_audited_and_reach_end_users_at_once() {
    on_every_backend(async |db| {
        let world = World::start(db, MspPolicy::default()).await;
        let (status, before) =
            json_of(world.api(Method::GET, "/api/v1/settings").send().await.unwrap()).await;
        assert_eq!(status, 200, "{before}");
        assert_eq!(before["policy"]["verified_window_seconds"], 900);

        // A bad field names itself, and nothing is saved.
        for (body, field) in [
            (json!({"branding": {"color": "#ffee00"}}), "color"),
            (json!({"branding": {"support_phone": "call us"}}), "support_phone"),
            (json!({"branding": {"logo_url": "http://logo.example/l.png"}}), "logo_url"),
            (json!({"policy": {"verified_window_seconds": 5}}), "verified_window_seconds"),
            (json!({"policy": {"password_length": 8}}), "password_length"),
        ] {
            let (status, err) = patch(&world, body).await;
            assert_eq!((status, err["code"].as_str()), (400, Some("invalid_request")), "{err}");
            assert!(err["message"].as_str().unwrap().contains(field), "{err}");
        }
        let (_, unchanged) =
            json_of(world.api(Method::GET, "/api/v1/settings").send().await.unwrap()).await;
        assert_eq!(unchanged, before);

        let (status, after) = patch(
            &world,
            json!({
                "branding": {"name": "Northwind Support", "color": "#0b5cad", "support_phone": "+1 206 555 0142"},
                "policy": {"verified_window_seconds": 600},
            }),
        )
        .await;
        assert_eq!(status, 200, "{after}");
        assert_eq!(after["branding"]["support_phone"], "+1 206 555 0142");
        assert_eq!(after["policy"]["verified_window_seconds"], 600);

        // Audited with old and new, only what changed.
        let (_, audit) = json_of(
            world
                .api(Method::GET, "/api/v1/audit?action=settings.update")
                .send()
                .await
                .unwrap(),
        )
        .await;
        let entry = audit
            .as_array()
            .or_else(|| audit["items"].as_array())
            .and_then(|items| items.first().cloned())
            .expect("an audit entry");
        let changed = &entry["details"]["changed"];
        assert_eq!(changed["verified_window_seconds"]["old"], 900, "{entry}");
        assert_eq!(changed["verified_window_seconds"]["new"], 600, "{entry}");
        assert!(changed.get("password_length").is_none(), "{entry}");

        // A second instance sees it at once, and the verified window follows it.
        let second = world.second_instance(db).await;
        let (_, seen) = json_of(
            world
                .api_on(&second, Method::GET, "/api/v1/settings")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(seen, after);
        let id = world.verified(DANA).await;
        let (_, verification) = json_of(
            world
                .api_on(&second, Method::GET, &format!("/api/v1/verifications/{id}"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        let time = |v: &Value| DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
        let window = time(&verification["verified_until"]) - time(&verification["decided_at"]);
        assert!((595..=605).contains(&window.num_seconds()), "{verification}");

        // The end user: the SMS and the secure-link page carry the new name and phone.
        let (status, reset) = world.reset(DANA, &id, "settings-reset-0001").await;
        assert_eq!(status, 201, "{reset}");
        let sms = world.sms.last_message_to(DANA_MOBILE).expect("the link went by SMS").body;
        assert!(sms.starts_with("Northwind Support"), "{sms}");
        let link = sms.split_whitespace().find(|w| w.starts_with("http")).unwrap();
        let path = url::Url::parse(link).unwrap().path().to_owned();
        let page = world
            .app
            .client
            .get(world.app.url(&path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("Northwind Support"), "{page}");
        assert!(page.contains("+1 206 555 0142"), "{page}");
    })
    .await;
}

/// `vouch settings show|set`, over the same service as the API: the same checks, the same
/// code and sentence on a refusal (and a non-zero exit), JSON for scripts.
#[test]
fn the_command_line_shows_and_sets_settings() {
    use secrecy::ExposeSecret;
    use std::process::Command;
    let dir = tempfile::tempdir().unwrap();
    let key = vouch::store::crypto::MasterKey::generate_encoded();
    let vouch = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_vouch"))
            .args(args)
            .current_dir(dir.path())
            .env_clear()
            .env("VOUCH__ENCRYPTION__MASTER_KEY", key.expose_secret())
            .env(
                "VOUCH__DATABASE__URL",
                format!("sqlite://{}/v.db?mode=rwc", dir.path().display()),
            )
            .output()
            .unwrap()
    };
    let created = vouch(&["msp", "create", "--name", "Acme IT"]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );

    let set = vouch(&[
        "settings",
        "set",
        "--msp",
        "Acme IT",
        "support_phone",
        "+1 206 555 0100",
    ]);
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let shown = vouch(&["settings", "show", "--msp", "Acme IT", "--json"]);
    let json: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(json["branding"]["support_phone"], "+1 206 555 0100");
    assert_eq!(json["policy"]["verified_window_seconds"], 900);

    let refused = vouch(&["settings", "set", "--msp", "Acme IT", "color", "#ffee00"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("invalid_request") && stderr.contains("`color`"),
        "{stderr}"
    );
    let unknown = vouch(&["settings", "set", "--msp", "Acme IT", "colour", "#000000"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("names no setting"));

    let lines = String::from_utf8(vouch(&["settings", "show", "--msp", "Acme IT"]).stdout).unwrap();
    assert!(lines.contains("support_phone = +1 206 555 0100"), "{lines}");
    assert!(lines.contains("fraud_hold_seconds = 86400"), "{lines}");

    // The logo, from a file: an SVG is rasterised, a file that is neither is refused.
    let svg = dir.path().join("logo.svg");
    std::fs::write(
        &svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="60" height="20"><rect width="60" height="20"/></svg>"#,
    )
    .unwrap();
    let uploaded = vouch(&[
        "settings",
        "logo",
        "--msp",
        "Acme IT",
        svg.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        uploaded.status.success(),
        "{}",
        String::from_utf8_lossy(&uploaded.stderr)
    );
    let json: Value = serde_json::from_slice(&uploaded.stdout).unwrap();
    assert!(
        json["branding"]["logo_url"]
            .as_str()
            .unwrap()
            .ends_with(".png"),
        "{json}"
    );
    let text = dir.path().join("logo.txt");
    std::fs::write(&text, "not a logo").unwrap();
    let refused = vouch(&[
        "settings",
        "logo",
        "--msp",
        "Acme IT",
        text.to_str().unwrap(),
    ]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("`logo`"));
    let removed = vouch(&["settings", "logo", "--msp", "Acme IT", "--remove", "--json"]);
    let json: Value = serde_json::from_slice(&removed.stdout).unwrap();
    assert!(json["branding"]["logo_url"].is_null(), "{json}");
}

/// `vouch api-key list|revoke` and `vouch tenant list|rename|remove`, over the set-up
/// service: on the database the demo seeds, by the command line alone.
#[tokio::test]
async fn the_command_line_lists_and_revokes_keys_and_manages_tenants() {
    use std::process::Command;
    let db = crate::common::TestDb::sqlite().await;
    let (encoded, key) = crate::common::new_key();
    let store = db
        .migrated_store(vouch::store::crypto::Keyring::new(key, []))
        .await;
    let msp = vouch::demo::seed(
        &vouch::core::setup::SetupService::new(store.clone()),
        &vouch::core::settings::SettingsService::new(
            store.clone(),
            "http://127.0.0.1/".parse().unwrap(),
        ),
    )
    .await
    .unwrap();
    // The demo's tenant comes from connecting identity management; here it is made directly.
    store
        .create_tenant(vouch::store::tenants::NewTenant {
            msp_id: msp.id,
            microsoft_tenant_id: vouch::demo::DEMO_TENANT_ID.to_owned(),
            display_name: "Contoso".to_owned(),
            verified_domains: vec!["contoso.com".to_owned()],
        })
        .await
        .unwrap();
    let (made, _) = store
        .create_api_key(msp.id, "old automation")
        .await
        .unwrap();
    let vouch = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_vouch"))
            .args(args)
            .env_clear()
            .env("VOUCH__ENCRYPTION__MASTER_KEY", &encoded)
            .env("VOUCH__DATABASE__URL", &db.url)
            .output()
            .unwrap()
    };
    let msp_name = vouch::demo::DEMO_MSP_NAME;
    let listed = vouch(&["api-key", "list", "--msp", msp_name, "--json"]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let keys: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert!(keys.to_string().contains("old automation"), "{keys}");
    assert!(!keys.to_string().contains("key_hash"), "{keys}");

    let revoked = vouch(&["api-key", "revoke", "--msp", msp_name, &made.id.to_string()]);
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    assert!(
        store
            .list_api_keys(msp.id)
            .await
            .unwrap()
            .iter()
            .any(|k| k.id == made.id && k.revoked_at.is_some())
    );

    let tenants: Value =
        serde_json::from_slice(&vouch(&["tenant", "list", "--msp", msp_name, "--json"]).stdout)
            .unwrap();
    let tenant_id = tenants[0]["id"]
        .as_str()
        .expect("the demo tenant")
        .to_owned();

    // A company mapped and unmapped by the command line.
    let connection = store
        .create_connection(vouch::store::psa_connections::NewPsaConnection {
            msp_id: msp.id,
            kind: vouch::domain::PsaKind::HaloPsa,
            name: "HaloPSA".into(),
            base_url: "https://halo.example".into(),
            settings: serde_json::json!({ "auth_url": "https://halo.example/auth" }),
            credentials: secrecy::SecretString::from("{}".to_owned()),
        })
        .await
        .unwrap();
    let mapped = vouch(&[
        "company",
        "map",
        "--msp",
        msp_name,
        "--psa-connection",
        &connection.id.to_string(),
        "--company-id",
        "12",
        "--company-name",
        "Contoso Ltd",
        "--tenant",
        &tenant_id,
    ]);
    assert!(
        mapped.status.success(),
        "{}",
        String::from_utf8_lossy(&mapped.stderr)
    );
    let mappings: Value =
        serde_json::from_slice(&vouch(&["company", "list", "--msp", msp_name, "--json"]).stdout)
            .unwrap();
    assert_eq!(mappings[0]["psa_company_name"], "Contoso Ltd", "{mappings}");
    let mapping_id = mappings[0]["id"].as_str().unwrap().to_owned();
    let unmapped = vouch(&["company", "unmap", "--msp", msp_name, &mapping_id]);
    assert!(String::from_utf8_lossy(&unmapped.stdout).contains("Unmapped Contoso Ltd"));
    let missing = vouch(&["company", "unmap", "--msp", msp_name, &mapping_id]);
    assert!(!missing.status.success());
    let renamed = vouch(&[
        "tenant",
        "rename",
        "--msp",
        msp_name,
        &tenant_id,
        "  Contoso (renamed)  ",
    ]);
    assert!(String::from_utf8_lossy(&renamed.stdout).contains("Contoso (renamed)"));
    let refused = vouch(&["tenant", "rename", "--msp", msp_name, &tenant_id, " "]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("invalid_request"));
    let removed = vouch(&["tenant", "remove", "--msp", msp_name, &tenant_id]);
    assert!(
        removed.status.success(),
        "{}",
        String::from_utf8_lossy(&removed.stderr)
    );
    assert!(String::from_utf8_lossy(&removed.stdout).contains("In the customer's Microsoft 365"));
    let after: Value =
        serde_json::from_slice(&vouch(&["tenant", "list", "--msp", msp_name, "--json"]).stdout)
            .unwrap();
    assert_eq!(after, serde_json::json!([]));
}
