//! The MSP console's accounts and sign-in, over real HTTP on every backend: the set-up link
//! and TOTP enrolment, wrong and unknown credentials, backoff and lockout, CSRF, sessions
//! after sign-out, disabling and idling, admin-only pages, MSP isolation, a session on two
//! instances, the `vouch user create` link, and a first sign-in in Chromium.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use secrecy::ExposeSecret;
use totp_rs::{Algorithm, Secret, TOTP};
use vouch::core::accounts::NewUserInput;
use vouch::domain::{AuditCategory, ConsoleRole, MspPolicy};
use vouch::store::audit::AuditQuery;
use vouch::store::entities::{console_session, console_user};
use vouch::store::msp::{MspAccount, NewMspAccount};

use crate::backends::{on_every_backend, raw_database_contents};
use crate::common::console::{Agent, Page, csrf_of, system};
use crate::common::world::World;
use crate::common::{TestApp, TestDb, free_port};

const ADMIN_PASSWORD: &str = "a long admin passphrase 1";
const TECH_PASSWORD: &str = "a long technician passphrase 1";

/// A world whose public URL is its own address, so the console's Origin check holds for
/// requests to it (as it does behind a real deployment's one address).
async fn world(db: &TestDb) -> World {
    world_with(db, |_| {}).await
}

async fn world_with(db: &TestDb, adjust: impl FnOnce(&mut vouch::config::Config)) -> World {
    let port = free_port();
    World::start_with(db, MspPolicy::default(), |c| {
        c.http.bind = format!("127.0.0.1:{port}").parse().unwrap();
        c.http.public_url = format!("http://127.0.0.1:{port}/").parse().unwrap();
        adjust(c);
    })
    .await
}

fn as_refs(form: &[(String, String)]) -> Vec<(&str, &str)> {
    form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// The TOTP secret the enrolment page shows as text.
fn secret_of(html: &str) -> String {
    let at = html
        .find("id=\"totp-secret\">")
        .expect("the secret as text")
        + 17;
    html[at..at + html[at..].find('<').unwrap()].replace(' ', "")
}

fn recovery_codes_of(html: &str) -> Vec<String> {
    html.split("<li><code>")
        .skip(1)
        .map(|rest| rest[..rest.find('<').unwrap()].to_owned())
        .collect()
}

/// The code an authenticator app shows for `secret`, `steps_ahead` steps from now.
fn code(secret: &str, steps_ahead: u64) -> String {
    let totp = TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        30,
        Secret::Encoded(secret.to_owned()).to_bytes().unwrap(),
        Some("Vouch".into()),
        "user".into(),
    )
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    totp.generate(now + 30 * steps_ahead)
}

/// The path of a set-up link (its host is the public URL's).
fn path_of(link: &str) -> String {
    url::Url::parse(link).unwrap().path().to_owned()
}

async fn create(app: &TestApp, msp: &MspAccount, email: &str, role: ConsoleRole) -> String {
    let link = app
        .ctx
        .accounts
        .create_user(
            msp.id,
            &system(),
            NewUserInput {
                email: email.into(),
                name: String::new(),
                role,
            },
        )
        .await
        .unwrap();
    link.url.expose_secret().to_owned()
}

/// An admin's first sign-in through their set-up link: the password, then the enrolment.
/// The agent ends signed in; the TOTP secret is returned.
async fn first_admin(app: &TestApp, msp: &MspAccount, email: &str) -> (Agent, String) {
    let link = create(app, msp, email, ConsoleRole::Admin).await;
    let mut agent = Agent::new(app);
    let path = path_of(&link);
    let setup = agent.get(&path).await;
    assert_eq!(setup.status, 200, "{}", setup.body);
    let chosen = agent
        .post(
            &path,
            &[("password", ADMIN_PASSWORD), ("confirm", ADMIN_PASSWORD)],
        )
        .await;
    assert_eq!(chosen.status, 303, "{}", chosen.body);
    assert_eq!(chosen.location.as_deref(), Some("/console/two-factor"));
    let enrol = agent.get("/console/two-factor").await;
    assert_eq!(enrol.status, 200, "{}", enrol.body);
    let secret = secret_of(&enrol.body);
    let done = agent
        .post(
            "/console/two-factor",
            &[("csrf", &csrf_of(&enrol.body)), ("code", &code(&secret, 0))],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(recovery_codes_of(&done.body).len(), 10, "{}", done.body);
    (agent, secret)
}

/// A technician signed in through their set-up link (no second factor by default).
async fn signed_in_technician(app: &TestApp, msp: &MspAccount, email: &str) -> Agent {
    let link = create(app, msp, email, ConsoleRole::Technician).await;
    let mut agent = Agent::new(app);
    let chosen = agent
        .post(
            &path_of(&link),
            &[("password", TECH_PASSWORD), ("confirm", TECH_PASSWORD)],
        )
        .await;
    assert_eq!(chosen.status, 303, "{}", chosen.body);
    assert_eq!(chosen.location.as_deref(), Some("/console"));
    agent
}

async fn sign_in(app: &TestApp, email: &str, password: &str) -> (Agent, Page) {
    let mut agent = Agent::new(app);
    let page = agent
        .post(
            "/console/sign-in",
            &[("email", email), ("password", password)],
        )
        .await;
    (agent, page)
}

async fn user_id(app: &TestApp, msp: &MspAccount, email: &str) -> uuid::Uuid {
    app.ctx
        .accounts
        .find_by_email(msp.id, email)
        .await
        .unwrap()
        .id
}

#[tokio::test]
async fn an_admin_signs_in_first_through_the_setup_link_and_enrols_totp() {
    on_every_backend(async |db| {
        let world = world(db).await;
        let app = &world.app;
        let link = create(
            app,
            &world.msp,
            "avery@northwind.example",
            ConsoleRole::Admin,
        )
        .await;
        assert!(
            link.starts_with(&format!("{}console/setup/", app.ctx.config.http.public_url)),
            "{link}"
        );
        let mut agent = Agent::new(app);
        let path = path_of(&link);

        // The set-up page: labelled fields, strict CSP, never framed, not cached.
        let setup = agent.get(&path).await;
        assert_eq!(setup.status, 200);
        assert!(
            setup.body.contains("<label for=\"password\">"),
            "{}",
            setup.body
        );
        let csp = setup.headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(setup.headers["cache-control"], "no-store");
        assert!(!setup.body.contains("style=") && !setup.body.contains("<script"));

        // Short, common and mismatched passwords are refused next to their field.
        for (password, confirm, field, words) in [
            ("short", "short", "password-error", "at least 12 characters"),
            (
                "password1234",
                "password1234",
                "password-error",
                "common passwords",
            ),
            (
                ADMIN_PASSWORD,
                "something else entirely",
                "confirm-error",
                "not the same",
            ),
        ] {
            let refused = agent
                .post(&path, &[("password", password), ("confirm", confirm)])
                .await;
            assert_eq!(refused.status, 400, "{}", refused.body);
            assert!(
                refused.body.contains(&format!("id=\"{field}\"")),
                "{}",
                refused.body
            );
            assert!(refused.body.contains(words), "{}", refused.body);
        }

        let chosen = agent
            .post(
                &path,
                &[("password", ADMIN_PASSWORD), ("confirm", ADMIN_PASSWORD)],
            )
            .await;
        assert_eq!(chosen.status, 303);
        assert_eq!(chosen.location.as_deref(), Some("/console/two-factor"));
        let cookie = &chosen.set_cookie[0];
        assert!(cookie.contains("HttpOnly"), "{cookie}");
        assert!(cookie.contains("SameSite=Lax"), "{cookie}");
        assert!(cookie.contains("Path=/console"), "{cookie}");
        assert!(!cookie.contains("Secure"), "http public URL: {cookie}");

        // The link works once.
        assert_eq!(Agent::new(app).get(&path).await.status, 404);

        // Before the enrolment, the console itself does not open.
        let home = agent.get("/console").await;
        assert_eq!(home.status, 303);
        assert_eq!(home.location.as_deref(), Some("/console/two-factor"));

        let enrol = agent.get("/console/two-factor").await;
        assert_eq!(enrol.status, 200);
        assert!(
            enrol.body.contains("<svg role=\"img\""),
            "the QR code is in the page"
        );
        let secret = secret_of(&enrol.body);
        // A reload shows the same secret.
        assert_eq!(
            secret_of(&agent.get("/console/two-factor").await.body),
            secret
        );
        let csrf = csrf_of(&enrol.body);
        let wrong = agent
            .post(
                "/console/two-factor",
                &[("csrf", &csrf), ("code", "000000")],
            )
            .await;
        assert_eq!(wrong.status, 400);
        assert!(wrong.body.contains("id=\"code-error\""), "{}", wrong.body);
        let first_code = code(&secret, 0);
        let done = agent
            .post(
                "/console/two-factor",
                &[("csrf", &csrf), ("code", &first_code)],
            )
            .await;
        assert_eq!(done.status, 200, "{}", done.body);
        let recovery = recovery_codes_of(&done.body);
        assert_eq!(recovery.len(), 10);

        let home = agent.get("/console").await;
        assert_eq!(home.status, 200, "{}", home.body);
        assert!(home.body.contains("Signed in as"), "{}", home.body);
        for section in [
            "Security Integrations",
            "PSA Connections",
            "Companies",
            "Contacts",
            "Tickets",
            "Secure Data Sharing",
            "Audit",
            "Settings",
            "Users and API keys",
        ] {
            assert!(home.body.contains(section), "{section}");
        }

        // Signing out, then in again: the code used at the enrolment cannot be replayed.
        let out = agent
            .post("/console/sign-out", &[("csrf", &csrf_of(&home.body))])
            .await;
        assert_eq!(out.status, 303);
        assert!(out.set_cookie[0].contains("Max-Age=0"));
        let (mut again, page) = sign_in(app, "Avery@Northwind.example", ADMIN_PASSWORD).await;
        assert_eq!(page.status, 303, "{}", page.body);
        assert_eq!(page.location.as_deref(), Some("/console/sign-in/code"));
        assert_eq!(
            again.get("/console").await.location.as_deref(),
            Some("/console/sign-in/code")
        );
        let step = again.get("/console/sign-in/code").await;
        let csrf = csrf_of(&step.body);
        let replayed = again
            .post(
                "/console/sign-in/code",
                &[("csrf", &csrf), ("code", &first_code)],
            )
            .await;
        assert_eq!(replayed.status, 400, "{}", replayed.body);
        let passed = again
            .post(
                "/console/sign-in/code",
                &[("csrf", &csrf), ("code", &code(&secret, 1))],
            )
            .await;
        assert_eq!(passed.status, 303, "{}", passed.body);
        assert_eq!(passed.location.as_deref(), Some("/console"));
        assert_eq!(again.get("/console").await.status, 200);

        // A recovery code signs in once.
        for (attempt, expected) in [(0, 303), (1, 400)] {
            let (mut other, _) = sign_in(app, "avery@northwind.example", ADMIN_PASSWORD).await;
            let step = other.get("/console/sign-in/code").await;
            let used = other
                .post(
                    "/console/sign-in/code",
                    &[
                        ("csrf", &csrf_of(&step.body)),
                        ("code", &recovery[0].to_uppercase()),
                    ],
                )
                .await;
            assert_eq!(used.status, expected, "attempt {attempt}: {}", used.body);
        }

        // Nothing secret is stored in the clear: not the password, not the TOTP secret.
        let raw = raw_database_contents(db, &app.store).await;
        let raw = String::from_utf8_lossy(&raw);
        assert!(!raw.contains(ADMIN_PASSWORD));
        assert!(!raw.contains(&secret));
        assert!(!raw.contains(&recovery[1]));
        world.app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_address_get_the_same_answer_and_are_audited() {
    on_every_backend(async |db| {
        let world = world(db).await;
        let app = &world.app;
        signed_in_technician(app, &world.msp, "jordan@northwind.example").await;
        let wrong_password = "not the right passphrase";
        let (_, wrong) = sign_in(app, "jordan@northwind.example", wrong_password).await;
        let (_, unknown) = sign_in(app, "nobody@northwind.example", wrong_password).await;
        assert_eq!(wrong.status, 401);
        assert_eq!(unknown.status, 401);
        assert!(wrong.set_cookie.is_empty() && unknown.set_cookie.is_empty());
        let sentence = "The e-mail address or the password is not correct.";
        assert!(wrong.body.contains(sentence), "{}", wrong.body);
        assert_eq!(
            wrong.body.replace("jordan@", "X@"),
            unknown.body.replace("nobody@", "X@"),
            "the same page"
        );
        assert!(wrong.body.contains("id=\"password-error\""));

        let entries = app
            .store
            .query(AuditQuery {
                msp_id: world.msp.id,
                category: Some(AuditCategory::Security),
                limit: 100,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        let failure = entries
            .iter()
            .find(|e| {
                e.event.action == "console.sign_in"
                    && e.event.outcome == vouch::domain::AuditOutcome::Failure
            })
            .expect("the failure is audited as a security event");
        assert_eq!(failure.event.details["reason"], "wrong_password");
        let everything = app
            .store
            .query(AuditQuery {
                msp_id: world.msp.id,
                limit: 10_000,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        let text = format!("{everything:?}");
        assert!(
            !text.contains(wrong_password),
            "no password in the audit log"
        );
        assert!(
            !text.contains(TECH_PASSWORD),
            "no password in the audit log"
        );
        world.app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn failures_back_off_then_lock_the_account_until_an_admin_unlocks_it() {
    on_every_backend(async |db| {
        let world = world(db).await;
        let app = &world.app;
        let (mut admin, _) = first_admin(app, &world.msp, "avery@northwind.example").await;
        signed_in_technician(app, &world.msp, "jordan@northwind.example").await;
        let jordan = user_id(app, &world.msp, "jordan@northwind.example").await;
        for _ in 0..5 {
            let (_, page) = sign_in(app, "jordan@northwind.example", "wrong passphrase here").await;
            assert_eq!(page.status, 401);
        }
        // The sixth attempt must wait, even with the right password.
        let (_, waiting) = sign_in(app, "jordan@northwind.example", TECH_PASSWORD).await;
        assert_eq!(waiting.status, 429, "{}", waiting.body);
        assert!(waiting.headers.contains_key("retry-after"));
        assert!(waiting.body.contains("Wait 1 second"), "{}", waiting.body);

        // Each wait passes (moved on here rather than slept through); failures go on to 10.
        let pass_the_wait = async || {
            console_user::Entity::update_many()
                .col_expr(
                    console_user::Column::NextAttemptAt,
                    Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
                )
                .filter(console_user::Column::Id.eq(jordan))
                .exec(app.store.connection())
                .await
                .unwrap();
        };
        for failure in 6..=10 {
            pass_the_wait().await;
            let (_, page) = sign_in(app, "jordan@northwind.example", "wrong passphrase here").await;
            assert_eq!(page.status, 401, "failure {failure}");
        }
        let (_, locked) = sign_in(app, "jordan@northwind.example", TECH_PASSWORD).await;
        assert_eq!(locked.status, 409, "{}", locked.body);
        assert!(locked.body.contains("locked"), "{}", locked.body);

        // The admin sees the lock and lifts it.
        let users = admin.get("/console/users").await;
        assert!(
            users
                .body
                .contains(&format!("/console/users/{jordan}/unlock")),
            "{}",
            users.body
        );
        let unlocked = admin
            .post(
                &format!("/console/users/{jordan}/unlock"),
                &[("csrf", &csrf_of(&users.body))],
            )
            .await;
        assert_eq!(unlocked.status, 303, "{}", unlocked.body);
        let (_, page) = sign_in(app, "jordan@northwind.example", TECH_PASSWORD).await;
        assert_eq!(page.status, 303, "{}", page.body);

        let security = app
            .store
            .query(AuditQuery {
                msp_id: world.msp.id,
                category: Some(AuditCategory::Security),
                limit: 100,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        let reasons: Vec<String> = security
            .iter()
            .map(|e| {
                e.event.details["reason"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        assert!(
            reasons.iter().filter(|r| *r == "wrong_password").count() >= 10,
            "{reasons:?}"
        );
        assert!(reasons.iter().any(|r| r == "throttled"), "{reasons:?}");
        assert!(reasons.iter().any(|r| r == "locked"), "{reasons:?}");
        world.app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn forged_or_missing_csrf_tokens_and_foreign_origins_are_refused() {
    on_every_backend(async |db| {
        let world = world(db).await;
        let app = &world.app;
        let (mut admin, _) = first_admin(app, &world.msp, "avery@northwind.example").await;
        let page = admin.get("/console/users").await;
        let csrf = csrf_of(&page.body);
        let invite = |csrf: &str| {
            vec![
                ("csrf".to_owned(), csrf.to_owned()),
                ("email".to_owned(), "new@northwind.example".to_owned()),
                ("role".to_owned(), "technician".to_owned()),
            ]
        };
        let missing = admin
            .post(
                "/console/users/invite",
                &[("email", "new@northwind.example")],
            )
            .await;
        assert_eq!(missing.status, 403, "{}", missing.body);
        let forged = admin
            .post("/console/users/invite", &as_refs(&invite(&"0".repeat(64))))
            .await;
        assert_eq!(forged.status, 403);
        let foreign = admin
            .post_from(
                "/console/users/invite",
                &as_refs(&invite(&csrf)),
                Some("https://evil.example"),
            )
            .await;
        assert_eq!(foreign.status, 403);
        let no_origin = admin
            .post_from("/console/users/invite", &as_refs(&invite(&csrf)), None)
            .await;
        assert_eq!(no_origin.status, 403);
        assert!(
            foreign.body.contains("nothing was changed"),
            "{}",
            foreign.body
        );
        assert_eq!(app.ctx.accounts.list(world.msp.id).await.unwrap().len(), 1);
        // Signing out needs the token too.
        assert_eq!(admin.post("/console/sign-out", &[]).await.status, 403);
        assert_eq!(admin.get("/console").await.status, 200, "still signed in");

        let made = admin
            .post("/console/users/invite", &as_refs(&invite(&csrf)))
            .await;
        assert_eq!(made.status, 200, "{}", made.body);
        assert!(
            made.body.contains("id=\"new-link\"") && made.body.contains("setup&#x2f;"),
            "the link is shown once"
        );
        assert_eq!(app.ctx.accounts.list(world.msp.id).await.unwrap().len(), 2);

        // The sign-in form, before any session, is held to the Origin.
        let mut stranger = Agent::new(app);
        let refused = stranger
            .post_from(
                "/console/sign-in",
                &[
                    ("email", "avery@northwind.example"),
                    ("password", ADMIN_PASSWORD),
                ],
                Some("https://evil.example"),
            )
            .await;
        assert_eq!(refused.status, 403);
        assert!(refused.set_cookie.is_empty());
        world.app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_cookie_stops_working_after_sign_out_disabling_and_idling() {
    on_every_backend(async |db| {
        let world = world(db).await;
        let app = &world.app;
        let (mut admin, _) = first_admin(app, &world.msp, "avery@northwind.example").await;
        let mut jordan = signed_in_technician(app, &world.msp, "jordan@northwind.example").await;
        let jordan_id = user_id(app, &world.msp, "jordan@northwind.example").await;
        let home = jordan.get("/console").await;
        assert_eq!(home.status, 200);
        let mut copy = jordan.with_cookie(app);
        jordan
            .post("/console/sign-out", &[("csrf", &csrf_of(&home.body))])
            .await;
        let after = copy.get("/console").await;
        assert_eq!(after.status, 303);
        assert_eq!(after.location.as_deref(), Some("/console/sign-in"));

        // Signed in again, then disabled by the admin: the session ends at once.
        let (mut jordan, page) = sign_in(app, "jordan@northwind.example", TECH_PASSWORD).await;
        assert_eq!(page.status, 303);
        assert_eq!(jordan.get("/console").await.status, 200);
        let users = admin.get("/console/users").await;
        // Disabling asks first, naming the user; the question changes nothing.
        let asked = admin
            .post(
                &format!("/console/users/{jordan_id}/disable"),
                &[("csrf", &csrf_of(&users.body))],
            )
            .await;
        assert_eq!(asked.status, 200, "{}", asked.body);
        assert!(
            asked
                .body
                .contains("<h1 id=\"heading\">Disable jordan@northwind.example?</h1>"),
            "{}",
            asked.body
        );
        assert!(asked.body.contains("name=\"confirm\" value=\"yes\""));
        assert_eq!(jordan.get("/console").await.status, 200, "still signed in");
        let disabled = admin
            .post(
                &format!("/console/users/{jordan_id}/disable"),
                &[("csrf", &csrf_of(&asked.body)), ("confirm", "yes")],
            )
            .await;
        assert_eq!(disabled.status, 303, "{}", disabled.body);
        assert_eq!(jordan.get("/console").await.status, 303);
        let (_, refused) = sign_in(app, "jordan@northwind.example", TECH_PASSWORD).await;
        assert_eq!(refused.status, 401, "a disabled user gets the usual answer");
        let users = admin.get("/console/users").await;
        assert!(users.body.contains("Disabled"));
        admin
            .post(
                &format!("/console/users/{jordan_id}/enable"),
                &[("csrf", &csrf_of(&users.body))],
            )
            .await;

        // Idle for longer than the idle timeout: refused.
        let (mut jordan, _) = sign_in(app, "jordan@northwind.example", TECH_PASSWORD).await;
        assert_eq!(jordan.get("/console").await.status, 200);
        console_session::Entity::update_many()
            .col_expr(
                console_session::Column::LastSeenAt,
                Expr::value(chrono::Utc::now() - chrono::Duration::minutes(31)),
            )
            .filter(console_session::Column::UserId.eq(jordan_id))
            .exec(app.store.connection())
            .await
            .unwrap();
        assert_eq!(jordan.get("/console").await.status, 303);

        // Past its absolute end, however busy: refused.
        let (mut jordan, _) = sign_in(app, "jordan@northwind.example", TECH_PASSWORD).await;
        assert_eq!(jordan.get("/console").await.status, 200);
        console_session::Entity::update_many()
            .col_expr(
                console_session::Column::ExpiresAt,
                Expr::value(chrono::Utc::now() - chrono::Duration::seconds(1)),
            )
            .filter(console_session::Column::UserId.eq(jordan_id))
            .exec(app.store.connection())
            .await
            .unwrap();
        assert_eq!(jordan.get("/console").await.status, 303);

        // Removed: the session ends too.
        let (mut jordan, _) = sign_in(app, "jordan@northwind.example", TECH_PASSWORD).await;
        assert_eq!(jordan.get("/console").await.status, 200);
        let users = admin.get("/console/users").await;
        let asked = admin
            .post(
                &format!("/console/users/{jordan_id}/remove"),
                &[("csrf", &csrf_of(&users.body))],
            )
            .await;
        assert_eq!(asked.status, 200, "{}", asked.body);
        assert!(
            asked
                .body
                .contains("<h1 id=\"heading\">Remove jordan@northwind.example?</h1>"),
            "{}",
            asked.body
        );
        assert_eq!(jordan.get("/console").await.status, 200, "not removed yet");
        admin
            .post(
                &format!("/console/users/{jordan_id}/remove"),
                &[("csrf", &csrf_of(&users.body)), ("confirm", "yes")],
            )
            .await;
        assert_eq!(jordan.get("/console").await.status, 303);
        // The last admin is kept.
        let avery = user_id(app, &world.msp, "avery@northwind.example").await;
        let users = admin.get("/console/users").await;
        let kept = admin
            .post(
                &format!("/console/users/{avery}/disable"),
                &[("csrf", &csrf_of(&users.body)), ("confirm", "yes")],
            )
            .await;
        assert_eq!(kept.status, 409, "{}", kept.body);
        assert!(kept.body.contains("without an admin"), "{}", kept.body);
        world.app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_technician_is_refused_on_every_admin_page_and_post() {
    on_every_backend(async |db| {
        let world = world(db).await;
        let app = &world.app;
        first_admin(app, &world.msp, "avery@northwind.example").await;
        let avery = user_id(app, &world.msp, "avery@northwind.example").await;
        let mut jordan = signed_in_technician(app, &world.msp, "jordan@northwind.example").await;
        let home = jordan.get("/console").await;
        assert!(
            !home.body.contains("/console/users"),
            "no admin section in the navigation"
        );
        let csrf = csrf_of(&home.body);
        let page = jordan.get("/console/users").await;
        assert_eq!(page.status, 403);
        assert!(
            page.body.contains("This page is for your MSP"),
            "{}",
            page.body
        );
        let invite = jordan
            .post(
                "/console/users/invite",
                &[
                    ("csrf", &csrf),
                    ("email", "x@northwind.example"),
                    ("role", "admin"),
                ],
            )
            .await;
        assert_eq!(invite.status, 403);
        for action in ["disable", "enable", "unlock", "remove", "link"] {
            let refused = jordan
                .post(
                    &format!("/console/users/{avery}/{action}"),
                    &[("csrf", &csrf)],
                )
                .await;
            assert_eq!(refused.status, 403, "{action}");
        }
        let users = app.ctx.accounts.list(world.msp.id).await.unwrap();
        assert_eq!(users.len(), 2);
        assert!(users.iter().all(|u| u.disabled_at.is_none()));
        world.app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_user_of_one_msp_never_sees_or_changes_another_msps_users() {
    on_every_backend(async |db| {
        let world = world(db).await;
        let app = &world.app;
        let other = app
            .store
            .create_msp(NewMspAccount {
                name: "Contoso MSP".into(),
                brand_logo_url: None,
                brand_color: None,
                policy: MspPolicy::default(),
            })
            .await
            .unwrap();
        let (mut avery, _) = first_admin(app, &world.msp, "avery@northwind.example").await;
        let (mut casey, _) = first_admin(app, &other, "casey@contoso-msp.example").await;
        let casey_id = user_id(app, &other, "casey@contoso-msp.example").await;
        let page = avery.get("/console/users").await;
        assert!(page.body.contains("avery@northwind.example"));
        assert!(
            !page.body.contains("casey@contoso-msp.example"),
            "{}",
            page.body
        );
        let page_b = casey.get("/console/users").await;
        assert!(!page_b.body.contains("avery@northwind.example"));
        for action in ["disable", "remove", "link", "unlock"] {
            let refused = avery
                .post(
                    &format!("/console/users/{casey_id}/{action}"),
                    &[("csrf", &csrf_of(&page.body))],
                )
                .await;
            assert_eq!(refused.status, 404, "{action}: {}", refused.body);
        }
        assert_eq!(casey.get("/console").await.status, 200, "untouched");
        // An e-mail address is unique across Vouch.
        let taken = app
            .ctx
            .accounts
            .create_user(
                other.id,
                &system(),
                NewUserInput {
                    email: "AVERY@northwind.example".into(),
                    name: String::new(),
                    role: ConsoleRole::Technician,
                },
            )
            .await;
        assert!(matches!(
            taken,
            Err(vouch::core::accounts::AccountError::EmailTaken)
        ));
        world.app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_session_opened_on_one_instance_works_and_ends_on_another() {
    on_every_backend(async |db| {
        let world = world(db).await;
        let app = &world.app;
        let public_url = app.ctx.config.http.public_url.clone();
        let (mut admin_a, _) = first_admin(app, &world.msp, "avery@northwind.example").await;
        let b = world
            .second_instance_with(db, |c| c.http.public_url = public_url.clone())
            .await;
        let mut admin_b = admin_a.with_cookie(&b);
        let home = admin_b.get("/console").await;
        assert_eq!(home.status, 200, "{}", home.body);
        assert_eq!(admin_b.get("/console/users").await.status, 200);
        let out = admin_b
            .post("/console/sign-out", &[("csrf", &csrf_of(&home.body))])
            .await;
        assert_eq!(out.status, 303);
        assert_eq!(admin_a.get("/console").await.status, 303, "ended on A too");
        b.stop().await;
        world.app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_command_line_creates_the_first_admin_with_a_link_that_works() {
    on_every_backend(async |db| {
        let world = world(db).await;
        let app = &world.app;
        let config = &app.ctx.config;
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_vouch"))
            .args([
                "user",
                "create",
                "--msp",
                &world.msp.name,
                "--email",
                "first@northwind.example",
                "--name",
                "First Admin",
                "--admin",
            ])
            .env_clear()
            .env("VOUCH__DATABASE__URL", &config.database.url)
            .env(
                "VOUCH__ENCRYPTION__MASTER_KEY",
                config
                    .encryption
                    .master_key
                    .as_ref()
                    .unwrap()
                    .expose_secret(),
            )
            .env("VOUCH__HTTP__PUBLIC_URL", config.http.public_url.as_str())
            .env("VOUCH__LOG__FILTER", "error")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let link = stdout
            .lines()
            .find(|line| line.contains("/console/setup/"))
            .unwrap_or_else(|| panic!("no link printed: {stdout}"))
            .trim()
            .to_owned();
        assert!(stdout.contains("admin"), "{stdout}");
        let mut agent = Agent::new(app);
        assert_eq!(agent.get(&path_of(&link)).await.status, 200);
        let chosen = agent
            .post(
                &path_of(&link),
                &[("password", ADMIN_PASSWORD), ("confirm", ADMIN_PASSWORD)],
            )
            .await;
        assert_eq!(chosen.location.as_deref(), Some("/console/two-factor"));
        let users = app.ctx.accounts.list(world.msp.id).await.unwrap();
        assert_eq!(users[0].role, ConsoleRole::Admin);
        assert_eq!(users[0].name, "First Admin");
        world.app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_demo_accounts_sign_in_with_their_printed_passwords_and_no_second_factor() {
    on_every_backend(async |db| {
        let world = world(db).await;
        let app = &world.app;
        // Seeding twice (a demo started again) keeps one account each.
        for _ in 0..2 {
            vouch::demo::seed_console_users(&app.ctx, world.msp.id)
                .await
                .unwrap();
        }
        assert_eq!(app.ctx.accounts.list(world.msp.id).await.unwrap().len(), 2);
        for (email, _, password, role) in vouch::demo::DEMO_CONSOLE_USERS {
            let (mut agent, page) = sign_in(app, email, password).await;
            assert_eq!(page.status, 303, "{email}: {}", page.body);
            assert_eq!(page.location.as_deref(), Some("/console"), "{email}");
            let home = agent.get("/console").await;
            assert!(home.body.contains(role.display_name()), "{}", home.body);
        }
        // Another admin of the same MSP still has to set TOTP up.
        let link = create(
            app,
            &world.msp,
            "new-admin@northwind.example",
            ConsoleRole::Admin,
        )
        .await;
        let chosen = Agent::new(app)
            .post(
                &path_of(&link),
                &[("password", ADMIN_PASSWORD), ("confirm", ADMIN_PASSWORD)],
            )
            .await;
        assert_eq!(chosen.location.as_deref(), Some("/console/two-factor"));
        world.app.stop().await;
    })
    .await;
}

/// In Chromium: the first admin opens the set-up link, chooses a password, scans (reads)
/// the TOTP secret, enters a code, keeps the recovery codes and lands on the console. A
/// screenshot of each page goes to `target/screenshots/`.
#[tokio::test]
async fn in_a_browser_the_first_admin_sets_up_totp_and_lands_on_the_console() {
    use fantoccini::Locator;
    crate::browser::in_browser(async |client| {
        let db = TestDb::sqlite().await;
        let world = world(&db).await;
        let app = &world.app;
        let link = create(
            app,
            &world.msp,
            "avery@northwind.example",
            ConsoleRole::Admin,
        )
        .await;
        let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        let shot = async |name: &str| {
            let png = client.screenshot().await.unwrap();
            std::fs::write(shots.join(format!("console-{name}.png")), png).unwrap();
        };
        let base = app
            .ctx
            .config
            .http
            .public_url
            .as_str()
            .trim_end_matches('/')
            .to_owned();
        client
            .goto(&format!("{base}/console/sign-in"))
            .await
            .unwrap();
        crate::browser::wait_for(client, "#sign-in").await;
        shot("sign-in").await;

        client.goto(&link).await.unwrap();
        crate::browser::wait_for(client, "#choose-password").await;
        client
            .find(Locator::Id("password"))
            .await
            .unwrap()
            .send_keys(ADMIN_PASSWORD)
            .await
            .unwrap();
        client
            .find(Locator::Id("confirm"))
            .await
            .unwrap()
            .send_keys(ADMIN_PASSWORD)
            .await
            .unwrap();
        shot("setup").await;
        client
            .find(Locator::Id("choose-password"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();

        let secret = crate::browser::wait_for(client, "#totp-secret").await;
        let secret = secret.text().await.unwrap().replace(' ', "");
        shot("two-factor").await;
        let field = client.find(Locator::Id("code")).await.unwrap();
        field.send_keys(&code(&secret, 0)).await.unwrap();
        client
            .find(Locator::Id("confirm-code"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();

        let codes = crate::browser::wait_for(client, "#recovery-codes").await;
        assert_eq!(codes.find_all(Locator::Css("li")).await.unwrap().len(), 10);
        shot("recovery-codes").await;
        client
            .find(Locator::Id("continue"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();

        let summary = crate::browser::wait_for(client, "#signed-in-as").await;
        assert!(
            summary
                .text()
                .await
                .unwrap()
                .contains("avery@northwind.example"),
            "signed in"
        );
        assert_eq!(client.current_url().await.unwrap().path(), "/console");
        shot("home").await;
        client.goto(&format!("{base}/console/users")).await.unwrap();
        crate::browser::wait_for(client, "#invite").await;
        shot("users").await;
        // Keyboard: the sign-out button is reachable and works.
        client
            .find(Locator::Id("sign-out"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        crate::browser::wait_for(client, "#sign-in").await;
        world.app.stop().await;
    })
    .await;
}
