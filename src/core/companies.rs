//! The PSA's companies as the MSP admin maps them: listed through the PSA (paged, briefly
//! cached), suggested a tenant each (the rules are in [`super::suggestions`]), and the
//! suggestions accepted, each exactly like a `PUT /v1/company-mappings`.
//!
//! Nothing here knows a PSA's wire: companies and their contacts' addresses come through the
//! adapter trait, tenants' verified domains through Graph's `/organization`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures_util::StreamExt;
use moka::future::Cache;
use uuid::Uuid;

use crate::config::CacheLimits;
use crate::core::directory::Directory;
use crate::core::error::CoreError;
use crate::core::setup::{MappingInput, MappingOutcome, MappingView, SetupService};
use crate::core::suggestions::{self, CompanyFacts, TenantFacts, TenantMatch};
use crate::domain::{AcceptOutcome, ErrorCode};
use crate::psa::{
    MAX_COMPANY_CONTACTS, MAX_COMPANY_PAGE_SIZE, PsaAdapters, PsaCompanyPage, PsaError,
};
use crate::store::Store;
use crate::store::audit::AuditActor;
use crate::store::psa_connections::PsaConnection;
use crate::store::tenants::Tenant;

/// The default number of companies on a page of the list.
pub const DEFAULT_COMPANY_PAGE_SIZE: u32 = 50;
/// The highest page number asked for.
pub const MAX_COMPANY_PAGE: u32 = 10_000;
/// The longest search text.
pub const MAX_COMPANY_SEARCH_CHARS: usize = 200;
/// Suggestions read at most this many companies of each connection (pages of
/// [`MAX_COMPANY_PAGE_SIZE`]).
pub const MAX_SUGGESTION_COMPANIES: u32 = 1_000;
/// PSA reads made at once while suggesting (PSAs rate-limit).
const CONCURRENT_PSA_READS: usize = 4;
/// The most suggestions one accept call takes.
pub const MAX_ACCEPT_ITEMS: usize = 500;

/// A failure of the company services: Vouch's own (not found, invalid input...) or the PSA's.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CompanyError {
    #[error("{0}")]
    Core(CoreError),
    #[error("{0}")]
    Psa(PsaError),
}

impl CompanyError {
    pub fn code(&self) -> ErrorCode {
        match self {
            CompanyError::Core(err) => err.code(),
            CompanyError::Psa(err) => err.code(),
        }
    }
}

impl From<CoreError> for CompanyError {
    fn from(err: CoreError) -> Self {
        CompanyError::Core(err)
    }
}

impl From<crate::store::StoreError> for CompanyError {
    fn from(err: crate::store::StoreError) -> Self {
        CompanyError::Core(err.into())
    }
}

impl From<PsaError> for CompanyError {
    fn from(err: PsaError) -> Self {
        CompanyError::Psa(err)
    }
}

/// A company mapping as a company list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentMapping {
    pub mapping_id: Uuid,
    pub tenant_id: Uuid,
    pub tenant_name: String,
}

/// A company of the PSA, with its mapping if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompanyView {
    pub id: String,
    pub name: String,
    pub website: Option<String>,
    pub mapping: Option<CurrentMapping>,
}

/// One page of the PSA's companies.
#[derive(Debug, Clone)]
pub struct CompanyPageView {
    pub page: u32,
    pub page_size: u32,
    pub items: Vec<CompanyView>,
    pub has_more: bool,
}

/// The tenant suggested for one unmapped company.
#[derive(Debug, Clone)]
pub struct Suggestion {
    pub psa_connection_id: Uuid,
    pub psa_connection_name: String,
    pub psa_company_id: String,
    pub psa_company_name: String,
    pub tenant: TenantMatch,
}

/// An unmapped company nothing links to a tenant.
#[derive(Debug, Clone)]
pub struct Unmatched {
    pub psa_connection_id: Uuid,
    pub psa_company_id: String,
    pub psa_company_name: String,
}

/// Something the suggestions could not read, so they may be incomplete.
#[derive(Debug, Clone)]
pub struct Shortfall {
    pub psa_connection_id: Option<Uuid>,
    pub tenant_id: Option<Uuid>,
    pub code: ErrorCode,
    pub message: String,
}

/// Every suggestion for the MSP's unmapped companies.
#[derive(Debug, Clone, Default)]
pub struct Suggestions {
    /// Best first.
    pub suggestions: Vec<Suggestion>,
    pub unmatched: Vec<Unmatched>,
    pub shortfalls: Vec<Shortfall>,
}

/// A suggestion to accept.
#[derive(Debug, Clone)]
pub struct AcceptItem {
    pub psa_connection_id: Uuid,
    pub psa_company_id: String,
    pub psa_company_name: String,
    pub tenant_id: Uuid,
}

/// What accepting one suggestion did.
#[derive(Debug, Clone)]
pub struct AcceptResult {
    pub psa_connection_id: Uuid,
    pub psa_company_id: String,
    pub outcome: AcceptOutcome,
    /// The mapping made or kept.
    pub mapping: Option<MappingView>,
    /// Why nothing changed (`outcome` `failed`), as the PUT would answer.
    pub error: Option<(ErrorCode, String)>,
}

/// What the company services need.
pub struct CompaniesDeps {
    pub store: Store,
    pub psa: PsaAdapters,
    pub directory: Directory,
    pub setup: SetupService,
    /// `cache.psa_companies`: pages of a PSA's company list.
    pub company_pages: CacheLimits,
    /// `cache.psa_company_contacts`: a company's contacts' e-mail addresses.
    pub company_contacts: CacheLimits,
    /// `cache.tenant_domains`: a tenant's verified domains, from Graph.
    pub tenant_domains: CacheLimits,
}

/// Which page of which list: the connection and its version, the search, page and size.
type PageKey = (Uuid, i64, String, u32, u32);

/// Which company's contacts: the connection and its version, the company id.
type ContactsKey = (Uuid, i64, String);

/// The PSA's companies, suggested and accepted mappings.
#[derive(Clone)]
pub struct CompaniesService {
    store: Store,
    psa: PsaAdapters,
    directory: Directory,
    setup: SetupService,
    pages: Cache<PageKey, PsaCompanyPage>,
    contacts: Cache<ContactsKey, Arc<Vec<Vec<String>>>>,
    domains: Cache<Uuid, Arc<Vec<String>>>,
}

/// `text` trimmed; `None` when empty. Refused when too long or holding NUL.
fn clean_search(search: Option<&str>) -> Result<Option<String>, CoreError> {
    let Some(search) = search.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if search.contains('\0') {
        return Err(CoreError::InvalidInput {
            field: "search",
            problem: "must not contain a NUL character".into(),
        });
    }
    if search.chars().count() > MAX_COMPANY_SEARCH_CHARS {
        return Err(CoreError::InvalidInput {
            field: "search",
            problem: format!("must be at most {MAX_COMPANY_SEARCH_CHARS} characters long"),
        });
    }
    Ok(Some(search.to_owned()))
}

impl CompaniesService {
    pub fn new(deps: CompaniesDeps) -> CompaniesService {
        CompaniesService {
            store: deps.store,
            psa: deps.psa,
            directory: deps.directory,
            setup: deps.setup,
            pages: deps.company_pages.build(),
            contacts: deps.company_contacts.build(),
            domains: deps.tenant_domains.build(),
        }
    }

    async fn own_connection(&self, msp_id: Uuid, id: Uuid) -> Result<PsaConnection, CoreError> {
        match self.store.get_connection(id).await? {
            Some(connection) if connection.msp_id == msp_id => Ok(connection),
            _ => Err(CoreError::PsaConnectionNotFound),
        }
    }

    /// A page of the PSA's companies, from the cache when read within
    /// `cache.psa_companies.ttl_seconds` (a changed connection is read afresh).
    async fn page(
        &self,
        connection: &PsaConnection,
        search: Option<&str>,
        page: u32,
        page_size: u32,
    ) -> Result<PsaCompanyPage, PsaError> {
        let key = (
            connection.id,
            connection.updated_at.timestamp_micros(),
            search.unwrap_or_default().to_lowercase(),
            page,
            page_size,
        );
        let adapter = self.psa.adapter(connection.kind).clone();
        self.pages
            .try_get_with(key, async move {
                adapter.companies(connection, search, page, page_size).await
            })
            .await
            .map_err(|err| (*err).clone())
    }

    /// Each contact's e-mail addresses (the first [`MAX_COMPANY_CONTACTS`] contacts), cached
    /// like the pages.
    async fn contacts(
        &self,
        connection: &PsaConnection,
        company_id: &str,
    ) -> Result<Arc<Vec<Vec<String>>>, PsaError> {
        let key = (
            connection.id,
            connection.updated_at.timestamp_micros(),
            company_id.to_owned(),
        );
        let adapter = self.psa.adapter(connection.kind).clone();
        self.contacts
            .try_get_with(key, async move {
                adapter
                    .company_contact_emails(connection, company_id, MAX_COMPANY_CONTACTS)
                    .await
                    .map(Arc::new)
            })
            .await
            .map_err(|err| (*err).clone())
    }

    /// The tenant's verified domains, read from Microsoft Graph (`/organization`) with its
    /// Identity Management integration (else Vouch's app where consented), cached for
    /// `cache.tenant_domains`. When Graph cannot be read, the domains Microsoft gave when the
    /// tenant was connected, and why.
    async fn verified_domains(&self, tenant: &Tenant) -> (Arc<Vec<String>>, Option<CoreError>) {
        let read = self
            .domains
            .try_get_with(tenant.id, async {
                let credentials = self.directory.graph_credentials(tenant).await?;
                let organization = self
                    .directory
                    .microsoft()
                    .graph
                    .organization(&credentials)
                    .await
                    .map_err(CoreError::from)?;
                Ok::<_, CoreError>(Arc::new(
                    organization
                        .map(|org| {
                            org.verified_domains
                                .into_iter()
                                .map(|d| d.name.to_ascii_lowercase())
                                .collect()
                        })
                        .unwrap_or_default(),
                ))
            })
            .await;
        match read {
            Ok(domains) => (domains, None),
            Err(err) => {
                tracing::warn!(tenant = %tenant.id, code = err.code().as_str(), "reading verified domains failed; using the stored ones");
                (
                    Arc::new(tenant.verified_domains.clone()),
                    Some((*err).clone()),
                )
            }
        }
    }

    /// The mappings of the MSP by (connection, company id).
    async fn mappings(
        &self,
        msp_id: Uuid,
        connection: Option<Uuid>,
    ) -> Result<HashMap<(Uuid, String), MappingView>, CoreError> {
        Ok(self
            .setup
            .list_mappings(msp_id, connection)
            .await?
            .into_iter()
            .map(|m| ((m.psa_connection_id, m.psa_company_id.clone()), m))
            .collect())
    }

    /// Page `page` (1-based) of the PSA's companies whose name contains `search`, each with
    /// its current mapping.
    pub async fn list_companies(
        &self,
        msp_id: Uuid,
        connection_id: Uuid,
        search: Option<&str>,
        page: Option<u32>,
        page_size: Option<u32>,
    ) -> Result<CompanyPageView, CompanyError> {
        let search = clean_search(search)?;
        let page = page.unwrap_or(1);
        if !(1..=MAX_COMPANY_PAGE).contains(&page) {
            return Err(CoreError::InvalidInput {
                field: "page",
                problem: format!("must be between 1 and {MAX_COMPANY_PAGE}"),
            }
            .into());
        }
        let page_size = page_size.unwrap_or(DEFAULT_COMPANY_PAGE_SIZE);
        if !(1..=MAX_COMPANY_PAGE_SIZE).contains(&page_size) {
            return Err(CoreError::InvalidInput {
                field: "page_size",
                problem: format!("must be between 1 and {MAX_COMPANY_PAGE_SIZE}"),
            }
            .into());
        }
        let connection = self.own_connection(msp_id, connection_id).await?;
        let listed = self
            .page(&connection, search.as_deref(), page, page_size)
            .await?;
        let mappings = self.mappings(msp_id, Some(connection.id)).await?;
        Ok(CompanyPageView {
            page,
            page_size,
            has_more: listed.has_more,
            items: listed
                .items
                .into_iter()
                .map(|c| CompanyView {
                    mapping: mappings
                        .get(&(connection.id, c.id.clone()))
                        .map(|m| CurrentMapping {
                            mapping_id: m.id,
                            tenant_id: m.tenant_id,
                            tenant_name: m.tenant_name.clone(),
                        }),
                    id: c.id,
                    name: c.name,
                    website: c.website,
                })
                .collect(),
        })
    }

    /// For each unmapped company of the MSP's PSA connections (or of one), the tenant its
    /// users most likely live in, with the evidence in words. A PSA or tenant that cannot be
    /// read is named in `shortfalls`; the rest is still suggested.
    pub async fn suggestions(
        &self,
        msp_id: Uuid,
        connection_id: Option<Uuid>,
    ) -> Result<Suggestions, CompanyError> {
        let connections = match connection_id {
            Some(id) => vec![self.own_connection(msp_id, id).await?],
            None => self.store.list_connections(msp_id).await?,
        };
        let mut out = Suggestions::default();
        let mut tenants = Vec::new();
        for tenant in self.store.list_tenants(msp_id).await? {
            let (domains, problem) = self.verified_domains(&tenant).await;
            if let Some(err) = problem {
                out.shortfalls.push(Shortfall {
                    psa_connection_id: None,
                    tenant_id: Some(tenant.id),
                    code: err.code(),
                    message: format!(
                        "The verified domains of {} could not be read from Microsoft ({}); the ones it had when connected were used.",
                        tenant.display_name, err
                    ),
                });
            }
            tenants.push(TenantFacts {
                id: tenant.id,
                name: tenant.display_name.clone(),
                verified_domains: domains.as_ref().clone(),
            });
        }
        let mapped: HashSet<(Uuid, String)> = self
            .mappings(msp_id, connection_id)
            .await?
            .into_keys()
            .collect();
        for connection in &connections {
            let mut companies = Vec::new();
            let mut page = 1;
            loop {
                match self
                    .page(connection, None, page, MAX_COMPANY_PAGE_SIZE)
                    .await
                {
                    Ok(listed) => {
                        companies.extend(listed.items);
                        if !listed.has_more
                            || page * MAX_COMPANY_PAGE_SIZE >= MAX_SUGGESTION_COMPANIES
                        {
                            break;
                        }
                        page += 1;
                    }
                    Err(err) => {
                        out.shortfalls.push(Shortfall {
                            psa_connection_id: Some(connection.id),
                            tenant_id: None,
                            code: err.code(),
                            message: format!(
                                "The companies of {} could not be read: {err}",
                                connection.name
                            ),
                        });
                        break;
                    }
                }
            }
            let unmapped: Vec<_> = companies
                .into_iter()
                .filter(|c| !mapped.contains(&(connection.id, c.id.clone())))
                .collect();
            let tenants = &tenants;
            let read: Vec<_> = futures_util::stream::iter(unmapped)
                .map(|company| async move {
                    let contacts = if tenants.is_empty() {
                        Ok(Arc::new(Vec::new()))
                    } else {
                        self.contacts(connection, &company.id).await
                    };
                    (company, contacts)
                })
                .buffered(CONCURRENT_PSA_READS)
                .collect()
                .await;
            let mut contact_failure: Option<PsaError> = None;
            let mut unreadable = 0usize;
            for (company, contacts) in read {
                let contacts = match contacts {
                    Ok(contacts) => contacts.as_ref().clone(),
                    Err(err) => {
                        unreadable += 1;
                        contact_failure.get_or_insert(err);
                        Vec::new()
                    }
                };
                let facts = CompanyFacts {
                    name: company.name.clone(),
                    website: company.website.clone(),
                    contacts,
                };
                match suggestions::best_match(&facts, tenants) {
                    Some(tenant) => out.suggestions.push(Suggestion {
                        psa_connection_id: connection.id,
                        psa_connection_name: connection.name.clone(),
                        psa_company_id: company.id,
                        psa_company_name: company.name,
                        tenant,
                    }),
                    None => out.unmatched.push(Unmatched {
                        psa_connection_id: connection.id,
                        psa_company_id: company.id,
                        psa_company_name: company.name,
                    }),
                }
            }
            if let Some(err) = contact_failure {
                out.shortfalls.push(Shortfall {
                    psa_connection_id: Some(connection.id),
                    tenant_id: None,
                    code: err.code(),
                    message: format!(
                        "The contacts of {unreadable} compan{} of {} could not be read ({err}); those were matched by website and name only.",
                        if unreadable == 1 { "y" } else { "ies" },
                        connection.name
                    ),
                });
            }
        }
        out.suggestions.sort_by(|a, b| {
            b.tenant
                .score
                .cmp(&a.tenant.score)
                .then_with(|| a.psa_company_name.cmp(&b.psa_company_name))
        });
        Ok(out)
    }

    /// Maps each accepted suggestion, one by one, each exactly as `PUT /v1/company-mappings`
    /// would (checked, audited, all or nothing for that company): a company already mapped
    /// to another tenant fails with `company_already_mapped`, naming that tenant, and the
    /// others go on.
    pub async fn accept(
        &self,
        msp_id: Uuid,
        actor: &AuditActor,
        items: Vec<AcceptItem>,
    ) -> Result<Vec<AcceptResult>, CompanyError> {
        if items.is_empty() {
            return Err(CoreError::InvalidInput {
                field: "suggestions",
                problem: "must list at least one suggestion".into(),
            }
            .into());
        }
        if items.len() > MAX_ACCEPT_ITEMS {
            return Err(CoreError::InvalidInput {
                field: "suggestions",
                problem: format!("must list at most {MAX_ACCEPT_ITEMS} suggestions"),
            }
            .into());
        }
        let mut results = Vec::with_capacity(items.len());
        for item in items {
            let answer = self
                .setup
                .put_mapping(
                    msp_id,
                    actor,
                    MappingInput {
                        psa_connection_id: item.psa_connection_id,
                        psa_company_id: item.psa_company_id.clone(),
                        psa_company_name: item.psa_company_name,
                        tenant_id: item.tenant_id,
                    },
                )
                .await;
            results.push(match answer {
                Ok((view, outcome)) => AcceptResult {
                    psa_connection_id: item.psa_connection_id,
                    psa_company_id: item.psa_company_id,
                    outcome: match outcome {
                        MappingOutcome::Created => AcceptOutcome::Created,
                        MappingOutcome::Kept => AcceptOutcome::Kept,
                    },
                    mapping: Some(view),
                    error: None,
                },
                Err(err) => AcceptResult {
                    psa_connection_id: item.psa_connection_id,
                    psa_company_id: item.psa_company_id,
                    outcome: AcceptOutcome::Failed,
                    mapping: None,
                    error: Some((err.code(), err.to_string())),
                },
            });
        }
        Ok(results)
    }
}
