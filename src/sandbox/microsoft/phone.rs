//! The demo "Authenticator phone": a page listing the pushes waiting for an answer, with
//! Approve / Deny / "It's not me" buttons. Stands in for the user's phone in `vouch demo`.

use poem::Response;
use poem::http::{Method, StatusCode};

use super::state::Outcome;
use super::{Incoming, Shared, html_escape, html_response, pair, redirect};

/// How often the page reloads itself to show new pushes.
const REFRESH_SECONDS: u32 = 2;

pub(super) fn handle(shared: &Shared, incoming: Incoming) -> Response {
    let segments: Vec<&str> = incoming.segments.iter().map(String::as_str).collect();
    match (&incoming.method, segments.as_slice()) {
        (&Method::GET, []) => page(shared, &incoming),
        (&Method::POST, ["answer"]) => answer(shared, &incoming),
        _ => super::plain(StatusCode::NOT_FOUND, "Not found"),
    }
}

fn page(shared: &Shared, incoming: &Incoming) -> Response {
    let only_upn = incoming.query_param("upn").filter(|u| !u.is_empty());
    let notice = match incoming.query_param("done") {
        Some("approve") => "You approved the sign-in.",
        Some("deny") => "You denied the sign-in.",
        Some("fraud") => "You reported the sign-in as not yours.",
        Some("gone") => "That request is no longer waiting (answered or timed out).",
        _ => "",
    };
    let pushes: Vec<(super::PendingPush, String)> = {
        let state = shared.state();
        state
            .pending
            .iter()
            .filter(|e| only_upn.is_none_or(|upn| e.push.upn.eq_ignore_ascii_case(upn)))
            .map(|e| {
                let tenant = state
                    .tenant(&e.push.tenant_id)
                    .map(|t| t.display_name.clone())
                    .unwrap_or_else(|| e.push.tenant_id.clone());
                (e.push.clone(), tenant)
            })
            .collect()
    };
    let upn_field = only_upn
        .map(|upn| {
            format!(
                "<input type=\"hidden\" name=\"upn\" value=\"{}\">",
                html_escape(upn)
            )
        })
        .unwrap_or_default();
    let mut cards = String::new();
    for (push, tenant) in &pushes {
        let heading_id = format!("push-{}", html_escape(&push.id));
        cards.push_str(&format!(
            r#"<section class="card" aria-labelledby="{heading_id}">
<h2 id="{heading_id}">Approve sign-in?</h2>
<p class="org">{tenant}</p>
<p>Vouch verification for <strong>{upn}</strong></p>
<p class="time">Requested at {time} UTC</p>
<form method="post" action="/phone/answer">
<input type="hidden" name="id" value="{id}">{upn_field}
<button type="submit" name="answer" value="approve" class="approve">Approve</button>
<button type="submit" name="answer" value="deny">Deny</button>
<button type="submit" name="answer" value="fraud" class="fraud">It's not me</button>
</form>
</section>
"#,
            tenant = html_escape(tenant),
            upn = html_escape(&push.upn),
            time = push.created_at.format("%H:%M:%S"),
            id = html_escape(&push.id),
        ));
    }
    if pushes.is_empty() {
        cards.push_str("<p class=\"idle\">No sign-in requests right now.</p>");
    }
    let title = match only_upn {
        Some(upn) => format!("Authenticator - {}", html_escape(upn)),
        None => "Authenticator".to_owned(),
    };
    // Reload without the one-time notice.
    let refresh_url = html_escape(&match only_upn {
        Some(upn) => format!(
            "/phone?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("upn", upn)
                .finish()
        ),
        None => "/phone".to_owned(),
    });
    let notice_html = if notice.is_empty() {
        String::new()
    } else {
        format!("<p class=\"notice\">{}</p>", html_escape(notice))
    };
    let html = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}; url={refresh_url}">
<title>{title} (sandbox phone)</title>
<style>
body {{ font-family: system-ui, sans-serif; background: #e9edf2; margin: 0; padding: 24px; }}
.phone {{ width: 320px; min-height: 560px; margin: 0 auto; background: #fff; border: 12px solid #1b1b1f;
          border-radius: 36px; padding: 24px 16px; box-shadow: 0 8px 24px rgba(0,0,0,.25); }}
h1 {{ font-size: 1.2rem; text-align: center; margin: 0 0 4px; }}
.sub {{ text-align: center; color: #555; font-size: .85rem; margin: 0 0 16px; }}
.card {{ border: 1px solid #ccd; border-radius: 12px; padding: 12px; margin-bottom: 12px; }}
.card h2 {{ font-size: 1.05rem; margin: 0 0 6px; }}
.org, .time {{ color: #555; font-size: .85rem; margin: 4px 0; }}
button {{ font-size: 1rem; padding: 8px 10px; margin: 8px 4px 0 0; border-radius: 8px; border: 1px solid #888; background: #fff; }}
button.approve {{ background: #0f6cbd; border-color: #0f6cbd; color: #fff; }}
button.fraud {{ color: #a4262c; border-color: #a4262c; }}
button:focus-visible {{ outline: 3px solid #000; outline-offset: 2px; }}
.idle {{ text-align: center; color: #555; margin-top: 48px; }}
.notice {{ background: #dff6dd; border-radius: 8px; padding: 8px; }}
</style>
</head>
<body>
<main class="phone">
<h1>Authenticator</h1>
<p class="sub">Sandbox phone. This page refreshes every {REFRESH_SECONDS} seconds.</p>
<div role="status" aria-live="polite">{notice_html}</div>
{cards}
</main>
</body>
</html>
"#
    );
    html_response(StatusCode::OK, html)
}

fn answer(shared: &Shared, incoming: &Incoming) -> Response {
    let form = incoming.form();
    let id = pair(&form, "id").unwrap_or("");
    let choice = pair(&form, "answer").unwrap_or("");
    let outcome = match choice {
        "approve" => Some(Outcome::Approve),
        "deny" => Some(Outcome::Deny),
        "fraud" => Some(Outcome::ReportFraud),
        _ => None,
    };
    let delivered = outcome.is_some_and(|outcome| shared.answer(id, outcome));
    let mut location = url::form_urlencoded::Serializer::new(String::new());
    if let Some(upn) = pair(&form, "upn").filter(|u| !u.is_empty()) {
        location.append_pair("upn", upn);
    }
    location.append_pair("done", if delivered { choice } else { "gone" });
    redirect(
        StatusCode::SEE_OTHER,
        &format!("/phone?{}", location.finish()),
    )
}
