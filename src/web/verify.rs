//! The page of a one-tap verification link: "Are you on the phone with {MSP}? Yes, it's me."
//! Opening the link (GET) changes nothing, so link-preview bots cannot approve it; only the
//! user's tap (POST) answers.

use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::{Data, Form, Html, Path};
use poem::{IntoResponse, Response, Route, get, handler};
use serde::Deserialize;

use crate::app::AppContext;
use crate::core::error::CoreError;
use crate::core::verification::LinkState;
use crate::store::repos::MspRepository;

pub fn routes() -> Route {
    Route::new().at("/:token", get(show).post(answer))
}

#[derive(Deserialize)]
struct Answer {
    answer: String,
}

#[handler]
async fn show(ctx: Data<&Arc<AppContext>>, Path(token): Path<String>) -> Response {
    match ctx.verifications.link_status(&token).await {
        Ok((verification, LinkState::Open)) => {
            let msp = msp_name(&ctx, verification.msp_id).await;
            page(
                StatusCode::OK,
                "Is it you?",
                &format!(
                    "<p><strong>{msp}</strong> is asking whether you are on the phone with them right now.</p>\
                     <form method=\"post\"><button name=\"answer\" value=\"yes\" class=\"primary\">Yes, it's me</button>\
                     <button name=\"answer\" value=\"no\">No, it's not me</button></form>\
                     <p class=\"hint\">If you are not talking to {msp}, choose \"No\": someone may be pretending to be you.</p>",
                    msp = crate::web::escape_html(&msp)
                ),
            )
        }
        Ok((_, LinkState::Expired)) => page(
            StatusCode::GONE,
            "This link has expired",
            "<p>This link has expired. If you are still on the phone, ask for a new one.</p>",
        ),
        Ok((_, LinkState::Used)) => page(
            StatusCode::GONE,
            "Already answered",
            "<p>This link has already been answered. There is nothing more to do.</p>",
        ),
        Err(_) => page(
            StatusCode::NOT_FOUND,
            "Link not found",
            "<p>This link is not valid. Check that you opened the whole link from the message.</p>",
        ),
    }
}

#[handler]
async fn answer(
    ctx: Data<&Arc<AppContext>>,
    Path(token): Path<String>,
    Form(form): Form<Answer>,
) -> Response {
    let Ok((verification, _)) = ctx.verifications.link_status(&token).await else {
        return page(
            StatusCode::NOT_FOUND,
            "Link not found",
            "<p>This link is not valid.</p>",
        );
    };
    let Ok(Some(msp)) = ctx.store.get_msp(verification.msp_id).await else {
        return page(
            StatusCode::NOT_FOUND,
            "Link not found",
            "<p>This link is not valid.</p>",
        );
    };
    let confirmed = form.answer == "yes";
    match ctx.verifications.answer_link(&msp, &token, confirmed).await {
        Ok(_) if confirmed => page(
            StatusCode::OK,
            "Thank you",
            &format!(
                "<p>Thank you. {} now knows it is you; you can continue your call.</p>",
                crate::web::escape_html(&msp.name)
            ),
        ),
        Ok(_) => page(
            StatusCode::OK,
            "Thank you for telling us",
            &format!(
                "<p>{} has been told this was not you. If you are worried, call them on a number you know.</p>",
                crate::web::escape_html(&msp.name)
            ),
        ),
        Err(CoreError::CodeExpired) => page(
            StatusCode::GONE,
            "This link has expired",
            "<p>This link has expired. If you are still on the phone, ask for a new one.</p>",
        ),
        Err(_) => page(
            StatusCode::GONE,
            "Already answered",
            "<p>This link has already been answered.</p>",
        ),
    }
}

async fn msp_name(ctx: &AppContext, msp_id: uuid::Uuid) -> String {
    match ctx.store.get_msp(msp_id).await {
        Ok(Some(msp)) => msp.name,
        _ => "Your IT provider".to_owned(),
    }
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>body{{font:17px/1.5 system-ui,sans-serif;max-width:30rem;margin:2.5rem auto;padding:0 1rem;color:#1b2733}}\
         button{{font:inherit;padding:.8rem 1.2rem;margin:.4rem .4rem .4rem 0;border-radius:.4rem;border:1px solid #8a99a8;background:#fff}}\
         .primary{{background:#0b5cad;color:#fff;border-color:#0b5cad;font-weight:600}}.hint{{color:#52606d;font-size:.9rem}}</style></head>\
         <body><main><h1>{title}</h1>{body}</main></body></html>",
        title = crate::web::escape_html(title)
    );
    Html(html)
        .with_status(status)
        .with_header("Cache-Control", "no-store")
        .with_header("Referrer-Policy", "no-referrer")
        .with_header("X-Robots-Tag", "noindex, nofollow")
        .with_header("X-Content-Type-Options", "nosniff")
        .with_header(
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        )
        .into_response()
}
