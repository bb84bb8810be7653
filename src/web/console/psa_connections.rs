//! `GET /console/psa-connections` (admins): the MSP's PSA connections. One form per PSA
//! (ConnectWise, HaloPSA, Autotask) to connect or edit one, "Test connection" with each
//! check's outcome, the values to paste into the PSA with that PSA's steps, and delete.

use std::sync::Arc;

use minijinja::context;
use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{Response, handler};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::confirm::{self, Question};
use super::session::{AdminForm, failed};
use super::{ConsoleUser, redirect, respond};
use crate::api::error::status_of;
use crate::app::AppContext;
use crate::core::error::CoreError;
use crate::core::psa_connections::{
    AutotaskInput, AutotaskPatch, ConnectWiseInput, ConnectWisePatch, ConnectionDetails,
    ConnectionPatch, ConnectionStatus, HaloPsaInput, HaloPsaPatch, LastTest, NewConnectionInput,
    Patch, PsaConnectionView, SetupView,
};
use crate::domain::{CheckOutcome, PsaKind};

const PATH: &str = "/console/psa-connections";

/// The connection form: every PSA's fields (each PSA's form sends its own).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConnectionForm {
    name: String,
    allowed_origins: String,
    // ConnectWise
    site_url: String,
    company_id: String,
    public_key: String,
    private_key: String,
    // HaloPSA
    resource_url: String,
    auth_url: String,
    tenant: String,
    client_secret: String,
    // ConnectWise and HaloPSA
    client_id: String,
    // Autotask
    api_user: String,
    api_secret: String,
    integration_code: String,
    zone_lookup_url: String,
}

/// The test and delete forms carry nothing of their own (their CSRF token and confirmation
/// are read by [`AdminForm`]).
#[derive(Debug, Default, Deserialize)]
pub struct ActionForm {}

/// What a form shows: its values (never a secret) and the refusal next to its field.
#[derive(Debug, Default, Serialize)]
struct FormView {
    name: String,
    allowed_origins: String,
    site_url: String,
    company_id: String,
    public_key: String,
    resource_url: String,
    auth_url: String,
    tenant: String,
    client_id: String,
    api_user: String,
    integration_code: String,
    zone_lookup_url: String,
    /// Whether each secret is already set (an edit leaves a blank secret as it is).
    secret_set: bool,
    /// The field the refusal concerns, and the refusal.
    error_field: Option<&'static str>,
    error: Option<String>,
}

impl FormView {
    fn of_form(form: &ConnectionForm) -> FormView {
        FormView {
            name: form.name.clone(),
            allowed_origins: form.allowed_origins.clone(),
            site_url: form.site_url.clone(),
            company_id: form.company_id.clone(),
            public_key: form.public_key.clone(),
            resource_url: form.resource_url.clone(),
            auth_url: form.auth_url.clone(),
            tenant: form.tenant.clone(),
            client_id: form.client_id.clone(),
            api_user: form.api_user.clone(),
            integration_code: form.integration_code.clone(),
            zone_lookup_url: form.zone_lookup_url.clone(),
            ..FormView::default()
        }
    }

    fn of_view(view: &PsaConnectionView) -> FormView {
        let mut form = FormView {
            name: view.name.clone(),
            allowed_origins: if view.allowed_origins_custom {
                view.allowed_origins.join("\n")
            } else {
                String::new()
            },
            secret_set: true,
            ..FormView::default()
        };
        match &view.details {
            ConnectionDetails::ConnectWise {
                site_url,
                company_id,
                public_key,
                client_id,
                ..
            } => {
                form.site_url = site_url.clone();
                form.company_id = company_id.clone();
                form.public_key = public_key.clone();
                form.client_id = client_id.clone().unwrap_or_default();
            }
            ConnectionDetails::HaloPsa {
                resource_url,
                auth_url,
                tenant,
                client_id,
                ..
            } => {
                form.resource_url = resource_url.clone();
                form.auth_url = auth_url.clone();
                form.tenant = tenant.clone().unwrap_or_default();
                form.client_id = client_id.clone();
            }
            ConnectionDetails::Autotask {
                api_user,
                integration_code,
                zone_lookup_url,
                ..
            } => {
                form.api_user = api_user.clone();
                form.integration_code = integration_code.clone();
                form.zone_lookup_url = zone_lookup_url.clone().unwrap_or_default();
            }
        }
        form
    }

    fn refused(mut self, err: &CoreError) -> FormView {
        self.error_field = match err {
            CoreError::InvalidInput { field, .. } => Some(field),
            _ => None,
        };
        self.error = Some(err.to_string());
        self
    }
}

fn kind_of(segment: &str) -> Option<PsaKind> {
    PsaKind::ALL.into_iter().find(|k| k.as_str() == segment)
}

/// `None` for a blank field.
fn given(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// A secret as typed (blank: none given). Secrets are not trimmed here: core checks them.
fn given_secret(value: &str) -> Option<SecretString> {
    (!value.trim().is_empty()).then(|| SecretString::from(value.to_owned()))
}

/// The origins, one a line (or separated by commas or spaces); `None` when blank.
fn origins(value: &str) -> Option<Vec<String>> {
    let list: Vec<String> = value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|o| !o.is_empty())
        .map(str::to_owned)
        .collect();
    (!list.is_empty()).then_some(list)
}

fn patch_of<T>(value: Option<T>) -> Patch<T> {
    match value {
        Some(value) => Patch::Set(value),
        None => Patch::Clear,
    }
}

fn input_of(kind: PsaKind, form: &ConnectionForm) -> NewConnectionInput {
    let secret = |value: &str| SecretString::from(value.to_owned());
    match kind {
        PsaKind::ConnectWise => NewConnectionInput::ConnectWise(ConnectWiseInput {
            name: given(&form.name),
            site_url: given(&form.site_url),
            company_id: form.company_id.clone(),
            public_key: form.public_key.clone(),
            private_key: secret(&form.private_key),
            client_id: given(&form.client_id),
            allowed_origins: origins(&form.allowed_origins),
        }),
        PsaKind::HaloPsa => NewConnectionInput::HaloPsa(HaloPsaInput {
            name: given(&form.name),
            resource_url: form.resource_url.clone(),
            auth_url: form.auth_url.clone(),
            tenant: given(&form.tenant),
            client_id: form.client_id.clone(),
            client_secret: secret(&form.client_secret),
            allowed_origins: origins(&form.allowed_origins),
        }),
        PsaKind::Autotask => NewConnectionInput::Autotask(AutotaskInput {
            name: given(&form.name),
            api_user: form.api_user.clone(),
            api_secret: secret(&form.api_secret),
            integration_code: form.integration_code.clone(),
            zone_lookup_url: given(&form.zone_lookup_url),
            allowed_origins: origins(&form.allowed_origins),
        }),
    }
}

/// The edit form as a patch: a blank secret is kept, a blank optional value is cleared
/// (back to its default), and the required values are sent as they are (core refuses a
/// blank one next to its field).
fn patch_of_form(kind: PsaKind, form: &ConnectionForm) -> ConnectionPatch {
    let origins = patch_of(origins(&form.allowed_origins));
    match kind {
        PsaKind::ConnectWise => ConnectionPatch::ConnectWise(ConnectWisePatch {
            name: Some(form.name.clone()),
            site_url: Some(form.site_url.clone()),
            company_id: Some(form.company_id.clone()),
            public_key: Some(form.public_key.clone()),
            private_key: given_secret(&form.private_key),
            client_id: patch_of(given(&form.client_id)),
            allowed_origins: origins,
        }),
        PsaKind::HaloPsa => ConnectionPatch::HaloPsa(HaloPsaPatch {
            name: Some(form.name.clone()),
            resource_url: Some(form.resource_url.clone()),
            auth_url: Some(form.auth_url.clone()),
            tenant: patch_of(given(&form.tenant)),
            client_id: Some(form.client_id.clone()),
            client_secret: given_secret(&form.client_secret),
            allowed_origins: origins,
        }),
        PsaKind::Autotask => ConnectionPatch::Autotask(AutotaskPatch {
            name: Some(form.name.clone()),
            api_user: Some(form.api_user.clone()),
            api_secret: given_secret(&form.api_secret),
            integration_code: Some(form.integration_code.clone()),
            zone_lookup_url: patch_of(given(&form.zone_lookup_url)),
            allowed_origins: origins,
        }),
    }
}

/// A row of the list.
#[derive(Debug, Serialize)]
struct Row {
    id: Uuid,
    name: String,
    kind: &'static str,
    status: &'static str,
    status_class: &'static str,
    tested: Option<String>,
}

fn status_words(status: ConnectionStatus) -> (&'static str, &'static str) {
    match status {
        ConnectionStatus::Untested => ("Not tested", "untested"),
        ConnectionStatus::Passed => ("Test passed", "working"),
        ConnectionStatus::Failed => ("Test failed", "failing"),
    }
}

/// One check of a test, as the page lists it.
#[derive(Debug, Serialize)]
struct CheckView {
    name: String,
    outcome: &'static str,
    code: Option<String>,
    message: String,
}

#[derive(Debug, Serialize)]
struct TestView {
    tested: String,
    passed: bool,
    checks: Vec<CheckView>,
    /// How long the test just run took ("2.4 s"); `None` for a test shown from the record.
    took: Option<String>,
}

impl TestView {
    fn of(test: &LastTest) -> TestView {
        TestView {
            tested: crate::domain::utc_minute(test.tested_at),
            passed: test.passed,
            checks: test
                .checks
                .iter()
                .map(|c| CheckView {
                    name: c.name.replace('_', " "),
                    outcome: match c.outcome {
                        CheckOutcome::Passed => "Passed",
                        CheckOutcome::Failed => "Failed",
                        CheckOutcome::Skipped => "Skipped",
                    },
                    code: c.code.map(|code| code.as_str().to_owned()),
                    message: c.message.clone(),
                })
                .collect(),
            took: None,
        }
    }

    /// The test just run, which took `took`.
    fn timed(test: &LastTest, took: std::time::Duration) -> TestView {
        TestView {
            took: Some(seconds(took)),
            ..TestView::of(test)
        }
    }
}

/// A duration as the pages say it: "0.3 s", "12.5 s".
pub(super) fn seconds(took: std::time::Duration) -> String {
    format!("{:.1} s", took.as_secs_f64())
}

#[handler]
pub async fn list_page(ctx: Data<&Arc<AppContext>>, user: ConsoleUser) -> Response {
    if let Err(refused) = user.require_admin(PATH) {
        return refused;
    }
    let views = match ctx.psa_connections.list(user.msp.id).await {
        Ok(views) => views,
        Err(_) => return failed(&user.brand),
    };
    let rows: Vec<Row> = views
        .into_iter()
        .map(|v| {
            let (status, status_class) = status_words(v.status);
            Row {
                id: v.id,
                kind: v.kind.display_name(),
                status,
                status_class,
                tested: v
                    .last_test
                    .as_ref()
                    .map(|t| crate::domain::utc_minute(t.tested_at)),
                name: v.name,
            }
        })
        .collect();
    let kinds: Vec<_> = PsaKind::ALL
        .iter()
        .map(|k| context! { slug => k.as_str(), name => k.display_name() })
        .collect();
    respond(
        StatusCode::OK,
        "console/psa_list.html",
        context! {
            brand => user.brand.view(),
            shell => user.shell(PATH),
            rows => rows,
            kinds => kinds,
        },
        &user.brand,
    )
}

fn form_page(
    user: &ConsoleUser,
    status: StatusCode,
    kind: PsaKind,
    form: FormView,
    connection: Option<&PsaConnectionView>,
    test: Option<TestView>,
    notice: Option<String>,
) -> Response {
    respond(
        status,
        "console/psa_form.html",
        context! {
            brand => user.brand.view(),
            shell => user.shell(PATH),
            kind => kind.as_str(),
            kind_name => kind.display_name(),
            form => form,
            connection => connection.map(|c| {
                let (status, status_class) = status_words(c.status);
                context! {
                    id => c.id,
                    name => c.name,
                    status => status,
                    status_class => status_class,
                    origins => c.allowed_origins,
                }
            }),
            test => test.or_else(|| connection.and_then(|c| c.last_test.as_ref()).map(TestView::of)),
            notice => notice,
        },
        &user.brand,
    )
}

fn not_found(user: &ConsoleUser) -> Response {
    super::message(
        StatusCode::NOT_FOUND,
        &user.brand,
        Some(user.shell(PATH)),
        "No such PSA connection",
        "Your MSP has no PSA connection at this address. It may have been deleted.",
        (PATH, "Back to PSA Connections"),
    )
}

/// `GET /console/psa-connections/new/{kind}`: the PSA's empty form.
#[handler]
pub async fn new_form(user: ConsoleUser, Path(kind): Path<String>) -> Response {
    if let Err(refused) = user.require_admin(PATH) {
        return refused;
    }
    let Some(kind) = kind_of(&kind) else {
        return not_found(&user);
    };
    form_page(
        &user,
        StatusCode::OK,
        kind,
        FormView::default(),
        None,
        None,
        None,
    )
}

/// `POST /console/psa-connections/new/{kind}`: connects the PSA, then shows what to paste
/// into it (with the signing secret Vouch generated, where the PSA has one).
#[handler]
pub async fn create(
    ctx: Data<&Arc<AppContext>>,
    Path(kind): Path<String>,
    AdminForm { user, form, .. }: AdminForm<ConnectionForm>,
) -> Response {
    let Some(kind) = kind_of(&kind) else {
        return not_found(&user);
    };
    match ctx
        .psa_connections
        .create(user.msp.id, &user.actor(), input_of(kind, &form))
        .await
    {
        Ok(created) => redirect(&format!("{PATH}/{}/setup?created=1", created.view.id)),
        Err(CoreError::Store(_)) => failed(&user.brand),
        Err(err) => form_page(
            &user,
            status_of(err.code()),
            kind,
            FormView::of_form(&form).refused(&err),
            None,
            None,
            None,
        ),
    }
}

/// `GET /console/psa-connections/{id}`: the connection's form, its last test, and the ways
/// to test, set up and delete it.
#[handler]
pub async fn edit_form(
    ctx: Data<&Arc<AppContext>>,
    user: ConsoleUser,
    Path(id): Path<String>,
) -> Response {
    if let Err(refused) = user.require_admin(PATH) {
        return refused;
    }
    let Ok(id) = id.parse::<Uuid>() else {
        return not_found(&user);
    };
    match ctx.psa_connections.get(user.msp.id, id).await {
        Ok(view) => form_page(
            &user,
            StatusCode::OK,
            view.kind,
            FormView::of_view(&view),
            Some(&view),
            None,
            None,
        ),
        Err(CoreError::PsaConnectionNotFound) => not_found(&user),
        Err(_) => failed(&user.brand),
    }
}

/// `POST /console/psa-connections/{id}`: saves the edit form.
#[handler]
pub async fn update(
    ctx: Data<&Arc<AppContext>>,
    Path(id): Path<String>,
    AdminForm { user, form, .. }: AdminForm<ConnectionForm>,
) -> Response {
    let Ok(id) = id.parse::<Uuid>() else {
        return not_found(&user);
    };
    let current = match ctx.psa_connections.get(user.msp.id, id).await {
        Ok(view) => view,
        Err(CoreError::PsaConnectionNotFound) => return not_found(&user),
        Err(_) => return failed(&user.brand),
    };
    let patch = patch_of_form(current.kind, &form);
    match ctx
        .psa_connections
        .update(user.msp.id, &user.actor(), id, patch)
        .await
    {
        Ok(view) => form_page(
            &user,
            StatusCode::OK,
            view.kind,
            FormView::of_view(&view),
            Some(&view),
            None,
            Some("Saved. Test the connection to check the new values.".into()),
        ),
        Err(CoreError::PsaConnectionNotFound) => not_found(&user),
        Err(CoreError::Store(_)) => failed(&user.brand),
        Err(err) => {
            let mut shown = FormView::of_form(&form).refused(&err);
            shown.secret_set = true;
            form_page(
                &user,
                status_of(err.code()),
                current.kind,
                shown,
                Some(&current),
                None,
                None,
            )
        }
    }
}

/// `POST /console/psa-connections/{id}/{action}`: `test` (each check's outcome on the
/// connection's page) or `delete`.
#[handler]
pub async fn act(
    ctx: Data<&Arc<AppContext>>,
    Path((id, action)): Path<(String, String)>,
    AdminForm {
        user, confirmed, ..
    }: AdminForm<ActionForm>,
) -> Response {
    let Ok(id) = id.parse::<Uuid>() else {
        return not_found(&user);
    };
    let (msp, actor) = (user.msp.id, user.actor());
    match action.as_str() {
        "test" => match timed(ctx.psa_connections.test(msp, &actor, id)).await {
            (Ok(result), took) => match ctx.psa_connections.get(msp, id).await {
                Ok(view) => form_page(
                    &user,
                    StatusCode::OK,
                    view.kind,
                    FormView::of_view(&view),
                    Some(&view),
                    Some(TestView::timed(&result.test, took)),
                    None,
                ),
                Err(CoreError::PsaConnectionNotFound) => not_found(&user),
                Err(_) => failed(&user.brand),
            },
            (Err(CoreError::PsaConnectionNotFound), _) => not_found(&user),
            (Err(_), _) => failed(&user.brand),
        },
        "delete" if !confirmed => match ctx.psa_connections.get(msp, id).await {
            Ok(view) => confirm::ask(
                &user,
                Question {
                    title: format!("Delete {}?", view.name),
                    text: format!(
                        "Deleting removes its credentials and company mappings, and the pod stops working in {} at once. This cannot be undone: to use it again you connect it again. The audit log keeps its history.",
                        view.kind.display_name()
                    ),
                    action: format!("{PATH}/{id}/delete"),
                    button: "Delete",
                    back: format!("{PATH}/{id}"),
                },
            ),
            Err(CoreError::PsaConnectionNotFound) => not_found(&user),
            Err(_) => failed(&user.brand),
        },
        "delete" => match ctx.psa_connections.delete(msp, &actor, id).await {
            Ok(()) => redirect(PATH),
            Err(CoreError::PsaConnectionNotFound) => not_found(&user),
            Err(_) => failed(&user.brand),
        },
        _ => not_found(&user),
    }
}

/// `work`'s outcome and how long it took.
pub(super) async fn timed<T>(
    work: impl std::future::Future<Output = T>,
) -> (T, std::time::Duration) {
    let started = std::time::Instant::now();
    let outcome = work.await;
    (outcome, started.elapsed())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SetupQuery {
    created: Option<String>,
}

/// `GET /console/psa-connections/{id}/setup`: what to paste into the PSA, each value in a
/// read-only field to select and copy, and that PSA's steps.
#[handler]
pub async fn setup_page(
    ctx: Data<&Arc<AppContext>>,
    user: ConsoleUser,
    Path(id): Path<String>,
    poem::web::Query(query): poem::web::Query<SetupQuery>,
) -> Response {
    if let Err(refused) = user.require_admin(PATH) {
        return refused;
    }
    let Ok(id) = id.parse::<Uuid>() else {
        return not_found(&user);
    };
    let (view, setup): (PsaConnectionView, SetupView) = match (
        ctx.psa_connections.get(user.msp.id, id).await,
        ctx.psa_connections.setup(user.msp.id, id).await,
    ) {
        (Ok(view), Ok(setup)) => (view, setup),
        (Err(CoreError::PsaConnectionNotFound), _) | (_, Err(CoreError::PsaConnectionNotFound)) => {
            return not_found(&user);
        }
        _ => return failed(&user.brand),
    };
    respond(
        StatusCode::OK,
        "console/psa_setup.html",
        context! {
            brand => user.brand.view(),
            shell => user.shell(PATH),
            id => view.id,
            name => view.name,
            kind_name => view.kind.display_name(),
            created => query.created.is_some(),
            pod_url => setup.pod_url,
            vouch_origin => setup.vouch_origin,
            height_px => setup.height_px,
            secret => setup.secret.as_ref().map(|s| context! {
                label => s.label,
                value => s.value.expose_secret(),
            }),
            steps => setup.steps,
        },
        &user.brand,
    )
}
