//! The console's Contacts page with the pod's verify and reset panel, over real HTTP: a
//! contact opened carries a pod token for that user and no ticket; through the pod API a
//! push is approved on the sandbox phone and the password reset, and the SMS link reveals
//! what Microsoft received. A reset needs a verification made there, by the same console
//! user: a pending one, one made on a ticket, or one made by someone else does not unlock
//! it (and a contact's verification unlocks no ticket's reset). The token ends with the
//! console session (signed out, user disabled); another MSP's user opens nothing.

use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use vouch::core::accounts::NewUserInput;
use vouch::domain::{ActorKind, ConsoleRole, MspPolicy, PsaKind};
use vouch::sandbox::microsoft::{DEMO_TENANT_ID, PushScript};
use vouch::sandbox::psa::{self as sbx, Psa};
use vouch::store::audit::AuditQuery;
use vouch::store::msp::{MspAccount, NewMspAccount};

use crate::backends::on_every_backend;
use crate::common::console::{Agent, Page, csrf_of, system};
use crate::common::world::{World, json_of};
use crate::common::{TestApp, TestDb, free_port};

const PASSWORD: &str = "a long technician passphrase 1";
const DANA: &str = "dana@contoso.example";
const DANA_MOBILE: &str = "+12065550101";

/// A world whose public URL is its own address, so the console's Origin check holds.
async fn world(db: &TestDb) -> World {
    let port = free_port();
    World::start_with(db, MspPolicy::default(), |c| {
        c.http.bind = format!("127.0.0.1:{port}").parse().unwrap();
        c.http.public_url = format!("http://127.0.0.1:{port}/").parse().unwrap();
    })
    .await
}

/// A technician of `msp` signed in through their set-up link (no second factor).
async fn technician(app: &TestApp, msp: &MspAccount, email: &str, name: &str) -> Agent {
    let link = app
        .ctx
        .accounts
        .create_user(
            msp.id,
            &system(),
            NewUserInput {
                email: email.into(),
                name: name.into(),
                role: ConsoleRole::Technician,
            },
        )
        .await
        .unwrap()
        .url
        .expose_secret()
        .to_owned();
    let mut agent = Agent::new(app);
    let path = url::Url::parse(&link).unwrap().path().to_owned();
    let chosen = agent
        .post(&path, &[("password", PASSWORD), ("confirm", PASSWORD)])
        .await;
    assert_eq!(chosen.status, 303, "{}", chosen.body);
    agent
}

/// The value of `attribute="…"` on the page (the first one).
fn attribute(page: &Page, attribute: &str) -> String {
    let marker = format!("{attribute}=\"");
    let at = page
        .body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {attribute} in {}", page.body))
        + marker.len();
    page.body[at..at + page.body[at..].find('"').unwrap()].to_owned()
}

/// Dana's page under Contacts, found by searching.
async fn dana_href(agent: &mut Agent) -> String {
    let found = agent.get("/console/contacts?q=dana").await;
    assert_eq!(found.status, 200, "{}", found.body);
    let table = &found.body[found.body.find("id=\"contact-results\"").expect("results")..];
    let at = table.find("<a href=\"").unwrap() + 9;
    table[at..at + table[at..].find('"').unwrap()]
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}

/// Opens Dana's contact page: the page, and the pod token it carries.
async fn open_dana(agent: &mut Agent) -> (Page, String) {
    let href = dana_href(agent).await;
    let page = agent.get(&href).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let token = attribute(&page, "data-token");
    (page, token)
}

async fn pod(
    world: &World,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = world
        .app
        .client
        .request(method, world.app.url(&format!("/api/v1/pod{path}")))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    json_of(request.send().await.unwrap()).await
}

/// A push to Dana from the pod of `token`, approved on the sandbox phone: its id.
async fn approved_push(world: &World, token: &str) -> String {
    world.microsoft.script_push(DANA, PushScript::Approve);
    let (status, started) = pod(
        world,
        token,
        Method::POST,
        "/verifications",
        Some(json!({"method": "push"})),
    )
    .await;
    assert_eq!(status, 202, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    let (_, done) = pod(
        world,
        token,
        Method::GET,
        &format!("/verifications/{id}?wait_seconds=10"),
        None,
    )
    .await;
    assert_eq!(done["status"], "approved", "{done}");
    id
}

async fn reset(world: &World, token: &str, verification: &str, key: &str) -> (u16, Value) {
    world
        .app
        .client
        .post(world.app.url("/api/v1/pod/reset"))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&json!({ "verification_id": verification, "confirm": true }))
        .send()
        .await
        .map(json_of)
        .unwrap()
        .await
}

/// The token of the newest link texted to Dana.
fn last_link_to_dana(world: &World) -> String {
    let sms = world
        .sms
        .last_message_to(DANA_MOBILE)
        .expect("an SMS to Dana");
    let link = sms
        .body
        .split_whitespace()
        .find(|w| w.starts_with("http"))
        .unwrap()
        .trim_end_matches(['.', ')'])
        .to_owned();
    url::Url::parse(&link)
        .unwrap()
        .path()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned()
}

async fn other_msp(app: &TestApp) -> MspAccount {
    app.store
        .create_msp(NewMspAccount {
            name: "Fabrikam Support".into(),
            brand_logo_url: None,
            brand_color: None,
            policy: MspPolicy::default(),
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_contact_opens_the_pods_panel_and_is_verified_and_reset_with_no_ticket() {
    on_every_backend(async |db| {
        let world = world(db).await;
        let app = &world.app;
        let mut jo = technician(app, &world.msp, "jo@northwind.example", "Jo Tech").await;
        let (page, token) = open_dana(&mut jo).await;

        // The page: the panel's markup and modules, the heading naming user and tenant.
        let csp = page.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'; connect-src 'self';"), "{csp}");
        assert!(!csp.contains("unsafe"), "{csp}");
        assert!(page.body.contains("id=\"vouch-reset\""), "{}", page.body);
        assert!(page.body.contains("/pod.js\"></script>"));
        assert!(
            page.body
                .contains("<h1 id=\"heading\">Dana Whitfield <span class=\"muted\">in Contoso (demo customer)</span></h1>"),
            "{}",
            page.body
        );
        assert_eq!(attribute(&page, "data-ticket"), "");
        assert!(
            !page.body.to_lowercase().contains("ticket's contact")
                && !page.body.contains("on this ticket"),
            "no ticket wording on a contact's panel: {}",
            page.body
        );
        assert!(page.body.contains("id=\"contact-history-empty\""));

        // The context: that user, no ticket, the console user as the technician.
        let (status, context) = pod(&world, &token, Method::GET, "/context", None).await;
        assert_eq!(status, 200, "{context}");
        assert_eq!(context["subject"], "contact", "{context}");
        assert_eq!(context["ticket"], Value::Null);
        assert_eq!(context["contact"], Value::Null);
        assert_eq!(context["user"]["upn"], DANA, "{context}");
        assert_eq!(context["tenant"]["name"], "Contoso (demo customer)");
        assert_eq!(context["technician"]["name"], "Jo Tech");
        assert_eq!(context["reset"]["allowed"], false);

        // Someone else cannot be verified from a contact's page.
        let (status, refused) = pod(
            &world,
            &token,
            Method::POST,
            "/verifications",
            Some(json!({"method": "push", "other_user": {"email": "sam@contoso.example", "reason": "manager"}})),
        )
        .await;
        assert_eq!(status, 400, "{refused}");
        assert_eq!(refused["code"], "invalid_request", "{refused}");

        // A reset on a pending verification is refused (no fresh verification).
        world.microsoft.script_push(DANA, PushScript::NeverAnswer);
        let (status, pending) = pod(
            &world,
            &token,
            Method::POST,
            "/verifications",
            Some(json!({"method": "push"})),
        )
        .await;
        assert_eq!(status, 202, "{pending}");
        let pending_id = pending["id"].as_str().unwrap().to_owned();
        let (status, refused) = reset(&world, &token, &pending_id, "contact-pending").await;
        assert_eq!((status, refused["code"].as_str()), (403, Some("not_verified")), "{refused}");
        let (status, _) = pod(
            &world,
            &token,
            Method::POST,
            &format!("/verifications/{pending_id}/cancel"),
            None,
        )
        .await;
        assert_eq!(status, 200);

        // Approved on the phone, then reset: the SMS link reveals what Microsoft received.
        let id = approved_push(&world, &token).await;
        let (status, context) = pod(&world, &token, Method::GET, "/context", None).await;
        assert_eq!(status, 200);
        assert_eq!(context["shield"]["state"], "verified", "{context}");
        assert_eq!(context["reset"]["allowed"], true, "{context}");
        assert_eq!(context["reset"]["verification_id"], id.as_str());
        let (status, outcome) = reset(&world, &token, &id, "contact-reset-1").await;
        assert_eq!(status, 201, "{outcome}");
        let revealed = app
            .ctx
            .shares
            .reveal(&last_link_to_dana(&world))
            .await
            .unwrap();
        let (password, _) = world
            .microsoft
            .user_password(DEMO_TENANT_ID, DANA)
            .expect("Microsoft received a new password");
        assert_eq!(revealed.content.expose_secret(), password);
        let (status, again) = reset(&world, &token, &id, "contact-reset-2").await;
        assert_eq!((status, again["code"].as_str()), (409, Some("verification_used")), "{again}");

        // The verification is the console user's, with no ticket; no note went anywhere;
        // the audit names the console user for the start and the reset.
        let jo_id = app
            .ctx
            .accounts
            .find_by_email(world.msp.id, "jo@northwind.example")
            .await
            .unwrap()
            .id;
        let verification = app
            .store
            .get_verification(id.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(verification.console_user_id, Some(jo_id));
        assert_eq!(verification.psa_ticket_id, None);
        assert_eq!(verification.technician_id, None);
        for (psa, ticket) in [
            (Psa::HaloPsa, sbx::HALO_TICKET_DANA),
            (Psa::ConnectWise, sbx::CW_TICKET_DANA),
            (Psa::Autotask, sbx::AUTOTASK_TICKET_DANA),
        ] {
            assert!(world.psa.notes(psa, ticket).is_empty(), "no note on {psa:?}");
        }
        let entries = app
            .store
            .query(AuditQuery {
                msp_id: world.msp.id,
                limit: 1000,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        for action in ["verification.push.start", "password.reset"] {
            let entry = entries
                .iter()
                .find(|e| {
                    e.event.action == action
                        && e.event.outcome != vouch::domain::AuditOutcome::Refused
                })
                .unwrap_or_else(|| panic!("{action} audited: {entries:#?}"));
            assert_eq!(entry.event.actor.kind, ActorKind::ConsoleUser, "{entry:?}");
            assert_eq!(entry.event.actor.id.as_deref(), Some(jo_id.to_string().as_str()));
            assert_eq!(entry.event.psa_ticket_id, None);
        }

        // The page's history now says where it was made.
        let (again, _) = open_dana(&mut jo).await;
        assert!(again.body.contains("<td>Contacts (console)</td>"), "{}", again.body);
    })
    .await;
}

#[tokio::test]
async fn a_verification_unlocks_only_the_reset_of_where_it_was_made() {
    on_every_backend(async |db| {
        let world = world(db).await;
        let app = &world.app;
        let mut jo = technician(app, &world.msp, "jo@northwind.example", "Jo Tech").await;
        let mut kim = technician(app, &world.msp, "kim@northwind.example", "Kim Tech").await;
        let halo = app
            .ctx
            .psa_connections
            .list(world.msp.id)
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.kind == PsaKind::HaloPsa)
            .unwrap()
            .id;
        let ticket_page = jo
            .get(&format!(
                "/console/tickets?connection={halo}&ticket={}",
                sbx::HALO_TICKET_DANA
            ))
            .await;
        assert_eq!(ticket_page.status, 200, "{}", ticket_page.body);
        let ticket_token = attribute(&ticket_page, "data-token");
        let (_, contact_token) = open_dana(&mut jo).await;

        // Verified on the ticket: history on the contact's page, not a reset there.
        let on_ticket = approved_push(&world, &ticket_token).await;
        let (status, context) = pod(&world, &contact_token, Method::GET, "/context", None).await;
        assert_eq!(status, 200, "{context}");
        assert_eq!(context["shield"]["state"], "not_verified", "{context}");
        assert_eq!(context["shield"]["label"], "Not verified here", "{context}");
        assert!(
            context["shield"]["detail"]
                .as_str()
                .unwrap()
                .contains("on HaloPSA ticket 2001"),
            "{context}"
        );
        assert_eq!(context["reset"]["allowed"], false);
        let (status, refused) =
            reset(&world, &contact_token, &on_ticket, "ticket-on-contact").await;
        assert_eq!(
            (status, refused["code"].as_str()),
            (404, Some("verification_not_found")),
            "{refused}"
        );
        // Nor can the contact's pod read it.
        let (status, _) = pod(
            &world,
            &contact_token,
            Method::GET,
            &format!("/verifications/{on_ticket}"),
            None,
        )
        .await;
        assert_eq!(status, 404);

        // Verified on the contact's page: the ticket's reset cannot spend it.
        let on_contact = approved_push(&world, &contact_token).await;
        let (status, refused) =
            reset(&world, &ticket_token, &on_contact, "contact-on-ticket").await;
        assert_eq!(
            (status, refused["code"].as_str()),
            (404, Some("verification_not_found")),
            "{refused}"
        );

        // Another console user on the same contact cannot spend Jo's verification, and sees
        // it as made elsewhere.
        let (_, kim_token) = open_dana(&mut kim).await;
        let (status, context) = pod(&world, &kim_token, Method::GET, "/context", None).await;
        assert_eq!(status, 200);
        assert_eq!(context["shield"]["label"], "Not verified here", "{context}");
        assert!(
            context["shield"]["detail"]
                .as_str()
                .unwrap()
                .contains("from Contacts in the Vouch console, by Jo Tech"),
            "{context}"
        );
        let (status, refused) = reset(&world, &kim_token, &on_contact, "kim-on-jos").await;
        assert_eq!(
            (status, refused["code"].as_str()),
            (404, Some("verification_not_found")),
            "{refused}"
        );
        // Nor does an API key's verification count on a contact's page.
        let by_api = world.verified(DANA).await;
        let (status, refused) = reset(&world, &kim_token, &by_api, "api-on-contact").await;
        assert_eq!(status, 404, "{refused}");

        // Jo spends it where it was made.
        let (status, outcome) = reset(&world, &contact_token, &on_contact, "jo-contact").await;
        assert_eq!(status, 201, "{outcome}");
    })
    .await;
}

#[tokio::test]
async fn a_console_users_pods_end_with_their_console_session() {
    on_every_backend(async |db| {
        let world = world(db).await;
        let app = &world.app;
        let mut jo = technician(app, &world.msp, "jo@northwind.example", "Jo Tech").await;
        let halo = app
            .ctx
            .psa_connections
            .list(world.msp.id)
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.kind == PsaKind::HaloPsa)
            .unwrap()
            .id;
        let (page, contact_token) = open_dana(&mut jo).await;
        let ticket_page = jo
            .get(&format!(
                "/console/tickets?connection={halo}&ticket={}",
                sbx::HALO_TICKET_DANA
            ))
            .await;
        let ticket_token = attribute(&ticket_page, "data-token");
        for token in [&contact_token, &ticket_token] {
            // Twice: the second answer comes from the cached session.
            for _ in 0..2 {
                let (status, body) = pod(&world, token, Method::GET, "/context", None).await;
                assert_eq!(status, 200, "{body}");
            }
        }

        // Another session of the same user is not this one: signing out of it ends only it.
        let mut elsewhere = Agent::signed_in(app, "jo@northwind.example", PASSWORD).await;
        let (_, elsewhere_token) = open_dana(&mut elsewhere).await;

        // Signed out: both of this session's panels stop at their next call.
        let out = jo
            .post("/console/sign-out", &[("csrf", &csrf_of(&page.body))])
            .await;
        assert_eq!(out.status, 303, "{}", out.body);
        for token in [&contact_token, &ticket_token] {
            let (status, body) = pod(&world, token, Method::GET, "/context", None).await;
            assert_eq!(status, 401, "{body}");
            assert_eq!(body["code"], "unauthorized", "{body}");
            assert!(
                body["message"]
                    .as_str()
                    .unwrap()
                    .contains("console session has ended"),
                "{body}"
            );
        }
        let (status, body) = pod(&world, &elsewhere_token, Method::GET, "/context", None).await;
        assert_eq!(status, 200, "{body}");

        // Disabled: the other session's panel stops too.
        let jo_id = app
            .ctx
            .accounts
            .find_by_email(world.msp.id, "jo@northwind.example")
            .await
            .unwrap()
            .id;
        app.ctx
            .accounts
            .disable(world.msp.id, &system(), jo_id)
            .await
            .unwrap();
        let (status, body) = pod(&world, &elsewhere_token, Method::GET, "/context", None).await;
        assert_eq!(status, 401, "{body}");
        let (status, body) = pod(
            &world,
            &elsewhere_token,
            Method::POST,
            "/verifications",
            Some(json!({"method": "push"})),
        )
        .await;
        assert_eq!(status, 401, "{body}");
    })
    .await;
}

#[tokio::test]
async fn another_msps_user_opens_no_contact_of_this_msp() {
    let db = TestDb::sqlite().await;
    let world = world(&db).await;
    let app = &world.app;
    let mut jo = technician(app, &world.msp, "jo@northwind.example", "Jo Tech").await;
    let href = dana_href(&mut jo).await;
    let fabrikam = other_msp(app).await;
    let mut sam = technician(app, &fabrikam, "sam@fabrikam.example", "Sam").await;
    let opened = sam.get(&href).await;
    assert_eq!(opened.status, 404, "{}", opened.body);
    assert!(!opened.body.contains("data-token"));
    assert!(!opened.body.contains(DANA));

    // A tenant that is this MSP's with a user who does not exist: not found either.
    let tenant = href.split('/').nth(3).unwrap().to_owned();
    let nobody = jo
        .get(&format!(
            "/console/contacts/{tenant}/00000000-0000-0000-0000-000000000bad"
        ))
        .await;
    assert_eq!(nobody.status, 404, "{}", nobody.body);
    assert!(!nobody.body.contains("data-token"));

    // Core refuses it too, whatever the page does.
    let sam_account = app
        .ctx
        .accounts
        .find_by_email(fabrikam.id, "sam@fabrikam.example")
        .await
        .unwrap();
    let refused = app
        .ctx
        .pods
        .open_console_contact_session(
            &sam_account,
            uuid::Uuid::nil(),
            tenant.parse().unwrap(),
            href.rsplit('/').next().unwrap(),
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(vouch::core::pod::PodError::Core(
                vouch::core::error::CoreError::TenantNotFound
            ))
        ),
        "{refused:?}"
    );
}
