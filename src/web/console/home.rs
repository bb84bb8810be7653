//! `GET /console`: the console's home. Who is signed in; what needs an admin (integrations
//! with an expired or soon-expiring secret or a failed check, PSA connections whose last test
//! failed), each linked to its page for admins; today's verifications and resets; and the
//! latest fraud reports ("It's not me").

use std::sync::Arc;

use chrono::Utc;
use minijinja::context;
use poem::http::StatusCode;
use poem::web::Data;
use poem::{Response, handler};
use serde::Serialize;

use super::session::failed;
use super::{ConsoleUser, respond};
use crate::app::AppContext;

#[derive(Debug, Serialize)]
struct AttentionView {
    subject: String,
    problem: String,
    href: &'static str,
}

#[derive(Debug, Serialize)]
struct FraudView {
    when: String,
    user: String,
    ticket: Option<String>,
}

#[handler]
pub async fn home(ctx: Data<&Arc<AppContext>>, user: ConsoleUser) -> Response {
    let now = Utc::now();
    let overview = match ctx
        .overview
        .overview(user.msp.id, &ctx.integrations, &ctx.psa_connections, now)
        .await
    {
        Ok(overview) => overview,
        Err(_) => return failed(&user.brand),
    };
    let attention: Vec<AttentionView> = overview
        .attention
        .into_iter()
        .map(|a| AttentionView {
            subject: a.subject,
            problem: a.problem,
            href: a.href,
        })
        .collect();
    let fraud: Vec<FraudView> = overview
        .fraud_reports
        .into_iter()
        .map(|f| FraudView {
            when: crate::core::pod::ago(f.at, now),
            user: f.user,
            ticket: f.ticket,
        })
        .collect();
    respond(
        StatusCode::OK,
        "console/home.html",
        context! {
            brand => user.brand.view(),
            shell => user.shell("/console"),
            email => user.account.email,
            name => user.account.name,
            role => user.account.role.display_name(),
            msp => user.msp.name,
            is_admin => user.is_admin(),
            second_factor => user.account.totp_enabled,
            attention => attention,
            verifications_today => overview.verifications_today,
            resets_today => overview.resets_today,
            fraud => fraud,
        },
        &user.brand,
    )
}
