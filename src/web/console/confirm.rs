//! The confirmation step of the console's destructive actions: removing an integration,
//! deleting a PSA connection, disabling or removing a user, revoking an API key or a share.
//!
//! The console runs no script (its CSP has no `script-src`), so the question is a page: the
//! action's button posts its form as before, and without `confirm=yes` the handler answers
//! with [`ask`], a page that names what goes and what follows, whose one form posts the same
//! address again with the session's CSRF token and `confirm=yes`. Only that second post acts
//! (the handlers read `confirmed` from [`super::session::AdminForm`] or
//! [`super::session::CheckedForm`]). Both posts are checked alike (signed in, role, CSRF).

use minijinja::context;
use poem::Response;
use poem::http::StatusCode;

use super::{ConsoleUser, respond, section_of};

/// What a confirmation page asks.
pub struct Question<'a> {
    /// The question, naming the thing: "Remove Microsoft Authenticator of Contoso?".
    pub title: String,
    /// What follows, in a sentence or two.
    pub text: String,
    /// The address the confirming form posts to: the action's own.
    pub action: String,
    /// The confirming button's words ("Remove", "Revoke").
    pub button: &'a str,
    /// The page to go back to without acting (its section is marked in the navigation).
    pub back: String,
}

/// The confirmation page (200): the question, what follows, the confirming form and a way
/// back that changes nothing.
pub fn ask(user: &ConsoleUser, question: Question) -> Response {
    respond(
        StatusCode::OK,
        "console/confirm.html",
        context! {
            brand => user.brand.view(),
            shell => user.shell(section_of(&question.back)),
            title => question.title,
            text => question.text,
            action => question.action,
            button => question.button,
            back => question.back,
        },
        &user.brand,
    )
}
