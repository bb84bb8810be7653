//! Reaching a customer's tenant and finding its users: which credentials to use for Graph
//! and for the MFA connector, and which Microsoft user an e-mail address means.
//!
//! Resolved users are cached briefly (moka, in application state) so that a verification with
//! warm caches needs no lookup; PSAs and Microsoft both rate-limit.

use std::sync::Arc;

use moka::future::Cache;
use uuid::Uuid;

use super::error::CoreError;
use super::integrations::VouchApp;
use crate::config::CacheLimits;
use crate::domain::{IntegrationKind, IntegrationStatus};
use crate::microsoft::graph::{GraphUser, MFA_CLIENT_APP_ID};
use crate::microsoft::{ClientCredentials, Microsoft, TenantRef};
use crate::store::Store;
use crate::store::tenants::Tenant;

/// The Microsoft user a verification or reset is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    pub object_id: String,
    pub upn: String,
    pub display_name: Option<String>,
    pub synced_from_on_premises: bool,
}

impl From<GraphUser> for DirectoryUser {
    fn from(user: GraphUser) -> Self {
        DirectoryUser {
            synced_from_on_premises: user.is_synced_from_on_premises(),
            object_id: user.id,
            upn: user.user_principal_name,
            display_name: user.display_name,
        }
    }
}

/// Credentials for pushes: Graph (to read and fix the default method) and the connector.
#[derive(Debug, Clone)]
pub struct PushCredentials {
    pub graph: ClientCredentials,
    pub connector: ClientCredentials,
}

#[derive(Clone)]
pub struct Directory {
    store: Store,
    microsoft: Microsoft,
    vouch_app: Option<VouchApp>,
    users: Cache<(Uuid, String), DirectoryUser>,
    /// The console's Contacts searches, per MSP and (lower-cased) text.
    searches: Cache<(Uuid, String), Arc<ContactSearch>>,
}

/// A user a Contacts search found, in one of the MSP's tenants.
#[derive(Debug, Clone)]
pub struct ContactHit {
    pub tenant: Tenant,
    pub user: DirectoryUser,
    pub mail: Option<String>,
}

/// What a Contacts search found across the MSP's tenants, and the tenants it could not
/// search (each with why: not connected, a missing permission...).
#[derive(Debug, Clone, Default)]
pub struct ContactSearch {
    pub hits: Vec<ContactHit>,
    pub failures: Vec<(Tenant, CoreError)>,
    /// Some tenant had more matches than are listed: the text should be longer.
    pub truncated: bool,
}

/// The matches listed per tenant.
pub const SEARCH_LIMIT_PER_TENANT: u32 = 25;

impl Directory {
    /// Users resolved by e-mail are kept within `users_cache` (`cache.microsoft_users`).
    pub fn new(
        store: Store,
        microsoft: Microsoft,
        vouch_app: Option<VouchApp>,
        users_cache: CacheLimits,
    ) -> Directory {
        Directory {
            store,
            microsoft,
            vouch_app,
            users: users_cache.build(),
            searches: CacheLimits {
                max_entries: 1_000,
                ttl_seconds: 60,
            }
            .build(),
        }
    }

    /// Keeps the console's Contacts searches within `limits` (`cache.contact_searches`).
    pub fn with_search_cache(mut self, limits: CacheLimits) -> Directory {
        self.searches = limits.build();
        self
    }

    /// Users of the MSP's tenants whose name, UPN or e-mail matches `text` (a word starting
    /// with it), every tenant asked at once. A tenant that cannot be searched is listed
    /// with why; the others' results still come. Kept briefly per MSP and text.
    #[tracing::instrument(skip(self))]
    pub async fn search_contacts(
        &self,
        msp_id: Uuid,
        text: &str,
    ) -> Result<Arc<ContactSearch>, CoreError> {
        let text = text.trim();
        let length = text.chars().count();
        if length < 2 {
            return Err(CoreError::InvalidInput {
                field: "q",
                problem: "type at least 2 letters of a name, UPN or e-mail address".into(),
            });
        }
        if length > 100 {
            return Err(CoreError::InvalidInput {
                field: "q",
                problem: "type at most 100 characters".into(),
            });
        }
        let key = (msp_id, text.to_lowercase());
        if let Some(found) = self.searches.get(&key).await {
            return Ok(found);
        }
        let tenants = self.store.list_tenants(msp_id).await?;
        let searches = tenants.into_iter().map(|tenant| async move {
            let found = match self.graph_credentials(&tenant).await {
                Ok(creds) => self
                    .microsoft
                    .graph
                    .search_users(&creds, text, SEARCH_LIMIT_PER_TENANT + 1)
                    .await
                    .map_err(CoreError::Microsoft),
                Err(err) => Err(err),
            };
            (tenant, found)
        });
        let mut search = ContactSearch::default();
        for (tenant, found) in futures_util::future::join_all(searches).await {
            match found {
                Ok(mut users) => {
                    if users.len() > SEARCH_LIMIT_PER_TENANT as usize {
                        users.truncate(SEARCH_LIMIT_PER_TENANT as usize);
                        search.truncated = true;
                    }
                    for user in users {
                        search.hits.push(ContactHit {
                            tenant: tenant.clone(),
                            mail: user.mail.clone(),
                            user: user.into(),
                        });
                    }
                }
                Err(err) => search.failures.push((tenant, err)),
            }
        }
        search.hits.sort_by(|a, b| {
            let name = |h: &ContactHit| {
                h.user
                    .display_name
                    .clone()
                    .unwrap_or_else(|| h.user.upn.clone())
                    .to_lowercase()
            };
            name(a)
                .cmp(&name(b))
                .then_with(|| a.user.upn.cmp(&b.user.upn))
        });
        let search = Arc::new(search);
        // A search some tenant failed is not kept: asking again may work.
        if search.failures.is_empty() {
            self.searches.insert(key, search.clone()).await;
        }
        Ok(search)
    }

    /// One user of one of the MSP's tenants, by Vouch's tenant id and the user's object id
    /// (a Contacts result opened). Another MSP's tenant is "not found".
    #[tracing::instrument(skip(self))]
    pub async fn contact(
        &self,
        msp_id: Uuid,
        tenant_id: Uuid,
        object_id: &str,
    ) -> Result<(Tenant, DirectoryUser), CoreError> {
        let tenant = match self.store.get_tenant(tenant_id).await? {
            Some(tenant) if tenant.msp_id == msp_id => tenant,
            _ => return Err(CoreError::TenantNotFound),
        };
        let creds = self.graph_credentials(&tenant).await?;
        match self
            .microsoft
            .graph
            .user(&creds, object_id)
            .await
            .map_err(CoreError::Microsoft)?
        {
            Some(user) => Ok((tenant, user.into())),
            None => Err(CoreError::UserNotFound {
                searched: object_id.to_owned(),
            }),
        }
    }

    pub fn microsoft(&self) -> &Microsoft {
        &self.microsoft
    }

    /// The MSP's tenant with this Microsoft tenant id (or Vouch tenant id).
    #[tracing::instrument(skip_all, fields(msp_id = %msp_id, tenant = %tenant))]
    pub async fn tenant(&self, msp_id: Uuid, tenant: &str) -> Result<Tenant, CoreError> {
        let by_vouch_id = match Uuid::parse_str(tenant) {
            Ok(id) => self.store.get_tenant(id).await?,
            Err(_) => None,
        };
        let found = match by_vouch_id {
            Some(t) => Some(t),
            None => {
                self.store
                    .find_tenant_by_microsoft_id(msp_id, tenant)
                    .await?
            }
        };
        match found {
            Some(t) if t.msp_id == msp_id => Ok(t),
            _ => Err(CoreError::TenantNotFound),
        }
    }

    /// Graph credentials: the MSP's Identity Management app when connected, else Vouch's own
    /// app where the Authenticator integration was consented.
    pub async fn graph_credentials(&self, tenant: &Tenant) -> Result<ClientCredentials, CoreError> {
        let tenant_ref = tenant_ref(tenant)?;
        if let Some(integration) = self
            .store
            .get_integration(tenant.id, IntegrationKind::IdentityManagement)
            .await?
            && integration.status == IntegrationStatus::Active
            && let Some(secret) = integration.secret
        {
            return Ok(ClientCredentials {
                tenant: tenant_ref,
                client_id: integration.client_id,
                client_secret: secret,
            });
        }
        if let (Some(app), Some(_)) = (&self.vouch_app, self.authenticator(tenant).await?) {
            return Ok(ClientCredentials {
                tenant: tenant_ref,
                client_id: app.client_id.clone(),
                client_secret: app.client_secret.clone(),
            });
        }
        Err(CoreError::TenantNotConnected)
    }

    /// Credentials for a push, or why there are none.
    pub async fn push_credentials(&self, tenant: &Tenant) -> Result<PushCredentials, CoreError> {
        let integration = self
            .authenticator(tenant)
            .await?
            .ok_or(CoreError::AuthenticatorNotConnected)?;
        let app = self
            .vouch_app
            .as_ref()
            .ok_or(CoreError::AuthenticatorNotConnected)?;
        let secret = integration
            .secret
            .ok_or(CoreError::AuthenticatorNotConnected)?;
        let tenant_ref = tenant_ref(tenant)?;
        Ok(PushCredentials {
            graph: ClientCredentials {
                tenant: tenant_ref.clone(),
                client_id: app.client_id.clone(),
                client_secret: app.client_secret.clone(),
            },
            connector: ClientCredentials {
                tenant: tenant_ref,
                client_id: MFA_CLIENT_APP_ID.to_owned(),
                client_secret: secret,
            },
        })
    }

    async fn authenticator(
        &self,
        tenant: &Tenant,
    ) -> Result<Option<crate::store::tenants::TenantIntegration>, CoreError> {
        Ok(self
            .store
            .get_integration(tenant.id, IntegrationKind::Authenticator)
            .await?
            .filter(|i| i.status == IntegrationStatus::Active && i.secret.is_some()))
    }

    /// The one Microsoft user these addresses mean, trying them in order (primary first):
    /// as a UPN, then as `mail`, then among `proxyAddresses`. No match, or several, is an
    /// error: Vouch never guesses who the caller is.
    #[tracing::instrument(skip_all, fields(tenant_id = %tenant.id))]
    pub async fn resolve_user(
        &self,
        tenant: &Tenant,
        addresses: &[String],
    ) -> Result<DirectoryUser, CoreError> {
        let addresses: Vec<String> = addresses
            .iter()
            .map(|a| a.trim().to_ascii_lowercase())
            .filter(|a| a.contains('@'))
            .collect();
        if addresses.is_empty() {
            return Err(CoreError::InvalidInput {
                field: "user",
                problem: "must be an e-mail address or user principal name".into(),
            });
        }
        for address in &addresses {
            let key = (tenant.id, address.clone());
            if let Some(user) = self.users.get(&key).await {
                return Ok(user);
            }
        }
        let credentials = self.graph_credentials(tenant).await?;
        let graph = &self.microsoft.graph;
        for address in &addresses {
            let found = match graph.user(&credentials, address).await? {
                Some(user) => vec![user],
                None => {
                    let by_mail = graph.users_by_mail(&credentials, address).await?;
                    if by_mail.is_empty() {
                        graph.users_by_proxy_address(&credentials, address).await?
                    } else {
                        by_mail
                    }
                }
            };
            match found.len() {
                0 => continue,
                1 => {
                    let user: DirectoryUser = found.into_iter().next().expect("one").into();
                    self.users
                        .insert((tenant.id, address.clone()), user.clone())
                        .await;
                    return Ok(user);
                }
                count => {
                    return Err(CoreError::UserAmbiguous {
                        searched: address.clone(),
                        count,
                    });
                }
            }
        }
        Err(CoreError::UserNotFound {
            searched: addresses.join(", "),
        })
    }
}

fn tenant_ref(tenant: &Tenant) -> Result<TenantRef, CoreError> {
    TenantRef::parse(&tenant.microsoft_tenant_id).map_err(|err| CoreError::InvalidInput {
        field: "tenant_id",
        problem: err.to_string(),
    })
}
