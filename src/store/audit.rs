//! The append-only audit log: there is deliberately no update or delete.

use chrono::{DateTime, Utc};
use std::collections::HashMap;

use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::entities::{audit_event, verification};
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

/// What the console's audit page asks for: more filters than [`AuditQuery`], a page at a
/// time. Every filter left `None` matches every entry.
#[derive(Debug, Clone, Default)]
pub struct AuditSearch {
    pub msp_id: Uuid,
    /// Entries by any of these actors (their `actor_id`: a console user's id and the ids of
    /// the technician records linked to them).
    pub actor_ids: Option<Vec<String>>,
    /// Entries about this tenant: about a user a verification of the tenant was for, or
    /// about the tenant itself (its subject id is one of `tenant_subject_ids`).
    pub tenant: Option<(Uuid, Vec<String>)>,
    /// Entries whose subject's name or id contains this text (case-insensitive).
    pub user: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<AuditOutcome>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub offset: u64,
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

impl Store {
    /// The entries [`AuditSearch`] asks for, newest first.
    pub async fn search_audit(&self, search: &AuditSearch) -> Result<Vec<AuditEvent>, StoreError> {
        let mut select =
            audit_event::Entity::find().filter(audit_event::Column::MspId.eq(search.msp_id));
        if let Some(actor_ids) = &search.actor_ids {
            select = select.filter(audit_event::Column::ActorId.is_in(actor_ids.clone()));
        }
        if let Some((tenant_id, subject_ids)) = &search.tenant {
            let users = Query::select()
                .column(verification::Column::UserObjectId)
                .from(verification::Entity)
                .and_where(verification::Column::MspId.eq(search.msp_id))
                .and_where(verification::Column::TenantId.eq(*tenant_id))
                .to_owned();
            select = select.filter(
                Condition::any()
                    .add(
                        Condition::all()
                            .add(audit_event::Column::SubjectKind.eq("user"))
                            .add(audit_event::Column::SubjectId.in_subquery(users)),
                    )
                    .add(
                        Condition::all()
                            .add(audit_event::Column::SubjectKind.eq("tenant"))
                            .add(audit_event::Column::SubjectId.is_in(subject_ids.clone())),
                    ),
            );
        }
        if let Some(user) = &search.user {
            let escaped: String = user
                .to_lowercase()
                .chars()
                .flat_map(|c| match c {
                    '%' | '_' | '\\' => vec!['\\', c],
                    c => vec![c],
                })
                .collect();
            let pattern = || LikeExpr::new(format!("%{escaped}%")).escape('\\');
            let lower = |column: audit_event::Column| Expr::expr(Func::lower(Expr::col(column)));
            select = select.filter(
                Condition::any()
                    .add(lower(audit_event::Column::SubjectName).like(pattern()))
                    .add(lower(audit_event::Column::SubjectId).like(pattern())),
            );
        }
        if let Some(action) = &search.action {
            select = select.filter(audit_event::Column::Action.eq(action.clone()));
        }
        if let Some(outcome) = search.outcome {
            select = select.filter(audit_event::Column::Outcome.eq(outcome));
        }
        if let Some(since) = search.since {
            select = select.filter(audit_event::Column::OccurredAt.gte(since));
        }
        if let Some(until) = search.until {
            select = select.filter(audit_event::Column::OccurredAt.lt(until));
        }
        Ok(select
            .order_by_desc(audit_event::Column::OccurredAt)
            .order_by_desc(audit_event::Column::Id)
            .offset(search.offset)
            .limit(search.limit.clamp(1, 10_001))
            .all(self.connection())
            .await?
            .into_iter()
            .map(audit_from_model)
            .collect())
    }

    /// The actions the MSP's audit log holds, in order (the audit page's action filter).
    pub async fn audit_actions(&self, msp_id: Uuid) -> Result<Vec<String>, StoreError> {
        Ok(audit_event::Entity::find()
            .select_only()
            .column(audit_event::Column::Action)
            .distinct()
            .filter(audit_event::Column::MspId.eq(msp_id))
            .order_by_asc(audit_event::Column::Action)
            .into_tuple::<String>()
            .all(self.connection())
            .await?)
    }

    /// How many verifications and password resets the MSP started since `since`.
    pub async fn count_started_since(
        &self,
        msp_id: Uuid,
        since: DateTime<Utc>,
    ) -> Result<(u64, u64), StoreError> {
        use super::entities::password_reset;
        use sea_orm::PaginatorTrait;
        let verifications = verification::Entity::find()
            .filter(verification::Column::MspId.eq(msp_id))
            .filter(verification::Column::CreatedAt.gte(since))
            .count(self.connection())
            .await?;
        let resets = password_reset::Entity::find()
            .filter(password_reset::Column::MspId.eq(msp_id))
            .filter(password_reset::Column::CreatedAt.gte(since))
            .count(self.connection())
            .await?;
        Ok((verifications, resets))
    }

    /// The tenant and PSA connection of each of `ids` that is a verification of `msp_id`.
    pub async fn verification_scopes(
        &self,
        msp_id: Uuid,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, (Uuid, Option<Uuid>)>, StoreError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows: Vec<(Uuid, Uuid, Option<Uuid>)> = verification::Entity::find()
            .select_only()
            .column(verification::Column::Id)
            .column(verification::Column::TenantId)
            .column(verification::Column::PsaConnectionId)
            .filter(verification::Column::MspId.eq(msp_id))
            .filter(verification::Column::Id.is_in(ids.to_vec()))
            .into_tuple()
            .all(self.connection())
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, tenant, connection)| (id, (tenant, connection)))
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
