//! What the console's home shows at a glance: the integrations and PSA connections that need
//! an admin (an expired or soon-expiring secret, a failed check, a failed connection test),
//! today's verifications and resets, and the users who recently reported a verification as
//! fraud ("It's not me").

use chrono::{DateTime, NaiveTime, Utc};
use uuid::Uuid;

use crate::core::error::CoreError;
use crate::core::integrations::{ExpiryState, IntegrationsService};
use crate::core::psa_connections::{ConnectionStatus, PsaConnectionService};
use crate::domain::{AuditCategory, AuditOutcome, IntegrationStatus};
use crate::store::Store;
use crate::store::audit::AuditQuery;

/// How many fraud reports the home lists.
pub const RECENT_FRAUD_REPORTS: usize = 5;

/// Something an admin should look at, with where to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attention {
    /// What it is ("Contoso: Identity Management", "ConnectWise (Northwind)").
    pub subject: String,
    /// What is wrong and what to do, in words.
    pub problem: String,
    /// The console page that fixes it.
    pub href: &'static str,
}

/// A user who said a verification was not theirs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FraudReport {
    pub at: DateTime<Utc>,
    pub user: String,
    pub ticket: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Overview {
    pub attention: Vec<Attention>,
    pub verifications_today: u64,
    pub resets_today: u64,
    pub fraud_reports: Vec<FraudReport>,
}

pub const INTEGRATIONS_PATH: &str = "/console/integrations";
pub const PSA_CONNECTIONS_PATH: &str = "/console/psa-connections";

#[derive(Clone)]
pub struct OverviewService {
    store: Store,
}

impl OverviewService {
    pub fn new(store: Store) -> OverviewService {
        OverviewService { store }
    }

    /// The MSP's overview at `now` ("today" is the UTC day).
    pub async fn overview(
        &self,
        msp_id: Uuid,
        integrations: &IntegrationsService,
        connections: &PsaConnectionService,
        now: DateTime<Utc>,
    ) -> Result<Overview, CoreError> {
        let mut attention = Vec::new();
        let listed = integrations
            .list(msp_id)
            .await
            .map_err(|err| CoreError::Store(err.to_string()))?;
        for i in listed {
            let subject = format!("{}: {}", i.tenant_name, kind_name(i.kind));
            if i.status == IntegrationStatus::Failed {
                attention.push(Attention {
                    subject: subject.clone(),
                    problem: format!(
                        "Its last check failed{}{}. Open it and re-check, or connect it again.",
                        i.last_check_code
                            .as_deref()
                            .map(|c| format!(" ({c})"))
                            .unwrap_or_default(),
                        i.last_check_message
                            .as_deref()
                            .map(|m| format!(": {m}"))
                            .unwrap_or_default()
                    ),
                    href: INTEGRATIONS_PATH,
                });
            }
            let problem = match i.expiry {
                ExpiryState::Expired => Some(
                    "Its client secret has expired, so Vouch cannot reach this tenant. Make a new secret in Entra ID and enter it."
                        .to_owned(),
                ),
                ExpiryState::ExpiringSoon => Some(format!(
                    "Its client secret expires in {} day(s). Make a new secret in Entra ID and enter it before then.",
                    i.days_left.unwrap_or(0).max(0)
                )),
                _ => None,
            };
            if let Some(problem) = problem {
                attention.push(Attention {
                    subject,
                    problem,
                    href: INTEGRATIONS_PATH,
                });
            }
        }
        for c in connections.list(msp_id).await? {
            if c.status == ConnectionStatus::Failed {
                let test = c.last_test.as_ref();
                attention.push(Attention {
                    subject: format!("{} ({})", c.name, c.kind.display_name()),
                    problem: format!(
                        "Its last connection test{} failed{}. Open it, fix what the check says and test it again.",
                        test.map(|t| format!(" ({})", crate::domain::utc_minute(t.tested_at)))
                            .unwrap_or_default(),
                        test.and_then(|t| t.failed_check.as_deref())
                            .map(|check| format!(" at the {check} check"))
                            .unwrap_or_default()
                    ),
                    href: PSA_CONNECTIONS_PATH,
                });
            }
        }
        let midnight = now.date_naive().and_time(NaiveTime::MIN).and_utc();
        let (verifications_today, resets_today) =
            self.store.count_started_since(msp_id, midnight).await?;
        let security = self
            .store
            .query(AuditQuery {
                msp_id,
                category: Some(AuditCategory::Security),
                limit: 100,
                ..AuditQuery::default()
            })
            .await?;
        let fraud_reports = security
            .into_iter()
            // Fraud reports are the security events about a Microsoft user that are not a
            // lifted hold (console sign-in failures are about console users).
            .filter(|e| {
                e.event.subject_kind.as_deref() == Some("user")
                    && e.event.outcome != AuditOutcome::Lifted
            })
            .take(RECENT_FRAUD_REPORTS)
            .map(|e| FraudReport {
                at: e.occurred_at,
                user: e
                    .event
                    .subject_name
                    .or(e.event.subject_id)
                    .unwrap_or_default(),
                ticket: e.event.psa_ticket_id,
            })
            .collect();
        Ok(Overview {
            attention,
            verifications_today,
            resets_today,
            fraud_reports,
        })
    }
}

fn kind_name(kind: crate::domain::IntegrationKind) -> &'static str {
    match kind {
        crate::domain::IntegrationKind::Authenticator => "Microsoft Authenticator",
        crate::domain::IntegrationKind::IdentityManagement => "M365 Identity Management",
    }
}
