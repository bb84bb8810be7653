//! HaloPSA: the custom ticket tab, loaded with a signed URL (see [`super::signing`]), and the
//! REST API with a client-credentials token (cached per connection).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use moka::future::Cache;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use uuid::Uuid;

use super::signing::{self, param};
use super::{
    EmbedLoad, MAX_COMPANY_CONTACTS, MAX_COMPANY_PAGE_SIZE, PsaAdapter, PsaCompany,
    PsaCompanyListing, PsaCompanyPage, PsaContact, PsaError, PsaTechnician, TicketContact,
    VouchedEmbed, clean_list, parse_json, status_error,
};
use crate::cache::{KeepFor, renewal_horizon};
use crate::config::Config;
use crate::domain::PsaKind;
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
    /// API tokens per connection, `cache.halopsa_tokens`: each leaves the cache before it
    /// expires, and at the latest after the configured lifetime.
    tokens: Cache<Uuid, Arc<HaloToken>>,
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
            .try_get_with(connection.id, self.fetch_token(connection))
            .await
            .map_err(|err| (*err).clone())
    }

    /// Drops `token` from the cache, unless another request already replaced it.
    async fn forget_token(&self, connection_id: Uuid, token: &Arc<HaloToken>) {
        if let Some(cached) = self.tokens.get(&connection_id).await
            && Arc::ptr_eq(&cached, token)
        {
            self.tokens.invalidate(&connection_id).await;
        }
    }

    async fn fetch_token(&self, connection: &PsaConnection) -> Result<Arc<HaloToken>, PsaError> {
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
        if !response.status().is_success() {
            return Err(match response.status().as_u16() {
                400 | 401 | 403 => PsaError::CredentialsRejected,
                _ => status_error(&response, "token"),
            });
        }
        let token: TokenResponse = response
            .json()
            .await
            .map_err(|_| PsaError::Unexpected("unreadable token".into()))?;
        Ok(Arc::new(HaloToken {
            value: SecretString::from(token.access_token),
            keep_for: token
                .expires_in
                .map(|seconds| renewal_horizon(Duration::from_secs(seconds))),
        }))
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
            self.forget_token(connection.id, &token).await;
            let fresh = self.token(connection).await?;
            response = send(fresh.clone()).await?;
            if response.status().as_u16() == 401 {
                self.forget_token(connection.id, &fresh).await;
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

    async fn authenticate_embed(
        &self,
        connection: &PsaConnection,
        load: &EmbedLoad,
    ) -> Result<VouchedEmbed, PsaError> {
        let EmbedLoad::Signed(params) = load else {
            return Err(PsaError::Unsigned);
        };
        let credentials = Self::credentials(connection)?;
        signing::verify(
            params,
            &credentials.tab_secret,
            self.max_signature_age,
            chrono::Utc::now().timestamp(),
        )?;
        let ticket_id = param(params, TICKET_PARAM)
            .ok_or(PsaError::Unsigned)?
            .to_owned();
        let agent_id: u64 = param(params, AGENT_PARAM)
            .and_then(|a| a.parse().ok())
            .ok_or(PsaError::Unsigned)?;
        // The signed agent id is who the technician is; the name comes from Halo itself.
        let technician = self
            .agents
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
            .map_err(|err| (*err).clone())?;
        Ok(VouchedEmbed {
            technician,
            ticket_id,
        })
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

    async fn test_connection(&self, connection: &PsaConnection) -> Result<(), PsaError> {
        self.tokens.invalidate(&connection.id).await;
        self.token(connection).await.map(|_| ())
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
