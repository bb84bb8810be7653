//! The technician's pages of the MSP console, over real HTTP: Tickets (the pod's panel for
//! a PSA ticket, in the console user's name), Contacts and Secure Data Sharing; CSRF,
//! another MSP's data, a reset without a fresh verification; and the journey in Chromium.

use std::time::Duration;

use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::json;
use vouch::core::accounts::NewUserInput;
use vouch::domain::{ActorKind, ConsoleRole, MspPolicy, PsaKind};
use vouch::sandbox::microsoft::PushScript;
use vouch::sandbox::psa::{self as sbx, Psa};
use vouch::store::audit::AuditQuery;
use vouch::store::msp::{MspAccount, NewMspAccount};

use crate::backends::on_every_backend;
use crate::common::console::{Agent, Page, csrf_of, system};
use crate::common::world::{World, json_of};
use crate::common::{TestApp, TestDb, eventually, free_port};

const PASSWORD: &str = "a long technician passphrase 1";

/// A world whose public URL is its own address, so the console's Origin check holds.
async fn world(db: &TestDb) -> World {
    let port = free_port();
    World::start_with(db, MspPolicy::default(), |c| {
        c.http.bind = format!("127.0.0.1:{port}").parse().unwrap();
        c.http.public_url = format!("http://127.0.0.1:{port}/").parse().unwrap();
    })
    .await
}

impl Page {
    fn csp(&self) -> String {
        self.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned()
    }

    /// The value of `attribute="…"` on the page (the first one).
    fn attribute(&self, attribute: &str) -> String {
        let marker = format!("{attribute}=\"");
        let at = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no {attribute} in {}", self.body))
            + marker.len();
        self.body[at..at + self.body[at..].find('"').unwrap()].to_owned()
    }
}

/// Adds a console user to `msp` and returns their one-time set-up link.
async fn create(
    app: &TestApp,
    msp: &MspAccount,
    email: &str,
    name: &str,
    role: ConsoleRole,
) -> String {
    app.ctx
        .accounts
        .create_user(
            msp.id,
            &system(),
            NewUserInput {
                email: email.into(),
                name: name.into(),
                role,
            },
        )
        .await
        .unwrap()
        .url
        .expose_secret()
        .to_owned()
}

/// A technician of `msp` signed in through their set-up link (no second factor).
async fn technician(app: &TestApp, msp: &MspAccount, email: &str, name: &str) -> Agent {
    let link = create(app, msp, email, name, ConsoleRole::Technician).await;
    let mut agent = Agent::new(app);
    let path = url::Url::parse(&link).unwrap().path().to_owned();
    let chosen = agent
        .post(&path, &[("password", PASSWORD), ("confirm", PASSWORD)])
        .await;
    assert_eq!(chosen.status, 303, "{}", chosen.body);
    assert_eq!(chosen.location.as_deref(), Some("/console"));
    agent
}

async fn connection_of(world: &World, kind: PsaKind) -> uuid::Uuid {
    world
        .app
        .ctx
        .psa_connections
        .list(world.msp.id)
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.kind == kind)
        .unwrap()
        .id
}

fn pod(world: &World, token: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
    world
        .app
        .client
        .request(method, world.app.url(&format!("/api/v1/pod{path}")))
        .bearer_auth(token)
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
async fn tickets_open_the_pods_panel_in_the_console_users_name() {
    on_every_backend(async |db| {
        let world = world(db).await;
        let app = &world.app;
        let mut tech = technician(app, &world.msp, "jo@northwind.example", "Jo Tech").await;
        let halo = connection_of(&world, PsaKind::HaloPsa).await;

        // The form alone, and the navigation links the page; no script on it.
        let form = tech.get("/console/tickets").await;
        assert_eq!(form.status, 200, "{}", form.body);
        assert!(
            form.body.contains("aria-current=\"page\">Tickets</a>"),
            "{}",
            form.body
        );
        assert!(
            form.body.contains(&format!("value=\"{halo}\"")),
            "{}",
            form.body
        );
        assert!(!form.csp().contains("script-src"), "{}", form.csp());
        assert!(!form.body.contains("<script"));

        // A ticket of the HaloPSA connection: the pod's panel, with a pod token.
        let ticket = sbx::HALO_TICKET_DANA.to_string();
        let opened = tech
            .get(&format!(
                "/console/tickets?connection={halo}&ticket={ticket}"
            ))
            .await;
        assert_eq!(opened.status, 200, "{}", opened.body);
        let csp = opened.csp();
        assert!(
            csp.contains("script-src 'self'; connect-src 'self';"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("unsafe"), "{csp}");
        assert!(
            opened.body.contains("id=\"vouch-reset\""),
            "the pod's panel"
        );
        assert!(opened.body.contains("/pod.js\"></script>"));
        assert_eq!(opened.attribute("data-ticket"), ticket);
        assert_eq!(opened.attribute("data-psa"), "halopsa");
        let token = opened.attribute("data-token");

        // The panel's API answers for that ticket, its technician being the console user.
        let (status, context) = json_of(
            pod(&world, &token, Method::GET, "/context")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{context}");
        assert_eq!(context["technician"]["name"], "Jo Tech", "{context}");
        assert_eq!(context["reset"]["allowed"], false);

        // A reset on a verification still pending is refused (no fresh verification).
        world
            .microsoft
            .script_push("dana@contoso.example", PushScript::NeverAnswer);
        let (status, pending) = json_of(
            pod(&world, &token, Method::POST, "/verifications")
                .json(&json!({"method": "push"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 202, "{pending}");
        let pending_id = pending["id"].as_str().unwrap().to_owned();
        let (status, refused) = json_of(
            pod(&world, &token, Method::POST, "/reset")
                .header("Idempotency-Key", "console-reset-pending")
                .json(&json!({ "verification_id": pending_id, "confirm": true }))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 403, "{refused}");
        assert_eq!(refused["code"], "not_verified", "{refused}");
        let (status, _) = json_of(
            pod(
                &world,
                &token,
                Method::POST,
                &format!("/verifications/{pending_id}/cancel"),
            )
            .send()
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(status, 200);

        // Verified by an approved push, then reset.
        world
            .microsoft
            .script_push("dana@contoso.example", PushScript::Approve);
        let (status, started) = json_of(
            pod(&world, &token, Method::POST, "/verifications")
                .json(&json!({"method": "push"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 202, "{started}");
        let id = started["id"].as_str().unwrap().to_owned();
        let (_, done) = json_of(
            pod(
                &world,
                &token,
                Method::GET,
                &format!("/verifications/{id}?wait_seconds=10"),
            )
            .send()
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(done["status"], "approved", "{done}");
        let (status, outcome) = json_of(
            pod(&world, &token, Method::POST, "/reset")
                .header("Idempotency-Key", "console-reset-0001")
                .json(&json!({ "verification_id": id, "confirm": true }))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 201, "{outcome}");
        // The verification is spent: a second reset on it is refused.
        let (status, again) = json_of(
            pod(&world, &token, Method::POST, "/reset")
                .header("Idempotency-Key", "console-reset-0002")
                .json(&json!({ "verification_id": id, "confirm": true }))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 409, "{again}");
        assert_eq!(again["code"], "verification_used", "{again}");

        // Notes went to that ticket; the audit names the console user.
        eventually("the notes on the ticket", async || {
            let notes = world.psa.notes(Psa::HaloPsa, sbx::HALO_TICKET_DANA);
            (notes
                .iter()
                .any(|n| n.internal && n.text.contains("VERIFIED"))
                && notes.iter().any(|n| {
                    n.internal
                        && n.text
                            .contains("password of dana@contoso.example was reset")
                }))
            .then_some(())
        })
        .await;
        let jo = app
            .ctx
            .accounts
            .find_by_email(world.msp.id, "jo@northwind.example")
            .await
            .unwrap();
        let entries = app
            .store
            .query(AuditQuery {
                msp_id: world.msp.id,
                limit: 1000,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        let reset = entries
            .iter()
            .find(|e| {
                e.event.action == "password.reset"
                    && e.event.outcome == vouch::domain::AuditOutcome::Completed
            })
            .unwrap_or_else(|| panic!("a reset audited: {entries:#?}"));
        assert_eq!(reset.event.actor.kind, ActorKind::ConsoleUser, "{reset:?}");
        assert_eq!(
            reset.event.actor.id.as_deref(),
            Some(jo.id.to_string().as_str())
        );
        assert_eq!(reset.event.actor.name.as_deref(), Some("Jo Tech"));

        // Disabled, the console user's panel stops at its next call.
        app.ctx
            .accounts
            .disable(world.msp.id, &system(), jo.id)
            .await
            .unwrap();
        let (status, body) = json_of(
            pod(&world, &token, Method::GET, "/context")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 401, "{body}");
    })
    .await;
}

#[tokio::test]
async fn tickets_refuse_bad_numbers_unknown_tickets_and_another_msps_connection() {
    let db = TestDb::sqlite().await;
    let world = world(&db).await;
    let app = &world.app;
    let mut tech = technician(app, &world.msp, "jo@northwind.example", "Jo Tech").await;
    let halo = connection_of(&world, PsaKind::HaloPsa).await;

    let empty = tech
        .get(&format!("/console/tickets?connection={halo}&ticket="))
        .await;
    assert_eq!(empty.status, 400, "{}", empty.body);
    assert!(
        empty
            .body
            .contains("id=\"ticket-number-error\">Enter the ticket number"),
        "{}",
        empty.body
    );
    assert!(!empty.body.contains("data-token"));

    let odd = tech
        .get(&format!(
            "/console/tickets?connection={halo}&ticket=1%3Cb%3E"
        ))
        .await;
    assert_eq!(odd.status, 400, "{}", odd.body);
    assert!(
        odd.body.contains("letters, digits and dashes"),
        "{}",
        odd.body
    );
    assert!(
        odd.body.contains("value=\"1&lt;b&gt;\""),
        "escaped: {}",
        odd.body
    );

    let unknown = tech
        .get(&format!("/console/tickets?connection={halo}&ticket=999999"))
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert!(
        unknown
            .body
            .contains("The PSA has no ticket 999999 on this connection"),
        "{}",
        unknown.body
    );

    let nowhere = tech
        .get(&format!(
            "/console/tickets?connection={}&ticket=2001",
            uuid::Uuid::new_v4()
        ))
        .await;
    assert_eq!(nowhere.status, 404, "{}", nowhere.body);
    assert!(
        nowhere
            .body
            .contains("id=\"ticket-connection-error\">Pick one of your MSP")
    );

    // A user of another MSP names this MSP's connection: not theirs, nothing opens.
    let fabrikam = other_msp(app).await;
    let mut stranger = technician(app, &fabrikam, "sam@fabrikam.example", "Sam").await;
    let foreign = stranger
        .get(&format!(
            "/console/tickets?connection={halo}&ticket={}",
            sbx::HALO_TICKET_DANA
        ))
        .await;
    assert_eq!(foreign.status, 404, "{}", foreign.body);
    assert!(!foreign.body.contains("data-token"));
    assert!(
        !foreign.body.contains(&halo.to_string()),
        "{}",
        foreign.body
    );
    assert!(
        foreign.body.contains("Your MSP has no PSA connection yet"),
        "{}",
        foreign.body
    );
    // And core refuses it too, whatever the page does.
    let sam = app
        .ctx
        .accounts
        .find_by_email(fabrikam.id, "sam@fabrikam.example")
        .await
        .unwrap();
    let refused = app
        .ctx
        .pods
        .open_console_session(
            &sam,
            uuid::Uuid::nil(),
            halo,
            &sbx::HALO_TICKET_DANA.to_string(),
        )
        .await;
    assert!(
        matches!(refused, Err(vouch::core::pod::PodError::UnknownConnection)),
        "{refused:?}"
    );

    // Signed out: to the sign-in page.
    let mut nobody = Agent::new(app);
    let page = nobody.get("/console/tickets").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location.as_deref(), Some("/console/sign-in"));
}

/// Issue 11, journey steps 4 and 5 in Chromium: a technician signs in, verifies and resets a
/// user from Tickets (the pod's panel inside the console page), and the SMS link reveals the
/// password Microsoft received; then finds the user in Contacts (with that verification in
/// their history), verifies and resets them again from the contact's own panel (no ticket),
/// and texts a secret from Secure Data Sharing. A PNG of each page goes to
/// `target/screenshots/`.
#[tokio::test]
async fn in_a_browser_a_technician_verifies_and_resets_from_the_console() {
    use fantoccini::Locator;
    crate::browser::in_browser(async |client| {
        let db = TestDb::sqlite().await;
        let world = world(&db).await;
        let app = &world.app;
        // The set-up link chooses the password; the browser then signs in with it.
        technician(app, &world.msp, "jo@northwind.example", "Jo Tech").await;
        let halo = connection_of(&world, PsaKind::HaloPsa).await;
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
        client.set_window_size(1280, 1000).await.unwrap();
        client
            .goto(&format!("{base}/console/sign-in"))
            .await
            .unwrap();
        let email = crate::browser::wait_for(client, "#email").await;
        email.send_keys("jo@northwind.example").await.unwrap();
        client
            .find(Locator::Id("password"))
            .await
            .unwrap()
            .send_keys(PASSWORD)
            .await
            .unwrap();
        click(client, "sign-in").await;
        crate::browser::wait_for(client, "#signed-in-as").await;

        // Tickets: the form, then the panel of HaloPSA ticket 2001.
        client
            .find(Locator::Css("a[href='/console/tickets']"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        crate::browser::wait_for(client, "#ticket-form").await;
        shot("tickets").await;
        client
            .find(Locator::Css(&format!(
                "#ticket-connection option[value='{halo}']"
            )))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        client
            .find(Locator::Id("ticket-number"))
            .await
            .unwrap()
            .send_keys(&sbx::HALO_TICKET_DANA.to_string())
            .await
            .unwrap();
        click(client, "open-ticket").await;
        verify_and_reset(&world, client).await;
        shot("tickets-panel").await;
        reveal_and_compare(&world, client, "dana@contoso.example").await;
        shot("tickets-share").await;

        // Contacts: search, then Dana's page with the verification just made.
        client
            .goto(&format!("{base}/console/contacts"))
            .await
            .unwrap();
        crate::browser::wait_for(client, "#contact-search").await;
        client
            .find(Locator::Id("contact-q"))
            .await
            .unwrap()
            .send_keys("dana")
            .await
            .unwrap();
        click(client, "search").await;
        crate::browser::wait_for(client, "#contact-results").await;
        assert_no_horizontal_scroll(client).await;
        shot("contacts").await;
        client
            .find(Locator::Css("#contact-results a"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let history = crate::browser::wait_for(client, "#contact-history").await;
        assert!(history.text().await.unwrap().contains("Approved"));
        let contact_url = client.current_url().await.unwrap();
        // The contact's panel: the verification made on the ticket does not count here.
        wait_attr(client, "#vouch-shield", "data-state", |s| {
            s.as_deref() == Some("not_verified")
        })
        .await;
        shot("contacts-user").await;
        verify_and_reset(&world, client).await;
        shot("contacts-panel").await;
        reveal_and_compare(&world, client, "dana@contoso.example").await;

        // Secure Data Sharing: a secret texted to Dana, then listed.
        client
            .goto(&format!("{base}/console/shares"))
            .await
            .unwrap();
        crate::browser::wait_for(client, "#share-form").await;
        client
            .find(Locator::Id("share-user"))
            .await
            .unwrap()
            .send_keys("dana@contoso.example")
            .await
            .unwrap();
        client
            .find(Locator::Id("share-secret"))
            .await
            .unwrap()
            .send_keys("licence: NW-4411-ALPHA")
            .await
            .unwrap();
        click(client, "send-share").await;
        crate::browser::wait_for(client, "#share-sent").await;
        crate::browser::wait_for(client, "#share-list tr[data-state='sent']").await;
        assert_no_horizontal_scroll(client).await;
        shot("shares").await;

        // The Tickets and Contacts pages also work on a 390-pixel phone.
        client.set_window_size(390, 844).await.unwrap();
        client
            .goto(&format!("{base}/console/contacts?q=dana"))
            .await
            .unwrap();
        crate::browser::wait_for(client, "#contact-results").await;
        assert_no_horizontal_scroll(client).await;
        shot("contacts-phone").await;
        client.goto(contact_url.as_str()).await.unwrap();
        wait_attr(client, "#vouch-method-push", "disabled", |d| d.is_none()).await;
        assert_no_horizontal_scroll(client).await;
        shot("contacts-user-phone").await;
        client
            .goto(&format!(
                "{base}/console/tickets?connection={halo}&ticket={}",
                sbx::HALO_TICKET_DANA
            ))
            .await
            .unwrap();
        wait_attr(client, "#vouch-method-push", "disabled", |d| d.is_none()).await;
        assert_no_horizontal_scroll(client).await;
        shot("tickets-phone").await;
    })
    .await;
}

async fn click(client: &fantoccini::Client, id: &str) {
    client
        .find(fantoccini::Locator::Id(id))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Waits until `css` has `attribute` satisfying `check` (the panel updates itself).
async fn wait_attr(
    client: &fantoccini::Client,
    css: &str,
    attribute: &str,
    check: impl Fn(Option<String>) -> bool,
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(element) = client.find(fantoccini::Locator::Css(css)).await {
            let value = element.attr(attribute).await.unwrap_or(None);
            if check(value.clone()) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{css} {attribute}={value:?}"
            );
        } else {
            assert!(std::time::Instant::now() < deadline, "{css} never appeared");
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// In the panel on the page: push (approved on the sandbox phone), then reset, confirmed.
async fn verify_and_reset(world: &World, client: &fantoccini::Client) {
    crate::browser::wait_for(client, "#vouch-reset").await;
    wait_attr(client, "#vouch-method-push", "disabled", |d| d.is_none()).await;
    let reset = client
        .find(fantoccini::Locator::Id("vouch-reset"))
        .await
        .unwrap();
    assert!(
        reset.attr("disabled").await.unwrap().is_some(),
        "reset waits for a verification"
    );
    world
        .microsoft
        .script_push("dana@contoso.example", PushScript::Approve);
    click(client, "vouch-method-push").await;
    wait_attr(client, "#vouch-shield", "data-state", |s| {
        s.as_deref() == Some("verified")
    })
    .await;
    wait_attr(client, "#vouch-reset", "disabled", |d| d.is_none()).await;
    click(client, "vouch-reset").await;
    wait_attr(client, "#vouch-reset-confirm", "hidden", |h| h.is_none()).await;
    wait_attr(client, "#vouch-reset-go", "disabled", |d| d.is_none()).await;
    click(client, "vouch-reset-go").await;
    wait_attr(client, "#vouch-outcome", "data-status", |s| {
        s.as_deref().is_some_and(|s| !s.is_empty())
    })
    .await;
    let outcome = client
        .find(fantoccini::Locator::Id("vouch-outcome-text"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(outcome.contains("Password reset"), "{outcome}");
}

/// Opens the newest SMS link to Dana, reveals it, and compares it with what Microsoft got.
async fn reveal_and_compare(world: &World, client: &fantoccini::Client, upn: &str) {
    let sms = world
        .sms
        .last_message_to("+12065550101")
        .expect("the secure link went to Dana's phone");
    let link = sms
        .body
        .split_whitespace()
        .find(|w| w.starts_with("http"))
        .unwrap()
        .trim_end_matches(['.', ')'])
        .to_owned();
    let path = url::Url::parse(&link).unwrap().path().to_owned();
    client.goto(&world.app.url(&path)).await.unwrap();
    crate::browser::wait_for(client, "form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    let secret = crate::browser::wait_for(client, "#secret").await;
    let shown = match secret.prop("value").await.unwrap() {
        Some(value) if !value.is_empty() => value,
        _ => secret.text().await.unwrap(),
    };
    let (password, _) = world
        .microsoft
        .user_password(vouch::sandbox::microsoft::DEMO_TENANT_ID, upn)
        .expect("Microsoft received a new password");
    assert_eq!(
        shown.trim(),
        password,
        "the link reveals what Microsoft received"
    );
}

async fn assert_no_horizontal_scroll(client: &fantoccini::Client) {
    let wide = client
        .execute(
            "return document.documentElement.scrollWidth > document.documentElement.clientWidth;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(wide, json!(false), "no horizontal scroll");
}

/// The href of the first result of a Contacts results page (HTML-unescaped).
fn first_contact_href(html: &str) -> String {
    let table = &html[html.find("id=\"contact-results\"").expect("results")..];
    let at = table.find("<a href=\"").unwrap() + 9;
    table[at..at + table[at..].find('"').unwrap()]
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}

#[tokio::test]
async fn contacts_search_the_msps_tenants_and_show_a_users_history() {
    on_every_backend(async |db| {
        let world = world(db).await;
        let app = &world.app;
        world.verified("dana@contoso.example").await;
        let mut tech = technician(app, &world.msp, "jo@northwind.example", "Jo Tech").await;

        let form = tech.get("/console/contacts").await;
        assert_eq!(form.status, 200, "{}", form.body);
        assert!(form.body.contains("aria-current=\"page\">Contacts</a>"));
        assert!(!form.body.contains("id=\"search-status\""));
        assert!(!form.csp().contains("script-src"));
        // The search button says beforehand that asking every tenant can take a while.
        assert!(
            form.body
                .contains("id=\"search\" aria-describedby=\"contact-search-hint\""),
            "{}",
            form.body
        );
        assert!(form.body.contains("id=\"contact-search-hint\">"));

        let short = tech.get("/console/contacts?q=d").await;
        assert_eq!(short.status, 400, "{}", short.body);
        assert!(
            short
                .body
                .contains("id=\"contact-q-error\">Type at least 2 letters"),
            "{}",
            short.body
        );

        // By first name, by surname, by UPN: Dana, in the demo tenant.
        for q in ["dana", "Whitf", "dana%40contoso.example"] {
            let found = tech.get(&format!("/console/contacts?q={q}")).await;
            assert_eq!(found.status, 200, "{}", found.body);
            assert!(found.body.contains("Dana Whitfield"), "{q}: {}", found.body);
            assert!(found.body.contains("in 1 tenant."), "{q}: {}", found.body);
        }
        let none = tech.get("/console/contacts?q=zebedee").await;
        assert!(none.body.contains("0 found"), "{}", none.body);
        assert!(!none.body.contains("Dana Whitfield"));

        // Opened: the user and their history (the approved push).
        let found = tech.get("/console/contacts?q=dana").await;
        let href = first_contact_href(&found.body);
        let dana = tech.get(&href).await;
        assert_eq!(dana.status, 200, "{}", dana.body);
        assert!(dana.body.contains("dana@contoso.example"), "{}", dana.body);
        assert!(
            dana.body.contains("id=\"contact-history\""),
            "{}",
            dana.body
        );
        assert!(
            dana.body
                .contains("<td>Authenticator push</td><td>Approved</td>"),
            "{}",
            dana.body
        );
        assert!(
            dana.body.contains("no PSA note is written"),
            "{}",
            dana.body
        );

        // Another MSP's user finds nobody and cannot open Dana.
        let fabrikam = other_msp(app).await;
        let mut stranger = technician(app, &fabrikam, "sam@fabrikam.example", "Sam").await;
        let theirs = stranger.get("/console/contacts?q=dana").await;
        assert_eq!(theirs.status, 200);
        assert!(theirs.body.contains("0 found"), "{}", theirs.body);
        assert!(!theirs.body.contains("Dana Whitfield"));
        let opened = stranger.get(&href).await;
        assert_eq!(opened.status, 404, "{}", opened.body);
        assert!(!opened.body.contains("dana@contoso.example"));
        let garbage = tech.get("/console/contacts/not-a-tenant/x").await;
        assert_eq!(garbage.status, 404);
    })
    .await;
}

/// The token of the newest link texted to Dana.
fn last_link_to_dana(world: &World) -> String {
    let sms = world
        .sms
        .last_message_to("+12065550101")
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

#[tokio::test]
async fn shares_text_a_secret_list_its_state_and_revoke_it() {
    on_every_backend(async |db| {
        let world = world(db).await;
        let app = &world.app;
        let tenant = app
            .store
            .find_tenant_by_microsoft_id(world.msp.id, vouch::sandbox::microsoft::DEMO_TENANT_ID)
            .await
            .unwrap()
            .unwrap()
            .id
            .to_string();
        let mut tech = technician(app, &world.msp, "jo@northwind.example", "Jo Tech").await;
        let page = tech.get("/console/shares").await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(
            page.body
                .contains("aria-current=\"page\">Secure Data Sharing</a>")
        );
        assert!(
            page.body.contains(&format!("value=\"{tenant}\"")),
            "{}",
            page.body
        );
        assert!(!page.csp().contains("script-src"));
        let csrf = csrf_of(&page.body);
        const SECRET: &str = "wifi: Northwind-Guest / c0rrect-h0rse";
        let form = |csrf: &str, user: &str, secret: &str| {
            vec![
                ("csrf".to_owned(), csrf.to_owned()),
                ("tenant".to_owned(), tenant.clone()),
                ("user".to_owned(), user.to_owned()),
                ("secret".to_owned(), secret.to_owned()),
                ("lifetime".to_owned(), "60".to_owned()),
                ("views".to_owned(), "2".to_owned()),
            ]
        };
        let post = async |agent: &mut Agent, path: &str, f: Vec<(String, String)>| {
            let pairs: Vec<(&str, &str)> =
                f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            agent.post(path, &pairs).await
        };

        // No CSRF token: refused, nothing sent.
        let forged = post(
            &mut tech,
            "/console/shares",
            form("forged", "dana@contoso.example", SECRET),
        )
        .await;
        assert_eq!(forged.status, 403, "{}", forged.body);
        assert!(world.sms.last_message_to("+12065550101").is_none());

        // Refusals say what to do next to the field, and never show the secret again.
        let nobody = post(
            &mut tech,
            "/console/shares",
            form(&csrf, "nobody@contoso.example", SECRET),
        )
        .await;
        assert!(nobody.status >= 400, "{}", nobody.body);
        assert!(
            nobody.body.contains("id=\"share-user-error\""),
            "{}",
            nobody.body
        );
        assert!(!nobody.body.contains("c0rrect-h0rse"), "{}", nobody.body);
        let empty = post(
            &mut tech,
            "/console/shares",
            form(&csrf, "dana@contoso.example", " "),
        )
        .await;
        assert_eq!(empty.status, 400, "{}", empty.body);
        assert!(
            empty
                .body
                .contains("id=\"share-secret-error\">Type the secret"),
            "{}",
            empty.body
        );
        let mut bad_views = form(&csrf, "dana@contoso.example", SECRET);
        bad_views[5].1 = "11".into();
        let bad = post(&mut tech, "/console/shares", bad_views).await;
        assert_eq!(bad.status, 400);
        assert!(
            bad.body.contains("id=\"share-views-error\""),
            "{}",
            bad.body
        );
        assert!(world.sms.last_message_to("+12065550101").is_none());

        // Sent: the page says where, the link reveals the secret, the list says viewed.
        let sent = post(
            &mut tech,
            "/console/shares",
            form(&csrf, "dana@contoso.example", SECRET),
        )
        .await;
        assert_eq!(sent.status, 200, "{}", sent.body);
        assert!(sent.body.contains("id=\"share-sent\""), "{}", sent.body);
        assert!(sent.body.contains("+1 ••• ••• ••01"), "{}", sent.body);
        assert!(!sent.body.contains("c0rrect-h0rse"));
        assert!(sent.body.contains("data-state=\"sent\""), "{}", sent.body);
        let token = last_link_to_dana(&world);
        assert!(!sent.body.contains(&token), "the link is not on the page");
        let revealed = app.ctx.shares.reveal(&token).await.unwrap();
        assert_eq!(revealed.content.expose_secret(), SECRET);
        assert_eq!(revealed.views_left, 1);
        let listed = tech.get("/console/shares").await;
        assert!(
            listed.body.contains("data-state=\"viewed\""),
            "{}",
            listed.body
        );
        assert!(listed.body.contains("1 of 2 views"), "{}", listed.body);
        let id = revealed.share_id.to_string();

        // Another MSP's user neither sees nor revokes it.
        let fabrikam = other_msp(app).await;
        let mut stranger = technician(app, &fabrikam, "sam@fabrikam.example", "Sam").await;
        let theirs = stranger.get("/console/shares").await;
        assert!(!theirs.body.contains(&id), "{}", theirs.body);
        let their_csrf = csrf_of(&theirs.body);
        let foreign = post(
            &mut stranger,
            &format!("/console/shares/{id}/revoke"),
            vec![("csrf".into(), their_csrf)],
        )
        .await;
        assert_eq!(foreign.status, 404, "{}", foreign.body);

        // Revoke: refused without the token, done with it; the link stops working.
        let forged = post(&mut tech, &format!("/console/shares/{id}/revoke"), vec![]).await;
        assert_eq!(forged.status, 403);
        assert!(app.ctx.shares.peek(&token).await.is_ok());
        // Revoking asks first; the question leaves the link working.
        let asked = post(
            &mut tech,
            &format!("/console/shares/{id}/revoke"),
            vec![("csrf".into(), csrf.clone())],
        )
        .await;
        assert_eq!(asked.status, 200, "{}", asked.body);
        assert!(
            asked
                .body
                .contains("<h1 id=\"heading\">Revoke the share sent "),
            "{}",
            asked.body
        );
        assert!(asked.body.contains("opened 1 of 2 times"), "{}", asked.body);
        assert!(asked.body.contains("name=\"confirm\" value=\"yes\""));
        assert!(app.ctx.shares.peek(&token).await.is_ok(), "not revoked yet");
        let revoked = post(
            &mut tech,
            &format!("/console/shares/{id}/revoke"),
            vec![
                ("csrf".into(), csrf.clone()),
                ("confirm".into(), "yes".into()),
            ],
        )
        .await;
        assert_eq!(revoked.status, 303, "{}", revoked.body);
        let listed = tech.get("/console/shares").await;
        assert!(
            listed.body.contains("data-state=\"revoked\""),
            "{}",
            listed.body
        );
        assert!(app.ctx.shares.reveal(&token).await.is_err());
        let entries = app
            .store
            .query(AuditQuery {
                msp_id: world.msp.id,
                limit: 1000,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        let revoke = entries
            .iter()
            .find(|e| e.event.action.contains("revoke"))
            .expect("the revoke is audited");
        assert_eq!(revoke.event.actor.kind, ActorKind::ConsoleUser);
    })
    .await;
}
