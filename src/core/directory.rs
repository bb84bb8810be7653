//! Reaching a customer's tenant and finding its users: which credentials to use for Graph
//! and for the MFA connector, and which Microsoft user an e-mail address means.
//!
//! Resolved users are cached briefly (moka, in application state) so that a verification with
//! warm caches needs no lookup; PSAs and Microsoft both rate-limit.

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
}

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
