//! Who is asking: the console session behind the request's `vouch_console` cookie.
//!
//! A console page takes [`ConsoleUser`] as an argument and is only reached signed in:
//!
//! ```ignore
//! #[handler]
//! async fn page(user: ConsoleUser) -> Response {
//!     if let Err(refused) = user.require_admin(PATH) { return refused; } // admins only
//!     ...
//! }
//!
//! #[handler]
//! async fn post(AdminForm { user, form, confirmed }: AdminForm<MyForm>) -> Response {
//!     ... // signed in, an admin, CSRF checked: only the work is left
//! }
//! ```
//!
//! Without a session (none, ended, or its user disabled or removed) the request is sent to
//! the sign-in page; with one that still owes its second factor, to that step.
//!
//! Form posts take [`CheckedForm<T>`] (any signed-in user) or [`AdminForm<T>`] (admins),
//! which do every check before the handler runs: signed in, an admin (for `AdminForm`; a
//! technician gets the 403 page before the body is read), then the body parsed as a form,
//! its `csrf` field and its origin checked ([`ConsoleUser::check_form`]). They also say
//! whether the post is the confirmed second step of a destructive action (`confirm=yes`,
//! see [`super::confirm`]).

use std::sync::Arc;

use minijinja::{Value, context};
use poem::http::{StatusCode, header};
use poem::web::Form;
use poem::{Body, FromRequest, Request, RequestBody, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{
    SIGN_IN_PATH, cleared_cookie, cookie_token, message, redirect, same_origin, same_token,
    section_of,
};
use crate::app::AppContext;
use crate::core::accounts::actor_of;
use crate::core::share::ShareBranding;
use crate::domain::ConsoleRole;
use crate::store::audit::AuditActor;
use crate::store::console_users::{ConsoleSession, ConsoleUser as Account, SessionStage};
use crate::store::msp::MspAccount;
use crate::web::page::Brand;

/// A signed-in console user, their session and their MSP.
pub struct ConsoleUser {
    pub account: Account,
    pub session: ConsoleSession,
    pub msp: MspAccount,
    pub brand: Brand,
}

impl<'a> FromRequest<'a> for ConsoleUser {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let ctx = context_of(req)?;
        let (session, account) = match load(&ctx, req).await? {
            Some((session, account)) if session.stage == SessionStage::SignedIn => {
                (session, account)
            }
            Some((session, _)) => return Err(refusal(redirect(pending_path(session.stage)))),
            None => return Err(refusal(to_sign_in(&ctx, req))),
        };
        let msp = match ctx.store.get_msp(account.msp_id).await {
            Ok(Some(msp)) => msp,
            _ => return Err(refusal(failed(&Brand::vouch()))),
        };
        let brand = Brand::of(&ShareBranding::of(&msp, &ctx.config.http.public_url));
        Ok(ConsoleUser {
            account,
            session,
            msp,
            brand,
        })
    }
}

impl ConsoleUser {
    pub fn is_admin(&self) -> bool {
        self.account.role == ConsoleRole::Admin
    }

    /// `Err` with the 403 page when the user is not an admin.
    #[allow(clippy::result_large_err)]
    pub fn require_admin(&self, current: &str) -> Result<(), Response> {
        if self.is_admin() {
            return Ok(());
        }
        Err(message(
            StatusCode::FORBIDDEN,
            &self.brand,
            Some(self.shell(current)),
            "For admins only",
            "This page is for your MSP's admins. Ask an admin if something needs changing.",
            ("/console", "Back to the console home"),
        ))
    }

    /// `Err` with a 403 page unless the form carries this session's CSRF token and comes
    /// from a page of this Vouch (Origin or Referer).
    #[allow(clippy::result_large_err)]
    pub fn check_form(&self, ctx: &AppContext, req: &Request, csrf: &str) -> Result<(), Response> {
        if same_origin(req, &ctx.config.http.public_url)
            && same_token(csrf, &self.session.csrf_token)
        {
            return Ok(());
        }
        tracing::warn!(
            user_id = %self.account.id,
            path = req.uri().path(),
            "console form refused: missing or wrong CSRF token, or a foreign origin"
        );
        Err(csrf_refused(&self.brand, Some(self.shell("/console"))))
    }

    /// What the layout shows of the user: name, role, navigation, and the sign-out form's
    /// CSRF token. `current` is the page's address, marked in the navigation.
    pub fn shell(&self, current: &str) -> Value {
        context! {
            name => self.account.name,
            email => self.account.email,
            role => self.account.role.display_name(),
            msp => self.msp.name,
            csrf => self.session.csrf_token,
            nav => super::navigation(self.is_admin(), current),
        }
    }

    /// How this user appears in the audit log.
    pub fn actor(&self) -> AuditActor {
        actor_of(&self.account)
    }
}

/// A signed-in admin: any other signed-in user is answered with the 403 page (its
/// navigation marking the section of the address asked for), before the request's body is
/// read. For admin posts whose body is no plain form (the logo upload); plain forms take
/// [`AdminForm`].
pub struct AdminUser(pub ConsoleUser);

impl<'a> FromRequest<'a> for AdminUser {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let user = ConsoleUser::from_request(req, body).await?;
        user.require_admin(section_of(req.uri().path()))
            .map_err(refusal)?;
        Ok(AdminUser(user))
    }
}

/// The fields every console form carries besides its own.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CommonFields {
    csrf: String,
    /// `yes` on the second post of a destructive action (its confirmation page's button).
    confirm: String,
}

/// A signed-in user's form post, checked: the form `T` parsed (as `poem::web::Form` does)
/// and its CSRF token and origin checked, or the request answered before the handler runs.
pub struct CheckedForm<T> {
    pub user: ConsoleUser,
    pub form: T,
    /// Whether the form carried `confirm=yes`: the post from a confirmation page.
    pub confirmed: bool,
}

impl<'a, T: DeserializeOwned> FromRequest<'a> for CheckedForm<T> {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let user = ConsoleUser::from_request(req, body).await?;
        checked(user, req, body).await
    }
}

/// An admin's form post, checked like [`CheckedForm`] after [`AdminUser`]'s check: a
/// technician is refused before the body is read, whatever it holds.
pub struct AdminForm<T> {
    pub user: ConsoleUser,
    pub form: T,
    /// Whether the form carried `confirm=yes`: the post from a confirmation page.
    pub confirmed: bool,
}

impl<'a, T: DeserializeOwned> FromRequest<'a> for AdminForm<T> {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let AdminUser(user) = AdminUser::from_request(req, body).await?;
        let CheckedForm {
            user,
            form,
            confirmed,
        } = checked(user, req, body).await?;
        Ok(AdminForm {
            user,
            form,
            confirmed,
        })
    }
}

/// Parses the body as the form `T` and as the common fields (one read of the body, both
/// through `Form`, so its content-type rules and errors are poem's), then checks the CSRF
/// token and the origin.
async fn checked<T: DeserializeOwned>(
    user: ConsoleUser,
    req: &Request,
    body: &mut RequestBody,
) -> poem::Result<CheckedForm<T>> {
    let ctx = context_of(req)?;
    let bytes = body.take()?.into_bytes().await?;
    let Form(common) =
        Form::<CommonFields>::from_request(req, &mut RequestBody::new(Body::from(bytes.clone())))
            .await?;
    let Form(form) = Form::<T>::from_request(req, &mut RequestBody::new(Body::from(bytes))).await?;
    user.check_form(&ctx, req, &common.csrf).map_err(refusal)?;
    Ok(CheckedForm {
        user,
        form,
        confirmed: common.confirm == "yes",
    })
}

/// A session that passed the password and still owes its second factor (or its TOTP
/// enrolment): the only pages it opens are those steps.
pub struct PendingSession {
    pub account: Account,
    pub session: ConsoleSession,
}

impl<'a> FromRequest<'a> for PendingSession {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let ctx = context_of(req)?;
        match load(&ctx, req).await? {
            Some((session, _)) if session.stage == SessionStage::SignedIn => {
                Err(refusal(redirect("/console")))
            }
            Some((session, account)) => Ok(PendingSession { account, session }),
            None => Err(refusal(to_sign_in(&ctx, req))),
        }
    }
}

impl PendingSession {
    /// Like [`ConsoleUser::check_form`].
    #[allow(clippy::result_large_err)]
    pub fn check_form(&self, ctx: &AppContext, req: &Request, csrf: &str) -> Result<(), Response> {
        if same_origin(req, &ctx.config.http.public_url)
            && same_token(csrf, &self.session.csrf_token)
        {
            return Ok(());
        }
        Err(csrf_refused(&Brand::vouch(), None))
    }
}

/// The page of the step a pending session is at.
pub fn pending_path(stage: SessionStage) -> &'static str {
    match stage {
        SessionStage::SecondFactor => "/console/sign-in/code",
        SessionStage::EnrolTotp => "/console/two-factor",
        SessionStage::SignedIn => "/console",
    }
}

fn context_of(req: &Request) -> poem::Result<Arc<AppContext>> {
    req.data::<Arc<AppContext>>()
        .cloned()
        .ok_or_else(|| refusal(failed(&Brand::vouch())))
}

async fn load(ctx: &AppContext, req: &Request) -> poem::Result<Option<(ConsoleSession, Account)>> {
    let Some(token) = cookie_token(req) else {
        return Ok(None);
    };
    ctx.accounts
        .session(&token)
        .await
        .map_err(|_| refusal(failed(&Brand::vouch())))
}

/// To the sign-in page, removing a cookie that no longer opens a session.
fn to_sign_in(ctx: &AppContext, req: &Request) -> Response {
    let mut response = redirect(SIGN_IN_PATH);
    if cookie_token(req).is_some() {
        let secure = ctx.config.http.public_url.scheme() == "https";
        if let Ok(value) = header::HeaderValue::from_str(&cleared_cookie(secure)) {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
    }
    response
}

fn csrf_refused(brand: &Brand, shell: Option<Value>) -> Response {
    message(
        StatusCode::FORBIDDEN,
        brand,
        shell,
        "This form has expired",
        "This form was not sent from a current page of the console, so nothing was changed. Go back, reload the page and send it again.",
        ("/console", "Back to the console home"),
    )
}

/// The page of a failure inside Vouch (the cause is in the log).
pub fn failed(brand: &Brand) -> Response {
    message(
        StatusCode::INTERNAL_SERVER_ERROR,
        brand,
        None,
        "Something went wrong",
        "Something went wrong inside Vouch. Try again in a moment.",
        ("/console", "Back to the console"),
    )
}

/// An answer given instead of the handler's, kept as it is by the error boundary.
fn refusal(response: Response) -> poem::Error {
    poem::Error::from_response(response)
}
