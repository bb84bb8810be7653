//! Reading the audit log as people read it: entries filtered by person, tenant, user,
//! action, outcome and dates, a page at a time or as CSV, each with the name of the person
//! who acted (a technician linked to a console user shows as that user) and a link to its
//! ticket in the PSA.
//!
//! An entry names its ticket (`psa_ticket_id`) but not the PSA connection: that comes from
//! the verification the entry is about (`details.verification_id`), whose connection builds
//! the link through its PSA adapter ([`crate::psa::PsaAdapter::ticket_url`]). An entry about
//! no verification shows its ticket number without a link.

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use uuid::Uuid;

use crate::core::error::CoreError;
use crate::domain::{ActorKind, AuditOutcome};
use crate::psa::PsaAdapters;
use crate::store::Store;
use crate::store::audit::{AuditEvent, AuditSearch};
use crate::store::psa_connections::{PsaConnection, Technician};

/// Entries on one page of the console's audit.
pub const PAGE_SIZE: u64 = 50;
/// The most entries one CSV export holds.
pub const EXPORT_LIMIT: u64 = 10_000;

/// Whose entries: a console user (with the technician records linked to them) or one
/// technician record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Person {
    ConsoleUser(Uuid),
    Technician(Uuid),
}

impl Person {
    /// `user:ID` or `technician:ID`, as the audit page's person filter sends it.
    pub fn parse(value: &str) -> Option<Person> {
        let (kind, id) = value.split_once(':')?;
        let id = id.parse().ok()?;
        match kind {
            "user" => Some(Person::ConsoleUser(id)),
            "technician" => Some(Person::Technician(id)),
            _ => None,
        }
    }

    pub fn value(self) -> String {
        match self {
            Person::ConsoleUser(id) => format!("user:{id}"),
            Person::Technician(id) => format!("technician:{id}"),
        }
    }
}

/// What to show; `None` everywhere shows every entry.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub person: Option<Person>,
    pub tenant: Option<Uuid>,
    /// Part of the user's UPN or object id.
    pub user: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<AuditOutcome>,
    /// The first day shown (UTC).
    pub from: Option<NaiveDate>,
    /// The last day shown (UTC), inclusive.
    pub to: Option<NaiveDate>,
}

impl AuditFilter {
    /// A filter from the page's fields (every value as typed); the first field that does not
    /// parse, with what to do.
    pub fn parse(fields: &AuditFields) -> Result<AuditFilter, CoreError> {
        let text = |v: &str| Some(v.trim().to_owned()).filter(|v| !v.is_empty());
        let date = |field: &'static str, v: &str| -> Result<Option<NaiveDate>, CoreError> {
            match text(v) {
                None => Ok(None),
                Some(v) => NaiveDate::parse_from_str(&v, "%Y-%m-%d")
                    .map(Some)
                    .map_err(|_| CoreError::InvalidInput {
                        field,
                        problem: "is not a date. Pick one, or write it as YYYY-MM-DD".into(),
                    }),
            }
        };
        let person = match text(&fields.person) {
            None => None,
            Some(v) => Some(Person::parse(&v).ok_or(CoreError::InvalidInput {
                field: "person",
                problem: "is not one of the people listed. Pick one from the list".into(),
            })?),
        };
        let tenant = match text(&fields.tenant) {
            None => None,
            Some(v) => Some(v.parse().map_err(|_| CoreError::InvalidInput {
                field: "tenant",
                problem: "is not one of your tenants. Pick one from the list".into(),
            })?),
        };
        let outcome = match text(&fields.outcome) {
            None => None,
            Some(v) => Some(outcome_of(&v).ok_or(CoreError::InvalidInput {
                field: "outcome",
                problem: "is not an outcome Vouch records. Pick one from the list".into(),
            })?),
        };
        let user = text(&fields.user);
        if user.as_ref().is_some_and(|u| u.chars().count() > 320) {
            return Err(CoreError::InvalidInput {
                field: "user",
                problem: "is longer than an address can be. Shorten it".into(),
            });
        }
        let action = text(&fields.action);
        if action.as_ref().is_some_and(|a| a.len() > 256) {
            return Err(CoreError::InvalidInput {
                field: "action",
                problem: "is not an action Vouch records. Pick one from the list".into(),
            });
        }
        let from = date("from", &fields.from)?;
        let to = date("to", &fields.to)?;
        if let (Some(from), Some(to)) = (from, to)
            && to < from
        {
            return Err(CoreError::InvalidInput {
                field: "to",
                problem: "is before the first day. Pick a last day on or after it".into(),
            });
        }
        Ok(AuditFilter {
            person,
            tenant,
            user,
            action,
            outcome,
            from,
            to,
        })
    }
}

/// The audit page's filter fields as sent (a query string).
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct AuditFields {
    pub person: String,
    pub tenant: String,
    pub user: String,
    pub action: String,
    pub outcome: String,
    pub from: String,
    pub to: String,
}

/// Every outcome, in its stored spelling (the outcome filter's choices).
pub fn outcomes() -> Vec<&'static str> {
    use sea_orm::Iterable;
    AuditOutcome::iter().map(AuditOutcome::as_str).collect()
}

fn outcome_of(value: &str) -> Option<AuditOutcome> {
    use sea_orm::Iterable;
    AuditOutcome::iter().find(|o| o.as_str() == value)
}

/// One entry as the page shows it.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub event: AuditEvent,
    /// Who acted, as a person reads it.
    pub actor: String,
    /// The tenant of the verification the entry is about, when it is about one.
    pub tenant_name: Option<String>,
    /// The ticket in the PSA, when the entry names one and its connection is known.
    pub ticket_url: Option<url::Url>,
}

/// A page of entries.
#[derive(Debug, Clone)]
pub struct AuditPage {
    pub rows: Vec<AuditRow>,
    /// Whether there are older entries after this page.
    pub has_more: bool,
}

/// What the filters offer: the MSP's people, tenants and recorded actions.
#[derive(Debug, Clone)]
pub struct AuditChoices {
    /// `(value, label)`: console users (their linked technicians in the label), then the
    /// technicians not linked to anyone.
    pub people: Vec<(String, String)>,
    pub tenants: Vec<(Uuid, String)>,
    pub actions: Vec<String>,
}

#[derive(Clone)]
pub struct AuditService {
    store: Store,
    psa: PsaAdapters,
}

/// Who is who in one MSP: its console users and technicians.
struct People {
    users: HashMap<Uuid, String>,
    technicians: Vec<Technician>,
}

impl People {
    fn technician(&self, id: Uuid) -> Option<&Technician> {
        self.technicians.iter().find(|t| t.id == id)
    }

    /// The name of the actor of `event`: a linked technician shows as their console user.
    fn actor(&self, event: &AuditEvent) -> String {
        let actor = &event.event.actor;
        let id = actor.id.as_deref().and_then(|id| id.parse::<Uuid>().ok());
        match actor.kind {
            ActorKind::Technician => {
                let technician = id.and_then(|id| self.technician(id));
                technician
                    .and_then(|t| t.console_user_id)
                    .and_then(|user| self.users.get(&user).cloned())
                    .or_else(|| technician.map(|t| t.display_name.clone()))
                    .or_else(|| actor.name.clone())
                    .unwrap_or_else(|| "A technician".to_owned())
            }
            ActorKind::ConsoleUser => id
                .and_then(|id| self.users.get(&id).cloned())
                .or_else(|| actor.name.clone())
                .unwrap_or_else(|| "A console user".to_owned()),
            ActorKind::ApiKey => format!(
                "API key {}",
                actor.name.as_deref().or(actor.id.as_deref()).unwrap_or("")
            )
            .trim_end()
            .to_owned(),
            ActorKind::CustomerAdmin => "The customer's admin".to_owned(),
            ActorKind::ShareRecipient => "The share's recipient".to_owned(),
            ActorKind::System => actor.name.clone().unwrap_or_else(|| "Vouch".to_owned()),
        }
    }
}

impl AuditService {
    pub fn new(store: Store, psa: PsaAdapters) -> AuditService {
        AuditService { store, psa }
    }

    async fn people(&self, msp_id: Uuid) -> Result<People, CoreError> {
        let users = self
            .store
            .list_console_users(msp_id)
            .await?
            .into_iter()
            .map(|u| {
                let name = if u.name.trim().is_empty() {
                    u.email
                } else {
                    u.name
                };
                (u.id, name)
            })
            .collect();
        let technicians = self.store.list_technicians(msp_id).await?;
        Ok(People { users, technicians })
    }

    /// What the filters offer.
    pub async fn choices(&self, msp_id: Uuid) -> Result<AuditChoices, CoreError> {
        let people = self.people(msp_id).await?;
        let mut users: Vec<(&Uuid, &String)> = people.users.iter().collect();
        users.sort_by_key(|a| a.1.to_lowercase());
        let mut choices: Vec<(String, String)> = users
            .into_iter()
            .map(|(id, name)| {
                let linked: Vec<&str> = people
                    .technicians
                    .iter()
                    .filter(|t| t.console_user_id == Some(*id))
                    .map(|t| t.display_name.as_str())
                    .collect();
                let label = if linked.is_empty() {
                    name.clone()
                } else {
                    format!("{name} (also {} in the PSA)", linked.join(", "))
                };
                (Person::ConsoleUser(*id).value(), label)
            })
            .collect();
        choices.extend(
            people
                .technicians
                .iter()
                .filter(|t| {
                    t.console_user_id
                        .is_none_or(|u| !people.users.contains_key(&u))
                })
                .map(|t| {
                    (
                        Person::Technician(t.id).value(),
                        format!("{} (PSA technician)", t.display_name),
                    )
                }),
        );
        let mut tenants: Vec<(Uuid, String)> = self
            .store
            .list_tenants(msp_id)
            .await?
            .into_iter()
            .map(|t| (t.id, t.display_name))
            .collect();
        tenants.sort_by_key(|a| a.1.to_lowercase());
        Ok(AuditChoices {
            people: choices,
            tenants,
            actions: self.store.audit_actions(msp_id).await?,
        })
    }

    /// Page `page` (1-based) of the entries `filter` matches, newest first.
    pub async fn page(
        &self,
        msp_id: Uuid,
        filter: &AuditFilter,
        page: u32,
    ) -> Result<AuditPage, CoreError> {
        let people = self.people(msp_id).await?;
        let offset = u64::from(page.max(1) - 1) * PAGE_SIZE;
        let mut events = self
            .search(msp_id, filter, &people, offset, PAGE_SIZE + 1)
            .await?;
        let has_more = events.len() as u64 > PAGE_SIZE;
        events.truncate(PAGE_SIZE as usize);
        Ok(AuditPage {
            rows: self.rows(msp_id, events, &people).await?,
            has_more,
        })
    }

    /// The entries `filter` matches (at most [`EXPORT_LIMIT`]) as CSV (RFC 4180), newest
    /// first; cells a spreadsheet would run as a formula are neutralised.
    pub async fn export_csv(
        &self,
        msp_id: Uuid,
        filter: &AuditFilter,
    ) -> Result<String, CoreError> {
        let people = self.people(msp_id).await?;
        let events = self
            .search(msp_id, filter, &people, 0, EXPORT_LIMIT)
            .await?;
        let rows = self.rows(msp_id, events, &people).await?;
        let mut writer = csv::Writer::from_writer(Vec::new());
        let failed = |e: &dyn std::fmt::Display| CoreError::Store(e.to_string());
        writer
            .write_record([
                "occurred_at",
                "actor",
                "actor_kind",
                "actor_id",
                "action",
                "outcome",
                "subject_kind",
                "subject_id",
                "subject_name",
                "tenant",
                "ticket_id",
                "ticket_url",
                "upstream_request_id",
                "category",
                "details",
            ])
            .map_err(|e| failed(&e))?;
        for row in rows {
            let e = row.event;
            let ev = e.event;
            let record = [
                e.occurred_at.to_rfc3339(),
                row.actor,
                sea_orm::ActiveEnum::to_value(&ev.actor.kind),
                ev.actor.id.unwrap_or_default(),
                ev.action,
                ev.outcome.as_str().to_owned(),
                ev.subject_kind.unwrap_or_default(),
                ev.subject_id.unwrap_or_default(),
                ev.subject_name.unwrap_or_default(),
                row.tenant_name.unwrap_or_default(),
                ev.psa_ticket_id.unwrap_or_default(),
                row.ticket_url.map(String::from).unwrap_or_default(),
                ev.upstream_request_id.unwrap_or_default(),
                e.category.as_str().to_owned(),
                ev.details.to_string(),
            ];
            writer
                .write_record(record.iter().map(|v| neutralise_formula(v)))
                .map_err(|e| failed(&e))?;
        }
        let bytes = writer.into_inner().map_err(|e| failed(&e))?;
        String::from_utf8(bytes).map_err(|e| failed(&e))
    }

    async fn search(
        &self,
        msp_id: Uuid,
        filter: &AuditFilter,
        people: &People,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<AuditEvent>, CoreError> {
        let actor_ids = filter.person.map(|person| match person {
            Person::ConsoleUser(id) => std::iter::once(id.to_string())
                .chain(
                    people
                        .technicians
                        .iter()
                        .filter(|t| t.console_user_id == Some(id))
                        .map(|t| t.id.to_string()),
                )
                .collect(),
            Person::Technician(id) => vec![id.to_string()],
        });
        let tenant = match filter.tenant {
            None => None,
            Some(id) => match self.store.get_tenant(id).await? {
                Some(t) if t.msp_id == msp_id => {
                    Some((t.id, vec![t.id.to_string(), t.microsoft_tenant_id]))
                }
                // Another MSP's tenant (or none): nothing of it is shown.
                _ => Some((id, Vec::new())),
            },
        };
        let day = |d: NaiveDate| -> DateTime<Utc> { d.and_time(chrono::NaiveTime::MIN).and_utc() };
        Ok(self
            .store
            .search_audit(&AuditSearch {
                msp_id,
                actor_ids,
                tenant,
                user: filter.user.clone(),
                action: filter.action.clone(),
                outcome: filter.outcome,
                since: filter.from.map(day),
                until: filter.to.map(|d| day(d) + Duration::days(1)),
                offset,
                limit,
            })
            .await?)
    }

    /// Names, tenants and ticket links for `events`.
    async fn rows(
        &self,
        msp_id: Uuid,
        events: Vec<AuditEvent>,
        people: &People,
    ) -> Result<Vec<AuditRow>, CoreError> {
        let verification_of = |e: &AuditEvent| -> Option<Uuid> {
            e.event
                .details
                .get("verification_id")?
                .as_str()?
                .parse()
                .ok()
        };
        let ids: Vec<Uuid> = events.iter().filter_map(verification_of).collect();
        let scopes = self.store.verification_scopes(msp_id, &ids).await?;
        let tenants: HashMap<Uuid, String> = if scopes.is_empty() {
            HashMap::new()
        } else {
            self.store
                .list_tenants(msp_id)
                .await?
                .into_iter()
                .map(|t| (t.id, t.display_name))
                .collect()
        };
        let needs_connections = events.iter().any(|e| {
            e.event.psa_ticket_id.is_some()
                && verification_of(e).is_some_and(|v| {
                    scopes
                        .get(&v)
                        .is_some_and(|(_, connection)| connection.is_some())
                })
        });
        let connections: HashMap<Uuid, PsaConnection> = if needs_connections {
            self.store
                .list_connections(msp_id)
                .await?
                .into_iter()
                .map(|c| (c.id, c))
                .collect()
        } else {
            HashMap::new()
        };
        let mut links: HashMap<(Uuid, String), Option<url::Url>> = HashMap::new();
        let mut rows = Vec::with_capacity(events.len());
        for event in events {
            let scope = verification_of(&event)
                .and_then(|v| scopes.get(&v))
                .copied();
            let tenant_name = scope.and_then(|(tenant, _)| tenants.get(&tenant).cloned());
            let ticket_url = match (scope.and_then(|(_, c)| c), &event.event.psa_ticket_id) {
                (Some(connection_id), Some(ticket)) => {
                    let key = (connection_id, ticket.clone());
                    if !links.contains_key(&key) {
                        let url = match connections.get(&connection_id) {
                            Some(connection) => {
                                self.psa
                                    .adapter(connection.kind)
                                    .ticket_url(connection, ticket)
                                    .await
                            }
                            None => None,
                        };
                        links.insert(key.clone(), url);
                    }
                    links.get(&key).cloned().flatten()
                }
                _ => None,
            };
            rows.push(AuditRow {
                actor: people.actor(&event),
                tenant_name,
                ticket_url,
                event,
            });
        }
        Ok(rows)
    }
}

/// Spreadsheets run cells starting with = + - @ (or a tab or carriage return) as formulas;
/// names come from PSAs and users, so such cells are prefixed with a quote (CSV injection).
pub fn neutralise_formula(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised_and_others_kept() {
        for cell in ["=1+1", "+1", "-2", "@SUM(A1)", "\tx"] {
            assert_eq!(neutralise_formula(cell), format!("'{cell}"));
        }
        assert_eq!(
            neutralise_formula("dana@contoso.example"),
            "dana@contoso.example"
        );
    }

    #[test]
    fn filters_parse_or_say_which_field_is_wrong() {
        let fields = AuditFields {
            from: "2026-12-05".into(),
            to: "2026-12-01".into(),
            ..AuditFields::default()
        };
        match AuditFilter::parse(&fields) {
            Err(CoreError::InvalidInput { field, .. }) => assert_eq!(field, "to"),
            other => panic!("{other:?}"),
        }
        let fields = AuditFields {
            from: "yesterday".into(),
            ..AuditFields::default()
        };
        assert!(matches!(
            AuditFilter::parse(&fields),
            Err(CoreError::InvalidInput { field: "from", .. })
        ));
        let id = Uuid::now_v7();
        let fields = AuditFields {
            person: format!("user:{id}"),
            outcome: "denied".into(),
            ..AuditFields::default()
        };
        let filter = AuditFilter::parse(&fields).unwrap();
        assert_eq!(filter.person, Some(Person::ConsoleUser(id)));
        assert_eq!(filter.outcome, Some(AuditOutcome::Denied));
    }
}
