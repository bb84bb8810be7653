//! The append-only audit log: query and CSV export.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use sea_orm::ActiveEnum;
use uuid::Uuid;

use super::ApiError;
use super::auth::MspApiKey;
use crate::app::AppContext;
use crate::core::audit::neutralise_formula;
use crate::domain::{ActorKind, AuditCategory, AuditOutcome};
use crate::store::audit::{AuditEvent, AuditQuery};

#[derive(Tags)]
enum ApiTags {
    /// Who did what, to whom, when, on which ticket, with what outcome.
    Audit,
}

/// One audit entry. Never holds a password, a code or a secret.
#[derive(Debug, Object)]
pub struct AuditEntry {
    /// Entry id (time-ordered).
    pub id: Uuid,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// `security` for a security event (a user reported a verification as fraud, an admin
    /// lifted the hold on a user's resets); `general` otherwise.
    pub category: AuditCategory,
    /// Who did it.
    pub actor_kind: ActorKind,
    /// The actor's id (PSA member id, API key prefix...).
    #[oai(nullable)]
    pub actor_id: Option<String>,
    /// The actor's name.
    #[oai(nullable)]
    pub actor_name: Option<String>,
    /// What was done, e.g. `verification.push.start`, `password.reset`.
    pub action: String,
    /// What it was done to: `user`, `tenant`, `share`...
    #[oai(nullable)]
    pub subject_kind: Option<String>,
    /// The subject's id (e.g. the Microsoft user's object id).
    #[oai(nullable)]
    pub subject_id: Option<String>,
    /// The subject's name (e.g. the user principal name).
    #[oai(nullable)]
    pub subject_name: Option<String>,
    /// The PSA ticket, when there was one.
    #[oai(nullable)]
    pub ticket_id: Option<String>,
    /// How the step ended: `success`, `started`, `refused`, or the status a verification
    /// or reset ended in (`approved`, `denied`, `completed`...).
    pub outcome: AuditOutcome,
    /// Microsoft's request id, for support.
    #[oai(nullable)]
    pub upstream_request_id: Option<String>,
    /// Further non-secret facts (error codes, ids).
    pub details: serde_json::Value,
}

impl From<AuditEvent> for AuditEntry {
    fn from(e: AuditEvent) -> Self {
        AuditEntry {
            id: e.id,
            occurred_at: e.occurred_at,
            category: e.category,
            actor_kind: e.event.actor.kind,
            actor_id: e.event.actor.id,
            actor_name: e.event.actor.name,
            action: e.event.action,
            subject_kind: e.event.subject_kind,
            subject_id: e.event.subject_id,
            subject_name: e.event.subject_name,
            ticket_id: e.event.psa_ticket_id,
            outcome: e.event.outcome,
            upstream_request_id: e.event.upstream_request_id,
            details: e.event.details,
        }
    }
}

#[derive(ApiResponse)]
enum CsvExport {
    /// The matching entries as CSV (RFC 4180), newest first.
    #[oai(status = 200, content_type = "text/csv; charset=utf-8")]
    Csv(
        PlainText<String>,
        /// Suggests a file name to browsers.
        #[oai(header = "Content-Disposition")]
        String,
    ),
}

pub struct AuditApi;

#[allow(clippy::too_many_arguments)]
#[OpenApi(prefix_path = "/v1/audit", tag = "ApiTags::Audit")]
impl AuditApi {
    /// Query the audit log, newest first.
    #[oai(path = "/", method = "get", operation_id = "audit_query")]
    async fn query(
        &self,
        auth: MspApiKey,
        ctx: Data<&Arc<AppContext>>,
        /// Only this action (e.g. `password.reset`).
        #[oai(validator(max_length = 256))]
        action: Query<Option<String>>,
        /// Only this subject (e.g. a Microsoft user's object id).
        #[oai(validator(max_length = 256))]
        subject_id: Query<Option<String>>,
        /// From this time on (inclusive).
        since: Query<Option<DateTime<Utc>>>,
        /// Before this time.
        until: Query<Option<DateTime<Utc>>>,
        /// Only this category (`security` for the security events).
        category: Query<Option<AuditCategory>>,
        /// At most this many (default 100, at most 1000).
        limit: Query<Option<u64>>,
    ) -> Result<Json<Vec<AuditEntry>>, ApiError> {
        let events = ctx
            .store
            .query(AuditQuery {
                msp_id: auth.msp_id(),
                action: action.0,
                subject_id: subject_id.0,
                since: since.0,
                until: until.0,
                category: category.0,
                limit: limit.0.unwrap_or(100).clamp(1, 1000),
            })
            .await
            .map_err(|e| ApiError::internal(&e))?;
        Ok(Json(events.into_iter().map(AuditEntry::from).collect()))
    }

    /// Export the audit log as CSV (same filters; at most 10,000 entries).
    #[oai(path = "/export", method = "get", operation_id = "audit_export_csv")]
    async fn export(
        &self,
        auth: MspApiKey,
        ctx: Data<&Arc<AppContext>>,
        /// Only this action.
        #[oai(validator(max_length = 256))]
        action: Query<Option<String>>,
        /// Only this subject.
        #[oai(validator(max_length = 256))]
        subject_id: Query<Option<String>>,
        /// From this time on (inclusive).
        since: Query<Option<DateTime<Utc>>>,
        /// Before this time.
        until: Query<Option<DateTime<Utc>>>,
        /// Only this category (`security` for the security events).
        category: Query<Option<AuditCategory>>,
    ) -> Result<CsvExport, ApiError> {
        let events = ctx
            .store
            .query(AuditQuery {
                msp_id: auth.msp_id(),
                action: action.0,
                subject_id: subject_id.0,
                since: since.0,
                until: until.0,
                category: category.0,
                limit: 10_000,
            })
            .await
            .map_err(|e| ApiError::internal(&e))?;
        let mut writer = csv::Writer::from_writer(Vec::new());
        let header = [
            "occurred_at",
            "action",
            "outcome",
            "actor_kind",
            "actor_id",
            "actor_name",
            "subject_kind",
            "subject_id",
            "subject_name",
            "ticket_id",
            "upstream_request_id",
            "details",
            "category",
        ];
        writer
            .write_record(header)
            .map_err(|e| ApiError::internal(&e))?;
        for e in events {
            let ev = e.event;
            let row = [
                e.occurred_at.to_rfc3339(),
                ev.action,
                ev.outcome.as_str().to_owned(),
                ev.actor.kind.to_value(),
                ev.actor.id.unwrap_or_default(),
                ev.actor.name.unwrap_or_default(),
                ev.subject_kind.unwrap_or_default(),
                ev.subject_id.unwrap_or_default(),
                ev.subject_name.unwrap_or_default(),
                ev.psa_ticket_id.unwrap_or_default(),
                ev.upstream_request_id.unwrap_or_default(),
                ev.details.to_string(),
                e.category.as_str().to_owned(),
            ];
            writer
                .write_record(row.iter().map(|v| neutralise_formula(v)))
                .map_err(|e| ApiError::internal(&e))?;
        }
        let bytes = writer.into_inner().map_err(|e| ApiError::internal(&e))?;
        let text = String::from_utf8(bytes).map_err(|e| ApiError::internal(&e))?;
        Ok(CsvExport::Csv(
            PlainText(text),
            "attachment; filename=\"vouch-audit.csv\"".to_owned(),
        ))
    }
}
