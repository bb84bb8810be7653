//! The technicians the MSP's PSAs vouched for on pod loads, and blocking them.
//!
//! A technician is recorded the first time a PSA vouches for them (`PodService`), per PSA
//! connection and PSA member id. Their last action is the newest verification or password
//! reset they asked for through a pod, read from those records (so it needs no bookkeeping
//! of its own). A blocked technician's pod loads and pod calls are refused with
//! `technician_blocked` (`core::pod`); blocking and unblocking are audited.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::core::error::CoreError;
use crate::domain::{AuditOutcome, PsaKind};
use crate::store::Store;
use crate::store::audit::{AuditActor, NewAuditEvent};
use crate::store::psa_connections::{Technician, TechnicianAction, TechnicianBlock};

/// A technician as the admin sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TechnicianView {
    pub id: Uuid,
    pub psa_connection_id: Uuid,
    /// `None` when the connection is gone (its technicians go with it, so only briefly).
    pub psa_connection_name: Option<String>,
    pub psa_kind: Option<PsaKind>,
    /// Who the PSA says they are (ConnectWise member identifier, Halo agent id, Autotask
    /// resource id).
    pub psa_member_id: String,
    pub name: String,
    pub email: Option<String>,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: Option<DateTime<Utc>>,
    /// What they last did through a pod, and when.
    pub last_action: Option<(TechnicianAction, DateTime<Utc>)>,
    pub blocked_at: Option<DateTime<Utc>>,
    pub blocked_by: Option<String>,
    /// The console user this technician is, when an admin linked them.
    pub console_user_id: Option<Uuid>,
}

#[derive(Clone)]
pub struct TechnicianService {
    store: Store,
}

impl TechnicianService {
    pub fn new(store: Store) -> TechnicianService {
        TechnicianService { store }
    }

    /// The MSP's technicians, most recently seen first.
    pub async fn list(&self, msp_id: Uuid) -> Result<Vec<TechnicianView>, CoreError> {
        let technicians = self.store.list_technicians(msp_id).await?;
        let connections: HashMap<Uuid, (String, PsaKind)> = self
            .store
            .list_connections(msp_id)
            .await?
            .into_iter()
            .map(|c| (c.id, (c.name, c.kind)))
            .collect();
        let actions = self.store.last_technician_actions(msp_id).await?;
        Ok(technicians
            .into_iter()
            .map(|t| {
                let connection = connections.get(&t.psa_connection_id);
                let last_action = actions.get(&t.id).copied();
                view(t, connection, last_action)
            })
            .collect())
    }

    /// Blocks the technician's Vouch actions (their pod loads and pod calls are refused, on
    /// every instance at once). Blocking a blocked technician changes nothing.
    pub async fn block(
        &self,
        msp_id: Uuid,
        actor: &AuditActor,
        id: Uuid,
    ) -> Result<TechnicianView, CoreError> {
        self.set_blocked(msp_id, actor, id, true).await
    }

    /// Lifts a block. Unblocking a technician who is not blocked changes nothing.
    pub async fn unblock(
        &self,
        msp_id: Uuid,
        actor: &AuditActor,
        id: Uuid,
    ) -> Result<TechnicianView, CoreError> {
        self.set_blocked(msp_id, actor, id, false).await
    }

    /// Links technician `id` to console user `console_user` of the same MSP (`None`
    /// unlinks), so the audit shows the technician's entries under the console user's name.
    /// Audited.
    pub async fn link_console_user(
        &self,
        msp_id: Uuid,
        actor: &AuditActor,
        id: Uuid,
        console_user: Option<Uuid>,
    ) -> Result<TechnicianView, CoreError> {
        let technician = match self.store.get_technician(id).await? {
            Some(t) if t.msp_id == msp_id => t,
            _ => return Err(not_found()),
        };
        let user = match console_user {
            None => None,
            Some(user_id) => match self.store.get_console_user(user_id).await? {
                Some(user) if user.msp_id == msp_id => Some(user),
                _ => {
                    return Err(CoreError::InvalidInput {
                        field: "console_user",
                        problem: "is not a console user of your MSP. Pick one from the list"
                            .to_owned(),
                    });
                }
            },
        };
        let audit = NewAuditEvent {
            msp_id,
            actor: actor.clone(),
            action: if user.is_some() {
                "technician.link"
            } else {
                "technician.unlink"
            }
            .to_owned(),
            subject_kind: Some("technician".to_owned()),
            subject_id: Some(id.to_string()),
            subject_name: Some(technician.display_name.clone()),
            psa_ticket_id: None,
            outcome: AuditOutcome::Success,
            upstream_request_id: None,
            details: serde_json::json!({
                "psa_connection_id": technician.psa_connection_id,
                "before": { "console_user_id": technician.console_user_id },
                "after": { "console_user_id": user.as_ref().map(|u| u.id) },
            }),
        };
        let current = self
            .store
            .set_technician_console_user(msp_id, id, user.map(|u| u.id), audit)
            .await?
            .ok_or_else(not_found)?;
        let connection = self.store.get_connection(current.psa_connection_id).await?;
        let actions = self.store.last_technician_actions(msp_id).await?;
        let connection = connection.map(|c| (c.name, c.kind));
        Ok(view(
            current,
            connection.as_ref(),
            actions.get(&id).copied(),
        ))
    }

    async fn set_blocked(
        &self,
        msp_id: Uuid,
        actor: &AuditActor,
        id: Uuid,
        blocked: bool,
    ) -> Result<TechnicianView, CoreError> {
        let technician = match self.store.get_technician(id).await? {
            Some(t) if t.msp_id == msp_id => t,
            _ => return Err(not_found()),
        };
        let current = if technician.blocked_at.is_some() == blocked {
            // Already as asked: nothing to change or audit.
            technician
        } else {
            let block = blocked.then(|| TechnicianBlock {
                at: Utc::now(),
                by: actor
                    .name
                    .clone()
                    .or_else(|| actor.id.clone())
                    .unwrap_or_else(|| "an administrator".to_owned()),
            });
            let audit = NewAuditEvent {
                msp_id,
                actor: actor.clone(),
                action: if blocked {
                    "technician.block"
                } else {
                    "technician.unblock"
                }
                .to_owned(),
                subject_kind: Some("technician".to_owned()),
                subject_id: Some(id.to_string()),
                subject_name: Some(technician.display_name.clone()),
                psa_ticket_id: None,
                outcome: AuditOutcome::Success,
                upstream_request_id: None,
                details: serde_json::json!({
                    "psa_connection_id": technician.psa_connection_id,
                    "psa_member_id": technician.psa_member_id,
                    "before": { "blocked": !blocked, "blocked_at": technician.blocked_at },
                    "after": { "blocked": blocked, "blocked_at": block.as_ref().map(|b| b.at) },
                }),
            };
            self.store
                .set_technician_block(id, block, audit)
                .await?
                .ok_or_else(not_found)?
        };
        let connection = self.store.get_connection(current.psa_connection_id).await?;
        let actions = self.store.last_technician_actions(msp_id).await?;
        let connection = connection.map(|c| (c.name, c.kind));
        Ok(view(
            current,
            connection.as_ref(),
            actions.get(&id).copied(),
        ))
    }
}

fn not_found() -> CoreError {
    CoreError::NotFoundHere {
        message: "No technician with this id belongs to your MSP. List them with GET /api/v1/technicians.".to_owned(),
    }
}

fn view(
    t: Technician,
    connection: Option<&(String, PsaKind)>,
    last_action: Option<(TechnicianAction, DateTime<Utc>)>,
) -> TechnicianView {
    TechnicianView {
        id: t.id,
        psa_connection_id: t.psa_connection_id,
        psa_connection_name: connection.map(|(name, _)| name.clone()),
        psa_kind: connection.map(|(_, kind)| *kind),
        psa_member_id: t.psa_member_id,
        name: t.display_name,
        email: t.email,
        first_seen_at: t.created_at,
        last_seen_at: t.last_seen_at,
        last_action,
        blocked_at: t.blocked_at,
        blocked_by: t.blocked_by,
        console_user_id: t.console_user_id,
    }
}
