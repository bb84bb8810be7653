//! The console's overview and admin pages over real HTTP: the audit (filters, paging, CSV,
//! ticket links, one person for a linked technician, MSP isolation), the home page, settings,
//! users and API keys, the own account, and a walk over the route table checking that every
//! admin route refuses a technician and sends a signed-out request to sign-in.

use chrono::{Duration, Utc};
use secrecy::SecretString;
use uuid::Uuid;
use vouch::core::accounts::NewUserInput;
use vouch::domain::{ActorKind, AuditOutcome, ConsoleRole, MspPolicy, PsaKind, VerificationMethod};
use vouch::sandbox::microsoft::DEMO_TENANT_ID;
use vouch::store::audit::{AuditActor, NewAuditEvent};
use vouch::store::msp::NewMspAccount;
use vouch::store::psa_connections::TechnicianSighting;
use vouch::store::verifications::NewVerification;

use crate::backends::on_every_backend;
use crate::common::console::{Agent, csrf_of};
use crate::common::world::World;
use crate::common::{TestApp, TestDb, free_port};

const ADMIN: (&str, &str, &str) = (
    "avery@northwind.example",
    "Avery Admin",
    "a long admin passphrase 1",
);
const TECH: (&str, &str, &str) = (
    "jordan@northwind.example",
    "Jordan Tech",
    "a long technician passphrase 1",
);

/// A world whose public URL is its own address (the console's Origin check holds).
async fn world(db: &TestDb) -> World {
    let port = free_port();
    World::start_with(db, MspPolicy::default(), |c| {
        c.http.bind = format!("127.0.0.1:{port}").parse().unwrap();
        c.http.public_url = format!("http://127.0.0.1:{port}/").parse().unwrap();
    })
    .await
}

/// A console user with a password and no second factor (as the demo seeds them).
async fn seed(app: &TestApp, msp_id: Uuid, who: (&str, &str, &str), role: ConsoleRole) -> Uuid {
    app.ctx
        .accounts
        .seed_demo_user(
            msp_id,
            NewUserInput {
                email: who.0.into(),
                name: who.1.into(),
                role,
            },
            &SecretString::from(who.2.to_owned()),
        )
        .await
        .unwrap()
        .id
}

/// How many rows the audit table of a page has.
fn audit_rows(html: &str) -> usize {
    let Some(start) = html.find("<tbody>") else {
        return 0;
    };
    let end = html[start..].find("</tbody>").unwrap() + start;
    html[start..end].matches("<tr").count()
}

/// A verification from ticket 1001 of the ConnectWise connection, by a PSA technician, and
/// its start entry: (technician id, verification id).
async fn ticket_verification(world: &World) -> (Uuid, Uuid) {
    let store = &world.app.store;
    let cw = world
        .app
        .ctx
        .psa_connections
        .list(world.msp.id)
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.kind == PsaKind::ConnectWise)
        .unwrap();
    let tenant = store
        .find_tenant_by_microsoft_id(world.msp.id, DEMO_TENANT_ID)
        .await
        .unwrap()
        .unwrap();
    let technician = store
        .record_technician(TechnicianSighting {
            msp_id: world.msp.id,
            psa_connection_id: cw.id,
            psa_member_id: "jtech".into(),
            display_name: "J. Tech (ConnectWise)".into(),
            email: Some("jtech@northwind.example".into()),
        })
        .await
        .unwrap();
    let verification = store
        .create_verification(NewVerification {
            msp_id: world.msp.id,
            tenant_id: tenant.id,
            technician_id: Some(technician.id),
            psa_connection_id: Some(cw.id),
            psa_ticket_id: Some("1001".into()),
            psa_contact_id: None,
            user_object_id: "00000000-0000-0000-0000-00000000da4a".into(),
            user_principal_name: "Dana@contoso.example".into(),
            method: VerificationMethod::Push,
            code_hash: None,
            reason: None,
            used_contact_phone_fallback: false,
            expires_at: Utc::now() + Duration::minutes(5),
            waiter_instance_id: None,
            console_user_id: None,
        })
        .await
        .unwrap();
    store
        .append(NewAuditEvent {
            msp_id: world.msp.id,
            actor: AuditActor {
                kind: ActorKind::Technician,
                id: Some(technician.id.to_string()),
                name: None,
            },
            action: "verification.push.start".into(),
            subject_kind: Some("user".into()),
            subject_id: Some(verification.user_object_id.clone()),
            subject_name: Some(verification.user_principal_name.clone()),
            psa_ticket_id: Some("1001".into()),
            outcome: AuditOutcome::Started,
            upstream_request_id: None,
            details: serde_json::json!({ "verification_id": verification.id }),
        })
        .await
        .unwrap();
    (technician.id, verification.id)
}

/// An entry whose subject's name a spreadsheet would run as a formula.
fn filler(msp_id: Uuid, n: usize) -> NewAuditEvent {
    NewAuditEvent {
        msp_id,
        actor: AuditActor {
            kind: ActorKind::ApiKey,
            id: Some("vk_test".into()),
            name: Some("tests".into()),
        },
        action: "test.filler".into(),
        subject_kind: Some("user".into()),
        subject_id: Some(format!("filler-{n}")),
        subject_name: Some(format!("=HYPERLINK(\"https://evil.example\",\"{n}\")")),
        psa_ticket_id: None,
        outcome: AuditOutcome::Success,
        upstream_request_id: None,
        details: serde_json::json!({}),
    }
}

#[tokio::test]
async fn the_audit_filters_pages_exports_and_links_each_ticket_in_its_psa() {
    on_every_backend(async |db| {
        let world = world(db).await;
        let app = &world.app;
        seed(app, world.msp.id, ADMIN, ConsoleRole::Admin).await;
        let jordan = seed(app, world.msp.id, TECH, ConsoleRole::Technician).await;
        let (technician, _) = ticket_verification(&world).await;
        for n in 0..55 {
            app.store
                .append(filler(world.msp.id, n))
                .await
                .unwrap();
        }

        // Signed out: to sign-in.
        let mut nobody = Agent::new(app).reading_addresses();
        for path in ["/console/audit", "/console/audit.csv"] {
            let page = nobody.get(path).await;
            assert_eq!(page.status, 303, "{path}");
            assert_eq!(page.location.as_deref(), Some("/console/sign-in"));
        }

        let mut admin = Agent::signed_in(app, ADMIN.0, ADMIN.2).await.reading_addresses();
        let first = admin.get("/console/audit").await;
        assert_eq!(first.status, 200, "{}", first.body);
        assert!(first.body.contains("<label for=\"person\">Technician</label>"));
        assert!(first.body.contains("href=\"/console/audit\" aria-current=\"page\""));
        assert_eq!(audit_rows(&first.body), 50, "a page holds 50 entries");
        assert!(first.body.contains("id=\"next-page\""), "{}", first.body);
        assert!(!first.body.contains("id=\"previous-page\""));
        let second = admin.get("/console/audit?page=2").await;
        // 55 fillers, the ticket entry, and the sign-in entries (at least one).
        assert!(audit_rows(&second.body) >= 6, "{}", second.body);
        assert!(second.body.contains("id=\"previous-page\""));

        // The ticket's entry: the technician by their PSA name, the ticket linked in
        // ConnectWise's web client (built from the connection's site), the tenant named.
        let started = admin
            .get("/console/audit?action=verification.push.start")
            .await;
        assert_eq!(audit_rows(&started.body), 1, "{}", started.body);
        assert!(started.body.contains("J. Tech (ConnectWise)"), "{}", started.body);
        let cw = world.psa.connectwise();
        let link = format!(
            "href=\"{}/v4_6_release/services/system_io/Service/fv_sr100_request.rpp?service_recid=1001&amp;companyName=northwind\"",
            cw.site_url.trim_end_matches('/')
        );
        assert!(started.body.contains(&link), "{link}\n{}", started.body);
        assert!(started.body.contains("Contoso"), "{}", started.body);

        // Linked to Jordan's console account, the technician is Jordan in the audit, and
        // choosing Jordan shows the entries of both.
        app.ctx
            .technicians
            .link_console_user(
                world.msp.id,
                &AuditActor {
                    kind: ActorKind::System,
                    id: None,
                    name: None,
                },
                technician,
                Some(jordan),
            )
            .await
            .unwrap();
        let linked = admin
            .get("/console/audit?action=verification.push.start")
            .await;
        assert!(linked.body.contains("<td>Jordan Tech</td>"), "{}", linked.body);
        assert!(!linked.body.contains("J. Tech (ConnectWise)</td>"));
        let by_jordan = admin
            .get(&format!("/console/audit?person=user:{jordan}"))
            .await;
        assert!(by_jordan.body.contains("verification.push.start"), "{}", by_jordan.body);
        assert!(!by_jordan.body.contains("<code>test.filler</code>"));

        // Tenant, user (any case), outcome and date filters.
        let tenant = app
            .store
            .find_tenant_by_microsoft_id(world.msp.id, DEMO_TENANT_ID)
            .await
            .unwrap()
            .unwrap();
        let by_tenant = admin
            .get(&format!("/console/audit?tenant={}&action=verification.push.start", tenant.id))
            .await;
        assert_eq!(audit_rows(&by_tenant.body), 1, "{}", by_tenant.body);
        let other_tenant = admin
            .get(&format!("/console/audit?tenant={}", Uuid::now_v7()))
            .await;
        assert_eq!(audit_rows(&other_tenant.body), 0);
        let by_user = admin.get("/console/audit?user=DANA%40CONTOSO").await;
        assert_eq!(audit_rows(&by_user.body), 1, "{}", by_user.body);
        let by_outcome = admin.get("/console/audit?outcome=started").await;
        assert_eq!(audit_rows(&by_outcome.body), 1, "{}", by_outcome.body);
        let today = Utc::now().date_naive();
        let tomorrow = today + Duration::days(1);
        let in_range = admin
            .get(&format!("/console/audit?action=test.filler&from={today}&to={today}"))
            .await;
        assert_eq!(audit_rows(&in_range.body), 50);
        let out_of_range = admin
            .get(&format!("/console/audit?action=test.filler&from={tomorrow}"))
            .await;
        assert_eq!(audit_rows(&out_of_range.body), 0);

        // A wrong filter says so next to its field.
        let wrong = admin
            .get(&format!("/console/audit?from={tomorrow}&to={today}"))
            .await;
        assert_eq!(wrong.status, 400);
        assert!(wrong.body.contains("id=\"to-error\""), "{}", wrong.body);
        assert!(wrong.body.contains("aria-describedby=\"to-error\""));

        // CSV with the same filters, quoted, formulas neutralised.
        let csv = admin.get("/console/audit.csv?action=test.filler").await;
        assert_eq!(csv.status, 200);
        assert!(csv.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
        assert!(csv.headers["content-disposition"].to_str().unwrap().contains("attachment"));
        let mut reader = csv::Reader::from_reader(csv.body.as_bytes());
        let header = reader.headers().unwrap().clone();
        let subject_at = header.iter().position(|h| h == "subject_name").unwrap();
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 55);
        assert!(
            rows.iter()
                .all(|r| r[subject_at].starts_with("'=HYPERLINK(\"https://evil.example\"")),
            "{}",
            csv.body
        );
        assert!(
            csv.body.contains("\"'=HYPERLINK(\"\"https://evil.example\"\",\"\"54\"\")\""),
            "quoted as RFC 4180 says: {}",
            csv.body
        );
        let csv = admin
            .get("/console/audit.csv?action=verification.push.start")
            .await;
        let mut reader = csv::Reader::from_reader(csv.body.as_bytes());
        let header = reader.headers().unwrap().clone();
        let record = reader.records().next().unwrap().unwrap();
        let cell = |name: &str| record[header.iter().position(|h| h == name).unwrap()].to_owned();
        assert_eq!(cell("actor"), "Jordan Tech");
        assert_eq!(cell("ticket_id"), "1001");
        assert!(cell("ticket_url").contains("service_recid=1001"));

        // A technician reads the audit too.
        let mut tech = Agent::signed_in(app, TECH.0, TECH.2).await.reading_addresses();
        let theirs = tech.get("/console/audit?action=verification.push.start").await;
        assert_eq!(theirs.status, 200);
        assert_eq!(audit_rows(&theirs.body), 1);

        // Another MSP's admin sees none of it, even naming this MSP's people and tenant.
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
        seed(app, other.id, ("root@contoso-msp.example", "Root", ADMIN.2), ConsoleRole::Admin).await;
        let mut stranger = Agent::signed_in(app, "root@contoso-msp.example", ADMIN.2).await.reading_addresses();
        for path in [
            "/console/audit?action=verification.push.start".to_owned(),
            format!("/console/audit?person=user:{jordan}"),
            format!("/console/audit?tenant={}", tenant.id),
            "/console/audit?action=test.filler".to_owned(),
        ] {
            let page = stranger.get(&path).await;
            assert_eq!(page.status, 200, "{path}");
            assert_eq!(audit_rows(&page.body), 0, "{path}: {}", page.body);
        }
        let csv = stranger.get("/console/audit.csv?action=test.filler").await;
        assert_eq!(csv.body.lines().count(), 1, "{}", csv.body);
        world.app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_home_shows_what_needs_attention_todays_counts_and_fraud_reports() {
    on_every_backend(async |db| {
        let world = world(db).await;
        let app = &world.app;
        seed(app, world.msp.id, ADMIN, ConsoleRole::Admin).await;
        seed(app, world.msp.id, TECH, ConsoleRole::Technician).await;
        let system = AuditActor {
            kind: ActorKind::System,
            id: None,
            name: None,
        };
        let mut admin = Agent::signed_in(app, ADMIN.0, ADMIN.2)
            .await
            .reading_addresses();
        let calm = admin.get("/console").await;
        assert_eq!(calm.status, 200, "{}", calm.body);
        assert!(calm.body.contains("id=\"all-well\""), "{}", calm.body);
        assert!(calm.body.contains("id=\"no-fraud\""));
        assert!(calm.body.contains("<dd id=\"verifications-today\">0</dd>"));

        // A secret that expires in 10 days, a PSA connection whose test failed, a
        // verification and a fraud report today.
        app.ctx
            .integrations
            .connect_identity_management(
                world.msp.id,
                &system,
                vouch::core::integrations::IdentityManagementInput {
                    tenant: DEMO_TENANT_ID.into(),
                    client_id: vouch::sandbox::microsoft::IDENTITY_APP_CLIENT_ID.into(),
                    client_secret: SecretString::from(
                        vouch::sandbox::microsoft::IDENTITY_APP_SECRET.to_owned(),
                    ),
                    secret_expires_at: Some(Utc::now() + Duration::days(10) + Duration::hours(1)),
                },
            )
            .await
            .unwrap();
        let cw = app
            .ctx
            .psa_connections
            .list(world.msp.id)
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.kind == PsaKind::ConnectWise)
            .unwrap();
        world.psa.withhold_permission(
            vouch::sandbox::psa::Psa::ConnectWise,
            vouch::sandbox::psa::PsaPermission::ReadTickets,
        );
        let tested = app
            .ctx
            .psa_connections
            .test(world.msp.id, &system, cw.id)
            .await
            .unwrap();
        assert!(!tested.test.passed);
        world.verified("dana@contoso.example").await;
        world.microsoft.script_push(
            "dana@contoso.example",
            vouch::sandbox::microsoft::PushScript::ReportFraud,
        );
        let (status, body) = vouch_json(&world, "dana@contoso.example").await;
        assert_eq!(status, 202, "{body}");

        let busy = crate::common::eventually("the fraud report on the home", || {
            let mut agent = admin.clone();
            async move {
                let page = agent.get("/console").await;
                (!page.body.contains("id=\"no-fraud\"")).then_some(page)
            }
        })
        .await;
        assert!(busy.body.contains("expires in 10 day(s)"), "{}", busy.body);
        assert!(
            busy.body.contains("<a href=\"/console/integrations\">"),
            "{}",
            busy.body
        );
        assert!(
            busy.body.contains("<a href=\"/console/psa-connections\">"),
            "{}",
            busy.body
        );
        assert!(busy.body.contains("connection test"), "{}", busy.body);
        assert!(
            busy.body.contains("<dd id=\"verifications-today\">2</dd>"),
            "{}",
            busy.body
        );
        assert!(
            busy.body.contains("<strong>dana@contoso.example</strong>"),
            "{}",
            busy.body
        );

        // A technician sees the same facts, without the admins' links.
        let mut tech = Agent::signed_in(app, TECH.0, TECH.2)
            .await
            .reading_addresses();
        let theirs = tech.get("/console").await;
        assert!(theirs.body.contains("expires in 10 day(s)"));
        assert!(!theirs.body.contains("<a href=\"/console/integrations\">"));
        assert!(theirs.body.contains("An admin of your MSP fixes these."));
        world.app.stop().await;
    })
    .await;
}

/// Starts a push verification of `user` through the API: its status and answer.
async fn vouch_json(world: &World, user: &str) -> (u16, serde_json::Value) {
    crate::common::world::json_of(
        world
            .api(reqwest::Method::POST, "/api/v1/verifications")
            .json(&serde_json::json!({
                "tenant_id": DEMO_TENANT_ID,
                "user": user,
                "method": "push",
            }))
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// What an admin route may change, to compare before and after a refused request (a
/// sign-in changes only the user's last sign-in, left out).
async fn state_of(app: &TestApp, msp_id: Uuid) -> String {
    let users: Vec<String> = app
        .ctx
        .accounts
        .list(msp_id)
        .await
        .unwrap()
        .iter()
        .map(|u| format!("{} {} {:?} {:?}", u.email, u.name, u.role, u.disabled_at))
        .collect();
    let keys = app.ctx.setup.list_api_keys(msp_id).await.unwrap();
    let settings = app.ctx.settings.get(msp_id).await.unwrap();
    let technicians = app.store.list_technicians(msp_id).await.unwrap();
    let tenants = app.store.list_tenants(msp_id).await.unwrap();
    format!("{users:?}\n{keys:?}\n{settings:?}\n{technicians:?}\n{tenants:?}")
}

#[tokio::test]
async fn every_admin_route_refuses_a_technician_and_sends_the_signed_out_to_sign_in() {
    on_every_backend(async |db| {
        let world = world(db).await;
        let app = &world.app;
        let avery = seed(app, world.msp.id, ADMIN, ConsoleRole::Admin).await;
        seed(app, world.msp.id, TECH, ConsoleRole::Technician).await;
        let table: Vec<(String, Vec<reqwest::Method>)> = vouch::web::console::routes()
            .table()
            .iter()
            .map(|(path, methods)| {
                let path = match path.as_str() {
                    "/" => vouch::web::console::BASE_PATH.to_owned(),
                    p => format!("{}{p}", vouch::web::console::BASE_PATH),
                };
                let methods = methods
                    .iter()
                    .map(|m| reqwest::Method::from_bytes(m.as_str().as_bytes()).unwrap())
                    .collect();
                (path, methods)
            })
            .filter(|(path, _)| vouch::web::console::admin_only(path))
            .collect();
        // Users and API keys is admin-only today; whatever else is, is walked too.
        assert!(
            table.iter().any(|(p, _)| p == "/console/users"),
            "{table:?}"
        );
        assert!(!vouch::web::console::admin_only("/console/audit"));
        assert!(!vouch::web::console::admin_only("/console"));

        let mut tech = Agent::signed_in(app, TECH.0, TECH.2)
            .await
            .reading_addresses();
        let csrf = csrf_of(&tech.get("/console").await.body);
        let mut nobody = Agent::new(app).reading_addresses();
        let before = state_of(app, world.msp.id).await;
        for (template, methods) in &table {
            // Every parameter an existing id (the admin's), so a refusal is not a 404.
            let path: String = template
                .split('/')
                .map(|segment| {
                    if segment.starts_with('{') {
                        avery.to_string()
                    } else {
                        segment.to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            for method in methods {
                let form = [
                    ("csrf", csrf.as_str()),
                    ("role", "admin"),
                    ("email", "mallory@northwind.example"),
                    ("name", "Mallory"),
                ];
                let (refused, signed_out) = if *method == reqwest::Method::GET {
                    (tech.get(&path).await, nobody.get(&path).await)
                } else {
                    (
                        tech.post(&path, &form).await,
                        nobody.post(&path, &form).await,
                    )
                };
                assert_eq!(refused.status, 403, "{method} {path}: {}", refused.body);
                assert!(
                    refused.body.contains("This page is for your MSP"),
                    "{method} {path}"
                );
                assert_eq!(signed_out.status, 303, "{method} {path}");
                assert_eq!(
                    signed_out.location.as_deref(),
                    Some("/console/sign-in"),
                    "{method} {path}"
                );
            }
        }
        assert_eq!(state_of(app, world.msp.id).await, before, "nothing changed");
        world.app.stop().await;
    })
    .await;
}

/// The settings form as the page fills it in from `settings` (checkboxes sent only when on).
fn settings_form(
    settings: &vouch::core::settings::MspSettings,
    csrf: &str,
) -> Vec<(String, String)> {
    let mut form = vec![("csrf".to_owned(), csrf.to_owned())];
    for (_, name, value) in settings.fields() {
        match value {
            serde_json::Value::Bool(true) => form.push((name.to_owned(), "true".to_owned())),
            serde_json::Value::Bool(false) => {}
            serde_json::Value::Null => form.push((name.to_owned(), String::new())),
            serde_json::Value::String(s) => form.push((name.to_owned(), s)),
            other => form.push((name.to_owned(), other.to_string())),
        }
    }
    form
}

fn with(form: &[(String, String)], changes: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut form = form.to_vec();
    for (name, value) in changes {
        form.retain(|(n, _)| n != name);
        form.push(((*name).to_owned(), (*value).to_owned()));
    }
    form
}

fn refs(form: &[(String, String)]) -> Vec<(&str, &str)> {
    form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[tokio::test]
async fn settings_preview_the_texts_and_share_page_save_and_refuse_next_to_the_field() {
    on_every_backend(async |db| {
        let world = world(db).await;
        let app = &world.app;
        seed(app, world.msp.id, ADMIN, ConsoleRole::Admin).await;
        let mut admin = Agent::signed_in(app, ADMIN.0, ADMIN.2)
            .await
            .reading_addresses();
        let page = admin.get("/console/settings").await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(
            page.body.contains("<label for=\"support_phone\">"),
            "{}",
            page.body
        );
        assert!(page.body.contains("id=\"sms-preview\""));
        assert!(page.body.contains("id=\"share-preview\""));
        assert!(!page.body.contains("style=") && !page.body.contains("<script"));
        let csrf = csrf_of(&page.body);
        let before = app.ctx.settings.get(world.msp.id).await.unwrap();
        let form = settings_form(&before, &csrf);

        // A preview renders the texts and the page with the values entered; nothing is saved.
        let preview = admin
            .post(
                "/console/settings",
                &refs(&with(
                    &form,
                    &[
                        ("intent", "preview"),
                        ("name", "Fabrikam Support"),
                        ("color", "#123456"),
                        ("support_phone", "+1 206 555 0100"),
                    ],
                )),
            )
            .await;
        assert_eq!(preview.status, 200, "{}", preview.body);
        assert!(preview.body.contains("id=\"settings-notice\""));
        assert!(
            preview
                .body
                .contains("Fabrikam Support: your code is 482913"),
            "{}",
            preview.body
        );
        assert!(
            preview
                .body
                .contains("Fabrikam Support has shared a secure message with you")
        );
        assert!(
            preview.body.contains("/brand/123456.css"),
            "{}",
            preview.body
        );
        assert!(preview.body.contains("Call +1 206 555 0100"));
        assert_eq!(app.ctx.settings.get(world.msp.id).await.unwrap(), before);

        // A colour too light for white text, and a number that is not one: each refused next
        // to its field, nothing saved.
        for (field, value) in [("color", "#ffff00"), ("push_limit_count", "many")] {
            let refused = admin
                .post(
                    "/console/settings",
                    &refs(&with(&form, &[("intent", "save"), (field, value)])),
                )
                .await;
            assert_eq!(refused.status, 400, "{field}: {}", refused.body);
            assert!(
                refused.body.contains(&format!("id=\"{field}-error\"")),
                "{field}: {}",
                refused.body
            );
            assert!(
                refused.body.contains(&format!("value=\"{value}\"")),
                "kept as entered"
            );
            assert_eq!(app.ctx.settings.get(world.msp.id).await.unwrap(), before);
        }

        // Saved, then in effect and audited; an unticked box turns its policy off.
        let saved = admin
            .post(
                "/console/settings",
                &refs(&with(
                    &form,
                    &[
                        ("intent", "save"),
                        ("sms_sender_name", "Fabrikam"),
                        ("fraud_hold_seconds", "7200"),
                    ],
                )),
            )
            .await;
        assert_eq!(saved.status, 200, "{}", saved.body);
        assert!(
            saved.body.contains("Fabrikam: your code is"),
            "{}",
            saved.body
        );
        let after = app.ctx.settings.get(world.msp.id).await.unwrap();
        assert_eq!(after.branding.sms_sender_name.as_deref(), Some("Fabrikam"));
        assert_eq!(after.policy.fraud_hold_seconds, 7200);
        assert_eq!(after.branding.name, before.branding.name);
        let unticked = with(&settings_form(&after, &csrf), &[("intent", "save")])
            .into_iter()
            .filter(|(name, _)| name != "force_change_at_next_sign_in")
            .collect::<Vec<_>>();
        admin.post("/console/settings", &refs(&unticked)).await;
        assert!(
            !app.ctx
                .settings
                .get(world.msp.id)
                .await
                .unwrap()
                .policy
                .force_change_at_next_sign_in
        );
        let audit = admin.get("/console/audit?action=settings.update").await;
        assert!(audit_rows(&audit.body) >= 1, "{}", audit.body);
        world.app.stop().await;
    })
    .await;
}

/// A `multipart/form-data` body of `fields` (name, file name for a file, value) and its
/// content type, as a browser sends a form with a file.
fn multipart(fields: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----vouch-test-boundary-4b1d";
    let mut body = Vec::new();
    for (name, file_name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"").as_bytes(),
        );
        if let Some(file_name) = file_name {
            body.extend_from_slice(
                format!("; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream")
                    .as_bytes(),
            );
        }
        body.extend_from_slice(b"\r\n\r\n");
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A small PNG (`width` × `height`, one colour).
fn small_png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().unwrap();
        let pixels: Vec<u8> = (0..width * height)
            .flat_map(|_| [0x1d, 0x4e, 0xd8, 0xff])
            .collect();
        writer.write_image_data(&pixels).unwrap();
    }
    out
}

#[tokio::test]
async fn an_admin_uploads_and_removes_the_logo_and_a_bad_file_is_refused_next_to_the_field() {
    on_every_backend(async |db| {
        let world = world(db).await;
        let app = &world.app;
        seed(app, world.msp.id, ADMIN, ConsoleRole::Admin).await;
        seed(app, world.msp.id, TECH, ConsoleRole::Technician).await;
        let mut admin = Agent::signed_in(app, ADMIN.0, ADMIN.2)
            .await
            .reading_addresses();
        let page = admin.get("/console/settings").await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(
            page.body.contains(
                "action=\"/console/settings/logo\" enctype=\"multipart/form-data\""
            ),
            "{}",
            page.body
        );
        assert!(page.body.contains("id=\"logo\" name=\"logo\" type=\"file\""));
        assert!(!page.body.contains("id=\"remove-logo\""), "no logo to remove yet");
        let csrf = csrf_of(&page.body);
        let origin = admin.origin.clone();
        let logo = small_png(8, 4);
        let upload = async |agent: &mut Agent, fields: &[(&str, Option<&str>, &[u8])], origin: Option<&str>| {
            let (content_type, body) = multipart(fields);
            agent
                .post_body("/console/settings/logo", &content_type, body, origin)
                .await
        };

        // A small PNG: uploaded, shown in the share page's preview at its served address,
        // and audited as the admin, like the API's upload.
        let uploaded = upload(
            &mut admin,
            &[("csrf", None, csrf.as_bytes()), ("logo", Some("logo.png"), &logo)],
            Some(&origin),
        )
        .await;
        assert_eq!(uploaded.status, 200, "{}", uploaded.body);
        assert!(uploaded.body.contains("Logo uploaded."), "{}", uploaded.body);
        let settings = app.ctx.settings.get(world.msp.id).await.unwrap();
        let url = settings.branding.uploaded_logo.clone().expect("a logo").url;
        assert!(
            uploaded
                .body
                .contains(&format!("<img src=\"{url}\" alt=")),
            "the preview shows it: {}",
            uploaded.body
        );
        let page = admin.get("/console/settings").await;
        assert!(page.body.contains(&format!("<img src=\"{url}\"")), "{}", page.body);
        assert!(page.body.contains("id=\"remove-logo\""));
        let served = reqwest::get(&url).await.unwrap();
        assert_eq!(served.status(), 200);
        assert_eq!(served.bytes().await.unwrap().as_ref(), logo.as_slice());
        let entries = app
            .store
            .query(vouch::store::audit::AuditQuery {
                msp_id: world.msp.id,
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap();
        let audited = entries
            .iter()
            .find(|e| e.event.action == "settings.logo_upload")
            .expect("the upload is audited");
        assert_eq!(audited.event.actor.kind, ActorKind::ConsoleUser);

        // Refused next to the field, in words that say what to do; the logo stays.
        let mut too_big = b"\x89PNG\r\n\x1a\n".to_vec();
        too_big.resize(300 * 1024, 7);
        for (file, says) in [
            (too_big.as_slice(), "This file is 300 KB; a logo may be at most 256 KB. Export it smaller"),
            (b"%PDF-1.7 not a logo".as_slice(), "This file is not a PNG or SVG image. Save your logo as PNG or SVG"),
            (b"\x89PNG\r\n\x1a\nbroken".as_slice(), "This file is not a readable PNG image: export it again as PNG."),
            (b"".as_slice(), "Choose your logo&#x27;s file (PNG or SVG) first"),
        ] {
            let refused = upload(
                &mut admin,
                &[("csrf", None, csrf.as_bytes()), ("logo", Some("logo.png"), file)],
                Some(&origin),
            )
            .await;
            assert_eq!(refused.status, 400, "{says}: {}", refused.body);
            let error = &refused.body[refused.body.find("id=\"logo-error\">").expect("the field's error")..];
            assert!(error.starts_with(&format!("id=\"logo-error\">{says}")), "{error}");
            assert!(refused.body.contains("aria-invalid=\"true\" aria-describedby=\"logo-error\""));
            assert!(refused.body.contains("id=\"logo-form-error\""));
            assert_eq!(app.ctx.settings.get(world.msp.id).await.unwrap(), settings);
        }

        // Without the token, with a forged one, from another origin, or by a technician:
        // refused, nothing changes.
        let other = small_png(2, 2);
        for (fields, from) in [
            (vec![("logo", Some("logo.png"), other.as_slice())], Some(origin.as_str())),
            (
                vec![("csrf", None, b"forged".as_slice()), ("logo", Some("logo.png"), other.as_slice())],
                Some(origin.as_str()),
            ),
            (
                vec![("csrf", None, csrf.as_bytes()), ("logo", Some("logo.png"), other.as_slice())],
                Some("https://evil.example"),
            ),
            (
                vec![("csrf", None, csrf.as_bytes()), ("logo", Some("logo.png"), other.as_slice())],
                None,
            ),
        ] {
            let refused = upload(&mut admin, &fields, from).await;
            assert_eq!(refused.status, 403, "{from:?}: {}", refused.body);
            assert!(refused.body.contains("This form has expired"), "{}", refused.body);
        }
        let mut tech = Agent::signed_in(app, TECH.0, TECH.2).await;
        let tech_csrf = csrf_of(&tech.get("/console").await.body);
        let refused = upload(
            &mut tech,
            &[("csrf", None, tech_csrf.as_bytes()), ("logo", Some("logo.png"), &other)],
            Some(&origin),
        )
        .await;
        assert_eq!(refused.status, 403, "{}", refused.body);
        assert!(refused.body.contains("This page is for your MSP"), "{}", refused.body);
        assert_eq!(app.ctx.settings.get(world.msp.id).await.unwrap(), settings);

        // An SVG is rasterised; then Remove takes the logo away.
        let svg = br##"<svg xmlns="http://www.w3.org/2000/svg" width="40" height="10"><rect width="40" height="10" fill="#1d4ed8"/></svg>"##;
        let uploaded = upload(
            &mut admin,
            &[("csrf", None, csrf.as_bytes()), ("logo", Some("logo.svg"), svg)],
            Some(&origin),
        )
        .await;
        assert_eq!(uploaded.status, 200, "{}", uploaded.body);
        let svg_logo = app.ctx.settings.get(world.msp.id).await.unwrap().branding.uploaded_logo.expect("the SVG's logo");
        assert_ne!(svg_logo.url, url, "a new upload, a new address");
        let removed = admin
            .post("/console/settings/logo/remove", &[("csrf", &csrf)])
            .await;
        assert_eq!(removed.status, 303, "{}", removed.body);
        assert!(app.ctx.settings.get(world.msp.id).await.unwrap().branding.uploaded_logo.is_none());
        world.app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn admins_manage_api_keys_roles_and_technician_links_and_everyone_their_password() {
    on_every_backend(async |db| {
        let world = world(db).await;
        let app = &world.app;
        let avery = seed(app, world.msp.id, ADMIN, ConsoleRole::Admin).await;
        let jordan = seed(app, world.msp.id, TECH, ConsoleRole::Technician).await;
        let mut admin = Agent::signed_in(app, ADMIN.0, ADMIN.2)
            .await
            .reading_addresses();
        let page = admin.get("/console/users").await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(
            page.body.contains("<title>Users · Vouch console</title>"),
            "the title is text only: {}",
            &page.body[..page.body.find("</title>").unwrap_or(0)]
        );
        assert_eq!(page.body.matches("id=\"api-keys\"").count(), 1);
        let csrf = csrf_of(&page.body);

        // An API key: shown once, works, listed by its prefix only, revoked at once.
        let unnamed = admin
            .post(
                "/console/users/api-keys",
                &[("csrf", &csrf), ("name", " "), ("scope", "technician")],
            )
            .await;
        assert_eq!(unnamed.status, 400, "{}", unnamed.body);
        assert!(
            unnamed.body.contains("id=\"key-name-error\""),
            "{}",
            unnamed.body
        );
        let created = admin
            .post(
                "/console/users/api-keys",
                &[
                    ("csrf", &csrf),
                    ("name", "Backup job"),
                    ("scope", "technician"),
                ],
            )
            .await;
        assert_eq!(created.status, 200, "{}", created.body);
        let marker = "id=\"new-key-value\" type=\"text\" readonly value=\"";
        let at = created.body.find(marker).unwrap() + marker.len();
        let key = created.body[at..at + created.body[at..].find('"').unwrap()].to_owned();
        let with_key = |key: &str| {
            reqwest::Client::new()
                .get(app.url("/api/v1/audit"))
                .bearer_auth(key)
        };
        assert_eq!(with_key(&key).send().await.unwrap().status(), 200);
        let listed = admin.get("/console/users").await;
        assert!(!listed.body.contains(&key), "the key is shown once only");
        let stored = app
            .ctx
            .setup
            .list_api_keys(world.msp.id)
            .await
            .unwrap()
            .into_iter()
            .find(|k| k.name == "Backup job")
            .unwrap();
        assert!(listed.body.contains(&stored.key_prefix));
        // Revoking asks first, naming the key; only the confirmation revokes it.
        let revoke = format!("/console/users/api-keys/{}/revoke", stored.id);
        let asked = admin.post(&revoke, &[("csrf", &csrf)]).await;
        assert_eq!(asked.status, 200, "{}", asked.body);
        assert!(
            asked
                .body
                .contains("<h1 id=\"heading\">Revoke the API key Backup job?</h1>"),
            "{}",
            asked.body
        );
        assert!(asked.body.contains(&stored.key_prefix), "{}", asked.body);
        assert!(!asked.body.contains(&key), "never the key itself");
        assert_eq!(
            with_key(&key).send().await.unwrap().status(),
            200,
            "still works"
        );
        let revoked = admin
            .post(&revoke, &[("csrf", &csrf), ("confirm", "yes")])
            .await;
        assert_eq!(revoked.status, 303, "{}", revoked.body);
        assert_eq!(with_key(&key).send().await.unwrap().status(), 401);

        // Roles: Jordan made an admin and back; the last admin cannot make themself a
        // technician.
        let promoted = admin
            .post(
                &format!("/console/users/{jordan}/role"),
                &[("csrf", &csrf), ("role", "admin")],
            )
            .await;
        assert_eq!(promoted.status, 303, "{}", promoted.body);
        let role_of = async |id: Uuid| {
            app.ctx
                .accounts
                .list(world.msp.id)
                .await
                .unwrap()
                .into_iter()
                .find(|u| u.id == id)
                .unwrap()
                .role
        };
        assert_eq!(role_of(jordan).await, ConsoleRole::Admin);
        admin
            .post(
                &format!("/console/users/{jordan}/role"),
                &[("csrf", &csrf), ("role", "technician")],
            )
            .await;
        assert_eq!(role_of(jordan).await, ConsoleRole::Technician);
        let alone = admin
            .post(
                &format!("/console/users/{avery}/role"),
                &[("csrf", &csrf), ("role", "technician")],
            )
            .await;
        assert_eq!(alone.status, 409, "{}", alone.body);
        assert!(alone.body.contains("without an admin"), "{}", alone.body);
        assert_eq!(role_of(avery).await, ConsoleRole::Admin);

        // Linking Jordan to their technician record, then unlinking.
        let (technician, _) = ticket_verification(&world).await;
        let linked = admin
            .post(
                &format!("/console/users/{jordan}/link-technician"),
                &[("csrf", &csrf), ("technician", &technician.to_string())],
            )
            .await;
        assert_eq!(linked.status, 303, "{}", linked.body);
        let technicians = app.store.list_technicians(world.msp.id).await.unwrap();
        assert_eq!(technicians[0].console_user_id, Some(jordan));
        let audit = admin
            .get("/console/audit?action=verification.push.start")
            .await;
        assert!(
            audit.body.contains("<td>Jordan Tech</td>"),
            "{}",
            audit.body
        );
        let unlinked = admin
            .post(
                &format!("/console/users/{jordan}/unlink-technician"),
                &[("csrf", &csrf), ("technician", &technician.to_string())],
            )
            .await;
        assert_eq!(unlinked.status, 303, "{}", unlinked.body);
        assert_eq!(
            app.store.list_technicians(world.msp.id).await.unwrap()[0].console_user_id,
            None
        );

        // Jordan changes their own password: the current one first, the rules of set-up,
        // their other session ends.
        let mut tech = Agent::signed_in(app, TECH.0, TECH.2)
            .await
            .reading_addresses();
        let mut elsewhere = Agent::signed_in(app, TECH.0, TECH.2)
            .await
            .reading_addresses();
        let account = tech.get("/console/account").await;
        assert_eq!(account.status, 200, "{}", account.body);
        let csrf = csrf_of(&account.body);
        let new_password = "another long passphrase 2";
        for (current, password, confirm, field) in [
            (
                "not my password at all",
                new_password,
                new_password,
                "current-error",
            ),
            (
                TECH.2,
                new_password,
                "something else entirely",
                "confirm-error",
            ),
            (TECH.2, "short", "short", "password-error"),
        ] {
            let refused = tech
                .post(
                    "/console/account",
                    &[
                        ("csrf", &csrf),
                        ("current", current),
                        ("password", password),
                        ("confirm", confirm),
                    ],
                )
                .await;
            assert_eq!(refused.status, 400, "{field}: {}", refused.body);
            assert!(
                refused.body.contains(&format!("id=\"{field}\"")),
                "{field}: {}",
                refused.body
            );
        }
        let changed = tech
            .post(
                "/console/account",
                &[
                    ("csrf", &csrf),
                    ("current", TECH.2),
                    ("password", new_password),
                    ("confirm", new_password),
                ],
            )
            .await;
        assert_eq!(changed.status, 200, "{}", changed.body);
        assert!(changed.body.contains("id=\"account-notice\""));
        assert_eq!(tech.get("/console").await.status, 200, "this session stays");
        assert_eq!(
            elsewhere.get("/console").await.status,
            303,
            "the other one ended"
        );
        Agent::signed_in(app, TECH.0, new_password)
            .await
            .reading_addresses();
        world.app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn in_a_browser_the_overview_and_admin_pages_fit_a_laptop_and_preview_the_branding() {
    use fantoccini::Locator;
    crate::browser::in_browser(async |client| {
        let db = TestDb::sqlite().await;
        let world = world(&db).await;
        let app = &world.app;
        seed(app, world.msp.id, ADMIN, ConsoleRole::Admin).await;
        ticket_verification(&world).await;
        let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        let base = app
            .ctx
            .config
            .http
            .public_url
            .as_str()
            .trim_end_matches('/')
            .to_owned();
        client.set_window_size(1280, 1000).await.unwrap();
        client.goto(&format!("{base}/console/sign-in")).await.unwrap();
        crate::browser::wait_for(client, "#sign-in").await;
        client.find(Locator::Id("email")).await.unwrap().send_keys(ADMIN.0).await.unwrap();
        client.find(Locator::Id("password")).await.unwrap().send_keys(ADMIN.2).await.unwrap();
        client.find(Locator::Id("sign-in")).await.unwrap().click().await.unwrap();
        crate::browser::wait_for(client, "#signed-in-as").await;
        for (path, ready, name) in [
            ("/console", "#attention", "home"),
            ("/console/audit", "#audit-entries", "audit"),
            ("/console/settings", "#sms-preview", "settings"),
            ("/console/users", "#api-keys", "users"),
            ("/console/account", "#change-password", "account"),
        ] {
            client.goto(&format!("{base}{path}")).await.unwrap();
            crate::browser::wait_for(client, ready).await;
            let fits = client
                .execute(
                    "return document.documentElement.scrollWidth <= document.documentElement.clientWidth;",
                    vec![],
                )
                .await
                .unwrap();
            assert_eq!(fits, serde_json::json!(true), "{path} scrolls sideways at 1280 px");
            let png = client.screenshot().await.unwrap();
            std::fs::write(shots.join(format!("console-{name}.png")), png).unwrap();
        }

        // The navigation (all ten sections of an admin) is one line at 1280 px; in a
        // phone-sized window it is one line too, scrolling sideways within itself while the
        // page does not.
        let nav = "const ul = document.querySelector('.console-bar nav ul'); \
                   const tops = new Set([...ul.children].map(li => Math.round(li.getBoundingClientRect().top))); \
                   return [ul.children.length, tops.size, ul.scrollWidth > ul.clientWidth, \
                           document.documentElement.scrollWidth <= document.documentElement.clientWidth, \
                           window.innerWidth];";
        let wide = client.execute(nav, vec![]).await.unwrap();
        assert_eq!(wide, serde_json::json!([10, 1, false, true, 1280]), "at 1280 px");
        client.set_window_size(390, 900).await.unwrap();
        let narrow = client.execute(nav, vec![]).await.unwrap();
        let narrow = narrow.as_array().unwrap();
        assert_eq!(
            narrow[..4],
            [
                serde_json::json!(10),
                serde_json::json!(1),
                serde_json::json!(true),
                serde_json::json!(true)
            ],
            "at {} px",
            narrow[4]
        );
        // Headless Chromium may keep a window wider than asked (500 px at least).
        assert!(narrow[4].as_u64().unwrap() <= 500, "{narrow:?}");
        let png = client.screenshot().await.unwrap();
        std::fs::write(shots.join("console-narrow.png"), png).unwrap();
        client.set_window_size(1280, 1000).await.unwrap();

        // The admin previews a new name with the keyboard's form: the texts follow, nothing
        // is saved until Save.
        client.goto(&format!("{base}/console/settings")).await.unwrap();
        let name = crate::browser::wait_for(client, "#name").await;
        name.clear().await.unwrap();
        name.send_keys("Fabrikam Support").await.unwrap();
        client.find(Locator::Id("preview")).await.unwrap().click().await.unwrap();
        crate::browser::wait_for(client, "#settings-notice").await;
        let sms = client.find(Locator::Id("sms-preview")).await.unwrap().text().await.unwrap();
        assert!(sms.contains("Fabrikam Support: your code is"), "{sms}");
        let png = client.screenshot().await.unwrap();
        std::fs::write(shots.join("console-settings-preview.png"), png).unwrap();
        assert_ne!(
            app.ctx.settings.get(world.msp.id).await.unwrap().branding.name,
            "Fabrikam Support"
        );
        world.app.stop().await;
    })
    .await;
}
