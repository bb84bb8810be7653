//! Issue 11's acceptance in headless Chromium: the MSP console's whole journey, on one fresh
//! MSP ("Woodgrove IT") against the sandboxes, in one browser.
//!
//! 1. The first admin opens their one-time set-up link, chooses a password, sets up TOTP (the
//!    code computed from the secret the page shows) and keeps the recovery codes.
//! 2. They connect M365 Identity Management (a wrong client secret first: explained next to
//!    its field, nothing saved) and Microsoft Authenticator (the consent link, clicked
//!    through on the sandbox's consent page, to "Tap to finish onboarding").
//! 3. They connect the sandbox HaloPSA, test it (each check shown), and map Contoso from its
//!    suggestion on Companies; then invite a technician from Users.
//! 4. The technician chooses their password, signs in with the keyboard only, opens a ticket
//!    from Tickets, and verifies (a push approved on the Microsoft sandbox's phone) and resets
//!    Dana in the pod's panel.
//! 5. The SMS link, opened from the SMS sandbox's outbox, reveals the password Microsoft
//!    received.
//!
//! On every console page visited: no sideways scroll (1280 px wide, and 390 px for Tickets and
//! Contacts), every form field labelled, and a screenshot in `target/screenshots/`.
//!
//! The panel's steps are helpers (`open_ticket`, `verify_and_reset_in_panel`,
//! `reveal_from_the_outbox`) so that a Contacts journey (verify and reset without a ticket,
//! once it is built) reuses them.

use std::path::PathBuf;

use fantoccini::{Client, Locator};
use secrecy::ExposeSecret;
use serde_json::json;
use totp_rs::{Algorithm, Secret, TOTP};
use vouch::core::accounts::NewUserInput;
use vouch::domain::{ConsoleRole, IntegrationKind, MspPolicy};
use vouch::sandbox::microsoft::{DEMO_TENANT_ID, IDENTITY_APP_CLIENT_ID, IDENTITY_APP_SECRET};
use vouch::sandbox::psa as sbx;
use vouch::store::msp::{MspAccount, NewMspAccount};

use crate::browser::{
    WAIT, approve_on_phone, click, enabled, in_browser, shield_state, shown, wait_for, wait_until,
};
use crate::common::console::system;
use crate::common::world::World;
use crate::common::{TestDb, free_port};

const ADMIN: &str = "ada@woodgrove.example";
const ADMIN_PASSWORD: &str = "a long console passphrase 1";
const TECH: &str = "jo@woodgrove.example";
const TECH_PASSWORD: &str = "a long technician passphrase 1";
const WRONG_SECRET: &str = "not-the-secret-value";
const DANA: &str = "dana@contoso.example";
const DANA_MOBILE: &str = "+12065550101";

/// WebDriver's key codes (W3C WebDriver, "Keyboard actions").
const TAB: &str = "\u{e004}";
const ENTER: &str = "\u{e007}";

/// Laptop and phone widths of the layout checks.
const LAPTOP: u32 = 1280;
const PHONE: u32 = 390;

/// The browser on the console of one world: navigation, form filling, and the checks every
/// console page gets (layout, labels, screenshot).
struct Console<'a> {
    client: &'a Client,
    world: &'a World,
    /// The public URL without its trailing `/`.
    base: String,
    shots: PathBuf,
    /// The window width asked for last.
    width: std::cell::Cell<u32>,
}

impl<'a> Console<'a> {
    fn new(client: &'a Client, world: &'a World) -> Console<'a> {
        let base = world
            .app
            .ctx
            .config
            .http
            .public_url
            .as_str()
            .trim_end_matches('/')
            .to_owned();
        Console {
            client,
            world,
            base,
            shots: crate::browser::screenshots_dir(),
            width: std::cell::Cell::new(0),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Opens `path` and waits for `ready`; then [`Console::checked`].
    async fn visit(&self, path: &str, ready: &str, name: &str) {
        self.client.goto(&self.url(path)).await.unwrap();
        wait_for(self.client, ready).await;
        self.checked(name).await;
    }

    /// The page now shown is a console page that does not scroll sideways and labels every
    /// field; its screenshot is saved as `console-{name}.png`.
    async fn checked(&self, name: &str) {
        self.fits(name).await;
        self.cells_fill_their_rows(name).await;
        self.fields_labelled(name).await;
        self.shot(&format!("console-{name}")).await;
    }

    /// No sideways scroll at the window's width, which is the width asked for (a window that
    /// silently stayed wider would prove nothing).
    async fn fits(&self, name: &str) {
        let layout = self
            .client
            .execute(
                "const e = document.documentElement;
                 return [window.innerWidth, e.scrollWidth, e.clientWidth];",
                vec![],
            )
            .await
            .unwrap();
        let [inner, scroll, client] = [0, 1, 2].map(|i| layout[i].as_u64().unwrap());
        let width = u64::from(self.width.get());
        assert!(
            inner <= width,
            "{name}: the viewport ({inner} px) is wider than the window asked for ({width} px)"
        );
        assert!(
            scroll <= client,
            "{name} scrolls sideways at {width} px: {scroll} px of content in {client} px"
        );
    }

    /// Every table cell is as tall as its row, so the rows' borders run straight (a cell
    /// given another display, such as flex, stops being one and shrinks to its content).
    async fn cells_fill_their_rows(&self, name: &str) {
        let ragged = self
            .client
            .execute(
                "return [...document.querySelectorAll('tr')].flatMap(row => {
                   const r = row.getBoundingClientRect();
                   return [...row.cells]
                     .filter(c => Math.abs(c.getBoundingClientRect().bottom - r.bottom) > 1)
                     .map(c => c.outerHTML.slice(0, 120));
                 });",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(ragged, json!([]), "{name}: cells shorter than their row");
    }

    /// Every input, select and textarea has a `<label>`, an `aria-label` or an
    /// `aria-labelledby` naming an element that exists.
    async fn fields_labelled(&self, name: &str) {
        let unlabelled = self
            .client
            .execute(
                "return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                   .filter(f => !(f.labels && f.labels.length > 0)
                     && !(f.getAttribute('aria-label') || '').trim()
                     && !(f.getAttribute('aria-labelledby') || '').split(/\\s+/)
                          .some(id => id && document.getElementById(id)))
                   .map(f => f.outerHTML.slice(0, 160));",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(unlabelled, json!([]), "{name}: fields without a label");
    }

    async fn shot(&self, file: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{file}.png")), png).unwrap();
    }

    async fn fill(&self, id: &str, text: &str) {
        let field = self.client.find(Locator::Id(id)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    async fn press(&self, css: &str) {
        wait_for(self.client, css).await.click().await.unwrap();
    }

    /// Follows the navigation's link to `path` and waits for `ready`; then the checks.
    async fn section(&self, path: &str, ready: &str, name: &str) {
        self.press(&format!("nav a[href='{path}']")).await;
        wait_for(self.client, ready).await;
        assert_eq!(self.client.current_url().await.unwrap().path(), path);
        self.checked(name).await;
    }

    async fn text(&self, css: &str) -> String {
        wait_for(self.client, css).await.text().await.unwrap()
    }

    async fn page_source(&self) -> String {
        self.client.source().await.unwrap()
    }

    async fn width(&self, width: u32) {
        let height = if width == PHONE { 844 } else { 1000 };
        self.client.set_window_size(width, height).await.unwrap();
        self.width.set(width);
    }

    async fn sign_out(&self) {
        self.press("#sign-out").await;
        wait_for(self.client, "#sign-in").await;
    }
}

/// The code an authenticator app shows now for the base32 `secret`.
fn totp_code(secret: &str) -> String {
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        30,
        Secret::Encoded(secret.to_owned()).to_bytes().unwrap(),
        Some("Vouch".into()),
        "user".into(),
    )
    .unwrap()
    .generate_current()
    .unwrap()
}

/// A world (its own MSP set up by the harness) whose public URL is its own address, so the
/// console's origin checks hold, and a second MSP, Woodgrove IT, with nothing set up.
async fn world(db: &TestDb) -> (World, MspAccount) {
    let port = free_port();
    let world = World::start_with(db, MspPolicy::default(), |c| {
        c.http.bind = format!("127.0.0.1:{port}").parse().unwrap();
        c.http.public_url = format!("http://127.0.0.1:{port}/").parse().unwrap();
    })
    .await;
    assert!(world.app.ctx.config.console.require_totp_for_admins);
    let woodgrove = world
        .app
        .store
        .create_msp(NewMspAccount {
            name: "Woodgrove IT".into(),
            brand_logo_url: None,
            brand_color: None,
            policy: MspPolicy::default(),
        })
        .await
        .unwrap();
    (world, woodgrove)
}

/// Step 1: the sign-in page, then the set-up link that `vouch user create --admin` prints
/// (made by the same accounts service): a password, TOTP set up, recovery codes kept.
async fn first_admin_sets_up_totp(console: &Console<'_>, msp: &MspAccount) -> Vec<String> {
    let link = console
        .world
        .app
        .ctx
        .accounts
        .create_user(
            msp.id,
            &system(),
            NewUserInput {
                email: ADMIN.into(),
                name: "Ada Admin".into(),
                role: ConsoleRole::Admin,
            },
        )
        .await
        .unwrap();
    console
        .visit("/console/sign-in", "#sign-in", "sign-in")
        .await;

    console.client.goto(link.url.expose_secret()).await.unwrap();
    wait_for(console.client, "#choose-password").await;
    console.fill("password", ADMIN_PASSWORD).await;
    console.fill("confirm", ADMIN_PASSWORD).await;
    console.checked("setup").await;
    console.press("#choose-password").await;

    // The enrolment: the QR code, and its secret as text, which an app would be given.
    wait_for(console.client, ".qr svg").await;
    let secret = console.text("#totp-secret").await.replace(' ', "");
    console.checked("two-factor").await;
    console.fill("code", &totp_code(&secret)).await;
    console.press("#confirm-code").await;

    let codes = wait_for(console.client, "#recovery-codes").await;
    let mut kept = Vec::new();
    for code in codes.find_all(Locator::Css("li code")).await.unwrap() {
        kept.push(code.text().await.unwrap());
    }
    assert_eq!(kept.len(), 10, "{kept:?}");
    assert!(kept.iter().all(|code| code.len() >= 8), "{kept:?}");
    console.checked("recovery-codes").await;
    console.press("#continue").await;

    let who = console.text("#signed-in-as").await;
    assert!(who.contains(ADMIN), "{who}");
    assert_eq!(
        console.client.current_url().await.unwrap().path(),
        "/console"
    );
    console.checked("home").await;
    kept
}

/// Step 2: M365 Identity Management (a wrong secret first, then the right one) and Microsoft
/// Authenticator (its consent link, accepted on the sandbox's consent page).
async fn admin_connects_both_integrations(console: &Console<'_>, msp: &MspAccount) {
    let integrations = &console.world.app.ctx.integrations;
    console
        .section(
            "/console/integrations",
            "#no-integrations",
            "integrations-empty",
        )
        .await;

    console.press("#add-identity").await;
    wait_for(console.client, "#identity-form").await;
    console.fill("tenant_id", DEMO_TENANT_ID).await;
    console.fill("client_id", IDENTITY_APP_CLIENT_ID).await;
    console.fill("client_secret", WRONG_SECRET).await;
    console.checked("integrations-identity").await;
    console.press("#connect-identity").await;
    let error = console.text("#client_secret-error").await;
    assert!(
        error.contains("Microsoft rejected the client secret"),
        "the refusal says what went wrong: {error}"
    );
    let field = console
        .client
        .find(Locator::Id("client_secret"))
        .await
        .unwrap();
    assert_eq!(
        field.attr("aria-invalid").await.unwrap().as_deref(),
        Some("true")
    );
    assert_eq!(
        field.attr("aria-describedby").await.unwrap().as_deref(),
        Some("client_secret-error"),
        "the explanation is tied to its field"
    );
    let gap = console
        .client
        .execute(
            "const f = document.getElementById('client_secret').getBoundingClientRect();
             const e = document.getElementById('client_secret-error').getBoundingClientRect();
             return e.top - f.bottom;",
            vec![],
        )
        .await
        .unwrap()
        .as_f64()
        .unwrap();
    assert!(
        (0.0..=24.0).contains(&gap),
        "the explanation sits right under its field ({gap} px below it)"
    );
    // The other fields keep what was typed; the secret is never sent back.
    let tenant = console.client.find(Locator::Id("tenant_id")).await.unwrap();
    assert_eq!(
        tenant.prop("value").await.unwrap().as_deref(),
        Some(DEMO_TENANT_ID)
    );
    assert_eq!(field.prop("value").await.unwrap().as_deref(), Some(""));
    assert!(!console.page_source().await.contains(WRONG_SECRET));
    console.checked("integrations-wrong-secret").await;
    assert!(
        integrations.list(msp.id).await.unwrap().is_empty(),
        "a wrong secret saves nothing"
    );
    console.fill("client_secret", IDENTITY_APP_SECRET).await;
    console.press("#connect-identity").await;
    wait_for(console.client, "#make-consent-link").await;
    let listed = integrations.list(msp.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].kind, IntegrationKind::IdentityManagement);

    // The consent link opens in a tab of its own, as for a customer's admin.
    console.press("#make-consent-link").await;
    wait_for(console.client, "#consent-url").await;
    console.checked("integrations-consent-link").await;
    let console_window = console.client.window().await.unwrap();
    console.press("#open-consent").await;
    let consent_window = {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let windows = console.client.windows().await.unwrap();
            if let Some(other) = windows.into_iter().find(|w| *w != console_window) {
                break other;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the consent link opened no tab"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    console
        .client
        .switch_to_window(consent_window)
        .await
        .unwrap();
    console
        .press(&format!("#tenant option[value='{DEMO_TENANT_ID}']"))
        .await;
    console.press("#role option[value='global_admin']").await;
    console.shot("microsoft-consent").await;
    console.press("button[value='accept']").await;
    wait_for(console.client, "#prerequisites-heading").await;
    let result = console.page_source().await;
    assert!(result.contains("Tap to finish onboarding"), "{result}");
    assert_eq!(
        result.matches("<strong>Passed:</strong>").count(),
        4,
        "each prerequisite passed: {result}"
    );
    assert!(!result.contains("<strong>Failed:</strong>"), "{result}");
    console.checked("consent-result").await;
    console.client.close_window().await.unwrap();
    console
        .client
        .switch_to_window(console_window)
        .await
        .unwrap();

    console
        .visit(
            "/console/integrations",
            "table.integrations",
            "integrations",
        )
        .await;
    let page = console.page_source().await;
    assert!(page.contains("Microsoft Authenticator</td>"), "{page}");
    assert!(page.contains("M365 Identity Management</td>"), "{page}");
    assert_eq!(page.matches(">Working</span>").count(), 2, "{page}");
}

/// Step 3: the sandbox HaloPSA connected (its paste-in values shown), tested (each check's
/// outcome listed), and Contoso mapped from its suggestion. The connection's id.
async fn admin_connects_and_tests_a_psa_and_maps_a_company(
    console: &Console<'_>,
    msp: &MspAccount,
) -> uuid::Uuid {
    let ctx = &console.world.app.ctx;
    console
        .section(
            "/console/psa-connections",
            "#no-connections",
            "psa-connections-empty",
        )
        .await;
    console.press("#connect-halopsa").await;
    wait_for(console.client, "#connection-form").await;
    let halo = console.world.psa.halopsa();
    console.fill("name", "Woodgrove Halo").await;
    console.fill("resource_url", &halo.resource_url).await;
    console.fill("auth_url", &halo.auth_url).await;
    console.fill("client_id", &halo.client_id).await;
    console.fill("client_secret", &halo.client_secret).await;
    console.checked("psa-form").await;
    console.press("#save-connection").await;

    let pod_url = wait_for(console.client, "#pod-url").await;
    let connections = ctx.psa_connections.list(msp.id).await.unwrap();
    assert_eq!(connections.len(), 1);
    let id = connections[0].id;
    let expected = ctx.psa_connections.setup(msp.id, id).await.unwrap();
    assert_eq!(
        pod_url.prop("value").await.unwrap().as_deref(),
        Some(expected.pod_url.as_str())
    );
    console.checked("psa-setup").await;

    // The notice's link to the connection's own page, where it is tested.
    console.press("#created a").await;
    wait_for(console.client, "#test-connection").await;
    assert_eq!(
        console.client.current_url().await.unwrap().path(),
        format!("/console/psa-connections/{id}")
    );
    console.checked("psa-connection").await;
    assert_eq!(console.text("#connection-status").await, "Not tested");
    console.press("#test-connection").await;
    let summary = console.text("#test-result").await;
    assert!(summary.contains("Every check passed"), "{summary}");
    let checks = console
        .client
        .find_all(Locator::Css("#test-result li.check"))
        .await
        .unwrap();
    assert!(checks.len() >= 2, "each check is listed: {summary}");
    for check in checks {
        let line = check.text().await.unwrap();
        assert!(line.starts_with("Passed:"), "{line}");
    }
    assert_eq!(console.text("#connection-status").await, "Test passed");
    console.checked("psa-tested").await;

    console
        .section("/console/companies", "#accept-all", "companies")
        .await;
    console.press("button[aria-label^='Map Contoso']").await;
    let notices = console.text("#notices").await;
    assert!(notices.contains("is now mapped to"), "{notices}");
    let mappings = ctx.setup.list_mappings(msp.id, None).await.unwrap();
    assert_eq!(mappings.len(), 1, "{mappings:?}");
    assert!(mappings[0].psa_company_name.starts_with("Contoso"));
    console.checked("companies-mapped").await;
    id
}

/// The admin's other pages, then a technician invited from Users: the set-up link shown once.
async fn admin_visits_the_rest_and_invites_a_technician(console: &Console<'_>) -> String {
    for (path, ready, name) in [
        ("/console/contacts", "#contact-search", "contacts"),
        ("/console/tickets", "#ticket-form", "tickets"),
        ("/console/shares", "#share-form", "shares"),
        ("/console/audit", "#audit-entries", "audit"),
        ("/console/settings", "#sms-preview", "settings"),
    ] {
        console.section(path, ready, name).await;
    }
    // Account: from the name in the bar.
    console.press("#your-account").await;
    wait_for(console.client, "#change-password").await;
    console.checked("account").await;
    console.section("/console/users", "#invite", "users").await;
    console.fill("invite-email", TECH).await;
    console.fill("invite-name", "Jo Tech").await;
    console
        .press("#invite-role option[value='technician']")
        .await;
    console.press("#invite").await;
    let link = wait_for(console.client, "#link-url").await;
    let link = link.prop("value").await.unwrap().unwrap();
    assert!(link.starts_with(&console.url("/console/setup/")), "{link}");
    console.checked("users-invited").await;
    link
}

/// Step 4's start: the technician chooses a password from their link, signs out, and signs in
/// again with the keyboard alone (the address field has the focus; Tab, then Enter).
async fn technician_signs_in_with_the_keyboard(console: &Console<'_>, link: &str) {
    console.client.goto(link).await.unwrap();
    wait_for(console.client, "#choose-password").await;
    console.fill("password", TECH_PASSWORD).await;
    console.fill("confirm", TECH_PASSWORD).await;
    console.press("#choose-password").await;
    let who = console.text("#signed-in-as").await;
    assert!(who.contains(TECH), "{who}");
    console.sign_out().await;

    let active_id = async || {
        console
            .client
            .active_element()
            .await
            .unwrap()
            .attr("id")
            .await
            .unwrap()
    };
    assert_eq!(
        active_id().await.as_deref(),
        Some("email"),
        "the sign-in page starts in the address field"
    );
    let active = console.client.active_element().await.unwrap();
    active.send_keys(&format!("{TECH}{TAB}")).await.unwrap();
    assert_eq!(
        active_id().await.as_deref(),
        Some("password"),
        "Tab goes on to the password"
    );
    let active = console.client.active_element().await.unwrap();
    active
        .send_keys(&format!("{TECH_PASSWORD}{ENTER}"))
        .await
        .unwrap();
    let who = console.text("#signed-in-as").await;
    assert!(who.contains(TECH), "signed in with the keyboard: {who}");
    assert_eq!(
        console.client.current_url().await.unwrap().path(),
        "/console"
    );
    console.checked("home-technician").await;
}

/// Tickets: the connection picked and the ticket number typed; the pod's panel shows the
/// ticket's contact, `contact_name`.
async fn open_ticket(
    console: &Console<'_>,
    connection: uuid::Uuid,
    ticket: u64,
    contact_name: &str,
) {
    console
        .section("/console/tickets", "#ticket-form", "tickets-technician")
        .await;
    console
        .press(&format!("#ticket-connection option[value='{connection}']"))
        .await;
    console.fill("ticket-number", &ticket.to_string()).await;
    console.press("#open-ticket").await;
    wait_for(console.client, "#vouch-reset").await;
    wait_until(
        console.client,
        "#vouch-contact-name",
        "the ticket's contact shown",
        |text, _| text.contains(contact_name),
        "id",
    )
    .await;
}

/// In the pod's panel on the page (from Tickets, or any page that shows it; `page` names its
/// screenshots): Reset waits for a verification; a push, approved by a person on the Microsoft
/// sandbox's phone; then the reset, confirmed in the dialog that names `upn` and the end of
/// their mobile, `mobile_end`.
async fn verify_and_reset_in_panel(console: &Console<'_>, page: &str, upn: &str, mobile_end: &str) {
    let client = console.client;
    let reset = client.find(Locator::Id("vouch-reset")).await.unwrap();
    assert!(
        reset.attr("disabled").await.unwrap().is_some(),
        "Reset waits for a verification"
    );
    enabled(client, "#vouch-method-push").await;
    click(client, "vouch-method-push").await;
    shield_state(client, "pending").await;
    approve_on_phone(&console.world.microsoft, client).await;
    shield_state(client, "verified").await;
    console.checked(&format!("{page}-verified")).await;

    enabled(client, "#vouch-reset").await;
    click(client, "vouch-reset").await;
    shown(client, "#vouch-reset-confirm").await;
    wait_until(
        client,
        "#vouch-reset-question",
        "the confirmation names the user and their phone",
        |text, _| text.contains(upn) && text.contains(mobile_end),
        "id",
    )
    .await;
    enabled(client, "#vouch-reset-go").await;
    click(client, "vouch-reset-go").await;
    wait_until(
        client,
        "#vouch-outcome",
        "the reset's outcome",
        |text, _| text.contains("Password reset"),
        "id",
    )
    .await;
    console.checked(&format!("{page}-reset")).await;
}

/// Step 5: the user's phone, played by the SMS sandbox's outbox: the newest message to
/// `mobile` holds the link, which reveals the password Microsoft received for `upn`.
async fn reveal_from_the_outbox(console: &Console<'_>, mobile: &str, upn: &str) {
    let client = console.client;
    let outbox = url::Url::parse_with_params(
        &console.world.sms.outbox_url(),
        &[("to", mobile), ("refresh", "off")],
    )
    .unwrap();
    client.goto(outbox.as_str()).await.unwrap();
    // Newest first.
    let link = wait_for(client, "ol.outbox li.sms .sms-body a").await;
    let href = link.attr("href").await.unwrap().unwrap();
    assert!(href.starts_with(&console.base), "{href}");
    console.shot("sms-outbox").await;
    link.click().await.unwrap();
    wait_for(client, "form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    let secret = wait_for(client, "#secret").await;
    let shown = match secret.prop("value").await.unwrap() {
        Some(value) if !value.is_empty() => value,
        _ => secret.text().await.unwrap(),
    };
    console.shot("sms-link-revealed").await;
    let (password, _) = console
        .world
        .microsoft
        .user_password(DEMO_TENANT_ID, upn)
        .expect("Microsoft received a new password");
    assert_eq!(
        shown.trim(),
        password,
        "the link reveals the password Microsoft received"
    );
}

/// Tickets (with the panel open) and Contacts on a 390-pixel phone.
async fn phone_sized_pages(console: &Console<'_>, connection: uuid::Uuid) {
    console.width(PHONE).await;
    console
        .visit(
            &format!(
                "/console/tickets?connection={connection}&ticket={}",
                sbx::HALO_TICKET_DANA
            ),
            "#vouch-reset",
            "tickets-phone",
        )
        .await;
    // Once the panel has filled itself in, it still fits.
    wait_until(
        console.client,
        "#vouch-contact-name",
        "the panel filled in",
        |text, _| text.contains("Dana Whitfield"),
        "id",
    )
    .await;
    console.checked("tickets-phone").await;
    console
        .visit(
            "/console/contacts?q=dana",
            "#contact-results",
            "contacts-phone",
        )
        .await;
    console.width(LAPTOP).await;
}

#[tokio::test]
async fn the_console_journey_from_the_first_admin_to_a_reset_in_a_browser() {
    in_browser(async |client| {
        let db = TestDb::sqlite().await;
        let (world, woodgrove) = world(&db).await;
        let console = Console::new(client, &world);
        console.width(LAPTOP).await;

        let recovery_codes = first_admin_sets_up_totp(&console, &woodgrove).await;
        admin_connects_both_integrations(&console, &woodgrove).await;
        let halo = admin_connects_and_tests_a_psa_and_maps_a_company(&console, &woodgrove).await;
        let link = admin_visits_the_rest_and_invites_a_technician(&console).await;
        console.sign_out().await;

        technician_signs_in_with_the_keyboard(&console, &link).await;
        open_ticket(&console, halo, sbx::HALO_TICKET_DANA, "Dana Whitfield").await;
        verify_and_reset_in_panel(&console, "tickets", DANA, "••01").await;
        reveal_from_the_outbox(&console, DANA_MOBILE, DANA).await;
        phone_sized_pages(&console, halo).await;
        console
            .visit(
                "/console/contacts?q=dana",
                "#contact-results",
                "contacts-technician",
            )
            .await;
        console.sign_out().await;

        // The admin's kept recovery code signs them in once instead of the app's code.
        console.fill("email", ADMIN).await;
        console.fill("password", ADMIN_PASSWORD).await;
        console.press("#sign-in").await;
        wait_for(client, "#verify-code").await;
        console.checked("sign-in-code").await;
        console.fill("code", &recovery_codes[0]).await;
        console.press("#verify-code").await;
        let who = console.text("#signed-in-as").await;
        assert!(who.contains(ADMIN), "{who}");
        world.app.stop().await;
    })
    .await;
}
