//! `GET /console/account` (every signed-in user): their own account, and changing their own
//! password (the current one first; the new one follows the set-up rules). Their other
//! sessions end; this one stays.

use std::sync::Arc;

use minijinja::context;
use poem::http::StatusCode;
use poem::web::{Data, Form};
use poem::{Request, Response, handler};
use secrecy::SecretString;
use serde::Deserialize;

use super::session::failed;
use super::{ConsoleUser, respond};
use crate::api::error::status_of;
use crate::app::AppContext;
use crate::core::accounts::AccountError;

const PATH: &str = "/console/account";

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PasswordForm {
    csrf: String,
    current: String,
    password: String,
    confirm: String,
}

fn render(
    user: &ConsoleUser,
    status: StatusCode,
    errors: (Option<String>, Option<String>, Option<String>),
    notice: Option<&str>,
) -> Response {
    respond(
        status,
        "console/account.html",
        context! {
            brand => user.brand.view(),
            shell => user.shell(PATH),
            email => user.account.email,
            name => user.account.name,
            role => user.account.role.display_name(),
            second_factor => user.account.totp_enabled,
            current_error => errors.0,
            password_error => errors.1,
            confirm_error => errors.2,
            notice => notice,
        },
        &user.brand,
    )
}

#[handler]
pub fn account_page(user: ConsoleUser) -> Response {
    render(&user, StatusCode::OK, (None, None, None), None)
}

/// `POST /console/account`: a new password.
#[handler]
pub async fn change_password(
    ctx: Data<&Arc<AppContext>>,
    req: &Request,
    user: ConsoleUser,
    Form(form): Form<PasswordForm>,
) -> Response {
    if let Err(refused) = user.check_form(&ctx, req, &form.csrf) {
        return refused;
    }
    let outcome = ctx
        .accounts
        .change_password(
            &user.account,
            user.session.id,
            &SecretString::from(form.current),
            &SecretString::from(form.password),
            &SecretString::from(form.confirm),
        )
        .await;
    match outcome {
        Ok(()) => render(
            &user,
            StatusCode::OK,
            (None, None, None),
            Some("Your password is changed. Your other sessions have ended."),
        ),
        Err(AccountError::Store(_)) => failed(&user.brand),
        Err(err) => {
            let text = err.to_string();
            let status = status_of(err.code());
            let errors = match err.field() {
                Some("current") => (Some(text), None, None),
                Some("confirm") => (None, None, Some(text)),
                _ => (None, Some(text), None),
            };
            render(&user, status, errors, None)
        }
    }
}
