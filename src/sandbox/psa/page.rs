//! The shared shell of the imitation ticket screens and the index page: plain HTML and CSS,
//! no external assets. Every dynamic value goes through [`html_escape`].

use poem::Response;
use poem::http::StatusCode;

use super::seed::{CONTACTS, Contact, TECHNICIAN_NAME};
use super::{Psa, Shared, StoredNote, html_escape, html_response};

/// Where the PSA shows the embedded Vouch page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Placement {
    /// A pod or insight in the right-hand column, beside the ticket.
    Side,
    /// A tab of the ticket, under the ticket details.
    Tab,
}

/// The colours of one PSA's imitation.
#[derive(Debug, Clone, Copy)]
pub(super) struct Theme {
    pub bar: &'static str,
    pub accent: &'static str,
}

/// One ticket screen.
pub(super) struct Screen {
    pub product: &'static str,
    pub theme: Theme,
    /// E.g. "Service Ticket #1001".
    pub heading: String,
    pub contact: &'static Contact,
    /// The company as the PSA names it (e.g. "Contoso Ltd (Contoso)").
    pub company: String,
    pub status: &'static str,
    /// Notes, oldest first (shown newest first).
    pub notes: Vec<StoredNote>,
    /// How a note's body is shown (plain text; escaped by the shell).
    pub note_text: fn(&StoredNote) -> String,
    pub placement: Placement,
    /// The heading of the Vouch panel ("Vouch" pod, tab or insight).
    pub panel_title: &'static str,
    /// The panel's content: trusted HTML built with escaping by the caller.
    pub panel_html: String,
    /// Trusted script(s) appended to the body.
    pub script: String,
}

const CSS: &str = r#"
* { box-sizing: border-box; }
body { margin: 0; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; font-size: 14px;
       color: #1f2328; background: #f3f4f6; }
header.bar { display: flex; align-items: center; justify-content: space-between; padding: 10px 20px; color: #fff; }
header.bar .product { font-weight: 600; font-size: 16px; }
header.bar .who { font-size: 13px; opacity: .9; }
main { display: grid; grid-template-columns: minmax(0, 1fr) 380px; gap: 16px; padding: 16px 20px; }
main.tabbed { grid-template-columns: minmax(0, 1fr); }
.card { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 14px 16px; margin-bottom: 16px; }
h1 { font-size: 18px; margin: 0 0 4px; }
h2 { font-size: 15px; margin: 0 0 10px; }
.summary { font-size: 16px; margin: 0 0 12px; }
dl.fields { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
dl.fields dt { color: #57606a; }
dl.fields dd { margin: 0; }
.description { white-space: pre-wrap; margin: 12px 0 0; color: #333; }
ol.notes { list-style: none; padding: 0; margin: 0; }
ol.notes li { border-top: 1px solid #eaeef2; padding: 8px 0; }
ol.notes li:first-child { border-top: none; }
.note-meta { color: #57606a; font-size: 12px; }
.badge { display: inline-block; font-size: 11px; border-radius: 10px; padding: 1px 8px; margin-right: 6px; color: #fff; }
.badge.internal { background: #8250df; }
.badge.public { background: #bf3989; }
.note-title { font-weight: 600; }
.note-text { white-space: pre-wrap; margin: 4px 0 0; }
.empty { color: #57606a; }
.tabs { display: flex; gap: 4px; border-bottom: 1px solid #d0d7de; margin: -4px 0 12px; }
.tabs span { padding: 6px 12px; color: #57606a; }
.tabs span.active { border-bottom: 3px solid currentColor; font-weight: 600; }
iframe#vouch-pod { width: 100%; border: 1px solid #d0d7de; border-radius: 4px; background: #fff; display: block; }
.missing { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px; padding: 10px 12px; margin: 0; }
.refresh { font-size: 13px; }
details.log { margin-top: 8px; font-size: 12px; color: #57606a; }
a { color: inherit; }
a:focus-visible, button:focus-visible { outline: 3px solid #0969da; outline-offset: 2px; }
"#;

pub(super) fn render(screen: Screen) -> Response {
    let contact = screen.contact;
    let mut notes_html = String::new();
    for note in screen.notes.iter().rev() {
        let badge = if note.note.internal {
            "<span class=\"badge internal\">Internal</span>"
        } else {
            "<span class=\"badge public\">Customer-visible</span>"
        };
        let title = note
            .title
            .as_deref()
            .map(|t| format!("<div class=\"note-title\">{}</div>", html_escape(t)))
            .unwrap_or_default();
        notes_html.push_str(&format!(
            "<li data-note-id=\"{id}\">{badge}<span class=\"note-meta\">{kind} · {time} UTC</span>{title}<p class=\"note-text\">{text}</p></li>\n",
            id = note.id,
            kind = html_escape(&note.kind),
            time = note.note.created_at.format("%Y-%m-%d %H:%M:%S"),
            text = html_escape(&(screen.note_text)(note)),
        ));
    }
    if notes_html.is_empty() {
        notes_html.push_str("<li class=\"empty\">No notes yet.</li>");
    }
    let emails = contact.emails.join(", ");
    let phone = contact.mobile.unwrap_or("(none)");
    let ticket_card = format!(
        r#"<section class="card" aria-labelledby="ticket-heading">
<h1 id="ticket-heading">{heading}</h1>
<p class="summary" id="ticket-summary">{summary}</p>
<dl class="fields">
<dt>Contact</dt><dd id="ticket-contact">{contact_name}</dd>
<dt>Company</dt><dd id="ticket-company">{company}</dd>
<dt>E-mail</dt><dd>{emails}</dd>
<dt>Phone</dt><dd>{phone}</dd>
<dt>Status</dt><dd>{status}</dd>
<dt>Assigned to</dt><dd>{technician}</dd>
</dl>
<p class="description">{description}</p>
</section>"#,
        heading = html_escape(&screen.heading),
        summary = html_escape(contact.summary),
        contact_name = html_escape(&contact.name()),
        company = html_escape(&screen.company),
        emails = html_escape(&emails),
        phone = html_escape(phone),
        status = html_escape(screen.status),
        technician = html_escape(TECHNICIAN_NAME),
        description = html_escape(contact.description),
    );
    let notes_card = format!(
        r#"<section class="card" aria-labelledby="notes-heading">
<h2 id="notes-heading">Notes <a class="refresh" href="">(refresh)</a></h2>
<ol class="notes" id="ticket-notes">
{notes_html}</ol>
</section>"#
    );
    let (main_class, body) = match screen.placement {
        Placement::Side => (
            "",
            format!(
                r#"<div>{ticket_card}{notes_card}</div>
<aside><section class="card" aria-labelledby="vouch-heading" id="vouch-panel">
<h2 id="vouch-heading">{panel_title}</h2>
{panel}
</section></aside>"#,
                panel_title = html_escape(screen.panel_title),
                panel = screen.panel_html,
            ),
        ),
        Placement::Tab => (
            " class=\"tabbed\"",
            format!(
                r#"<div>{ticket_card}
<section class="card" aria-labelledby="vouch-heading" id="vouch-panel">
<div class="tabs" role="presentation"><span>Details</span><span>Actions</span><span class="active" id="vouch-heading">{panel_title}</span></div>
{panel}
</section>
{notes_card}</div>"#,
                panel_title = html_escape(screen.panel_title),
                panel = screen.panel_html,
            ),
        ),
    };
    let html = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{heading} - {product} (sandbox)</title>
<style>{CSS}
header.bar {{ background: {bar}; }}
.tabs span.active, h1 {{ color: {accent}; }}
</style>
</head>
<body>
<header class="bar"><span class="product">{product}</span><span class="who">Signed in as {technician} · sandbox</span></header>
<main{main_class}>
{body}
</main>
{script}
</body>
</html>
"#,
        heading = html_escape(&screen.heading),
        product = html_escape(screen.product),
        bar = screen.theme.bar,
        accent = screen.theme.accent,
        technician = html_escape(TECHNICIAN_NAME),
        script = screen.script,
    );
    html_response(StatusCode::OK, html)
}

/// What the panel shows when no (usable) pod URL is set.
pub(super) fn missing_pod(product: &str, reason: &str) -> String {
    format!(
        "<p class=\"missing\" id=\"vouch-pod-missing\" role=\"status\">Vouch is not connected to this {product} screen: {reason}. \
         Start Vouch and give the sandbox its pod URLs (<code>PsaSandbox::set_pod_urls</code>; <code>vouch demo</code> does this).</p>",
        product = html_escape(product),
        reason = html_escape(reason),
    )
}

/// The 404 page of an unknown ticket.
pub(super) fn unknown_ticket(product: &str, id: &str) -> Response {
    html_response(
        StatusCode::NOT_FOUND,
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Not found - {product}</title></head>\
             <body><h1>Ticket {id} was not found</h1><p><a href=\"/\">All sandbox tickets</a></p></body></html>",
            product = html_escape(product),
            id = html_escape(id),
        ),
    )
}

/// `GET /`: links to every ticket screen.
pub(super) fn index(shared: &Shared) -> Response {
    let pods = shared.state().pod_urls.clone();
    let mut rows = String::new();
    for contact in &CONTACTS {
        let links = [
            (Psa::ConnectWise, contact.cw_ticket_id),
            (Psa::HaloPsa, contact.halo_ticket_id),
            (Psa::Autotask, contact.autotask_ticket_id),
        ]
        .iter()
        .map(|(psa, id)| {
            format!(
                "<td><a href=\"/{prefix}/ticket/{id}\">#{id}</a></td>",
                prefix = psa.prefix()
            )
        })
        .collect::<String>();
        rows.push_str(&format!(
            "<tr><td>{name}</td><td>{company}</td><td>{summary}</td>{links}</tr>\n",
            name = html_escape(&contact.name()),
            company = html_escape(contact.company.name),
            summary = html_escape(contact.summary),
        ));
    }
    let pod_state = |url: &str| {
        if url.is_empty() {
            "not set".to_owned()
        } else {
            html_escape(url)
        }
    };
    let html = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>PSA sandbox</title>
<style>{CSS}
table {{ border-collapse: collapse; background: #fff; }}
th, td {{ border: 1px solid #d0d7de; padding: 6px 10px; text-align: left; }}
body {{ padding: 20px; }}
</style>
</head>
<body>
<h1>PSA sandbox: ticket screens</h1>
<table>
<thead><tr><th>Contact</th><th>Company</th><th>Ticket</th><th>ConnectWise</th><th>HaloPSA</th><th>Autotask</th></tr></thead>
<tbody>
{rows}</tbody>
</table>
<p>Autotask with the Insight loaded by form POST: add <code>?post=1</code> to its ticket URL.</p>
<h2>Pod URLs</h2>
<ul><li>ConnectWise: {cw}</li><li>HaloPSA: {halo}</li><li>Autotask: {at}</li></ul>
</body>
</html>
"#,
        cw = pod_state(&pods.connectwise),
        halo = pod_state(&pods.halopsa),
        at = pod_state(&pods.autotask),
    );
    html_response(StatusCode::OK, html)
}

/// JSON for a `<script type="application/json">` element: `<` escaped so the text cannot
/// close the element.
pub(super) fn script_json(value: &serde_json::Value) -> String {
    value.to_string().replace('<', "\\u003c")
}
