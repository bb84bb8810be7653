//! Limits that keep one caller from exhausting Vouch: request bodies are bounded before they
//! are read, on every route and whatever their content type; string fields are bounded
//! before any upstream call.
//!
//! The body tests speak raw HTTP/1.1 over TCP, so they control exactly what is sent: a
//! declared length with no body behind it, or chunks with no end.

mod common;

use std::time::Duration;

use common::{TestApp, TestDb};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vouch::api::error::MAX_BODY_BYTES;

/// How long an answer may take; a server that waits for a body never sent takes forever.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// A response read off the wire.
struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

/// Sends `head` (the request line and headers, without the blank line) then `body`, and
/// reads the answer without sending anything more.
async fn exchange(app: &TestApp, head: &str, body: &[u8]) -> Answer {
    let addr = app.base_url.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    let request = format!("{head}\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    // The server may answer (and stop reading) before the whole body is in; a refused write
    // then is expected.
    let _ = stream.write_all(body).await;
    let mut received = Vec::new();
    let read = tokio::time::timeout(ANSWER_WITHIN, async {
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
            if let Some(answer) = parse(&received) {
                return Some(answer);
            }
        }
        parse(&received)
    })
    .await;
    match read {
        Ok(Some(answer)) => answer,
        Ok(None) => panic!(
            "no complete answer to {head:?}; got {:?}",
            String::from_utf8_lossy(&received)
        ),
        Err(_) => panic!("no answer to {head:?} within {ANSWER_WITHIN:?}: the body was awaited"),
    }
}

/// A complete response with a `Content-Length`, if `raw` holds one.
fn parse(raw: &[u8]) -> Option<Answer> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let mut content_type = String::new();
    let mut length = None;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        match name.trim().to_ascii_lowercase().as_str() {
            "content-type" => content_type = value.trim().to_owned(),
            "content-length" => length = value.trim().parse::<usize>().ok(),
            _ => {}
        }
    }
    (body.len() >= length?).then(|| Answer {
        status,
        content_type,
        body: body.to_owned(),
    })
}

fn assert_payload_too_large(answer: &Answer, what: &str) {
    assert_eq!(answer.status, 413, "{what}: {}", answer.body);
    assert!(
        answer.content_type.starts_with("application/json"),
        "{what}: {}",
        answer.content_type
    );
    let body: Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(body["code"], "payload_too_large", "{what}: {body}");
    assert!(
        body["message"].as_str().unwrap().contains("larger"),
        "{what}: {body}"
    );
}

/// The routes probed, each with a content type its reader accepts. The pod's is a form type
/// with a suffix, which poem's `Form` reads whole and the boundary's own check passed by.
const ROUTES: &[(&str, &str)] = &[
    ("POST /api/v1/verifications", "application/json"),
    (
        "POST /pods/autotask",
        "application/vnd.vouch+x-www-form-urlencoded",
    ),
    ("POST /pods/halopsa", "application/x-www-form-urlencoded"),
    ("POST /s/some-token", "application/x-www-form-urlencoded"),
];

#[tokio::test]
async fn a_declared_length_over_the_limit_is_refused_before_the_body_is_sent() {
    let db = TestDb::sqlite().await;
    let app = TestApp::spawn(&db, true).await;
    for (line, content_type) in ROUTES {
        // 50 MB announced, nothing sent: the answer cannot wait for the body.
        let head = format!(
            "{line} HTTP/1.1\r\nContent-Type: {content_type}\r\nContent-Length: {}",
            50 * 1024 * 1024
        );
        let answer = exchange(&app, &head, b"").await;
        assert_payload_too_large(&answer, line);
    }
    app.stop().await;
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_cut_at_the_limit() {
    let db = TestDb::sqlite().await;
    let app = TestApp::spawn(&db, true).await;
    for (line, content_type) in ROUTES {
        // One byte over the limit, in chunks, and never the closing chunk: a reader that
        // wanted the whole body would wait forever.
        let mut body = Vec::new();
        let mut left = MAX_BODY_BYTES + 1;
        while left > 0 {
            let size = left.min(64 * 1024);
            body.extend_from_slice(format!("{size:x}\r\n").as_bytes());
            body.extend(std::iter::repeat_n(b'a', size));
            body.extend_from_slice(b"\r\n");
            left -= size;
        }
        let head = format!(
            "{line} HTTP/1.1\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked"
        );
        let answer = exchange(&app, &head, &body).await;
        assert_payload_too_large(&answer, line);
    }
    app.stop().await;
}

#[tokio::test]
async fn a_body_within_the_limit_still_reaches_its_reader() {
    let db = TestDb::sqlite().await;
    let app = TestApp::spawn(&db, true).await;
    // A chunked JSON body under the limit is read and answered on its merits (no API key).
    let json = br#"{"tenant_id": "t", "user": "u@example.com", "method": "push"}"#;
    let mut body = format!("{:x}\r\n", json.len()).into_bytes();
    body.extend_from_slice(json);
    body.extend_from_slice(b"\r\n0\r\n\r\n");
    let answer = exchange(
        &app,
        "POST /api/v1/verifications HTTP/1.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked",
        &body,
    )
    .await;
    assert_eq!(answer.status, 401, "{}", answer.body);
    app.stop().await;
}

/// A string field over its limit is refused with the documented 400 naming the field, before
/// Vouch asks Microsoft anything about it.
#[tokio::test]
async fn string_fields_over_their_limits_are_refused_before_any_upstream_call() {
    use common::world::World;
    use reqwest::Method;
    use serde_json::json;
    use vouch::domain::MspPolicy;
    use vouch::sandbox::microsoft::{DEMO_TENANT_ID, Service};

    let db = TestDb::sqlite().await;
    let world = World::start(&db, MspPolicy::default()).await;
    let long_user = format!("{}@contoso.com", "a".repeat(100_000));
    let at = |n: usize| "x".repeat(n);
    let cases: Vec<(Method, String, Option<Value>, &str, usize)> = vec![
        (
            Method::POST,
            "/api/v1/verifications".into(),
            Some(json!({ "tenant_id": DEMO_TENANT_ID, "user": long_user, "method": "push" })),
            "user",
            320,
        ),
        (
            Method::POST,
            "/api/v1/verifications".into(),
            Some(json!({ "tenant_id": at(257), "user": "dana@contoso.com", "method": "push" })),
            "tenant_id",
            256,
        ),
        (
            Method::POST,
            "/api/v1/verifications".into(),
            Some(json!({
                "tenant_id": DEMO_TENANT_ID, "user": "dana@contoso.com", "method": "push",
                "is_ticket_contact": false, "reason": at(501),
            })),
            "reason",
            500,
        ),
        (
            Method::POST,
            "/api/v1/verifications".into(),
            Some(json!({
                "tenant_id": DEMO_TENANT_ID, "user": "dana@contoso.com", "method": "push",
                "ticket": { "ticket_id": at(257) },
            })),
            "ticket.ticket_id",
            256,
        ),
        (
            Method::POST,
            "/api/v1/users/default-method".into(),
            Some(json!({ "tenant_id": DEMO_TENANT_ID, "user": at(321), "confirm": true })),
            "user",
            320,
        ),
        (
            Method::POST,
            "/api/v1/shares".into(),
            Some(json!({
                "content": "hello",
                "send_to": { "tenant_id": DEMO_TENANT_ID, "user": at(321) },
            })),
            "send_to.user",
            320,
        ),
        (
            Method::GET,
            format!(
                "/api/v1/users/methods?tenant_id={DEMO_TENANT_ID}&user={}",
                at(5000)
            ),
            None,
            "user",
            320,
        ),
    ];
    for (method, path, body, field, limit) in cases {
        world.microsoft.clear_requests();
        let mut request = world.api(method.clone(), &path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let error: Value = response.json().await.unwrap();
        assert_eq!(status, 400, "{method} {path:.60} ({field}): {error}");
        assert_eq!(error["code"], "invalid_request", "{error}");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("`{field}`")),
            "{field}: {message}"
        );
        if path.contains('?') {
            // A query parameter is named; its limit is in the document.
        } else {
            assert!(
                message.contains(&format!("at most {limit} characters")),
                "{field}: {message}"
            );
        }
        assert!(
            !message.contains("xxxx"),
            "the value is not echoed: {message}"
        );
        let upstream: Vec<String> = world
            .microsoft
            .requests()
            .into_iter()
            .filter(|r| r.service != Service::Login)
            .map(|r| format!("{} {:.80}", r.method, r.path))
            .collect();
        assert!(
            upstream.is_empty(),
            "{field}: Microsoft was asked about an oversized value: {upstream:?}"
        );
    }

    // An over-long Idempotency-Key is refused too, naming the header.
    let response = world
        .api(Method::POST, "/api/v1/password-resets")
        .header("Idempotency-Key", at(257))
        .json(&json!({
            "tenant_id": DEMO_TENANT_ID, "user": "dana@contoso.com",
            "verification_id": uuid::Uuid::now_v7(), "confirm": true,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key"),
        "{error}"
    );

    // At the limit, the value is taken (and looked up: no such user).
    let at_limit = format!("{}@contoso.com", "a".repeat(320 - "@contoso.com".len()));
    let response = world
        .api(Method::POST, "/api/v1/verifications")
        .json(&json!({ "tenant_id": DEMO_TENANT_ID, "user": at_limit, "method": "push" }))
        .send()
        .await
        .unwrap();
    let error: Value = response.json().await.unwrap();
    assert_ne!(error["code"], "invalid_request", "{error}");
}

/// Set in the child process of the open-files test, which may lower its own limit without
/// starving the tests running beside it.
const EMFILE_CHILD: &str = "VOUCH_LIMITS_EMFILE_CHILD";

/// Out of file descriptors, a call upstream fails as `too_many_open_files` (a 503 saying to
/// raise the limit), never as the upstream being unavailable. The process lowers its own
/// open-file limit to the descriptors it already holds, so the next socket is refused with
/// EMFILE.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn running_out_of_file_descriptors_says_so() {
    if std::env::var_os(EMFILE_CHILD).is_none() {
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "running_out_of_file_descriptors_says_so",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(EMFILE_CHILD, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stdout}\n{stderr}");
        assert!(stdout.contains("1 passed"), "{stdout}");
        return;
    }
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    use vouch::api::error::status_of;
    use vouch::domain::ErrorCode;
    use vouch::microsoft::{MicrosoftError, MicrosoftErrorKind};
    use vouch::upstream::{Idempotency, RetryPolicy, TransportError, Upstream};

    // Somewhere that would answer, so only the missing descriptor can fail the call.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let upstream = Upstream::new(
        "graph",
        Duration::from_secs(5),
        vouch::telemetry::Metrics::new(),
        RetryPolicy::default(),
    );
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    // A new descriptor takes the lowest free number, which must be under the soft limit: a
    // limit of that number refuses the next one.
    let lowest_free = {
        use std::os::fd::AsRawFd;
        std::fs::File::open("/dev/null").unwrap().as_raw_fd() as u64
    };
    setrlimit(Resource::RLIMIT_NOFILE, lowest_free, hard).unwrap();
    let result = upstream
        .send(Idempotency::Idempotent, |client| client.get(&url))
        .await;
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    assert_eq!(result.err(), Some(TransportError::TooManyOpenFiles));

    // Each service names it the same way, as Vouch's own limit.
    let microsoft = MicrosoftError::new(MicrosoftErrorKind::TooManyOpenFiles);
    let psa = vouch::psa::PsaError::from(TransportError::TooManyOpenFiles);
    let sms = vouch::sms::SmsError::TooManyOpenFiles;
    for (code, message) in [
        (microsoft.code(), microsoft.message()),
        (psa.code(), psa.to_string()),
        (sms.code(), sms.to_string()),
    ] {
        assert_eq!(code, ErrorCode::TooManyOpenFiles);
        assert_eq!(code, "too_many_open_files");
        assert_eq!(status_of(code), 503);
        assert!(message.contains("too many open files"), "{message}");
        assert!(message.contains("open-file limit"), "{message}");
        assert!(
            !message.contains("Microsoft's service is unavailable"),
            "{message}"
        );
    }
}
