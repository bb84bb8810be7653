//! The PSA sandbox, tested through real HTTP: the three REST APIs with their authentication,
//! ConnectWise member hashes, notes, the host pages (Hosted API data, signed pod URLs, escaping)
//! and fault injection.

use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;
use vouch::sandbox::psa::*;

const POD_ORIGIN: &str = "http://127.0.0.1:18080";
const CONNECTION: &str = "3f0e2a9c-6b1d-4c7e-9a52-1d8e4f6a0b21";

async fn start() -> (PsaSandbox, reqwest::Client) {
    let sandbox = PsaSandbox::start().await.expect("sandbox starts");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    (sandbox, client)
}

fn pod_urls() -> PodUrls {
    PodUrls {
        connectwise: format!("{POD_ORIGIN}/pods/connectwise?connection={CONNECTION}"),
        halopsa: format!("{POD_ORIGIN}/pods/halopsa?connection={CONNECTION}"),
        autotask: format!("{POD_ORIGIN}/pods/autotask?connection={CONNECTION}"),
    }
}

async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
    };
    (status, value)
}

async fn page(client: &reqwest::Client, url: &str) -> (StatusCode, String) {
    let response = client.get(url).send().await.unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

/// The `src` of `<iframe id="vouch-pod" ...>`, with `&amp;` undone.
fn iframe_src(html: &str) -> String {
    let start = html
        .find("<iframe id=\"vouch-pod\"")
        .expect("the page has the pod iframe");
    let tag = &html[start..];
    let src = &tag[tag.find("src=\"").unwrap() + 5..];
    src[..src.find('"').unwrap()].replace("&amp;", "&")
}

fn query_pairs(url: &str) -> Vec<(String, String)> {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn get<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The signature scheme written out independently of the sandbox: every parameter but
/// `sig`, sorted by name (then value), `name=value` raw, joined with `&`, HMAC-SHA256 hex.
fn expected_signature(secret: &str, pairs: &[(String, String)]) -> String {
    let mut unsigned: Vec<&(String, String)> = pairs.iter().filter(|(k, _)| k != "sig").collect();
    unsigned.sort();
    let canonical = unsigned
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(canonical.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn assert_recent(ts: &str) {
    let ts: i64 = ts.parse().expect("ts is Unix seconds");
    let now = chrono::Utc::now().timestamp();
    assert!(
        (now - 5..=now + 1).contains(&ts),
        "ts {ts} is not now ({now})"
    );
}

// ---------------------------------------------------------------------------------------------
// ConnectWise
// ---------------------------------------------------------------------------------------------

fn cw_basic(company: &str, public: &str, private: &str) -> String {
    let raw = format!("{company}+{public}:{private}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

fn cw_api(sandbox: &PsaSandbox, path: &str) -> String {
    format!(
        "{}/v4_6_release/apis/3.0/{path}",
        sandbox.connectwise().site_url
    )
}

fn cw_get(sandbox: &PsaSandbox, client: &reqwest::Client, path: &str) -> reqwest::RequestBuilder {
    let info = sandbox.connectwise();
    client
        .get(cw_api(sandbox, path))
        .header(
            "Authorization",
            cw_basic(&info.company_id, &info.public_key, &info.private_key),
        )
        .header("clientId", &info.client_id)
}

#[tokio::test]
async fn connectwise_ticket_and_contact() {
    let (sandbox, client) = start().await;
    let info = sandbox.connectwise();
    assert_eq!(info.site_url, format!("{}/cw", sandbox.base_url()));
    assert_eq!(info.company_id, "northwind");
    assert_eq!(info.member_id, "jtech");
    assert!(uuid::Uuid::parse_str(&info.client_id).is_ok());

    let (status, ticket) = json_of(
        cw_get(&sandbox, &client, "service/tickets/1001")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{ticket}");
    assert_eq!(ticket["id"], 1001);
    assert_eq!(ticket["summary"], "Locked out of Outlook");
    assert_eq!(
        ticket["contact"],
        json!({"id": CW_CONTACT_DANA, "name": "Dana Whitfield"})
    );
    assert_eq!(ticket["contactEmailAddress"], "dana@contoso.example");
    assert_eq!(ticket["contactPhoneNumber"], "+1 206-555-0101");
    assert_eq!(
        ticket["company"],
        json!({"id": 250, "identifier": "Contoso", "name": "Contoso Ltd"})
    );
    assert_eq!(ticket["status"]["name"], "New");

    // Kim is at Fabrikam; Noel has no phone (left out, as ConnectWise does).
    let (_, kim) = json_of(
        cw_get(
            &sandbox,
            &client,
            &format!("service/tickets/{CW_TICKET_KIM}"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(kim["company"]["identifier"], "Fabrikam");
    let (_, noel) = json_of(
        cw_get(
            &sandbox,
            &client,
            &format!("service/tickets/{CW_TICKET_NOEL}"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert!(noel.get("contactPhoneNumber").is_none(), "{noel}");

    // Lee: two e-mails (the first the default) and a mobile.
    let (status, lee) = json_of(
        cw_get(
            &sandbox,
            &client,
            &format!("company/contacts/{CW_CONTACT_LEE}"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(lee["firstName"], "Lee");
    assert_eq!(lee["lastName"], "Chen");
    assert_eq!(lee["company"]["id"], 250);
    let items = lee["communicationItems"].as_array().unwrap();
    let emails: Vec<(&str, bool)> = items
        .iter()
        .filter(|i| i["communicationType"] == "Email")
        .map(|i| {
            (
                i["value"].as_str().unwrap(),
                i["defaultFlag"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        emails,
        [
            ("lee.chen@contoso.example", true),
            ("lee@contoso.example", false)
        ]
    );
    let phone = items
        .iter()
        .find(|i| i["communicationType"] == "Phone")
        .unwrap();
    assert_eq!(phone["type"]["name"], "Mobile");
    assert_eq!(phone["value"], "+1 206-555-0106");
    assert!(phone["type"]["id"].is_u64() && phone["id"].is_u64());

    // 404 shape.
    let (status, body) = json_of(
        cw_get(&sandbox, &client, "service/tickets/999")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"code": "NotFound", "message": "Ticket Id 999 not found", "errors": null})
    );
    let (status, body) = json_of(
        cw_get(&sandbox, &client, "company/contacts/999")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "NotFound");
}

#[tokio::test]
async fn connectwise_refuses_bad_credentials() {
    let (sandbox, client) = start().await;
    let info = sandbox.connectwise();
    let url = cw_api(&sandbox, "service/tickets/1001");
    let cases = [
        // No Authorization.
        client.get(&url).header("clientId", &info.client_id),
        // Wrong private key.
        client.get(&url).header("clientId", &info.client_id).header(
            "Authorization",
            cw_basic(&info.company_id, &info.public_key, "wrong"),
        ),
        // Wrong company.
        client.get(&url).header("clientId", &info.client_id).header(
            "Authorization",
            cw_basic("contoso", &info.public_key, &info.private_key),
        ),
        // No clientId.
        client.get(&url).header(
            "Authorization",
            cw_basic(&info.company_id, &info.public_key, &info.private_key),
        ),
        // Unknown clientId.
        client
            .get(&url)
            .header("clientId", uuid::Uuid::new_v4().to_string())
            .header(
                "Authorization",
                cw_basic(&info.company_id, &info.public_key, &info.private_key),
            ),
    ];
    for request in cases {
        let (status, body) = json_of(request.send().await.unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["code"], "Unauthorized");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

async fn my_member_info(
    sandbox: &PsaSandbox,
    client: &reqwest::Client,
    company: &str,
    member: &str,
    hash: &str,
) -> (StatusCode, Value) {
    let info = sandbox.connectwise();
    json_of(
        client
            .get(cw_api(sandbox, "system/myMembers/info"))
            .header(
                "Cookie",
                format!(
                    "companyName={company}; memberHash={hash}; memberId={member}; memberContext=web"
                ),
            )
            .header("clientId", &info.client_id)
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn connectwise_member_hash_is_verified_until_revoked() {
    let (sandbox, client) = start().await;
    let hash = sandbox.issue_connectwise_member_hash("jtech");

    let (status, member) = my_member_info(&sandbox, &client, "northwind", "jtech", &hash).await;
    assert_eq!(status, StatusCode::OK, "{member}");
    assert_eq!(member["identifier"], "jtech");
    assert_eq!(member["firstName"], "Jordan");
    assert_eq!(member["lastName"], "Tech");
    assert_eq!(member["defaultEmail"], "jordan@northwind.example");
    assert!(
        member.get("officeEmail").is_none(),
        "MemberInfo has no officeEmail"
    );
    assert_eq!(member["id"], 176);

    // Another member's hash does not vouch for jtech, nor jtech's for them.
    let other = sandbox.issue_connectwise_member_hash(CW_OTHER_MEMBER_ID);
    let (status, body) = my_member_info(&sandbox, &client, "northwind", "jtech", &other).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "Unauthorized");
    let (status, _) =
        my_member_info(&sandbox, &client, "northwind", CW_OTHER_MEMBER_ID, &hash).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) =
        my_member_info(&sandbox, &client, "northwind", CW_OTHER_MEMBER_ID, &other).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["identifier"], CW_OTHER_MEMBER_ID);

    // Another company, a made-up hash, Basic auth instead of cookies.
    let (status, _) = my_member_info(&sandbox, &client, "contoso", "jtech", &hash).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = my_member_info(&sandbox, &client, "northwind", "jtech", "made-up").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = json_of(
        cw_get(&sandbox, &client, "system/myMembers/info")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // memberContext must be "web"; clientId is required.
    let (status, _) = json_of(
        client
            .get(cw_api(&sandbox, "system/myMembers/info"))
            .header(
                "Cookie",
                format!("companyName=northwind; memberHash={hash}; memberId=jtech"),
            )
            .header("clientId", CW_CLIENT_ID)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = json_of(
        client
            .get(cw_api(&sandbox, "system/myMembers/info"))
            .header(
                "Cookie",
                format!(
                    "companyName=northwind; memberHash={hash}; memberId=jtech; memberContext=web"
                ),
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    sandbox.revoke_connectwise_member_hashes();
    let (status, _) = my_member_info(&sandbox, &client, "northwind", "jtech", &hash).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn connectwise_notes_are_stored_and_shown_escaped() {
    let (sandbox, client) = start().await;
    let info = sandbox.connectwise();
    let text = "Vouch: caller verified <script>alert(1)</script> & password reset";
    let response = client
        .post(cw_api(&sandbox, "service/tickets/1001/notes"))
        .header(
            "Authorization",
            cw_basic(&info.company_id, &info.public_key, &info.private_key),
        )
        .header("clientId", &info.client_id)
        .json(&json!({
            "text": text,
            "internalAnalysisFlag": true,
            "detailDescriptionFlag": false,
            "resolutionFlag": false,
        }))
        .send()
        .await
        .unwrap();
    let (status, note) = json_of(response).await;
    assert_eq!(status, StatusCode::CREATED, "{note}");
    assert_eq!(note["ticketId"], 1001);
    assert_eq!(note["text"], text);
    assert_eq!(note["internalAnalysisFlag"], true);
    assert!(note["id"].is_u64());

    let notes = sandbox.notes(Psa::ConnectWise, "1001");
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].text, text);
    assert!(notes[0].internal);
    assert!(sandbox.notes(Psa::ConnectWise, "1002").is_empty());
    assert!(sandbox.notes(Psa::HaloPsa, "1001").is_empty());

    let (status, html) = page(&client, &info.ticket_screen_url(1001)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(
        "Vouch: caller verified &lt;script&gt;alert(1)&lt;/script&gt; &amp; password reset"
    ));
    assert!(!html.contains("<script>alert(1)"));

    // A note on an unknown ticket, and one without any flag.
    let post = |path: &str, body: Value| {
        client
            .post(cw_api(&sandbox, path))
            .header(
                "Authorization",
                cw_basic(&info.company_id, &info.public_key, &info.private_key),
            )
            .header("clientId", &info.client_id)
            .json(&body)
            .send()
    };
    let (status, body) = json_of(
        post(
            "service/tickets/999/notes",
            json!({"text": "x", "internalAnalysisFlag": true}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["message"], "Ticket Id 999 not found");
    let (status, _) = json_of(
        post("service/tickets/1001/notes", json!({"text": "x"}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(sandbox.notes(Psa::ConnectWise, 1001).len(), 1);
}

#[tokio::test]
async fn connectwise_host_page_embeds_the_pod_with_a_fresh_member_hash() {
    let (sandbox, client) = start().await;
    let url = sandbox.connectwise().ticket_screen_url(CW_TICKET_DANA);

    let (status, html) = page(&client, &url).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"vouch-pod-missing\""), "no pod URL yet");
    assert!(!html.contains("<iframe"));

    sandbox.set_pod_urls(pod_urls());
    let (status, html) = page(&client, &url).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Locked out of Outlook"));
    assert!(html.contains("Dana Whitfield"));
    assert!(html.contains("Contoso Ltd"));
    assert_eq!(
        iframe_src(&html),
        format!(
            "{POD_ORIGIN}/pods/connectwise?connection={CONNECTION}&id=1001&screen=service_ticket"
        )
    );
    assert!(html.contains("height: 300px"));
    assert!(html.contains(&format!("\"podOrigin\":\"{POD_ORIGIN}\"")));
    assert!(html.contains("postMessage(JSON.stringify(message), config.podOrigin)"));
    assert!(!html.contains("\"*\""));

    // The hash embedded in the page is one myMembers/info accepts.
    let marker = "\"memberHash\":\"";
    let start = html.find(marker).expect("the page carries a member hash") + marker.len();
    let hash = &html[start..start + html[start..].find('"').unwrap()];
    assert!(!hash.is_empty());
    let (status, member) = my_member_info(&sandbox, &client, "northwind", "jtech", hash).await;
    assert_eq!(status, StatusCode::OK, "{member}");
    let site = format!(
        "\"site\":\"{}/cw\"",
        sandbox.base_url().trim_start_matches("http://")
    );
    assert!(html.contains(&site), "{site}");
    for expected in [
        "\"companyid\":\"northwind\"",
        "\"memberid\":\"jtech\"",
        "\"memberEmail\":\"jordan@northwind.example\"",
        "\"codeBase\":\"v4_6_release\"",
        "\"hostedAs\":\"pod\"",
        "\"screen\":\"ticket\"",
        "\"id\":1001",
    ] {
        assert!(html.contains(expected), "{expected}");
    }

    // Each load issues its own hash.
    let (_, again) = page(&client, &url).await;
    assert!(!again.contains(hash));

    // Unknown ticket.
    let (status, _) = page(&client, &sandbox.connectwise().ticket_screen_url(999)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn connectwise_company_info_names_the_code_base() {
    let (sandbox, client) = start().await;
    let (status, body) = json_of(
        client
            .get(format!(
                "{}/login/companyinfo/northwind",
                sandbox.connectwise().site_url
            ))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["Codebase"], "v4_6_release/");
}

// ---------------------------------------------------------------------------------------------
// HaloPSA
// ---------------------------------------------------------------------------------------------

async fn halo_token(sandbox: &PsaSandbox, client: &reqwest::Client) -> String {
    let info = sandbox.halopsa();
    let (status, body) = json_of(
        client
            .post(format!("{}/token", info.auth_url))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", info.client_id.as_str()),
                ("client_secret", info.client_secret.as_str()),
                ("scope", "all"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn halo_token_then_ticket_and_user() {
    let (sandbox, client) = start().await;
    let info = sandbox.halopsa();
    assert_eq!(info.resource_url, format!("{}/halo", sandbox.base_url()));
    assert_eq!(info.auth_url, format!("{}/halo/auth", sandbox.base_url()));
    let token = halo_token(&sandbox, &client).await;
    let api = |path: &str| format!("{}/api/{path}", info.resource_url);

    let (status, ticket) = json_of(
        client
            .get(api("Tickets/2006"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{ticket}");
    assert_eq!(ticket["id"], 2006);
    assert_eq!(ticket["user_id"], HALO_USER_LEE);
    assert_eq!(ticket["user_name"], "Lee Chen");
    assert_eq!(ticket["client_id"], 12);
    assert_eq!(ticket["client_name"], "Contoso Ltd");
    assert_eq!(ticket["site_id"], HALO_CONTOSO_SITE_ID);
    assert_eq!(ticket["agent_id"], 5);
    assert!(ticket["summary"].as_str().is_some());

    let (status, user) = json_of(
        client
            .get(api(&format!("Users/{HALO_USER_LEE}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user["name"], "Lee Chen");
    assert_eq!(user["emailaddress"], "lee.chen@contoso.example");
    assert_eq!(user["email2"], "lee@contoso.example");
    assert_eq!(user["email3"], "");
    assert_eq!(user["mobilenumber"], "+1 206-555-0106");
    assert_eq!(user["phonenumber_preferred"], "+1 206-555-0106");
    assert_eq!(user["client_id"], 12);
    for field in ["phonenumber", "mobilenumber2"] {
        assert!(user[field].is_string(), "{field}");
    }
    let (_, kim) = json_of(
        client
            .get(api(&format!("Users/{HALO_USER_KIM}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(kim["client_name"], "Fabrikam");

    let (status, agent) = json_of(
        client
            .get(api("Agent/me"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(agent["id"], 5);
    assert_eq!(agent["email"], "jordan@northwind.example");

    let (status, _) = json_of(
        client
            .get(api("Tickets/999"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = json_of(
        client
            .get(api("Users/999"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn halo_refuses_bad_clients_and_tokens() {
    let (sandbox, client) = start().await;
    let info = sandbox.halopsa();
    let (status, body) = json_of(
        client
            .post(format!("{}/token", info.auth_url))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", info.client_id.as_str()),
                ("client_secret", "wrong"),
                ("scope", "all"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, json!({"error": "invalid_client"}));

    let ticket = format!("{}/api/Tickets/2001", info.resource_url);
    let response = client.get(&ticket).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = client
        .get(&ticket)
        .bearer_auth("made-up")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let token = halo_token(&sandbox, &client).await;
    sandbox.expire_halo_tokens();
    let response = client
        .get(&ticket)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn halo_private_notes_are_stored_and_shown_escaped() {
    let (sandbox, client) = start().await;
    let info = sandbox.halopsa();
    let token = halo_token(&sandbox, &client).await;
    let note_html =
        "<p>Caller verified &lt;script&gt;x&lt;/script&gt;</p><script>alert(1)</script>";
    let (status, created) = json_of(
        client
            .post(format!("{}/api/Actions", info.resource_url))
            .bearer_auth(&token)
            .json(&json!([{
                "ticket_id": HALO_TICKET_DANA,
                "outcome": "Private Note",
                "note_html": note_html,
                "hiddenfromuser": true,
                "sendemail": false,
            }]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["ticket_id"], HALO_TICKET_DANA);
    assert_eq!(created["outcome"], "Private Note");
    assert_eq!(created["hiddenfromuser"], true);

    let notes = sandbox.notes(Psa::HaloPsa, HALO_TICKET_DANA);
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].text, note_html);
    assert!(notes[0].internal);

    let (status, html) = page(&client, &info.ticket_screen_url(HALO_TICKET_DANA)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("Caller verified &lt;script&gt;x&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script>alert(1)"));
    assert!(!html.contains("<p>Caller"));

    // Not an array; unknown ticket.
    let (status, _) = json_of(
        client
            .post(format!("{}/api/Actions", info.resource_url))
            .bearer_auth(&token)
            .json(&json!({"ticket_id": HALO_TICKET_DANA, "note_html": "x"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = json_of(
        client
            .post(format!("{}/api/Actions", info.resource_url))
            .bearer_auth(&token)
            .json(&json!([{"ticket_id": 999, "note_html": "x", "hiddenfromuser": true}]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(sandbox.notes(Psa::HaloPsa, HALO_TICKET_DANA).len(), 1);
}

#[tokio::test]
async fn halo_host_page_signs_the_tab_url() {
    let (sandbox, client) = start().await;
    let info = sandbox.halopsa();
    let url = info.ticket_screen_url(HALO_TICKET_SAM);
    let (_, html) = page(&client, &url).await;
    assert!(html.contains("id=\"vouch-pod-missing\""));

    sandbox.set_pod_urls(pod_urls());
    let (status, html) = page(&client, &url).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Sam Ortega"));
    let src = iframe_src(&html);
    assert!(
        src.starts_with(&format!(
            "{POD_ORIGIN}/pods/halopsa?connection={CONNECTION}&ticket_id=2002&agent_id=5&ts="
        )),
        "{src}"
    );
    let pairs = query_pairs(&src);
    assert_eq!(get(&pairs, "connection"), Some(CONNECTION));
    assert_eq!(get(&pairs, "ticket_id"), Some("2002"));
    assert_eq!(get(&pairs, "agent_id"), Some("5"));
    assert_recent(get(&pairs, "ts").unwrap());
    let sig = get(&pairs, "sig").expect("signed");
    assert_eq!(sig, expected_signature(&info.tab_secret, &pairs));
    assert_eq!(sig.len(), 64);
    assert_ne!(sig, expected_signature("another secret", &pairs));
}

// ---------------------------------------------------------------------------------------------
// Autotask
// ---------------------------------------------------------------------------------------------

/// Zone lookup, as Vouch does it first.
async fn autotask_zone(sandbox: &PsaSandbox, client: &reqwest::Client) -> String {
    let info = sandbox.autotask();
    let (status, zone) = json_of(
        client
            .get(format!("{}v1.0/zoneInformation", info.zone_lookup_url))
            .query(&[("user", info.api_user.as_str())])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{zone}");
    assert_eq!(zone["zoneName"], "Sandbox");
    assert_eq!(zone["ci"], 0);
    assert_eq!(zone["webUrl"], format!("{}/autotask/", sandbox.base_url()));
    zone["url"].as_str().unwrap().to_owned()
}

fn autotask_get(
    sandbox: &PsaSandbox,
    client: &reqwest::Client,
    zone: &str,
    path: &str,
) -> reqwest::RequestBuilder {
    let info = sandbox.autotask();
    client
        .get(format!("{zone}v1.0/{path}"))
        .header("ApiIntegrationCode", &info.integration_code)
        .header("UserName", &info.api_user)
        .header("Secret", &info.api_secret)
        .header("Content-Type", "application/json")
}

#[tokio::test]
async fn autotask_zone_lookup_then_ticket_contact_resource() {
    let (sandbox, client) = start().await;
    let zone = autotask_zone(&sandbox, &client).await;
    assert_eq!(
        zone,
        format!("{}/autotask/atservicesrest/", sandbox.base_url())
    );
    assert_eq!(zone, sandbox.autotask().zone_lookup_url);

    let (status, body) = json_of(
        autotask_get(&sandbox, &client, &zone, "Tickets/3001")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ticket = &body["item"];
    assert_eq!(ticket["id"], 3001);
    assert_eq!(ticket["ticketNumber"], "T20261125.0001");
    assert_eq!(ticket["title"], "Locked out of Outlook");
    assert_eq!(ticket["contactID"], AUTOTASK_CONTACT_DANA);
    assert_eq!(ticket["companyID"], 29683500);
    assert_eq!(ticket["assignedResourceID"], 29682885);
    assert!(ticket["status"].is_i64());

    let (status, body) = json_of(
        autotask_get(
            &sandbox,
            &client,
            &zone,
            &format!("Contacts/{AUTOTASK_CONTACT_LEE}"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let lee = &body["item"];
    assert_eq!(lee["firstName"], "Lee");
    assert_eq!(lee["emailAddress"], "lee.chen@contoso.example");
    assert_eq!(lee["emailAddress2"], "lee@contoso.example");
    assert_eq!(lee["emailAddress3"], Value::Null);
    assert_eq!(lee["mobilePhone"], "+1 206-555-0106");
    assert_eq!(lee["companyID"], 29683500);
    for field in ["phone", "alternatePhone"] {
        assert!(lee.get(field).is_some(), "{field}");
    }
    let (_, noel) = json_of(
        autotask_get(
            &sandbox,
            &client,
            &zone,
            &format!("Contacts/{AUTOTASK_CONTACT_NOEL}"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(noel["item"]["mobilePhone"], Value::Null);

    let (status, body) = json_of(
        autotask_get(&sandbox, &client, &zone, "Resources/29682885")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["item"]["email"], "jordan@northwind.example");
    assert_eq!(body["item"]["firstName"], "Jordan");

    // A missing id: 200 with a null item.
    let (status, body) = json_of(
        autotask_get(&sandbox, &client, &zone, "Tickets/999")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"item": null}));
}

#[tokio::test]
async fn autotask_refuses_unknown_users_and_bad_headers() {
    let (sandbox, client) = start().await;
    let info = sandbox.autotask();
    let (status, body) = json_of(
        client
            .get(format!(
                "{}v1.0/zoneInformation?user=nobody@example.com",
                info.zone_lookup_url
            ))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"errors": ["Zone information could not be determined"]})
    );

    let url = format!("{}v1.0/Tickets/3001", info.zone_lookup_url);
    let cases = [
        client.get(&url),
        client
            .get(&url)
            .header("ApiIntegrationCode", &info.integration_code)
            .header("UserName", &info.api_user)
            .header("Secret", "wrong"),
        client
            .get(&url)
            .header("ApiIntegrationCode", "WRONG")
            .header("UserName", &info.api_user)
            .header("Secret", "wrong"),
        client
            .get(&url)
            .header("UserName", &info.api_user)
            .header("Secret", &info.api_secret),
    ];
    for request in cases {
        let (status, body) = json_of(request.send().await.unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert!(body["errors"][0].as_str().is_some(), "{body}");
    }
    // The right user and secret with a wrong integration code: 403 with Autotask's text.
    let (status, body) = json_of(
        client
            .get(&url)
            .header("ApiIntegrationCode", "WRONG")
            .header("UserName", &info.api_user)
            .header("Secret", &info.api_secret)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["errors"][0]
            .as_str()
            .is_some_and(|e| e.contains("ApiIntegrationCode")),
        "{body}"
    );
}

#[tokio::test]
async fn autotask_notes_are_stored_and_shown_escaped() {
    let (sandbox, client) = start().await;
    let info = sandbox.autotask();
    let zone = autotask_zone(&sandbox, &client).await;
    let description = "Verified by Authenticator push. <script>alert(1)</script>";
    let post = |ticket: u64, body: Value| {
        client
            .post(format!("{zone}v1.0/Tickets/{ticket}/Notes"))
            .header("ApiIntegrationCode", &info.integration_code)
            .header("UserName", &info.api_user)
            .header("Secret", &info.api_secret)
            .json(&body)
            .send()
    };
    let (status, body) = json_of(
        post(
            AUTOTASK_TICKET_OMAR,
            json!({
                "title": "Vouch verification",
                "description": description,
                "noteType": AUTOTASK_INTERNAL_NOTE.note_type,
                "publish": AUTOTASK_INTERNAL_NOTE.publish,
            }),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["itemId"].is_u64());

    let notes = sandbox.notes(Psa::Autotask, AUTOTASK_TICKET_OMAR);
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].text, description);
    assert!(notes[0].internal);

    let (_, html) = page(&client, &info.ticket_screen_url(AUTOTASK_TICKET_OMAR)).await;
    assert!(html.contains("Vouch verification"));
    assert!(html.contains("Verified by Authenticator push. &lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("Internal Only"));
    assert!(!html.contains("<script>alert(1)"));

    // Another publish value is not internal; a note without a description is refused.
    let (status, _) = json_of(
        post(
            AUTOTASK_TICKET_OMAR,
            json!({"title": "t", "description": "d", "noteType": 1, "publish": 2}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!sandbox.notes(Psa::Autotask, AUTOTASK_TICKET_OMAR)[1].internal);
    let (status, body) = json_of(
        post(
            AUTOTASK_TICKET_OMAR,
            json!({"title": "t", "noteType": 1, "publish": 1}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body["errors"].is_array());
    let (status, _) = json_of(
        post(
            999,
            json!({"title": "t", "description": "d", "noteType": 1, "publish": 1}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(sandbox.notes(Psa::Autotask, AUTOTASK_TICKET_OMAR).len(), 2);
}

#[tokio::test]
async fn autotask_host_page_signs_the_insight_by_get_and_by_post() {
    let (sandbox, client) = start().await;
    let info = sandbox.autotask();
    sandbox.set_pod_urls(pod_urls());

    let (status, html) = page(&client, &info.ticket_screen_url(AUTOTASK_TICKET_KIM)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Kim Novak"));
    assert!(html.contains("Fabrikam"));
    let src = iframe_src(&html);
    assert!(
        src.starts_with(&format!("{POD_ORIGIN}/pods/autotask?")),
        "{src}"
    );
    let pairs = query_pairs(&src);
    assert_eq!(get(&pairs, "connection"), Some(CONNECTION));
    assert_eq!(get(&pairs, "ticketId"), Some("3008"));
    assert_eq!(get(&pairs, "resourceId"), Some("29682885"));
    assert_recent(get(&pairs, "ts").unwrap());
    assert_eq!(
        get(&pairs, "sig").unwrap(),
        expected_signature(&info.insight_secret, &pairs)
    );
    assert!(!html.contains("<form"));

    // ?post=1: a hidden form posting the same, signed fields to the pod path, into the iframe.
    let (status, html) = page(
        &client,
        &format!("{}?post=1", info.ticket_screen_url(AUTOTASK_TICKET_KIM)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let form_start = html
        .find("<form id=\"vouch-insight-form\"")
        .expect("a form");
    let form = &html[form_start..form_start + html[form_start..].find("</form>").unwrap()];
    assert!(form.contains("method=\"post\""));
    assert!(form.contains(&format!("action=\"{POD_ORIGIN}/pods/autotask\"")));
    assert!(form.contains("target=\"vouch-pod\""));
    assert!(form.contains("application/x-www-form-urlencoded"));
    let mut fields = Vec::new();
    for input in form.split("<input").skip(1) {
        let attr = |name: &str| {
            let marker = format!("{name}=\"");
            let start = input.find(&marker).unwrap() + marker.len();
            input[start..start + input[start..].find('"').unwrap()].replace("&amp;", "&")
        };
        fields.push((attr("name"), attr("value")));
    }
    assert_eq!(get(&fields, "connection"), Some(CONNECTION));
    assert_eq!(get(&fields, "ticketId"), Some("3008"));
    assert_eq!(get(&fields, "resourceId"), Some("29682885"));
    assert_eq!(
        get(&fields, "sig").unwrap(),
        expected_signature(&info.insight_secret, &fields)
    );
    assert!(html.contains("<iframe id=\"vouch-pod\" name=\"vouch-pod\""));
    assert!(html.contains("document.getElementById(\"vouch-insight-form\").submit()"));
}

// ---------------------------------------------------------------------------------------------
// Recording, faults, index
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn faults_and_request_counts() {
    let (sandbox, client) = start().await;
    sandbox.inject_fault(
        Psa::ConnectWise,
        "service/tickets/1001",
        PsaFault::Status {
            status: 429,
            body: r#"{"code":"TooManyRequests","message":"Slow down"}"#.to_owned(),
            retry_after: Some(7),
        },
        1,
    );
    let response = cw_get(&sandbox, &client, "service/tickets/1001")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "7");
    let (_, body) = json_of(response).await;
    assert_eq!(body["code"], "TooManyRequests");
    // Used up: the next call succeeds.
    let response = cw_get(&sandbox, &client, "service/tickets/1001")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        sandbox.count(Psa::ConnectWise, "get", "/service/tickets/1001"),
        2
    );
    assert_eq!(sandbox.count(Psa::HaloPsa, "GET", "/"), 0);

    // Host pages are never faulted (but are recorded).
    sandbox.inject_fault(Psa::HaloPsa, "2001", PsaFault::Hang, 5);
    let (status, _) = page(&client, &sandbox.halopsa().ticket_screen_url(2001)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sandbox.count(Psa::HaloPsa, "GET", "/halo/ticket/2001"), 1);

    // Hang: the client times out.
    let token = halo_token(&sandbox, &client).await;
    let started = std::time::Instant::now();
    let result = client
        .get(format!(
            "{}/api/Tickets/2001",
            sandbox.halopsa().resource_url
        ))
        .bearer_auth(&token)
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(result.is_err_and(|e| e.is_timeout()));
    assert!(started.elapsed() < Duration::from_secs(3));

    sandbox.clear_requests();
    assert_eq!(sandbox.count(Psa::ConnectWise, "GET", ""), 0);
    assert!(sandbox.requests().is_empty());
}

#[tokio::test]
async fn index_page_links_every_ticket_screen() {
    let (sandbox, client) = start().await;
    let (status, html) = page(&client, &format!("{}/", sandbox.base_url())).await;
    assert_eq!(status, StatusCode::OK);
    for link in [
        "/cw/ticket/1001",
        "/halo/ticket/2008",
        "/autotask/ticket/3004",
    ] {
        assert!(html.contains(link), "{link}");
    }
}
