//! The HTTP surface: health, readiness, metrics, request ids, the error shape, and graceful
//! shutdown of the real binary.

use crate::common;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Backend, TestApp, TestDb, free_port, new_key};
use sea_orm::{ConnectOptions, ConnectionTrait, Database};

#[tokio::test]
async fn health_readiness_and_system_info() {
    for db in TestDb::all().await {
        let app = TestApp::spawn(&db, true).await;
        let health = app.client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(health.status(), 200);

        let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 200);
        let body: serde_json::Value = ready.json().await.unwrap();
        assert_eq!(
            body,
            serde_json::json!({ "status": "ready" }),
            "nothing more"
        );

        let info: serde_json::Value = app
            .client
            .get(app.url("/api/v1/system/info"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let expected = match db.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        assert_eq!(info["database"], expected);
        app.stop().await;
    }
}

/// Everything logged on this thread at INFO and above, as text. `#[tokio::test]` runs the
/// test and the server it spawns on one thread, so a thread-local subscriber sees the
/// server's lines, and no other test's.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    /// The lines logged since the last call.
    fn take(&self) -> Vec<String> {
        let bytes = std::mem::take(&mut *self.0.lock().unwrap());
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

#[tokio::test]
async fn readiness_fails_until_migrations_are_applied_and_says_nothing_more() {
    for db in TestDb::all().await {
        let logs = CapturedLogs::default();
        let _guard = logs.install();
        let app = TestApp::spawn(&db, false).await;
        logs.take();
        for _ in 0..3 {
            let response = app.client.get(app.url("/readyz")).send().await.unwrap();
            assert_eq!(response.status(), 503, "{:?}", db.backend);
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body, serde_json::json!({ "status": "not_ready" }));
        }
        // The cause is logged, once for as long as it lasts.
        let lines = logs.take();
        let causes: Vec<&String> = lines.iter().filter(|l| l.contains("not ready")).collect();
        assert_eq!(causes.len(), 1, "{:?}: {lines:#?}", db.backend);
        assert!(causes[0].contains("WARN"), "{}", causes[0]);
        assert!(
            causes[0].contains("m20261125_000001_foundation"),
            "{}",
            causes[0]
        );

        app.store.migrate().await.unwrap();
        logs.take();
        for _ in 0..3 {
            let response = app.client.get(app.url("/readyz")).send().await.unwrap();
            assert_eq!(response.status(), 200, "{:?}", db.backend);
        }
        // One line when it recovers; otherwise only each request's own line. Before, each
        // probe on PostgreSQL logged three notices ("relation \"seaql_migrations\" already
        // exists, skipping") from the migrator's status check.
        let lines = logs.take();
        let others: Vec<&String> = lines
            .iter()
            .filter(|l| !l.contains("request completed"))
            .collect();
        assert_eq!(others.len(), 1, "{:?}: {lines:#?}", db.backend);
        assert!(others[0].contains("the database is ready"), "{}", others[0]);
        app.stop().await;
    }
}

#[tokio::test]
async fn every_response_has_a_request_id_and_errors_have_the_documented_shape() {
    let db = TestDb::sqlite().await;
    let app = TestApp::spawn(&db, true).await;

    let generated = app.client.get(app.url("/healthz")).send().await.unwrap();
    let id = generated.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(id.len(), 36, "a generated UUID: {id}");

    let kept = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "psa-trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "psa-trace-42");

    let replaced = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "x".repeat(200))
        .send()
        .await
        .unwrap();
    assert_ne!(replaced.headers()["x-request-id"], "x".repeat(200).as_str());

    let missing = app
        .client
        .get(app.url("/api/v1/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.headers().contains_key("x-request-id"));
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(body["code"], "not_found");
    assert!(body["message"].as_str().unwrap().contains("/api/docs"));

    let wrong_method = app.client.delete(app.url("/healthz")).send().await.unwrap();
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(wrong_method.headers()["allow"], "GET, HEAD");
    let body: serde_json::Value = wrong_method.json().await.unwrap();
    assert_eq!(body["code"], "method_not_allowed");
    app.stop().await;
}

#[tokio::test]
async fn metrics_count_requests_by_route_without_raw_paths() {
    let db = TestDb::sqlite().await;
    let app = TestApp::spawn(&db, true).await;
    for _ in 0..3 {
        app.client.get(app.url("/healthz")).send().await.unwrap();
    }
    app.client
        .get(app.url("/api/v1/system/info"))
        .send()
        .await
        .unwrap();
    app.client
        .get(app.url("/s/secret-token-in-a-path"))
        .send()
        .await
        .unwrap();
    app.client
        .get(app.url("/no-such-page"))
        .send()
        .await
        .unwrap();
    app.ctx
        .metrics
        .observe_upstream("graph", vouch::telemetry::UpstreamOutcome::Throttled, 0.2);

    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    assert!(
        text.contains(r#"vouch_http_requests_total{method="GET",route="healthz",status="200"} 3"#),
        "{text}"
    );
    assert!(text.contains(r#"route="system_info""#), "{text}");
    assert!(
        text.contains(r#"vouch_http_request_duration_seconds_bucket{method="GET",route="healthz""#)
    );
    assert!(text.contains(r#"route="unmatched",status="404""#), "{text}");
    assert!(
        text.contains(r#"route="secure_share",status="404""#),
        "{text}"
    );
    assert!(
        text.contains(r#"vouch_upstream_calls_total{outcome="throttled",service="graph"} 1"#),
        "{text}"
    );
    assert!(!text.contains("secret-token-in-a-path"));
    app.stop().await;
}

#[tokio::test]
async fn the_api_documentation_is_served() {
    let db = TestDb::sqlite().await;
    let app = TestApp::spawn(&db, true).await;
    let docs = app.client.get(app.url("/api/docs")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("swagger"));
    let spec = app
        .client
        .get(app.url("/api/openapi.yaml"))
        .send()
        .await
        .unwrap();
    assert_eq!(spec.text().await.unwrap(), vouch::api::spec_yaml());
    app.stop().await;
}

// ------------------------------------------------------------------------------------------
// The real binary
// ------------------------------------------------------------------------------------------

struct Running {
    child: Child,
    base_url: String,
    stdout: std::sync::mpsc::Receiver<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_binary(db: &TestDb) -> Running {
    let port = free_port();
    let (key, _) = new_key();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vouch"))
        .arg("serve")
        .env_clear()
        .env("VOUCH__DATABASE__URL", &db.url)
        .env("VOUCH__ENCRYPTION__MASTER_KEY", key)
        .env("VOUCH__HTTP__BIND", format!("127.0.0.1:{port}"))
        .env("VOUCH__HTTP__SHUTDOWN_GRACE_SECONDS", "20")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let base_url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = client.get(format!("{base_url}/readyz")).send().await
            && r.status() == 200
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "vouch serve did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Running {
        child,
        base_url,
        stdout: rx,
    }
}

fn send_sigterm(child: &Child) {
    // SAFETY: kill(2) with a pid we spawned and still own.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
}

/// Makes the database slow for Vouch: another session holds a lock that Vouch's readiness
/// query must wait for, exactly as a long migration or a heavy transaction would.
async fn hold_lock(db: &TestDb) -> sea_orm::DatabaseConnection {
    let mut options = ConnectOptions::new(db.url.clone());
    options
        .max_connections(1)
        .min_connections(1)
        .sqlx_logging(false);
    let conn = Database::connect(options).await.unwrap();
    match db.backend {
        Backend::Sqlite => {
            conn.execute_unprepared("BEGIN EXCLUSIVE").await.unwrap();
        }
        Backend::Postgres => {
            conn.execute_unprepared("BEGIN").await.unwrap();
            conn.execute_unprepared("LOCK TABLE seaql_migrations IN ACCESS EXCLUSIVE MODE")
                .await
                .unwrap();
        }
    }
    conn
}

#[tokio::test]
async fn sigterm_lets_a_slow_in_flight_request_complete() {
    for db in TestDb::all().await {
        let mut running = start_binary(&db).await;
        let lock = hold_lock(&db).await;

        let client = reqwest::Client::new();
        let slow_url = format!("{}/readyz", running.base_url);
        let slow = tokio::spawn(async move {
            let started = Instant::now();
            let response = client.get(slow_url).send().await;
            (response, started.elapsed())
        });
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(
            !slow.is_finished(),
            "{:?}: the request is held by the lock",
            db.backend
        );

        send_sigterm(&running.child);
        tokio::time::sleep(Duration::from_millis(400)).await;
        // No new connections once shutdown has begun...
        let refused = reqwest::Client::new()
            .get(format!("{}/healthz", running.base_url))
            .timeout(Duration::from_secs(2))
            .send()
            .await;
        assert!(
            refused.is_err(),
            "{:?}: new requests are refused during shutdown",
            db.backend
        );
        assert!(
            running.child.try_wait().unwrap().is_none(),
            "still draining"
        );

        // ...but the in-flight one completes once the database answers.
        lock.execute_unprepared("COMMIT").await.unwrap();
        let (response, elapsed) = slow.await.unwrap();
        let response = response.expect("the in-flight request got its answer");
        assert_eq!(response.status(), 200, "{:?}", db.backend);
        assert!(
            elapsed >= Duration::from_millis(700),
            "it really was slow: {elapsed:?}"
        );

        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = running.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "vouch did not exit after draining"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(
            status.success(),
            "{:?}: clean exit, got {status:?}",
            db.backend
        );
        let logs: Vec<String> = running.stdout.try_iter().collect();
        assert!(
            logs.iter().any(|l| l.contains("shutdown requested")),
            "{logs:?}"
        );
    }
}

#[tokio::test]
async fn serve_logs_json_lines_carrying_the_request_id() {
    let db = TestDb::sqlite().await;
    let running = start_binary(&db).await;
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/system/info", running.base_url))
        .send()
        .await
        .unwrap();
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(5);
    let line = loop {
        if let Ok(line) = running.stdout.recv_timeout(Duration::from_millis(100))
            && line.contains(&request_id)
        {
            break line;
        }
        assert!(
            Instant::now() < deadline,
            "no log line carries {request_id}"
        );
    };
    let entry: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(entry["span"]["request_id"], request_id.as_str());
    assert_eq!(entry["fields"]["route"], "system_info");
    assert_eq!(entry["fields"]["status"], 200);
}
