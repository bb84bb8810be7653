//! Secure Data Sharing through real HTTP: the API that creates, lists and revokes shares,
//! and the pages the recipient opens (a GET never counts a view; a POST reveals once), on
//! every backend.

use crate::{backends, common};
use backends::{contains, raw_database_contents};
use chrono::{Duration, Utc};
use common::{TestApp, TestDb};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use vouch::domain::MspPolicy;
use vouch::store::access::{random_token, sha256_hex};
use vouch::store::{
    audit::AuditQuery,
    msp::{MspAccount, NewMspAccount},
    shares::NewSecureShare,
};

const SECRET: &str = "Plaintext-Share-Secret-7Qx2";

struct Env {
    app: TestApp,
    msp: MspAccount,
    key: String,
    _db: TestDb,
}

async fn env_with(db: TestDb, name: &str, color: Option<&str>, logo: Option<&str>) -> Env {
    let app = TestApp::spawn(&db, true).await;
    let msp = app
        .store
        .create_msp(NewMspAccount {
            name: name.into(),
            brand_logo_url: logo.map(str::to_owned),
            brand_color: color.map(str::to_owned),
            policy: MspPolicy::default(),
        })
        .await
        .unwrap();
    let (_, key) = app.store.create_api_key(msp.id, "tests").await.unwrap();
    Env {
        app,
        msp,
        key: key.expose_secret().to_owned(),
        _db: db,
    }
}

async fn env(db: TestDb) -> Env {
    env_with(db, "Northwind IT", Some("#12ab34"), None).await
}

impl Env {
    async fn create(&self, body: Value) -> (StatusCode, Value) {
        let response = self
            .app
            .client
            .post(self.app.url("/api/v1/shares"))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|err| panic!("{status}: not JSON ({err}): {text}"));
        (status, body)
    }

    /// Creates a share through the API; returns its id and token.
    async fn share(&self, body: Value) -> (String, String) {
        let (status, body) = self.create(body).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let url = body["url"].as_str().unwrap();
        let token = url.rsplit('/').next().unwrap().to_owned();
        (body["id"].as_str().unwrap().to_owned(), token)
    }

    async fn get_page(&self, token: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let response = self
            .app
            .client
            .get(self.app.url(&format!("/s/{token}")))
            .send()
            .await
            .unwrap();
        (
            response.status(),
            response.headers().clone(),
            response.text().await.unwrap(),
        )
    }

    async fn reveal(&self, token: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let response = self
            .app
            .client
            .post(self.app.url(&format!("/s/{token}")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("")
            .send()
            .await
            .unwrap();
        (
            response.status(),
            response.headers().clone(),
            response.text().await.unwrap(),
        )
    }

    async fn views(&self, token: &str) -> i32 {
        self.app
            .store
            .find_share_by_token_hash(&sha256_hex(token))
            .await
            .unwrap()
            .expect("the share exists")
            .views
    }

    async fn audit(&self) -> Vec<vouch::store::audit::AuditEvent> {
        self.app
            .store
            .query(AuditQuery {
                msp_id: self.msp.id,
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap()
    }

    async fn stop(self) {
        self.app.stop().await;
    }
}

fn assert_share_headers(headers: &reqwest::header::HeaderMap) {
    let header = |name: &str| {
        headers
            .get(name)
            .unwrap_or_else(|| panic!("missing header {name}"))
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(header("cache-control"), "no-store");
    assert_eq!(header("referrer-policy"), "no-referrer");
    assert_eq!(header("x-robots-tag"), "noindex, nofollow");
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert!(header("content-type").starts_with("text/html"));
    let csp = header("content-security-policy");
    for directive in [
        "default-src 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{csp} lacks {directive}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
}

#[tokio::test]
async fn a_share_is_created_by_api_and_revealed_once_by_its_link() {
    for db in TestDb::all().await {
        let backend = db.backend;
        let env = env(db).await;
        let (status, created) = env.create(json!({ "content": SECRET })).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let url = created["url"].as_str().unwrap();
        let public_url = env.app.ctx.config.http.public_url.to_string();
        assert!(url.starts_with(&format!("{public_url}s/")), "{url}");
        let token = url.rsplit('/').next().unwrap().to_owned();
        assert_eq!(token.len(), 64);
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(created["max_views"], 1);
        let expires_at: chrono::DateTime<Utc> =
            created["expires_at"].as_str().unwrap().parse().unwrap();
        let expected = Utc::now() + Duration::hours(24);
        assert!(
            (expires_at - expected).num_seconds().abs() < 60,
            "{expires_at}"
        );
        assert!(created.get("content").is_none());

        // Link previews, scanners and the recipient's own reloads do not count.
        for _ in 0..5 {
            let (status, headers, page) = env.get_page(&token).await;
            assert_eq!(status, StatusCode::OK, "{backend:?}");
            assert_share_headers(&headers);
            assert!(page.contains("Northwind IT has shared a secure message with you"));
            assert!(page.contains("Reveal"));
            assert!(page.contains("<form method=\"post\">"));
            assert!(
                !page.contains(SECRET),
                "the GET page must not carry the secret"
            );
        }
        assert_eq!(
            env.views(&token).await,
            0,
            "{backend:?}: GETs counted views"
        );

        let (status, headers, page) = env.reveal(&token).await;
        assert_eq!(status, StatusCode::OK, "{backend:?}");
        assert_share_headers(&headers);
        assert!(page.contains(SECRET), "{page}");
        assert!(page.contains("readonly"));
        assert!(page.contains("Copy"));
        assert!(page.contains("This message has now been viewed and the link no longer works"));
        // The inline script runs only because it carries the response's nonce.
        let csp = headers["content-security-policy"].to_str().unwrap();
        let nonce = csp
            .split("'nonce-")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .unwrap();
        assert!(page.contains(&format!("<script nonce=\"{nonce}\">")));
        assert_eq!(env.views(&token).await, 1);

        let (status, headers, page) = env.reveal(&token).await;
        assert_eq!(status, StatusCode::GONE, "{backend:?}");
        assert_share_headers(&headers);
        assert!(!page.contains(SECRET));
        assert!(page.contains("This message has already been viewed"));
        assert!(page.contains("Ask Northwind IT to send a new one"));
        let (status, _, page) = env.get_page(&token).await;
        assert_eq!(status, StatusCode::GONE);
        assert!(!page.contains("Reveal"));
        assert_eq!(env.views(&token).await, 1);

        let events = env.audit().await;
        let actions: Vec<&str> = events.iter().map(|e| e.event.action.as_str()).collect();
        assert_eq!(
            actions,
            ["share.reveal_refused", "share.revealed", "share.created"],
            "{backend:?}"
        );
        let id = created["id"].as_str().unwrap();
        for event in &events {
            assert_eq!(event.event.subject_id.as_deref(), Some(id));
            assert_eq!(event.event.subject_kind.as_deref(), Some("secure_share"));
            let text = format!("{event:?}");
            assert!(!text.contains(SECRET), "audit holds the content: {text}");
            assert!(!text.contains(&token), "audit holds the token: {text}");
        }
        assert_eq!(events[2].event.actor.kind, vouch::domain::ActorKind::ApiKey);
        assert_eq!(events[1].event.outcome.as_str(), "success");
        assert_eq!(events[0].event.outcome.as_str(), "failure");
        assert_eq!(events[0].event.details["code"], "share_exhausted");
        env.stop().await;
    }
}

#[tokio::test]
async fn a_two_view_share_reveals_twice_then_is_gone() {
    for db in TestDb::all().await {
        let env = env(db).await;
        let (_, token) = env
            .share(json!({ "content": SECRET, "max_views": 2, "expires_in_minutes": 5 }))
            .await;
        let (status, _, page) = env.reveal(&token).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains(SECRET));
        assert!(page.contains("can be opened 1 more time,"), "{page}");
        let (status, _, page) = env.reveal(&token).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains(SECRET));
        assert!(page.contains("This message has now been viewed and the link no longer works"));
        let (status, _, page) = env.reveal(&token).await;
        assert_eq!(status, StatusCode::GONE);
        assert!(!page.contains(SECRET));
        assert_eq!(env.views(&token).await, 2);
        env.stop().await;
    }
}

#[tokio::test]
async fn concurrent_reveals_of_a_one_view_share_reveal_it_exactly_once() {
    for db in TestDb::all().await {
        let backend = db.backend;
        let env = env(db).await;
        let (_, token) = env.share(json!({ "content": SECRET })).await;
        let attempts = (0..10).map(|_| env.reveal(&token));
        let results = futures_util::future::join_all(attempts).await;
        let revealed: Vec<_> = results
            .iter()
            .filter(|(status, _, _)| *status == StatusCode::OK)
            .collect();
        assert_eq!(revealed.len(), 1, "{backend:?}: exactly one reveal wins");
        assert!(revealed[0].2.contains(SECRET));
        for (status, _, page) in &results {
            if *status != StatusCode::OK {
                assert_eq!(*status, StatusCode::GONE, "{backend:?}");
                assert!(!page.contains(SECRET));
            }
        }
        assert_eq!(env.views(&token).await, 1, "{backend:?}");
        let revealed_events = env
            .audit()
            .await
            .into_iter()
            .filter(|e| e.event.action == "share.revealed")
            .count();
        assert_eq!(revealed_events, 1);
        env.stop().await;
    }
}

#[tokio::test]
async fn an_expired_share_is_gone_and_says_whom_to_ask() {
    for db in TestDb::all().await {
        let backend = db.backend;
        let env = env(db).await;
        let token = random_token();
        let share = env
            .app
            .store
            .create_share(NewSecureShare {
                msp_id: env.msp.id,
                token_hash: sha256_hex(&token),
                content: SecretString::from(SECRET),
                expires_at: Utc::now() - Duration::seconds(1),
                max_views: 1,
                created_by_technician_id: None,
            })
            .await
            .unwrap();
        let (status, headers, page) = env.get_page(&token).await;
        assert_eq!(status, StatusCode::GONE, "{backend:?}");
        assert_share_headers(&headers);
        assert!(
            page.contains("This link has expired. Ask Northwind IT to send a new one."),
            "{page}"
        );
        let (status, _, page) = env.reveal(&token).await;
        assert_eq!(status, StatusCode::GONE, "{backend:?}");
        assert!(page.contains("This link has expired. Ask Northwind IT to send a new one."));
        assert!(!page.contains(SECRET));
        assert_eq!(env.views(&token).await, 0, "{backend:?}");
        let refused = env
            .audit()
            .await
            .into_iter()
            .find(|e| e.event.action == "share.reveal_refused")
            .expect("the refused reveal is audited");
        assert_eq!(refused.event.details["code"], "share_expired");
        assert_eq!(refused.event.subject_id, Some(share.id.to_string()));

        // Listed as expired.
        let list: Value = env
            .app
            .client
            .get(env.app.url("/api/v1/shares"))
            .bearer_auth(&env.key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(list[0]["status"], "expired");
        env.stop().await;
    }
}

#[tokio::test]
async fn unknown_and_malformed_tokens_are_not_found_without_naming_an_msp() {
    for db in TestDb::all().await {
        let env = env(db).await;
        let (_, real) = env.share(json!({ "content": SECRET })).await;
        for token in [
            random_token(),
            "abc".to_owned(),
            "g".repeat(64),
            format!("{real}0"),
            real[..63].to_owned(),
            "%2e%2e%2f%2e%2e%2fetc".to_owned(),
        ] {
            for (status, headers, page) in [env.get_page(&token).await, env.reveal(&token).await] {
                assert_eq!(status, StatusCode::NOT_FOUND, "{token}");
                assert_share_headers(&headers);
                assert!(page.contains("This link is not valid"), "{page}");
                assert!(!page.contains("Northwind"), "an unknown link names no MSP");
            }
        }
        assert_eq!(env.views(&real).await, 0);
        env.stop().await;
    }
}

#[tokio::test]
async fn a_revoked_share_is_gone_and_only_its_msp_can_revoke_it() {
    for db in TestDb::all().await {
        let env = env(db).await;
        let (id, token) = env.share(json!({ "content": SECRET })).await;

        let other = env
            .app
            .store
            .create_msp(NewMspAccount {
                name: "Other MSP".into(),
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
        for (key, target) in [
            (other_key.expose_secret().to_owned(), id.clone()),
            (env.key.clone(), uuid::Uuid::now_v7().to_string()),
        ] {
            let response = env
                .app
                .client
                .delete(env.app.url(&format!("/api/v1/shares/{target}")))
                .bearer_auth(key)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::NOT_FOUND);
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["code"], "share_not_found");
            assert!(
                body["message"]
                    .as_str()
                    .unwrap()
                    .contains("GET /api/v1/shares")
            );
        }
        let (status, _, _) = env.get_page(&token).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "another MSP's attempt changed nothing"
        );

        for _ in 0..2 {
            let response = env
                .app
                .client
                .delete(env.app.url(&format!("/api/v1/shares/{id}")))
                .bearer_auth(&env.key)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::NO_CONTENT);
        }
        let (status, headers, page) = env.get_page(&token).await;
        assert_eq!(status, StatusCode::GONE);
        assert_share_headers(&headers);
        assert!(
            page.contains("Northwind IT has withdrawn this link"),
            "{page}"
        );
        let (status, _, page) = env.reveal(&token).await;
        assert_eq!(status, StatusCode::GONE);
        assert!(!page.contains(SECRET));
        assert_eq!(env.views(&token).await, 0);

        let events = env.audit().await;
        let revoked: Vec<_> = events
            .iter()
            .filter(|e| e.event.action == "share.revoked")
            .collect();
        assert_eq!(revoked.len(), 1, "a second revoke changes nothing");
        assert_eq!(revoked[0].event.subject_id.as_deref(), Some(id.as_str()));
        assert_eq!(
            revoked[0].event.actor.kind,
            vouch::domain::ActorKind::ApiKey
        );
        let refused = events
            .iter()
            .find(|e| e.event.action == "share.reveal_refused")
            .unwrap();
        assert_eq!(refused.event.details["code"], "share_revoked");
        env.stop().await;
    }
}

#[tokio::test]
async fn the_list_shows_status_but_never_content_or_link() {
    for db in TestDb::all().await {
        let env = env(db).await;
        let (first, first_token) = env.share(json!({ "content": SECRET })).await;
        let (second, second_token) = env
            .share(json!({ "content": SECRET, "max_views": 3 }))
            .await;
        env.reveal(&first_token).await;
        let response = env
            .app
            .client
            .get(env.app.url("/api/v1/shares"))
            .bearer_auth(&env.key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let text = response.text().await.unwrap();
        assert!(!text.contains(SECRET));
        assert!(!text.contains(&first_token) && !text.contains(&second_token));
        assert!(!text.contains("\"url\"") && !text.contains("\"content\""));
        let list: Value = serde_json::from_str(&text).unwrap();
        let list = list.as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["id"], second.as_str(), "newest first");
        assert_eq!(list[0]["status"], "active");
        assert_eq!(list[0]["views"], 0);
        assert_eq!(list[0]["views_left"], 3);
        assert_eq!(list[1]["id"], first.as_str());
        assert_eq!(list[1]["status"], "exhausted");
        assert_eq!(list[1]["views"], 1);
        assert!(list[1]["last_viewed_at"].is_string());

        // Another MSP sees none of them.
        let other = env
            .app
            .store
            .create_msp(NewMspAccount {
                name: "Other MSP".into(),
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
        let list: Value = env
            .app
            .client
            .get(env.app.url("/api/v1/shares"))
            .bearer_auth(other_key.expose_secret())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(list, json!([]));
        env.stop().await;
    }
}

#[tokio::test]
async fn the_database_holds_neither_the_content_nor_the_token() {
    for db in TestDb::all().await {
        let backend = db.backend;
        let env = env(db).await;
        let (id, token) = env
            .share(json!({ "content": SECRET, "max_views": 2 }))
            .await;
        let (status, _, _) = env.reveal(&token).await;
        assert_eq!(status, StatusCode::OK);
        let contents = raw_database_contents(&env._db, &env.app.store).await;
        assert!(
            contains(&contents, "Northwind IT") && contains(&contents, "share.revealed"),
            "{backend:?}: the scan must see ordinary values, or it proves nothing"
        );
        assert!(
            contains(&contents, &sha256_hex(&token)),
            "{backend:?}: the scan must see the token's hash"
        );
        assert!(
            !contains(&contents, SECRET),
            "{backend:?}: plaintext content stored"
        );
        assert!(
            !contains(&contents, &token),
            "{backend:?}: the token itself stored"
        );
        let _ = id;
        env.stop().await;
    }
}

#[tokio::test]
async fn pages_carry_the_msp_branding_and_refuse_an_unsafe_colour() {
    let env = env_with(
        TestDb::sqlite().await,
        "Contoso Support",
        Some("#A1B2C3"),
        Some("https://cdn.contoso.example/logo.png"),
    )
    .await;
    let (_, token) = env.share(json!({ "content": SECRET })).await;
    let (status, headers, page) = env.get_page(&token).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Contoso Support has shared a secure message with you"));
    // The brand colour reaches the page through its brand stylesheet.
    assert!(page.contains("/pods/assets/brand/a1b2c3.css"), "{page}");
    let css = env
        .app
        .client
        .get(env.app.url("/pods/assets/brand/a1b2c3.css"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(css.contains("--brand: #a1b2c3;"), "{css}");
    assert!(page.contains("cdn.contoso.example"));
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("img-src https://cdn.contoso.example;"),
        "{csp}"
    );
    assert!(page.contains("This link works until"));
    env.stop().await;

    let env = env_with(
        TestDb::sqlite().await,
        "Evil <script>alert(1)</script> IT",
        Some("red;}</style><script>alert(2)</script>"),
        Some("javascript:alert(3)"),
    )
    .await;
    let (_, token) = env.share(json!({ "content": SECRET })).await;
    for (status, headers, page) in [env.get_page(&token).await, env.reveal(&token).await] {
        assert_eq!(status, StatusCode::OK);
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(!page.contains("red;}"), "{page}");
        assert!(!page.contains("javascript:"), "{page}");
        assert!(page.contains("Evil &lt;script&gt;alert(1)&lt;&#x2f;script&gt; IT"));
        assert!(page.contains(&format!(
            "/pods/assets/brand/{}.css",
            vouch::core::share::DEFAULT_BRAND_COLOR.trim_start_matches('#')
        )));
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("img-src 'none'"), "{csp}");
    }
    env.stop().await;
}

#[tokio::test]
async fn revealed_content_is_escaped() {
    let env = env(TestDb::sqlite().await).await;
    let (_, token) = env
        .share(json!({ "content": "</textarea><script>alert(1)</script>" }))
        .await;
    let (status, _, page) = env.reveal(&token).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("</textarea><script>"));
    assert!(page.contains("&lt;&#x2f;textarea&gt;&lt;script&gt;alert(1)"));
    env.stop().await;
}

#[tokio::test]
async fn the_api_refuses_invalid_shares_and_missing_keys() {
    for db in TestDb::all().await {
        let env = env(db).await;
        for (body, field) in [
            (json!({ "content": "" }), "content"),
            (json!({ "content": "   \n" }), "content"),
            (json!({ "content": "x".repeat(10_001) }), "content"),
            (json!({ "content": SECRET, "max_views": 0 }), "max_views"),
            (json!({ "content": SECRET, "max_views": 11 }), "max_views"),
            (
                json!({ "content": SECRET, "expires_in_minutes": 1 }),
                "expires_in",
            ),
            (
                json!({ "content": SECRET, "expires_in_minutes": 10_081 }),
                "expires_in",
            ),
            (json!({ "content": SECRET, "max_views": -1 }), "max_views"),
            (json!({ "expires_in_minutes": 60 }), "content"),
            // A value of the wrong type is not echoed: it may be the secret.
            (json!({ "content": [SECRET] }), "could not be read"),
            (
                json!({ "content": { "password": SECRET } }),
                "could not be read",
            ),
        ] {
            let (status, error) = env.create(body.clone()).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(error["code"], "invalid_request", "{body}");
            let message = error["message"].as_str().unwrap();
            assert!(message.contains(field), "{body}: {message}");
            assert!(!message.contains(SECRET), "errors never echo the content");
        }
        let response = env
            .app
            .client
            .post(env.app.url("/api/v1/shares"))
            .bearer_auth(&env.key)
            .header("content-type", "application/json")
            .body("not json")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["code"], "invalid_request");
        let response = env
            .app
            .client
            .delete(env.app.url("/api/v1/shares/not-a-uuid"))
            .bearer_auth(&env.key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["code"], "invalid_request");

        // The limits themselves are allowed.
        for body in [
            json!({ "content": "é".repeat(10_000) }),
            json!({ "content": SECRET, "max_views": 10, "expires_in_minutes": 10_080 }),
            json!({ "content": SECRET, "max_views": 1, "expires_in_minutes": 5 }),
        ] {
            let (status, created) = env.create(body).await;
            assert_eq!(status, StatusCode::CREATED, "{created}");
        }
        assert_eq!(
            env.app.store.list_shares(env.msp.id).await.unwrap().len(),
            3,
            "refused requests create nothing"
        );

        for key in [None, Some("vouch_not-a-key")] {
            let mut request = env
                .app
                .client
                .post(env.app.url("/api/v1/shares"))
                .json(&json!({ "content": SECRET }));
            if let Some(key) = key {
                request = request.bearer_auth(key);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["code"], "unauthorized");
        }
        for request in [
            env.app.client.get(env.app.url("/api/v1/shares")),
            env.app.client.delete(
                env.app
                    .url(&format!("/api/v1/shares/{}", uuid::Uuid::now_v7())),
            ),
        ] {
            assert_eq!(
                request.send().await.unwrap().status(),
                StatusCode::UNAUTHORIZED
            );
        }
        env.stop().await;
    }
}
