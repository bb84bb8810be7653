//! The Microsoft sandbox, tested through real HTTP: tokens, Graph, the MFA connector, the
//! consent page, the phone page, faults and request recording.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use vouch::sandbox::microsoft::*;

const TENANT: &str = DEMO_TENANT_ID;

async fn start() -> (MicrosoftSandbox, reqwest::Client) {
    let sandbox = MicrosoftSandbox::start().await.expect("sandbox starts");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    (sandbox, client)
}

/// `POST /login/{tenant}/oauth2/v2.0/token`; returns the status and JSON body.
async fn token_v2(
    sandbox: &MicrosoftSandbox,
    client: &reqwest::Client,
    tenant: &str,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let response = client
        .post(format!("{}{tenant}/oauth2/v2.0/token", sandbox.login_url()))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn graph_token(
    sandbox: &MicrosoftSandbox,
    client: &reqwest::Client,
    tenant: &str,
    client_id: &str,
    secret: &str,
) -> String {
    let scope = format!("{GRAPH_AUDIENCE}/.default");
    let (status, body) = token_v2(
        sandbox,
        client,
        tenant,
        &[
            ("client_id", client_id),
            ("client_secret", secret),
            ("grant_type", "client_credentials"),
            ("scope", &scope),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn identity_token(sandbox: &MicrosoftSandbox, client: &reqwest::Client) -> String {
    graph_token(
        sandbox,
        client,
        TENANT,
        IDENTITY_APP_CLIENT_ID,
        IDENTITY_APP_SECRET,
    )
    .await
}

/// Registers Vouch's app in the demo tenant (as consent would) and gets a Graph token.
async fn vouch_token(sandbox: &MicrosoftSandbox, client: &reqwest::Client) -> String {
    let (client_id, secret) = sandbox.vouch_app();
    sandbox.add_app(SandboxApp {
        client_id: client_id.clone(),
        secret: secret.clone(),
        secret_expires_at: None,
        tenant_id: TENANT.to_owned(),
        permissions: VOUCH_APP_PERMISSIONS
            .iter()
            .map(|p| p.to_string())
            .collect(),
    });
    graph_token(sandbox, client, TENANT, &client_id, &secret).await
}

async fn graph(
    sandbox: &MicrosoftSandbox,
    client: &reqwest::Client,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = client.request(method, format!("{}{path}", sandbox.graph_url()));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let json = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    (status, headers, json)
}

fn assert_graph_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    let inner = &body["error"]["innerError"];
    assert!(
        inner["request-id"]
            .as_str()
            .is_some_and(|id| id.len() == 36),
        "{body}"
    );
    assert!(inner["client-request-id"].as_str().is_some(), "{body}");
    assert!(inner["date"].as_str().is_some(), "{body}");
}

fn assert_login_error(body: &Value, error: &str, code: u64) {
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"], json!([code]), "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with(&format!("AADSTS{code}: ")),
        "{body}"
    );
    for field in ["timestamp", "trace_id", "correlation_id"] {
        assert!(body[field].as_str().is_some(), "{field} in {body}");
    }
}

// ---------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn token_success_by_guid_and_by_domain() {
    let (sandbox, client) = start().await;
    for tenant in [TENANT, "contoso.example", "contoso.onmicrosoft.com"] {
        let (status, body) = token_v2(
            &sandbox,
            &client,
            tenant,
            &[
                ("client_id", IDENTITY_APP_CLIENT_ID),
                ("client_secret", IDENTITY_APP_SECRET),
                ("grant_type", "client_credentials"),
                ("scope", "https://graph.microsoft.com/.default"),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 3599);
        assert!(body["access_token"].as_str().unwrap().len() >= 32);
        assert!(body.get("refresh_token").is_none());
    }
}

#[tokio::test]
async fn token_errors_have_microsofts_codes() {
    let (sandbox, client) = start().await;
    let good = |id: &'static str, secret: &'static str| {
        vec![
            ("client_id", id),
            ("client_secret", secret),
            ("grant_type", "client_credentials"),
            ("scope", "https://graph.microsoft.com/.default"),
        ]
    };

    let (status, body) = token_v2(
        &sandbox,
        &client,
        "nowhere.example",
        &good(IDENTITY_APP_CLIENT_ID, IDENTITY_APP_SECRET),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_login_error(&body, "invalid_request", 90002);

    // Registered in Contoso only.
    let (status, body) = token_v2(
        &sandbox,
        &client,
        NO_P1_TENANT_ID,
        &good(IDENTITY_APP_CLIENT_ID, IDENTITY_APP_SECRET),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_login_error(&body, "unauthorized_client", 700016);

    // Vouch's app before any consent.
    let (status, body) = token_v2(
        &sandbox,
        &client,
        TENANT,
        &good(VOUCH_APP_CLIENT_ID, VOUCH_APP_SECRET),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_login_error(&body, "unauthorized_client", 700016);

    let (status, body) = token_v2(
        &sandbox,
        &client,
        TENANT,
        &good(IDENTITY_APP_CLIENT_ID, "not-the-secret"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_login_error(&body, "invalid_client", 7000215);

    sandbox.add_app(SandboxApp {
        client_id: "11111111-2222-3333-4444-555555555555".to_owned(),
        secret: "old-secret".to_owned(),
        secret_expires_at: Some(chrono::Utc::now() - chrono::Duration::days(1)),
        tenant_id: "contoso.example".to_owned(),
        permissions: vec!["User.Read.All".to_owned()],
    });
    let (status, body) = token_v2(
        &sandbox,
        &client,
        TENANT,
        &good("11111111-2222-3333-4444-555555555555", "old-secret"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_login_error(&body, "invalid_client", 7000222);

    let (status, body) = token_v2(
        &sandbox,
        &client,
        TENANT,
        &[
            ("client_id", IDENTITY_APP_CLIENT_ID),
            ("client_secret", IDENTITY_APP_SECRET),
            ("grant_type", "client_credentials"),
            ("scope", "https://graph.microsoft.com/User.Read.All"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_login_error(&body, "invalid_scope", 70011);

    let (status, body) = token_v2(
        &sandbox,
        &client,
        TENANT,
        &[("client_id", IDENTITY_APP_CLIENT_ID)],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_login_error(&body, "invalid_request", 900144);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("'grant_type'")
    );

    // Not a form at all: still the same shape, never a panic.
    let response = client
        .post(format!("{}{TENANT}/oauth2/v2.0/token", sandbox.login_url()))
        .body(vec![0xff, 0x00, 0x7b])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_login_error(&body, "invalid_request", 900144);
}

// ---------------------------------------------------------------------------------------
// Graph
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn graph_refuses_missing_tokens_missing_permissions_and_missing_users() {
    let (sandbox, client) = start().await;
    let (status, headers, body) = graph(
        &sandbox,
        &client,
        reqwest::Method::GET,
        "v1.0/users/dana@contoso.example",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_graph_error(&body, "InvalidAuthenticationToken");
    assert_eq!(body["error"]["message"], "Access token is empty.");
    assert!(headers.contains_key("request-id"));

    let (status, _, body) = graph(
        &sandbox,
        &client,
        reqwest::Method::GET,
        "v1.0/users/dana@contoso.example",
        Some("made-up-token"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_graph_error(&body, "InvalidAuthenticationToken");

    sandbox.add_app(SandboxApp {
        client_id: "22222222-0000-4000-8000-000000000000".to_owned(),
        secret: "org-only".to_owned(),
        secret_expires_at: None,
        tenant_id: TENANT.to_owned(),
        permissions: vec!["Organization.Read.All".to_owned()],
    });
    let weak = graph_token(
        &sandbox,
        &client,
        TENANT,
        "22222222-0000-4000-8000-000000000000",
        "org-only",
    )
    .await;
    let (status, _, body) = graph(
        &sandbox,
        &client,
        reqwest::Method::GET,
        "v1.0/users/dana@contoso.example",
        Some(&weak),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_graph_error(&body, "Authorization_RequestDenied");
    assert_eq!(
        body["error"]["message"],
        "Insufficient privileges to complete the operation."
    );
    let (status, _, _) = graph(
        &sandbox,
        &client,
        reqwest::Method::GET,
        "v1.0/subscribedSkus",
        Some(&weak),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let token = identity_token(&sandbox, &client).await;
    let (status, _, body) = graph(
        &sandbox,
        &client,
        reqwest::Method::GET,
        "v1.0/users/nobody@contoso.example",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_graph_error(&body, "Request_ResourceNotFound");
    assert_eq!(
        body["error"]["message"],
        "Resource 'nobody@contoso.example' does not exist or one of its queried \
         reference-property objects are not present."
    );

    // A user of another tenant is not visible with this tenant's token.
    let (status, _, _) = graph(
        &sandbox,
        &client,
        reqwest::Method::GET,
        "v1.0/users/kim@fabrikam.example",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn users_by_upn_id_mail_and_proxy_address() {
    let (sandbox, client) = start().await;
    let token = identity_token(&sandbox, &client).await;
    let select =
        "id,userPrincipalName,displayName,mail,accountEnabled,onPremisesSyncEnabled,mobilePhone";
    let (status, _, dana) = graph(
        &sandbox,
        &client,
        reqwest::Method::GET,
        &format!("v1.0/users/Dana@Contoso.example?$select={select}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{dana}");
    assert_eq!(dana["userPrincipalName"], "dana@contoso.example");
    assert_eq!(dana["displayName"], "Dana Whitfield");
    assert_eq!(dana["accountEnabled"], true);
    assert_eq!(dana["onPremisesSyncEnabled"], Value::Null);
    assert_eq!(dana["mobilePhone"], "+1 2065550101");
    assert!(dana.get("proxyAddresses").is_none(), "not selected");

    // By object id; without $select Graph leaves accountEnabled out.
    let id = dana["id"].as_str().unwrap();
    let (status, _, by_id) = graph(
        &sandbox,
        &client,
        reqwest::Method::GET,
        &format!("v1.0/users/{id}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_id["mail"], "dana@contoso.example");
    assert!(by_id.get("accountEnabled").is_none());

    let (status, _, omar) = graph(
        &sandbox,
        &client,
        reqwest::Method::GET,
        "v1.0/users/omar@contoso.example?$select=onPremisesSyncEnabled",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(omar["onPremisesSyncEnabled"], true);

    let response = client
        .get(format!("{}v1.0/users", sandbox.graph_url()))
        .query(&[("$filter", "mail eq 'LEE.CHEN@contoso.example'")])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["value"].as_array().unwrap().len(), 1);
    assert_eq!(body["value"][0]["userPrincipalName"], "lee@contoso.example");

    // The proxy-address query is an advanced query: refused without both
    // ConsistencyLevel: eventual and $count=true.
    let filter = "proxyAddresses/any(x:x eq 'smtp:lee@contoso.example')";
    for (eventual, count) in [(false, false), (true, false), (false, true)] {
        let mut request = client
            .get(format!("{}v1.0/users", sandbox.graph_url()))
            .query(&[("$filter", filter)])
            .bearer_auth(&token);
        if count {
            request = request.query(&[("$count", "true")]);
        }
        if eventual {
            request = request.header("ConsistencyLevel", "eventual");
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = response.json().await.unwrap();
        assert_graph_error(&body, "Request_UnsupportedQuery");
    }
    let response = client
        .get(format!("{}v1.0/users", sandbox.graph_url()))
        .query(&[
            ("$filter", filter),
            ("$count", "true"),
            ("$select", "id,userPrincipalName"),
        ])
        .header("ConsistencyLevel", "eventual")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["@odata.count"], 1);
    assert_eq!(body["value"][0]["userPrincipalName"], "lee@contoso.example");

    // A filter it does not understand: 400, no panic.
    let response = client
        .get(format!("{}v1.0/users", sandbox.graph_url()))
        .query(&[("$filter", "mail eq 'unterminated")])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let response = client
        .get(format!("{}v1.0/users", sandbox.graph_url()))
        .query(&[("$top", "1")])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["value"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn methods_preferences_roles_licences_and_organization() {
    let (sandbox, client) = start().await;
    let token = identity_token(&sandbox, &client).await;
    let get = |path: String| {
        let (sandbox, client, token) = (sandbox.clone(), client.clone(), token.clone());
        async move {
            let (status, _, body) = graph(
                &sandbox,
                &client,
                reqwest::Method::GET,
                &path,
                Some(&token),
                None,
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            body
        }
    };
    let phones = get("v1.0/users/dana@contoso.example/authentication/phoneMethods".into()).await;
    assert_eq!(phones["value"][0]["phoneNumber"], "+1 2065550101");
    assert_eq!(phones["value"][0]["phoneType"], "mobile");
    assert_eq!(phones["value"][0]["smsSignInState"], "notConfigured");
    let none = get("v1.0/users/noel@contoso.example/authentication/phoneMethods".into()).await;
    assert_eq!(none["value"], json!([]));
    let apps =
        get("v1.0/users/dana@contoso.example/authentication/microsoftAuthenticatorMethods".into())
            .await;
    assert_eq!(apps["value"].as_array().unwrap().len(), 1);

    let sam = get("beta/users/sam@contoso.example/authentication/signInPreferences".into()).await;
    assert_eq!(sam["userPreferredMethodForSecondaryAuthentication"], "sms");
    let (status, _, _) = graph(
        &sandbox,
        &client,
        reqwest::Method::PATCH,
        "beta/users/sam@contoso.example/authentication/signInPreferences",
        Some(&token),
        Some(json!({"userPreferredMethodForSecondaryAuthentication": "push"})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let sam = get("beta/users/sam@contoso.example/authentication/signInPreferences".into()).await;
    assert_eq!(sam["userPreferredMethodForSecondaryAuthentication"], "push");
    let (status, _, body) = graph(
        &sandbox,
        &client,
        reqwest::Method::PATCH,
        "beta/users/sam@contoso.example/authentication/signInPreferences",
        Some(&token),
        Some(json!({"userPreferredMethodForSecondaryAuthentication": "carrier-pigeon"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_graph_error(&body, "BadRequest");

    let roles =
        get("v1.0/users/ada@contoso.example/memberOf/microsoft.graph.directoryRole".into()).await;
    assert_eq!(
        roles["value"][0]["@odata.type"],
        "#microsoft.graph.directoryRole"
    );
    assert_eq!(
        roles["value"][0]["roleTemplateId"],
        GLOBAL_ADMIN_ROLE_TEMPLATE_ID
    );
    let roles =
        get("v1.0/users/dana@contoso.example/memberOf/microsoft.graph.directoryRole".into()).await;
    assert_eq!(roles["value"], json!([]));

    let skus = get("v1.0/subscribedSkus".into()).await;
    assert_eq!(skus["value"][0]["skuPartNumber"], "SPB");
    let plans = skus["value"][0]["servicePlans"].as_array().unwrap();
    assert!(plans.iter().any(
        |p| p["servicePlanName"] == "AAD_PREMIUM" && p["servicePlanId"] == AAD_PREMIUM_PLAN_ID
    ));

    let org = get("v1.0/organization".into()).await;
    assert_eq!(org["value"][0]["id"], TENANT);
    assert_eq!(org["value"][0]["displayName"], "Contoso (demo customer)");
    let domains = org["value"][0]["verifiedDomains"].as_array().unwrap();
    assert!(
        domains
            .iter()
            .any(|d| d["name"] == "contoso.example" && d["isDefault"] == true)
    );

    // Fabrikam has no P1.
    sandbox.add_app(SandboxApp {
        client_id: "33333333-0000-4000-8000-000000000000".to_owned(),
        secret: "fab".to_owned(),
        secret_expires_at: None,
        tenant_id: NO_P1_TENANT_ID.to_owned(),
        permissions: vec!["Organization.Read.All".to_owned()],
    });
    let fab = graph_token(
        &sandbox,
        &client,
        NO_P1_TENANT_ID,
        "33333333-0000-4000-8000-000000000000",
        "fab",
    )
    .await;
    let (_, _, skus) = graph(
        &sandbox,
        &client,
        reqwest::Method::GET,
        "v1.0/subscribedSkus",
        Some(&fab),
        None,
    )
    .await;
    assert_eq!(skus["value"][0]["skuPartNumber"], "O365_BUSINESS_PREMIUM");
    let plans = skus["value"][0]["servicePlans"].as_array().unwrap();
    assert!(!plans.iter().any(|p| p["servicePlanName"] == "AAD_PREMIUM"));
}

#[tokio::test]
async fn password_reset_is_stored_and_refused_where_microsoft_refuses() {
    let (sandbox, client) = start().await;
    let token = identity_token(&sandbox, &client).await;
    let patch = |upn: &'static str, password: &'static str| {
        let (sandbox, client, token) = (sandbox.clone(), client.clone(), token.clone());
        async move {
            let (status, _, body) = graph(
                &sandbox,
                &client,
                reqwest::Method::PATCH,
                &format!("v1.0/users/{upn}"),
                Some(&token),
                Some(json!({"passwordProfile": {
                    "password": password,
                    "forceChangePasswordNextSignIn": true
                }})),
            )
            .await;
            (status, body)
        }
    };

    let (status, body) = patch("dana@contoso.example", "Tulip-Harbor-42").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        sandbox.user_password(TENANT, "dana@contoso.example"),
        Some(("Tulip-Harbor-42".to_owned(), true))
    );
    assert_eq!(sandbox.user_password(TENANT, "sam@contoso.example"), None);

    let (status, body) = patch("ada@contoso.example", "Tulip-Harbor-42").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_graph_error(&body, "Authorization_RequestDenied");
    assert_eq!(sandbox.user_password(TENANT, "ada@contoso.example"), None);

    let (status, body) = patch("omar@contoso.example", "Tulip-Harbor-42").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_graph_error(&body, "Request_BadRequest");
    assert_eq!(
        body["error"]["message"],
        "Unable to update the specified properties for on-premises mastered Directory Sync \
         objects or objects currently undergoing migration."
    );

    for weak in ["short1A", "alllowercaseletters", "Has-dana-inside-1"] {
        let (status, body) = patch("dana@contoso.example", weak).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{weak}");
        assert_graph_error(&body, PASSWORD_COMPLEXITY_ERROR_CODE);
        assert_eq!(
            body["error"]["message"],
            "The specified password does not comply with password complexity requirements. \
             Please provide a different password."
        );
    }
    assert_eq!(
        sandbox.user_password(TENANT, "dana@contoso.example"),
        Some(("Tulip-Harbor-42".to_owned(), true)),
        "refused passwords leave the last good one"
    );

    let (status, _, body) = graph(
        &sandbox,
        &client,
        reqwest::Method::PATCH,
        "v1.0/users/nobody@contoso.example",
        Some(&token),
        Some(json!({"passwordProfile": {"password": "Tulip-Harbor-42"}})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_graph_error(&body, "Request_ResourceNotFound");

    // Malformed JSON: Graph's BadRequest, no panic.
    let response = client
        .patch(format!(
            "{}v1.0/users/dana@contoso.example",
            sandbox.graph_url()
        ))
        .bearer_auth(&token)
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_graph_error(&body, "BadRequest");

    // Without a password permission: 403.
    sandbox.add_app(SandboxApp {
        client_id: "44444444-0000-4000-8000-000000000000".to_owned(),
        secret: "reader".to_owned(),
        secret_expires_at: None,
        tenant_id: TENANT.to_owned(),
        permissions: vec!["User.Read.All".to_owned()],
    });
    let reader = graph_token(
        &sandbox,
        &client,
        TENANT,
        "44444444-0000-4000-8000-000000000000",
        "reader",
    )
    .await;
    let (status, _, _) = graph(
        &sandbox,
        &client,
        reqwest::Method::PATCH,
        "v1.0/users/dana@contoso.example",
        Some(&reader),
        Some(json!({"passwordProfile": {"password": "Tulip-Harbor-42"}})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

// ---------------------------------------------------------------------------------------
// The MFA connector
// ---------------------------------------------------------------------------------------

/// Ensures the MFA client's service principal, adds a secret, returns it.
async fn connector_secret(sandbox: &MicrosoftSandbox, client: &reqwest::Client) -> String {
    let token = vouch_token(sandbox, client).await;
    let response = client
        .get(format!("{}v1.0/servicePrincipals", sandbox.graph_url()))
        .query(&[
            ("$filter", format!("appId eq '{MFA_CLIENT_APP_ID}'")),
            ("$select", "id,appId".to_owned()),
        ])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let found: Value = response.json().await.unwrap();
    assert_eq!(found["value"], json!([]), "no service principal at first");

    let (status, _, created) = graph(
        sandbox,
        client,
        reqwest::Method::POST,
        "v1.0/servicePrincipals",
        Some(&token),
        Some(json!({"appId": MFA_CLIENT_APP_ID})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["appId"], MFA_CLIENT_APP_ID);
    let sp_id = created["id"].as_str().unwrap().to_owned();

    let (status, _, again) = graph(
        sandbox,
        client,
        reqwest::Method::POST,
        "v1.0/servicePrincipals",
        Some(&token),
        Some(json!({"appId": MFA_CLIENT_APP_ID})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");

    let end = (chrono::Utc::now() + chrono::Duration::days(365)).to_rfc3339();
    let (status, _, password) = graph(
        sandbox,
        client,
        reqwest::Method::POST,
        &format!("v1.0/servicePrincipals/{sp_id}/addPassword"),
        Some(&token),
        Some(json!({"passwordCredential": {"displayName": "Vouch connector", "endDateTime": end}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{password}");
    assert_eq!(password["displayName"], "Vouch connector");
    assert_eq!(password["customKeyIdentifier"], Value::Null);
    for field in ["keyId", "hint", "startDateTime", "endDateTime"] {
        assert!(password[field].as_str().is_some(), "{field}: {password}");
    }
    password["secretText"].as_str().unwrap().to_owned()
}

async fn connector_token_response(
    sandbox: &MicrosoftSandbox,
    client: &reqwest::Client,
    client_id: &str,
    secret: &str,
) -> (StatusCode, Value) {
    let response = client
        .post(format!("{}{TENANT}/oauth2/token", sandbox.login_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("resource", MFA_CONNECTOR_RESOURCE),
        ])
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn connector_token(sandbox: &MicrosoftSandbox, client: &reqwest::Client) -> String {
    let secret = connector_secret(sandbox, client).await;
    let (status, body) =
        connector_token_response(sandbox, client, MFA_CLIENT_APP_ID, &secret).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The v1 endpoint sends its numbers as strings.
    assert_eq!(body["expires_in"], "3599");
    body["access_token"].as_str().unwrap().to_owned()
}

#[derive(Debug, Deserialize)]
struct PushResponse {
    #[serde(rename = "Result")]
    result: PushResult,
    #[serde(rename = "AuthenticationResult")]
    authentication_result: bool,
    #[serde(rename = "UserPrincipalName")]
    user_principal_name: String,
    #[serde(rename = "SessionId")]
    session_id: String,
}

#[derive(Debug, Deserialize)]
struct PushResult {
    #[serde(rename = "Value")]
    value: String,
}

fn push_body(upn: &str) -> String {
    format!(
        r#"<BeginTwoWayAuthenticationRequest>
  <Version>1.0</Version>
  <UserPrincipalName>{upn}</UserPrincipalName>
  <Lcid>en-us</Lcid>
  <AuthenticationMethodProperties xmlns:a="http://schemas.microsoft.com/2003/10/Serialization/Arrays">
    <a:KeyValueOfstringstring><a:Key>OverrideVoiceOtp</a:Key><a:Value>false</a:Value></a:KeyValueOfstringstring>
  </AuthenticationMethodProperties>
  <ContextId>{}</ContextId>
  <SyncCall>true</SyncCall>
  <RequireUserMatch>true</RequireUserMatch>
  <CallerName>radius</CallerName>
  <CallerIP>UNKNOWN:</CallerIP>
</BeginTwoWayAuthenticationRequest>"#,
        uuid::Uuid::new_v4()
    )
}

async fn push(
    sandbox: &MicrosoftSandbox,
    client: &reqwest::Client,
    token: &str,
    upn: &str,
) -> PushResponse {
    let response = client
        .post(format!(
            "{}BeginTwoWayAuthentication",
            sandbox.mfa_connector_url()
        ))
        .bearer_auth(token)
        .header("Content-Type", "application/xml")
        .body(push_body(upn))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    quick_xml::de::from_str(&text).unwrap_or_else(|err| panic!("{err}: {text}"))
}

#[tokio::test]
async fn connector_secret_token_then_scripted_pushes() {
    let (sandbox, client) = start().await;
    let token = connector_token(&sandbox, &client).await;

    sandbox.script_push("dana@contoso.example", PushScript::Approve);
    let approved = push(&sandbox, &client, &token, "dana@contoso.example").await;
    assert_eq!(approved.result.value, "Success");
    assert!(approved.authentication_result);
    assert_eq!(approved.user_principal_name, "dana@contoso.example");
    assert!(!approved.session_id.is_empty());

    sandbox.script_push("dana@contoso.example", PushScript::Deny);
    sandbox.script_push("dana@contoso.example", PushScript::ReportFraud);
    sandbox.script_push(
        "dana@contoso.example",
        PushScript::ApproveWithOtherUpn("mallory@contoso.example".into()),
    );
    sandbox.script_push(
        "dana@contoso.example",
        PushScript::ApproveAfter(Duration::from_millis(100)),
    );
    let denied = push(&sandbox, &client, &token, "dana@contoso.example").await;
    assert_eq!(denied.result.value, "PhoneAppDenied");
    assert!(!denied.authentication_result);
    let fraud = push(&sandbox, &client, &token, "dana@contoso.example").await;
    assert_eq!(fraud.result.value, "PhoneAppFraudReported");
    assert!(!fraud.authentication_result);
    let other = push(&sandbox, &client, &token, "dana@contoso.example").await;
    assert_eq!(other.result.value, "Success");
    assert!(other.authentication_result);
    assert_eq!(other.user_principal_name, "mallory@contoso.example");
    let later = push(&sandbox, &client, &token, "dana@contoso.example").await;
    assert_eq!(later.result.value, "Success");
    assert!(later.authentication_result);
    assert!(sandbox.pending_pushes().is_empty());

    // A Graph token is not a connector token, and no token at all is refused.
    let graph_token = identity_token(&sandbox, &client).await;
    for auth in [Some(graph_token.as_str()), None] {
        let mut request = client
            .post(format!(
                "{}BeginTwoWayAuthentication",
                sandbox.mfa_connector_url()
            ))
            .header("Content-Type", "application/xml")
            .body(push_body("dana@contoso.example"));
        if let Some(auth) = auth {
            request = request.bearer_auth(auth);
        }
        assert_eq!(
            request.send().await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }

    // Malformed XML: 400, no panic.
    let response = client
        .post(format!(
            "{}BeginTwoWayAuthentication",
            sandbox.mfa_connector_url()
        ))
        .bearer_auth(&token)
        .header("Content-Type", "application/xml")
        .body("<BeginTwoWayAuthenticationRequest><UserPrincipalName>")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn connector_token_errors_and_secret_propagation() {
    let (sandbox, client) = start().await;
    sandbox.set_credential_propagation_delay(Duration::from_millis(300));
    let secret = connector_secret(&sandbox, &client).await;
    let (status, body) =
        connector_token_response(&sandbox, &client, MFA_CLIENT_APP_ID, &secret).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_login_error(&body, "invalid_client", 7000215);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let (status, body) =
        connector_token_response(&sandbox, &client, MFA_CLIENT_APP_ID, &secret).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, body) =
        connector_token_response(&sandbox, &client, MFA_CLIENT_APP_ID, "wrong-secret").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_login_error(&body, "invalid_client", 7000215);

    // The connector trusts only the MFA client app.
    let (status, body) = connector_token_response(
        &sandbox,
        &client,
        IDENTITY_APP_CLIENT_ID,
        IDENTITY_APP_SECRET,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // The connector's address is not its identifier: Entra refuses a resource named by the
    // address a client sends its requests to (here, this sandbox's).
    let response = client
        .post(format!(
            "{}contoso.example/oauth2/token",
            sandbox.login_url()
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", MFA_CLIENT_APP_ID),
            ("client_secret", secret.as_str()),
            ("resource", &format!("{}/mfa", sandbox.base_url())),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_login_error(&body, "invalid_resource", 500011);

    let response = client
        .post(format!("{}{TENANT}/oauth2/token", sandbox.login_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", MFA_CLIENT_APP_ID),
            ("client_secret", secret.as_str()),
            ("resource", "https://graph.microsoft.com"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_login_error(&body, "invalid_resource", 500011);
}

/// Waits (briefly) until a push for `upn` is pending.
async fn wait_for_pending(sandbox: &MicrosoftSandbox, upn: &str) -> PendingPush {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        if let Some(push) = sandbox.pending_pushes().into_iter().find(|p| p.upn == upn) {
            return push;
        }
        assert!(Instant::now() < deadline, "no pending push for {upn}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_push_waits_for_the_phone() {
    let (sandbox, client) = start().await;
    let token = connector_token(&sandbox, &client).await;

    let call = tokio::spawn({
        let (sandbox, client, token) = (sandbox.clone(), client.clone(), token.clone());
        async move { push(&sandbox, &client, &token, "dana@contoso.example").await }
    });
    let pending = wait_for_pending(&sandbox, "dana@contoso.example").await;
    assert_eq!(pending.tenant_id, TENANT);
    assert!(sandbox.answer_push(&pending.id, PushAnswer::Approve));
    assert!(
        !sandbox.answer_push(&pending.id, PushAnswer::Deny),
        "answered once"
    );
    let response = call.await.unwrap();
    assert_eq!(response.result.value, "Success");
    assert!(response.authentication_result);
    assert!(sandbox.pending_pushes().is_empty());

    // The same through the phone page.
    let call = tokio::spawn({
        let (sandbox, client, token) = (sandbox.clone(), client.clone(), token.clone());
        async move { push(&sandbox, &client, &token, "lee@contoso.example").await }
    });
    let pending = wait_for_pending(&sandbox, "lee@contoso.example").await;
    let page = client
        .get(sandbox.phone_url())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Approve sign-in?"));
    assert!(page.contains("Vouch verification for <strong>lee@contoso.example</strong>"));
    assert!(page.contains(&pending.id));
    let answered = client
        .post(format!("{}/answer", sandbox.phone_url()))
        .form(&[("id", pending.id.as_str()), ("answer", "deny")])
        .send()
        .await
        .unwrap();
    assert_eq!(answered.status(), StatusCode::SEE_OTHER);
    let response = call.await.unwrap();
    assert_eq!(response.result.value, "PhoneAppDenied");
    assert!(!response.authentication_result);
}

#[tokio::test]
async fn pushes_that_cannot_prompt_answer_at_once() {
    let (sandbox, client) = start().await;
    let token = connector_token(&sandbox, &client).await;
    let started = Instant::now();

    // Default method SMS: "Success" but NOT approved, and no prompt.
    let sam = push(&sandbox, &client, &token, "sam@contoso.example").await;
    assert_eq!(sam.result.value, "Success");
    assert!(!sam.authentication_result);

    let cases = [
        ("noel@contoso.example", "ProofDataNotFound"),
        ("blocked@contoso.example", "UserIsBlocked"),
        ("nobody@contoso.example", "UserNotFound"),
        // A user of another tenant is unknown to this tenant's connector token.
        ("kim@fabrikam.example", "UserNotFound"),
    ];
    for (upn, value) in cases {
        let response = push(&sandbox, &client, &token, upn).await;
        assert_eq!(response.result.value, value, "{upn}");
        assert!(!response.authentication_result, "{upn}");
    }
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(sandbox.pending_pushes().is_empty());

    // Once the default is push, Sam gets prompted.
    sandbox.set_user_sign_in_preference(TENANT, "sam@contoso.example", "push");
    sandbox.script_push("SAM@contoso.example", PushScript::Approve);
    let sam = push(&sandbox, &client, &token, "sam@contoso.example").await;
    assert!(sam.authentication_result);
}

#[tokio::test]
async fn an_unanswered_push_times_out() {
    let (sandbox, client) = start().await;
    let token = connector_token(&sandbox, &client).await;
    sandbox.set_push_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let response = push(&sandbox, &client, &token, "dana@contoso.example").await;
    assert_eq!(response.result.value, "PhoneAppNoResponse");
    assert!(!response.authentication_result);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(sandbox.pending_pushes().is_empty());

    sandbox.script_push("dana@contoso.example", PushScript::NeverAnswer);
    let response = push(&sandbox, &client, &token, "dana@contoso.example").await;
    assert_eq!(response.result.value, "PhoneAppNoResponse");
}

// ---------------------------------------------------------------------------------------
// Admin consent
// ---------------------------------------------------------------------------------------

fn redirect_query(response: &reqwest::Response) -> Vec<(String, String)> {
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()["location"].to_str().unwrap();
    let url = url::Url::parse(location).unwrap();
    assert!(
        location.starts_with("https://vouch.example/consent/callback?"),
        "{location}"
    );
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn admin_consent_accept_refuse_and_cancel() {
    let (sandbox, client) = start().await;
    let redirect_uri = "https://vouch.example/consent/callback";
    let state = "csrf & state=1";
    let page = client
        .get(format!("{}common/v2.0/adminconsent", sandbox.login_url()))
        .query(&[
            ("client_id", VOUCH_APP_CLIENT_ID),
            ("scope", "https://graph.microsoft.com/.default"),
            ("redirect_uri", redirect_uri),
            ("state", state),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Permissions requested"));
    assert!(html.contains("Vouch"));
    assert!(html.contains("User-PasswordProfile.ReadWrite.All"));
    assert!(html.contains("Global Administrator"));
    assert!(html.contains("Cloud Application Administrator"));
    assert!(html.contains("csrf &amp; state=1"), "state is escaped");
    assert!(html.contains(NO_P1_TENANT_ID), "common lists every tenant");

    let decide = |tenant: &'static str, role: &'static str, decision: &'static str| {
        let (sandbox, client) = (sandbox.clone(), client.clone());
        async move {
            client
                .post(format!(
                    "{}common/v2.0/adminconsent/decision",
                    sandbox.login_url()
                ))
                .form(&[
                    ("client_id", VOUCH_APP_CLIENT_ID),
                    ("scope", "https://graph.microsoft.com/.default"),
                    ("redirect_uri", redirect_uri),
                    ("state", state),
                    ("tenant", tenant),
                    ("role", role),
                    ("decision", decision),
                ])
                .send()
                .await
                .unwrap()
        }
    };

    let refused = decide(TENANT, "user", "accept").await;
    let pairs = redirect_query(&refused);
    assert_eq!(param(&pairs, "error"), Some("access_denied"));
    assert_eq!(
        param(&pairs, "error_description"),
        Some("AADSTS90094: The grant requires admin permission.")
    );
    assert_eq!(param(&pairs, "state"), Some(state));
    assert!(sandbox.consented_tenants(VOUCH_APP_CLIENT_ID).is_empty());

    let cancelled = decide(TENANT, "global_admin", "cancel").await;
    let pairs = redirect_query(&cancelled);
    assert_eq!(param(&pairs, "error"), Some("access_denied"));
    assert_eq!(
        param(&pairs, "error_description"),
        Some("AADSTS65004: User declined to consent to access the app.")
    );
    assert_eq!(param(&pairs, "state"), Some(state));

    let accepted = decide(TENANT, "cloud_app_admin", "accept").await;
    let pairs = redirect_query(&accepted);
    assert_eq!(param(&pairs, "admin_consent"), Some("True"));
    assert_eq!(param(&pairs, "tenant"), Some(TENANT));
    assert_eq!(param(&pairs, "state"), Some(state));
    assert!(
        param(&pairs, "scope")
            .unwrap()
            .contains("https://graph.microsoft.com/User.Read.All")
    );
    assert_eq!(sandbox.consented_tenants(VOUCH_APP_CLIENT_ID), vec![TENANT]);

    // Vouch's app can now get tokens there, with its permissions.
    let (client_id, secret) = sandbox.vouch_app();
    let token = graph_token(&sandbox, &client, "contoso.example", &client_id, &secret).await;
    let (status, _, _) = graph(
        &sandbox,
        &client,
        reqwest::Method::GET,
        "v1.0/servicePrincipals",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // An unknown app: an error page, never a redirect.
    let page = client
        .get(format!("{}{TENANT}/v2.0/adminconsent", sandbox.login_url()))
        .query(&[
            ("client_id", "99999999-9999-4999-8999-999999999999"),
            ("redirect_uri", redirect_uri),
            ("state", "s"),
        ])
        .send()
        .await
        .unwrap();
    assert!(page.headers().get("location").is_none());
    assert!(page.text().await.unwrap().contains("AADSTS700016"));
}

#[tokio::test]
async fn answer_admin_consent_opens_the_page_and_submits_its_form() {
    let (sandbox, _) = start().await;
    let redirect_uri = "https://vouch.example/consent/callback";
    let consent_url = |client_id: &str| {
        let mut url: url::Url = format!("{}organizations/v2.0/adminconsent", sandbox.login_url())
            .parse()
            .unwrap();
        url.query_pairs_mut()
            .append_pair("client_id", client_id)
            .append_pair("scope", "https://graph.microsoft.com/.default")
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", "secret state");
        url
    };
    let pairs = |url: &url::Url| url.query_pairs().into_owned().collect::<Vec<_>>();

    let cancelled = sandbox
        .answer_admin_consent(
            &consent_url(VOUCH_APP_CLIENT_ID),
            TENANT,
            "global_admin",
            ConsentDecision::Cancel,
        )
        .await
        .unwrap();
    assert_eq!(param(&pairs(&cancelled), "error"), Some("access_denied"));
    assert!(sandbox.consented_tenants(VOUCH_APP_CLIENT_ID).is_empty());

    let accepted = sandbox
        .answer_admin_consent(
            &consent_url(VOUCH_APP_CLIENT_ID),
            TENANT,
            "cloud_app_admin",
            ConsentDecision::Accept,
        )
        .await
        .unwrap();
    assert!(accepted.as_str().starts_with(redirect_uri), "{accepted}");
    let answer = pairs(&accepted);
    assert_eq!(param(&answer, "admin_consent"), Some("True"));
    assert_eq!(param(&answer, "tenant"), Some(TENANT));
    assert_eq!(param(&answer, "state"), Some("secret state"));
    assert_eq!(sandbox.consented_tenants(VOUCH_APP_CLIENT_ID), vec![TENANT]);
    // As a browser: the page was opened before each decision was posted.
    assert_eq!(sandbox.count(Service::Login, "GET", "/adminconsent"), 2);
    assert_eq!(
        sandbox.count(Service::Login, "POST", "/adminconsent/decision"),
        2
    );

    // An unknown app gets an error page, not a redirect.
    let unknown = sandbox
        .answer_admin_consent(
            &consent_url("99999999-9999-4999-8999-999999999999"),
            TENANT,
            "global_admin",
            ConsentDecision::Accept,
        )
        .await;
    assert!(unknown.is_err());

    // Another server's link is refused, without repeating its `state`.
    let mut elsewhere = consent_url(VOUCH_APP_CLIENT_ID);
    elsewhere.set_host(Some("login.example")).unwrap();
    let err = sandbox
        .answer_admin_consent(&elsewhere, TENANT, "global_admin", ConsentDecision::Accept)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("is not the admin consent page"), "{err}");
    assert!(!err.contains("secret"), "{err}");
}

// ---------------------------------------------------------------------------------------
// Faults and recording
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn injected_faults_and_request_counting() {
    let (sandbox, client) = start().await;
    let token = identity_token(&sandbox, &client).await;
    sandbox.clear_requests();

    sandbox.inject_fault(
        Service::Graph,
        "/users/",
        Fault::Status {
            status: 429,
            body: r#"{"error":{"code":"TooManyRequests","message":"Too many requests"}}"#.into(),
            retry_after: Some(2),
        },
        1,
    );
    let (status, headers, body) = graph(
        &sandbox,
        &client,
        reqwest::Method::GET,
        "v1.0/users/dana@contoso.example",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "2");
    assert_eq!(body["error"]["code"], "TooManyRequests");
    let (status, _, _) = graph(
        &sandbox,
        &client,
        reqwest::Method::GET,
        "v1.0/users/dana@contoso.example",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the fault applied once");

    assert_eq!(
        sandbox.count(Service::Graph, "GET", "/users/dana@contoso.example"),
        2
    );
    assert_eq!(sandbox.count(Service::Graph, "get", "/v1.0/users"), 2);
    assert_eq!(sandbox.count(Service::Login, "POST", "/token"), 0);
    let requests = sandbox.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|r| r.authorization_present));
    assert_eq!(requests[0].path, "/graph/v1.0/users/dana@contoso.example");

    // A hanging service: the client's own timeout fires.
    sandbox.inject_fault(Service::Login, "/oauth2/", Fault::Hang, 1);
    let started = Instant::now();
    let result = client
        .post(format!("{}{TENANT}/oauth2/v2.0/token", sandbox.login_url()))
        .timeout(Duration::from_millis(200))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await;
    assert!(result.unwrap_err().is_timeout());
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        sandbox.count(Service::Login, "POST", "/oauth2/v2.0/token"),
        1
    );
    let last = sandbox.requests().pop().unwrap();
    assert_eq!(last.service, Service::Login);
    assert!(!last.authorization_present);

    sandbox.clear_requests();
    assert!(sandbox.requests().is_empty());
}

/// Graph's JSON batching as Microsoft documents it: string ids, relative URLs without the
/// version, one status per answer (in any order), `dependsOn` optional and honoured, the
/// envelope refused as a whole when malformed, and only the `$batch` in the request log;
/// faults injected for a path reach the inner requests with that path.
#[tokio::test]
async fn graph_batches_answer_each_request_with_its_own_status() {
    let (sandbox, client) = start().await;
    let token = identity_token(&sandbox, &client).await;
    sandbox.clear_requests();
    let batch = |body: Value| {
        let (sandbox, client, token) = (sandbox.clone(), client.clone(), token.clone());
        async move {
            let (status, _, body) = graph(
                &sandbox,
                &client,
                reqwest::Method::POST,
                "v1.0/$batch",
                Some(&token),
                Some(body),
            )
            .await;
            (status, body)
        }
    };
    let (status, body) = batch(json!({"requests": [
        {"id": "user", "method": "GET", "url": "/users/dana@contoso.example?$select=id,userPrincipalName"},
        {"id": "2", "method": "GET", "url": "users/dana@contoso.example/authentication/phoneMethods"},
        {"id": "roles", "method": "GET", "url": "/users/ada@contoso.example/memberOf/microsoft.graph.directoryRole"},
        {"id": "nobody", "method": "GET", "url": "/users/nobody@contoso.example"},
        {"id": "versioned", "method": "GET", "url": "/v1.0/users/dana@contoso.example"},
    ]}))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answers = body["responses"].as_array().unwrap();
    assert_eq!(answers.len(), 5, "{body}");
    let answer = |id: &str| {
        answers
            .iter()
            .find(|a| a["id"] == id)
            .unwrap_or_else(|| panic!("no answer {id}: {body}"))
            .clone()
    };
    assert_eq!(answer("user")["status"], 200);
    assert_eq!(
        answer("user")["body"]["userPrincipalName"],
        "dana@contoso.example"
    );
    assert_eq!(answer("2")["body"]["value"][0]["phoneType"], "mobile");
    assert_eq!(
        answer("roles")["body"]["value"][0]["roleTemplateId"],
        GLOBAL_ADMIN_ROLE_TEMPLATE_ID
    );
    assert_eq!(answer("nobody")["status"], 404);
    assert_graph_error(&answer("nobody")["body"], "Request_ResourceNotFound");
    assert_eq!(
        answer("versioned")["status"],
        400,
        "the version is the batch's"
    );

    // dependsOn: a request after a failed one answers 424 without being carried out.
    let (status, body) = batch(json!({"requests": [
        {"id": "1", "method": "GET", "url": "/users/nobody@contoso.example"},
        {"id": "2", "method": "GET", "url": "/users/dana@contoso.example", "dependsOn": ["1"]},
    ]}))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let failed = body["responses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "2")
        .unwrap()
        .clone();
    assert_eq!(failed["status"], 424, "{body}");

    // A 429 injected for a path reaches the inner request, with its Retry-After.
    sandbox.inject_fault(
        Service::Graph,
        "/memberOf/",
        Fault::Status {
            status: 429,
            body: r#"{"error":{"code":"TooManyRequests","message":"Slow down"}}"#.into(),
            retry_after: Some(7),
        },
        1,
    );
    let (status, body) = batch(json!({"requests": [
        {"id": "a", "method": "GET", "url": "/users/ada@contoso.example/memberOf/microsoft.graph.directoryRole"},
        {"id": "b", "method": "GET", "url": "/users/ada@contoso.example"},
    ]}))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answers = body["responses"].as_array().unwrap();
    let throttled = answers.iter().find(|a| a["id"] == "a").unwrap();
    assert_eq!(throttled["status"], 429, "{body}");
    assert_eq!(throttled["headers"]["Retry-After"], "7", "{body}");
    assert_eq!(throttled["body"]["error"]["code"], "TooManyRequests");
    assert_eq!(
        answers.iter().find(|a| a["id"] == "b").unwrap()["status"],
        200
    );

    // The envelope is refused as a whole: too many requests, duplicate ids, no token.
    let many: Vec<Value> = (0..21)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/organization"}))
        .collect();
    let (status, body) = batch(json!({ "requests": many })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = batch(json!({"requests": [
        {"id": "1", "method": "GET", "url": "/organization"},
        {"id": "1", "method": "GET", "url": "/organization"},
    ]}))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, body) = graph(
        &sandbox,
        &client,
        reqwest::Method::POST,
        "v1.0/$batch",
        None,
        Some(json!({"requests": [{"id": "1", "method": "GET", "url": "/organization"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    // Only the batches were recorded, never their inner requests.
    let recorded: Vec<String> = sandbox
        .requests()
        .into_iter()
        .filter(|r| r.service == Service::Graph)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        recorded.iter().all(|r| r == "POST /graph/v1.0/$batch"),
        "{recorded:?}"
    );
    assert_eq!(recorded.len(), 6, "{recorded:?}");
}

/// A hold answers unscripted pushes after the chosen time (approved, or unanswered), while
/// a script still wins; added users can be pushed to, and `wait_for_push` sees a push while
/// its call is held open.
#[tokio::test]
async fn held_pushes_are_answered_after_the_hold() {
    let (sandbox, client) = start().await;
    let token = connector_token(&sandbox, &client).await;
    let upns = sandbox.add_users(
        DEMO_TENANT_ID,
        &[NewSandboxUser {
            local_part: "held-1".into(),
            display_name: "Held One".into(),
            mobile: Some("+1 206 5550150".into()),
        }],
    );
    assert_eq!(upns, ["held-1@contoso.example"]);
    let hold = Duration::from_millis(300);
    sandbox.set_push_hold(Some(PushHold {
        hold_for: hold,
        answer: Some(PushAnswer::Approve),
    }));
    let sent = Instant::now();
    let (held, seen) = tokio::join!(
        push(&sandbox, &client, &token, &upns[0]),
        sandbox.wait_for_push(&upns[0], Duration::from_secs(5))
    );
    assert!(sent.elapsed() >= hold, "answered after the hold");
    assert_eq!(held.result.value, "Success");
    assert!(held.authentication_result);
    assert_eq!(seen.expect("seen while held").upn, upns[0]);
    assert_eq!(sandbox.pending_count(), 0);

    // A script is used before the hold.
    sandbox.script_push(&upns[0], PushScript::Deny);
    let denied = push(&sandbox, &client, &token, &upns[0]).await;
    assert_eq!(denied.result.value, "PhoneAppDenied");

    // Held, then never answered.
    sandbox.set_push_hold(Some(PushHold {
        hold_for: Duration::from_millis(100),
        answer: None,
    }));
    let unanswered = push(&sandbox, &client, &token, &upns[0]).await;
    assert_eq!(unanswered.result.value, "PhoneAppNoResponse");
    assert!(!unanswered.authentication_result);
}
