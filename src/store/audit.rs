//! The append-only audit log: there is deliberately no update or delete.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::entities::audit_event;
use super::{Store, StoreError};
use crate::domain::{ActorKind, AuditCategory, AuditOutcome};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditActor {
    /// Who: a technician, an API key, Vouch itself...
    pub kind: ActorKind,
    pub id: Option<String>,
    pub name: Option<String>,
}

/// An entry to append. Holds no secret by construction: there is no field for one, and
/// `details` must be built from non-secret values.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEvent {
    pub msp_id: Uuid,
    pub actor: AuditActor,
    pub action: String,
    pub subject_kind: Option<String>,
    pub subject_id: Option<String>,
    pub subject_name: Option<String>,
    pub psa_ticket_id: Option<String>,
    pub outcome: AuditOutcome,
    pub upstream_request_id: Option<String>,
    pub details: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    /// `security` for fraud reports and lifted holds.
    pub category: AuditCategory,
    pub event: NewAuditEvent,
}

#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub msp_id: Uuid,
    pub action: Option<String>,
    pub subject_id: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Only entries of this category (the security events, say).
    pub category: Option<AuditCategory>,
    pub limit: u64,
}

fn audit_from_model(m: audit_event::Model) -> AuditEvent {
    AuditEvent {
        id: m.id,
        occurred_at: m.occurred_at,
        category: m.category,
        event: NewAuditEvent {
            msp_id: m.msp_id,
            actor: AuditActor {
                kind: m.actor_kind,
                id: m.actor_id,
                name: m.actor_name,
            },
            action: m.action,
            subject_kind: m.subject_kind,
            subject_id: m.subject_id,
            subject_name: m.subject_name,
            psa_ticket_id: m.psa_ticket_id,
            outcome: m.outcome,
            upstream_request_id: m.upstream_request_id,
            details: m.details,
        },
    }
}

impl Store {
    pub async fn append(&self, event: NewAuditEvent) -> Result<AuditEvent, StoreError> {
        append_on(self.connection(), event).await
    }

    pub async fn query(&self, query: AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        let mut select =
            audit_event::Entity::find().filter(audit_event::Column::MspId.eq(query.msp_id));
        if let Some(action) = query.action {
            select = select.filter(audit_event::Column::Action.eq(action));
        }
        if let Some(subject_id) = query.subject_id {
            select = select.filter(audit_event::Column::SubjectId.eq(subject_id));
        }
        if let Some(since) = query.since {
            select = select.filter(audit_event::Column::OccurredAt.gte(since));
        }
        if let Some(until) = query.until {
            select = select.filter(audit_event::Column::OccurredAt.lt(until));
        }
        if let Some(category) = query.category {
            select = select.filter(audit_event::Column::Category.eq(category));
        }
        Ok(select
            .order_by_desc(audit_event::Column::OccurredAt)
            .order_by_desc(audit_event::Column::Id)
            .limit(query.limit.clamp(1, 10_000))
            .all(self.connection())
            .await?
            .into_iter()
            .map(audit_from_model)
            .collect())
    }
}

/// Appends `event` on `conn`: a transaction, so that a change and its audit entry are
/// written together or not at all.
pub(crate) async fn append_on(
    conn: &impl sea_orm::ConnectionTrait,
    event: NewAuditEvent,
) -> Result<AuditEvent, StoreError> {
    append_categorised_on(conn, event, AuditCategory::General).await
}

/// Like [`append_on`], the entry filed under `category`.
pub(crate) async fn append_categorised_on(
    conn: &impl sea_orm::ConnectionTrait,
    event: NewAuditEvent,
    category: AuditCategory,
) -> Result<AuditEvent, StoreError> {
    let model = audit_event::ActiveModel {
        // v7 ids sort by time, so ties on `occurred_at` still list in append order.
        id: Set(Uuid::now_v7()),
        msp_id: Set(event.msp_id),
        occurred_at: Set(Utc::now()),
        actor_kind: Set(event.actor.kind),
        actor_id: Set(event.actor.id),
        actor_name: Set(event.actor.name),
        action: Set(event.action),
        subject_kind: Set(event.subject_kind),
        subject_id: Set(event.subject_id),
        subject_name: Set(event.subject_name),
        psa_ticket_id: Set(event.psa_ticket_id),
        outcome: Set(event.outcome),
        upstream_request_id: Set(event.upstream_request_id),
        details: Set(event.details),
        category: Set(category),
    };
    let model = audit_event::Entity::insert(model)
        .exec_with_returning(conn)
        .await?;
    Ok(audit_from_model(model))
}
