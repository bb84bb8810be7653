//! Autotask PSA: the ticket Insight, loaded as a signed GET or form POST (see
//! [`super::signing`]), and the REST API, whose base URL comes from the zone lookup.

use std::time::Duration;

use async_trait::async_trait;
use moka::future::Cache;
use secrecy::ExposeSecret;
use serde::Deserialize;
use uuid::Uuid;

use super::signing;
use super::{
    CheckFailure, CheckList, EmbedLoad, MAX_COMPANY_CONTACTS, MAX_COMPANY_PAGE_SIZE, PsaAdapter,
    PsaCompany, PsaCompanyListing, PsaCompanyPage, PsaContact, PsaError, PsaTechnician,
    SignedEmbed, TicketContact, VouchedEmbed, body_json, clean_list, connection_fingerprint,
    parse_json, psa_text, status_error,
};
use crate::config::Config;
use crate::domain::{ConnectionCheck, ErrorCode, PsaKind};
use crate::store::psa_connections::PsaConnection;
use crate::telemetry::Metrics;
use crate::upstream::{Idempotency, RetryPolicy, Upstream};

pub const TICKET_PARAM: &str = "ticketId";
pub const RESOURCE_PARAM: &str = "resourceId";

/// Note type and publish values for an internal-only ticket note. Unconfirmed (the reference
/// says to check `/TicketNotes/entityInformation/fields`): kept here, in one place.
pub const INTERNAL_NOTE_TYPE: u32 = 1;
pub const INTERNAL_NOTE_PUBLISH: u32 = 1;

#[derive(Debug, Deserialize, Default)]
struct Settings {
    /// Overrides `psa.autotask.zone_lookup_url` for this connection.
    #[serde(default)]
    zone_lookup_url: Option<String>,
}

#[derive(Deserialize)]
struct Credentials {
    api_user: String,
    api_secret: String,
    integration_code: String,
    /// The shared secret Insight loads are signed with.
    insight_secret: String,
    /// The secret a rotation replaced, accepted until its grace period ends.
    #[serde(default)]
    previous_insight_secret: Option<signing::PreviousSecret>,
}

pub struct Autotask {
    upstream: Upstream,
    zone_lookup_url: String,
    max_signature_age: u64,
    /// The zone's REST base per connection (it changes only when Autotask moves a tenant):
    /// `cache.autotask_zones`, a day by default, keyed by [`Autotask::zone_key`] so a changed
    /// connection looks its zone up again.
    zones: Cache<(Uuid, [u8; 32]), String>,
    /// Resources by (connection, resource id), `cache.autotask_resources`: every Insight load
    /// names one.
    resources: Cache<(Uuid, u64), PsaTechnician>,
}

impl Autotask {
    /// The adapter, configured (caches included) from `config`.
    pub fn new(config: &Config, metrics: &Metrics) -> Autotask {
        Autotask {
            upstream: Upstream::new(
                "psa_autotask",
                Duration::from_secs(15),
                metrics.clone(),
                RetryPolicy::default(),
            ),
            zone_lookup_url: config.psa.autotask.zone_lookup_url.to_string(),
            max_signature_age: config.psa.autotask.max_signature_age_seconds,
            zones: config.cache.autotask_zones.build(),
            resources: config.cache.autotask_resources.build(),
        }
    }

    fn credentials(connection: &PsaConnection) -> Result<Credentials, PsaError> {
        serde_json::from_str(connection.credentials.expose_secret()).map_err(|_| {
            PsaError::Misconfigured("Autotask credentials need api_user, api_secret, integration_code and insight_secret".into())
        })
    }

    async fn zone(&self, connection: &PsaConnection) -> Result<String, PsaError> {
        self.zones
            .try_get_with(self.zone_key(connection), self.lookup_zone(connection))
            .await
            .map_err(|err| (*err).clone())
    }

    /// The zone cache's key: the connection, its version and what the lookup is asked with
    /// (the lookup address and the API user), digested.
    fn zone_key(&self, connection: &PsaConnection) -> (Uuid, [u8; 32]) {
        let settings: Settings =
            parse_json(&connection.settings, "Autotask settings").unwrap_or_default();
        let lookup = settings
            .zone_lookup_url
            .unwrap_or_else(|| self.zone_lookup_url.clone());
        let api_user = Self::credentials(connection)
            .map(|c| c.api_user)
            .unwrap_or_default();
        (
            connection.id,
            connection_fingerprint(connection, &[&lookup, &api_user]),
        )
    }

    async fn lookup_zone(&self, connection: &PsaConnection) -> Result<String, PsaError> {
        match self.lookup_zone_raw(connection).await? {
            Ok(zone) => Ok(zone),
            Err((404, _)) => Err(PsaError::CredentialsRejected),
            Err((status, _)) => Err(match status {
                401 | 403 => PsaError::CredentialsRejected,
                429 => PsaError::Throttled,
                500..=599 => PsaError::Unavailable,
                other => PsaError::Unexpected(format!("HTTP {other}")),
            }),
        }
    }

    /// The zone lookup: the zone's REST base, or the lookup's refusal (status and body).
    async fn lookup_zone_raw(
        &self,
        connection: &PsaConnection,
    ) -> Result<Result<String, (u16, serde_json::Value)>, PsaError> {
        let settings: Settings =
            parse_json(&connection.settings, "Autotask settings").unwrap_or_default();
        let credentials = Self::credentials(connection)?;
        let base = settings
            .zone_lookup_url
            .unwrap_or_else(|| self.zone_lookup_url.clone());
        let mut url = url::Url::parse(&base)
            .and_then(|u| u.join("v1.0/zoneInformation"))
            .map_err(|_| {
                PsaError::Misconfigured("the Autotask zone lookup URL is not valid".into())
            })?;
        url.query_pairs_mut()
            .append_pair("user", &credentials.api_user);
        let response = self
            .upstream
            .send(Idempotency::Idempotent, |client| client.get(url.clone()))
            .await?;
        let status = response.status().as_u16();
        if !response.status().is_success() {
            return Ok(Err((status, body_json(response).await)));
        }
        let zone: serde_json::Value = response
            .json()
            .await
            .map_err(|_| PsaError::Unexpected("unreadable zone".into()))?;
        zone["url"]
            .as_str()
            .map(|u| {
                Ok(if u.ends_with('/') {
                    u.to_owned()
                } else {
                    format!("{u}/")
                })
            })
            .ok_or_else(|| PsaError::Unexpected("zone without url".into()))
    }

    async fn call(
        &self,
        connection: &PsaConnection,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
        what: &'static str,
    ) -> Result<serde_json::Value, PsaError> {
        let url = format!("{}v1.0/{path}", self.zone(connection).await?);
        self.call_at(connection, method, url, body, what).await
    }

    /// Like [`Autotask::call`], at a whole URL of the zone (a `nextPageUrl`).
    async fn call_at(
        &self,
        connection: &PsaConnection,
        method: reqwest::Method,
        url: String,
        body: Option<serde_json::Value>,
        what: &'static str,
    ) -> Result<serde_json::Value, PsaError> {
        let credentials = Self::credentials(connection)?;
        let idempotency = if method == reqwest::Method::GET {
            Idempotency::Idempotent
        } else {
            Idempotency::NotIdempotent
        };
        let response = self
            .upstream
            .send(idempotency, |client| {
                let request = client
                    .request(method.clone(), &url)
                    .header("ApiIntegrationCode", &credentials.integration_code)
                    .header("UserName", &credentials.api_user)
                    .header("Secret", &credentials.api_secret)
                    .header("Content-Type", "application/json");
                match &body {
                    Some(body) => request.json(body),
                    None => request,
                }
            })
            .await?;
        if !response.status().is_success() {
            return Err(status_error(&response, what));
        }
        response
            .json()
            .await
            .map_err(|_| PsaError::Unexpected("unreadable JSON".into()))
    }

    /// The ticket and resource ids of an Insight load whose signature is valid (checked
    /// locally).
    fn signed_load(
        &self,
        connection: &PsaConnection,
        load: &EmbedLoad,
    ) -> Result<SignedEmbed, PsaError> {
        let credentials = Self::credentials(connection)?;
        signing::verified_load(
            load,
            signing::SigningSecrets {
                current: &credentials.insight_secret,
                previous: credentials.previous_insight_secret.as_ref(),
            },
            self.max_signature_age,
            TICKET_PARAM,
            RESOURCE_PARAM,
        )
    }

    /// `GET {Entity}/{id}` -> the item; Autotask answers 200 with `"item": null` for an
    /// unknown id.
    async fn item(
        &self,
        connection: &PsaConnection,
        entity: &str,
        id: u64,
        what: &'static str,
    ) -> Result<serde_json::Value, PsaError> {
        let body = self
            .call(
                connection,
                reqwest::Method::GET,
                &format!("{entity}/{id}"),
                None,
                what,
            )
            .await?;
        match body.get("item") {
            Some(item) if !item.is_null() => Ok(item.clone()),
            _ => Err(PsaError::NotFound(what)),
        }
    }
}

#[async_trait]
impl PsaAdapter for Autotask {
    fn kind(&self) -> PsaKind {
        PsaKind::Autotask
    }

    /// The ticket through Autotask's `ExecuteCommand` (`OpenTicketDetail`) on the zone's web
    /// host: the REST zone `webservicesN.autotask.net` has its web app at
    /// `wwN.autotask.net`. The zone comes from the zone cache (looked up if it is not there,
    /// once a day at most); without it there is no link.
    async fn ticket_url(&self, connection: &PsaConnection, ticket_id: &str) -> Option<url::Url> {
        let zone = url::Url::parse(&self.zone(connection).await.ok()?).ok()?;
        let mut web = zone.clone();
        web.set_path("/");
        web.set_query(None);
        if let Some(n) = zone.host_str().and_then(|h| h.strip_prefix("webservices")) {
            let host = format!("ww{n}");
            web.set_host(Some(&host)).ok()?;
        }
        let mut url = web
            .join("Autotask/AutotaskExtend/ExecuteCommand.aspx")
            .ok()?;
        url.query_pairs_mut()
            .append_pair("Code", "OpenTicketDetail")
            .append_pair("TicketID", ticket_id);
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
        let resource_id = signed.member_id;
        self.resources
            .try_get_with((connection.id, resource_id), async {
                let resource = self
                    .item(connection, "Resources", resource_id, "resource")
                    .await?;
                let name = format!(
                    "{} {}",
                    resource["firstName"].as_str().unwrap_or_default(),
                    resource["lastName"].as_str().unwrap_or_default()
                );
                Ok::<_, PsaError>(PsaTechnician {
                    member_id: resource_id.to_string(),
                    name: name.trim().to_owned(),
                    email: resource["email"].as_str().map(str::to_owned),
                })
            })
            .await
            .map_err(|err| (*err).clone())
    }

    /// The ticket, then its company and its contact at the same time (each needs only the
    /// ticket's ids): two calls in sequence, three in all.
    async fn ticket(
        &self,
        connection: &PsaConnection,
        ticket_id: &str,
    ) -> Result<TicketContact, PsaError> {
        let id: u64 = ticket_id
            .parse()
            .map_err(|_| PsaError::NotFound("ticket"))?;
        let ticket = self.item(connection, "Tickets", id, "ticket").await?;
        let company_id = ticket["companyID"].as_u64();
        let contact_id = ticket["contactID"].as_u64();
        let (company, contact) = tokio::join!(
            async {
                match company_id {
                    Some(company_id) => Some(
                        self.item(connection, "Companies", company_id, "company")
                            .await
                            .ok(),
                    ),
                    None => None,
                }
            },
            async {
                match contact_id {
                    Some(contact_id) => Some(
                        self.item(connection, "Contacts", contact_id, "contact")
                            .await,
                    ),
                    None => None,
                }
            }
        );
        let company = company_id.map(|company_id| PsaCompany {
            id: company_id.to_string(),
            name: company
                .flatten()
                .and_then(|c| c["companyName"].as_str().map(str::to_owned))
                .unwrap_or_default(),
        });
        let contact = match (contact_id, contact) {
            (Some(contact_id), Some(contact)) => {
                let contact = contact?;
                let text = |key: &str| contact[key].as_str().map(str::to_owned);
                Some(PsaContact {
                    id: contact_id.to_string(),
                    name: format!(
                        "{} {}",
                        contact["firstName"].as_str().unwrap_or_default(),
                        contact["lastName"].as_str().unwrap_or_default()
                    )
                    .trim()
                    .to_owned(),
                    emails: clean_list([
                        text("emailAddress"),
                        text("emailAddress2"),
                        text("emailAddress3"),
                    ]),
                    mobile: clean_list([text("mobilePhone")]).into_iter().next(),
                })
            }
            _ => None,
        };
        Ok(TicketContact {
            ticket_id: id.to_string(),
            summary: ticket["title"].as_str().unwrap_or_default().to_owned(),
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
        let body = serde_json::json!({
            "title": "Vouch",
            "description": text,
            "noteType": INTERNAL_NOTE_TYPE,
            "publish": INTERNAL_NOTE_PUBLISH,
        });
        self.call(
            connection,
            reqwest::Method::POST,
            &format!("Tickets/{id}/Notes"),
            Some(body),
            "ticket",
        )
        .await
        .map(|_| ())
    }

    /// The checks, in order (each a harmless read; nothing is written):
    ///
    /// 1. `zone`: the zone lookup for the API user (never the cached zone); Autotask answers
    ///    an unknown user with a non-2xx (404 or 500 "Zone information could not be
    ///    determined"): `psa_api_user_unknown`.
    /// 2. `credentials`: `GET {zone}v1.0/Version` with the three headers. 401 is a wrong
    ///    secret (or user) (`psa_credentials_rejected`); any other non-2xx but 429 and 5xx is
    ///    taken as the integration code refused (`psa_integration_code_rejected`), showing
    ///    Autotask's own `errors` text ([`INTEGRATION_CODE_REFUSAL`]).
    /// 3. `read_tickets`: `GET Tickets/query` for one ticket; 403 is `psa_permission_missing`.
    async fn test_connection(&self, connection: &PsaConnection) -> Vec<ConnectionCheck> {
        let mut checks = CheckList::default();
        let rest = ["credentials", "read_tickets"];
        self.zones.invalidate(&self.zone_key(connection)).await;
        let outcome = match self.lookup_zone_raw(connection).await {
            Err(err) => Err(match err {
                PsaError::Misconfigured(_) => CheckFailure::new(err.code(), err.to_string()),
                other => CheckFailure::of_transport(PSA, &other),
            }),
            Ok(Ok(zone)) => {
                self.zones
                    .insert(self.zone_key(connection), zone.clone())
                    .await;
                Ok(zone)
            }
            Ok(Err((status, body))) => Err(match status {
                429 | 502..=504 => CheckFailure::of_status(PSA, status),
                _ => CheckFailure::new(
                    ErrorCode::PsaApiUserUnknown,
                    format!(
                        "Autotask's zone lookup knows no API user with this user name{}. Check the API user name (Admin > Resources/Users > the API user > Credentials, an address like vouch@EXAMPLE.APIUSER.com) and save it in the connection.",
                        errors_text(&body)
                    ),
                ),
            }),
        };
        let zone = match outcome {
            Ok(zone) => {
                checks.record_gate(
                    "zone",
                    Ok("Autotask's zone lookup found the API user's zone.".to_owned()),
                );
                zone
            }
            Err(failure) => {
                checks.record_gate("zone", Err(failure));
                checks.skip_all_if_blocked(&rest);
                return checks.finish();
            }
        };

        let outcome = match self.probe(connection, &zone, "Version").await {
            Err(err) => Err(CheckFailure::of_transport(PSA, &err)),
            Ok((200, body)) => Ok(format!(
                "Autotask accepted the API user, its secret and the integration code{}.",
                body.as_str()
                    .or_else(|| body["apiVersions"][0].as_str())
                    .map(|v| format!(" (API {})", psa_text(v)))
                    .unwrap_or_default()
            )),
            Ok((401, _)) => Err(CheckFailure::new(
                ErrorCode::PsaCredentialsRejected,
                "Autotask refused the API user's secret (401). Check the secret (Admin > Resources/Users > the API user > Credentials: generate a new one if it was lost) and save it in the connection.",
            )),
            Ok((status @ (429 | 500..=599), _)) => Err(CheckFailure::of_status(PSA, status)),
            Ok((_, body)) => Err(CheckFailure::new(
                ErrorCode::PsaIntegrationCodeRejected,
                format!(
                    "Autotask refused the integration code{}. Use the API user's tracking identifier (Admin > Resources/Users > the API user > API Tracking Identifier, \"Custom (Internal Integration)\") and save it in the connection.",
                    errors_text(&body)
                ),
            )),
        };
        checks.record_gate("credentials", outcome);
        if checks.skip_all_if_blocked(&rest[1..]) {
            return checks.finish();
        }

        let query = r#"Tickets/query?search={"filter":[{"op":"gt","field":"id","value":0}],"MaxRecords":1}"#;
        let outcome = match self.probe(connection, &zone, query).await {
            Err(err) => Err(CheckFailure::of_transport(PSA, &err)),
            Ok((200, _)) => Ok("The API user can read tickets.".to_owned()),
            Ok((403, body)) => Err(CheckFailure::new(
                ErrorCode::PsaPermissionMissing,
                format!(
                    "Autotask refused to let the API user read tickets{}. Give the API user a security level that may view tickets, contacts and companies and add ticket notes (Admin > Resources/Users > the API user > Security Level), then test again.",
                    errors_text(&body)
                ),
            )),
            Ok((status, _)) => Err(CheckFailure::of_status(PSA, status)),
        };
        checks.record("read_tickets", outcome);
        checks.finish()
    }

    // --- The PSA's companies ---

    /// `POST /Companies/query` with `MaxRecords` and a `filter` (`companyName` `contains`
    /// the search, else every id) -> `{items: [{id, companyName, webAddress}], pageDetails}`.
    /// Autotask pages by `pageDetails.nextPageUrl` (a GET), not by number: page `n` follows
    /// it `n - 1` times (each page of the list is cached above this).
    async fn companies(
        &self,
        connection: &PsaConnection,
        search: Option<&str>,
        page: u32,
        page_size: u32,
    ) -> Result<PsaCompanyPage, PsaError> {
        let page_size = page_size.clamp(1, MAX_COMPANY_PAGE_SIZE);
        let filter = match search.map(str::trim).filter(|s| !s.is_empty()) {
            Some(search) => {
                serde_json::json!([{ "op": "contains", "field": "companyName", "value": search }])
            }
            None => serde_json::json!([{ "op": "gte", "field": "id", "value": 0 }]),
        };
        let body = serde_json::json!({
            "MaxRecords": page_size,
            "IncludeFields": ["id", "companyName", "webAddress"],
            "filter": filter,
        });
        let mut answer = self
            .call(
                connection,
                reqwest::Method::POST,
                "Companies/query",
                Some(body),
                "company",
            )
            .await?;
        let zone = self.zone(connection).await?;
        for _ in 1..page.max(1) {
            match next_page_url(&answer, &zone)? {
                Some(next) => {
                    answer = self
                        .call_at(connection, reqwest::Method::GET, next, None, "company")
                        .await?;
                }
                None => {
                    return Ok(PsaCompanyPage {
                        items: Vec::new(),
                        has_more: false,
                    });
                }
            }
        }
        let items = answer["items"]
            .as_array()
            .ok_or_else(|| PsaError::Unexpected("no items in the answer".into()))?
            .iter()
            .filter_map(|company| {
                Some(PsaCompanyListing {
                    id: company["id"].as_u64()?.to_string(),
                    name: company["companyName"].as_str()?.to_owned(),
                    website: company["webAddress"]
                        .as_str()
                        .map(str::trim)
                        .filter(|w| !w.is_empty())
                        .map(str::to_owned),
                })
            })
            .collect();
        Ok(PsaCompanyPage {
            has_more: next_page_url(&answer, &zone)?.is_some(),
            items,
        })
    }

    /// `POST /Contacts/query` filtered on `companyID`: each contact's `emailAddress`,
    /// `emailAddress2` and `emailAddress3`.
    async fn company_contact_emails(
        &self,
        connection: &PsaConnection,
        company_id: &str,
        limit: u32,
    ) -> Result<Vec<Vec<String>>, PsaError> {
        let id: u64 = company_id
            .parse()
            .map_err(|_| PsaError::NotFound("company"))?;
        let body = serde_json::json!({
            "MaxRecords": limit.clamp(1, MAX_COMPANY_CONTACTS),
            "IncludeFields": ["id", "emailAddress", "emailAddress2", "emailAddress3"],
            "filter": [{ "op": "eq", "field": "companyID", "value": id }],
        });
        let answer = self
            .call(
                connection,
                reqwest::Method::POST,
                "Contacts/query",
                Some(body),
                "company",
            )
            .await?;
        Ok(answer["items"]
            .as_array()
            .ok_or_else(|| PsaError::Unexpected("no items in the answer".into()))?
            .iter()
            .map(|contact| {
                clean_list(
                    ["emailAddress", "emailAddress2", "emailAddress3"]
                        .into_iter()
                        .map(|key| contact[key].as_str().map(str::to_owned)),
                )
            })
            .collect())
    }
}

/// What an Autotask check calls the PSA.
const PSA: &str = "Autotask";

/// How Vouch reads Autotask's answer to a wrong integration code (unconfirmed: the vendor's
/// documents do not say): any non-2xx of `Version` other than 401 (the secret), 429 and 5xx,
/// with Autotask's own `{"errors": [...]}` text shown to the admin. The sandbox answers 403.
pub const INTEGRATION_CODE_REFUSAL: &str = "non-2xx other than 401, 429, 5xx";

/// `: "…"` with Autotask's own `errors` text, when its answer has one.
fn errors_text(body: &serde_json::Value) -> String {
    let texts: Vec<String> = body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e.as_str().or_else(|| e["message"].as_str()))
                .map(psa_text)
                .collect()
        })
        .unwrap_or_default();
    if texts.is_empty() {
        String::new()
    } else {
        format!(" (Autotask says: \"{}\")", psa_text(&texts.join(" ")))
    }
}

impl Autotask {
    /// One GET of a test on the zone `zone`: its status and JSON body.
    async fn probe(
        &self,
        connection: &PsaConnection,
        zone: &str,
        path: &str,
    ) -> Result<(u16, serde_json::Value), PsaError> {
        let credentials = Self::credentials(connection)?;
        let url = format!("{zone}v1.0/{path}");
        let response = self
            .upstream
            .send(Idempotency::Idempotent, |client| {
                client
                    .get(&url)
                    .header("ApiIntegrationCode", &credentials.integration_code)
                    .header("UserName", &credentials.api_user)
                    .header("Secret", &credentials.api_secret)
                    .header("Content-Type", "application/json")
            })
            .await?;
        let status = response.status().as_u16();
        Ok((status, body_json(response).await))
    }
}

/// A query answer's `pageDetails.nextPageUrl`, when there is one. The credentials go only to
/// the connection's own zone: a next page elsewhere is refused.
fn next_page_url(answer: &serde_json::Value, zone: &str) -> Result<Option<String>, PsaError> {
    match answer["pageDetails"]["nextPageUrl"].as_str() {
        None | Some("") => Ok(None),
        Some(next) => {
            let same_zone = url::Url::parse(next)
                .ok()
                .zip(url::Url::parse(zone).ok())
                .is_some_and(|(next, zone)| {
                    next.origin() == zone.origin() && next.path().starts_with(zone.path())
                });
            if same_zone {
                Ok(Some(next.to_owned()))
            } else {
                Err(PsaError::Unexpected(
                    "a next page outside the connection's zone".into(),
                ))
            }
        }
    }
}
