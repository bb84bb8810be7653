//! ConnectWise PSA (Manage): the Hosted API pod.
//!
//! The pod's script performs the Hosted API handshake and sends the member payload here.
//! Vouch verifies it with `system/myMembers/info` on the MSP's own configured site (never
//! a site named by the browser), requires the returned identifier to be the claimed member,
//! and refuses a member of another company than the one configured for the connection.

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use moka::future::Cache;
use serde::Deserialize;
use std::time::Duration;
use uuid::Uuid;

use super::{
    CheckFailure, CheckList, ConnectWiseMember, EmbedLoad, MAX_COMPANY_CONTACTS,
    MAX_COMPANY_PAGE_SIZE, PsaAdapter, PsaCompany, PsaCompanyListing, PsaCompanyPage, PsaContact,
    PsaError, PsaTechnician, TicketContact, VouchedEmbed, body_json, clean_list,
    connection_fingerprint, parse_json, psa_text, status_error,
};
use crate::config::Config;
use crate::domain::{ConnectionCheck, ErrorCode, PsaKind};
use crate::store::psa_connections::PsaConnection;
use crate::telemetry::Metrics;
use crate::upstream::{Idempotency, RetryPolicy, Upstream};
use secrecy::ExposeSecret;

const DEFAULT_CODEBASE: &str = "v4_6_release";

/// Non-secret settings of a ConnectWise connection.
#[derive(Debug, Deserialize)]
struct Settings {
    /// The MSP's ConnectWise company id (login company), e.g. `northwind`.
    company_id: String,
    /// The code base, e.g. `v4_6_release`.
    #[serde(default)]
    codebase: Option<String>,
    /// The integration's `clientId` (falls back to `psa.connectwise.client_id`).
    #[serde(default)]
    client_id: Option<String>,
}

#[derive(Deserialize)]
struct Credentials {
    public_key: String,
    private_key: String,
}

pub struct ConnectWise {
    upstream: Upstream,
    default_client_id: Option<String>,
    /// Members `myMembers/info` vouched for, by connection and [`connection_fingerprint`] of
    /// (company, member id, member hash): `cache.connectwise_members`, one pod session by
    /// default. Only vouched members are kept; a refusal is asked about again.
    members: Cache<(Uuid, [u8; 32]), PsaTechnician>,
}

impl ConnectWise {
    pub fn new(config: &Config, metrics: &Metrics) -> ConnectWise {
        ConnectWise {
            upstream: Upstream::new(
                "psa_connectwise",
                Duration::from_secs(15),
                metrics.clone(),
                RetryPolicy::default(),
            ),
            default_client_id: config.psa.connectwise.client_id.clone(),
            members: config.cache.connectwise_members.build(),
        }
    }

    fn settings(&self, connection: &PsaConnection) -> Result<(Settings, String, String), PsaError> {
        let settings: Settings = parse_json(&connection.settings, "ConnectWise settings")?;
        let client_id = settings
            .client_id
            .clone()
            .or_else(|| self.default_client_id.clone())
            .ok_or_else(|| {
                PsaError::Misconfigured(
                    "no ConnectWise clientId (settings.client_id or psa.connectwise.client_id)"
                        .into(),
                )
            })?;
        let api = format!(
            "{}/{}/apis/3.0",
            connection.base_url.trim_end_matches('/'),
            settings.codebase.as_deref().unwrap_or(DEFAULT_CODEBASE)
        );
        Ok((settings, client_id, api))
    }

    fn authorization(
        &self,
        connection: &PsaConnection,
        company_id: &str,
    ) -> Result<String, PsaError> {
        let credentials: Credentials = serde_json::from_str(connection.credentials.expose_secret())
            .map_err(|_| {
                PsaError::Misconfigured(
                    "ConnectWise credentials need public_key and private_key".into(),
                )
            })?;
        Ok(format!(
            "Basic {}",
            BASE64.encode(format!(
                "{company_id}+{}:{}",
                credentials.public_key, credentials.private_key
            ))
        ))
    }

    async fn get_json(
        &self,
        connection: &PsaConnection,
        path: &str,
        what: &'static str,
    ) -> Result<serde_json::Value, PsaError> {
        let (settings, client_id, api) = self.settings(connection)?;
        let authorization = self.authorization(connection, &settings.company_id)?;
        let url = format!("{api}{path}");
        let response = self
            .upstream
            .send(Idempotency::Idempotent, |client| {
                client
                    .get(&url)
                    .header("Authorization", &authorization)
                    .header("clientId", &client_id)
                    .header("Accept", "application/json")
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
}

/// A ConnectWise `conditions` string literal: in double quotes, `\\` and `"` escaped with a
/// backslash.
fn condition_string(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A query string, each value form-encoded.
fn query(pairs: &[(&str, String)]) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        out.append_pair(name, value);
    }
    out.finish()
}

/// ConnectWise's MemberInfo model, as `system/myMembers/info` answers. Its e-mail address is
/// `defaultEmail` (the Member model's `officeEmail` is not part of it).
#[derive(Deserialize)]
struct MemberInfo {
    identifier: String,
    #[serde(default, rename = "firstName")]
    first_name: Option<String>,
    #[serde(default, rename = "lastName")]
    last_name: Option<String>,
    #[serde(default, rename = "defaultEmail")]
    default_email: Option<String>,
}

impl ConnectWise {
    /// Asks ConnectWise (`myMembers/info`, on the connection's site) whether it vouches for
    /// `member`'s hash; the member it names must be the one claimed.
    async fn check_member(
        &self,
        member: &ConnectWiseMember,
        company_id: &str,
        client_id: &str,
        api: &str,
    ) -> Result<PsaTechnician, PsaError> {
        let cookie = format!(
            "companyName={}; memberHash={}; memberId={}; memberContext=web",
            company_id, member.member_hash, member.memberid
        );
        let url = format!("{api}/system/myMembers/info");
        let response = self
            .upstream
            .send(Idempotency::Idempotent, |client| {
                client
                    .get(&url)
                    .header("Cookie", &cookie)
                    .header("clientId", client_id)
                    .header("Accept", "application/json")
            })
            .await?;
        match response.status().as_u16() {
            200 => {}
            401 | 403 => return Err(PsaError::MemberRejected),
            _ => return Err(status_error(&response, "member")),
        }
        let info: MemberInfo = response
            .json()
            .await
            .map_err(|_| PsaError::Unexpected("unreadable member info".into()))?;
        if !info.identifier.eq_ignore_ascii_case(&member.memberid) {
            return Err(PsaError::MemberRejected);
        }
        let name = [info.first_name, info.last_name]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        Ok(PsaTechnician {
            member_id: info.identifier.clone(),
            name: if name.trim().is_empty() {
                info.identifier
            } else {
                name
            },
            // Only an address is recorded, never a label or an empty string.
            email: info
                .default_email
                .map(|e| e.trim().to_owned())
                .filter(|e| e.contains('@')),
        })
    }
}

#[async_trait]
impl PsaAdapter for ConnectWise {
    fn kind(&self) -> PsaKind {
        PsaKind::ConnectWise
    }

    /// The ticket's screen in ConnectWise's web client: the site's `api-` host without
    /// `api-` (`api-na.myconnectwise.net` is reached as `na.myconnectwise.net`), the code
    /// base, and the service ticket's record id, with the login company.
    async fn ticket_url(&self, connection: &PsaConnection, ticket_id: &str) -> Option<url::Url> {
        let settings: Settings = parse_json(&connection.settings, "ConnectWise settings").ok()?;
        let mut site = url::Url::parse(&connection.base_url).ok()?;
        if let Some(host) = site.host_str().and_then(|h| h.strip_prefix("api-")) {
            let host = host.to_owned();
            site.set_host(Some(&host)).ok()?;
        }
        let codebase = settings.codebase.as_deref().unwrap_or(DEFAULT_CODEBASE);
        let base = site.as_str().trim_end_matches('/').to_owned();
        let mut url = url::Url::parse(&format!(
            "{base}/{codebase}/services/system_io/Service/fv_sr100_request.rpp"
        ))
        .ok()?;
        url.query_pairs_mut()
            .append_pair("service_recid", ticket_id)
            .append_pair("companyName", &settings.company_id);
        Some(url)
    }

    async fn authenticate_embed(
        &self,
        connection: &PsaConnection,
        load: &EmbedLoad,
    ) -> Result<VouchedEmbed, PsaError> {
        let EmbedLoad::ConnectWiseMember(member) = load else {
            return Err(PsaError::Unsigned);
        };
        let (settings, client_id, api) = self.settings(connection)?;
        // The company comes from Vouch's configuration, never from the browser.
        if !member.companyid.eq_ignore_ascii_case(&settings.company_id) {
            return Err(PsaError::WrongCompany);
        }
        let safe = |v: &str| {
            !v.is_empty()
                && v.len() <= 512
                && v.bytes()
                    .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
        };
        if !safe(&member.memberid) || !safe(&member.member_hash) {
            return Err(PsaError::MemberRejected);
        }
        // A reload within the pod session brings the same member and hash, which ConnectWise
        // vouched for already: not asked again. The key holds a digest of the hash, never the
        // hash; a hash ConnectWise never vouched for is asked about (and refused) every time.
        let key = (
            connection.id,
            connection_fingerprint(
                connection,
                &[
                    &settings.company_id,
                    &member.memberid.to_ascii_lowercase(),
                    &member.member_hash,
                ],
            ),
        );
        let technician = self
            .members
            .try_get_with(
                key,
                self.check_member(member, &settings.company_id, &client_id, &api),
            )
            .await
            .map_err(|err| (*err).clone())?;
        Ok(VouchedEmbed {
            technician,
            ticket_id: member.ticket_id.clone(),
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
            .get_json(connection, &format!("/service/tickets/{id}"), "ticket")
            .await?;
        let company = ticket["company"]["id"].as_u64().map(|cid| PsaCompany {
            id: cid.to_string(),
            name: ticket["company"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        });
        let contact = match ticket["contact"]["id"].as_u64() {
            Some(contact_id) => {
                let contact = self
                    .get_json(
                        connection,
                        &format!("/company/contacts/{contact_id}"),
                        "contact",
                    )
                    .await?;
                let items = contact["communicationItems"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let mut emails: Vec<(bool, String)> = items
                    .iter()
                    .filter(|item| item["communicationType"] == "Email")
                    .filter_map(|item| {
                        item["value"]
                            .as_str()
                            .map(|v| (item["defaultFlag"] == true, v.to_owned()))
                    })
                    .collect();
                // Primary (default) address first.
                emails.sort_by_key(|(default, _)| !*default);
                let mobile = items
                    .iter()
                    .filter(|item| item["communicationType"] == "Phone")
                    .find(|item| {
                        item["type"]["name"]
                            .as_str()
                            .is_some_and(|n| n.eq_ignore_ascii_case("mobile"))
                    })
                    .and_then(|item| item["value"].as_str().map(str::to_owned));
                let name = format!(
                    "{} {}",
                    contact["firstName"].as_str().unwrap_or_default(),
                    contact["lastName"].as_str().unwrap_or_default()
                );
                Some(PsaContact {
                    id: contact_id.to_string(),
                    name: name.trim().to_owned(),
                    emails: clean_list(emails.into_iter().map(|(_, e)| Some(e))),
                    mobile,
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
        let (settings, client_id, api) = self.settings(connection)?;
        let authorization = self.authorization(connection, &settings.company_id)?;
        let url = format!("{api}/service/tickets/{id}/notes");
        let body = serde_json::json!({
            "text": text,
            "internalAnalysisFlag": true,
            "detailDescriptionFlag": false,
            "resolutionFlag": false,
        });
        let response = self
            .upstream
            .send(Idempotency::NotIdempotent, |client| {
                client
                    .post(&url)
                    .header("Authorization", &authorization)
                    .header("clientId", &client_id)
                    .json(&body)
            })
            .await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(status_error(&response, "ticket"))
        }
    }

    /// The checks, in order (each a harmless read; nothing is written):
    ///
    /// 1. `company`: `GET {site}/login/companyinfo/{company_id}` (no keys) knows the company id
    ///    on this site; an unknown one answers `null` (`psa_wrong_company`).
    /// 2. `api_keys`: `GET /system/info` with the keys; 401 is `psa_credentials_rejected`.
    ///    A key pair of another company on the same site answers the same 401 (ConnectWise
    ///    checks the pair against the company in the Basic credentials).
    /// 3. `read_tickets`: `GET /service/tickets?pageSize=1`; 403 is `psa_permission_missing`.
    /// 4. `read_contacts`: `GET /company/contacts?pageSize=1`; 403 likewise.
    /// 5. `ticket_notes`: `GET /service/tickets/{id}/notes?pageSize=1` of the ticket found in
    ///    3. Vouch writes nothing during a test, so this read of the notes stands for the right
    ///    to add them ([`NOTES_PROBE`]).
    async fn test_connection(&self, connection: &PsaConnection) -> Vec<ConnectionCheck> {
        let mut checks = CheckList::default();
        let all = ["api_keys", "read_tickets", "read_contacts", "ticket_notes"];
        let (settings, client_id, api) = match self.settings(connection) {
            Ok(found) => found,
            Err(err) => {
                checks.record_gate(
                    "company",
                    Err(CheckFailure::new(err.code(), err.to_string())),
                );
                checks.skip_all_if_blocked(&all);
                return checks.finish();
            }
        };
        let company = settings.company_id.clone();
        let site = connection.base_url.trim_end_matches('/').to_owned();

        let info_url = format!(
            "{site}/login/companyinfo/{}",
            url::form_urlencoded::byte_serialize(company.as_bytes()).collect::<String>()
        );
        let outcome = match self.probe(&info_url, None, &client_id).await {
            Err(err) => Err(CheckFailure::of_transport(PSA, &err)),
            Ok((200, body)) if body.get("CompanyID").is_some_and(|v| !v.is_null()) => {
                Ok(format!("The site knows the company id {company}."))
            }
            Ok((200 | 404, _)) => Err(CheckFailure::new(
                ErrorCode::PsaWrongCompany,
                format!(
                    "This ConnectWise site has no company {company}. Check the company id (the one you sign in to ConnectWise with) and the site URL (your region's, e.g. https://api-na.myconnectwise.net)."
                ),
            )),
            Ok((status, _)) => Err(CheckFailure::of_status(PSA, status)),
        };
        checks.record_gate("company", outcome);
        if checks.skip_all_if_blocked(&all) {
            return checks.finish();
        }

        let authorization = match self.authorization(connection, &company) {
            Ok(authorization) => authorization,
            Err(err) => {
                checks.record_gate(
                    "api_keys",
                    Err(CheckFailure::new(err.code(), err.to_string())),
                );
                checks.skip_all_if_blocked(&all[1..]);
                return checks.finish();
            }
        };
        let get = |path: &str| {
            let url = format!("{api}{path}");
            let authorization = authorization.clone();
            let client_id = client_id.clone();
            async move { self.probe(&url, Some(&authorization), &client_id).await }
        };
        let outcome = match get("/system/info").await {
            Err(err) => Err(CheckFailure::of_transport(PSA, &err)),
            Ok((200, body)) => Ok(format!(
                "ConnectWise accepted the API keys{}.",
                body["version"]
                    .as_str()
                    .map(|v| format!(" (version {})", psa_text(v)))
                    .unwrap_or_default()
            )),
            Ok((401, _)) => Err(CheckFailure::new(
                ErrorCode::PsaCredentialsRejected,
                format!(
                    "ConnectWise refused the public and private key for company {company}. Check that both are the API member's key pair of this company (System > Members > API Members > the member > API Keys), or create a new pair and save it in the connection."
                ),
            )),
            Ok((403, _)) => Err(permission(
                "read the system information",
                "System > Table Setup (Inquire)",
            )),
            Ok((status, _)) => Err(CheckFailure::of_status(PSA, status)),
        };
        checks.record_gate("api_keys", outcome);
        if checks.skip_all_if_blocked(&all[1..]) {
            return checks.finish();
        }

        let mut first_ticket = None;
        let outcome = match get("/service/tickets?pageSize=1&fields=id").await {
            Err(err) => Err(CheckFailure::of_transport(PSA, &err)),
            Ok((200, body)) => {
                first_ticket = body[0]["id"].as_u64();
                Ok("The API member can read service tickets.".to_owned())
            }
            Ok((403, _)) => Err(permission(
                "read service tickets",
                "Service Desk > Service Tickets (Inquire: All)",
            )),
            Ok((status, _)) => Err(CheckFailure::of_status(PSA, status)),
        };
        let tickets_ok = checks.record("read_tickets", outcome);

        let outcome = match get("/company/contacts?pageSize=1&fields=id").await {
            Err(err) => Err(CheckFailure::of_transport(PSA, &err)),
            Ok((200, _)) => Ok("The API member can read contacts.".to_owned()),
            Ok((403, _)) => Err(permission(
                "read contacts",
                "Companies > Contacts (Inquire: All)",
            )),
            Ok((status, _)) => Err(CheckFailure::of_status(PSA, status)),
        };
        checks.record("read_contacts", outcome);

        match (tickets_ok, first_ticket) {
            (false, _) => checks.skip("ticket_notes", "read_tickets"),
            (true, None) => {
                checks.record(
                    "ticket_notes",
                    Ok("No service ticket to read notes of yet: the right to add notes is checked once there is one.".to_owned()),
                );
            }
            (true, Some(id)) => {
                let outcome = match get(&format!("/service/tickets/{id}/notes?pageSize=1")).await {
                    Err(err) => Err(CheckFailure::of_transport(PSA, &err)),
                    Ok((200, _)) => Ok(
                        "The API member can reach ticket notes (Vouch adds internal notes)."
                            .to_owned(),
                    ),
                    Ok((403, _)) => Err(permission(
                        "read and add ticket notes",
                        "Service Desk > Service Tickets (Add and Inquire: All) and Service Desk > Ticket - Internal Notes",
                    )),
                    Ok((status, _)) => Err(CheckFailure::of_status(PSA, status)),
                };
                checks.record("ticket_notes", outcome);
            }
        }
        checks.finish()
    }

    // --- The PSA's companies ---

    /// `GET /company/companies?conditions=name like "%x%"&page=&pageSize=`: a JSON array of
    /// companies (`id`, `identifier`, `name`, `website`). A full page is taken to mean there
    /// may be more (ConnectWise's `Link` header is not read).
    async fn companies(
        &self,
        connection: &PsaConnection,
        search: Option<&str>,
        page: u32,
        page_size: u32,
    ) -> Result<PsaCompanyPage, PsaError> {
        let page_size = page_size.clamp(1, MAX_COMPANY_PAGE_SIZE);
        let mut pairs = vec![
            ("fields", "id,identifier,name,website".to_owned()),
            ("orderBy", "name asc".to_owned()),
            ("page", page.max(1).to_string()),
            ("pageSize", page_size.to_string()),
        ];
        if let Some(search) = search.filter(|s| !s.trim().is_empty()) {
            let search = search.trim();
            pairs.push((
                "conditions",
                format!("name like {}", condition_string(&format!("%{search}%"))),
            ));
        }
        let body = self
            .get_json(
                connection,
                &format!("/company/companies?{}", query(&pairs)),
                "company",
            )
            .await?;
        let rows = body
            .as_array()
            .ok_or_else(|| PsaError::Unexpected("companies are not a list".into()))?;
        let items: Vec<PsaCompanyListing> = rows
            .iter()
            .filter_map(|row| {
                Some(PsaCompanyListing {
                    id: row["id"].as_u64()?.to_string(),
                    name: row["name"].as_str()?.to_owned(),
                    website: row["website"]
                        .as_str()
                        .map(str::trim)
                        .filter(|w| !w.is_empty())
                        .map(str::to_owned),
                })
            })
            .collect();
        Ok(PsaCompanyPage {
            has_more: rows.len() as u32 >= page_size,
            items,
        })
    }

    /// `GET /company/contacts?conditions=company/id=N&pageSize=`: each contact's
    /// `communicationItems` of `communicationType` `Email`.
    async fn company_contact_emails(
        &self,
        connection: &PsaConnection,
        company_id: &str,
        limit: u32,
    ) -> Result<Vec<Vec<String>>, PsaError> {
        let id: u64 = company_id
            .parse()
            .map_err(|_| PsaError::NotFound("company"))?;
        let pairs = [
            ("conditions", format!("company/id={id}")),
            ("fields", "id,communicationItems".to_owned()),
            ("page", "1".to_owned()),
            ("pageSize", limit.clamp(1, MAX_COMPANY_CONTACTS).to_string()),
        ];
        let body = self
            .get_json(
                connection,
                &format!("/company/contacts?{}", query(&pairs)),
                "company",
            )
            .await?;
        let contacts = body
            .as_array()
            .ok_or_else(|| PsaError::Unexpected("contacts are not a list".into()))?;
        Ok(contacts
            .iter()
            .map(|contact| {
                let items = contact["communicationItems"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                clean_list(
                    items
                        .iter()
                        .filter(|item| item["communicationType"] == "Email")
                        .map(|item| item["value"].as_str().map(str::to_owned)),
                )
            })
            .collect())
    }
}

/// What a ConnectWise check calls the PSA.
const PSA: &str = "ConnectWise";

/// The read that stands for the right to add notes in a test (nothing is written): the notes
/// of a ticket, `GET /service/tickets/{id}/notes`, which the API member's security role grants
/// with the same Service Tickets setting as adding them (our choice; ConnectWise has no
/// read-only way to ask whether a role may add).
pub const NOTES_PROBE: &str = "/service/tickets/{id}/notes?pageSize=1";

/// The API member's security role lacks `what` (ConnectWise answered 403).
fn permission(what: &str, setting: &str) -> CheckFailure {
    CheckFailure::new(
        ErrorCode::PsaPermissionMissing,
        format!(
            "ConnectWise refused to let the API member {what} (403). In System > Security Roles, give the API member's role {setting}, then test again."
        ),
    )
}

impl ConnectWise {
    /// One GET of a test: its status and JSON body, or the transport's failure.
    async fn probe(
        &self,
        url: &str,
        authorization: Option<&str>,
        client_id: &str,
    ) -> Result<(u16, serde_json::Value), PsaError> {
        let response = self
            .upstream
            .send(Idempotency::Idempotent, |client| {
                let request = client
                    .get(url)
                    .header("clientId", client_id)
                    .header("Accept", "application/json");
                match authorization {
                    Some(authorization) => request.header("Authorization", authorization),
                    None => request,
                }
            })
            .await?;
        let status = response.status().as_u16();
        Ok((status, body_json(response).await))
    }
}
