//! `GET /console/users` (admins): the MSP's console users, inviting one by a one-time link,
//! and disabling, enabling, unlocking or removing one. Disabling or removing a user ends
//! their sessions at once, on every instance.

use std::sync::Arc;

use chrono::Utc;
use minijinja::context;
use poem::http::StatusCode;
use poem::web::{Data, Form, Path};
use poem::{Request, Response, handler};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::session::failed;
use super::{ConsoleUser, redirect, respond};
use crate::api::error::status_of;
use crate::app::AppContext;
use crate::core::accounts::{AccountError, NewUserInput, SetupLink};
use crate::domain::ConsoleRole;

const PATH: &str = "/console/users";

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct InviteForm {
    csrf: String,
    email: String,
    name: String,
    role: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ActionForm {
    csrf: String,
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

async fn page(
    ctx: &AppContext,
    user: &ConsoleUser,
    status: StatusCode,
    invite_form: InviteView,
    link: Option<LinkView>,
    error: Option<String>,
) -> Response {
    let users = match ctx.accounts.list(user.msp.id).await {
        Ok(users) => users,
        Err(_) => return failed(&user.brand),
    };
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
    req: &Request,
    user: ConsoleUser,
    Form(form): Form<InviteForm>,
) -> Response {
    if let Err(refused) = user.require_admin(PATH) {
        return refused;
    }
    if let Err(refused) = user.check_form(&ctx, req, &form.csrf) {
        return refused;
    }
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
/// (a new one-time link, the earlier ones stop working).
#[handler]
pub async fn act(
    ctx: Data<&Arc<AppContext>>,
    req: &Request,
    user: ConsoleUser,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Err(refused) = user.require_admin(PATH) {
        return refused;
    }
    if let Err(refused) = user.check_form(&ctx, req, &form.csrf) {
        return refused;
    }
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
    let outcome = match action.as_str() {
        "disable" => accounts.disable(msp, &actor, id).await.map(|_| None),
        "enable" => accounts.enable(msp, &actor, id).await.map(|_| None),
        "unlock" => accounts.unlock(msp, &actor, id).await.map(|_| None),
        "remove" => accounts.remove(msp, &actor, id).await.map(|_| None),
        "link" => accounts
            .new_setup_link(msp, &actor, id)
            .await
            .map(|link| Some(LinkView::of(&link))),
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
