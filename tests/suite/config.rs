//! Configuration layering, refusal of bad values, and redaction of secrets.

use std::process::Command;

use secrecy::ExposeSecret;
use vouch::config::{Config, ConfigSources, LogFormat};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load(file: Option<&std::path::Path>, pairs: &[(&str, &str)]) -> Result<Config, String> {
    Config::load_from(ConfigSources {
        file,
        env: env(pairs),
    })
    .map_err(|err| err.to_string())
}

#[test]
fn defaults_then_file_then_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vouch.toml");
    std::fs::write(
        &file,
        "[http]\nbind = \"0.0.0.0:9000\"\nshutdown_grace_seconds = 5\n[log]\nformat = \"pretty\"\n",
    )
    .unwrap();
    let config = load(
        Some(&file),
        &[
            ("VOUCH__HTTP__BIND", "127.0.0.1:9100"),
            ("VOUCH__MICROSOFT__GRAPH_URL", "https://graph.microsoft.us/"),
            ("UNRELATED", "ignored"),
        ],
    )
    .unwrap();
    assert_eq!(
        config.http.bind.to_string(),
        "127.0.0.1:9100",
        "environment beats file"
    );
    assert_eq!(config.http.shutdown_grace_seconds, 5, "file beats defaults");
    assert_eq!(config.log.format, LogFormat::Pretty);
    assert_eq!(
        config.microsoft.endpoints().graph_url.as_str(),
        "https://graph.microsoft.us/"
    );
    assert_eq!(
        config.microsoft.endpoints().login_url.as_str(),
        "https://login.microsoftonline.com/",
        "defaults where nothing is said"
    );
}

#[test]
fn a_bad_value_stops_start_up_naming_the_key_and_its_source() {
    let err = load(None, &[("VOUCH__HTTP__SHUTDOWN_GRACE_SECONDS", "soon")]).unwrap_err();
    assert!(err.contains("`http.shutdown_grace_seconds`"), "{err}");
    assert!(err.contains("VOUCH__HTTP__SHUTDOWN_GRACE_SECONDS"), "{err}");

    let err = load(None, &[("VOUCH__MICROSOFT__GRAPH_URL", "not a url")]).unwrap_err();
    assert!(err.contains("`microsoft.graph_url`"), "{err}");

    let err = load(None, &[("VOUCH__DATABASE__URL", "mysql://x/y")]).unwrap_err();
    assert!(err.contains("database.url"), "{err}");

    let err = load(None, &[("VOUCH__ENCRYPTION__MASTER_KEY", "c2hvcnQ=")]).unwrap_err();
    assert!(err.contains("encryption.master_key"), "{err}");
    assert!(
        !err.contains("c2hvcnQ="),
        "the key itself is not echoed: {err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vouch.toml");
    std::fs::write(&file, "[log]\nformat = \"xml\"\n").unwrap();
    let err = load(Some(&file), &[]).unwrap_err();
    assert!(err.contains("`log.format`"), "{err}");
    assert!(err.contains(&file.display().to_string()), "{err}");
}

#[test]
fn an_unknown_key_stops_start_up_naming_it() {
    let err = load(None, &[("VOUCH__HTTP__PORT", "8080")]).unwrap_err();
    assert!(err.contains("`http.port`"), "{err}");
    let err = load(None, &[("VOUCH__GRAPH__URL", "https://x/")]).unwrap_err();
    assert!(err.contains("graph"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vouch.toml");
    std::fs::write(&file, "[database]\nurll = \"sqlite://x.db\"\n").unwrap();
    let err = load(Some(&file), &[]).unwrap_err();
    assert!(err.contains("`database.urll`"), "{err}");

    let missing = dir.path().join("missing.toml");
    let err = load(Some(&missing), &[]).unwrap_err();
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn secrets_can_come_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, "s3cret-from-file\n").unwrap();
    let config = load(
        None,
        &[(
            "VOUCH__MICROSOFT__APP_CLIENT_SECRET_FILE",
            secret_file.to_str().unwrap(),
        )],
    )
    .unwrap();
    assert_eq!(
        config.microsoft.app_client_secret.unwrap().expose_secret(),
        "s3cret-from-file",
        "the trailing newline is not part of the secret"
    );

    let err = load(
        None,
        &[("VOUCH__SMS__AUTH_TOKEN_FILE", "/nonexistent/token")],
    )
    .unwrap_err();
    assert!(err.contains("sms.auth_token"), "{err}");
    assert!(err.contains("/nonexistent/token"), "{err}");
}

#[test]
fn vouch_config_prints_everything_but_the_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let key = vouch::store::crypto::MasterKey::generate_encoded();
    let key_file = dir.path().join("master.key");
    std::fs::write(&key_file, key.expose_secret()).unwrap();
    let previous = vouch::store::crypto::MasterKey::generate_encoded();
    let output = Command::new(env!("CARGO_BIN_EXE_vouch"))
        .arg("config")
        .current_dir(dir.path())
        .env_clear()
        .env("VOUCH__ENCRYPTION__MASTER_KEY_FILE", &key_file)
        .env(
            "VOUCH__ENCRYPTION__PREVIOUS_KEYS",
            format!("[{}]", previous.expose_secret()),
        )
        .env("VOUCH__MICROSOFT__APP_CLIENT_ID", "app-id-visible")
        .env("VOUCH__MICROSOFT__APP_CLIENT_SECRET", "app-secret-hidden")
        .env("VOUCH__SMS__AUTH_TOKEN", "twilio-token-hidden")
        .env(
            "VOUCH__DATABASE__URL",
            "postgres://vouch:db-password-hidden@db.internal/vouch",
        )
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed =
        String::from_utf8(output.stdout).unwrap() + &String::from_utf8(output.stderr).unwrap();
    assert!(
        printed.contains("app-id-visible"),
        "non-secrets are shown: {printed}"
    );
    assert!(printed.contains("db.internal"), "{printed}");
    assert!(printed.contains("[redacted]"), "{printed}");
    for hidden in [
        key.expose_secret(),
        previous.expose_secret(),
        "app-secret-hidden",
        "twilio-token-hidden",
        "db-password-hidden",
    ] {
        assert!(!printed.contains(hidden), "leaked {hidden:?} in: {printed}");
    }
}

#[test]
fn the_binary_refuses_a_bad_value_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_vouch"))
        .arg("serve")
        .current_dir(dir.path())
        .env_clear()
        .env("VOUCH__HTTP__BIND", "localhost:eighty")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("`http.bind`"), "{stderr}");
    assert!(stderr.contains("VOUCH__HTTP__BIND"), "{stderr}");
}

#[test]
fn serve_without_a_master_key_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_vouch"))
        .arg("serve")
        .current_dir(dir.path())
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("encryption.master_key is not set"),
        "{stderr}"
    );
    assert!(stderr.contains("vouch rotate-key --generate"), "{stderr}");
}

#[test]
fn cache_sizes_and_lifetimes_are_configuration() {
    let defaults = load(None, &[]).unwrap();
    assert_eq!(defaults.cache.technicians.max_entries, 10_000);
    assert_eq!(defaults.cache.technicians.ttl_seconds, 300);
    assert_eq!(defaults.cache.connections.max_entries, 10_000);
    assert_eq!(defaults.cache.connections.ttl_seconds, 60);

    let config = load(
        None,
        &[
            ("VOUCH__CACHE__TECHNICIANS__MAX_ENTRIES", "50"),
            ("VOUCH__CACHE__CONNECTIONS__TTL_SECONDS", "5"),
        ],
    )
    .unwrap();
    assert_eq!(config.cache.technicians.max_entries, 50);
    assert_eq!(
        config.cache.technicians.ttl_seconds, 300,
        "the rest keeps its default"
    );
    assert_eq!(config.cache.connections.ttl_seconds, 5);

    let err = load(None, &[("VOUCH__CACHE__CONNECTIONS__TTL_SECONDS", "86401")]).unwrap_err();
    assert!(err.contains("cache.connections.ttl_seconds"), "{err}");
}

#[test]
fn every_cache_has_its_defaults_and_the_same_ceiling() {
    let defaults = load(None, &[]).unwrap().cache;
    let expected = [
        ("technicians", 10_000, 300),
        ("connections", 10_000, 60),
        ("session_state", 10_000, 60),
        ("tickets", 10_000, 60),
        ("connectwise_members", 10_000, 3600),
        ("halopsa_tokens", 10_000, 3000),
        ("halopsa_agents", 10_000, 300),
        ("autotask_zones", 10_000, 86_400),
        ("autotask_resources", 10_000, 300),
        ("microsoft_tokens", 10_000, 3600),
        ("microsoft_users", 50_000, 300),
        ("user_checks", 50_000, 60),
        ("psa_companies", 1_000, 60),
        ("psa_company_contacts", 10_000, 300),
        ("tenant_domains", 10_000, 3600),
        ("contact_searches", 1_000, 60),
    ];
    let named = defaults.named();
    assert_eq!(named.len(), expected.len());
    for ((name, limits), (expected_name, max_entries, ttl_seconds)) in named.iter().zip(expected) {
        assert_eq!(*name, expected_name);
        assert_eq!(limits.max_entries, max_entries, "cache.{name}.max_entries");
        assert_eq!(limits.ttl_seconds, ttl_seconds, "cache.{name}.ttl_seconds");
    }

    let config = load(
        None,
        &[
            ("VOUCH__CACHE__HALOPSA_TOKENS__TTL_SECONDS", "600"),
            ("VOUCH__CACHE__MICROSOFT_USERS__MAX_ENTRIES", "7"),
        ],
    )
    .unwrap();
    assert_eq!(config.cache.halopsa_tokens.ttl_seconds, 600);
    assert_eq!(config.cache.halopsa_tokens.max_entries, 10_000);
    assert_eq!(config.cache.microsoft_users.max_entries, 7);

    for (name, _) in named {
        let key = format!("VOUCH__CACHE__{}__TTL_SECONDS", name.to_uppercase());
        let err = load(None, &[(key.as_str(), "86401")]).unwrap_err();
        assert!(err.contains(&format!("cache.{name}.ttl_seconds")), "{err}");
    }
}

/// Every key `vouch config` knows is a row of the README's configuration table.
#[test]
fn the_readme_documents_every_key() {
    fn leaves(prefix: &str, value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (name, inner) in map {
                    let key = if prefix.is_empty() {
                        name.clone()
                    } else {
                        format!("{prefix}.{name}")
                    };
                    leaves(&key, inner, out);
                }
            }
            _ => out.push(prefix.to_owned()),
        }
    }
    let mut config = Config::default();
    // Secrets left unset are not serialised at all; set them so their keys are listed too.
    config.encryption.master_key = Some(vouch::store::crypto::MasterKey::generate_encoded());
    config.microsoft.app_client_secret = Some("x".to_owned().into());
    config.sms.auth_token = Some("x".to_owned().into());
    let mut keys = Vec::new();
    leaves("", &serde_json::to_value(&config).unwrap(), &mut keys);
    assert!(keys.len() > 30, "{keys:?}");
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let missing: Vec<_> = keys
        .iter()
        .filter(|key| !readme.contains(&format!("| `{key}` |")))
        .collect();
    assert!(missing.is_empty(), "not in the README's table: {missing:?}");
}

#[test]
fn string_keys_take_numeric_looking_values_from_the_environment() {
    // A phone number, a numeric id, a token of digits, a boolean word: each is text to a
    // string key, exactly as written (a leading `+` or zero kept).
    let config = load(
        None,
        &[
            ("VOUCH__SMS__FROM", "+14155550100"),
            ("VOUCH__SMS__ACCOUNT_SID", "00123"),
            ("VOUCH__SMS__AUTH_TOKEN", "987654321"),
            ("VOUCH__PSA__CONNECTWISE__CLIENT_ID", "true"),
            ("VOUCH__SMS__DEFAULT_REGION", "1.5"),
        ],
    )
    .unwrap();
    assert_eq!(config.sms.from.as_deref(), Some("+14155550100"));
    assert_eq!(config.sms.account_sid.as_deref(), Some("00123"));
    assert_eq!(
        config.sms.auth_token.as_ref().unwrap().expose_secret(),
        "987654321"
    );
    assert_eq!(config.psa.connectwise.client_id.as_deref(), Some("true"));
    assert_eq!(config.sms.default_region, "1.5");

    // Numeric keys still read their text as numbers, from the environment and from a file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vouch.toml");
    std::fs::write(&file, "[sms]\nfrom = \"+442071838750\"\n").unwrap();
    let config = load(
        Some(&file),
        &[
            ("VOUCH__HTTP__SHUTDOWN_GRACE_SECONDS", "7"),
            ("VOUCH__DATABASE__MAX_CONNECTIONS", "3"),
            ("VOUCH__SMS__REQUEST_TIMEOUT_SECONDS", "9"),
        ],
    )
    .unwrap();
    assert_eq!(config.http.shutdown_grace_seconds, 7);
    assert_eq!(config.database.max_connections, 3);
    assert_eq!(config.sms.from.as_deref(), Some("+442071838750"));
    let err = load(None, &[("VOUCH__DATABASE__MAX_CONNECTIONS", "-3")]).unwrap_err();
    assert!(err.contains("`database.max_connections`"), "{err}");
}

/// The pool's size and acquire timeout are configuration, and the store's pool is built with
/// them (a zero timeout would fail every request at once, so it is refused).
#[tokio::test]
async fn pool_size_and_acquire_timeout_reach_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("vouch.db").display());
    let config = load(
        None,
        &[
            ("VOUCH__DATABASE__URL", db.as_str()),
            ("VOUCH__DATABASE__MAX_CONNECTIONS", "7"),
            ("VOUCH__DATABASE__ACQUIRE_TIMEOUT_SECONDS", "3"),
        ],
    )
    .unwrap();
    assert_eq!(config.database.acquire_timeout_seconds, 3);
    let store = vouch::store::Store::connect(
        &config.database,
        std::sync::Arc::new(vouch::store::crypto::Keyring::new(
            vouch::store::crypto::MasterKey::parse(
                &vouch::store::crypto::MasterKey::generate_encoded(),
            )
            .unwrap(),
            [],
        )),
    )
    .await
    .unwrap();
    let pool = store.pool_settings();
    assert_eq!(pool.max_connections, 7);
    assert_eq!(pool.acquire_timeout, std::time::Duration::from_secs(3));
    let default = load(None, &[]).unwrap();
    assert_eq!(default.database.acquire_timeout_seconds, 10);
    let err = load(None, &[("VOUCH__DATABASE__ACQUIRE_TIMEOUT_SECONDS", "0")]).unwrap_err();
    assert!(err.contains("database.acquire_timeout_seconds"), "{err}");
}
