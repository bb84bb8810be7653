//! HaloPSA: the custom ticket tab, loaded with a signed URL (see [`super::signing`]), and the
//! REST API with a client-credentials token (cached per connection).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use moka::future::Cache;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use uuid::Uuid;

use super::signing;
use super::{
    CheckFailure, CheckList, EmbedLoad, MAX_COMPANY_CONTACTS, MAX_COMPANY_PAGE_SIZE, PsaAdapter,
    PsaCompany, PsaCompanyListing, PsaCompanyPage, PsaContact, PsaError, PsaTechnician,
    SignedEmbed, TicketContact, VouchedEmbed, body_json, clean_list, connection_fingerprint,
    parse_json, psa_text, status_error,
};
use crate::cache::{KeepFor, renewal_horizon};
use crate::config::Config;
use crate::domain::{ConnectionCheck, ErrorCode, PsaKind};
use crate::store::psa_connections::PsaConnection;
use crate::telemetry::Metrics;
use crate::upstream::{Idempotency, RetryPolicy, Upstream};

/// The parameters of the signed tab URL.
pub const TICKET_PARAM: &str = "ticket_id";
pub const AGENT_PARAM: &str = "agent_id";

#[derive(Debug, Deserialize)]
struct Settings {
    /// The authorisation server, e.g. `https://msp.halopsa.com/auth`.
    auth_url: String,
    /// Hosted Halo's tenant name (sent as `?tenant=`), when there is one.
    #[serde(default)]
    tenant: Option<String>,
}

#[derive(Deserialize)]
struct Credentials {
    client_id: String,
    client_secret: String,
    /// The custom tab's iframe secret.
    tab_secret: String,
    /// The secret a rotation replaced, accepted until its grace period ends.
    #[serde(default)]
    previous_tab_secret: Option<signing::PreviousSecret>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// A Halo API token, with how long it may be handed out.
struct HaloToken {
    value: SecretString,
    /// Until shortly before the expiry Halo stated; `None` when it stated none.
    keep_for: Option<Duration>,
}

impl KeepFor for HaloToken {
    fn keep_for(&self) -> Option<Duration> {
        self.keep_for
    }
}

pub struct HaloPsa {
    upstream: Upstream,
    max_signature_age: u64,
    /// API tokens per connection, keyed by [`HaloPsa::token_key`] so a changed connection
    /// never gets the old one's token, `cache.halopsa_tokens`: each leaves the cache before it
    /// expires, and at the latest after the configured lifetime.
    tokens: Cache<(Uuid, [u8; 32]), Arc<HaloToken>>,
    /// Agents by (connection, agent id), `cache.halopsa_agents`: every tab load names one,
    /// names rarely change.
    agents: Cache<(Uuid, u64), PsaTechnician>,
}

impl HaloPsa {
    /// The adapter, configured (caches included) from `config`.
    pub fn new(config: &Config, metrics: &Metrics) -> HaloPsa {
        HaloPsa {
            upstream: Upstream::new(
                "psa_halopsa",
                Duration::from_secs(15),
                metrics.clone(),
                RetryPolicy::default(),
            ),
            max_signature_age: config.psa.halopsa.max_signature_age_seconds,
            tokens: config.cache.halopsa_tokens.build_keeping_for(),
            agents: config.cache.halopsa_agents.build(),
        }
    }

    fn credentials(connection: &PsaConnection) -> Result<Credentials, PsaError> {
        serde_json::from_str(connection.credentials.expose_secret()).map_err(|_| {
            PsaError::Misconfigured(
                "HaloPSA credentials need client_id, client_secret and tab_secret".into(),
            )
        })
    }

    async fn token(&self, connection: &PsaConnection) -> Result<Arc<HaloToken>, PsaError> {
        self.tokens
            .try_get_with(Self::token_key(connection), self.fetch_token(connection))
            .await
            .map_err(|err| (*err).clone())
    }

    /// The token cache's key: the connection, its version and what a token is asked with
    /// (the authorisation server, tenant, client id and secret), digested.
    fn token_key(connection: &PsaConnection) -> (Uuid, [u8; 32]) {
        let settings: Option<Settings> = parse_json(&connection.settings, "HaloPSA settings").ok();
        let credentials = Self::credentials(connection).ok();
        let (auth_url, tenant) = settings
            .map(|s| (s.auth_url, s.tenant.unwrap_or_default()))
            .unwrap_or_default();
        let (client_id, client_secret) = credentials
            .map(|c| (c.client_id, c.client_secret))
            .unwrap_or_default();
        (
            connection.id,
            connection_fingerprint(
                connection,
                &[&auth_url, &tenant, &client_id, &client_secret],
            ),
        )
    }

    /// Drops `token` from the cache, unless another request already replaced it.
    async fn forget_token(&self, connection: &PsaConnection, token: &Arc<HaloToken>) {
        let key = Self::token_key(connection);
        if let Some(cached) = self.tokens.get(&key).await
            && Arc::ptr_eq(&cached, token)
        {
            self.tokens.invalidate(&key).await;
        }
    }

    async fn fetch_token(&self, connection: &PsaConnection) -> Result<Arc<HaloToken>, PsaError> {
        match self.request_token(connection).await? {
            Ok(token) => Ok(Arc::new(token)),
            Err((status, _)) => Err(match status {
                400 | 401 | 403 => PsaError::CredentialsRejected,
                429 => PsaError::Throttled,
                404 => PsaError::NotFound("token"),
                500..=599 => PsaError::Unavailable,
                other => PsaError::Unexpected(format!("HTTP {other}")),
            }),
        }
    }

    /// A token request: the token, or Halo's refusal (its status and JSON body).
    async fn request_token(
        &self,
        connection: &PsaConnection,
    ) -> Result<Result<HaloToken, (u16, serde_json::Value)>, PsaError> {
        let settings: Settings = parse_json(&connection.settings, "HaloPSA settings")?;
        let credentials = Self::credentials(connection)?;
        let mut url = format!("{}/token", settings.auth_url.trim_end_matches('/'));
        if let Some(tenant) = &settings.tenant {
            url.push_str(&format!(
                "?tenant={}",
                url::form_urlencoded::byte_serialize(tenant.as_bytes()).collect::<String>()
            ));
        }
        let response = self
            .upstream
            .send(Idempotency::Idempotent, |client| {
                client.post(&url).form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", credentials.client_id.as_str()),
                    ("client_secret", credentials.client_secret.as_str()),
                    ("scope", "all"),
                ])
            })
            .await?;
        let status = response.status().as_u16();
        if !response.status().is_success() {
            return Ok(Err((status, body_json(response).await)));
        }
        let token: TokenResponse = response
            .json()
            .await
            .map_err(|_| PsaError::Unexpected("unreadable token".into()))?;
        Ok(Ok(HaloToken {
            value: SecretString::from(token.access_token),
            keep_for: token
                .expires_in
                .map(|seconds| renewal_horizon(Duration::from_secs(seconds))),
        }))
    }

    /// The ticket and agent ids of a tab load whose signature is valid (checked locally).
    fn signed_load(
        &self,
        connection: &PsaConnection,
        load: &EmbedLoad,
    ) -> Result<SignedEmbed, PsaError> {
        let credentials = Self::credentials(connection)?;
        signing::verified_load(
            load,
            signing::SigningSecrets {
                current: &credentials.tab_secret,
                previous: credentials.previous_tab_secret.as_ref(),
            },
            self.max_signature_age,
            TICKET_PARAM,
            AGENT_PARAM,
        )
    }

    async fn call(
        &self,
        connection: &PsaConnection,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
        what: &'static str,
    ) -> Result<serde_json::Value, PsaError> {
        let url = format!("{}/api/{path}", connection.base_url.trim_end_matches('/'));
        let idempotency = if method == reqwest::Method::GET {
            Idempotency::Idempotent
        } else {
            Idempotency::NotIdempotent
        };
        let send = |token: Arc<HaloToken>| {
            let bearer = format!("Bearer {}", token.value.expose_secret());
            let (method, url, body) = (&method, &url, &body);
            async move {
                self.upstream
                    .send(idempotency, |client| {
                        let request = client
                            .request(method.clone(), url)
                            .header("Authorization", &bearer);
                        match body {
                            Some(body) => request.json(body),
                            None => request,
                        }
                    })
                    .await
            }
        };
        let token = self.token(connection).await?;
        let mut response = send(token.clone()).await?;
        if response.status().as_u16() == 401 {
            // Halo revoked or expired the cached token before its stated expiry: a new token,
            // and this same request once more (a 401 means Halo did not act on it, so even a
            // POST is safe to repeat). A second 401 is the answer.
            self.forget_token(connection, &token).await;
            let fresh = self.token(connection).await?;
            response = send(fresh.clone()).await?;
            if response.status().as_u16() == 401 {
                self.forget_token(connection, &fresh).await;
            }
        }
        if !response.status().is_success() {
            return Err(status_error(&response, what));
        }
        response
            .json()
            .await
            .map_err(|_| PsaError::Unexpected("unreadable JSON".into()))
    }
}

#[async_trait]
impl PsaAdapter for HaloPsa {
    fn kind(&self) -> PsaKind {
        PsaKind::HaloPsa
    }

    /// The ticket in Halo's agent app: `/ticket?id=` on the resource server.
    async fn ticket_url(&self, connection: &PsaConnection, ticket_id: &str) -> Option<url::Url> {
        let base = connection.base_url.trim_end_matches('/');
        let mut url = url::Url::parse(&format!("{base}/ticket")).ok()?;
        url.query_pairs_mut().append_pair("id", ticket_id);
        Some(url)
    }

    async fn authenticate_embed(
        &self,
        connection: &PsaConnection,
        load: &EmbedLoad,
    ) -> Result<VouchedEmbed, PsaError> {
        let signed = self.signed_load(connection, load)?;
        let technician = self.signed_technician(connection, &signed).await?;
        Ok(VouchedEmbed {
            technician,
            ticket_id: signed.ticket_id,
        })
    }

    fn check_signature(
        &self,
        connection: &PsaConnection,
        load: &EmbedLoad,
    ) -> Option<Result<SignedEmbed, PsaError>> {
        Some(self.signed_load(connection, load))
    }

    async fn signed_technician(
        &self,
        connection: &PsaConnection,
        signed: &SignedEmbed,
    ) -> Result<PsaTechnician, PsaError> {
        // The signed agent id is who the technician is; the name comes from Halo itself.
        let agent_id = signed.member_id;
        self.agents
            .try_get_with((connection.id, agent_id), async {
                let agent = self
                    .call(
                        connection,
                        reqwest::Method::GET,
                        &format!("Agent/{agent_id}"),
                        None,
                        "agent",
                    )
                    .await?;
                Ok::<_, PsaError>(PsaTechnician {
                    member_id: agent_id.to_string(),
                    name: agent["name"].as_str().unwrap_or("Halo agent").to_owned(),
                    email: agent["email"].as_str().map(str::to_owned),
                })
            })
            .await
            .map_err(|err| (*err).clone())
    }

    async fn ticket(
        &self,
        connection: &PsaConnection,
        ticket_id: &str,
    ) -> Result<TicketContact, PsaError> {
        let id: u64 = ticket_id
            .parse()
            .map_err(|_| PsaError::NotFound("ticket"))?;
        let ticket = self
            .call(
                connection,
                reqwest::Method::GET,
                &format!("Tickets/{id}"),
                None,
                "ticket",
            )
            .await?;
        let company = ticket["client_id"].as_u64().map(|cid| PsaCompany {
            id: cid.to_string(),
            name: ticket["client_name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        });
        let contact = match ticket["user_id"].as_u64().filter(|id| *id > 0) {
            Some(user_id) => {
                let user = self
                    .call(
                        connection,
                        reqwest::Method::GET,
                        &format!("Users/{user_id}"),
                        None,
                        "contact",
                    )
                    .await?;
                let text = |key: &str| user[key].as_str().map(str::to_owned);
                Some(PsaContact {
                    id: user_id.to_string(),
                    name: user["name"].as_str().unwrap_or_default().to_owned(),
                    emails: clean_list([text("emailaddress"), text("email2"), text("email3")]),
                    mobile: clean_list([text("mobilenumber"), text("mobilenumber2")])
                        .into_iter()
                        .next(),
                })
            }
            None => None,
        };
        Ok(TicketContact {
            ticket_id: id.to_string(),
            summary: ticket["summary"].as_str().unwrap_or_default().to_owned(),
            contact,
            company,
        })
    }

    async fn add_internal_note(
        &self,
        connection: &PsaConnection,
        ticket_id: &str,
        text: &str,
    ) -> Result<(), PsaError> {
        let id: u64 = ticket_id
            .parse()
            .map_err(|_| PsaError::NotFound("ticket"))?;
        let html = text
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('\n', "<br>");
        let body = serde_json::json!([{
            "ticket_id": id,
            "outcome": "Private Note",
            "note_html": html,
            "hiddenfromuser": true,
            "sendemail": false,
        }]);
        self.call(
            connection,
            reqwest::Method::POST,
            "Actions",
            Some(body),
            "ticket",
        )
        .await
        .map(|_| ())
    }

    /// The checks, in order (each harmless; nothing is written):
    ///
    /// 1. `token`: a new token from `{auth_url}/token` (never the cached one). Halo's OAuth
    ///    refusal (`invalid_client`, 400 or 401) is `psa_credentials_rejected`;
    ///    `unauthorized_client` / `invalid_scope` (the application may not use client
    ///    credentials or scope `all`) are `psa_permission_missing`.
    /// 2. `read_tickets`: `GET /api/Tickets?count=1`; 403 (the application lacks
    ///    `read:tickets`) is `psa_permission_missing`.
    /// 3. `actions`: `GET /api/Actions?ticket_id={id}&count=1` of the ticket found in 2: the
    ///    endpoint Vouch posts its notes to; 403 there means the application lacks what
    ///    actions need (`edit:tickets`). Vouch posts nothing during a test.
    async fn test_connection(&self, connection: &PsaConnection) -> Vec<ConnectionCheck> {
        let mut checks = CheckList::default();
        let rest = ["read_tickets", "actions"];
        self.tokens.invalidate(&Self::token_key(connection)).await;
        let outcome = match self.request_token(connection).await {
            Err(err) => Err(CheckFailure::of_transport(PSA, &err)),
            Ok(Ok(token)) => {
                let fresh = Arc::new(token);
                self.tokens
                    .insert(Self::token_key(connection), fresh.clone())
                    .await;
                Ok(fresh)
            }
            Ok(Err((status, body))) => Err(token_refusal(status, &body)),
        };
        let token = match outcome {
            Ok(token) => {
                checks.record_gate(
                    "token",
                    Ok("Halo issued a token for the API application.".to_owned()),
                );
                token
            }
            Err(failure) => {
                checks.record_gate("token", Err(failure));
                checks.skip_all_if_blocked(&rest);
                return checks.finish();
            }
        };

        let mut first_ticket = None;
        let outcome = match self.probe(connection, &token, "Tickets?count=1").await {
            Err(err) => Err(CheckFailure::of_transport(PSA, &err)),
            Ok((200, body)) => {
                first_ticket = body["tickets"][0]["id"].as_u64();
                Ok("The API application can read tickets.".to_owned())
            }
            Ok((401, _)) => Err(CheckFailure::new(
                ErrorCode::PsaCredentialsRejected,
                "Halo issued a token but refused it on the API (401). Check that the resource URL is the Resource Server of the same Halo as the auth URL (Configuration > Integrations > HaloPSA API).",
            )),
            Ok((403, _)) => Err(permission("read tickets", "read:tickets")),
            Ok((status, _)) => Err(CheckFailure::of_status(PSA, status)),
        };
        if !checks.record("read_tickets", outcome) {
            checks.skip("actions", "read_tickets");
            return checks.finish();
        }
        let Some(ticket) = first_ticket else {
            checks.record(
                "actions",
                Ok("No ticket to read actions of yet: the right to add notes is checked once there is one.".to_owned()),
            );
            return checks.finish();
        };
        let outcome = match self
            .probe(
                connection,
                &token,
                &format!("Actions?ticket_id={ticket}&count=1"),
            )
            .await
        {
            Err(err) => Err(CheckFailure::of_transport(PSA, &err)),
            Ok((200, _)) => Ok(
                "The API application can reach ticket actions (Vouch adds private notes)."
                    .to_owned(),
            ),
            Ok((403, _)) => Err(permission(
                "read and add ticket actions (notes)",
                "edit:tickets",
            )),
            Ok((status, _)) => Err(CheckFailure::of_status(PSA, status)),
        };
        checks.record("actions", outcome);
        checks.finish()
    }

    // --- The PSA's companies ---

    /// `GET /api/Client?search=&pageinate=true&page_size=&page_no=` ->
    /// `{record_count, clients: [{id, name, website}]}`; more when `record_count` is past
    /// this page.
    async fn companies(
        &self,
        connection: &PsaConnection,
        search: Option<&str>,
        page: u32,
        page_size: u32,
    ) -> Result<PsaCompanyPage, PsaError> {
        let page = page.max(1);
        let page_size = page_size.clamp(1, MAX_COMPANY_PAGE_SIZE);
        let query = {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query
                .append_pair("pageinate", "true")
                .append_pair("page_size", &page_size.to_string())
                .append_pair("page_no", &page.to_string())
                .append_pair("order", "name");
            if let Some(search) = search.map(str::trim).filter(|s| !s.is_empty()) {
                query.append_pair("search", search);
            }
            query.finish()
        };
        let body = self
            .call(
                connection,
                reqwest::Method::GET,
                &format!("Client?{query}"),
                None,
                "company",
            )
            .await?;
        let clients = body["clients"]
            .as_array()
            .ok_or_else(|| PsaError::Unexpected("no clients in the answer".into()))?;
        let items: Vec<PsaCompanyListing> = clients
            .iter()
            .filter_map(|client| {
                Some(PsaCompanyListing {
                    id: client["id"].as_u64()?.to_string(),
                    name: client["name"].as_str()?.to_owned(),
                    website: client["website"]
                        .as_str()
                        .map(str::trim)
                        .filter(|w| !w.is_empty())
                        .map(str::to_owned),
                })
            })
            .collect();
        let total = body["record_count"].as_u64().unwrap_or(0);
        Ok(PsaCompanyPage {
            has_more: u64::from(page) * u64::from(page_size) < total,
            items,
        })
    }

    /// `GET /api/Users?client_id=N&pageinate=true&page_size=&page_no=1` ->
    /// `{record_count, users: [{emailaddress, email2, email3}]}`.
    async fn company_contact_emails(
        &self,
        connection: &PsaConnection,
        company_id: &str,
        limit: u32,
    ) -> Result<Vec<Vec<String>>, PsaError> {
        let id: u64 = company_id
            .parse()
            .map_err(|_| PsaError::NotFound("company"))?;
        let limit = limit.clamp(1, MAX_COMPANY_CONTACTS);
        let body = self
            .call(
                connection,
                reqwest::Method::GET,
                &format!("Users?client_id={id}&pageinate=true&page_size={limit}&page_no=1"),
                None,
                "company",
            )
            .await?;
        let users = body["users"]
            .as_array()
            .ok_or_else(|| PsaError::Unexpected("no users in the answer".into()))?;
        Ok(users
            .iter()
            .map(|user| {
                clean_list(
                    ["emailaddress", "email2", "email3"]
                        .into_iter()
                        .map(|key| user[key].as_str().map(str::to_owned)),
                )
            })
            .collect())
    }
}

/// What a HaloPSA check calls the PSA.
const PSA: &str = "HaloPSA";

/// The API application lacks `what` (Halo answered 403).
fn permission(what: &str, scope: &str) -> CheckFailure {
    CheckFailure::new(
        ErrorCode::PsaPermissionMissing,
        format!(
            "Halo refused to let the API application {what} (403). In Configuration > Integrations > HaloPSA API > View Applications > the application > Permissions, allow {scope} (Vouch needs read:tickets, edit:tickets and read:customers), and check the agent it logs in as may do the same, then test again."
        ),
    )
}

/// Halo's OAuth refusal of a token request, as a check failure.
fn token_refusal(status: u16, body: &serde_json::Value) -> CheckFailure {
    let error = body["error"].as_str().unwrap_or_default();
    match (status, error) {
        (_, "unauthorized_client" | "invalid_scope") => CheckFailure::new(
            ErrorCode::PsaPermissionMissing,
            format!(
                "Halo refused the token request ({error}): the API application may not use client credentials with scope all. In Configuration > Integrations > HaloPSA API > the application, choose \"Client ID and Secret (Services)\" and give it its permissions, then test again."
            ),
        ),
        (400 | 401, _) => CheckFailure::new(
            ErrorCode::PsaCredentialsRejected,
            format!(
                "Halo refused the client id and secret{}. Copy both again from Configuration > Integrations > HaloPSA API > View Applications > the application (a new secret is shown once), check the tenant for hosted Halo, and save them in the connection.",
                if error.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", psa_text(error))
                }
            ),
        ),
        (404, _) => CheckFailure::new(
            ErrorCode::PsaMisconfigured,
            "Halo's token endpoint was not found at the auth URL. Use the Authorisation Server shown in Configuration > Integrations > HaloPSA API (e.g. https://msp.halopsa.com/auth).",
        ),
        (status, _) => CheckFailure::of_status(PSA, status),
    }
}

impl HaloPsa {
    /// One GET of a test with `token`: its status and JSON body.
    async fn probe(
        &self,
        connection: &PsaConnection,
        token: &HaloToken,
        path: &str,
    ) -> Result<(u16, serde_json::Value), PsaError> {
        let url = format!("{}/api/{path}", connection.base_url.trim_end_matches('/'));
        let bearer = format!("Bearer {}", token.value.expose_secret());
        let response = self
            .upstream
            .send(Idempotency::Idempotent, |client| {
                client.get(&url).header("Authorization", &bearer)
            })
            .await?;
        let status = response.status().as_u16();
        Ok((status, body_json(response).await))
    }
}
