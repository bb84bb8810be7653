//! The PSA's companies and suggested company mappings. The handlers parse, call one method of
//! `core::companies::CompaniesService` and map its answer; accepted suggestions are mapped
//! (and audited) exactly as `PUT /v1/company-mappings` maps.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi, Tags};
use uuid::Uuid;

use super::ApiError;
use super::auth::AdminApiKey;
use super::setup::CompanyMappingDto;
use crate::app::AppContext;
use crate::core::companies::{
    AcceptItem, AcceptResult, CompanyPageView, CompanyView, Shortfall, Suggestion, Suggestions,
    Unmatched,
};
use crate::core::suggestions::Evidence;
use crate::domain::{AcceptOutcome, ErrorCode, MatchConfidence, MatchEvidenceKind};

#[derive(Tags)]
enum ApiTags {
    /// The PSA's companies, and the tenant each most likely belongs to.
    Companies,
}

/// The tenant a company is mapped to now.
#[derive(Debug, Object)]
pub struct CurrentMappingDto {
    /// Vouch's id of the mapping (to remove it: `DELETE /api/v1/company-mappings/{id}`).
    pub mapping_id: Uuid,
    /// Vouch's id of the tenant.
    pub tenant_id: Uuid,
    /// The tenant's display name.
    pub tenant_name: String,
}

/// A company of the PSA.
#[derive(Debug, Object)]
pub struct PsaCompanyDto {
    /// The company's id in the PSA (ConnectWise company id, HaloPSA client id, Autotask
    /// company id): the `psa_company_id` of a mapping.
    pub id: String,
    /// The company's name in the PSA.
    pub name: String,
    /// Its website or domain field, as typed in the PSA, when it has one.
    #[oai(nullable)]
    pub website: Option<String>,
    /// The tenant it is mapped to, if it is.
    #[oai(nullable)]
    pub mapping: Option<CurrentMappingDto>,
}

impl From<CompanyView> for PsaCompanyDto {
    fn from(c: CompanyView) -> Self {
        PsaCompanyDto {
            id: c.id,
            name: c.name,
            website: c.website,
            mapping: c.mapping.map(|m| CurrentMappingDto {
                mapping_id: m.mapping_id,
                tenant_id: m.tenant_id,
                tenant_name: m.tenant_name,
            }),
        }
    }
}

/// One page of the PSA's companies.
#[derive(Debug, Object)]
pub struct PsaCompanyPageDto {
    /// This page's number (1-based).
    pub page: u32,
    /// The most companies a page holds.
    pub page_size: u32,
    /// The companies, in the PSA's order.
    pub items: Vec<PsaCompanyDto>,
    /// Whether the PSA has more companies: ask for `page + 1`.
    pub has_more: bool,
}

impl From<CompanyPageView> for PsaCompanyPageDto {
    fn from(p: CompanyPageView) -> Self {
        PsaCompanyPageDto {
            page: p.page,
            page_size: p.page_size,
            items: p.items.into_iter().map(Into::into).collect(),
            has_more: p.has_more,
        }
    }
}

/// One piece of evidence linking a company to a tenant.
#[derive(Debug, Object)]
pub struct EvidenceDto {
    /// What kind of evidence.
    pub kind: MatchEvidenceKind,
    /// What it scores on its own, out of 100.
    pub score: u8,
    /// In words, e.g. "7 contacts at contoso.com, a verified domain of Contoso".
    pub text: String,
}

impl From<Evidence> for EvidenceDto {
    fn from(e: Evidence) -> Self {
        EvidenceDto {
            kind: e.kind,
            score: e.score,
            text: e.text,
        }
    }
}

/// The tenant suggested for an unmapped PSA company. Accept it as it is with
/// `POST /api/v1/company-mappings/suggestions/accept`.
#[derive(Debug, Object)]
pub struct SuggestionDto {
    /// The PSA connection the company belongs to.
    pub psa_connection_id: Uuid,
    /// The PSA connection's name.
    pub psa_connection_name: String,
    /// The company's id in the PSA.
    pub psa_company_id: String,
    /// The company's name in the PSA.
    pub psa_company_name: String,
    /// Vouch's id of the suggested tenant.
    pub tenant_id: Uuid,
    /// The suggested tenant's display name.
    pub tenant_name: String,
    /// How strongly the evidence points to this tenant, out of 100.
    pub score: u8,
    /// The score in a word: `high` (80 or more), `medium` (60 to 79), `low`.
    pub confidence: MatchConfidence,
    /// The evidence, strongest first.
    pub evidence: Vec<EvidenceDto>,
    /// The evidence in one sentence.
    pub summary: String,
}

impl From<Suggestion> for SuggestionDto {
    fn from(s: Suggestion) -> Self {
        let summary = s
            .tenant
            .evidence
            .iter()
            .map(|e| e.text.clone())
            .collect::<Vec<_>>()
            .join("; ");
        SuggestionDto {
            psa_connection_id: s.psa_connection_id,
            psa_connection_name: s.psa_connection_name,
            psa_company_id: s.psa_company_id,
            psa_company_name: s.psa_company_name,
            tenant_id: s.tenant.tenant_id,
            tenant_name: s.tenant.tenant_name,
            score: s.tenant.score,
            confidence: s.tenant.confidence,
            evidence: s.tenant.evidence.into_iter().map(Into::into).collect(),
            summary,
        }
    }
}

/// An unmapped company that nothing links to a tenant: map it by hand.
#[derive(Debug, Object)]
pub struct UnmatchedCompanyDto {
    /// The PSA connection the company belongs to.
    pub psa_connection_id: Uuid,
    /// The company's id in the PSA.
    pub psa_company_id: String,
    /// The company's name in the PSA.
    pub psa_company_name: String,
}

impl From<Unmatched> for UnmatchedCompanyDto {
    fn from(u: Unmatched) -> Self {
        UnmatchedCompanyDto {
            psa_connection_id: u.psa_connection_id,
            psa_company_id: u.psa_company_id,
            psa_company_name: u.psa_company_name,
        }
    }
}

/// Something Vouch could not read, so the suggestions may be incomplete.
#[derive(Debug, Object)]
pub struct ShortfallDto {
    /// The PSA connection that could not be read, if it was one.
    #[oai(nullable)]
    pub psa_connection_id: Option<Uuid>,
    /// The tenant whose domains could not be read from Microsoft, if it was one.
    #[oai(nullable)]
    pub tenant_id: Option<Uuid>,
    /// The error's code.
    pub code: ErrorCode,
    /// What happened and what to do.
    pub message: String,
}

impl From<Shortfall> for ShortfallDto {
    fn from(s: Shortfall) -> Self {
        ShortfallDto {
            psa_connection_id: s.psa_connection_id,
            tenant_id: s.tenant_id,
            code: s.code,
            message: s.message,
        }
    }
}

/// Suggested mappings for the unmapped companies.
#[derive(Debug, Object)]
pub struct SuggestionsDto {
    /// One per unmapped company with a likely tenant, best first.
    pub suggestions: Vec<SuggestionDto>,
    /// The unmapped companies nothing links to a tenant.
    pub unmatched: Vec<UnmatchedCompanyDto>,
    /// What could not be read (a PSA, a company's contacts, a tenant's domains).
    pub incomplete: Vec<ShortfallDto>,
}

impl From<Suggestions> for SuggestionsDto {
    fn from(s: Suggestions) -> Self {
        SuggestionsDto {
            suggestions: s.suggestions.into_iter().map(Into::into).collect(),
            unmatched: s.unmatched.into_iter().map(Into::into).collect(),
            incomplete: s.shortfalls.into_iter().map(Into::into).collect(),
        }
    }
}

/// A suggestion to accept (as `GET /api/v1/company-mappings/suggestions` gave it; other
/// fields of a suggestion are ignored).
#[derive(Debug, Object)]
pub struct AcceptSuggestionDto {
    /// The PSA connection the company belongs to.
    pub psa_connection_id: Uuid,
    /// The company's id in the PSA.
    #[oai(validator(max_length = 256))]
    pub psa_company_id: String,
    /// The company's name, as shown in lists and notes.
    #[oai(validator(max_length = 200))]
    pub psa_company_name: String,
    /// Vouch's id of the tenant to map it to.
    pub tenant_id: Uuid,
}

/// The suggestions to accept.
#[derive(Debug, Object)]
pub struct AcceptRequest {
    /// 1 to 500 suggestions.
    pub suggestions: Vec<AcceptSuggestionDto>,
}

/// What accepting one suggestion did.
#[derive(Debug, Object)]
pub struct AcceptResultDto {
    /// The PSA connection of the company.
    pub psa_connection_id: Uuid,
    /// The company's id in the PSA.
    pub psa_company_id: String,
    /// `created`, `kept` (already mapped to that tenant) or `failed` (nothing changed).
    pub outcome: AcceptOutcome,
    /// The mapping made or kept.
    #[oai(nullable)]
    pub mapping: Option<CompanyMappingDto>,
    /// Why it failed: the code `PUT /api/v1/company-mappings` would answer
    /// (`company_already_mapped` when the company is mapped to another tenant).
    #[oai(nullable)]
    pub code: Option<ErrorCode>,
    /// What to do, for a failure (it names the tenant the company is mapped to).
    #[oai(nullable)]
    pub message: Option<String>,
}

impl From<AcceptResult> for AcceptResultDto {
    fn from(r: AcceptResult) -> Self {
        let (code, message) = match r.error {
            Some((code, message)) => (Some(code), Some(message)),
            None => (None, None),
        };
        AcceptResultDto {
            psa_connection_id: r.psa_connection_id,
            psa_company_id: r.psa_company_id,
            outcome: r.outcome,
            mapping: r.mapping.map(Into::into),
            code,
            message,
        }
    }
}

/// The result of each suggestion, in the order given.
#[derive(Debug, Object)]
pub struct AcceptResponse {
    /// One per suggestion given.
    pub results: Vec<AcceptResultDto>,
}

pub struct CompaniesApi;

#[OpenApi(tag = "ApiTags::Companies")]
impl CompaniesApi {
    /// List the PSA's companies, read through its API, each with its current mapping.
    ///
    /// Paged as the PSA pages (`has_more` says whether there is a next page). Pages are
    /// cached for `cache.psa_companies.ttl_seconds` (a minute by default): a company just
    /// added in the PSA may take that long to appear.
    #[oai(
        path = "/v1/psa-connections/:id/companies",
        method = "get",
        operation_id = "psa_connection_companies"
    )]
    async fn list(
        &self,
        auth: AdminApiKey,
        ctx: Data<&Arc<AppContext>>,
        /// The PSA connection's id.
        id: Path<Uuid>,
        /// Only companies whose name contains this (as the PSA searches).
        #[oai(validator(max_length = 200))]
        search: Query<Option<String>>,
        /// The page, from 1 (the default).
        page: Query<Option<u32>>,
        /// Companies per page: 1 to 100, 50 by default.
        page_size: Query<Option<u32>>,
    ) -> Result<Json<PsaCompanyPageDto>, ApiError> {
        let page = ctx
            .companies
            .list_companies(
                auth.msp_id(),
                id.0,
                search.0.as_deref(),
                page.0,
                page_size.0,
            )
            .await?;
        Ok(Json(page.into()))
    }

    /// Suggest a tenant for each unmapped PSA company, with the evidence in words.
    ///
    /// Evidence: the e-mail domains of the company's contacts (read through the PSA, the
    /// first 200 contacts) against the tenants' verified domains (read from Microsoft Graph),
    /// the company's website or domain field, and the similarity of its name to the tenant's.
    /// Reads at most 1,000 companies per connection. What could not be read is listed in
    /// `incomplete`; the rest is still suggested.
    #[oai(
        path = "/v1/company-mappings/suggestions",
        method = "get",
        operation_id = "company_mappings_suggestions"
    )]
    async fn suggestions(
        &self,
        auth: AdminApiKey,
        ctx: Data<&Arc<AppContext>>,
        /// Only this PSA connection's companies.
        psa_connection_id: Query<Option<Uuid>>,
    ) -> Result<Json<SuggestionsDto>, ApiError> {
        let suggestions = ctx
            .companies
            .suggestions(auth.msp_id(), psa_connection_id.0)
            .await?;
        Ok(Json(suggestions.into()))
    }

    /// Accept suggested mappings: each is mapped as `PUT /api/v1/company-mappings` maps.
    ///
    /// One result per suggestion, in order. Each is checked and audited on its own, and is
    /// made whole or not at all: a company already mapped to another tenant fails with
    /// `company_already_mapped`, naming that tenant, and the others are still mapped.
    #[oai(
        path = "/v1/company-mappings/suggestions/accept",
        method = "post",
        operation_id = "company_mappings_suggestions_accept"
    )]
    async fn accept(
        &self,
        auth: AdminApiKey,
        ctx: Data<&Arc<AppContext>>,
        body: Json<AcceptRequest>,
    ) -> Result<Json<AcceptResponse>, ApiError> {
        let items = body
            .0
            .suggestions
            .into_iter()
            .map(|s| AcceptItem {
                psa_connection_id: s.psa_connection_id,
                psa_company_id: s.psa_company_id,
                psa_company_name: s.psa_company_name,
                tenant_id: s.tenant_id,
            })
            .collect();
        let results = ctx
            .companies
            .accept(auth.msp_id(), &auth.actor(), items)
            .await?;
        Ok(Json(AcceptResponse {
            results: results.into_iter().map(Into::into).collect(),
        }))
    }
}
