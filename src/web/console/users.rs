//! `GET /console/users` (admins): the MSP's console users, inviting one by a one-time link,
//! and disabling, enabling, unlocking or removing one, changing their role, and linking them
//! to their PSA technician records (so the audit shows one person). Disabling or removing a
//! user ends their sessions at once, on every instance. The MSP's API keys are on the same
//! page: listed (never the key), created (the key shown once) and revoked, through the same
//! core as `/v1/api-keys`.

use std::sync::Arc;

use chrono::Utc;
use minijinja::context;
use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{Response, handler};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::confirm::{self, Question};
use super::session::{AdminForm, failed};
use super::{ConsoleUser, redirect, respond};
use crate::api::error::status_of;
use crate::app::AppContext;
use crate::core::accounts::{AccountError, NewUserInput, SetupLink};
use crate::domain::ConsoleRole;

const PATH: &str = "/console/users";

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct InviteForm {
    email: String,
    name: String,
    role: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ActionForm {
    /// With `role`: `admin` or `technician`.
    role: String,
    /// With `link-technician` and `unlink-technician`: the technician record's id.
    technician: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ApiKeyForm {
    name: String,
    scope: String,
}

/// An API key of the list (never the key).
#[derive(Debug, Serialize)]
struct KeyRow {
    id: Uuid,
    name: String,
    prefix: String,
    scope: &'static str,
    created: String,
    last_used: Option<String>,
    revoked: Option<String>,
}

/// A technician record, for the link choices.
#[derive(Debug, Serialize)]
struct TechnicianRow {
    id: Uuid,
    label: String,
}

/// A key just made, shown once.
#[derive(Debug, Serialize)]
struct NewKeyView {
    name: String,
    key: String,
}

/// A row of the list.
#[derive(Debug, Serialize)]
struct UserRow {
    id: Uuid,
    name: String,
    email: String,
    role: &'static str,
    status: &'static str,
    last_sign_in: Option<String>,
    disabled: bool,
    locked: bool,
    is_you: bool,
    is_admin: bool,
    /// The technician records linked to this user.
    technicians: Vec<TechnicianRow>,
}

/// What the invitation form shows again after a refusal.
#[derive(Debug, Default, Serialize)]
struct InviteView {
    email: String,
    name: String,
    role: String,
    email_error: Option<String>,
    name_error: Option<String>,
}

/// A link just made, shown once.
#[derive(Debug, Serialize)]
struct LinkView {
    email: String,
    url: String,
    expires: String,
}

impl LinkView {
    fn of(link: &SetupLink) -> LinkView {
        LinkView {
            email: link.user.email.clone(),
            url: link.url.expose_secret().to_owned(),
            expires: crate::domain::utc_minute(link.expires_at),
        }
    }
}

/// What the API key form shows again, and a key just made.
#[derive(Debug, Default)]
struct KeysView {
    name: String,
    name_error: Option<String>,
    new_key: Option<NewKeyView>,
}

async fn page(
    ctx: &AppContext,
    user: &ConsoleUser,
    status: StatusCode,
    invite_form: InviteView,
    link: Option<LinkView>,
    error: Option<String>,
) -> Response {
    page_with_keys(
        ctx,
        user,
        status,
        invite_form,
        link,
        error,
        KeysView::default(),
    )
    .await
}

async fn page_with_keys(
    ctx: &AppContext,
    user: &ConsoleUser,
    status: StatusCode,
    invite_form: InviteView,
    link: Option<LinkView>,
    error: Option<String>,
    keys_view: KeysView,
) -> Response {
    let users = match ctx.accounts.list(user.msp.id).await {
        Ok(users) => users,
        Err(_) => return failed(&user.brand),
    };
    let (Ok(keys), Ok(technicians)) = (
        ctx.setup.list_api_keys(user.msp.id).await,
        ctx.technicians.list(user.msp.id).await,
    ) else {
        return failed(&user.brand);
    };
    let technician_label = |t: &crate::core::technicians::TechnicianView| {
        format!(
            "{} ({}{})",
            t.name,
            t.psa_connection_name
                .as_deref()
                .unwrap_or("a removed connection"),
            t.email
                .as_deref()
                .map(|e| format!(", {e}"))
                .unwrap_or_default()
        )
    };
    let unlinked: Vec<TechnicianRow> = technicians
        .iter()
        .filter(|t| {
            t.console_user_id
                .is_none_or(|id| !users.iter().any(|u| u.id == id))
        })
        .map(|t| TechnicianRow {
            id: t.id,
            label: technician_label(t),
        })
        .collect();
    let key_rows: Vec<KeyRow> = keys
        .into_iter()
        .map(|k| KeyRow {
            id: k.id,
            name: k.name,
            prefix: k.key_prefix,
            scope: match k.scope {
                crate::domain::ApiKeyScope::Admin => "Admin",
                crate::domain::ApiKeyScope::Technician => "Technician",
            },
            created: crate::domain::utc_minute(k.created_at),
            last_used: k.last_used_at.map(crate::domain::utc_minute),
            revoked: k.revoked_at.map(crate::domain::utc_minute),
        })
        .collect();
    let now = Utc::now();
    let rows: Vec<UserRow> = users
        .into_iter()
        .map(|u| {
            let locked = u.locked_until.is_some_and(|until| until > now)
                || u.next_attempt_at.is_some_and(|next| next > now);
            UserRow {
                id: u.id,
                status: if u.disabled_at.is_some() {
                    "Disabled"
                } else if u.locked_until.is_some_and(|until| until > now) {
                    "Locked"
                } else if !u.has_password {
                    "Invited"
                } else {
                    "Active"
                },
                last_sign_in: u.last_sign_in_at.map(crate::domain::utc_minute),
                disabled: u.disabled_at.is_some(),
                locked,
                is_you: u.id == user.account.id,
                is_admin: u.role == ConsoleRole::Admin,
                technicians: technicians
                    .iter()
                    .filter(|t| t.console_user_id == Some(u.id))
                    .map(|t| TechnicianRow {
                        id: t.id,
                        label: technician_label(t),
                    })
                    .collect(),
                role: u.role.display_name(),
                name: u.name,
                email: u.email,
            }
        })
        .collect();
    respond(
        status,
        "console/users.html",
        context! {
            brand => user.brand.view(),
            shell => user.shell(PATH),
            users => rows,
            invite => invite_form,
            link => link,
            error => error,
            unlinked => unlinked,
            keys => key_rows,
            key_name => keys_view.name,
            key_name_error => keys_view.name_error,
            new_key => keys_view.new_key,
        },
        &user.brand,
    )
}

#[handler]
pub async fn users_page(ctx: Data<&Arc<AppContext>>, user: ConsoleUser) -> Response {
    if let Err(refused) = user.require_admin(PATH) {
        return refused;
    }
    page(
        &ctx,
        &user,
        StatusCode::OK,
        InviteView::default(),
        None,
        None,
    )
    .await
}

/// `POST /console/users/invite`: a new user and their one-time link.
#[handler]
pub async fn invite(
    ctx: Data<&Arc<AppContext>>,
    AdminForm { user, form, .. }: AdminForm<InviteForm>,
) -> Response {
    let role = match form.role.as_str() {
        "admin" => ConsoleRole::Admin,
        _ => ConsoleRole::Technician,
    };
    let input = NewUserInput {
        email: form.email.clone(),
        name: form.name.clone(),
        role,
    };
    match ctx
        .accounts
        .create_user(user.msp.id, &user.actor(), input)
        .await
    {
        Ok(link) => {
            page(
                &ctx,
                &user,
                StatusCode::OK,
                InviteView::default(),
                Some(LinkView::of(&link)),
                None,
            )
            .await
        }
        Err(AccountError::Store(_)) => failed(&user.brand),
        Err(err) => {
            let field = err.field();
            let text = err.to_string();
            let invite_form = InviteView {
                email: form.email,
                name: form.name,
                role: role.as_str().to_owned(),
                email_error: (field == Some("email")).then(|| text.clone()),
                name_error: (field == Some("name")).then(|| text.clone()),
            };
            let error = field.is_none().then_some(text);
            page(&ctx, &user, status_of(err.code()), invite_form, None, error).await
        }
    }
}

/// `POST /console/users/{id}/{action}`: `disable`, `enable`, `unlock`, `remove`, or `link`
/// (a new one-time link, the earlier ones stop working). `disable` and `remove` act only
/// when confirmed: the first post shows their confirmation page.
#[handler]
pub async fn act(
    ctx: Data<&Arc<AppContext>>,
    Path((id, action)): Path<(String, String)>,
    AdminForm {
        user,
        form,
        confirmed,
    }: AdminForm<ActionForm>,
) -> Response {
    let Ok(id) = id.parse::<Uuid>() else {
        let err = AccountError::UserNotFound;
        return page(
            &ctx,
            &user,
            status_of(err.code()),
            InviteView::default(),
            None,
            Some(err.to_string()),
        )
        .await;
    };
    let (msp, actor, accounts) = (user.msp.id, user.actor(), &ctx.accounts);
    if matches!(action.as_str(), "disable" | "remove") && !confirmed {
        let found = match accounts.list(msp).await {
            Ok(users) => users.into_iter().find(|u| u.id == id),
            Err(_) => return failed(&user.brand),
        };
        let Some(found) = found else {
            let err = AccountError::UserNotFound;
            return page(
                &ctx,
                &user,
                status_of(err.code()),
                InviteView::default(),
                None,
                Some(err.to_string()),
            )
            .await;
        };
        let yourself = if found.id == user.account.id {
            " This is you: you are signed out too."
        } else {
            ""
        };
        let (title, text, button) = if action == "disable" {
            (
                format!("Disable {}?", found.email),
                format!(
                    "They are signed out at once, everywhere, and cannot sign in until an admin enables them again.{yourself}"
                ),
                "Disable",
            )
        } else {
            (
                format!("Remove {}?", found.email),
                format!(
                    "They are signed out at once and their account is deleted; to let them in again, invite them again. The audit log keeps what they did.{yourself}"
                ),
                "Remove",
            )
        };
        return confirm::ask(
            &user,
            Question {
                title,
                text,
                action: format!("{PATH}/{id}/{action}"),
                button,
                back: PATH.to_owned(),
            },
        );
    }
    let outcome = match action.as_str() {
        "disable" => accounts.disable(msp, &actor, id).await.map(|_| None),
        "enable" => accounts.enable(msp, &actor, id).await.map(|_| None),
        "unlock" => accounts.unlock(msp, &actor, id).await.map(|_| None),
        "remove" => accounts.remove(msp, &actor, id).await.map(|_| None),
        "link" => accounts
            .new_setup_link(msp, &actor, id)
            .await
            .map(|link| Some(LinkView::of(&link))),
        "role" => {
            let role = match form.role.as_str() {
                "admin" => Ok(ConsoleRole::Admin),
                "technician" => Ok(ConsoleRole::Technician),
                _ => Err(AccountError::InvalidInput {
                    field: "role",
                    problem: "Pick admin or technician.".to_owned(),
                }),
            };
            match role {
                Ok(role) => accounts.set_role(msp, &actor, id, role).await.map(|_| None),
                Err(err) => Err(err),
            }
        }
        "link-technician" | "unlink-technician" => {
            let linking = action == "link-technician";
            let technician = form.technician.parse::<Uuid>();
            match technician {
                Err(_) => Err(AccountError::InvalidInput {
                    field: "technician",
                    problem: "Pick one of your PSA technicians from the list.".to_owned(),
                }),
                Ok(technician) => {
                    // Unlinking only the user's own link: the technician must be theirs.
                    let theirs = linking
                        || ctx.technicians.list(msp).await.ok().is_some_and(|all| {
                            all.iter()
                                .any(|t| t.id == technician && t.console_user_id == Some(id))
                        });
                    if !theirs {
                        Err(AccountError::InvalidInput {
                            field: "technician",
                            problem: "This technician is not linked to this user. Reload the list."
                                .to_owned(),
                        })
                    } else if accounts
                        .list(msp)
                        .await
                        .map(|all| all.iter().any(|u| u.id == id))
                        .unwrap_or(false)
                    {
                        ctx.technicians
                            .link_console_user(msp, &actor, technician, linking.then_some(id))
                            .await
                            .map(|_| None)
                            .map_err(|err| match err {
                                crate::core::error::CoreError::Store(e) => AccountError::Store(e),
                                other => AccountError::InvalidInput {
                                    field: "technician",
                                    problem: other.to_string(),
                                },
                            })
                    } else {
                        Err(AccountError::UserNotFound)
                    }
                }
            }
        }
        _ => Err(AccountError::InvalidInput {
            field: "action",
            problem: "Vouch does not know this action. Use the buttons of the list.".to_owned(),
        }),
    };
    match outcome {
        // Disabling or removing oneself ends one's own session: the next page is sign-in.
        Ok(None) => redirect(PATH),
        Ok(Some(link)) => {
            page(
                &ctx,
                &user,
                StatusCode::OK,
                InviteView::default(),
                Some(link),
                None,
            )
            .await
        }
        Err(AccountError::Store(_)) => failed(&user.brand),
        Err(err) => {
            page(
                &ctx,
                &user,
                status_of(err.code()),
                InviteView::default(),
                None,
                Some(err.to_string()),
            )
            .await
        }
    }
}

/// `POST /console/users/api-keys`: a new API key, shown once.
#[handler]
pub async fn create_key(
    ctx: Data<&Arc<AppContext>>,
    AdminForm { user, form, .. }: AdminForm<ApiKeyForm>,
) -> Response {
    let scope = match form.scope.as_str() {
        "technician" => crate::domain::ApiKeyScope::Technician,
        _ => crate::domain::ApiKeyScope::Admin,
    };
    match ctx
        .setup
        .create_api_key(user.msp.id, &user.actor(), &form.name, scope)
        .await
    {
        Ok((key, secret)) => {
            let view = KeysView {
                new_key: Some(NewKeyView {
                    name: key.name,
                    key: secret.expose_secret().to_owned(),
                }),
                ..KeysView::default()
            };
            page_with_keys(
                &ctx,
                &user,
                StatusCode::OK,
                InviteView::default(),
                None,
                None,
                view,
            )
            .await
        }
        Err(crate::core::error::CoreError::InvalidInput { problem, .. }) => {
            let view = KeysView {
                name: form.name,
                name_error: Some(format!("The name {problem}.")),
                new_key: None,
            };
            page_with_keys(
                &ctx,
                &user,
                StatusCode::BAD_REQUEST,
                InviteView::default(),
                None,
                None,
                view,
            )
            .await
        }
        Err(_) => failed(&user.brand),
    }
}

/// `POST /console/users/api-keys/{id}/revoke`: the key stops working at once, everywhere
/// (after its confirmation page: the first post only asks).
#[handler]
pub async fn revoke_key(
    ctx: Data<&Arc<AppContext>>,
    Path(id): Path<String>,
    AdminForm {
        user, confirmed, ..
    }: AdminForm<ActionForm>,
) -> Response {
    let Ok(id) = id.parse::<Uuid>() else {
        return page(
            &ctx,
            &user,
            StatusCode::NOT_FOUND,
            InviteView::default(),
            None,
            Some("No API key with this id belongs to your MSP. Reload the list.".to_owned()),
        )
        .await;
    };
    if !confirmed {
        let found = match ctx.setup.list_api_keys(user.msp.id).await {
            Ok(keys) => keys.into_iter().find(|k| k.id == id),
            Err(_) => return failed(&user.brand),
        };
        if let Some(key) = found {
            return confirm::ask(
                &user,
                Question {
                    title: format!("Revoke the API key {}?", key.name),
                    text: format!(
                        "Anything that uses the key starting {} stops working at once, on every instance of Vouch. This cannot be undone: make a new key if one is needed.",
                        key.key_prefix
                    ),
                    action: format!("{PATH}/api-keys/{id}/revoke"),
                    button: "Revoke",
                    back: PATH.to_owned(),
                },
            );
        }
        // A key not of this MSP: core's answer below (not found), which changes nothing.
    }
    match ctx
        .setup
        .revoke_api_key(user.msp.id, &user.actor(), id)
        .await
    {
        Ok(_) => redirect(PATH),
        Err(crate::core::error::CoreError::Store(_)) => failed(&user.brand),
        Err(err) => {
            page(
                &ctx,
                &user,
                StatusCode::NOT_FOUND,
                InviteView::default(),
                None,
                Some(err.to_string()),
            )
            .await
        }
    }
}
