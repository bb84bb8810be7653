//! The admins' set-up pages of the MSP console (Security Integrations, PSA Connections,
//! Companies), over real HTTP on every backend: each page and post works for an admin,
//! answers a technician 403, refuses a missing or forged CSRF token, and never reaches
//! another MSP's tenant or connection. Then the set-up journey in Chromium: both
//! integrations against the sandbox (a wrong client secret explains itself and saves
//! nothing), a sandbox PSA connected and tested, and a company mapped from a suggestion.

use secrecy::SecretString;
use vouch::core::accounts::NewUserInput;
use vouch::core::integrations::IdentityManagementInput;
use vouch::core::psa_connections::{HaloPsaInput, NewConnectionInput};
use vouch::domain::{ActorKind, ConsoleRole, IntegrationKind, MspPolicy};
use vouch::sandbox::microsoft::{
    ConsentDecision, DEMO_TENANT_ID, IDENTITY_APP_CLIENT_ID, IDENTITY_APP_SECRET, NO_P1_TENANT_ID,
};
use vouch::store::audit::AuditQuery;
use vouch::store::msp::{MspAccount, NewMspAccount};

use crate::backends::on_every_backend;
use crate::common::console::{Agent, csrf_of, system};
use crate::common::world::World;
use crate::common::{TestApp, TestDb, free_port};

const PASSWORD: &str = "a long console passphrase 1";
const WRONG_SECRET: &str = "not-the-secret-value";

/// A world (its MSP "Northwind IT" fully set up: the other MSP of these tests) whose public
/// URL is its own address, with a second MSP, "Woodgrove IT", set up from nothing; admins
/// sign in without TOTP here (the sign-in itself is `console_auth`'s).
async fn world(db: &TestDb) -> (World, MspAccount) {
    let port = free_port();
    let world = World::start_with(db, MspPolicy::default(), |c| {
        c.http.bind = format!("127.0.0.1:{port}").parse().unwrap();
        c.http.public_url = format!("http://127.0.0.1:{port}/").parse().unwrap();
        c.console.require_totp_for_admins = false;
    })
    .await;
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

/// The `value` of the input whose id is `id`.
fn value_of(html: &str, id: &str) -> String {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("#{id} in {html}"));
    let rest = &html[at..];
    let start = rest.find("value=\"").unwrap() + 7;
    unescaped(&rest[start..start + rest[start..].find('"').unwrap()])
}

/// `text` as the pages' auto-escape writes it.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('/', "&#x2f;")
}

fn unescaped(html: &str) -> String {
    html.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A console user of `msp`, signed in through their set-up link.
async fn signed_in(app: &TestApp, msp: &MspAccount, email: &str, role: ConsoleRole) -> Agent {
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
    let path = url::Url::parse(secrecy::ExposeSecret::expose_secret(&link.url))
        .unwrap()
        .path()
        .to_owned();
    let mut agent = Agent::new(app);
    let chosen = agent
        .post(&path, &[("password", PASSWORD), ("confirm", PASSWORD)])
        .await;
    assert_eq!(chosen.status, 303, "{}", chosen.body);
    assert_eq!(chosen.location.as_deref(), Some("/console"));
    agent
}

/// Woodgrove's Identity Management integration of the demo tenant, through core.
async fn connect_identity(app: &TestApp, msp: &MspAccount) {
    app.ctx
        .integrations
        .connect_identity_management(
            msp.id,
            &system(),
            IdentityManagementInput {
                tenant: DEMO_TENANT_ID.into(),
                client_id: IDENTITY_APP_CLIENT_ID.into(),
                client_secret: SecretString::from(IDENTITY_APP_SECRET),
                secret_expires_at: None,
            },
        )
        .await
        .unwrap();
}

/// Woodgrove's HaloPSA connection to the sandbox, through core.
async fn connect_halo(world: &World, msp: &MspAccount) -> uuid::Uuid {
    let halo = world.psa.halopsa();
    world
        .app
        .ctx
        .psa_connections
        .create(
            msp.id,
            &system(),
            NewConnectionInput::HaloPsa(HaloPsaInput {
                name: Some("Woodgrove Halo".into()),
                resource_url: halo.resource_url,
                auth_url: halo.auth_url,
                tenant: None,
                client_id: halo.client_id,
                client_secret: SecretString::from(halo.client_secret),
                allowed_origins: None,
            }),
        )
        .await
        .unwrap()
        .view
        .id
}

/// Every post of `posts` is refused to `agent` without the CSRF token, with a forged one,
/// and with the right one from a foreign origin; nothing is answered but the refusal.
async fn csrf_refused(agent: &mut Agent, csrf: &str, posts: &[(&str, Vec<(&str, &str)>)]) {
    for (path, fields) in posts {
        let without: Vec<(&str, &str)> = fields.clone();
        let page = agent.post(path, &without).await;
        assert_eq!(page.status, 403, "{path} without a token: {}", page.body);
        assert!(page.body.contains("This form has expired"), "{}", page.body);
        let mut forged = fields.clone();
        forged.push(("csrf", "forged-token"));
        let page = agent.post(path, &forged).await;
        assert_eq!(page.status, 403, "{path} with a forged token");
        let mut right = fields.clone();
        right.push(("csrf", csrf));
        let page = agent
            .post_from(path, &right, Some("https://evil.example"))
            .await;
        assert_eq!(page.status, 403, "{path} from a foreign origin");
    }
}

/// A technician gets the admins-only page for every GET and POST of `paths` (with a valid
/// CSRF token, so it is the role that refuses).
async fn technician_refused(tech: &mut Agent, gets: &[&str], posts: &[&str]) {
    let home = tech.get("/console").await;
    assert_eq!(home.status, 200);
    let csrf = csrf_of(&home.body);
    for path in gets {
        let page = tech.get(path).await;
        assert_eq!(page.status, 403, "GET {path}: {}", page.body);
        assert!(page.body.contains("For admins only"), "{}", page.body);
    }
    for path in posts {
        let page = tech.post(path, &[("csrf", &csrf)]).await;
        assert_eq!(page.status, 403, "POST {path}: {}", page.body);
        assert!(page.body.contains("For admins only"), "{}", page.body);
    }
}

#[tokio::test]
async fn security_integrations_for_admins_only_and_a_wrong_secret_saves_nothing() {
    on_every_backend(async |db| {
        let (world, woodgrove) = world(db).await;
        let app = &world.app;
        let mut admin =
            signed_in(app, &woodgrove, "ada@woodgrove.example", ConsoleRole::Admin).await;

        // Nothing yet; both ways to add an integration.
        let page = admin.get("/console/integrations").await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(
            page.body.contains("id=\"no-integrations\""),
            "{}",
            page.body
        );
        assert!(page.body.contains("Add New Integration"));
        assert!(
            page.body
                .contains("aria-current=\"page\">Security Integrations<"),
            "{}",
            page.body
        );
        assert!(!page.body.contains("<script") && !page.body.contains("style="));
        let csrf = csrf_of(&page.body);

        // The Identity Management form: the steps and every permission core asks for.
        let form = admin.get("/console/integrations/identity-management").await;
        assert_eq!(form.status, 200, "{}", form.body);
        for permission in [
            "User.Read.All",
            "UserAuthenticationMethod.Read.All",
            "User-PasswordProfile.ReadWrite.All",
            "Directory.Read.All",
            "Organization.Read.All",
        ] {
            assert!(
                form.body.contains(&format!("<code>{permission}</code>")),
                "{permission}"
            );
        }
        assert!(form.body.contains("App registrations"));
        let expires = value_of(&form.body, "secret_expires_on");
        let expected = (chrono::Utc::now() + chrono::Duration::days(730)).date_naive();
        assert_eq!(expires, expected.format("%Y-%m-%d").to_string());

        // A wrong client secret: explained next to its field, nothing saved.
        let refused = admin
            .post(
                "/console/integrations/identity-management",
                &[
                    ("csrf", &csrf),
                    ("tenant_id", DEMO_TENANT_ID),
                    ("client_id", IDENTITY_APP_CLIENT_ID),
                    ("client_secret", WRONG_SECRET),
                    ("secret_expires_on", &expires),
                ],
            )
            .await;
        assert!((400..500).contains(&refused.status), "{}", refused.status);
        let error_at = refused
            .body
            .find("id=\"client_secret-error\"")
            .expect("the error next to the secret");
        assert!(
            refused.body[error_at..].contains("Microsoft rejected the client secret"),
            "{}",
            refused.body
        );
        assert!(
            !refused.body.contains(WRONG_SECRET),
            "the secret is never shown again"
        );
        assert_eq!(value_of(&refused.body, "tenant_id"), DEMO_TENANT_ID);
        assert!(
            app.ctx
                .integrations
                .list(woodgrove.id)
                .await
                .unwrap()
                .is_empty()
        );
        // A bad date, and a malformed client id, next to their fields.
        let refused = admin
            .post(
                "/console/integrations/identity-management",
                &[
                    ("csrf", &csrf),
                    ("tenant_id", DEMO_TENANT_ID),
                    ("client_id", "not-a-guid"),
                    ("client_secret", IDENTITY_APP_SECRET),
                    ("secret_expires_on", ""),
                ],
            )
            .await;
        assert_eq!(refused.status, 400);
        assert!(
            refused.body.contains("id=\"client_id-error\""),
            "{}",
            refused.body
        );
        let refused = admin
            .post(
                "/console/integrations/identity-management",
                &[
                    ("csrf", &csrf),
                    ("tenant_id", DEMO_TENANT_ID),
                    ("client_id", IDENTITY_APP_CLIENT_ID),
                    ("client_secret", IDENTITY_APP_SECRET),
                    ("secret_expires_on", "31/12/2030"),
                ],
            )
            .await;
        assert_eq!(refused.status, 400);
        assert!(
            refused.body.contains("id=\"secret_expires_on-error\""),
            "{}",
            refused.body
        );
        assert!(
            app.ctx
                .integrations
                .list(woodgrove.id)
                .await
                .unwrap()
                .is_empty()
        );

        // The right secret: saved, listed with its expiry.
        let saved = admin
            .post(
                "/console/integrations/identity-management",
                &[
                    ("csrf", &csrf),
                    ("tenant_id", DEMO_TENANT_ID),
                    ("client_id", IDENTITY_APP_CLIENT_ID),
                    ("client_secret", IDENTITY_APP_SECRET),
                    ("secret_expires_on", &expires),
                ],
            )
            .await;
        assert_eq!(saved.status, 303, "{}", saved.body);
        assert_eq!(saved.location.as_deref(), Some("/console/integrations"));
        let listed = app.ctx.integrations.list(woodgrove.id).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].kind, IntegrationKind::IdentityManagement);
        assert_eq!(listed[0].secret_expires_at.unwrap().date_naive(), expected);

        // Microsoft Authenticator: the consent link, played by the customer's admin.
        let made = admin
            .post(
                "/console/integrations/authenticator/consent",
                &[("csrf", &csrf)],
            )
            .await;
        assert_eq!(made.status, 200, "{}", made.body);
        let link = url::Url::parse(&value_of(&made.body, "consent-url")).unwrap();
        assert!(
            link.as_str().starts_with(&world.microsoft.login_url()),
            "{link}"
        );
        let callback = world
            .microsoft
            .answer_admin_consent(
                &link,
                DEMO_TENANT_ID,
                "global_admin",
                ConsentDecision::Accept,
            )
            .await
            .unwrap();
        let result = reqwest::get(callback.as_str())
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(result.contains("Tap to finish onboarding"), "{result}");
        assert_eq!(
            result.matches("<strong>Passed:</strong>").count(),
            4,
            "{result}"
        );
        // A role that may not consent: that prerequisite failed, the rest not checked.
        let made = admin
            .post(
                "/console/integrations/authenticator/consent",
                &[("csrf", &csrf)],
            )
            .await;
        let link = url::Url::parse(&value_of(&made.body, "consent-url")).unwrap();
        let callback = world
            .microsoft
            .answer_admin_consent(&link, DEMO_TENANT_ID, "user", ConsentDecision::Accept)
            .await
            .unwrap();
        let result = reqwest::get(callback.as_str())
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            result.contains("<strong>Failed:</strong> Consent granted by a Global Administrator"),
            "{result}"
        );
        assert_eq!(
            result.matches("<strong>Not checked:</strong>").count(),
            3,
            "{result}"
        );

        // A tenant without Entra ID P1: the first two passed, that one failed, the last not
        // checked.
        let made = admin
            .post(
                "/console/integrations/authenticator/consent",
                &[("csrf", &csrf)],
            )
            .await;
        let link = url::Url::parse(&value_of(&made.body, "consent-url")).unwrap();
        let callback = world
            .microsoft
            .answer_admin_consent(
                &link,
                NO_P1_TENANT_ID,
                "global_admin",
                ConsentDecision::Accept,
            )
            .await
            .unwrap();
        let result = reqwest::get(callback.as_str())
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(
            result.matches("<strong>Passed:</strong>").count(),
            2,
            "{result}"
        );
        assert!(
            result.contains("<strong>Failed:</strong> The tenant has Microsoft Entra ID P1"),
            "{result}"
        );
        assert_eq!(
            result.matches("<strong>Not checked:</strong>").count(),
            1,
            "{result}"
        );
        let listed = app.ctx.integrations.list(woodgrove.id).await.unwrap();
        for view in listed.iter().filter(|v| v.tenant_id == NO_P1_TENANT_ID) {
            app.ctx
                .integrations
                .remove(woodgrove.id, &system(), view.id)
                .await
                .unwrap();
        }

        // Both listed; re-check one, remove the other.
        let page = admin.get("/console/integrations").await;
        assert!(
            page.body.contains("M365 Identity Management"),
            "{}",
            page.body
        );
        assert!(
            page.body.contains("Microsoft Authenticator</td>"),
            "{}",
            page.body
        );
        let listed = app.ctx.integrations.list(woodgrove.id).await.unwrap();
        assert_eq!(listed.len(), 2);
        let identity = listed
            .iter()
            .find(|i| i.kind == IntegrationKind::IdentityManagement)
            .unwrap()
            .id;
        let authenticator = listed
            .iter()
            .find(|i| i.kind == IntegrationKind::Authenticator)
            .unwrap()
            .id;
        let checked = admin
            .post(
                &format!("/console/integrations/{identity}/recheck"),
                &[("csrf", &csrf)],
            )
            .await;
        assert_eq!(checked.status, 200, "{}", checked.body);
        assert!(
            checked.body.contains("checked: it works"),
            "{}",
            checked.body
        );
        // Audited as this admin, like the connect.
        let entries = app
            .store
            .query(AuditQuery {
                msp_id: woodgrove.id,
                limit: 1000,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        for action in [
            "integration.identity_management.connect",
            "integration.identity_management.recheck",
        ] {
            let entry = entries
                .iter()
                .find(|e| e.event.action == action)
                .unwrap_or_else(|| panic!("{action} audited"));
            assert_eq!(entry.event.actor.kind, ActorKind::ConsoleUser, "{action}");
        }
        // Remove asks first: the first post names what goes and changes nothing...
        let remove = format!("/console/integrations/{authenticator}/remove");
        let asked = admin.post(&remove, &[("csrf", &csrf)]).await;
        assert_eq!(asked.status, 200, "{}", asked.body);
        assert!(
            asked
                .body
                .contains("<h1 id=\"heading\">Remove Microsoft Authenticator of "),
            "{}",
            asked.body
        );
        assert!(asked.body.contains("name=\"confirm\" value=\"yes\""));
        assert!(asked.body.contains(&escaped(&remove)), "posts to itself");
        assert_eq!(
            app.ctx.integrations.list(woodgrove.id).await.unwrap().len(),
            2,
            "nothing removed before the confirmation"
        );
        // ...and its confirmation needs the CSRF token like any post.
        let forged = admin
            .post(&remove, &[("csrf", "forged"), ("confirm", "yes")])
            .await;
        assert_eq!(forged.status, 403);
        assert_eq!(
            app.ctx.integrations.list(woodgrove.id).await.unwrap().len(),
            2
        );
        let removed = admin
            .post(&remove, &[("csrf", &csrf), ("confirm", "yes")])
            .await;
        assert_eq!(removed.status, 303);
        assert_eq!(
            app.ctx.integrations.list(woodgrove.id).await.unwrap().len(),
            1
        );

        // Another MSP's integration is not reachable: as good as missing, and left alone.
        let theirs = app.ctx.integrations.list(world.msp.id).await.unwrap();
        assert_eq!(theirs.len(), 2);
        for action in ["recheck", "remove"] {
            let page = admin
                .post(
                    &format!("/console/integrations/{}/{action}", theirs[0].id),
                    &[("csrf", &csrf)],
                )
                .await;
            assert_eq!(page.status, 404, "{action}: {}", page.body);
        }
        assert_eq!(
            app.ctx.integrations.list(world.msp.id).await.unwrap().len(),
            2
        );

        // CSRF, then the technician.
        csrf_refused(
            &mut admin,
            &csrf,
            &[
                ("/console/integrations/authenticator/consent", vec![]),
                (
                    "/console/integrations/identity-management",
                    vec![
                        ("tenant_id", DEMO_TENANT_ID),
                        ("client_id", IDENTITY_APP_CLIENT_ID),
                        ("client_secret", IDENTITY_APP_SECRET),
                    ],
                ),
                (&format!("/console/integrations/{identity}/remove"), vec![]),
            ],
        )
        .await;
        assert_eq!(
            app.ctx.integrations.list(woodgrove.id).await.unwrap().len(),
            1
        );
        let mut tech = signed_in(
            app,
            &woodgrove,
            "tom@woodgrove.example",
            ConsoleRole::Technician,
        )
        .await;
        let home = tech.get("/console").await;
        assert!(
            !home.body.contains("/console/integrations"),
            "not in a technician's navigation"
        );
        technician_refused(
            &mut tech,
            &[
                "/console/integrations",
                "/console/integrations/identity-management",
            ],
            &[
                "/console/integrations/authenticator/consent",
                "/console/integrations/identity-management",
                &format!("/console/integrations/{identity}/recheck"),
                &format!("/console/integrations/{identity}/remove"),
            ],
        )
        .await;
        assert_eq!(
            app.ctx.integrations.list(woodgrove.id).await.unwrap().len(),
            1
        );
        world.app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn psa_connections_are_connected_tested_set_up_and_deleted_by_admins_only() {
    on_every_backend(async |db| {
        let (world, woodgrove) = world(db).await;
        let app = &world.app;
        let mut admin =
            signed_in(app, &woodgrove, "ada@woodgrove.example", ConsoleRole::Admin).await;
        let page = admin.get("/console/psa-connections").await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.contains("id=\"no-connections\""));
        let csrf = csrf_of(&page.body);
        for kind in ["connectwise", "halopsa", "autotask"] {
            let form = admin
                .get(&format!("/console/psa-connections/new/{kind}"))
                .await;
            assert_eq!(form.status, 200, "{kind}: {}", form.body);
        }
        let form = admin.get("/console/psa-connections/new/halopsa").await;
        for field in [
            "resource_url",
            "auth_url",
            "tenant",
            "client_id",
            "client_secret",
            "allowed_origins",
        ] {
            assert!(
                form.body.contains(&format!("<label for=\"{field}\">")),
                "{field}"
            );
        }
        let form = admin.get("/console/psa-connections/new/autotask").await;
        for field in [
            "api_user",
            "api_secret",
            "integration_code",
            "zone_lookup_url",
        ] {
            assert!(
                form.body.contains(&format!("<label for=\"{field}\">")),
                "{field}"
            );
        }
        assert_eq!(
            admin
                .get("/console/psa-connections/new/freshdesk")
                .await
                .status,
            404
        );

        // A refusal next to its field; nothing saved.
        let halo = world.psa.halopsa();
        let refused = admin
            .post(
                "/console/psa-connections/new/halopsa",
                &[
                    ("csrf", &csrf),
                    ("resource_url", "not an address"),
                    ("auth_url", &halo.auth_url),
                    ("client_id", &halo.client_id),
                    ("client_secret", &halo.client_secret),
                ],
            )
            .await;
        assert_eq!(refused.status, 400, "{}", refused.body);
        assert!(
            refused.body.contains("id=\"resource_url-error\""),
            "{}",
            refused.body
        );
        assert!(!refused.body.contains(&halo.client_secret));
        assert_eq!(value_of(&refused.body, "client_id"), halo.client_id);
        assert!(
            app.ctx
                .psa_connections
                .list(woodgrove.id)
                .await
                .unwrap()
                .is_empty()
        );

        // Connected: straight to what to paste into Halo.
        let created = admin
            .post(
                "/console/psa-connections/new/halopsa",
                &[
                    ("csrf", &csrf),
                    ("name", "Woodgrove Halo"),
                    ("resource_url", &halo.resource_url),
                    ("auth_url", &halo.auth_url),
                    ("client_id", &halo.client_id),
                    ("client_secret", &halo.client_secret),
                ],
            )
            .await;
        assert_eq!(created.status, 303, "{}", created.body);
        let setup_path = created.location.unwrap();
        let id = app.ctx.psa_connections.list(woodgrove.id).await.unwrap()[0].id;
        assert_eq!(
            setup_path,
            format!("/console/psa-connections/{id}/setup?created=1")
        );
        let setup = admin.get(&setup_path).await;
        assert_eq!(setup.status, 200, "{}", setup.body);
        let expected = app
            .ctx
            .psa_connections
            .setup(woodgrove.id, id)
            .await
            .unwrap();
        assert_eq!(value_of(&setup.body, "pod-url"), expected.pod_url);
        assert_eq!(
            value_of(&setup.body, "signing-secret"),
            secrecy::ExposeSecret::expose_secret(&expected.secret.unwrap().value)
        );
        assert!(setup.body.contains("id=\"setup-steps\""));
        assert!(
            setup.body.contains(" readonly "),
            "values to select and copy"
        );
        assert!(!setup.body.contains("<script"));

        // Test connection: each check's outcome.
        let edit = admin.get(&format!("/console/psa-connections/{id}")).await;
        assert_eq!(edit.status, 200, "{}", edit.body);
        assert!(edit.body.contains("Not tested"));
        // The button says, before it is pressed, that a test may take a while.
        assert!(
            edit.body
                .contains("id=\"test-connection\" aria-describedby=\"test-hint\""),
            "{}",
            edit.body
        );
        assert!(edit.body.contains("id=\"test-hint\">"));
        let tested = admin
            .post(
                &format!("/console/psa-connections/{id}/test"),
                &[("csrf", &csrf)],
            )
            .await;
        assert_eq!(tested.status, 200, "{}", tested.body);
        assert!(
            tested.body.contains("Every check passed"),
            "{}",
            tested.body
        );
        let checks = tested.body.matches("<strong>Passed:</strong>").count();
        assert!(checks >= 2, "{}", tested.body);
        // The result says how long the test took, and how many checks it ran.
        let when = &tested.body[tested
            .body
            .find("id=\"test-when\"")
            .expect("the test's time")..];
        let when = &when[..when.find("</span>").unwrap()];
        assert!(
            when.contains(&format!(
                "{} checks in ",
                tested.body.matches("<li class=\"check ").count()
            )) && when.contains(" s)"),
            "{when}"
        );
        // A wrong secret fails its check, named.
        let saved = admin
            .post(
                &format!("/console/psa-connections/{id}"),
                &[
                    ("csrf", &csrf),
                    ("name", "Woodgrove HaloPSA"),
                    ("resource_url", &halo.resource_url),
                    ("auth_url", &halo.auth_url),
                    ("client_id", &halo.client_id),
                    ("client_secret", "a wrong halo secret"),
                ],
            )
            .await;
        assert_eq!(saved.status, 200, "{}", saved.body);
        assert!(saved.body.contains("Saved."), "{}", saved.body);
        assert!(saved.body.contains("Woodgrove HaloPSA"));
        let tested = admin
            .post(
                &format!("/console/psa-connections/{id}/test"),
                &[("csrf", &csrf)],
            )
            .await;
        assert!(tested.body.contains("A check failed"), "{}", tested.body);
        assert!(
            tested.body.contains("<strong>Failed:</strong>"),
            "{}",
            tested.body
        );
        // Back to the right secret; a blank secret keeps it.
        for secret in [halo.client_secret.as_str(), ""] {
            let saved = admin
                .post(
                    &format!("/console/psa-connections/{id}"),
                    &[
                        ("csrf", &csrf),
                        ("name", "Woodgrove HaloPSA"),
                        ("resource_url", &halo.resource_url),
                        ("auth_url", &halo.auth_url),
                        ("client_id", &halo.client_id),
                        ("client_secret", secret),
                    ],
                )
                .await;
            assert_eq!(saved.status, 200, "{}", saved.body);
        }
        let tested = admin
            .post(
                &format!("/console/psa-connections/{id}/test"),
                &[("csrf", &csrf)],
            )
            .await;
        assert!(
            tested.body.contains("Every check passed"),
            "{}",
            tested.body
        );
        let list = admin.get("/console/psa-connections").await;
        assert!(list.body.contains("Test passed"), "{}", list.body);

        // Another MSP's connection is not reachable.
        let theirs = app.ctx.psa_connections.list(world.msp.id).await.unwrap();
        assert_eq!(theirs.len(), 3);
        let other = theirs[0].id;
        for path in [
            format!("/console/psa-connections/{other}"),
            format!("/console/psa-connections/{other}/setup"),
        ] {
            let page = admin.get(&path).await;
            assert_eq!(page.status, 404, "{path}");
            assert!(
                !page.body.contains(&escaped(&theirs[0].name)),
                "{}",
                page.body
            );
        }
        for action in ["test", "delete"] {
            let page = admin
                .post(
                    &format!("/console/psa-connections/{other}/{action}"),
                    &[("csrf", &csrf)],
                )
                .await;
            assert_eq!(page.status, 404, "{action}");
        }
        let page = admin
            .post(
                &format!("/console/psa-connections/{other}"),
                &[("csrf", &csrf), ("name", "Taken over")],
            )
            .await;
        assert_eq!(page.status, 404);
        assert_eq!(
            app.ctx.psa_connections.list(world.msp.id).await.unwrap(),
            theirs
        );

        // CSRF and the technician.
        csrf_refused(
            &mut admin,
            &csrf,
            &[
                (
                    "/console/psa-connections/new/halopsa",
                    vec![
                        ("resource_url", &halo.resource_url),
                        ("auth_url", &halo.auth_url),
                    ],
                ),
                (
                    &format!("/console/psa-connections/{id}"),
                    vec![("name", "x")],
                ),
                (&format!("/console/psa-connections/{id}/test"), vec![]),
                (&format!("/console/psa-connections/{id}/delete"), vec![]),
            ],
        )
        .await;
        let mut tech = signed_in(
            app,
            &woodgrove,
            "tom@woodgrove.example",
            ConsoleRole::Technician,
        )
        .await;
        technician_refused(
            &mut tech,
            &[
                "/console/psa-connections",
                "/console/psa-connections/new/halopsa",
                &format!("/console/psa-connections/{id}"),
                &format!("/console/psa-connections/{id}/setup"),
            ],
            &[
                "/console/psa-connections/new/halopsa",
                &format!("/console/psa-connections/{id}"),
                &format!("/console/psa-connections/{id}/test"),
                &format!("/console/psa-connections/{id}/delete"),
            ],
        )
        .await;
        assert_eq!(
            app.ctx
                .psa_connections
                .list(woodgrove.id)
                .await
                .unwrap()
                .len(),
            1
        );

        // Delete asks first (naming the connection), and only the confirmation deletes.
        let delete = format!("/console/psa-connections/{id}/delete");
        let asked = admin.post(&delete, &[("csrf", &csrf)]).await;
        assert_eq!(asked.status, 200, "{}", asked.body);
        let name = app
            .ctx
            .psa_connections
            .get(woodgrove.id, id)
            .await
            .unwrap()
            .name;
        assert!(
            asked.body.contains(&format!(
                "<h1 id=\"heading\">Delete {}?</h1>",
                escaped(&name)
            )),
            "{}",
            asked.body
        );
        assert!(asked.body.contains("name=\"confirm\" value=\"yes\""));
        assert!(
            asked.body.contains(&format!(
                "href=\"{}\" id=\"cancel\"",
                escaped(&format!("/console/psa-connections/{id}"))
            )),
            "the way back is the connection's page: {}",
            asked.body
        );
        assert_eq!(
            app.ctx
                .psa_connections
                .list(woodgrove.id)
                .await
                .unwrap()
                .len(),
            1,
            "nothing deleted before the confirmation"
        );
        let deleted = admin
            .post(&delete, &[("csrf", &csrf), ("confirm", "yes")])
            .await;
        assert_eq!(deleted.status, 303);
        assert!(
            app.ctx
                .psa_connections
                .list(woodgrove.id)
                .await
                .unwrap()
                .is_empty()
        );
        world.app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn companies_are_mapped_from_suggestions_by_admins_only() {
    on_every_backend(async |db| {
        let (world, woodgrove) = world(db).await;
        let app = &world.app;
        let mut admin =
            signed_in(app, &woodgrove, "ada@woodgrove.example", ConsoleRole::Admin).await;
        let page = admin.get("/console/companies").await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.contains("id=\"no-connections\""), "{}", page.body);
        let csrf = csrf_of(&page.body);

        connect_identity(app, &woodgrove).await;
        let halo = connect_halo(&world, &woodgrove).await;
        let page = admin.get("/console/companies").await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.contains("Contoso Ltd"), "{}", page.body);
        assert!(page.body.contains("Not mapped"), "{}", page.body);
        // Loading from the PSA: said before (the Show button's hint) and after (its time).
        assert!(
            page.body
                .contains("id=\"show-companies\" aria-describedby=\"companies-hint\""),
            "{}",
            page.body
        );
        let loaded = &page.body[page.body.find("id=\"companies-loaded\"").expect("the time")..];
        assert!(
            loaded[..loaded.find("</span>").unwrap()].contains("This list came in "),
            "{loaded}"
        );
        let found = app
            .ctx
            .companies
            .suggestions(woodgrove.id, None)
            .await
            .unwrap();
        let contoso = found
            .suggestions
            .iter()
            .find(|s| s.psa_company_name.starts_with("Contoso"))
            .expect("a suggestion for Contoso");
        for evidence in &contoso.tenant.evidence {
            assert!(
                page.body.contains(&escaped(&evidence.text)),
                "{}",
                evidence.text
            );
        }

        // Another MSP's connection or tenant cannot be mapped through a crafted post.
        let their_connection = app.ctx.psa_connections.list(world.msp.id).await.unwrap()[0].id;
        let their_tenant = world
            .app
            .store
            .find_tenant_by_microsoft_id(world.msp.id, DEMO_TENANT_ID)
            .await
            .unwrap()
            .unwrap()
            .id;
        let before = app
            .ctx
            .setup
            .list_mappings(world.msp.id, None)
            .await
            .unwrap()
            .len();
        for (connection, tenant) in [
            (
                their_connection.to_string(),
                contoso.tenant.tenant_id.to_string(),
            ),
            (halo.to_string(), their_tenant.to_string()),
        ] {
            let refused = admin
                .post(
                    "/console/companies/accept",
                    &[
                        ("csrf", &csrf),
                        ("psa_connection_id", &connection),
                        ("psa_company_id", &contoso.psa_company_id),
                        ("psa_company_name", &contoso.psa_company_name),
                        ("tenant_id", &tenant),
                    ],
                )
                .await;
            assert_eq!(refused.status, 404, "{}", refused.body);
            assert!(!refused.body.contains("is now mapped"), "{}", refused.body);
        }
        assert!(
            app.ctx
                .setup
                .list_mappings(woodgrove.id, None)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            app.ctx
                .setup
                .list_mappings(world.msp.id, None)
                .await
                .unwrap()
                .len(),
            before
        );

        // CSRF and the technician.
        let contoso_connection = contoso.psa_connection_id.to_string();
        let contoso_tenant = contoso.tenant.tenant_id.to_string();
        let accept_fields = vec![
            ("psa_connection_id", contoso_connection.as_str()),
            ("psa_company_id", contoso.psa_company_id.as_str()),
            ("psa_company_name", contoso.psa_company_name.as_str()),
            ("tenant_id", contoso_tenant.as_str()),
        ];
        csrf_refused(
            &mut admin,
            &csrf,
            &[
                ("/console/companies/accept", accept_fields.clone()),
                ("/console/companies/accept-all", vec![]),
            ],
        )
        .await;
        let mut tech = signed_in(
            app,
            &woodgrove,
            "tom@woodgrove.example",
            ConsoleRole::Technician,
        )
        .await;
        technician_refused(
            &mut tech,
            &["/console/companies"],
            &["/console/companies/accept", "/console/companies/accept-all"],
        )
        .await;
        assert!(
            app.ctx
                .setup
                .list_mappings(woodgrove.id, None)
                .await
                .unwrap()
                .is_empty()
        );

        // Accept one: mapped, beside its tenant.
        let mut fields = accept_fields.clone();
        fields.push(("csrf", &csrf));
        let accepted = admin.post("/console/companies/accept", &fields).await;
        assert_eq!(accepted.status, 200, "{}", accepted.body);
        assert!(
            accepted.body.contains(&escaped(&format!(
                "{} is now mapped to {}.",
                contoso.psa_company_name, contoso.tenant.tenant_name
            ))),
            "{}",
            accepted.body
        );
        let mappings = app
            .ctx
            .setup
            .list_mappings(woodgrove.id, None)
            .await
            .unwrap();
        assert_eq!(mappings.len(), 1);
        assert_eq!(mappings[0].psa_company_id, contoso.psa_company_id);
        let page = admin
            .get(&format!(
                "/console/companies?connection={halo}&search=Contoso"
            ))
            .await;
        assert!(
            page.body.contains(&format!(
                "<td>{}</td>",
                escaped(&contoso.tenant.tenant_name)
            )),
            "{}",
            page.body
        );
        // Again: kept, said so.
        let again = admin.post("/console/companies/accept", &fields).await;
        assert!(
            again.body.contains("was already mapped to"),
            "{}",
            again.body
        );

        // Accept all: whatever else is suggested.
        let all = admin
            .post("/console/companies/accept-all", &[("csrf", &csrf)])
            .await;
        assert_eq!(all.status, 200, "{}", all.body);
        let left = app
            .ctx
            .companies
            .suggestions(woodgrove.id, None)
            .await
            .unwrap();
        assert!(left.suggestions.is_empty(), "{:?}", left.suggestions);
        world.app.stop().await;
    })
    .await;
}

/// Issue 11's journey, steps 2 and 3, in Chromium: the admin signs in, connects M365 Identity
/// Management (a wrong client secret first: explained next to its field, nothing saved) and
/// Microsoft Authenticator (the consent link, opened and accepted on the sandbox's consent
/// page), connects the sandbox HaloPSA, tests it, and maps Contoso from its suggestion. A
/// screenshot of each page goes to `target/screenshots/`, and no page scrolls sideways.
#[tokio::test]
async fn in_a_browser_an_admin_sets_up_both_integrations_a_psa_and_a_company() {
    use fantoccini::Locator;
    crate::browser::in_browser(async |client| {
        let db = TestDb::sqlite().await;
        let (world, woodgrove) = world(&db).await;
        let app = &world.app;
        let link = app
            .ctx
            .accounts
            .create_user(
                woodgrove.id,
                &system(),
                NewUserInput {
                    email: "ada@woodgrove.example".into(),
                    name: "Ada".into(),
                    role: ConsoleRole::Admin,
                },
            )
            .await
            .unwrap();
        let token = url::Url::parse(secrecy::ExposeSecret::expose_secret(&link.url))
            .unwrap()
            .path_segments()
            .unwrap()
            .next_back()
            .unwrap()
            .to_owned();
        app.ctx
            .accounts
            .complete_setup(&token, &SecretString::from(PASSWORD), &SecretString::from(PASSWORD))
            .await
            .unwrap();
        let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        let shot = async |name: &str| {
            let sideways = client
                .execute(
                    "return document.documentElement.scrollWidth > document.documentElement.clientWidth;",
                    vec![],
                )
                .await
                .unwrap();
            assert_eq!(sideways, serde_json::json!(false), "{name} scrolls sideways");
            let png = client.screenshot().await.unwrap();
            std::fs::write(shots.join(format!("console-setup-{name}.png")), png).unwrap();
        };
        let fill = async |id: &str, text: &str| {
            let field = client.find(Locator::Id(id)).await.unwrap();
            field.clear().await.unwrap();
            field.send_keys(text).await.unwrap();
        };
        let click = async |css: &str| {
            crate::browser::wait_for(client, css).await.click().await.unwrap();
        };
        let base = app
            .ctx
            .config
            .http
            .public_url
            .as_str()
            .trim_end_matches('/')
            .to_owned();

        // Signed in.
        client.goto(&format!("{base}/console/sign-in")).await.unwrap();
        crate::browser::wait_for(client, "#sign-in").await;
        fill("email", "ada@woodgrove.example").await;
        fill("password", PASSWORD).await;
        click("#sign-in").await;
        crate::browser::wait_for(client, "#signed-in-as").await;

        // Security Integrations, from the navigation.
        click("nav a[href='/console/integrations']").await;
        crate::browser::wait_for(client, "#no-integrations").await;
        shot("integrations-empty").await;

        // M365 Identity Management: a wrong secret, then the right one.
        click("#add-identity").await;
        crate::browser::wait_for(client, "#identity-form").await;
        fill("tenant_id", DEMO_TENANT_ID).await;
        fill("client_id", IDENTITY_APP_CLIENT_ID).await;
        fill("client_secret", WRONG_SECRET).await;
        shot("identity-form").await;
        click("#connect-identity").await;
        let error = crate::browser::wait_for(client, "#client_secret-error").await;
        assert!(
            error.text().await.unwrap().contains("Microsoft rejected the client secret"),
            "the refusal says what to do"
        );
        let secret = client.find(Locator::Id("client_secret")).await.unwrap();
        assert_eq!(secret.attr("aria-invalid").await.unwrap().as_deref(), Some("true"));
        assert_eq!(secret.attr("aria-describedby").await.unwrap().as_deref(), Some("client_secret-error"));
        shot("identity-wrong-secret").await;
        assert!(app.ctx.integrations.list(woodgrove.id).await.unwrap().is_empty(), "nothing saved");
        fill("client_secret", IDENTITY_APP_SECRET).await;
        click("#connect-identity").await;
        crate::browser::wait_for(client, "#make-consent-link").await;
        let listed = app.ctx.integrations.list(woodgrove.id).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].kind, IntegrationKind::IdentityManagement);

        // Microsoft Authenticator: the consent link, opened and accepted.
        click("#make-consent-link").await;
        let field = crate::browser::wait_for(client, "#consent-url").await;
        let consent = field.prop("value").await.unwrap().unwrap();
        shot("consent-link").await;
        client.goto(&consent).await.unwrap();
        click(&format!("#tenant option[value='{DEMO_TENANT_ID}']")).await;
        click("#role option[value='global_admin']").await;
        click("button[value='accept']").await;
        let heading = crate::browser::wait_for(client, "#prerequisites-heading").await;
        assert!(heading.is_displayed().await.unwrap());
        let page = client.source().await.unwrap();
        assert!(page.contains("Tap to finish onboarding"), "{page}");
        assert_eq!(page.matches("<strong>Passed:</strong>").count(), 4, "{page}");
        shot("consent-result").await;
        client.goto(&format!("{base}/console/integrations")).await.unwrap();
        crate::browser::wait_for(client, "table.integrations").await;
        let page = client.source().await.unwrap();
        assert!(page.contains("Microsoft Authenticator</td>"), "{page}");
        assert_eq!(page.matches(">Working</span>").count(), 2, "{page}");
        shot("integrations").await;

        // The sandbox HaloPSA: connected, set up, tested.
        click("nav a[href='/console/psa-connections']").await;
        click("#connect-halopsa").await;
        let halo = world.psa.halopsa();
        crate::browser::wait_for(client, "#connection-form").await;
        fill("name", "Woodgrove Halo").await;
        fill("resource_url", &halo.resource_url).await;
        fill("auth_url", &halo.auth_url).await;
        fill("client_id", &halo.client_id).await;
        fill("client_secret", &halo.client_secret).await;
        shot("psa-form").await;
        click("#save-connection").await;
        let pod_url = crate::browser::wait_for(client, "#pod-url").await;
        let id = app.ctx.psa_connections.list(woodgrove.id).await.unwrap()[0].id;
        let expected = app.ctx.psa_connections.setup(woodgrove.id, id).await.unwrap();
        assert_eq!(pod_url.prop("value").await.unwrap().as_deref(), Some(expected.pod_url.as_str()));
        // A read-only field: it takes focus, to be selected and copied.
        pod_url.click().await.unwrap();
        let focused = client.active_element().await.unwrap();
        assert_eq!(
            focused.attr("id").await.unwrap().as_deref(),
            Some("pod-url")
        );
        shot("psa-setup").await;
        click("#created a").await;
        click("#test-connection").await;
        let result = crate::browser::wait_for(client, "#test-result").await;
        assert!(result.text().await.unwrap().contains("Every check passed"), "{}", result.text().await.unwrap());
        assert_eq!(
            client.find(Locator::Id("connection-status")).await.unwrap().text().await.unwrap(),
            "Test passed"
        );
        shot("psa-tested").await;

        // Companies: Contoso mapped from its suggestion.
        click("nav a[href='/console/companies']").await;
        crate::browser::wait_for(client, "#accept-all").await;
        shot("companies").await;
        click("button[aria-label^='Map Contoso']").await;
        let notices = crate::browser::wait_for(client, "#notices").await;
        assert!(notices.text().await.unwrap().contains("is now mapped to"), "{}", notices.text().await.unwrap());
        let mappings = app.ctx.setup.list_mappings(woodgrove.id, None).await.unwrap();
        assert_eq!(mappings.len(), 1);
        assert!(mappings[0].psa_company_name.starts_with("Contoso"));
        shot("companies-mapped").await;
        world.app.stop().await;
    })
    .await;
}
