//! The technician's pages of the MSP console, over real HTTP: Tickets (the pod's panel for
//! a PSA ticket, in the console user's name), Contacts and Secure Data Sharing; CSRF,
//! another MSP's data, a reset without a fresh verification; and the journey in Chromium.

use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::json;
use vouch::core::accounts::NewUserInput;
use vouch::domain::{ActorKind, ConsoleRole, MspPolicy, PsaKind};
use vouch::sandbox::microsoft::PushScript;
use vouch::sandbox::psa::{self as sbx, Psa};
use vouch::store::audit::{AuditActor, AuditQuery};
use vouch::store::msp::{MspAccount, NewMspAccount};

use crate::backends::on_every_backend;
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

fn system() -> AuditActor {
    AuditActor {
        kind: ActorKind::System,
        id: None,
        name: Some("tests".into()),
    }
}

/// A browser of one cookie that follows no redirect and sends the console's Origin.
struct Agent {
    client: reqwest::Client,
    base: String,
    origin: String,
    cookie: Option<String>,
}

struct Page {
    status: u16,
    location: Option<String>,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Agent {
    fn new(app: &TestApp) -> Agent {
        Agent {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: app.base_url.clone(),
            origin: app
                .ctx
                .config
                .http
                .public_url
                .as_str()
                .trim_end_matches('/')
                .to_owned(),
            cookie: None,
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", format!("vouch_console={cookie}"));
        }
        self.read(request.send().await.unwrap()).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .form(form)
            .header("origin", &self.origin);
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", format!("vouch_console={cookie}"));
        }
        self.read(request.send().await.unwrap()).await
    }

    async fn read(&mut self, response: reqwest::Response) -> Page {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        for cookie in headers.get_all("set-cookie") {
            let value = cookie.to_str().unwrap().split(';').next().unwrap();
            if let Some(value) = value.strip_prefix("vouch_console=") {
                self.cookie = (!value.is_empty()).then(|| value.to_owned());
            }
        }
        Page {
            status,
            location: headers
                .get("location")
                .map(|v| v.to_str().unwrap().to_owned()),
            headers,
            body: response.text().await.unwrap(),
        }
    }
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
        .open_console_session(&sam, halo, &sbx::HALO_TICKET_DANA.to_string())
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
