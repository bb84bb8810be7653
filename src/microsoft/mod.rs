//! Clients of Microsoft: the token endpoint (`token`), Graph (`graph`) and the MFA connector
//! (`mfa`), behind one [`Microsoft`] handle built from configuration. Every base URL comes
//! from configuration, so the same code talks to Microsoft, a national cloud or the sandbox.

pub mod error;
pub mod graph;
pub mod mfa;
pub mod token;
pub mod types;

use std::time::Duration;

use crate::config::MicrosoftConfig;
use crate::telemetry::Metrics;
use crate::upstream::{RetryPolicy, Upstream};
pub use error::{MicrosoftError, MicrosoftErrorKind};
use graph::{GraphClient, PUSH_METHOD};
use mfa::{MfaConnectorClient, PushResult};
use token::TokenClient;
pub use types::{ClientCredentials, TenantRef, Upn};

#[derive(Clone)]
pub struct Microsoft {
    pub tokens: TokenClient,
    pub graph: GraphClient,
    pub connector: MfaConnectorClient,
}

impl Microsoft {
    pub fn new(config: &MicrosoftConfig, metrics: &Metrics) -> Microsoft {
        let request_timeout = Duration::from_secs(config.request_timeout_seconds);
        let policy = RetryPolicy::default();
        let tokens = TokenClient::new(
            Upstream::new("microsoft_login", request_timeout, metrics.clone(), policy),
            config.login_url.clone(),
            &config.graph_url,
            &config.mfa_connector_url,
        );
        let graph = GraphClient::new(
            Upstream::new("microsoft_graph", request_timeout, metrics.clone(), policy),
            config.graph_url.clone(),
            tokens.clone(),
        );
        let connector = MfaConnectorClient::new(
            Upstream::new(
                "microsoft_mfa_connector",
                Duration::from_secs(config.connector_timeout_seconds),
                metrics.clone(),
                policy,
            ),
            config.mfa_connector_url.clone(),
            tokens.clone(),
        );
        Microsoft {
            tokens,
            graph,
            connector,
        }
    }

    /// Resets a user's password after the checks that make Microsoft's own refusals
    /// explainable: a user synchronised from on-premises, or one holding an admin role
    /// (unless `allow_admin` is set), is refused before anything is changed. Returns
    /// Microsoft's request id.
    pub async fn reset_password_checked(
        &self,
        credentials: &ClientCredentials,
        user_id: &str,
        password: &secrecy::SecretString,
        force_change_next_sign_in: bool,
        allow_admin: bool,
    ) -> Result<Option<String>, MicrosoftError> {
        let user = self
            .graph
            .user(credentials, user_id)
            .await?
            .ok_or_else(|| MicrosoftError::new(MicrosoftErrorKind::UserNotFound))?;
        if user.is_synced_from_on_premises() {
            return Err(MicrosoftError::new(
                MicrosoftErrorKind::UserSyncedFromOnPremises,
            ));
        }
        if !allow_admin {
            let roles = self.graph.directory_roles(credentials, &user.id).await?;
            if !roles.is_empty() {
                return Err(MicrosoftError::new(
                    MicrosoftErrorKind::UserHoldsAdminRole {
                        roles: roles
                            .into_iter()
                            .map(|r| r.display_name.unwrap_or(r.id))
                            .collect(),
                    },
                ));
            }
        }
        self.graph
            .reset_password(credentials, &user.id, password, force_change_next_sign_in)
            .await
    }

    /// Sends an Authenticator push to `upn`, but only when the user's default sign-in method
    /// is the push: otherwise the connector would not prompt the user and the technician
    /// would wait for nothing. `graph_credentials` read the preference (one Graph call);
    /// `connector_credentials` send the push (one connector call).
    pub async fn push_if_push_is_default(
        &self,
        graph_credentials: &ClientCredentials,
        connector_credentials: &ClientCredentials,
        user_id: &str,
        upn: &Upn,
        can_fix_preference: bool,
    ) -> Result<PushResult, MicrosoftError> {
        let preferences = self
            .graph
            .sign_in_preferences(graph_credentials, user_id)
            .await?;
        match preferences
            .user_preferred_method_for_secondary_authentication
            .as_deref()
        {
            Some(PUSH_METHOD) => self.connector.push(connector_credentials, upn).await,
            other => Err(MicrosoftError::new(
                MicrosoftErrorKind::PreferredMethodMismatch {
                    current_method: other.unwrap_or("not set").to_owned(),
                    can_fix: can_fix_preference,
                },
            )),
        }
    }
}
