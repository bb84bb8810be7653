//! One entry of the append-only audit log. Never holds a secret.

use sea_orm::entity::prelude::*;

use crate::domain::{ActorKind, AuditCategory, AuditOutcome};

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub msp_id: Uuid,
    pub occurred_at: DateTimeUtc,
    pub actor_kind: ActorKind,
    pub actor_id: Option<String>,
    pub actor_name: Option<String>,
    pub action: String,
    pub subject_kind: Option<String>,
    pub subject_id: Option<String>,
    pub subject_name: Option<String>,
    pub psa_ticket_id: Option<String>,
    pub outcome: AuditOutcome,
    pub upstream_request_id: Option<String>,
    pub details: Json,
    /// `security` for fraud reports and lifted holds; `general` otherwise.
    pub category: AuditCategory,
}

impl ActiveModelBehavior for ActiveModel {}
